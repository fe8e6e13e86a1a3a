"""Data model: traces, procedures, executions and what flows between them.

Invariants:
    * All models are pydantic v2 models; they round-trip through JSON unchanged
      (``Model.model_validate_json(m.model_dump_json()) == m``).
    * Timestamps are timezone-aware UTC ``datetime`` values.
    * A :class:`Trace` is immutable once stored; a :class:`Procedure` version is
      immutable once stored (every change is a new version).
    * ``success_rate`` values are in [0, 1]; durations are milliseconds (``*_ms``).

Terms follow ``DESIGN.md``: trace, step, procedure, param, execution, step run,
need, evidence, hit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from .procstats import STATS_FIELDS, WithStats

__all__ = [
    "Attempt",
    "CallStarted",
    "Check",
    "Evidence",
    "Execution",
    "Extractor",
    "Hit",
    "Lineage",
    "Need",
    "OnError",
    "Param",
    "Procedure",
    "Step",
    "StepRun",
    "Trace",
    "TraceStep",
    "new_id",
    "utcnow",
]


def utcnow() -> datetime:
    """Now, as a timezone-aware UTC datetime."""
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    """A naive datetime is taken as UTC; an aware one is converted to UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UTCDateTime = Annotated[datetime, AfterValidator(_as_utc)]
"""A timezone-aware UTC datetime (naive input is taken as UTC)."""


def _iso_text(value: Any) -> Any:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else value
    except ValueError:
        return value  # not ISO 8601: pydantic's own parsing decides (and reports)


_StrictUTCDateTime = Annotated[datetime, BeforeValidator(_iso_text), AfterValidator(_as_utc)]
""":data:`UTCDateTime` that takes ISO 8601 text in strict mode too: a model with a
``mode="before"`` model validator (:class:`Procedure`) has its fields validated
as Python data, also when strict JSON (REST bodies) is validated."""


def new_id(prefix: str) -> str:
    """A fresh random id such as ``ex_3f2a9c...`` (prefix + 16 hex chars)."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- traces


class TraceStep(_Model):
    """One tool call as it happened.

    Attributes:
        action: Tool name, e.g. ``"cancel_pending_order"``.
        args: Keyword arguments of the call (JSON object).
        output: What the tool returned (often JSON *text*), ``None`` on error.
        error: The error message when the call failed, else ``None``.
        duration_ms: Wall time of the call in milliseconds, if measured.
    """

    action: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None
    duration_ms: float | None = Field(default=None, ge=0)

    @property
    def failed(self) -> bool:
        """True when the call raised or returned an error."""
        return self.error is not None


class Trace(_Model):
    """What happened once: a task and the ordered tool calls made for it.

    Format: ``data/tau-retail/README.md`` (procmem trace JSONL, one per line).
    """

    id: str = Field(default_factory=lambda: new_id("tr"), min_length=1)
    task: str
    steps: list[TraceStep] = Field(default_factory=list)
    outcome: Literal["success", "failure", "unknown"] = "unknown"
    reward: float | None = Field(default=None, ge=0, le=1)
    source: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: UTCDateTime = Field(default_factory=utcnow)

    def successful_steps(self) -> list[TraceStep]:
        """The steps that did not fail, in order (what induction learns from)."""
        return [s for s in self.steps if not s.failed]

    def signature(self) -> tuple[str, ...]:
        """The action sequence of the successful steps."""
        return tuple(s.action for s in self.successful_steps())


# ----------------------------------------------------------------------- procedures


class Extractor(_Model):
    """How the built-in binder finds a param's value in a task text.

    The value is ``pattern``; it must be preceded by text matching ``before`` and
    followed by text matching ``after`` (both regexes, possibly empty). When the
    combined regex matches several times, ``occurrence`` (0-based) picks one.
    ``kind`` (see :mod:`procmem.induction.valuekinds`: ``email``, ``integer``, ``id``,
    ``enum``, ``text``, ...) is what a found value must be to bind; ``None`` on
    extractors learned before kinds existed (then any value of the pattern binds).
    ``support`` is how many demonstrations agree on it: those it was learned from,
    or the corpus examples of the same argument that have the same context, if more.
    """

    pattern: str
    before: str = ""
    after: str = ""
    occurrence: int | None = None
    kind: str | None = None
    support: int = 0


class Param(_Model):
    """A typed input of a procedure.

    Attributes:
        name: Identifier used by ``{"$param": name}`` references.
        schema_: JSON Schema of the value (serialized as ``schema``).
        description: What the value is, in plain words.
        examples: Values seen in demonstrations (at most a few).
        required: Whether replay needs it (missing -> a need).
        extractor: How the built-in binder finds it in a task text, if learned.
    """

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    description: str = ""
    examples: list[Any] = Field(default_factory=list)
    required: bool = True
    extractor: Extractor | None = None


class Check(_Model):
    """One ``expect`` check on a step's output.

    ``op`` is applied to the value at ``path`` (JSON Pointer, RFC 6901, into the
    output parsed as JSON when it is JSON text; ``""`` is the whole output):
    ``exists``, ``equals`` (``value``), ``contains`` (substring or member),
    ``not_contains``, ``type`` (a JSON Schema type name in ``value``).
    """

    op: Literal["exists", "equals", "contains", "not_contains", "type"]
    path: str = ""
    value: Any = None


class OnError(_Model):
    """What replay does when a step fails.

    ``stop`` fails the execution; ``skip`` records the failure and goes on;
    ``retry`` calls again up to ``retries`` times, sleeping
    ``backoff_s * 2**attempt`` seconds between tries, then stops; ``ask`` turns
    the failure into a need (the resolver may answer with an output to use).
    """

    policy: Literal["stop", "skip", "retry", "ask"] = "stop"
    retries: int = Field(default=0, ge=0, le=20)
    backoff_s: float = Field(default=0.0, ge=0, le=60)


class Step(_Model):
    """One step of a procedure.

    Attributes:
        id: Unique within the procedure, e.g. ``"s1"``.
        action: A tool name, or ``"procedure:NAME"`` for a sub-procedure.
        args: Args template (see :mod:`procmem.core.template`).
        expect: Checks on the output; any failing check fails the step.
        on_error: Failure policy.
        side_effect: True when the call changes the world, False when read-only,
            ``None`` when unknown.
        description: Optional plain-words summary.
        optional: An optional read: replay runs it when its args bind without
            asking and records it ``skipped`` otherwise (never pauses for it);
            a later step that references its output is skipped or fails with it.
            An optional step may not have ``side_effect`` true nor be in a ``choice``.
        choice / option: This step belongs to alternative ``option`` (0-based) of
            the choice ``choice`` (see :mod:`procmem.core.alternatives`): the steps of a
            choice are contiguous, grouped by option (0, 1, ... at least 2
            options), and replay runs exactly one option, the first whose params
            all have values. ``{"$step": CHOICE}`` references the output of the
            last step of the option that ran. Both set or neither.
    """

    id: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    action: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    expect: list[Check] = Field(default_factory=list)
    on_error: OnError = Field(default_factory=OnError)
    side_effect: bool | None = None
    description: str = ""
    # left out of dumps when unset: procedures without alternatives serialize as before
    optional: bool = Field(default=False, exclude_if=lambda v: v is False)
    choice: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$",
                               exclude_if=lambda v: v is None)
    option: int | None = Field(default=None, ge=0, exclude_if=lambda v: v is None)

    @model_validator(mode="after")
    def _choice_fields(self) -> Step:
        if (self.choice is None) != (self.option is None):
            raise ValueError(f"step {self.id!r}: 'choice' and 'option' go together")
        if self.optional and self.choice is not None:
            raise ValueError(f"step {self.id!r}: an optional step cannot be in a choice")
        if (self.optional or self.choice is not None) and self.side_effect is True:
            raise ValueError(f"step {self.id!r}: a step with a side effect cannot be "
                             "optional or an alternative")
        return self

    @property
    def subprocedure(self) -> str | None:
        """The sub-procedure's name when ``action`` is ``procedure:NAME``."""
        return self.action.split(":", 1)[1] if self.action.startswith("procedure:") else None


class Lineage(_Model):
    """Where a procedure version came from."""

    traces: list[str] = Field(default_factory=list)
    parent_version: int | None = None
    reason: str = ""


NAME_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"
"""What a procedure name and a namespace look like."""


class Procedure(WithStats, _Model):
    """A reusable, parameterized recipe; one immutable version of it.

    The statistics (``execution_count``, ``success_rate``, ``avg_duration_ms``,
    ``last_executed_at``) are not fields: read-only properties over the
    :class:`~procmem.core.procstats.ProcedureStats` that :class:`procmem.Memory`
    attaches when it reads a version (see :mod:`procmem.core.procstats`); dumps carry
    them, validation ignores them, storage never holds them. ``namespace``
    groups procedures for search filters (``Memory.search(namespace=...)``);
    names stay unique across namespaces.
    """

    name: str = Field(pattern=NAME_PATTERN, max_length=200)
    version: int = Field(default=1, ge=1)
    description: str = ""
    params: list[Param] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    namespace: str = Field(default="default", pattern=NAME_PATTERN, max_length=100)
    status: Literal["candidate", "active", "deprecated"] = "active"
    lineage: Lineage = Field(default_factory=Lineage)
    created_at: _StrictUTCDateTime = Field(default_factory=utcnow)

    @field_validator("steps")
    @classmethod
    def _unique_step_ids(cls, steps: list[Step]) -> list[Step]:
        seen: set[str] = set()
        for s in steps:
            if s.id in seen:
                raise ValueError(f"duplicate step id {s.id!r}")
            seen.add(s.id)
        _check_choices(steps)
        return steps

    @property
    def key(self) -> str:
        """``name@version``."""
        return f"{self.name}@{self.version}"

    def signature(self) -> tuple[str, ...]:
        """The action sequence of the steps (every alternative and optional step included)."""
        return tuple(s.action for s in self.steps)

    def matches(self, actions: Sequence[str]) -> bool:
        """Whether a run of this procedure can make exactly the calls ``actions``.

        Each choice contributes the actions of one of its options and each
        optional step may be left out; without choices or optional steps this is
        ``signature() == tuple(actions)``.
        """
        return _matches(self.steps, tuple(actions))

    def param(self, name: str) -> Param | None:
        """The param called ``name``, or ``None``."""
        return next((p for p in self.params if p.name == name), None)

    def content(self) -> dict[str, Any]:
        """The fields that define this version (no derived statistics, no timestamps)."""
        return self.model_dump(
            mode="json",
            by_alias=True,
            exclude={"created_at", *STATS_FIELDS},
        )


def _check_choices(steps: Sequence[Step]) -> None:
    """Choices are contiguous, options numbered 0, 1, ... in order (2+), and their
    ids are not step ids."""
    ids = {s.id for s in steps}
    closed: set[str] = set()
    current: str | None = None
    last = -1
    for s in steps:
        if s.choice != current:
            if current is not None and last < 1:
                raise ValueError(f"choice {current!r} needs at least 2 options")
            if s.choice is not None:
                if s.choice in closed:
                    raise ValueError(f"choice {s.choice!r}: its steps must be contiguous")
                if s.choice in ids:
                    raise ValueError(f"choice id {s.choice!r} is also a step id")
                last = -1
            if current is not None:
                closed.add(current)
            current = s.choice
        if s.option is not None:
            if s.option not in (last, last + 1):
                raise ValueError(f"step {s.id!r}: options of choice {s.choice!r} must be "
                                 f"numbered 0, 1, ... in order (got {s.option} after {last})")
            last = s.option
    if current is not None and last < 1:
        raise ValueError(f"choice {current!r} needs at least 2 options")


def _matches(steps: Sequence[Step], actions: tuple[str, ...]) -> bool:
    """Backtracking match of ``actions`` against steps (see :meth:`Procedure.matches`)."""
    memo: dict[tuple[int, int], bool] = {}

    def at(i: int, j: int) -> bool:
        if (i, j) in memo:
            return memo[(i, j)]
        if i == len(steps):
            ok = j == len(actions)
        elif steps[i].choice is not None:
            cid, end = steps[i].choice, i
            while end < len(steps) and steps[end].choice == cid:
                end += 1
            ok = False
            for opt in sorted({s.option for s in steps[i:end]}, key=lambda o: o or 0):
                seq = tuple(s.action for s in steps[i:end] if s.option == opt)
                if actions[j:j + len(seq)] == seq and at(end, j + len(seq)):
                    ok = True
                    break
        else:
            ok = (j < len(actions) and actions[j] == steps[i].action and at(i + 1, j + 1)) or (
                steps[i].optional and at(i + 1, j))
        memo[(i, j)] = ok
        return ok

    return at(0, 0)


# ----------------------------------------------------------------------- executions


class Need(_Model):
    """A value the engine cannot bind by itself.

    Attributes:
        key: Stable id within the execution; answers are keyed by it.
            ``param:NAME`` for a missing param, ``ask:STEP_ID:POINTER`` for an
            ``$ask`` hole, ``error:STEP_ID`` for an ``on_error: ask`` failure.
            Needs of a sub-procedure run by step ``S`` carry the prefix ``S/``
            (e.g. ``s2/param:order_id``).
        kind: ``param``, ``ask`` or ``error``.
        name: The param name (kind ``param``).
        prompt: What to ask for, in plain words.
        step_id / action / arg_path: Where the value goes (``arg_path`` is a
            JSON Pointer into the step's args).
        candidates: Values to choose from, when known.
        context: Anything else that helps answer (schema, examples, error text).
    """

    key: str
    kind: Literal["param", "ask", "error"]
    name: str | None = None
    prompt: str = ""
    step_id: str | None = None
    action: str | None = None
    arg_path: str | None = None
    candidates: list[Any] | None = None
    context: dict[str, Any] = Field(default_factory=dict)


class Attempt(_Model):
    """An earlier try of a step, kept in :attr:`StepRun.history` (never changed once kept).

    Attributes:
        attempt: The try's number (1-based). With the execution id and the step id
            it makes the idempotency key the tool was sent
            (:func:`procmem.core.drivers.idempotency_key`).
        status: ``failed`` (the tool failed, an ``expect`` check failed, or the args
            did not bind) or ``unknown`` (the call was sent, then the run stopped
            before its result was stored: it may or may not have taken effect).
        args / sources / output / error / duration_ms / started_at /
            child_execution_id: As on :class:`StepRun`, for this try.
    """

    attempt: int = Field(ge=1)
    status: Literal["failed", "unknown"]
    args: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None
    duration_ms: float = Field(default=0.0, ge=0)
    started_at: UTCDateTime = Field(default_factory=utcnow)
    child_execution_id: str | None = None


class StepRun(_Model):
    """One step of one execution, as it ran: its latest try, and the earlier ones.

    ``sources`` maps a JSON Pointer into ``args`` to where that value came from:
    ``literal``, ``param:NAME``, ``step:ID#POINTER`` or ``ask`` (answered need).

    Tries are append-only: a retry, or a resume that runs a failed step again,
    moves the failed try into ``history`` and goes on with the next number; a
    call interrupted before its result was stored is kept there as ``unknown``
    and repeated with the *same* number (so the same idempotency key).

    Attributes:
        attempt: The latest try's number (1-based; see :class:`Attempt`).
        attempts: Tool calls sent for this step so far, ``history`` included (0:
            never called, e.g. its args did not bind).
        history: Earlier tries, oldest first.
        duration_ms / started_at / output / error: Of the latest try.
    """

    index: int = Field(ge=0)
    step_id: str
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    output: Any = None
    error: str | None = None
    status: Literal["succeeded", "failed", "skipped"] = "succeeded"
    attempt: int = Field(default=1, ge=1)
    attempts: int = Field(default=1, ge=0)
    duration_ms: float = Field(default=0.0, ge=0)
    started_at: UTCDateTime = Field(default_factory=utcnow)
    child_execution_id: str | None = None
    history: list[Attempt] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _latest_attempt(cls, data: Any) -> Any:
        """Records stored before ``attempt`` existed: their retries were attempts 1..n."""
        if isinstance(data, dict) and "attempt" not in data and "attempts" in data:
            data = {**data, "attempt": max(int(data["attempts"] or 0), 1)}
        return data

    @property
    def total_ms(self) -> float:
        """Wall time of every try, ``history`` included (ms)."""
        return self.duration_ms + sum(a.duration_ms for a in self.history)


class CallStarted(_Model):
    """A tool call sent whose result is not stored yet (:attr:`Execution.in_flight`)."""

    index: int = Field(ge=0)
    step_id: str
    action: str
    attempt: int = Field(ge=1)
    args: dict[str, Any] = Field(default_factory=dict)
    started_at: UTCDateTime = Field(default_factory=utcnow)


class Execution(_Model):
    """One run of one procedure version (an episode). Durable and resumable.

    ``in_flight`` is the tool call sent last, stored *before* it is sent; it is
    open while the step run at its index has no try of its number (a process that
    stopped there left it open: resume repeats the call with the same number and
    keeps the unknown outcome in the step run's history).

    ``driver`` says who makes the tool calls: ``"tools"`` (procmem, in ``replay``
    and ``resume``) or ``"client"`` (the caller, one turn at a time: ``start`` /
    ``advance``, REST and MCP); a client-driven execution left ``running`` expires
    (:mod:`procmem.services.execution_view`).
    """

    id: str = Field(default_factory=lambda: new_id("ex"))
    procedure: str
    version: int = Field(ge=1)
    task: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    param_sources: dict[str, str] = Field(default_factory=dict)
    answers: dict[str, Any] = Field(default_factory=dict)
    status: Literal["running", "paused", "succeeded", "failed"] = "running"
    step_runs: list[StepRun] = Field(default_factory=list)
    needs: list[Need] = Field(default_factory=list)
    error: str | None = None
    parent_id: str | None = None
    started_at: UTCDateTime = Field(default_factory=utcnow)
    finished_at: UTCDateTime | None = None
    duration_ms: float = Field(default=0.0, ge=0)
    in_flight: CallStarted | None = None
    driver: Literal["tools", "client"] = "tools"

    @property
    def done(self) -> bool:
        """True once the execution succeeded or failed."""
        return self.status in ("succeeded", "failed")


class Evidence(_Model):
    """An outcome report about an execution; reliability comes from evidence."""

    execution_id: str
    source: Literal["environment", "test", "user", "agent"]
    reward: float = Field(ge=0, le=1)
    note: str = ""
    created_at: UTCDateTime = Field(default_factory=utcnow)


class Hit(_Model):
    """A search result.

    Attributes:
        procedure: The procedure found (latest active version).
        score: Fused score, higher is better (not a probability).
        ranks: The 1-based rank of this procedure in each ranker, by ranker name.
        reliability: Posterior mean of success in [0, 1].
        explanation: Why it matched (matched terms, nearest demonstration task,
            params bound from the query).
        confident: True only when the hit may be replayed without checking: its
            ``confidence`` clears the calibrated threshold (or, with no
            calibration stored, the fixed rule of
            :func:`procmem.search.retrieval.is_confident`).
        confidence: Calibrated probability (0-1) that this is the right procedure
            and every value it bound from the task is right (see
            :mod:`procmem.search.calibration`); ``None`` when the memory has no calibration.
    """

    procedure: Procedure
    score: float
    ranks: dict[str, int] = Field(default_factory=dict)
    reliability: float = Field(ge=0, le=1)
    explanation: dict[str, Any] = Field(default_factory=dict)
    confident: bool = True
    confidence: float | None = Field(default=None, ge=0, le=1)
