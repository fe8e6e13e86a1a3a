"""The trace change feed on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

A token is ``"STORE:DELETIONS:SEQ:ID"``: the store's random id (``meta.store_id``,
set on the first read of the feed), the count of trace deletions when it was
issued (``meta.trace_deletions``), and the ``seq`` and id of the last trace
returned (``0`` and empty before the first trace).

Invariants:
    * ``traces.seq`` is given under the write lock (``BEGIN IMMEDIATE``) as one
      more than the highest, so ``seq`` order is commit order and a reader that
      sees ``seq`` N sees every trace below it.
    * A token is honoured only when its store id and deletion count are the
      store's and the trace at its ``seq`` still has its id (this catches a
      copied file that went its own way); otherwise the feed starts over.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..core.errors import UsageError
from ..core.model import Trace
from .base import TraceChanges

__all__ = ["TraceFeedSQL"]


class TraceFeedSQL:
    """``traces_since`` (and the deletion count behind it) of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    _store_id: int | None = None

    def trace_deletions(self) -> int:
        """How many trace deletions this store has seen (SQLite only; not in the protocol)."""
        rows = self._rows("SELECT value FROM meta WHERE key = 'trace_deletions'")
        return int(rows[0][0]) if rows else 0

    def _feed_id(self) -> int:
        if self._store_id is None:
            rows = self._rows("SELECT value FROM meta WHERE key = 'store_id'")
            if not rows:
                with self._write() as conn:
                    conn.execute("INSERT OR IGNORE INTO meta (key, value) "
                                 "VALUES ('store_id', abs(random()))")
                rows = self._rows("SELECT value FROM meta WHERE key = 'store_id'")
            self._store_id = int(rows[0][0])
        return self._store_id

    def _resume_at(self, token: str | None, store_id: int, deletions: int) -> int | None:
        """The ``seq`` a valid token continues after, or ``None`` (start over)."""
        if token is None:
            return None
        parts = token.split(":", 3)
        if len(parts) != 4 or not all(p.isdigit() for p in parts[:3]):
            return None
        if (int(parts[0]), int(parts[1])) != (store_id, deletions):
            return None
        seq = int(parts[2])
        if seq == 0:
            return 0 if parts[3] == "" else None
        rows = self._rows("SELECT id FROM traces WHERE seq = ?", (seq,))
        return seq if rows and rows[0][0] == parts[3] else None

    def traces_since(self, token: str | None, *, limit: int = 1000) -> TraceChanges:
        """Traces committed after ``token``, in commit order (see the protocol).

        Raises:
            UsageError: ``limit`` < 1.
        """
        if limit < 1:
            raise UsageError(f"limit must be >= 1 (got {limit})")
        store_id, deletions = self._feed_id(), self.trace_deletions()
        after = self._resume_at(token, store_id, deletions)
        rows = self._rows("SELECT seq, id, json FROM traces WHERE seq > ? ORDER BY seq LIMIT ?",
                          (after or 0, limit))
        if rows:
            seq, last = rows[-1][0], rows[-1][1]
            next_token = f"{store_id}:{deletions}:{seq}:{last}"
        elif after is not None and token is not None:
            next_token = token
        else:
            next_token = f"{store_id}:{deletions}:0:"
        return TraceChanges([Trace.model_validate_json(r[2]) for r in rows], next_token,
                            after is None)
