"""What a perfect intent step would give: procmem eval with an oracle reranker.

The dev tasks of τ-retail state their intent in paraphrase ("I won't be able to
receive it ... full refund" is a cancellation), which neither BM25 nor the small
local embedding model reads. An optional reranker (a language model,
``procmem.search.rerank``) is meant for that, but no model endpoint is reachable on the
development machine. This script measures the ceiling instead: a reranker that
*knows* each test trace's action sequence and puts the procedure with that
sequence first when it is among the 10 hits it is shown (otherwise it answers
nothing, so every hit is marked not confident). Everything else is
``procmem eval`` as is: binding, the oracle for lookups, replay against the
recorded calls.

It is an upper bound for any reranker over procmem's top 10, not a result of a
model. Run: ``.venv/bin/python benchmarks/bench_rerank_ceiling.py`` (about 1 minute).
"""

from __future__ import annotations

from collections.abc import Sequence

from _common import load, load_optional, machine

from procmem.core.model import Trace
from procmem.evaluation.evaluate import evaluate, split_holdout
from procmem.search.rerank import RerankOption

FIGURES = ("hit_at_1", "hit_at_5", "replay_exact", "automation")


class OracleReranker:
    """Knows the answer: ranks first the option whose actions are the test trace's."""

    model_id = "oracle"

    def __init__(self, test: Sequence[Trace]) -> None:
        self.want = {t.task: t.signature() for t in test}
        self.found = 0

    def rerank(self, task: str, options: Sequence[RerankOption]) -> list[str]:
        want = self.want.get(task)
        names = [o.name for o in options if o.actions == want]
        self.found += bool(names)
        return names


def run(label: str, train: list[Trace], test: list[Trace]) -> None:
    print(f"\n{label}: learn {len(train)}, test {len(test)}")
    for retriever in ("bm25", "hybrid"):
        plain = evaluate(train, test, retriever=retriever).figures()
        oracle = OracleReranker(test)
        ceiling = evaluate(train, test, retriever=retriever, reranker=oracle).figures()
        print(f"  {retriever:<7} " + "   ".join(f"{k} {plain[k]:.2f}" for k in FIGURES))
        print("  + oracle " + "   ".join(f"{k} {ceiling[k]:.2f}" for k in FIGURES)
              + f"   (procedure among the top 10 for {oracle.found} of {len(test)})")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(machine())
    train = load("train")
    dev = load_optional("dev")
    if dev:
        run("train -> dev", train, dev)
    run("split 400/100", *split_holdout(train, 100))


if __name__ == "__main__":
    main()
