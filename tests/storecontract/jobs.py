"""The contract of :class:`procmem.store.jobs.JobRecords`: stored jobs, newest first."""

from __future__ import annotations

from datetime import timedelta

import pytest

from procmem.core.errors import UsageError
from procmem.core.model import utcnow
from procmem.security.jobs import Job, JobProgress
from procmem.store import Store

from .helpers import unique


def _job(status: str = "queued", minutes: int = 0, **fields: object) -> Job:
    return Job(id=unique("job"), kind="learn", tenant="default", status=status,  # type: ignore[arg-type]
               created_at=utcnow() - timedelta(minutes=minutes), **fields)  # type: ignore[arg-type]


class JobContract:
    """``put_job``, ``get_job``, ``list_jobs``, ``prune_jobs``."""

    def test_a_job_round_trips_and_the_last_put_wins(self, store: Store) -> None:
        job = _job()
        assert store.get_job(job.id) is None
        store.put_job(job)
        assert store.get_job(job.id) == job
        done = job.model_copy(update={"status": "succeeded", "result": {"created": ["a"]},
                                      "progress": JobProgress(done=3, total=3),
                                      "finished_at": utcnow()})
        store.put_job(done)
        assert store.get_job(job.id) == done
        assert store.list_jobs() == [done]

    def test_jobs_are_listed_newest_first_and_limited(self, store: Store) -> None:
        jobs = [_job(minutes=m) for m in (5, 1, 3)]
        for job in jobs:
            store.put_job(job)
        assert [j.id for j in store.list_jobs()] == [jobs[1].id, jobs[2].id, jobs[0].id]
        assert [j.id for j in store.list_jobs(limit=1)] == [jobs[1].id]
        with pytest.raises(UsageError):
            store.list_jobs(limit=0)

    def test_prune_keeps_the_newest_finished_and_every_unfinished_job(self, store: Store) -> None:
        old_running = _job("running", minutes=30)
        finished = [_job(status, minutes=m) for status, m in
                    (("succeeded", 20), ("failed", 10), ("succeeded", 5))]
        for job in (old_running, *finished):
            store.put_job(job)
        assert store.prune_jobs(1) == 2
        assert {j.id for j in store.list_jobs()} == {old_running.id, finished[2].id}
        assert store.prune_jobs(1) == 0
        with pytest.raises(UsageError):
            store.prune_jobs(-1)

    def test_a_job_put_in_a_failed_transaction_is_not_stored(self, store: Store) -> None:
        job = _job()
        with pytest.raises(RuntimeError), store.transaction():
            store.put_job(job)
            raise RuntimeError("undo")
        assert store.get_job(job.id) is None
