"""Run statistics on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Implements :class:`procmem.store.base.StatsRecords`. Tables (migration
``0010_procedure_stats.sql``): ``procedure_stats``, counters per
``(name, version)`` kept by triggers on ``executions`` in the same
transaction as every execution write.

Invariants (the rules of :class:`procmem.store.base.StatsRecords`):
    * ``procedure_stats`` answers from the counters alone: one primary-key
      lookup per version, whatever the number of executions.
    * ``recent_outcomes`` reads at most ``window`` executions per name (through
      the ``executions_by_procedure`` index, newest first: ``started_at``, then
      insertion) and their evidence, in one statement per
      :data:`_NAMES_PER_QUERY` names.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import UsageError
from ..core.procstats import ProcedureStats, RunOutcome

__all__ = ["StatsSQL"]

_NAMES_PER_QUERY = 200  # per-name arms of one UNION ALL (SQLite allows 500)

_STATS = ("SELECT name, version, runs, finished, succeeded, duration_ms, last_started_at "
          "FROM procedure_stats WHERE name IN (SELECT value FROM json_each(?)) AND runs > 0")

_ARM = ("SELECT * FROM (SELECT id, procedure, version, status, json, started_at, seq "
        "FROM executions WHERE procedure = ? ORDER BY started_at DESC, seq DESC LIMIT ?)")

_OUTCOMES = ("WITH recent AS ({arms}) "
             "SELECT r.id, r.procedure, r.version, r.status, json_extract(r.json, '$.parent_id'), "
             "json_extract(v.json, '$.source'), json_extract(v.json, '$.reward') "
             "FROM recent AS r LEFT JOIN evidence AS v ON v.execution_id = r.id "
             "ORDER BY r.procedure, r.started_at DESC, r.seq DESC, v.created_at, v.id")


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


class StatsSQL:
    """Statistics methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def procedure_stats(self, names: Sequence[str]) -> dict[tuple[str, int], ProcedureStats]:
        """Run counters of every version of ``names`` that ran.

        Returns:
            ``{(name, version): ProcedureStats}`` for versions with at least one
            top-level execution; a version never run (or an unknown name) is absent.
        """
        if not names:
            return {}
        rows = self._rows(_STATS, (json.dumps(sorted(set(names))),))
        return {(name, version): ProcedureStats.model_construct(  # our own counters: no validation
                    runs=runs, finished=finished, succeeded=succeeded,
                    duration_ms=max(0.0, duration), last_executed_at=_moment(last))
                for name, version, runs, finished, succeeded, duration, last in rows}

    def recent_outcomes(self, names: Sequence[str], *, window: int) -> list[RunOutcome]:
        """The last ``window`` executions of each name, with their evidence.

        Args:
            names: Procedure names (repeats are read once).
            window: Executions per name (any version, sub-procedure runs
                included, as :meth:`list_executions` with ``procedure=name``
                would list them), >= 1.

        Returns:
            One :class:`RunOutcome` per execution: by name, then newest first
            (``started_at``, then insertion); each outcome's evidence oldest first.

        Raises:
            UsageError: ``window`` < 1.
        """
        if window < 1:
            raise UsageError(f"window must be >= 1, got {window}")
        unique = sorted(set(names))
        out: list[RunOutcome] = []
        for start in range(0, len(unique), _NAMES_PER_QUERY):
            chunk = unique[start:start + _NAMES_PER_QUERY]
            sql = _OUTCOMES.format(arms=" UNION ALL ".join([_ARM] * len(chunk)))
            params: list[Any] = []
            for name in chunk:
                params += [name, window]
            heads: dict[str, tuple[str, str, int, str, str | None]] = {}
            evidence: dict[str, list[tuple[str, float]]] = {}
            for ex_id, name, version, status, parent, source, reward in self._rows(
                    sql, tuple(params)):
                heads.setdefault(ex_id, (ex_id, name, version, status, parent))
                evs = evidence.setdefault(ex_id, [])
                if source is not None:
                    evs.append((source, float(reward)))
            out += [RunOutcome(*head, evidence=tuple(evidence[ex_id]))
                    for ex_id, head in heads.items()]  # dicts keep the rows' order
        return out
