"""``Memory.search`` latency over an existing store (any backend).

For a store built by ``bench_backends.py --scale N --keep`` (or copied with ``procmem
copy``): the first search of a new ``Memory`` (index snapshot load or build), then
p50/p95 of ``--queries`` distinct searches (τ-retail dev tasks with a varied order id,
so no query repeats; with ``--embedder default`` each search embeds its query).

    .venv/bin/python benchmarks/bench_search_store.py /tmp/procmem-bench/bench_scale_100000.db
    .venv/bin/python benchmarks/bench_search_store.py postgresql://u@host/db --embedder default
"""

from __future__ import annotations

import argparse
import time

from _common import data_file, machine, pct

from procmem.formats.traceio import read_traces
from procmem.memory import Memory


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("location")
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--embedder", choices=("none", "default"), default="none",
                   help="none: BM25 only (a store built with --embedder none)")
    args = p.parse_args()
    print(machine())
    tasks = [t.task for t in read_traces(data_file("dev")[0])[0]]
    t0 = time.perf_counter()
    mem = Memory(args.location, embedder=None if args.embedder == "none" else "default")
    count = mem.store.count_procedures()
    mem.search(tasks[0], limit=5)
    first = time.perf_counter() - t0
    times = []
    for i in range(args.queries):
        query = f"{tasks[i % len(tasks)]} order #W{1_000_000 + i}"
        t = time.perf_counter()
        mem.search(query, limit=5)
        times.append((time.perf_counter() - t) * 1000)
    print(f"{args.location}: {count} procedures, embedder {args.embedder}")
    print(f"  first search of a new Memory: {first:.1f} s")
    print(f"  Memory.search: p50 {pct(times, 50):.1f} ms, p95 {pct(times, 95):.1f} ms "
          f"over {len(times)} distinct queries")
    mem.close()


if __name__ == "__main__":
    main()
