"""What a learning operation changed, as records: promotions, demotions, replacements.

Evidence can promote a verified candidate (and so replace the active version)
or demote it (:mod:`procmem.learning.promote`). :func:`apply_decision` makes such
a decision's status changes in the store and returns them as :class:`Change`
records, so that :meth:`procmem.Memory.report` can say what it did and every
surface (CLI, REST, MCP) prints the same list (:func:`procmem.formats.serialize.change_record`)
instead of diffing statuses before and after.

Invariants:
    * One :class:`Change` per version whose status moved, in the order the
      store was written; a promotion is two changes, the candidate ``promoted``
      (``candidate`` → ``active``) then the old version ``replaced``
      (``active`` → ``deprecated``).
    * Versions are immutable: a change moves a status, never content.
    * A decision is written only if the statuses it was taken on are still the
      stored ones, checked in the unit of work that writes them: when two
      processes decide at once (two reports), one writes and reports the
      changes, the other writes and reports none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from .promote import PromotionPolicy, decide
from .stats import VersionStats, p_better

if TYPE_CHECKING:
    from ..core.model import Evidence, Procedure
    from ..store.base import Store

__all__ = ["Change", "ChangeKind", "ReportResult", "apply_decision", "review_candidates"]

ChangeKind = Literal["promoted", "demoted", "replaced", "deprecated", "created", "restored"]
"""What happened to a version: ``promoted`` (candidate → active), ``demoted``
(candidate → deprecated), ``replaced`` (active → deprecated, a newer version took
its place); reserved for the other learning operations (which do not return
changes yet): ``deprecated`` (active → deprecated by decay), ``created`` (a new
version stored), ``restored`` (a rollback stored an earlier content as a new version)."""


@dataclass(frozen=True)
class Change:
    """One version whose status an operation moved.

    Attributes:
        name: The procedure name.
        version: The version that changed.
        change: What happened (:data:`ChangeKind`).
        from_status: Its status before (``None`` for a version just created).
        to_status: Its status after.
        reason: Why, in a few words (``"P(better) 0.97 > 0.95 after 12 runs"``).
    """

    name: str
    version: int
    change: ChangeKind
    from_status: str | None
    to_status: str
    reason: str = ""


@dataclass(frozen=True)
class ReportResult:
    """What :meth:`procmem.Memory.report` stored and changed.

    Attributes:
        evidence: The evidence stored.
        changes: The status changes the review after it made (often none), in
            the order they were written.
    """

    evidence: Evidence
    changes: list[Change] = field(default_factory=list)


def apply_decision(store: Store, name: str, active: Procedure, candidate: Procedure,
                   decision: Literal["promote", "demote"], reason: str = "") -> list[Change]:
    """Write a promotion or demotion to the store and say what changed.

    Args:
        store: The store holding ``name``'s versions.
        name: The procedure name.
        active: The active version the candidate competed with.
        candidate: The verified candidate decided on.
        decision: ``promote`` (the candidate becomes active, ``active`` is
            deprecated) or ``demote`` (the candidate is deprecated).
        reason: Why, kept on each change.

    Returns:
        The changes, in the order written (see the module invariants); empty when
        a version's status is no longer the one the decision saw (another process
        decided first).
    """
    if decision == "promote":
        # both statuses or neither, and only from the statuses this decision saw: of two
        # processes deciding at once, one promotes and the other changes nothing
        # (procmem.store.status)
        if not store.transition_status(name, [(candidate.version, candidate.status, "active"),
                                              (active.version, active.status, "deprecated")]):
            return []
        return [Change(name, candidate.version, "promoted", candidate.status, "active", reason),
                Change(name, active.version, "replaced", active.status, "deprecated", reason)]
    if not store.transition_status(name, [(candidate.version, candidate.status, "deprecated")]):
        return []
    return [Change(name, candidate.version, "demoted", candidate.status, "deprecated", reason)]


def review_candidates(store: Store, active: Procedure, candidates: list[Procedure],
                      stats_of: Callable[[Procedure], VersionStats],
                      policy: PromotionPolicy) -> list[Change]:
    """Promote or demote verified candidates from their posteriors
    (:func:`procmem.learning.promote.decide`), writing each decision to the store.

    Candidates are decided in the order given; the first promotion ends the
    review (the promoted version is the new active one the others would have
    to beat).

    Args:
        store: The store holding the versions.
        active: The active version.
        candidates: Its verified candidates, oldest first.
        stats_of: The statistics of a version over the decision window.
        policy: Thresholds (``threshold``, ``min_runs``).

    Returns:
        Every change written, in order (empty when no candidate has enough
        judged runs or none is clearly better or worse).
    """
    a_stats = stats_of(active)
    changes: list[Change] = []
    for cand in candidates:
        c_stats = stats_of(cand)
        decision = decide(a_stats, c_stats, policy)
        if decision is None:
            continue
        p = p_better(c_stats.alpha, c_stats.beta, a_stats.alpha, a_stats.beta)
        runs = c_stats.successes + c_stats.failures
        reason = (f"P(v{cand.version} better than v{active.version}) = {p:.3f} "
                  f"after {runs} judged runs")
        changes += apply_decision(store, active.name, active, cand, decision, reason)
        if decision == "promote":
            break
    return changes
