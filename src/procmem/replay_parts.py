"""Small pieces of the replay core (:mod:`procmem.replay`): relaying a child core's
events, copying a try into the history, storing outputs as JSON data, and leaving
out the args of optional params without a value.

Invariant: pure helpers, no I/O; :func:`storable` returns a copy, never the input.
"""

from __future__ import annotations

import copy
from typing import Any

from .drivers import Core, NeedValues
from .model import Attempt, StepRun

__all__ = ["OMIT", "as_attempt", "is_json", "relay", "storable", "strip_omitted"]

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
    optional param without a value leaves its arg out (shared by :mod:`procmem.planning`)."""
    if isinstance(value, dict):
        return {k: strip_omitted(v) for k, v in value.items() if v is not OMIT}
    if isinstance(value, list):
        return [None if v is OMIT else strip_omitted(v) for v in value]
    return None if value is OMIT else value
