"""Traces and their change feed on PostgreSQL: a mixin of :class:`PostgresStore`.

**Commit-order rule.** ``put_traces`` gives ``MAX(seq) + 1`` while its
transaction holds the store's writer lock (a transaction-level advisory lock
taken right after ``BEGIN``, held until commit or rollback; see
:mod:`.base`). A writer (any process, any host) can only read ``MAX(seq)`` after
every earlier writer has committed or rolled back, so ``seq`` order *is* commit
order, and a reader that sees ``seq`` N sees every trace below it. A sequence
(``nextval``) would not do: two writers take 5 and 6, 6 commits first, a reader
moves its token past 6, then 5 appears behind it. The price is that writes of
one store are serialized (reads never wait).

A feed token is ``"STORE:DELETIONS:SEQ:ID"`` as on SQLite: the store's random
id (``meta.store_id``, set by migration 0001), the count of trace deletions when
it was issued (``meta.trace_deletions``) and the ``seq`` and id of the last trace
returned. A token is honoured only when its store id and deletion count are the
store's and the trace at its ``seq`` still has its id; otherwise the feed
starts over.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ...core.errors import Conflict, NotFound, UsageError
from ...core.model import Trace
from ..base import TraceChanges
from ..common import check_page, trace_content
from .base import Conn, aware, keys

__all__ = ["TracesPG"]

_CHUNK = 1000


class TracesPG:
    """Trace methods of the PostgreSQL store."""

    if TYPE_CHECKING:  # provided by PostgresStore
        schema: str

        def _write(self) -> AbstractContextManager[Conn]: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

        def _reindex(self, conn: Conn, name: str) -> None: ...

    def put_traces(self, traces: Iterable[Trace]) -> int:
        """Store traces in one transaction: all of them, or none.

        Returns:
            How many traces were new.

        Raises:
            Conflict: An id is stored with different content; nothing of the batch is stored.
        """
        batch = list(traces)
        if not batch:
            return 0
        new = 0
        with self._write() as conn:
            stored = {r[0]: r[1] for r in conn.execute(
                "SELECT id, json FROM traces WHERE id = ANY(%s)",
                ([t.id for t in batch],)).fetchall()}
            top = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM traces").fetchone()
            seq = int(top[0]) if top else 0
            rows = []
            for trace in batch:
                if trace.id in stored:
                    if trace_content(Trace.model_validate_json(stored[trace.id])) != \
                            trace_content(trace):
                        raise Conflict("trace", trace.id, "already stored with different content")
                    continue
                text = trace.model_dump_json(by_alias=True)
                stored[trace.id] = text
                seq += 1
                rows.append((trace.id, text, seq, aware(trace.created_at)))
                new += 1
            if rows:
                with conn.cursor() as cur:
                    cur.executemany("INSERT INTO traces (id, json, seq, created_at) "
                                    "VALUES (%s, %s, %s, %s)", rows)
        return new

    def get_trace(self, trace_id: str) -> Trace:
        """The trace with this id (``NotFound`` if none)."""
        rows = self._rows("SELECT json FROM traces WHERE id = %s", (trace_id,))
        if not rows:
            raise NotFound("trace", trace_id)
        return Trace.model_validate_json(rows[0][0])

    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        """Traces in commit order, ``limit`` after ``offset`` (``UsageError`` if negative)."""
        check_page(limit, offset)
        rows = self._rows("SELECT json FROM traces ORDER BY seq LIMIT %s OFFSET %s",
                          (limit, offset))
        return [Trace.model_validate_json(r[0]) for r in rows]

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        """The stored traces among ``trace_ids``, in commit order; unknown ids are left out."""
        unique = keys(trace_ids)
        rows: list[tuple[int, str]] = []
        for i in range(0, len(unique), _CHUNK):
            rows.extend(self._rows("SELECT seq, json FROM traces WHERE id = ANY(%s)",
                                   (unique[i:i + _CHUNK],)))
        rows.sort()
        return [Trace.model_validate_json(j) for _, j in rows]

    def count_traces(self) -> int:
        """How many traces are stored."""
        return int(self._rows("SELECT COUNT(*) FROM traces")[0][0])

    def get_tasks(self, trace_ids: Sequence[str]) -> dict[str, str]:
        """Task text by trace id for the stored traces among ``trace_ids``."""
        unique = keys(trace_ids)
        found: dict[str, str] = {}
        for i in range(0, len(unique), _CHUNK):
            for tid, text in self._rows("SELECT id, json FROM traces WHERE id = ANY(%s)",
                                        (unique[i:i + _CHUNK],)):
                found[tid] = json.loads(text)["task"]
        return {i: found[i] for i in unique if i in found}

    def delete_trace(self, trace_id: str) -> bool:
        """Delete one trace; False if there was none.

        In the same transaction ``meta.trace_deletions`` grows (every feed token
        issued before is stale) and the names whose current version learned from
        the trace are re-indexed.
        """
        with self._write() as conn:
            if not conn.execute("DELETE FROM traces WHERE id = %s", (trace_id,)).rowcount:
                return False
            conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'trace_deletions'")
            for name in names_by_trace(conn, trace_id):
                self._reindex(conn, name)
        return True

    def trace_deletions(self) -> int:
        """How many trace deletions this store has seen (not in the protocol)."""
        return int(self._rows("SELECT value FROM meta WHERE key = 'trace_deletions'")[0][0])

    def traces_since(self, token: str | None, *, limit: int = 1000) -> TraceChanges:
        """Traces committed after ``token``, in commit order (see the protocol and this module).

        Raises:
            UsageError: ``limit`` < 1.
        """
        if limit < 1:
            raise UsageError(f"limit must be >= 1 (got {limit})")
        meta = dict(self._rows("SELECT key, value FROM meta "
                               "WHERE key IN ('store_id', 'trace_deletions')"))
        store_id, deletions = int(meta["store_id"]), int(meta["trace_deletions"])
        after = self._resume_at(token, store_id, deletions)
        rows = self._rows("SELECT seq, id, json FROM traces WHERE seq > %s ORDER BY seq LIMIT %s",
                          (after or 0, limit))
        if rows:
            next_token = f"{store_id}:{deletions}:{rows[-1][0]}:{rows[-1][1]}"
        elif after is not None and token is not None:
            next_token = token
        else:
            next_token = f"{store_id}:{deletions}:0:"
        return TraceChanges([Trace.model_validate_json(r[2]) for r in rows], next_token,
                            after is None)

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
        if seq >= 2**63:
            return None
        rows = self._rows("SELECT id FROM traces WHERE seq = %s", (seq,))
        return seq if rows and rows[0][0] == parts[3] else None


def names_by_trace(conn: Conn, trace_id: str) -> list[str]:
    """Names with a version whose lineage lists ``trace_id``, by name.

    ``lineage`` is the JSON text of the id list: a substring test on the id's
    JSON string narrows the rows, the parsed list decides.
    """
    needle = json.dumps(trace_id)
    rows = conn.execute("SELECT name, lineage FROM procedures WHERE strpos(lineage, %s) > 0 "
                        "ORDER BY name", (needle,)).fetchall()
    return list(dict.fromkeys(n for n, lineage in rows if trace_id in json.loads(lineage)))
