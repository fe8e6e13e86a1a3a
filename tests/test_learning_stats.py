"""Evidence semantics, Beta posteriors, per-step statistics, promotion decisions."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmem.core.model import Evidence, Execution, Procedure, Step, StepRun, utcnow
from procmem.learning.promote import PromotionPolicy, choose, decide, should_decay
from procmem.learning.stats import (
    beta_quantile,
    p_better,
    percentile,
    posterior,
    version_stats,
)

PROC = Procedure(name="p", steps=[Step(id="s1", action="a"), Step(id="s2", action="b")])


def run(i: int, status: str = "succeeded", s2_ms: float = 1.0, s2_error: str | None = None,
        version: int = 1) -> Execution:
    runs = [StepRun(index=0, step_id="s1", action="a", duration_ms=1.0),
            StepRun(index=1, step_id="s2", action="b", duration_ms=s2_ms, error=s2_error,
                    status="failed" if s2_error else "succeeded")]
    return Execution(id=f"ex{i}", procedure="p", version=version, status=status,
                     step_runs=runs, duration_ms=1.0 + s2_ms,
                     started_at=utcnow() + timedelta(seconds=i))


def ev(i: int, reward: float, source: str = "environment") -> Evidence:
    return Evidence(execution_id=f"ex{i}", reward=reward, source=source)  # type: ignore[arg-type]


def test_agent_evidence_never_raises_reliability() -> None:
    runs = [run(i) for i in range(5)]
    base = posterior(runs, [])
    claimed = posterior(runs, [ev(i, 1.0, "agent") for i in range(5)])
    assert claimed[:2] == base[:2] == (1.0, 1.0)
    lowered = posterior(runs, [ev(0, 0.0, "agent")])
    assert lowered[1] > base[1] and lowered[0] == base[0]
    external = posterior(runs, [ev(i, 1.0, "user") for i in range(5)])
    assert external[0] == 6.0 and external[2] == 5


def test_all_steps_succeeding_is_not_a_task_success_but_a_failed_run_counts() -> None:
    a, b, ok, bad = posterior([run(0), run(1, status="failed")], [])
    assert (a, b, ok, bad) == (1.0, 2.0, 0, 1)


def test_beta_quantile_matches_known_values() -> None:
    assert beta_quantile(0.5, 1, 1) == pytest.approx(0.5, abs=1e-6)
    assert beta_quantile(0.05, 1, 1) == pytest.approx(0.05, abs=1e-6)
    # Beta(2, 1): CDF x^2 -> quantile sqrt(q)
    assert beta_quantile(0.25, 2, 1) == pytest.approx(0.5, abs=1e-6)
    assert beta_quantile(0.95, 5, 5) == pytest.approx(0.7486, abs=1e-3)  # scipy beta.ppf


@settings(max_examples=50, deadline=None)
@given(st.floats(0.5, 50), st.floats(0.5, 50))
def test_quantiles_bracket_the_mean(a: float, b: float) -> None:
    lo, hi = beta_quantile(0.05, a, b), beta_quantile(0.95, a, b)
    assert 0 <= lo <= a / (a + b) <= hi <= 1


def test_p_better_is_symmetric_and_ordered() -> None:
    assert p_better(20, 2, 2, 20) > 0.99
    assert p_better(2, 20, 20, 2) < 0.01
    assert p_better(5, 5, 5, 5) == pytest.approx(0.5, abs=0.02)


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3, 1, 2], 50) == 2
    assert percentile(list(range(1, 101)), 95) == 95


def test_step_statistics_and_flags() -> None:
    runs = [run(i, s2_ms=50.0, s2_error="LookupError: no" if i % 2 else None,
                status="failed" if i % 2 else "succeeded") for i in range(8)]
    stats = version_stats(PROC, runs, [ev(0, 1.0)])
    s1, s2 = stats.steps
    assert (s1.runs, s1.successes, s1.failures) == (8, 8, 0)
    assert (s2.runs, s2.successes, s2.failures) == (8, 4, 4)
    assert s2.errors == {"LookupError": 4}
    assert "failing" in s2.flags and "slow" in s2.flags
    assert "slow" not in s1.flags and "failing" not in s1.flags
    assert {"has-slow-steps", "has-failing-steps"} <= set(stats.flags)
    assert stats.runs == 8 and stats.evidence == 1
    assert 0 <= stats.reliability_lower <= stats.reliability <= stats.reliability_upper <= 1


def test_a_step_that_grew_slow_against_its_own_history_is_flagged() -> None:
    proc = Procedure(name="p", steps=[Step(id="s1", action="a"), Step(id="s2", action="b")])
    runs = [run(i, s2_ms=2.0 if i < 20 else 9.0) for i in range(30)]
    for r in runs:  # s1 dominates, so only growth can flag s2
        r.step_runs[0].duration_ms = 100.0
    assert "slow" in version_stats(proc, runs, []).steps[1].flags


def test_sub_millisecond_steps_are_never_flagged_slow() -> None:
    runs = [run(i, s2_ms=0.6) for i in range(30)]
    for r in runs:
        r.step_runs[0].duration_ms = 0.3
    assert all("slow" not in s.flags for s in version_stats(PROC, runs, []).steps)


def test_unused_and_unreliable_flags_and_decay() -> None:
    old = PROC.model_copy(update={"created_at": utcnow() - timedelta(days=90)})
    stats = version_stats(old, [], [], unused_days=30)
    assert "unused" in stats.flags
    policy = PromotionPolicy()
    assert should_decay(stats, policy) == "unused"
    assert should_decay(stats.model_copy(update={"pinned": True}), policy) is None
    bad = version_stats(PROC, [run(i) for i in range(8)], [ev(i, 0.0) for i in range(8)])
    assert "unreliable" in bad.flags and should_decay(bad, policy) == "unreliable"


def test_promotion_needs_enough_runs_and_a_clear_difference() -> None:
    policy = PromotionPolicy(threshold=0.95, min_runs=10)
    active = version_stats(PROC, [run(i) for i in range(20)],
                           [ev(i, 1.0 if i % 2 else 0.0) for i in range(20)])
    cand_proc = PROC.model_copy(update={"version": 2, "status": "candidate"})
    few = version_stats(cand_proc, [run(i, version=2) for i in range(3)],
                        [ev(i, 1.0) for i in range(3)])
    assert decide(active, few, policy) is None
    good = version_stats(cand_proc, [run(i, version=2) for i in range(15)],
                         [ev(i, 1.0) for i in range(15)])
    assert decide(active, good, policy) == "promote"
    bad = version_stats(cand_proc, [run(i, version=2) for i in range(15)],
                        [ev(i, 0.0) for i in range(15)])
    assert decide(active, bad, policy) == "demote"


def test_thompson_sampling_prefers_the_better_posterior() -> None:
    active = version_stats(PROC, [run(i) for i in range(20)], [ev(i, 0.0) for i in range(20)])
    cand_proc = PROC.model_copy(update={"version": 2, "status": "candidate"})
    cand = version_stats(cand_proc, [run(i, version=2) for i in range(20)],
                         [ev(i, 1.0) for i in range(20)])
    rng = random.Random(1)
    picks = [choose(active, [cand], rng).version for _ in range(200)]
    assert picks.count(2) > 190
