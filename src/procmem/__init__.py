"""procmem: procedural memory for AI agents.

Record how a multi-step task was done (traces of tool calls), learn reusable,
parameterized procedures from them, find the right one for a new task and
replay it against real tools with the new task's values::

    import procmem
    mem = procmem.Memory("memory.db")
    mem.import_traces("traces.jsonl"); mem.learn()
    task = "Cancel order #W6067464 because no longer needed."
    ex = mem.replay(mem.search(task)[0].procedure, tools=tools, task=task)
    print(ex.status, ex.params)  # succeeded {'order_id': '#W6067464', 'reason': 'no longer needed'}

``tools`` maps action names to callables, e.g. ``{"cancel_pending_order": fn}``.
The names below are the whole public API; every other module is internal.
"""

import typing as _typing

from .core.errors import (
    Conflict,
    CycleError,
    EmbeddingError,
    ExecutionBusy,
    Forbidden,
    InvalidProcedure,
    InvalidTemplate,
    InvalidTrace,
    LimitExceeded,
    MissingExtra,
    ModelError,
    NotFound,
    ParamError,
    ProcmemError,
    ReplayError,
    RerankError,
    StoreError,
    StoreUnavailable,
    Unauthorized,
    UnknownTool,
    UnsafePattern,
    UsageError,
)

if _typing.TYPE_CHECKING:
    from .core.model import (
        Check,
        Evidence,
        Execution,
        Hit,
        Need,
        OnError,
        Param,
        Procedure,
        Step,
        StepRun,
        Trace,
        TraceStep,
    )
    from .evaluation.evaluate import EvalReport, evaluate
    from .formats.record import Recorder
    from .formats.traceio import read_traces, write_traces
    from .induction.bind import Binding
    from .induction.planning import Plan
    from .learning.changes import Change, ReportResult
    from .learning.promote import PromotionPolicy
    from .learning.stats import VersionStats
    from .memory import Memory
    from .search.embed import Embedder
    from .search.rerank import Reranker
    from .security.limits import Limits
    from .security.redaction import Redactor
    from .security.secret_params import SecretProvider
    from .services.calibrate import CalibrationReport
    from .services.client import Turn
    from .services.learn import LearnReport
    from .services.learning import OptimizeReport
    from .services.multiplan import PlanRun, TaskPlan
    from .services.traces import ImportReport, TraceImpact
    from .store.base import Store

    __version__: str

# Loaded on first use (PEP 562), so that importing procmem (e.g. for
# ``procmem --version``) does not import numpy, pydantic or the evaluator.
_LAZY: dict[str, str] = {
    "evaluate": "evaluation.evaluate", "Memory": "memory", "Plan": "induction.planning",
    "read_traces": "formats.traceio", "write_traces": "formats.traceio",
    "Binding": "induction.bind",
    "CalibrationReport": "services.calibrate",
    "Embedder": "search.embed",
    "EvalReport": "evaluation.evaluate",
    "ImportReport": "services.traces",
    "LearnReport": "services.learn",
    "Limits": "security.limits",
    "OptimizeReport": "services.learning",
    "PlanRun": "services.multiplan",
    "PromotionPolicy": "learning.promote",
    "Recorder": "formats.record",
    "Redactor": "security.redaction",
    "Reranker": "search.rerank",
    "SecretProvider": "security.secret_params",
    "Store": "store.base",
    "TaskPlan": "services.multiplan",
    "TraceImpact": "services.traces",
    "Turn": "services.client",
    "VersionStats": "learning.stats",
    "ReportResult": "learning.changes",
    "Change": "learning.changes",
    **{name: "core.model" for name in ("Check", "Evidence", "Execution", "Hit", "Need", "OnError",
                                  "Param", "Procedure", "Step", "StepRun", "Trace",
                                  "TraceStep")},
}


def __getattr__(name: str) -> _typing.Any:
    """Import a public name (or ``__version__``) on first use and keep it."""
    if name == "__version__":
        from importlib import metadata

        try:
            value: _typing.Any = metadata.version("procedural-memory")
        except metadata.PackageNotFoundError:  # a source tree that is not installed
            value = "0.0.0+unknown"
    elif name in _LAZY:
        from importlib import import_module

        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY, "__version__"})


__all__ = [
    "Binding",
    "CalibrationReport",
    "Change",
    "Check",
    "Conflict",
    "CycleError",
    "Embedder",
    "EmbeddingError",
    "EvalReport",
    "Evidence",
    "Execution",
    "ExecutionBusy",
    "Forbidden",
    "Hit",
    "ImportReport",
    "InvalidProcedure",
    "InvalidTemplate",
    "InvalidTrace",
    "LearnReport",
    "LimitExceeded",
    "Limits",
    "Memory",
    "MissingExtra",
    "ModelError",
    "Need",
    "NotFound",
    "OnError",
    "OptimizeReport",
    "Param",
    "ParamError",
    "Plan",
    "PlanRun",
    "Procedure",
    "ProcmemError",
    "PromotionPolicy",
    "Recorder",
    "Redactor",
    "ReplayError",
    "ReportResult",
    "RerankError",
    "Reranker",
    "SecretProvider",
    "Step",
    "StepRun",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TaskPlan",
    "Trace",
    "TraceImpact",
    "TraceStep",
    "Turn",
    "Unauthorized",
    "UnknownTool",
    "UnsafePattern",
    "UsageError",
    "VersionStats",
    "evaluate",
    "read_traces",
    "write_traces",
]
