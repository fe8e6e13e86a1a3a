"""Selections in induction: which element of an earlier list a demonstrated value came from.

A value found in an earlier step's output at ``/orders/3/id`` (a list index) or at
``/payment_methods/credit_card_123/id`` (a key that is data) is fitted to the
demonstrating user's data: on another user the same position names another
element, or nothing. :func:`infer_reference` turns such a place into a
``$select`` node (:mod:`procmem.core.template`) that says *which* element, by
predicates true of the demonstrated element in every demonstration.

Algorithm, for one earlier step's output in every demonstration:

1. Each place the value was found splits into a *container* (a list, or an
   object used as a map), the chosen element's key, and the pointer ``get``
   inside the element. A map is decided structurally: an object whose values are
   two or more objects with one key set, or whose key equals a scalar inside its
   element (``"credit_card_123": {"id": "credit_card_123", ...}``). Only places
   with exactly one such step are kept, with the same container and ``get`` in
   every demonstration.
2. Predicates over the chosen element, tried in this order, each kept only when
   it selects (in every demonstration the elements it matches are non-empty and
   all give the demonstrated value at ``get``, which is what replay requires):

   * equality with a param already bound from the task (or the param appearing
     in a list field: ``contains``), one predicate, then all such together;
   * a fixed position, only when proven: the same key in 2+ demonstrations
     whose containers differ;
   * equality with a new param, when the element's field is named in every
     demonstration's task (created through the ``new_param`` callback);
   * equality with a literal true in every demonstration: needs ``min_literal``
     agreeing demonstrations (induction's ``min_constant``, 48 by default: the
     bar of a literal argument, since a few cannot tell a constant from a
     coincidence).
3. Nothing selects -> an ``$ask`` whose candidates come from the container.

Invariants: pure (no I/O), deterministic for equal inputs; a ``$select`` node is
returned only when its predicates select the demonstrated value in every
demonstration; a position is kept only when proven as above.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from . import template as tpl

__all__ = ["Place", "fixed_pointers", "infer_reference", "param_values"]

Same = Callable[[Any, Any], bool]
NewParam = Callable[[list[Any], str], "str | None"]


@dataclass(frozen=True)
class Place:
    """A value's place in an output: ``container`` + one element key + ``get``."""

    container: str
    get: str


def _tokens(pointer: str) -> list[str]:
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]


def _pointer(tokens: Sequence[str]) -> str:
    return "".join("/" + tpl.escape_pointer(t) for t in tokens)


def is_map(obj: Any, key: str | None = None) -> bool:
    """Whether an object is used as a map (its keys are data, see the module docstring)."""
    if not isinstance(obj, dict) or not obj:
        return False
    values = list(obj.values())
    if len(values) >= 2 and all(isinstance(v, dict) and v for v in values):
        if len({tuple(sorted(v)) for v in values}) == 1:
            return True
    keys = [key] if key is not None else list(obj)
    return all(isinstance(obj.get(k), dict) and any(
        isinstance(x, str) and x == k for x in obj[k].values()) for k in keys)


def _split(doc: Any, pointer: str) -> tuple[Place, str] | None | bool:
    """``(place, key)`` when the pointer steps through exactly one list or map;
    ``False`` when through none (a fixed pointer); ``None`` when through several."""
    cur, found = tpl.parse_output(doc), None
    tokens = _tokens(pointer)
    for n, tok in enumerate(tokens):
        cur = tpl.parse_output(cur)
        if isinstance(cur, list) or (isinstance(cur, dict) and is_map(cur, tok)):
            if found is not None:
                return None
            found = n
        cur = cur[int(tok)] if isinstance(cur, list) else cur[tok]
    if found is None:
        return False
    return Place(_pointer(tokens[:found]), _pointer(tokens[found + 1:])), tokens[found]


def fixed_pointers(docs: Sequence[Any], hits: Sequence[set[str]]) -> set[str]:
    """The pointers found in every demonstration that step through no list or map."""
    common = set.intersection(*hits) if hits else set()
    return {p for p in common if all(_split(d, p) is False for d in docs)}


def param_values(param_by_values: Mapping[str, list[str]], n: int) -> dict[str, list[Any]]:
    """``{param: [value in each demonstration]}`` from induction's ``param_by_values``
    (keys are the demonstrations' canonical JSON values joined by ``|``)."""
    out: dict[str, list[Any]] = {}
    decoder = json.JSONDecoder()
    for key, names in param_by_values.items():
        values, pos = [], 0
        try:
            while pos < len(key):
                value, pos = decoder.raw_decode(key, pos)
                values.append(value)
                pos += 1  # the "|" separator
        except ValueError:
            continue
        if len(values) == n:
            for name in names:
                out.setdefault(name, values)
    return out


@dataclass
class _Demo:
    candidates: list[Any]
    chosen: Any
    keys: list[str]
    value: Any


def infer_reference(
    values: Sequence[Any],
    docs: Sequence[Any],
    hits: Sequence[set[str]],
    step_id: str,
    *,
    params: Mapping[str, list[Any]],
    same: Same,
    prompt: str,
    new_param: NewParam | None = None,
    min_literal: int = 2,
) -> dict[str, Any] | None:
    """A reference to the element of an earlier output each demonstration used.

    Args:
        values: The argument's value in each demonstration.
        docs: The earlier step's parsed output in each demonstration.
        hits: The pointers of ``docs[j]`` holding ``values[j]``, per demonstration.
        step_id: The earlier step's id.
        params: Values of the params bound so far, one per demonstration.
        same: Whether an output value equals an argument value (induction's test).
        prompt: The question of an ``$ask`` when nothing selects.
        new_param: ``new_param(values, field pointer)`` creates a param from a field
            value named in every task and returns its name (or ``None``).
        min_literal: Demonstrations that must agree before a literal predicate
            (``status == "pending"``) is believed; induction passes its
            ``min_constant`` (:data:`procmem.induction.induce.MIN_CONSTANT`), the same bar as
            a literal argument.

    Returns:
        A ``$select`` node, a ``$step`` node at a proven position, an ``$ask`` with
        candidates from the container, or ``None`` when no place is shared by every
        demonstration.
    """
    places: dict[Place, list[str]] | None = None
    for doc, found in zip(docs, hits, strict=True):
        here: dict[Place, list[str]] = {}
        for p in sorted(found):
            split = _split(doc, p)
            if isinstance(split, tuple):
                here.setdefault(split[0], []).append(split[1])
        places = here if places is None else {
            pl: keys for pl, keys in places.items() if pl in here}
        if not places:
            return None
    assert places is not None
    ordered = sorted(places, key=lambda pl: (pl.container.count("/"), pl.get.count("/"),
                                             pl.container, pl.get))
    for place in ordered:
        node = _reference_at(place, values, docs, step_id, params, same, new_param,
                             min_literal)
        if node is not None:
            return node
    first = ordered[0]
    src = tpl.step_ref(step_id, first.container)
    if isinstance(tpl.resolve_pointer(docs[0], first.container), dict):
        return tpl.ask(prompt, tpl.select(src, [], first.get))
    return tpl.ask(prompt, src)


def _reference_at(place: Place, values: Sequence[Any], docs: Sequence[Any], step_id: str,
                  params: Mapping[str, list[Any]], same: Same,
                  new_param: NewParam | None, min_literal: int) -> dict[str, Any] | None:
    demos = []
    for v, doc in zip(values, docs, strict=True):
        container = tpl.resolve_pointer(doc, place.container)
        cands = tpl.select_candidates(container) or []
        keys = list(container) if isinstance(container, dict) else \
            [str(i) for i in range(len(cands))]
        chosen = [k for k, c in zip(keys, cands, strict=True) if _get_same(c, place.get, v, same)]
        if not chosen:
            return None
        demos.append(_Demo(cands, cands[keys.index(chosen[0])], chosen, v))
    src = tpl.step_ref(step_id, place.container)

    def works(where: list[dict[str, Any]]) -> bool:
        return all(_selects(d, where, place.get, params, j, same) for j, d in enumerate(demos))

    fields = _fields(demos)
    by_param = [pred for f in fields for pred in _param_predicates(f, demos, params)]
    for pred in by_param:
        if works([pred]):
            return tpl.select(src, [pred], place.get)
    if len(by_param) > 1 and works(by_param):
        return tpl.select(src, by_param, place.get)
    if len(demos) >= 2 and _proven_position(demos, docs, place.container):
        key = demos[0].keys[0]  # the same element in every demonstration
        return tpl.step_ref(step_id, place.container + "/" + tpl.escape_pointer(key) + place.get)
    if new_param is not None:
        for f in fields:
            xs = [tpl.resolve_pointer(d.chosen, f) for d in demos]
            if all(isinstance(x, str) and len(x) >= 3 for x in xs):
                trial = {"path": f, "equals": tpl.param("")}  # "": the trial's values
                if all(_selects(d, [trial], place.get, {"": xs}, j, same)
                       for j, d in enumerate(demos)):
                    name = new_param(xs, f)
                    if name is not None:
                        return tpl.select(src, [{"path": f, "equals": tpl.param(name)}],
                                          place.get)
    if len(demos) < max(2, min_literal):
        return None  # a literal predicate needs as many agreeing demonstrations as a literal
    chosen_preds: list[dict[str, Any]] = list(by_param)
    for f in fields:
        xs = [tpl.resolve_pointer(d.chosen, f) for d in demos]
        if all(tpl.json_equal(x, xs[0]) for x in xs) and _scalar(xs[0]):
            pred = {"path": f, "equals": tpl.literal(xs[0])}
            if _narrows(demos, [*chosen_preds, pred], chosen_preds, place.get, params):
                chosen_preds.append(pred)
                if works(chosen_preds):
                    return tpl.select(src, chosen_preds, place.get)
    return None


def _scalar(x: Any) -> bool:
    return x is None or isinstance(x, str | int | float | bool)


def _get_same(element: Any, get: str, v: Any, same: Same) -> bool:
    try:
        return same(tpl.resolve_pointer(element, get), v)
    except (KeyError, tpl.InvalidTemplate):
        return False


def _fields(demos: list[_Demo]) -> list[str]:
    """Pointers of the scalar and list leaves present in every chosen element."""
    out: list[str] | None = None
    for d in demos:
        here = [p for p, x in _leaves(d.chosen) if _scalar(x) or isinstance(x, list)]
        out = here if out is None else [p for p in out if p in set(here)]
    return out or []


def _leaves(obj: Any, base: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict) and obj:
        return [leaf for k, v in obj.items() for leaf in _leaves(v, tpl.join_pointer(base, k))]
    return [(base, obj)]


def _param_predicates(field: str, demos: list[_Demo],
                      params: Mapping[str, list[Any]]) -> list[dict[str, Any]]:
    xs = [tpl.resolve_pointer(d.chosen, field) for d in demos]
    out = []
    for name in sorted(params):
        want = params[name]
        if not all(isinstance(w, str) and len(w) >= 2 for w in want):
            continue
        if all(tpl.json_equal(x, w) for x, w in zip(xs, want, strict=True)):
            out.append({"path": field, "equals": tpl.param(name)})
        elif all(isinstance(x, list) and any(tpl.json_equal(e, w) for e in x)
                 for x, w in zip(xs, want, strict=True)):
            out.append({"path": field, "contains": tpl.param(name)})
    return out


def _bound(where: list[dict[str, Any]], params: Mapping[str, list[Any]],
           j: int) -> list[tuple[str, str, Any]]:
    out = []
    for pred in where:
        op = "contains" if "contains" in pred else "equals"
        want = pred[op]
        if isinstance(want, dict) and "$param" in want:
            want = params[want["$param"]][j]
        elif isinstance(want, dict) and "$literal" in want:
            want = want["$literal"]
        out.append((pred["path"], op, want))
    return out


def _selects(d: _Demo, where: list[dict[str, Any]], get: str,
             params: Mapping[str, list[Any]], j: int, same: Same) -> bool:
    """Replay's rule: the matches are non-empty and all give the demonstrated value."""
    matches = tpl.select_matches(d.candidates, _bound(where, params, j), get)
    return bool(matches) and all(same(value, d.value) for _, value in matches)


def _narrows(demos: list[_Demo], more: list[dict[str, Any]], before: list[dict[str, Any]],
             get: str, params: Mapping[str, list[Any]]) -> bool:
    """Whether ``more`` matches fewer elements than ``before`` in some demonstration."""
    return any(
        len(tpl.select_matches(d.candidates, _bound(more, params, j), get))
        < len(tpl.select_matches(d.candidates, _bound(before, params, j), get))
        for j, d in enumerate(demos))


def _proven_position(demos: list[_Demo], docs: Sequence[Any], container: str) -> bool:
    """The same key in every demonstration, and the containers differ."""
    key = demos[0].keys[0]
    if not all(key in d.keys for d in demos):
        return False
    contents = {json.dumps(tpl.resolve_pointer(doc, container), sort_keys=True) for doc in docs}
    return len(contents) >= 2
