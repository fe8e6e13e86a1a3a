"""Secret params: values a procedure needs at replay time and that are never stored.

A trace's secrets are redacted before it is stored (:mod:`procmem.security.redaction`), so a
procedure learned from it would send the marker ``"[REDACTED:keyed]"`` to the tool.
:func:`secretize` turns every literal that holds a marker into a reference to a
**secret param**: a param whose JSON Schema has ``"writeOnly": true`` and
``"format": "password"`` (JSON Schema 2020-12 "writeOnly": sent, never given back).

At replay time a secret param's value comes from the caller's ``params``, or from
a :class:`SecretProvider` (the default, :class:`EnvSecrets`, reads the environment
variable ``PROCMEM_SECRET_<NAME>``, the param name upper-cased), or, failing both,
it is a need the resolver answers. It is never bound from the task text.

Invariants:
    * What the store receives of an execution (:func:`scrub_execution`,
      :func:`scrub_step_run`) holds no secret param value: bound params, answers,
      step-run args, outputs and errors carry ``[REDACTED:secret_param]`` instead.
    * A resumed execution asks the provider again (:func:`fill_secrets`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, runtime_checkable

from ..core.model import Execution, Param, Procedure, StepRun

__all__ = ["SECRET_MARKER", "EnvSecrets", "SecretProvider", "contains_marker", "fill_secrets",
           "holds_marker", "is_secret", "scrub_execution", "scrub_step_run", "secret_names",
           "secretize"]

SECRET_MARKER = "[REDACTED:secret_param]"
_MARKER = re.compile(r"\[REDACTED(?::[a-z0-9_]+)?\]")


@runtime_checkable
class SecretProvider(Protocol):
    """Where secret param values come from at replay time."""

    def get_secret(self, name: str, *, procedure: str) -> str | None:
        """The value of secret param ``name`` for ``procedure``, or ``None`` (unknown)."""
        ...


class EnvSecrets:
    """Secrets from environment variables: ``PROCMEM_SECRET_<NAME>`` (name upper-cased).

    Args:
        environ: The mapping to read (default ``os.environ``).
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = environ

    def get_secret(self, name: str, *, procedure: str) -> str | None:
        env = os.environ if self.environ is None else self.environ
        return env.get(f"PROCMEM_SECRET_{name.upper()}")


def holds_marker(value: Any) -> bool:
    """Whether ``value`` is a string holding a redaction marker (``[REDACTED:kind]``)."""
    return isinstance(value, str) and _MARKER.search(value) is not None


def contains_marker(value: Any) -> bool:
    """Whether a JSON-like ``value`` holds a redaction marker anywhere (strings inside
    lists and dicts, keys included): a value that was redacted when it was stored."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            if _MARKER.search(node):
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)
    return False


def is_secret(param: Param) -> bool:
    """Whether a param is a secret (its schema has ``writeOnly: true`` or
    ``format: "password"``, or ``"x-procmem-kind": "secret"``)."""
    s = param.schema_
    return bool(s.get("writeOnly") is True or s.get("format") == "password"
                or s.get("x-procmem-kind") == "secret")


def secret_names(procedure: Procedure) -> set[str]:
    """Names of the secret params of ``procedure``."""
    return {p.name for p in procedure.params if is_secret(p)}


def _param_name(path: list[str], taken: set[str]) -> str:
    words = [re.sub(r"[^A-Za-z0-9_]", "_", p) for p in path if not p.isdigit()]
    base = (words[-1] if words else "secret").strip("_").lower() or "secret"
    if not re.match(r"^[A-Za-z_]", base):
        base = f"secret_{base}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    return name


def secretize(procedure: Procedure) -> Procedure:
    """Replace every step-arg literal that holds a redaction marker by a secret param.

    The param is named after the arg's key (``password``; ``password_2`` when taken),
    required, of schema ``{"type": "string", "writeOnly": true, "format": "password"}``.
    A literal equal in two steps (the same key, the same marker) shares one param.

    Returns:
        ``procedure`` itself when no literal holds a marker, else a copy.
    """
    taken = {p.name for p in procedure.params}
    added: dict[tuple[str, str], str] = {}
    new_params: list[Param] = []

    def walk(node: Any, path: list[str]) -> Any:
        if isinstance(node, str):
            if not _MARKER.search(node):
                return node
            key = (path[-1] if path else "", node)
            if key not in added:
                name = _param_name(path, taken)
                taken.add(name)
                added[key] = name
                new_params.append(Param(
                    name=name, schema={"type": "string", "writeOnly": True, "format": "password"},
                    description=f"secret for {'/'.join(path) or 'an argument'} "
                                "(supplied at replay time, never stored)"))
            return {"$param": added[key]}
        if isinstance(node, dict):
            if any(str(k).startswith("$") for k in node):  # a reference: never a literal
                if "$literal" in node:
                    return {**node, "$literal": walk(node["$literal"], path)}
                return node
            return {k: walk(v, [*path, str(k)]) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v, [*path, str(i)]) for i, v in enumerate(node)]
        return node

    steps = [s.model_copy(update={"args": walk(s.args, [])}) for s in procedure.steps]
    if not new_params:
        return procedure
    return procedure.model_copy(update={"steps": steps,
                                        "params": [*procedure.params, *new_params]})


def fill_secrets(procedure: Procedure, execution: Execution,
                 provider: SecretProvider | None) -> None:
    """Put the secret params' values into ``execution`` (in place) before it runs.

    A value bound from the task text, or a stored marker (a resumed execution), is
    dropped; a value the caller gave is kept; otherwise the provider's value is
    used. A secret still missing becomes a need when a step needs it.
    """
    for name in sorted(secret_names(procedure)):
        value = execution.params.get(name)
        source = execution.param_sources.get(name)
        if source == "task" or (isinstance(value, str) and _MARKER.fullmatch(value)):
            execution.params.pop(name, None)
            execution.param_sources.pop(name, None)
        answer = execution.answers.get(f"param:{name}")
        if isinstance(answer, str) and _MARKER.fullmatch(answer):
            execution.answers.pop(f"param:{name}")
        if name not in execution.params and provider is not None:
            got = provider.get_secret(name, procedure=procedure.name)
            if got is not None:
                execution.params[name] = got
        if name in execution.params:
            execution.param_sources[name] = "secret"


def _values(execution: Execution, names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for n in names:
        for v in (execution.params.get(n), execution.answers.get(f"param:{n}")):
            if isinstance(v, str) and v and not _MARKER.fullmatch(v):
                out.append(v)
            elif v is not None and not isinstance(v, str):
                out.append(str(v))
    return sorted(set(out), key=len, reverse=True)


def _scrub(node: Any, values: list[str]) -> Any:
    if isinstance(node, str):
        for v in values:
            if v in node:
                node = node.replace(v, SECRET_MARKER)
        return node
    if isinstance(node, dict):
        return {k: _scrub(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v, values) for v in node]
    return node


def scrub_execution(execution: Execution, names: set[str]) -> Execution:
    """A copy of ``execution`` to store: secret params' values replaced by the marker
    wherever they appear (params, answers, step runs, the call in flight, errors)."""
    values = _values(execution, names)
    if not names and not values:
        return execution
    data = _scrub(execution.model_dump(mode="python", by_alias=True), values)
    data["params"] = {k: (SECRET_MARKER if k in names else v) for k, v in data["params"].items()}
    data["answers"] = {k: (SECRET_MARKER if k.removeprefix("param:") in names else v)
                       for k, v in data["answers"].items()}
    return type(execution).model_validate(data)


def scrub_step_run(execution: Execution, step_run: StepRun, names: set[str]) -> StepRun:
    """A copy of ``step_run`` with the execution's secret values replaced by the marker."""
    values = _values(execution, names)
    if not values:
        return step_run
    data = step_run.model_dump(mode="python", by_alias=True)
    return type(step_run).model_validate(_scrub(data, values))
