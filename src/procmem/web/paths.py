"""Where the web UI lives and what each of its routes needs (no web dependency here).

:mod:`procmem.rest.security` imports these to know the UI's public paths and scopes
without importing Jinja2. See :mod:`procmem.web` for the routes themselves.

Invariants:
    * Only the sign-in page, the static files and ``/`` (a redirect) are public;
      they show no data.
    * Reads (``GET``) need ``read``; signing in and out need ``read``; reporting
      evidence on an execution needs ``run`` (as ``POST /executions/{id}/evidence``
      does in the REST API); every other UI write needs ``write``.
"""

from __future__ import annotations

__all__ = ["CSRF_COOKIE", "CSRF_HEADER", "KEY_COOKIE", "STATIC_FILES", "UI_PREFIX",
           "UI_PUBLIC_PATHS", "is_ui_path", "ui_scope_of"]

UI_PREFIX = "/ui"
"""Every UI route starts with this."""

KEY_COOKIE = "procmem_key"
"""The HttpOnly cookie holding the signed-in API key (path ``/ui``)."""

CSRF_COOKIE = "procmem_csrf"
"""The cookie holding the double-submit CSRF token (path ``/ui``)."""

CSRF_HEADER = "x-csrf-token"
"""The header every UI write must carry, equal to :data:`CSRF_COOKIE`."""

STATIC_FILES = ("app.css", "app.js")
"""The committed static files, served at ``/ui/static/<name>``."""

UI_PUBLIC_PATHS = frozenset({"/", UI_PREFIX, f"{UI_PREFIX}/login",
                             *(f"{UI_PREFIX}/static/{name}" for name in STATIC_FILES)})
"""Paths served without a key: the redirects, the sign-in page, the static files."""

SESSION_PATHS = frozenset({f"{UI_PREFIX}/session", f"{UI_PREFIX}/logout"})


def is_ui_path(path: str) -> bool:
    """True for ``/ui`` and every path below it."""
    return path == UI_PREFIX or path.startswith(UI_PREFIX + "/")


def ui_scope_of(method: str, path: str) -> str:
    """The scope a UI request needs (see the module docs)."""
    if method in ("GET", "HEAD", "OPTIONS") or path in SESSION_PATHS:
        return "read"
    if path.startswith(f"{UI_PREFIX}/api/executions/"):
        return "run"
    return "write"
