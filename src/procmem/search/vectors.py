"""Nearest-neighbour search over dense demonstration vectors, several rows per key.

Each row is the embedding of one text about a procedure (a demonstration's task
text, or the procedure's own description); ``keys[i]`` names the procedure of
row ``i``. A search ranks *keys* by the best cosine over their rows (max
aggregation), so a procedure with many demonstrations is not counted many times.

Two backends, chosen by size:

* below ``ann_threshold`` rows, exact search with numpy: one matrix-vector
  product and an ``argpartition`` (about 0.3 ms per 10,000 rows of 384 dims here);
* from ``ann_threshold`` rows on, approximate search in an HNSW graph
  (Malkov & Yashunin, "Efficient and robust approximate nearest neighbor search
  using Hierarchical Navigable Small World graphs", IEEE TPAMI 2018) built by the
  usearch library (https://github.com/unum-cloud/usearch). The graph only
  proposes candidate rows: their cosines are recomputed exactly in float32, so
  the scores returned never carry the graph's reduced precision.
  Without usearch installed, the exact backend is used at every size.

Invariants:
    * Rows are L2-normalized float32 ``[n, dim]`` (the caller's duty; not
      checked, so a dot product is the cosine).
    * Returned cosines are in [-1, 1] and exact dot products of the stored row
      and the query; every key appears at most once, with its best row.
    * Keys with equal cosines come in key order (a key's best row: the first
      added); an exact search is deterministic whatever order the rows were
      added in, and an approximate one returns the same answer for the same
      index and query.
    * :meth:`VectorIndex.update` removes a key's rows and appends new ones in
      place: removed rows are never returned again (they stay in the matrix,
      masked, until the index is rebuilt).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from ..core.errors import UsageError

__all__ = ["VectorIndex"]

_ANN_DTYPE = "f16"  # half-precision graph vectors; see benchmarks/README.md for f16 vs f32
_FETCH = 4  # rows fetched per wanted key on the first try (several rows share a key)


class VectorIndex:
    """Nearest-neighbour search over L2-normalized float32 vectors, several rows per key.

    Args:
        keys: ``keys[i]`` is the key (a procedure name) of row ``i``; keys repeat.
        vectors: ``[len(keys), dim]`` L2-normalized vectors (converted to
            C-contiguous float32; a copy is made only when needed).
        ann_threshold: From this many rows on, search an HNSW graph (usearch)
            instead of the whole matrix.
        ef_search: HNSW ``expansion_search``: candidate list size while searching;
            higher is slower and more accurate. A search asks the graph for
            ``4 * limit`` rows and usearch widens its list to that many, so the
            list is ``max(ef_search, 4 * limit)`` (recall figures in
            ``benchmarks/README.md``).
        connectivity: HNSW graph degree ``M`` (edges per node and layer).
        threads: Threads used to build the graph; 0 means all cores.

    Attributes:
        backend: ``"numpy"`` (exact) or ``"usearch"`` (HNSW).
        dim: Vector length (0 for an index built from no rows).

    Raises:
        UsageError: ``vectors`` is not 2-D or its row count differs from ``len(keys)``.

    Build cost: the exact backend only keeps the matrix (``4 * n * dim`` bytes);
    the HNSW graph adds about ``2 * n * dim`` bytes of f16 vectors plus its links.
    Measured on 2 cores with 384 dims (``benchmarks/bench_retrieval_latency.py``):
    100,000 rows build in 5 s and search in 0.3 ms; 1,000,000 rows build in
    4-5 min, hold 1.4 GiB of matrix + 1.2 GiB of graph, and search in 1.1 ms.
    """

    def __init__(self, keys: Sequence[str], vectors: np.ndarray, *,
                 ann_threshold: int = 20_000, ef_search: int = 256, connectivity: int = 16,
                 threads: int = 0) -> None:
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim == 1 and matrix.size == 0:
            matrix = matrix.reshape(0, 0)
        if matrix.ndim != 2:
            raise UsageError(f"vectors must be 2-D [n, dim], got shape {matrix.shape}")
        if matrix.shape[0] != len(keys):
            raise UsageError(f"{len(keys)} keys but {matrix.shape[0]} vector rows")
        self._vectors = matrix
        self.dim = int(matrix.shape[1])
        self._ids: dict[str, int] = {}
        self._row_keys = np.fromiter((self._ids.setdefault(k, len(self._ids)) for k in keys),
                                     dtype=np.int64, count=len(keys))
        self._names = list(self._ids)
        self._alive: np.ndarray | None = None  # None: every row is alive
        self._graph: Any = None
        self._ann = (ann_threshold, ef_search, connectivity, threads)
        self.backend = "numpy"
        if len(keys) and len(keys) >= ann_threshold:
            self._build_graph(np.arange(len(keys), dtype=np.int64))

    def _build_graph(self, rows: np.ndarray) -> None:
        Index = _usearch_index()
        if Index is None:  # pragma: no cover - depends on the environment
            return
        _, ef_search, connectivity, threads = self._ann
        graph = Index(ndim=self.dim, metric="cos", dtype=_ANN_DTYPE,
                      connectivity=connectivity, expansion_search=ef_search)
        graph.add(rows.astype(np.uint64), self._vectors[rows], threads=threads)
        self._graph = graph
        self.backend = "usearch"

    def __len__(self) -> int:
        """The number of rows that searches can return (removed rows not counted)."""
        total = int(self._vectors.shape[0])
        return total if self._alive is None else int(self._alive.sum())

    @property
    def removed(self) -> int:
        """Rows removed by :meth:`update` and still held in the matrix."""
        return 0 if self._alive is None else int((~self._alive).sum())

    def update(self, remove: Iterable[str], keys: Sequence[str], vectors: np.ndarray) -> None:
        """Remove every row of the keys in ``remove``, then append rows, in place.

        Args:
            remove: Keys whose rows go (unknown keys are ignored).
            keys: The keys of the appended rows (a key may also be in ``remove``:
                its old rows go, these come).
            vectors: ``[len(keys), dim]`` L2-normalized rows.

        Raises:
            UsageError: ``vectors`` is not ``[len(keys), dim]``.

        The HNSW graph, when there is one, gets the same removals and additions;
        the exact backend switches to a graph once ``ann_threshold`` rows are alive.
        A caller that removes many rows should build a new index instead
        (:attr:`removed` says how many the matrix still holds).
        """
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.size == 0:
            matrix = matrix.reshape(0, self.dim)
        if matrix.ndim != 2 or matrix.shape[0] != len(keys) or (
                len(keys) and self.dim and matrix.shape[1] != self.dim):
            raise UsageError(f"vectors must be [{len(keys)}, {self.dim}], got {matrix.shape}")
        total = int(self._vectors.shape[0])
        gone_ids = [self._ids[k] for k in set(remove) if k in self._ids]
        if gone_ids:
            gone = np.flatnonzero(np.isin(self._row_keys, gone_ids))
            if self._alive is None:
                self._alive = np.ones(total, dtype=bool)
            gone = gone[self._alive[gone]]
            self._alive[gone] = False
            if self._graph is not None and len(gone):
                self._graph.remove(gone.astype(np.uint64))
        if not len(keys):
            return
        if not self.dim:
            self.dim = int(matrix.shape[1])
            self._vectors = self._vectors.reshape(0, self.dim)
        new_ids = np.fromiter((self._ids.setdefault(k, len(self._ids)) for k in keys),
                              dtype=np.int64, count=len(keys))
        self._names.extend(list(self._ids)[len(self._names):])
        self._vectors = np.vstack([self._vectors, matrix])
        self._row_keys = np.concatenate([self._row_keys, new_ids])
        if self._alive is not None:
            self._alive = np.concatenate([self._alive, np.ones(len(keys), dtype=bool)])
        rows = np.arange(total, total + len(keys), dtype=np.int64)
        if self._graph is not None:
            _, _, _, threads = self._ann
            self._graph.add(rows.astype(np.uint64), matrix, threads=threads)
        elif len(self) >= self._ann[0]:
            alive = np.arange(total + len(keys), dtype=np.int64)
            self._build_graph(alive if self._alive is None else alive[self._alive])

    def state(self) -> dict[str, Any]:
        """What :meth:`from_state` needs to make this index again, without building a graph.

        Returns:
            ``{"keys": [key of each row], "vectors": float32 [n, dim] (removed rows
            included), "alive": bool [n] or None (every row alive), "graph": the
            HNSW graph as usearch's serialized bytes, or None (exact backend),
            "ann": [ann_threshold, ef_search, connectivity, threads]}``.
        """
        return {
            "keys": [self._names[i] for i in self._row_keys],
            "vectors": self._vectors,
            "alive": self._alive,
            "graph": None if self._graph is None else bytes(self._graph.save()),
            "ann": list(self._ann),
        }

    @classmethod
    def from_state(cls, keys: Sequence[str], vectors: np.ndarray, alive: np.ndarray | None,
                   graph: bytes | None, ann: Sequence[int]) -> VectorIndex:
        """The index :meth:`state` describes: same rows, removals, graph and answers.

        Raises:
            UsageError: The parts do not fit together (row counts, the graph's
                size or dimensions), or ``graph`` is given and usearch is not installed.
        """
        threshold, ef_search, connectivity, threads = (int(x) for x in ann)
        index = cls(keys, vectors, ann_threshold=len(keys) + 1, ef_search=ef_search,
                    connectivity=connectivity, threads=threads)  # never builds a graph
        index._ann = (threshold, ef_search, connectivity, threads)
        if alive is not None:
            mask = np.asarray(alive, dtype=bool)
            if mask.shape != (len(keys),):
                raise UsageError(f"alive must have {len(keys)} flags, got {mask.shape}")
            index._alive = mask
        if graph is None:
            return index
        Index = _usearch_index()
        if Index is None:
            raise UsageError("this saved vector index has an HNSW graph and usearch is not "
                             "installed")
        restored = Index(ndim=index.dim, metric="cos", dtype=_ANN_DTYPE,
                         connectivity=connectivity, expansion_search=ef_search)
        restored.load(graph)
        if len(restored) != len(index) or restored.ndim != index.dim:
            raise UsageError(f"the saved HNSW graph has {len(restored)} rows of "
                             f"{restored.ndim} dims, the index {len(index)} of {index.dim}")
        index._graph = restored
        index.backend = "usearch"
        return index

    @property
    def exact(self) -> bool:
        """True when searches scan the whole matrix with numpy (no approximation)."""
        return self._graph is None

    @property
    def memory_bytes(self) -> int:
        """Bytes held: the float32 matrix plus the HNSW graph (usearch's own count)."""
        graph = int(self._graph.memory_usage) if self._graph is not None else 0
        return int(self._vectors.nbytes) + graph

    def search(self, query: np.ndarray, *, limit: int = 50) -> list[tuple[str, float, int]]:
        """The keys whose best row is nearest to ``query``.

        Args:
            query: ``[dim]`` (or ``[1, dim]``) L2-normalized vector.
            limit: At most this many keys (>= 1).

        Returns:
            ``[(key, cosine, row)]`` by descending cosine (ties by key):
            the best ``limit`` distinct keys, each with its highest cosine in
            [-1, 1] and the index of the row that has it. Empty for an empty index.

        Raises:
            UsageError: ``limit`` < 1, or ``query`` does not have ``dim`` values.
        """
        if limit < 1:
            raise UsageError(f"limit must be >= 1, got {limit}")
        q = np.asarray(query, dtype=np.float32)
        if q.ndim == 2 and q.shape[0] == 1:
            q = q[0]
        if not len(self):
            return []
        if q.shape != (self.dim,):
            raise UsageError(f"query must have shape ({self.dim},), got {q.shape}")
        n = int(self._vectors.shape[0])  # removed rows included: they can be fetched
        fetch = min(n, limit * _FETCH)
        scores = None if self._graph is not None else _dot(self._vectors, q)
        if scores is not None and self._alive is not None:
            scores[~self._alive] = -np.inf
        while True:
            if scores is None:
                rows, cos = self._ann_rows(q, fetch)
            else:
                rows, cos = _top_rows(scores, fetch)
            if self._alive is not None:
                keep = self._alive[rows]
                rows, cos = rows[keep], cos[keep]
            hits = self._best_per_key(rows, cos, limit)
            if len(hits) >= limit or fetch >= n:
                return hits
            fetch = min(n, fetch * _FETCH)

    def _ann_rows(self, q: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Candidate rows from the graph, re-scored exactly, by (-cosine, row)."""
        found = self._graph.search(q, count, exact=False)
        rows = np.sort(np.asarray(found.keys, dtype=np.int64))
        cos = _dot(self._vectors[rows], q)
        order = np.lexsort((rows, -cos))
        return rows[order], cos[order]

    def _best_per_key(self, rows: np.ndarray, cos: np.ndarray,
                      limit: int) -> list[tuple[str, float, int]]:
        """First (best) row of each key in ``rows`` (already by -cosine, row); keys by
        (-cosine, key), so ties do not depend on the order rows were added in."""
        _, first = np.unique(self._row_keys[rows], return_index=True)
        first.sort()  # by (-cosine, row): the best rows first
        if len(first) > limit:  # keep the best `limit` keys and every key tied with the last
            first = first[cos[first] >= cos[first[limit - 1]]]
        hits = [(self._names[self._row_keys[rows[i]]], float(cos[i]), int(rows[i]))
                for i in first]
        hits.sort(key=lambda h: (-h[1], h[0]))
        return hits[:limit]


def _dot(matrix: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``matrix @ q`` in numpy's own single-threaded loop, not BLAS.

    A multi-threaded BLAS ``sgemv`` between two query embeddings made the
    embedder's onnxruntime threads wait for the BLAS threads: on the 2-core
    development machine the query embedding went from 8.5 to 18 ms p50 (10,000
    rows; no effect with ``OPENBLAS_NUM_THREADS=1``). The loop costs 0.3 ms per
    10,000 rows of 384 dims instead of 0.1-0.2 ms.
    """
    return np.einsum("ij,j->i", matrix, q)


def _usearch_index() -> Any:
    """usearch's ``Index`` class, or None when usearch is not installed.

    onnxruntime (the default embedder's runtime) is imported first when it is
    installed: importing it *after* usearch 2.26 kills the process (SIGSEGV in
    libstdc++ during onnxruntime 1.31's import, reproduced here with
    ``python -c "import usearch.index; import onnxruntime"``); the other order works.
    """
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        pass
    try:
        from usearch.index import Index
    except ImportError:
        return None
    return Index


def _top_rows(scores: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` best rows of ``scores`` by (-score, row), plus every row tied with the last.

    Rows tied with the ``count``-th score are all kept so that the result does
    not depend on how ``argpartition`` breaks ties.
    """
    if count < len(scores):
        cut = scores[np.argpartition(-scores, count - 1)[count - 1]]
        rows = np.flatnonzero(scores >= cut)
    else:
        rows = np.arange(len(scores))
    cos = scores[rows]
    order = np.lexsort((rows, -cos))
    return rows[order], cos[order]
