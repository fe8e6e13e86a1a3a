"""Long work off the request path: jobs with an id, a status and progress.

``learn`` and ``optimize`` can take minutes on a large store. A server must not
hold a request (or the other requests) while they run, so the REST API runs
them as jobs when asked to (``Prefer: respond-async``, RFC 7240 §4.1): the
request is answered ``202 Accepted`` at once with the job and a ``Location``
header, and ``GET /jobs/{id}`` tells its status and progress until it has a
result or an error.

Invariants:
    * A job's state lives in its tenant's store (:class:`procmem.store.jobs.JobRecords`),
      so every server process on that store answers for it alike (behind a load
      balancer, the next request may reach another replica); a restart keeps it.
    * Jobs run in the process that accepted them, one at a time, in the order they
      were submitted (one worker thread): two ``learn`` runs submitted to one
      process never race each other.
    * While a job is queued or running, its process rewrites ``heartbeat_at``
      every ``heartbeat_s`` seconds. A queued or running job whose heartbeat is
      older than ``stale_s`` reads as ``failed`` with code ``lost`` (its process
      stopped): nobody waits forever on a job no process runs.
    * A job belongs to its tenant: it is stored in the tenant's store, and
      :meth:`JobRunner.get` checks the tenant too (a foreign id reads as not
      found, like an id that does not exist).
    * A job that raises ends ``failed`` with our error's code and message (a
      bug that is not a :class:`~procmem.core.errors.ProcmemError` is logged with its
      traceback and reported as ``internal``); nothing is swallowed silently.
    * Progress is written at most every ``progress_s`` seconds (and always at the
      end); the last ``keep`` finished jobs per store are kept.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from ..core.errors import NotFound, ProcmemError, UsageError

if TYPE_CHECKING:
    from ..store.base import Store

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
    ``failed`` (``error`` = ``{"code", "message"}``). Times are UTC;
    ``heartbeat_at`` is the last sign of life of the process that runs it.
    """

    id: str
    kind: str
    tenant: str
    status: Literal["queued", "running", "succeeded", "failed"] = "queued"
    progress: JobProgress = Field(default_factory=lambda: JobProgress())
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def seen_by(self, now: datetime, stale_s: float) -> Job:
        """This job as a reader sees it at ``now``: a queued or running job whose
        heartbeat (else creation) is older than ``stale_s`` seconds is ``failed``
        with code ``lost``."""
        if self.status in ("succeeded", "failed"):
            return self
        last = self.heartbeat_at or self.created_at
        silent = (now - last).total_seconds()
        if silent <= stale_s:
            return self
        return self.model_copy(update={
            "status": "failed", "finished_at": last,
            "error": {"code": "lost", "message": f"the server process running this job stopped "
                                                 f"(no heartbeat for {silent:.0f} s)"}})


class JobRunner:
    """Runs jobs one at a time on a worker thread; their state lives in the store.

    Thread-safe: every method may be called from any thread.

    Args:
        store_of: The store of a tenant (``store_of(tenant) -> Store``).
        keep: How many finished jobs a store keeps (older ones are deleted).
        heartbeat_s: Seconds between heartbeats of this process's queued and
            running jobs.
        stale_s: Seconds without a heartbeat after which a job reads as lost;
            must exceed ``heartbeat_s``.

    Raises:
        UsageError: ``keep`` negative, or ``stale_s`` not above ``heartbeat_s > 0``.
    """

    def __init__(self, store_of: Callable[[str], Store], *, keep: int = 100,
                 heartbeat_s: float = 5.0, stale_s: float = 60.0,
                 progress_s: float = 0.5) -> None:
        if keep < 0 or not 0 < heartbeat_s < stale_s:
            raise UsageError("JobRunner needs keep >= 0 and 0 < heartbeat_s < stale_s "
                             f"(got keep={keep}, heartbeat_s={heartbeat_s}, stale_s={stale_s})")
        self._store_of = store_of
        self._keep, self._heartbeat_s, self._stale_s = keep, heartbeat_s, stale_s
        self._progress_s = progress_s
        self._live: dict[str, Job] = {}  # this process's queued and running jobs
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="procmem-job")
        self._beat = threading.Thread(target=self._heartbeats, name="procmem-job-heartbeat",
                                      daemon=True)
        self._beat.start()

    def submit(self, kind: str, tenant: str, work: JobWork) -> Job:
        """Queue ``work`` as a job of ``tenant``; returns the job (status ``queued``).

        Raises:
            StoreError: The job could not be stored (nothing is queued then).
        """
        now = _now()
        job = Job(id=uuid.uuid4().hex, kind=kind, tenant=tenant, created_at=now, heartbeat_at=now)
        with self._lock:
            self._save(job)
            self._store_of(tenant).prune_jobs(self._keep)
        self._pool.submit(self._run, job.id, work)
        return job

    def get(self, tenant: str, job_id: str) -> Job:
        """Job ``job_id`` of ``tenant`` as stored (a silent one reads as lost).

        Raises:
            NotFound: No such job for this tenant (or deleted).
        """
        job = self._store_of(tenant).get_job(job_id)
        if job is None or job.tenant != tenant:
            raise NotFound("job", job_id)
        return job.seen_by(_now(), self._stale_s)

    def list(self, tenant: str) -> list[Job]:
        """``tenant``'s stored jobs (of every process on its store), newest first."""
        now = _now()
        return [j.seen_by(now, self._stale_s)
                for j in self._store_of(tenant).list_jobs(limit=max(self._keep, 1) + 100)
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
        """Stop taking jobs, wait for the one running to end, stop the heartbeats.

        Jobs still queued are cancelled: they end ``failed`` with code ``cancelled``.
        """
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._stop.set()
        self._beat.join()
        with self._lock:
            for job in list(self._live.values()):
                self._save(job.model_copy(update={
                    "status": "failed", "finished_at": _now(),
                    "error": {"code": "cancelled", "message": "the server stopped first"}}))

    # ----------------------------------------------------------------- internals

    def _save(self, job: Job) -> None:
        """Store ``job`` (under ``self._lock``); track it while it is not finished."""
        self._store_of(job.tenant).put_job(job)
        if job.status in ("queued", "running"):
            self._live[job.id] = job
        else:
            self._live.pop(job.id, None)

    def _update(self, job_id: str, **fields: Any) -> None:
        with self._lock:
            job = self._live.get(job_id)
            if job is not None:
                self._save(job.model_copy(update={**fields, "heartbeat_at": _now()}))

    def _heartbeats(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            with self._lock:
                for job in list(self._live.values()):
                    try:
                        self._save(job.model_copy(update={"heartbeat_at": _now()}))
                    except ProcmemError:  # the store is busy or gone: logged, tried again
                        log.warning("job %s: heartbeat not stored", job.id, exc_info=True)

    def _run(self, job_id: str, work: JobWork) -> None:
        self._update(job_id, status="running", started_at=_now())
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done < total and now - last[0] < self._progress_s:
                return
            last[0] = now
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


def _now() -> datetime:
    return datetime.now(UTC)
