"""Retrieval quality side by side: find_similar, BM25, vector and hybrid, with abstention.

Issue 3's must-show: on ``dev.jsonl`` and on the 400/100 split of
``train.jsonl`` (learn the first 400 train traces, search the last 100), hybrid
hit@1 against BM25-only and vector-only, plus the abstention figures, plus the
seed article's baseline ``find_similar``.

For each test trace its task text is searched; a hit is correct when its
procedure's action sequence equals the trace's (failed steps ignored), as in
``procmem eval``. Figures (shares in [0, 1]):

* hit@1, hit@5, MRR;
* ``abstain`` — of the test traces whose action sequence no learned procedure
  has, the share whose top hit is not confident (or that get no hit);
* ``conf`` — of the others, the share whose top hit is confident;
  ``conf+ok`` — … confident and correct.

``find_similar`` (the baseline): every procedure whose words (name, description,
demonstration tasks) share at least 2 distinct words with the task, sorted by
success rate (no procedure has runs here, so all rates tie), ties broken by
the number of shared words, then by name. It has no abstention beyond "no
procedure shares 2 words", which is what ``abstain`` shows for it.

``--calibrate`` also fits the abstention thresholds (:data:`procmem.search.retrieval.ABSTAIN`)
on held-out *train* traces only — learn the first 300, search traces 301-400 —
by a grid search that maximizes Youden's J = abstain + conf+ok - 1, and prints
the figure for every grid point; the dev traces and the last 100 train traces
are never used to choose anything.

The embedding model is the default (``procmem.search.embed.default_embedder``); its
vectors are stored in a temporary database per dataset and reused by the three
retrievers. Run: ``.venv/bin/python benchmarks/bench_retrieval.py [--calibrate] [--json]``
(about 2 minutes on 2 cores, most of it embedding ~1,000 train task texts).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import load, load_optional, machine

from procmem import Memory
from procmem.core.model import Trace
from procmem.search.bm25 import tokenize
from procmem.search.retrieval import ABSTAIN, RETRIEVERS, is_confident

RETRIEVER_ROWS = ("find_similar", *RETRIEVERS)


def find_similar(mem: Memory, task: str, *, limit: int = 5) -> list[tuple[str, tuple]]:
    """The seed article's baseline: keyword overlap >= 2 words, sorted by success rate."""
    words = set(tokenize(task))
    found = []
    for name, doc in mem.store.index_documents():
        overlap = len(words & set(tokenize(doc)))
        if overlap >= 2:
            proc = mem.get_procedure(name)
            rate = proc.success_rate if proc.success_rate is not None else 0.0
            found.append((name, (-rate, -overlap, name)))
    found.sort(key=lambda x: x[1])
    return found[:limit]


def _case(mem: Memory, trace: Trace, retriever: str,
          signatures: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    sig = trace.signature()
    findable = sig in signatures.values()
    if not trace.task.strip():
        return {"rank": None, "findable": findable, "confident": False, "structure": 0.0,
                "cosine": None, "correct": False}
    if retriever == "find_similar":
        names = [n for n, _ in find_similar(mem, trace.task)]
        rank = next((i for i, n in enumerate(names, 1) if signatures[n] == sig), None)
        return {"rank": rank, "findable": findable, "confident": bool(names),
                "structure": 0.0, "cosine": None, "correct": rank == 1}
    hits = mem.search(trace.task, limit=5, retriever=retriever)  # type: ignore[arg-type]
    rank = next((i for i, h in enumerate(hits, 1) if h.procedure.signature() == sig), None)
    top = hits[0] if hits else None
    return {
        "rank": rank, "findable": findable, "confident": bool(top and top.confident),
        "structure": top.explanation["signals"]["structure"] if top else 0.0,
        "cosine": top.explanation.get("cosine") if top else None, "correct": rank == 1,
    }


def _figures(cases: list[dict[str, Any]]) -> dict[str, Any]:
    n = len(cases) or 1
    unfindable = [c for c in cases if not c["findable"]]
    findable = [c for c in cases if c["findable"]]

    def share(xs: list[bool]) -> float | None:
        return round(sum(xs) / len(xs), 3) if xs else None

    return {
        "hit_at_1": round(sum(c["rank"] == 1 for c in cases) / n, 3),
        "hit_at_5": round(sum(c["rank"] is not None for c in cases) / n, 3),
        "mrr": round(sum(1 / c["rank"] for c in cases if c["rank"]) / n, 3),
        "abstain": share([not c["confident"] for c in unfindable]),
        "conf": share([c["confident"] for c in findable]),
        "conf_ok": share([c["confident"] and c["correct"] for c in findable]),
        "unfindable": len(unfindable),
    }


def _memory(folder: Path, name: str, train: list[Trace]) -> Memory:
    mem = Memory(folder / f"{name}.db")
    mem.learn(train)
    started = time.perf_counter()
    report = mem.reindex()
    print(f"  {name}: {len(train)} train traces -> {report['procedures']} procedures, "
          f"{report['rows']} vector rows embedded in {time.perf_counter() - started:.1f} s "
          f"({report['model_id']})")
    return mem


def _signatures(mem: Memory) -> dict[str, tuple[str, ...]]:
    return {p.name: p.signature() for p in mem.list_procedures(limit=100_000)}


def calibrate(folder: Path, train: list[Trace]) -> dict[str, float]:
    """Grid-search the abstention thresholds on train traces 301-400 (learn 1-300)."""
    mem = _memory(folder, "calibration", train[:300])
    sigs = _signatures(mem)
    cases = [_case(mem, t, "hybrid", sigs) for t in train[300:400]]
    mem.close()
    best: tuple[float, float, float] | None = None
    print("\ncalibration (learn train 1-300, search train 301-400, hybrid): Youden's J")
    print("  structure >=  cosine >=   abstain  conf+ok   J")
    for s in (0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 1.01):
        for c in (0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 1.01):
            for case in cases:
                case["confident"] = is_confident(case["structure"], case["cosine"], s, c)
            f = _figures(cases)
            j = (f["abstain"] or 0) + (f["conf_ok"] or 0) - 1
            print(f"  {s:>11.2f}  {c:>9.2f}   {f['abstain']!s:>7}  {f['conf_ok']!s:>7}  {j:.3f}")
            if best is None or j > best[0] + 1e-9:
                best = (j, s, c)
    assert best is not None
    print(f"  best: structure >= {best[1]}, cosine >= {best[2]} (J = {best[0]:.3f}); "
          f"shipped: {ABSTAIN}")
    return {"structure": best[1], "cosine": best[2], "j": round(best[0], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calibrate", action="store_true",
                        help="also fit the abstention thresholds on held-out train traces")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()
    print(machine())
    train = load("train")
    dev = load_optional("dev")
    out: dict[str, Any] = {"abstain_thresholds": ABSTAIN}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.calibrate:
            out["calibration"] = calibrate(folder, train)
        datasets = [("split 400/100", train[:-100], train[-100:])]
        if dev:
            datasets.append(("dev", train, dev))
        for label, tr, te in datasets:
            print(f"\n{label}: learn {len(tr)}, search {len(te)}")
            mem = _memory(folder, label.split()[0], tr)
            sigs = _signatures(mem)
            rows = {}
            for retriever in RETRIEVER_ROWS:
                cache = getattr(mem.embedder, "_cache", None)
                if cache is not None:
                    cache.clear()  # each retriever pays for its own query embeddings
                started = time.perf_counter()
                cases = [_case(mem, t, retriever, sigs) for t in te]
                rows[retriever] = dict(_figures(cases),
                                       ms_per_query=round(
                                           (time.perf_counter() - started) * 1000 / len(te), 1))
            mem.close()
            out[label] = rows
            unf = rows["hybrid"]["unfindable"]
            print(f"  {len(te) - unf} of {len(te)} test traces have a procedure to find")
            print(f"  {'retriever':<13} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} "
                  f"{'abstain':>8} {'conf':>6} {'conf+ok':>8} {'ms/query':>9}")
            for retriever, f in rows.items():
                print(f"  {retriever:<13} {f['hit_at_1']:>6} {f['hit_at_5']:>6} {f['mrr']:>6} "
                      f"{f['abstain']!s:>8} {f['conf']!s:>6} {f['conf_ok']!s:>8} "
                      f"{f['ms_per_query']:>9}")
            best_single = max(rows["bm25"]["hit_at_1"], rows["vector"]["hit_at_1"])
            verdict = "yes" if rows["hybrid"]["hit_at_1"] >= best_single else "NO"
            print(f"  hybrid hit@1 >= bm25 and vector: {verdict}")
    if args.json:
        json.dump(out, sys.stdout, indent=2)
        print()


if __name__ == "__main__":
    main()
