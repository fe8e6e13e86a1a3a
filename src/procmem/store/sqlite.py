"""The SQLite backend of :class:`procmem.store.base.Store`: one file, WAL, FTS5.

Invariants:
    * Every record is stored whole as JSON (``model_dump_json(by_alias=True)``);
      the other columns are copies used for lookups and ordering, so reading a
      record back gives a model equal to the one that was put.
    * Identity for the immutability checks: a trace's content without
      ``created_at``; a version's :meth:`Procedure.content` without ``status``
      (re-putting a version whose status was changed is a no-op).
    * Every public write method is one transaction (``BEGIN IMMEDIATE`` ...
      ``COMMIT``); ``put_traces`` stores a whole batch or nothing. Inside
      :meth:`SQLiteStore.transaction` they join the caller's transaction (as
      savepoints), and only the outermost level commits.
    * One connection per store, shared by threads and guarded by an ``RLock``;
      a transaction holds the lock until it ends.
    * The schema comes from numbered migrations (``migrations/NNNN_*.sql``), each
      applied in one transaction and recorded in ``schema_migrations``; opening a
      database applies only the ones it lacks.
    * The current version of a name is its highest ``active`` version, else its
      highest ``deprecated`` one, else its highest ``candidate``.
    * ``procedures_fts`` holds one row per procedure name whose current version
      is active:
      :func:`index_text` of that version. ``procedure_index`` maps the name to
      the row's rowid. The row is rebuilt for a name whenever one of its versions
      is put or changes status, and ``meta.index_revision`` is bumped then.
    * Mixins (``store/*_sql.py``) hold tool schemas and notes (``tools_sql``), the
      search index (``search_sql``), leases, API keys, jobs, run statistics, aliases
      and the trace change feed (``lease_sql``, ``keys_sql``, ``jobs_sql``,
      ``stats_sql``, ``aliases_sql``, ``feed_sql``).
    * A few methods serve tests, benchmarks and ``procmem redact`` and are not
      part of :class:`~procmem.store.base.Store`: ``search_text`` (FTS5 BM25),
      ``put_tool_schema``, ``list_tool_schema_history``, ``find_lease``,
      ``trace_deletions``.
    * No ``sqlite3`` exception escapes a public method: opening failures become
      ``StoreUnavailable``, other failures ``StoreError``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..core.errors import Conflict, NotFound, StoreError, StoreUnavailable
from ..core.model import Evidence, Execution, Procedure, StepRun, Trace
from .aliases_sql import AliasSQL
from .base import index_text
from .common import CURRENT_ORDER as _CURRENT_ORDER
from .common import check_page, check_status, timestamp, trace_content, version_content
from .common import procedure_json as _procedure_json
from .feed_sql import TraceFeedSQL
from .jobs_sql import JobsSQL
from .keys_sql import KeysSQL
from .lease_sql import LeaseSQL
from .migrate import Migration, apply_migrations, load_migrations
from .search_sql import SearchSQL, log_index_change
from .stats_sql import StatsSQL
from .status import SerializedTransitions
from .tools_sql import ToolSchemaSQL

__all__ = ["Migration", "SQLiteStore", "apply_migrations", "load_migrations"]


_BUSY_TIMEOUT_MS, _ID_CHUNK = 5000, 500  # ids per IN (json_each) query

# Names with a version whose lineage lists a trace id (?1).
_NAMES_BY_TRACE = ("SELECT DISTINCT p.name FROM procedures AS p, "
                   "json_each(p.json, '$.lineage.traces') AS j WHERE j.value = ?1 ORDER BY p.name")


# ----------------------------------------------------------------------------- store


class SQLiteStore(TraceFeedSQL, ToolSchemaSQL, SearchSQL, LeaseSQL, KeysSQL, StatsSQL, AliasSQL,
                  JobsSQL, SerializedTransitions):
    """The embedded default store: one SQLite file (or ``":memory:"``); a context manager.

    Example:
        >>> with SQLiteStore(":memory:") as store:
        ...     store.count_traces()
        0
    """

    location: str

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the database at ``path`` and bring its schema up to date.

        Args:
            path: A file path, or ``":memory:"`` for a private in-memory database.

        Raises:
            StoreUnavailable: The file cannot be opened, is not a database, or the
                schema cannot be migrated.
        """
        self.location = os.fsdecode(path)
        self._lock = threading.RLock()
        self._depth = 0
        self._conn: sqlite3.Connection | None = None
        try:
            self._conn = sqlite3.connect(self.location, timeout=_BUSY_TIMEOUT_MS / 1000,
                                         check_same_thread=False, isolation_level=None)
            self._conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            if self.location != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
                # WAL + NORMAL: a commit survives a process crash (the WAL is
                # written before COMMIT returns) and the file is never corrupted;
                # only a power loss may undo the last commits (SQLite docs,
                # "Write-Ahead Logging", section 3.3 "Performance Considerations").
                self._conn.execute("PRAGMA synchronous = NORMAL")
            apply_migrations(self._conn)
        except (sqlite3.Error, StoreError) as err:
            if self._conn is not None:
                self._conn.close()
            raise StoreUnavailable(self.location, str(err)) from err

    def __repr__(self) -> str:
        return f"SQLiteStore({self.location!r})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- plumbing

    @contextmanager
    def _guard(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and turn ``sqlite3`` errors into ``StoreError``."""
        with self._lock:
            if self._conn is None:
                raise StoreError(f"store {self.location!r} is closed")
            try:
                yield self._conn
            except sqlite3.Error as err:
                raise StoreError(f"SQLite failure on {self.location!r}: {err}") from err

    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Run one read and fetch every row, under the lock, errors translated."""
        with self._guard() as conn:
            return conn.execute(sql, params).fetchall()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write: a transaction (or savepoint) whose sqlite errors become ``StoreError``."""
        with self._guard() as conn, self.transaction():
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[SQLiteStore]:
        """Group several writes into one atomic transaction.

        The outermost level runs ``BEGIN IMMEDIATE`` ... ``COMMIT``; nested levels
        are savepoints, so an exception caught inside an outer transaction undoes
        only the inner block. Any exception rolls the level back and propagates.
        The store's lock is held throughout, so other threads wait.

        Yields:
            This store.

        Raises:
            StoreError: SQLite could not begin or commit.
        """
        with self._guard() as conn:
            depth = self._depth
            name = f"procmem_{depth}"
            conn.execute("BEGIN IMMEDIATE" if depth == 0 else f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth = depth
                undo = ["ROLLBACK"] if depth == 0 else [f"ROLLBACK TO {name}", f"RELEASE {name}"]
                try:
                    for sql in undo:
                        conn.execute(sql)
                except sqlite3.Error:
                    pass  # the original exception is the one worth reporting
                raise
            self._depth = depth
            try:
                conn.execute("COMMIT" if depth == 0 else f"RELEASE {name}")
            except sqlite3.Error:
                if depth == 0 and conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def close(self) -> None:
        """Release the connection; later calls raise ``StoreError``. Idempotent."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------- traces

    def put_traces(self, traces: Iterable[Trace]) -> int:
        """Store traces in one transaction: all of them, or none.

        An id already stored with the same content (``created_at`` aside) is skipped.

        Returns:
            How many traces were new.

        Raises:
            Conflict: An id is stored with different content; nothing of the batch is stored.
        """
        new = 0
        with self._write() as conn:
            for trace in traces:
                row = conn.execute("SELECT json FROM traces WHERE id = ?", (trace.id,)).fetchone()
                if row is not None:
                    if trace_content(Trace.model_validate_json(row[0])) != trace_content(trace):
                        raise Conflict("trace", trace.id, "already stored with different content")
                    continue
                conn.execute(
                    "INSERT INTO traces (id, json, task, seq, created_at) VALUES "
                    "(?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM traces), ?)",
                    (trace.id, trace.model_dump_json(by_alias=True), trace.task,
                     timestamp(trace.created_at)),
                )
                new += 1
        return new

    def get_trace(self, trace_id: str) -> Trace:
        """The trace with this id.

        Raises:
            NotFound: No trace has this id.
        """
        rows = self._rows("SELECT json FROM traces WHERE id = ?", (trace_id,))
        if not rows:
            raise NotFound("trace", trace_id)
        return Trace.model_validate_json(rows[0][0])

    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        """Traces in insertion order, ``limit`` at most, skipping the first ``offset``.

        Raises:
            UsageError: ``limit`` or ``offset`` is negative.
        """
        check_page(limit, offset)
        rows = self._rows("SELECT json FROM traces ORDER BY seq LIMIT ? OFFSET ?", (limit, offset))
        return [Trace.model_validate_json(r[0]) for r in rows]

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        """The stored traces among ``trace_ids``, in insertion order; unknown ids are left out."""
        unique = list(dict.fromkeys(trace_ids))
        rows: list[tuple[int, str]] = []
        for i in range(0, len(unique), _ID_CHUNK):
            rows.extend(self._rows(
                "SELECT seq, json FROM traces WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(unique[i:i + _ID_CHUNK]),)))
        rows.sort()
        return [Trace.model_validate_json(j) for _, j in rows]

    def count_traces(self) -> int:
        """How many traces are stored."""
        return int(self._rows("SELECT COUNT(*) FROM traces")[0][0])

    def delete_trace(self, trace_id: str) -> bool:
        """Delete one trace; False if there was none.

        In the same transaction, ``meta.trace_deletions`` grows and the names
        whose current version's lineage lists the trace are re-indexed (their
        search documents lose its task). Procedure versions are not changed.
        """
        with self._write() as conn:
            gone = conn.execute("DELETE FROM traces WHERE id = ?", (trace_id,)).rowcount
            if not gone:
                return False
            conn.execute("INSERT INTO meta (key, value) VALUES ('trace_deletions', 1) "
                         "ON CONFLICT (key) DO UPDATE SET value = value + 1")
            for (name,) in conn.execute(_NAMES_BY_TRACE, (trace_id,)).fetchall():
                self._reindex(conn, name)
        return True

    def list_versions_by_trace(self, trace_id: str) -> list[Procedure]:
        """Every version whose lineage lists ``trace_id``, by name then version."""
        rows = self._rows(
            "SELECT p.json FROM procedures AS p WHERE EXISTS (SELECT 1 FROM "
            "json_each(p.json, '$.lineage.traces') AS j WHERE j.value = ?) "
            "ORDER BY p.name, p.version", (trace_id,))
        return [Procedure.model_validate_json(r[0]) for r in rows]

    # --------------------------------------------------------------- procedures

    def put_procedure(self, procedure: Procedure) -> bool:
        """Store one immutable procedure version and re-index its name for search.

        A version already stored with the same content (:meth:`Procedure.content`
        without ``status``) is left as it is, stored status included: status
        changes go through :meth:`set_status` only.

        Returns:
            True if the version was new, False if it was already stored.

        Raises:
            Conflict: ``(name, version)`` is stored with different content.
        """
        with self._write() as conn:
            row = conn.execute(
                "SELECT json FROM procedures WHERE name = ? AND version = ?",
                (procedure.name, procedure.version),
            ).fetchone()
            if row is not None:
                stored = Procedure.model_validate_json(row[0])
                if version_content(stored) != version_content(procedure):
                    raise Conflict("procedure", procedure.key,
                                   "version already stored with different content")
                return False
            conn.execute(
                "INSERT INTO procedures (name, version, status, json, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (procedure.name, procedure.version, procedure.status,
                 _procedure_json(procedure), timestamp(procedure.created_at)),
            )
            self._reindex(conn, procedure.name)
        return True

    def _reindex(self, conn: sqlite3.Connection, name: str) -> None:
        """Rebuild the search document of ``name`` from its current version.

        The current version is indexed whatever its status (kept in
        ``procedure_index.status``); the row is replaced by rowid,
        ``index_revision`` is bumped and the change logged (``index_log``).
        """
        log_index_change(conn, name)
        old = conn.execute("SELECT id FROM procedure_index WHERE name = ?", (name,)).fetchone()
        if old is not None:
            conn.execute("DELETE FROM procedures_fts WHERE rowid = ?", (old[0],))
            conn.execute("DELETE FROM procedure_index WHERE id = ?", (old[0],))
        row = conn.execute(
            f"SELECT json FROM procedures WHERE name = ? ORDER BY {_CURRENT_ORDER} LIMIT 1",
            (name,),
        ).fetchone()
        if row is None:
            return
        procedure = Procedure.model_validate_json(row[0])
        ids = list(dict.fromkeys(procedure.lineage.traces))
        tasks = [
            r[0]
            for r in conn.execute(
                "SELECT t.task FROM json_each(?) AS j JOIN traces AS t ON t.id = j.value "
                "ORDER BY j.key",
                (json.dumps(ids),),
            )
        ]
        rowid = conn.execute("INSERT INTO procedure_index (name, status) VALUES (?, ?)",
                             (name, procedure.status)).lastrowid
        conn.execute("INSERT INTO procedures_fts (rowid, body) VALUES (?, ?)",
                     (rowid, index_text(procedure, tasks)))

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One version of a procedure.

        Args:
            name: The procedure's name.
            version: A version number, or None for the current version: the
                highest active, else the highest deprecated, else the highest candidate.

        Raises:
            NotFound: No such procedure, or no such version.
        """
        sql = "SELECT json FROM procedures WHERE name = ?"
        if version is None:
            rows = self._rows(f"{sql} ORDER BY {_CURRENT_ORDER} LIMIT 1", (name,))
        else:
            rows = self._rows(f"{sql} AND version = ?", (name, version))
        if not rows:
            raise NotFound("procedure", name if version is None else f"{name}@{version}")
        return Procedure.model_validate_json(rows[0][0])

    def list_procedures(
        self, *, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Procedure]:
        """The current version of each procedure by name; ``limit`` of them after ``offset``.

        Args:
            status: Keep only names whose *current* version has this status.

        Raises:
            UsageError: Unknown ``status``, or a negative ``limit``/``offset``.
        """
        check_page(limit, offset)
        if status is not None:
            check_status(status)
        rows = self._rows(
            "SELECT json FROM (SELECT name, status, json, ROW_NUMBER() OVER "
            f"(PARTITION BY name ORDER BY {_CURRENT_ORDER}) AS rank FROM procedures) "
            "WHERE rank = 1 AND (?1 IS NULL OR status = ?1) ORDER BY name LIMIT ?2 OFFSET ?3",
            (status, limit, offset),
        )
        return [Procedure.model_validate_json(r[0]) for r in rows]

    def list_versions(self, name: str) -> list[Procedure]:
        """Every version of one procedure, oldest (lowest version) first.

        Raises:
            NotFound: No version of ``name`` is stored.
        """
        rows = self._rows("SELECT json FROM procedures WHERE name = ? ORDER BY version", (name,))
        if not rows:
            raise NotFound("procedure", name)
        return [Procedure.model_validate_json(r[0]) for r in rows]

    def set_status(self, name: str, version: int, status: str) -> None:
        """Change one version's status and re-index the name for search.

        Raises:
            UsageError: ``status`` is not candidate, active or deprecated.
            NotFound: The version does not exist.
        """
        check_status(status)
        with self._write() as conn:
            row = conn.execute(
                "SELECT json FROM procedures WHERE name = ? AND version = ?", (name, version)
            ).fetchone()
            if row is None:
                raise NotFound("procedure", f"{name}@{version}")
            updated = Procedure.model_validate_json(row[0]).model_copy(update={"status": status})
            conn.execute(
                "UPDATE procedures SET status = ?, json = ? WHERE name = ? AND version = ?",
                (status, _procedure_json(updated), name, version),
            )
            self._reindex(conn, name)

    def set_pinned(self, name: str, pinned: bool) -> None:
        """Pin or unpin a procedure name (pinned ones are exempt from decay).

        Raises:
            NotFound: No version of ``name`` is stored.
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM procedures WHERE name = ? LIMIT 1",
                            (name,)).fetchone() is None:
                raise NotFound("procedure", name)
            conn.execute(
                "INSERT INTO procedure_flags (name, pinned) VALUES (?, ?) "
                "ON CONFLICT (name) DO UPDATE SET pinned = excluded.pinned",
                (name, int(pinned)),
            )

    def is_pinned(self, name: str) -> bool:
        """True when ``name`` is pinned (unknown names are not)."""
        rows = self._rows("SELECT pinned FROM procedure_flags WHERE name = ?", (name,))
        return bool(rows and rows[0][0])

    def put_verification(self, name: str, version: int, record: dict[str, Any]) -> None:
        """Store (replace) the verification record of one version, a JSON object.

        Raises:
            NotFound: The version does not exist.
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM procedures WHERE name = ? AND version = ?",
                            (name, version)).fetchone() is None:
                raise NotFound("procedure", f"{name}@{version}")
            conn.execute(
                "INSERT INTO verifications (name, version, json) VALUES (?, ?, ?) "
                "ON CONFLICT (name, version) DO UPDATE SET json = excluded.json",
                (name, version, json.dumps(record, default=str)),
            )

    def get_verification(self, name: str, version: int) -> dict[str, Any] | None:
        """The verification record of one version, or ``None``."""
        rows = self._rows("SELECT json FROM verifications WHERE name = ? AND version = ?",
                          (name, version))
        return json.loads(rows[0][0]) if rows else None

    def delete_procedure(self, name: str) -> bool:
        """Delete every version of ``name`` with its flags, verifications, notes and index row.

        Executions and evidence are kept (they are the episodic record).
        Returns True when something was deleted.
        """
        with self._write() as conn:
            gone = conn.execute("DELETE FROM procedures WHERE name = ?", (name,)).rowcount
            conn.execute("DELETE FROM procedure_flags WHERE name = ?", (name,))
            conn.execute("DELETE FROM verifications WHERE name = ?", (name,))
            conn.execute("DELETE FROM procedure_notes WHERE name = ?", (name,))
            self._reindex(conn, name)
        return bool(gone)

    # --------------------------------------------------------------- executions

    def put_execution(self, execution: Execution) -> None:
        """Upsert an execution's header; ``step_runs`` are ignored (see :meth:`put_step_run`).

        A header whose status is not ``running`` clears the execution's lease.
        """
        header = execution.model_dump_json(by_alias=True, exclude={"step_runs"})
        with self._write() as conn:
            conn.execute(
                "INSERT INTO executions (id, procedure, version, status, json, started_at, seq) "
                "VALUES (?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM executions)) "
                "ON CONFLICT (id) DO UPDATE SET procedure = excluded.procedure, "
                "version = excluded.version, status = excluded.status, json = excluded.json, "
                "started_at = excluded.started_at, "
                "lease_owner = CASE excluded.status WHEN 'running' THEN lease_owner END, "
                "lease_expires_at = CASE excluded.status WHEN 'running' THEN lease_expires_at END",
                (execution.id, execution.procedure, execution.version, execution.status,
                 header, timestamp(execution.started_at)),
            )

    def put_step_run(self, execution_id: str, step_run: StepRun) -> None:
        """Upsert one step run by ``(execution_id, step_run.index)`` and commit at once.

        Raises:
            NotFound: The execution's header was never put.
        """
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM executions WHERE id = ?", (execution_id,))
            if exists.fetchone() is None:
                raise NotFound("execution", execution_id)
            conn.execute(
                "INSERT INTO step_runs (execution_id, idx, json) VALUES (?, ?, ?) "
                "ON CONFLICT (execution_id, idx) DO UPDATE SET json = excluded.json",
                (execution_id, step_run.index, step_run.model_dump_json(by_alias=True)),
            )

    def _with_step_runs(self, conn: sqlite3.Connection, headers: list[str]) -> list[Execution]:
        """Executions from header JSON, each with its step runs by index."""
        executions = [Execution.model_validate_json(h) for h in headers]
        runs: dict[str, list[StepRun]] = {e.id: [] for e in executions}
        if runs:
            for execution_id, data in conn.execute(
                "SELECT execution_id, json FROM step_runs WHERE execution_id IN "
                "(SELECT value FROM json_each(?)) ORDER BY execution_id, idx",
                (json.dumps(list(runs)),),
            ):
                runs[execution_id].append(StepRun.model_validate_json(data))
        return [e.model_copy(update={"step_runs": runs[e.id]}) for e in executions]

    def get_execution(self, execution_id: str) -> Execution:
        """The execution with its step runs, sorted by index.

        Raises:
            NotFound: No execution has this id.
        """
        with self._guard() as conn:
            rows = self._rows("SELECT json FROM executions WHERE id = ?", (execution_id,))
            if not rows:
                raise NotFound("execution", execution_id)
            return self._with_step_runs(conn, [rows[0][0]])[0]

    def list_executions(
        self, *, procedure: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[Execution]:
        """Executions with their step runs, newest first (``started_at``, then insertion).

        Args:
            procedure: Keep only executions of this procedure name.
            limit: At most this many executions, after skipping ``offset``.

        Raises:
            UsageError: ``limit`` or ``offset`` is negative.
        """
        check_page(limit, offset)
        with self._guard() as conn:
            rows = conn.execute(
                "SELECT json FROM executions WHERE (?1 IS NULL OR procedure = ?1) "
                "ORDER BY started_at DESC, seq DESC LIMIT ?2 OFFSET ?3",
                (procedure, limit, offset),
            ).fetchall()
            return self._with_step_runs(conn, [r[0] for r in rows])

    # ----------------------------------------------------------------- evidence

    def put_evidence(self, evidence: Evidence) -> None:
        """Append one evidence record (evidence is never changed or removed)."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO evidence (execution_id, json, created_at) VALUES (?, ?, ?)",
                (evidence.execution_id, evidence.model_dump_json(by_alias=True),
                 timestamp(evidence.created_at)),
            )

    def list_evidence(self, execution_id: str | None = None, *,
                      procedure: str | None = None) -> list[Evidence]:
        """Evidence oldest first (``created_at``, then insertion).

        Args:
            execution_id: Only evidence about this execution.
            procedure: Only evidence about executions of this procedure name.
        """
        rows = self._rows(
            "SELECT e.json FROM evidence AS e WHERE (?1 IS NULL OR e.execution_id = ?1) "
            "AND (?2 IS NULL OR e.execution_id IN "
            "(SELECT id FROM executions WHERE procedure = ?2)) "
            "ORDER BY e.created_at, e.id",
            (execution_id, procedure),
        )
        return [Evidence.model_validate_json(r[0]) for r in rows]
