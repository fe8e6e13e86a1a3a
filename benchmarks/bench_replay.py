"""Replay overhead per step over calling the tools directly (issue 2 target: < 50 µs per step).

What it measures: one procedure of N = 50 steps whose args mix a literal, a
``$param`` and (from step 2 on) a ``$step`` reference to the previous step's
output (``{"$step": "s<i-1>", "path": "/id"}``). Each tool is a trivial Python
function returning a small dict. Variants, each timed per whole run of 50 steps:

(direct) a plain loop calling the 50 tools with the same args, passing each
         output's ``id`` on by hand: the baseline;
(b) core   ``procmem.core.replay.drive(replay_core(...), tools, persist=None)``: the
         pure sans-IO core and sync driver, nothing stored;
(c) memory ``Memory(":memory:").replay(name, tools=..., params=...)``: includes
         loading the procedure by name and persisting the execution header and
         every step run (SQLite, one commit per step run);
(d) file   the same on a file database in a temporary directory, as the store
         opens it (WAL, ``synchronous=NORMAL``: a commit survives a process
         crash; the WAL is synced at checkpoints, so a power cut may undo the
         last commits);
(e) file, synchronous=FULL: the same with every step-run commit syncing the WAL
         to disk, to show what power-cut durability costs.

Overhead per step = (median run time of the variant - median direct run time) / N.
Medians over many repetitions (printed as n). A second table runs the core (b)
at N = 10, 50, 200, 1000 to show whether the per-step cost stays flat with the
number of steps. Target: < 50 µs per step; the script says for which variants it holds.

Run: ``.venv/bin/python benchmarks/bench_replay.py`` (about 30 s).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import machine

from procmem.core.model import Execution, Param, Procedure, Step
from procmem.core.replay import drive, replay_core
from procmem.memory import Memory

N = 50
TARGET_US = 50.0
ORDER_ID = "#W6067464"


def make_tools(n: int) -> dict[str, Callable[..., Any]]:
    def make(i: int) -> Callable[..., Any]:
        def tool(**kwargs: Any) -> dict[str, Any]:
            return {"id": f"r{i}", "ok": True, "n": i}
        return tool
    return {f"tool_{i:04d}": make(i) for i in range(n)}


def make_procedure(n: int) -> Procedure:
    steps = []
    for i in range(n):
        args: dict[str, Any] = {"order_id": {"$param": "order_id"}, "mode": "fast", "limit": 3}
        if i:
            args["prev"] = {"$step": f"s{i}", "path": "/id"}
        steps.append(Step(id=f"s{i + 1}", action=f"tool_{i:04d}", args=args))
    return Procedure(
        name=f"bench-{n}-steps",
        description="synthetic procedure for the replay benchmark",
        params=[Param(name="order_id", schema={"type": "string"})],
        steps=steps,
    )


def direct_run(tools: dict[str, Callable[..., Any]]) -> None:
    fns = list(tools.values())
    prev: dict[str, Any] | None = None
    for i, fn in enumerate(fns):
        args: dict[str, Any] = {"order_id": ORDER_ID, "mode": "fast", "limit": 3}
        if i:
            assert prev is not None
            args["prev"] = prev["id"]
        prev = fn(**args)


def core_run(proc: Procedure, tools: dict[str, Callable[..., Any]]) -> Execution:
    ex = Execution(procedure=proc.name, version=proc.version, params={"order_id": ORDER_ID},
                   param_sources={"order_id": "given"})
    return drive(replay_core(proc, ex, {}), tools, None, None)


def timed(fn: Callable[[], Any], reps: int, warmup: int = 3) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    print(__doc__.splitlines()[0])
    print(machine())
    print("data: synthetic procedure and tools (no trace file used)")
    tools, proc = make_tools(N), make_procedure(N)

    check = core_run(proc, tools)
    bad = [r for r in check.step_runs if r.status != "succeeded"]
    print(f"procedure: {N} steps, each with a literal, a $param and (from s2) a $step arg; "
          f"core replay {check.status}, {len(check.step_runs)} step runs, {len(bad)} failed")
    print()

    rows: list[tuple[str, list[float]]] = []
    rows.append(("direct tool calls", timed(lambda: direct_run(tools), 3000)))
    rows.append(("(b) core + drive, persist=None", timed(lambda: core_run(proc, tools), 400)))

    with Memory(":memory:") as mem:
        mem.put_procedure(proc)
        ex = mem.replay(proc.name, tools=tools, params={"order_id": ORDER_ID})
        stored = len(mem.get_execution(ex.id).step_runs)
        rows.append(("(c) Memory(':memory:').replay", timed(
            lambda: mem.replay(proc.name, tools=tools, params={"order_id": ORDER_ID}), 300)))

    with tempfile.TemporaryDirectory(prefix="procmem-bench-") as tmp:
        path = Path(tmp) / "memory.db"
        with Memory(path) as mem:
            mem.put_procedure(proc)
            conn = mem.store._conn  # benchmark only: read the pragmas in effect
            assert conn is not None
            mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = conn.execute("PRAGMA synchronous").fetchone()[0]
            runs = 200
            rows.append((f"(d) Memory(file).replay [{mode}, synchronous={sync}]", timed(
                lambda: mem.replay(proc.name, tools=tools, params={"order_id": ORDER_ID}),
                runs)))
            size = sum(f.stat().st_size for f in Path(tmp).iterdir())
            conn.execute("PRAGMA synchronous = FULL")
            rows.append(("(e) Memory(file).replay [wal, synchronous=2 FULL]", timed(
                lambda: mem.replay(proc.name, tools=tools, params={"order_id": ORDER_ID}),
                runs)))

    direct = statistics.median(rows[0][1])
    width = max(len(name) for name, _ in rows)
    print(f"{'variant':<{width}}  {'run (50 steps)':>15}  {'per step':>10}  {'overhead/step':>14}")
    verdicts = []
    for name, times in rows:
        med = statistics.median(times)
        over = (med - direct) / N * 1e6
        per = med / N * 1e6
        over_txt = "-" if name.startswith("direct") else f"{over:.1f} µs"
        print(f"{name:<{width}}  {med * 1e3:>12.3f} ms  {per:>7.2f} µs  {over_txt:>14}"
              f"   (n={len(times)})")
        if not name.startswith("direct"):
            verdicts.append((name.split(")")[0] + ")", over))
    print(f"step runs stored per (c) replay: {stored}; file DB after (d): "
          f"{size / 2**20:.1f} MiB for {runs + 3} executions "
          f"({size / ((runs + 3) * N):.0f} B per step run)")
    ok = [n for n, o in verdicts if o < TARGET_US]
    miss = [f"{n} {o:.0f} µs" for n, o in verdicts if o >= TARGET_US]
    print(f"target: overhead < {TARGET_US:.0f} µs/step -> holds for {', '.join(ok) or 'none'}"
          + (f"; misses for {', '.join(miss)}" if miss else ""))
    print("note: (c)-(e) commit once per step run (durability: a crash loses at most the "
          "step in flight); (e) also syncs the WAL file at every commit.")
    print()

    print("core scaling (b), overhead per step vs number of steps:")
    for n in (10, 50, 200, 1000):
        t, p = make_tools(n), make_procedure(n)
        reps = max(20, 20000 // n)
        d = statistics.median(timed(lambda t=t: direct_run(t), reps * 5))
        c = statistics.median(timed(lambda p=p, t=t: core_run(p, t), reps))
        print(f"  N={n:>5}: core {c * 1e3:9.3f} ms/run, overhead {(c - d) / n * 1e6:6.1f} µs/step"
              f"  (n={reps})")


if __name__ == "__main__":
    main()
