"""Memory.rename: history, lineage, runs and search move; the old name stays an alias."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from procmem.core.errors import Conflict, InvalidProcedure, NotFound
from procmem.core.model import Procedure
from procmem.formats.traceio import read_traces
from procmem.memory import Memory


@pytest.fixture
def mem(tau_sample_path: Path, tmp_path: Path) -> Memory:
    traces, _ = read_traces(tau_sample_path)
    memory = Memory(tmp_path / "m.db", embedder=None)
    memory.learn(traces[:60])
    yield memory
    memory.close()


def _biggest(mem: Memory) -> Procedure:
    return max(mem.list_procedures(limit=1000), key=lambda p: len(p.lineage.traces))


def test_rename_keeps_versions_lineage_and_runs(mem: Memory) -> None:
    proc = _biggest(mem)
    old = proc.name
    before = [(p.version, p.lineage.traces) for p in mem.list_versions(old)]
    turn = mem.start(old, task="a task")
    renamed = mem.rename(old, "renamed_proc")
    assert renamed.name == "renamed_proc" and renamed.version == proc.version
    assert [(p.version, p.lineage.traces) for p in mem.list_versions("renamed_proc")] == before
    assert mem.get_execution(turn.execution.id).procedure == "renamed_proc"
    assert [e.id for e in mem.list_executions(procedure="renamed_proc")] == [turn.execution.id]
    assert mem.get_procedure(old).name == "renamed_proc"  # the old name resolves
    assert [p.version for p in mem.list_versions(old)] == [v for v, _ in before]
    names = {p.name for p in mem.list_procedures(limit=1000)}
    assert "renamed_proc" in names and old not in names


def test_search_shows_the_new_name(mem: Memory) -> None:
    proc = _biggest(mem)
    task = read_traces_task(mem, proc)
    assert proc.name in [h.procedure.name for h in mem.search(task, retriever="bm25")]
    mem.rename(proc.name, "renamed_proc")
    hits = [h.procedure.name for h in mem.search(task, retriever="bm25")]
    assert "renamed_proc" in hits and proc.name not in hits


def read_traces_task(mem: Memory, proc: Procedure) -> str:
    return mem.get_trace(proc.lineage.traces[0]).task


def test_learning_again_adds_to_the_renamed_procedure(mem: Memory, tau_sample_path: Path) -> None:
    traces, _ = read_traces(tau_sample_path)
    proc = _biggest(mem)
    mem.rename(proc.name, "renamed_proc")
    mem.learn(traces[60:])
    assert mem.find_procedure("renamed_proc") is not None
    assert proc.name not in {p.name for p in mem.list_procedures(limit=1000)}


def test_rename_refuses_bad_names_and_taken_names(mem: Memory) -> None:
    first, second = mem.list_procedures(limit=2)
    with pytest.raises(Conflict):
        mem.rename(first.name, second.name)
    with pytest.raises(InvalidProcedure):
        mem.rename(first.name, "has space")
    with pytest.raises(NotFound):
        mem.rename("no_such_procedure", "x")
    mem.rename(first.name, "renamed_proc")
    with pytest.raises(Conflict, match="alias"):
        mem.put_procedure(first.model_copy(update={"name": first.name, "version": 1}))


def test_arename_is_the_twin(mem: Memory) -> None:
    proc = _biggest(mem)
    renamed = asyncio.run(mem.arename(proc.name, "renamed_proc"))
    assert renamed.name == "renamed_proc"
