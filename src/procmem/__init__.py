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

import sys as _sys
import types as _types
import typing as _typing

from .errors import (
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
    from .bind import Binding
    from .embed import Embedder
    from .evaluate import EvalReport, evaluate
    from .learning.changes import Change, ReportResult
    from .learning.promote import PromotionPolicy
    from .learning.stats import VersionStats
    from .limits import Limits
    from .memory import Memory
    from .memory_calibrate import CalibrationReport
    from .memory_client import Turn
    from .memory_learn import LearnReport
    from .memory_learning import OptimizeReport
    from .memory_traces import ImportReport, TraceImpact
    from .model import (
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
    from .multiplan import PlanRun, TaskPlan
    from .planning import Plan
    from .record import Recorder
    from .redaction import Redactor
    from .rerank import Reranker
    from .secret_params import SecretProvider
    from .store.base import Store
    from .traceio import read_traces, write_traces

    __version__: str

# Loaded on first use (PEP 562), so that importing procmem (e.g. for
# ``procmem --version``) does not import numpy, pydantic or the evaluator.
_LAZY: dict[str, str] = {
    "evaluate": "evaluate", "Memory": "memory", "Plan": "planning",
    "read_traces": "traceio", "write_traces": "traceio",
    "Binding": "bind",
    "CalibrationReport": "memory_calibrate",
    "Embedder": "embed",
    "EvalReport": "evaluate",
    "ImportReport": "memory_traces",
    "LearnReport": "memory_learn",
    "Limits": "limits",
    "OptimizeReport": "memory_learning",
    "PlanRun": "multiplan",
    "PromotionPolicy": "learning.promote",
    "Recorder": "record",
    "Redactor": "redaction",
    "Reranker": "rerank",
    "SecretProvider": "secret_params",
    "Store": "store.base",
    "TaskPlan": "multiplan",
    "TraceImpact": "memory_traces",
    "Turn": "memory_client",
    "VersionStats": "learning.stats",
    "ReportResult": "learning.changes",
    "Change": "learning.changes",
    **{name: "model" for name in ("Check", "Evidence", "Execution", "Hit", "Need", "OnError",
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


class _Package(_types.ModuleType):
    """This package's module type: importing the submodule ``procmem.evaluate`` binds
    the attribute ``evaluate`` to the submodule; here it stays the function of that
    name, as the eager ``from .evaluate import evaluate`` once left it."""

    def __setattr__(self, name: str, value: _typing.Any) -> None:
        if name in _LAZY and isinstance(value, _types.ModuleType):
            value = getattr(value, name)
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package


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
