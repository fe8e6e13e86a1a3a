"""Choosing between versions, promotion, demotion and decay.

While a verified candidate competes with the active version, each replay picks
one by **Thompson sampling** (Thompson 1933; Russo et al. 2018, "A Tutorial on
Thompson Sampling"): draw θ from each version's Beta posterior and run the
version with the larger draw. A candidate is **promoted** when
P(θ_candidate > θ_active) exceeds ``threshold`` (0.95) after at least
``min_runs`` judged runs of the candidate, and **demoted** when that
probability falls below ``1 - threshold`` after as many runs.

Invariants: only verified candidates compete; decisions are pure functions
of the statistics (sampling takes an explicit ``random.Random``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from .stats import VersionStats, p_better

__all__ = ["PromotionPolicy", "choose", "decide", "should_decay"]


@dataclass(frozen=True)
class PromotionPolicy:
    """When to promote, demote and deprecate (all configurable on ``Memory``).

    Attributes:
        threshold: Probability that the candidate is better needed to promote.
        min_runs: Judged runs (by evidence) of the candidate before deciding.
        unused_days: Days without a run after which a procedure decays.
        min_judged: Judged runs before "unreliable" can deprecate a procedure.
        window: Decisions (Thompson sampling, promotion) use the posterior of
            the last ``window`` executions of a procedure name, so that old
            successes do not hide a change in the world.
    """

    threshold: float = 0.95
    min_runs: int = 10
    unused_days: float = 30.0
    min_judged: int = 5
    window: int = 100


def choose(active: VersionStats, candidates: list[VersionStats], rng: random.Random
           ) -> VersionStats:
    """Thompson sampling: the version whose posterior draw is largest (ties: active)."""
    best, best_draw = active, rng.betavariate(active.alpha, active.beta)
    for c in candidates:
        draw = rng.betavariate(c.alpha, c.beta)
        if draw > best_draw:
            best, best_draw = c, draw
    return best


def decide(active: VersionStats, candidate: VersionStats, policy: PromotionPolicy
           ) -> Literal["promote", "demote"] | None:
    """Promote, demote, or wait, from the two posteriors."""
    if candidate.successes + candidate.failures < policy.min_runs:
        return None
    p = p_better(candidate.alpha, candidate.beta, active.alpha, active.beta)
    if p > policy.threshold:
        return "promote"
    if p < 1 - policy.threshold:
        return "demote"
    return None


def should_decay(stats: VersionStats, policy: PromotionPolicy) -> str | None:
    """Why an active, unpinned version should be deprecated (``unused``/``unreliable``), or None."""
    if stats.pinned or stats.status != "active":
        return None
    if "unreliable" in stats.flags and stats.successes + stats.failures >= policy.min_judged:
        return "unreliable"
    if "unused" in stats.flags:
        return "unused"
    return None
