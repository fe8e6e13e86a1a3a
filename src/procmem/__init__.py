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

from importlib import metadata as _metadata

from .errors import (
    Conflict,
    CycleError,
    InvalidProcedure,
    InvalidTrace,
    MissingExtra,
    NotFound,
    ParamError,
    ProcmemError,
    ReplayError,
    StoreUnavailable,
    UnknownTool,
    UsageError,
)
from .evaluate import evaluate
from .memory import Memory
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
from .planning import Plan
from .traceio import read_traces, write_traces

try:
    __version__ = _metadata.version("procedural-memory")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "Check",
    "Conflict",
    "CycleError",
    "Evidence",
    "Execution",
    "Hit",
    "InvalidProcedure",
    "InvalidTrace",
    "Memory",
    "MissingExtra",
    "Need",
    "NotFound",
    "OnError",
    "Param",
    "ParamError",
    "Plan",
    "Procedure",
    "ProcmemError",
    "ReplayError",
    "Step",
    "StepRun",
    "StoreUnavailable",
    "Trace",
    "TraceStep",
    "UnknownTool",
    "UsageError",
    "evaluate",
    "read_traces",
    "write_traces",
]
