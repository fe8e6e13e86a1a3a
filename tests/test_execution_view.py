"""One execution shape (REST POST and GET, Python turns) and the expiry of abandoned
client-driven executions (:mod:`procmem.services.execution_view`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from keyed import rest_client
from procmem.core.errors import ReplayError, UsageError
from procmem.core.model import Execution
from procmem.memory import Memory
from procmem.services.execution_view import execution_view, expire_if_abandoned, last_turn_at
from shipping import ship_trace

NAME = "charge_card-then-ship"
TASK = "Ship order #O2222 paying 75 dollars."
TTL = 3600.0


@pytest.fixture
def mem() -> Iterator[Memory]:
    with Memory("memory.db", embedder=None, client_ttl_s=TTL) as m:
        m.learn([ship_trace(i) for i in range(3)])
        yield m


def age(mem: Memory, ex_id: str, seconds: float) -> Execution:
    """Move the execution's clock ``seconds`` back (its start and the call handed out)."""
    ex = mem.store.get_execution(ex_id)
    ex.started_at -= timedelta(seconds=seconds)
    if ex.in_flight is not None:
        ex.in_flight.started_at -= timedelta(seconds=seconds)
    mem.store.put_execution(ex)
    for run in ex.step_runs:
        mem.store.put_step_run(ex_id, run.model_copy(
            update={"started_at": run.started_at - timedelta(seconds=seconds)}))
    return mem.store.get_execution(ex_id)


def test_a_turn_and_a_read_have_the_same_shape_and_next_call(mem: Memory) -> None:
    turn = mem.start(NAME, task=TASK)
    first = turn.to_json()
    read = execution_view(mem.get_execution(turn.execution.id))
    assert set(first) == set(read)
    assert first["status"] == read["status"] == "running"
    assert first["awaiting"] == read["awaiting"] == "tool_result"
    assert first["next_call"] == read["next_call"]
    assert first["next_call"]["args"] == {"order_id": "#O2222", "amount": 75}
    assert first["id"] == first["execution_id"] == turn.execution.id
    assert first["driver"] == "client"
    turn = mem.advance(turn.execution.id, step_id="s1", output='{"charged": 75}')
    assert execution_view(mem.get_execution(turn.execution.id))["next_call"] == \
        turn.to_json()["next_call"]
    done = mem.advance(turn.execution.id, step_id="s2", output="{}").to_json()
    assert (done["status"], done["awaiting"], done["next_call"]) == ("succeeded", None, None)


def test_a_replay_with_tools_shows_no_next_call() -> None:
    with Memory("memory.db", embedder=None) as m:
        m.learn([ship_trace(i) for i in range(3)])
        ex = m.replay(NAME, tools={"charge_card": dict, "ship": dict}, task=TASK)
        view = execution_view(m.get_execution(ex.id))
        assert (view["driver"], view["next_call"], view["awaiting"]) == ("tools", None, None)


def test_rest_post_and_get_answer_the_same_shape(mem: Memory) -> None:
    with rest_client(mem) as client:
        posted = client.post("/executions", json={"procedure": NAME, "task": TASK})
        assert posted.status_code == 201, posted.text
        turn = posted.json()
        got = client.get(f"/executions/{turn['id']}").json()
        assert set(turn) == set(got)
        assert (got["status"], got["awaiting"]) == ("running", "tool_result")
        assert got["next_call"] == turn["next_call"] and turn["next_call"]["step_id"] == "s1"
        nxt = client.post(f"/executions/{turn['id']}/results",
                          json={"step_id": "s1", "output": '{"charged": 75}'}).json()
        listed = client.get("/executions", params={"procedure": NAME}).json()
        assert set(nxt) == set(listed[0]) and listed[0]["next_call"] == nxt["next_call"]
        assert nxt["next_call"]["action"] == "ship"


def test_a_paused_turn_awaits_answers(mem: Memory) -> None:
    view = mem.start(NAME).to_json()  # no task: the params are needs
    assert (view["status"], view["awaiting"], view["next_call"]) == ("paused", "answers", None)
    assert view["needs"]


def test_an_abandoned_client_execution_expires_when_read(mem: Memory) -> None:
    turn = mem.start(NAME, task=TASK)
    ex_id = turn.execution.id
    assert mem.get_execution(ex_id).status == "running"  # within the TTL
    age(mem, ex_id, TTL + 120)
    expired = mem.get_execution(ex_id)
    assert expired.status == "failed" and expired.finished_at is not None
    assert expired.error is not None and expired.error.startswith("expired: no turn for ")
    assert f"after {int(TTL)} s" in expired.error
    assert mem.store.get_execution(ex_id).status == "failed"  # stored, not only shown
    with pytest.raises(ReplayError, match="already failed: expired"):
        mem.advance(ex_id, step_id="s1", output="{}")


def test_advance_and_list_expire_too(mem: Memory) -> None:
    one, two = mem.start(NAME, task=TASK).execution.id, mem.start(NAME, task=TASK).execution.id
    age(mem, one, TTL * 2)
    age(mem, two, TTL * 2)
    with pytest.raises(ReplayError, match="expired: no turn for"):
        mem.advance(one, step_id="s1", output="{}")
    assert {e.id: e.status for e in mem.list_executions()}[two] == "failed"


def test_a_turn_keeps_the_execution_alive(mem: Memory) -> None:
    ex_id = mem.start(NAME, task=TASK).execution.id
    age(mem, ex_id, TTL - 60)
    mem.advance(ex_id, step_id="s1", output='{"charged": 75}')  # a turn, just in time
    ex = age(mem, ex_id, TTL - 60)  # 2 * TTL - 120 s since the start, TTL - 60 since the turn
    assert ex.in_flight is not None and last_turn_at(ex) == ex.in_flight.started_at
    assert mem.get_execution(ex_id).status == "running"


def test_paused_and_tool_driven_executions_never_expire(mem: Memory) -> None:
    paused = mem.start(NAME).execution
    assert paused.status == "paused"
    old = age(mem, paused.id, TTL * 10)
    assert expire_if_abandoned(mem.store, old, TTL).status == "paused"
    running = old.model_copy(update={"status": "running", "driver": "tools"})
    assert expire_if_abandoned(mem.store, running, TTL).status == "running"


def test_no_ttl_never_expires_and_a_bad_ttl_is_refused(mem: Memory) -> None:
    ex_id = mem.start(NAME, task=TASK).execution.id
    old = age(mem, ex_id, TTL * 100)
    assert expire_if_abandoned(mem.store, old, None).status == "running"
    with pytest.raises(UsageError, match="client_ttl_s"):
        Memory(":memory:", embedder=None, client_ttl_s=0)
