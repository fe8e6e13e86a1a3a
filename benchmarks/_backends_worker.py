"""One worker process of ``bench_backends.py`` (not a benchmark itself).

``python benchmarks/_backends_worker.py ROLE CONFIG OUT``: opens its own
``Memory`` on the store location in ``CONFIG`` (JSON written by the parent),
warms up (the first search loads the embedder and the index), writes
``OUT.ready``, waits for the parent's ``go`` file (which holds the start time),
then repeats its operation until ``start + seconds`` and writes to ``OUT``:
``{"role", "pid", "ops": {op: [seconds, ...]}, "errors": [[op, message], ...],
"seen": {...}}``.

Roles (``bench_backends.py`` says how many of each run):

* ``reader``: ``Memory.search`` of held-out task texts;
* ``learn``: ``Memory.learn`` of a small batch (3) of train traces under new ids;
* ``record``: ``Memory.record`` of one trace through wrapped fake tools, then
  ``add_traces`` of a batch of 5 (an import);
* ``report``: ``replay`` of a learned procedure for one of its demonstrations'
  tasks, tools answering that demonstration's recorded outputs, then ``report``;
* ``replay``: ``search`` for such a task, then ``replay`` of the top hit;
* ``putter``: ``put_procedure`` of the next version of the probe procedure every
  ``put_every_s`` (as ``Memory.put_procedure`` does it: the store's put, then
  the embedding), appending ``[version, time before, time committed]`` (wall
  clock) to ``OUT.stamps``;
* ``watcher``: polls ``get_procedure`` and ``search`` of the probe and records
  the wall time each saw each new version first (``seen``).
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
try:
    import procmem  # noqa: F401
except ImportError:  # pragma: no cover - run from a checkout
    sys.path.insert(0, str(ROOT / "src"))

from procmem.core.model import Procedure, Trace  # noqa: E402
from procmem.formats.traceio import read_traces  # noqa: E402
from procmem.memory import Memory  # noqa: E402

PROBE_QUERY = "zebra quartz lighthouse probe: refresh the visibility beacon"


def probe_procedure(version_hint: int) -> Procedure:
    """The probe: a distinctive procedure whose description changes with every put."""
    return Procedure.model_validate({
        "name": "visibility_probe",
        "description": f"{PROBE_QUERY} (revision {version_hint})",
        "steps": [{"id": "s1", "action": "refresh_beacon", "args": {"beacon": "north"}}]})


class Worker:
    def __init__(self, role: str, config: dict[str, Any], out: Path) -> None:
        self.role, self.config, self.out = role, config, out
        embedder = None if config["embedder"] == "none" else config["embedder"]
        self.mem = Memory(config["location"], embedder=embedder, seed=os.getpid())
        self.rng = random.Random(os.getpid())
        self.traces, _ = read_traces(config["train"])
        self.pairs: list[tuple[int, str]] = [tuple(p) for p in config["pairs"]]
        self.queries: list[str] = config["queries"]
        self.ops: dict[str, list[float]] = {}
        self.errors: list[tuple[str, str]] = []
        self.seen: dict[str, dict[int, float]] = {"get_procedure": {}, "search": {}}
        self.n = 0

    def timed(self, op: str, fn: Callable[[], Any]) -> Any:
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as err:  # every failure is reported, none stops the run
            self.errors.append((op, f"{type(err).__name__}: {err}"[:400]))
            if os.environ.get("BENCH_TRACEBACK"):
                traceback.print_exc()
            return None
        self.ops.setdefault(op, []).append(time.perf_counter() - start)
        return result

    # ------------------------------------------------------------------ helpers

    def fresh(self, trace: Trace) -> Trace:
        self.n += 1
        return trace.model_copy(update={"id": f"bench-{os.getpid()}-{self.n}"})

    def tools_for(self, trace: Trace) -> dict[str, Callable[..., Any]]:
        outputs: dict[str, list[Any]] = {}
        for step in trace.steps:
            outputs.setdefault(step.action, []).append(step.output)
        seen: dict[str, int] = {}

        def make(action: str) -> Callable[..., Any]:
            def tool(**kwargs: Any) -> Any:
                i = seen.get(action, 0)
                seen[action] = i + 1
                answers = outputs[action]
                return answers[min(i, len(answers) - 1)]
            return tool
        return {action: make(action) for action in outputs}

    # -------------------------------------------------------------------- roles

    def warm(self) -> None:
        if self.role in ("reader", "replay", "watcher"):
            self.mem.search(self.queries[0])
        if self.role == "learn":  # a new Memory's first learn reads every trace once
            self.mem.learn()

    def step(self) -> None:
        role, mem = self.role, self.mem
        if role == "reader":
            self.timed("search", lambda: mem.search(self.rng.choice(self.queries)))
        elif role == "learn":
            batch = [self.fresh(self.rng.choice(self.traces)) for _ in range(3)]
            self.timed("learn", lambda: mem.learn(batch))
        elif role == "record":
            trace = self.fresh(self.rng.choice(self.traces))
            self.timed("record", lambda: self.record(trace))
            batch = [self.fresh(self.rng.choice(self.traces)) for _ in range(5)]
            self.timed("add_traces", lambda: mem.add_traces(batch))
        elif role in ("report", "replay"):
            index, name = self.rng.choice(self.pairs)
            trace = self.traces[index]
            if role == "replay":
                hits = self.timed("search", lambda: mem.search(trace.task))
                if not hits:
                    return
                name = hits[0].procedure.name
            ex = self.timed("replay", lambda: mem.replay(name, tools=self.tools_for(trace),
                                                          task=trace.task))
            if ex is not None and role == "report":
                reward = 1.0 if ex.status == "succeeded" else 0.0
                self.timed("report", lambda: mem.report(ex.id, reward=reward,
                                                        source="environment"))
        elif role == "putter":
            self.put_probe()
        elif role == "watcher":
            self.watch()
        else:
            raise SystemExit(f"unknown role {role!r}")

    def record(self, trace: Trace) -> None:
        with self.mem.record(trace.task) as rec:
            tools = rec.wrap_tools(self.tools_for(trace))
            for step in trace.steps:
                tools[step.action](**step.args)

    def put_probe(self) -> None:
        """``Memory.put_procedure`` in its two parts (store, then embed), stamping the
        wall time before the call and when the version is committed."""
        self.n += 1
        mem, stamp = self.mem, []

        def put() -> Procedure:
            stamp.append(time.time())
            stored = mem.procedures.put_procedure(probe_procedure(self.n))  # committed
            stamp.append(time.time())
            mem.searcher.embed_new([stored.name])
            return stored

        stored = self.timed("put_procedure", put)
        if stored is not None:
            with self.out.with_name(self.out.name + ".stamps").open("a") as f:
                f.write(json.dumps([stored.version, *stamp]) + "\n")
        time.sleep(self.config["put_every_s"])  # the pace of new versions, not a sync

    def watch(self) -> None:
        proc = self.timed("get_procedure", lambda: self.mem.get_procedure("visibility_probe"))
        now = time.time()
        if proc is not None:
            self.seen["get_procedure"].setdefault(proc.version, now)
        hits = self.timed("search", lambda: self.mem.search(PROBE_QUERY, limit=1))
        now = time.time()
        if hits and hits[0].procedure.name == "visibility_probe":
            self.seen["search"].setdefault(hits[0].procedure.version, now)
        time.sleep(0.002)  # poll period; keeps two CPUs for the others

    def run(self) -> None:
        self.warm()
        self.out.with_name(self.out.name + ".ready").write_text(str(os.getpid()))
        go = Path(self.config["go"])
        while not go.exists() or not go.read_text():
            time.sleep(0.005)
        end = float(go.read_text()) + self.config["seconds"]
        while time.time() < end:
            self.step()
        self.mem.close()
        result = {"role": self.role, "pid": os.getpid(), "ops": self.ops,
                  "errors": self.errors,
                  "seen": {k: {str(v): t for v, t in d.items()} for k, d in self.seen.items()}}
        tmp = self.out.with_name(self.out.name + ".tmp")
        tmp.write_text(json.dumps(result))
        os.replace(tmp, self.out)


if __name__ == "__main__":
    role, config_path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    Worker(role, json.loads(config_path.read_text()), out).run()
