"""Server-side vector search on PostgreSQL (pgvector HNSW) against procmem's in-process
vector search, on one store: latency of the ``k`` nearest stored vectors to a query.

procmem's search ranks in process on both backends (BM25 over the stored index
documents, vectors loaded from the store into an in-process index), so the same
store gives the same hits on SQLite and PostgreSQL (``tests/test_backend_parity.py``).
This benchmark measures the alternative for the vector leg: asking PostgreSQL for the
nearest vectors through the HNSW index (``PostgresStore.nearest_embeddings``), one
round trip per query. Queries are the stored vectors themselves (their own nearest
neighbour must come first: recall@1 is printed as a check).

Run (a store built by ``bench_backends.py --scale N`` or copied with ``procmem copy``):

    .venv/bin/python benchmarks/bench_pg_vectors.py postgresql://postgres@127.0.0.1:55432/pmcopy5000
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _common import machine, pct

from procmem.store import open_store


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("url", help="a PostgreSQL store location")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    store = open_store(args.url)
    models = store.count_embeddings()
    model_id = max(models, key=lambda m: models[m])
    hashes = store.list_embedding_hashes(model_id)  # type: ignore[attr-defined]
    vectors = store.get_embeddings(model_id, hashes)
    ids = list(vectors)
    matrix = np.stack([vectors[h] for h in ids]).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    rng = np.random.default_rng(0)
    picks = rng.choice(len(ids), size=min(args.queries, len(ids)), replace=False)
    server, local, hits = [], [], 0
    for i in picks:
        t = time.perf_counter()
        found = store.nearest_embeddings(model_id, matrix[i], args.k)  # type: ignore[attr-defined]
        server.append((time.perf_counter() - t) * 1000)
        hits += bool(found) and found[0][0] == ids[i]
        t = time.perf_counter()
        scores = matrix @ matrix[i]
        np.argpartition(-scores, args.k)[:args.k]
        local.append((time.perf_counter() - t) * 1000)
    store.close()
    out = {"machine": machine(), "vectors": len(ids), "model_id": model_id, "k": args.k,
           "queries": len(picks),
           "pgvector_hnsw_ms": {"p50": pct(server, 50), "p95": pct(server, 95)},
           "in_process_exact_ms": {"p50": pct(local, 50), "p95": pct(local, 95)},
           "recall_at_1": hits / len(picks)}
    if args.json:
        print(json.dumps(out, indent=2))
        return
    print(f"{len(ids)} vectors of {model_id}, k={args.k}, {len(picks)} queries")
    print(f"pgvector HNSW (one round trip): p50 {out['pgvector_hnsw_ms']['p50']:.2f} ms, "
          f"p95 {out['pgvector_hnsw_ms']['p95']:.2f} ms, recall@1 {out['recall_at_1']:.3f}")
    print(f"in-process exact (numpy):       p50 {out['in_process_exact_ms']['p50']:.2f} ms, "
          f"p95 {out['in_process_exact_ms']['p95']:.2f} ms")


if __name__ == "__main__":
    main()
