"""The job records of the store contract: long work's state, shared by every process.

A server answers ``POST /learn`` with ``Prefer: respond-async`` at once and runs the
work as a job (:class:`procmem.security.jobs.JobRunner`). Behind a load balancer the
next ``GET /jobs/{id}`` may reach another process, so a job's state lives in the
store, not in the process that runs it.

Rules a backend must follow (tested by ``tests/storecontract/jobs.py``):
    * ``put_job`` inserts or replaces the whole record of ``job.id``; the last put
      wins. It is one write (it joins an open :meth:`~procmem.store.base.UnitOfWork.transaction`).
    * ``get_job`` returns an equal record (``Job`` model equality) or ``None``.
    * ``list_jobs`` is newest first: ``created_at`` descending, then ``id`` descending.
    * ``prune_jobs(keep)`` deletes finished jobs (``succeeded``/``failed``) but the
      newest ``keep`` of them (same order); queued and running jobs are never pruned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from ..security.jobs import Job

__all__ = ["JobRecords"]


@runtime_checkable
class JobRecords(Protocol):
    """Jobs of long work (learn, optimize): status, progress, result or error."""

    def put_job(self, job: Job) -> None:
        """Insert or replace the record of ``job.id``.

        Raises:
            StoreError: The backend failed (nothing is changed then).
        """
        ...

    def get_job(self, job_id: str) -> Job | None:
        """The job with this id, or ``None``."""
        ...

    def list_jobs(self, *, limit: int = 100) -> list[Job]:
        """At most ``limit`` jobs, newest first.

        Raises:
            UsageError: ``limit`` is not positive.
        """
        ...

    def prune_jobs(self, keep: int) -> int:
        """Delete finished jobs but the newest ``keep``; returns how many were deleted.

        Raises:
            UsageError: ``keep`` is negative.
        """
        ...
