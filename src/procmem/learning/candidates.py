"""Candidate versions of procedures: repair, prune, merge and factor.

Each mechanism proposes a new version of an existing procedure from measured
history (executions, recovery traces, demonstrations) and says which recorded
runs the new version must reproduce before it may compete (``covers``, checked
by :func:`procmem.learning.verify.verify`):

* :func:`repair` — the steps before the failure plus the agent's recovery;
* :func:`prune` — drop a step that keeps failing while the task succeeds, or a
  read-only step whose output nothing uses;
* :func:`merge` — near-duplicate procedures become one (the most reliable one's steps);
* :func:`factor` — a run of steps shared by several procedures becomes a
  sub-procedure they call (planning in :mod:`procmem.learning.factor`).

Invariants:
    * Pure and deterministic: no I/O, no randomness, inputs never mutated. Equal
      inputs give equal candidates except for the ``created_at`` of new versions
      (``procedure.content()``, reason, diff and covers are equal).
    * Every produced procedure validates: each step's args pass
      :func:`procmem.core.template.validate` against its params and earlier step ids.
    * Step ids are unique within a procedure; kept steps keep their ids.
    * A candidate keeps its base's name, has status ``candidate``, version
      ``base.version + 1`` and ``lineage.parent_version == base.version``, and
      ``lineage.reason`` equals its one-line ``reason``. Only factor produces
      procedures with other names (``extra``, status ``active``).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core import template as tpl
from ..core.checks import check_templates
from ..core.errors import UsageError
from ..core.model import (
    Execution,
    Lineage,
    Param,
    Procedure,
    Step,
    StepRun,
    Trace,
    TraceStep,
)
from ..induction.induce import flatten, leaves, same_value, set_pointer
from .factor import name_list, plan_factorings, referenced_params, referenced_steps, rewrite_caller

__all__ = ["Candidate", "diff", "factor", "merge", "prune", "repair"]

FAILING_EXECUTIONS = 3  # prune: a failing step failed in at least this many good executions
FAILING_SHARE = 0.5  # ... and in at least this share of its runs
SIMILAR_TASKS = 0.3  # merge: token Jaccard of demonstration tasks at least this
_REASON_CHARS = 100  # an error quoted in a reason is cut to about this length


class Candidate(BaseModel):
    """A proposed new version of a procedure, with what it must reproduce.

    Attributes:
        kind: ``repair``, ``prune``, ``merge`` or ``factor``.
        procedure: The new version: same name as its base, status ``candidate``,
            version ``base.version + 1`` (the store may renumber it),
            ``lineage.parent_version == base.version``, ``lineage.reason == reason``.
        reason: One line in plain words.
        diff: Lines from :func:`diff` against the base version.
        covers: Recorded runs to reproduce; each trace's successful steps are the
            exact calls the candidate must issue.
        extra: New procedures it needs (factor: the sub-procedure), status ``active``.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["repair", "prune", "merge", "factor"]
    procedure: Procedure
    reason: str
    diff: list[str]
    covers: list[Trace]
    extra: list[Procedure] = Field(default_factory=list)


# -------------------------------------------------------------------- diff


def _render(value: Any) -> str:
    """A template value in one line: references as ``$param x`` / ``$step s1/path``."""
    if tpl.is_ref(value):
        if "$param" in value:
            return f"$param {value['$param']}"
        if "$step" in value:
            return f"$step {value['$step']}{value.get('path', '')}"
        if "$select" in value:
            return (f"$select {_render(value['$select'])} where "
                    f"{_render(value.get('where', []))} get {value.get('get', '')}")
        if "$ask" in value:
            src = value.get("from")
            text = f"$ask {json.dumps(value['$ask'], ensure_ascii=False)}"
            return f"{text} from {_render(src)}" if src else text
        return json.dumps(value.get("$literal"), ensure_ascii=False, sort_keys=True)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_render(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def render_step(step: Step) -> str:
    """One step as ``s2 get_user_details(user_id=$param user_id)`` (+ non-default policies)."""
    args = ", ".join(f"{k}={_render(v)}" for k, v in step.args.items())
    text = f"{step.id} {step.action}({args})"
    policy = step.on_error
    if policy.policy != "stop":
        extra = f" x{policy.retries}" if policy.policy == "retry" else ""
        text += f" [on_error {policy.policy}{extra}]"
    if step.expect:
        checks = "; ".join(f"{c.op} {c.path or '/'}" + (f" {_render(c.value)}"
                                                        if c.value is not None else "")
                           for c in step.expect)
        text += f" [expect {checks}]"
    return text


def diff(old: Procedure, new: Procedure) -> list[str]:
    """Human-readable differences from ``old`` to ``new``.

    Steps are rendered one per line (:func:`render_step`) and compared with
    :mod:`difflib`; removed lines come as ``- s2 get_user_details(user_id=$param
    user_id)``, added ones as ``+ s2 charge_v2(amount=$param amount)``, in step
    order (a replaced block lists its ``-`` lines before its ``+`` lines). A last
    line ``~ params: + amount, - order_id, ~ reason`` lists params added,
    removed and changed (same name, other definition), when any.

    Returns:
        The lines; empty when steps and params are equal.
    """
    a = [render_step(s) for s in old.steps]
    b = [render_step(s) for s in new.steps]
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            out += [f"- {line}" for line in a[i1:i2]]
            out += [f"+ {line}" for line in b[j1:j2]]
    before = {p.name: p for p in old.params}
    after = {p.name: p for p in new.params}
    changes = [f"+ {n}" for n in after if n not in before]
    changes += [f"- {n}" for n in before if n not in after]
    changes += [f"~ {n}" for n in after if n in before and after[n] != before[n]]
    if changes:
        out.append(f"~ params: {', '.join(changes)}")
    return out


# ----------------------------------------------------------------- helpers


def _one_line(text: str, limit: int = _REASON_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check(proc: Procedure) -> Procedure:
    """``proc`` after validating every step's template (an error here is a bug)."""
    check_templates(proc)
    return proc


def _used_params(steps: Iterable[Step]) -> set[str]:
    return {n for s in steps for n in referenced_params(s.args)}


def _version(base: Procedure, *, steps: list[Step], reason: str,
             params: list[Param] | None = None, traces: list[str] | None = None,
             tags: list[str] | None = None) -> Procedure:
    """A candidate version of ``base``; params only ``base`` steps used are dropped
    when no new step uses them (unless ``params`` is given)."""
    if params is None:
        gone = _used_params(base.steps) - _used_params(steps)
        params = [p for p in base.params if p.name not in gone]
    return _check(Procedure(
        name=base.name,
        version=base.version + 1,
        description=base.description,
        params=params,
        steps=steps,
        tags=list(base.tags if tags is None else tags),
        status="candidate",
        lineage=Lineage(traces=list(base.lineage.traces if traces is None else traces),
                        parent_version=base.version, reason=reason),
    ))


def _trace(trace_id: str, task: str, runs: Iterable[StepRun], *,
           created_at: datetime, metadata: dict[str, Any],
           more: Sequence[TraceStep] = ()) -> Trace:
    steps = [TraceStep(action=r.action, args=r.args, output=r.output,
                       duration_ms=r.duration_ms) for r in runs]
    return Trace(id=trace_id, task=task, steps=[*steps, *more], outcome="success",
                 source="procmem", metadata=metadata, created_at=created_at)


def _demos(proc: Procedure, demos: Mapping[str, Trace]) -> list[Trace]:
    return [demos[t] for t in dict.fromkeys(proc.lineage.traces) if t in demos]


# ------------------------------------------------------------------ repair


def _template_leaf(value: Any, params: list[tuple[str, Any]],
                   outputs: list[tuple[str, dict[str, Any]]]) -> Any:
    """``$param`` if a bound param equals ``value``, else ``$step`` if an earlier
    output holds it (nearest step first, then the shallowest pointer), else literal."""
    if value is None or isinstance(value, bool):
        return tpl.literal(value)
    for name, bound in params:
        if same_value(bound, value):
            return tpl.param(name)
    for step_id, flat in reversed(outputs):
        hits = [p for p, x in flat.items() if same_value(x, value)]
        if hits:
            return tpl.step_ref(step_id, min(hits, key=lambda p: (p.count("/"), p)))
    return tpl.literal(value)


def _next_ids(taken: set[str]) -> Iterator[str]:
    numbers = [int(m.group(1)) for i in taken if (m := re.fullmatch(r"r(\d+)", i))]
    n = max(numbers, default=0) + 1
    while True:
        if f"r{n}" not in taken:
            yield f"r{n}"
        n += 1


def repair(procedure: Procedure, execution: Execution, recovery: Trace) -> Candidate | None:
    """A candidate from a failed or paused execution and the agent's recovery.

    The execution stopped at step index ``k``: the first step run neither
    succeeded nor skipped, or ``len(step_runs)`` when it paused before running
    the next step. The candidate's steps are ``procedure.steps[:k]`` followed by
    one step per successful recovery step (ids ``r1``, ``r2``... continuing past
    any existing ``rN``), whose args leaves become ``{"$param": name}`` when equal
    to a param value bound in the execution, ``{"$step": id, "path": pointer}``
    when found in an earlier output (succeeded step runs before ``k``, then
    earlier recovery steps; the nearest step wins), else literals. ``None``,
    booleans, one-character strings and empty containers always stay literal.

    Args:
        procedure: The version the execution ran.
        execution: Its execution, status ``failed`` or ``paused``.
        recovery: The trace the agent recorded to finish the task
            (``metadata["recovers"] == execution.id``).

    Returns:
        A ``repair`` candidate covering one trace (the succeeded step runs before
        ``k`` then the recovery's successful steps, id ``<execution id>+<recovery
        id>``), or ``None`` when the execution did not fail or pause or the
        recovery has no successful step.

    Raises:
        UsageError: ``execution`` is not a run of ``procedure`` (name and
            version), or ``recovery`` says it recovers another execution.
    """
    if (execution.procedure, execution.version) != (procedure.name, procedure.version):
        raise UsageError(f"execution {execution.id!r} ran {execution.procedure}@"
                         f"{execution.version}, not {procedure.key}")
    recovers = recovery.metadata.get("recovers")
    if recovers is not None and recovers != execution.id:
        raise UsageError(f"trace {recovery.id!r} recovers {recovers!r}, not {execution.id!r}")
    recovered = recovery.successful_steps()
    if execution.status not in ("failed", "paused") or not recovered:
        return None
    runs = sorted(execution.step_runs, key=lambda r: r.index)
    stop = next((r for r in runs if r.status not in ("succeeded", "skipped")), None)
    k = min(stop.index if stop else len(runs), len(procedure.steps))
    before = [r for r in runs if r.index < k and r.status == "succeeded"]
    names = [p.name for p in procedure.params]
    params = [(n, execution.params[n]) for n in names if n in execution.params]
    outputs = [(r.step_id, flatten(tpl.parse_output(r.output))) for r in before]
    ids = _next_ids({s.id for s in procedure.steps})
    steps = list(procedure.steps[:k])
    for done in recovered:
        args: dict[str, Any] = {}
        for ptr, value in leaves(done.args):
            if ptr:
                set_pointer(args, ptr, _template_leaf(value, params, outputs))
            elif tpl.has_reserved_key(value):  # "$" keys at the top: the args are one datum
                args = _template_leaf(value, params, outputs)
        step = Step(id=next(ids), action=done.action, args=args,
                    description="recovered by the agent")
        steps.append(step)
        outputs.append((step.id, flatten(tpl.parse_output(done.output))))
    at = procedure.steps[k] if k < len(procedure.steps) else None
    where = f"step {at.id} ({at.action})" if at else "the last step"
    if execution.status == "failed":
        error = (stop.error if stop else None) or execution.error
        what = f"failed at {where}" + (f": {_one_line(error)}" if error else "")
    else:
        what = f"paused before {where}"
    reason = (f"{procedure.name} {what}; the agent finished the task with "
              f"{len(recovered)} recorded step(s)")
    new = _version(procedure, steps=steps, reason=reason,
                   traces=list(dict.fromkeys([*procedure.lineage.traces, recovery.id])))
    cover = _trace(f"{execution.id}+{recovery.id}", execution.task or recovery.task, before,
                   created_at=recovery.created_at, more=recovered,
                   metadata={"execution": execution.id, "recovery": recovery.id})
    return Candidate(kind="repair", procedure=new, reason=reason,
                     diff=diff(procedure, new), covers=[cover])


# ------------------------------------------------------------------- prune


def prune(procedure: Procedure, executions: Sequence[Execution],
          evidence_ok: set[str]) -> list[Candidate]:
    """Candidates that each drop one step of ``procedure``.

    A step is dropped when no later step references it (``$step``, ``$ask``
    ``from``) and either (a) its runs failed (status ``failed`` or ``skipped``)
    in at least 3 executions whose task still succeeded (ids in
    ``evidence_ok``) and in at least half of all its runs, or (b) it is
    read-only (``side_effect is False``) and is not the last step (the last
    step's output is the procedure's result). A procedure is never pruned to
    zero steps; params only the dropped step used are dropped with it. A step
    of a choice (an alternative) is never dropped alone.

    Args:
        procedure: The version to prune.
        executions: Its executions; only those of this name and version count.
        evidence_ok: Ids of executions with positive external evidence.

    Returns:
        One candidate per dropped step, in step order. Each covers the succeeded
        executions in ``evidence_ok`` (trace id = execution id), as their
        succeeded step runs minus the dropped step's.
    """
    mine = [e for e in executions
            if (e.procedure, e.version) == (procedure.name, procedure.version)]
    steps = procedure.steps
    if len(steps) < 2:
        return []
    out: list[Candidate] = []
    for i, step in enumerate(steps):
        if step.choice is not None:  # an alternative: its choice decides, not its runs
            continue
        if any(step.id in referenced_steps(s.args) for s in steps[i + 1:]):
            continue
        runs = [(e, r) for e in mine for r in e.step_runs
                if r.step_id == step.id and r.action == step.action]
        failed = [(e, r) for e, r in runs if r.status != "succeeded"]
        failing_ok = {e.id for e, _ in failed if e.id in evidence_ok}
        if (len(failing_ok) >= FAILING_EXECUTIONS
                and len(failed) >= FAILING_SHARE * len(runs)):
            reason = (f"step {step.id} ({step.action}) failed in {len(failed)} of "
                      f"{len(runs)} runs while the task still succeeded "
                      f"({len(failing_ok)} execution(s))")
        elif step.side_effect is False and i < len(steps) - 1:
            reason = (f"step {step.id} ({step.action}) is read-only and no later step "
                      "uses its output")
        else:
            continue
        new = _version(procedure, steps=[s for s in steps if s.id != step.id], reason=reason)
        covers = [
            _trace(e.id, e.task or "", (r for r in sorted(e.step_runs, key=lambda r: r.index)
                                        if r.status == "succeeded" and r.step_id != step.id),
                   created_at=e.finished_at or e.started_at, metadata={"execution": e.id})
            for e in mine if e.status == "succeeded" and e.id in evidence_ok
        ]
        out.append(Candidate(kind="prune", procedure=new, reason=reason,
                             diff=diff(procedure, new), covers=covers))
    return out


# ------------------------------------------------------------------- merge


def _tokens(traces: Iterable[Trace]) -> set[str]:
    return {w for t in traces for w in re.findall(r"\w+", t.task.lower())}


def _similar(a: set[str], b: set[str]) -> bool:
    if not a or not b:
        return True  # no demonstrations: the action sequence decides
    return len(a & b) / len(a | b) >= SIMILAR_TASKS


def merge(procedures: Sequence[Procedure], reliability: Mapping[str, float],
          demos: Mapping[str, Trace]) -> list[Candidate]:
    """Candidates that merge near-duplicate procedures into the best of them.

    Procedures with different names, the same action sequence and similar
    demonstration tasks (token Jaccard >= 0.3 of the words of all their
    demonstration tasks, or either has no demonstration) are near-duplicates.
    Procedures are ranked by reliability (missing: 0.5, the uniform prior's
    mean), then number of demonstrations, then name; each unmerged one in that
    order becomes the base of a group with the unmerged near-duplicates of it
    ranked below it (so the base is always the best of its group).
    A procedure that another one calls (``procedure:NAME``) is never merged
    into another, since its callers need it.

    The candidate is a new version of the base: the base's steps, lineage
    traces of all, params of all (the others' are added as optional; a name
    taken with another schema gets a ``_2``... suffix), tags of all.

    Args:
        procedures: Current versions (one per name; later duplicates are ignored).
        reliability: Posterior mean of success by name, in [0, 1].
        demos: Traces by id, for demonstration tasks and covers.

    Returns:
        One ``merge`` candidate per group, covering all demonstrations of the
        group found in ``demos``; its diff ends with ``~ merges: NAME, ...``.
    """
    procs: dict[str, Procedure] = {}
    for p in procedures:
        if p.steps:
            procs.setdefault(p.name, p)
    called = {s.subprocedure for p in procs.values() for s in p.steps if s.subprocedure}
    ranked = sorted(procs.values(), key=lambda p: (-reliability.get(p.name, 0.5),
                                                   -len(p.lineage.traces), p.name))
    words = {p.name: _tokens(_demos(p, demos)) for p in ranked}
    merged: set[str] = set()
    out: list[Candidate] = []
    for i, base in enumerate(ranked):
        if base.name in merged:
            continue
        group = [q for q in ranked[i + 1:]
                 if q.name not in merged and q.name not in called
                 and q.signature() == base.signature() and _similar(words[base.name],
                                                                    words[q.name])]
        if group:
            merged.update([base.name, *(q.name for q in group)])
            out.append(_merged(base, group, reliability, demos))
    return out


def _merged(base: Procedure, group: list[Procedure], reliability: Mapping[str, float],
            demos: Mapping[str, Trace]) -> Candidate:
    params = list(base.params)
    for q in group:
        for p in q.params:
            same = next((x for x in params if x.name == p.name), None)
            if same is not None and same.schema_ == p.schema_:
                continue
            name, k = p.name, 2
            while any(x.name == name for x in params):
                name, k = f"{p.name}_{k}", k + 1
            params.append(p.model_copy(update={"name": name, "required": False}))
    traces = list(dict.fromkeys([*base.lineage.traces,
                                 *(t for q in group for t in q.lineage.traces)]))
    tags = list(dict.fromkeys([*base.tags, *(t for q in group for t in q.tags)]))
    names = name_list([q.name for q in group])
    scores = name_list([f"{reliability.get(q.name, 0.5):.2f}" for q in group])
    reason = (f"merges near-duplicate {names} into {base.name} (same actions, similar "
              f"tasks); keeps {base.name}'s steps (reliability "
              f"{reliability.get(base.name, 0.5):.2f} vs {scores})")
    new = _version(base, steps=list(base.steps), reason=reason, params=params,
                   traces=traces, tags=tags)
    covers = list({t.id: t for p in [base, *group] for t in _demos(p, demos)}.values())
    return Candidate(kind="merge", procedure=new, reason=reason,
                     diff=[*diff(base, new), f"~ merges: {names}"], covers=covers)


# ------------------------------------------------------------------ factor


def factor(procedures: Sequence[Procedure], demos: Mapping[str, Trace]) -> list[Candidate]:
    """Candidates that call a sub-procedure for a run of steps shared by several procedures.

    A contiguous run of 2+ steps with the same actions and args templates up
    to param renaming (see :mod:`procmem.learning.factor`), found in 2+
    procedures, becomes a sub-procedure named ``<first_action>-then-<last_action>``
    (``-2``... when the name is taken; an existing procedure that is exactly
    the run is reused instead). Each caller's candidate replaces the run by one
    ``procedure:NAME`` step (the id of the run's last step) whose args map the
    sub-procedure's params to the caller's. A caller in which a later step
    references a step of the run other than its last is left out.

    Args:
        procedures: Current versions (one per name; later duplicates are ignored).
        demos: Traces by id; each candidate covers its caller's demonstrations.

    Returns:
        One ``factor`` candidate per caller, plans in the order chosen and
        callers by name; ``extra`` holds the new sub-procedure (empty when an
        existing one is reused).
    """
    out: list[Candidate] = []
    for plan in plan_factorings(procedures):
        extra = [_check(plan.sub)] if plan.new else []
        for occ in plan.callers:
            base = occ.procedure
            run = base.steps[occ.start:occ.end]
            others = name_list([o.procedure.name for o in plan.callers if o is not occ])
            reason = (f"steps {run[0].id}-{run[-1].id} ({run[0].action} ... {run[-1].action}) "
                      f"are shared with {others}; call them as sub-procedure {plan.sub.name}")
            new = _version(base, steps=rewrite_caller(occ, plan), reason=reason,
                           params=list(base.params))
            out.append(Candidate(kind="factor", procedure=new, reason=reason,
                                 diff=diff(base, new), covers=_demos(base, demos),
                                 extra=extra))
    return out
