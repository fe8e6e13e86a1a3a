"""Evaluation: how well procedural memory fits a set of traces, and how safely.

Learn from train traces; for each test trace, search by its task text and
replay the top hit against a :class:`RecordedEnvironment` built from the test
trace, with params bound from the test task text and the remaining needs
answered by an :class:`Oracle` that reads the test trace itself. Every test
trace gets exactly one replay (of its top hit); the figures below read that
replay in two ways.

**Every replay** (independent of confidence, as before):

* ``hit_at_1`` / ``hit_at_5`` — share of test traces whose action sequence
  (failed steps ignored) a procedure ranked 1st / in the top 5 can make
  (:meth:`procmem.core.model.Procedure.matches`: its steps, one option of each choice,
  optional reads in or out);
* ``mrr`` — mean reciprocal rank of the first correct hit (0 when none);
* ``replay_exact`` — share of test traces whose replay issued exactly the
  recorded calls (same actions, same args, same order); a test trace with no
  recorded call counts when nothing was issued;
* ``automation`` — share of the argument leaves of all issued calls that the
  oracle did not supply (literals, params bound from the task, step references);
* ``abstain_unfindable`` — share of the test traces whose action sequence no
  learned procedure has that get no confident hit (``None`` when there are none);
* ``confident_findable`` — share of the test traces that do have a procedure
  whose top hit is confident; ``confident_correct`` — … and has their sequence.

**An agent that trusts procmem** replays only some of those replays: the top hit
when it is ``confident``; when it is not, the agent asks to confirm the choice and
the oracle confirms only a hit with the trace's action sequence (then the same
replay runs); otherwise nothing runs (``paused_at_selection``). Over the replays
the agent runs:

* ``silent_errors`` — issued calls (step runs that called their tool) with no
  oracle-supplied value that differ from their aligned recorded call (the k-th
  successful recorded step with the same action) or have none; a call holding an
  oracle value is not silent (the agent was asked). A call of an *optional* read
  with no aligned recorded call is not counted either: there is no right value to
  differ from, it changes nothing, and no later step uses its output (a call that
  aligns and differs still counts). ``silent_error_cases`` are the
  test traces with one, and each case lists the wrong calls and args;
* ``supplied_precision`` — by value source (``task``, ``step``, ``selection``,
  ``literal``, ``asked``; see :mod:`evaluation.metrics`): ``{"right", "total", "precision"}``,
  a value being right when it equals the aligned recorded call's value at the
  same JSON Pointer.

**Confidence**: a top hit is *right* when its action sequence is the trace's and
every value it bound from the task (``explanation["bound"]``) equals the value the
trace used where the procedure sends it. ``confident_precision`` — share of the
confident top hits that are right; ``confident_coverage`` — share of the findable
test traces (sequence learned) whose top hit is confident and right;
``reliability`` — predicted probability (``hit.confidence``; 1 / 0 for a confident /
not confident hit without one) vs the observed rate of right hits, by bins. A right
hit can still send a silent error from a literal or a step reference.

**Baselines**, same run, same learned procedures: ``first_stage_hit_at_1`` — hit@1
of the first stage alone (the hit with ``ranks["first_stage"] == 1``);
``overlap_hit_at_1`` — hit@1 of ranking by distinct words shared with the task
(:class:`procmem.evaluation.metrics.OverlapRanker`).

Invariants: evaluation uses its own in-memory stores, so nothing is written to
the caller's memory; replays run in a separate scratch memory, so no replay
changes what a later search returns (per-trace results do not depend on the
order of the test traces).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..core.model import Execution, Hit, Trace
from ..core.template import resolve_pointer
from ..learning.recorded import Oracle, RecordedEnvironment
from ..memory import Memory
from ..search.embed import Embedder, Progress, default_embedder
from ..search.rerank import Reranker
from ..search.retrieval import Retriever
from .metrics import (
    SOURCES,
    OverlapRanker,
    bound_mismatches,
    reliability_table,
    silent_errors,
    supplied_values,
)

__all__ = ["EvalReport", "Oracle", "RecordedEnvironment", "count_leaves", "evaluate",
           "leave_one_out", "split_holdout"]


def _leaves(value: Any) -> int:
    if isinstance(value, dict):
        return sum(_leaves(v) for v in value.values()) or 1
    if isinstance(value, list):
        return sum(_leaves(v) for v in value) or 1
    return 1


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
    """Figures of one evaluation run (see the module docstring).

    With leave-one-out (:func:`leave_one_out`), ``folds`` is the number of folds,
    ``train_traces`` the traces each fold learns from and ``procedures`` the mean
    number of procedures per fold (rounded).
    """

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
    first_stage_hit_at_1: float | None = None
    overlap_hit_at_1: float = 0.0
    silent_errors: int = 0
    silent_error_cases: list[str] = field(default_factory=list)
    paused_at_selection: int = 0
    confident_precision: float | None = None
    confident_coverage: float | None = None
    reliability: list[dict[str, Any]] = field(default_factory=list)
    supplied_precision: dict[str, dict[str, Any]] = field(default_factory=dict)
    folds: int | None = None
    cases: list[dict[str, Any]] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        """The figures without the per-trace cases (the ``--json`` output)."""
        out = asdict(self)
        out.pop("cases")
        return out


def split_holdout(traces: Sequence[Trace], holdout: int) -> tuple[list[Trace], list[Trace]]:
    """First ``len - holdout`` traces for training, the last ``holdout`` for testing."""
    if not 0 < holdout < len(traces):
        from ..core.errors import UsageError
        raise UsageError(f"--holdout must be between 1 and {len(traces) - 1}, got {holdout}")
    return list(traces[:-holdout]), list(traces[-holdout:])


def _share(values: Sequence[bool]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


class _CachedEmbedder:
    """An embedder that embeds each distinct text once (leave-one-out re-learns the
    same texts in every fold); same ``model_id`` and vectors as the one it wraps."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.vectors: dict[str, np.ndarray] = {}

    def embed(self, texts: Sequence[str], *, progress: Progress | None = None) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        if missing:
            rows = self.inner.embed(missing, progress=progress)
            self.vectors.update(zip(missing, rows, strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.stack([self.vectors[t] for t in texts]),
                                    dtype=np.float32)


class _Fold:
    """One learned memory and what judging a test trace against it needs.

    Replays run in ``scratch``, a separate in-memory memory that is never
    searched, so they leave no execution or evidence in ``mem`` (whose
    reliability would otherwise re-weight later searches).
    """

    def __init__(self, mem: Memory, scratch: Memory, train: Sequence[Trace],
                 retriever: Retriever, embed_progress: Progress | None = None, *,
                 calibrate: bool = True) -> None:
        self.mem, self.scratch, self.retriever = mem, scratch, retriever
        mem.learn(train, progress=embed_progress)  # embeds the procedures' search texts
        mem.reindex(progress=embed_progress)
        if calibrate:  # on cross-validation folds of the train traces only
            mem.calibrate(retrievers=[retriever if mem.embedder is not None else "bm25"])
        procedures = mem.list_procedures(limit=100_000)
        self.procedures = len(procedures)
        self.learned = procedures
        self.by_name = {p.name: p for p in procedures}
        active = [p for p in procedures if p.status == "active"]
        self.overlap = OverlapRanker(active, {t.id: t.task for t in train})

    def _first_stage_top(self, task: str, hits: list[Hit]) -> Hit | None | bool:
        """The hit ranked first by the first stage alone (``None``: no hit); ``False``
        when the hits do not carry ``ranks["first_stage"]``."""
        if not hits:
            return None
        if not any("first_stage" in h.ranks for h in hits):
            return False
        found = next((h for h in hits if h.ranks.get("first_stage") == 1), None)
        if found is None:  # re-ranked below the top hits: look deeper, without a reranker
            more = self.mem.search(task, limit=100, retriever=self.retriever, rerank=False)
            found = next((h for h in more if h.ranks.get("first_stage") == 1), None)
        return found

    def judge(self, trace: Trace) -> dict[str, Any]:
        """Search for ``trace``'s task, replay the top hit, and judge it (one case)."""
        sig = trace.signature()
        hits = (self.mem.search(trace.task, limit=5, retriever=self.retriever)
                if trace.task.strip() else [])
        rank = next((i for i, h in enumerate(hits, 1) if h.procedure.matches(sig)), None)
        first = self._first_stage_top(trace.task, hits)
        overlap = self.overlap.top(trace.task) if trace.task.strip() else None
        top = hits[0] if hits else None
        case: dict[str, Any] = {
            "trace": trace.id, "actions": list(sig), "rank": rank,
            "findable": any(p.matches(sig) for p in self.learned),
            "top": top.procedure.name if top else None,
            "confident": bool(top and top.confident),
            "signals": top.explanation.get("signals", {}) if top else {},
            "cosine": top.explanation.get("cosine") if top else None,
            "first_stage_top": first.procedure.name if isinstance(first, Hit) else None,
            "first_stage_correct": (None if first is False else isinstance(first, Hit)
                                    and first.procedure.matches(sig)),  # None: unknown
            "overlap_top": overlap[0] if overlap else None,
            "overlap_correct": overlap is not None and self.by_name[overlap[0]].matches(sig),
        }
        env = RecordedEnvironment(trace)
        if top is not None:
            case.update(self._replay(trace, top, env))
        else:
            case.update(selection=None, right=False, predicted=None)
        case["exact"] = env.exact()
        return case

    def _replay(self, trace: Trace, top: Hit, env: RecordedEnvironment) -> dict[str, Any]:
        proc = top.procedure
        ex = self.scratch.replay(proc, tools=env.tools(proc.signature()), task=trace.task,
                                 resolver=Oracle(trace, proc))
        leaves, oracle_leaves = count_leaves(ex)
        same = proc.matches(trace.signature())
        wrong_bound = bound_mismatches(proc, top.explanation.get("bound", {}), trace)
        confidence = getattr(top, "confidence", None)
        out: dict[str, Any] = {
            "status": ex.status, "leaves": leaves, "oracle_leaves": oracle_leaves,
            "right": same and not wrong_bound, "wrong_bound": wrong_bound,
            "predicted": float(top.confident) if confidence is None else float(confidence),
            "selection": ("confident" if top.confident else
                          "confirmed" if same else "paused_at_selection"),
        }
        if out["selection"] != "paused_at_selection":
            out["silent_errors"] = silent_errors(ex, proc, trace)
            out["supplied"] = supplied_values(ex, proc, trace)
        return out


def _report(cases: list[dict[str, Any]], *, train_traces: int, procedures: int,
            seconds: float, retriever: str, reranker: str | None,
            folds: int | None = None) -> EvalReport:
    """The figures of the judged cases (see the module docstring)."""
    k = max(len(cases), 1)
    ranks = [c["rank"] for c in cases]
    total_leaves = sum(c.get("leaves", 0) for c in cases)
    oracle_leaves = sum(c.get("oracle_leaves", 0) for c in cases)
    findable = [c for c in cases if c["findable"]]
    confident = [c for c in cases if c["confident"]]
    first_stage = [c["first_stage_correct"] for c in cases]
    supplied: dict[str, list[int]] = {s: [0, 0] for s in SOURCES}
    for c in cases:
        for source, (right, total) in c.get("supplied", {}).items():
            counts = supplied.setdefault(source, [0, 0])
            counts[0] += right
            counts[1] += total
    silent = [c for c in cases if c.get("silent_errors")]
    return EvalReport(
        train_traces=train_traces, procedures=procedures, test_traces=len(cases),
        hit_at_1=round(sum(r == 1 for r in ranks) / k, 4),
        hit_at_5=round(sum(r is not None for r in ranks) / k, 4),
        mrr=round(sum(1 / r for r in ranks if r) / k, 4),
        replay_exact=round(sum(c["exact"] for c in cases) / k, 4),
        automation=round(1 - oracle_leaves / total_leaves, 4) if total_leaves else 0.0,
        seconds=round(seconds, 3), findable=len(findable), retriever=retriever,
        reranker=reranker,
        abstain_unfindable=_share([not c["confident"] for c in cases if not c["findable"]]),
        confident_findable=_share([c["confident"] for c in findable]),
        confident_correct=_share([c["confident"] and c["rank"] == 1 for c in findable]),
        first_stage_hit_at_1=(None if None in first_stage
                              else round(sum(first_stage) / k, 4)),
        overlap_hit_at_1=round(sum(c["overlap_correct"] for c in cases) / k, 4),
        silent_errors=sum(len(c["silent_errors"]) for c in silent),
        silent_error_cases=[c["trace"] for c in silent],
        paused_at_selection=sum(c.get("selection") == "paused_at_selection" for c in cases),
        confident_precision=_share([c["right"] for c in confident]),
        confident_coverage=_share([c["confident"] and c["right"] for c in findable]),
        reliability=reliability_table([(c["predicted"], c["right"]) for c in cases
                                       if c.get("predicted") is not None]),
        supplied_precision={s: {"right": r, "total": t,
                                "precision": round(r / t, 4) if t else None}
                            for s, (r, t) in supplied.items()},
        folds=folds, cases=cases,
    )


def evaluate(train: Sequence[Trace], test: Sequence[Trace], *,
             retriever: Retriever = "hybrid", embedder: Embedder | str | None = "default",
             reranker: Reranker | None = None,
             progress: Callable[[int, int], None] | None = None,
             embed_progress: Callable[[int, int], None] | None = None,
             calibrate: bool = True) -> EvalReport:
    """Learn from ``train``, then search, replay and judge every ``test`` trace.

    Args:
        train: Traces to learn from.
        test: Held-out traces; each one's task is searched and its top hit replayed.
        retriever: ``hybrid``, ``bm25`` or ``vector`` (see :meth:`Memory.search`).
        embedder: As for :class:`Memory` (``"default"``, an embedder, or ``None``);
            not used with the ``bm25`` retriever.
        reranker: As for :class:`Memory`: a language model that reorders each
            search's top hits (``None``: none).
        progress: Called as ``progress(done, total)`` after each test trace.
        embed_progress: Called as ``progress(done, total)`` while the train
            traces' texts are embedded.
        calibrate: Calibrate confidence on cross-validation folds of ``train``
            first (:meth:`Memory.calibrate`), as a memory in use would be; with
            ``False`` the fixed abstention rule decides ``confident``.

    Returns:
        An :class:`EvalReport`; ``cases`` has one dict per test trace, in order.

    Raises:
        UsageError: ``vector`` retriever without an embedder.
        RerankError: The reranker failed.
    """
    start = time.perf_counter()
    if retriever == "bm25":
        embedder = None  # keyword-only: nothing to embed
    with (Memory(":memory:", embedder=embedder, reranker=reranker) as mem,
          Memory(":memory:", embedder=None) as scratch):
        fold = _Fold(mem, scratch, train, retriever, embed_progress, calibrate=calibrate)
        cases = []
        for n, trace in enumerate(test, 1):
            cases.append(fold.judge(trace))
            if progress:
                progress(n, len(test))
        return _report(cases, train_traces=len(train), procedures=fold.procedures,
                       seconds=time.perf_counter() - start,
                       retriever=retriever if mem.embedder is not None else "bm25",
                       reranker=reranker.model_id if reranker is not None else None)


def leave_one_out(traces: Sequence[Trace], *, retriever: Retriever = "hybrid",
                  embedder: Embedder | str | None = "default",
                  reranker: Reranker | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  calibrate: bool = True) -> EvalReport:
    """Leave-one-out: for each trace, learn from all the others and judge it.

    Each fold learns into a new in-memory memory. Texts are embedded once across
    folds (the vectors of a text do not depend on the fold).

    Args:
        traces: At least 2 traces.
        retriever / embedder / reranker / calibrate: As for :func:`evaluate`
            (each fold is calibrated on its own train traces).
        progress: Called as ``progress(done, total)`` after each fold.

    Returns:
        An :class:`EvalReport` over all folds (one case per trace, in order);
        ``folds`` is ``len(traces)``.

    Raises:
        UsageError: Fewer than 2 traces, or ``vector`` retriever without an embedder.
        RerankError: The reranker failed.
    """
    if len(traces) < 2:
        from ..core.errors import UsageError
        raise UsageError(f"leave-one-out needs at least 2 traces, got {len(traces)}")
    start = time.perf_counter()
    if retriever == "bm25":
        embedder = None
    elif embedder == "default":
        embedder = default_embedder()
    shared = _CachedEmbedder(embedder) if isinstance(embedder, Embedder) else None
    cases = []
    procedures = 0
    with Memory(":memory:", embedder=None) as scratch:
        for n, trace in enumerate(traces):
            others = [*traces[:n], *traces[n + 1:]]
            with Memory(":memory:", embedder=shared, reranker=reranker) as mem:
                fold = _Fold(mem, scratch, others, retriever, calibrate=calibrate)
                cases.append(fold.judge(trace))
                procedures += fold.procedures
            if progress:
                progress(n + 1, len(traces))
    return _report(cases, train_traces=len(traces) - 1,
                   procedures=round(procedures / len(traces)),
                   seconds=time.perf_counter() - start,
                   retriever=retriever if shared is not None else "bm25",
                   reranker=reranker.model_id if reranker is not None else None,
                   folds=len(traces))
