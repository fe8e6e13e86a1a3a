"""Statistics per procedure version and per step, from executions and evidence.

Reliability is a Beta posterior of task success (Beta(1, 1) prior), moved by
*evidence*, not by an agent saying it went well:

* environment / test / user evidence with reward r: ``alpha += r``, ``beta += 1 - r``;
* agent evidence: stored, ``beta += 1 - r`` only (it can lower reliability, never raise it);
* an execution that failed (a tool error, a failed ``expect``) and has no
  evidence: ``beta += 1`` — the tools themselves reported the failure;
* an execution whose steps all succeeded and that has no evidence: no change
  (steps succeeding is not the task succeeding).

Invariants: pure functions of their inputs; ``0 <= reliability <= 1``;
``reliability_lower <= reliability <= reliability_upper``; durations are
milliseconds; percentiles use the nearest-rank method.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

import numpy as np
from pydantic import BaseModel, Field

from ..core.model import Attempt, Evidence, Execution, Procedure, StepRun, utcnow
from ..core.procstats import RunOutcome

__all__ = [
    "EXTERNAL_SOURCES",
    "SLOW_FLOOR_MS",
    "StepStats",
    "VersionStats",
    "beta_quantile",
    "outcome_posterior",
    "p_better",
    "percentile",
    "posterior",
    "version_stats",
]

EXTERNAL_SOURCES = frozenset({"environment", "test", "user"})
SLOW_FLOOR_MS = 1.0
"""A step is never flagged slow while its p95 is below this (ms): noise, not a cost."""


class StepStats(BaseModel):
    """How one step of one procedure version has run.

    Every try counts (:attr:`procmem.core.model.StepRun.history` included): ``runs``
    is the number of tries, so a try that failed before a retry or a resume
    succeeded stays in ``runs``, ``failures`` and ``errors``. ``unknown``
    counts calls whose outcome is unknown (the run stopped after sending them;
    they were sent again with the same idempotency key).

    ``errors`` counts failures by error kind (the text before the first ``:``
    of the error, e.g. ``LookupError``). ``flags``: ``slow`` (its p95 is at
    least half the procedure's p95, or its recent p50 doubled against its own
    history), ``failing`` (3+ failures and at least half of its runs).
    """

    step_id: str
    action: str
    runs: int = 0
    successes: int = 0
    failures: int = 0
    skipped: int = 0
    unknown: int = 0
    errors: dict[str, int] = Field(default_factory=dict)
    p50_ms: float | None = None
    p95_ms: float | None = None
    last_run_at: datetime | None = None
    flags: list[str] = Field(default_factory=list)


class VersionStats(BaseModel):
    """How one procedure version has done.

    Attributes:
        runs: Top-level executions of this version.
        successes / failures: Executions judged successful / failed by evidence
            (or by a failed execution with no evidence).
        evidence: Evidence records about these executions.
        alpha / beta: Beta posterior parameters (prior 1, 1).
        reliability: Posterior mean of success, 0-1.
        reliability_lower / reliability_upper: 5 % and 95 % posterior quantiles.
        failed_attempts: Failed tries of its steps in these executions, the ones
            a retry or a resume later made good included (sum of the steps'
            ``failures``).
        flags: ``unused`` (no run for ``unused_days``), ``unreliable`` (95 %
            quantile below 0.5 with 5+ judged runs), ``has-slow-steps``,
            ``has-failing-steps``.
    """

    name: str
    version: int
    status: str
    pinned: bool = False
    runs: int = 0
    successes: int = 0
    failures: int = 0
    evidence: int = 0
    failed_attempts: int = 0
    alpha: float = 1.0
    beta: float = 1.0
    reliability: float = 0.5
    reliability_lower: float = 0.0
    reliability_upper: float = 1.0
    p50_ms: float | None = None
    p95_ms: float | None = None
    last_run_at: datetime | None = None
    steps: list[StepStats] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by nearest rank; ``None`` for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[rank - 1])


def posterior(executions: Sequence[Execution], evidence: Sequence[Evidence]
              ) -> tuple[float, float, int, int]:
    """Beta posterior ``(alpha, beta, successes, failures)`` for a set of executions.

    See the module docstring for how each kind of evidence counts.
    """
    by_ex: dict[str, list[tuple[str, float]]] = {}
    for ev in evidence:
        by_ex.setdefault(ev.execution_id, []).append((ev.source, ev.reward))
    return _posterior((ex.status, by_ex.get(ex.id, [])) for ex in executions)


def outcome_posterior(outcomes: Iterable[RunOutcome]) -> tuple[float, float, int, int]:
    """:func:`posterior` of executions read as :class:`~procmem.core.procstats.RunOutcome` rows.

    Equal to ``posterior`` of the same executions and evidence (same order, same sums).
    """
    return _posterior((o.status, o.evidence) for o in outcomes)


def _posterior(runs: Iterable[tuple[str, Sequence[tuple[str, float]]]]
               ) -> tuple[float, float, int, int]:
    """The posterior over ``(status, [(evidence source, reward), ...])`` per execution."""
    alpha = beta = 1.0
    successes = failures = 0
    for status, evs in runs:
        external = [reward for source, reward in evs if source in EXTERNAL_SOURCES]
        for source, reward in evs:
            if source in EXTERNAL_SOURCES:
                alpha += reward
                beta += 1 - reward
            else:
                beta += 1 - reward
        if external:
            mean = sum(external) / len(external)
            successes += mean >= 0.5
            failures += mean < 0.5
        elif status == "failed":
            beta += 1
            failures += 1
    return alpha, beta, successes, failures


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction for the incomplete beta function (Numerical Recipes §6.4)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c if abs(1 + aa / c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1 + aa * d
        d = 1 / (d if abs(d) > tiny else tiny)
        c = 1 + aa / c if abs(1 + aa / c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-12:
            break
    return h


def _beta_cdf(x: float, a: float, b: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    ln = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
          + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return math.exp(ln) * _betacf(a, b, x) / a
    return 1 - math.exp(ln) * _betacf(b, a, 1 - x) / b


def beta_quantile(q: float, a: float, b: float) -> float:
    """The ``q`` quantile (0-1) of Beta(a, b), by bisection on the CDF (1e-9 precision)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if _beta_cdf(mid, a, b) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def p_better(a1: float, b1: float, a2: float, b2: float, *, samples: int = 20_000,
             seed: int = 0) -> float:
    """P(θ1 > θ2) for θ1 ~ Beta(a1, b1), θ2 ~ Beta(a2, b2), by seeded Monte Carlo.

    Deterministic for equal arguments (fixed ``seed``); standard error about
    0.0035 at 20,000 samples.
    """
    rng = np.random.default_rng(seed)
    return float(np.mean(rng.beta(a1, b1, samples) > rng.beta(a2, b2, samples)))


def _error_kind(error: str | None) -> str:
    if not error:
        return "unknown"
    head = error.split(":", 1)[0].strip()
    return head if head and len(head) <= 40 and " " not in head else "error"


def _step_stats(procedure: Procedure, executions: Sequence[Execution],
                total_p95: float | None) -> list[StepStats]:
    out = []
    for step in procedure.steps:
        runs: list[StepRun | Attempt] = []
        for ex in executions:
            for run in ex.step_runs:
                if run.step_id == step.id:
                    runs.extend(run.history)
                    runs.append(run)
        durations = [r.duration_ms for r in sorted(runs, key=lambda r: r.started_at)
                     if r.status not in ("skipped", "unknown")]
        st = StepStats(step_id=step.id, action=step.action, runs=len(runs))
        for r in runs:
            if r.status == "succeeded":
                st.successes += 1
            elif r.status == "unknown":
                st.unknown += 1
            elif r.status == "skipped":
                st.skipped += 1
                kind = _error_kind(r.error)
                st.errors[kind] = st.errors.get(kind, 0) + 1
            else:
                st.failures += 1
                kind = _error_kind(r.error)
                st.errors[kind] = st.errors.get(kind, 0) + 1
        st.p50_ms, st.p95_ms = percentile(durations, 50), percentile(durations, 95)
        st.last_run_at = max((r.started_at for r in runs), default=None)
        bad = st.failures + st.skipped
        if bad >= 3 and bad * 2 >= max(st.runs, 1):
            st.flags.append("failing")
        if _is_slow(durations, st.p95_ms, total_p95, len(procedure.steps)):
            st.flags.append("slow")
        out.append(st)
    return out


def _is_slow(durations: list[float], p95: float | None, total_p95: float | None,
             n_steps: int) -> bool:
    if p95 is None or len(durations) < 5 or p95 < SLOW_FLOOR_MS:
        return False
    if n_steps > 1 and total_p95 and p95 >= 0.5 * total_p95:
        return True
    if len(durations) >= 20:
        recent, history = durations[-10:], durations[:-10]
        before, now = percentile(history, 50), percentile(recent, 50)
        if before and now and now >= 2 * before:
            return True
    return False


def version_stats(procedure: Procedure, executions: Sequence[Execution],
                  evidence: Sequence[Evidence], *, pinned: bool = False,
                  unused_days: float = 30.0, now: datetime | None = None) -> VersionStats:
    """Statistics of one procedure version.

    Args:
        procedure: The version.
        executions: Its top-level executions (other versions' are ignored).
        evidence: Evidence about any executions (others are ignored).
        pinned: Whether the name is pinned (copied into the result).
        unused_days: Age in days after which a version never run is ``unused``.
        now: The current time (UTC), for the ``unused`` flag.

    Returns:
        A :class:`VersionStats` with per-step :class:`StepStats`.
    """
    now = now or utcnow()
    mine = [e for e in executions if e.procedure == procedure.name
            and e.version == procedure.version and e.parent_id is None]
    ids = {e.id for e in mine}
    evs = [e for e in evidence if e.execution_id in ids]
    alpha, beta, ok, bad = posterior(mine, evs)
    finished = [e.duration_ms for e in mine if e.done]
    p95 = percentile(finished, 95)
    st = VersionStats(
        name=procedure.name, version=procedure.version, status=procedure.status,
        pinned=pinned, runs=len(mine), successes=ok, failures=bad, evidence=len(evs),
        alpha=alpha, beta=beta, reliability=alpha / (alpha + beta),
        reliability_lower=beta_quantile(0.05, alpha, beta),
        reliability_upper=beta_quantile(0.95, alpha, beta),
        p50_ms=percentile(finished, 50), p95_ms=p95,
        last_run_at=max((e.started_at for e in mine), default=None),
        steps=_step_stats(procedure, mine, p95),
    )
    st.failed_attempts = sum(s.failures for s in st.steps)
    last = st.last_run_at or procedure.created_at
    if now - last > timedelta(days=unused_days):
        st.flags.append("unused")
    if ok + bad >= 5 and st.reliability_upper < 0.5:
        st.flags.append("unreliable")
    if any("slow" in s.flags for s in st.steps):
        st.flags.append("has-slow-steps")
    if any("failing" in s.flags for s in st.steps):
        st.flags.append("has-failing-steps")
    return st
