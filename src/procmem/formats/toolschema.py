"""Tool schemas: parse OpenAI function-calling tool lists and check procedure steps against them.

The format is OpenAI's function calling (https://platform.openai.com/docs/guides/function-calling,
the ``tools`` parameter of Chat Completions,
https://platform.openai.com/docs/api-reference/chat/create#chat-create-tools): a list of
``{"type": "function", "function": {"name", "description", "parameters"}}`` where
``parameters`` is a JSON Schema object. Also accepted: bare ``{"name", "parameters"}``
items (the legacy ``functions`` list and the Responses API's flat
``{"type": "function", "name", ...}``) and an object ``{"tools": [...]}``.

Args are checked with a small subset of JSON Schema (https://json-schema.org/draft/2020-12/json-schema-validation):
``type``, ``enum``, ``const``, ``items`` (a schema), ``properties``, ``required`` and
``additionalProperties``; other keywords (``anyOf``, ``pattern``, ``minimum``...) are
ignored, so a check never reports a problem the subset cannot prove.

Strictness (unknown arg names): an object schema that declares ``properties`` is
*closed* unless ``additionalProperties`` is ``true`` or a schema. JSON Schema's
default would be open, but OpenAI's strict mode requires ``additionalProperties:
false`` on every object and procmem calls tools as ``tool(**args)``, where an
unknown keyword fails; an object schema without ``properties`` stays open.

Invariants:
    * Pure: no I/O; the same input always gives the same output.
    * :func:`parse_tools` returns each tool in one normalized form,
      ``{"name", "description", "parameters"}`` (plus ``"strict"`` when given, and
      ``"annotations"`` with the boolean MCP hints such as ``readOnlyHint``);
      a tool without ``parameters`` takes none (``{"type": "object", "properties": {}}``).
    * Only literal values are checked against types and enums: ``$step`` and
      ``$ask`` nodes are unknown until replay; a ``$param`` node is checked through
      its param's declared ``type`` and recorded ``examples``.
    * A problem is *blocking* (:data:`BLOCKING`) when the call is certain to break
      the schema whatever the params are; ``example`` problems (a value seen in a
      demonstration that the schema now rejects) are not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.checks import JSON_TYPES, json_type, type_matches
from ..core.errors import UsageError
from ..core.model import Param, Procedure, Step
from ..core.template import is_ref, join_pointer, references

__all__ = [
    "BLOCKING",
    "Problem",
    "check_procedure",
    "check_step",
    "group_by_step",
    "parse_tools",
    "procedure_problems",
    "schema_hash",
    "step_problems",
    "tools_used",
    "validate_value",
]

BLOCKING = frozenset({"unknown_arg", "missing_arg", "type", "enum", "param_type"})
"""Problem kinds that make every call of the step break the schema."""

Schema = Mapping[str, Any] | bool


@dataclass(frozen=True)
class Problem:
    """One way a step's args break its tool's schema.

    Attributes:
        step_id: The step.
        action: Its tool.
        arg: JSON Pointer of the offending arg in the step's args (``/reason``,
            ``/address/city``); ``""`` for the args object itself.
        kind: ``unknown_arg``, ``missing_arg``, ``type``, ``enum`` (literal value
            not allowed), ``param_type`` (a ``$param``'s declared type cannot be
            the tool's) or ``example`` (a recorded example of a ``$param`` is rejected).
        message: What is wrong, in plain words.
    """

    step_id: str
    action: str
    arg: str
    kind: str
    message: str

    @property
    def blocking(self) -> bool:
        """True when every call of the step breaks the schema (see :data:`BLOCKING`)."""
        return self.kind in BLOCKING

    def __str__(self) -> str:
        """``arg 'reason': 'x' is not one of [...]`` (the arg pointer without its ``/``)."""
        return f"arg {self.arg[1:] or '(args)'!r}: {self.message}"

    def describe(self) -> str:
        """The problem with its step: ``step 's1' (cancel_pending_order): arg 'reason': ...``."""
        return f"step {self.step_id!r} ({self.action}): {self}"


# ---------------------------------------------------------------------- parsing


def schema_hash(schema: Mapping[str, Any]) -> str:
    """SHA-256 hex digest of a schema's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _fail(where: str, problem: str) -> UsageError:
    return UsageError(f"{where}: {problem}")


def parse_tools(data: Any, *, source: str = "tools") -> dict[str, dict[str, Any]]:
    """Normalize a list of OpenAI function tools, by name.

    Args:
        data: Parsed JSON: a list of tools, or ``{"tools": [...]}``. Each tool is
            ``{"type": "function", "function": {...}}`` or a bare function object
            ``{"name", "description", "parameters", "strict"}``.
        source: Named in error messages (e.g. the file path).

    Returns:
        ``{name: {"name", "description", "parameters"[, "strict"]}}`` in input order.

    Raises:
        UsageError: The shape is wrong; the message names the source, the tool's
            index and the field, e.g. ``tools.json: [3].function.parameters.properties.
            reason.enum: must be an array``. Duplicate names are an error too.
    """
    prefix = ""
    if isinstance(data, Mapping):
        if "tools" not in data:
            raise _fail(source, "expected a JSON array of tools or an object with a 'tools' array")
        data, prefix = data["tools"], "tools"
    if not isinstance(data, list):
        raise _fail(f"{source}: {prefix}" if prefix else source,
                    f"expected a JSON array of tools, got {_kind(data)}")
    tools: dict[str, dict[str, Any]] = {}
    first: dict[str, int] = {}
    for i, item in enumerate(data):
        where = f"{source}: {prefix}[{i}]"
        tool = _parse_tool(item, where)
        name = tool["name"]
        if name in tools:
            raise _fail(f"{where}.name",
                        f"duplicate tool name {name!r} (also at index {first[name]})")
        tools[name], first[name] = tool, i
    return tools


_HINTS = ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
"""MCP tool annotations kept by :func:`parse_tools` (booleans only)."""


def _kind(value: Any) -> str:
    return f"a JSON {json_type(value) or type(value).__name__}"


def _parse_tool(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, Mapping):
        raise _fail(where, f"a tool must be a JSON object, got {_kind(item)}")
    kind = item.get("type", "function")
    if kind != "function":
        raise _fail(f"{where}.type", f"only function tools are supported, got {kind!r}")
    fn: Any = item
    if "function" in item:
        fn, where = item["function"], f"{where}.function"
        if not isinstance(fn, Mapping):
            raise _fail(where, f"must be a JSON object, got {_kind(fn)}")
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(f"{where}.name", "a tool needs a non-empty string name")
    if name != name.strip() or name.startswith("procedure:"):
        raise _fail(f"{where}.name", f"not usable as an action name: {name!r}")
    description = fn.get("description", "")
    if not isinstance(description, str):
        raise _fail(f"{where}.description", f"must be a string, got {_kind(description)}")
    params = fn.get("parameters")
    if params is None:
        params = {"type": "object", "properties": {}}
    if not isinstance(params, Mapping):
        raise _fail(f"{where}.parameters", f"must be a JSON Schema object, got {_kind(params)}")
    if params.get("type", "object") != "object":
        raise _fail(f"{where}.parameters.type", f"must be 'object', got {params['type']!r}")
    _check_schema(params, f"{where}.parameters")
    tool: dict[str, Any] = {"name": name, "description": description,
                            "parameters": json.loads(json.dumps(params))}
    hints = fn.get("annotations", item.get("annotations"))
    if hints is not None:  # MCP tool annotations: kept for read/write (procmem.core.alternatives)
        if not isinstance(hints, Mapping):
            raise _fail(f"{where}.annotations", f"must be a JSON object, got {_kind(hints)}")
        kept = {k: v for k, v in hints.items() if k in _HINTS and isinstance(v, bool)}
        if kept:
            tool["annotations"] = kept
    if "strict" in fn:
        if not isinstance(fn["strict"], bool):
            raise _fail(f"{where}.strict", f"must be true or false, got {fn['strict']!r}")
        tool["strict"] = fn["strict"]
    return tool


def _check_schema(schema: Any, where: str) -> None:
    """Check the keywords this module uses have the shapes JSON Schema gives them."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise _fail(where, f"a JSON Schema must be an object or a boolean, got {_kind(schema)}")
    if "type" in schema:
        types = schema["type"]
        names = [types] if isinstance(types, str) else types
        if not isinstance(names, list) or not names or any(n not in JSON_TYPES for n in names):
            raise _fail(f"{where}.type",
                        f"unknown type {types!r} (JSON Schema types: {', '.join(JSON_TYPES)})")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise _fail(f"{where}.enum", f"must be an array, got {_kind(schema['enum'])}")
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise _fail(f"{where}.required", "must be an array of property names")
    props = schema.get("properties", {})
    if not isinstance(props, Mapping):
        raise _fail(f"{where}.properties", f"must be an object, got {_kind(props)}")
    for key, sub in props.items():
        _check_schema(sub, f"{where}.properties.{key}")
    for keyword in ("items", "additionalProperties"):
        if keyword in schema and not isinstance(schema[keyword], list):
            _check_schema(schema[keyword], f"{where}.{keyword}")


# --------------------------------------------------------------------- validation

# (pointer, kind, message) findings of one walk; the caller adds step and action.
_Finding = tuple[str, str, str]


def _types(schema: Mapping[str, Any]) -> list[str] | None:
    t = schema.get("type")
    if isinstance(t, str):
        return [t]
    return list(t) if isinstance(t, list) else None


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _closed(schema: Mapping[str, Any]) -> bool:
    extra = schema.get("additionalProperties")
    return extra is False or ("properties" in schema and extra is None)


def _value(value: Any, schema: Schema, path: str) -> Iterator[_Finding]:
    """Literal ``value`` against ``schema`` (the subset in the module docstring)."""
    if schema is True:
        return
    if schema is False:
        yield path, "type", "no value is allowed here"
        return
    assert isinstance(schema, Mapping)
    types = _types(schema)
    if types is not None and not type_matches(value, types):
        yield path, "type", f"expected {' or '.join(types)}, got {json_type(value)} {_short(value)}"
        return
    if "enum" in schema and not any(_equal(value, e) for e in schema["enum"]):
        yield path, "enum", f"{_short(value)} is not one of {_short(schema['enum'], 200)}"
        return
    if "const" in schema and not _equal(value, schema["const"]):
        yield path, "enum", f"{_short(value)} must be {_short(schema['const'])}"
        return
    yield from _container(value, schema, path, _value)


def _equal(a: Any, b: Any) -> bool:
    """JSON equality: booleans are never numbers, ``1 == 1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and bool(a == b)


def _container(value: Any, schema: Mapping[str, Any], path: str,
               walk: Callable[[Any, Schema, str], Iterator[_Finding]]) -> Iterator[_Finding]:
    """Descend into an object's properties or an array's items with ``walk``."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, sub in value.items():
            where = join_pointer(path, key)
            if key in props:
                yield from walk(sub, props[key], where)
            elif isinstance(extra, Mapping):
                yield from walk(sub, extra, where)
            elif _closed(schema):
                known = ", ".join(props) or "none"
                yield where, "unknown_arg", f"unknown arg (the schema allows: {known})"
        for key in schema.get("required", []):
            if key not in value:
                yield join_pointer(path, key), "missing_arg", "missing required arg"
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping | bool):
        for i, item in enumerate(value):
            yield from walk(item, schema["items"], join_pointer(path, i))


def validate_value(value: Any, schema: Schema) -> list[str]:
    """Check a JSON value against a JSON Schema (the subset in the module docstring).

    Args:
        value: Parsed JSON.
        schema: A JSON Schema (object or boolean).

    Returns:
        One message per problem, each starting with the JSON Pointer of the
        offending value (``/items/0: expected string, got integer 5``); empty when valid.
    """
    return [f"{path or '(value)'}: {msg}" for path, _, msg in _value(value, schema, "")]


# ------------------------------------------------------------------ templates


class _Walk:
    """Walks an args template with the schema of the spot it fills."""

    def __init__(self, params: Sequence[Param]) -> None:
        self.params = {p.name: p for p in params}

    def node(self, node: Any, schema: Schema, path: str) -> Iterator[_Finding]:
        if not is_ref(node):
            if isinstance(schema, Mapping) and next(references(node), None) is not None:
                # A container with references inside: only its shape is known.
                types = _types(schema)
                if types is not None and not type_matches(node, types):
                    yield from _value(node, schema, path)  # reports the type
                else:
                    yield from _container(node, schema, path, self.node)
            else:
                yield from _value(node, schema, path)
        elif "$literal" in node:
            yield from _value(node["$literal"], schema, path)
        elif "$param" in node and isinstance(schema, Mapping):
            yield from self.param(node["$param"], schema, path)
        # $step and $ask values are only known at replay time.

    def param(self, name: Any, schema: Mapping[str, Any], path: str) -> Iterator[_Finding]:
        param = self.params.get(name) if isinstance(name, str) else None
        if param is None:
            return  # an unknown param is a template error (procmem.core.template.validate)
        declared = _types(param.schema_)
        wanted = _types(schema)
        if declared and wanted and not _overlap(declared, wanted):
            yield (path, "param_type", f"param {name!r} is {' or '.join(declared)} "
                   f"but the tool expects {' or '.join(wanted)}")
            return
        seen: set[str] = set()
        for example in param.examples:
            for where, _, msg in _value(example, schema, ""):
                at = f" at {where}" if where else ""
                text = f"example of param {name!r}{at}: {msg}"
                if text not in seen:
                    seen.add(text)
                    yield path, "example", text
                break


def _overlap(a: list[str], b: list[str]) -> bool:
    widen = {"integer": {"integer", "number"}, "number": {"number", "integer"}}
    return any(y in widen.get(x, {x}) for x in a for y in b)


def step_problems(step: Step, schema: Mapping[str, Any],
                  params: Sequence[Param] = ()) -> list[Problem]:
    """Every way ``step``'s args template breaks its tool's schema.

    Args:
        step: A procedure step whose ``action`` is the tool ``schema`` describes.
        schema: The tool in the form :func:`parse_tools` returns (its
            ``parameters`` are used), or a bare ``parameters`` JSON Schema.
        params: The procedure's params, to check ``$param`` references.

    Returns:
        Problems in document order of the args, then missing required args.
    """
    parameters = schema.get("parameters", schema) if "name" in schema else schema
    walk = _Walk(params)
    return [Problem(step.id, step.action, path, kind, msg)
            for path, kind, msg in walk.node(step.args, parameters, "")]


def check_step(step: Step, schema: Mapping[str, Any], params: Sequence[Param] = ()) -> list[str]:
    """:func:`step_problems` as messages, e.g. ``arg 'reason': 'x' is not one of [...]``."""
    return [str(p) for p in step_problems(step, schema, params)]


def tools_used(procedure: Procedure) -> list[str]:
    """The tool names the procedure's own steps call, in first-use order (no sub-procedures)."""
    return list(dict.fromkeys(s.action for s in procedure.steps if s.subprocedure is None))


def procedure_problems(procedure: Procedure, schemas: Mapping[str, Mapping[str, Any]], *,
                       tools: Iterable[str] | None = None) -> list[Problem]:
    """Problems of every step whose tool has a schema in ``schemas``.

    Args:
        procedure: The version to check.
        schemas: Tool schemas by name (:func:`parse_tools` form).
        tools: Check only the steps calling these tools (default: every tool).

    Returns:
        Problems in step order. Steps whose tool has no schema, and
        ``procedure:NAME`` steps, are not checked.
    """
    only = set(tools) if tools is not None else None
    out: list[Problem] = []
    for step in procedure.steps:
        if step.subprocedure is None and step.action in schemas and (
                only is None or step.action in only):
            out.extend(step_problems(step, schemas[step.action], procedure.params))
    return out


def check_procedure(procedure: Procedure, schemas: Mapping[str, Mapping[str, Any]]
                    ) -> dict[str, list[str]]:
    """Problems by step id, only for steps that have some (``{}`` means clean)."""
    return group_by_step(procedure_problems(procedure, schemas))


def group_by_step(problems: Iterable[Problem]) -> dict[str, list[str]]:
    """Problem messages by step id, in first-seen order."""
    out: dict[str, list[str]] = {}
    for p in problems:
        out.setdefault(p.step_id, []).append(str(p))
    return out
