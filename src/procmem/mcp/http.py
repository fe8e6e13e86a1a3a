"""MCP over streamable HTTP, secure by default: API keys, scopes, tenants.

:func:`tenant_mcp_app` builds the ASGI app ``procmem mcp --http`` serves: the
:class:`~procmem.security.http_guard.HttpGuard` (Host, Origin, size, content type, bearer
key, scope) in front of one :class:`~procmem.mcp.server.ProcmemServer` per
tenant, each over that tenant's memory (:class:`procmem.tenants.TenantMemories`).

Authorization follows the MCP spec's bearer-token usage for HTTP transports
(2025-11-25, basic/authorization, "Access Token Usage" and "Error Handling"):
the key is sent as ``Authorization: Bearer`` on every request and never in the
URI; a missing or bad one is 401 with ``WWW-Authenticate: Bearer``, a key
without the needed scope 403 with ``error="insufficient_scope"`` and the scope.
procmem issues its own keys (``procmem keys create``), so there is no OAuth
authorization server and no protected resource metadata document.

Scopes (:func:`mcp_scope_of`): every request needs ``read``; ``tools/call`` of
``start_recording``, ``record_step`` or ``finish_recording`` needs ``write``;
of ``continue_execution``, ``report_evidence`` or a procedure's tool, ``run``.

Invariants:
    * A tenant's server only holds that tenant's memory, recordings and tool
      list, so nothing a tool does can reach another tenant.
    * An MCP session belongs to the key that opened it: the SDK compares the
      request's user (key id, tenant) with the session's creator and answers
      404 otherwise, so a session id leaked to another key is useless.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio

from ..memory import Memory
from ..security.http_guard import GuardSettings, HttpGuard, Receive, Scope, Send
from ..security.keys import Principal
from ..tenants import TenantMemories
from .server import ProcmemServer

__all__ = ["TenantMCP", "mcp_scope_of", "tenant_mcp_app"]

_WRITE_TOOLS = frozenset({"start_recording", "record_step", "finish_recording"})
_READ_TOOLS = frozenset({"search_procedures", "get_procedure"})


def _needs(message: Any) -> str:
    if not isinstance(message, dict) or message.get("method") != "tools/call":
        return "read"
    params = message.get("params")
    name = params.get("name") if isinstance(params, dict) else None
    if not isinstance(name, str):  # e.g. a list (unhashable): the strictest scope, never a 500
        return "run"
    if name in _READ_TOOLS:
        return "read"
    return "write" if name in _WRITE_TOOLS else "run"


def mcp_scope_of(method: str, path: str, body: bytes) -> tuple[str, ...]:
    """The scopes an MCP HTTP request needs (see the module docs); a body that is not
    JSON needs ``read`` (the SDK answers it with a JSON-RPC parse error)."""
    try:
        data = json.loads(body) if body else None
    except (ValueError, RecursionError):
        return ("read",)
    messages = data if isinstance(data, list) else [data]
    return tuple(dict.fromkeys(["read", *(_needs(m) for m in messages)]))


def _set_user(scope: Scope, principal: Principal) -> None:
    """Put the principal where the SDK looks for the session's owner (``scope["user"]``)."""
    from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
    from mcp.server.auth.provider import AccessToken

    token = AccessToken(token="-", client_id=principal.key_id or "no-auth",
                        scopes=list(principal.scopes), subject=principal.tenant)
    scope["user"] = AuthenticatedUser(token)


class TenantMCP:
    """ASGI app: one MCP server per tenant, created on the tenant's first request.

    Args:
        memories: The tenants' memories.
        build: Makes the server of one tenant's memory
            (e.g. ``lambda m: build_server(m, tool_prefix=...)``).
        path: The MCP endpoint path.
    """

    def __init__(self, memories: TenantMemories, build: Callable[[Memory], ProcmemServer], *,
                 path: str = "/mcp") -> None:
        self.memories, self.build, self.path = memories, build, path
        self.servers: dict[str, ProcmemServer] = {}
        self._apps: dict[str, Any] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        principal: Principal = scope["state"]["principal"]
        app = await self._app_for(principal.tenant)
        await app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        async with anyio.create_task_group() as group:
            self._group = group
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
            group.cancel_scope.cancel()
        self._group = None
        self.memories.close()
        await send({"type": "lifespan.shutdown.complete"})

    async def _app_for(self, tenant: str) -> Any:
        async with self._lock:
            app = self._apps.get(tenant)
            if app is None:
                if self._group is None:
                    raise RuntimeError("the MCP app's lifespan has not started")
                memory = await anyio.to_thread.run_sync(self.memories.get, tenant)
                server = self.build(memory)
                from mcp.server.transport_security import TransportSecuritySettings

                # Host and Origin are the guard's (it knows --allow-host), not the SDK's
                app = server.streamable_http_app(
                    streamable_http_path=self.path,
                    transport_security=TransportSecuritySettings(
                        enable_dns_rebinding_protection=False))
                await self._group.start(_run_sessions, server)
                self.servers[tenant], self._apps[tenant] = server, app
            return app


async def _run_sessions(server: ProcmemServer, *,
                        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
                        ) -> None:
    async with server.session_manager.run():
        task_status.started()
        await anyio.sleep_forever()


def tenant_mcp_app(memories: TenantMemories, build: Callable[[Memory], ProcmemServer],
                   settings: GuardSettings, *, path: str = "/mcp") -> HttpGuard:
    """The guarded, tenant-routing MCP app (see the module docs).

    Args:
        memories: The tenants' memories (closed when the app shuts down).
        build: Makes one tenant's server from its memory.
        settings: The guard's settings (:func:`procmem.rest.security.guard_settings`).
        path: The MCP endpoint path.
    """
    return HttpGuard(TenantMCP(memories, build, path=path), settings, mcp_scope_of,
                     on_principal=_set_user)
