"""Small pieces of the replay core (:mod:`procmem.core.replay`): relaying a child core's
events, copying a try into the history, storing outputs as JSON data, and leaving
out the args of optional params without a value.

Invariant: pure helpers, no I/O; :func:`storable` returns a copy, never the input.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .drivers import Core, NeedValues
from .model import Attempt, CallStarted, StepRun

__all__ = ["OMIT", "as_attempt", "is_json", "next_try", "relay", "storable", "strip_omitted",
           "where_predicates"]

OMIT = object()
"""What a ``$param`` of an optional param without value binds to: the arg is left out."""


def relay(core: Core, prefix: str) -> Core:
    """Pass a child core's events through, prefixing need keys out and unprefixing answers."""
    reply: Any = None
    while True:
        try:
            event = core.send(reply)
        except StopIteration as stop:
            return stop.value
        if isinstance(event, NeedValues):
            answers = yield NeedValues(
                [n.model_copy(update={"key": prefix + n.key}) for n in event.needs]
            )
            reply = {
                k.removeprefix(prefix): v for k, v in (answers or {}).items()
                if k.startswith(prefix)
            }
        else:
            reply = yield event


def as_attempt(run: StepRun, status: str) -> Attempt:
    """The latest try of ``run`` as a history entry (a copy)."""
    return Attempt.model_validate({
        "attempt": run.attempt, "status": status, "args": copy.deepcopy(run.args),
        "sources": dict(run.sources), "output": copy.deepcopy(run.output), "error": run.error,
        "duration_ms": run.duration_ms, "started_at": run.started_at,
        "child_execution_id": run.child_execution_id})


def storable(output: Any) -> Any:
    """A copy of ``output`` if it is JSON data (str-keyed dicts, lists, scalars), else ``str()``."""
    return copy.deepcopy(output) if is_json(output) else str(output)


def is_json(value: Any) -> bool:
    """True when ``value`` is JSON data: ``None``, str, int, float, bool, lists of JSON
    data, and dicts with str keys and JSON data values."""
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_json(v) for k, v in value.items())
    return False


def strip_omitted(value: Any) -> Any:
    """Drop args bound to :data:`OMIT` from objects (``null`` in arrays): an
    optional param without a value leaves its arg out (shared by :mod:`induction.planning`)."""
    if isinstance(value, dict):
        return {k: strip_omitted(v) for k, v in value.items() if v is not OMIT}
    if isinstance(value, list):
        return [None if v is OMIT else strip_omitted(v) for v in value]
    return None if value is OMIT else value


def next_try(index: int, step_id: str, action: str, prev: StepRun | None,
             args: dict[str, Any] | None, open_call: CallStarted | None) -> StepRun:
    """A new step run for a step's next try, keeping every earlier try in ``history``.

    A failed earlier run (``prev``) moves into the history. A call left open by a
    run that stopped (``open_call``: ``Execution.in_flight`` without a stored try
    of its number) is kept as ``unknown`` and, when ``args`` bind to the same
    values, tried again with its number (so its idempotency key); otherwise the
    next number is used.
    """
    run = StepRun(index=index, step_id=step_id, action=action, attempts=0)
    if prev is not None and prev.status == "failed":
        run.history = [*prev.history, as_attempt(prev, "failed")]
        run.attempt, run.attempts = prev.attempt + 1, prev.attempts
    if (open_call is not None and open_call.index == index
            and (prev is None or prev.attempt < open_call.attempt)):
        run.history.append(Attempt(
            attempt=open_call.attempt, status="unknown", args=open_call.args,
            started_at=open_call.started_at,
            error="interrupted: the run stopped after sending this call and before "
                  "storing its result; it may or may not have taken effect"))
        run.attempts += 1
        same = args is not None and args == open_call.args
        run.attempt = open_call.attempt if same else open_call.attempt + 1
    return run


def where_predicates(node: Mapping[str, Any], params: Mapping[str, Any]
                     ) -> list[tuple[str, str, Any]]:
    """A ``$select`` node's ``where`` as ``(path, "equals" | "contains", value)``, with
    ``$param`` and ``$literal`` values resolved (see :mod:`procmem.core.template`).

    Raises:
        KeyError: A ``$param`` predicate names a param with no value (the key is its name).
    """
    where = []
    for pred in node.get("where", []):
        op = "contains" if "contains" in pred else "equals"
        want = pred[op]
        if isinstance(want, dict) and "$param" in want:
            if want["$param"] not in params:
                raise KeyError(want["$param"])
            want = params[want["$param"]]
        elif isinstance(want, dict) and "$literal" in want:
            want = want["$literal"]
        where.append((pred["path"], op, want))
    return where
