"""The search index saved in the store: a new process loads it instead of building it,
brings it up to date, answers exactly like a fresh build, and never fails a search."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

import procmem.search.index as search_index
import procmem.services.search as memory_search
from embedders import CountingEmbedder
from procmem.core.errors import UsageError
from procmem.memory import Memory
from procmem.search.index import dump_index, load_index
from procmem.search.vectors import VectorIndex
from procmem.services.search import IndexSnapshotWarning
from procmem.store import open_store
from test_index_refresh import QUERIES, VERBS, summary, traces

KEY = "test:bow"  # CountingEmbedder's model id


@pytest.fixture(autouse=True)
def small_snapshots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_search, "SNAPSHOT_MIN", 1)  # every index is worth saving here


@pytest.fixture
def path(tmp_path: Path) -> Path:
    p = tmp_path / "m.db"
    with Memory(p, embedder=CountingEmbedder()) as mem:
        mem.learn([t for verb in VERBS[:5] for t in traces(verb, 3)])
        mem.warm_index()  # builds the index and saves it
    return p


def fresh_answers(path: Path, *, status: str | None = "active") -> list[object]:
    """Every query and retriever's hits from an index built now (the saved one not loaded)."""
    with Memory(path, embedder=CountingEmbedder()) as mem:
        mem.reindex()
        return answers(mem, status=status)


def answers(mem: Memory, *, status: str | None = "active") -> list[object]:
    return [summary(mem.search(q, limit=5, retriever=r, status=status))  # type: ignore[arg-type]
            for r in ("bm25", "vector", "hybrid") for q in QUERIES]


def no_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the index was built, not loaded")
    monkeypatch.setattr(memory_search, "build_index", refuse)
    monkeypatch.setattr(memory_search, "add_vectors", refuse)


def test_a_built_index_is_saved_and_the_next_memory_loads_it(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(path)
    saved = store.get_index_snapshot(KEY)
    assert saved is not None and saved[0] == store.index_revision()
    want = fresh_answers(path)
    no_build(monkeypatch)
    embedder = CountingEmbedder()
    with Memory(path, embedder=embedder) as mem:
        assert answers(mem) == want
        assert mem.warm_index()["procedures"] == 5
    assert all(text in QUERIES for text in embedder.seen)  # only the queries were embedded


def test_a_loaded_index_is_brought_up_to_date_with_the_changes_since(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Memory(path, embedder=None) as writer:  # no search here: the snapshot stays old
        writer.learn(traces("track", 2))
        current = writer.get_procedure("cancel_order")
        writer.put_procedure(current.model_copy(update={"description": "Cancel an order now"}))
        writer.store.set_status("return_order", writer.get_procedure("return_order").version,
                                "deprecated")
    old = open_store(path).get_index_snapshot(KEY)
    assert old is not None and old[0] < open_store(path).index_revision()
    want = fresh_answers(path, status=None), fresh_answers(path)
    no_build(monkeypatch)
    with Memory(path, embedder=CountingEmbedder()) as mem:
        assert (answers(mem, status=None), answers(mem)) == want


def test_an_unreadable_snapshot_warns_and_is_built_and_saved_again(path: Path) -> None:
    store = open_store(path)
    revision = store.index_revision()
    store.put_index_snapshot(KEY, revision, b"not an index")
    want = fresh_answers(path)
    store.put_index_snapshot(KEY, revision, b"not an index")  # fresh_answers saved a good one
    with Memory(path, embedder=CountingEmbedder()) as mem:
        with pytest.warns(IndexSnapshotWarning, match="cannot be used"):
            got = answers(mem)
    assert got == want
    saved = store.get_index_snapshot(KEY)
    assert saved is not None and saved[1] != b"not an index"


def test_a_snapshot_whose_vectors_are_gone_is_not_used(path: Path) -> None:
    store = open_store(path)
    store.delete_embeddings(KEY)  # e.g. deleted by hand: the snapshot names vectors no longer there
    with Memory(path, embedder=CountingEmbedder()) as mem:
        with pytest.warns(IndexSnapshotWarning, match="no longer stored"):
            mem.warm_index()
        assert answers(mem) == fresh_answers(path)


def test_each_embedder_has_its_own_snapshot(path: Path) -> None:
    other = CountingEmbedder("test:other")
    with Memory(path, embedder=other) as mem:
        mem.warm_index()
        assert other.seen  # nothing of test:bow was used: its own vectors were embedded
    store = open_store(path)
    assert store.get_index_snapshot("test:other") is not None
    assert store.get_index_snapshot(KEY) is not None
    with Memory(path, embedder=None) as mem:
        mem.search("cancel my order")
    assert store.get_index_snapshot("bm25") is not None


def test_a_keyword_only_search_loads_a_snapshot_with_vectors(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    want = fresh_answers(path)
    no_build(monkeypatch)
    with Memory(path, embedder=CountingEmbedder()) as mem:
        got = [summary(mem.search(q, retriever="bm25")) for q in QUERIES]
    assert got == want[:len(QUERIES)]


def test_snapshots_outside_the_log_or_ahead_of_the_store_are_ignored(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(path)
    saved = store.get_index_snapshot(KEY)
    assert saved is not None
    store.put_index_snapshot(KEY, store.index_revision() + 5, saved[1])  # from another store?
    loads: list[bytes] = []
    real = memory_search.load_index

    def spy(data: bytes, *args: object, **kwargs: object) -> object:
        loads.append(data)
        return real(data, *args, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(memory_search, "load_index", spy)
    with Memory(path, embedder=CountingEmbedder()) as mem:
        mem.warm_index()
    assert loads == []
    store.put_index_snapshot(KEY, -10, saved[1])  # older than the index log
    with Memory(path, embedder=CountingEmbedder()) as mem:
        mem.warm_index()
    assert loads == []
    again = store.get_index_snapshot(KEY)
    assert again is not None and again[0] == store.index_revision()  # rebuilt and saved


def test_save_index_false_saves_nothing_and_still_loads(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_store(path)
    before = store.get_index_snapshot(KEY)
    with Memory(path, embedder=CountingEmbedder(), save_index=False) as mem:
        mem.learn(traces("track", 2))
        mem.reindex()  # a new build, not saved
    assert store.get_index_snapshot(KEY) == before
    no_build(monkeypatch)
    with Memory(path, embedder=CountingEmbedder(), save_index=False) as mem:
        assert mem.search("track order")  # the old snapshot, brought up to date


def test_small_memories_save_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_search, "SNAPSHOT_MIN", 2_000)
    with Memory(tmp_path / "s.db", embedder=CountingEmbedder()) as mem:
        mem.learn(traces("cancel", 2))
        mem.search("cancel order")
        assert mem.store.get_index_snapshot(KEY) is None


def test_reindex_builds_anew_and_force_drops_the_snapshot(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("reindex loaded the saved index")
    monkeypatch.setattr(memory_search, "load_index", refuse)
    with Memory(path, embedder=CountingEmbedder()) as mem:
        assert mem.reindex()["embedded"] == 0
        deleted: list[str | None] = []
        real = mem.store.delete_index_snapshots

        def spy(key: str | None = None) -> int:
            deleted.append(key)
            return real(key)
        monkeypatch.setattr(mem.store, "delete_index_snapshots", spy)
        assert mem.reindex(force=True)["embedded"] > 0
    assert deleted == [KEY]
    assert open_store(path).get_index_snapshot(KEY) is not None  # the new build was saved


def test_a_refreshed_index_is_saved_again_after_many_revisions(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_search, "_SNAPSHOT_RESAVE", 2)
    with Memory(path, embedder=CountingEmbedder()) as mem:
        mem.warm_index()
        first = mem.store.get_index_snapshot(KEY)
        mem.learn(traces("track", 2))  # one revision: not saved yet
        mem.search("track order")
        assert mem.store.get_index_snapshot(KEY) == first
        mem.learn(traces("hold", 2))  # two revisions since the snapshot
        mem.search("track order")
        second = mem.store.get_index_snapshot(KEY)
    assert first is not None and second is not None and second[0] > first[0]


def test_a_snapshot_that_cannot_be_saved_warns_and_search_goes_on(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from procmem.core.errors import StoreError

    with Memory(tmp_path / "w.db", embedder=CountingEmbedder()) as mem:
        mem.learn(traces("cancel", 2))

        def full(*args: object) -> None:
            raise StoreError("database or disk is full")
        monkeypatch.setattr(mem.store, "put_index_snapshot", full)
        with pytest.warns(IndexSnapshotWarning, match="could not be saved"):
            hits = mem.search("cancel order")
        assert hits and hits[0].procedure.name == "cancel_order"
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # not tried (and warned) again on every search
            assert mem.search("cancel order") == hits


# ------------------------------------------------------------------ the format


def test_load_index_refuses_another_format_and_another_model(path: Path) -> None:
    store = open_store(path)
    with Memory(path, embedder=CountingEmbedder()) as mem:
        mem.warm_index()
        index = mem.searcher.index
        assert index is not None
    data = dump_index(index)
    assert load_index(data, store, CountingEmbedder()).keyword.keys == index.keyword.keys
    with pytest.raises(UsageError, match="test:other"):
        load_index(data, store, CountingEmbedder("test:other"))
    keyword_only = load_index(data, store, None)
    assert keyword_only.vectors is None and keyword_only.postings.keys() == index.postings.keys()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(search_index, "SNAPSHOT_FORMAT", 9)
        future = dump_index(index)
    with pytest.raises(UsageError, match="format 9"):
        load_index(future, store, None)
    with pytest.raises(zipfile.BadZipFile):  # a flipped byte fails the archive's CRC-32
        load_index(data.replace(b'"format": 1', b'"format": 2'), store, None)


def test_vector_state_round_trips_removals_and_the_hnsw_graph() -> None:
    rng = np.random.default_rng(5)
    vecs = rng.normal(size=(120, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    keys = [f"k{i % 40}" for i in range(120)]
    for threshold in (50, 10**9):  # HNSW graph, exact
        index = VectorIndex(keys, vecs, ann_threshold=threshold, threads=1)
        index.update(["k3", "k5"], ["k3", "n1"], vecs[:2])
        state = index.state()
        copy = VectorIndex.from_state(state["keys"], state["vectors"], state["alive"],
                                      state["graph"], state["ann"])
        assert (copy.backend, len(copy), copy.removed) == (index.backend, len(index),
                                                           index.removed)
        for q in vecs[::7]:
            assert copy.search(q, limit=10) == index.search(q, limit=10)


def test_vector_from_state_refuses_parts_that_do_not_fit() -> None:
    vecs = np.eye(4, dtype=np.float32)
    graph = VectorIndex(list("abcd"), vecs, ann_threshold=2, threads=1).state()["graph"]
    with pytest.raises(UsageError, match="alive"):
        VectorIndex.from_state(list("abcd"), vecs, np.ones(3, dtype=bool), None, [2, 64, 16, 1])
    with pytest.raises(UsageError, match="graph"):
        VectorIndex.from_state(list("abc"), vecs[:3], None, graph, [2, 64, 16, 1])


def test_store_snapshots_are_replaced_and_deleted(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.db")
    assert store.get_index_snapshot("m") is None
    store.put_index_snapshot("m", 3, b"one")
    store.put_index_snapshot("m", 4, b"two")
    store.put_index_snapshot("bm25", 4, b"three")
    assert store.get_index_snapshot("m") == (4, b"two")
    assert store.delete_index_snapshots("m") == 1 and store.get_index_snapshot("m") is None
    assert store.delete_index_snapshots() == 1
    with pytest.raises(UsageError):
        store.put_index_snapshot("", 1, b"x")


def test_keyword_only_searches_never_resolve_the_default_model(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import procmem.memory as memory_module

    calls: list[int] = []
    monkeypatch.setattr(memory_module, "default_embedder",
                        lambda: calls.append(1) or CountingEmbedder())
    with Memory(path) as mem:
        first = summary(mem.search("cancel my order", retriever="bm25"))
    assert calls == [] and open_store(path).get_index_snapshot("bm25") is not None
    no_build(monkeypatch)
    with Memory(path) as mem:
        assert summary(mem.search("cancel my order", retriever="bm25")) == first
    assert calls == []
