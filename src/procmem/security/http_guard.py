"""The door of procmem's HTTP servers: one ASGI middleware for REST and MCP over HTTP.

Every HTTP request passes these checks in this order before it reaches the app;
the first that fails answers (JSON ``{"error": {"code", "message"}}``) and the app
never sees the request:

1. **Host** must be an allowed host name (default: ``localhost``, ``127.0.0.1``,
   ``::1`` and the bound address), else 421: a DNS-rebinding page sends its own
   name (``Host: attacker.example``). ``"*"`` allows any (behind a proxy that checks).
2. **Origin**, when a browser sends one, must be the request's own origin or an
   allowed origin, else 403: a cross-site page never gets to call the API.
3. **CORS**: no ``Access-Control-*`` header is sent unless the origin is in
   ``cors_origins``; only those get preflight answers.
4. **Size**: a body over ``max_body_bytes`` is refused with 413 (declared length
   or counted while reading).
5. **Content type**: a POST, PUT, PATCH or DELETE with a ``Content-Type`` other than
   JSON (``application/json`` or ``+json``), or with a body and no type, is 415:
   HTML forms and ``text/plain`` "simple requests" cannot reach a write.
6. **Authentication** (unless disabled): ``Authorization: Bearer <key>``
   (:class:`procmem.security.keys.KeyRing`), never a query parameter. Missing or
   bad: 401 with ``WWW-Authenticate: Bearer realm="procmem"`` (and
   ``error="invalid_token"`` for a bad one), RFC 6750 section 3 and the MCP
   authorization spec (2025-11-25, "Access Token Usage").
7. **Scope**: the adapter's ``scope_of(method, path, body)`` names the scope (or
   scopes) the request needs; a key without it gets 403 with ``error="insufficient_scope"``
   and the scope in ``WWW-Authenticate``.

The request's :class:`~procmem.security.keys.Principal` (tenant and scopes) is then in
``scope["state"]["principal"]`` and in :data:`current_principal` for the app.
Paths in ``public_paths`` skip 6 and 7 (never 1-5).
"""

from __future__ import annotations

import contextvars
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import ProcmemError, Unauthorized
from .keys import DEFAULT_TENANT, SCOPES, KeyRing, Principal

__all__ = ["DEFAULT_MAX_BODY_BYTES", "GuardSettings", "HttpGuard", "current_principal",
           "default_hosts"]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
"""Largest request body, in bytes, unless configured (16 MiB)."""

current_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "procmem_principal", default=None)
"""The principal of the request being served (``None`` outside a request)."""

_LOOPBACK = ("localhost", "127.0.0.1", "::1")
_WRITES = {"POST", "PUT", "PATCH", "DELETE"}
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
ScopeOf = Callable[[str, str, bytes], str | tuple[str, ...]]


def default_hosts(bind_host: str, extra: Iterable[str] = ()) -> tuple[str, ...]:
    """The host names a server bound to ``bind_host`` answers to.

    Loopback names, the bound address (unless it is a wildcard such as ``0.0.0.0``)
    and ``extra`` (``--allow-host``), lowercased, without ports.
    """
    hosts = [*_LOOPBACK]
    if bind_host not in ("0.0.0.0", "::", ""):
        hosts.append(bind_host.strip("[]").lower())
    hosts.extend(h.strip().strip("[]").lower() for h in extra if h.strip())
    return tuple(dict.fromkeys(hosts))


@dataclass(frozen=True)
class GuardSettings:
    """What the guard admits.

    Attributes:
        keys: Verifies bearer keys; ``None`` turns authentication off (every
            request acts as the ``default`` tenant with every scope).
        allowed_hosts: Host names (no port) the server answers to; ``"*"``: any.
        allowed_origins: Origins (``scheme://host[:port]``) admitted besides the
            request's own; ``"*"``: any.
        cors_origins: Origins that get CORS headers (none by default).
        max_body_bytes: Largest request body in bytes.
        public_paths: Paths served without a key (health, the OpenAPI document).
    """

    keys: KeyRing | None
    allowed_hosts: tuple[str, ...] = _LOOPBACK
    allowed_origins: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    public_paths: frozenset[str] = field(default_factory=frozenset)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _host_name(host: str) -> str:
    """``Host`` header without its port, lowercased (``[::1]:8765`` -> ``::1``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class HttpGuard:
    """ASGI middleware enforcing :class:`GuardSettings` (see the module docs).

    Args:
        app: The ASGI app behind the guard.
        settings: What to admit.
        scope_of: The scope a request needs, from its method, path and body
            (one of :data:`procmem.security.keys.SCOPES`, or a tuple of them all needed).
        on_principal: Called with the ASGI scope and the principal before the
            app runs (the MCP adapter puts its user there).
    """

    def __init__(self, app: ASGIApp, settings: GuardSettings, scope_of: ScopeOf, *,
                 on_principal: Callable[[Scope, Principal], None] | None = None) -> None:
        self.app, self.settings, self.scope_of = app, settings, scope_of
        self.on_principal = on_principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan
            return
        origin = _header(scope, b"origin")
        cors = origin if origin is not None and self._cors(origin) else None
        try:
            self._check_host(scope)
            self._check_origin(scope, origin)
            if cors and scope["method"] == "OPTIONS":
                await _respond(send, 204, b"", self._cors_headers(cors, preflight=True))
                return
            body = await self._read_body(scope, receive)
            self._check_content_type(scope, body)
            principal = await self._authenticate(scope, body)
        except _Refusal as refusal:
            headers = {**refusal.headers, **(self._cors_headers(cors) if cors else {})}
            payload = {"error": {"code": refusal.code, "message": refusal.message}}
            await _respond(send, refusal.status, json.dumps(payload).encode(), headers)
            return
        scope.setdefault("state", {})["principal"] = principal
        if self.on_principal is not None:
            self.on_principal(scope, principal)
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # a disconnect, if the app waits for one

        async def send_cors(message: dict[str, Any]) -> None:
            if cors and message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode())
                         for k, v in self._cors_headers(cors).items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        token = current_principal.set(principal)
        try:
            await self.app(scope, replay, send_cors)
        finally:
            current_principal.reset(token)

    # ------------------------------------------------------------ checks

    def _check_host(self, scope: Scope) -> None:
        allowed = self.settings.allowed_hosts
        host = _header(scope, b"host")
        if "*" in allowed:
            return
        if host is None or _host_name(host) not in allowed:
            raise _Refusal(421, "bad_host", f"host {host!r} is not served here (allowed: "
                           f"{', '.join(allowed)}; add one with --allow-host)")

    def _check_origin(self, scope: Scope, origin: str | None) -> None:
        if origin is None:
            return
        allowed = self.settings.allowed_origins
        if "*" in allowed or origin in allowed or origin in self.settings.cors_origins:
            return
        host = _header(scope, b"host") or ""
        if origin.lower().split("://", 1)[-1] == host.lower():
            return  # same origin: the server's own pages (/docs)
        raise _Refusal(403, "bad_origin", f"cross-origin request from {origin!r} refused "
                       "(allow it with --allow-origin)")

    def _cors(self, origin: str) -> bool:
        return origin in self.settings.cors_origins or "*" in self.settings.cors_origins

    def _cors_headers(self, origin: str, *, preflight: bool = False) -> dict[str, str]:
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                   "Access-Control-Expose-Headers": "WWW-Authenticate, Mcp-Session-Id"}
        if preflight:
            headers.update({
                "Access-Control-Allow-Methods": "GET, POST, PUT, DELETE, OPTIONS",
                "Access-Control-Allow-Headers":
                    "Authorization, Content-Type, Mcp-Session-Id, Mcp-Protocol-Version",
                "Access-Control-Max-Age": "600"})
        return headers

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        declared = _header(scope, b"content-length")
        too_big = _Refusal(413, "too_large", f"the request body is over {limit} bytes")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_big
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _check_content_type(self, scope: Scope, body: bytes) -> None:
        if scope["method"] not in _WRITES:
            return
        kind = _header(scope, b"content-type")
        if kind is None and not body:
            return
        media = (kind or "").split(";", 1)[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            raise _Refusal(415, "unsupported_media_type",
                           f"{scope['method']} needs Content-Type: application/json "
                           f"(got {kind or 'none'})")

    async def _authenticate(self, scope: Scope, body: bytes) -> Principal:
        keys = self.settings.keys
        if keys is None:
            return Principal(key_id=None, tenant=DEFAULT_TENANT, scopes=SCOPES)
        path = scope.get("path", "")
        if path in self.settings.public_paths:
            return Principal(key_id=None, tenant=DEFAULT_TENANT, scopes=())
        challenge = 'Bearer realm="procmem"'
        header = _header(scope, b"authorization")
        if header is None or not header[:7].lower() == "bearer ":
            raise _Refusal(401, "unauthorized",
                           str(Unauthorized("no API key")), {"WWW-Authenticate": challenge})
        try:
            import anyio  # installed with every server extra (starlette, mcp)

            # in a worker thread: the event loop never waits on the store
            principal = await anyio.to_thread.run_sync(keys.verify, header[7:])
        except Unauthorized as err:
            raise _Refusal(401, "unauthorized", str(err), {
                "WWW-Authenticate": f'{challenge}, error="invalid_token", '
                                    f'error_description="{err.reason}"'}) from err
        except ProcmemError as err:  # the key store cannot be read
            raise _Refusal(503, err.code, f"cannot check the API key: {err}") from err
        wanted = self.scope_of(scope["method"], path, body)
        missing = [s for s in ((wanted,) if isinstance(wanted, str) else wanted)
                   if s not in principal.scopes]
        if missing:
            needed = missing[0]
            raise _Refusal(403, "forbidden", f"this request needs the {needed!r} scope (the "
                           f"key has: {', '.join(principal.scopes)})", {
                               "WWW-Authenticate": f'{challenge}, error="insufficient_scope", '
                                                   f'scope="{needed}"'})
        return principal


async def _respond(send: Send, status: int, body: bytes, headers: dict[str, str]) -> None:
    raw = [(b"content-length", str(len(body)).encode())]
    if body:
        raw.append((b"content-type", b"application/json"))
    raw.extend((k.lower().encode(), v.encode()) for k, v in headers.items())
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
