"""Long work (learn, optimize) never holds the server's other requests (issue "Secure by
default"): it runs on its own connection to the store, and /health only asks the store."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from keyed import rest_client
from procmem.core.model import Trace, TraceStep
from procmem.memory import Memory


def _traces() -> list[Trace]:
    return [Trace(task=f"Cancel order #W{n:07d} because no longer needed.", outcome="success",
                  steps=[TraceStep(action="cancel_pending_order",
                                   args={"order_id": f"#W{n:07d}"}, output="ok")])
            for n in range(1000001, 1000004)]


@pytest.mark.parametrize("route", ["/learn", "/optimize"])
def test_health_and_reads_answer_while_learn_or_optimize_runs(
        route: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder=None) as seed:
        seed.learn(_traces())
    started, release = threading.Event(), threading.Event()
    method = route.strip("/")
    original = getattr(Memory, method)

    def held(self: Memory, *args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(30), "the test never released the long work"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Memory, method, held)
    with rest_client(Memory(db, embedder=None)) as client:
        done: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: done.update(r=client.post(route)))
        worker.start()
        try:
            assert started.wait(30)
            # the long work is in progress (held): other requests still answer
            assert client.get("/health").status_code == 200
            listed = client.get("/procedures")
            assert listed.status_code == 200 and listed.json()
            assert not done  # still running
        finally:
            release.set()
            worker.join(30)
        assert done["r"].status_code == 200, done["r"].text


# ---------------------------------------------------------------- jobs (Prefer: respond-async)

ASYNC = {"Prefer": "respond-async"}


def _finished(client: Any, url: str) -> dict[str, Any]:
    for _ in range(1500):  # generous: a loaded 2-core machine
        job = client.get(url)
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("succeeded", "failed"):
            return dict(job.json())
        threading.Event().wait(0.02)
    raise AssertionError(f"job {url} never finished")


@pytest.mark.parametrize("route", ["/learn", "/optimize"])
def test_long_work_as_a_job_answers_202_then_reports_progress_and_result(
        route: str, tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder=None) as seed:
        seed.add_traces(_traces())
    with rest_client(Memory(db, embedder=None)) as client:
        accepted = client.post(route, headers=ASYNC)
        assert accepted.status_code == 202, accepted.text
        assert accepted.headers["Preference-Applied"] == "respond-async"
        job = accepted.json()
        assert accepted.headers["Location"] == f"/jobs/{job['id']}"
        assert job["kind"] == route.strip("/") and job["tenant"] == "default"
        done = _finished(client, accepted.headers["Location"])
        assert done["status"] == "succeeded", done
        assert done["progress"]["total"] is not None
        assert done["progress"]["done"] == done["progress"]["total"] >= 1
        # the job's result has the shape of the synchronous route's body
        assert set(done["result"]) == set(client.post(route).json())
        assert [j["id"] for j in client.get("/jobs").json()] == [job["id"]]


def test_a_learn_job_learns_what_the_synchronous_route_would(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder=None) as seed:
        seed.add_traces(_traces())
    with rest_client(Memory(db, embedder=None)) as client:
        done = _finished(client, client.post("/learn", headers=ASYNC).headers["Location"])
        assert done["result"]["created"] == ["cancel_pending_order"]
        assert [p["name"] for p in client.get("/procedures").json()] == ["cancel_pending_order"]


def test_health_answers_while_a_job_runs_and_the_job_is_its_tenants_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder=None) as seed:
        seed.add_traces(_traces())
    started, release = threading.Event(), threading.Event()
    original = Memory.learn

    def held(self: Memory, *args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(30), "the test never released the long work"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Memory, "learn", held)
    with rest_client(Memory(db, embedder=None)) as client:
        _, other = client.app.state.tenants.keyring().create(tenant="acme", scopes=("read",))
        try:
            accepted = client.post("/learn", headers=ASYNC)
            assert accepted.status_code == 202  # answered before the work ran
            assert started.wait(30)
            assert client.get("/health").status_code == 200
            running = client.get(accepted.headers["Location"]).json()
            assert running["status"] == "running"
            foreign = {"Authorization": f"Bearer {other}"}
            assert client.get(accepted.headers["Location"], headers=foreign).status_code == 404
            assert client.get("/jobs", headers=foreign).json() == []
        finally:
            release.set()
        assert _finished(client, accepted.headers["Location"])["status"] == "succeeded"


def test_a_failing_job_ends_failed_with_our_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from procmem.core.errors import LimitExceeded

    def refuse(self: Memory, *args: Any, **kwargs: Any) -> Any:
        raise LimitExceeded("procedures in this store (one tenant)", 2, 1)

    monkeypatch.setattr(Memory, "learn", refuse)
    with rest_client(tmp_path / "m.db") as client:
        done = _finished(client, client.post("/learn", headers=ASYNC).headers["Location"])
        assert done["status"] == "failed" and done["result"] is None
        assert done["error"]["code"] == "limit_exceeded", done
        assert client.get("/jobs/" + "0" * 32).status_code == 404


def test_prefer_header_parsing_follows_rfc_7240() -> None:
    from procmem.rest.jobs import respond_async
    assert respond_async("respond-async")
    assert respond_async("return=minimal, Respond-Async; foo=1")
    assert respond_async("wait=10, respond-async")
    assert not respond_async(None) and not respond_async("")
    assert not respond_async("respond-asynchronously") and not respond_async("return=minimal")


def test_the_job_runner_runs_in_order_and_forgets_old_finished_jobs() -> None:
    from procmem.core.errors import NotFound
    from procmem.security.jobs import JobRunner
    from procmem.store import open_store
    store = open_store(":memory:")
    runner = JobRunner(lambda tenant: store, keep=2)
    seen: list[int] = []
    try:
        ids = [runner.submit("k", "t", lambda p, n=n: (seen.append(n), {"n": n})[1]).id
               for n in range(4)]
        last = runner.wait("t", ids[-1], timeout=30)
        assert last.status == "succeeded" and last.result == {"n": 3}
        assert seen == [0, 1, 2, 3]
        runner.submit("k", "t", lambda p: {})  # submitting forgets beyond `keep`
        with pytest.raises(NotFound):
            runner.get("t", ids[0])
        with pytest.raises(NotFound):
            runner.get("other", ids[-1])
    finally:
        runner.close()
        store.close()


def test_a_job_is_seen_alike_by_every_process_on_the_store(tmp_path: Path) -> None:
    """Two runners on one SQLite file stand for two server processes behind a load
    balancer: the job one of them runs is read, with its progress, through the other."""
    from procmem.security.jobs import JobRunner
    from procmem.store import open_store
    path = str(tmp_path / "shared.db")
    first, second = open_store(path), open_store(path)
    go = threading.Event()
    at_half = threading.Event()

    def work(progress: Any) -> dict[str, Any]:
        progress(1, 2)
        at_half.set()
        assert go.wait(30)
        progress(2, 2)
        return {"done": True}

    runner_a = JobRunner(lambda tenant: first, progress_s=0.0)
    runner_b = JobRunner(lambda tenant: second)
    try:
        job = runner_a.submit("learn", "default", work)
        assert at_half.wait(30)
        seen = runner_b.get("default", job.id)
        assert (seen.status, seen.progress.done, seen.progress.total) == ("running", 1, 2)
        assert [j.id for j in runner_b.list("default")] == [job.id]
        go.set()
        done = runner_b.wait("default", job.id, timeout=30)
        assert done.status == "succeeded" and done.result == {"done": True}
    finally:
        go.set()
        runner_a.close()
        runner_b.close()
        first.close()
        second.close()


def test_a_job_whose_process_stopped_reads_as_lost_not_running_forever() -> None:
    from datetime import UTC, datetime, timedelta

    from procmem.security.jobs import Job, JobRunner
    from procmem.store import open_store
    store = open_store(":memory:")
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    store.put_job(Job(id="a" * 32, kind="learn", tenant="default", status="running",
                      created_at=long_ago, started_at=long_ago, heartbeat_at=long_ago))
    runner = JobRunner(lambda tenant: store, heartbeat_s=1, stale_s=60)
    try:
        job = runner.get("default", "a" * 32)
        assert job.status == "failed" and job.error is not None
        assert job.error["code"] == "lost" and "no heartbeat" in job.error["message"]
        assert store.get_job("a" * 32).status == "running"  # type: ignore[union-attr]
    finally:
        runner.close()
        store.close()


def test_a_running_job_keeps_its_heartbeat_and_close_cancels_the_queue() -> None:
    from procmem.security.jobs import JobRunner
    from procmem.store import open_store
    store = open_store(":memory:")
    release = threading.Event()
    runner = JobRunner(lambda tenant: store, heartbeat_s=0.05, stale_s=30)
    blocker = runner.submit("learn", "default", lambda p: (release.wait(30), {})[1])
    queued = runner.submit("learn", "default", lambda p: {})
    first_beat = store.get_job(blocker.id).heartbeat_at  # type: ignore[union-attr]
    deadline = time.monotonic() + 30
    while store.get_job(blocker.id).heartbeat_at == first_beat:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert runner.get("default", blocker.id).status == "running"
    release.set()
    runner.close()
    assert runner.get("default", blocker.id).status == "succeeded"
    cancelled = runner.get("default", queued.id)
    assert cancelled.status in ("succeeded", "failed")
    if cancelled.status == "failed":
        assert cancelled.error == {"code": "cancelled", "message": "the server stopped first"}
    store.close()
