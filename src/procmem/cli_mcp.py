"""``procmem mcp``: serve the memory over MCP (stdio, or streamable HTTP with ``--http``).

Registers on :data:`procmem.cli.main` when imported (``procmem.cli`` imports
this module last). The server itself is :mod:`procmem.mcp_server`.

Invariants:
    * The ``mcp`` SDK is imported only when the command runs; without it the
      command fails with ``error[missing_extra]`` naming ``pip install
      'procedural-memory[mcp]'``, and the rest of the CLI works.
    * Over stdio nothing but MCP messages is written to stdout; logs go to stderr.
"""

from __future__ import annotations

import logging

import click

from .cli import _memory, main

__all__ = ["mcp"]


@main.command()
@click.option("--http", "use_http", is_flag=True,
              help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio.")
@click.option("--host", default="127.0.0.1", show_default=True, help="HTTP host to bind.")
@click.option("--port", default=8766, show_default=True, type=click.IntRange(1, 65535),
              help="HTTP port.")
@click.option("--tool-prefix", default="", metavar="TEXT",
              help="Put before every procedure tool name.")
@click.pass_context
def mcp(ctx: click.Context, use_http: bool, host: str, port: int, tool_prefix: str) -> None:
    """Serve procedures to MCP clients (stdio by default).

    Tools: search_procedures, get_procedure, start_recording, record_step,
    finish_recording, report_evidence, continue_execution, and one tool per
    active procedure, run step by step with the client. Example client
    config: {"command": "procmem", "args": ["--db", "memory.db", "mcp"]}.
    """
    from . import mcp_server  # raises MissingExtra without the mcp SDK

    logging.basicConfig(level=logging.WARNING, format="procmem mcp: %(levelname)s %(message)s")
    mem = _memory(ctx)
    mem.warm_index()  # ready before the first request (loaded from the store when saved there)
    server = mcp_server.build_server(mem, tool_prefix=tool_prefix)
    try:
        if use_http:
            click.echo(f"procmem MCP server on http://{host}:{port}/mcp (Ctrl-C to stop)",
                       err=True)
        mcp_server.run(server, http=use_http, host=host, port=port)
    except KeyboardInterrupt:
        click.echo("procmem mcp: stopped", err=True)


if __name__ == "__main__":  # `python -m procmem.cli_mcp --db memory.db mcp`
    main()
