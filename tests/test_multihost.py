"""Several OS processes share one store: what one learns, runs or decides, another sees.

Every test runs on every backend, chosen by the store location alone: ``sqlite``
(a file in ``tmp_path``) always, ``postgres`` when ``PROCMEM_TEST_PG_URL`` names a
PostgreSQL server (a fresh database ``mh_<random>`` per test, dropped after).

The processes are real: ``python -m multihost_child ROLE ...`` (``tests/multihost_child.py``),
each with its own :class:`~procmem.memory.Memory`. They synchronize on files (a
result file, a ready file per racer and one ``go`` file), never on timing. Each
child's tools log every call they receive, so "exactly one process sent the tool
call" is read from the logs, not inferred.

Lane: ``server`` (it starts processes): ``python -m pytest -m server tests/test_multihost.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import procmem
from conftest import leaky_names
from multihost_child import POLICY
from procmem.core.model import Param, Procedure, Step
from procmem.core.template import param
from procmem.formats.traceio import read_traces
from procmem.memory import Memory
from shipping import SHIP, ship_trace

pytestmark = pytest.mark.server

PG_ENV = "PROCMEM_TEST_PG_URL"
TESTS = Path(__file__).parent
WAIT_S = 120.0


# ------------------------------------------------------------------ the store location


def _postgres_location(url: str) -> Iterator[str]:
    import psycopg  # only this backend needs it

    name = f"mh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def location(request: pytest.FixtureRequest, tmp_path: Path,
             lane_environ: dict[str, str]) -> Iterator[str]:
    """Where the processes of one test meet: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "shared.db")
        return
    url = lane_environ.get(PG_ENV)
    if not url:
        pytest.skip(f"set {PG_ENV}=postgresql://... to run the multi-process tests on PostgreSQL")
    yield from _postgres_location(url)


# -------------------------------------------------------------------- the processes


def child_env() -> dict[str, str]:
    """The test process's environment without procmem's settings, with src/ and tests/
    on the path (the children import this checkout's procmem)."""
    env = {k: v for k, v in os.environ.items() if k not in leaky_names(os.environ)}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(procmem.__file__).parents[1]), str(TESTS), os.environ.get("PYTHONPATH", "")])
    return env


class Child:
    """One child process running a role; its result is ``OUT`` (JSON), its tool calls
    ``OUT.calls``."""

    def __init__(self, role: str, location: str, out: Path, *args: str) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "multihost_child", role, location, str(out), *args],
            env=child_env(), cwd=out.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def wait_file(self, path: Path) -> None:
        deadline = time.monotonic() + WAIT_S
        while not path.exists():
            if self.proc.poll() is not None and not path.exists():
                _, err = self.proc.communicate()
                pytest.fail(f"{self.out.name} exited {self.proc.returncode}:\n{err.decode()}")
            assert time.monotonic() < deadline, f"no {path.name} after {WAIT_S} s"
            time.sleep(0.005)

    def result(self) -> Any:
        try:
            _, err = self.proc.communicate(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise
        assert self.proc.returncode == 0, f"{self.out.name} failed:\n{err.decode()}"
        return json.loads(self.out.read_text(encoding="utf-8"))

    def calls(self) -> list[dict[str, Any]]:
        log = self.out.with_name(self.out.name + ".calls")
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


@pytest.fixture
def spawn(tmp_path: Path, location: str) -> Iterator[Any]:
    """``spawn(role, name, *args)``: start a child on the test's store; killed at teardown."""
    children: list[Child] = []

    def start(role: str, name: str, *args: str) -> Child:
        child = Child(role, location, tmp_path / f"{name}.json", *args)
        children.append(child)
        return child

    yield start
    for child in children:
        child.kill()


def race(tmp_path: Path, racers: list[Child]) -> None:
    """Let the racers go at once: after every one of them is ready (its store is open)."""
    for child in racers:
        child.wait_file(child.out.with_name(child.out.name + ".ready"))
    (tmp_path / "go").touch()


# ------------------------------------------------------------------------------ tests


def test_a_procedure_learned_in_one_process_is_found_and_replayed_in_another(
        location: str, spawn: Any, tmp_path: Path, tau_sample_path: Path) -> None:
    traces, _ = read_traces(tau_sample_path)
    cancels = [t for t in traces if [s.action for s in t.steps] == ["cancel_pending_order"]]
    held = cancels[-1]  # held out: its task text is new to the store
    lines = [line for line in tau_sample_path.read_text(encoding="utf-8").splitlines()
             if json.loads(line)["id"] != held.id]
    (tmp_path / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "held.jsonl").write_text(held.model_dump_json() + "\n", encoding="utf-8")
    a = spawn("learn", "A", "--traces", str(tmp_path / "train.jsonl"))
    b = spawn("find_and_replay", "B", "--traces", str(tmp_path / "held.jsonl"),
              "--after", str(a.out))  # started before A finished; waits for its result
    learned = a.result()
    assert learned["stored"] == len(lines) and "cancel_pending_order" in learned["created"]
    found = b.result()
    assert found["hits"][0] == "cancel_pending_order"
    assert found["status"] == "succeeded"
    assert [(c["action"], c["args"]) for c in b.calls()] == [
        (s.action, s.args) for s in held.steps]
    assert {c["pid"] for c in b.calls()} == {b.proc.pid}
    with Memory(location, embedder=None) as mem:  # and every process sees B's run
        ex = mem.get_execution(found["execution_id"])
        assert ex.status == "succeeded" and ex.procedure == "cancel_pending_order"


PAY = Procedure(name="pay", params=[Param(name="order_id", schema={"type": "string"})],
                steps=[Step(id="s1", action="charge", args={"order_id": param("order_id")}),
                       Step(id="s2", action="notify")])


def test_two_processes_race_to_resume_one_paused_execution_exactly_one_sends_the_calls(
        location: str, spawn: Any, tmp_path: Path) -> None:
    with Memory(location, embedder=None) as mem:
        mem.put_procedure(PAY)
        paused = mem.replay("pay", tools={"charge": dict, "notify": dict})
        assert paused.status == "paused"
        assert [n.key for n in paused.needs] == ["param:order_id"]
    go = str(tmp_path / "go")
    answers = json.dumps({"param:order_id": "#W1"})
    b, c = (spawn("resume", name, "--execution", paused.id, "--answers", answers, "--go", go)
            for name in ("B", "C"))
    race(tmp_path, [b, c])
    outcomes = sorted(child.result()["outcome"] for child in (b, c))
    # exactly one process sent the tool calls: the winner, each call once
    assert outcomes.count("won") == 1, outcomes
    assert set(outcomes) - {"won"} <= {"busy", "already_succeeded"}
    winner, loser = (b, c) if b.result()["outcome"] == "won" else (c, b)
    assert loser.calls() == []
    assert [(x["action"], x["args"]) for x in winner.calls()] == [
        ("charge", {"order_id": "#W1"}), ("notify", {})]
    with Memory(location, embedder=None) as mem:
        ex = mem.get_execution(paused.id)
        assert ex.status == "succeeded"
        assert [(r.step_id, r.attempts, r.history) for r in ex.step_runs] == [
            ("s1", 1, []), ("s2", 1, [])]


def _world_tools(calls: list[str]) -> dict[str, Any]:
    """charge_card declines above 100 (the world drifted); charge_wallet works."""
    def charge_card(order_id: str, amount: int) -> str:
        calls.append("charge_card")
        if amount > 100:
            raise RuntimeError("card declined")
        return json.dumps({"charged": amount})

    def charge_wallet(order_id: str, amount: int) -> str:
        calls.append("charge_wallet")
        return json.dumps({"charged": amount, "via": "wallet"})

    def ship(order_id: str) -> str:
        calls.append("ship")
        return json.dumps({"shipped": order_id})

    return {"charge_card": charge_card, "charge_wallet": charge_wallet, "ship": ship}


def _a_candidate_one_report_from_promotion(mem: Memory) -> list[str]:
    """Make v2 (a verified repair) one judged run short of promotion (``POLICY.min_runs``);
    returns two successful, unreported executions of v2."""
    calls: list[str] = []
    tools = _world_tools(calls)
    mem.learn([ship_trace(i) for i in range(3)])
    task = "Ship order #O2001 paying 150 dollars."
    failed = mem.replay(SHIP, tools=tools, task=task)
    assert failed.status == "failed"
    mem.report(failed.id, reward=0.0, source="environment")
    with mem.record(task, metadata={"recovers": failed.id}) as rec:
        wrapped = rec.wrap_tools(tools)
        wrapped["charge_wallet"](order_id="#O2001", amount=150)
        wrapped["ship"](order_id="#O2001")
    assert [c["version"] for c in mem.optimize(SHIP).created] == [2]
    candidate = mem.store.get_procedure(SHIP, 2)
    for i in range(2):  # v1 keeps failing
        ex = mem.replay(mem.store.get_procedure(SHIP, 1), tools=tools,
                        task=f"Ship order #O31{i:02d} paying 150 dollars.")
        assert mem.report(ex.id, reward=0.0, source="environment").changes == []
    unreported = []
    for i in range(POLICY.min_runs + 1):
        ex = mem.replay(candidate, tools=tools, task=f"Ship order #O32{i:02d} paying 150 dollars.")
        assert ex.status == "succeeded" and ex.version == 2
        if i < POLICY.min_runs - 1:
            assert mem.report(ex.id, reward=1.0, source="environment").changes == []
        else:
            unreported.append(ex.id)
    assert mem.store.get_procedure(SHIP, 2).status == "candidate"
    return unreported


def test_two_concurrent_reports_promote_a_candidate_exactly_once(
        location: str, spawn: Any, tmp_path: Path) -> None:
    with Memory(location, embedder=None, policy=POLICY, seed=7) as mem:
        first, second = _a_candidate_one_report_from_promotion(mem)
    go = str(tmp_path / "go")
    b = spawn("report", "B", "--execution", first, "--go", go)
    c = spawn("report", "C", "--execution", second, "--go", go)
    race(tmp_path, [b, c])
    changes = [change for child in (b, c) for change in child.result()["changes"]]
    assert sorted(map(tuple, changes)) == [  # one promotion in all, told by one report
        (1, "replaced", "active", "deprecated"), (2, "promoted", "candidate", "active")]
    assert [b.result()["changes"], c.result()["changes"]].count([]) == 1
    with Memory(location, embedder=None, policy=POLICY) as mem:
        current = mem.get_procedure(SHIP)
        assert (current.version, current.status) == (2, "active")
        assert mem.store.get_procedure(SHIP, 1).status == "deprecated"
        history = mem.history(SHIP)
        assert [(h["version"], h["status"], h["current"]) for h in history] == [
            (1, "deprecated", False), (2, "active", True)]
        assert len(mem.store.list_evidence(procedure=SHIP)) == 1 + 2 + POLICY.min_runs + 1


def test_an_execution_started_in_one_process_is_advanced_in_another(
        location: str, spawn: Any, tmp_path: Path) -> None:
    with Memory(location, embedder=None) as mem:
        mem.learn([ship_trace(i) for i in range(3)])
    task = "Ship order #O2222 paying 75 dollars."
    a = spawn("start", "A", "--procedure", SHIP, "--task", task)
    d = spawn("advance", "D", "--after", str(a.out))  # waits for A's first turn
    first = a.result()
    assert first["next_call"]["action"] == "charge_card" and first["status"] == "running"
    assert a.calls() == []  # A started it; it made no call
    done = d.result()
    assert done["status"] == "succeeded" and done["next_call"] is None
    assert [(x["action"], x["args"]) for x in d.calls()] == [
        ("charge_card", {"order_id": "#O2222", "amount": 75}), ("ship", {"order_id": "#O2222"})]
    with Memory(location, embedder=None) as mem:
        ex = mem.get_execution(first["execution_id"])
        assert ex.status == "succeeded"
        assert [(r.action, r.status) for r in ex.step_runs] == [
            ("charge_card", "succeeded"), ("ship", "succeeded")]
