"""Rich rendering for the learning commands: stats, report, optimize, history, diff, decay.

Every function here turns statistics, reports and histories into a rich
renderable; the commands in :mod:`procmem.cli.learning` decide what to print.

Invariants:
    * Nothing here opens a store, reads the environment or decides exit codes.
    * Names, reasons and diff lines are wrapped in :class:`rich.text.Text`, never
      parsed as console markup.
    * A flag always looks the same wherever it appears (:data:`FLAGS`): problems
      in red, warnings in yellow, ``pinned`` in cyan; the legend under a table
      explains only the flags shown in it.
    * Durations are milliseconds in the data and shown as ``ms`` or ``s``; times
      are UTC and shown relative to ``now``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..learning.stats import StepStats, VersionStats

__all__ = [
    "FLAGS",
    "ago",
    "decay_view",
    "diff_text",
    "duration",
    "flags_legend",
    "flags_text",
    "history_table",
    "optimize_view",
    "reliability_text",
    "report_view",
    "stats_table",
    "steps_table",
]

FLAGS: dict[str, tuple[str, str]] = {
    "failing": ("bold red", "3+ failed or skipped runs, at least half of its runs"),
    "unreliable": ("bold red", "95% upper bound of reliability below 0.5 (5+ judged runs)"),
    "has-failing-steps": ("red", "a step is failing (see `procmem stats NAME`)"),
    "slow": ("yellow", "p95 is at least half the procedure's p95, or p50 doubled recently"),
    "has-slow-steps": ("yellow", "a step is slow (see `procmem stats NAME`)"),
    "unused": ("magenta", "not run for `unused_days` (30 by default)"),
    "pinned": ("cyan", "exempt from decay (`procmem unpin NAME` to undo)"),
}
"""Every flag with its style and what it means, in display order."""

_STATUS_STYLE = {"active": "green", "candidate": "yellow", "deprecated": "dim"}
_DIFF_STYLE = {"+": "green", "-": "red", "~": "yellow"}


def duration(ms: float | None) -> str:
    """Milliseconds as a short number: ``0.42``, ``12.3``, ``250``, ``1500``; ``—`` for none."""
    if ms is None:
        return "—"
    if ms < 10:
        return f"{ms:.2f}"
    if ms < 100:
        return f"{ms:.1f}"
    return f"{ms:.0f}"


def _p50_p95(p50: float | None, p95: float | None) -> str:
    if p50 is None:
        return "—"
    return f"{duration(p50)}/{duration(p95)}"


def ago(when: datetime | None, now: datetime) -> str:
    """How long before ``now``, short: ``now``, ``5m ago``, ``3h ago``, ``12d ago``, ``never``."""
    if when is None:
        return "never"
    seconds = (now - when).total_seconds()
    if seconds < 60:
        return "now"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h ago"
    return f"{seconds / 86400:.0f}d ago"


def flags_text(flags: Iterable[str], *, pinned: bool = False) -> Text:
    """Flags as colored words, most serious first; ``pinned`` last."""
    shown = [f for f in FLAGS if f in set(flags) | ({"pinned"} if pinned else set())]
    shown += sorted(set(flags) - set(FLAGS))
    out = Text()
    for i, flag in enumerate(shown):
        out.append(" " if i else "")
        out.append(flag, style=FLAGS.get(flag, ("bold", ""))[0])
    return out


def flags_legend(flags: Iterable[str]) -> Text | None:
    """One dim line per flag in ``flags`` saying what it means; None when there are none."""
    present = set(flags)
    lines = [(f, meaning) for f, (_, meaning) in FLAGS.items() if f in present]
    if not lines:
        return None
    out = Text()
    for i, (flag, meaning) in enumerate(lines):
        out.append("\n" if i else "")
        out.append(flag, style=FLAGS[flag][0])
        out.append(f": {meaning}", style="dim")
    return out


def reliability_text(mean: float, lower: float, upper: float, judged: int) -> Text:
    """``0.83 [0.61–0.96]``: posterior mean and 5 %/95 % bounds, colored by how it stands.

    Dim when no run has been judged (the prior), red when the mean or the
    upper bound is below 0.5, green when the mean is 0.8 or more, else yellow.
    """
    if judged == 0:
        style = "dim"
    elif mean < 0.5 or upper < 0.5:
        style = "red"
    elif mean >= 0.8:
        style = "green"
    else:
        style = "yellow"
    out = Text(f"{mean:.2f}", style=f"bold {style}" if style != "dim" else style)
    out.append(f" [{lower:.2f}–{upper:.2f}]", style="dim")
    return out


def _status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLE.get(status, ""))


def _counts(ok: int, failed: int) -> tuple[Text, Text]:
    return (Text(str(ok), style="green" if ok else "dim"),
            Text(str(failed), style="red" if failed else "dim"))


# ---------------------------------------------------------------------- stats


def _table(title: str | None, caption: str | None = None) -> Table:
    return Table(title=title, title_justify="left", caption=caption, caption_justify="left",
                 box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)


def stats_table(stats: Sequence[VersionStats], *, now: datetime, title: str | None = None,
                current: int | None = None, width: int = 120) -> Table:
    """One row per procedure version: runs, judged ok/failed, reliability, timings, flags.

    Args:
        stats: The rows, in display order.
        now: The current time (UTC), for "last run".
        title: Table title.
        current: Mark this version as the current one (the one-procedure view);
            ``None`` to show procedure names instead (the all-procedures view).
        width: The console width; below 100 columns (90 without names) the
            timing and last-run columns are left out so that flags stay visible.
    """
    timings = width >= (100 if current is None else 90)
    table = _table(title, "✓/✗: runs judged by evidence to have succeeded/failed (a run a "
                          "tool failed counts as failed); reliability: posterior mean of "
                          "success [5%–95%]"
                   + ("" if timings else "; timings: a wider terminal or --json"))
    if current is None:
        table.add_column("procedure", style="bold", overflow="fold")
    table.add_column("v", justify="right", no_wrap=True)
    table.add_column("status")
    table.add_column("runs", justify="right")
    table.add_column("✓/✗", justify="right")
    table.add_column("reliability")
    if timings:
        table.add_column("p50/p95\nms", justify="right")
        table.add_column("last\nrun")
    table.add_column("flags")
    for st in stats:
        ok, failed = _counts(st.successes, st.failures)
        judged = ok.append("/", style="dim").append_text(failed)
        version = Text(str(st.version))
        if current is not None and st.version == current:
            version = Text(f"▶ {st.version}", style="bold")
        row: list[Any] = [] if current is not None else [Text(st.name)]
        row += [version, _status_text(st.status), str(st.runs), judged,
                reliability_text(st.reliability, st.reliability_lower, st.reliability_upper,
                                 st.successes + st.failures)]
        if timings:
            row += [_p50_p95(st.p50_ms, st.p95_ms), ago(st.last_run_at, now)]
        row.append(flags_text(st.flags, pinned=st.pinned))
        table.add_row(*row)
    return table


def _errors_text(step: StepStats) -> Text:
    if not step.errors:
        return Text("—", style="dim")
    out = Text()
    for i, (kind, n) in enumerate(sorted(step.errors.items(), key=lambda kv: -kv[1])):
        out.append(", " if i else "")
        out.append(f"{kind} ×{n}", style="red")
    return out


def steps_table(stats: VersionStats) -> Table:
    """The steps of one version: runs, ok, failed, skipped, errors by kind, timings, flags."""
    table = _table(f"steps of {stats.name} v{stats.version}")
    table.add_column("step", style="bold")
    table.add_column("action", style="blue", overflow="fold")
    for col in ("runs", "ok", "fail", "skip"):
        table.add_column(col, justify="right")
    table.add_column("errors by kind", overflow="fold")
    table.add_column("p50/p95 ms", justify="right")
    table.add_column("flags")
    for step in stats.steps:
        ok, failed = _counts(step.successes, step.failures)
        skipped = Text(str(step.skipped), style="yellow" if step.skipped else "dim")
        table.add_row(step.step_id, Text(step.action), str(step.runs), ok, failed, skipped,
                      _errors_text(step), _p50_p95(step.p50_ms, step.p95_ms),
                      flags_text(step.flags))
    return table


# --------------------------------------------------------------------- report


def report_view(data: Mapping[str, Any]) -> RenderableType:
    """What ``procmem report`` did: the evidence, reliability before → after, status changes.

    ``data`` is the command's JSON record (see :func:`procmem.cli.learning.report`).
    """
    ev = data["evidence"]
    head = Text("evidence stored: ", style="bold")
    head.append(f"reward {ev['reward']:.2f}", style="bold")
    head.append(f" from {ev['source']} about execution {ev['execution_id']}")
    parts: list[RenderableType] = [head]
    if ev.get("note"):
        parts.append(Text(f"note: {ev['note']}", style="dim"))
    if ev["source"] == "agent":
        parts.append(Text("agent evidence is kept but can only lower reliability, "
                          "never raise it", style="dim"))
    before, after = data.get("before"), data.get("after")
    if after is not None:
        line = Text(f"reliability of {data['procedure']} v{after['version']}: ")
        if before is not None:
            line.append_text(reliability_text(before["reliability"], before["reliability_lower"],
                                              before["reliability_upper"],
                                              before["successes"] + before["failures"]))
            line.append(" → ")
        line.append_text(reliability_text(after["reliability"], after["reliability_lower"],
                                          after["reliability_upper"],
                                          after["successes"] + after["failures"]))
        line.append(f"  ({after['successes']} ok, {after['failures']} failed "
                    f"of {after['runs']} run(s))", style="dim")
        parts.append(line)
    else:
        parts.append(Text(f"procedure {data['procedure']!r} no longer exists", style="dim"))
    for change in data["changes"]:
        style = {"promoted": "bold green", "demoted": "bold red"}.get(change["change"], "yellow")
        line = Text(f"{change['change']}: ", style=style)
        line.append(f"{change['name']} v{change['version']} {change['from']} → {change['to']}")
        if change.get("reason"):
            line.append(f"  ({change['reason']})", style="dim")
        parts.append(line)
    if not data["changes"]:
        parts.append(Text("no version was promoted or demoted", style="dim"))
    return Group(*parts)


# ------------------------------------------------------------------- optimize


def diff_text(lines: Sequence[str]) -> Text:
    """Diff lines colored by their first character: ``+`` green, ``-`` red, ``~`` yellow."""
    out = Text()
    for i, line in enumerate(lines):
        out.append("\n" if i else "")
        out.append(line, style=_DIFF_STYLE.get(line[:1], ""))
    return out


def optimize_view(data: Mapping[str, Any]) -> RenderableType:
    """What ``procmem optimize`` did: candidates created (with their diffs), rejected, extra.

    ``data`` is the command's JSON record (see :func:`procmem.cli.learning.optimize`).
    """
    created, rejected, extra = data["created"], data["rejected"], data["extra"]
    if not (created or rejected or extra):
        return Text("no candidates: nothing to repair, prune, merge or factor")
    parts: list[RenderableType] = []
    if created:
        table = _table(f"{len(created)} candidate(s) created, each verified against recorded runs")
        table.title_style = "bold green"
        table.add_column("procedure", style="bold", overflow="fold")
        table.add_column("v", justify="right")
        table.add_column("kind")
        table.add_column("status")
        table.add_column("reproduced", justify="right")
        table.add_column("reason", overflow="fold")
        for c in created:
            table.add_row(Text(c["name"]), str(c["version"]), c["kind"],
                          _status_text(c["status"]), f"{len(c['reproduced'])} run(s)",
                          Text(c["reason"]))
        parts.append(table)
    if rejected:
        table = _table(f"{len(rejected)} candidate(s) rejected: did not reproduce the runs "
                       "they cover (not stored)")
        table.title_style = "bold red"
        table.add_column("procedure", style="bold", overflow="fold")
        table.add_column("kind")
        table.add_column("reason", overflow="fold")
        table.add_column("why rejected", style="red", overflow="fold")
        for r in rejected:
            table.add_row(Text(r["name"]), r["kind"], Text(r["reason"]), Text(r["why"]))
        parts.append(table)
    if extra:
        parts.append(Text("sub-procedures created: " + ", ".join(extra), style="green"))
    for c in created:
        head = Text(f"\n{c['name']} ", style="bold")
        if c.get("parent_version") is not None:
            head.append(f"v{c['parent_version']} → v{c['version']}", style="bold")
        else:
            head.append(f"v{c['version']} (no parent version to compare)", style="dim")
        parts.append(head)
        lines = c.get("diff") or []
        parts.append(diff_text(lines) if lines else Text("(same steps and params)", style="dim"))
    if created:
        parts.append(Text("\ncandidates compete with the active version on the next replays "
                          "and are promoted or demoted by evidence (`procmem report`)",
                          style="dim"))
    return Group(*parts)


# -------------------------------------------------------------------- history


def _verified_text(record: Mapping[str, Any] | None) -> Text:
    if record is None:
        return Text("—", style="dim")
    if record.get("ok"):
        return Text(f"✓ {len(record.get('reproduced', []))} run(s)", style="green")
    return Text(f"✗ {len(record.get('failed', {}))} failed", style="red")


def history_table(name: str, rows: Sequence[Mapping[str, Any]], *, now: datetime) -> Table:
    """Every version of ``name`` (rows from :meth:`procmem.Memory.history`), oldest first."""
    table = _table(f"history of {name} (▶ current)")
    table.add_column("v", justify="right")
    table.add_column("status")
    table.add_column("created")
    table.add_column("parent", justify="right")
    table.add_column("steps", justify="right")
    table.add_column("runs", justify="right")
    table.add_column("reliability", justify="right")
    table.add_column("verified")
    table.add_column("reason", ratio=1)
    for row in rows:
        version = Text(f"▶ {row['version']}" if row["current"] else str(row["version"]),
                       style="bold" if row["current"] else "")
        status = _status_text(row["status"])
        created = ago(datetime.fromisoformat(row["created_at"]), now)
        parent = "—" if row["parent_version"] is None else f"v{row['parent_version']}"
        table.add_row(version, status, created, parent, str(row["steps"]), str(row["runs"]),
                      f"{row['reliability']:.2f}", _verified_text(row["verification"]),
                      Text(row["reason"] or "learned from demonstrations", style=""
                           if row["reason"] else "dim"))
    return table


# ---------------------------------------------------------------------- decay


def decay_view(rows: Sequence[Mapping[str, Any]]) -> RenderableType:
    """The procedures ``procmem decay`` deprecated, and how to undo it."""
    if not rows:
        return Text("nothing to deprecate")
    head = Text(f"{len(rows)} procedure(s) deprecated (out of search, not deleted)",
                style="bold yellow")
    table = _table(None)
    table.add_column("procedure", style="bold", overflow="fold")
    table.add_column("v", justify="right")
    table.add_column("why")
    for row in rows:
        table.add_row(Text(row["name"]), str(row["version"]),
                      Text(row["why"], style=FLAGS.get(row["why"], ("", ""))[0]))
    hint = Text("bring one back with `procmem rollback NAME VERSION`; "
                "exempt one with `procmem pin NAME`", style="dim")
    return Group(head, table, hint)

