"""Rich rendering of plans (:mod:`procmem.induction.planning`) for ``procmem plan``.

Invariants: nothing here opens a store, reads the environment or decides exit
codes; values from tasks and traces are wrapped in :class:`rich.text.Text`,
never parsed as console markup.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from ..induction.planning import Plan, PlanStep, PlanValue
from ..services.multiplan import TaskPlan
from .render import short, task_panel

__all__ = ["plan_view", "task_plan_view"]

_SOURCE_STYLE = {"param": "cyan", "given": "green", "default": "green", "literal": "",
                 "step": "blue", "selection": "blue", "ask": "yellow", "missing": "bold yellow",
                 "secret": "magenta", "omitted": "dim"}


def _value_text(v: PlanValue) -> Text:
    if v.source == "secret":
        return Text("(secret)", style="magenta")
    if v.source == "step" and v.ref is not None:
        return Text(f"output of {v.ref.step} at {v.ref.pointer or '(whole)'}", style="blue")
    if v.source == "selection" and v.ref is not None:
        where = ", ".join(f"{p.get('path')} {'contains' if 'contains' in p else '='} "
                          f"{short(p.get('contains', p.get('equals')), 30)}"
                          for p in v.where or [])
        return Text(f"the element of {v.ref.step} {v.ref.pointer or '(whole)'} where "
                    f"{where or '(any)'}, at {v.get or '(whole)'}", style="blue")
    if v.source == "ask":
        return Text(f"asks: {v.prompt or ''}", style="yellow")
    if v.source == "missing":
        return Text("? (missing)", style="bold yellow")
    if v.source == "omitted":
        return Text("(left out)", style="dim")
    return Text(short(v.value, 60))


def _source_text(v: PlanValue) -> Text:
    label = v.source + (f" {v.param}" if v.param and v.source != "literal" else "")
    return Text(label, style=_SOURCE_STYLE.get(v.source, ""))


def _step_table(step: PlanStep, prefix: str = "") -> Table:
    effect = {True: "side effect", False: "read-only", None: "side effect unknown"}[
        step.side_effect]
    title = f"{prefix}{step.id} {step.action} ({effect}, on error: {step.on_error})"
    if step.choice is not None:
        title += f" [alternative {step.option} of {step.choice}]"
    elif step.optional:
        title += " [optional]"
    if step.skipped:
        title += f" ⤼ skipped: {step.skipped}"
    if step.pauses:
        title += " ⏸ pauses here"
    table = Table(title=title, title_justify="left", expand=False)
    table.add_column("arg")
    table.add_column("value", overflow="fold")
    table.add_column("source")
    table.add_column("span")
    for v in step.values:
        span = f"[{v.span.start}, {v.span.end}) {short(v.span.text, 30)!r}" if v.span else ""
        table.add_row(v.path, _value_text(v), _source_text(v), span)
    if not step.values:
        table.add_row("(no args)", "", "", "")
    return table


def _tables(steps: list[PlanStep], prefix: str = "") -> list[RenderableType]:
    out: list[RenderableType] = []
    for step in steps:
        out.append(_step_table(step, prefix))
        if step.steps:
            out += _tables(step.steps, f"{prefix}{step.id}/")
    return out


def plan_view(plan: Plan) -> RenderableType:
    """A plan for the terminal: header, task with bound spans, a table per step, pauses."""
    if plan.procedure is None:
        return Text(plan.summary or "no procedure fits this task")
    confidence = "" if plan.confidence is None else f", confidence {plan.confidence:.2f}"
    header = Text.assemble(
        ("plan: ", "bold"), (f"{plan.procedure}@{plan.version}", "bold"),
        f" (chosen by {plan.selected_by}; ",
        ("confident" if plan.confident else "not confident",
         "green" if plan.confident else "yellow"), f"{confidence})")
    spans = {v.param or "": (v.span.start, v.span.end) for v in plan.params if v.span}
    parts: list[RenderableType] = [header]
    if plan.task.strip():
        parts.append(task_panel(plan.task, spans, title="task"))
    parts += _tables(plan.steps)
    if plan.pauses:
        pauses = Table(title="would pause for", title_justify="left")
        for column in ("need", "before step", "prompt", "candidates"):
            pauses.add_column(column, overflow="fold")
        for p in plan.pauses:
            cands = short(p.candidates, 40) if p.candidates else (
                f"from {p.candidates_from.step} at {p.candidates_from.pointer}"
                if p.candidates_from else "")
            pauses.add_row(p.key, p.at_step or "(start)", p.prompt, cands)
        parts.append(pauses)
    parts.append(Text(plan.summary, style="bold green" if plan.would_complete_without_asking
                      else "bold yellow"))
    if plan.side_effects_before_first_pause and plan.pauses:
        parts.append(Text("runs before the first pause: "
                          + ", ".join(plan.side_effects_before_first_pause), style="yellow"))
    return Group(*parts)


def task_plan_view(task_plan: TaskPlan) -> RenderableType:
    """A task plan for the terminal: each part's request and plan, then what nothing covers."""
    parts: list[RenderableType] = []
    many = len(task_plan.parts) > 1
    for i, part in enumerate(task_plan.parts, 1):
        if many:
            parts.append(Text.assemble((f"part {i} of {len(task_plan.parts)}: ", "bold"),
                                       short(part.span.text, 80)))
        parts.append(plan_view(part.plan))
    if not task_plan.parts:
        parts.append(Text(task_plan.summary or "no procedure fits this task"))
    for span in task_plan.uncovered:
        parts.append(Text(f"no procedure covers: [{span.start}, {span.end}) "
                          f"{short(span.text, 80)!r}", style="bold yellow"))
    if many or task_plan.uncovered:
        parts.append(Text(task_plan.summary, style="bold green"
                          if task_plan.would_complete_without_asking else "bold yellow"))
    return Group(*parts)
