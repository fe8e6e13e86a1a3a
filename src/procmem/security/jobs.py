"""Long work off the request path: jobs with an id, a status and progress.

``learn`` and ``optimize`` can take minutes on a large store. A server must not
hold a request (or the other requests) while they run, so the REST API runs
them as jobs when asked to (``Prefer: respond-async``, RFC 7240 §4.1): the
request is answered ``202 Accepted`` at once with the job and a ``Location``
header, and ``GET /jobs/{id}`` tells its status and progress until it has a
result or an error.

Invariants:
    * Jobs run one at a time, in the order they were submitted (one worker
      thread): two ``learn`` runs on one store never race each other.
    * A job belongs to its tenant: :meth:`JobRunner.get` and
      :meth:`JobRunner.list` of another tenant never see it (a foreign id reads
      as not found, like an id that does not exist).
    * A job that raises ends ``failed`` with our error's code and message (a
      bug that is not a :class:`~procmem.core.errors.ProcmemError` is logged with its
      traceback and reported as ``internal``); nothing is swallowed silently.
    * Jobs live in the server process (they are not stored): a restart forgets
      them. The last ``keep`` finished jobs per runner are kept.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from ..core.errors import NotFound, ProcmemError

__all__ = ["Job", "JobProgress", "JobRunner", "JobWork"]

log = logging.getLogger("procmem.security.jobs")

Progress = Callable[[int, int], None]
JobWork = Callable[[Progress], dict[str, Any]]
"""``work(progress) -> result``: the job's body; it calls ``progress(done, total)``."""


class JobProgress(BaseModel):
    """How far a job is: ``done`` of ``total`` units (groups for ``learn``,
    procedures for ``optimize``); ``total`` is ``None`` until known."""

    done: int = Field(default=0, ge=0)
    total: int | None = Field(default=None, ge=0)


class Job(BaseModel):
    """One job: what it is, where it stands, and how it ended.

    ``status``: ``queued`` → ``running`` → ``succeeded`` (``result`` set) or
    ``failed`` (``error`` = ``{"code", "message"}``). Times are UTC.
    """

    id: str
    kind: str
    tenant: str
    status: Literal["queued", "running", "succeeded", "failed"] = "queued"
    progress: JobProgress = Field(default_factory=lambda: JobProgress())
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None


class JobRunner:
    """Runs jobs one at a time on a worker thread and keeps their state.

    Thread-safe: every method may be called from any thread.

    Args:
        keep: How many finished jobs to remember (older ones are forgotten).
    """

    def __init__(self, *, keep: int = 100) -> None:
        self._keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="procmem-job")

    def submit(self, kind: str, tenant: str, work: JobWork) -> Job:
        """Queue ``work`` as a job of ``tenant``; returns the job (status ``queued``)."""
        job = Job(id=uuid.uuid4().hex, kind=kind, tenant=tenant, created_at=_now())
        with self._lock:
            self._jobs[job.id] = job
            self._forget_old()
            snapshot = job.model_copy(deep=True)
        self._pool.submit(self._run, job.id, work)
        return snapshot

    def get(self, tenant: str, job_id: str) -> Job:
        """A copy of job ``job_id`` of ``tenant``.

        Raises:
            NotFound: No such job for this tenant (or forgotten).
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.tenant != tenant:
                raise NotFound("job", job_id)
            return job.model_copy(deep=True)

    def list(self, tenant: str) -> list[Job]:
        """Copies of ``tenant``'s jobs, newest first."""
        with self._lock:
            return [j.model_copy(deep=True) for j in reversed(self._jobs.values())
                    if j.tenant == tenant]

    def wait(self, tenant: str, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job has finished (or ``timeout`` seconds); returns its state.

        Raises:
            NotFound: No such job for this tenant.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.get(tenant, job_id)
            if job.status in ("succeeded", "failed"):
                return job
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return job
            time.sleep(0.02 if left is None else min(0.02, left))

    def close(self) -> None:
        """Stop taking jobs and wait for the one running to end."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    # ----------------------------------------------------------------- internals

    def _run(self, job_id: str, work: JobWork) -> None:
        self._update(job_id, status="running", started_at=_now())

        def progress(done: int, total: int) -> None:
            self._update(job_id, progress=JobProgress(done=max(done, 0), total=max(total, 0)))

        try:
            result = work(progress)
        except ProcmemError as err:
            self._update(job_id, status="failed", finished_at=_now(),
                         error={"code": err.code, "message": str(err)})
        except Exception as err:  # a bug: logged with its traceback, reported as internal
            log.exception("job %s failed", job_id)
            self._update(job_id, status="failed", finished_at=_now(),
                         error={"code": "internal",
                                "message": f"internal error ({type(err).__name__}); "
                                           "see the server log"})
        else:
            self._update(job_id, status="succeeded", finished_at=_now(), result=result)

    def _update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None:
                self._jobs[job_id] = job.model_copy(update=fields)

    def _forget_old(self) -> None:
        finished = [i for i, j in self._jobs.items() if j.status in ("succeeded", "failed")]
        for job_id in finished[:max(0, len(finished) - self._keep)]:
            del self._jobs[job_id]


def _now() -> datetime:
    return datetime.now(UTC)
