"""BM25 search latency at 10,000 procedures (issue 2 target: BM25 p50 < 5 ms at 10k).

What it measures, on a file-backed SQLite store (WAL) in a temporary directory:

* index build: ``Memory.learn`` on the first 320 train traces, then enough
  generated procedures to reach 10,000 (``store.put_procedure`` in batches of
  1,000 inside ``store.transaction()``, after their demonstration traces with
  ``store.put_traces``), with the time of every batch, so growth shows; the
  database size at the end (after a WAL checkpoint).
* (a) ``store.search_text(query, limit=50)`` alone (FTS5 BM25): p50 / p95 / mean
  over 200 queries, each the median of 2 runs, and its p50 (20 queries, one
  run each) after every batch, as the index grows.
* (c) ``procmem.search.bm25.BM25Index.search(query, limit=100)``: the in-memory BM25
  index ``Memory.search`` uses for candidates (built from ``store.index_documents()``);
  this is the figure the target applies to. (a) is kept for comparison: FTS5
  scores every document an OR query matches, so it grows with the corpus.
* (b) ``Memory.search(query, limit=5)``: BM25 candidates (100) re-ranked with the
  procedures' extractors (``procmem.search.retrieval.rank``) plus statistics for the 5
  hits; p50 / p95 over the same queries after one cold call (the cold call
  builds the in-memory index and is printed apart). The memory has no embedder
  (``Memory(..., embedder=None)``): this is the keyword path of issue 2; hybrid
  search latency is ``bench_retrieval_latency.py``.
  Its process (CPU) time is printed too: on a shared machine it varies less
  with the load than the wall time does.
  When (b) is much slower than (a), the top cProfile entries of (b) are printed.

How the 10,000 procedures are made from real data: each learned procedure is
copied under a varied name (``<name>.<word>-<k>``) and description, with 1-3
demonstration traces whose task texts are real train task texts with their
values swapped for others sampled from the data: order ids (#W...), customer
names and e-mails, zip codes, payment method ids and item names (the item names
come from the recorded tool outputs). Their steps are the real steps (outputs
included), so the traces table has a realistic size. Params, extractors and
steps are the original's, so re-ranking does its real work.

Queries: the 200 held-out task texts, i.e. the 20 dev traces and the last 180
train traces, none of which was used to learn or to generate procedures.
Randomness is seeded (``random.Random(7)``): every run builds the same data.

Also printed, as a sanity check (not a quality benchmark): how often the top
hit of (b) has the held-out trace's action sequence.

Run: ``.venv/bin/python benchmarks/bench_search.py`` (about 1.5 minutes);
``PROFILE=1`` prints the cProfile of (b) even when it is not much slower than (a).
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import random
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import load, load_optional, machine, pct

from procmem.core.model import Lineage, Procedure, Trace
from procmem.memory import Memory
from procmem.search.bm25 import BM25Index

TOTAL = 10_000
BATCH = 1_000
LEARN = 320
QUERIES = 200
TARGET_MS = 5.0
WORDS = ("express", "priority", "bulk", "gift", "holiday", "weekend", "vip", "manual",
         "retry", "night", "mobile", "web", "phone", "chat", "legacy", "new", "eu", "us",
         "warehouse", "partner", "loyalty", "trial", "b2b", "support")
PHRASES = ("Used by the {w} desk.", "Variant for {w} customers.", "Handles {w} requests.",
           "Checked by the {w} team in review {k}.", "Variant {k} for {w} orders.",
           "Preferred on the {w} channel.")

ORDER = re.compile(r"#W\d{7}")
NAME = re.compile(r"(?<=Your name is )([A-Z][a-z]+) ([A-Z][a-z]+)")
EMAIL = re.compile(r"\b[a-z]+\.[a-z]+\d{4}@example\.com\b")
ZIP = re.compile(r"(?<=zip code is )\d{5}\b")
PAYMENT = re.compile(r"\b(?:credit_card|paypal|gift_card)_\d{7}\b")


class Pools:
    """Values seen in the data, to swap into task texts."""

    def __init__(self, traces: list[Trace]) -> None:
        tasks = [t.task for t in traces]
        self.orders = sorted({m for t in tasks for m in ORDER.findall(t)})
        self.names = sorted({m for t in tasks for m in NAME.findall(t)})
        self.zips = sorted({m for t in tasks for m in ZIP.findall(t)})
        self.payments = sorted({m for t in tasks for m in PAYMENT.findall(t)})
        items: set[str] = set()
        for t in traces:
            for s in t.steps:
                items.update(_item_names(s.output))
        self.items = sorted(items)
        alts = "|".join(re.escape(i) for i in sorted(self.items, key=len, reverse=True))
        self.item_rx = re.compile(rf"\b(?:{alts})\b") if alts else None

    def vary(self, task: str, rng: random.Random) -> str:
        first, last = rng.choice(self.names) if self.names else ("Alex", "Doe")
        task = NAME.sub(lambda m: f"{first} {last}", task)
        task = EMAIL.sub(lambda m: f"{first.lower()}.{last.lower()}{rng.randrange(10**4):04d}"
                         "@example.com", task)
        if self.orders:
            task = ORDER.sub(lambda m: rng.choice(self.orders), task)
        if self.zips:
            task = ZIP.sub(lambda m: rng.choice(self.zips), task)
        if self.payments:
            task = PAYMENT.sub(lambda m: rng.choice(self.payments), task)
        if self.item_rx is not None:
            task = self.item_rx.sub(lambda m: rng.choice(self.items), task)
        return task


def _item_names(output: Any) -> list[str]:
    if not isinstance(output, str) or not output.startswith("{"):
        return []
    try:
        data = json.loads(output)
    except ValueError:
        return []
    items = data.get("items") if isinstance(data, dict) else None
    return [i["name"] for i in items or ()
            if isinstance(i, dict) and isinstance(i.get("name"), str)]


def make_variants(bases: list[Procedure], traces: dict[str, Trace], count: int,
                  pools: Pools, rng: random.Random) -> tuple[list[Procedure], list[Trace]]:
    procs: list[Procedure] = []
    demo_traces: list[Trace] = []
    for k in range(count):
        base = bases[k % len(bases)]
        word = rng.choice(WORDS)
        name = f"{base.name}.{word}-{k:05d}"
        ids = []
        for j in range(rng.randint(1, 3)):
            src = traces[rng.choice(base.lineage.traces)]
            tid = f"bench-{k:05d}-{j}"
            demo_traces.append(src.model_copy(update={
                "id": tid, "task": pools.vary(src.task, rng), "source": "bench_search"}))
            ids.append(tid)
        phrase = rng.choice(PHRASES).format(w=word, k=rng.randrange(1000))
        procs.append(base.model_copy(update={
            "name": name,
            "version": 1,
            "description": f"{base.description} {phrase}",
            "tags": sorted({*base.tags, word}),
            "lineage": Lineage(traces=ids, reason=f"benchmark variant of {base.key}"),
        }))
    return procs, demo_traces


def db_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.iterdir() if f.is_file())


def timed_queries(fn: Any, queries: list[str], repeat: int = 2,
                  cpu: list[float] | None = None) -> tuple[list[float], list[Any]]:
    """Per query, the median of ``repeat`` timed calls (seconds), and the first call's result;
    the median process (CPU) time of the calls is appended to ``cpu`` when given."""
    times, results = [], []
    for q in queries:
        runs, cpus = [], []
        for k in range(repeat):
            start, start_cpu = time.perf_counter(), time.process_time()
            result = fn(q)
            runs.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)
            if k == 0:
                results.append(result)
        times.append(statistics.median(runs))
        if cpu is not None:
            cpu.append(statistics.median(cpus))
    return times, results


def stats_line(label: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    return (f"{label:<44} p50 {pct(ms, 50):7.2f} ms   p95 {pct(ms, 95):7.2f} ms   "
            f"mean {statistics.fmean(ms):7.2f} ms   (n={len(ms)})")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(machine())
    train = load("train")
    dev = load_optional("dev")
    learn_part = train[:LEARN] if len(train) > LEARN + 20 else train[: len(train) * 2 // 3]
    held_out = [t.task for t in dev + train[len(learn_part):]]
    queries = (held_out * (QUERIES // max(len(held_out), 1) + 1))[:QUERIES]
    expected = {t.task: t.signature() for t in dev + train[len(learn_part):]}
    print(f"learn on train[:{len(learn_part)}]; queries: {len(queries)} held-out task texts "
          f"({len(dev)} dev + {len(held_out) - len(dev)} train tail"
          f"{', repeated' if len(held_out) < QUERIES else ''})")
    rng = random.Random(7)

    with tempfile.TemporaryDirectory(prefix="procmem-bench-") as tmp:
        folder = Path(tmp)
        mem = Memory(folder / "memory.db", embedder=None)  # keyword-only: the issue-2 figure
        store = mem.store
        start = time.perf_counter()
        report = mem.learn(learn_part)
        learn_s = time.perf_counter() - start
        bases = mem.list_procedures(limit=1000)
        by_id = {t.id: t for t in learn_part}
        pools = Pools(learn_part)
        print(f"learned {len(bases)} procedures from {report.traces} traces in {learn_s:.2f} s; "
              f"pools: {len(pools.orders)} order ids, {len(pools.names)} names, "
              f"{len(pools.items)} item names, {len(pools.payments)} payment ids")

        start = time.perf_counter()
        variants, demo_traces = make_variants(bases, by_id, TOTAL - len(bases), pools, rng)
        print(f"generated {len(variants)} procedures and {len(demo_traces)} demonstration "
              f"traces in {time.perf_counter() - start:.2f} s (not part of the build time)")
        print(f"example variant: {variants[1].name!r}\n  demo task: {demo_traces[1].task[:150]!r}")
        print()

        start = time.perf_counter()
        store.put_traces(demo_traces)
        traces_s = time.perf_counter() - start
        print(f"put_traces({len(demo_traces)}) in one transaction: {traces_s:.2f} s")
        print(f"{'procedures':>10}  {'batch put (1000)':>16}  {'per put':>9}  "
              f"{'search_text p50 at this size':>28}")
        probe = queries[:20]
        build_s = traces_s
        for i in range(0, len(variants), BATCH):
            batch = variants[i:i + BATCH]
            start = time.perf_counter()
            with store.transaction():
                for proc in batch:
                    store.put_procedure(proc)
            took = time.perf_counter() - start
            build_s += took
            size_now = len(bases) + i + len(batch)
            p50 = pct(timed_queries(lambda q: store.search_text(q, limit=50), probe, 1)[0], 50)
            print(f"{size_now:>10}  {took:>14.2f} s  {took / len(batch) * 1000:>6.2f} ms  "
                  f"{p50 * 1000:>25.2f} ms")
        conn = store._conn  # benchmark only: checkpoint so the size is the database's
        assert conn is not None
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        n_procs = len(store.list_procedures(limit=TOTAL * 2))
        n_fts = conn.execute("SELECT COUNT(*) FROM procedures_fts").fetchone()[0]
        size = db_size(folder)
        print(f"index build (traces + procedures): {build_s:.2f} s; "
              f"{n_procs} procedures, {n_fts} FTS rows, {store.count_traces()} traces; "
              f"DB {size / 2**20:.1f} MiB on disk")
        print()

        for q in queries[:10]:  # warm the page cache
            store.search_text(q, limit=50)
        a, found = timed_queries(lambda q: store.search_text(q, limit=50), queries)
        hits_a = statistics.median(len(r) for r in found)
        start = time.perf_counter()
        mem.search(queries[0], limit=5)
        cold = time.perf_counter() - start
        b_cpu: list[float] = []
        b, hits = timed_queries(lambda q: mem.search(q, limit=5), queries, cpu=b_cpu)
        start = time.perf_counter()
        index = BM25Index(store.index_documents())
        index_s = time.perf_counter() - start
        c, found_c = timed_queries(lambda q: index.search(q, limit=100), queries)
        hits_c = statistics.median(len(r) for r in found_c)
        top_ok = sum(bool(h) and h[0].procedure.signature() == expected[q]
                     for q, h in zip(queries, hits, strict=True))
        print(stats_line("(a) store.search_text(q, limit=50)", a)
              + f"  [{hits_a:.0f} results]")
        print(stats_line("(b) Memory.search(q, limit=5)", b))
        print(stats_line("(b) the same, process (CPU) time", b_cpu))
        print(f"(b) first (cold) call: {cold * 1000:.0f} ms (builds the in-memory BM25 index "
              f"from the store's documents)")
        print(f"top-1 hit has the held-out trace's action sequence: {top_ok}/{len(queries)}")
        print(stats_line("(c) BM25Index.search(q, limit=100)", c)
              + f"  [{hits_c:.0f} results; index built in {index_s:.2f} s]")
        p50a = pct([t * 1000 for t in a], 50)
        p50c = pct([t * 1000 for t in c], 50)
        verdict = "meets" if p50c < TARGET_MS else "MISSES"
        print(f"target: BM25 p50 < {TARGET_MS:.0f} ms at 10k -> in-memory index (c) "
              f"{p50c:.2f} ms {verdict} it (FTS5 (a): {p50a:.2f} ms)")
        ratio = statistics.median(b) / statistics.median(c)
        print(f"(b)/(c) median ratio: {ratio:.1f}x")
        extra_ms = (statistics.median(b) - statistics.median(c)) * 1e3
        print(f"(b)-(c) median difference: {extra_ms:.1f} ms "
              "(re-ranking 100 candidates with their extractors + stats of 5 hits)")
        if os.environ.get("PROFILE"):
            print("\nwhere (b) spends its time, cProfile of 50 queries (top by tottime):")
            profiler = cProfile.Profile()
            profiler.runcall(lambda: [mem.search(q, limit=5) for q in queries[:50]])
            pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
        mem.close()


if __name__ == "__main__":
    main()
