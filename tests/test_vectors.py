"""The dense vector index: exact ranking, per-key max aggregation, the HNSW path."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest

from procmem.core.errors import UsageError
from procmem.search.vectors import VectorIndex


def _normalized(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _random(n: int, dim: int, seed: int) -> np.ndarray:
    return _normalized(np.random.default_rng(seed).standard_normal((n, dim)))


def _clustered(n: int, dim: int, clusters: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = _normalized(rng.standard_normal((clusters, dim)))
    points = centers[rng.integers(0, clusters, n)] + 0.08 * rng.standard_normal((n, dim))
    return _normalized(points)


def _truth(keys: list[str], vectors: np.ndarray, q: np.ndarray,
           limit: int) -> list[tuple[str, float, int]]:
    """Brute force: every key's best row (lowest row among equal cosines), by (-cosine, row)."""
    scores = np.einsum("ij,j->i", vectors, q)  # the index's arithmetic, so floats are equal
    best: dict[str, int] = {}
    for row, key in enumerate(keys):
        if key not in best or scores[row] > scores[best[key]]:
            best[key] = row
    ranked = sorted(best.items(), key=lambda kv: (-scores[kv[1]], kv[1]))
    return [(k, float(scores[r]), r) for k, r in ranked[:limit]]


def test_exact_search_is_the_per_key_maximum_with_its_row() -> None:
    rng = np.random.default_rng(1)
    vectors = _random(600, 32, seed=2)
    keys = [f"proc{int(k)}" for k in rng.integers(0, 90, len(vectors))]  # ~7 rows per key
    index = VectorIndex(keys, vectors)
    assert index.exact and index.backend == "numpy" and len(index) == 600
    for q in _random(20, 32, seed=3):
        hits = index.search(q, limit=10)
        assert hits == _truth(keys, vectors, q, 10)
        assert len({k for k, _, _ in hits}) == 10
        for key, cos, row in hits:
            assert keys[row] == key
            assert -1.0 <= cos <= 1.0
            own = max(float(vectors[i] @ q) for i, k in enumerate(keys) if k == key)
            assert cos == pytest.approx(own, abs=1e-6)  # einsum vs dot: a few ulps apart


def test_a_key_with_many_close_rows_counts_once() -> None:
    base = _random(1, 16, seed=4)[0]
    near = _normalized(base + 0.01 * np.random.default_rng(5).standard_normal((30, 16)))
    far = _random(5, 16, seed=6)
    vectors = np.vstack([near, far])
    keys = ["crowd"] * 30 + [f"other{i}" for i in range(5)]
    hits = VectorIndex(keys, vectors).search(base, limit=3)
    assert [k for k, _, _ in hits][0] == "crowd"
    assert len(hits) == 3 and len({k for k, _, _ in hits}) == 3


def test_ties_are_broken_by_key_whatever_the_row_order_and_results_repeat() -> None:
    v = _random(1, 8, seed=7)
    vectors = np.vstack([v, v, v, _random(3, 8, seed=8)])
    keys = ["c", "a", "b", "x", "y", "z"]
    index = VectorIndex(keys, vectors)
    hits = index.search(v[0], limit=3)
    assert [(k, r) for k, _, r in hits] == [("a", 1), ("b", 2), ("c", 0)]
    assert index.search(v[0], limit=3) == hits
    assert VectorIndex(keys, vectors).search(v[0], limit=3) == hits
    reordered = VectorIndex(keys[::-1], vectors[::-1]).search(v[0], limit=3)
    assert [k for k, _, _ in reordered] == ["a", "b", "c"]


def test_limit_larger_than_the_number_of_keys_returns_every_key() -> None:
    vectors = _random(40, 8, seed=9)
    keys = [f"k{i % 6}" for i in range(40)]
    hits = VectorIndex(keys, vectors).search(vectors[0], limit=100)
    assert sorted(k for k, _, _ in hits) == [f"k{i}" for i in range(6)]
    assert hits == _truth(keys, vectors, vectors[0], 100)


def test_hnsw_recall_at_10_against_exact_search() -> None:
    vectors = _clustered(5000, 64, clusters=40, seed=10)
    keys = [f"proc{i // 2}" for i in range(len(vectors))]  # two rows per key
    exact = VectorIndex(keys, vectors)
    ann = VectorIndex(keys, vectors, ann_threshold=1)
    assert ann.backend == "usearch" and not ann.exact and exact.exact
    queries = _clustered(100, 64, clusters=40, seed=10)  # same centers, new points
    found = 0
    for q in queries:
        truth = {k for k, _, _ in exact.search(q, limit=10)}
        hits = ann.search(q, limit=10)
        found += len(truth & {k for k, _, _ in hits})
        for key, cos, row in hits:  # cosines are exact float32 dot products
            assert keys[row] == key and cos == pytest.approx(float(vectors[row] @ q), abs=1e-6)
        assert ann.search(q, limit=10) == hits
    assert found / (10 * len(queries)) >= 0.95


def test_hnsw_path_with_few_keys_still_fills_the_limit() -> None:
    vectors = _clustered(300, 16, clusters=5, seed=11)
    keys = [f"k{i % 4}" for i in range(300)]
    hits = VectorIndex(keys, vectors, ann_threshold=1).search(vectors[0], limit=10)
    assert sorted(k for k, _, _ in hits) == ["k0", "k1", "k2", "k3"]


def test_without_usearch_the_index_falls_back_to_exact_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "usearch.index", None)
    vectors = _random(50, 8, seed=12)
    keys = [str(i) for i in range(50)]
    index = VectorIndex(keys, vectors, ann_threshold=1)
    assert index.backend == "numpy" and index.exact
    assert index.search(vectors[3], limit=1)[0][0] == "3"


def test_empty_index_returns_nothing() -> None:
    assert VectorIndex([], np.zeros((0, 384), dtype=np.float32)).search(
        np.ones(384, dtype=np.float32)) == []
    empty = VectorIndex([], np.zeros(0, dtype=np.float32))
    assert len(empty) == 0 and empty.search(np.ones(3)) == []


def test_inputs_are_validated_and_converted() -> None:
    vectors = _random(4, 8, seed=13)
    with pytest.raises(UsageError, match="3 keys but 4"):
        VectorIndex(["a", "b", "c"], vectors)
    with pytest.raises(UsageError, match="2-D"):
        VectorIndex(["a"], vectors[0])
    index = VectorIndex(list("abcd"), vectors.astype(np.float64))
    assert index.dim == 8
    with pytest.raises(UsageError, match=r"shape \(8,\)"):
        index.search(np.ones(7, dtype=np.float32))
    with pytest.raises(UsageError, match="limit"):
        index.search(vectors[0], limit=0)
    assert index.search(vectors[1][None, :], limit=1)[0][:1] == ("b",)
    assert index.search(vectors[1].astype(np.float64), limit=1)[0][0] == "b"


def test_onnxruntime_imported_after_an_hnsw_index_does_not_crash() -> None:
    if importlib.util.find_spec("onnxruntime") is None:  # not imported here: see the script
        pytest.skip("onnxruntime is not installed")
    script = ("import numpy as np\n"
              "from procmem.search.vectors import VectorIndex\n"
              "v = np.eye(4, dtype=np.float32)\n"
              "assert VectorIndex(list('abcd'), v, ann_threshold=1).backend == 'usearch'\n"
              "import onnxruntime\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-500:]
