"""The ``procmem executions`` commands (list, show) and ``procmem rename``.

They register on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it).

Invariants:
    * Thin adapters over :meth:`procmem.Memory.list_executions`,
      :meth:`~procmem.Memory.get_execution` and :meth:`~procmem.Memory.rename`.
      ``--json`` prints the shapes REST answers: ``GET /executions[/{id}]`` and
      ``POST /procedures/{name}/rename`` (:class:`~procmem.core.model.Execution` and
      :class:`~procmem.core.model.Procedure` dumped with ``mode="json"``).
    * ``executions list`` is newest first; ``--status`` filters before
      ``--limit``/``--offset`` page. Read commands never create a store.
    * Settings, errors and exit codes are those of :mod:`procmem.cli.app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .app import console, emit, json_option, main, note_renamed, open_memory

if TYPE_CHECKING:
    from ..core.model import Execution
    from ..memory import Memory

__all__: list[str] = []

_LIMIT_MAX = 1000
_STATUSES = ("running", "paused", "succeeded", "failed")


@main.group()
def executions() -> None:
    """List and show executions (replays and client-driven runs)."""


def _page(mem: Memory, procedure: str | None, status: str | None, limit: int,
          offset: int) -> list[Execution]:
    """Executions newest first, filtered by ``status`` before paging."""
    if status is None:
        return mem.list_executions(procedure=procedure, limit=limit, offset=offset)
    kept: list[Execution] = []
    read = 0
    while len(kept) < offset + limit:
        page = mem.list_executions(procedure=procedure, limit=_LIMIT_MAX, offset=read)
        read += len(page)
        kept.extend(e for e in page if e.status == status)
        if len(page) < _LIMIT_MAX:
            break
    return kept[offset:offset + limit]


@executions.command("list")
@click.option("--procedure", metavar="NAME", help="Only executions of this procedure.")
@click.option("--status", type=click.Choice(_STATUSES), help="Only executions with this status.")
@click.option("--limit", default=100, show_default=True,
              type=click.IntRange(1, _LIMIT_MAX), help=f"Maximum executions (1-{_LIMIT_MAX}).")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0),
              help="Executions to skip.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, procedure: str | None, status: str | None, limit: int,
             offset: int, as_json: bool) -> None:
    """List executions, newest first."""
    from rich.table import Table

    mem = open_memory(ctx)
    if procedure is not None:
        procedure = note_renamed(mem, procedure)
    rows = _page(mem, procedure, status, limit, offset)
    if as_json:
        emit([e.model_dump(mode="json") for e in rows])
        return
    if not rows:
        click.echo("no executions")
        return
    table = Table(box=None, pad_edge=False)
    table.add_column("id", no_wrap=True, min_width=max(len(e.id) for e in rows))
    for column in ("started", "status", "procedure", "steps", "ms", "task"):
        table.add_column(column, overflow="fold")
    for e in rows:
        table.add_row(e.id, e.started_at.isoformat(timespec="minutes")[:16].replace("T", " "),
                      e.status, f"{e.procedure}@{e.version}", str(len(e.step_runs)),
                      f"{e.duration_ms:.0f}", _cut(e.task or "", 60))
    console().print(table)


@executions.command("show")
@click.argument("execution_id", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, execution_id: str, as_json: bool) -> None:
    """Show one execution: its steps, bound args, results and open needs."""
    from . import render

    ex = open_memory(ctx).get_execution(execution_id)
    if as_json:
        emit(ex.model_dump(mode="json"))
        return
    out = console()
    out.print(render.execution_view(ex))
    if ex.status == "paused":
        out.print(render.needs_view(ex.needs, f"procmem resume {ex.id} --tools MODULE:OBJECT "
                                              "--answers JSON"))


@main.command()
@click.argument("old")
@click.argument("new")
@json_option
@click.pass_context
def rename(ctx: click.Context, old: str, new: str, as_json: bool) -> None:
    """Rename procedure OLD to NEW, keeping its versions, lineage, runs and statistics.

    OLD stays an alias: commands given OLD use NEW (with a note on stderr), and
    learning that induces OLD again adds a version of NEW. A new procedure may
    not take OLD (rename NEW back instead). NEW must be free (exit 4 if taken).
    """
    proc = open_memory(ctx).rename(old, new)
    if as_json:
        emit(proc.model_dump(mode="json"))
        return
    click.echo(f"renamed {old} to {proc.name} (current version {proc.version}); "
               f"{old} now resolves to {proc.name}")


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
