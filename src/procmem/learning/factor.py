"""Shared runs of steps: the planning half of the ``factor`` candidate.

A *shared run* is a contiguous run of 2+ steps that several procedures contain
with the same actions, the same args templates up to param renaming (params are
numbered by first use, inner ``$step`` references by position in the run), the
same ``expect`` checks and ``on_error`` policies, and params of the same JSON
type. :func:`plan_factorings` finds them; :func:`rewrite_caller` replaces a
caller's copy by one ``procedure:NAME`` step. :func:`procmem.learning.candidates.factor`
turns the plans into candidates.

Invariants:
    * Pure and deterministic: no I/O, no randomness; inputs are never mutated.
    * A run is self-contained: its steps reference only params and earlier steps
      of the same run, so the sub-procedure validates on its own.
    * A caller is factored only when no step after the run references a step of
      the run other than its last; the call step takes the last step's id, so
      those references keep working (a sub-procedure's output is the output of
      its last succeeded step).
    * A caller keeps at least one step of its own besides the call, and each
      procedure is a caller of at most one plan per call.
    * The template helpers (:func:`referenced_steps`, :func:`referenced_params`,
      :func:`rename_refs`) also serve the other candidates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import template as tpl
from ..core.model import Lineage, Procedure, Step
from ..core.template import rename_refs

__all__ = [
    "Factoring",
    "Occurrence",
    "name_list",
    "plan_factorings",
    "referenced_params",
    "referenced_steps",
    "rename_refs",
    "rewrite_caller",
]

_NAME_PART = 95  # characters kept of each action in a sub-procedure name


# ----------------------------------------------------------- template helpers


def name_list(names: Sequence[str], limit: int = 3) -> str:
    """``"a, b, c"`` or ``"a, b, c and 2 more"`` (for one-line reasons)."""
    shown = ", ".join(names[:limit])
    return shown if len(names) <= limit else f"{shown} and {len(names) - limit} more"


def referenced_steps(template: Any) -> set[str]:
    """Ids of the steps that ``$step`` nodes (``$ask`` ``from`` and ``$select``
    sources included) point at."""
    return {src["$step"] for _, node in tpl.references(template)
            for src in tpl.inner_refs(node) if isinstance(src.get("$step"), str)}


def referenced_params(template: Any) -> set[str]:
    """Names of the params that ``$param`` nodes use (``$select`` predicates included)."""
    return {ref["$param"] for _, node in tpl.references(template)
            for ref in tpl.inner_refs(node) if isinstance(ref.get("$param"), str)}


# ----------------------------------------------------------------- planning


@dataclass(frozen=True)
class Occurrence:
    """One caller's copy of a shared run: ``procedure.steps[start:end]``.

    ``params`` are the caller's param names in the run's canonical order.
    """

    procedure: Procedure
    start: int
    end: int
    params: tuple[str, ...]


@dataclass(frozen=True)
class Factoring:
    """A shared run, the sub-procedure that holds it and the callers to rewrite.

    Attributes:
        sub: The sub-procedure (status ``active``).
        new: True when ``sub`` must be created; False when an existing
            procedure already is exactly the run (it is reused).
        sub_params: ``sub``'s param names in the run's canonical order.
        callers: The occurrences to replace, by procedure name.
    """

    sub: Procedure
    new: bool
    sub_params: tuple[str, ...]
    callers: tuple[Occurrence, ...]


def _canon(proc: Procedure, start: int, end: int) -> tuple[str, tuple[str, ...]] | None:
    """The canonical key of ``steps[start:end]`` and its param order, or ``None``.

    ``None`` when the run references a step outside itself or an unknown param,
    or holds a step of a choice.
    """
    run = proc.steps[start:end]
    if any(s.choice is not None for s in run):
        return None  # alternatives are not factored out
    position = {s.id: f"@{n}" for n, s in enumerate(run)}
    order: dict[str, str] = {}
    parts: list[Any] = []
    for s in run:
        if not referenced_steps(s.args) <= set(position):
            return None
        args = json.loads(json.dumps(s.args, sort_keys=True))
        canon = rename_refs(args, param=lambda n: order.setdefault(n, f"p{len(order)}"),
                            step=lambda i: position[i])
        parts.append([s.action, canon, [c.model_dump(mode="json") for c in s.expect],
                      s.on_error.model_dump(mode="json")])
    types = []
    for name in order:
        p = proc.param(name)
        if p is None:
            return None
        types.append(p.schema_.get("type"))
    key = json.dumps([parts, types], sort_keys=True, ensure_ascii=False)
    return key, tuple(order)


def _later_refs_ok(proc: Procedure, start: int, end: int) -> bool:
    inner = {s.id for s in proc.steps[start:end - 1]}
    return all(not (referenced_steps(s.args) & inner) for s in proc.steps[end:])


def _safe(action: str) -> str:
    part = re.sub(r"[^A-Za-z0-9_.]+", "_", action.replace("procedure:", "")).strip("_")
    return (part or "step")[:_NAME_PART]


def _describe(steps: Sequence[Step], callers: Iterable[str]) -> str:
    words = ", then ".join(s.action.replace("procedure:", "").replace("_", " ") for s in steps)
    return f"{words[:1].upper()}{words[1:]}. Shared by {name_list(list(callers))}."


def plan_factorings(procedures: Sequence[Procedure]) -> list[Factoring]:
    """Find the shared runs worth a sub-procedure, greedily.

    Each round takes the run that removes the most steps across its callers
    (``(len - 1) * callers``; ties: the longer run, then the canonical key) among
    procedures not yet used, until no run has 2+ callers left. A run equal to an
    existing procedure's whole step list (whose required params it all uses)
    reuses that procedure; otherwise a new one is named
    ``<first_action>-then-<last_action>``, with ``-2``, ``-3``... when taken.

    Args:
        procedures: Current versions, one per name (later duplicates are ignored).

    Returns:
        Plans in the order chosen; callers of a plan sorted by name.
    """
    procs: dict[str, Procedure] = {}
    for p in procedures:
        procs.setdefault(p.name, p)
    found: dict[str, dict[str, Occurrence]] = {}
    whole: dict[str, tuple[Procedure, tuple[str, ...]]] = {}
    for name in sorted(procs):
        proc, n = procs[name], len(procs[name].steps)
        if n >= 2:
            key_params = _canon(proc, 0, n)
            used = {q for s in proc.steps for q in referenced_params(s.args)}
            if key_params and all(p.name in used for p in proc.params if p.required):
                whole.setdefault(key_params[0], (proc, key_params[1]))
        for start in range(n):
            for end in range(start + 2, n + 1):
                if end - start >= n:
                    continue  # a caller keeps a step of its own
                got = _canon(proc, start, end)
                if got is None or not _later_refs_ok(proc, start, end):
                    continue
                found.setdefault(got[0], {}).setdefault(
                    name, Occurrence(proc, start, end, got[1]))
    plans: list[Factoring] = []
    free, taken = set(procs), set(procs)
    while True:
        best: tuple[tuple[int, int, str], list[Occurrence]] | None = None
        for key, occ in found.items():
            callers = [occ[n] for n in sorted(occ) if n in free]
            if len(callers) < 2:
                continue
            length = callers[0].end - callers[0].start
            score = (-(length - 1) * len(callers), -length, key)
            if best is None or score < best[0]:
                best = (score, callers)
        if best is None:
            return plans
        (_, _, key), callers = best
        free -= {o.procedure.name for o in callers}
        if key in whole:
            sub, order = whole[key]
            plans.append(Factoring(sub, False, order, tuple(callers)))
            continue
        sub = _new_sub(callers, taken)
        taken.add(sub.name)
        plans.append(Factoring(sub, True, callers[0].params, tuple(callers)))


def _new_sub(callers: list[Occurrence], taken: set[str]) -> Procedure:
    first = callers[0]
    run = first.procedure.steps[first.start:first.end]
    ids = {s.id: f"s{n + 1}" for n, s in enumerate(run)}
    steps = [s.model_copy(update={"id": ids[s.id],
                                  "args": rename_refs(s.args, step=lambda i: ids[i])})
             for s in run]
    base = f"{_safe(run[0].action)}-then-{_safe(run[-1].action)}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}-{k}", k + 1
    names = [o.procedure.name for o in callers]
    params = [first.procedure.param(n) for n in first.params]
    return Procedure(
        name=name,
        description=_describe(run, names),
        params=[p for p in params if p is not None],
        steps=steps,
        tags=sorted({s.action.replace("procedure:", "").split("_", 1)[0] for s in run}),
        status="active",
        lineage=Lineage(reason=f"factored out of {name_list(names)}"),
    )


def rewrite_caller(occ: Occurrence, plan: Factoring) -> list[Step]:
    """The caller's steps with its copy of the run replaced by one call step.

    The call step keeps the id of the run's last step; its args map each
    sub-procedure param to the caller's param in the same canonical position.
    """
    steps = occ.procedure.steps
    run = steps[occ.start:occ.end]
    effects = {s.side_effect for s in run}
    side_effect = True if True in effects else (False if effects == {False} else None)
    call = Step(
        id=run[-1].id,
        action=f"procedure:{plan.sub.name}",
        args={sub: tpl.param(mine) for sub, mine in zip(plan.sub_params, occ.params,
                                                         strict=True)},
        side_effect=side_effect,
        description=f"runs {plan.sub.name} (was steps {', '.join(s.id for s in run)})",
    )
    return [*steps[:occ.start], call, *steps[occ.end:]]
