"""The web UI served by ``procmem serve``: see and steer what procmem learned.

Mounted on the REST app by :func:`add_ui_routes` (``procmem.rest.app.create_app`` calls
it): same process, same memory, same guard and API keys. Open
``http://127.0.0.1:8765/`` (``/`` redirects to ``/ui/``) and sign in with an API key
(``procmem keys create``: scopes read, write and run); with ``--no-auth`` no sign-in
is asked.

Routes (none in the OpenAPI document):

* ``GET /ui/`` procedures: a filterable table (status, reliability with its 5-95 %
  interval, runs, flags, last run) and search (``?q=``: the hits of ``procmem
  search`` with their explanation and the values ``procmem plan`` would bind);
* ``GET /ui/procedures/{name}[?version=N]``: the flow diagram (SVG), versions with
  diffs, verification and promotion history, per-step duration and failure charts,
  reliability over time, lineage (the traces it was learned from), recent executions;
* ``GET /ui/executions[?procedure=]``, ``GET /ui/executions/{id}``: a timeline of step
  runs and attempts, each arg with its source, the needs it waits for, evidence;
* ``GET /ui/traces/{id}``: one trace and the versions learned from it;
* ``GET /ui/login``, ``POST /ui/session`` (sign in: ``Authorization: Bearer``),
  ``POST /ui/logout``; ``GET /ui/static/{app.css,app.js}``;
* actions, JSON POSTs with ``X-CSRF-Token``: ``/ui/api/procedures/{name}/pin``
  ``{"pinned"}``, ``/rollback``, ``/promote``, ``/reject`` ``{"version"}``,
  ``/delete`` ``{"confirm": name}`` (scope ``write``);
  ``/ui/api/executions/{id}/evidence`` ``{"reward", "source", "note"}`` (scope ``run``).

Stack: Jinja2 templates rendered on the server, SVG drawn in Python
(:mod:`procmem.web.svg`), one small committed script and stylesheet: no build step,
no Node toolchain, nothing fetched at run time (a Content-Security-Policy of
``'self'`` enforces it). Sessions and CSRF: :mod:`procmem.web.session`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..memory import Memory

__all__ = ["add_ui_routes"]


def add_ui_routes(app: FastAPI, mem: Memory) -> None:
    """Mount the UI on ``app`` (:func:`procmem.web.routes.add_ui_routes`).

    Raises:
        MissingExtra: Jinja2 is not installed (``pip install -e '.[server]'``).
    """
    from ..core.errors import MissingExtra

    try:
        import jinja2  # noqa: F401
    except ImportError as err:
        raise MissingExtra("the web UI", "server") from err
    from .routes import add_ui_routes as mount

    mount(app, mem)
