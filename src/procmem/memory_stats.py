"""Reading a procedure's statistics from its stored runs: one service for search and learning.

A service of :class:`procmem.Memory`: the search (:mod:`procmem.memory_search`)
weights hits by reliability and shows statistics; learning
(:mod:`procmem.memory_learning`) decides on the same runs. Both read them here,
so there is one place that knows how runs and evidence are read.

Invariants:
    * Read-only: nothing here writes to the store.
    * Statistics shown use the last ``stats_window`` executions of a name;
      reliability for decisions and ranking uses the last ``policy.window``.
"""

from __future__ import annotations

from .learning.promote import PromotionPolicy
from .learning.stats import posterior
from .memory_versions import with_stats
from .model import Evidence, Execution, Procedure
from .store.base import Store

__all__ = ["Statistics"]


class Statistics:
    """Runs, statistics and reliability of procedures, read from a store.

    Args:
        store: Where executions and evidence are read.
        stats_window: Statistics use the last this many executions of a name.
        policy: Its ``window`` bounds the runs reliability is computed from.
    """

    def __init__(self, store: Store, *, stats_window: int = 500,
                 policy: PromotionPolicy | None = None) -> None:
        self.store = store
        self.stats_window = stats_window
        self.policy = policy or PromotionPolicy()

    def runs(self, name: str, window: int | None = None
             ) -> tuple[list[Execution], list[Evidence]]:
        """The last ``window`` (default ``stats_window``) executions of ``name``, newest
        first, and the evidence about them."""
        executions = self.store.list_executions(procedure=name,
                                                limit=window or self.stats_window)
        ids = {e.id for e in executions}
        evidence = [e for e in self.store.list_evidence(procedure=name) if e.execution_id in ids]
        return executions, evidence

    def with_stats(self, proc: Procedure) -> Procedure:
        """``proc`` with its statistics (:func:`procmem.memory_versions.with_stats`)."""
        return with_stats(self.store, proc)

    def reliability(self, proc: Procedure) -> float:
        """Posterior mean of success of this version over the learning window (0.5: no runs)."""
        executions, evidence = self.runs(proc.name, self.policy.window)
        mine = [e for e in executions if e.version == proc.version and e.parent_id is None]
        alpha, beta, _, _ = posterior(mine, evidence)
        return alpha / (alpha + beta)
