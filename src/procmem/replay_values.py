"""Small value helpers of the replay core (:mod:`procmem.replay`): omitted args,
storable outputs and step-run history entries.

Invariants: pure functions; every result is a copy (nothing returned shares
mutable state with its input).
"""

from __future__ import annotations

import copy
from typing import Any

from .model import Attempt, StepRun

__all__ = ["OMIT", "as_attempt", "storable", "strip_omitted"]

OMIT = object()
"""What a ``$param`` of an optional param without value binds to: the arg is left out."""


def as_attempt(run: StepRun, status: str) -> Attempt:
    """The latest try of ``run`` as a history entry (a copy)."""
    return Attempt.model_validate({
        "attempt": run.attempt, "status": status, "args": copy.deepcopy(run.args),
        "sources": dict(run.sources), "output": copy.deepcopy(run.output), "error": run.error,
        "duration_ms": run.duration_ms, "started_at": run.started_at,
        "child_execution_id": run.child_execution_id})


def strip_omitted(value: Any) -> Any:
    """Drop args bound to :data:`OMIT` from objects (``null`` in arrays): an
    optional param without a value leaves its arg out (shared by :mod:`procmem.planning`)."""
    if isinstance(value, dict):
        return {k: strip_omitted(v) for k, v in value.items() if v is not OMIT}
    if isinstance(value, list):
        return [None if v is OMIT else strip_omitted(v) for v in value]
    return None if value is OMIT else value


def storable(output: Any) -> Any:
    """A copy of ``output`` if it is JSON data (str-keyed dicts, lists, scalars), else ``str()``."""
    return copy.deepcopy(output) if _is_json(output) else str(output)


def _is_json(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list):
        return all(_is_json(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_json(v) for k, v in value.items())
    return False
