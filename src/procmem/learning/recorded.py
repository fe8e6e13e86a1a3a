"""Recorded environments and the trace oracle: replay against what was recorded.

Invariants: a :class:`RecordedEnvironment` never calls a real tool (it only
returns recorded outputs, so replaying against it has no side effects); an
:class:`Oracle` answers only with values present in its trace.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..core.model import Need, Procedure, Trace, TraceStep
from ..core.template import references, resolve_pointer

__all__ = ["Oracle", "RecordedEnvironment", "aligned_step", "bound_mismatches"]

_MISSING = object()


def aligned_step(recorded: Sequence[TraceStep], procedure: Procedure,
                 step_id: str) -> TraceStep | None:
    """The recorded call a procedure step aligns with, or ``None``.

    Alignment is by the k-th occurrence of each action: the k-th step of
    ``procedure`` with action A aligns with the k-th step of ``recorded`` with
    action A (pass a trace's :meth:`~procmem.core.model.Trace.successful_steps`, so
    failed calls are skipped).

    Args:
        recorded: The recorded calls, in order.
        procedure: The procedure the step belongs to.
        step_id: The step's id.

    Returns:
        The aligned recorded call; ``None`` when the procedure has no such step
        or the recording has fewer calls of that action.
    """
    index = next((i for i, s in enumerate(procedure.steps) if s.id == step_id), None)
    if index is None:
        return None
    action = procedure.steps[index].action
    k = sum(1 for s in procedure.steps[:index] if s.action == action)
    same = [s for s in recorded if s.action == action]
    return same[k] if k < len(same) else None


def bound_mismatches(procedure: Procedure, bound: Mapping[str, Any],
                     trace: Trace) -> dict[str, dict[str, Any]]:
    """The params bound from the task whose value the trace did not use.

    Each place a bound param is referenced (a ``{"$param": name}`` node in a
    step's args) is compared with the value at that pointer in the step's
    aligned recorded call.

    Args:
        procedure: The hit's procedure.
        bound: Param values bound from the task (``hit.explanation["bound"]``).
        trace: The test trace.

    Returns:
        ``{param: {"bound": value, "recorded": value or None, "step": id}}`` for
        each param with a wrong or unaligned place (first such place); empty when
        every bound value is right.
    """
    recorded = trace.successful_steps()
    wrong: dict[str, dict[str, Any]] = {}
    for step in procedure.steps:
        for path, node in references(step.args):
            name = node.get("$param")
            if not isinstance(name, str) or name not in bound or name in wrong:
                continue
            aligned = aligned_step(recorded, procedure, step.id)
            want: Any = _MISSING
            if aligned is not None:
                try:
                    want = resolve_pointer(aligned.args, path)
                except KeyError:
                    want = _MISSING
            if want is _MISSING or want != bound[name]:
                wrong[name] = {"bound": bound[name], "step": step.id,
                               "recorded": None if want is _MISSING else want}
    return wrong



class RecordedEnvironment:
    """Tools that answer from a recorded trace.

    A call returns the recorded output of the first not yet used successful
    recorded step with the same action and equal args; any other call raises
    ``LookupError`` (a failed step run). ``calls`` lists every call made.
    """

    def __init__(self, trace: Trace) -> None:
        self.recorded: list[TraceStep] = trace.successful_steps()
        self.used: set[int] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def tool(self, action: str) -> Callable[..., Any]:
        """The callable for one action name."""
        def call(**args: Any) -> Any:
            self.calls.append((action, args))
            for i, step in enumerate(self.recorded):
                if i not in self.used and step.action == action and step.args == args:
                    self.used.add(i)
                    return step.output
            raise LookupError(f"no recorded {action} call with args {json.dumps(args)[:200]}")
        return call

    def tools(self, actions: Sequence[str]) -> dict[str, Callable[..., Any]]:
        """Callables for every action in ``actions``."""
        return {a: self.tool(a) for a in set(actions)}

    def exact(self) -> bool:
        """True when the calls made are exactly the recorded successful steps, in order."""
        return self.calls == [(s.action, s.args) for s in self.recorded]


class Oracle:
    """A resolver that answers needs from a test trace.

    Steps are aligned by :func:`aligned_step`: the k-th procedure step with
    action A reads the k-th successful trace step with action A. A ``param``
    need reads the first place the param is used.
    Returns ``None`` (cannot answer) when the trace has no such value.
    """

    def __init__(self, trace: Trace, procedure: Procedure) -> None:
        self.steps = trace.successful_steps()
        self.procedure = procedure
        self.supplied = 0

    def _read(self, step_id: str, pointer: str) -> Any:
        step = aligned_step(self.steps, self.procedure, step_id)
        if step is None:
            return None
        try:
            return resolve_pointer(step.args, pointer)
        except KeyError:
            return None

    def __call__(self, need: Need) -> Any:
        """Answer one need, or ``None``."""
        value = None
        if need.kind == "ask" and need.step_id and need.arg_path is not None:
            value = self._read(need.step_id, need.arg_path)
        elif need.kind == "param" and need.name:
            for step in self.procedure.steps:
                for path, node in references(step.args):
                    if node.get("$param") == need.name:
                        value = self._read(step.id, path)
                        break
                if value is not None:
                    break
        if value is not None:
            self.supplied += 1
        return value
