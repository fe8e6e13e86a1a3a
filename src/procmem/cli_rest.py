"""``procmem serve``: run the REST API (:mod:`procmem.rest`) with uvicorn.

The command registers on :data:`procmem.cli.main` when this module is imported
(:mod:`procmem.cli` imports it last).

Invariants:
    * Settings are read as in :mod:`procmem.cli`: ``serve --db PATH``, else the
      group's ``--db`` (or ``PROCMEM_DB``); the server opens that memory once
      and closes it when it stops.
    * It listens on 127.0.0.1 unless ``--host`` says otherwise: the API has no
      authentication, so exposing it is the caller's explicit choice.
    * Without the ``server`` extra it fails with ``error[missing_extra]`` naming
      ``pip install 'procedural-memory[server]'`` (exit code 1), before binding.
"""

from __future__ import annotations

import click

from .cli import _progress, main
from .errors import MissingExtra

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Interface to listen on (0.0.0.0 for every interface: no authentication!).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port.")
@click.option("--db", "db", default=None, metavar="PATH",
              help="The memory file (default: the group's --db, env PROCMEM_DB).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="uvicorn's log level.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, db: str | None, log_level: str) -> None:
    """Serve the REST API (FastAPI) over the memory; OpenAPI document at /openapi.json."""
    try:
        import uvicorn
    except ImportError as err:
        raise MissingExtra("the REST server", "server") from err
    from .rest import create_app

    app = create_app(db or ctx.obj["db"])
    # the search index is made ready now, not on the first request (it is loaded from
    # the store when saved there, else built: embedding what has no vector yet)
    with _progress(True, "embedding procedures for search", lazy=True) as progress:
        app.state.memory.warm_index(progress=progress)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    click.echo(f"procmem REST API on {base}  docs: {base}/docs  OpenAPI: {base}/openapi.json")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
