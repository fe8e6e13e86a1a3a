"""The ``procmem proxy`` command: procmem as an MCP proxy in front of an upstream server.

``procmem proxy [--db PATH] -- COMMAND [ARGS...]`` serves MCP over stdio and
starts ``COMMAND ARGS...`` as the upstream MCP server (see
:mod:`procmem.mcp.proxy`). It registers on :data:`procmem.cli.app.main` when
imported.

Invariants:
    * Settings are read here only: ``--db`` of this command, else the group's
      ``--db`` / ``PROCMEM_DB``; the upstream process inherits this process's
      environment (so e.g. ``MEMORY_FILE_PATH`` reaches an upstream memory server).
    * stdout belongs to the MCP protocol: nothing else is printed there; errors
      follow :mod:`procmem.cli` (one ``error[<code>]: ...`` line on stderr).
    * A missing ``mcp`` package raises :class:`~procmem.core.errors.MissingExtra`
      naming ``pip install -e '.[mcp]'`` (in a clone).
"""

from __future__ import annotations

import os

import click

from ..core.errors import MissingExtra
from .app import main

__all__ = ["proxy"]


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--db", "db", metavar="PATH",
              help="The memory file (default: the group's --db / PROCMEM_DB).")
@click.option("--no-redact", is_flag=True,
              help="Skip the recorder's own redaction (the memory still redacts every trace it "
                   "stores; see docs/security-data.md).")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def proxy(ctx: click.Context, db: str | None, no_redact: bool, command: tuple[str, ...]) -> None:
    """Proxy an upstream MCP server: `procmem proxy -- COMMAND [ARGS...]`.

    Serves MCP on stdio with the upstream server's tools (each call forwarded
    and recorded as a trace step), every learned procedure made of those tools
    as a `procedure__NAME` tool that replays it upstream, and the control tools
    procmem_task, procmem_finish and procmem_resume. Example:

        procmem proxy -- npx -y @modelcontextprotocol/server-memory
    """
    try:
        import anyio

        from ..mcp.proxy import serve_proxy
    except ImportError as err:
        raise MissingExtra("procmem proxy (MCP)", "mcp") from err
    from ..memory import Memory

    mem = ctx.with_resource(Memory(db or ctx.obj["db"]))
    upstream, *args = command
    anyio.run(lambda: serve_proxy(mem, upstream, args, env=dict(os.environ),
                                  redact_secrets=not no_redact))
