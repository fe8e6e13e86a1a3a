"""The built-in binder: fill a procedure's params from a new task's text.

Each param learned from demonstrations carries an :class:`~procmem.core.model.Extractor`
(value shape + surrounding words, see :mod:`procmem.induction.extract`). The binder runs
them over the task text. It only binds a value that occurs verbatim in the text
(or an id written without its leading mark, ``W2307204`` for ``#W2307204``, with
the mark put back; see :func:`procmem.induction.extract.find`) and is unambiguous;
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

from ..core.alternatives import counted_params
from ..core.model import Extractor, Param, Procedure
from ..security.safe_regex import compile_user
from .extract import wordy
from .extract_find import find_shared

__all__ = ["BindSpec", "Binding", "bind_params", "bind_spec", "bind_task"]


class BindSpec(NamedTuple):
    """What binding reads of a param: its name, JSON Schema and extractor
    (a :class:`~procmem.core.model.Param` without its examples and description)."""

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
    counted: frozenset[str] | None = None

    @property
    def fit(self) -> float:
        """Share of extractable params bound, anchored ones counting 1 and shape-only 0.5 (0-1).

        With ``counted`` (a procedure with alternatives or optional steps), only
        those params count: the ones the replay would use (see
        :func:`procmem.core.alternatives.counted_params`).
        """
        if not self.learnable:
            return 0.0
        score = sum(1.0 if p in self.anchored else 0.5 for p in self.values
                    if self.counted is None or p in self.counted)
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
    out = bind_params(procedure.params, task)
    if any(s.optional or s.choice is not None for s in procedure.steps):
        counted = counted_params(procedure, set(out.values))
        out.counted = frozenset(counted)
        out.learnable = sum(1 for p in procedure.params
                            if p.extractor is not None and p.name in counted)
    return out


def bind_params(params: Sequence[Param | BindSpec], task: str) -> Binding:
    """Bind what can be bound of ``params`` from ``task`` (see :func:`bind_task`).

    Span safety: a value is left unbound (its span kept as a candidate, so the
    replay pauses with it) when its span overlaps another param's span without
    being the same span, or when a free-text value (kind ``text``) runs into
    another param's learned left context ("... because no longer needed and
    ship to 12 Main St" does not bind past "ship to" when another param starts
    after "to").
    """
    out = Binding()
    taken: set[tuple[int, int]] = set()
    found_by: dict[str, tuple[Any, int, int, bool, Extractor]] = {}
    for p in params:
        if p.extractor is None:
            continue
        out.learnable += 1
        found, cands = find_shared(p.extractor, task)
        if found is not None and (found.start, found.end) in taken:
            cands = (found.value,)
            found = None
        if found is None:
            if cands:
                out.candidates[p.name] = list(cands)
            continue
        try:
            value = _coerce(found.value, p.schema_)
        except ValueError:
            out.candidates[p.name] = [found.value]
            continue
        found_by[p.name] = (value, found.start, found.end, found.anchored, p.extractor)
        taken.add((found.start, found.end))
    overlapping = _overlapping({(f[1], f[2]) for f in found_by.values()})
    contexts: list[tuple[str, str]] | None = None
    for name, (value, start, end, anchored, ex) in found_by.items():
        clash = (start, end) in overlapping
        if not clash and ex.kind == "text":
            if contexts is None:
                contexts = [(p.name, p.extractor.before) for p in params
                            if p.extractor is not None and wordy(p.extractor.before)]
            span = task[start:end]
            clash = any(other != name and _search(before, span)
                        for other, before in contexts)
        if clash:
            out.candidates[name] = [task[start:end]]
            continue
        out.values[name] = value
        out.spans[name] = (start, end)
        if anchored:
            out.anchored.add(name)
    return out


def _overlapping(spans: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """The spans that overlap another (different) span: one sweep in start order."""
    out: set[tuple[int, int]] = set()
    if len(spans) < 2:
        return out
    reach: tuple[int, int] | None = None
    for span in sorted(spans):
        if reach is not None and span[0] < reach[1]:
            out.update((span, reach))
        if reach is None or span[1] > reach[1]:
            reach = span
    return out


def _search(rx: str, text: str) -> bool:
    """``rx`` (a stored extractor context) found in ``text``, on RE2 (stored
    extractors were checked to compile there, see :func:`induction.extract.check_extractor`)."""
    return compile_user(rx, what="extractor before").search(text) is not None
