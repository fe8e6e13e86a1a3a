"""``procmem serve``: run the REST API (:mod:`procmem.rest.app`) with uvicorn.

The command registers on :data:`procmem.cli.app.main` when this module is imported
(the package :mod:`procmem.cli` imports it).

Invariants:
    * Settings are read as in :mod:`procmem.cli`: ``serve --db PATH``, else the
      group's ``--db`` (or ``PROCMEM_DB``); the server opens that memory once
      and closes it when it stops.
    * It listens on 127.0.0.1 unless ``--host`` says otherwise, and requires an
      API key (:mod:`procmem.rest.security`); a fresh memory with no key gets one,
      printed once with how to use it (:func:`procmem.cli.keys.ensure_key`).
      ``--no-auth`` exists only on 127.0.0.1 and warns loudly.
    * Without the ``server`` extra it fails with ``error[missing_extra]`` naming
      ``pip install -e '.[server]'`` (exit code 1), before binding.
"""

from __future__ import annotations

import click

from ..core.errors import MissingExtra
from .app import main, progress_bar
from .keys import ensure_key, security_options, warn_no_auth

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "serve"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@main.command()
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Interface to listen on (0.0.0.0 for every interface; API keys required).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535),
              help="TCP port.")
@click.option("--db", "db", default=None, metavar="PATH",
              help="The memory file (default: the group's --db, env PROCMEM_DB).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]),
              help="uvicorn's log level.")
@security_options
@click.pass_context
def serve(ctx: click.Context, host: str, port: int, db: str | None, log_level: str,
          no_auth: bool, allow_hosts: tuple[str, ...], allow_origins: tuple[str, ...],
          cors_origins: tuple[str, ...], max_body_mb: float) -> None:
    """Serve the REST API (FastAPI) and the web UI (/ui/) over the memory; OpenAPI
    document at /openapi.json.

    Every request needs Authorization: Bearer <key> (procmem keys create); a fresh
    memory gets a key printed at start. docs/security.md has the details.
    """
    try:
        import uvicorn
    except ImportError as err:
        raise MissingExtra("the REST server", "server") from err
    from ..rest.app import create_app

    location = db or ctx.obj["db"]
    if no_auth:
        warn_no_auth(host)
    app = create_app(location, auth=not no_auth, bind_host=host, allow_hosts=allow_hosts,
                     allow_origins=allow_origins, cors_origins=cors_origins,
                     max_body_bytes=int(max_body_mb * 1024 * 1024))
    # the search index and its rank views are made ready now, not on the first request (loaded from
    # the store when saved there, else built: embedding what has no vector yet)
    with progress_bar(True, "embedding procedures for search", lazy=True) as progress:
        app.state.memory.warm_index(progress=progress, views=True)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    click.echo(f"procmem REST API on {base}  docs: {base}/docs  OpenAPI: {base}/openapi.json"
               f"  web UI: {base}/ui/")
    if not no_auth:
        ensure_key(app.state.memory.location,
                   lambda key: f"curl -H 'Authorization: Bearer {key}' {base}/procedures")
    uvicorn.run(app, host=host, port=port, log_level=log_level)
