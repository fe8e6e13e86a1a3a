"""Jobs and the whole-store listings on PostgreSQL: mixins of :class:`PostgresStore`.

Implements :class:`procmem.store.jobs.JobRecords` (table ``jobs``, migration
``0012_jobs.sql``) and :class:`procmem.store.listing.ListingRecords`; the rules are
those protocols'. Status transitions (:class:`procmem.store.status.StatusRecords`)
need no code of their own here: every outermost transaction takes the store's
writer lock right after ``BEGIN`` (:mod:`.base`), so
:class:`~procmem.store.status.SerializedTransitions` is race-free across hosts.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ...core.errors import UsageError
from ...core.model import utcnow
from ...security.jobs import Job
from ..common import check_alias
from .base import Conn, aware

__all__ = ["JobsPG", "ListingPG"]

_FINISHED = "status IN ('succeeded', 'failed')"


class JobsPG:
    """Job methods of the PostgreSQL store."""

    if TYPE_CHECKING:  # provided by PostgresStore
        def _write(self) -> AbstractContextManager[Conn]: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

    def put_job(self, job: Job) -> None:
        """Insert or replace the record of ``job.id``."""
        with self._write() as conn:
            conn.execute("INSERT INTO jobs (id, status, created_at, json) VALUES (%s, %s, %s, %s) "
                         "ON CONFLICT (id) DO UPDATE SET status = excluded.status, "
                         "json = excluded.json",
                         (job.id, job.status, aware(job.created_at), job.model_dump_json()))

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""
        rows = self._rows("SELECT json FROM jobs WHERE id = %s", (job_id,))
        return Job.model_validate_json(rows[0][0]) if rows else None

    def list_jobs(self, *, limit: int = 100) -> list[Job]:
        """At most ``limit`` jobs, newest first."""
        if limit < 1:
            raise UsageError(f"limit must be positive (got {limit})")
        rows = self._rows("SELECT json FROM jobs ORDER BY created_at DESC, id DESC LIMIT %s",
                          (limit,))
        return [Job.model_validate_json(r[0]) for r in rows]

    def prune_jobs(self, keep: int) -> int:
        """Delete finished jobs but the newest ``keep``; returns how many."""
        if keep < 0:
            raise UsageError(f"keep must not be negative (got {keep})")
        with self._write() as conn:
            cur = conn.execute(
                f"DELETE FROM jobs WHERE {_FINISHED} AND id NOT IN (SELECT id FROM jobs "
                f"WHERE {_FINISHED} ORDER BY created_at DESC, id DESC LIMIT %s)", (keep,))
            return cur.rowcount


class ListingPG:
    """The listings a whole-store copy needs (``procmem copy``)."""

    if TYPE_CHECKING:  # provided by PostgresStore
        def _write(self) -> AbstractContextManager[Conn]: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

    def list_aliases(self) -> dict[str, str]:
        """``{old: new}`` of every renamed procedure."""
        return {str(o): str(n) for o, n in
                self._rows("SELECT old, new FROM procedure_aliases ORDER BY old")}

    def put_alias(self, old: str, new: str) -> None:
        """Record that ``old`` now resolves to ``new`` (never a chain)."""
        check_alias(old, new)
        with self._write() as conn:
            chain = conn.execute("SELECT old, new FROM procedure_aliases "
                                 "WHERE old = %s OR new = %s", (new, old)).fetchone()
            if chain is not None:
                raise UsageError(f"alias {old!r} -> {new!r} would chain with the alias "
                                 f"{chain[0]!r} -> {chain[1]!r}")
            conn.execute("INSERT INTO procedure_aliases (old, new, renamed_at) "
                         "VALUES (%s, %s, %s) ON CONFLICT (old) DO UPDATE SET "
                         "new = excluded.new, renamed_at = excluded.renamed_at",
                         (old, new, utcnow()))

    def list_embedding_hashes(self, model_id: str) -> list[str]:
        """The text hashes with a stored vector of ``model_id``, sorted."""
        return sorted(str(h) for (h,) in self._rows(
            "SELECT hash FROM embeddings WHERE model_id = %s", (model_id,)))

    def list_procedure_names(self) -> list[str]:
        """Every name with a stored version, sorted (the column's collation is "C")."""
        return [str(n) for (n,) in self._rows(
            "SELECT DISTINCT name FROM procedures ORDER BY name")]

    def list_calibration_keys(self) -> list[str]:
        """The keys of the stored calibrations, sorted."""
        return sorted(bytes(k).decode() if isinstance(k, bytes | memoryview) else str(k)
                      for (k,) in self._rows("SELECT key FROM calibrations"))
