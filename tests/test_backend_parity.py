"""The same data gives the same answers on every backend.

Search runs in process over what the store holds (BM25 over the stored index
documents, vectors from the stored embeddings, statistics from the store's
counters), so a backend changes where records live, not what is found: learning
the same τ-retail traces into SQLite and into another backend gives the same
procedures and, for every held-out task, the same top hits with the same scores.
The other backend is the tests' dict store always, and PostgreSQL when
``PROCMEM_TEST_PG_URL`` names a server (the ``postgres`` lane of ``.ci/run``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import storebackend
from embedders import CountingEmbedder
from procmem.core.model import Trace
from procmem.memory import Memory

BACKENDS = [
    pytest.param("dictstore:DictStore", id="dict"),
    pytest.param("pgstore:factory", id="postgres", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not os.environ.get("PROCMEM_TEST_PG_URL"),
                           reason="PROCMEM_TEST_PG_URL is not set (see README, Tests)")]),
]


def _learned(mem: Memory, traces: list[Trace]) -> Memory:
    mem.add_traces(traces)
    mem.learn()
    return mem


def _answers(mem: Memory, tasks: list[str]) -> list[list[tuple[str, int, float, float]]]:
    return [[(h.procedure.name, h.procedure.version, round(h.score, 9), round(h.reliability, 9))
             for h in mem.search(task, limit=5)] for task in tasks]


@pytest.mark.parametrize("spec", BACKENDS)
def test_the_same_traces_give_the_same_top_hits(spec: str, tau_sample: list[Trace],
                                                tmp_path: Path) -> None:
    train = [t for i, t in enumerate(tau_sample) if i % 6]
    tasks = [t.task for i, t in enumerate(tau_sample) if not i % 6]
    other_store = storebackend.load_factory(spec)(str(tmp_path / "other.db"))
    with Memory(tmp_path / "sqlite.db", embedder=CountingEmbedder(), seed=7) as sqlite_mem, \
            Memory(store=other_store, embedder=CountingEmbedder(), seed=7) as other_mem:
        _learned(sqlite_mem, train)
        _learned(other_mem, train)
        names = [p.name for p in sqlite_mem.list_procedures(limit=1000)]
        assert names and names == [p.name for p in other_mem.list_procedures(limit=1000)]
        expected = _answers(sqlite_mem, tasks)
        assert sum(1 for hits in expected if hits) >= len(tasks) // 2
        assert _answers(other_mem, tasks) == expected
