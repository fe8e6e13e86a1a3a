"""Browser sessions of the web UI: the API key in a cookie, CSRF by double submit.

:class:`UiSession` is an ASGI middleware placed *outside* the
:class:`~procmem.security.http_guard.HttpGuard`. For a path under ``/ui`` it:

1. turns the ``procmem_key`` cookie (HttpOnly, ``SameSite=Strict``, ``Path=/ui``,
   ``Secure`` on https) into ``Authorization: Bearer <key>`` when the request has
   no such header, so the guard verifies the key on every request, with the same
   scopes and tenant as the REST API (a revoked key stops working at once);
2. refuses a write (POST, PUT, PATCH, DELETE) other than signing in unless its
   ``X-CSRF-Token`` header equals the ``procmem_csrf`` cookie (403, code
   ``forbidden``): the double-submit pattern (OWASP CSRF Prevention Cheat Sheet).
   A cross-site page can neither read the cookie nor set that header without a CORS
   preflight the server never grants; ``SameSite=Strict`` keeps the cookies off
   cross-site requests anyway, and the guard's Origin and JSON content-type rules
   still apply;
3. gives a page request without a token a fresh one (``Set-Cookie``) and puts it
   in ``scope["state"]["csrf"]`` for the templates;
4. answers a page (GET) the guard refused with 401 by a redirect to the sign-in
   page, clearing a key cookie that no longer works.

Paths outside ``/ui`` pass through untouched: the REST API never reads a cookie.
"""

from __future__ import annotations

import hmac
import json
import secrets
from typing import Any
from urllib.parse import quote

from ..security.http_guard import ASGIApp, Receive, Scope, Send
from .paths import CSRF_COOKIE, CSRF_HEADER, KEY_COOKIE, UI_PREFIX, is_ui_path

__all__ = ["UiSession", "cookie_header", "parse_cookies"]

_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
SESSION_PATH = f"{UI_PREFIX}/session"


def parse_cookies(header: str | None) -> dict[str, str]:
    """``Cookie`` header text to a dict (the first of equal names wins)."""
    out: dict[str, str] = {}
    for part in (header or "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/ui (Secure on https)."""
    parts = [f"{name}={value}", f"Path={UI_PREFIX}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class UiSession:
    """ASGI middleware for the UI's cookie session (see the module docs)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_ui_path(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        cookies = parse_cookies(_header(scope, b"cookie"))
        secure = scope.get("scheme") == "https"
        key = cookies.get(KEY_COOKIE, "")
        csrf = cookies.get(CSRF_COOKIE, "")
        if method in _WRITES and path != SESSION_PATH:
            sent = _header(scope, CSRF_HEADER.encode()) or ""
            if not (csrf and sent and hmac.compare_digest(csrf, sent)):
                body = json.dumps({"error": {"code": "forbidden", "message":
                                   "missing or wrong CSRF token (X-CSRF-Token must equal "
                                   "the procmem_csrf cookie; reload the page)"}}).encode()
                await send({"type": "http.response.start", "status": 403, "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode())]})
                await send({"type": "http.response.body", "body": body})
                return
        headers = list(scope.get("headers", ()))
        if key and _header(scope, b"authorization") is None:
            headers.append((b"authorization", f"Bearer {key}".encode("latin-1")))
        new_csrf = "" if csrf else secrets.token_urlsafe(32)
        state = dict(scope.get("state") or {})
        state["csrf"] = csrf or new_csrf
        scope = {**scope, "headers": headers, "state": state}
        page = method == "GET"
        redirected = False

        async def wrapped(message: dict[str, Any]) -> None:
            nonlocal redirected
            if message["type"] == "http.response.start":
                status = message["status"]
                extra: list[tuple[bytes, bytes]] = []
                if page and status == 401:
                    redirected = True
                    target = f"{UI_PREFIX}/login?next={quote(path, safe='/')}"
                    extra = [(b"location", target.encode()), (b"content-length", b"0")]
                    if key:
                        extra.append((b"set-cookie", cookie_header(
                            KEY_COOKIE, "", secure=secure, max_age=0).encode()))
                    message = {"type": "http.response.start", "status": 303, "headers": extra}
                elif new_csrf and page:
                    extra.append((b"set-cookie", cookie_header(
                        CSRF_COOKIE, new_csrf, secure=secure).encode()))
                    message = {**message, "headers": [*message.get("headers", []), *extra]}
            elif redirected:
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b""})
                return
            await send(message)

        await self.app(scope, receive, wrapped)
