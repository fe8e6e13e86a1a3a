"""``procmem migrate``: show the schema migrations a store lacks, then apply them.

Opening a store applies what it lacks anyway (under a lock, once for every process
that starts together); this command makes it a visible deploy step, e.g. before
rolling out new ``procmem serve`` replicas on PostgreSQL (docs/postgres.md).

Invariants:
    * ``--dry-run`` changes nothing: the pending list is read without opening the
      store (:func:`procmem.store.pending_migrations`).
    * Without it, the store is opened once (which applies every pending migration,
      each in its own transaction) and the list is read again: what was pending and
      is no more is reported as applied; anything still pending is an error.
    * ``--json`` prints ``{"location", "tenant", "pending", "applied"}`` (lists of
      ``{"version", "name"}``).
"""

from __future__ import annotations

from typing import Any

import click

from .app import emit, fail, json_option, main

__all__ = ["migrate"]


@main.command()
@click.option("--dry-run", is_flag=True, help="Only list what is pending; change nothing.")
@json_option
@click.pass_context
def migrate(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Apply the schema migrations the store at --db lacks (SQLite or PostgreSQL).

    Lists what is pending, applies it (each migration in its own transaction), and
    says what was applied. Opening a store migrates it too; run this as a deploy
    step to see and do it first.
    """
    from ..security.keys import DEFAULT_TENANT
    from ..store import open_store, pending_migrations
    from ..store.copy import shown_location

    location, tenant = str(ctx.obj["db"]), ctx.obj.get("tenant") or DEFAULT_TENANT
    before = pending_migrations(location, tenant=tenant)
    applied: list[Any] = []
    if before and not dry_run:
        open_store(location, tenant=tenant).close()
        after = {m.version for m in pending_migrations(location, tenant=tenant)}
        if after:
            fail("store_error", f"migrations still pending after opening the store: "
                 f"{sorted(after)}", 1)
        applied = before
    report = {"location": shown_location(location), "tenant": tenant,
              "pending": [] if applied else _rows(before), "applied": _rows(applied)}
    if as_json:
        emit(report)
        return
    where = f"{report['location']} (tenant {tenant})"
    if applied:
        click.echo(f"{where}: applied {len(applied)} migration(s)")
    elif before:
        click.echo(f"{where}: {len(before)} migration(s) pending (--dry-run: none applied)")
    else:
        click.echo(f"{where}: the schema is current")
    for m in applied or before:
        click.echo(f"  {m.name}")


def _rows(migrations: list[Any]) -> list[dict[str, Any]]:
    return [{"version": m.version, "name": m.name} for m in migrations]
