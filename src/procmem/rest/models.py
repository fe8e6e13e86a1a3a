"""Request and response bodies of the REST API (:mod:`procmem.rest.app`), and the
rest of what its OpenAPI document says: error statuses and links.

Pydantic models only (no FastAPI import), so that the OpenAPI document that
FastAPI derives from them is precise: every field typed, every error response
described by :class:`ErrorResponse` (:func:`error_responses`), the HTTP status
of each procmem error code in one table (:data:`STATUS_BY_CODE`).

Invariants:
    * Domain objects (:class:`~procmem.core.model.Trace`, :class:`~procmem.core.model.Procedure`,
      :class:`~procmem.core.model.Execution`, :class:`~procmem.learning.stats.VersionStats`)
      are served as they are; the models here wrap what has no model of its own
      (reports, turns, request bodies, errors) and describe the shapes every
      surface shares (:mod:`procmem.formats.serialize`): :class:`HitOut` is
      :func:`~procmem.formats.serialize.hit_record` plus the full ``procedure``,
      :class:`ReportOut` is :func:`~procmem.formats.serialize.report_record`,
      :class:`ErrorResponse` is :func:`~procmem.formats.serialize.error_record`.
    * :class:`TurnOut` is exactly the shape of :meth:`procmem.services.client.Turn.to_json`
      (the turn shape every protocol adapter shares), absent keys as ``null`` / ``[]``.
    * Request bodies forbid unknown fields, so a typo is a 422, not silently ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import ProcmemError, UsageError
from ..core.model import NAME_PATTERN, Evidence, Execution, Procedure

__all__ = [
    "DESCRIPTIONS",
    "NAME_PATTERN",
    "PROCEDURE_LINKS",
    "STATUS_BY_CODE",
    "TURN_LINKS",
    "AnswersRequest",
    "ChangeOut",
    "RenameRequest",
    "ErrorBody",
    "ErrorResponse",
    "EvidenceRequest",
    "ExecutionOut",
    "FailedGroup",
    "Health",
    "HistoryRow",
    "HitOut",
    "HitParam",
    "LearnOut",
    "LearnedFrom",
    "NextCall",
    "OptimizeOut",
    "ReportOut",
    "RerankInfo",
    "ResultRequest",
    "StartRequest",
    "TraceDeleted",
    "TracesAdded",
    "error_responses",
    "http_status",
]


STATUS_BY_CODE: dict[str, int] = {
    "unauthorized": 401, "forbidden": 403,
    "not_found": 404, "conflict": 409, "execution_busy": 409, "replay_error": 409, "cycle": 409,
    "store_error": 503, "store_unavailable": 503, "embedding_error": 503,
    "rerank_error": 503, "model_error": 503,
    "missing_extra": 500, "internal": 500,
}
"""HTTP status by procmem error code; any other ``UsageError`` code is 400, the rest 500."""

DESCRIPTIONS = {
    400: "Usage error: the request matches this document but procmem cannot use it "
         "(codes usage, invalid_trace, invalid_template, invalid_procedure, param_error, "
         "unknown_tool), e.g. a template naming a param the procedure does not have, or a "
         "rule the document cannot state such as unique step ids.",
    404: "Not found (code not_found).",
    409: "Conflict: an immutable record would change (code conflict), the execution is "
         "running under another run's live lease (code execution_busy), or it cannot "
         "continue (codes replay_error, cycle).",
    422: "The request does not match this document (code usage; details lists the problems).",
    500: "Internal error (code internal).",
    503: "The store, the embedding model or the reranker is unavailable (codes store_error, "
         "store_unavailable, embedding_error, rerank_error).",
}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ------------------------------------------------------------------ errors


class ErrorBody(BaseModel):
    """What went wrong.

    Attributes:
        code: A stable procmem error code (:mod:`procmem.core.errors`): ``usage``,
            ``invalid_trace``, ``invalid_template``, ``invalid_procedure``,
            ``param_error``, ``unknown_tool``, ``not_found``, ``conflict``, ``execution_busy``,
            ``replay_error``, ``cycle``, ``store_error``, ``store_unavailable``,
            ``missing_extra`` or ``internal``.
        message: One line for a person.
        details: For request validation errors (422): where and what, one item
            per problem (``loc``, ``msg``, ``type``).
    """

    code: str
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    """The one error shape of every endpoint: ``{"error": {"code", "message"}}``
    (:func:`procmem.formats.serialize.error_record`, the structured content of MCP error
    results too)."""

    error: ErrorBody


# ------------------------------------------------------------------ traces and learning


class TracesAdded(BaseModel):
    """What ``POST /traces`` stored: traces ``received``, new ones ``stored``, their ``ids``."""

    received: int = Field(ge=0)
    stored: int = Field(ge=0)
    ids: list[str]


class LearnedFrom(BaseModel):
    """A procedure version whose lineage lists a trace."""

    name: str
    version: int = Field(ge=1)
    status: Literal["candidate", "active", "deprecated"]


class TraceDeleted(BaseModel):
    """What ``DELETE /traces/{id}`` did (:func:`procmem.services.traces.deletion_json`).

    ``learned_from``: the procedure versions learned from the trace, kept as they
    are; ``effect``: what the deletion changes, in plain words.
    """

    trace_id: str
    deleted: bool
    learned_from: list[LearnedFrom]
    effect: str


class FailedGroup(BaseModel):
    """A group ``learn`` could not induce, so skipped.

    One :func:`procmem.services.traces.group_failure` row.
    """

    name: str
    actions: list[str]
    traces: list[str]
    trace_count: int = Field(ge=0)
    code: str
    error: str
    message: str


class LearnOut(BaseModel):
    """:class:`procmem.memory.LearnReport` as JSON."""

    traces: int = Field(ge=0)
    groups: int = Field(ge=0)
    created: list[str]
    updated: list[str]
    unchanged: list[str]
    skipped: int = Field(ge=0)
    failed_groups: list[FailedGroup] = Field(default_factory=list)


class OptimizeOut(BaseModel):
    """:class:`procmem.services.learning.OptimizeReport` as JSON.

    ``created``: ``{"name", "version", "kind", "reason", "reproduced", "status"}``
    per stored candidate; ``rejected``: ``{"name", "kind", "reason", "why"}``;
    ``extra``: sub-procedures created.
    """

    created: list[dict[str, Any]]
    rejected: list[dict[str, Any]]
    extra: list[str]


class HitParam(BaseModel):
    """A param of a hit's procedure: its name and whether a replay needs it."""

    name: str
    required: bool


class RerankInfo(BaseModel):
    """What the reranker made of a hit: its model, and the hit's place in its order
    (``None``: it left the hit out)."""

    model: str
    position: int | None


class HitOut(BaseModel):
    """A search hit (:func:`procmem.formats.serialize.hit_record`, the shape the CLI's
    ``search --json`` and MCP's ``search_procedures`` give too), plus the full
    ``procedure``. See ``docs/shapes.md``."""

    rank: int = Field(ge=1, description="1-based position in the answer.")
    name: str
    version: int = Field(ge=1)
    namespace: str
    status: Literal["candidate", "active", "deprecated"]
    tags: list[str]
    description: str
    score: float = Field(description="Fused score, higher is better (not a probability).")
    ranks: dict[str, int] = Field(description="1-based rank in each first-stage ranker.")
    reliability: float = Field(ge=0, le=1, description="Posterior mean of success.")
    confident: bool = Field(description="May be replayed without checking.")
    confidence: float | None = Field(ge=0, le=1, description=(
        "Calibrated probability that the hit and its bound values are right; "
        "null without a calibration."))
    verb_conflict: bool = Field(description="The task names an action verb the "
                                "procedure has none of.")
    signals: dict[str, float]
    bound: dict[str, Any] = Field(description="Param values read from the task.")
    anchored: list[str] = Field(description="Bound params found next to their cue word.")
    matched_terms: list[str]
    bm25: float | None
    cosine: float | None
    nearest_demonstration: str | None
    first_stage_kept: bool
    budget_exceeded: bool = Field(description="The extraction time budget ran out "
                                  "(the hit is then not confident).")
    rerank: RerankInfo | None
    features: list[float] = Field(description="The calibration's inputs.")
    actions: list[str] = Field(description="The procedure's tool actions, in order.")
    params: list[HitParam]
    procedure: Procedure = Field(description="The procedure found, in full (REST only).")


class ChangeOut(BaseModel):
    """A version whose status an operation moved (:func:`formats.serialize.change_record`)."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    version: int = Field(ge=1)
    change: Literal["promoted", "demoted", "replaced", "deprecated", "created", "restored"]
    from_: str | None = Field(alias="from", description="The status before (null: new).")
    to: str = Field(description="The status after.")
    reason: str


class ReportOut(BaseModel):
    """What ``POST /executions/{id}/evidence`` stored and changed
    (:func:`procmem.formats.serialize.report_record`)."""

    evidence: Evidence
    changes: list[ChangeOut] = Field(description="Status changes the review after the "
                                     "evidence made, in order (often none).")


class HistoryRow(BaseModel):
    """One version in ``GET /procedures/{name}/history`` (:meth:`procmem.Memory.history`)."""

    version: int = Field(ge=1)
    status: Literal["candidate", "active", "deprecated"]
    current: bool
    created_at: datetime
    reason: str
    parent_version: int | None
    steps: int = Field(ge=0)
    runs: int = Field(ge=0)
    reliability: float = Field(ge=0, le=1)
    verification: dict[str, Any] | None


class Health(BaseModel):
    """``GET /health``: the server is up and its store answers."""

    status: Literal["ok"] = "ok"
    version: str = Field(description="The procmem version serving.")


# ------------------------------------------------------------------ executions


class StartRequest(_Body):
    """``POST /executions``: run a procedure, the client making the tool calls.

    Attributes:
        procedure: The procedure's name.
        version: Run this version; by default the current version (or a
            verified candidate competing with it, by Thompson sampling).
        task: The task text, from which params are bound.
        params: Param values by name (they win over values bound from ``task``).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"procedure": "cancel_pending_order",
         "task": "Cancel order #W6067464 because no longer needed."},
        {"procedure": "cancel_pending_order"},
    ]})

    procedure: str = Field(pattern=NAME_PATTERN, max_length=200)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    task: str | None = Field(default=None, max_length=20_000)
    params: dict[str, Any] = Field(default_factory=dict)


class ResultRequest(_Body):
    """``POST /executions/{id}/results``: the result of the outstanding tool call.

    Attributes:
        step_id: The step of the outstanding call (``next_call.step_id``).
        output: What the tool returned (JSON text or any JSON value).
        error: The tool's error message when the call failed.
        duration_ms: How long the call took, in milliseconds.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"step_id": "s1", "output": '{"order_id": "#W6067464", "status": "cancelled"}',
         "duration_ms": 12.5},
        {"step_id": "s1", "error": "ValueError: order is not pending"},
    ]})

    step_id: str = Field(min_length=1, max_length=200)
    output: Any = None
    error: str | None = None
    duration_ms: float = Field(default=0.0, ge=0, le=1e12, allow_inf_nan=False)


class AnswersRequest(_Body):
    """``POST /executions/{id}/answers``: values for a paused execution's needs.

    ``answers`` is keyed by need key (``param:NAME``, ``ask:STEP:POINTER``,
    ``error:STEP``, see :class:`procmem.core.model.Need`).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"answers": {"param:order_id": "#W6067464", "param:reason": "no longer needed"}},
    ]})

    answers: dict[str, Any]


class RenameRequest(_Body):
    """``POST /procedures/{name}/rename``: the new name (see :meth:`procmem.Memory.rename`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"new_name": "cancel_order"},
    ]})

    new_name: str = Field(min_length=1, max_length=200, pattern=NAME_PATTERN,
                          description="The new name; the old one stays an alias of it.")


class EvidenceRequest(_Body):
    """``POST /executions/{id}/evidence``: an outcome report (see :meth:`procmem.Memory.report`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reward": 1.0, "source": "environment", "note": "the order is cancelled"},
    ]})

    reward: float = Field(ge=0, le=1, allow_inf_nan=False,
                          description="Task success in [0, 1].")
    source: Literal["environment", "test", "user", "agent"] = "user"
    note: str = Field(default="", max_length=20_000)


class NextCall(BaseModel):
    """The tool call the client must make now, with its bound ``args``.

    ``idempotency_key`` (``EXECUTION_ID/STEP_ID/ATTEMPT``) is the same when a call
    is handed out again after an interruption, and new for a retry: give it to a
    tool that can deduplicate, so a repeated call does not act twice.
    """

    step_id: str
    action: str
    args: dict[str, Any]
    attempt: int = Field(ge=1)
    idempotency_key: str = ""


class ExecutionOut(Execution):
    """The one shape of an execution (:mod:`procmem.services.execution_view`), from every route:
    ``POST /executions``, ``.../results``, ``.../answers`` and ``GET /executions[/{id}]``.

    The stored :class:`~procmem.core.model.Execution` (``id``, ``status``, ``step_runs``,
    ``needs``, ``error``, ...) plus the turn view.

    Attributes:
        next_call: The call to make now (a client-driven execution ``running``
            with a call handed out), else ``null``.
        awaiting: ``tool_result`` (make ``next_call``, then post its result),
            ``answers`` (paused: answer ``needs``), or ``null``.
        execution_id: The same as ``id`` (kept for clients of the earlier turn shape).
    """

    next_call: NextCall | None = None
    awaiting: Literal["tool_result", "answers"] | None = None
    execution_id: str


# ------------------------------------------------------------------ OpenAPI documentation


def http_status(err: ProcmemError) -> int:
    """The HTTP status for a procmem error (see :data:`STATUS_BY_CODE`)."""
    if err.code in STATUS_BY_CODE:
        return STATUS_BY_CODE[err.code]
    return 400 if isinstance(err, UsageError) else 500


def error_responses(*statuses: int, validated: bool = True) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of an operation: ``statuses`` plus 500 and 503, and 422
    when the operation takes parameters or a body (``validated``)."""
    common = {500, 503} | ({422} if validated else set())
    return {s: {"model": ErrorResponse, "description": DESCRIPTIONS[s]}
            for s in sorted({*statuses, *common})}


def _links(**targets: str) -> dict[str, Any]:
    """OpenAPI links (3.1, section 4.8.20) passing the new execution's id on, by operationId."""
    return {name: {"operationId": op,
                   "parameters": {"execution_id": "$response.body#/execution_id"}}
            for name, op in targets.items()}


TURN_LINKS = _links(GetExecution="get_execution", PostResult="post_result",
                    PostAnswers="post_answers", PostEvidence="post_evidence")
"""Where a turn's ``execution_id`` goes next (for clients and stateful testers)."""

PROCEDURE_LINKS = {
    "StartExecution": {"operationId": "start_execution",
                       "requestBody": {"procedure": "$response.body#/name"}},
}
"""A procedure's ``name`` can start an execution."""
