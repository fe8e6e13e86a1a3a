"""The search index kept up to date in place: the store's change log, BM25 from kept
term counts, vector rows replaced, and searches equal to a fresh index's."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from embedders import CountingEmbedder
from procmem.core.errors import UsageError
from procmem.core.model import Hit, Trace, TraceStep
from procmem.memory import Memory
from procmem.search.bm25 import BM25Index, postings, tokenize
from procmem.search.vectors import VectorIndex
from procmem.store import open_store
from procmem.store.sqlite import SQLiteStore

VERBS = ["cancel", "return", "exchange", "refund", "reship", "track", "hold", "archive"]


def traces(verb: str, count: int, start: int = 0) -> list[Trace]:
    """``count`` demonstrations of ``<verb>_order`` with different order ids."""
    out = []
    for k in range(start, start + count):
        order = f"#W{hash((verb, k)) % 10**7:07d}"
        out.append(Trace(id=f"{verb}-{k}", task=f"Please {verb} order {order} today, item {k}",
                         steps=[TraceStep(action=f"{verb}_order", args={"order_id": order},
                                          output="ok")]))
    return out


QUERIES = ["cancel my order #W1234567", "I want to return order #W7654321 today",
           "exchange the item and refund it", "track and hold order #W1111111 please",
           "archive order"]


def summary(hits: list[Hit]) -> list[tuple[str, float, dict[str, int], list[str]]]:
    return [(h.procedure.name, h.score, h.ranks, h.explanation.get("matched_terms", []))
            for h in hits]


def assert_same_as_fresh(mem: Memory, path: Path, *, status: str | None = "active") -> None:
    """Every query and retriever gives what a Memory opened afresh on the same file gives."""
    fresh = Memory(path, embedder=CountingEmbedder())
    try:
        for retriever in ("bm25", "vector", "hybrid"):
            for q in QUERIES:
                got = mem.search(q, limit=5, retriever=retriever, status=status)  # type: ignore[arg-type]
                want = fresh.search(q, limit=5, retriever=retriever, status=status)  # type: ignore[arg-type]
                assert summary(got) == summary(want), (retriever, q)
    finally:
        fresh.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "m.db"


@pytest.fixture
def mem(path: Path) -> Memory:
    m = Memory(path, embedder=CountingEmbedder())
    m.learn([t for verb in VERBS[:4] for t in traces(verb, 2)])
    m.search("warm up", retriever="hybrid")  # build the index, vectors included
    return m


# ------------------------------------------------------------------ the store's log


def test_index_changes_lists_the_names_changed_after_a_revision(path: Path) -> None:
    store = open_store(path)
    assert store.index_changes(0) == []
    mem = Memory(path, embedder=None)
    mem.learn(traces("cancel", 2) + traces("return", 2))
    since = mem.store.index_revision()
    assert mem.store.index_changes(since) == []
    mem.learn(traces("track", 2))
    assert mem.store.index_changes(since) == ["track_order"]
    mem.store.set_status("cancel_order", 1, "deprecated")
    assert mem.store.index_changes(since) == ["cancel_order", "track_order"]
    assert mem.store.index_entries(["cancel_order", "nope"])["cancel_order"][0] == "deprecated"
    assert "nope" not in mem.store.index_entries(["nope"])


def test_a_tool_schema_change_makes_the_changes_unlistable(path: Path) -> None:
    mem = Memory(path, embedder=None)
    mem.learn(traces("cancel", 2))
    since = mem.store.index_revision()
    mem.store.put_tool_schemas({"cancel_order": {"description": "Cancel an order"}})
    assert mem.store.index_changes(since) is None  # every card may have changed
    again = mem.store.index_revision()
    mem.store.put_tool_schemas({"cancel_order": {"description": "Cancel an order"}})
    assert mem.store.index_revision() == again  # unchanged schema: nothing logged


def test_a_revision_older_than_the_log_cannot_be_listed(path: Path) -> None:
    mem = Memory(path, embedder=None)
    mem.learn(traces("cancel", 2))
    if not isinstance(mem.store, SQLiteStore):
        pytest.skip("rewrites SQLite's index log by hand")
    conn = mem.store._conn  # a database migrated to version 5 after revision 3
    conn.execute("UPDATE meta SET value = 3 WHERE key = 'index_log_start'")
    assert mem.store.index_changes(2) is None
    assert mem.store.index_changes(3) is not None


# ------------------------------------------------------------------ BM25 from counts


def test_bm25_from_postings_is_the_index_of_the_texts() -> None:
    docs = [(f"d{i}", f"cancel order #W{i:07d} {'return ' * (i % 3)}kettle") for i in range(30)]
    built = BM25Index(docs)
    vocab: dict[str, int] = {}
    counted = BM25Index.from_postings(
        [k for k, _ in docs], [postings(Counter(tokenize(t)), vocab) for _, t in docs], vocab)
    for q in ["cancel kettle", "return order #W0000007", "nothing here"]:
        assert counted.search(q, limit=10) == built.search(q, limit=10)
    with pytest.raises(UsageError, match="2 keys but 1 term counts"):
        BM25Index.from_postings(["a", "b"], [postings(Counter(), vocab)], vocab)


def test_bm25_from_postings_ignores_vocabulary_terms_no_document_has() -> None:
    docs = [(f"d{i}", f"cancel order #W{i:07d} {'return ' * (i % 3)}kettle") for i in range(40)]
    vocab = {"gone": 0, "also_gone": 1}  # terms of documents removed since
    kept = [postings(Counter(tokenize(t)), vocab) for _, t in docs]
    index = BM25Index.from_postings([k for k, _ in docs], kept, vocab)
    fresh = BM25Index(docs)
    assert index.document_frequency("gone") == 0 and fresh.document_frequency("gone") == 0
    for q in ["gone cancel kettle", "return order #W0000007", "also_gone"]:
        assert index.search(q, limit=10) == fresh.search(q, limit=10)
    with pytest.raises(UsageError, match="1 keys but 0 term counts"):
        BM25Index.from_postings(["a"], [], {})


# ------------------------------------------------------------------ vectors in place


def _unit(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _updated(ann_threshold: int) -> tuple[VectorIndex, VectorIndex, np.random.Generator]:
    """An index after one update, and an exact index built from its live rows."""
    rng = np.random.default_rng(3)
    keys = [f"k{i % 40}" for i in range(120)]
    base = _unit(rng, 120)
    index = VectorIndex(keys, base, ann_threshold=ann_threshold, threads=1)  # repeatable graph
    new_keys, new = ["k3", "k3", "n1", "n1", "n2", "k7"], _unit(rng, 6)
    index.update(["k3", "k5", "unknown"], new_keys, new)
    assert len(index) == 120 - 6 + 6 and index.removed == 6  # k3 and k5 had 3 rows each
    kept = [i for i, k in enumerate(keys) if k not in ("k3", "k5")]
    fresh = VectorIndex([keys[i] for i in kept] + new_keys, np.vstack([base[kept], new]))
    return index, fresh, rng


def test_bm25_maxscore_skips_vocabulary_terms_no_document_has(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A term whose documents were all removed by in-place refreshes keeps its id with no
    postings; MaxScore (used from 500,000 query postings on, i.e. at ~100k procedures)
    once indexed its empty postings list and raised IndexError."""
    monkeypatch.setattr("procmem.search.bm25._PRUNE_POSTINGS", 1)  # MaxScore at any size
    docs = [(f"d{i}", f"cancel order #W{i:07d} {'return ' * (i % 3)}kettle") for i in range(40)]
    vocab = {"gone": 0}
    index = BM25Index.from_postings(
        [k for k, _ in docs], [postings(Counter(tokenize(t)), vocab) for _, t in docs], vocab)
    fresh = BM25Index(docs)
    for q in ["gone cancel kettle", "kettle gone return", "cancel gone"]:
        for limit in (1, 3, 10):
            assert index.search(q, limit=limit) == fresh.search(q, limit=limit), (q, limit)


def test_vector_update_removes_and_appends_rows_like_a_new_index() -> None:
    index, fresh, rng = _updated(10**9)
    for q in _unit(rng, 20):
        got, want = index.search(q, limit=10), fresh.search(q, limit=10)
        assert [k for k, _, _ in got] == [k for k, _, _ in want]
        assert np.allclose([c for _, c, _ in got], [c for _, c, _ in want])
        assert all(k != "k5" for k, _, _ in index.search(q, limit=45))


def test_vector_update_of_an_hnsw_graph_drops_removed_rows_and_finds_new_ones() -> None:
    index, exact, rng = _updated(50)
    assert index.backend == "usearch"
    recall = []
    for q in _unit(rng, 20):
        got = index.search(q, limit=10)
        assert all(k not in ("k5",) for k, _, _ in index.search(q, limit=45))
        truth = {k for k, _, _ in exact.search(q, limit=10)}
        recall.append(len(truth & {k for k, _, _ in got}) / 10)
    assert np.mean(recall) >= 0.9  # approximate: HNSW may miss a row, rarely
    new_rows = index._vectors[-6:]
    for key, vec in zip(["k3", "k3", "n1", "n1", "n2", "k7"], new_rows, strict=True):
        assert index.search(vec, limit=1)[0][0] == key  # each new row finds itself


def test_vector_update_builds_the_graph_once_enough_rows_are_alive() -> None:
    rng = np.random.default_rng(4)
    index = VectorIndex([f"k{i}" for i in range(10)], _unit(rng, 10), ann_threshold=30)
    assert index.backend == "numpy"
    index.update(["k0"], [f"m{i}" for i in range(25)], _unit(rng, 25))
    assert index.backend == "usearch" and len(index) == 34
    assert all(k != "k0" for k, _, _ in index.search(_unit(rng, 1)[0], limit=34))


def test_vector_update_refuses_rows_of_the_wrong_shape() -> None:
    index = VectorIndex(["a"], np.eye(1, 4, dtype=np.float32))
    with pytest.raises(UsageError, match=r"vectors must be \[2, 4\]"):
        index.update([], ["b", "c"], np.eye(2, 3, dtype=np.float32))
    assert len(index) == 1 and index.search(np.eye(1, 4, dtype=np.float32)[0])[0][0] == "a"


def test_vector_update_fills_an_empty_index() -> None:
    index = VectorIndex([], np.zeros((0, 0), dtype=np.float32))
    index.update([], ["a", "b"], np.eye(2, 4, dtype=np.float32))
    assert index.dim == 4 and [k for k, _, _ in index.search(np.eye(1, 4)[0])] == ["a", "b"]


# ------------------------------------------------------------------ Memory


def test_new_procedures_and_versions_update_the_index_in_place(mem: Memory, path: Path) -> None:
    index = mem.searcher.index
    embedder = mem.embedder
    assert isinstance(embedder, CountingEmbedder)
    before = len(embedder.seen)
    mem.learn(traces("track", 2) + traces("cancel", 2, start=10))  # a new name, a new version
    mem.search("follow", retriever="hybrid")
    # only the changed names' new texts were embedded (the two cards and four new
    # tasks), then the query
    new_texts = embedder.seen[before:]
    assert new_texts[-1] == "follow" and len(new_texts) == 7
    assert all(t.lower().count("track") + t.lower().count("cancel") for t in new_texts[:-1])
    assert_same_as_fresh(mem, path)
    assert mem.searcher.index is index  # updated, not rebuilt
    assert index is not None and index.vectors is not None and index.vectors.removed > 0
    found = mem.search("track order #W1234567", retriever="hybrid")
    assert "track_order" in [h.procedure.name for h in found]
    assert found[0].ranks.get("bm25") is not None


def test_status_changes_and_deletions_update_the_index_in_place(mem: Memory, path: Path) -> None:
    index = mem.searcher.index
    mem.store.set_status("cancel_order", 1, "deprecated")
    mem.store.delete_procedure("return_order")
    assert_same_as_fresh(mem, path)
    assert_same_as_fresh(mem, path, status=None)
    assert mem.searcher.index is index
    names = {h.procedure.name for h in mem.search("cancel return order", status=None, limit=10)}
    assert "return_order" not in names and "cancel_order" in names
    active = {h.procedure.name for h in mem.search("cancel return order", limit=10)}
    assert "cancel_order" not in active


def test_many_changes_or_a_tool_schema_change_rebuild_the_index(mem: Memory, path: Path) -> None:
    index = mem.searcher.index
    mem.learn([t for verb in VERBS for t in traces(verb, 2, start=20)] * 1)
    mem.search("cancel", retriever="hybrid")
    assert mem.searcher.index is index  # 8 names changed: under the in-place limit
    for i in range(60):  # 60 new names: more than the in-place limit of 50
        mem.learn(traces(f"verb{i}", 1))
    mem.search("cancel", retriever="hybrid")
    assert mem.searcher.index is not index
    assert_same_as_fresh(mem, path)
    rebuilt = mem.searcher.index
    mem.store.put_tool_schemas({"cancel_order": {"description": "Cancel a pending order"}})
    assert_same_as_fresh(mem, path)
    assert mem.searcher.index is not rebuilt


def test_keyword_only_index_updates_and_gets_its_vectors_later(path: Path) -> None:
    mem = Memory(path, embedder=CountingEmbedder())
    mem.learn(traces("cancel", 2) + traces("return", 2))
    mem.search("cancel", retriever="bm25")
    index = mem.searcher.index
    assert index is not None and index.vectors is None
    mem.learn(traces("track", 2))
    assert_same_as_fresh(mem, path)  # the hybrid searches there add the vectors
    assert mem.searcher.index is index and index.vectors is not None


def test_filters_see_a_new_version_s_tags_after_an_in_place_update(path: Path) -> None:
    mem = Memory(path, embedder=None)
    mem.learn(traces("cancel", 2) + traces("return", 2))
    assert mem.search("cancel order", tags=["urgent"]) == []
    index = mem.searcher.index
    current = mem.get_procedure("cancel_order")
    mem.put_procedure(current.model_copy(update={"tags": ["urgent"]}))
    hits = mem.search("cancel order", tags=["urgent"])
    assert mem.searcher.index is index  # updated in place, keyword-only
    assert [h.procedure.name for h in hits] == ["cancel_order"]
    assert hits[0].procedure.version == 2 and hits[0].procedure.tags == ["urgent"]


def test_whole_procedures_are_cached_for_hits_only_up_to_a_bound(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("procmem.services.search._PROCEDURE_CACHE", 3)
    mem = Memory(path, embedder=CountingEmbedder())
    mem.learn([t for verb in VERBS for t in traces(verb, 2)])
    for q in QUERIES:
        mem.search(q, retriever="hybrid")
    assert len(mem.searcher._procs) == 3  # bounded, least recently used dropped
    assert len(mem.searcher._views) == len(VERBS)  # a rank view per procedure
    assert_same_as_fresh(mem, path)


def test_a_search_reads_its_uncached_hits_in_one_store_call(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hits whose rank view is known but whose procedure is not cached are read together
    (one ``get_procedures_json``), never one ``get_procedure`` per hit: a round trip
    each on a server store."""
    mem = Memory(path, embedder=CountingEmbedder())
    mem.learn([t for verb in VERBS for t in traces(verb, 2)])
    want = summary(mem.search(QUERIES[1], limit=5))  # views and procedures cached
    mem.searcher._procs.clear()
    reads: Counter[str] = Counter()
    for method in ("get_procedure", "get_procedures_json"):
        real = getattr(mem.store, method)
        monkeypatch.setattr(mem.store, method, lambda *a, _m=method, _r=real, **k: (
            reads.update([_m]), _r(*a, **k))[1])
    assert summary(mem.search(QUERIES[1], limit=5)) == want
    assert reads == Counter({"get_procedures_json": 1})
    mem.close()


def test_warm_index_with_views_makes_every_rank_view_before_the_first_search(
        path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the servers call before serving: a later search reads no view from the store."""
    monkeypatch.setattr("procmem.services.search._VIEW_PAGE", 3)  # several pages
    writer = Memory(path, embedder=CountingEmbedder())
    writer.learn([t for verb in VERBS for t in traces(verb, 2)])
    writer.close()
    mem = Memory(path, embedder=CountingEmbedder())
    assert mem.warm_index()["procedures"] == len(VERBS)
    mem.searcher._views.clear()  # as after loading a saved index: views come lazily
    info = mem.warm_index(views=True)
    assert sorted(mem.searcher._views) == sorted(mem.searcher.index.postings) and \
        info["procedures"] == len(VERBS) == len(mem.searcher._views)
    reads: Counter[str] = Counter()
    real = mem.store.get_procedures_json
    monkeypatch.setattr(mem.store, "get_procedures_json",
                        lambda names: (reads.update(names), real(names))[1])
    mem.search(QUERIES[0], limit=3)
    assert 0 < sum(reads.values()) <= 2 * 3  # the ranked hits' procedures only, no views
    assert_same_as_fresh(mem, path)
    mem.close()


def test_changes_made_by_another_memory_on_the_same_file_update_the_index(
        mem: Memory, path: Path) -> None:
    index = mem.searcher.index
    other = Memory(path, embedder=CountingEmbedder())  # another process, say a CLI call
    other.learn(traces("track", 2))
    other.store.set_status("cancel_order", 1, "deprecated")
    other.close()
    assert_same_as_fresh(mem, path)
    assert mem.searcher.index is index  # updated in place from the store's log
    assert "track_order" in {h.procedure.name for h in mem.search("track order", limit=10)}
