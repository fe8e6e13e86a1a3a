"""A learned store for the web UI tests: the τ-retail sample, some executions, one
hand-written procedure with ``$step`` data flow and a sub-procedure, a candidate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from procmem.core.model import Execution, Procedure
from procmem.memory import Memory

FLOW = "lookup_then_cancel"


def recorded_tools(mem: Memory, trace_id: str) -> dict[str, Any]:
    """Tools that answer with a trace's recorded outputs, in order, per action."""
    outputs: dict[str, list[Any]] = {}
    for step in mem.get_trace(trace_id).steps:
        outputs.setdefault(step.action, []).append(step.output)

    def tool(action: str) -> Any:
        return lambda **_: outputs[action].pop(0) if outputs[action] else None
    return {action: tool(action) for action in outputs}


def build_store(folder: Path, sample: Path) -> Path:
    """Learn ``sample`` into ``folder/m.db``, replay some procedures from their traces,
    add :data:`FLOW` and a candidate version of it; returns the file."""
    path = folder / "m.db"
    with Memory(path, embedder=None) as mem:
        mem.import_traces(sample)
        mem.learn()
        for proc in mem.list_procedures()[:12]:
            trace_id = proc.lineage.traces[0]
            mem.replay(proc, tools=recorded_tools(mem, trace_id),
                       task=mem.get_trace(trace_id).task)
        flow = Procedure.model_validate({
            "name": FLOW, "description": "find an order, then cancel it",
            "params": [{"name": "order_id"}, {"name": "reason"}],
            "steps": [
                {"id": "s1", "action": "get_order_details",
                 "args": {"order_id": {"$param": "order_id"}}},
                {"id": "s2", "action": "cancel_pending_order",
                 "args": {"order_id": {"$step": "s1", "path": "/order_id"},
                          "reason": {"$param": "reason"}}},
                {"id": "s3", "action": "procedure:cancel_pending_order",
                 "args": {"order_id": {"$step": "s1", "path": "/order_id"},
                          "reason": {"$param": "reason"}}}]})
        mem.put_procedure(flow)
        mem.put_procedure(flow.model_copy(update={"status": "candidate",
                                                  "description": "find, then cancel"}))
    return path


def copy_store(built: Path, folder: Path) -> Path:
    """A private copy of a built store (with its SQLite side files)."""
    for side in built.parent.glob(built.name + "*"):
        shutil.copy(side, folder / side.name)
    return folder / built.name


def some_execution(mem: Memory) -> Execution:
    """An execution with step runs (the newest one that has some)."""
    return next(e for e in mem.list_executions(limit=100) if e.step_runs)
