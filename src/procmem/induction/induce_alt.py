"""Induction across demonstrations that make the same writes by different reads.

Traces whose *write* actions (:func:`procmem.core.alternatives.side_effect_of`) form the
same sequence but whose reads differ are learned as one procedure:

1. **Template.** The reads between two writes (and before the first, after the
   last) are aligned across the distinct signatures, one signature at a time, by
   longest common subsequence of actions (Hirschberg-style dynamic programming;
   the progressive scheme of multiple sequence alignment, Feng & Doolittle 1987).
   A read every signature makes is a plain step. Between two such steps, when
   every signature makes some reads and two signatures make either the same
   reads or none of the same, those reads are a **choice** whose options are
   ordered by demonstrations (most first); otherwise each read there is an
   **optional** step. When only one of several demonstrations made such a read,
   the signatures are not merged (one demonstration is too little to learn that
   a read may be left out, or that it should run on every task whose values
   bind): each is learned alone, as before.
2. **Classify** each argument as :func:`procmem.induction.induce.induce` does, over the
   demonstrations that made the step; a value a step after a choice took from
   the output of every option's last step becomes ``{"$step": CHOICE}``.
3. **Check.** The merge is refused (:class:`MergeRejected`) when a step every
   signature makes gets an ``$ask`` where one signature's own procedure had a
   ``$param`` or ``$step`` (the merge would lose what the demonstrations show).

Invariants: deterministic (same traces in the same order give the same
procedure); traces that share one signature are never changed by this module
(:func:`merge_plan` keeps them one group, and :func:`procmem.induction.induce.induce`
only comes here when signatures differ); the result validates
(:func:`procmem.core.checks.check_templates`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.alternatives import conditional_params, side_effect_of
from ..core.errors import UsageError
from ..core.model import Lineage, OnError, Param, Procedure, Step, Trace
from ..core.template import references, rename_refs

__all__ = ["MergeRejected", "annotate", "induce_merged", "merge_plan", "template", "write_key"]

Signature = tuple[str, ...]
_MAX_OPTIONS = 4


class MergeRejected(UsageError):
    """Traces with equal writes cannot be learned as one procedure (see module docstring)."""


def write_key(sig: Sequence[str], effects: Mapping[str, bool | None] | None = None) -> Signature:
    """The write actions of a signature, in order (unknown side effects count as writes)."""
    return tuple(a for a in sig if _effect(a, effects) is not False)


def _effect(action: str, effects: Mapping[str, bool | None] | None) -> bool | None:
    if effects is not None and action in effects:
        return effects[action]
    return side_effect_of(action)


@dataclass
class Slot:
    """One position of a template: a step some signatures make.

    ``members``: indices of the signatures that make it; ``choice`` / ``option``:
    set for alternatives (the choice's number in the template, the option's rank).
    """

    action: str
    members: set[int] = field(default_factory=set)
    choice: int | None = None
    option: int | None = None
    optional: bool = False


def template(sigs: Sequence[Signature], weights: Sequence[int],
             effects: Mapping[str, bool | None] | None = None) -> list[Slot] | None:
    """The merged template of distinct signatures with equal writes, or ``None``.

    Args:
        sigs: Distinct signatures, 2+, in order of first appearance.
        weights: Demonstrations of each signature (orders the options).
        effects: Known side effects by action (else :func:`side_effect_of`).

    Returns:
        Slots in order; ``None`` when the writes differ, there are none, a
        choice would have more than 4 options, or an optional read would rest on
        one demonstration of several.
    """
    keys = {write_key(s, effects) for s in sigs}
    if len(keys) != 1 or not next(iter(keys)):
        return None
    segments = [_segments(s, effects) for s in sigs]
    out: list[Slot] = []
    choices = 0
    for seg in range(len(segments[0])):
        slots = _align([segments[g][seg][0] for g in range(len(sigs))])
        placed, choices = _structure(slots, len(sigs), weights, choices)
        if placed is None:
            return None
        out += placed
        write = segments[0][seg][1]
        if write is not None:
            out.append(Slot(write, set(range(len(sigs)))))
    return out


def _segments(sig: Signature, effects: Mapping[str, bool | None] | None
              ) -> list[tuple[list[str], str | None]]:
    """(reads, the write after them) pairs; the last pair's write is ``None``."""
    out: list[tuple[list[str], str | None]] = []
    reads: list[str] = []
    for a in sig:
        if _effect(a, effects) is False:
            reads.append(a)
        else:
            out.append((reads, a))
            reads = []
    out.append((reads, None))
    return out


def _align(seqs: Sequence[list[str]]) -> list[Slot]:
    """Progressive alignment of read sequences into slots (by LCS of actions)."""
    slots = [Slot(a, {0}) for a in seqs[0]]
    for g, seq in enumerate(seqs[1:], 1):
        n, m = len(slots), len(seq)
        lcs = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            for j in range(m - 1, -1, -1):
                lcs[i][j] = (lcs[i + 1][j + 1] + 1 if slots[i].action == seq[j]
                             else max(lcs[i + 1][j], lcs[i][j + 1]))
        merged: list[Slot] = []
        i = j = 0
        while i < n or j < m:
            if i < n and j < m and slots[i].action == seq[j] and lcs[i][j] == lcs[i + 1][j + 1] + 1:
                slots[i].members.add(g)
                merged.append(slots[i])
                i, j = i + 1, j + 1
            elif i < n and (j >= m or lcs[i + 1][j] >= lcs[i][j + 1]):
                merged.append(slots[i])
                i += 1
            else:
                merged.append(Slot(seq[j], {g}))
                j += 1
        slots = merged
    return slots


def _structure(slots: list[Slot], k: int, weights: Sequence[int],
               choices: int) -> tuple[list[Slot] | None, int]:
    """Mark the gaps between shared slots as choices or optional steps."""
    everyone = set(range(k))
    out: list[Slot] = []
    gap: list[Slot] = []
    for slot in [*slots, None]:
        if slot is not None and slot.members != everyone:
            gap.append(slot)
            continue
        if gap:
            placed = _gap(gap, k, weights, choices)
            if placed is None:
                return None, choices
            if any(s.choice is not None for s in placed):
                choices += 1
            out += placed
            gap = []
        if slot is not None:
            out.append(slot)
    return out, choices


def _gap(gap: list[Slot], k: int, weights: Sequence[int], choice: int) -> list[Slot] | None:
    paths = {g: tuple(i for i, s in enumerate(gap) if g in s.members) for g in range(k)}
    distinct = list(dict.fromkeys(paths.values()))
    exclusive = all(not set(a) & set(b) for x, a in enumerate(distinct) for b in distinct[x + 1:])
    if all(paths.values()) and exclusive and len(distinct) >= 2:
        if len(distinct) > _MAX_OPTIONS:
            return None
        weight = {p: sum(weights[g] for g in range(k) if paths[g] == p) for p in distinct}
        ranked = sorted(distinct, key=lambda p: -weight[p])  # stable: first appearance on ties
        out = []
        for rank, p in enumerate(ranked):
            for i in p:
                gap[i].choice, gap[i].option = choice, rank
                out.append(gap[i])
        return out
    if sum(weights) >= 2 and any(sum(weights[g] for g in s.members) < 2 for s in gap):
        return None  # one demonstration's extra read: too little to learn it as optional
    for s in gap:
        s.optional = True
    return gap


def merge_plan(sigs: Sequence[Signature], weights: Sequence[int],
               effects: Mapping[str, bool | None] | None = None) -> list[list[Signature]]:
    """Which signatures to learn together: lists in order of first appearance.

    Signatures with equal, non-empty write sequences whose reads form a
    :func:`template` share a list; every other signature is alone.
    """
    buckets: dict[Signature, list[int]] = {}
    for g, s in enumerate(sigs):
        key = write_key(s, effects)
        buckets.setdefault(key if key else ("", *s), []).append(g)
    out: list[list[Signature]] = []
    for members in buckets.values():
        if len(members) > 1 and template([sigs[g] for g in members],
                                         [weights[g] for g in members], effects) is not None:
            out.append([sigs[g] for g in members])
        else:
            out += [[sigs[g]] for g in members]
    return out


StepArgs = Callable[..., dict[str, Any]]


def induce_merged(traces: Sequence[Trace], *, name: str, version: int, corpus: Any,
                  step_args: StepArgs, flatten: Callable[[Any], dict[str, Any]],
                  parse: Callable[[Any], Any], single: Callable[[Sequence[Trace]], Procedure],
                  describe: Callable[[Sequence[str], int], str],
                  effects: Mapping[str, bool | None] | None = None) -> Procedure:
    """One procedure from traces with equal writes and different reads.

    Called by :func:`procmem.induction.induce.induce` with its own helpers (``step_args``:
    one step's args template from the aligned demonstrations; ``single``:
    induction of one signature's traces).

    Raises:
        MergeRejected: No template fits, or the merge loses a reference (module docstring).
    """
    sigs = list(dict.fromkeys(t.signature() for t in traces))
    member = [sigs.index(t.signature()) for t in traces]
    slots = template(sigs, [member.count(g) for g in range(len(sigs))], effects)
    if slots is None:
        raise MergeRejected("induce() needs traces with one equal action sequence, or with "
                            "equal writes whose reads align (these have different writes)")
    positions, choice_ids, virtual = _positions(slots)  # choice outputs included
    # per trace: template position -> index of its successful step
    where: list[dict[int, int]] = []
    for t, g in zip(traces, member, strict=True):
        cols = [i for i, s in enumerate(slots) if g in s.members]
        where.append(dict(zip(cols, range(len(t.signature())), strict=True)))
    demos = [t.successful_steps() for t in traces]
    outputs = [[parse(s.output) for s in d] for d in demos]
    cache: dict[tuple[int, int], dict[str, Any]] = {}

    def flat(j: int, k: int, current: Slot) -> dict[str, Any]:
        slot_index, _ = positions[k]
        if slot_index is None:  # a choice's output: the last step of the option taken
            last = [i for i, s in enumerate(slots) if s.choice == virtual[k] and i in where[j]]
            slot_index = last[-1] if last else None
        elif slots[slot_index].choice is not None and (
                slots[slot_index].choice, slots[slot_index].option) != (current.choice,
                                                                         current.option):
            return {}  # another option's step is not visible from here
        if slot_index is None or slot_index not in where[j]:
            return {}
        key = (j, slot_index)
        if key not in cache:
            cache[key] = flatten(outputs[j][where[j][slot_index]])
        return cache[key]

    params: dict[str, Param] = {}
    param_by_values: dict[str, list[str]] = {}
    steps: list[Step] = []
    step_ids = [pid for _, pid in positions]
    for k, (slot_index, sid) in enumerate(positions):
        if slot_index is None:
            continue
        slot = slots[slot_index]
        js = [j for j in range(len(traces)) if slot_index in where[j]]
        args = step_args([demos[j][where[j][slot_index]].args for j in js], k, slot.action,
                         len(js), [traces[j].task for j in js], corpus,
                         lambda jj, kk, js=js, slot=slot: flat(js[jj], kk, slot),
                         step_ids, params, param_by_values)
        steps.append(Step(id=sid, action=slot.action, args=args, optional=slot.optional,
                          choice=None if slot.choice is None else choice_ids[slot.choice],
                          option=slot.option))
    params, steps = _unify(params, steps)
    proc = Procedure(name=name, version=version,
                     description=describe(write_key(sigs[0], effects), len(traces)).replace(
                         "Learned from", "Reads vary; learned from"),
                     params=list(params.values()), steps=steps,
                     tags=sorted({a.split("_", 1)[0] for a in sigs[0]}),
                     lineage=Lineage(traces=[t.id for t in traces],
                                     reason=f"induced from {len(traces)} trace(s) "
                                            f"with {len(sigs)} read patterns"))
    _check_loss(proc, slots, sigs, traces, member, single)
    return proc


def _unify(params: dict[str, Param], steps: list[Step]) -> tuple[dict[str, Param], list[Step]]:
    """Params with equal extractors made one: the one most demonstrations support.

    Steps in different read patterns see different demonstrations, so the order id a
    look-up read in 2 of 5 demonstrations and the one all 5 cancelled get two params;
    with one extractor they bind the same span of any task, and as two the binder
    would give the span to the first and leave the cancel's unbound.
    """
    keep: dict[tuple[Any, ...], str] = {}
    renamed: dict[str, str] = {}
    ranked = sorted(params.values(), key=lambda p: -(p.extractor.support or 0)
                    if p.extractor is not None else 0)
    for p in ranked:
        ex = p.extractor
        if ex is None:
            continue
        key = (ex.pattern, ex.before, ex.after, ex.occurrence, ex.kind)
        if key in keep:
            renamed[p.name] = keep[key]
        else:
            keep[key] = p.name
    if not renamed:
        return params, steps
    return ({n: p for n, p in params.items() if n not in renamed},
            [s.model_copy(update={"args": rename_refs(
                s.args, param=lambda n: renamed.get(n, n))}) for s in steps])


def _positions(slots: list[Slot]) -> tuple[list[tuple[int | None, str]], dict[int, str],
                                           dict[int, int]]:
    """Template positions with their ids: steps (``s1``; ``s2a``, ``s2b2`` in options)
    and, after each choice, the choice's output (slot ``None``, id ``s2``).

    Returns:
        The positions; the id of each choice by number; the choice number of each
        output position.
    """
    out: list[tuple[int | None, str]] = []
    choice_ids: dict[int, str] = {}
    virtual: dict[int, int] = {}
    n = 0
    for i, s in enumerate(slots):
        if s.choice is None:
            n += 1
            out.append((i, f"s{n}"))
            continue
        if s.choice not in choice_ids:
            n += 1
            choice_ids[s.choice] = f"s{n}"
        same = [t for t in slots if (t.choice, t.option) == (s.choice, s.option)]
        letter = "abcdefghij"[s.option or 0]
        nth = next(x for x, t in enumerate(same) if t is s) + 1
        out.append((i, f"s{n}{letter}" + (str(nth) if len(same) > 1 else "")))
        after = slots[i + 1] if i + 1 < len(slots) else None
        if after is None or after.choice != s.choice:
            virtual[len(out)] = s.choice
            out.append((None, f"s{n}"))
    return out, choice_ids, virtual


def _check_loss(proc: Procedure, slots: list[Slot], sigs: list[Signature],
                traces: Sequence[Trace], member: list[int],
                single: Callable[[Sequence[Trace]], Procedure]) -> None:
    """Refuse the merge when a shared step asks where a signature's own procedure did not."""
    shared = [s for s, slot in zip(proc.steps, slots, strict=True)
              if slot.choice is None and not slot.optional]
    rows = [i for i, slot in enumerate(slots) if slot.choice is None and not slot.optional]
    for g in range(len(sigs)):
        own = single([t for t, m in zip(traces, member, strict=True) if m == g])
        cols = [i for i, s in enumerate(slots) if g in s.members]
        for step, row in zip(shared, rows, strict=True):
            mine = own.steps[cols.index(row)]
            for ptr, node in _ref_leaves(step.args):
                theirs = _ref_leaves_map(mine.args).get(ptr)
                if "$ask" in node and theirs is not None and (
                        "$param" in theirs or "$step" in theirs):
                    raise MergeRejected(
                        f"merging the read patterns loses {ptr} of {step.action}: one "
                        "signature alone binds it, the merge would ask for it")


def _ref_leaves(args: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return list(references(args))


def _ref_leaves_map(args: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(_ref_leaves(args))


def annotate(procedure: Procedure, effects: Mapping[str, bool | None] | None = None
             ) -> Procedure:
    """Mark each step's side effect, the optional reads, and the params only they use.

    A step's ``side_effect`` comes from ``effects`` (by action) or
    :func:`procmem.core.alternatives.side_effect_of`. A read outside any choice whose
    output no later non-optional step references, and that is not the last step
    (whose output is the procedure's result), becomes ``optional`` (with
    ``on_error: skip``: a failed optional read does not stop the run) when 2+
    demonstrations show it: one demonstration's data flow is too thin to tell a
    read nobody needs from a read whose use it missed. Every step the template
    made optional is optional too. Params only optional steps or alternatives
    use become not ``required``.

    Returns:
        A copy of ``procedure``.
    """
    steps = [s.model_copy(update={"side_effect": _effect(s.action, effects)})
             if s.side_effect is None else s for s in procedure.steps]
    used: set[str] = set()
    out: list[Step] = []
    evidence = len(procedure.lineage.traces) >= 2  # one demonstration's data flow is thin
    for s in reversed(steps):
        refs = {n["$step"] for _, n in references(s.args) if "$step" in n}
        refs |= {n["from"]["$step"] for _, n in references(s.args)
                 if isinstance(n.get("from"), dict) and "$step" in n["from"]}
        optional = s.optional or (evidence and s.side_effect is False and s.choice is None
                                  and s.id not in used and not s.expect
                                  and s.subprocedure is None
                                  and s is not steps[-1])  # the last output is the result
        if optional:
            s = s.model_copy(update={"optional": True, "on_error": OnError(policy="skip")})
        else:
            used |= refs
            if s.choice is not None and s.choice in used:
                used.add(s.id)
        out.append(s)
    out.reverse()
    proc = procedure.model_copy(update={"steps": out})
    later = conditional_params(proc)
    params = [p.model_copy(update={"required": False}) if p.name in later else p
              for p in procedure.params]
    return Procedure.model_validate({**proc.model_dump(by_alias=True),
                                     "params": [p.model_dump(by_alias=True) for p in params]})
