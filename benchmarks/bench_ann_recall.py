"""HNSW recall on real embeddings: procmem's VectorIndex graph against exact search.

``bench_retrieval_latency.py`` measures recall on synthetic vectors (a real
vector plus noise per procedure), a worst case for HNSW. This script embeds
real texts with the default model instead: N task texts made from the first
400 τ-retail train tasks with their order ids, names, e-mails, zips and payment
ids swapped for random ones (``bench_retrieval_latency.Varier``, seeded), one
row per text, each its own key. Queries: the 120 held-out task texts (20 dev +
the last 100 train tasks), embedded by the same model.

Printed: embedding time, graph build time, and for ``search(limit=10)`` and the
top 10 of ``search(limit=50)``: recall@10 against exact numpy search, the mean
cosine shortfall of the top 10, and how often the top hit's *action sequence*
(the procedure it stands for) differs from the exact top hit's.

Run: ``.venv/bin/python benchmarks/bench_ann_recall.py [--rows 20000]``
(about 2 minutes for 20,000 rows on the 2-core machine, most of it embedding).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from _common import load, load_optional, machine
from bench_retrieval_latency import Varier

from procmem.search.embed import MiniLMEmbedder
from procmem.search.vectors import VectorIndex

BASES = 400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000, help="vector rows (texts)")
    args = parser.parse_args()
    print(__doc__.splitlines()[0])
    print(machine())
    train = load("train")
    dev = load_optional("dev")
    n_bases = BASES if len(train) > BASES + 20 else len(train) * 4 // 5
    bases = train[:n_bases]
    queries = list(dict.fromkeys(t.task for t in dev + train[n_bases:]))
    rng = random.Random(7)
    varier = Varier([t.task for t in bases], rng)
    picks = [rng.randrange(len(bases)) for _ in range(args.rows)]
    texts = [varier.vary(bases[b].task) for b in picks]
    signature = [bases[b].signature() for b in picks]
    embedder = MiniLMEmbedder(cache_size=0)
    start = time.perf_counter()
    matrix = embedder.embed(texts)
    print(f"embedded {len(texts):,} real varied task texts in {time.perf_counter() - start:.0f} s "
          f"({embedder.model_id})")
    qvecs = embedder.embed(queries)
    keys = [str(i) for i in range(len(texts))]
    start = time.perf_counter()
    graph = VectorIndex(keys, matrix, ann_threshold=0)
    print(f"HNSW graph ({graph.backend}) built in {time.perf_counter() - start:.1f} s; "
          f"{len(queries)} held-out queries")
    exact = VectorIndex(keys, matrix, ann_threshold=len(keys) + 1)
    for limit in (10, 50):
        recall, shortfall, other_top = [], [], 0
        for q in qvecs:
            truth = exact.search(q, limit=10)
            found = graph.search(q, limit=limit)[:10]
            recall.append(len({k for k, _, _ in truth} & {k for k, _, _ in found}) / 10)
            shortfall.append(statistics.fmean(c for _, c, _ in truth)
                             - statistics.fmean(c for _, c, _ in found))
            other_top += signature[int(found[0][0])] != signature[int(truth[0][0])]
        print(f"search(limit={limit}), top 10: recall@10 {statistics.fmean(recall):.3f}, "
              f"mean top-10 cosine {statistics.fmean(shortfall):.4f} below exact, top hit of "
              f"another action sequence than exact's: {other_top} of {len(qvecs)}")


if __name__ == "__main__":
    main()
