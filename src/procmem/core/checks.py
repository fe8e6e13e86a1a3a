"""Checks replay makes, all pure functions without I/O.

* Before a run: the sub-procedure tree has no cycle and no missing procedure
  (:func:`check_subprocedures`), every action has a tool (:func:`check_tools`),
  params have known names and the JSON types their schemas declare
  (:func:`check_params`).
* After each tool call: ``expect`` checks on the output (:func:`evaluate`).

Invariants:
    * :func:`evaluate` never raises for any output: it returns ``None`` when the
      check passes, else a one-line reason.
    * JSON semantics, not Python ones: ``true`` is a boolean, never a number, so
      ``equals 1`` does not match ``true``; an ``integer`` is also a ``number``.
    * Outputs are addressed like ``$step`` references: JSON text is parsed, and
      ``path`` is a JSON Pointer (RFC 6901) with ``""`` for the whole output.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import CycleError, InvalidProcedure, InvalidTemplate, NotFound, ParamError, UnknownTool
from .model import Check, Procedure
from .template import resolve_pointer, validate

__all__ = [
    "JSON_TYPES",
    "check_params",
    "check_subprocedures",
    "check_templates",
    "check_tools",
    "evaluate",
    "first_failure",
    "json_type",
    "procedure_tree",
    "type_matches",
]

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object", "null")


def json_type(value: Any) -> str | None:
    """The JSON Schema type name of a Python value, or ``None`` if it is not JSON.

    Integral values are ``"integer"`` (``2.0`` too, as JSON Schema says);
    other floats are ``"number"``.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def type_matches(value: Any, expected: str | list[str]) -> bool:
    """True when ``value`` has the JSON Schema ``type`` ``expected``.

    Args:
        value: Any Python value.
        expected: A type name from :data:`JSON_TYPES` or a list of them (any may
            match). Unknown names never match.
    """
    names = [expected] if isinstance(expected, str) else list(expected)
    actual = json_type(value)
    return any(n == actual or (n == "number" and actual == "integer") for n in names)


def _same(a: Any, b: Any) -> bool:
    """JSON equality at the top level: booleans are never equal to numbers."""
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def _contains(container: Any, item: Any) -> bool | None:
    """Substring, list member or object key; ``None`` when ``container`` is none of those."""
    if isinstance(container, str):
        return (item if isinstance(item, str) else str(item)) in container
    if isinstance(container, list):
        return any(_same(x, item) for x in container)
    if isinstance(container, dict):
        return isinstance(item, str) and item in container
    return None


def evaluate(check: Check, output: Any) -> str | None:
    """Apply one check to a step output.

    Args:
        check: ``op`` (``exists`` / ``equals`` / ``contains`` / ``not_contains`` /
            ``type``), ``path`` and ``value``.
        output: The step output, JSON data or JSON text.

    Returns:
        ``None`` when the check passes, else the reason, e.g.
        ``"/status equals 'delivered' (got 'pending')"``. A path that does not
        resolve fails every op except ``not_contains``.
    """
    where = check.path or "output"
    try:
        value = resolve_pointer(output, check.path)
    except (KeyError, InvalidTemplate) as err:
        if check.op == "not_contains":
            return None
        reason = err.args[0] if err.args else str(err)
        return f"{where} does not resolve ({reason})"
    if check.op == "exists":
        return None
    if check.op == "equals":
        return None if _same(value, check.value) else (
            f"{where} equals {check.value!r} (got {value!r})"
        )
    if check.op == "type":
        expected = check.value
        if not isinstance(expected, str | list) or not expected:
            return f"type check at {where} needs a JSON type name, got {expected!r}"
        if type_matches(value, expected):
            return None
        return f"{where} is of type {expected!r} (got {json_type(value) or type(value).__name__})"
    found = _contains(value, check.value)
    if check.op == "contains":
        if found:
            return None
        if found is None:
            return f"{where} contains {check.value!r} (got a {json_type(value)}, not a container)"
        return f"{where} contains {check.value!r} (got {_short(value)})"
    # not_contains: a value that is not a container contains nothing.
    return None if not found else f"{where} does not contain {check.value!r} (got {_short(value)})"


def first_failure(checks: Iterable[Check], output: Any) -> str | None:
    """The reason of the first failing check in order, or ``None`` when all pass."""
    for check in checks:
        reason = evaluate(check, output)
        if reason is not None:
            return reason
    return None


# ------------------------------------------------------------------ before a run


def check_subprocedures(procedure: Procedure, procedures: Mapping[str, Procedure]) -> None:
    """Check the whole sub-procedure tree of ``procedure`` before anything runs.

    Args:
        procedure: The procedure to run.
        procedures: Sub-procedures by name (the versions replay will use).

    Raises:
        CycleError: A procedure calls itself, directly or through others.
        NotFound: A ``procedure:NAME`` step names a procedure not in ``procedures``.
        InvalidProcedure: A sub-procedure step passes an arg that is not a param
            of the sub-procedure.
    """
    done: set[str] = set()

    def visit(proc: Procedure, chain: tuple[str, ...]) -> None:
        chain = (*chain, proc.name)
        for step in proc.steps:
            name = step.subprocedure
            if name is None:
                continue
            if name in chain:
                raise CycleError([*chain, name])
            child = procedures.get(name)
            if child is None:
                raise NotFound("procedure", name)
            unknown = sorted(set(step.args) - {p.name for p in child.params})
            if unknown:
                raise InvalidProcedure(
                    proc.name, f"step {step.id!r} passes unknown param(s) {unknown} to {name!r}"
                )
            if name not in done:
                visit(child, chain)
        done.add(proc.name)

    visit(procedure, ())


def check_templates(procedure: Procedure) -> None:
    """Check that every step's args template could bind (see :func:`core.template.validate`).

    A ``$param`` must name a param of ``procedure``; a ``$step`` an earlier step
    outside any choice, an earlier step of the same option of the same choice, or
    a choice whose steps all come earlier (its output: the option that ran).

    Raises:
        InvalidTemplate: The first bad reference, naming its step and JSON Pointer.
    """
    names = {p.name for p in procedure.params}
    earlier: set[str] = set()
    option: set[str] = set()  # the earlier steps of the current option
    steps = procedure.steps
    for i, step in enumerate(steps):
        validate(step.args, params=names, earlier_steps=earlier | option, step_id=step.id)
        if step.choice is None:
            earlier.add(step.id)
            continue
        option.add(step.id)
        after = steps[i + 1] if i + 1 < len(steps) else None
        if after is None or after.choice != step.choice or after.option != step.option:
            option = set()
        if after is None or after.choice != step.choice:
            earlier.add(step.choice)


def check_tools(
    procedure: Procedure, procedures: Mapping[str, Procedure], tools: Mapping[str, Any]
) -> None:
    """Check that every tool action in the sub-procedure tree has a tool.

    Raises:
        UnknownTool: An action has no entry in ``tools`` (message lists the registry).
        NotFound: A sub-procedure is missing from ``procedures``.
    """
    for proc in procedure_tree(procedure, procedures, missing="raise"):
        for step in proc.steps:
            if step.subprocedure is None and step.action not in tools:
                raise UnknownTool(step.action, list(tools))


def procedure_tree(procedure: Procedure, procedures: Mapping[str, Procedure], *,
                   missing: str = "skip") -> Iterator[Procedure]:
    """``procedure`` and every sub-procedure it reaches, once each, depth first.

    Args:
        procedure: The root.
        procedures: Sub-procedures by name.
        missing: ``"skip"`` leaves out a ``procedure:NAME`` step whose NAME is
            not in ``procedures``; ``"raise"`` raises ``NotFound`` for it.

    Raises:
        NotFound: A sub-procedure is missing and ``missing`` is ``"raise"``.
    """
    seen: set[str] = set()
    stack = [procedure]
    while stack:
        proc = stack.pop()
        if proc.name in seen:
            continue
        seen.add(proc.name)
        yield proc
        for step in proc.steps:
            name = step.subprocedure
            if name is None:
                continue
            if name in procedures:
                stack.append(procedures[name])
            elif missing == "raise":
                raise NotFound("procedure", name)


def check_params(procedure: Procedure, params: Mapping[str, Any]) -> None:
    """Check param names and the JSON Schema ``type`` of each value.

    Only ``type`` is checked (a name or a list of names, see :data:`JSON_TYPES`;
    an ``integer`` is also a ``number``); missing params are not an error here.

    Raises:
        ParamError: A name that is not a param of ``procedure``, or a value of
            the wrong type.
    """
    for name, value in params.items():
        spec = procedure.param(name)
        if spec is None:
            known = ", ".join(p.name for p in procedure.params) or "none"
            raise ParamError(name, f"unknown param of {procedure.name!r} (params: {known})")
        expected = spec.schema_.get("type")
        if isinstance(expected, str | list) and expected and not type_matches(value, expected):
            raise ParamError(name, f"expected {expected}, got {value!r}")


def _short(value: Any, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
