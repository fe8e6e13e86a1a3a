"""Security of the REST API: the scope of each route, the key routes, the guard.

:func:`secure_app` wraps the app :func:`procmem.rest.app.create_app` builds in the
:class:`~procmem.security.http_guard.HttpGuard` and adds the key routes (``admin``):

* ``GET /keys``: the keys of the caller's tenant (ids, scopes, names, dates; never secrets);
* ``POST /keys`` ``{"scopes": [...], "name": "..."}``: a new key of the caller's
  tenant, its text shown once (201);
* ``DELETE /keys/{key_id}``: revoke one of them.

Scopes by route (:func:`rest_scope_of`): reads (GET, ``POST /plan``, ``POST /plan/task``) need
``read``; ``POST /traces``, ``DELETE /traces/{id}``, ``PUT /procedures/{name}``,
``POST /procedures/{name}/rename``,
``POST /learn`` and ``POST /optimize`` need ``write``; starting, continuing and
reporting on executions (``POST /executions...``) need ``run``; ``/keys`` needs
``admin``. Any other write needs ``write``.

Invariants:
    * An admin key manages only its own tenant's keys and cannot make a key of
      another tenant or with a scope it does not have itself.
    * ``/health`` and the OpenAPI document (``/openapi.json``, ``/docs``,
      ``/redoc``) are public: they show no data, as are the web UI's sign-in page,
      static files and redirects (:mod:`procmem.web.paths`). Every other route needs a key.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import Unauthorized, UsageError
from ..security.http_guard import (
    DEFAULT_MAX_BODY_BYTES,
    GuardSettings,
    HttpGuard,
    current_principal,
    default_hosts,
)
from ..security.keys import SCOPES, ApiKey, Principal
from ..tenants import TenantMemories
from ..web.paths import UI_PUBLIC_PATHS, is_ui_path, ui_scope_of

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["LOOPBACK", "PUBLIC_PATHS", "KeyCreated", "NewKeyRequest", "guard_settings",
           "rest_scope_of", "secure_app"]

PUBLIC_PATHS = frozenset({"/health", "/openapi.json", "/docs", "/docs/oauth2-redirect",
                          "/redoc"}) | UI_PUBLIC_PATHS  # the web UI's sign-in page and files

LOOPBACK = ("127.0.0.1", "localhost", "::1")
"""Where a server may listen without authentication (``--no-auth``)."""


def rest_scope_of(method: str, path: str, body: bytes) -> str:
    """The scope a REST request needs (see the module docs)."""
    if path == "/keys" or path.startswith("/keys/"):
        return "admin"
    if is_ui_path(path):
        return ui_scope_of(method, path)  # the web UI (procmem.web.paths)
    if method in ("GET", "HEAD", "OPTIONS") or (method == "POST"
                                                  and path in ("/plan", "/plan/task")):
        return "read"
    if method == "POST" and path.startswith("/executions"):
        return "run"
    return "write"


class NewKeyRequest(BaseModel):
    """Body of ``POST /keys``."""

    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(default_factory=lambda: ["read", "write", "run"], min_length=1,
                              description=f"Some of {', '.join(SCOPES)}.")
    name: str = Field(default="", max_length=200, description="What the key is for.")


class KeyCreated(BaseModel):
    """Answer of ``POST /keys``: the record and the key text (shown this once)."""

    key: str
    record: ApiKey


def _principal() -> Principal:
    principal = current_principal.get()
    if principal is None:
        raise Unauthorized("no authenticated request")
    return principal


def guard_settings(memories: TenantMemories, *, auth: bool = True,
                   bind_host: str = "127.0.0.1", allow_hosts: tuple[str, ...] = (),
                   allow_origins: tuple[str, ...] = (), cors_origins: tuple[str, ...] = (),
                   max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
                   public_paths: frozenset[str] = PUBLIC_PATHS) -> GuardSettings:
    """The guard of a server bound to ``bind_host`` (see :class:`GuardSettings`).

    Raises:
        UsageError: ``auth`` is off on a host that is not loopback, or
            ``max_body_bytes`` is not positive.
    """
    if not auth and bind_host not in LOOPBACK:
        raise UsageError(f"--no-auth is only allowed on 127.0.0.1 (binding {bind_host!r}): "
                         "create a key with procmem keys create")
    if max_body_bytes < 1:
        raise UsageError(f"max_body_bytes must be >= 1 (got {max_body_bytes})")
    return GuardSettings(keys=memories.keyring() if auth else None,
                         allowed_hosts=default_hosts(bind_host, allow_hosts),
                         allowed_origins=tuple(allow_origins), cors_origins=tuple(cors_origins),
                         max_body_bytes=max_body_bytes, public_paths=public_paths)


def secure_app(app: FastAPI, memories: TenantMemories, settings: GuardSettings) -> None:
    """Add the key routes and the OpenAPI security scheme to ``app``, and the guard
    (outermost, after FastAPI's error middleware) in front of its routes."""
    from fastapi import Path

    from .models import error_responses

    keyring = memories.keyring()

    @app.get("/keys", response_model=list[ApiKey], tags=["keys"],
             responses=error_responses(validated=False))
    def list_keys() -> list[ApiKey]:
        """The keys of the caller's tenant (never their secrets), oldest first."""
        return keyring.list(_principal().tenant)

    @app.post("/keys", response_model=KeyCreated, status_code=201, tags=["keys"],
              responses=error_responses(400))
    def create_key(body: NewKeyRequest) -> KeyCreated:
        """A new key of the caller's tenant; its text is shown once, never again."""
        principal = _principal()
        for scope in body.scopes:
            if scope in SCOPES:
                principal.require(scope)  # no key gets more than its maker has
        record, text = keyring.create(tenant=principal.tenant, scopes=body.scopes,
                                      name=body.name)
        return KeyCreated(key=text, record=record)

    @app.delete("/keys/{key_id}", response_model=ApiKey, tags=["keys"],
                responses=error_responses(404))
    def revoke_key(key_id: str = Path(pattern=r"^[0-9a-f]{12}$")) -> ApiKey:
        """Revoke a key of the caller's tenant (idempotent)."""
        return keyring.revoke(key_id, tenant=_principal().tenant)

    _document_guard(app, bearer=settings.keys is not None)
    app.state.tenants = memories
    app.add_middleware(HttpGuard, settings=settings, scope_of=rest_scope_of)


_GUARD_STATUSES = {
    401: "No API key, or a malformed, unknown, wrong or revoked one (code unauthorized; "
         "WWW-Authenticate: Bearer).",
    403: "The key lacks the scope this operation needs (code forbidden), or a cross-origin "
         "request (code bad_origin).",
    413: "The request body is over the server's limit (code too_large).",
    415: "A write whose Content-Type is not JSON (code unsupported_media_type).",
    421: "A Host header this server does not answer to (code bad_host).",
}


def _document_guard(app: FastAPI, *, bearer: bool) -> None:
    """Declare the guard's answers (and the bearer key) in the OpenAPI document."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version,
                              description=app.description, routes=app.routes)
            if bearer:
                doc.setdefault("components", {})["securitySchemes"] = {"apiKey": {
                    "type": "http", "scheme": "bearer",
                    "description": "A procmem API key: `procmem keys create`."}}
            error = {"application/json": {"schema": {
                "$ref": "#/components/schemas/ErrorResponse"}}}
            for path, item in doc.get("paths", {}).items():
                for method, op in item.items():
                    if not isinstance(op, dict):
                        continue
                    statuses = [413, 421] + ([415] if method != "get" else [])
                    if path not in PUBLIC_PATHS:
                        statuses += [401, 403]
                        if bearer:
                            op["security"] = [{"apiKey": []}]
                    responses = op.setdefault("responses", {})
                    for status in statuses:
                        responses.setdefault(str(status), {
                            "description": _GUARD_STATUSES[status], "content": error})
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


