"""Client-driven replay (start / advance): the caller makes the tool calls."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from procmem.core.errors import ReplayError, UsageError
from procmem.core.model import Param, Procedure, Step
from procmem.core.template import ask, param, step_ref
from procmem.memory import Memory
from shipping import ship_trace

NAME = "charge_card-then-ship"


@pytest.fixture
def mem() -> Iterator[Memory]:
    with Memory("memory.db") as m:
        m.learn([ship_trace(i) for i in range(3)])
        yield m


def test_the_client_makes_each_call_and_the_execution_is_recorded(mem: Memory) -> None:
    turn = mem.start(NAME, task="Ship order #O2222 paying 75 dollars.")
    assert turn.call is not None and not turn.done
    assert (turn.call.step_id, turn.call.action) == ("s1", "charge_card")
    assert turn.call.args == {"order_id": "#O2222", "amount": 75}
    assert turn.to_json()["awaiting"] == "tool_result"
    turn = mem.advance(turn.execution.id, step_id="s1", output='{"charged": 75}')
    assert turn.call is not None and turn.call.action == "ship"
    assert turn.call.args == {"order_id": "#O2222"}
    stored = mem.get_execution(turn.execution.id)
    assert [r.status for r in stored.step_runs] == ["succeeded"]  # committed at once
    turn = mem.advance(turn.execution.id, step_id="s2", output='{"shipped": "#O2222"}')
    assert turn.done and turn.call is None and turn.execution.status == "succeeded"
    with pytest.raises(ReplayError, match="already succeeded"):
        mem.advance(turn.execution.id, step_id="s2", output="again")


def test_a_result_for_another_step_is_refused_and_changes_nothing(mem: Memory) -> None:
    turn = mem.start(NAME, task="Ship order #O2222 paying 75 dollars.")
    with pytest.raises(UsageError, match="outstanding call is step 's1'"):
        mem.advance(turn.execution.id, step_id="s2", output="{}")
    with pytest.raises(UsageError, match="waiting for the result"):
        mem.advance(turn.execution.id, answers={"x": 1})
    turn = mem.advance(turn.execution.id, step_id="s1", output='{"charged": 75}')
    assert turn.call is not None and turn.call.step_id == "s2"


def test_a_tool_error_fails_the_execution(mem: Memory) -> None:
    turn = mem.start(NAME, task="Ship order #O2222 paying 75 dollars.")
    turn = mem.advance(turn.execution.id, step_id="s1", error="RuntimeError: card declined")
    assert turn.done and turn.execution.status == "failed"
    assert "card declined" in (turn.execution.step_runs[0].error or "")


def test_needs_pause_and_answers_continue_even_in_a_new_process(mem: Memory) -> None:
    turn = mem.start(NAME)  # no task: both params are needs
    assert turn.call is None and turn.execution.status == "paused"
    assert sorted(n.key for n in turn.needs) == ["param:amount", "param:order_id"]
    with Memory("memory.db") as other:  # another process: rebuilt from the store
        turn = other.advance(turn.execution.id,
                             answers={"param:order_id": "#O9", "param:amount": 5})
        assert turn.call is not None and turn.call.args == {"order_id": "#O9", "amount": 5}
        turn = other.advance(turn.execution.id, step_id="s1", output="{}")
        assert turn.call is not None and turn.call.action == "ship"
    with Memory("memory.db") as third:  # rebuilt while a call is outstanding
        turn = third.advance(turn.execution.id, step_id="s2", output="{}")
        assert turn.done and turn.execution.status == "succeeded"
        assert [r.action for r in turn.execution.step_runs] == ["charge_card", "ship"]


def test_an_ask_with_candidates_from_an_earlier_output(mem: Memory) -> None:
    proc = Procedure(name="cancel_one", params=[Param(name="user_id", schema={"type": "string"})],
                     steps=[Step(id="s1", action="list_orders", args={"user_id": param("user_id")}),
                            Step(id="s2", action="cancel",
                                 args={"order_id": ask("which order", step_ref("s1", "/orders"))})])
    mem.put_procedure(proc)
    turn = mem.start("cancel_one", params={"user_id": "u1"})
    turn = mem.advance(turn.execution.id, step_id="s1", output='{"orders": ["#A", "#B"]}')
    (need,) = turn.needs
    assert need.candidates == ["#A", "#B"]
    turn = mem.advance(turn.execution.id, answers={need.key: "#B"})
    assert turn.call is not None and turn.call.args == {"order_id": "#B"}


def test_a_call_inside_a_sub_procedure_is_answered_by_the_process_that_made_it(
        mem: Memory) -> None:
    mem.put_procedure(Procedure(name="child", steps=[Step(id="c1", action="inner")]))
    mem.put_procedure(Procedure(name="parent", steps=[
        Step(id="s1", action="outer"), Step(id="s2", action="procedure:child"),
        Step(id="s3", action="outer")]))
    turn = mem.start("parent")
    turn = mem.advance(turn.execution.id, step_id="s1", output="a")
    assert turn.call is not None and turn.call.action == "inner"
    child_key = turn.call.idempotency_key
    assert not child_key.startswith(turn.execution.id)  # the child execution's own key
    turn = mem.advance(turn.execution.id, step_id="c1", output="b")  # the child's step
    assert turn.call is not None and turn.call.action == "outer" and turn.call.step_id == "s3"
    turn = mem.advance(turn.execution.id, step_id="s3", output="c")
    assert turn.done and turn.execution.status == "succeeded"
