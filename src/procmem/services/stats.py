"""Reading a procedure's statistics from its stored runs: one service for search and learning.

A service of :class:`procmem.Memory`: the search (:mod:`procmem.services.search`)
weights hits by reliability and shows statistics; learning
(:mod:`procmem.services.learning`) decides on the same runs. Both read them here,
so there is one place that knows how runs and evidence are read.

Invariants:
    * Read-only: nothing here writes to the store.
    * ``stats``/``version_stats`` use the last ``stats_window`` executions of a
      name; reliability for decisions and ranking uses the last ``policy.window``.
      The counters on a read procedure (``execution_count`` ...) cover every
      top-level run of its version, from the store's counters kept on write
      (:mod:`procmem.core.procstats`): one store call per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from ..core.model import Evidence, Execution, Procedure
from ..core.procstats import RunOutcome
from ..learning.promote import PromotionPolicy
from ..learning.stats import outcome_posterior
from ..store.base import Store
from .versions import with_stats

P = TypeVar("P", bound=Procedure)

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

    def with_stats(self, procs: Sequence[P]) -> list[P]:
        """``procs`` with their statistics, in one store call
        (:func:`procmem.services.versions.with_stats`)."""
        return with_stats(self.store, procs)

    def reliabilities(self, procs: Sequence[Procedure]) -> dict[tuple[str, int], float]:
        """Posterior mean of success (0-1; 0.5: no runs) per ``(name, version)`` of ``procs``.

        Over each name's last ``policy.window`` executions (the learning window,
        :mod:`procmem.services.learning`), this version's top-level ones: one
        store call for the whole batch (:meth:`Store.recent_outcomes`).
        """
        window = self.policy.window or self.stats_window
        runs: dict[tuple[str, int], list[RunOutcome]] = {}
        for o in self.store.recent_outcomes([p.name for p in procs], window=window):
            if o.parent_id is None:
                runs.setdefault((o.procedure, o.version), []).append(o)
        out = {}
        for p in procs:
            alpha, beta, _, _ = outcome_posterior(runs.get((p.name, p.version), []))
            out[p.name, p.version] = alpha / (alpha + beta)
        return out

    def reliability(self, proc: Procedure) -> float:
        """Posterior mean of success of this version over the learning window (0.5: no runs)."""
        return self.reliabilities([proc])[proc.name, proc.version]
