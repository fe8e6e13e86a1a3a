"""The learning commands of the ``procmem`` CLI: stats, report, optimize, history,
diff, rollback, pin, unpin, decay, delete.

They register on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it); rendering lives in :mod:`procmem.cli.render_learning`.

Invariants:
    * Thin adapters over the learning methods of :class:`procmem.Memory`; the
      settings, error handling and exit codes are those of :mod:`procmem.cli`.
    * Every command that reads or reports takes ``--json`` and then prints plain
      JSON on stdout only: ``stats`` dumps :class:`~procmem.learning.stats.VersionStats`
      models (mode ``json``), ``history`` the rows of :meth:`procmem.Memory.history`.
    * ``delete`` is the only command that deletes, and only with ``--yes``;
      without it, it refuses with a usage error (exit code 2) and deletes nothing.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click

from ..core.errors import NotFound, UsageError
from .app import console, emit, json_option, main, open_memory

if TYPE_CHECKING:
    from ..learning.stats import VersionStats
    from ..memory import Memory

__all__ = ["SOURCES"]

SOURCES = ("environment", "test", "user", "agent")
"""Where evidence comes from; only the first three can raise reliability."""

_NAME = click.argument("name")


def _legend(flags: set[str]) -> None:
    from . import render_learning as render

    legend = render.flags_legend(flags)
    if legend is not None:
        console().print(legend)


def _flags(stats: list[VersionStats], *, steps: bool = False) -> set[str]:
    flags = {f for s in stats for f in s.flags} | ({"pinned"} if any(s.pinned for s in stats)
                                                  else set())
    if steps:
        flags |= {f for s in stats for step in s.steps for f in step.flags}
    return flags


@main.command()
@click.argument("name", required=False)
@json_option
@click.pass_context
def stats(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Reliability, runs, timings and flags of every procedure (current versions).

    With NAME: every version of NAME, then each step of its current version
    (runs, failures by error kind, p50/p95 duration, flags such as slow or failing).
    """
    from ..core.model import utcnow
    from . import render_learning as render

    mem = open_memory(ctx)
    rows = mem.stats(name)
    if as_json:
        emit([s.model_dump(mode="json") for s in rows])
        return
    now, out = utcnow(), console()
    if name is None:
        if not rows:
            click.echo("no procedures yet: learn some with `procmem learn FILE.jsonl`")
            return
        out.print(render.stats_table(rows, now=now, width=out.width,
                                     title=f"{len(rows)} procedure(s), current versions "
                                           "(`procmem stats NAME` for steps)"))
        _legend(_flags(rows))
        return
    current = mem.get_procedure(name).version
    out.print(render.stats_table(rows, now=now, current=current, width=out.width,
                                 title=f"{name}: {len(rows)} version(s) (▶ current)"))
    cur = next(s for s in rows if s.version == current)
    out.print(render.steps_table(cur))
    _legend(_flags(rows) | _flags([cur], steps=True))


def _headline(mem: Memory, name: str, version: int) -> dict[str, Any] | None:
    try:
        st = mem.version_stats(name, version)
    except NotFound:
        return None
    return st.model_dump(include={"version", "runs", "successes", "failures", "evidence",
                                  "reliability", "reliability_lower", "reliability_upper"})


@main.command()
@click.argument("execution_id")
@click.option("--reward", type=float, required=True, metavar="R",
              help="How well the task was done, 0-1 (1: done, 0: not done).")
@click.option("--source", type=click.Choice(SOURCES), default="user", show_default=True,
              help="Who judged it; agent evidence can only lower reliability.")
@click.option("--note", default="", help="Free text kept with the evidence.")
@json_option
@click.pass_context
def report(ctx: click.Context, execution_id: str, reward: float, source: str, note: str,
           as_json: bool) -> None:
    """Report how execution EXECUTION_ID went (evidence), then review its procedure.

    Reliability moves on evidence; a candidate competing with the active
    version may be promoted or demoted by it. Prints what changed.
    """
    from ..formats.serialize import report_record
    from . import render_learning as render

    mem = open_memory(ctx)
    ex = mem.get_execution(execution_id)
    before = _headline(mem, ex.procedure, ex.version)
    data = report_record(mem.report(execution_id, reward=reward, source=source, note=note))
    data.update(procedure=ex.procedure, version=ex.version, before=before,
                after=_headline(mem, ex.procedure, ex.version))
    if as_json:
        emit(data)
        return
    console().print(render.report_view(data))


@main.command()
@click.argument("name", required=False)
@json_option
@click.pass_context
def optimize(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Propose, verify and store candidate versions (repair, prune, merge, factor).

    Each candidate must reproduce the recorded runs it covers (replayed without
    side effects) to be stored; it then competes with the active version until
    evidence promotes or demotes it. With NAME, only that procedure is repaired
    or pruned (merge and factor still look at all procedures).
    """
    from . import render_learning as render

    mem = open_memory(ctx)
    if name is not None:
        mem.list_versions(name)  # NotFound before doing anything
    data = asdict(mem.optimize(name))
    for c in data["created"]:
        parent = mem.get_procedure(c["name"], c["version"]).lineage.parent_version
        try:
            lines = mem.diff(c["name"], parent, c["version"]) if parent is not None else []
        except NotFound:
            parent, lines = None, []
        c.update(parent_version=parent, diff=lines)
    if as_json:
        emit(data)
        return
    console().print(render.optimize_view(data))


@main.command()
@_NAME
@json_option
@click.pass_context
def history(ctx: click.Context, name: str, as_json: bool) -> None:
    """Every version of NAME: status, origin, verification, runs and reliability."""
    from ..core.model import utcnow
    from . import render_learning as render

    rows = open_memory(ctx).history(name)
    if as_json:
        emit(rows)
        return
    console().print(render.history_table(name, rows, now=utcnow()))


@main.command()
@_NAME
@click.argument("v1", type=click.IntRange(min=1))
@click.argument("v2", type=click.IntRange(min=1))
@json_option
@click.pass_context
def diff(ctx: click.Context, name: str, v1: int, v2: int, as_json: bool) -> None:
    """What changed from version V1 to V2 of NAME (+ added, - removed, ~ changed)."""
    from . import render_learning as render

    lines = open_memory(ctx).diff(name, v1, v2)
    if as_json:
        emit({"name": name, "from": v1, "to": v2, "lines": lines})
        return
    if not lines:
        click.echo(f"{name}: v{v1} and v{v2} have the same steps and params")
        return
    out = console()
    out.print(f"[bold]{name}[/] v{v1} → v{v2}")
    out.print(render.diff_text(lines))


@main.command()
@_NAME
@click.argument("version", type=click.IntRange(min=1))
@json_option
@click.pass_context
def rollback(ctx: click.Context, name: str, version: int, as_json: bool) -> None:
    """Make VERSION of NAME current again, as a new version with its exact content."""
    restored = open_memory(ctx).rollback(name, version)
    if as_json:
        emit({"name": name, "version": restored.version, "restores": version,
               "status": restored.status})
        return
    click.echo(f"{name} v{restored.version} is now current: it restores v{version} "
               "(same steps and params)")


@main.command()
@_NAME
@click.pass_context
def pin(ctx: click.Context, name: str) -> None:
    """Pin NAME: it never decays (is never deprecated by `procmem decay`)."""
    open_memory(ctx).pin(name)
    click.echo(f"pinned {name}: exempt from decay (`procmem unpin {name}` to undo)")


@main.command()
@_NAME
@click.pass_context
def unpin(ctx: click.Context, name: str) -> None:
    """Unpin NAME: it decays again when unused or unreliable."""
    open_memory(ctx).pin(name, False)
    click.echo(f"unpinned {name}: `procmem decay` may deprecate it when unused or unreliable")


@main.command()
@json_option
@click.pass_context
def decay(ctx: click.Context, as_json: bool) -> None:
    """Deprecate unused or unreliable procedures (pinned ones are exempt).

    Deprecated procedures leave search; nothing is deleted.
    """
    from . import render_learning as render

    rows = open_memory(ctx).decay()
    if as_json:
        emit(rows)
        return
    console().print(render.decay_view(rows))


@main.command()
@_NAME
@click.option("--yes", is_flag=True, help="Confirm: delete every version of NAME for good.")
@click.pass_context
def delete(ctx: click.Context, name: str, yes: bool) -> None:
    """Delete every version of NAME (its executions and evidence are kept).

    The only command that deletes; it needs --yes. `procmem decay` only
    deprecates (takes out of search) and `procmem rollback` restores.
    """
    mem = open_memory(ctx)
    versions = mem.list_versions(name)
    if not yes:
        raise UsageError(f"delete removes all {len(versions)} version(s) of {name!r} for good "
                         "(executions and evidence are kept); pass --yes to confirm")
    mem.delete_procedure(name)
    click.echo(f"deleted {name} ({len(versions)} version(s)); its executions and evidence "
               "are kept")
