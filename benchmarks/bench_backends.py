"""The same multi-process workload on each store backend: throughput, latency, errors,
how fast a new version is seen elsewhere; and search at scale (``--scale N``).

Backends are chosen by store location only (``Memory(location)``):

* ``--sqlite``: a fresh SQLite file (the default when no location is given);
* ``--postgres URL``: a PostgreSQL server; the benchmark creates its own database
  on it (``pmbench_<random>``, dropped after; with ``--scale`` and ``--keep``,
  ``pmbench_scale_<N>``, kept and reused);
* ``--db LOCATION`` (repeatable): a store location used as given (a file path
  or a ``postgresql://`` URL); it should be empty, or for ``--scale`` a store
  this script built before.

**Workload** (default): the store first learns the first 200 τ-retail train
traces (``../shared/data/tau-retail/train.jsonl``, or the bundled sample) and
holds a probe procedure. Then these processes (``_backends_worker.py``), each with
its own ``Memory``, run for ``--seconds`` (default 20) from one common start:

* ``--writers`` (8) writers, in turn ``learn`` (learn a batch of 3 train traces
  under new ids), ``record`` (record one trace through wrapped fake tools, then
  ``add_traces`` a batch of 5), ``report`` (replay a learned procedure for one
  of its demonstrations' tasks, with tools answering that demonstration's
  recorded outputs, then report the outcome as environment evidence) and
  ``replay`` (search for such a task, replay the top hit);
* ``--readers`` (2) readers: ``Memory.search`` of held-out task texts (dev);
* one putter: ``put_procedure`` of the probe's next version every ``--put-every``
  seconds (0.5), stamping the wall time before and after the call;
* one watcher: polls ``get_procedure`` and ``search`` of the probe (every ~2 ms
  plus the calls' own time) and stamps when it first sees each version.

Printed per backend: operations/s in all and per operation, p50/p95 per
operation, every error (target: none), and the visibility delay: for each probe
version, the watcher's first sight minus the moment the put committed it (the
putter calls ``Memory.put_procedure``'s two parts itself, the store's put and
then the embedding, and stamps the wall time between them; p50/max; the poll
period bounds the resolution), separately for ``get_procedure`` and ``search``.

**Scale** (``--scale N``, default 100000 when given without a number): a store
of N synthetic procedures, each a learned τ-retail procedure copied under a new
name (``<name>_s<k>``) with one demonstration: a copy of its base trace whose
names, e-mails, order ids, zips and payment ids are varied
(``bench_retrieval_latency.Varier``; variant k is seeded by k). They are
stored in batches of 500 through the library's own path: ``put_traces``, then
``Memory.procedures.put_procedure`` per procedure in one transaction, then
``Memory.searcher.embed_new`` of the batch (what ``Memory.put_procedure`` calls
for one), so the vectors are the real model's (``--embedder``, the library
default). The build resumes from what the store holds (variant k is always the
same), so ``--keep`` reuses it. Printed: build time (of what was built now), the
first search of a new ``Memory`` (index load or build), then
``Memory.warm_index(views=True)`` (what ``procmem serve`` and ``procmem mcp`` do
before serving: every rank view made now), p50/p95 of ``Memory.search`` over
``--queries`` (200) distinct varied task texts (including the query's embedding),
and the time to add 1,000 more procedures the same way plus the first search
after; the 1,000 are deleted again so the store stays at N.

Run (``--json`` prints one JSON object instead; progress goes to stderr):

    .venv/bin/python benchmarks/bench_backends.py --seconds 10
    .venv/bin/python benchmarks/bench_backends.py --sqlite --postgres postgresql://u@host/postgres
    .venv/bin/python benchmarks/bench_backends.py --scale 5000 --keep
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from _common import data_file, load, load_optional, machine, pct

import procmem
from procmem.memory import Memory

HERE = Path(__file__).resolve().parent
LEARNED = 200
ROLES = ("learn", "record", "report", "replay")


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


# --------------------------------------------------------------------- locations


@contextmanager
def pg_database(url: str, name: str | None, keep: bool) -> Iterator[str]:
    """A database on the server of ``url`` (created unless it exists); its URL."""
    import psycopg

    name = name or f"pmbench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                              (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        if not keep:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def location_of(kind: str, value: str, args: argparse.Namespace) -> Iterator[str]:
    """The store location of one backend for this run (made and removed as documented)."""
    scale = f"scale_{args.scale}" if args.scale else None
    if kind == "db":
        yield value
    elif kind == "postgres":
        with pg_database(value, f"pmbench_{scale}" if scale and args.keep else None,
                         args.keep) as url:
            yield url
    elif args.keep:
        folder = Path(args.cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"bench_backends_{scale or 'workload'}.db"
        if not scale:  # the workload always starts from a fresh store
            for old in folder.glob(path.name + "*"):
                old.unlink()
        yield str(path)
    else:
        folder = Path(tempfile.mkdtemp(prefix="pmbench-"))
        try:
            yield str(folder / "store.db")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


def label_of(kind: str, value: str) -> str:
    if kind == "sqlite":
        return "sqlite"
    if value.startswith(("postgresql:", "postgres:")):
        parts = urlsplit(value)
        return f"postgres {parts.hostname}:{parts.port or 5432}"
    return value


def memory(location: str, args: argparse.Namespace, **kw: Any) -> Memory:
    return Memory(location, embedder=None if args.embedder == "none" else args.embedder, **kw)


# ---------------------------------------------------------------------- workload


def setup_workload(location: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Learn the first traces, put the probe; the workers' config."""
    from _backends_worker import probe_procedure

    train_path, _ = data_file("train")
    with redirect_stdout(sys.stderr):
        traces = load("train")
        dev = [t.task for t in load_optional("dev")] or [t.task for t in traces[-50:]]
    with memory(location, args) as mem:
        mem.learn(traces[:LEARNED])
        mem.put_procedure(probe_procedure(0))
        index = {t.id: i for i, t in enumerate(traces)}
        pairs = [(index[tid], p.name) for p in mem.list_procedures(limit=100_000)
                 for tid in p.lineage.traces if tid in index]
    return {"location": location, "seconds": args.seconds, "embedder": args.embedder,
            "go": str(work / "go"), "train": str(train_path), "pairs": pairs,
            "queries": dev, "put_every_s": args.put_every}


def run_workload(location: str, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="pmbench-work-"))
    try:
        say(f"  setting up the store (learn {LEARNED} traces) ...")
        config = setup_workload(location, args, work)
        (work / "config.json").write_text(json.dumps(config))
        roles = ([ROLES[i % len(ROLES)] for i in range(args.writers)]
                 + ["reader"] * args.readers + ["putter", "watcher"])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(  # the procmem this process runs
            [str(Path(procmem.__file__).parents[1]), os.environ.get("PYTHONPATH", "")])}
        procs = []
        for i, role in enumerate(roles):
            out = work / f"{i:02d}-{role}.json"
            procs.append((role, out, subprocess.Popen(
                [sys.executable, str(HERE / "_backends_worker.py"), role,
                 str(work / "config.json"), str(out)], env=env)))
        say(f"  {len(procs)} processes warming up ...")
        deadline = time.monotonic() + 600
        for _, out, proc in procs:
            while not out.with_name(out.name + ".ready").exists():
                if proc.poll() is not None:
                    raise SystemExit(f"worker {out.name} exited {proc.returncode} early")
                if time.monotonic() > deadline:
                    raise SystemExit(f"worker {out.name} never got ready")
                time.sleep(0.02)
        start = time.time() + 0.2
        (work / "go.tmp").write_text(repr(start))
        os.replace(work / "go.tmp", work / "go")
        say(f"  running for {args.seconds} s ...")
        for _, _, proc in procs:
            proc.wait()
        results = []
        for role, out, proc in procs:
            if proc.returncode != 0 or not out.exists():
                results.append({"role": role, "ops": {}, "seen": {},
                                "errors": [["process", f"exited {proc.returncode}"]]})
            else:
                results.append(json.loads(out.read_text()))
        stamps = []
        for _, out, _ in procs:
            path = out.with_name(out.name + ".stamps")
            if path.exists():
                stamps += [json.loads(x) for x in path.read_text().splitlines()]
        return summarize(results, stamps, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def visibility(results: list[dict[str, Any]], stamps: list[list[float]]) -> dict[str, Any]:
    put_end = {int(v): committed for v, _, committed in stamps}
    out: dict[str, Any] = {"versions_put": len(put_end)}
    for method in ("get_procedure", "search"):
        seen: dict[int, float] = {}
        for r in results:
            for v, t in r.get("seen", {}).get(method, {}).items():
                seen[int(v)] = min(t, seen.get(int(v), t))
        delays = [max(seen[v] - put_end[v], 0.0) for v in put_end if v in seen]  # clock: 0
        out[method] = {"seen": len(delays),
                       "p50_ms": round(pct(delays, 50) * 1000, 1) if delays else None,
                       "max_ms": round(max(delays) * 1000, 1) if delays else None}
    return out


def summarize(results: list[dict[str, Any]], stamps: list[list[float]],
              args: argparse.Namespace) -> dict[str, Any]:
    ops: dict[str, list[float]] = {}
    errors: list[list[str]] = []
    for r in results:
        for op, times in r["ops"].items():
            ops.setdefault(op, []).extend(times)
        errors += [[r["role"], op, msg] for op, msg in r["errors"]]
    per_op = {op: {"n": len(t), "per_s": round(len(t) / args.seconds, 1),
                   "p50_ms": round(pct(t, 50) * 1000, 2), "p95_ms": round(pct(t, 95) * 1000, 2)}
              for op, t in sorted(ops.items())}
    total = sum(len(t) for t in ops.values())
    return {"processes": {role: sum(r["role"] == role for r in results)
                          for role in dict.fromkeys(r["role"] for r in results)},
            "ops_per_s": round(total / args.seconds, 1), "operations": per_op,
            "errors": errors, "visibility": visibility(results, stamps)}


def print_workload(label: str, r: dict[str, Any], args: argparse.Namespace) -> None:
    procs = ", ".join(f"{n} {role}" for role, n in r["processes"].items())
    print(f"\n[{label}] {args.seconds} s, processes: {procs}")
    print(f"  all operations: {r['ops_per_s']}/s")
    print(f"  {'operation':<14}{'n':>7}{'per s':>9}{'p50 ms':>10}{'p95 ms':>10}")
    for op, s in r["operations"].items():
        print(f"  {op:<14}{s['n']:>7}{s['per_s']:>9}{s['p50_ms']:>10}{s['p95_ms']:>10}")
    vis = r["visibility"]
    print(f"  new version visible elsewhere ({vis['versions_put']} versions put):")
    for method in ("get_procedure", "search"):
        v = vis[method]
        print(f"    {method:<14} seen {v['seen']:>3}   p50 {v['p50_ms']} ms   max {v['max_ms']} ms")
    print(f"  errors: {len(r['errors'])}")
    for role, op, msg in r["errors"][:20]:
        print(f"    {role}/{op}: {msg}")
    if len(r["errors"]) > 20:
        print(f"    ... {len(r['errors']) - 20} more")


# -------------------------------------------------------------------------- main


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--db", action="append", default=[], metavar="LOCATION",
                   help="a store location used as given (repeatable)")
    p.add_argument("--sqlite", action="store_true", help="a fresh SQLite file (the default)")
    p.add_argument("--postgres", action="append", default=[], metavar="URL",
                   help="a PostgreSQL server URL; the benchmark makes its own database")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--writers", type=int, default=8)
    p.add_argument("--readers", type=int, default=2)
    p.add_argument("--put-every", type=float, default=0.5, metavar="S")
    p.add_argument("--scale", type=int, nargs="?", const=100_000, default=0, metavar="N",
                   help="the scale mode: a store of N procedures (default 100000)")
    p.add_argument("--queries", type=int, default=200)
    p.add_argument("--embedder", default="default",
                   help="the embedder spec of every Memory ('none': BM25 only)")
    p.add_argument("--keep", action="store_true",
                   help="keep (and reuse) the scale store: SQLite in --cache-dir, "
                        "PostgreSQL database pmbench_scale_N")
    p.add_argument("--cache-dir", default=os.path.join(tempfile.gettempdir(), "procmem-bench"))
    p.add_argument("--json", action="store_true")
    return p.parse_args()


def main() -> None:
    args = parse()
    backends = ([("db", v) for v in args.db] + [("postgres", u) for u in args.postgres])
    if args.sqlite or not backends:
        backends.insert(0, ("sqlite", ""))
    report: dict[str, Any] = {"machine": machine(), "mode": "scale" if args.scale else "workload",
                              "embedder": args.embedder, "backends": {}}
    if not args.json:
        print(__doc__.split("\n", 1)[0])
        print(report["machine"])
        print(f"data: {data_file('train')[0]}   embedder: {args.embedder}")
    for kind, value in backends:
        label = label_of(kind, value)
        say(f"[{label}]")
        with location_of(kind, value, args) as location:
            if args.scale:
                from _backends_scale import print_scale, run_scale

                result = run_scale(location, args)
                if not args.json:
                    print_scale(label, result)
            else:
                result = run_workload(location, args)
                if not args.json:
                    print_workload(label, result, args)
        report["backends"][label] = result
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
