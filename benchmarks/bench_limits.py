"""The largest trace and procedure the default limits accept, and what they cost.

Prints, for ``procmem.security.limits.DEFAULT_LIMITS``:

* a trace of ``max_trace_steps`` steps (each step with a small args dict and a
  ~200-byte JSON output): ``Memory.add_traces`` (limits check + redaction +
  store) and ``Memory.learn`` on a store holding it, in seconds;
* the refusal time of a 100,000-step trace (the check runs before anything else);
* a procedure of ``max_procedure_steps`` steps and ``max_procedure_params``
  params: ``Memory.put_procedure``, one ``Memory.search`` and one replay with
  no-op tools, in seconds.

Run: ``PYTHONPATH=src python benchmarks/bench_limits.py`` (SQLite in a temp dir).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from procmem import Memory
from procmem.core.errors import LimitExceeded
from procmem.core.model import Param, Procedure, Step, Trace
from procmem.security.limits import DEFAULT_LIMITS


def _trace(n: int, tid: str) -> Trace:
    return Trace(id=tid, task=f"process batch {tid} for customer #W1234567", outcome="success",
                 steps=[{"action": f"tool_{i % 20}",
                         "args": {"order_id": "#W1234567", "i": i},
                         "output": json.dumps({"status": "ok", "i": i, "note": "x" * 150})}
                        for i in range(n)])


def main() -> None:
    lim = DEFAULT_LIMITS
    print(f"limits: {lim}")
    with tempfile.TemporaryDirectory() as tmp, Memory(Path(tmp) / "b.db", embedder=None) as mem:
        big = _trace(lim.max_trace_steps, "largest")
        size = len(big.model_dump_json().encode())
        t = time.perf_counter()
        mem.add_traces([big])
        add_s = time.perf_counter() - t
        t = time.perf_counter()
        report = mem.learn()
        learn_s = time.perf_counter() - t
        print(f"largest accepted trace: {lim.max_trace_steps} steps, {size / 1e6:.2f} MB: "
              f"add_traces {add_s:.2f} s, learn {learn_s:.2f} s "
              f"({len(report.created)} procedure(s))")
        huge = _trace(100_000, "huge")
        t = time.perf_counter()
        try:
            mem.add_traces([huge])
        except LimitExceeded as err:
            print(f"100,000-step trace refused in {time.perf_counter() - t:.2f} s "
                  f": {err}")
        proc = Procedure(
            name="largest_procedure", description="the largest accepted procedure",
            params=[Param(name=f"p{i}") for i in range(lim.max_procedure_params)],
            steps=[Step(id=f"s{i}", action=f"tool_{i % 20}",
                        args={"v": {"$param": f"p{i % lim.max_procedure_params}"}, "i": i})
                   for i in range(lim.max_procedure_steps)])
        t = time.perf_counter()
        mem.put_procedure(proc)
        put_s = time.perf_counter() - t
        t = time.perf_counter()
        mem.search("the largest accepted procedure", limit=3)
        search_s = time.perf_counter() - t
        tools = {f"tool_{i}": (lambda **kw: "{}") for i in range(20)}
        t = time.perf_counter()
        ex = mem.replay("largest_procedure", tools=tools,
                        params={f"p{i}": str(i) for i in range(lim.max_procedure_params)})
        replay_s = time.perf_counter() - t
        print(f"largest accepted procedure: {lim.max_procedure_steps} steps, "
              f"{lim.max_procedure_params} params: put {put_s:.2f} s, search {search_s:.2f} s, "
              f"replay {replay_s:.2f} s ({ex.status})")


if __name__ == "__main__":
    main()
