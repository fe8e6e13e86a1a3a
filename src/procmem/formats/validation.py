"""Pydantic validation errors as procmem's messages: one helper for every surface.

A :class:`pydantic.ValidationError` lists problems as dicts (``loc``, ``msg``,
``type``, ...). Each place that turns one into a procmem error (the CLI, the REST
and MCP servers, trace files, importers, skills, the recorder, evidence) reads it
through :func:`problems` and says it with :func:`validation_message`, so the
same bad value reads the same everywhere.

Invariants: pure functions; a location is the dotted path of the field
(``steps.0.action``), empty for the whole document; ``details`` items are plain
JSON (``{"loc": [str | int, ...], "msg": str, "type": str}``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Problem", "details", "first_problem", "problems", "validation_message"]


@dataclass(frozen=True)
class Problem:
    """One validation problem.

    Attributes:
        loc: Where, from the document's root: field names and list indexes.
        msg: What is wrong, in pydantic's words (``"Field required"``).
        type: pydantic's error type (``"missing"``, ``"value_error"``...).
    """

    loc: tuple[str | int, ...]
    msg: str
    type: str = ""

    @property
    def where(self) -> str:
        """The dotted location (``"steps.0.action"``), ``""`` for the whole document."""
        return ".".join(str(p) for p in self.loc)

    def to_json(self) -> dict[str, Any]:
        """``{"loc", "msg", "type"}``, as the REST error ``details`` list them."""
        return {"loc": list(self.loc), "msg": self.msg, "type": self.type}


def problems(source: Any) -> list[Problem]:
    """The problems of a validation error, in pydantic's order.

    Args:
        source: A :class:`pydantic.ValidationError` (or FastAPI's
            ``RequestValidationError``: anything with ``errors()``), or the list
            of error dicts itself.

    Returns:
        One :class:`Problem` per error; a location part that is not an integer
        is made a string.
    """
    raw: Iterable[Mapping[str, Any]] = source.errors() if hasattr(source, "errors") else source
    return [Problem(loc=tuple(p if isinstance(p, int) else str(p) for p in e.get("loc", ())),
                    msg=str(e.get("msg", "")), type=str(e.get("type", ""))) for e in raw]


def first_problem(source: Any) -> Problem:
    """The first problem of a validation error (see :func:`problems`); a blank
    problem (no location, message ``"invalid value"``) when it lists none."""
    found = problems(source)
    return found[0] if found else Problem(loc=(), msg="invalid value")


def details(source: Any) -> list[dict[str, Any]]:
    """Every problem as JSON (:meth:`Problem.to_json`), for an error's ``details``."""
    return [p.to_json() for p in problems(source)]


def validation_message(source: Any, what: str = "invalid value", *,
                       root: str = "") -> str:
    """One readable line for a validation error: ``"<what>: <where>: <msg>"``,
    with ``" (and N more)"`` when there are more problems.

    Args:
        source: As for :func:`problems`.
        what: What was invalid (``"invalid Trace"``, ``"bad arguments for tool 'x'"``).
        root: The location shown for a problem of the whole document (then
            ``where`` is empty), e.g. ``"arguments"``; empty leaves it out.

    Returns:
        The line, e.g. ``"invalid Trace: steps.0.action: Field required (and 1 more)"``.
    """
    found = problems(source)
    if not found:
        return what
    first = found[0]
    where = first.where or root
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{what}: {where}: {first.msg}{more}" if where else f"{what}: {first.msg}{more}"
