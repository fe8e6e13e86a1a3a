"""Async twins return what their sync methods return (parity)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from procmem.memory import Memory
from procmem.traceio import read_traces


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
