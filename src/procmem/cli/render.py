"""Rich rendering for the ``procmem`` CLI: procedures, hits, executions, figures.

Every function here turns procmem objects into a rich renderable; the commands
in the command modules of :mod:`procmem.cli` decide what to print and where.

Invariants:
    * Nothing here opens a store, reads the environment or decides exit codes.
    * Data from traces and procedures is always wrapped in :class:`rich.text.Text`,
      never parsed as console markup (task texts are full of ``[`` and ``{``).
    * Values are shown as compact JSON, truncated with ``…`` to a given width.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from ..core.model import Execution, Hit, Need, Procedure, StepRun
from ..core.template import is_ref, join_pointer

__all__ = [
    "FIGURES",
    "PLACEHOLDER",
    "answers_template",
    "execution_view",
    "figures_table",
    "hits_evidence",
    "hits_table",
    "learn_view",
    "needs_view",
    "procedure_view",
    "procedures_table",
    "short",
    "source_text",
    "task_panel",
    "template_text",
]

FIGURES: dict[str, str] = {
    "train_traces": "traces learned from",
    "procedures": "procedures learned",
    "test_traces": "held-out traces searched and replayed",
    "findable": "held-out traces whose action sequence was learned",
    "hit_at_1": "top hit has the held-out trace's action sequence",
    "hit_at_5": "such a hit is among the top 5",
    "mrr": "mean reciprocal rank of that hit",
    "replay_exact": "replay issued exactly the recorded calls",
    "automation": "argument values not supplied by the oracle",
    "retriever": "first stage of search (bm25, vector, or hybrid: both fused by their scores)",
    "reranker": "language model that reordered the top hits (none when empty)",
    "abstain_unfindable": "of the held-out traces with no learned procedure: no confident hit",
    "confident_findable": "of the others: the top hit is confident",
    "confident_correct": "... confident and correct",
    "seconds": "wall time",
}
"""The eval figures in display order, with what each one means."""

_STATUS_STYLE = {"succeeded": "green", "failed": "red", "paused": "yellow",
                 "running": "blue", "skipped": "dim"}
_STATUS_MARK = {"succeeded": "✓", "failed": "✗", "paused": "⏸", "running": "…", "skipped": "↷"}


def short(value: Any, width: int = 80) -> str:
    """``value`` as one line of compact JSON (strings as they are), cut to ``width`` chars."""
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _status(status: str) -> Text:
    return Text(f"{_STATUS_MARK.get(status, '')} {status}".strip(),
                style=_STATUS_STYLE.get(status, ""))


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f} ms"


# ------------------------------------------------------------------ templates


def template_text(node: Any) -> Text:
    """An args template as readable text: references as ``⟨…⟩``, literals as JSON.

    ``{"$param": "order_id"}`` -> ``⟨param order_id⟩``; ``{"$step": "s1", "path":
    "/id"}`` -> ``⟨s1 output /id⟩``; ``{"$ask": "which item"}`` -> ``⟨ask: which item⟩``;
    a ``$select`` -> ``⟨s1 output /items where /item_id=⟨param item_id⟩ → /product_id⟩``.
    """
    if is_ref(node):
        if "$param" in node:
            return Text(f"⟨param {node['$param']}⟩", style="cyan")
        if "$step" in node:
            return Text(f"⟨{node['$step']} output {node.get('path') or '/'}⟩", style="magenta")
        if "$select" in node:
            src = node["$select"]
            where = ", ".join(
                f"{p.get('path')}{' ∋ ' if 'contains' in p else '='}"
                f"{template_text(p.get('contains', p.get('equals'))).plain}"
                for p in node.get("where") or [] if isinstance(p, dict))
            return Text(f"⟨{src.get('$step')} output {src.get('path') or '/'} where "
                        f"{where or '(any)'} → {node.get('get') or '/'}⟩", style="magenta")
        if "$ask" in node:
            out = Text(f"⟨ask: {node['$ask']}", style="yellow")
            if isinstance(node.get("from"), dict):
                out.append(" — choose from ", style="yellow")
                out.append_text(template_text(node["from"]))
            out.append("⟩", style="yellow")
            return out
        return Text(_json(node.get("$literal")))
    if isinstance(node, dict):
        out = Text("{")
        for i, (key, value) in enumerate(node.items()):
            out.append((", " if i else "") + f"{_json(key)}: ")
            out.append_text(template_text(value))
        return out.append("}")
    if isinstance(node, list):
        out = Text("[")
        for i, value in enumerate(node):
            out.append(", " if i else "")
            out.append_text(template_text(value))
        return out.append("]")
    return Text(_json(node))


def _extractor_text(proc: Procedure, name: str) -> Text:
    p = proc.param(name)
    if p is None or p.extractor is None:
        return Text("—", style="dim")
    ex = p.extractor
    out = Text(ex.before, style="dim")
    out.append(f"⟪{ex.pattern}⟫", style="bold cyan")
    out.append(ex.after, style="dim")
    return out


# ----------------------------------------------------------------- procedures


def procedures_table(procs: Sequence[Procedure], *, title: str | None = None,
                     examples: bool = True) -> Table:
    """One row per procedure: name, version, status, demonstrations, steps, params."""
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    table.add_column("procedure", style="bold", overflow="fold")
    table.add_column("v", justify="right")
    table.add_column("demos", justify="right")
    table.add_column("steps", overflow="fold")
    table.add_column("params" + (" (an example each)" if examples else ""), overflow="fold")
    for proc in procs:
        params = Text()
        for i, p in enumerate(proc.params):
            params.append(("\n" if examples else ", ") if i else "")
            params.append(p.name, style="cyan")
            if examples and p.examples:
                params.append(" = " + short(p.examples[0], 40), style="dim")
        steps = Text(" → ".join(s.action for s in proc.steps))
        version = Text(str(proc.version))
        if proc.status != "active":
            version.append(f" {proc.status}", style="dim")
        table.add_row(Text(proc.name), version, str(len(proc.lineage.traces)), steps, params)
    return table


def procedure_view(proc: Procedure) -> RenderableType:
    """Everything about one procedure version: params, steps, lineage, statistics."""
    head = Text(proc.key, style="bold")
    head.append(f"  [{proc.status}]", style="green" if proc.status == "active" else "yellow")
    if proc.tags:
        head.append("  tags: " + ", ".join(proc.tags), style="dim")
    parts: list[RenderableType] = [head]
    if proc.description:
        parts.append(Text(proc.description))
    if proc.params:
        table = Table(title="params", title_justify="left")
        table.add_column("name", style="cyan")
        table.add_column("type")
        table.add_column("examples", overflow="fold")
        table.add_column("found in a task by (before ⟪value⟫ after)", overflow="fold")
        for p in proc.params:
            kind = str(p.schema_.get("type", "any")) + ("" if p.required else "?")
            examples = ", ".join(short(e, 30) for e in p.examples[:3]) or "—"
            table.add_row(p.name, kind, examples, _extractor_text(proc, p.name))
        parts.append(table)
    tree = Tree(Text("steps", style="bold"))
    for step in proc.steps:
        label = Text(f"{step.id}  ", style="bold")
        label.append(step.action, style="bold blue")
        if step.on_error.policy != "stop":
            label.append(f"  on_error={step.on_error.policy}", style="dim")
        if step.side_effect is not None:
            label.append("  side effect" if step.side_effect else "  read-only", style="dim")
        if step.optional:
            label.append("  optional", style="yellow")
        if step.choice is not None:
            label.append(f"  alternative {step.option} of {step.choice}", style="yellow")
        node = tree.add(label)
        if is_ref(step.args):  # args that are one node: data escaped whole, or a reference
            node.add(Text("args = ").append_text(template_text(step.args)))
        else:
            for key, value in step.args.items():
                node.add(Text(f"{key} = ").append_text(template_text(value)))
        for check in step.expect:
            node.add(Text(f"expect {check.op} {check.path or '/'} {short(check.value, 40)}",
                          style="dim"))
    parts.append(tree)
    lineage = Text(f"lineage: learned from {len(proc.lineage.traces)} demonstration(s)",
                   style="dim")
    if proc.lineage.traces:
        shown = ", ".join(proc.lineage.traces[:5])
        more = len(proc.lineage.traces) - 5
        lineage.append(f" ({shown}{f', … +{more}' if more > 0 else ''})", style="dim")
    if proc.lineage.parent_version:
        lineage.append(f"; parent v{proc.lineage.parent_version}", style="dim")
    if proc.lineage.reason:
        lineage.append(f"; {proc.lineage.reason}", style="dim")
    parts.append(lineage)
    parts.append(Text(
        f"stats: {proc.execution_count} run(s), success {_rate(proc.success_rate)}, "
        f"avg {_ms(proc.avg_duration_ms)}, last run "
        f"{proc.last_executed_at.isoformat(timespec='seconds') if proc.last_executed_at else '—'}",
        style="dim"))
    return Group(*parts)


def learn_view(imported: Mapping[str, Any] | None, learned: Mapping[str, Any]) -> RenderableType:
    """What ``learn`` did: traces read/stored, procedures created/updated/unchanged, and
    the groups it could not induce (skipped, with their error code and traces)."""
    parts: list[RenderableType] = []
    if imported is not None:
        line = Text(f"traces: {imported['read']} read, {imported['stored']} new")
        if imported["errors"]:
            line.append(f", {len(imported['errors'])} invalid line(s) skipped", style="yellow")
        parts.append(line)
    parts.append(Text(f"learned from {learned['traces']} trace(s) in {learned['groups']} group(s)"
                      + (f", {learned['skipped']} skipped" if learned["skipped"] else "")))
    for key, style in (("created", "green"), ("updated", "yellow"), ("unchanged", "dim")):
        names = learned[key]
        if names:
            tree = Tree(Text(f"{key}: {len(names)}", style=f"bold {style}"))
            for name in names:
                tree.add(Text(name, style=style))
            parts.append(tree)
    failed = learned.get("failed_groups") or []
    if failed:
        tree = Tree(Text(f"not learned (skipped): {len(failed)} group(s)", style="bold red"))
        for row in failed:
            ids = ", ".join(row["traces"][:5])
            more = row["trace_count"] - min(5, len(row["traces"]))
            tree.add(Text(f"{row['name']} [{row['code']}] {row['message']} — trace(s) {ids}"
                          + (f" and {more} more" if more > 0 else ""), style="red"))
        parts.append(tree)
    return Group(*parts)


# --------------------------------------------------------------------- search


def task_panel(task: str, spans: Mapping[str, tuple[int, int]], *, title: str) -> Panel:
    """The task text with the spans the binder bound highlighted and labelled."""
    text = Text(task.strip())
    for start, end in spans.values():
        text.stylize("bold black on cyan", start, end)
    return Panel(text, title=title, title_align="left", border_style="blue")


def hits_table(hits: Sequence[Hit], *, title: str | None = None,
               values: bool = True) -> Table:
    """Search hits: rank, procedure, score and confidence, the ranks behind it, bound params.

    Args:
        hits: The hits, best first.
        title: Table title.
        values: Show the bound values (``name=value``), not only the param names.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("procedure", style="bold", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("why: signal value (rank)", no_wrap=True)
    table.add_column("params bound from the task", overflow="fold")
    for i, hit in enumerate(hits, 1):
        ex = hit.explanation
        signals = ex.get("signals", {})
        why = Text()
        for j, (name, rank) in enumerate(hit.ranks.items()):
            why.append(("\n" if j else "") + (f"{name} " if name != "first_stage"
                                               else "first stage"))
            value = {"bm25": ex.get("bm25"), "vector": ex.get("cosine")}.get(name,
                                                                             signals.get(name))
            if isinstance(value, int | float):
                why.append(f"{value:.2f}", style="bold")
            why.append(f" (#{rank})", style="dim")
        if hit.confidence is not None:
            why.append("\nconfidence ")
            why.append(f"{hit.confidence:.2f}", style="bold")
        if ex.get("verb_conflict"):
            why.append("\nthe task names another action", style="yellow")
        if ex.get("first_stage_kept"):
            why.append("\nfirst stage kept (re-ranking not supported)", style="yellow")
        rerank = ex.get("rerank")
        if isinstance(rerank, dict):
            position = rerank.get("position")
            why.append(f"\nreranker {rerank.get('model')}: ")
            why.append(f"#{position}" if position else "left out",
                       style="bold" if position else "yellow")
        bound = ex.get("bound", {})
        shown = Text(f"{len(bound)}/{len(hit.procedure.params)}: ", style="dim")
        for j, (name, value) in enumerate(bound.items()):
            shown.append(", " if j else "")
            shown.append(name, style="cyan")
            if values:
                shown.append("=" + short(value, 30))
        mark = Text(f"{hit.score:.3f}")
        mark.append("\nconfident" if hit.confident else "\nnot confident",
                    style="green" if hit.confident else "yellow")
        table.add_row(str(i), Text(hit.procedure.name), mark, why, shown)
    return table


def hits_evidence(hits: Sequence[Hit], *, width: int = 76) -> Text:
    """Below the hits table: each hit's matched terms (rarest first) and nearest demonstration."""
    out = Text()
    for i, hit in enumerate(hits, 1):
        ex = hit.explanation
        out.append(f"{i}. ", style="bold")
        out.append(hit.procedure.name, style="bold")
        if ex.get("matched_terms"):
            out.append("\n   matched terms: ", style="dim")
            out.append(" ".join(ex["matched_terms"][:10]))
        if ex.get("nearest_demonstration"):
            out.append("\n   nearest demonstration: ", style="dim")
            out.append(short(ex["nearest_demonstration"], width * 2), style="italic")
        out.append("\n")
    if hits and not any(h.confident for h in hits):
        out.append("No hit is confident: nothing in memory clearly fits this task.",
                   style="yellow")
    return out


# --------------------------------------------------------------------- replay


def source_text(source: str, execution: Execution, *, answered_by: str) -> Text:
    """Where a bound value came from, in words.

    ``literal`` (the same in every demonstration), ``param:NAME`` (with where the
    param's value came from: the task text, ``--params``, an answer, a default),
    ``ask`` (a hole answered by ``answered_by``), ``step:ID#POINTER``.
    """
    if source == "literal":
        return Text("literal (same in every demonstration)", style="dim")
    if source.startswith("param:"):
        name = source[6:]
        origin = {"task": "bound from the task text", "given": "given with --params",
                  "answer": f"answered by {answered_by}", "default": "its default"}
        how = execution.param_sources.get(name, "")
        return Text(f"param {name}, {origin.get(how, how or 'given')}", style="cyan")
    if source == "ask":
        return Text(f"ask, answered by {answered_by}", style="yellow")
    if source.startswith("step:"):
        step, _, pointer = source[5:].partition("#")
        return Text(f"output of step {step} at {pointer or '/'}", style="magenta")
    return Text(source)


def _arg_lines(run: StepRun, execution: Execution, answered_by: str,
               width: int) -> list[Text]:
    lines = []
    for key, value in run.args.items():
        pointer = join_pointer("", key)
        line = Text(f"{key} = ", style="bold")
        line.append(short(value, width))
        line.append("  ← ", style="dim")
        if pointer in run.sources:
            line.append_text(source_text(run.sources[pointer], execution,
                                         answered_by=answered_by))
        else:
            inner = {p: s for p, s in run.sources.items() if p.startswith(pointer + "/")}
            if not inner:
                line.append_text(source_text("literal", execution, answered_by=answered_by))
            for i, (p, s) in enumerate(inner.items()):
                line.append(("; " if i else "") + p[len(pointer):] + ": ", style="dim")
                line.append_text(source_text(s, execution, answered_by=answered_by))
        lines.append(line)
    return lines


def execution_view(execution: Execution, *, answered_by: str = "--answers",
                   width: int = 60) -> RenderableType:
    """An execution: header, then one tree per step run (bound args, sources, result)."""
    head = Text(f"execution {execution.id}  ", style="bold")
    head.append_text(_status(execution.status))
    head.append(f"  {execution.duration_ms:.2f} ms", style="dim")
    head.append(f"  ({execution.procedure}@{execution.version})", style="dim")
    parts: list[RenderableType] = [head]
    if execution.error:
        parts.append(Text(f"error: {execution.error}", style="red"))
    for run in execution.step_runs:
        label = Text(f"{run.step_id}  ", style="bold")
        label.append(run.action, style="bold blue")
        label.append("  ")
        label.append_text(_status(run.status))
        label.append(f"  {run.duration_ms:.2f} ms"
                     + (f", {run.attempts} attempts" if run.attempts > 1 else ""), style="dim")
        tree = Tree(label)
        for earlier in run.history:  # append-only: failed and interrupted tries stay shown
            what = ("outcome unknown (the run stopped during the call; sent again with "
                    "the same idempotency key)" if earlier.status == "unknown"
                    else short(earlier.error or "failed", width))
            tree.add(Text(f"attempt {earlier.attempt} ✗ {what}",
                          style="yellow" if earlier.status == "unknown" else "red"))
        for line in _arg_lines(run, execution, answered_by, width):
            tree.add(line)
        if run.error:
            tree.add(Text("✗ " + short(run.error, width + 10), style="red"))
        elif run.child_execution_id:
            tree.add(Text(f"→ sub-procedure execution {run.child_execution_id}", style="green"))
        else:
            tree.add(Text("→ " + short(run.output, width + 10), style="green"))
        parts.append(tree)
    return Group(*parts)


PLACEHOLDER = "<VALUE>"
"""What the suggested resume command puts for every answer (never a guessed real value)."""


def answers_template(needs: Sequence[Need]) -> dict[str, Any]:
    """``{need.key: PLACEHOLDER}``: the shape of the ``--answers`` a paused execution needs.

    Never a candidate or an example: tools may have side effects, so a command
    copied without editing must not act on someone else's record.
    """
    return {n.key: PLACEHOLDER for n in needs}


def _hints(need: Need) -> str:
    if need.candidates:
        return "one of " + short(need.candidates, 60)
    examples = need.context.get("examples") if need.context else None
    if isinstance(examples, list) and examples:
        return "e.g. " + ", ".join(short(e, 30) for e in examples[:3])
    return "—"


def needs_view(needs: Sequence[Need], command: str) -> RenderableType:
    """The open needs of a paused execution and the command that continues it."""
    table = Table(title="paused: the execution needs these values", title_justify="left",
                  title_style="bold yellow")
    table.add_column("key", style="bold")
    table.add_column("kind")
    table.add_column("prompt", overflow="fold")
    table.add_column("candidates / examples", overflow="fold")
    for need in needs:
        table.add_row(need.key, need.kind, need.prompt, _hints(need))
    hint = Text(f"continue with (replace each {PLACEHOLDER} with a JSON value):\n",
                style="bold")
    hint.append(command)
    return Group(table, hint)


# -------------------------------------------------------------------- figures


def figures_table(figures: Mapping[str, Any], *, title: str = "evaluation") -> Table:
    """The eval figures with what each one means."""
    table = Table(title=title, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim", overflow="fold")
    for key, meaning in FIGURES.items():
        if key not in figures:
            continue
        value = figures[key]
        shown = f"{value:.3f}" if isinstance(value, float) and key != "seconds" else str(value)
        if value is None:
            shown = "-"
        if key == "seconds":
            shown = f"{value:.2f} s"
        table.add_row(key, shown, meaning)
    return table


def cases_table(cases: Sequence[Mapping[str, Any]], *, title: str = "per test trace") -> Table:
    """One row per evaluated test trace: what it does, where its procedure ranked, the replay.

    ``cases`` are :attr:`procmem.evaluation.evaluate.EvalReport.cases`.
    """
    table = Table(title=title, title_justify="left")
    table.add_column("trace", overflow="fold")
    table.add_column("actions (recorded)", overflow="fold")
    table.add_column("rank", justify="right")
    table.add_column("top hit", overflow="fold")
    table.add_column("replay", overflow="fold")
    for case in cases:
        rank = case.get("rank")
        if not case.get("findable"):
            shown = Text("no procedure", style="dim")
        elif rank == 1:
            shown = Text("1", style="green")
        else:
            shown = Text(str(rank) if rank else "> 5", style="red")
        top = Text(str(case.get("top") or "-"))
        if case.get("top") and not case.get("confident"):
            top.append(" (not confident)", style="dim")
        replay = Text("exact", style="green") if case.get("exact") else Text(
            str(case.get("status") or "not replayed"), style="yellow")
        table.add_row(str(case["trace"]), " → ".join(case.get("actions", [])) or "-",
                      shown, top, replay)
    return table


def calibration_table(record: dict[str, Any]) -> Table:
    """``procmem calibrate``: one row per retriever (see
    :func:`procmem.formats.serialize.calibration_record`)."""
    table = Table(title=f"calibration: {record['folds']}-fold cross-validation of "
                        f"{record['traces']} trace(s)")
    for col in ("retriever", "threshold", "cv precision", "cv coverage", "hits (right)"):
        table.add_column(col)
    for r, c in record["calibrations"].items():
        table.add_row(r, f"{c['threshold']:.3f}", f"{c['cv_precision']:.3f}",
                      f"{c['cv_coverage']:.3f}", f"{c['samples']} ({c['positives']})")
    for r, why in record["skipped"].items():
        table.add_row(r, "-", "-", "-", f"not calibrated: {why}")
    return table
