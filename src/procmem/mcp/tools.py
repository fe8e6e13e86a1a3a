"""The tools of procmem's MCP server: names, input schemas, arguments and results.

Pure helpers for :mod:`procmem.mcp.server` (no I/O, no :class:`~procmem.Memory`):
the fixed tools' argument models (their JSON Schemas are the tools' input
schemas, so what is advertised is what is validated), the tool that stands for
each active procedure, and the shape of every result.

Spec: MCP tools, https://modelcontextprotocol.io/specification/2025-11-25/server/tools
(tool names, ``inputSchema``, ``structuredContent``, ``isError``).

Invariants:
    * :func:`tool_name` is a pure function of the procedure name (and prefix):
      the same procedure always gets the same tool name, across processes.
      A name is kept as it is when it already matches ``^[A-Za-z0-9_-]{1,64}$``
      (the intersection of the MCP rules with the OpenAI and Anthropic
      function-name rules, so every client accepts it) and is not a fixed
      tool's name; otherwise it is sanitized, cut, and given an 8-hex SHA-256
      suffix of the full name.
    * Every result is a JSON object in ``structuredContent`` with the same JSON
      as text content (spec: "SHOULD also return the serialized JSON in a
      TextContent block"); an error result has ``isError: true`` and
      ``{"error": {"code", "message"}}`` with the procmem error code.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..core.errors import MissingExtra, UsageError
from ..core.model import Hit, Need, Procedure
from ..formats.serialize import error_line, error_record, hit_record
from ..formats.validation import validation_message
from ..induction.planning import Plan
from ..services.client import Turn

try:
    import mcp_types as types
except ImportError as err:  # pragma: no cover - the mcp extra is installed in the test env
    raise MissingExtra("procmem's MCP server", "mcp") from err

__all__ = [
    "FIXED_TOOLS",
    "ContinueArgs",
    "FinishRecordingArgs",
    "GetProcedureArgs",
    "RecordStepArgs",
    "ReportEvidenceArgs",
    "SearchArgs",
    "StartRecordingArgs",
    "error_result",
    "fixed_tools",
    "hit_json",
    "instruction",
    "json_result",
    "parse_args",
    "procedure_tool",
    "task_key",
    "tool_name",
    "turn_result",
]

MAX_TOOL_NAME = 64
_CLEAN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_TASK_KEYS = ("task", "task_text", "_task")
M = TypeVar("M", bound=BaseModel)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SearchArgs(_Args):
    """Arguments of ``search_procedures``."""

    task: str = Field(min_length=1, description="The task in plain words, e.g. "
                      "'Cancel order #W6067464 because no longer needed.'")
    limit: int = Field(default=5, ge=1, le=100, description="Maximum hits, 1-100.")
    tags: list[str] = Field(default_factory=list,
                            description="Only procedures carrying all of these tags.")
    namespace: str | None = Field(default=None, description="Only procedures of this namespace.")
    confident_only: bool = Field(default=False, description=(
        "Only confident hits: an empty list then means nothing in memory fits the task."))
    rerank: bool = Field(default=True, description=(
        "When the server has a reranker (a language model), let it reorder the top 10 hits."))
    multi: bool = Field(default=False, description=(
        "Also plan the task as a whole (task_plan): one procedure per request when the "
        "top hit does not cover every request of the task; requests nothing covers are "
        "listed in task_plan.uncovered. Filters do not apply to it."))


class GetProcedureArgs(_Args):
    """Arguments of ``get_procedure``."""

    name: str = Field(min_length=1, description="Procedure name (or its tool name).")
    version: int | None = Field(default=None, ge=1,
                                description="A given version; the current one by default.")


class StartRecordingArgs(_Args):
    """Arguments of ``start_recording``."""

    task: str = Field(min_length=1, description="The task being done, in plain words.")
    source: str = Field(default="mcp", description="Who is recording (stored on the trace).")
    metadata: dict[str, Any] | None = Field(default=None,
                                            description="Extra JSON stored on the trace.")


class RecordStepArgs(_Args):
    """Arguments of ``record_step``."""

    recording_id: str = Field(min_length=1, description="From start_recording.")
    action: str = Field(min_length=1, description="The tool that was called.")
    args: dict[str, Any] = Field(default_factory=dict, description="Its arguments.")
    output: Any = Field(default=None, description="What it returned (JSON text or data).")
    error: str | None = Field(default=None, description="Its error message, if it failed.")
    duration_ms: float | None = Field(default=None, ge=0,
                                      description="How long the call took, in milliseconds.")


class FinishRecordingArgs(_Args):
    """Arguments of ``finish_recording``."""

    recording_id: str = Field(min_length=1, description="From start_recording.")
    outcome: Literal["success", "failure", "unknown"] = Field(
        default="success", description="How the task went.")
    reward: float | None = Field(default=None, ge=0, le=1,
                                 description="Task success in [0, 1], if measured.")
    learn: bool = Field(default=True, description="Learn procedures from the stored traces "
                        "now, so that this demonstration becomes (or updates) a tool.")


class ReportEvidenceArgs(_Args):
    """Arguments of ``report_evidence``."""

    execution_id: str = Field(min_length=1, description="The execution the report is about.")
    reward: float = Field(ge=0, le=1, description="Task success in [0, 1] (1: done).")
    source: Literal["environment", "test", "user", "agent"] = Field(
        default="agent", description="Who judged it. MCP clients are agents, hence the "
        "default 'agent', which can only lower reliability; use 'environment', 'test' or "
        "'user' only when the verdict comes from there.")
    note: str = Field(default="", description="Free text kept with the evidence.")


class ContinueArgs(_Args):
    """Arguments of ``continue_execution``."""

    execution_id: str = Field(min_length=1, description="From the procedure tool's result.")
    step_id: str | None = Field(default=None, description="The step whose tool call you made "
                                "(next_call.step_id); omit when only answering needs.")
    output: Any = Field(default=None, description="What that tool returned (its text or JSON).")
    error: str | None = Field(default=None, description="The tool's error message, if it failed.")
    duration_ms: float = Field(default=0.0, ge=0, description="How long the call took (ms).")
    answers: dict[str, Any] | None = Field(default=None, description="Values for the needs, "
                                           "by need key (e.g. {'param:order_id': '#W1'}).")


def _schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema.pop("title", None)
    schema.pop("description", None)  # the model's docstring; the tool has its own
    for prop in schema.get("properties", {}).values():
        prop.pop("title", None)
    return schema


_FIXED: list[tuple[str, type[_Args], str, bool]] = [
    ("search_procedures", SearchArgs,
     "Find the learned procedures that fit a task. Each hit names the `tool` that runs it.",
     True),
    ("get_procedure", GetProcedureArgs,
     "One procedure as JSON and as a Markdown how-to you can follow yourself.", True),
    ("start_recording", StartRecordingArgs,
     "Start recording a demonstration: the tool calls you make for a task, added with "
     "record_step, become a trace procmem learns procedures from.", False),
    ("record_step", RecordStepArgs,
     "Add one tool call you made (action, args, output or error) to an open recording.", False),
    ("finish_recording", FinishRecordingArgs,
     "Close a recording and store it as a trace (secrets redacted); by default learn "
     "from it at once, which may add a procedure tool.", False),
    ("report_evidence", ReportEvidenceArgs,
     "Report how an execution went (reward 0-1). Reliability comes from evidence.", False),
    ("continue_execution", ContinueArgs,
     "Give the result of the tool call a procedure asked for (or answers to its needs) and "
     "get the next step, until the execution ends.", False),
]

FIXED_TOOLS: dict[str, type[_Args]] = {name: model for name, model, _, _ in _FIXED}
"""The fixed tools' names and argument models, in listing order."""


def fixed_tools() -> list[types.Tool]:
    """The fixed tools, with their argument models' JSON Schemas as input schemas."""
    return [types.Tool(name=name, description=text, input_schema=_schema(model),
                       annotations=types.ToolAnnotations(read_only_hint=read_only))
            for name, model, text, read_only in _FIXED]


def parse_args(model: type[M], tool: str, arguments: dict[str, Any] | None) -> M:
    """Validate a tool's arguments.

    Raises:
        UsageError: An argument is missing, unknown or of the wrong type (named).
    """
    try:
        return model.model_validate(arguments or {})
    except ValidationError as err:
        raise UsageError(validation_message(err, f"bad arguments for tool {tool!r}",
                                            root="arguments")) from err


# ----------------------------------------------------------------- procedure tools


def tool_name(procedure: str, *, prefix: str = "") -> str:
    """The MCP tool name of a procedure (see the module invariants).

    Args:
        procedure: The procedure name.
        prefix: Put before every procedure tool name (e.g. ``"procedure_"``
            when the names could clash with other tools served alongside).

    Returns:
        A name matching ``^[A-Za-z0-9_-]{1,64}$`` and not a fixed tool's name.
    """
    full = prefix + procedure
    if _CLEAN_NAME.fullmatch(full) and full not in FIXED_TOOLS:
        return full
    digest = hashlib.sha256(procedure.encode()).hexdigest()[:8]
    base = _UNSAFE.sub("_", full)[: MAX_TOOL_NAME - len(digest) - 1]
    return f"{base}-{digest}"


def task_key(procedure: Procedure) -> str:
    """The argument of a procedure tool that takes the task text: ``task``, unless
    a param has that name (then ``task_text``, then ``_task``)."""
    names = {p.name for p in procedure.params}
    return next(k for k in _TASK_KEYS if k not in names)


def procedure_tool(procedure: Procedure, name: str) -> types.Tool:
    """The tool that runs ``procedure`` step by step with the client.

    Its description is the procedure's description (then the actions and how
    the client drives it); its input schema is a JSON Schema object with one
    property per param (the param's schema, description and up to three
    examples), ``required`` = the required params, and an optional ``task``
    string from which missing params are bound. The server itself accepts a
    call without the required params: what the task text does not give
    becomes a need to answer through ``continue_execution``.
    """
    props: dict[str, Any] = {}
    for p in procedure.params:
        schema = dict(p.schema_)
        if p.description and "description" not in schema:
            schema["description"] = p.description
        if p.examples and "examples" not in schema:
            schema["examples"] = p.examples[:3]
        props[p.name] = schema
    key = task_key(procedure)
    props[key] = {"type": "string", "description": "The task in plain words; params not "
                  "given are bound from it where the procedure knows how."}
    schema_obj: dict[str, Any] = {"type": "object", "properties": props,
                                  "additionalProperties": False}
    required = [p.name for p in procedure.params if p.required]
    if required:
        schema_obj["required"] = required
    actions = " -> ".join(s.action for s in procedure.steps) or "none (a text how-to)"
    about = (procedure.description.strip() or f"Procedure {procedure.name}.")
    text = (f"{about}\n\nSteps: {actions}. Runs step by step with you: the result names the "
            "next tool call to make (with its args bound) or the values it needs; then call "
            "continue_execution with that call's result.")
    return types.Tool(name=name, title=procedure.name, description=text,
                      input_schema=schema_obj,
                      annotations=types.ToolAnnotations(read_only_hint=False,
                                                        open_world_hint=False))


# ------------------------------------------------------------------------- results


def json_result(data: dict[str, Any], *, text: str | None = None) -> types.CallToolResult:
    """A successful result: ``data`` as structured content and as JSON text
    (after ``text``, when given, e.g. a Markdown rendering or an instruction)."""
    content: list[types.ContentBlock] = [types.TextContent(type="text", text=text)] if text else []
    content.append(types.TextContent(type="text", text=json.dumps(data, ensure_ascii=False,
                                                                  default=str)))
    return types.CallToolResult(content=content, structured_content=data)


def error_result(code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> types.CallToolResult:
    """An error result (``isError: true``): the text :func:`procmem.formats.serialize.error_line`,
    the structured content :func:`procmem.formats.serialize.error_record`."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=error_line(code, message))],
        structured_content=error_record(code, message, details), is_error=True)


def hit_json(rank: int, hit: Hit, tool: str, plan: Plan | str | None = None
             ) -> dict[str, Any]:
    """One ``search_procedures`` hit (:func:`procmem.formats.serialize.hit_record` and the
    MCP ``tool`` that runs it); with ``plan``, its plan for the task
    (:meth:`procmem.induction.planning.Plan.to_json`), or the error (a string) that kept it
    from being planned, as ``plan_error``."""
    out = dict(hit_record(rank, hit), tool=tool)
    if isinstance(plan, Plan):
        out["plan"] = plan.to_json()
    elif plan is not None:
        out["plan_error"] = plan
    return out


def _need_line(need: Need) -> str:
    line = f"- {need.key}: {need.prompt or need.name or need.kind}"
    if need.candidates:
        shown = json.dumps(need.candidates[:10], ensure_ascii=False, default=str)
        line += f" (choose from {shown})"
    return line


def instruction(turn: Turn) -> str:
    """What the client should do next, in plain words."""
    ex = turn.execution
    if turn.call is not None:
        args = json.dumps(turn.call.args, ensure_ascii=False, default=str)
        return (f"Call the tool `{turn.call.action}` with these arguments: {args}. Then call "
                f"`continue_execution` with execution_id={ex.id!r}, "
                f"step_id={turn.call.step_id!r} and that tool's result as `output` (or its "
                "error message as `error`).")
    if turn.needs:
        lines = "\n".join(_need_line(n) for n in turn.needs)
        return (f"The execution needs these values:\n{lines}\nCall `continue_execution` with "
                f"execution_id={ex.id!r} and answers={{key: value}}.")
    if ex.status == "succeeded":
        return (f"The procedure finished. Report how the task went with `report_evidence` "
                f"(execution_id={ex.id!r}).")
    return (f"The procedure {ex.status}: {ex.error or 'see steps'}. Finish the task yourself; "
            f"report the outcome with `report_evidence` (execution_id={ex.id!r}).")


def turn_result(turn: Turn, tool: str) -> types.CallToolResult:
    """A procedure tool's or ``continue_execution``'s result: ``Turn.to_json()``
    plus ``tool`` (the procedure's tool name) and ``instruction``."""
    data = turn.to_json()
    data["tool"] = tool
    data["instruction"] = instruction(turn)
    return json_result(data, text=data["instruction"])
