"""``procmem mcp``: serve the memory over MCP (stdio, or streamable HTTP with ``--http``).

Registers on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it). The server itself is :mod:`procmem.mcp.server`.

Invariants:
    * The ``mcp`` SDK is imported only when the command runs; without it the
      command fails with ``error[missing_extra]`` naming ``pip install -e
      '.[mcp]'`` in a clone, and the rest of the CLI works.
    * Over stdio nothing but MCP messages is written to stdout; logs go to stderr.
    * Over HTTP every request needs an API key (:mod:`procmem.mcp.http`); a fresh
      memory gets one, printed with how to use it; ``--no-auth`` only on 127.0.0.1.
"""

from __future__ import annotations

import click

from .app import main, open_memory
from .keys import ensure_key, security_options, warn_no_auth

__all__ = ["mcp"]


@main.command()
@click.option("--http", "use_http", is_flag=True,
              help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP host to bind.")
@click.option("--port", default=8766, show_default=True, type=click.IntRange(1, 65535),
              help="HTTP port.")
@click.option("--tool-prefix", default="", metavar="TEXT",
              help="Put before every procedure tool name.")
@security_options
@click.pass_context
def mcp(ctx: click.Context, use_http: bool, host: str, port: int, tool_prefix: str,
        no_auth: bool, allow_hosts: tuple[str, ...], allow_origins: tuple[str, ...],
        cors_origins: tuple[str, ...], max_body_mb: float) -> None:
    """Serve procedures to MCP clients (stdio by default).

    Tools: search_procedures, get_procedure, start_recording, record_step,
    finish_recording, report_evidence, continue_execution, and one tool per
    active procedure, run step by step with the client. Example client
    config: {"command": "procmem", "args": ["--db", "memory.db", "mcp"]}.
    Over --http every request needs Authorization: Bearer <key> (procmem keys
    create), each key reaching its own tenant's memory.
    """
    import logging

    from ..mcp import server as mcp_server  # raises MissingExtra without the mcp SDK

    logging.basicConfig(level=logging.WARNING, format="procmem mcp: %(levelname)s %(message)s")
    mem = open_memory(ctx)
    mem.warm_index(views=True)  # ready before the first request (the saved index, if any)
    try:
        if not use_http:
            mcp_server.run(mcp_server.build_server(mem, tool_prefix=tool_prefix))
            return
        from ..mcp.http import tenant_mcp_app
        from ..rest.security import guard_settings
        from ..tenants import TenantMemories

        if no_auth:
            warn_no_auth(host)
        memories = TenantMemories(mem)
        settings = guard_settings(memories, auth=not no_auth, bind_host=host,
                                  allow_hosts=allow_hosts, allow_origins=allow_origins,
                                  cors_origins=cors_origins,
                                  max_body_bytes=int(max_body_mb * 1024 * 1024))
        app = tenant_mcp_app(memories, lambda m: mcp_server.build_server(
            m, tool_prefix=tool_prefix), settings)
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"procmem MCP server on http://{shown}:{port}/mcp (Ctrl-C to stop)",
                   err=True)
        if not no_auth:
            url = f"http://{shown}:{port}/mcp"
            ensure_key(mem.location, lambda key: f"claude mcp add --transport http procmem {url} "
                                                 f"--header 'Authorization: Bearer {key}'")
        mcp_server.run(http_app=app, host=host, port=port)
    except KeyboardInterrupt:
        click.echo("procmem mcp: stopped", err=True)
