"""Tests for plans (procmem.induction.planning, Memory.plan): what a replay would send, and where
it would pause, worked out without calling any tool; checked against real replays.

Realistic cases use the bundled τ-retail sample (MIT, see tests/data).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from procmem import Memory, Plan
from procmem.core.errors import CycleError, NotFound, ParamError, UsageError
from procmem.core.model import Execution, Param, Procedure, Step
from procmem.core.replay import drive, replay_core
from procmem.core.template import ask, param, resolve_pointer, step_ref
from procmem.induction.extract import Extractor
from procmem.induction.planning import is_secret, nothing_fits, plan_procedure

CANCEL = "Cancel order #W1234567 because ordered by mistake."


class Tools(dict[str, Callable[..., Any]]):
    """Tools that record every call and return a fixed output per action."""

    def __init__(self, actions: list[str], outputs: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        for action in actions:
            self[action] = self._tool(action, (outputs or {}).get(action, '{"ok": true}'))

    def _tool(self, action: str, output: Any) -> Callable[..., Any]:
        def tool(**kwargs: Any) -> Any:
            self.calls.append((action, kwargs))
            return output
        return tool


def actions(proc: Procedure, subs: dict[str, Procedure] | None = None) -> list[str]:
    found = []
    for p in [proc, *(subs or {}).values()]:
        found += [s.action for s in p.steps if s.subprocedure is None]
    return found


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory) -> Memory:
    m = Memory(tmp_path_factory.mktemp("plan") / "m.db", embedder=None)
    m.import_traces(Path(__file__).parent / "data" / "tau_retail_sample.jsonl")
    m.learn()
    return m


# ------------------------------------------------------------------ τ-retail


def test_plan_of_a_cancel_shows_each_value_with_its_span(mem: Memory) -> None:
    plan = mem.plan(CANCEL)
    assert (plan.procedure, plan.selected_by, plan.confident) == (
        "cancel_pending_order", "search", True)
    assert plan.would_complete_without_asking and plan.pauses == []
    (step,) = plan.steps
    by_path = {v.path: v for v in step.values}
    assert set(by_path) == {"/order_id", "/reason"}
    for path, text in (("/order_id", "#W1234567"), ("/reason", "ordered by mistake")):
        v = by_path[path]
        assert (v.source, v.known, v.value, v.param) == ("param", True, text, path[1:])
        assert v.span is not None and CANCEL[v.span.start:v.span.end] == v.span.text == text
    assert step.args == {"order_id": "#W1234567", "reason": "ordered by mistake"}
    assert "without asking" in plan.summary


def test_plan_equals_what_replay_sends(mem: Memory) -> None:
    plan = mem.plan(CANCEL)
    tools = Tools(["cancel_pending_order"])
    ex = mem.replay(plan.procedure or "", tools=tools, task=CANCEL)
    assert ex.status == "succeeded"
    assert tools.calls == [(s.action, s.args) for s in plan.steps]


def test_a_missing_param_is_a_pause_before_the_first_step_and_replay_pauses_there(
        mem: Memory) -> None:
    task = "Cancel order #W1234567 please"
    plan = mem.plan(task, procedure="cancel_pending_order")
    assert plan.selected_by == "caller" and not plan.would_complete_without_asking
    (pause,) = plan.pauses
    assert (pause.key, pause.kind, pause.name, pause.at_index, pause.at_step) == (
        "param:reason", "param", "reason", 0, "s1")
    assert plan.first_pause == 0 and plan.steps[0].pauses and plan.steps[0].args is None
    assert plan.side_effects_before_first_pause == []
    tools = Tools(["cancel_pending_order"])
    ex = mem.replay("cancel_pending_order", tools=tools, task=task)
    assert ex.status == "paused" and [n.key for n in ex.needs] == ["param:reason"]
    assert tools.calls == []


def test_given_params_win_over_the_task_as_in_replay(mem: Memory) -> None:
    plan = mem.plan(CANCEL, procedure="cancel_pending_order",
                    params={"reason": "no longer needed"})
    by_param = {v.param: v for v in plan.params}
    assert by_param["reason"].source == "given" and by_param["reason"].span is None
    assert by_param["order_id"].source == "param"
    tools = Tools(["cancel_pending_order"])
    mem.replay("cancel_pending_order", tools=tools, task=CANCEL,
               params={"reason": "no longer needed"})
    assert tools.calls == [("cancel_pending_order", plan.steps[0].args)]


def test_an_ask_hole_is_a_pause_at_its_step(mem: Memory) -> None:
    task = "Return #W1234567 via paypal_7654321: Electric Kettle; "
    plan = mem.plan(task)
    assert plan.procedure == "return_delivered_order_items"
    asks = [p for p in plan.pauses if p.kind == "ask"]
    assert [p.key for p in asks] == ["ask:s1:/item_ids"]
    ask_value = next(v for v in plan.steps[0].values if v.path == "/item_ids")
    assert (ask_value.source, ask_value.known, ask_value.value) == ("ask", False, None)
    tools = Tools(["return_delivered_order_items"])
    ex = mem.replay(plan.procedure or "", tools=tools, task=task)
    assert ex.status == "paused" and [n.key for n in ex.needs] == ["ask:s1:/item_ids"]
    assert tools.calls == []


def test_args_that_are_one_reference_are_planned_whole_as_replay_binds_them() -> None:
    # {"$ask": ...} as the whole args object: one value at pointer "" (its key is not
    # an argument name), a pause where replay pauses, never a crash
    asked = Procedure(name="whole", description="Do a thing.", steps=[
        Step(id="s1", action="tool_a", args=ask("the whole arguments"))])
    plan = plan_procedure(asked, "do a thing")
    (value,) = plan.steps[0].values
    assert (value.path, value.source, value.known) == ("", "ask", False)
    assert [p.key for p in plan.pauses] == ["ask:s1:"] and plan.steps[0].args is None
    tools = Tools(["tool_a"])
    ex = Execution(procedure="whole", version=1, task="do a thing")
    done = drive(replay_core(asked, ex, {}), tools, None, lambda *_: None)
    assert done.status == "paused" and [n.key for n in done.needs] == ["ask:s1:"]
    assert tools.calls == []


def test_no_drift_on_every_sample_task(mem: Memory, tau_sample: list[Any]) -> None:
    """For each demonstration task: a plan that completes sends exactly its args; a
    plan that pauses pauses the replay at its first pause, with the same keys."""
    completed = paused = 0
    for trace in tau_sample:
        plan = mem.plan(trace.task)
        assert plan.procedure is not None
        proc = mem.get_procedure(plan.procedure)
        tools = Tools(actions(proc))
        ex = mem.replay(proc, tools=tools, task=trace.task)
        if plan.would_complete_without_asking:
            completed += 1
            assert ex.status == "succeeded", trace.task
            assert tools.calls == [(s.action, s.args) for s in plan.steps]
            continue
        paused += 1
        first = plan.first_pause
        assert first is not None and ex.status == "paused", trace.task
        at_first = [p for p in plan.pauses if p.at_index == first]
        params = [p.key for p in at_first if p.kind == "param"]
        assert [n.key for n in ex.needs] == (params or [p.key for p in at_first])
        assert all(s.args is not None for s in plan.steps[:first])
        assert tools.calls == [(s.action, s.args) for s in plan.steps[:first]]
    assert completed >= 10 and paused >= 10  # both kinds are exercised


def test_nothing_fits_is_a_plan_without_procedure(tmp_path: Path) -> None:
    with Memory(tmp_path / "empty.db", embedder=None) as empty:
        plan = empty.plan(CANCEL)
    assert plan == nothing_fits(CANCEL)
    assert plan.procedure is None and plan.steps == [] and not plan.confident
    assert not plan.would_complete_without_asking and "no procedure" in plan.summary


def test_memory_plan_errors(mem: Memory) -> None:
    with pytest.raises(NotFound):
        mem.plan(CANCEL, procedure="no_such_procedure")
    with pytest.raises(UsageError):
        mem.plan("   ")
    with pytest.raises(ParamError):
        mem.plan(CANCEL, procedure="cancel_pending_order", params={"bogus": 1})
    with pytest.raises(ParamError):
        mem.plan(CANCEL, procedure="cancel_pending_order", params={"reason": 3})


def test_a_named_procedure_not_among_the_hits_is_not_confident(mem: Memory) -> None:
    plan = mem.plan(CANCEL, procedure="modify_pending_order_address")
    assert plan.procedure == "modify_pending_order_address"
    assert not plan.confident and plan.confidence is None
    assert "not confident" in plan.summary


def test_aplan_matches_plan(mem: Memory) -> None:
    assert asyncio.run(mem.aplan(CANCEL)) == mem.plan(CANCEL)


# ------------------------------------------------------------------ hand-written


def shop() -> tuple[Procedure, dict[str, Procedure]]:
    """Every kind of value: literal, nested literal, $literal, $param (task, given,
    default, omitted, secret), $step and a sub-procedure."""
    notify = Procedure(name="notify", params=[
        Param(name="to", schema={"type": "string"}),
        Param(name="channel", schema={"type": "string", "default": "email"}),
        Param(name="note", schema={"type": "string"}, required=False),
    ], steps=[Step(id="n1", action="send", args={"to": param("to"),
                                                 "via": param("channel"),
                                                 "note": param("note")})])
    main = Procedure(name="refund", params=[
        Param(name="order_id", schema={"type": "string"},
              extractor=Extractor(pattern=r"#W\d{7}", before=r"order\s+")),
        Param(name="amount", schema={"type": "number", "default": 5}),
        Param(name="memo", schema={"type": "string"}, required=False),
        Param(name="api_token", schema={"type": "string"}),
    ], steps=[
        Step(id="s1", action="lookup", side_effect=False,
             args={"order_id": param("order_id"), "fields": ["email", "total"],
                   "filter": {"$literal": {"$step": "not a reference"}}}),
        Step(id="s2", action="refund", side_effect=True,
             args={"order_id": param("order_id"), "amount": param("amount"),
                   "memo": param("memo"), "auth": {"token": param("api_token")},
                   "tags": [param("memo"), "auto"], "empty": {}}),
        Step(id="s3", action="procedure:notify",
             args={"to": step_ref("s1", "/email")}),
    ])
    return main, {"notify": notify}


TASK = "Refund order #W7654321 now."
LOOKUP = json.dumps({"email": "a@b.example", "total": 12})


def test_every_source_is_planned() -> None:
    main, subs = shop()
    plan = plan_procedure(main, TASK, params={"api_token": "sk-secret"}, procedures=subs)
    s1, s2, s3 = plan.steps
    assert s1.args == {"order_id": "#W7654321", "fields": ["email", "total"],
                       "filter": {"$step": "not a reference"}}
    assert [(v.path, v.source) for v in s1.values] == [
        ("/order_id", "param"), ("/fields/0", "literal"), ("/fields/1", "literal"),
        ("/filter", "literal")]
    src = {v.path: v for v in s2.values}
    assert src["/amount"].source == "default" and src["/amount"].value == 5
    assert src["/memo"].source == "omitted" and src["/tags/0"].source == "omitted"
    assert src["/auth/token"].source == "secret" and src["/auth/token"].value is None
    assert src["/empty"].value == {}
    assert s2.args is None  # a secret is never shown
    assert "sk-secret" not in json.dumps(plan.to_json())
    (to,) = s3.values
    assert to.source == "step" and to.ref is not None and (to.ref.step, to.ref.pointer) == (
        "s1", "/email")
    assert s3.subprocedure == "notify" and s3.version == 1
    (n1,) = s3.steps
    assert [(v.path, v.source) for v in n1.values] == [
        ("/to", "step"), ("/via", "default"), ("/note", "omitted")]
    assert plan.would_complete_without_asking and plan.pauses == []
    assert plan.side_effects_before_first_pause == ["s2", "s3"]  # no pause: every one


def test_hand_written_plan_equals_replay() -> None:
    main, subs = shop()
    main = main.model_copy(update={"params": main.params[:3]})  # no secret: args shown
    main.steps[1].args.pop("auth")
    plan = plan_procedure(main, TASK, procedures=subs)
    tools = Tools(["lookup", "refund", "send"], {"lookup": LOOKUP})
    ex = Execution(procedure="refund", version=1, task=TASK,
                   params={"order_id": "#W7654321"}, param_sources={"order_id": "task"})
    done = drive(replay_core(main, ex, subs), tools, None, lambda *_: None)
    assert done.status == "succeeded", done.error
    s1, s2, s3 = plan.steps
    assert tools.calls[0] == ("lookup", s1.args)
    assert tools.calls[1] == ("refund", s2.args)
    assert s2.args == {"order_id": "#W7654321", "amount": 5, "tags": [None, "auto"],
                       "empty": {}}
    # step values: the reference resolves in the earlier step's output at run time
    (to,) = s3.values
    assert to.ref is not None
    assert tools.calls[2] == ("send", {"to": resolve_pointer(LOOKUP, to.ref.pointer),
                                       "via": "email"})


def test_memory_plan_plans_sub_procedures_and_their_pauses(tmp_path: Path) -> None:
    main, subs = shop()
    notify = subs["notify"].model_copy(update={"params": [
        *subs["notify"].params, Param(name="signature", schema={"type": "string"})]})
    with Memory(tmp_path / "m.db", embedder=None) as m:
        m.put_procedure(notify)
        m.put_procedure(main)
        plan = m.plan(TASK, procedure="refund", params={"api_token": "t"})
        assert [p.key for p in plan.pauses] == ["s3/param:signature"]
        (pause,) = plan.pauses
        assert (pause.at_step, pause.at_index) == ("s3", 2) and plan.steps[2].pauses
        assert plan.side_effects_before_first_pause == ["s2"]
        tools = Tools(["lookup", "refund", "send"], {"lookup": LOOKUP})
        ex = m.replay("refund", tools=tools, task=TASK, params={"api_token": "t"})
    assert ex.status == "paused" and [n.key for n in ex.needs] == ["s3/param:signature"]
    assert [a for a, _ in tools.calls] == ["lookup", "refund"]


def test_ask_after_a_side_effect_names_the_steps_that_run_first() -> None:
    proc = Procedure(name="pick", params=[], steps=[
        Step(id="s1", action="list_orders", side_effect=False, args={}),
        Step(id="s2", action="log", args={"x": 1}),
        Step(id="s3", action="cancel", side_effect=True, args={
            "order_id": ask("which order", step_ref("s1", "/orders"))}),
    ])
    plan = plan_procedure(proc, "cancel one of my orders")
    assert plan.steps[0].values == [] and plan.steps[0].args == {}
    (pause,) = plan.pauses
    assert (pause.key, pause.at_index, pause.arg_path) == ("ask:s3:/order_id", 2, "/order_id")
    assert pause.candidates_from is not None and pause.candidates_from.pointer == "/orders"
    assert plan.side_effects_before_first_pause == ["s2"]  # side_effect unknown counts
    tools = Tools(["list_orders", "log", "cancel"], {"list_orders": '{"orders": ["#A", "#B"]}'})
    ex = Execution(procedure="pick", version=1, task=plan.task)
    done = drive(replay_core(proc, ex, {}), tools, None, lambda *_: None)
    assert done.status == "paused" and [n.key for n in done.needs] == [pause.key]
    assert done.needs[0].candidates == ["#A", "#B"]
    assert [a for a, _ in tools.calls] == ["list_orders", "log"]


def test_a_cycle_is_refused_as_replay_refuses_it() -> None:
    a = Procedure(name="a", steps=[Step(id="s1", action="procedure:b")])
    b = Procedure(name="b", steps=[Step(id="s1", action="procedure:a")])
    with pytest.raises(CycleError):
        plan_procedure(a, "x", procedures={"b": b})


def test_secret_params() -> None:
    assert is_secret(Param(name="api_token"))
    assert is_secret(Param(name="pin", schema={"type": "string", "format": "password"}))
    assert is_secret(Param(name="x", schema={"writeOnly": True}))
    assert not is_secret(Param(name="max_tokens"))
    assert not is_secret(Param(name="reason"))


def test_plan_json_round_trips_and_leaves_out_nulls() -> None:
    main, subs = shop()
    plan = plan_procedure(main, TASK, procedures=subs)
    data = plan.to_json()
    assert Plan.model_validate(data) == plan
    assert "confidence" not in data and "span" not in data["steps"][1]["values"][1]
    assert json.loads(json.dumps(data)) == data
