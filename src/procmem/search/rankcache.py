"""Performance mechanics of re-ranking: shared bind specs and one binding per distinct spec set.

Re-ranking (:func:`procmem.search.retrieval.rank`) binds every first-stage candidate's
params from the task (:func:`procmem.induction.bind.bind_params`, about 17 µs per
candidate). Binding is pure: its result depends only on the params' specs and
the task text. So:

* :func:`intern_specs` gives equal spec tuples one shared object (rank views of
  versions and variants that learned the same params share it, and memory holds
  one copy);
* :func:`bind_all` binds each distinct spec tuple once per task and hands the same
  :class:`~procmem.induction.bind.Binding` to every candidate that has it;
* :func:`params_of` lists a template's ``$param`` names without building the JSON
  Pointers :func:`procmem.core.template.references` yields.

Invariant: none of these changes a result — :func:`bind_all` returns, position by
position, bindings equal to ``bind_params(view.params, task)``, and
:func:`params_of` the names :func:`procmem.core.template.references` finds, in its
order. Callers must not mutate a binding :func:`bind_all` returns (it may be shared).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from ..core.template import REF_KEYS, inner_refs
from ..induction.bind import Binding, BindSpec, bind_params

__all__ = ["bind_all", "intern_specs", "params_of"]

_INTERN_MAX = 50_000
"""Distinct spec tuples kept by :func:`intern_specs`; the table is emptied when full
(views made before keep their tuples; later equal ones get a new shared tuple)."""
_interned: dict[tuple[Any, ...], tuple[BindSpec, ...]] = {}
_lock = threading.Lock()


class _HasParams(Protocol):
    @property
    def params(self) -> tuple[BindSpec, ...]: ...


def _spec_key(spec: BindSpec) -> tuple[Any, ...]:
    """A hashable key, equal only for equal specs: the schema's ``repr`` (JSON data
    of different types or values has different reprs; equal dicts written in another
    key order only miss the sharing) and the extractor's field values."""
    ex = spec.extractor
    fields = None if ex is None else (type(ex), tuple(vars(ex).values()))
    return spec.name, repr(spec.schema_), fields


def intern_specs(specs: tuple[BindSpec, ...]) -> tuple[BindSpec, ...]:
    """The shared tuple equal to ``specs`` (``specs`` itself the first time it is seen).

    Specs whose extractor fields are not hashable are returned as they are
    (never shared).
    """
    whole = tuple(map(_spec_key, specs))
    try:
        hash(whole)
    except TypeError:  # an extractor field that is not hashable: not shared
        return specs
    with _lock:
        found = _interned.get(whole)
        if found is None:
            if len(_interned) >= _INTERN_MAX:
                _interned.clear()
            found = _interned[whole] = specs
    return found


def bind_all(views: Sequence[_HasParams], task: str) -> list[Binding]:
    """``[bind_params(v.params, task) for v in views]``, binding each distinct
    ``params`` object once (views with interned, equal specs share it)."""
    memo: dict[int, Binding] = {}
    out = []
    for v in views:
        key = id(v.params)  # every view is alive during the call: ids are not reused
        b = memo.get(key)
        if b is None:
            b = memo[key] = bind_params(v.params, task)
        out.append(b)
    return out


def params_of(template: Any) -> list[str]:
    """The ``$param`` names referenced in ``template``, depth-first in document order
    (the order and nodes of :func:`procmem.core.template.references`, each reference
    node with the references nested in it, :func:`procmem.core.template.inner_refs`:
    a ``$select``'s predicates, an ``$ask``'s ``from``)."""
    out: list[str] = []
    _walk(template, out)
    return out


def _walk(node: Any, out: list[str]) -> None:
    if isinstance(node, dict):
        for k in REF_KEYS:
            if k in node:
                out.extend(ref["$param"] for ref in inner_refs(node) if "$param" in ref)
                return
        for v in node.values():
            _walk(v, out)
    elif isinstance(node, list):
        for v in node:
            _walk(v, out)
