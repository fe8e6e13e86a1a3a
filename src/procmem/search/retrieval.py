"""Ranking procedures for a task: first-stage candidates, fusion, re-ranking, abstention.

First stage (:func:`first_stage`), by ``retriever``:

* ``bm25`` — keyword candidates: BM25 (Robertson & Zaragoza 2009, "The
  Probabilistic Relevance Framework: BM25 and Beyond", see :mod:`procmem.search.bm25`)
  over names, descriptions, actions and demonstration tasks;
* ``vector`` — dense candidates: cosine of the task's embedding to each
  procedure's nearest vector row (its card or a demonstration task);
* ``hybrid`` — both lists fused by their scores, each divided by its list's best
  (:func:`fuse`), so a clear lead in both lists stays clear; reciprocal rank
  fusion (``sum 1 / (k + rank)``, ``k = 60``, :data:`RRF_K`; Cormack, Clarke &
  Büttcher, SIGIR 2009) only breaks exact ties.

Each candidate's first-stage score divided by the best is its ``relevance``.
Action words then order the list: when the task names an action of the tools in
play ("return", "cancel") and some candidates' tools do it, the candidates whose
tools do none of the named actions move after the others (:func:`_verb_tiers`;
a stable partition, so the first-stage order holds within each tier).

Re-ranking (:func:`rank`), three signals in [0, 1]:

* **structure** — how well the procedure's learned extractors explain the task:
  ``fit`` (share of its params bound from the text, anchored ones counting
  fully) times ``coverage`` (share of all value spans that *any* candidate's
  anchored extractors claim in the text that this procedure binds: spans, not
  values, so a task naming the same order in two requests is covered fully only
  by a procedure that handles both) times ``in order`` (steps' first anchored
  values in task order). A task with two "Cancel order #W…" clauses is covered
  fully only by a procedure with two cancel steps.
* **relevance** — the first-stage score, normalized as above;
* **prior** — ``log(1 + demonstrations)``, so a recipe seen 90 times beats a
  one-off when nothing else separates them.

``score = (0.8·structure + 0.15·relevance + 0.05·prior) · (0.75 + 0.5·reliability)``:
the weights were tuned on the 400/100 split of the τ-retail train traces;
reliability is the posterior mean of success (0.5 without evidence, a factor of 1).

Abstention: a hit is ``confident`` when its structure or its cosine to the
nearest demonstration clears the thresholds in :data:`ABSTAIN`, calibrated on
held-out traces (``benchmarks/bench_retrieval.py --calibrate``).

Invariant: the ranking is deterministic (ties broken by name).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Any, Literal

from ..core.errors import UsageError
from ..core.model import Hit, Procedure
from ..induction.bind import Binding, BindSpec, bind_spec
from .calibration import Calibration, features_of
from .rankcache import bind_all, intern_specs, params_of

__all__ = ["ABSTAIN", "RETRIEVERS", "RRF_K", "RRF_WEIGHTS", "WEIGHTS", "Candidate", "RankView",
           "action_verb", "first_stage", "fuse", "is_confident", "named_verbs", "rank",
           "reliability_factor", "rrf", "stem", "step_params", "verb_conflict"]

WEIGHTS = {"structure": 0.8, "relevance": 0.15, "prior": 0.05}
_EVIDENCE = 2
"""Anchored values a procedure with two or more learnable params must bind for its
structure to count fully (one value, an order id any order procedure could take,
is thin evidence and counts half); also the anchored values, corroborated beyond
one demonstration, that re-ranking needs to overrule the first stage."""
RRF_K = 60
"""The RRF constant, the paper's 60, confirmed on held-out train traces with the
default embedder (learn the first 300 τ-retail train traces, search the next 100,
structure signal off so the first stage decides: hybrid hit@1 0.52 / 0.55 / 0.56 /
0.56 / 0.57 for k = 1 / 5 / 10 / 20 / 60)."""
RETRIEVERS = ("bm25", "vector", "hybrid")
RRF_WEIGHTS = (1.0, 1.0)
"""RRF weights of the keyword and the vector list (see ``benchmarks/bench_retrieval.py``)."""
Retriever = Literal["bm25", "vector", "hybrid"]

ABSTAIN: dict[str, float] = {"structure": 0.9, "cosine": 0.85}
"""A hit is confident when ``structure >= ABSTAIN["structure"]`` or its cosine to the
nearest demonstration is ``>= ABSTAIN["cosine"]``. Calibrated on held-out train traces
(learn τ-retail train 1-300, search 301-400; grid search maximizing Youden's J =
abstained unfindable + confident-and-correct findable - 1; J = 0.833):
``benchmarks/bench_retrieval.py --calibrate``."""


@dataclass(frozen=True)
class RankView:
    """What search reads of a procedure version to filter and re-rank it.

    A few hundred bytes instead of the whole :class:`~procmem.core.model.Procedure`
    (about 13 KB in memory), so a search index can keep one per procedure.

    Attributes:
        name / version: The version's identity.
        params: What binding reads of each param (:class:`~procmem.induction.bind.BindSpec`).
        step_params: The ``$param`` names each step's args reference, in step order.
        demonstrations: How many traces it was learned from.
        tags / namespace: For the search filters.
    """

    name: str
    version: int
    params: tuple[BindSpec, ...]
    step_params: tuple[tuple[str, ...], ...]
    demonstrations: int
    tags: frozenset[str]
    namespace: str
    verbs: frozenset[str] = frozenset()

    @classmethod
    def of(cls, procedure: Procedure) -> RankView:
        """The view of ``procedure``."""
        return cls(procedure.name, procedure.version,
                   intern_specs(tuple(bind_spec(p) for p in procedure.params)),
                   step_params(procedure),
                   len(procedure.lineage.traces), frozenset(procedure.tags),
                   procedure.namespace,
                   frozenset(v for s in procedure.steps if (v := action_verb(s.action))))


@dataclass
class Candidate:
    """A procedure to rank, with its first-stage evidence and reliability.

    Attributes:
        procedure: The current version, or ``None`` when ``view`` is given (it
            is then loaded for the hits only, see :func:`rank`).
        relevance: First-stage score over the best one, 0-1.
        reliability: Posterior mean of success, 0-1.
        bm25: BM25 score (0 when not a keyword candidate).
        cosine: Cosine to the nearest vector row (``None`` when not a vector candidate).
        ranks: 1-based rank in each first-stage list (``bm25``, ``vector``).
        nearest: Text of the nearest vector row (a demonstration task or the card).
        view: What ranking reads of it (computed from ``procedure`` when ``None``).
    """

    procedure: Procedure | None = None
    relevance: float = 0.0
    reliability: float = 0.5
    bm25: float = 0.0
    cosine: float | None = None
    ranks: dict[str, int] = field(default_factory=dict)
    nearest: str | None = None
    view: RankView | None = None

    def rank_view(self) -> RankView:
        """``view``, or the view of ``procedure``.

        Raises:
            UsageError: Neither is given.
        """
        if self.view is not None:
            return self.view
        if self.procedure is None:
            raise UsageError("a candidate needs a procedure or a view")
        return RankView.of(self.procedure)


def rrf(rankings: Sequence[Sequence[str]], *, k: int = RRF_K,
        weights: Sequence[float] | None = None) -> dict[str, float]:
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009), optionally weighted.

    Args:
        rankings: Ranked lists of keys, best first.
        k: The smoothing constant (60 in the paper; :data:`RRF_K` here).
        weights: One weight per list (default 1 each).

    Returns:
        ``{key: sum over lists of weight / (k + rank)}`` (rank 1-based).

    Raises:
        UsageError: ``weights`` does not have one weight per list.
    """
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise UsageError(f"rrf needs one weight per ranking, got {len(weights)} "
                         f"for {len(rankings)}")
    fused: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        for i, key in enumerate(ranking, 1):
            fused[key] = fused.get(key, 0.0) + weight / (k + i)
    return fused


def fuse(keyword: Sequence[tuple[str, float]], vector: Sequence[tuple[str, float, str]], *,
         weights: Sequence[float] = RRF_WEIGHTS) -> dict[str, float]:
    """Normalized-score fusion of the keyword and the vector list, RRF as the tie-break.

    Each list's scores are divided by that list's best (max normalization,
    CombSUM of Fox & Shaw, TREC-2 1994; cf. Lee, SIGIR 1997), weighted and
    summed, so a clear lead keeps its size: BM25 7.5 vs 1.1 and cosine 0.77 vs
    0.31 fuse to 2.0 vs 0.55, where reciprocal rank fusion (Cormack et al.,
    SIGIR 2009) would give "rank 1 in both" 0.033 and "rank 2 in both" 0.032.
    RRF is added with a weight of 1e-6, which only breaks exact ties.

    Args:
        keyword: ``[(name, bm25)]`` best first.
        vector: ``[(name, cosine, nearest text)]`` best first.
        weights: Weights of the keyword and the vector list.

    Returns:
        ``{name: fused score}`` (0 to ``sum(weights)``, plus the tie-break).
    """
    w_kw, w_vec = weights
    tie = rrf([[n for n, _ in keyword], [n for n, _, _ in vector]], weights=weights)
    out = {n: 1e-6 * x for n, x in tie.items()}
    for w, scored in ((w_kw, [(n, sc) for n, sc in keyword]),
                      (w_vec, [(n, c) for n, c, _ in vector])):
        if not scored:
            continue
        hi = max(sc for _, sc in scored)
        lo = min(min(sc for _, sc in scored), 0.0)
        if hi > lo:
            for n, sc in scored:
                out[n] += w * (sc - lo) / (hi - lo)
    return out


def first_stage(keyword: Sequence[tuple[str, float]],
                vector: Sequence[tuple[str, float, str]], retriever: Retriever, *,
                weights: tuple[float, float] | None = None) -> list[dict[str, Any]]:
    """Merge the first-stage lists into candidate facts, best first.

    Args:
        keyword: ``[(name, bm25)]`` best first.
        vector: ``[(name, cosine, nearest text)]`` best first.
        retriever: ``bm25``, ``vector`` or ``hybrid`` (see the module docstring).
        weights: RRF weights of the keyword and the vector list (default
            :data:`RRF_WEIGHTS`).

    Returns:
        ``[{"name", "relevance", "bm25", "cosine", "ranks", "nearest"}]`` by
        descending first-stage score (ties by name).
    """
    kw = {n: (i, s) for i, (n, s) in enumerate(keyword, 1)}
    vec = {n: (i, c, t) for i, (n, c, t) in enumerate(vector, 1)}
    if retriever == "bm25":
        scores = {n: max(s, 0.0) for n, s in keyword}
    elif retriever == "vector":
        scores = {n: max(c, 0.0) for n, c, _ in vector}
    else:
        scores = fuse(keyword, vector, weights=weights or RRF_WEIGHTS)
    best = max(scores.values(), default=0.0) or 1.0
    out = []
    for name in sorted(scores, key=lambda n: (-scores[n], n)):
        ranks = {}
        if name in kw:
            ranks["bm25"] = kw[name][0]
        if name in vec:
            ranks["vector"] = vec[name][0]
        out.append({
            "name": name, "relevance": scores[name] / best,
            "bm25": kw[name][1] if name in kw else 0.0,
            "cosine": vec[name][1] if name in vec else None,
            "nearest": vec[name][2] if name in vec else None,
            "ranks": ranks,
        })
    return out


_Row = tuple[float, "Candidate", RankView, Binding, dict[str, float]]


def _supported_lead(row: _Row, first: _Row) -> bool:
    """Whether ``row`` may rank above ``first``, the first stage's choice.

    Only on supported evidence: its structure is higher and at least 0.5 (a
    partial fit is no reason to overrule the first stage), from at least
    :data:`_EVIDENCE` anchored values whose extractors more than one demonstration
    (or corpus example) supports. Otherwise the first stage's choice stays first,
    and is not confident (the signals disagree).
    """
    view, binding = row[2], row[3]
    support = {spec.name: spec.extractor.support for spec in view.params
               if spec.extractor is not None}
    backed = sum(1 for name in binding.anchored if support.get(name, 0) != 1)
    structure = row[4]["structure"]
    return backed >= _EVIDENCE and structure >= 0.5 and structure > first[4]["structure"]


def _by_signal(signal: str,
               row: tuple[float, Candidate, RankView, Binding, dict[str, float]]
               ) -> tuple[float, str]:
    return -row[4][signal], row[2].name


def step_params(procedure: Procedure) -> tuple[tuple[str, ...], ...]:
    """The ``$param`` names each step's args reference, in step order."""
    return tuple(tuple(_params_of(step.args)) for step in procedure.steps)


_VERB_SPLIT = re.compile(r"[_\-.:/\s]+|(?<=[a-z])(?=[A-Z])")
_WORDS = re.compile(r"[A-Za-z]+")


@lru_cache(maxsize=16384)
def stem(word: str) -> str:
    """A crude suffix-stripping stem (lower case; ``-ing``, ``-ed``, ``-es``, ``-s``, ``-e``
    and a doubled final consonant): "cancelled", "cancels" and "cancel" meet."""
    w = word.lower()
    for suffix in ("ing", "ed", "es", "s", "e"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 4:
            w = w[: -len(suffix)]
            break
    if len(w) >= 5 and w[-1] == w[-2] and w[-1] not in "aeiou":
        w = w[:-1]
    return w


@lru_cache(maxsize=4096)
def action_verb(action: str) -> str | None:
    """The stemmed verb of a tool name: its first word (``cancel_pending_order`` ->
    ``cancel``, ``procedure:refund_order`` -> ``refund``); ``None`` for a name
    whose first word is shorter than 3 letters."""
    name = action.split(":", 1)[1] if action.startswith("procedure:") else action
    words = [w for w in _VERB_SPLIT.split(name) if w]
    return stem(words[0]) if words and len(words[0]) >= 3 and words[0].isalpha() else None


def named_verbs(task: str, universe: frozenset[str]) -> frozenset[str]:
    """The verbs of ``universe`` (stemmed, see :func:`action_verb`) that ``task`` names."""
    return frozenset(w for w in map(stem, set(_WORDS.findall(task))) if w in universe)


def verb_conflict(task: str, verbs: frozenset[str], universe: frozenset[str]) -> bool:
    """Whether the task names an action verb, but none of the procedure's.

    ``universe`` is every verb of the tools in play (:func:`action_verb` of each
    candidate's actions). "Return order #W1 because no longer needed" names
    ``return``; a procedure that only cancels is then not a confident match,
    however well its params bind ("two procedures one word apart").
    """
    named = named_verbs(task, universe)
    return bool(named) and not (named & verbs)


def _verb_tiers(task: str, candidates: Sequence[Candidate]
                ) -> tuple[list[Candidate], list[RankView], frozenset[str]]:
    """The first stage's candidates with the ones in a verb conflict moved after the rest.

    When the task names action verbs of the tools in play ("return the skateboard")
    and some candidates' tools do the named action, a candidate whose tools do none
    of them (exchange) is not the first stage's choice, however close its words
    (:func:`verb_conflict`). A stable partition: the order within each tier is the
    first stage's. Nothing moves when no candidate names a task verb, or all do.

    Returns:
        ``(candidates, views, named)``: the first two in the new first-stage order;
        ``named``, the verbs of the tools in play that the task names.
    """
    views = [c.rank_view() for c in candidates]
    universe = frozenset().union(*(v.verbs for v in views))
    named = named_verbs(task, universe)
    if not named or not candidates[0].ranks:
        return list(candidates), views, named
    conflict = [not (named & v.verbs) for v in views]
    if all(conflict) or not any(conflict):
        return list(candidates), views, named
    order = sorted(range(len(views)), key=lambda i: conflict[i])
    return [candidates[i] for i in order], [views[i] for i in order], named


def _in_order(params: tuple[tuple[str, ...], ...], b: Binding) -> float:
    """Share of consecutive steps whose anchored values appear in the task in step order (0-1).

    A step is placed by the params it is the first to use: a param reused by a
    later step (the email looked up in step 1 and written to in step 3) says
    nothing about where that later step's request sits in the text.
    """
    firsts: list[int] = []
    for names in _first_uses(params):
        starts = [b.spans[name][0] for name in names if name in b.anchored]
        if starts:
            firsts.append(min(starts))
    if len(firsts) < 2:
        return 1.0
    ok = sum(1 for a, z in zip(firsts, firsts[1:], strict=False) if a <= z)
    return ok / (len(firsts) - 1)


@lru_cache(maxsize=65536)
def _first_uses(params: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    """Each step's params that no earlier step used (cached: views share them)."""
    seen: set[str] = set()
    out = []
    for names in params:
        out.append(tuple(n for n in names if n not in seen))
        seen.update(names)
    return tuple(out)


def _params_of(args: object) -> list[str]:
    return params_of(args)


def reliability_factor(reliability: float) -> float:
    """The score factor of a reliability (posterior mean of success, 0-1): 0.75-1.25, 1 at 0.5."""
    return 0.75 + 0.5 * reliability


def is_confident(structure: float, cosine: float | None, min_structure: float | None = None,
                 min_cosine: float | None = None) -> bool:
    """The abstention rule: confident when structure or cosine clears its threshold.

    Args:
        structure: The hit's structure signal, 0-1.
        cosine: Its cosine to the nearest vector row (``None``: not a vector candidate).
        min_structure / min_cosine: Thresholds (default :data:`ABSTAIN`).
    """
    s = ABSTAIN["structure"] if min_structure is None else min_structure
    c = ABSTAIN["cosine"] if min_cosine is None else min_cosine
    return structure >= s or (cosine is not None and cosine >= c)


def rank(task: str, candidates: Sequence[Candidate], *, limit: int = 5,
         load: Callable[[str], Procedure] | None = None,
         load_many: Callable[[Sequence[str]], Mapping[str, Procedure]] | None = None,
         calibration: Calibration | None = None) -> list[Hit]:
    """Re-rank first-stage candidates for ``task`` (see the module docstring).

    Args:
        task: The new task's text.
        candidates: Procedures to rank, with their first-stage evidence.
        limit: Maximum hits returned.
        load: Loads a procedure's current version by name, for the hits whose
            candidate has a view and no procedure.
        load_many: Loads those hits' procedures at once, before ``load`` is
            asked (one store read instead of one per hit); names it leaves out
            go to ``load``.

    Returns:
        Hits by descending ``score``; ``ranks`` holds the 1-based rank of the
        hit in each first-stage list and under each signal; ``explanation``
        holds the signals, the params bound from the task, the cosine, the
        nearest demonstration and the calibration features; ``confidence`` is
        ``calibration``'s probability and ``confident`` its threshold (without
        a calibration: no probability, and :data:`ABSTAIN` decides).
        ``ranks["first_stage"]`` is the position in ``candidates``.

    Raises:
        UsageError: A candidate has neither a procedure nor a view, or a hit's
            candidate has no procedure and ``load`` is not given.
    """
    if not candidates:
        return []
    candidates, views, named = _verb_tiers(task, candidates)
    bindings = bind_all(views, task)  # one binding per distinct spec set (shared: read only)
    claims: set[tuple[int, int]] = set()
    for b in bindings:
        claims.update(b.spans[p] for p in b.anchored)
    best_prior = math.log1p(max(v.demonstrations for v in views)) or 1.0
    rows = []
    for c, v, b in zip(candidates, views, bindings, strict=True):
        mine = {b.spans[p] for p in b.anchored}
        coverage = len(mine & claims) / len(claims) if claims else 0.0
        structure = (b.fit * coverage * _in_order(v.step_params, b) if claims
                     else 0.5 * b.fit)
        structure *= min(1.0, len(mine) / max(1, min(_EVIDENCE, b.learnable)))
        signals = {
            "structure": structure,
            "relevance": c.relevance,
            "prior": math.log1p(v.demonstrations) / best_prior,
        }
        score = sum(WEIGHTS[k] * x for k, x in signals.items())
        score *= reliability_factor(c.reliability)
        rows.append((score, c, v, b, signals))
    rows.sort(key=lambda r: (-r[0], r[2].name))
    kept: str | None = None
    if rows and candidates[0].ranks and rows[0][2].name != views[0].name:
        # re-ranking may put a hit above the first stage's choice only on supported evidence
        first = next(r for r in rows if r[2].name == views[0].name)
        if not _supported_lead(rows[0], first):
            rows.remove(first)
            kept = first[2].name
            rows.insert(0, (rows[0][0] + 1e-6, *first[1:]))
    ranks: dict[str, dict[str, int]] = {r[2].name: dict(r[1].ranks) for r in rows}
    for position, (c, v) in enumerate(zip(candidates, views, strict=True), 1):
        if c.ranks:  # from a first-stage list: candidates arrive in first-stage order
            ranks[v.name]["first_stage"] = position
    for sig in WEIGHTS:
        order = sorted(rows, key=partial(_by_signal, sig))
        for i, r in enumerate(order, 1):
            ranks[r[2].name][sig] = i
    loaded: Mapping[str, Procedure] = {}
    if load_many is not None:
        loaded = load_many([r[2].name for r in rows[:limit] if r[1].procedure is None])
    hits = []
    for i, (score, c, v, b, signals) in enumerate(rows[:limit]):
        other = rows[1][0] if i == 0 and len(rows) > 1 else (rows[0][0] if i else 0.0)
        features = features_of(signals, margin=score - other, fit=b.fit, cosine=c.cosine)
        procedure = c.procedure if c.procedure is not None else loaded.get(v.name)
        if procedure is None:
            if load is None:
                raise UsageError(f"candidate {v.name!r} has no procedure and rank got no load")
            procedure = load(v.name)
        explanation: dict[str, Any] = {
            "signals": {k: round(v, 4) for k, v in signals.items()},
            "bound": dict(b.values),
            "anchored": sorted(b.anchored),
            "features": [round(x, 6) for x in features],
        }
        if v.name == kept:
            explanation["first_stage_kept"] = True
        if "bm25" in c.ranks:
            explanation["bm25"] = round(c.bm25, 4)
        if c.cosine is not None:
            explanation["cosine"] = round(c.cosine, 4)
            explanation["nearest_demonstration"] = c.nearest
        conflict = bool(named) and not (named & v.verbs)  # see verb_conflict
        # the first stage kept its choice against the re-ranking: the signals disagree
        disputed = v.name == kept
        if conflict:
            explanation["verb_conflict"] = True
        hits.append(Hit(
            procedure=procedure,
            score=round(score, 6),
            ranks=ranks[v.name],
            reliability=c.reliability,
            explanation=explanation,
            confident=not conflict and not disputed and (
                calibration.predict(features) >= calibration.threshold
                if calibration is not None else is_confident(signals["structure"], c.cosine)),
            confidence=(round(calibration.predict(features), 4)
                        if calibration is not None else None),
        ))
    return hits
