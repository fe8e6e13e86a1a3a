"""Tests for Memory, the facade: learn, versions, import, replay, resume, stats, recorder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmem.core.errors import InvalidProcedure, InvalidTrace, ReplayError, UnknownTool, UsageError
from procmem.core.model import Need, Param, Procedure, Step, Trace, TraceStep
from procmem.core.template import ask, param, step_ref
from procmem.memory import Memory

# ------------------------------------------------------------------------ helpers

ORDERS = ["#W1234567", "#W7654321", "#W5550001", "#W2220002"]


def cancel_trace(i: int, order: str, reason: str = "no longer needed") -> Trace:
    return Trace(id=f"cancel-{i}", task=f"Cancel order {order} because {reason}.",
                 outcome="success",
                 steps=[TraceStep(action="cancel_pending_order",
                                  args={"order_id": order, "reason": reason},
                                  output=json.dumps({"order_id": order, "status": "cancelled"}))])


def cancel_traces(n: int) -> list[Trace]:
    """``n`` cancel demonstrations with varying order ids and reasons."""
    reasons = ["no longer needed", "ordered by mistake"]
    return [cancel_trace(i, ORDERS[i], reasons[i % 2]) for i in range(n)]


class Tools:
    """Tool callables that count their calls and answer from a table."""

    def __init__(self, **outputs: Any) -> None:
        self.outputs = outputs
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getitem__(self, action: str) -> Any:
        def tool(**kwargs: Any) -> Any:
            self.calls.append((action, kwargs))
            out = self.outputs[action]
            if isinstance(out, Exception):
                raise out
            return out(**kwargs) if callable(out) else out
        return tool

    def mapping(self) -> dict[str, Any]:
        return {a: self[a] for a in self.outputs}


def lookup_procedure() -> Procedure:
    """s1 lists a user's orders; s2 cancels one the resolver picks from that list."""
    return Procedure(
        name="cancel_one_of_my_orders",
        params=[Param(name="user_id", schema={"type": "string"})],
        steps=[
            Step(id="s1", action="get_user_orders", args={"user_id": param("user_id")}),
            Step(id="s2", action="cancel_pending_order",
                 args={"order_id": ask("which order", step_ref("s1", "/orders")),
                       "reason": "no longer needed"}),
        ],
    )


@pytest.fixture
def mem() -> Iterator[Memory]:
    with Memory("memory.db") as m:  # the autouse fixture made the cwd a tmp dir
        yield m


# ---------------------------------------------------------------------- learning


def test_learn_is_idempotent(mem: Memory) -> None:
    first = mem.learn([cancel_trace(i, o) for i, o in enumerate(ORDERS[:3])])
    assert first.created == ["cancel_pending_order"] and first.groups == 1
    before = mem.get_procedure("cancel_pending_order")
    again = mem.learn()
    assert (again.created, again.updated) == ([], [])
    assert again.unchanged == ["cancel_pending_order"]
    same_traces = mem.learn([cancel_trace(i, o) for i, o in enumerate(ORDERS[:3])])
    assert (same_traces.created, same_traces.updated) == ([], [])
    after = mem.get_procedure("cancel_pending_order")
    assert after.version == before.version == 1
    assert after.content() == before.content()
    assert len(mem.list_versions("cancel_pending_order")) == 1


def test_new_traces_for_an_existing_group_make_a_new_version(mem: Memory) -> None:
    mem.learn([cancel_trace(i, o) for i, o in enumerate(ORDERS[:2])])
    v1 = mem.get_procedure("cancel_pending_order")
    report = mem.learn([cancel_trace(9, ORDERS[3], "ordered by mistake")])
    assert report.updated == ["cancel_pending_order"] and report.created == []
    v2 = mem.get_procedure("cancel_pending_order")
    assert v2.version == 2
    assert v2.lineage.parent_version == 1
    assert v2.lineage.traces == ["cancel-0", "cancel-1", "cancel-9"]
    old = mem.get_procedure("cancel_pending_order", 1)
    assert old.content() == v1.content()
    assert [p.version for p in mem.list_versions("cancel_pending_order")] == [1, 2]


def test_learn_skips_failed_and_empty_traces(mem: Memory) -> None:
    bad = Trace(id="bad", task="Cancel order #W1 because x.", outcome="failure",
                steps=[TraceStep(action="cancel_pending_order", args={"order_id": "#W1"})])
    empty = Trace(id="empty", task="nothing")
    report = mem.learn([cancel_trace(0, ORDERS[0]), bad, empty])
    assert report.traces == 3 and report.groups == 1 and report.skipped == 2


def test_learn_on_the_real_sample(mem: Memory, tau_sample_path: Path) -> None:
    imported = mem.import_traces(tau_sample_path)
    assert (imported.read, imported.stored, imported.errors) == (120, 120, [])
    report = mem.learn()
    assert report.traces == 120 and len(report.created) == report.groups > 20
    assert mem.learn().created == []
    names = {p.name for p in mem.list_procedures(limit=100)}
    assert {"cancel_pending_order", "return_delivered_order_items",
            "exchange_delivered_order_items", "cancel_pending_order_x2"} <= names


def test_import_of_a_file_with_a_bad_line_stores_nothing(mem: Memory, tau_sample_path: Path,
                                                         tmp_path: Path) -> None:
    mem.add_traces([cancel_trace(0, ORDERS[0])])
    lines = tau_sample_path.read_text(encoding="utf-8").splitlines()[:5]
    broken = json.loads(lines[3])
    broken["steps"][0]["action"] = ""  # invalid: empty action
    lines[3] = json.dumps(broken)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    count = mem.store.count_traces()
    with pytest.raises(InvalidTrace) as info:
        mem.import_traces(bad)
    assert info.value.line == 4
    assert info.value.field == "steps.0.action"
    assert "bad.jsonl" in str(info.value) and ":4" in str(info.value)
    assert mem.store.count_traces() == count == 1
    assert mem.learn().created == ["cancel_pending_order"]  # only the earlier trace
    # with skip_invalid the valid lines are stored and the bad one reported
    report = mem.import_traces(bad, skip_invalid=True)
    assert (report.read, report.stored, len(report.errors)) == (4, 4, 1)
    assert mem.store.count_traces() == 5


# ------------------------------------------------------------------------ replay


def test_replay_binds_params_from_the_task(mem: Memory) -> None:
    mem.learn(cancel_traces(3))
    tools = Tools(cancel_pending_order="ok")
    ex = mem.replay("cancel_pending_order", tools=tools.mapping(),
                    task="Cancel order #W9999999 because ordered by mistake.")
    assert ex.status == "succeeded"
    assert tools.calls == [("cancel_pending_order",
                            {"order_id": "#W9999999", "reason": "ordered by mistake"})]
    assert ex.params == {"order_id": "#W9999999", "reason": "ordered by mistake"}
    assert ex.param_sources == {"order_id": "task", "reason": "task"}
    assert ex.step_runs[0].sources == {"/order_id": "param:order_id",
                                       "/reason": "param:reason"}
    stored = mem.get_execution(ex.id)
    assert stored.status == "succeeded" and stored.param_sources["order_id"] == "task"


def test_given_params_win_over_the_task(mem: Memory) -> None:
    mem.learn(cancel_traces(3))
    tools = Tools(cancel_pending_order="ok")
    ex = mem.replay("cancel_pending_order", tools=tools.mapping(),
                    task="Cancel order #W9999999 because ordered by mistake.",
                    params={"order_id": "#W1111111"})
    assert ex.params["order_id"] == "#W1111111"
    assert ex.param_sources == {"order_id": "given", "reason": "task"}


def test_pause_without_resolver_then_resume_finishes_without_recalling_steps(
    mem: Memory
) -> None:
    proc = mem.put_procedure(lookup_procedure())
    tools = Tools(get_user_orders=json.dumps({"orders": ["#W1000001", "#W1000002"]}),
                  cancel_pending_order="cancelled")
    ex = mem.replay(proc.name, tools=tools.mapping(), params={"user_id": "u1"})
    assert ex.status == "paused"
    assert [n.key for n in ex.needs] == ["ask:s2:/order_id"]
    need = ex.needs[0]
    assert need.kind == "ask" and need.candidates == ["#W1000001", "#W1000002"]
    assert need.step_id == "s2" and need.arg_path == "/order_id"
    assert [a for a, _ in tools.calls] == ["get_user_orders"]
    assert mem.get_execution(ex.id).status == "paused"

    done = mem.resume(ex.id, {need.key: "#W1000002"}, tools=tools.mapping())
    assert done.status == "succeeded" and done.id == ex.id
    assert tools.calls == [
        ("get_user_orders", {"user_id": "u1"}),
        ("cancel_pending_order", {"order_id": "#W1000002", "reason": "no longer needed"}),
    ]
    assert done.step_runs[1].sources["/order_id"] == "ask"
    with pytest.raises(ReplayError, match="already succeeded"):
        mem.resume(ex.id, tools=tools.mapping())


def test_a_missing_param_is_a_need_answered_by_the_resolver(mem: Memory) -> None:
    proc = mem.put_procedure(lookup_procedure())
    tools = Tools(get_user_orders=json.dumps({"orders": ["#W1000001"]}),
                  cancel_pending_order="cancelled")
    seen: list[Need] = []

    def resolver(need: Need) -> Any:
        seen.append(need)
        return "u7" if need.kind == "param" else need.candidates[0]

    ex = mem.replay(proc, tools=tools.mapping(), resolver=resolver)
    assert ex.status == "succeeded"
    assert [n.key for n in seen] == ["param:user_id", "ask:s2:/order_id"]
    assert ex.params == {"user_id": "u7"} and ex.param_sources == {"user_id": "answer"}


def test_a_sub_procedure_step_runs_through_replay(mem: Memory) -> None:
    child = Procedure(
        name="child",
        params=[Param(name="order_id", schema={"type": "string"})],
        steps=[Step(id="c1", action="cancel_pending_order",
                    args={"order_id": param("order_id"), "reason": "no longer needed"})],
    )
    parent = Procedure(
        name="parent",
        params=[Param(name="user_id", schema={"type": "string"})],
        steps=[
            Step(id="s1", action="get_user_orders", args={"user_id": param("user_id")}),
            Step(id="s2", action="procedure:child",
                 args={"order_id": step_ref("s1", "/orders/0")}),
            Step(id="s3", action="notify", args={"text": step_ref("s2", "/status")}),
        ],
    )
    mem.put_procedure(child)
    mem.put_procedure(parent)
    tools = Tools(get_user_orders={"orders": ["#W1000001"]},
                  cancel_pending_order=json.dumps({"status": "cancelled"}),
                  notify="sent")
    ex = mem.replay("parent", tools=tools.mapping(), params={"user_id": "u1"})
    assert ex.status == "succeeded", ex.error
    assert [a for a, _ in tools.calls] == ["get_user_orders", "cancel_pending_order", "notify"]
    assert tools.calls[1][1] == {"order_id": "#W1000001", "reason": "no longer needed"}
    assert tools.calls[2][1] == {"text": "cancelled"}
    child_id = ex.step_runs[1].child_execution_id
    assert child_id is not None
    child_ex = mem.get_execution(child_id)
    assert child_ex.procedure == "child" and child_ex.parent_id == ex.id
    assert child_ex.status == "succeeded"
    # the child's own statistics do not count the parent's run as a top-level one
    assert mem.get_procedure("parent").execution_count == 1


def test_unknown_tool_is_raised_before_any_call(mem: Memory) -> None:
    proc = mem.put_procedure(lookup_procedure())
    tools = Tools(get_user_orders=json.dumps({"orders": []}))
    with pytest.raises(UnknownTool, match="cancel_pending_order"):
        mem.replay(proc, tools=tools.mapping(), params={"user_id": "u1"})
    assert tools.calls == []
    assert mem.list_executions() == []


def test_statistics_after_replays(mem: Memory) -> None:
    mem.learn(cancel_traces(3))
    fresh = mem.get_procedure("cancel_pending_order")
    assert fresh.execution_count == 0 and fresh.success_rate is None
    ok = Tools(cancel_pending_order="ok").mapping()
    broken = Tools(cancel_pending_order=RuntimeError("order is not pending")).mapping()
    task = "Cancel order #W9999999 because no longer needed."
    results = [mem.replay("cancel_pending_order", tools=t, task=task).status
               for t in (ok, ok, broken)]
    assert results == ["succeeded", "succeeded", "failed"]
    proc = mem.get_procedure("cancel_pending_order")
    assert proc.execution_count == 3
    assert proc.success_rate == pytest.approx(2 / 3)
    assert 0 <= proc.success_rate <= 1
    assert proc.avg_duration_ms is not None and proc.avg_duration_ms >= 0
    assert proc.last_executed_at is not None
    assert mem.list_procedures()[0].execution_count == 3
    failed = mem.list_executions(procedure="cancel_pending_order")
    assert sum(e.status == "failed" for e in failed) == 1
    assert any("order is not pending" in (e.error or "") for e in failed)


# ---------------------------------------------------------------------- recorder


def test_recorded_traces_are_stored_and_learned(mem: Memory) -> None:
    def cancel_pending_order(order_id: str, reason: str) -> str:
        return json.dumps({"order_id": order_id, "status": "cancelled"})

    for order, reason in zip(ORDERS[:3], ["no longer needed", "ordered by mistake",
                                          "no longer needed"], strict=True):
        with mem.record(f"Cancel order {order} because {reason}.", source="test") as rec:
            tools = rec.wrap_tools({"cancel_pending_order": cancel_pending_order})
            tools["cancel_pending_order"](order_id=order, reason=reason)
    traces = mem.list_traces()
    assert len(traces) == 3
    assert all(t.outcome == "success" and t.source == "test" for t in traces)
    assert traces[0].steps[0].args == {"order_id": ORDERS[0], "reason": "no longer needed"}
    assert traces[0].steps[0].duration_ms is not None

    with pytest.raises(RuntimeError), mem.record("Cancel order #W0000001 because x.") as rec:
        rec.wrap_tools({"cancel_pending_order": cancel_pending_order})[
            "cancel_pending_order"](order_id="#W0000001", reason="x")
        raise RuntimeError("agent crashed")
    assert mem.store.count_traces() == 4
    assert mem.list_traces()[-1].outcome == "failure"

    report = mem.learn()
    assert report.created == ["cancel_pending_order"] and report.skipped == 1
    proc = mem.get_procedure("cancel_pending_order")
    assert proc.steps[0].args == {"order_id": {"$param": "order_id"},
                                  "reason": {"$param": "reason"}}
    assert len(proc.lineage.traces) == 3


# ------------------------------------------------------------- procedures, search


def test_put_procedure_rejects_a_bad_reference(mem: Memory) -> None:
    bad = Procedure(name="bad", steps=[
        Step(id="s1", action="a", args={"x": step_ref("s2", "/y")}),
        Step(id="s2", action="b"),
    ])
    with pytest.raises(InvalidProcedure, match="not an earlier step"):
        mem.put_procedure(bad)
    unknown = Procedure(name="bad", steps=[Step(id="s1", action="a", args={"x": param("p")})])
    with pytest.raises(InvalidProcedure, match="unknown param"):
        mem.put_procedure(unknown)
    assert mem.find_procedure("bad") is None


def test_put_procedure_versions_only_on_change(mem: Memory) -> None:
    first = mem.put_procedure(lookup_procedure())
    assert first.version == 1
    assert mem.put_procedure(lookup_procedure()).version == 1
    changed = lookup_procedure().model_copy(update={"description": "new words"})
    assert mem.put_procedure(changed).version == 2
    assert mem.get_procedure(first.name, 1).description == ""


@pytest.mark.parametrize("limit", [0, -1, 101])
def test_search_limit_out_of_range_is_a_usage_error(mem: Memory, limit: int) -> None:
    with pytest.raises(UsageError, match="limit"):
        mem.search("cancel order", limit=limit)


def test_search_of_an_empty_task_is_a_usage_error(mem: Memory) -> None:
    with pytest.raises(UsageError):
        mem.search("   ")


# ------------------------------------------------------------------- async parity


def _runs(ex: Any) -> list[tuple[str, dict[str, Any], str, Any]]:
    return [(r.action, r.args, r.status, r.output) for r in ex.step_runs]


def test_areplay_gives_the_same_step_runs_as_replay(mem: Memory) -> None:
    proc = mem.put_procedure(lookup_procedure())
    outputs = {"get_user_orders": json.dumps({"orders": ["#W1000001", "#W1000002"]}),
               "cancel_pending_order": "cancelled"}

    def resolver(need: Need) -> Any:
        return need.candidates[-1]

    sync_tools = Tools(**outputs)
    sync = mem.replay(proc, tools=sync_tools.mapping(), params={"user_id": "u1"},
                      resolver=resolver)

    async_tools = Tools(**outputs)

    async def get_user_orders(**kw: Any) -> Any:
        await asyncio.sleep(0)
        return async_tools["get_user_orders"](**kw)

    async def aresolver(need: Need) -> Any:
        await asyncio.sleep(0)
        return resolver(need)

    tools = {"get_user_orders": get_user_orders,
             "cancel_pending_order": async_tools["cancel_pending_order"]}
    asynced = asyncio.run(mem.areplay(proc, tools=tools, params={"user_id": "u1"},
                                      resolver=aresolver))
    assert sync.status == asynced.status == "succeeded"
    assert _runs(sync) == _runs(asynced)
    assert [r.sources for r in sync.step_runs] == [r.sources for r in asynced.step_runs]
    assert sync_tools.calls == async_tools.calls
    assert sync.id != asynced.id


def test_search_sees_procedures_learned_by_another_connection(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    with Memory(path) as reader, Memory(path) as writer:
        assert reader.search("Cancel order #W1234567 because no longer needed.") == []
        writer.learn(cancel_traces(3))
        hits = reader.search("Cancel order #W7654321 because ordered by mistake.")
        assert [h.procedure.name for h in hits] == ["cancel_pending_order"]
        assert hits[0].explanation["bound"] == {"order_id": "#W7654321",
                                                "reason": "ordered by mistake"}
        name = hits[0].procedure.name
        writer.store.set_status(name, hits[0].procedure.version, "deprecated")
        assert reader.search("Cancel order #W7654321 because ordered by mistake.") == []


def test_report_stores_evidence_and_rejects_bad_input(mem: Memory) -> None:
    mem.learn(cancel_traces(3))
    ex = mem.replay("cancel_pending_order", tools={"cancel_pending_order": dict},
                    task="Cancel order #W7654321 because ordered by mistake.")
    result = mem.report(ex.id, reward=1.0, source="environment")
    ev = result.evidence
    assert mem.store.list_evidence(ex.id) == [ev] and result.changes == []
    with pytest.raises(UsageError, match="reward"):
        mem.report(ex.id, reward=1.5)
    with pytest.raises(UsageError, match="source"):
        mem.report(ex.id, reward=0.5, source="oracle")
    assert mem.store.list_evidence(ex.id) == [ev]


def test_put_procedure_rejects_an_extractor_that_is_not_a_regex(mem: Memory) -> None:
    from procmem.core.model import Extractor
    bad = Procedure(name="bad_regex", params=[
        Param(name="order_id", schema={"type": "string"},
              extractor=Extractor(pattern="#W(\\d{7}", before="order "))],
        steps=[Step(id="s1", action="cancel", args={"order_id": param("order_id")})])
    with pytest.raises(InvalidProcedure, match="order_id.*not a regex"):
        mem.put_procedure(bad)
    assert mem.find_procedure("bad_regex") is None
