"""Tests for verification of candidates against recorded runs (procmem.learning.verify)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import procmem
from procmem.core.model import OnError, Param, Procedure, Step, Trace, TraceStep
from procmem.core.template import ask, param, step_ref
from procmem.formats.traceio import read_traces
from procmem.induction.induce import induce
from procmem.learning.verify import Verification, verify

# ------------------------------------------------------------------------ helpers

USERS = {"#W1000001": "u_ann", "#W2000002": "u_bob", "#W3000003": "u_cy"}
REASONS = {"#W1000001": "no longer needed", "#W2000002": "ordered by mistake",
           "#W3000003": "no longer needed"}


def demo(order: str) -> Trace:
    """Look the order up, read its user, cancel it: three calls, data flowing between them."""
    user = USERS[order]
    return Trace(
        id=f"demo-{order[2:]}",
        task=f"Cancel order {order} because {REASONS[order]}.",
        outcome="success",
        steps=[
            TraceStep(action="get_order_details", args={"order_id": order},
                      output=json.dumps({"order_id": order, "user_id": user, "status": "pending",
                                         "items": [{"item_id": f"i-{order[2:]}"}]})),
            TraceStep(action="get_user_details", args={"user_id": user},
                      output=json.dumps({"user_id": user, "email": f"{user}@example.com"})),
            TraceStep(action="cancel_pending_order",
                      args={"order_id": order, "reason": REASONS[order]},
                      output=json.dumps({"order_id": order, "status": "cancelled"})),
        ],
    )


DEMOS = [demo(o) for o in USERS]


@pytest.fixture
def induced() -> Procedure:
    return induce(DEMOS, name="cancel-order")


def with_steps(proc: Procedure, steps: list[Step], version: int = 2) -> Procedure:
    """A candidate version of ``proc`` with other steps (no validation of refs needed)."""
    return proc.model_copy(update={"steps": steps, "version": version, "status": "candidate"})


# ----------------------------------------------------------------- reproduce


def test_induced_procedure_reproduces_its_demonstrations(induced: Procedure) -> None:
    # the induced steps really carry data flow: a param and a step reference
    assert induced.steps[0].args == {"order_id": param("order_id")}
    assert induced.steps[1].args == {"user_id": step_ref("s1", "/user_id")}
    result = verify(induced, DEMOS, {})
    assert isinstance(result, Verification)
    assert (result.name, result.version) == ("cancel-order", 1)
    assert result.reproduced == [t.id for t in DEMOS]
    assert result.failed == {}
    assert result.ok
    assert result.checked_at.tzinfo is not None


def test_failed_steps_of_a_trace_are_not_expected(induced: Procedure) -> None:
    noisy = demo("#W1000001").model_copy(update={"id": "noisy"})
    noisy.steps.insert(2, TraceStep(action="cancel_pending_order",
                                    args={"order_id": "#W1000001"}, error="missing reason"))
    assert verify(induced, [noisy], {}).reproduced == ["noisy"]


def test_learned_tau_procedures_reproduce_their_demonstrations(tau_sample_path: Path) -> None:
    traces, _ = read_traces(tau_sample_path)
    by_id = {t.id: t for t in traces}
    with procmem.Memory(":memory:") as mem:
        mem.learn(traces)
        procedures = mem.list_procedures(limit=10_000)
    assert procedures
    by_name = {p.name: p for p in procedures}
    covered = reproduced = ok = 0
    failures: dict[str, str] = {}
    for proc in procedures:
        covers = [by_id[i] for i in proc.lineage.traces]
        result = verify(proc, covers, by_name)
        covered += len(covers)
        reproduced += len(result.reproduced)
        ok += result.ok
        failures.update(result.failed)
    print(f"\nverify: {reproduced}/{covered} demonstrations reproduced, "
          f"{ok}/{len(procedures)} procedures verified")
    assert covered == sum(len(p.lineage.traces) for p in procedures) > 0
    assert reproduced >= 0.9 * covered, failures
    assert ok >= 0.9 * len(procedures)


def test_verification_is_deterministic_and_dedupes_trace_ids(induced: Procedure) -> None:
    first = verify(induced, [*DEMOS, DEMOS[0]], {})
    second = verify(induced, DEMOS, {})
    assert first.reproduced == [t.id for t in DEMOS]
    assert first.model_dump(exclude={"checked_at"}) == second.model_dump(exclude={"checked_at"})


# ------------------------------------------------------------------- differ


def test_changed_literal_fails_naming_the_call(induced: Procedure) -> None:
    steps = [s.model_copy(deep=True) for s in induced.steps]
    steps[2] = steps[2].model_copy(update={"args": {"order_id": param("order_id"),
                                                    "reason": "changed my mind"}})
    result = verify(with_steps(induced, steps), DEMOS, {})
    assert not result.ok
    assert result.reproduced == []
    assert set(result.failed) == {t.id for t in DEMOS}
    why = result.failed["demo-1000001"]
    assert why.startswith("call 3: expected cancel_pending_order(")
    assert '"reason": "no longer needed"' in why
    assert 'got cancel_pending_order({"order_id": "#W1000001", "reason": "changed my mind"})' in why


def test_missing_step_fails(induced: Procedure) -> None:
    steps = [induced.steps[0], induced.steps[2]]
    result = verify(with_steps(induced, steps), DEMOS, {})
    assert not result.ok
    why = result.failed["demo-2000002"]
    assert why.startswith("call 2: expected get_user_details(")
    assert "got cancel_pending_order(" in why


def test_dropped_last_step_is_a_missing_call(induced: Procedure) -> None:
    result = verify(with_steps(induced, induced.steps[:2]), DEMOS[:1], {})
    assert result.failed == {
        "demo-1000001": 'missing call 3: expected cancel_pending_order('
                        '{"order_id": "#W1000001", "reason": "no longer needed"})'
    }


def test_extra_step_fails(induced: Procedure) -> None:
    extra = Step(id="s4", action="get_user_details", args={"user_id": step_ref("s1", "/user_id")})
    result = verify(with_steps(induced, [*induced.steps, extra]), DEMOS, {})
    assert not result.ok
    why = result.failed["demo-3000003"]
    assert why.startswith('extra call 4: get_user_details({"user_id": "u_cy"})')
    assert "execution failed" in why  # the recorded environment has no 4th call to answer


def test_extra_step_that_issues_no_call_still_fails(induced: Procedure) -> None:
    # the calls match, but the execution does not succeed: not reproduced
    dangling = Step(id="s4", action="get_user_details",
                    args={"user_id": step_ref("s3", "/no/such/field")})
    result = verify(with_steps(induced, [*induced.steps, dangling]), DEMOS[:1], {})
    assert not result.ok
    assert result.failed["demo-1000001"].startswith("execution failed: step 's4'")


def test_pause_is_reported_with_the_open_needs(induced: Procedure) -> None:
    # a required param that no step uses: neither the binder nor the oracle can fill it
    params = [*induced.params, Param(name="ticket", schema={"type": "string"})]
    cand = induced.model_copy(update={"params": params, "version": 2})
    why = verify(cand, DEMOS[:1], {}).failed["demo-1000001"]
    assert why.startswith('execution paused: needs ["param:ticket"]')
    assert "missing call 1: expected get_order_details(" in why


def test_long_args_are_cut_in_the_reason(induced: Procedure) -> None:
    steps = [*induced.steps[:2],
             induced.steps[2].model_copy(update={"args": {"order_id": param("order_id"),
                                                          "reason": "x" * 1000}})]
    why = verify(with_steps(induced, steps), DEMOS[:1], {}).failed["demo-1000001"]
    assert '"reason": "xxxxxxxxxx' in why and "x" * 300 not in why
    assert "...)" in why
    assert len(why) < 700


def test_trace_without_calls_is_reproduced_only_by_issuing_none(induced: Procedure) -> None:
    empty = Trace(id="nothing", task="Cancel order #W1000001 because no longer needed.",
                  steps=[TraceStep(action="cancel_pending_order", args={}, error="bad args")])
    result = verify(induced, [empty], {})
    assert not result.ok
    assert result.failed["nothing"].startswith('extra call 1: get_order_details(')
    no_steps = Procedure(name="noop", version=2, status="candidate")
    assert verify(no_steps, [empty], {}).reproduced == ["nothing"]


def test_wrongly_typed_oracle_answer_is_a_param_error_failure() -> None:
    cand = Procedure(
        name="typed", params=[Param(name="order_id", schema={"type": "integer"})],
        steps=[Step(id="s1", action="get_order_details", args={"order_id": param("order_id")})],
    )
    result = verify(cand, DEMOS[:1], {})
    assert not result.ok
    assert result.failed["demo-1000001"].startswith("param_error: param 'order_id'")


def test_retries_against_the_recorded_environment_do_not_sleep(
    induced: Procedure, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError(f"slept {seconds}s")

    monkeypatch.setattr("procmem.core.drivers.time.sleep", no_sleep)
    wrong = Step(id="s3", action="cancel_pending_order",
                 args={"order_id": param("order_id"), "reason": "other"},
                 on_error=OnError(policy="retry", retries=3, backoff_s=30))
    result = verify(with_steps(induced, [*induced.steps[:2], wrong]), DEMOS[:1], {})
    assert result.failed["demo-1000001"].startswith("call 3: expected cancel_pending_order(")


# ------------------------------------------------------------ sub-procedures

LOOKUP = Procedure(
    name="lookup-order-user",
    params=[Param(name="order_id", schema={"type": "string"})],
    steps=[
        Step(id="s1", action="get_order_details", args={"order_id": param("order_id")}),
        Step(id="s2", action="get_user_details", args={"user_id": step_ref("s1", "/user_id")}),
    ],
)


def test_subprocedure_candidate_reproduces(induced: Procedure) -> None:
    cand = with_steps(induced, [
        Step(id="f1", action="procedure:lookup-order-user",
             args={"order_id": param("order_id")}),
        induced.steps[2],
    ])
    result = verify(cand, DEMOS, {"lookup-order-user": LOOKUP})
    assert result.ok, result.failed
    assert result.reproduced == [t.id for t in DEMOS]


def test_subprocedure_needs_are_answered_inside_the_tree() -> None:
    # no extractors: every param comes from the oracle, through the sub-procedure;
    # the child's $ask (step id "s2", like the parent's) must read the child's call
    child = Procedure(
        name="lookup-ask",
        params=[Param(name="oid", schema={"type": "string"})],
        steps=[
            Step(id="s1", action="get_order_details", args={"order_id": param("oid")}),
            Step(id="s2", action="get_user_details", args={"user_id": ask("which user?")}),
        ],
    )
    parent = Procedure(
        name="cancel-via-sub",
        version=3,
        status="candidate",
        params=[Param(name="order_id", schema={"type": "string"})],
        steps=[
            Step(id="s1", action="procedure:lookup-ask", args={"oid": param("order_id")}),
            Step(id="s2", action="cancel_pending_order",
                 args={"order_id": param("order_id"), "reason": ask("why?")}),
        ],
    )
    result = verify(parent, DEMOS, {"lookup-ask": child})
    assert result.ok, result.failed


def test_missing_subprocedure_fails_every_trace(induced: Procedure) -> None:
    cand = with_steps(induced, [Step(id="f1", action="procedure:nowhere", args={})])
    result = verify(cand, DEMOS, {})
    assert not result.ok
    assert set(result.failed) == {t.id for t in DEMOS}
    assert all(w == "not_found: procedure 'nowhere' not found" for w in result.failed.values())


def test_cycle_fails_every_trace_with_the_error_code(induced: Procedure) -> None:
    a = with_steps(induced, [Step(id="s1", action="procedure:loop-b", args={})])
    b = Procedure(name="loop-b", steps=[Step(id="s1", action=f"procedure:{a.name}", args={})])
    result = verify(a, DEMOS, {"loop-b": b, a.name: a})
    assert not result.ok
    assert result.reproduced == []
    assert set(result.failed) == {t.id for t in DEMOS}
    for why in result.failed.values():
        assert why.startswith("cycle: sub-procedure cycle: cancel-order -> loop-b -> cancel-order")


# -------------------------------------------------------------------- edges


@pytest.mark.parametrize("covers", [[], ()])
def test_empty_covers_is_not_ok(induced: Procedure, covers: Any) -> None:
    result = verify(induced, list(covers), {})
    assert result.ok is False
    assert result.reproduced == []
    assert result.failed == {}


def test_verification_round_trips_through_json(induced: Procedure) -> None:
    result = verify(induced, DEMOS, {})
    assert Verification.model_validate_json(result.model_dump_json()) == result
