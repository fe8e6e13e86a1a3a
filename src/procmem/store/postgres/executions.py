"""Executions, step runs, evidence, leases and run statistics on PostgreSQL: a mixin of
:class:`PostgresStore`.

Invariants:
    * ``put_execution`` is one upsert; ``executions.seq`` (an identity column)
      keeps the order of first puts. Its ``parent_id`` and ``duration_ms``
      columns copy the header's, for the statistics trigger (migration 0010),
      which keeps ``procedure_stats`` in the same transaction as every write.
    * **Leases.** Taking or renewing one is a single conditional ``UPDATE``;
      under READ COMMITTED PostgreSQL locks the row and evaluates the ``WHERE``
      again on its latest committed version, so of two processes (or hosts)
      racing for a free lease exactly one updates it and the other sees the
      winner's lease and gets ``ExecutionBusy``. The clock is the caller's
      (``now``), as on SQLite; processes on several hosts need synced clocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ...core.errors import ExecutionBusy, NotFound, UsageError
from ...core.model import Evidence, Execution, StepRun, utcnow
from ...core.procstats import ProcedureStats, RunOutcome
from ..common import check_page
from .base import Conn, aware

__all__ = ["ExecutionsPG"]

_CHUNK = 1000


class ExecutionsPG:
    """Execution, lease and statistics methods of the PostgreSQL store."""

    if TYPE_CHECKING:  # provided by PostgresStore
        def _write(self) -> AbstractContextManager[Conn]: ...

        def _conn(self) -> AbstractContextManager[Conn]: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

    # --------------------------------------------------------------- executions

    def put_execution(self, execution: Execution) -> None:
        """Upsert an execution's header (not its step runs); a status other than
        ``running`` clears the lease."""
        header = execution.model_dump_json(by_alias=True, exclude={"step_runs"})
        with self._write() as conn:
            conn.execute(
                "INSERT INTO executions AS e (id, procedure, version, status, parent_id, "
                "duration_ms, json, started_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO UPDATE SET procedure = excluded.procedure, "
                "version = excluded.version, status = excluded.status, "
                "parent_id = excluded.parent_id, duration_ms = excluded.duration_ms, "
                "json = excluded.json, started_at = excluded.started_at, "
                "lease_owner = CASE WHEN excluded.status = 'running' THEN e.lease_owner END, "
                "lease_expires_at = CASE WHEN excluded.status = 'running' "
                "THEN e.lease_expires_at END",
                (execution.id, execution.procedure, execution.version, execution.status,
                 execution.parent_id, execution.duration_ms, header,
                 aware(execution.started_at)))

    def put_step_run(self, execution_id: str, step_run: StepRun) -> None:
        """Upsert one step run by ``(execution_id, index)``, committed at once.

        Raises:
            NotFound: The execution's header was never put.
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM executions WHERE id = %s",
                            (execution_id,)).fetchone() is None:
                raise NotFound("execution", execution_id)
            conn.execute("INSERT INTO step_runs (execution_id, idx, json) VALUES (%s, %s, %s) "
                         "ON CONFLICT (execution_id, idx) DO UPDATE SET json = excluded.json",
                         (execution_id, step_run.index, step_run.model_dump_json(by_alias=True)))

    def _with_step_runs(self, conn: Conn, headers: list[str]) -> list[Execution]:
        executions = [Execution.model_validate_json(h) for h in headers]
        runs: dict[str, list[StepRun]] = {e.id: [] for e in executions}
        if runs:
            for execution_id, data in conn.execute(
                    "SELECT execution_id, json FROM step_runs WHERE execution_id = ANY(%s) "
                    "ORDER BY execution_id, idx", (list(runs),)).fetchall():
                runs[execution_id].append(StepRun.model_validate_json(data))
        return [e.model_copy(update={"step_runs": runs[e.id]}) for e in executions]

    def get_execution(self, execution_id: str) -> Execution:
        """The execution with its step runs by index, or ``NotFound``."""
        with self._conn() as conn:
            row = conn.execute("SELECT json FROM executions WHERE id = %s",
                               (execution_id,)).fetchone()
            if row is None:
                raise NotFound("execution", execution_id)
            return self._with_step_runs(conn, [row[0]])[0]

    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        """Executions with their step runs, newest first (``started_at``, then first put)."""
        check_page(limit, offset)
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT json FROM executions WHERE %(p)s::text IS NULL OR procedure = %(p)s "
                "ORDER BY started_at DESC, seq DESC LIMIT %(limit)s OFFSET %(offset)s",
                {"p": procedure, "limit": limit, "offset": offset}).fetchall()
            return self._with_step_runs(conn, [r[0] for r in rows])

    # ----------------------------------------------------------------- evidence

    def put_evidence(self, evidence: Evidence) -> None:
        """Append one evidence record."""
        with self._write() as conn:
            conn.execute("INSERT INTO evidence (execution_id, json, created_at) "
                         "VALUES (%s, %s, %s)",
                         (evidence.execution_id, evidence.model_dump_json(by_alias=True),
                          aware(evidence.created_at)))

    def list_evidence(self, execution_id: str | None = None, *,
                      procedure: str | None = None) -> list[Evidence]:
        """Evidence oldest first (``created_at``, ties in append order)."""
        rows = self._rows(
            "SELECT v.json FROM evidence AS v "
            "WHERE (%(e)s::text IS NULL OR v.execution_id = %(e)s) "
            "AND (%(p)s::text IS NULL OR v.execution_id IN "
            "(SELECT id FROM executions WHERE procedure = %(p)s)) ORDER BY v.created_at, v.id",
            {"e": execution_id, "p": procedure})
        return [Evidence.model_validate_json(r[0]) for r in rows]

    # ------------------------------------------------------------------- leases

    def acquire_lease(self, execution_id: str, owner: str, *, lease_s: float,
                      now: datetime | None = None) -> datetime:
        """Take or renew an execution's lease for ``lease_s`` seconds; returns its expiry.

        Raises:
            ExecutionBusy: Another owner's lease is live; nothing changes.
            NotFound: No execution has this id.
            UsageError: ``owner`` is empty or ``lease_s`` is not positive.
        """
        if not owner or not lease_s > 0:
            raise UsageError(f"a lease needs an owner and lease_s > 0 (got {owner!r}, {lease_s})")
        moment = aware(now or utcnow())
        until = moment + timedelta(seconds=lease_s)
        with self._write() as conn:
            taken = conn.execute(
                "UPDATE executions SET lease_owner = %(o)s, lease_expires_at = %(u)s "
                "WHERE id = %(id)s AND (lease_owner IS NULL OR lease_owner = %(o)s "
                "OR lease_expires_at <= %(now)s)",
                {"o": owner, "u": until, "id": execution_id, "now": moment}).rowcount
            if taken:
                return until
            row = conn.execute("SELECT lease_owner, lease_expires_at FROM executions "
                               "WHERE id = %s", (execution_id,)).fetchone()
        if row is None:
            raise NotFound("execution", execution_id)
        raise ExecutionBusy(execution_id, row[0], aware(row[1]))

    def release_lease(self, execution_id: str, owner: str) -> bool:
        """Clear ``owner``'s lease of an execution; True if ``owner`` held it."""
        with self._write() as conn:
            return bool(conn.execute(
                "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = %s AND lease_owner = %s", (execution_id, owner)).rowcount)

    def find_lease(self, execution_id: str, *,
                   now: datetime | None = None) -> tuple[str, datetime] | None:
        """The live lease ``(owner, expires_at)``, or ``None`` (not in the protocol)."""
        rows = self._rows("SELECT lease_owner, lease_expires_at FROM executions WHERE id = %s "
                          "AND lease_owner IS NOT NULL AND lease_expires_at > %s",
                          (execution_id, aware(now or utcnow())))
        return (rows[0][0], aware(rows[0][1])) if rows else None

    # --------------------------------------------------------------- statistics

    def procedure_stats(self, names: Sequence[str]) -> dict[tuple[str, int], ProcedureStats]:
        """Run counters of every version of ``names`` with a top-level execution."""
        if not names:
            return {}
        rows = self._rows("SELECT name, version, runs, finished, succeeded, duration_ms, "
                          "last_started_at FROM procedure_stats WHERE name = ANY(%s) AND runs > 0",
                          (sorted(set(names)),))
        return {(name, version): ProcedureStats.model_construct(
                    runs=int(runs), finished=int(finished), succeeded=int(succeeded),
                    duration_ms=max(0.0, float(duration)),
                    last_executed_at=None if last is None else aware(last))
                for name, version, runs, finished, succeeded, duration, last in rows}

    def recent_outcomes(self, names: Sequence[str], *, window: int) -> list[RunOutcome]:
        """The last ``window`` executions of each name (as ``list_executions`` lists them),
        with their evidence oldest first; by name, then newest first.

        Raises:
            UsageError: ``window`` < 1.
        """
        if window < 1:
            raise UsageError(f"window must be >= 1, got {window}")
        unique = sorted(set(names))
        out: list[RunOutcome] = []
        for start in range(0, len(unique), _CHUNK):
            rows = self._rows(
                "SELECT r.id, r.procedure, r.version, r.status, r.parent_id, v.json "
                "FROM unnest(%s::text[]) AS n(name) CROSS JOIN LATERAL ("
                "  SELECT id, procedure, version, status, parent_id, started_at, seq "
                "  FROM executions WHERE procedure = n.name "
                "  ORDER BY started_at DESC, seq DESC LIMIT %s) AS r "
                "LEFT JOIN evidence AS v ON v.execution_id = r.id "
                "ORDER BY n.name COLLATE \"C\", r.started_at DESC, r.seq DESC, "
                "v.created_at, v.id",
                (unique[start:start + _CHUNK], window))
            heads: dict[str, tuple[str, str, int, str, str | None]] = {}
            evidence: dict[str, list[tuple[str, float]]] = {}
            for ex_id, name, version, status, parent, vjson in rows:
                heads.setdefault(ex_id, (ex_id, name, version, status, parent))
                evs = evidence.setdefault(ex_id, [])
                if vjson is not None:
                    record = json.loads(vjson)
                    if record.get("source") is not None:
                        evs.append((record["source"], float(record["reward"])))
            out += [RunOutcome(*head, evidence=tuple(evidence[ex_id]))
                    for ex_id, head in heads.items()]
        return out
