"""learn() keeps its fold over the stored traces between calls: every call stores what a
learn() over all the traces read afresh would store, while reading only the new ones."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from procmem.core.model import Trace
from procmem.induction.induce import CorpusStats
from procmem.memory import Memory
from procmem.store import TraceChanges
from procmem.store.sqlite import SQLiteStore


def every_version(mem: Memory) -> list[dict[str, Any]]:
    out = []
    for p in mem.list_procedures(limit=1000):
        for v in mem.store.list_versions(p.name):
            out.append(v.content())
    return out


def batches(traces: list[Trace], seed: int) -> list[list[Trace]]:
    """The traces in random batches of 1-40, some of them marked failed or as recoveries."""
    rng = random.Random(seed)
    marked = []
    for t in traces:
        roll = rng.random()
        if roll < 0.05:
            t = t.model_copy(update={"outcome": "failure"})
        elif roll < 0.08:
            t = t.model_copy(update={"metadata": {**t.metadata, "recovers": "ex-1"}})
        marked.append(t)
    out, i = [], 0
    while i < len(marked):
        k = rng.randint(1, 40)
        out.append(marked[i:i + k])
        i += k
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_learning_batch_by_batch_stores_what_learning_afresh_stores(
        tmp_path: Path, tau_sample: list[Trace], seed: int) -> None:
    kept = Memory(tmp_path / "kept.db", embedder=None)  # one object: its fold is kept
    for batch in batches(tau_sample, seed):
        report = kept.learn(batch)
        with Memory(tmp_path / "afresh.db", embedder=None) as afresh:  # a new object each time
            want = afresh.learn(batch)
            assert (report.traces, report.groups, report.skipped) == (
                want.traces, want.groups, want.skipped)
            assert (report.created, report.updated, report.unchanged) == (
                want.created, want.updated, want.unchanged)
            assert every_version(kept) == every_version(afresh)
    kept.close()


def test_traces_stored_by_another_writer_are_folded_in(
        tmp_path: Path, tau_sample: list[Trace]) -> None:
    path = tmp_path / "m.db"
    mem = Memory(path, embedder=None)
    mem.learn(tau_sample[:50])
    with Memory(path, embedder=None) as other:
        other.add_traces(tau_sample[50:90])  # another process, say
    report = mem.learn(tau_sample[90:])
    with Memory(tmp_path / "all.db", embedder=None) as afresh:
        afresh.learn(tau_sample[:50])
        want = afresh.learn(tau_sample[50:])
        assert report.traces == want.traces == len(tau_sample)
        assert every_version(mem) == every_version(afresh)
    mem.close()


def test_the_fold_starts_over_on_another_store(tmp_path: Path, tau_sample: list[Trace]) -> None:
    mem = Memory(tmp_path / "a.db", embedder=None)
    mem.learn(tau_sample[:30])
    mem.store.close()
    mem.store = SQLiteStore(tmp_path / "b.db")  # same count, other traces
    mem.store.put_traces(tau_sample[30:60])
    report = mem.learn()
    with Memory(tmp_path / "c.db", embedder=None) as afresh:
        want = afresh.learn(tau_sample[30:60])
        assert (report.traces, report.groups) == (want.traces, want.groups) == (30, want.groups)
        assert every_version(mem) == every_version(afresh)
    mem.close()


def test_a_later_learn_reads_only_the_new_traces(tmp_path: Path, tau_sample: list[Trace],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    mem = Memory(tmp_path / "m.db", embedder=None)
    mem.learn(tau_sample[:100])
    read: list[tuple[int, bool]] = []
    real_feed, real_list = mem.store.traces_since, mem.store.list_traces

    def counting(token: str | None, *, limit: int = 1000) -> TraceChanges:
        page = real_feed(token, limit=limit)
        read.append((len(page.traces), page.reset))
        return page

    def no_paging(*, limit: int = 100, offset: int = 0) -> list[Trace]:
        raise AssertionError("the fold reads the change feed, not pages by offset")

    monkeypatch.setattr(mem.store, "traces_since", counting)
    monkeypatch.setattr(mem.store, "list_traces", no_paging)
    mem.learn(tau_sample[100:103])
    assert read == [(3, False)]  # the 3 new ones, in one read of the feed
    monkeypatch.setattr(mem.store, "list_traces", real_list)
    mem.delete_trace(tau_sample[0].id)
    read.clear()
    report = mem.learn()
    assert read == [(102, True)]  # a deletion starts the feed, and the fold, over
    assert report.traces == 102
    mem.close()


def test_corpus_stats_fold_in_any_split(tau_sample: list[Trace]) -> None:
    traces = tau_sample
    whole = CorpusStats.from_traces(traces)
    for cut in (0, 1, 37, len(traces)):
        split = CorpusStats.from_traces(traces[:cut]).add(traces[cut:])
        assert (split.values, split.shapes, split.contexts) == (
            whole.values, whole.shapes, whole.contexts)
