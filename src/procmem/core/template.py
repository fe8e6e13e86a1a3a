"""Args templates: JSON with a few marked reference nodes.

A reference node is a JSON object whose first-class key starts with ``$``:

* ``{"$param": "order_id"}`` — the value of a procedure param;
* ``{"$step": "s1", "path": "/orders/0"}`` — an earlier step's output (parsed
  when it is JSON text), addressed by a JSON Pointer (RFC 6901); ``s1`` may also
  name a *choice* (steps with ``choice: "s1"``, see :mod:`procmem.core.alternatives`):
  the output of the last step of the alternative that ran;
* ``{"$ask": "which order to return", "from": <ref>}`` — a hole filled at replay
  time, optionally choosing from candidates (``from`` is a ``$step`` ref to a list,
  or a ``$select`` node: its matching elements);
* ``{"$select": <$step ref>, "where": [<predicate>, ...], "get": "/product_id"}`` —
  a *selection*: the element of an earlier step's list (or of an object used as a
  map: its values are the candidates, in key order) that satisfies every
  predicate, then the JSON Pointer ``get`` into it (default ``""``: the element).
  A predicate is ``{"path": <pointer into the element>, "equals": <value>}`` or
  ``{"path": ..., "contains": <value>}`` (the field is a list holding an equal
  value); ``<value>`` is a JSON literal (``$literal``-escaped when it has a ``$``
  key) or a ``$param`` node. Equality is JSON equality (``true`` is not ``1``).
  An element is a candidate match when every predicate holds and ``get``
  resolves in it. The selection resolves only when one element matches (or
  several whose ``get`` values are equal: the value is then decided); zero or
  several matches are a need keyed like an ``$ask`` at that place, whose
  candidates are the matching elements (every element when none match), so a
  selection never picks silently. Optional ``"prompt"``: the question of that need.
  A position (``/orders/3``) is fitted to one user's data; a selection says
  *which* element, so it carries over to another user's list;
* ``{"$literal": <any>}`` — escapes a literal object that itself has a ``$`` key.

Everything else is a literal. Data stays data: an object with a ``$`` key that
comes from a trace (args or outputs) enters a template only through
:func:`literal`, so a replay sends it back exactly as demonstrated
(:func:`has_reserved_key`). Invariants: :func:`bind` never returns a value
that still contains a reference node; :func:`validate` rejects every reference
that could not bind (unknown param, later or unknown step, bad pointer).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from .errors import InvalidTemplate

__all__ = [
    "ask",
    "bind",
    "has_reserved_key",
    "escape_pointer",
    "is_ref",
    "join_pointer",
    "literal",
    "param",
    "parse_output",
    "inner_refs",
    "json_equal",
    "references",
    "rename_refs",
    "resolve_pointer",
    "select",
    "select_candidates",
    "select_matches",
    "step_ref",
    "validate",
]

REF_KEYS = ("$param", "$step", "$ask", "$select", "$literal")


def param(name: str) -> dict[str, Any]:
    """A ``$param`` reference node."""
    return {"$param": name}


def step_ref(step_id: str, path: str = "") -> dict[str, Any]:
    """A ``$step`` reference node (``path`` is a JSON Pointer)."""
    return {"$step": step_id, "path": path}


def select(
    source: dict[str, Any], where: list[dict[str, Any]], get: str = ""
) -> dict[str, Any]:
    """A ``$select`` node: the element of ``source`` (a ``$step`` ref) matching ``where``."""
    return {"$select": source, "where": where, "get": get}


def ask(prompt: str, from_: dict[str, Any] | None = None) -> dict[str, Any]:
    """An ``$ask`` hole, optionally with candidates ``from`` a ``$step`` or ``$select`` node."""
    node: dict[str, Any] = {"$ask": prompt}
    if from_ is not None:
        node["from"] = from_
    return node


def literal(value: Any) -> Any:
    """``value`` as a template literal, escaped with ``$literal`` only when needed."""
    if _needs_escape(value):
        return {"$literal": value}
    return value


def has_reserved_key(value: Any) -> bool:
    """True when ``value`` is an object with a ``$`` key at its top.

    Every ``$`` key is reserved by the template language (the reference keys
    ``$param``, ``$step``, ``$ask``, ``$select``, ``$literal`` and any added later), so such an
    object taken from data (a trace's args or outputs) is one opaque value: it
    is never descended into to build a template, and it enters a template only
    through :func:`literal`, escaped.
    """
    return isinstance(value, dict) and any(str(k).startswith("$") for k in value)


def _needs_escape(value: Any) -> bool:
    if isinstance(value, dict):
        return has_reserved_key(value) or any(
            _needs_escape(v) for v in value.values()
        )
    if isinstance(value, list):
        return any(_needs_escape(v) for v in value)
    return False


def is_ref(node: Any) -> bool:
    """True when ``node`` is a reference node (a key of :data:`REF_KEYS`)."""
    return isinstance(node, dict) and any(k in node for k in REF_KEYS)


def escape_pointer(token: str) -> str:
    """Escape one JSON Pointer reference token (RFC 6901 §4: ``~`` -> ``~0``, ``/`` -> ``~1``)."""
    return str(token).replace("~", "~0").replace("/", "~1")


def join_pointer(base: str, token: str | int) -> str:
    """``base`` + ``/`` + escaped ``token``."""
    return f"{base}/{escape_pointer(str(token))}"


def parse_output(output: Any) -> Any:
    """A tool output as JSON data: JSON text is parsed, anything else is returned as is."""
    if isinstance(output, str | bytes):
        text = output.strip()
        if text[:1] in (b"{", b"[", "{", "[", '"') or text in ("true", "false", "null"):
            try:
                return json.loads(text)
            except ValueError:
                return output
    return output


_MISSING = object()


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """The value at a JSON Pointer (RFC 6901) in ``doc``.

    Args:
        doc: Parsed JSON (dict / list / scalars). JSON text is parsed first.
        pointer: ``""`` for the whole document or ``/a/0/b``.

    Raises:
        KeyError: The pointer does not resolve (message names the failing token).
        InvalidTemplate: The pointer is malformed.
    """
    doc = parse_output(doc)
    if pointer == "":
        return doc
    if not pointer.startswith("/"):
        raise InvalidTemplate(f"JSON Pointer must be empty or start with '/': {pointer!r}")
    cur = doc
    for raw in pointer[1:].split("/"):
        tok = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, str):
            cur = parse_output(cur)
        if isinstance(cur, dict):
            if tok not in cur:
                raise KeyError(f"no key {tok!r} at {pointer!r}")
            cur = cur[tok]
        elif isinstance(cur, list):
            if not tok.isdigit() or (len(tok) > 1 and tok[0] == "0"):
                raise KeyError(f"bad array index {tok!r} at {pointer!r}")
            i = int(tok)
            if i >= len(cur):
                raise KeyError(f"index {i} out of range at {pointer!r}")
            cur = cur[i]
        else:
            raise KeyError(f"cannot descend into {type(cur).__name__} at {pointer!r}")
    return cur


def references(template: Any, base: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every reference node in ``template`` with its JSON Pointer location.

    ``$literal`` nodes are yielded too (so callers can see escapes) but never
    descended into. Order: depth-first, document order.
    """
    if is_ref(template):
        yield base, template
        return
    if isinstance(template, dict):
        for k, v in template.items():
            yield from references(v, join_pointer(base, k))
    elif isinstance(template, list):
        for i, v in enumerate(template):
            yield from references(v, join_pointer(base, i))


def validate(
    template: Any,
    *,
    params: set[str],
    earlier_steps: set[str],
    step_id: str | None = None,
) -> None:
    """Check that every reference in ``template`` could bind.

    Raises:
        InvalidTemplate: Unknown param, a ``$step`` that is not an earlier step,
            a malformed pointer or ``$select`` predicate, or a node with an unknown
            ``$`` key.
    """
    for path, node in references(template):
        _validate_node(node, path, params, earlier_steps, step_id)


def _validate_node(
    node: dict[str, Any], path: str, params: set[str], earlier: set[str], step_id: str | None
) -> None:
    kinds = [k for k in REF_KEYS if k in node]
    if len(kinds) != 1:
        raise InvalidTemplate(f"ambiguous reference node {node!r}", step_id=step_id, path=path)
    kind = kinds[0]
    allowed = {"$param": {"$param"}, "$step": {"$step", "path"}, "$ask": {"$ask", "from"},
               "$select": {"$select", "where", "get", "prompt"},
               "$literal": {"$literal"}}[kind]
    extra = set(node) - allowed
    if extra:
        raise InvalidTemplate(
            f"unknown key(s) {sorted(extra)} in {kind} reference", step_id=step_id, path=path
        )
    if kind == "$param":
        name = node["$param"]
        if not isinstance(name, str) or name not in params:
            raise InvalidTemplate(f"unknown param {name!r}", step_id=step_id, path=path)
    elif kind == "$step":
        ref = node["$step"]
        if not isinstance(ref, str) or ref not in earlier:
            raise InvalidTemplate(
                f"$step {ref!r} is not an earlier step", step_id=step_id, path=path
            )
        _check_pointer(node.get("path", ""), step_id, path)
    elif kind == "$select":
        _validate_select(node, path, params, earlier, step_id)
    elif kind == "$ask":
        if not isinstance(node["$ask"], str):
            raise InvalidTemplate("$ask prompt must be a string", step_id=step_id, path=path)
        if "from" in node:
            src = node["from"]
            if not (isinstance(src, dict) and ("$step" in src or "$select" in src)):
                raise InvalidTemplate("$ask 'from' must be a $step or $select reference",
                                      step_id=step_id, path=path)
            _validate_node(src, path + "#from", params, earlier, step_id)


def _check_pointer(pointer: Any, step_id: str | None, path: str) -> None:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise InvalidTemplate(f"bad JSON Pointer {pointer!r}", step_id=step_id, path=path)


def _validate_select(
    node: dict[str, Any], path: str, params: set[str], earlier: set[str], step_id: str | None
) -> None:
    src = node["$select"]
    if not (isinstance(src, dict) and "$step" in src):
        raise InvalidTemplate("$select source must be a $step reference",
                              step_id=step_id, path=path)
    _validate_node(src, path + "#select", params, earlier, step_id)
    _check_pointer(node.get("get", ""), step_id, path)
    if "prompt" in node and not isinstance(node["prompt"], str):
        raise InvalidTemplate("$select prompt must be a string", step_id=step_id, path=path)
    where = node.get("where", [])
    if not isinstance(where, list):
        raise InvalidTemplate("$select 'where' must be a list of predicates",
                              step_id=step_id, path=path)
    for n, pred in enumerate(where):
        at = f"{path}#where/{n}"
        ops = [k for k in ("equals", "contains") if isinstance(pred, dict) and k in pred]
        if not isinstance(pred, dict) or len(ops) != 1 or set(pred) != {"path", ops[0]}:
            raise InvalidTemplate(
                "a $select predicate is {'path': pointer, 'equals' or 'contains': value}",
                step_id=step_id, path=at)
        _check_pointer(pred["path"], step_id, at)
        value = pred[ops[0]]
        if is_ref(value):
            if "$param" not in value and "$literal" not in value:
                raise InvalidTemplate("a $select predicate value is a literal or a $param",
                                      step_id=step_id, path=at)
            _validate_node(value, at, params, earlier, step_id)
        elif _needs_escape(value):
            raise InvalidTemplate("a literal with a '$' key must be escaped with $literal",
                                  step_id=step_id, path=at)


def inner_refs(node: Any) -> Iterator[dict[str, Any]]:
    """``node`` (a reference node) and the reference nodes nested in it, depth-first:
    an ``$ask``'s ``from``, a ``$select``'s source and its predicates' ``$param`` values.

    Use it to find every step or param a reference reads (or to rename them in a copy).
    """
    if not is_ref(node) or "$literal" in node:
        return
    yield node
    if "$ask" in node and isinstance(node.get("from"), dict):
        yield from inner_refs(node["from"])
    if "$select" in node:
        yield from inner_refs(node["$select"])
        where = node.get("where")
        for pred in where if isinstance(where, list) else []:
            for op in ("equals", "contains"):
                if isinstance(pred, dict) and op in pred:
                    yield from inner_refs(pred[op])


def rename_refs(template: Any, *, param: Callable[[str], str] | None = None,
                step: Callable[[str], str] | None = None) -> Any:
    """A copy of ``template`` with param names and step ids mapped.

    Args:
        template: An args template.
        param: Maps a ``$param`` name (identity when ``None``).
        step: Maps a ``$step`` id, also inside ``$ask`` ``from`` (identity when ``None``).

    Returns:
        The new template; ``$literal`` nodes are copied untouched. Nodes are
        visited depth-first in document order (callers that number names by
        first use rely on it).
    """
    if is_ref(template):
        node = json.loads(json.dumps(template))
        for ref in inner_refs(node):
            if param is not None and isinstance(ref.get("$param"), str):
                ref["$param"] = param(ref["$param"])
            if step is not None and isinstance(ref.get("$step"), str):
                ref["$step"] = step(ref["$step"])
        return node
    if isinstance(template, dict):
        return {k: rename_refs(v, param=param, step=step) for k, v in template.items()}
    if isinstance(template, list):
        return [rename_refs(v, param=param, step=step) for v in template]
    return template


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: like ``==`` but a boolean never equals a number (``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict | list) or isinstance(b, dict | list):
        return False
    return bool(a == b)


def select_candidates(source: Any) -> list[Any] | None:
    """The candidates of a ``$select`` source value: a list's elements, or an object's
    values in key order (an object used as a map); ``None`` for anything else."""
    source = parse_output(source)
    if isinstance(source, list):
        return list(source)
    if isinstance(source, dict):
        return list(source.values())
    return None


def select_matches(
    candidates: list[Any], where: list[tuple[str, str, Any]], get: str
) -> list[tuple[Any, Any]]:
    """``(element, value at get)`` of every candidate that satisfies every predicate.

    Args:
        candidates: From :func:`select_candidates`.
        where: ``(pointer, "equals" | "contains", value)`` with values already bound
            (no ``$param`` left).
        get: JSON Pointer into a matching element; an element where it does not
            resolve is not a match.
    """
    out: list[tuple[Any, Any]] = []
    for element in candidates:
        if all(_holds(element, ptr, op, want) for ptr, op, want in where):
            try:
                out.append((element, resolve_pointer(element, get)))
            except (KeyError, InvalidTemplate):
                continue
    return out


def _holds(element: Any, pointer: str, op: str, want: Any) -> bool:
    try:
        field = resolve_pointer(element, pointer)
    except (KeyError, InvalidTemplate):
        return False
    if op == "contains":
        return isinstance(field, list) and any(json_equal(x, want) for x in field)
    return json_equal(field, want)


Resolver = Callable[[str, dict[str, Any]], tuple[Any, str]]


def bind(template: Any, resolve: Resolver, base: str = "") -> tuple[Any, dict[str, str]]:
    """Replace every reference node in ``template`` by its value.

    Args:
        template: The args template.
        resolve: ``resolve(pointer, node) -> (value, source)`` for a ``$param``,
            ``$step``, ``$select`` or ``$ask`` node at ``pointer``; ``source`` is a provenance
            label such as ``"param:order_id"``. It may raise to abort binding.
        base: Pointer prefix of ``template`` in the whole args.

    Returns:
        ``(bound, sources)``: the bound JSON value (no reference left in it) and
        a map from JSON Pointer to provenance for every resolved node.
    """
    sources: dict[str, str] = {}
    return _bind(template, resolve, base, sources), sources


def _bind(t: Any, resolve: Resolver, path: str, sources: dict[str, str]) -> Any:
    if is_ref(t):
        if "$literal" in t:
            return t["$literal"]
        value, source = resolve(path, t)
        sources[path] = source
        return value
    if isinstance(t, dict):
        return {k: _bind(v, resolve, join_pointer(path, k), sources) for k, v in t.items()}
    if isinstance(t, list):
        return [_bind(v, resolve, join_pointer(path, i), sources) for i, v in enumerate(t)]
    return t
