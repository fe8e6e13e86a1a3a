"""Execution leases on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Columns (migration ``0008_execution_lease.sql``): ``executions.lease_owner`` and
``executions.lease_expires_at`` (fixed-width UTC text, see
:func:`procmem.store.common.timestamp`).

Invariants (the rules of :class:`procmem.store.base.Store`):
    * A lease is live while ``lease_owner`` is set and ``lease_expires_at`` is
      later than now; the clock is this process's (every process on one file
      shares the host's clock).
    * Taking or renewing a lease is one conditional ``UPDATE`` inside
      ``BEGIN IMMEDIATE``: it succeeds only when the row has no live lease or the
      live lease is the caller's, so two processes never both hold one.
    * ``put_execution`` of a header whose status is not ``running`` clears the
      lease in the same statement (paused and finished executions have none).
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..core.errors import ExecutionBusy, NotFound, UsageError
from ..core.model import utcnow
from .common import timestamp

__all__ = ["LeaseSQL"]


class LeaseSQL:
    """Lease methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def acquire_lease(self, execution_id: str, owner: str, *, lease_s: float,
                      now: datetime | None = None) -> datetime:
        """Take or renew the lease of an execution for ``lease_s`` seconds from now.

        Args:
            execution_id: The execution (its header must be stored).
            owner: Who runs it, e.g. ``"host:4242:9f1c2a3b"`` (non-empty).
            lease_s: How long the lease lasts unless renewed, in seconds (> 0).
            now: The current time (UTC); ``None``: the clock (tests pass it).

        Returns:
            When the lease now expires (timezone-aware UTC).

        Raises:
            ExecutionBusy: Another owner holds a live lease; nothing changes.
            NotFound: No execution has this id.
            UsageError: ``owner`` is empty or ``lease_s`` is not positive.
        """
        if not owner or not lease_s > 0:
            raise UsageError(f"a lease needs an owner and lease_s > 0 (got {owner!r}, {lease_s})")
        moment = now or utcnow()
        until = moment + timedelta(seconds=lease_s)
        with self._write() as conn:
            taken = conn.execute(
                "UPDATE executions SET lease_owner = ?1, lease_expires_at = ?2 WHERE id = ?3 "
                "AND (lease_owner IS NULL OR lease_owner = ?1 OR lease_expires_at <= ?4)",
                (owner, timestamp(until), execution_id, timestamp(moment)),
            ).rowcount
            if taken:
                return until
            row = conn.execute("SELECT lease_owner, lease_expires_at FROM executions "
                               "WHERE id = ?", (execution_id,)).fetchone()
        if row is None:
            raise NotFound("execution", execution_id)
        raise ExecutionBusy(execution_id, row[0], _parse(row[1]))

    def release_lease(self, execution_id: str, owner: str) -> bool:
        """Give up ``owner``'s lease of an execution; True if it held one (live or not)."""
        with self._write() as conn:
            return bool(conn.execute(
                "UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL "
                "WHERE id = ? AND lease_owner = ?", (execution_id, owner)).rowcount)

    def find_lease(self, execution_id: str, *,
                   now: datetime | None = None) -> tuple[str, datetime] | None:
        """The live lease of an execution, ``(owner, expires_at)``, or ``None``.

        ``None`` too for an unknown execution, or a lease that has expired.
        """
        rows = self._rows("SELECT lease_owner, lease_expires_at FROM executions "
                          "WHERE id = ? AND lease_owner IS NOT NULL AND lease_expires_at > ?",
                          (execution_id, timestamp(now or utcnow())))
        return (rows[0][0], _parse(rows[0][1])) if rows else None


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
