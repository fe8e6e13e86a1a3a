"""Alternative and optional steps: which steps read, which run, which one of several.

A procedure learned from demonstrations that make the same *writes* may reach them
by different *reads* (look the user up by email, or by name and zip code) or make
a read the others skip (an extra ``calculate``). Two step fields express that
(see :class:`procmem.core.model.Step`):

* ``optional``: a read whose output no later required step uses. Replay runs it
  when its args bind without asking and records it ``skipped`` otherwise; it
  never pauses for it.
* ``choice`` / ``option``: the steps of a choice are its alternatives, grouped
  by option (option 0 first: the one most demonstrations took). Replay runs the
  first option whose params all have values and whose references resolve, and
  records the steps of the other options ``skipped`` (``"not taken"``). When no
  option can run, it pauses with the param needs of every option (each need's
  ``context`` names the choice, the options it lets run and their actions) --
  unless no later step uses the choice's output: then, like an optional read,
  every option is skipped.
  ``{"$step": CHOICE}`` is the output of the last step of the option that ran.

Read or write (:func:`side_effect_of`): a tool's schema decides when it carries an
MCP annotation (``annotations.readOnlyHint``, https://modelcontextprotocol.io/
specification/2025-06-18/server/tools#tool-annotations); otherwise the name does:
a tool whose first word is a read verb (:data:`READ_VERBS`: ``get``, ``find``,
``list``, ``search`` ...) is a read, anything else is a write (the safe side).

Invariants: the functions here are pure except :func:`gate`, a piece of the
replay core (a generator: it yields events and never does I/O); the choice an
execution made is kept in ``execution.answers["choice:ID"]`` so a resume takes
the same option.
"""

from __future__ import annotations

import re
from collections.abc import Generator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from .errors import InvalidTemplate
from .model import Execution, Need, Procedure, Step, StepRun
from .template import references, resolve_pointer

__all__ = [
    "READ_VERBS",
    "RunState",
    "choice_output",
    "choice_steps",
    "conditional_params",
    "counted_params",
    "gate",
    "is_read",
    "output_used",
    "side_effect_of",
    "unbound",
]

READ_VERBS = frozenset({
    "get", "find", "list", "search", "lookup", "look", "calculate", "compute", "think",
    "read", "fetch", "query", "view", "show", "describe", "count",
})
"""First words of tool names taken as read-only when no schema says otherwise."""


def side_effect_of(action: str, schema: Mapping[str, Any] | None = None) -> bool | None:
    """Whether calling ``action`` changes the world.

    Args:
        action: A tool name (``procedure:NAME`` sub-procedures are unknown: ``None``).
        schema: The tool's stored schema, if any; an ``annotations`` object with a
            boolean ``readOnlyHint`` (MCP tool annotations) decides.

    Returns:
        ``False`` for a read (the annotation, or a first word in :data:`READ_VERBS`,
        e.g. ``get_user_details``, ``findUser``); ``True`` otherwise.
    """
    if action.startswith("procedure:"):
        return None
    hint = (schema or {}).get("annotations", {})
    if isinstance(hint, Mapping) and isinstance(hint.get("readOnlyHint"), bool):
        return not hint["readOnlyHint"]
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", action).lower()
    first = re.split(r"[^a-z0-9]+", words.strip("_.- "))[0]
    return first not in READ_VERBS


def is_read(step: Step) -> bool:
    """A step known to be read-only (``side_effect is False``)."""
    return step.side_effect is False


def choice_steps(procedure: Procedure, choice: str) -> list[list[int]]:
    """The step indices of each option of ``choice``, option 0 first (empty: no such choice)."""
    out: dict[int, list[int]] = {}
    for i, s in enumerate(procedure.steps):
        if s.choice == choice and s.option is not None:
            out.setdefault(s.option, []).append(i)
    return [out[k] for k in sorted(out)]


def conditional_params(procedure: Procedure) -> set[str]:
    """Params referenced only by optional steps or alternatives (replay does not
    ask for them before the first step)."""
    used: dict[str, bool] = {}
    for s in procedure.steps:
        always = not s.optional and s.choice is None
        for _, node in references(s.args):
            name = node.get("$param")
            if isinstance(name, str):
                used[name] = used.get(name, False) or always
    return {n for n, always in used.items() if not always}


def counted_params(procedure: Procedure, bound: AbstractSet[str]) -> set[str]:
    """The params a replay with ``bound`` params would use: those of the steps that
    always run, of the option a choice would take (the first whose params are all
    in ``bound``; else option 0), and the bound ones of optional steps."""
    out: set[str] = set()
    decided: dict[str, int] = {}
    for s in procedure.steps:
        names = {n["$param"] for _, n in references(s.args) if isinstance(n.get("$param"), str)}
        if s.optional:
            out |= names & bound
        elif s.choice is None:
            out |= names
        else:
            if s.choice not in decided:
                decided[s.choice] = next(
                    (k for k, idx in enumerate(choice_steps(procedure, s.choice))
                     if all(n["$param"] in bound for i in idx
                            for _, n in references(procedure.steps[i].args) if "$param" in n)),
                    0)
            if s.option == decided[s.choice]:
                out |= names
    return out


def unbound(step: Step, params: Mapping[str, Any], outputs: Mapping[str, Any],
            skipped: set[str], answers: Mapping[str, Any], *,
            pending: AbstractSet[str] = frozenset()) -> list[str]:
    """Why ``step``'s args cannot bind now without asking (empty: they can).

    Args:
        step: The step.
        params: Param values of the execution.
        outputs: Outputs of the steps that ran, by step (or choice) id.
        skipped: Steps that were skipped.
        answers: The execution's answers (``ask:STEP:POINTER`` keys).
        pending: Step ids that have not run yet but will before ``step`` (earlier
            steps of the same option): references to them are not checked.
    """
    reasons: list[str] = []
    for pointer, node in references(step.args):
        if "$param" in node and node["$param"] not in params:
            reasons.append(f"param {node['$param']!r} has no value")
        elif "$step" in node:
            reasons.extend(_step_problem(node, outputs, skipped, pending))
        elif "$ask" in node and f"ask:{step.id}:{pointer}" not in answers:
            reasons.append(f"{pointer or 'args'} needs an answer")
    return reasons


def _step_problem(node: Mapping[str, Any], outputs: Mapping[str, Any], skipped: set[str],
                  pending: AbstractSet[str]) -> list[str]:
    ref = node["$step"]
    if ref in pending:
        return []
    if ref in skipped or ref not in outputs:
        return [f"step {ref!r} has no output"]
    try:
        resolve_pointer(outputs[ref], node.get("path", ""))
    except (KeyError, InvalidTemplate):
        return [f"step {ref!r} has nothing at {node.get('path', '')!r}"]
    return []


def choice_output(procedure: Procedure, index: int, outputs: dict[str, Any]) -> None:
    """After step ``index`` succeeded: when it ends its option, its output becomes the
    choice's output (``outputs[CHOICE]``)."""
    steps = procedure.steps
    step = steps[index]
    if step.choice is None:
        return
    after = steps[index + 1] if index + 1 < len(steps) else None
    if after is None or after.choice != step.choice or after.option != step.option:
        outputs[step.choice] = outputs[step.id]


class RunState(Protocol):
    """What :func:`gate` reads and does of a replay core run (:mod:`procmem.core.replay`)."""

    proc: Procedure
    ex: Execution
    outputs: dict[str, Any]
    skipped: set[str]

    def record(self, run: StepRun) -> Generator[Any, Any, None]:
        """Store a step run (yields ``Persist``)."""
        ...

    def exchange(self, needs: list[Need]) -> Generator[Any, Any, list[Need]]:
        """Offer needs to the driver; return those still open."""
        ...

    def adopt_param_answers(self) -> None:
        """Move ``param:NAME`` answers into the execution's params."""
        ...


def gate(state: RunState, index: int, step: Step) -> Generator[Any, Any, str | None]:
    """Decide whether step ``index`` runs: ``None`` (run it), ``"next"`` (recorded
    ``skipped``: an optional read that cannot bind, or an option not taken) or
    ``"pause"`` (no option of its choice can run; ``execution.needs`` set)."""
    ex = state.ex
    if step.optional:
        why = unbound(step, ex.params, state.outputs, state.skipped, ex.answers)
        if not why:
            return None
        yield from _skip(state, index, step, "optional read skipped: " + "; ".join(why))
        return "next"
    if step.choice is None:
        return None
    key = f"choice:{step.choice}"
    if key not in ex.answers:
        chosen, needs = _decide(state, step.choice)
        if chosen is None and not output_used(state.proc, step.choice):
            yield from _skip(state, index, step, "alternatives skipped: none can run without "
                             "asking and no later step uses their output")
            ex.answers[key] = -1
            return "next"
        if chosen is None:
            still_open = yield from state.exchange(needs)
            state.adopt_param_answers()
            chosen, needs = _decide(state, step.choice)
            if chosen is None:
                ex.needs = [n for n in needs if n.key in {o.key for o in still_open}] or needs
                return "pause"
        ex.answers[key] = chosen
    chosen = ex.answers[key]
    if step.option == chosen:
        return None
    if chosen < 0:
        yield from _skip(state, index, step, "alternatives skipped: none can run without "
                         "asking and no later step uses their output")
        return "next"
    actions = [state.proc.steps[i].action for i in choice_steps(state.proc, step.choice)[chosen]]
    yield from _skip(state, index, step,
                     f"alternative not taken: option {chosen} ({', '.join(actions)}) ran")
    return "next"


def output_used(proc: Procedure, choice: str) -> bool:
    """Whether a step references the choice's output (or a step of its options)."""
    inside = {s.id for s in proc.steps if s.choice == choice} | {choice}
    return any(n.get("$step") in inside or (isinstance(n.get("from"), dict)
                                             and n["from"].get("$step") in inside)
               for s in proc.steps if s.choice != choice for _, n in references(s.args))


def _skip(state: RunState, index: int, step: Step, reason: str) -> Generator[Any, Any, None]:
    run = StepRun(index=index, step_id=step.id, action=step.action, attempts=0,
                  status="skipped", error=reason)
    state.skipped.add(step.id)
    yield from state.record(run)


def _decide(state: RunState, choice: str) -> tuple[int | None, list[Need]]:
    """The first option that can run, else ``None`` and the param needs of every option.

    An option blocked only by ``$ask`` holes (no param missing) is taken when no
    option can run without asking: its asks are the pause.
    """
    proc, ex = state.proc, state.ex
    options = choice_steps(proc, choice)
    missing: list[list[str]] = []
    asks_only: int | None = None
    for k, indices in enumerate(options):
        pending: set[str] = set()
        why: list[str] = []
        names: list[str] = []
        for i in indices:
            step = proc.steps[i]
            why += unbound(step, ex.params, state.outputs, state.skipped, ex.answers,
                           pending=pending)
            names += [n["$param"] for _, n in references(step.args)
                      if "$param" in n and n["$param"] not in ex.params]
            pending.add(step.id)
        if not why:
            return k, []
        if not names and asks_only is None and all("needs an answer" in w for w in why):
            asks_only = k
        missing.append(list(dict.fromkeys(names)))
    if asks_only is not None:
        return asks_only, []
    return None, _choice_needs(proc, ex, choice, options, missing)


def _choice_needs(proc: Procedure, ex: Execution, choice: str, options: Sequence[list[int]],
                  missing: list[list[str]]) -> list[Need]:
    summary = [{"option": k, "actions": [proc.steps[i].action for i in idx], "params": missing[k]}
               for k, idx in enumerate(options)]
    needs: dict[str, Need] = {}
    for k, names in enumerate(missing):
        for name in names:
            if name in needs:
                needs[name].context["options"].append(k)
                continue
            p = proc.param(name)
            needs[name] = Need(
                key=f"param:{name}", kind="param", name=name,
                prompt=(p.description if p is not None and p.description else
                        f"value for {name!r}") + f" (lets option {k} of choice {choice!r} run)",
                step_id=proc.steps[options[k][0]].id, action=proc.steps[options[k][0]].action,
                context={"schema": p.schema_ if p else {}, "examples": p.examples if p else [],
                         "procedure": proc.name, "task": ex.task, "choice": choice,
                         "options": [k], "alternatives": summary,
                         "hint": "answer the params of any ONE option"})
    return list(needs.values())
