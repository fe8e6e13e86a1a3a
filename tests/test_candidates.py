"""Tests for candidate versions: repair, prune, merge, factor (procmem.learning.candidates)."""

from __future__ import annotations

import json
from typing import Any

import pytest

import procmem
from procmem.core.errors import UsageError
from procmem.core.model import (
    Execution,
    Lineage,
    OnError,
    Param,
    Procedure,
    Step,
    StepRun,
    Trace,
    TraceStep,
)
from procmem.core.template import param, step_ref, validate
from procmem.learning.candidates import Candidate, diff, factor, merge, prune, repair

# ------------------------------------------------------------------------ helpers


def st(sid: str, action: str, side_effect: bool | None = None, **args: Any) -> Step:
    return Step(id=sid, action=action, args=args, side_effect=side_effect)


def proc(name: str, steps: list[Step], params: list[str] | None = None, *,
         version: int = 1, traces: list[str] | None = None,
         schemas: dict[str, str] | None = None) -> Procedure:
    schemas = schemas or {}
    return Procedure(
        name=name, version=version, steps=steps,
        params=[Param(name=p, schema={"type": schemas.get(p, "string")}) for p in params or []],
        lineage=Lineage(traces=traces or []),
    )


def run(index: int, step: Step, args: dict[str, Any], output: Any = "ok",
        status: str = "succeeded", error: str | None = None) -> StepRun:
    return StepRun(index=index, step_id=step.id, action=step.action, args=args,
                   output=None if error else output, status=status,  # type: ignore[arg-type]
                   error=error)


def calls(trace: Trace) -> list[tuple[str, dict[str, Any]]]:
    return [(s.action, s.args) for s in trace.successful_steps()]


def assert_valid(p: Procedure) -> None:
    ids = [s.id for s in p.steps]
    assert len(ids) == len(set(ids))
    names = {q.name for q in p.params}
    for k, s in enumerate(p.steps):
        validate(s.args, params=names, earlier_steps=set(ids[:k]), step_id=s.id)


def assert_candidate(c: Candidate, base: Procedure) -> None:
    assert c.procedure.name == base.name
    assert c.procedure.status == "candidate"
    assert c.procedure.version == base.version + 1
    assert c.procedure.lineage.parent_version == base.version
    assert c.procedure.lineage.reason == c.reason
    assert "\n" not in c.reason and c.reason
    assert_valid(c.procedure)
    for extra in c.extra:
        assert extra.status == "active"
        assert_valid(extra)


def fingerprint(cands: list[Candidate]) -> list[Any]:
    return [(c.kind, c.procedure.content(), c.reason, c.diff,
             [t.model_dump(mode="json") for t in c.covers], [e.content() for e in c.extra])
            for c in cands]


# ---------------------------------------------------------------------- diff


def test_diff_lists_removed_and_added_steps_and_params() -> None:
    old = proc("pay", [st("s1", "get_user", user_id=param("user_id")),
                       st("s2", "charge_v1", amount=5)], ["user_id"])
    new = proc("pay", [st("s1", "get_user", user_id=param("user_id")),
                       st("s2", "charge_v2", amount=param("amount"),
                          card=step_ref("s1", "/cards/0"))], ["user_id", "amount"])
    assert diff(old, new) == [
        "- s2 charge_v1(amount=5)",
        "+ s2 charge_v2(amount=$param amount, card=$step s1/cards/0)",
        "~ params: + amount",
    ]
    assert diff(new, old) == [
        "- s2 charge_v2(amount=$param amount, card=$step s1/cards/0)",
        "+ s2 charge_v1(amount=5)",
        "~ params: - amount",
    ]
    assert diff(old, old) == []


def test_diff_shows_policy_changes() -> None:
    a = proc("p", [st("s1", "ping")])
    b = proc("p", [Step(id="s1", action="ping", on_error=OnError(policy="skip"))])
    assert diff(a, b) == ["- s1 ping()", "+ s1 ping() [on_error skip]"]


# -------------------------------------------------------------------- repair

USER = json.dumps({"user_id": "u_anna_17", "tier": "gold"})
ORDER = json.dumps({"order_id": "#W1000001", "status": "delivered",
                    "items": [{"item_id": "111", "name": "Kettle"},
                              {"item_id": "222", "name": "Clock"}]})


def return_procedure() -> Procedure:
    return proc("return-order", [
        st("s1", "find_user_id_by_email", email=param("email")),
        st("s2", "get_order_details", order_id=param("order_id")),
        st("s3", "return_items_v1", order_id=param("order_id"), item_ids=["111"]),
        st("s4", "notify", user_id=step_ref("s1", "/user_id")),
    ], ["email", "order_id"], traces=["demo1"])


def failed_execution(p: Procedure) -> Execution:
    s = p.steps
    return Execution(
        id="ex_failed", procedure=p.name, version=p.version,
        task="I am anna@example.com, return the kettle from #W1000001",
        params={"email": "anna@example.com", "order_id": "#W1000001"}, status="failed",
        step_runs=[
            run(0, s[0], {"email": "anna@example.com"}, USER),
            run(1, s[1], {"order_id": "#W1000001"}, ORDER),
            run(2, s[2], {"order_id": "#W1000001", "item_ids": ["111"]}, status="failed",
                error="unknown tool return_items_v1"),
        ],
    )


def recovery_trace(execution_id: str) -> Trace:
    return Trace(
        id="tr_recovery", task="finish the return", outcome="success",
        metadata={"recovers": execution_id},
        steps=[
            TraceStep(action="return_items_v2", error="bad item", args={"x": 1}),
            TraceStep(action="return_items_v2",
                      args={"order_id": "#W1000001", "item_id": "111", "reason": "damaged",
                            "who": {"user_id": "u_anna_17", "notify": True}},
                      output=json.dumps({"return_id": "R-77", "status": "accepted"})),
            TraceStep(action="confirm_return", args={"return_id": "R-77"}, output="done"),
        ],
    )


def test_repair_keeps_steps_before_failure_and_templates_the_recovery() -> None:
    p = return_procedure()
    ex = failed_execution(p)
    c = repair(p, ex, recovery_trace(ex.id))
    assert c is not None and c.kind == "repair"
    assert_candidate(c, p)
    new = c.procedure
    assert [s.id for s in new.steps] == ["s1", "s2", "r1", "r2"]
    assert new.steps[:2] == p.steps[:2]
    assert new.steps[2].action == "return_items_v2"
    assert new.steps[2].args == {
        "order_id": {"$param": "order_id"},                         # a bound param
        "item_id": {"$step": "s2", "path": "/items/0/item_id"},     # an earlier output
        "reason": "damaged",                                        # explained by neither
        "who": {"user_id": {"$step": "s1", "path": "/user_id"}, "notify": True},
    }
    assert new.steps[3].args == {"return_id": {"$step": "r1", "path": "/return_id"}}
    assert [q.name for q in new.params] == ["email", "order_id"]
    assert "tr_recovery" in new.lineage.traces and "demo1" in new.lineage.traces
    assert "s3 (return_items_v1)" in c.reason and "unknown tool" in c.reason
    assert "- s3 return_items_v1(order_id=$param order_id, item_ids=[\"111\"])" in c.diff
    assert "- s4 notify(user_id=$step s1/user_id)" in c.diff
    assert "+ r2 confirm_return(return_id=$step r1/return_id)" in c.diff
    (cover,) = c.covers
    assert cover.outcome == "success" and cover.task == ex.task
    assert calls(cover) == [
        ("find_user_id_by_email", {"email": "anna@example.com"}),
        ("get_order_details", {"order_id": "#W1000001"}),
        ("return_items_v2", {"order_id": "#W1000001", "item_id": "111", "reason": "damaged",
                             "who": {"user_id": "u_anna_17", "notify": True}}),
        ("confirm_return", {"return_id": "R-77"}),
    ]
    assert cover.steps[1].output == ORDER


def test_repair_after_a_pause_and_ids_are_never_reused() -> None:
    p = proc("p", [st("s1", "lookup", q=param("q")), st("r1", "old_fix", v=1)], ["q"])
    ex = Execution(id="ex_p", procedure="p", version=1, params={"q": "abc"}, status="paused",
                   task="look up abc", step_runs=[run(0, p.steps[0], {"q": "abc"}, '{"v": 7}')])
    rec = Trace(task="t", steps=[TraceStep(action="new_fix", args={"q": "abc", "v": 7})])
    c = repair(p, ex, rec)
    assert c is not None
    assert [s.id for s in c.procedure.steps] == ["s1", "r2"]
    assert c.procedure.steps[1].args == {"q": {"$param": "q"}, "v": {"$step": "s1", "path": "/v"}}
    assert "paused before step r1" in c.reason


def test_repair_refuses_what_it_cannot_use() -> None:
    p = return_procedure()
    ex = failed_execution(p)
    assert repair(p, ex.model_copy(update={"status": "succeeded"}), recovery_trace(ex.id)) is None
    empty = Trace(task="t", steps=[TraceStep(action="x", error="boom")])
    assert repair(p, ex, empty) is None
    with pytest.raises(UsageError):
        repair(p, ex, recovery_trace("ex_other"))
    with pytest.raises(UsageError):
        repair(p.model_copy(update={"version": 2}), ex, recovery_trace(ex.id))


# --------------------------------------------------------------------- prune


def prune_setup() -> tuple[Procedure, list[Execution]]:
    steps = [
        st("s1", "lookup", False, order_id=param("order_id")),         # read-only, referenced
        Step(id="s2", action="flaky_log", args={"order_id": param("order_id")},
             side_effect=True, on_error=OnError(policy="skip")),       # keeps failing
        st("s3", "cancel", True, order_id=step_ref("s1", "/id")),
        st("s4", "peek", False, note=param("note")),                   # read-only, unused
        st("s5", "show_status", False, order_id=param("order_id")),   # read-only, last
    ]
    p = proc("cancel-flow", steps, ["order_id", "note"])
    executions = []
    for n in range(4):
        oid = f"#W{n}"
        runs = [run(0, steps[0], {"order_id": oid}, json.dumps({"id": oid})),
                run(1, steps[1], {"order_id": oid}, "logged") if n == 3 else
                run(1, steps[1], {"order_id": oid}, status="skipped", error="log down"),
                run(2, steps[2], {"order_id": oid}, "cancelled"),
                run(3, steps[3], {"note": "x"}, "seen"),
                run(4, steps[4], {"order_id": oid}, "cancelled")]
        executions.append(Execution(id=f"e{n}", procedure=p.name, version=1, task=f"cancel {oid}",
                                    params={"order_id": oid, "note": "x"}, status="succeeded",
                                    step_runs=runs))
    return p, executions


def test_prune_drops_a_failing_step_and_an_unused_read_only_step() -> None:
    p, executions = prune_setup()
    ok = {e.id for e in executions}
    cands = prune(p, executions, ok)
    assert [c.kind for c in cands] == ["prune", "prune"]
    for c in cands:
        assert_candidate(c, p)
    failing, unused = cands
    assert [s.id for s in failing.procedure.steps] == ["s1", "s3", "s4", "s5"]
    assert "s2 (flaky_log) failed in 3 of 4 runs" in failing.reason
    assert failing.diff == ['- s2 flaky_log(order_id=$param order_id) [on_error skip]']
    assert [s.id for s in unused.procedure.steps] == ["s1", "s2", "s3", "s5"]
    assert "read-only" in unused.reason
    assert unused.diff == ['- s4 peek(note=$param note)', '~ params: - note']
    assert [q.name for q in unused.procedure.params] == ["order_id"]
    # covers: every succeeded execution with good evidence, minus the dropped call
    assert [t.id for t in failing.covers] == ["e0", "e1", "e2", "e3"]
    assert [a for a, _ in calls(failing.covers[3])] == ["lookup", "cancel", "peek", "show_status"]
    assert [a for a, _ in calls(unused.covers[3])] == ["lookup", "flaky_log", "cancel",
                                                       "show_status"]
    assert calls(unused.covers[0])[0] == ("lookup", {"order_id": "#W0"})


def test_prune_needs_enough_successful_tasks_and_never_drops_referenced_steps() -> None:
    p, executions = prune_setup()
    cands = prune(p, executions, {"e0", "e1"})  # only 2 failing runs with good evidence
    assert [c.procedure.signature() for c in cands] == [
        ("lookup", "flaky_log", "cancel", "show_status")]
    # the referenced read-only s1 and the last step s5 are never dropped
    assert all({"s1", "s5"} <= {s.id for s in c.procedure.steps}
               for c in prune(p, executions, {e.id for e in executions}))
    # a failing step another step references is kept
    failing_ref = p.model_copy(update={"steps": [
        p.steps[0], p.steps[1], st("s3", "cancel", True, order_id=step_ref("s2", "/id")),
        *p.steps[3:]]})
    assert all("s2" in {s.id for s in c.procedure.steps}
               for c in prune(failing_ref, executions, {e.id for e in executions}))
    # executions of another version do not count
    other = [e.model_copy(update={"version": 2}) for e in executions]
    assert [c.reason for c in prune(p, other, {e.id for e in other})] == [
        "step s4 (peek) is read-only and no later step uses its output"]


# --------------------------------------------------------------------- merge


def merge_setup() -> tuple[list[Procedure], dict[str, Trace]]:
    demos = {t.id: t for t in [
        Trace(id="ta1", task="Cancel order #W1 because it is no longer needed",
              steps=[TraceStep(action="cancel", args={"order_id": "#W1"})]),
        Trace(id="ta2", task="Please cancel order #W2, no longer needed",
              steps=[TraceStep(action="cancel", args={"order_id": "#W2"})]),
        Trace(id="tb1", task="cancel order #W3 because no longer needed",
              steps=[TraceStep(action="cancel", args={"order_id": "#W3", "reason": "x"})]),
        Trace(id="td1", task="What is the weather in Paris tomorrow",
              steps=[TraceStep(action="cancel", args={"order_id": "x"})]),
    ]}
    a = proc("cancel-a", [st("s1", "cancel", order_id=param("order_id"))],
             ["order_id", "note"], traces=["ta1", "ta2"], schemas={"order_id": "integer"})
    b = proc("cancel-b", [st("s1", "cancel", order_id=param("order_id"),
                             reason=param("reason"))],
             ["order_id", "reason"], traces=["tb1"])
    c = proc("refund", [st("s1", "refund", order_id=param("order_id"))], ["order_id"],
             traces=["ta1"])
    d = proc("cancel-d", [st("s1", "cancel", order_id="x")], [], traces=["td1"])
    return [a, b, c, d], demos


def test_merge_keeps_the_more_reliable_variant_and_unions_lineage() -> None:
    procs, demos = merge_setup()
    (c,) = merge(procs, {"cancel-a": 0.6, "cancel-b": 0.9, "cancel-d": 0.1}, demos)
    base = procs[1]
    assert c.kind == "merge"
    assert_candidate(c, base)
    assert c.procedure.steps == base.steps
    assert c.procedure.lineage.traces == ["tb1", "ta1", "ta2"]
    assert [t.id for t in c.covers] == ["tb1", "ta1", "ta2"]
    params = {q.name: q for q in c.procedure.params}
    assert list(params) == ["order_id", "reason", "order_id_2", "note"]
    assert params["order_id"].required and not params["order_id_2"].required
    assert params["order_id_2"].schema_ == {"type": "integer"}
    assert "cancel-a" in c.reason and "cancel-d" not in c.reason
    assert c.diff == ["~ params: + order_id_2, + note", "~ merges: cancel-a"]


def test_merge_ties_go_to_more_demonstrations_and_callees_are_kept() -> None:
    procs, demos = merge_setup()
    (c,) = merge(procs, {}, demos)
    assert c.procedure.name == "cancel-a"  # equal reliability: 2 demonstrations beat 1
    assert c.procedure.lineage.traces == ["ta1", "ta2", "tb1"]
    caller = proc("caller", [st("s1", "procedure:cancel-b", order_id=param("o"), reason="r")],
                  ["o"])
    assert merge([*procs, caller], {"cancel-b": 0.1}, demos) == []
    assert merge(procs[:1], {}, demos) == []


# -------------------------------------------------------------------- factor


def factor_setup() -> list[Procedure]:
    ship_a = proc("ship-a", [
        st("s1", "find_user", email=param("email")),
        st("s2", "get_user", user_id=step_ref("s1", "/user_id")),
        st("s3", "ship", user=step_ref("s2", "/name"), item=param("item")),
    ], ["email", "item"], traces=["da"])
    ship_b = proc("ship-b", [
        st("s1", "check_stock", sku=param("sku")),
        st("s2", "find_user", email=param("mail")),
        st("s3", "get_user", user_id=step_ref("s2", "/user_id")),
        st("s4", "refund", to=step_ref("s3", "/name")),
    ], ["sku", "mail"], traces=["db", "missing"])
    ship_c = proc("ship-c", [
        st("s1", "find_user", email=param("email")),
        st("s2", "get_user", user_id=step_ref("s1", "/user_id")),
        st("s3", "audit", user_id=step_ref("s1", "/user_id")),  # uses an inner step
    ], ["email"])
    return [ship_a, ship_b, ship_c]


DEMOS = {"da": Trace(id="da", task="ship to a"), "db": Trace(id="db", task="refund b")}


def test_factor_extracts_a_shared_run_into_a_sub_procedure() -> None:
    ship_a, ship_b, ship_c = factor_setup()
    cands = factor([ship_b, ship_c, ship_a], DEMOS)
    assert [c.procedure.name for c in cands] == ["ship-a", "ship-b"]  # ship-c refused
    for c, base in zip(cands, [ship_a, ship_b], strict=True):
        assert c.kind == "factor"
        assert_candidate(c, base)
    sub = cands[0].extra[0]
    assert cands[1].extra == [sub]
    assert sub.name == "find_user-then-get_user" and sub.version == 1
    assert [q.name for q in sub.params] == ["email"]
    assert sub.steps == [st("s1", "find_user", email=param("email")),
                         st("s2", "get_user", user_id=step_ref("s1", "/user_id"))]
    a, b = (c.procedure for c in cands)
    assert [(s.id, s.action) for s in a.steps] == [
        ("s2", "procedure:find_user-then-get_user"), ("s3", "ship")]
    assert a.steps[0].args == {"email": {"$param": "email"}}
    assert a.steps[1] == ship_a.steps[2]  # reference to the run's last step still holds
    assert [(s.id, s.action) for s in b.steps] == [
        ("s1", "check_stock"), ("s3", "procedure:find_user-then-get_user"), ("s4", "refund")]
    assert b.steps[1].args == {"email": {"$param": "mail"}}
    assert b.params == ship_b.params
    assert cands[1].diff == [
        "- s2 find_user(email=$param mail)",
        "- s3 get_user(user_id=$step s2/user_id)",
        "+ s3 procedure:find_user-then-get_user(email=$param mail)",
    ]
    assert [t.id for t in cands[0].covers] == ["da"]
    assert [t.id for t in cands[1].covers] == ["db"]


def test_factor_refuses_when_a_later_step_uses_an_inner_step() -> None:
    ship_a, _, ship_c = factor_setup()
    assert factor([ship_a, ship_c], DEMOS) == []
    # different arg templates (a literal instead of a param) are not the same run
    other = ship_a.model_copy(update={"name": "ship-x", "steps": [
        st("s1", "find_user", email="fixed@example.com"), *ship_a.steps[1:]]})
    assert factor([ship_a, other], DEMOS) == []


def test_factor_reuses_an_equal_procedure_and_suffixes_a_taken_name() -> None:
    ship_a, ship_b, _ = factor_setup()
    existing = proc("lookup-user", [
        st("a", "find_user", email=param("address")),
        st("b", "get_user", user_id=step_ref("a", "/user_id")),
    ], ["address"])
    cands = factor([ship_a, ship_b, existing], DEMOS)
    assert [c.extra for c in cands] == [[], []]
    assert cands[0].procedure.steps[0].action == "procedure:lookup-user"
    assert cands[0].procedure.steps[0].args == {"address": {"$param": "email"}}
    taken = proc("find_user-then-get_user", [st("s1", "other")])
    cands = factor([ship_a, ship_b, taken], DEMOS)
    assert cands[0].extra[0].name == "find_user-then-get_user-2"


# ------------------------------------------------------------- determinism


def test_candidates_are_deterministic() -> None:
    p = return_procedure()
    ex = failed_execution(p)
    pr, executions = prune_setup()
    procs, demos = merge_setup()
    recovery = recovery_trace(ex.id)

    def everything() -> list[Candidate]:
        rep = repair(p, ex, recovery)
        assert rep is not None
        return [rep, *prune(pr, executions, {e.id for e in executions}),
                *merge(procs, {"cancel-b": 0.7}, demos), *factor(factor_setup(), DEMOS)]

    first, second = everything(), everything()
    assert len(first) == 6
    assert fingerprint(first) == fingerprint(second)


# ------------------------------------------------------------------ real data


def test_factor_and_merge_on_learned_tau_procedures(tau_sample: list[Trace]) -> None:
    with procmem.Memory(":memory:") as mem:
        mem.learn(tau_sample)
        procs = mem.list_procedures(limit=1000)
    by_name = {p.name: p for p in procs}
    demos = {t.id: t for t in tau_sample}
    factored = factor(procs, demos)
    merged = merge(procs, {}, demos)
    assert factored  # the sample has runs shared by several procedures
    for c in [*factored, *merged]:
        assert_candidate(c, by_name[c.procedure.name])
        assert c.covers and all(t.id in demos for t in c.covers)
    for c in factored:
        call = next(s for s in c.procedure.steps if s.subprocedure)
        sub = next((e for e in c.extra if e.name == call.subprocedure),
                   by_name.get(call.subprocedure or ""))
        assert sub is not None and set(call.args) <= {q.name for q in sub.params}
    assert len({c.procedure.name for c in factored}) == len(factored)
    assert fingerprint(factor(procs, demos)) == fingerprint(factored)
