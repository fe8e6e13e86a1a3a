"""Execution leases (procmem.services.lease): a running execution is never resumed twice.

The two-process test runs a real replay in a child process on one SQLite file;
it waits on files, never on timing, except for the lease's own expiry.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import procmem
import storebackend
from procmem.core.errors import ExecutionBusy, UsageError
from procmem.core.model import Execution, Procedure, Step, utcnow
from procmem.memory import Memory
from procmem.services.lease import client_owner
from storecontract import lease_of

PAY = Procedure(name="pay", steps=[Step(id="s1", action="charge"),
                                   Step(id="s2", action="notify")])

CHILD = storebackend.CHILD_PRELUDE + r"""
import sys, time
from pathlib import Path
from procmem.memory import Memory

db, started, lease_s = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])

def charge(idempotency_key):
    started.write_text(idempotency_key)  # the side effect, then the process hangs
    while True:
        time.sleep(0.05)

Memory(db, embedder=None, lease_s=lease_s).replay(
    "pay", tools={"charge": charge, "notify": lambda: "sent"})
"""


def memory(path: Path, **kw: Any) -> Memory:
    mem = Memory(path, embedder=None, **kw)
    mem.put_procedure(PAY)
    return mem


class Tools:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def charge(self, idempotency_key: str) -> str:
        self.keys.append(idempotency_key)
        return "charged"

    def tools(self) -> dict[str, Any]:
        return {"charge": self.charge, "notify": lambda: "sent"}


def wait_for(path: Path, child: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert child.poll() is None, child.communicate()[1].decode()
        assert time.monotonic() < deadline, "the child never called its tool"
        time.sleep(0.01)
    while not (text := path.read_text()):
        time.sleep(0.01)
    return text


def test_a_running_execution_cannot_be_resumed_twice_two_processes(
        tmp_path: Path, store_backend_spec: str) -> None:
    db, started = tmp_path / "m.db", tmp_path / "started"
    mem = memory(db)
    extra = storebackend.child_environ(store_backend_spec)  # the child opens the same store
    env = {**os.environ, **extra, "PYTHONPATH": os.pathsep.join(
        [str(Path(procmem.__file__).parents[1]), extra.get("PYTHONPATH", ""),
         os.environ.get("PYTHONPATH", "")])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(db), str(started), "2"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        key = wait_for(started, child)
        ex_id = key.split("/")[0]
        mine = Tools()
        with pytest.raises(ExecutionBusy) as busy:
            mem.resume(ex_id, tools=mine.tools())
        assert busy.value.code == "execution_busy" and f":{child.pid}:" in busy.value.owner
        assert mine.keys == []  # refused before any call
        assert mem.get_execution(ex_id).status == "running"
    finally:
        child.kill()
        child.wait()
    # the killed process keeps its lease until it expires; then resume is allowed
    with pytest.raises(ExecutionBusy):
        mem.resume(ex_id, tools=mine.tools())
    time.sleep(max((busy.value.expires_at - utcnow()).total_seconds(), 0) + 0.05)
    ex = mem.resume(ex_id, tools=mine.tools())
    assert ex.status == "succeeded"
    assert mine.keys == [key] == [f"{ex_id}/s1/1"]  # the same key: the tool can dedupe
    first = ex.step_runs[0]
    assert [(a.attempt, a.status) for a in first.history] == [(1, "unknown")]
    assert (first.attempt, first.attempts, first.status) == (1, 2, "succeeded")
    assert lease_of(mem.store, ex_id) is None  # a finished execution has no lease


def test_resume_takes_the_lease_and_gives_it_back(tmp_path: Path) -> None:
    mem = memory(tmp_path / "m.db")

    def down() -> None:
        raise OSError("down")

    ex = mem.replay("pay", tools={"charge": down, "notify": lambda: "sent"})
    assert ex.status == "failed" and lease_of(mem.store, ex.id) is None
    other = Memory(tmp_path / "m.db", embedder=None)
    other.store.acquire_lease(ex.id, "someone-else", lease_s=60)  # e.g. a resume elsewhere
    with pytest.raises(ExecutionBusy):
        mem.resume(ex.id, tools=Tools().tools())
    other.store.release_lease(ex.id, "someone-else")
    assert mem.resume(ex.id, tools=Tools().tools()).status == "succeeded"
    assert lease_of(mem.store, ex.id) is None


def test_an_interrupted_run_releases_its_lease_and_resume_repeats_the_call_with_its_key(
        tmp_path: Path) -> None:
    mem = memory(tmp_path / "m.db")
    keys: list[str] = []

    def charge(idempotency_key: str) -> str:
        keys.append(idempotency_key)
        if len(keys) == 1:
            raise KeyboardInterrupt  # after the side effect, before its result is stored
        return "charged"

    with pytest.raises(KeyboardInterrupt):
        mem.replay("pay", tools={"charge": charge, "notify": lambda: "sent"})
    (ex,) = mem.list_executions()
    assert ex.status == "running" and ex.in_flight is not None
    assert (ex.in_flight.step_id, ex.in_flight.attempt) == ("s1", 1) and ex.step_runs == []
    assert lease_of(mem.store, ex.id) is None  # the run stopped: no need to wait
    done = mem.resume(ex.id, tools={"charge": charge, "notify": lambda: "sent"})
    assert done.status == "succeeded" and keys == [f"{ex.id}/s1/1"] * 2
    stored = mem.get_execution(ex.id)
    assert stored.in_flight is None
    assert [(a.attempt, a.status) for a in stored.step_runs[0].history] == [(1, "unknown")]
    assert "may or may not" in (stored.step_runs[0].history[0].error or "")


def test_a_lost_lease_stops_the_run_before_its_next_call(tmp_path: Path) -> None:
    mem = memory(tmp_path / "m.db", lease_s=0.001)  # renewed at every write
    calls: list[str] = []

    def charge() -> str:
        (ex,) = mem.list_executions()
        time.sleep(0.01)  # the lease lapses; another run takes it
        mem.store.acquire_lease(ex.id, "thief", lease_s=60)
        calls.append("charge")
        return "charged"

    with pytest.raises(ExecutionBusy):
        mem.replay("pay", tools={"charge": charge,
                                 "notify": lambda: calls.append("notify")})
    assert calls == ["charge"]  # notify never ran under the lost lease
    (ex,) = mem.list_executions()
    assert ex.step_runs == []  # nothing written without the lease


def test_lease_s_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        Memory(tmp_path / "m.db", embedder=None, lease_s=0)


# --------------------------------------------------------------- client-driven


def test_a_client_driven_execution_holds_its_lease_for_any_process(tmp_path: Path) -> None:
    mem = memory(tmp_path / "m.db")
    turn = mem.start("pay")
    assert turn.call is not None
    ex_id = turn.execution.id
    nxt = turn.to_json()["next_call"]
    assert nxt["idempotency_key"] == f"{ex_id}/s1/1" and nxt["attempt"] == 1
    assert lease_of(mem.store, ex_id) is not None
    assert lease_of(mem.store, ex_id)[0] == client_owner(ex_id)  # type: ignore[index]
    other = Memory(tmp_path / "m.db", embedder=None)  # another process
    with pytest.raises(ExecutionBusy):  # a resume with tools would call s1 a second time
        other.resume(ex_id, tools=Tools().tools())
    turn = other.advance(ex_id, step_id="s1", output="charged")  # any process takes a turn
    assert turn.call is not None and turn.call.step_id == "s2"
    assert turn.call.idempotency_key == f"{ex_id}/s2/1"
    turn = mem.advance(ex_id, step_id="s2", output="sent")  # its live core is stale: rebuilt
    assert turn.execution.status == "succeeded"
    stored = mem.get_execution(ex_id)
    assert [r.history for r in stored.step_runs] == [[], []]  # no call was unknown
    assert lease_of(mem.store, ex_id) is None


def test_advance_is_refused_while_a_resume_with_tools_holds_the_lease(tmp_path: Path) -> None:
    mem = memory(tmp_path / "m.db")
    ex_id = mem.start("pay").execution.id
    later = utcnow() + timedelta(seconds=61)  # the client's 60 s lease has lapsed
    mem.store.acquire_lease(ex_id, "resumer", lease_s=3600, now=later)  # a resume took it
    with pytest.raises(ExecutionBusy):
        mem.advance(ex_id, step_id="s1", output="charged")
    mem.store.release_lease(ex_id, "resumer")
    assert mem.advance(ex_id, step_id="s1", output="charged").call is not None


def test_rest_reports_a_busy_execution_as_409(tmp_path: Path) -> None:
    from keyed import rest_client

    mem = memory(tmp_path / "m.db")
    with rest_client(mem) as client:
        turn = client.post("/executions", json={"procedure": "pay"}).json()
        assert turn["next_call"]["idempotency_key"] == f"{turn['execution_id']}/s1/1"
        later = utcnow() + timedelta(seconds=61)  # the client's lease lapsed, a resume took it
        mem.store.acquire_lease(turn["execution_id"], "host:1:resumer", lease_s=3600, now=later)
        r = client.post(f"/executions/{turn['execution_id']}/results",
                        json={"step_id": "s1", "output": "charged"})
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "execution_busy"
        assert "host:1:resumer" in r.json()["error"]["message"]


def test_cli_resume_of_a_busy_execution_exits_4(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from procmem.cli import main

    mem = memory(tmp_path / "m.db")
    ex = Execution(procedure="pay", version=1)
    mem.store.put_execution(ex)
    mem.store.acquire_lease(ex.id, "elsewhere", lease_s=60)
    (tmp_path / "busy_tools.py").write_text(
        "TOOLS = {'charge': lambda: 'c', 'notify': lambda: 'n'}\n")
    result = CliRunner().invoke(main, ["--db", str(tmp_path / "m.db"), "resume", ex.id,
                                       "--tools", "busy_tools:TOOLS", "--answers", "{}"])
    assert result.exit_code == 4, result.output
    assert "error[execution_busy]" in result.output
