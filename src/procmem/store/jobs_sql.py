"""Jobs on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Implements :class:`procmem.store.jobs.JobRecords` on the table ``jobs`` (migration
``0012_jobs.sql``); the rules are those of that protocol.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..core.errors import UsageError
from ..security.jobs import Job
from .common import timestamp

__all__ = ["JobsSQL"]

_FINISHED = "status IN ('succeeded', 'failed')"


class JobsSQL:
    """Job methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def put_job(self, job: Job) -> None:
        """Insert or replace the record of ``job.id``."""
        with self._write() as conn:
            conn.execute("INSERT INTO jobs (id, status, created_at, json) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                         "json = excluded.json",
                         (job.id, job.status, timestamp(job.created_at), job.model_dump_json()))

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""
        rows = self._rows("SELECT json FROM jobs WHERE id = ?", (job_id,))
        return Job.model_validate_json(rows[0][0]) if rows else None

    def list_jobs(self, *, limit: int = 100) -> list[Job]:
        """At most ``limit`` jobs, newest first."""
        if limit < 1:
            raise UsageError(f"limit must be positive (got {limit})")
        rows = self._rows("SELECT json FROM jobs ORDER BY created_at DESC, id DESC LIMIT ?",
                          (limit,))
        return [Job.model_validate_json(r[0]) for r in rows]

    def prune_jobs(self, keep: int) -> int:
        """Delete finished jobs but the newest ``keep``; returns how many."""
        if keep < 0:
            raise UsageError(f"keep must not be negative (got {keep})")
        with self._write() as conn:
            return conn.execute(
                f"DELETE FROM jobs WHERE {_FINISHED} AND id NOT IN (SELECT id FROM jobs "
                f"WHERE {_FINISHED} ORDER BY created_at DESC, id DESC LIMIT ?)", (keep,)).rowcount
