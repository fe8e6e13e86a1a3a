"""The built-in binder: fill a procedure's params from a new task's text.

Each param learned from demonstrations carries an :class:`~procmem.model.Extractor`
(value shape + surrounding words, see :mod:`procmem.extract`). The binder runs
them over the task text. It only binds a value that occurs verbatim in the text
(or an id written without its leading mark, ``W2307204`` for ``#W2307204``, with
the mark put back; see :func:`procmem.extract.find`) and is unambiguous;
everything else is left for a need (with the candidates it saw), so a wrong
guess never reaches a tool.

Invariant: ``bind_task`` is pure and deterministic; bound values satisfy the
param's JSON Schema ``type`` (strings are converted to integer/number when the
schema says so, or the param is left unbound).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .extract import find
from .model import Extractor, Param, Procedure

__all__ = ["BindSpec", "Binding", "bind_params", "bind_spec", "bind_task"]


class BindSpec(NamedTuple):
    """What binding reads of a param: its name, JSON Schema and extractor
    (a :class:`~procmem.model.Param` without its examples and description)."""

    name: str
    schema_: dict[str, Any]
    extractor: Extractor | None


def bind_spec(param: Param) -> BindSpec:
    """The :class:`BindSpec` of a param."""
    return BindSpec(param.name, param.schema_, param.extractor)


@dataclass
class Binding:
    """What the binder found in a task text for one procedure.

    Attributes:
        values: Param name -> bound value.
        spans: Param name -> ``(start, end)`` character span in the task.
        anchored: Params whose surrounding words matched (not only the shape).
        candidates: Unbound param name -> distinct candidate strings seen.
        learnable: How many params have an extractor at all.
    """

    values: dict[str, Any] = field(default_factory=dict)
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)
    anchored: set[str] = field(default_factory=set)
    candidates: dict[str, list[str]] = field(default_factory=dict)
    learnable: int = 0

    @property
    def fit(self) -> float:
        """Share of extractable params bound, anchored ones counting 1 and shape-only 0.5 (0-1)."""
        if not self.learnable:
            return 0.0
        score = sum(1.0 if p in self.anchored else 0.5 for p in self.values)
        return score / self.learnable


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    t = schema.get("type")
    if t == "integer":
        return int(value)
    if t == "number":
        return float(value)
    return value


def bind_task(procedure: Procedure, task: str) -> Binding:
    """Bind what can be bound of ``procedure``'s params from ``task``.

    Args:
        procedure: A procedure whose params may carry extractors.
        task: The new task's text.

    Returns:
        A :class:`Binding`; params without an extractor are never bound here.
    """
    return bind_params(procedure.params, task)


def bind_params(params: Sequence[Param | BindSpec], task: str) -> Binding:
    """Bind what can be bound of ``params`` from ``task`` (see :func:`bind_task`)."""
    out = Binding()
    taken: set[tuple[int, int]] = set()
    for p in params:
        if p.extractor is None:
            continue
        out.learnable += 1
        found, cands = find(p.extractor, task)
        if found is not None and (found.start, found.end) in taken:
            cands = [found.value]
            found = None
        if found is None:
            if cands:
                out.candidates[p.name] = cands
            continue
        try:
            value = _coerce(found.value, p.schema_)
        except ValueError:
            out.candidates[p.name] = [found.value]
            continue
        out.values[p.name] = value
        out.spans[p.name] = (found.start, found.end)
        taken.add((found.start, found.end))
        if found.anchored:
            out.anchored.add(p.name)
    return out
