"""Binding latency: one procedure for one task, and the 100 candidates re-ranking binds.

What it measures (process and wall time are both printed; on a shared machine
the CPU time is the steadier figure):

* (a) ``procmem.induction.bind.bind_task(procedure, task)``: every procedure learned from
  the first 320 τ-retail train traces, for each of the 200 held-out task texts
  (the 20 dev traces and the last 180 train traces). "first" is the first call
  for a (procedure, text) pair, "repeat" a second one (the extractor matches of
  a text are cached, see ``procmem.induction.extract_find.find``). Per call and per task
  (all procedures).
* (b) the binding step of re-ranking at 10,000 procedures: the procedures of
  ``bench_search.py`` (learned ones plus generated variants, see there), their
  rank views, and per held-out task the 100 best of an in-memory BM25 index over
  their index texts; per task, ``bind_params(view.params, task)`` for each of the
  100 (exhaustive), then ``procmem.search.rankcache.bind_all`` (one binding per distinct
  spec set, what ``retrieval.rank`` calls; skipped when the source tree has no
  ``procmem.search.rankcache``, e.g. an older commit). Both start with the cached
  extractor matches cleared, as for a new task.

Run: ``.venv/bin/python benchmarks/bench_bind.py`` (about a minute); to compare
with an older commit, run this script with ``PYTHONPATH=<old checkout>/src``.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from _common import load, load_optional, machine, pct
from bench_search import LEARN, QUERIES, TOTAL, Pools, make_variants

from procmem.induction.bind import bind_params, bind_task
from procmem.memory import Memory
from procmem.search.bm25 import BM25Index
from procmem.search.retrieval import RankView
from procmem.store.base import index_text

try:
    from procmem.search.rankcache import bind_all
except ImportError:  # an older source tree
    bind_all = None
try:
    from procmem.induction import extract_find
except ImportError:  # an older source tree: find lived in procmem.induction.extract
    from procmem.induction import extract as extract_find  # type: ignore[no-redef]

CANDIDATES = 100


def clear() -> None:
    """Forget the cached extractor matches (``procmem.induction.extract_find._find``), if any."""
    cache_clear = getattr(getattr(extract_find, "_find", None), "cache_clear", None)
    if cache_clear is not None:
        cache_clear()


def timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """(wall, cpu) seconds of one call."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def line(label: str, seconds: list[float], unit: str = "us") -> str:
    scale = 1e6 if unit == "us" else 1e3
    xs = [s * scale for s in seconds]
    return (f"{label:<52} p50 {pct(xs, 50):8.1f} {unit}   p95 {pct(xs, 95):8.1f} {unit}   "
            f"mean {statistics.fmean(xs):8.1f} {unit}   (n={len(xs)})")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(machine())
    train = load("train")
    dev = load_optional("dev")
    learn_part = train[:LEARN]
    held_out = [t.task for t in dev + train[len(learn_part):]]
    queries = (held_out * (QUERIES // max(len(held_out), 1) + 1))[:QUERIES]
    mem = Memory(":memory:", embedder=None)
    mem.learn(learn_part)
    procs = mem.list_procedures(limit=1000)
    print(f"learned {len(procs)} procedures; {len(queries)} held-out task texts")

    first: dict[str, list[float]] = {"wall": [], "cpu": []}
    repeat: dict[str, list[float]] = {"wall": [], "cpu": []}
    per_task: list[float] = []
    for q in queries:
        task_cpu = 0.0
        for p in procs:
            for out in (first, repeat):
                wall, cpu = timed(lambda p=p, q=q: bind_task(p, q))
                out["wall"].append(wall)
                out["cpu"].append(cpu)
            task_cpu += first["cpu"][-1]
        per_task.append(task_cpu)
    print(line("(a) bind_task, first call per (procedure, text), CPU", first["cpu"]))
    print(line("(a) bind_task, first call, wall", first["wall"]))
    print(line("(a) bind_task, repeat call, CPU", repeat["cpu"]))
    print(line(f"(a) all {len(procs)} procedures for one task, first calls, CPU", per_task,
               "ms"))

    rng = random.Random(7)
    by_id = {t.id: t for t in learn_part}
    variants, demos = make_variants(procs, by_id, TOTAL - len(procs), Pools(learn_part), rng)
    tasks = {t.id: t.task for t in [*learn_part, *demos]}
    everything = [*procs, *variants]
    start = time.perf_counter()
    views = {p.name: RankView.of(p) for p in everything}
    views_s = time.perf_counter() - start
    index = BM25Index([(p.name, index_text(p, [tasks[i] for i in p.lineage.traces if i in tasks]))
                       for p in everything])
    distinct = len({id(v.params) for v in views.values()})
    print(f"\n(b) {len(everything)} procedures, rank views made in {views_s:.2f} s; "
          f"{distinct} distinct spec tuples among the views")
    exhaustive: list[float] = []
    shared: list[float] = []
    for q in queries:
        cands = [views[n] for n, _ in index.search(q, limit=CANDIDATES)]
        clear()  # both start with no cached extractor match for this text
        exhaustive.append(timed(lambda c=cands, q=q: [bind_params(v.params, q) for v in c])[1])
        if bind_all is not None:
            clear()
            shared.append(timed(lambda c=cands, q=q: bind_all(c, q))[1])
    print(line(f"(b) bind_params x {CANDIDATES} candidates (exhaustive), CPU", exhaustive, "ms"))
    if shared:
        print(line(f"(b) bind_all of {CANDIDATES} candidates (rank's path), CPU", shared, "ms"))
    else:
        print("(b) bind_all: not in this source tree")
    mem.close()


if __name__ == "__main__":
    main()
