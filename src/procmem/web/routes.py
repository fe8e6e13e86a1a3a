"""The web UI's routes on the REST app (see :mod:`procmem.web` for the list).

Pages are server-rendered Jinja2 templates (autoescaped) with inline SVG; the only
script is ``static/app.js`` (sign-in, filter-as-you-type, confirm dialogs, JSON
POSTs). Every page sends a Content-Security-Policy that allows nothing but this
origin, so a page can load nothing from elsewhere even by mistake.

Invariants:
    * Handlers call the same ``Memory`` (the request tenant's, through the REST app's
      proxy, under its lock) as the REST API; reads in :mod:`procmem.web.views`,
      writes in :mod:`procmem.web.actions`.
    * Action buttons are drawn only for a key with the scope the action needs, and
      the guard checks that scope again on the POST (403 without it).
"""


import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ProcmemError
from ..memory import Memory
from ..rest.models import NAME_PATTERN, http_status
from ..security.http_guard import current_principal
from ..security.keys import SCOPES, Principal
from . import actions, views
from .paths import CSRF_COOKIE, KEY_COOKIE, STATIC_FILES, UI_PREFIX
from .session import UiSession, cookie_header

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["add_ui_routes"]

T = TypeVar("T")
_HERE = Path(__file__).parent
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
_HEADERS = {"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "X-Frame-Options": "DENY",
            "Cache-Control": "no-store"}
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


class _Version(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=2**31 - 1)


class _Pin(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pinned: bool = True


class _Delete(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confirm: str = Field(max_length=200)


class _Rename(BaseModel):
    model_config = ConfigDict(extra="forbid")
    new_name: str = Field(min_length=1, max_length=200)


class _Evidence(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reward: float = Field(ge=0, le=1)
    source: Literal["environment", "test", "user", "agent"] = "user"
    note: str = Field(default="", max_length=2000)


def _principal() -> Principal:
    return current_principal.get() or Principal(key_id=None, tenant="default", scopes=())


def _safe_next(target: str | None) -> str:
    """A local UI path to go to after signing in (never another site)."""
    if target and target.startswith(UI_PREFIX) and "//" not in target and "\\" not in target:
        return target
    return f"{UI_PREFIX}/"


def add_ui_routes(app: "FastAPI", mem: Memory) -> None:
    """Mount the web UI on ``app`` (the REST app of :func:`procmem.rest.app.create_app`).

    Args:
        app: The app, already secured (:func:`procmem.rest.security.secure_app`): the
            UI's session middleware is added outside its guard.
        mem: The request tenant's memory (the REST app's proxy).

    Raises:
        MissingExtra: Jinja2 is not installed (``pip install -e '.[server]'``).
    """
    from fastapi import Path as PathParam
    from fastapi import Query, Request
    from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(_HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["json"] = views.short_json
    env.globals["ui"] = UI_PREFIX

    def render(request: Request, template: str, code: int = 200, **data: Any) -> HTMLResponse:
        principal = _principal()
        context = {"request": request, "principal": principal,
                   "csrf": getattr(request.state, "csrf", ""),
                   "can": {s: s in principal.scopes for s in SCOPES},
                   "signed_in": principal.key_id is not None, **data}
        html = env.get_template(template).render(context)
        return HTMLResponse(html, status_code=code, headers=_HEADERS)

    def page(request: Request, template: str, build: Callable[[], dict[str, Any]]) -> HTMLResponse:
        try:
            data = build()  # a Memory is thread-safe: no lock here
        except ProcmemError as err:
            return render(request, "error.html", http_status(err), error=err)
        return render(request, template, **data)

    def name_path() -> Any:
        return PathParam(pattern=NAME_PATTERN, max_length=200)

    def id_path() -> Any:
        return PathParam(min_length=1, max_length=200)

    # ------------------------------------------------------------- navigation

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=303)

    @app.get(UI_PREFIX, include_in_schema=False)
    def ui_root() -> RedirectResponse:
        return RedirectResponse(f"{UI_PREFIX}/", status_code=303)

    @app.get(f"{UI_PREFIX}/static/{{filename}}", include_in_schema=False)
    def static(filename: str) -> Response:
        if filename not in STATIC_FILES:
            return JSONResponse({"error": {"code": "not_found", "message":
                                           f"no static file {filename!r}"}}, 404)
        path = _HERE / "static" / filename
        return Response(path.read_bytes(), media_type=_TYPES[path.suffix],
                        headers={"Cache-Control": "max-age=300",
                                 "X-Content-Type-Options": "nosniff"})

    # ------------------------------------------------------------- session

    @app.get(f"{UI_PREFIX}/login", include_in_schema=False)
    def login(request: Request, next: str | None = Query(None, max_length=500)
              ) -> HTMLResponse:
        return render(request, "login.html", next=_safe_next(next))

    @app.post(f"{UI_PREFIX}/session", include_in_schema=False)
    def session(request: Request) -> JSONResponse:
        """Sign in: the guard has verified the bearer key; keep it in a cookie."""
        principal = _principal()
        secure = request.url.scheme == "https"
        response = JSONResponse({"tenant": principal.tenant,
                                 "scopes": list(principal.scopes)})
        header = request.headers.get("authorization", "")
        if principal.key_id is not None and header[:7].lower() == "bearer ":
            response.headers.append("set-cookie", cookie_header(
                KEY_COOKIE, header[7:].strip(), secure=secure))
        response.headers.append("set-cookie", cookie_header(
            CSRF_COOKIE, secrets.token_urlsafe(32), secure=secure))
        return response

    @app.post(f"{UI_PREFIX}/logout", include_in_schema=False)
    def logout(request: Request) -> JSONResponse:
        secure = request.url.scheme == "https"
        response = JSONResponse({"ok": True, "message": "signed out"})
        for name in (KEY_COOKIE, CSRF_COOKIE):
            response.headers.append("set-cookie", cookie_header(name, "", secure=secure,
                                                                max_age=0))
        return response

    # ------------------------------------------------------------- pages

    @app.get(f"{UI_PREFIX}/", include_in_schema=False)
    def procedures(request: Request,
                   status: Literal["", "candidate", "active", "deprecated"] = Query(""),
                   flag: str = Query("", max_length=50), text: str = Query("", max_length=200),
                   q: str = Query("", max_length=5000),
                   search_status: Literal["active", "candidate", "deprecated", "any"] = Query(
                       "active")) -> HTMLResponse:
        def build() -> dict[str, Any]:
            data = views.procedures_view(mem, status=status or None, flag=flag or None,
                                         text=text)
            hits = views.search_view(mem, q, status=None if search_status == "any"
                                     else search_status) if q.strip() else None
            return {**data, "status": status, "flag": flag, "text": text, "q": q,
                    "search_status": search_status, "hits": hits}
        return page(request, "procedures.html", build)

    @app.get(f"{UI_PREFIX}/procedures/{{name}}", include_in_schema=False)
    def procedure(request: Request, name: str = name_path(),
                  version: int | None = Query(None, ge=1, le=2**31 - 1)) -> HTMLResponse:
        return page(request, "procedure.html", lambda: views.procedure_view(mem, name, version))

    @app.get(f"{UI_PREFIX}/executions", include_in_schema=False)
    def executions(request: Request, procedure: str | None = Query(
            None, pattern=NAME_PATTERN, max_length=200)) -> HTMLResponse:
        return page(request, "executions.html", lambda: {
            "executions": mem.list_executions(procedure=procedure, limit=200),
            "procedure": procedure})

    @app.get(f"{UI_PREFIX}/executions/{{execution_id}}", include_in_schema=False)
    def execution(request: Request, execution_id: str = id_path()) -> HTMLResponse:
        return page(request, "execution.html", lambda: views.execution_view(mem, execution_id))

    @app.get(f"{UI_PREFIX}/traces/{{trace_id}}", include_in_schema=False)
    def trace(request: Request, trace_id: str = id_path()) -> HTMLResponse:
        return page(request, "trace.html", lambda: views.trace_view(mem, trace_id))

    # ------------------------------------------------------------- actions (JSON)

    base = f"{UI_PREFIX}/api/procedures/{{name}}"

    @app.post(f"{base}/pin", include_in_schema=False)
    def do_pin(body: _Pin, name: str = name_path()) -> dict[str, Any]:
        return dict(actions.pin(mem, name, body.pinned))

    @app.post(f"{base}/rollback", include_in_schema=False)
    def do_rollback(body: _Version, name: str = name_path()) -> dict[str, Any]:
        return dict(actions.rollback(mem, name, body.version))

    @app.post(f"{base}/promote", include_in_schema=False)
    def do_promote(body: _Version, name: str = name_path()) -> dict[str, Any]:
        return dict(actions.promote(mem, name, body.version))

    @app.post(f"{base}/reject", include_in_schema=False)
    def do_reject(body: _Version, name: str = name_path()) -> dict[str, Any]:
        return dict(actions.reject(mem, name, body.version))

    @app.post(f"{base}/delete", include_in_schema=False)
    def do_delete(body: _Delete, name: str = name_path()) -> dict[str, Any]:
        return dict(actions.delete(mem, name, body.confirm))

    @app.post(f"{base}/rename", include_in_schema=False)
    def do_rename(body: _Rename, name: str = name_path()) -> dict[str, Any]:
        return dict(actions.rename(mem, name, body.new_name))

    @app.post(f"{UI_PREFIX}/api/executions/{{execution_id}}/evidence", include_in_schema=False)
    def do_evidence(body: _Evidence, execution_id: str = id_path()
                    ) -> dict[str, Any]:
        return dict(actions.report(mem, execution_id, body.reward, body.source, body.note))

    app.add_middleware(UiSession)  # outermost: outside the guard (procmem.web.session)
