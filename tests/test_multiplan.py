"""Task plans with several procedures (procmem.services.multiplan, Memory.plan_task / replay_plan),
on the bundled τ-retail sample (MIT, see tests/data).

Two-request tasks are built from two sample traces of different procedures: their
tasks joined with " Also, ". The memory learns the other single-request traces, so
no learned procedure does both requests at once.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from keyed import rest_client
from procmem.cli import main
from procmem.core.errors import UnknownTool
from procmem.core.model import Need, Trace
from procmem.learning.recorded import Oracle, RecordedEnvironment
from procmem.memory import Memory
from procmem.services.multiplan import TaskPlan, segment

CANCEL, RETURN = ("cancel_pending_order",), ("return_delivered_order_items",)


@pytest.fixture(scope="module")
def pair(tau_sample: list[Trace]) -> tuple[Trace, Trace]:
    """The first sample trace that only cancels, and the first that only returns."""
    return (next(t for t in tau_sample if t.signature() == CANCEL),
            next(t for t in tau_sample if t.signature() == RETURN))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, tau_sample: list[Trace],
       pair: tuple[Trace, Trace]) -> Path:
    """A memory learned from the sample's other single-request traces (searched, never run)."""
    path = tmp_path_factory.mktemp("multiplan") / "m.db"
    skip = {t.id for t in pair}
    with Memory(path, embedder=None) as m:
        m.learn([t for t in tau_sample if t.id not in skip and len(t.signature()) == 1])
    return path


@pytest.fixture
def mem(db: Path, tmp_path: Path) -> Iterator[Memory]:
    """A copy of the learned memory, so replays leave nothing in the shared one."""
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)
    with Memory(copy, embedder=None) as m:
        yield m


def joined(*traces: Trace) -> str:
    return " Also, ".join(t.task.strip() for t in traces)


def both(*traces: Trace) -> Trace:
    """One trace with the recorded calls of all (the fake tools answer from them)."""
    return Trace(task=joined(*traces), steps=[s for t in traces for s in t.steps],
                 outcome="success")


def resolver_for(mem: Memory, trace: Trace, tp: TaskPlan) -> Any:
    """Answers each part's needs from the recorded calls (an oracle per procedure)."""
    oracles = {p.plan.procedure: Oracle(trace, mem.get_procedure(p.plan.procedure or ""))
               for p in tp.parts}

    def resolve(need: Need) -> Any:
        answers = [o(need) for o in oracles.values()]
        return next((a for a in answers if a is not None), None)
    return resolve


def test_segment_finds_requests_after_the_context() -> None:
    task = ("Your name is Ann and your zip is 12345. Cancel order #W1 because no longer "
            "needed. Also, return #W2 via card_1: Kettle; Clock. For #W3, swap it.")
    context, requests = segment(task, frozenset({"cancel", "return"}),
                                claims=[(task.index("#W3"), task.index("#W3") + 3)])
    assert context is not None and task[context[0]:context[1]] == \
        "Your name is Ann and your zip is 12345."
    assert [task[r.start:r.end] for r in requests] == [
        "Cancel order #W1 because no longer needed.",
        "Also, return #W2 via card_1: Kettle; Clock.",  # a clause without a verb stays
        "For #W3, swap it.",  # no known verb, but a value some procedure anchors
    ]
    assert [sorted(r.verbs) for r in requests] == [["cancel"], ["return"], []]


def test_two_requests_get_two_procedures_and_replay_calls_both(
        mem: Memory, pair: tuple[Trace, Trace]) -> None:
    cancel, ret = pair
    task = joined(cancel, ret)
    tp = mem.plan_task(task)
    assert tp.multi and not tp.uncovered and len(tp.requests) == 2
    assert [p.plan.procedure for p in tp.parts] == ["cancel_pending_order",
                                                    "return_delivered_order_items"]
    first, second = tp.parts
    assert first.span.end <= second.span.start  # in task order, not overlapping
    assert task[second.span.start:second.span.end] == second.span.text
    assert "#W" in second.span.text and second.span.text.split()[0] == "Return"
    # each part binds only from its own request
    assert {v.param: v.value for v in first.plan.params if v.source == "param"} == \
        cancel.steps[0].args
    bound = {v.param: v.value for v in second.plan.params if v.source == "param"}
    assert bound["order_id"] == ret.steps[0].args["order_id"]
    assert TaskPlan.model_validate(tp.to_json()) == tp

    trace = both(cancel, ret)
    env = RecordedEnvironment(trace)
    run = mem.replay_plan(tp, tools=env.tools(CANCEL + RETURN),
                          resolver=resolver_for(mem, trace, tp))
    assert run.status == "succeeded" and run.stopped_at is None and not run.not_run
    assert [ex.procedure for ex in run.executions] == [p.plan.procedure for p in tp.parts]
    assert env.exact()  # both tools called, with the recorded values, in order
    assert run.executions[1].task == second.text  # bound from its own request's text


def test_replay_plan_stops_at_the_first_pause(mem: Memory, pair: tuple[Trace, Trace]) -> None:
    cancel, ret = pair
    tp = mem.plan_task(joined(ret, cancel))  # the return asks which items: it pauses
    assert [p.plan.procedure for p in tp.parts] == ["return_delivered_order_items",
                                                    "cancel_pending_order"]
    env = RecordedEnvironment(both(ret, cancel))
    run = mem.replay_plan(tp, tools=env.tools(CANCEL + RETURN))
    assert run.status == "paused" and run.stopped_at == 0 and run.not_run == [1]
    assert [ex.status for ex in run.executions] == ["paused"]
    assert env.calls == []  # nothing after the pause ran


def test_missing_tools_are_refused_before_any_part_runs(
        mem: Memory, pair: tuple[Trace, Trace]) -> None:
    tp = mem.plan_task(joined(*pair))
    env = RecordedEnvironment(both(*pair))
    with pytest.raises(UnknownTool):
        mem.replay_plan(tp, tools=env.tools(CANCEL))
    assert env.calls == [] and mem.list_executions() == []


def test_areplay_plan_matches_replay_plan(mem: Memory, pair: tuple[Trace, Trace]) -> None:
    tp = mem.plan_task(joined(*pair))
    trace = both(*pair)
    env = RecordedEnvironment(trace)
    assert asyncio.run(mem.aplan_task(joined(*pair))) == tp
    run = asyncio.run(mem.areplay_plan(tp, tools=env.tools(CANCEL + RETURN),
                                       resolver=resolver_for(mem, trace, tp)))
    assert run.status == "succeeded" and env.exact()


def test_one_request_stays_a_single_procedure_plan(mem: Memory,
                                                   pair: tuple[Trace, Trace]) -> None:
    cancel = pair[0]
    tp = mem.plan_task(cancel.task)
    assert not tp.multi and not tp.uncovered and len(tp.requests) == 1
    assert [p.plan for p in tp.parts] == [mem.plan(cancel.task)]  # the single answer
    assert tp.parts[0].text == cancel.task and tp.would_complete_without_asking
    assert tp.confident == tp.parts[0].plan.confident


def test_a_procedure_covering_both_requests_stays_single(tmp_path: Path,
                                                        tau_sample: list[Trace]) -> None:
    """When a learned procedure does both requests, it is the answer (no split)."""
    combined = next(t for t in tau_sample
                    if t.signature() == CANCEL + RETURN and t.successful_steps())
    with Memory(tmp_path / "all.db", embedder=None) as m:
        m.learn([t for t in tau_sample if t.id != combined.id])
        tp = m.plan_task(combined.task)
        assert len(tp.requests) == 2 and not tp.multi and not tp.uncovered
        assert tp.parts[0].plan.procedure is not None
        assert [s.action for s in tp.parts[0].plan.steps] == list(CANCEL + RETURN)


def test_a_request_nobody_covers_is_reported_not_guessed(
        mem: Memory, pair: tuple[Trace, Trace]) -> None:
    cancel = pair[0]
    task = cancel.task.strip() + " Also, cancel my gym membership."
    tp = mem.plan_task(task)
    assert not tp.multi and len(tp.parts) == 1
    assert [u.text for u in tp.uncovered] == ["Also, cancel my gym membership."]
    assert not tp.would_complete_without_asking and not tp.confident
    assert "no procedure covers" in tp.summary
    env = RecordedEnvironment(cancel)
    refused = mem.replay_plan(tp, tools=env.tools(CANCEL))
    assert refused.status == "refused" and env.calls == [] and refused.uncovered == tp.uncovered
    partial = mem.replay_plan(tp, tools=env.tools(CANCEL), partial=True)
    assert partial.status == "paused" and partial.executions[0].status == "succeeded"
    assert env.exact()  # the covered request ran, with its recorded values


def test_cli_plan_multi_shows_the_parts(db: Path, pair: tuple[Trace, Trace],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCMEM_DB", str(db))
    monkeypatch.setenv("PROCMEM_EMBEDDER", "none")
    monkeypatch.setenv("COLUMNS", "200")
    task = joined(*pair)
    result = CliRunner().invoke(main, ["plan", task, "--multi", "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    with Memory(db, embedder=None) as m:
        assert json.loads(result.stdout) == m.plan_task(task).to_json()  # the one serializer
    table = CliRunner().invoke(main, ["plan", task, "--multi"], catch_exceptions=False)
    assert "part 1 of 2" in table.stdout and "part 2 of 2" in table.stdout
    assert "return_delivered_order_items" in table.stdout
    bad = CliRunner().invoke(main, ["plan", task, "--multi", "--procedure", "x"])
    assert bad.exit_code != 0


def test_rest_and_mcp_serve_the_same_task_plan(db: Path, pair: tuple[Trace, Trace]) -> None:
    from mcp import Client

    from procmem.mcp.server import build_server

    task = joined(*pair)
    with Memory(db, embedder=None) as m:
        expected = m.plan_task(task).to_json()
        with rest_client(m) as client:
            r = client.post("/plan/task", json={"task": task})
            assert r.status_code == 200, r.text
            assert r.json() == expected
            assert client.post("/plan/task", json={"task": task, "x": 1}).status_code in (
                400, 422)

        async def call() -> dict[str, Any]:
            async with Client(build_server(m), mode="legacy") as c:
                result = await c.call_tool("search_procedures", {"task": task, "multi": True})
            assert not result.is_error and isinstance(result.structured_content, dict)
            return result.structured_content

        found = asyncio.run(call())
        assert found["task_plan"] == expected
