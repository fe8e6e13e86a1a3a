"""Tests for the replay core, its drivers and the checks it makes (procmem.core.replay)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from procmem.core.checks import evaluate
from procmem.core.errors import (
    CycleError,
    InvalidProcedure,
    NotFound,
    ParamError,
    ReplayError,
    UnknownTool,
)
from procmem.core.model import Check, Execution, Need, OnError, Param, Procedure, Step, StepRun
from procmem.core.replay import (
    NeedValues,
    Persist,
    Sleep,
    ToolCall,
    ToolResult,
    adrive,
    check_tools,
    drive,
    replay_core,
)
from procmem.core.template import ask, param, step_ref

# ------------------------------------------------------------------------ helpers


def proc(name: str, steps: list[Step], params: list[Param] | None = None) -> Procedure:
    return Procedure(name=name, steps=steps, params=params or [])


def p(name: str, type_: str = "string", **kw: Any) -> Param:
    return Param(name=name, schema={"type": type_}, **kw)


def new_ex(procedure: Procedure, **params: Any) -> Execution:
    return Execution(procedure=procedure.name, version=procedure.version, task="do it",
                     params=params)


class Recorder:
    """Tool functions that record their calls."""

    def __init__(self, **behaviours: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.behaviours = behaviours

    def tools(self) -> dict[str, Any]:
        def make(name: str) -> Any:
            def tool(**kwargs: Any) -> Any:
                self.calls.append((name, kwargs))
                result = self.behaviours[name]
                return result(**kwargs) if callable(result) else result
            return tool
        return {name: make(name) for name in self.behaviours}

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def collect(core: Any, tools: dict[str, Any], answers: dict[str, Any] | None = None
            ) -> tuple[Execution, list[Any]]:
    """A test driver that records every event (no sleeping)."""
    events: list[Any] = []
    reply: Any = None
    while True:
        try:
            event = core.send(reply)
        except StopIteration as stop:
            return stop.value, events
        events.append(event)
        reply = None
        if isinstance(event, ToolCall):
            try:
                reply = ToolResult(tools[event.action](**event.args))
            except Exception as err:
                reply = ToolResult(None, f"{type(err).__name__}: {err}")
        elif isinstance(event, NeedValues):
            reply = {n.key: (answers or {})[n.key] for n in event.needs
                     if n.key in (answers or {})}


def run(procedure: Procedure, ex: Execution, tools: dict[str, Any],
        procedures: dict[str, Procedure] | None = None, **kw: Any) -> Execution:
    return drive(replay_core(procedure, ex, procedures or {}), tools, **kw)


# ------------------------------------------------------------------------ binding


def test_binds_literals_params_and_step_outputs_with_sources() -> None:
    rec = Recorder(
        find_user=lambda name: {"user_id": f"u-{name}", "orders": ["o1", "o2"]},
        get_order=lambda **kw: {"ok": True},
    )
    pr = proc("lookup", [
        Step(id="s1", action="find_user", args={"name": param("name")}),
        Step(id="s2", action="get_order", args={
            "user": step_ref("s1", "/user_id"),
            "order_id": step_ref("s1", "/orders/1"),
            "mode": "full",
            "tags": [param("name"), {"$literal": {"$x": 1}}],
        }),
    ], [p("name")])
    ex = run(pr, new_ex(pr, name="ann"), rec.tools())

    assert ex.status == "succeeded"
    assert rec.calls[1] == ("get_order", {"user": "u-ann", "order_id": "o2", "mode": "full",
                                          "tags": ["ann", {"$x": 1}]})
    assert ex.step_runs[0].sources == {"/name": "param:name"}
    assert ex.step_runs[1].sources == {
        "/user": "step:s1#/user_id",
        "/order_id": "step:s1#/orders/1",
        "/tags/0": "param:name",
    }
    assert ex.finished_at is not None and ex.error is None


def test_step_reference_into_json_text_output() -> None:
    rec = Recorder(search=json.dumps({"items": [{"id": 7}, {"id": 9}]}), fetch=lambda id: id * 2)
    pr = proc("p", [
        Step(id="s1", action="search"),
        Step(id="s2", action="fetch", args={"id": step_ref("s1", "/items/1/id")}),
    ])
    ex = run(pr, new_ex(pr), rec.tools())
    assert ex.step_runs[0].output == json.dumps({"items": [{"id": 7}, {"id": 9}]})  # kept as text
    assert ex.step_runs[1].args == {"id": 9} and ex.step_runs[1].output == 18


def test_pointer_that_does_not_resolve_fails_the_step_without_calling_it() -> None:
    rec = Recorder(a={"x": 1}, b="never")
    pr = proc("p", [Step(id="s1", action="a"),
                    Step(id="s2", action="b", args={"v": step_ref("s1", "/missing")})])
    ex = run(pr, new_ex(pr), rec.tools())
    assert rec.names() == ["a"]
    assert ex.status == "failed"
    assert ex.step_runs[1].status == "failed" and ex.step_runs[1].attempts == 0
    assert "does not resolve" in (ex.step_runs[1].error or "")
    assert "'s2'" in (ex.error or "")


def test_optional_param_without_value_leaves_the_arg_out() -> None:
    rec = Recorder(t=lambda **kw: sorted(kw))
    pr = proc("p", [Step(id="s1", action="t", args={"a": param("a"), "b": param("b")})],
              [p("a"), p("b", required=False)])
    ex = run(pr, new_ex(pr, a="x"), rec.tools())
    assert rec.calls == [("t", {"a": "x"})]
    assert ex.step_runs[0].sources == {"/a": "param:a"}


# -------------------------------------------------------------- params and pauses


def test_missing_param_pauses_then_resume_binds_the_answer() -> None:
    rec = Recorder(t=lambda order_id: order_id)
    pr = proc("p", [Step(id="s1", action="t", args={"order_id": param("order_id")})],
              [p("order_id", description="the order to cancel", examples=["#W1"])])
    ex = run(pr, new_ex(pr), rec.tools())

    assert ex.status == "paused" and rec.calls == [] and ex.step_runs == []
    [need] = ex.needs
    assert (need.key, need.kind, need.name, need.prompt) == (
        "param:order_id", "param", "order_id", "the order to cancel")
    assert need.context["schema"] == {"type": "string"} and need.context["examples"] == ["#W1"]

    ex.answers["param:order_id"] = "#W2"
    ex = run(pr, ex, rec.tools())
    assert ex.status == "succeeded" and ex.needs == []
    assert ex.params == {"order_id": "#W2"} and ex.param_sources == {"order_id": "answer"}
    assert ex.step_runs[0].output == "#W2"


def test_all_missing_params_are_asked_in_one_need_values() -> None:
    pr = proc("p", [Step(id="s1", action="t", args={"a": param("a"), "b": param("b")})],
              [p("a"), p("b", "integer")])
    ex, events = collect(replay_core(pr, new_ex(pr), {}), {"t": lambda **kw: kw},
                         {"param:a": "x", "param:b": 3})
    need_events = [e for e in events if isinstance(e, NeedValues)]
    assert len(need_events) == 1 and [n.key for n in need_events[0].needs] == ["param:a",
                                                                                 "param:b"]
    assert ex.status == "succeeded" and ex.step_runs[0].output == {"a": "x", "b": 3}


def test_ask_pauses_and_resume_does_not_repeat_finished_steps() -> None:
    rec = Recorder(list_orders={"orders": ["o1", "o2"]}, cancel=lambda order_id: "done")
    pr = proc("p", [
        Step(id="s1", action="list_orders"),
        Step(id="s2", action="cancel",
             args={"order_id": ask("which order", step_ref("s1", "/orders"))}),
    ])
    ex = run(pr, new_ex(pr), rec.tools())
    assert ex.status == "paused" and rec.names() == ["list_orders"]
    assert len(ex.step_runs) == 1  # no step run for the step waiting on an answer
    [need] = ex.needs
    assert need.key == "ask:s2:/order_id" and need.candidates == ["o1", "o2"]

    ex.answers[need.key] = "o2"
    ex = run(pr, ex, rec.tools())
    assert ex.status == "succeeded"
    assert rec.names() == ["list_orders", "cancel"]  # s1 not called again
    assert rec.calls[-1] == ("cancel", {"order_id": "o2"})
    assert ex.step_runs[1].sources == {"/order_id": "ask"}


def test_resuming_a_failed_execution_reruns_only_the_failed_step() -> None:
    healthy = {"up": False}

    def b() -> str:
        if not healthy["up"]:
            raise ConnectionError("down")
        return "ok"

    rec = Recorder(a="A", b=b)
    pr = proc("p", [Step(id="s1", action="a"), Step(id="s2", action="b")])
    ex = run(pr, new_ex(pr), rec.tools())
    assert ex.status == "failed"

    healthy["up"] = True
    ex = run(pr, ex, rec.tools())
    assert ex.status == "succeeded" and ex.error is None
    assert rec.names() == ["a", "b", "b"]
    assert [(r.index, r.status) for r in ex.step_runs] == [(0, "succeeded"), (1, "succeeded")]

    events = collect(replay_core(pr, ex, {}), rec.tools())[1]
    assert events == []  # a succeeded execution is left alone
    other = proc("other", [])
    with pytest.raises(ReplayError):
        run(other, ex, rec.tools())


def test_resolver_answers_asks_of_a_step_in_one_exchange() -> None:
    seen: list[Need] = []

    def resolver(need: Need) -> Any:
        seen.append(need)
        return need.candidates[-1] if need.candidates else "note"

    rec = Recorder(ls=["a", "b", "c"], pick=lambda item, note: f"{item}/{note}")
    pr = proc("p", [
        Step(id="s1", action="ls"),
        Step(id="s2", action="pick", args={"item": ask("which", step_ref("s1")),
                                           "note": ask("why")}),
    ])
    ex, events = collect(replay_core(pr, new_ex(pr), {}), rec.tools(),
                         {"ask:s2:/item": "b", "ask:s2:/note": "n"})
    assert sum(isinstance(e, NeedValues) for e in events) == 1
    assert ex.step_runs[1].output == "b/n"

    ex = run(pr, new_ex(pr), rec.tools(), resolver=resolver)
    assert ex.step_runs[1].output == "c/note"
    item = seen[0]
    assert (item.kind, item.step_id, item.action, item.arg_path, item.prompt) == (
        "ask", "s2", "pick", "/item", "which")
    assert item.context == {"procedure": "p", "task": "do it"}
    assert ex.answers == {"ask:s2:/item": "c", "ask:s2:/note": "note"}


def test_param_errors_are_raised_before_any_tool_call() -> None:
    rec = Recorder(t="x")
    pr = proc("p", [Step(id="s1", action="t")], [p("n", "integer"), p("f", "number")])
    with pytest.raises(ParamError, match="'n'"):
        run(pr, new_ex(pr, n="3", f=1.5), rec.tools())
    with pytest.raises(ParamError, match="unknown param"):
        run(pr, new_ex(pr, n=3, f=1.5, zzz=1), rec.tools())
    with pytest.raises(ParamError):
        run(pr, new_ex(pr, n=True, f=1.5), rec.tools())  # a boolean is not an integer
    assert rec.calls == []
    assert run(pr, new_ex(pr, n=3, f=2), rec.tools()).status == "succeeded"  # int is a number


# ------------------------------------------------------------ expect and on_error


@pytest.mark.parametrize(("check", "output", "ok"), [
    (Check(op="exists", path="/a"), {"a": None}, True),
    (Check(op="exists", path="/b"), {"a": 1}, False),
    (Check(op="equals", path="/s", value="ok"), '{"s": "ok"}', True),
    (Check(op="equals", path="/n", value=1), {"n": True}, False),
    (Check(op="contains", value="done"), "all done", True),
    (Check(op="contains", path="/l", value=2), {"l": [1, 3]}, False),
    (Check(op="not_contains", value="error"), "error: nope", False),
    (Check(op="not_contains", path="/missing", value="x"), {}, True),
    (Check(op="type", path="/n", value="number"), {"n": 3}, True),
    (Check(op="type", value="object"), [1], False),
])
def test_expect_checks(check: Check, output: Any, ok: bool) -> None:
    assert (evaluate(check, output) is None) is ok


def test_failing_expect_fails_the_step() -> None:
    pr = proc("p", [Step(id="s1", action="t", expect=[Check(op="equals", path="/status",
                                                             value="delivered")])])
    ex = run(pr, new_ex(pr), {"t": lambda: {"status": "pending"}})
    assert ex.status == "failed"
    assert ex.step_runs[0].error == "expect failed: /status equals 'delivered' (got 'pending')"
    assert ex.step_runs[0].output == {"status": "pending"}


def test_raised_exception_is_a_failed_step_run_and_stop_stops() -> None:
    def boom() -> None:
        raise ValueError("boom")

    rec = Recorder(a=boom, b="never")
    pr = proc("p", [Step(id="s1", action="a"), Step(id="s2", action="b")])
    ex = run(pr, new_ex(pr), rec.tools())
    assert rec.names() == ["a"] and len(ex.step_runs) == 1
    assert ex.step_runs[0].status == "failed" and ex.step_runs[0].error == "ValueError: boom"
    assert ex.status == "failed" and ex.error == "step 's1' (a) failed: ValueError: boom"


def test_skip_goes_on_and_a_later_reference_to_the_skipped_step_fails() -> None:
    def boom() -> None:
        raise RuntimeError("down")

    rec = Recorder(a=boom, b="fine", c=lambda v: v)
    skip = OnError(policy="skip")
    pr = proc("p", [
        Step(id="s1", action="a", on_error=skip),
        Step(id="s2", action="b"),
        Step(id="s3", action="c", args={"v": step_ref("s1")}, on_error=skip),
    ])
    ex = run(pr, new_ex(pr), rec.tools())
    assert ex.status == "succeeded" and rec.names() == ["a", "b"]
    assert [r.status for r in ex.step_runs] == ["skipped", "succeeded", "skipped"]
    assert "skipped" in (ex.step_runs[2].error or "")


def test_retry_sleeps_with_exponential_backoff_until_success() -> None:
    attempts: list[int] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise TimeoutError("slow")
        return "ok"

    pr = proc("p", [Step(id="s1", action="f",
                         on_error=OnError(policy="retry", retries=4, backoff_s=0.5))])
    ex, events = collect(replay_core(pr, new_ex(pr), {}), {"f": flaky})
    assert [e.seconds for e in events if isinstance(e, Sleep)] == [0.5, 1.0]
    assert [e.attempt for e in events if isinstance(e, ToolCall)] == [1, 2, 3]
    assert ex.status == "succeeded" and ex.step_runs[0].attempts == 3
    assert ex.step_runs[0].output == "ok" and ex.step_runs[0].error is None


def test_retry_gives_up_after_retries_extra_attempts() -> None:
    calls: list[int] = []

    def always_fails() -> None:
        calls.append(1)
        raise OSError("nope")

    pr = proc("p", [Step(id="s1", action="f", on_error=OnError(policy="retry", retries=2))])
    ex = run(pr, new_ex(pr), {"f": always_fails})  # backoff 0: the driver does not sleep
    assert len(calls) == 3 and ex.step_runs[0].attempts == 3
    assert ex.status == "failed" and "OSError: nope" in (ex.error or "")


def test_on_error_ask_uses_the_answer_as_output() -> None:
    def boom(q: str) -> None:
        raise KeyError(q)

    rec = Recorder(a=boom, b=lambda v: v)
    pr = proc("p", [Step(id="s1", action="a", args={"q": "x"}, on_error=OnError(policy="ask")),
                    Step(id="s2", action="b", args={"v": step_ref("s1", "/price")})])
    seen: list[Need] = []
    ex = run(pr, new_ex(pr), rec.tools(),
             resolver=lambda n: seen.append(n) or {"price": 5})
    assert seen[0].key == "error:s1" and seen[0].kind == "error"
    assert seen[0].context["error"] == "KeyError: 'x'"
    assert ex.status == "succeeded" and ex.step_runs[1].output == 5
    assert ex.step_runs[0].status == "succeeded" and ex.step_runs[0].sources == {"": "ask"}


def test_on_error_ask_without_answer_pauses_and_resume_does_not_call_again() -> None:
    def boom() -> None:
        raise RuntimeError("gone")

    rec = Recorder(a=boom, b=lambda v: v)
    pr = proc("p", [Step(id="s1", action="a", on_error=OnError(policy="ask")),
                    Step(id="s2", action="b", args={"v": step_ref("s1")})])
    ex = run(pr, new_ex(pr), rec.tools())
    assert ex.status == "paused" and [n.key for n in ex.needs] == ["error:s1"]
    assert ex.step_runs[0].status == "failed"

    ex.answers["error:s1"] = "manual"
    ex = run(pr, ex, rec.tools())
    assert ex.status == "succeeded" and rec.names() == ["a", "b"]
    assert ex.step_runs[1].output == "manual"


def test_non_json_output_is_stored_as_text_and_outputs_are_copied() -> None:
    state = {"n": [1]}
    pr = proc("p", [Step(id="s1", action="when"), Step(id="s2", action="state")])
    when = datetime(2024, 1, 2, tzinfo=UTC)
    ex = run(pr, new_ex(pr), {"when": lambda: when, "state": lambda: state})
    state["n"].append(2)
    assert ex.step_runs[0].output == str(when)
    assert ex.step_runs[1].output == {"n": [1]}
    assert Execution.model_validate_json(ex.model_dump_json()) == ex


def test_resolver_exceptions_propagate() -> None:
    pr = proc("p", [Step(id="s1", action="t")], [p("a")])

    def resolver(need: Need) -> Any:
        raise LookupError("oracle down")

    with pytest.raises(LookupError):
        run(pr, new_ex(pr), {"t": lambda: 1}, resolver=resolver)


def test_async_tool_under_the_sync_driver_is_a_failed_step() -> None:
    async def t() -> int:
        return 1

    pr = proc("p", [Step(id="s1", action="t")])
    ex = run(pr, new_ex(pr), {"t": t})
    assert ex.status == "failed" and "adrive" in (ex.step_runs[0].error or "")


# ------------------------------------------------------------------- structure


def test_unknown_tool_is_raised_before_anything_runs() -> None:
    child = proc("child", [Step(id="c1", action="missing_tool")])
    pr = proc("p", [Step(id="s1", action="t"), Step(id="s2", action="procedure:child")])
    with pytest.raises(UnknownTool, match="missing_tool"):
        check_tools(pr, {"child": child}, {"t": lambda: 1})
    check_tools(pr, {"child": child}, {"t": lambda: 1, "missing_tool": lambda: 2})
    with pytest.raises(UnknownTool):  # the driver refuses too, if nobody checked
        run(proc("q", [Step(id="s1", action="nope")]), new_ex(proc("q", [])), {})


def test_cycles_and_missing_subprocedures_are_raised_before_any_call() -> None:
    calls: list[str] = []
    tools = {"t": lambda: calls.append("t")}
    a = proc("a", [Step(id="s1", action="t"), Step(id="s2", action="procedure:b")])
    b = proc("b", [Step(id="s1", action="procedure:a")])
    with pytest.raises(CycleError) as info:
        run(a, new_ex(a), tools, {"a": a, "b": b})
    assert info.value.chain == ["a", "b", "a"] and calls == []
    selfish = proc("s", [Step(id="s1", action="procedure:s")])
    with pytest.raises(CycleError):
        run(selfish, new_ex(selfish), tools, {"s": selfish})
    with pytest.raises(NotFound):
        run(a, new_ex(a), tools, {})
    c = proc("c", [Step(id="s1", action="procedure:d", args={"bogus": 1})])
    with pytest.raises(InvalidProcedure):
        run(c, new_ex(c), tools, {"d": proc("d", [])})
    assert calls == []


# ---------------------------------------------------------------- sub-procedures


def _family() -> tuple[Procedure, dict[str, Procedure]]:
    child = proc("refund", [
        Step(id="c1", action="lookup", args={"order_id": param("order_id")}),
        Step(id="c2", action="pay", args={"amount": step_ref("c1", "/total"),
                                          "method": param("method")}),
    ], [p("order_id"), p("method")])
    parent = proc("support", [
        Step(id="s1", action="procedure:refund",
             args={"order_id": param("order"), "method": "card"}),
        Step(id="s2", action="notify", args={"msg": step_ref("s1", "/receipt")}),
    ], [p("order")])
    return parent, {"refund": child}


def test_subprocedure_runs_as_a_child_execution() -> None:
    parent, procs = _family()
    rec = Recorder(lookup={"total": 12}, pay=lambda amount, method: {"receipt": f"r{amount}"},
                   notify=lambda msg: msg)
    saved: list[Execution] = []
    ex = run(parent, new_ex(parent, order="#1"), rec.tools(), procs,
             persist=lambda e, r: saved.append(e.model_copy(deep=True)))
    assert ex.status == "succeeded" and rec.names() == ["lookup", "pay", "notify"]
    s1 = ex.step_runs[0]
    assert s1.output == {"receipt": "r12"} and s1.child_execution_id is not None
    child = [e for e in saved if e.id == s1.child_execution_id][-1]
    assert child.parent_id == ex.id and child.status == "succeeded"
    assert child.params == {"order_id": "#1", "method": "card"}
    assert child.param_sources == {"order_id": "parent:param:order", "method": "parent:literal"}
    assert ex.step_runs[1].args == {"msg": "r12"}


def test_subprocedure_failure_fails_the_parent_step() -> None:
    parent, procs = _family()

    def declined(amount: int, method: str) -> None:
        raise PermissionError("card declined")

    rec = Recorder(lookup={"total": 12}, pay=declined, notify="never")
    ex = run(parent, new_ex(parent, order="#1"), rec.tools(), procs)
    assert ex.status == "failed" and rec.names() == ["lookup", "pay"]
    assert ex.step_runs[0].status == "failed"
    assert "sub-procedure 'refund' failed" in (ex.step_runs[0].error or "")
    assert "card declined" in (ex.error or "")


def test_paused_subprocedure_resumes_inside_the_parent() -> None:
    parent, procs = _family()
    parent.steps[0].args.pop("method")  # the child now needs 'method' from someone
    rec = Recorder(lookup={"total": 12}, pay=lambda amount, method: {"receipt": method},
                   notify=lambda msg: msg)
    ex = run(parent, new_ex(parent, order="#1"), rec.tools(), procs)
    assert ex.status == "paused" and [n.key for n in ex.needs] == ["s1/param:method"]
    child_id = ex.answers["child:s1"]["id"]

    ex.answers["s1/param:method"] = "cash"
    ex = run(parent, ex, rec.tools(), procs)
    assert ex.status == "succeeded" and ex.step_runs[0].child_execution_id == child_id
    assert ex.step_runs[1].output == "cash" and "child:s1" not in ex.answers
    # a live resolver sees the same prefixed key
    ex2 = run(parent, new_ex(parent, order="#1"), rec.tools(), procs,
              resolver=lambda n: "wire" if n.key == "s1/param:method" else None)
    assert ex2.status == "succeeded" and ex2.step_runs[1].output == "wire"


# ------------------------------------------------------------ persist and parity


def test_persist_after_every_step_run_and_at_the_end() -> None:
    calls: list[tuple[str, int | None]] = []

    def persist(e: Execution, r: StepRun | None) -> None:
        calls.append((e.status, None if r is None else r.index))

    pr = proc("p", [Step(id=f"s{i}", action="t") for i in range(3)])
    ex, events = collect(replay_core(pr, new_ex(pr), {}), {"t": lambda: 1})
    persisted = [e for e in events if isinstance(e, Persist)]
    assert [e.step_run.index if e.step_run else None for e in persisted] == \
        [None, None, 0, None, 1, None, 2, None]
    # the header is persisted with the call as started (in_flight) before each call,
    # each step run right after its call, before the next call
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Persist"] + ["Persist", "ToolCall", "Persist"] * 3 + ["Persist"]
    run(pr, new_ex(pr), {"t": lambda: 1}, persist=persist)
    assert calls == [("running", None), ("running", None), ("running", 0), ("running", None),
                     ("running", 1), ("running", None), ("running", 2), ("succeeded", None)]
    assert ex.duration_ms == sum(r.duration_ms for r in ex.step_runs)


def _parity_case() -> tuple[Procedure, dict[str, Procedure]]:
    parent, procs = _family()
    parent.steps.insert(1, Step(id="s1b", action="flaky",
                                on_error=OnError(policy="retry", retries=2)))
    parent.steps.insert(2, Step(id="s1c", action="broken", on_error=OnError(policy="skip")))
    parent.steps[-1].args["who"] = ask("who to notify", step_ref("s1", "/people"))
    return parent, procs


def _normalized(ex: Execution) -> dict[str, Any]:
    data = ex.model_dump(mode="json", exclude={"id", "started_at", "finished_at",
                                               "duration_ms"})
    for r in data["step_runs"]:
        for item in (r, *r["history"]):
            for key in ("started_at", "duration_ms", "child_execution_id"):
                item.pop(key)
    return data


def test_drive_and_adrive_produce_equal_executions() -> None:
    parent, procs = _parity_case()

    def make_tools(use_async: bool) -> dict[str, Any]:
        count = {"flaky": 0}

        def flaky() -> str:
            count["flaky"] += 1
            if count["flaky"] < 2:
                raise TimeoutError("first try")
            return "ok"

        def broken() -> None:
            raise RuntimeError("always")

        sync = {
            "lookup": lambda order_id: {"total": 3},
            "pay": lambda amount, method: {"receipt": "r3", "people": ["ann", "bob"]},
            "flaky": flaky,
            "broken": broken,
            "notify": lambda msg, who: f"{who}:{msg}",
        }
        if not use_async:
            return sync

        def wrap(fn: Any) -> Any:
            async def tool(**kw: Any) -> Any:
                await asyncio.sleep(0)
                return fn(**kw)
            return tool
        return {k: wrap(v) for k, v in sync.items()}

    def resolver(need: Need) -> Any:
        return need.candidates[-1] if need.candidates else None

    async def aresolver(need: Need) -> Any:
        return resolver(need)

    saved_sync: list[int | None] = []
    saved_async: list[int | None] = []

    async def apersist(e: Execution, r: StepRun | None) -> None:
        saved_async.append(None if r is None else r.index)

    sync_ex = drive(replay_core(parent, new_ex(parent, order="#9"), procs), make_tools(False),
                    resolver, lambda e, r: saved_sync.append(None if r is None else r.index))
    async_ex = asyncio.run(adrive(replay_core(parent, new_ex(parent, order="#9"), procs),
                                  make_tools(True), aresolver, apersist))

    assert sync_ex.status == "succeeded"
    assert [r.status for r in sync_ex.step_runs] == ["succeeded", "succeeded", "skipped",
                                                      "succeeded"]
    assert sync_ex.step_runs[1].attempts == 2 and sync_ex.step_runs[3].output == "bob:r3"
    assert _normalized(sync_ex) == _normalized(async_ex)
    assert saved_sync == saved_async
