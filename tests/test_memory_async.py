"""Async twins: one per public method, with its parameters, returning what it returns."""

from __future__ import annotations

import asyncio
import inspect
from pathlib import Path
from typing import Any

from procmem.core.model import Trace, TraceStep
from procmem.formats.traceio import read_traces
from procmem.memory import Memory


def test_async_twins_match_the_sync_methods(tau_sample_path: Path, tmp_path: Path) -> None:
    traces, _ = read_traces(tau_sample_path)
    task = "Cancel order #W1234567 because ordered by mistake."
    with Memory(tmp_path / "sync.db") as sync_mem, Memory(tmp_path / "async.db") as async_mem:
        sync_report = sync_mem.learn(traces[:80])
        sync_hits = sync_mem.search(task)
        sync_turn = sync_mem.start(sync_hits[0].procedure.name, task=task)

        async def run() -> tuple:
            report = await async_mem.alearn(traces[:80])
            hits, hits_again = await asyncio.gather(async_mem.asearch(task),
                                                    async_mem.asearch(task))
            turn = await async_mem.astart(hits[0].procedure.name, task=task)
            done = await async_mem.aadvance(turn.execution.id, step_id=turn.call.step_id,
                                            output='{"status": "cancelled"}')
            ev = (await async_mem.areport(done.execution.id, reward=1.0, source="test")).evidence
            proc = await async_mem.aget_procedure(hits[0].procedure.name)
            return report, hits, hits_again, turn, done, ev, proc

        report, hits, hits_again, turn, done, ev, proc = asyncio.run(run())
    assert report.created == sync_report.created
    assert [(h.procedure.name, h.score) for h in hits] == [
        (h.procedure.name, h.score) for h in sync_hits]
    assert [h.procedure.name for h in hits_again] == [h.procedure.name for h in hits]
    assert turn.call is not None and sync_turn.call is not None
    assert (turn.call.action, turn.call.args) == (sync_turn.call.action, sync_turn.call.args)
    assert done.done and done.execution.status == "succeeded"
    assert ev.execution_id == done.execution.id and ev.source == "test"
    assert proc.execution_count == 1


def _public_methods(cls: type) -> dict[str, Any]:
    return {name: fn for name, fn in vars(cls).items()
            if not name.startswith("_") and inspect.isfunction(fn)}


def _params(fn: Any) -> list[tuple[str, Any, Any]]:
    """Parameters as (name, kind, default): what a caller can pass, annotations aside."""
    return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]


def test_every_public_method_has_an_async_twin_with_the_same_parameters() -> None:
    methods = _public_methods(Memory)
    sync = {n: f for n, f in methods.items() if not inspect.iscoroutinefunction(f)}
    coros = {n: f for n, f in methods.items() if inspect.iscoroutinefunction(f)}
    assert len(sync) >= 44  # the whole public surface, not a sample
    missing = sorted(f"a{n}" for n in sync if f"a{n}" not in coros)
    assert missing == []
    for name, fn in sync.items():
        assert _params(coros[f"a{name}"]) == _params(fn), name
    # and nothing async that is not a twin of a sync method
    assert sorted(n for n in coros if n[1:] not in sync) == []


def test_namespace_reaches_learn_and_search_through_their_twins(tmp_path: Path) -> None:
    task = "Cancel order #W1234567 because no longer needed."
    trace = Trace(task=task, outcome="success", steps=[
        TraceStep(action="cancel_pending_order",
                  args={"order_id": "#W1234567", "reason": "no longer needed"}, output="ok")])

    async def run(mem: Memory) -> tuple[list[str], list[str]]:
        await mem.alearn([trace], namespace="desk")
        desk = await mem.asearch(task, namespace="desk", retriever="bm25")
        other = await mem.asearch(task, namespace="other", retriever="bm25")
        return [h.procedure.name for h in desk], [h.procedure.name for h in other]

    with Memory(tmp_path / "ns.db", embedder=None) as mem:
        desk, other = asyncio.run(run(mem))
    assert desk == ["cancel_pending_order"] and other == []
