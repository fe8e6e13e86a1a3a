"""Alternative and optional steps: grouping by writes, choosing by what binds, skipping reads."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from procmem import Memory
from procmem.core.alternatives import side_effect_of
from procmem.core.checks import check_templates
from procmem.core.errors import InvalidTemplate
from procmem.core.model import Execution, Procedure, Step, Trace, TraceStep
from procmem.formats.export import to_markdown
from procmem.formats.toolschema import parse_tools
from procmem.induction.bind import bind_task
from procmem.induction.induce import group_traces, induce
from procmem.induction.induce_alt import merge_plan
from procmem.induction.planning import plan_procedure


def _user(uid: str) -> str:
    return json.dumps({"user_id": uid, "orders": ["#W1000009"]})


def _by_email(i: int, email: str, uid: str, oid: str, reason: str) -> Trace:
    return Trace(id=f"email-{i}", outcome="success",
                 task=f"My email is {email}. Cancel order {oid} because {reason}.",
                 steps=[TraceStep(action="find_user_id_by_email", args={"email": email},
                                  output=uid),
                        TraceStep(action="get_user_details", args={"user_id": uid},
                                  output=_user(uid)),
                        TraceStep(action="cancel_pending_order",
                                  args={"order_id": oid, "reason": reason, "user_id": uid},
                                  output='{"status": "cancelled"}')])


def _by_name(i: int, first: str, last: str, zip_code: str, uid: str, oid: str,
             reason: str, *, think: bool = False) -> Trace:
    steps = [TraceStep(action="find_user_id_by_name_zip",
                       args={"first_name": first, "last_name": last, "zip": zip_code},
                       output=uid),
             TraceStep(action="get_user_details", args={"user_id": uid}, output=_user(uid))]
    if think:
        steps.append(TraceStep(action="think", args={"thought": f"user {uid} wants {oid} gone"},
                               output=""))
    steps.append(TraceStep(action="cancel_pending_order",
                           args={"order_id": oid, "reason": reason, "user_id": uid},
                           output='{"status": "cancelled"}'))
    return Trace(id=f"name-{i}", outcome="success", steps=steps,
                 task=f"I am {first} {last}, zip code {zip_code}. Cancel order {oid} "
                      f"because {reason}.")


@pytest.fixture
def traces() -> list[Trace]:
    return [
        _by_email(1, "ann@example.com", "ann_1", "#W1000001", "no longer needed"),
        _by_name(1, "Cara", "Diaz", "12345", "cara_3", "#W1000003", "no longer needed"),
        _by_email(2, "bob@example.org", "bob_2", "#W1000002", "ordered by mistake"),
        _by_name(2, "Dan", "Eve", "54321", "dan_4", "#W1000004", "ordered by mistake",
                 think=True),
        _by_email(3, "eve@example.net", "eve_5", "#W1000005", "no longer needed"),
        _by_name(3, "Gil", "Hart", "67890", "gil_6", "#W1000006", "no longer needed",
                 think=True),
        _by_email(4, "fay@example.com", "fay_7", "#W1000007", "ordered by mistake"),
    ]


@pytest.fixture
def proc(traces: list[Trace]) -> Procedure:
    groups = group_traces(traces)
    assert len(groups) == 1
    return induce(groups[0])


class Tools:
    """Fake retail tools that record their calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def table(self) -> dict[str, Any]:
        def make(name: str) -> Any:
            def call(**args: Any) -> Any:
                self.calls.append((name, args))
                if name == "find_user_id_by_email":
                    return "from_email"
                if name == "find_user_id_by_name_zip":
                    return "from_name"
                if name == "get_user_details":
                    return _user(args["user_id"])
                return '{"status": "cancelled"}'
            return call
        actions = ["find_user_id_by_email", "find_user_id_by_name_zip", "get_user_details",
                   "think", "cancel_pending_order"]
        return {a: make(a) for a in actions}


EMAIL_TASK = "My email is zed@example.com. Cancel order #W1000042 because no longer needed."
NAME_TASK = "I am Finn Gray, zip code 99999. Cancel order #W1000042 because no longer needed."
NEITHER_TASK = "Cancel order #W1000042 because no longer needed."


# ------------------------------------------------------------------ reads and writes


def test_side_effect_by_name_and_by_annotation() -> None:
    assert side_effect_of("get_user_details") is False
    assert side_effect_of("findUserIdByEmail") is False
    assert side_effect_of("calculate") is False
    assert side_effect_of("cancel_pending_order") is True
    assert side_effect_of("transfer_to_human_agents") is True
    assert side_effect_of("procedure:other") is None
    assert side_effect_of("cancel_order", {"annotations": {"readOnlyHint": True}}) is False
    assert side_effect_of("get_token", {"annotations": {"readOnlyHint": False}}) is True


# ------------------------------------------------------------------ induction


def test_traces_with_equal_writes_become_one_procedure_with_a_choice(proc: Procedure) -> None:
    by_id = {s.id: s for s in proc.steps}
    assert by_id["s1a"].action == "find_user_id_by_email"  # most demonstrations first
    assert (by_id["s1a"].choice, by_id["s1a"].option) == ("s1", 0)
    assert (by_id["s1b"].choice, by_id["s1b"].option) == ("s1", 1)
    assert by_id["s2"].args == {"user_id": {"$step": "s1", "path": ""}}
    assert by_id["s4"].side_effect is True and not by_id["s4"].optional
    think = next(s for s in proc.steps if s.action == "think")
    assert think.optional and think.side_effect is False
    assert {p.name: p.required for p in proc.params}["email"] is False
    assert {p.name: p.required for p in proc.params}["order_id"] is True


def test_procedure_matches_every_demonstrated_path(proc: Procedure,
                                                   traces: list[Trace]) -> None:
    for t in traces:
        assert proc.matches(t.signature())
    assert not proc.matches(("get_user_details", "cancel_pending_order"))
    assert not proc.matches(("find_user_id_by_email", "find_user_id_by_name_zip",
                             "get_user_details", "cancel_pending_order"))


def test_one_signature_groups_as_before(traces: list[Trace]) -> None:
    emails = [t for t in traces if t.id.startswith("email")]
    assert group_traces(emails) == group_traces(emails, merge=False) == [emails]
    proc = induce(emails)
    assert all(s.choice is None for s in proc.steps)
    assert [s.action for s in proc.steps] == list(emails[0].signature())


def test_traces_that_differ_only_by_an_optional_read_group_together(
        traces: list[Trace]) -> None:
    names = [t for t in traces if t.id.startswith("name")]  # 2 of 3 think first
    assert len({t.signature() for t in names}) == 2
    groups = group_traces(names)
    assert len(groups) == 1
    proc = induce(groups[0])
    optional = [s.action for s in proc.steps if s.optional]
    assert "think" in optional and "cancel_pending_order" not in optional
    assert all(proc.matches(t.signature()) for t in names)


def test_a_read_only_one_of_several_demonstrations_made_keeps_them_apart(
        traces: list[Trace]) -> None:
    names = [t for t in traces if t.id.startswith("name")][:2]  # one thinks, one does not
    assert len(group_traces(names)) == 2
    sigs = [t.signature() for t in names]
    assert merge_plan(sigs, [1, 1]) == [[sigs[0]], [sigs[1]]]
    assert merge_plan(sigs, [1, 2]) == [sigs]


def test_different_writes_stay_apart(traces: list[Trace]) -> None:
    other = Trace(task="Return order #W1000009", outcome="success", steps=[
        TraceStep(action="find_user_id_by_email", args={"email": "a@b.co"}, output="u"),
        TraceStep(action="return_delivered_order_items", args={"order_id": "#W1000009"})])
    assert len(group_traces([*traces, other])) == 2


def test_induce_refuses_traces_with_different_writes(traces: list[Trace]) -> None:
    other = Trace(task="Return order #W1000009", outcome="success", steps=[
        TraceStep(action="return_delivered_order_items", args={"order_id": "#W1000009"})])
    with pytest.raises(Exception, match="different writes"):
        induce([traces[0], other])


# ------------------------------------------------------------------ model validation


def _steps(*specs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"id": f"x{i}", "action": "get_x", "side_effect": False, **s}
            for i, s in enumerate(specs)]


@pytest.mark.parametrize("steps, message", [
    (_steps({"choice": "c", "option": 0}), "at least 2 options"),
    (_steps({"choice": "c"}), "go together"),
    (_steps({"choice": "c", "option": 0}, {"choice": "c", "option": 2}), "numbered 0, 1"),
    (_steps({"choice": "c", "option": 0}, {"choice": "c", "option": 1}, {},
            {"choice": "c", "option": 1}), "contiguous"),
    (_steps({"choice": "x1", "option": 0}, {"choice": "x1", "option": 1}), "also a step id"),
    (_steps({"optional": True, "choice": "c", "option": 0}), "cannot be in a choice"),
    (_steps({"optional": True, "side_effect": True}), "side effect"),
])
def test_invalid_choices_are_refused(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Procedure(name="p", steps=steps)


def test_references_to_options_are_checked() -> None:
    ok = Procedure(name="p", steps=_steps(
        {"choice": "c", "option": 0}, {"choice": "c", "option": 1},
        {"args": {"u": {"$step": "c"}}}))
    check_templates(ok)
    other_option = Procedure(name="p", steps=_steps(
        {"choice": "c", "option": 0}, {"choice": "c", "option": 1, "args": {"u": {"$step": "x0"}}}))
    with pytest.raises(InvalidTemplate):
        check_templates(other_option)
    from_outside = Procedure(name="p", steps=_steps(
        {"choice": "c", "option": 0}, {"choice": "c", "option": 1},
        {"args": {"u": {"$step": "x0"}}}))
    with pytest.raises(InvalidTemplate):
        check_templates(from_outside)


# ------------------------------------------------------------------ replay


def _run(proc: Procedure, task: str, **kw: Any) -> tuple[Execution, Tools]:
    tools = Tools()
    with Memory(":memory:", embedder=None) as mem:
        mem.put_procedure(proc)
        return mem.replay(proc.name, tools=tools.table(), task=task, **kw), tools


def test_email_task_looks_the_user_up_by_email(proc: Procedure) -> None:
    ex, tools = _run(proc, EMAIL_TASK)
    assert ex.status == "succeeded"
    assert tools.calls[0] == ("find_user_id_by_email", {"email": "zed@example.com"})
    assert ("get_user_details", {"user_id": "from_email"}) in tools.calls
    assert all(name != "find_user_id_by_name_zip" for name, _ in tools.calls)
    skipped = {r.step_id: r for r in ex.step_runs if r.status == "skipped"}
    assert skipped["s1b"].attempts == 0 and "not taken" in (skipped["s1b"].error or "")


def test_name_and_zip_task_looks_the_user_up_by_name(proc: Procedure) -> None:
    ex, tools = _run(proc, NAME_TASK)
    assert ex.status == "succeeded"
    assert tools.calls[0] == ("find_user_id_by_name_zip",
                              {"first_name": "Finn", "last_name": "Gray", "zip": "99999"})
    assert ("get_user_details", {"user_id": "from_name"}) in tools.calls
    assert all(name != "find_user_id_by_email" for name, _ in tools.calls)


def test_neither_pauses_naming_what_each_alternative_needs(proc: Procedure) -> None:
    tools = Tools()
    with Memory(":memory:", embedder=None) as mem:
        mem.put_procedure(proc)
        ex = mem.replay(proc.name, tools=tools.table(), task=NEITHER_TASK)
        assert ex.status == "paused" and tools.calls == []
        needs = {n.key: n for n in ex.needs}
        assert {"param:email", "param:first_name", "param:last_name", "param:zip"} <= set(needs)
        assert needs["param:email"].context["options"] == [0]
        assert needs["param:zip"].context["options"] == [1]
        assert needs["param:email"].context["choice"] == "s1"
        done = mem.resume(ex.id, {"param:email": "amy@example.com"}, tools=tools.table())
    assert done.status == "succeeded"
    assert tools.calls[0] == ("find_user_id_by_email", {"email": "amy@example.com"})


def test_optional_read_is_skipped_when_unbound_and_never_pauses(proc: Procedure) -> None:
    ex, tools = _run(proc, EMAIL_TASK)
    think = next(s for s in proc.steps if s.action == "think")
    run = next(r for r in ex.step_runs if r.step_id == think.id)
    assert ex.status == "succeeded" and run.status == "skipped" and run.attempts == 0
    assert "optional" in (run.error or "")
    assert all(name != "think" for name, _ in tools.calls)


def test_optional_read_runs_when_it_binds() -> None:
    proc = Procedure(name="p", params=[{"name": "q", "required": False}], steps=[
        {"id": "s1", "action": "search_x", "side_effect": False, "optional": True,
         "args": {"q": {"$param": "q"}}},
        {"id": "s2", "action": "do_x", "args": {}}])
    calls: list[str] = []
    tools = {"search_x": lambda **kw: calls.append("search_x"),
             "do_x": lambda **kw: calls.append("do_x")}
    with Memory(":memory:", embedder=None) as mem:
        assert mem.replay(proc, tools=tools, params={"q": "a"}).status == "succeeded"
        assert calls == ["search_x", "do_x"]
        assert mem.replay(proc, tools=tools).status == "succeeded"
    assert calls == ["search_x", "do_x", "do_x"]


def _normalized(ex: Execution) -> dict[str, Any]:
    data = ex.model_dump(mode="json", exclude={"id", "started_at", "finished_at",
                                               "duration_ms"})
    for r in data["step_runs"]:
        for key in ("started_at", "duration_ms"):
            r.pop(key)
    return data


@pytest.mark.parametrize("task", [EMAIL_TASK, NAME_TASK, NEITHER_TASK])
def test_sync_and_async_replay_agree(proc: Procedure, task: str) -> None:
    with Memory(":memory:", embedder=None) as mem:
        mem.put_procedure(proc)
        sync = mem.replay(proc.name, tools=Tools().table(), task=task)
        async_ = asyncio.run(mem.areplay(proc.name, tools=Tools().table(), task=task))
    assert _normalized(sync) == _normalized(async_)


# ------------------------------------------------------------------ plan preview


def test_plan_shows_which_alternative_would_run(proc: Procedure) -> None:
    plan = {s.id: s for s in plan_procedure(proc, EMAIL_TASK).steps}
    assert plan["s1a"].skipped is None and "not taken" in (plan["s1b"].skipped or "")
    plan = {s.id: s for s in plan_procedure(proc, NAME_TASK).steps}
    assert plan["s1b"].skipped is None and "not taken" in (plan["s1a"].skipped or "")
    think = next(s for s in proc.steps if s.action == "think")
    assert plan[think.id].skipped is not None


def test_plan_pauses_at_the_choice_when_nothing_binds(proc: Procedure) -> None:
    plan = plan_procedure(proc, NEITHER_TASK)
    keys = {p.key for p in plan.pauses}
    assert {"param:email", "param:zip"} <= keys
    assert plan.first_pause == 0 and not plan.would_complete_without_asking


# ------------------------------------------------------------------ shared params


def _two_uses(task: str) -> Trace:
    return Trace(task=task, outcome="success", steps=[
        TraceStep(action="get_order_details", args={"order_id": "#W1000001"}, output="{}"),
        TraceStep(action="cancel_pending_order", args={"order_id": "#W1000001"})])


def test_one_mention_feeds_both_steps() -> None:
    proc = induce([_two_uses("Cancel order #W1000001 please.")])
    assert [s.args["order_id"] for s in proc.steps] == [{"$param": "order_id"}] * 2


def test_two_mentions_are_two_params_even_when_equal_in_the_demonstration() -> None:
    proc = induce([_two_uses("Check order #W1000001, then cancel order #W1000001.")])
    refs = [s.args["order_id"]["$param"] for s in proc.steps]
    assert refs[0] != refs[1]
    bound = bind_task(proc, "Check order #W2000002, then cancel order #W3000003.").values
    assert [bound[r] for r in refs] == ["#W2000002", "#W3000003"]


def test_learn_stores_one_procedure_for_both_lookups(traces: list[Trace]) -> None:
    with Memory(":memory:", embedder=None) as mem:
        mem.add_traces(traces)
        report = mem.learn()
        procs = mem.list_procedures()
    assert report.created == [procs[0].name] and len(procs) == 1
    assert any(s.choice for s in procs[0].steps)


def test_step_without_choice_fields_still_validates() -> None:
    step = Step(id="s1", action="get_x")
    assert step.choice is None and step.option is None and not step.optional


def test_tool_annotations_are_kept_and_decide_read_or_write(traces: list[Trace]) -> None:
    tools = parse_tools([{"type": "function", "annotations": {"readOnlyHint": True},
                          "function": {"name": "audit_user", "parameters": {}}}])
    assert tools["audit_user"]["annotations"] == {"readOnlyHint": True}
    audited = [Trace(task=t.task, outcome="success",
                     steps=[TraceStep(action="audit_user", args={}, output="ok"), *t.steps])
               for t in traces[:2]]
    with Memory(":memory:", embedder=None) as mem:
        mem.import_tool_schemas(list(tools.values()))
        mem.add_traces(audited)
        mem.learn()
        (proc,) = mem.list_procedures()
    audit = next(s for s in proc.steps if s.action == "audit_user")
    assert audit.side_effect is False and audit.optional


def test_markdown_export_explains_alternatives_and_optional_reads(proc: Procedure) -> None:
    text = to_markdown(proc)
    assert "Alternative 0 of choice `s1`" in text and "Alternative 1 of choice `s1`" in text
    assert "whichever alternative of choice `s1` ran" in text
    assert "Optional: make this call only when you have all its values" in text


def test_the_last_step_is_never_made_optional() -> None:
    lookups = [Trace(task=f"Show reservation {r}", outcome="success", steps=[
        TraceStep(action="get_reservation_details", args={"reservation_id": r}, output="{}")])
        for r in ("ABC123", "XYZ789")]
    (step,) = induce(lookups).steps
    assert step.side_effect is False and not step.optional


def test_an_optional_look_up_and_the_write_share_the_value_the_task_names_once() -> None:
    # 3 demonstrations cancel directly, 2 look the order up first: the look-up's order
    # id (2 demonstrations) and the cancel's (5) have one extractor, so one param;
    # as two, the binder would give the span to the look-up and ask for the cancel's
    def cancel(n: int, look: bool) -> Trace:
        oid = f"#W{n:07d}"
        steps = [TraceStep(action="get_order_details", args={"order_id": oid}, output="{}")]
        steps = steps if look else []
        return Trace(task=f"Cancel order {oid} because no longer needed.", outcome="success",
                     steps=[*steps, TraceStep(action="cancel_pending_order",
                                              args={"order_id": oid, "reason": "x"},
                                              output="ok")])

    proc = induce([cancel(1000001 + i, look=i >= 3) for i in range(5)])
    assert [s.action for s in proc.steps] == ["get_order_details", "cancel_pending_order"]
    assert proc.steps[0].optional
    assert proc.steps[0].args["order_id"] == proc.steps[1].args["order_id"]
    bound = bind_task(proc, "Cancel order #W7777777 because no longer needed.").values
    assert list(bound.values()) == ["#W7777777"]
