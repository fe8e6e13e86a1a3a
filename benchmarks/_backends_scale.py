"""The ``--scale N`` mode of ``bench_backends.py`` (not a benchmark itself; see its docstring).

Variant ``k`` (procedure ``<learned name>_s<k>`` with demonstration trace
``scale-s<k>``) depends on ``k`` alone, so a build resumes where the store stops.
The 1,000 added in a timed run get a fresh prefix (``x<random>``), so their texts
are new (not embedded by an earlier run); they are deleted after (their vectors
stay in the store's embedding cache, keyed by text).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from contextlib import redirect_stdout
from typing import Any

from _common import load, load_optional, pct
from bench_retrieval_latency import Varier

from procmem.core.model import Procedure, Trace
from procmem.memory import Memory
from procmem.security.limits import Limits

BATCH = 500
EXTRA = 1000
BASES = 400


def say(*parts: Any) -> None:
    print(*parts, file=sys.stderr, flush=True)


class Variants:
    """Synthetic (trace, procedure) pairs from the procedures learned on the train traces."""

    def __init__(self) -> None:
        with redirect_stdout(sys.stderr):
            train = load("train")
            dev = load_optional("dev")
        n = BASES if len(train) > BASES + 20 else len(train) * 4 // 5
        self.bases, self.held_out = train[:n], dev + train[n:]
        with Memory(":memory:", embedder=None) as mem:
            mem.learn(self.bases)
            self.learned = {p.signature(): p for p in mem.list_procedures(limit=100_000)}
        self.usable = [t for t in self.bases if t.signature() in self.learned]
        self.varier = Varier([t.task for t in self.bases], random.Random(0))

    def pair(self, k: int, prefix: str = "s") -> tuple[Trace, Procedure]:
        rng = random.Random(f"{prefix}{k}")
        base = rng.choice(self.usable)
        self.varier.rng = rng  # variant k depends on k alone
        trace = base.model_copy(update={"id": f"scale-{prefix}{k:07d}",
                                        "task": self.varier.vary(base.task)})
        proto = self.learned[base.signature()]
        proc = proto.model_copy(update={
            "name": f"{proto.name}_{prefix}{k}",
            "lineage": proto.lineage.model_copy(update={"traces": [trace.id]})})
        return trace, proc

    def queries(self, n: int) -> list[str]:
        """``n`` distinct task texts no stored procedure was made from."""
        rng = random.Random("queries")
        out = list(dict.fromkeys(t.task for t in self.held_out))[:n]
        while len(out) < n:
            base = rng.choice(self.usable)
            self.varier.rng = rng
            task = self.varier.vary(base.task)
            if task not in out:
                out.append(task)
        return out


def add(mem: Memory, variants: Variants, ks: range, prefix: str = "s") -> list[str]:
    """Store the variants ``ks`` in batches as the library stores procedures; their names."""
    names: list[str] = []
    for start in range(ks.start, ks.stop, BATCH):
        pairs = [variants.pair(k, prefix) for k in range(start, min(start + BATCH, ks.stop))]
        mem.store.put_traces([t for t, _ in pairs])
        with mem.store.transaction():
            for _, proc in pairs:
                mem.procedures.put_procedure(proc)  # what Memory.put_procedure stores
        batch = [p.name for _, p in pairs]
        mem.searcher.embed_new(batch)  # what Memory.put_procedure embeds, for a batch
        names += batch
        if prefix == "s":
            say(f"    built {start + len(pairs)} / {ks.stop}")
    return names


def timed_search(mem: Memory, task: str) -> float:
    start = time.perf_counter()
    mem.search(task)
    return time.perf_counter() - start


def open_memory(location: str, args: argparse.Namespace) -> Memory:
    embedder = None if args.embedder == "none" else args.embedder
    return Memory(location, embedder=embedder,
                  limits=Limits(max_procedures=args.scale + 10 * EXTRA))


def run_scale(location: str, args: argparse.Namespace) -> dict[str, Any]:
    n = args.scale
    say("  learning the base procedures ...")
    variants = Variants()
    out: dict[str, Any] = {"procedures": n, "shapes": len(variants.learned)}
    with open_memory(location, args) as mem:
        have = mem.store.count_procedures()
        if have > n:
            raise SystemExit(f"{location} holds {have} procedures, more than --scale {n}")
        if have:
            mem.searcher.embed_new([variants.pair(k)[1].name for k in range(max(have - BATCH, 0),
                                                                             have)])
        say(f"  store holds {have}; building {n - have} more ...")
        start = time.perf_counter()
        add(mem, variants, range(have, n))
        out["built_now"] = n - have
        out["build_s"] = round(time.perf_counter() - start, 1)
    queries = variants.queries(args.queries + 5)
    with open_memory(location, args) as mem:  # a new process's view: index loaded or built
        out["first_search_s"] = round(timed_search(mem, queries[0]), 2)
        start = time.perf_counter()  # what procmem serve / mcp do before serving
        mem.warm_index(views=True)
        out["warm_views_s"] = round(time.perf_counter() - start, 1)
        for q in queries[1:5]:
            mem.search(q)
        say(f"  {args.queries} searches ...")
        times = [timed_search(mem, q) for q in queries[5:]]
        out["search_p50_ms"] = round(pct(times, 50) * 1000, 1)
        out["search_p95_ms"] = round(pct(times, 95) * 1000, 1)
        say(f"  adding {EXTRA} more ...")
        start = time.perf_counter()
        run = f"x{uuid.uuid4().hex[:6]}"  # new texts every run: none is embedded already
        extra = add(mem, variants, range(EXTRA), prefix=run)
        out["add_1000_s"] = round(time.perf_counter() - start, 1)
        out["search_after_add_s"] = round(timed_search(mem, queries[0]), 2)
        say(f"  removing the {EXTRA} again ...")
        for name in extra:
            mem.store.delete_procedure(name)
        for k in range(EXTRA):
            mem.store.delete_trace(f"scale-{run}{k:07d}")
    return out


def print_scale(label: str, r: dict[str, Any]) -> None:
    print(f"\n[{label}] {r['procedures']} procedures ({r['shapes']} learned shapes, "
          f"one varied demonstration each)")
    print(f"  built now: {r['built_now']} in {r['build_s']} s")
    print(f"  first search of a new Memory: {r['first_search_s']} s")
    print(f"  warm_index(views=True), as the servers do before serving: {r['warm_views_s']} s")
    print(f"  Memory.search (query embedding included): p50 {r['search_p50_ms']} ms, "
          f"p95 {r['search_p95_ms']} ms")
    print(f"  add {EXTRA} more: {r['add_1000_s']} s; first search after: "
          f"{r['search_after_add_s']} s")
