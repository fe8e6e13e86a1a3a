"""Size limits on what is stored: traces, values and procedures.

One trace of 100,000 steps once made ``learn`` run for minutes, and every later
``learn`` on that store too. :class:`Limits` bounds what enters the store; a
record over a limit is refused with :class:`~procmem.core.errors.LimitExceeded`, which
names the record, what was measured, its size and the limit.

Measured:
    * steps per trace, bytes per trace (UTF-8 of its JSON), bytes per value (one
      string, UTF-8), nesting depth of any JSON value (args, outputs, metadata);
    * params and steps per procedure, and the procedure's JSON bytes.

Invariants:
    * Checks are linear in the record's size and never recurse (an iterative
      walk), so a hostile nesting depth cannot overflow the stack.
    * A check either passes or raises; it never changes the record.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..core.errors import InvalidTrace, LimitExceeded

__all__ = ["DEFAULT_LIMITS", "READ_MAX_DEPTH", "Limits", "depth_of", "json_problem"]

_SURROGATE = re.compile("[\ud800-\udfff]")

READ_MAX_DEPTH = 100
"""Deepest JSON a trace or transcript reader accepts (deeper is an ``InvalidTrace``)."""


@dataclass(frozen=True)
class Limits:
    """Configurable maxima (``Memory(limits=Limits(max_trace_steps=5000))``).

    Attributes:
        max_trace_steps: Steps per trace.
        max_trace_bytes: Bytes per trace (UTF-8 JSON of the whole trace).
        max_value_bytes: Bytes per string value (task, an arg, an output, an error).
        max_depth: Nesting depth of any JSON value (a flat dict is depth 1).
        max_procedure_params: Params per procedure.
        max_procedure_steps: Steps per procedure.
        max_procedure_bytes: Bytes per procedure (UTF-8 JSON).
        max_procedures: Procedure names per store; a tenant has its own store
            (:mod:`procmem.tenants`), so this is per tenant. ``learn`` lists a
            group that would pass it under ``failed_groups``; ``put_procedure``
            refuses a new name.
    """

    max_trace_steps: int = 1_000
    max_trace_bytes: int = 8 * 1024 * 1024
    max_value_bytes: int = 1024 * 1024
    max_depth: int = 64
    max_procedure_params: int = 100
    max_procedure_steps: int = 500
    max_procedure_bytes: int = 2 * 1024 * 1024
    max_procedures: int = 100_000

    def check_value(self, value: Any, *, where: str) -> None:
        """Raise :class:`LimitExceeded` if a JSON-like value nests too deep or holds
        a string over ``max_value_bytes`` (iterative walk; linear in its size)."""
        problem = json_problem(value, 1 << 30, strict=False)  # depth is checked below
        if problem is not None:
            raise InvalidTrace(problem, source=where)
        stack: list[tuple[Any, int]] = [(value, 0)]
        while stack:
            v, d = stack.pop()
            if isinstance(v, str):
                if len(v) > self.max_value_bytes // 4 and (
                        n := len(v.encode("utf-8", "surrogatepass"))) > self.max_value_bytes:
                    raise LimitExceeded("bytes in one value", n, self.max_value_bytes,
                                        where=where, setting="Limits.max_value_bytes")
            elif isinstance(v, dict | list | tuple):
                if d + 1 > self.max_depth:
                    raise LimitExceeded("nesting depth", d + 1, self.max_depth, where=where,
                                        setting="Limits.max_depth")
                items = v.values() if isinstance(v, dict) else v
                stack.extend((x, d + 1) for x in items)

    def check_trace(self, trace: Any) -> None:
        """Check one :class:`~procmem.core.model.Trace` against the trace limits.

        Raises:
            LimitExceeded: Too many steps, too many bytes, a value too large, or
                nesting too deep; the message names the trace id.
        """
        where = f"trace {trace.id!r}"
        if len(trace.steps) > self.max_trace_steps:
            raise LimitExceeded("steps per trace", len(trace.steps), self.max_trace_steps,
                                where=where, setting="Limits.max_trace_steps")
        self.check_value([trace.task, trace.metadata,
                          [[s.action, s.args, s.output, s.error] for s in trace.steps]],
                         where=where)
        size = len(json.dumps(trace.model_dump(mode="json"), ensure_ascii=False)
                   .encode("utf-8", "surrogatepass"))
        if size > self.max_trace_bytes:
            raise LimitExceeded("bytes per trace", size, self.max_trace_bytes, where=where,
                                setting="Limits.max_trace_bytes")

    def check_procedure(self, procedure: Any) -> None:
        """Check one :class:`~procmem.core.model.Procedure` against the procedure limits.

        Raises:
            LimitExceeded: Too many params or steps, too many bytes, or a value
                too large or too deep; the message names the procedure.
        """
        where = f"procedure {procedure.name!r}"
        if len(procedure.params) > self.max_procedure_params:
            raise LimitExceeded("params per procedure", len(procedure.params),
                                self.max_procedure_params, where=where,
                                setting="Limits.max_procedure_params")
        if len(procedure.steps) > self.max_procedure_steps:
            raise LimitExceeded("steps per procedure", len(procedure.steps),
                                self.max_procedure_steps, where=where,
                                setting="Limits.max_procedure_steps")
        data = procedure.model_dump(mode="json", by_alias=True)
        self.check_value(data, where=where)
        size = len(json.dumps(data, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        if size > self.max_procedure_bytes:
            raise LimitExceeded("bytes per procedure", size, self.max_procedure_bytes,
                                where=where, setting="Limits.max_procedure_bytes")


DEFAULT_LIMITS = Limits()


def depth_of(value: Any) -> int:
    """Nesting depth of a JSON-like value (iterative; a scalar is 0, ``[]`` is 1)."""
    best = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict | list | tuple):
            best = max(best, d + 1)
            stack.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return best


def json_problem(value: Any, max_depth: int = READ_MAX_DEPTH, *,
                 strict: bool = True) -> str | None:
    """What makes a parsed JSON value unsafe to process, or ``None``.

    Iterative (no recursion): nesting deeper than ``max_depth``, a string or key
    holding a lone surrogate (``"\\ud800"``: not Unicode, cannot be stored), or
    (``strict``) a value that is not JSON (not str, number, bool, None, list or dict).
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                return "a string holds a lone surrogate (not valid Unicode text)"
        elif isinstance(v, dict):
            if d + 1 > max_depth:
                return f"nested deeper than {max_depth} levels"
            for k, x in v.items():
                if isinstance(k, str) and _SURROGATE.search(k) or strict and not isinstance(k, str):
                    return "an object key is not valid Unicode text"
                stack.append((x, d + 1))
        elif isinstance(v, list | tuple):
            if d + 1 > max_depth:
                return f"nested deeper than {max_depth} levels"
            stack.extend((x, d + 1) for x in v)
        elif strict and not (v is None or isinstance(v, bool | int | float)):
            return f"not a JSON value: {type(v).__name__}"
    return None
