"""Evaluation: how well procedural memory fits a set of traces.

Learn from train traces; for each test trace, search by its task text and
replay the top hit against a :class:`RecordedEnvironment` built from the test
trace, with params bound from the test task text and the remaining needs
answered by an :class:`Oracle` that reads the test trace itself.

Figures (all shares in [0, 1]):

* ``hit_at_1`` / ``hit_at_5`` — share of test traces whose action sequence
  (failed steps ignored) equals that of a procedure ranked 1st / in the top 5;
* ``mrr`` — mean reciprocal rank of the first correct hit (0 when none);
* ``replay_exact`` — share of test traces whose replay issued exactly the
  recorded calls (same actions, same args, same order); a test trace with no
  recorded call counts when nothing was issued;
* ``automation`` — share of the argument leaves of all issued calls that the
  oracle did not supply (literals, params bound from the task, step references);
* ``abstain_unfindable`` — share of the test traces whose action sequence no
  learned procedure has that get no confident hit (``None`` when there are none);
* ``confident_findable`` — share of the test traces that do have a procedure
  whose top hit is confident; ``confident_correct`` — … and correct.

Every test trace is replayed against its top hit, confident or not, so
``replay_exact`` and ``automation`` do not depend on the abstention threshold.

Invariant: evaluation uses its own in-memory store; nothing is written to the
caller's memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .embed import Embedder
from .memory import Memory
from .model import Execution, Trace
from .recorded import Oracle, RecordedEnvironment
from .rerank import Reranker
from .retrieval import Retriever
from .template import resolve_pointer

__all__ = ["EvalReport", "Oracle", "RecordedEnvironment", "evaluate", "split_holdout"]


def _leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(_leaves(v) for v in value) or 1
    return 1


def _under(path: str, pointer: str) -> bool:
    return pointer == path or pointer.startswith(path + "/")


def count_leaves(execution: Execution) -> tuple[int, int]:
    """``(all leaves, oracle-supplied leaves)`` over the execution's issued calls."""
    total = supplied = 0
    for run in execution.step_runs:
        if run.attempts == 0:
            continue
        total += _leaves(run.args) if run.args else 0
        for path, source in run.sources.items():
            from_oracle = source == "ask" or (
                source.startswith("param:")
                and execution.param_sources.get(source[6:]) == "answer")
            if from_oracle:
                try:
                    supplied += _leaves(resolve_pointer(run.args, path))
                except KeyError:
                    continue
    return total, supplied


@dataclass
class EvalReport:
    """Figures of one evaluation run (see the module docstring)."""

    train_traces: int
    procedures: int
    test_traces: int
    hit_at_1: float
    hit_at_5: float
    mrr: float
    replay_exact: float
    automation: float
    seconds: float
    findable: int = 0
    retriever: str = "hybrid"
    reranker: str | None = None
    abstain_unfindable: float | None = None
    confident_findable: float | None = None
    confident_correct: float | None = None
    cases: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        """The figures without the per-trace cases (the ``--json`` output)."""
        out = asdict(self)
        out.pop("cases")
        return out


def split_holdout(traces: Sequence[Trace], holdout: int) -> tuple[list[Trace], list[Trace]]:
    """First ``len - holdout`` traces for training, the last ``holdout`` for testing."""
    if not 0 < holdout < len(traces):
        from .errors import UsageError
        raise UsageError(f"--holdout must be between 1 and {len(traces) - 1}, got {holdout}")
    return list(traces[:-holdout]), list(traces[-holdout:])


def _share(values: list[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def evaluate(train: Sequence[Trace], test: Sequence[Trace], *,
             retriever: Retriever = "hybrid", embedder: Embedder | str | None = "default",
             reranker: Reranker | None = None,
             progress: Callable[[int, int], None] | None = None,
             embed_progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Learn from ``train``, then search and replay every ``test`` trace.

    Args:
        train: Traces to learn from.
        test: Held-out traces; each one's task is searched and replayed.
        retriever: ``hybrid``, ``bm25`` or ``vector`` (see :meth:`Memory.search`).
        embedder: As for :class:`Memory` (``"default"``, an embedder, or ``None``);
            not used with the ``bm25`` retriever.
        reranker: As for :class:`Memory`: a language model that reorders each
            search's top hits (``None``: none).
        progress: Called as ``progress(done, total)`` after each test trace.
        embed_progress: Called as ``progress(done, total)`` while the train
            traces' texts are embedded.

    Returns:
        An :class:`EvalReport`; ``cases`` has one dict per test trace.

    Raises:
        UsageError: ``vector`` retriever without an embedder.
        RerankError: The reranker failed.
    """
    start = time.perf_counter()
    if retriever == "bm25":
        embedder = None  # keyword-only: nothing to embed
    with Memory(":memory:", embedder=embedder, reranker=reranker) as mem:
        mem.learn(train)
        mem.reindex(progress=embed_progress)
        procedures = mem.list_procedures(limit=100_000)
        signatures = {p.signature() for p in procedures}
        h1 = h5 = rr = exact = 0.0
        total_leaves = oracle_leaves = 0
        cases = []
        unfindable: list[bool] = []
        confident: list[bool] = []
        confident_ok: list[bool] = []
        for n, trace in enumerate(test, 1):
            sig = trace.signature()
            hits = (mem.search(trace.task, limit=5, retriever=retriever)
                    if trace.task.strip() else [])
            top_confident = bool(hits) and hits[0].confident
            if sig in signatures:
                confident.append(top_confident)
                confident_ok.append(top_confident and hits[0].procedure.signature() == sig)
            else:
                unfindable.append(not top_confident)
            rank = next((i for i, h in enumerate(hits, 1)
                         if h.procedure.signature() == sig), None)
            h1 += rank == 1
            h5 += rank is not None
            rr += 1 / rank if rank else 0.0
            env = RecordedEnvironment(trace)
            case: dict[str, Any] = {
                "trace": trace.id, "actions": list(sig), "rank": rank,
                "findable": sig in signatures,
                "top": hits[0].procedure.name if hits else None,
                "confident": top_confident,
                "signals": hits[0].explanation.get("signals", {}) if hits else {},
                "cosine": hits[0].explanation.get("cosine") if hits else None,
            }
            if hits:
                proc = hits[0].procedure
                oracle = Oracle(trace, proc)
                ex = mem.replay(proc, tools=env.tools(proc.signature()), task=trace.task,
                                resolver=oracle)
                t, s = count_leaves(ex)
                total_leaves += t
                oracle_leaves += s
                case.update(status=ex.status, leaves=t, oracle_leaves=s)
            ok = env.exact()
            exact += ok
            case["exact"] = ok
            cases.append(case)
            if progress:
                progress(n, len(test))
        k = max(len(test), 1)
        return EvalReport(
            train_traces=len(train), procedures=len(procedures), test_traces=len(test),
            hit_at_1=round(h1 / k, 4), hit_at_5=round(h5 / k, 4), mrr=round(rr / k, 4),
            replay_exact=round(exact / k, 4),
            automation=round(1 - oracle_leaves / total_leaves, 4) if total_leaves else 0.0,
            seconds=round(time.perf_counter() - start, 3),
            findable=sum(1 for t in test if t.signature() in signatures),
            retriever=retriever if mem.embedder is not None else "bm25",
            reranker=reranker.model_id if reranker is not None else None,
            abstain_unfindable=_share(unfindable),
            confident_findable=_share(confident),
            confident_correct=_share(confident_ok),
            cases=cases,
        )
