"""Learn time for the τ-retail train traces (issue 2 target: < 5 s for the 500 traces).

What it measures, each as the median of 5 runs (min and max printed too):

1. ``Memory(":memory:").learn(traces)``: the whole job a user runs, i.e. open an
   in-memory store, store the traces (one transaction), group them, compute the
   corpus statistics, induce one procedure per group, store the procedures and
   rebuild their full-text rows.
2. The pure induction part, no store: ``procmem.induction.induce.group_traces`` +
   ``CorpusStats.from_traces`` + ``induce`` for every group.
3. The same as 1 on a file-backed SQLite database (WAL) in a fresh temporary
   directory each run (``Memory(path).learn(traces)``), so the disk is included.
4. Re-learning the same traces on an already learned memory (a no-op by design)
   and, once, the peak Python heap of run 1 under ``tracemalloc`` (not timed:
   tracemalloc slows the run down several times).
5. Learning one more trace on a memory of 20,000 stored traces (copies of the
   train traces with their ids, names, e-mails, zips and payment ids varied,
   seeded): with the same ``Memory`` object, which keeps its fold over the
   traces (grouping and corpus statistics) and reads only the new trace, and
   with a new ``Memory`` on the same store, which reads all of them. Median of 5.

How: the trace file is parsed once before timing (``read_traces``; its time is
printed separately); every run starts from a new store. ``time.perf_counter``.
Target: learn (1) < 5 s on this 2-core machine.

Run: ``.venv/bin/python benchmarks/bench_learn.py`` (about a minute);
add ``--profile`` to also print the top cProfile entries of one learn run.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from _common import data_file, load, machine, summary

from procmem.formats.traceio import read_traces
from procmem.induction.induce import CorpusStats, group_traces, induce, procedure_name
from procmem.memory import Memory

RUNS = 5
TARGET_S = 5.0


def learn_memory(traces: list) -> tuple[float, int]:
    start = time.perf_counter()
    with Memory(":memory:") as mem:
        report = mem.learn(traces)
        elapsed = time.perf_counter() - start
    return elapsed, len(report.created) + len(report.updated)


def learn_file(traces: list) -> tuple[float, int, int]:
    with tempfile.TemporaryDirectory(prefix="procmem-bench-") as tmp:
        path = Path(tmp) / "memory.db"
        start = time.perf_counter()
        with Memory(path) as mem:
            report = mem.learn(traces)
        elapsed = time.perf_counter() - start
        size = sum(f.stat().st_size for f in Path(tmp).iterdir())
    return elapsed, len(report.created) + len(report.updated), size


def induce_only(traces: list) -> tuple[float, int]:
    start = time.perf_counter()
    groups = group_traces(traces)
    corpus = CorpusStats.from_traces(traces)
    procs = [induce(g, name=procedure_name(g[0].signature()), corpus=corpus) for g in groups]
    return time.perf_counter() - start, len(procs)


def learn_one_more(traces: list, stored: int = 20_000) -> tuple[list[float], list[float], int]:
    """Seconds to learn one more trace with ``stored`` traces stored: same Memory, new Memory."""
    import random

    from bench_retrieval_latency import Varier

    rng = random.Random(3)
    varier = Varier([t.task for t in traces], rng)

    def copy(k: int) -> object:
        base = rng.choice(traces)
        return base.model_copy(update={"id": f"syn-{k}", "task": varier.vary(base.task)})
    kept_t, fresh_t = [], []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.db"
        with Memory(path, embedder=None) as mem:
            mem.learn([copy(k) for k in range(stored)])
            for i in range(RUNS):
                start = time.perf_counter()
                mem.learn([copy(stored + i)])
                kept_t.append(time.perf_counter() - start)
        for i in range(RUNS):
            with Memory(path, embedder=None) as mem:
                start = time.perf_counter()
                mem.learn([copy(stored + RUNS + i)])
                fresh_t.append(time.perf_counter() - start)
    return kept_t, fresh_t, stored


def main() -> None:
    print(__doc__.splitlines()[0])
    print(machine())
    path, _ = data_file("train")
    start = time.perf_counter()
    read_traces(path)
    parse_s = time.perf_counter() - start
    traces = load("train")
    print(f"parse {path.name}: {parse_s:.3f} s (not included below)")
    print()

    mem_t, file_t, ind_t, sizes = [], [], [], []
    procs = set()
    for _ in range(RUNS):
        t, n = learn_memory(traces)
        mem_t.append(t)
        procs.add(n)
        t, n, size = learn_file(traces)
        file_t.append(t)
        sizes.append(size)
        procs.add(n)
        t, n = induce_only(traces)
        ind_t.append(t)
        procs.add(n)

    with Memory(":memory:") as mem:
        mem.learn(traces)
        relearn_t = []
        for _ in range(RUNS):
            start = time.perf_counter()
            report = mem.learn(traces)
            relearn_t.append(time.perf_counter() - start)
        changed = len(report.created) + len(report.updated)

    tracemalloc.start()
    learn_memory(traces)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    print(f"traces: {len(traces)}   procedures: {', '.join(map(str, sorted(procs)))}")
    print(f"learn, Memory(':memory:')            {summary(mem_t)}")
    print(f"learn, Memory(file, WAL)             {summary(file_t)}  "
          f"db {statistics.median(sizes) / 2**20:.1f} MiB")
    print(f"induction only (group+stats+induce)  {summary(ind_t)}")
    print(f"re-learn, same traces                {summary(relearn_t)}  "
          f"({changed} procedures changed)")
    print(f"peak Python heap, learn in memory: {peak / 2**20:.1f} MiB (tracemalloc, one run)")
    med = statistics.median(mem_t)
    verdict = "meets" if med < TARGET_S else "MISSES"
    print(f"target: learn < {TARGET_S:.0f} s -> {med:.2f} s {verdict} it "
          f"({med / len(traces) * 1000:.1f} ms per trace)")
    kept_t, fresh_t, stored = learn_one_more(traces)
    print(f"learn 1 more trace, {stored:,} stored: same Memory {summary(kept_t)};  "
          f"new Memory {summary(fresh_t)}")
    if "--profile" in sys.argv[1:]:
        profiler = cProfile.Profile()
        profiler.runcall(learn_memory, traces)
        print()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
