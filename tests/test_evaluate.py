"""Tests for evaluation: recorded environment, oracle resolver, figures (evaluation.evaluate)."""

from __future__ import annotations

import json

import pytest

from procmem.core.errors import UsageError
from procmem.core.model import Execution, Need, Param, Procedure, Step, StepRun, Trace, TraceStep
from procmem.core.template import ask, param, step_ref
from procmem.evaluation.evaluate import (
    EvalReport,
    Oracle,
    RecordedEnvironment,
    count_leaves,
    evaluate,
    split_holdout,
)

TRACE = Trace(
    id="t1",
    task="Cancel order #W1000001 because no longer needed. Cancel order #W2000002 too.",
    outcome="success",
    steps=[
        TraceStep(action="get_orders", args={"user_id": "u1"},
                  output=json.dumps({"orders": ["#W1000001", "#W2000002"]})),
        TraceStep(action="cancel_pending_order", args={"order_id": "#W1000001"},
                  error="Error: not pending"),
        TraceStep(action="cancel_pending_order",
                  args={"order_id": "#W1000001", "reason": "no longer needed"}, output="ok-1"),
        TraceStep(action="cancel_pending_order",
                  args={"order_id": "#W2000002", "reason": "ordered by mistake"}, output="ok-2"),
    ],
)

PROC = Procedure(
    name="get_orders-then-cancel_pending_order_x2",
    params=[Param(name="user_id", schema={"type": "string"}),
            Param(name="reason", schema={"type": "string"})],
    steps=[
        Step(id="s1", action="get_orders", args={"user_id": param("user_id")}),
        Step(id="s2", action="cancel_pending_order",
             args={"order_id": ask("which", step_ref("s1", "/orders")),
                   "reason": param("reason")}),
        Step(id="s3", action="cancel_pending_order",
             args={"order_id": ask("which", step_ref("s1", "/orders")),
                   "reason": "ordered by mistake"}),
    ],
)


# --------------------------------------------------------------- environment


def test_recorded_environment_answers_only_matching_calls() -> None:
    env = RecordedEnvironment(TRACE)
    tools = env.tools(["get_orders", "cancel_pending_order"])
    assert set(tools) == {"get_orders", "cancel_pending_order"}
    assert tools["get_orders"](user_id="u1") == json.dumps({"orders": ["#W1000001", "#W2000002"]})
    with pytest.raises(LookupError):
        tools["get_orders"](user_id="u1")  # each recorded call answers once
    with pytest.raises(LookupError):
        tools["cancel_pending_order"](order_id="#W1000001")  # the failed call is not replayable
    with pytest.raises(LookupError):
        tools["cancel_pending_order"](order_id="#W1000001", reason="other")
    assert tools["cancel_pending_order"](order_id="#W2000002",
                                         reason="ordered by mistake") == "ok-2"
    assert len(env.calls) == 5
    assert not env.exact()


def test_recorded_environment_exact_means_the_recorded_calls_in_order() -> None:
    env = RecordedEnvironment(TRACE)
    tools = env.tools(["get_orders", "cancel_pending_order"])
    tools["get_orders"](user_id="u1")
    tools["cancel_pending_order"](order_id="#W1000001", reason="no longer needed")
    assert not env.exact()
    tools["cancel_pending_order"](order_id="#W2000002", reason="ordered by mistake")
    assert env.exact()


# --------------------------------------------------------------------- oracle


def test_oracle_answers_asks_by_kth_occurrence_of_the_action() -> None:
    oracle = Oracle(TRACE, PROC)
    first = Need(key="ask:s2:/order_id", kind="ask", step_id="s2", arg_path="/order_id")
    second = Need(key="ask:s3:/order_id", kind="ask", step_id="s3", arg_path="/order_id")
    # s2 is the 1st cancel step -> the 1st *successful* cancel call (the failed one is ignored)
    assert oracle(first) == "#W1000001"
    assert oracle(second) == "#W2000002"
    assert oracle.supplied == 2


def test_oracle_answers_param_needs_from_where_the_param_is_used() -> None:
    oracle = Oracle(TRACE, PROC)
    assert oracle(Need(key="param:user_id", kind="param", name="user_id")) == "u1"
    assert oracle(Need(key="param:reason", kind="param", name="reason")) == "no longer needed"
    assert oracle.supplied == 2


def test_oracle_returns_none_when_the_trace_has_no_value() -> None:
    oracle = Oracle(TRACE, PROC)
    assert oracle(Need(key="param:nope", kind="param", name="nope")) is None
    assert oracle(Need(key="ask:s9:/x", kind="ask", step_id="s9", arg_path="/x")) is None
    assert oracle(Need(key="ask:s2:/missing", kind="ask", step_id="s2",
                       arg_path="/missing")) is None
    short = Trace(task="t", steps=[TraceStep(action="get_orders", args={"user_id": "u1"})])
    assert Oracle(short, PROC)(Need(key="ask:s2:/order_id", kind="ask", step_id="s2",
                                    arg_path="/order_id")) is None
    assert oracle.supplied == 0


def test_count_leaves_counts_oracle_supplied_leaves() -> None:
    ex = Execution(procedure="p", version=1, params={"user_id": "u1", "reason": "x"},
                   param_sources={"user_id": "answer", "reason": "task"})
    ex.step_runs = [
        StepRun(index=0, step_id="s1", action="a", args={"user_id": "u1", "ids": ["1", "2"]},
                sources={"/user_id": "param:user_id", "/ids": "ask"}),
        StepRun(index=1, step_id="s2", action="b", args={"reason": "x", "k": 1},
                sources={"/reason": "param:reason"}),
        StepRun(index=2, step_id="s3", action="c", args={"never": "called"}, attempts=0),
    ]
    assert count_leaves(ex) == (5, 3)


# ---------------------------------------------------------------------- split


def test_split_holdout(tau_sample: list[Trace]) -> None:
    train, test = split_holdout(tau_sample, 20)
    assert (len(train), len(test)) == (100, 20)
    assert train[-1].id == "tau-retail-train-99" and test[0].id == "tau-retail-train-100"
    for bad in (0, 120, -1):
        with pytest.raises(UsageError):
            split_holdout(tau_sample, bad)


# ----------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def report(tau_sample: list[Trace]) -> EvalReport:
    return evaluate(tau_sample[:100], tau_sample[100:])


def test_evaluate_on_the_real_sample(report: EvalReport) -> None:
    figures = report.figures()
    assert set(figures) == {"train_traces", "procedures", "test_traces", "hit_at_1",
                            "hit_at_5", "mrr", "replay_exact", "automation", "seconds",
                            "findable", "retriever", "reranker", "abstain_unfindable",
                            "confident_findable", "confident_correct", "first_stage_hit_at_1",
                            "overlap_hit_at_1", "silent_errors", "silent_error_cases",
                            "paused_at_selection", "confident_precision", "confident_coverage",
                            "reliability", "supplied_precision", "folds"}
    assert (report.train_traces, report.test_traces) == (100, 20)
    assert report.procedures > 20
    for k in ("hit_at_1", "hit_at_5", "mrr", "replay_exact", "automation"):
        assert 0 <= figures[k] <= 1, k
    assert report.hit_at_1 <= report.mrr <= report.hit_at_5
    assert report.hit_at_1 > 0.5
    assert report.replay_exact > 0.5
    assert report.automation > 0.3
    assert report.findable <= report.test_traces
    assert report.hit_at_5 <= report.findable / report.test_traces
    assert report.folds is None and report.silent_errors >= 0
    for k in ("first_stage_hit_at_1", "overlap_hit_at_1", "confident_precision",
              "confident_coverage"):
        assert 0 <= figures[k] <= 1, k
    assert report.overlap_hit_at_1 > 0.1
    assert sum(row["n"] for row in report.reliability) == report.test_traces
    assert set(report.supplied_precision) >= {"task", "step", "literal", "asked"}
    for row in report.supplied_precision.values():
        assert 0 <= row["right"] <= row["total"]


def test_evaluate_cases_explain_each_test_trace(report: EvalReport,
                                                tau_sample: list[Trace]) -> None:
    assert [c["trace"] for c in report.cases] == [t.id for t in tau_sample[100:]]
    exact = sum(c["exact"] for c in report.cases) / len(report.cases)
    assert exact == pytest.approx(report.replay_exact)
    top1 = sum(c["rank"] == 1 for c in report.cases) / len(report.cases)
    assert top1 == pytest.approx(report.hit_at_1)
    for case in report.cases:
        if case["exact"]:
            assert case["status"] == "succeeded"
        if case["top"] is not None:
            assert 0 <= case["oracle_leaves"] <= case["leaves"]
        if case["selection"] == "paused_at_selection":
            assert not case["confident"] and case["rank"] != 1 and "silent_errors" not in case
        elif case["top"] is not None:
            assert case["confident"] or case["rank"] == 1
        if case.get("right"):
            assert case["rank"] == 1 and not case["wrong_bound"]
    silent = [c["trace"] for c in report.cases if c.get("silent_errors")]
    assert silent == report.silent_error_cases
    assert report.silent_errors == sum(len(c.get("silent_errors", [])) for c in report.cases)
    first = [c["first_stage_correct"] for c in report.cases]
    assert sum(first) / len(first) == pytest.approx(report.first_stage_hit_at_1)


def test_evaluate_writes_nothing_to_the_working_directory(tau_sample: list[Trace],
                                                          tmp_path) -> None:
    evaluate(tau_sample[:30], tau_sample[30:35])
    assert list(tmp_path.iterdir()) == []
