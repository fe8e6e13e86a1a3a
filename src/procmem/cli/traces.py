"""The ``procmem traces`` commands: list, show and delete stored traces.

They register on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it).

Invariants:
    * Thin adapters over :meth:`procmem.Memory.list_traces`, :meth:`~procmem.Memory.get_trace`,
      :meth:`~procmem.Memory.trace_impact` and :meth:`~procmem.Memory.delete_trace`;
      the JSON shapes are the ones REST answers (:func:`procmem.services.traces.trace_summary`,
      the trace model itself, :func:`procmem.services.traces.deletion_json`).
    * ``traces rm`` deletes only with ``--yes``; without it, it says what the
      deletion would change and refuses with a usage error (exit code 2).
    * Trace values are shown as the JSON they are: an object with a ``$`` key is data.
    * Output is bounded: ``--limit`` is 1-1000; the human view cuts each value
      to :data:`_VALUE_CHARS` characters (``--json`` prints the whole trace).
    * Settings, errors and exit codes are those of :mod:`procmem.cli`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ..core.errors import UsageError
from .app import console, emit, json_option, main, open_memory

if TYPE_CHECKING:
    from rich.console import RenderableType

    from ..core.model import Trace

__all__: list[str] = []

_LIMIT_MAX = 1000
_VALUE_CHARS = 300


@main.group()
def traces() -> None:
    """List, show and delete stored traces."""


@traces.command("list")
@click.option("--limit", default=100, show_default=True,
              type=click.IntRange(1, _LIMIT_MAX), help=f"Maximum traces (1-{_LIMIT_MAX}).")
@click.option("--offset", default=0, show_default=True, type=click.IntRange(0),
              help="Traces to skip.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, limit: int, offset: int, as_json: bool) -> None:
    """List stored traces, oldest first (insertion order)."""
    from rich.table import Table

    from ..services.traces import trace_summary

    rows = [trace_summary(t) for t in open_memory(ctx).list_traces(limit=limit, offset=offset)]
    if as_json:
        emit(rows)
        return
    if not rows:
        click.echo("no traces")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("id", "created", "outcome", "steps", "task"):
        table.add_column(column, overflow="fold" if column == "task" else "ellipsis")
    for row in rows:
        table.add_row(row["id"], row["created_at"][:19].replace("T", " "), row["outcome"],
                      str(row["steps"]), _cut(row["task"], 80))
    console().print(table)


@traces.command("show")
@click.argument("trace_id", metavar="ID")
@json_option
@click.pass_context
def show(ctx: click.Context, trace_id: str, as_json: bool) -> None:
    """Show one trace: its task, outcome and every tool call (args, output, error)."""
    mem = open_memory(ctx)
    trace = mem.get_trace(trace_id)
    if as_json:
        emit(trace.model_dump(mode="json"))
        return
    learned = mem.trace_impact(trace_id).learned_from
    console().print(_trace_view(trace, learned))


@traces.command("rm")
@click.argument("trace_id", metavar="ID")
@click.option("--yes", is_flag=True, help="Confirm: delete the trace for good.")
@json_option
@click.pass_context
def rm(ctx: click.Context, trace_id: str, yes: bool, as_json: bool) -> None:
    """Delete one trace (it needs --yes); says which procedures learned from it.

    Procedure versions are immutable and kept; the next `procmem learn`
    re-induces the trace's group from the traces that remain.
    """
    from ..services.traces import deletion_json

    mem = open_memory(ctx)
    impact = mem.trace_impact(trace_id)  # NotFound (exit 3) before anything else
    if not yes:
        raise UsageError(f"rm deletes trace {trace_id!r} for good. {impact.effect} "
                         "Pass --yes to confirm")
    data = deletion_json(impact, mem.delete_trace(trace_id))
    if as_json:
        emit(data)
        return
    click.echo(f"deleted trace {trace_id}" if data["deleted"] else
               f"trace {trace_id} was already gone")
    for row in data["learned_from"]:
        click.echo(f"  learned from it: {row['name']}@{row['version']} ({row['status']}), kept")
    click.echo(data["effect"])


def _cut(text: str, limit: int = _VALUE_CHARS) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                           sort_keys=True)
    return _cut(" ".join(text.split()))


def _trace_view(trace: Trace, learned: list[dict[str, Any]]) -> RenderableType:
    from rich.console import Group
    from rich.text import Text

    parts: list[RenderableType] = [
        Text(f"trace {trace.id}", style="bold"),
        Text(f"task: {_cut(trace.task)}"),
        Text(f"outcome: {trace.outcome}" + (f", reward {trace.reward:g}"
                                            if trace.reward is not None else "")
             + (f", source {trace.source}" if trace.source else "")
             + f", created {trace.created_at.isoformat(timespec='seconds')}", style="dim"),
    ]
    for i, step in enumerate(trace.steps, 1):
        line = Text(f"{i}. {step.action}", style="red" if step.failed else "bold")
        line.append(f"  args {_value(step.args)}", style="")
        parts.append(line)
        if step.failed:
            parts.append(Text(f"   error: {_value(step.error)}", style="red"))
        elif step.output is not None:
            parts.append(Text(f"   -> {_value(step.output)}", style="dim"))
    if learned:
        names = ", ".join(f"{r['name']}@{r['version']}" for r in learned)
        parts.append(Text(f"learned into: {names}", style="green"))
    return Group(*parts)
