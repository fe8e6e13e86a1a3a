"""Statistics on read: ``get_procedure`` and ``search`` with 0 vs 3,000 executions of the hit.

Issue 13 item 3's must-show: the figure with 3,000 executions of the hit within
2x of the figure with none. What it measures, on a file-backed SQLite store
(WAL) in a temporary directory, with a keyword-only memory
(``Memory(..., embedder=None)``):

* learn the first 200 train traces; the query is the task text of the first
  dev trace (or, without dev data, of train trace 201) and the hit is its top
  ``search`` hit;
* ``get_procedure(hit)`` and ``search(query, limit=5)``: median and p95 over
  ``--runs`` calls (ms), after one warm-up call each;
* then 3,000 top-level executions of the hit's current version are stored
  (``store.put_execution`` + one ``put_step_run`` per step, one transaction; 2 in
  3 succeeded, the rest failed; every 10th has ``environment`` evidence), plus
  a running one, and the two figures are measured again.

Also printed: the hit's statistics as read back (runs, success rate,
reliability), so a fast but wrong read shows.

Run: ``.venv/bin/python benchmarks/bench_stats.py [--runs 200] [--executions 3000]``
(about 20 s).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from _common import load, load_optional, machine

from procmem import Memory
from procmem.core.model import Evidence, Execution, StepRun, utcnow


def _timed(fn: object, runs: int) -> tuple[float, float]:
    assert callable(fn)
    fn()  # warm-up: caches, index
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(0.95 * len(times)))]


def _fill(mem: Memory, name: str, n: int) -> None:
    proc = mem.store.get_procedure(name)
    t0 = utcnow() - timedelta(days=1)
    with mem.store.transaction():
        for i in range(n):
            ok = i % 3 != 0
            ex = Execution(procedure=name, version=proc.version, params={"i": i},
                           status="succeeded" if ok else "failed",
                           started_at=t0 + timedelta(seconds=i), duration_ms=12.0 + i % 7)
            mem.store.put_execution(ex)
            for k, step in enumerate(proc.steps):
                mem.store.put_step_run(ex.id, StepRun(
                    index=k, step_id=step.id, action=step.action, args={"n": i},
                    output={"ok": ok, "rows": list(range(5))}, status="succeeded",
                    duration_ms=3.0))
            if i % 10 == 0:
                mem.store.put_evidence(Evidence(execution_id=ex.id, reward=1.0 if ok else 0.0,
                                                source="environment"))
        mem.store.put_execution(Execution(procedure=name, version=proc.version,
                                          started_at=t0 + timedelta(seconds=n)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--executions", type=int, default=3000)
    args = ap.parse_args()
    train = load("train")
    dev = load_optional("dev")
    query = dev[0].task if dev else train[200].task
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        mem = Memory(Path(tmp) / "stats.db", embedder=None)
        mem.learn(train[:200])
        name = mem.search(query, limit=1)[0].procedure.name
        print(f"query: {query[:70]!r}... -> hit {name}")
        rows = []
        for n in (0, args.executions):
            if n:
                t0 = time.perf_counter()
                _fill(mem, name, n)
                print(f"stored {n} executions in {time.perf_counter() - t0:.1f} s")
            get = _timed(lambda: mem.get_procedure(name), args.runs)
            hits = _timed(lambda: mem.search(query, limit=5), args.runs)
            proc = mem.get_procedure(name)
            top = next(h for h in mem.search(query, limit=10) if h.procedure.name == name)
            print(f"{n:>5} executions: runs={proc.execution_count} "
                  f"success_rate={proc.success_rate} reliability={top.reliability:.3f}")
            rows.append((n, get, hits))
        print(f"{'executions':>10} | {'get_procedure p50 / p95 ms':>27} "
              f"| {'search p50 / p95 ms':>20}")
        for n, get, hits in rows:
            print(f"{n:>10} | {get[0]:>12.3f} / {get[1]:>10.3f} "
                  f"| {hits[0]:>9.3f} / {hits[1]:>8.3f}")
        (_, g0, s0), (_, g1, s1) = rows
        print(f"ratio {args.executions} / 0 (p50): get_procedure {g1[0] / g0[0]:.2f}x, "
              f"search {s1[0] / s0[0]:.2f}x (target: within 2x)")
        mem.close()


if __name__ == "__main__":
    main()
