"""Tests for the safety figures of evaluation: silent errors, supplied values, confidence,
baselines, isolation of replays and leave-one-out (evaluation.evaluate, evaluation.metrics)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest

from embedders import CountingEmbedder
from procmem.core.errors import UsageError
from procmem.core.model import Execution, Lineage, Param, Procedure, StepRun, Trace, TraceStep
from procmem.core.model import Step as ProcStep
from procmem.core.template import ask, param
from procmem.evaluation.evaluate import EvalReport, evaluate, leave_one_out
from procmem.evaluation.metrics import (
    OverlapRanker,
    bound_mismatches,
    classify_source,
    reliability_table,
    silent_errors,
    supplied_values,
)
from procmem.induction.induce import MIN_CONSTANT
from procmem.memory import Memory

# ------------------------------------------------------------ constructed traces


def cancel(n: int, *, task_id: int | None = None, reason: str = "no longer needed",
           sent: int | None = None) -> Trace:
    """A cancel trace; ``task_id`` is the order number in the task (default ``n``),
    ``sent`` the one in the recorded call (default ``n``)."""
    said = f"#W{task_id if task_id is not None else n:07d}"
    return Trace(id=f"cancel-{n}", task=f"Cancel order {said} because {reason}.",
                 outcome="success", steps=[TraceStep(
                     action="cancel_pending_order",
                     args={"order_id": f"#W{sent if sent is not None else n:07d}",
                           "reason": reason}, output="ok")])


def vague_cancel(n: int, reason: str = "no longer needed") -> Trace:
    """A cancel trace whose task does not name the order (induction makes it an ``$ask``)."""
    return Trace(id=f"vague-{n}", task="Please cancel my pending order, I do not need it.",
                 outcome="success", steps=[TraceStep(
                     action="cancel_pending_order",
                     args={"order_id": f"#W{n:07d}", "reason": reason}, output="ok")])


def address(n: int) -> Trace:
    return Trace(id=f"address-{n}", task=f"Change the address of order #W{n:07d} to {n} Main St.",
                 outcome="success", steps=[TraceStep(
                     action="modify_pending_order_address",
                     args={"order_id": f"#W{n:07d}", "address1": f"{n} Main St"}, output="ok")])


CANCELS = [cancel(n) for n in range(1000001, 1000005)]
ADDRESSES = [address(n) for n in range(2000001, 2000005)]


@pytest.fixture
def force_confident(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, bool]]:
    """Make every search hit confident (or not) whatever the ranker says: ``flag["value"]``."""
    flag = {"value": True}
    original = Memory.search

    def search(self: Memory, task: str, **kwargs: Any) -> list[Any]:
        return [h.model_copy(update={"confident": flag["value"]})
                for h in original(self, task, **kwargs)]

    monkeypatch.setattr(Memory, "search", search)
    yield flag


def run(train: list[Trace], test: list[Trace], *, calibrate: bool = True) -> EvalReport:
    return evaluate(train, test, embedder=None, calibrate=calibrate)


# ------------------------------------------------------------- silent errors


def test_a_confident_wrong_binding_is_a_silent_error(force_confident: dict[str, bool]) -> None:
    # the task names #W3000003, the recorded call cancelled #W4000004: binding the
    # task's value sends a call that differs from the right one, without asking
    test = cancel(3000003, sent=4000004)
    report = run(CANCELS, [test])
    assert report.hit_at_1 == 1.0
    assert report.silent_errors == 1 and report.silent_error_cases == [test.id]
    [error] = report.cases[0]["silent_errors"]
    assert error["action"] == "cancel_pending_order" and error["recorded"] is True
    assert error["wrong"] == [{"path": "/order_id", "source": "task",
                               "sent": "#W3000003", "recorded": "#W4000004"}]
    # the hit is not right (a bound value differs), so the confident hit counts against precision
    assert report.cases[0]["right"] is False
    assert report.cases[0]["wrong_bound"]["order_id"]["recorded"] == "#W4000004"
    assert report.confident_precision == 0.0 and report.confident_coverage == 0.0
    # the order number is wrong; the reason the task names is right
    assert report.supplied_precision["task"] == {"right": 1, "total": 2, "precision": 0.5}
    assert report.supplied_precision["literal"]["total"] == 0


def test_a_right_confident_replay_has_no_silent_error(force_confident: dict[str, bool]) -> None:
    report = run(CANCELS, [cancel(3000003)])
    assert report.silent_errors == 0 and report.replay_exact == 1.0
    assert report.cases[0]["right"] is True and report.confident_precision == 1.0
    assert report.confident_coverage == 1.0
    assert report.supplied_precision["task"]["precision"] == 1.0


def test_a_call_holding_an_oracle_value_is_not_silent(force_confident: dict[str, bool]) -> None:
    # order_id is an $ask the oracle answers; the literal reason differs from the
    # recorded one, so the call is wrong -- but the agent was asked: not silent
    train = [vague_cancel(n) for n in range(1000001, 1000001 + MIN_CONSTANT)]  # reason: literal
    test = vague_cancel(5000005, reason="ordered by mistake")
    report = run(train, [test])
    assert report.cases[0]["selection"] == "confident"
    assert report.cases[0]["oracle_leaves"] >= 1 and not report.cases[0]["exact"]
    assert report.silent_errors == 0 and report.silent_error_cases == []
    assert report.supplied_precision["asked"] == {"right": 1, "total": 1, "precision": 1.0}
    assert report.supplied_precision["literal"]["right"] == 0


def test_a_declined_wrong_hit_is_paused_not_silent(force_confident: dict[str, bool]) -> None:
    # no learned procedure does "look up, then cancel": the cancel procedure comes
    # first, not confident; the oracle declines it, so nothing is sent
    flag = force_confident
    flag["value"] = False
    test = Trace(id="lookup-then-cancel", task="Cancel order #W3000003 because no longer needed.",
                 outcome="success", steps=[
                     TraceStep(action="get_order_details", args={"order_id": "#W3000003"},
                               output="{}"),
                     TraceStep(action="cancel_pending_order",
                               args={"order_id": "#W3000003", "reason": "ordered by mistake"},
                               output="ok")])
    report = run(CANCELS, [test])
    case = report.cases[0]
    assert case["top"] and not case["findable"] and case["selection"] == "paused_at_selection"
    assert case["status"] is not None  # replayed for the retrieval figures all the same
    assert report.paused_at_selection == 1 and report.silent_errors == 0
    assert "silent_errors" not in case
    # the same hit, confident, is replayed and sends the wrong reason without asking
    flag["value"] = True
    trusted = run(CANCELS, [test])
    assert trusted.paused_at_selection == 0 and trusted.silent_errors == 1
    assert trusted.cases[0]["silent_errors"][0]["wrong"][0]["path"] == "/reason"


def test_a_not_confident_right_hit_is_confirmed_and_replayed(
        force_confident: dict[str, bool]) -> None:
    force_confident["value"] = False
    report = run(CANCELS, [cancel(3000003, sent=4000004)])
    assert report.cases[0]["selection"] == "confirmed"
    assert report.silent_errors == 1  # confirming the procedure does not check its values
    assert report.confident_precision is None and report.confident_coverage == 0.0


# ------------------------------------------------------- unit: eval_metrics


PROC = Procedure(
    name="cancel_x2",
    params=[Param(name="order_id"), Param(name="reason")],
    steps=[ProcStep(id="s1", action="cancel", args={"order_id": param("order_id"),
                                                    "reason": param("reason")}),
           ProcStep(id="s2", action="cancel", args={"order_id": ask("which"), "reason": "x"}),
           ProcStep(id="s3", action="notify", args={"to": "me"})],
)
TRACE = Trace(task="t", steps=[
    TraceStep(action="cancel", args={"order_id": "A", "reason": "r"}, output="ok"),
    TraceStep(action="cancel", args={"order_id": "B"}, error="boom"),
    TraceStep(action="cancel", args={"order_id": "B", "reason": "y"}, output="ok"),
])


def execution(*runs: StepRun, sources: dict[str, str] | None = None) -> Execution:
    ex = Execution(procedure=PROC.name, version=1,
                   param_sources=sources or {"order_id": "task", "reason": "task"})
    ex.step_runs = list(runs)
    return ex


def test_silent_errors_align_by_kth_successful_call_and_skip_asked_calls() -> None:
    ex = execution(
        StepRun(index=0, step_id="s1", action="cancel", args={"order_id": "A", "reason": "r"},
                sources={"/order_id": "param:order_id", "/reason": "param:reason"}),
        StepRun(index=1, step_id="s2", action="cancel", args={"order_id": "C", "reason": "x"},
                sources={"/order_id": "ask"}),  # wrong, but the oracle supplied a value
        StepRun(index=2, step_id="s3", action="notify", args={"to": "me"}),  # nothing recorded
    )
    assert silent_errors(ex, PROC, TRACE) == [
        {"step": "s3", "action": "notify", "recorded": False,
         "wrong": [{"path": "/to", "source": "literal", "sent": "me"}]}]


def test_silent_errors_name_the_wrong_and_the_missing_args() -> None:
    ex = execution(StepRun(index=0, step_id="s1", action="cancel", args={"order_id": "Z"},
                           sources={"/order_id": "param:order_id"}),
                   StepRun(index=1, step_id="s2", action="cancel", attempts=0,
                           args={"order_id": "Q"}))  # never called: not an issued call
    [error] = silent_errors(ex, PROC, TRACE)
    assert error["wrong"] == [
        {"path": "/order_id", "source": "task", "sent": "Z", "recorded": "A"},
        {"path": "/reason", "source": None, "recorded": "r"}]


def test_a_call_the_recording_made_and_the_world_refused_is_not_silent() -> None:
    # the recording's second cancel ({"order_id": "B"}) failed; sending exactly it again
    # is what the demonstrator did. A different value is still a silent error.
    refused = StepRun(index=0, step_id="s3", action="cancel", args={"order_id": "B"},
                      sources={"/order_id": "param:order_id"})
    assert silent_errors(execution(refused), PROC, TRACE) == []
    assert supplied_values(execution(refused), PROC, TRACE) == {"task": [1, 1]}
    other = StepRun(index=0, step_id="s3", action="cancel", args={"order_id": "Q"})
    assert len(silent_errors(execution(other), PROC, TRACE)) == 1


def test_supplied_values_by_source() -> None:
    ex = execution(
        StepRun(index=0, step_id="s1", action="cancel", args={"order_id": "A", "reason": "no"},
                sources={"/order_id": "param:order_id", "/reason": "param:reason"}),
        StepRun(index=1, step_id="s2", action="cancel", args={"order_id": "B", "reason": "x"},
                sources={"/order_id": "ask"}),
        StepRun(index=2, step_id="s3", action="notify", args={"to": {"a": 1, "b": [2]}}),
        sources={"order_id": "task", "reason": "answer"},
    )
    assert supplied_values(ex, PROC, TRACE) == {
        "task": [1, 1], "asked": [1, 2], "literal": [0, 3]}


def test_classify_source() -> None:
    given = {"a": "task", "b": "answer", "c": "default", "d": "given"}
    assert [classify_source(s, given) for s in (
        "param:a", "param:b", "param:c", "param:d", "param:zz", "ask", "literal",
        "step:s1#/x", "select:s1", "weird")] == [
        "task", "asked", "literal", "given", "other", "asked", "literal", "step", "selection",
        "other"]


def test_bound_mismatches_compare_each_place_a_bound_param_is_sent() -> None:
    assert bound_mismatches(PROC, {"order_id": "A", "reason": "r"}, TRACE) == {}
    assert bound_mismatches(PROC, {"order_id": "B"}, TRACE) == {
        "order_id": {"bound": "B", "step": "s1", "recorded": "A"}}
    short = Trace(task="t", steps=[])
    assert bound_mismatches(PROC, {"reason": "r"}, short) == {
        "reason": {"bound": "r", "step": "s1", "recorded": None}}
    assert bound_mismatches(PROC, {"unused": 1}, TRACE) == {}


def test_overlap_ranker_counts_shared_distinct_words_ties_by_name() -> None:
    procs = [Procedure(name=n, steps=[ProcStep(id="s1", action=n)],
                       lineage=Lineage(traces=[f"t-{n}"])) for n in ("b_cancel", "a_return")]
    tasks = {"t-b_cancel": "cancel my order now", "t-a_return": "return my kettle"}
    ranker = OverlapRanker(procs, tasks)
    assert ranker.top("Cancel the ORDER please") == ("b_cancel", ("b_cancel",))
    assert ranker.top("my") == ("a_return", ("a_return",))  # one word each: by name
    assert OverlapRanker([], {}).top("x") is None


def test_reliability_table_bins_predictions() -> None:
    rows = reliability_table([(0.0, False), (0.05, True), (0.95, True), (1.0, True),
                              (1.0, False), (0.5, True)])
    assert rows == [
        {"bin": [0.0, 0.1], "n": 2, "predicted": 0.025, "observed": 0.5},
        {"bin": [0.5, 0.6], "n": 1, "predicted": 0.5, "observed": 1.0},
        {"bin": [0.9, 1.0], "n": 3, "predicted": 0.9833, "observed": 0.6667}]
    assert reliability_table([]) == []


def test_reliability_reads_hit_confidence_when_the_ranker_gives_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    original = Memory.search

    def search(self: Memory, task: str, **kwargs: Any) -> list[Any]:
        return [h.model_copy(update={"confidence": 0.42}) for h in original(self, task, **kwargs)]

    monkeypatch.setattr(Memory, "search", search)
    report = run(CANCELS, [cancel(3000003)])
    assert report.cases[0]["predicted"] == 0.42
    assert report.reliability == [{"bin": [0.4, 0.5], "n": 1, "predicted": 0.42,
                                   "observed": 1.0}]


# -------------------------------------------------------------- baselines


def test_baselines_are_computed_over_the_same_procedures() -> None:
    test = [cancel(3000003), address(4000004)]
    report = run(CANCELS + ADDRESSES, test)
    assert report.overlap_hit_at_1 == 1.0
    assert report.first_stage_hit_at_1 == 1.0
    for case in report.cases:
        assert case["first_stage_top"] == case["top"] == case["overlap_top"]


# -------------------------------------------------------------- isolation


def per_trace(report: EvalReport) -> dict[str, dict[str, Any]]:
    return {c["trace"]: c for c in report.cases}


def lookup_then_cancel(n: int) -> Trace:
    return Trace(id=f"lookup-{n}", task=cancel(n).task, outcome="success", steps=[
        TraceStep(action="get_order_details", args={"order_id": f"#W{n:07d}"}, output="{}"),
        *cancel(n).steps])


def test_per_trace_results_do_not_depend_on_the_order_of_the_test_traces() -> None:
    # Two procedures fit "Cancel order #W… because …" almost equally (the plain cancel
    # leads on demonstrations). Replays of the cancel procedure whose recorded call
    # cancelled another order fail; when replays were recorded in the searched memory,
    # each failure lowered its reliability and the next search put the look-up first.
    train = CANCELS[:3] + [lookup_then_cancel(n) for n in (1100001, 1100002)]
    failing = [cancel(n, sent=n + 500) for n in range(3000001, 3000005)]
    test = [cancel(3900001), *failing, cancel(3900002)]
    shuffled = list(test)
    random.Random(7).shuffle(shuffled)
    first = run(train, test)
    for order in (shuffled, test[::-1]):
        again = run(train, order)
        assert [c["trace"] for c in again.cases] == [t.id for t in order]
        assert per_trace(again) == per_trace(first)
        same = {"seconds": 0, "silent_error_cases": sorted(first.silent_error_cases)}
        assert again.figures() | same == first.figures() | same
        assert sorted(again.silent_error_cases) == sorted(first.silent_error_cases)
    assert sum(c["status"] == "failed" for c in first.cases) == 4
    assert {c["top"] for c in first.cases} == {"cancel_pending_order"}


def test_a_replay_leaves_nothing_in_the_searched_memory(force_confident: dict[str, bool],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    searched: list[Memory] = []
    original_search, original_close = Memory.search, Memory.close

    def search(self: Memory, task: str, **kwargs: Any) -> list[Any]:
        searched.append(self)
        return original_search(self, task, **kwargs)

    executions: dict[int, int] = {}

    def close(self: Memory) -> None:
        executions[id(self)] = len(self.store.list_executions(limit=10))
        original_close(self)

    monkeypatch.setattr(Memory, "search", search)
    monkeypatch.setattr(Memory, "close", close)
    # without calibration, whose fold memories search too (and replay nothing)
    run(CANCELS, [cancel(3000003, sent=4000004), cancel(3000004, sent=4000005)],
        calibrate=False)
    assert {id(m) for m in searched} == {id(searched[0])}
    assert executions.pop(id(searched[0])) == 0  # the searched memory: no execution
    assert list(executions.values()) == [2]  # the scratch memory holds both replays


# ----------------------------------------------------------- leave-one-out


def test_leave_one_out_judges_each_trace_learning_from_the_others() -> None:
    traces = CANCELS[:3] + ADDRESSES[:3]
    report = leave_one_out(traces, embedder=None)
    assert (report.folds, report.test_traces, report.train_traces) == (6, 6, 5)
    assert [c["trace"] for c in report.cases] == [t.id for t in traces]
    assert report.findable == 6 and report.hit_at_1 == 1.0 and report.replay_exact == 1.0
    assert report.procedures == 2 and report.silent_errors == 0


def test_leave_one_out_embeds_each_text_once_and_reports_progress() -> None:
    traces = CANCELS[:3] + ADDRESSES[:3]
    embedder = CountingEmbedder()
    seen: list[tuple[int, int]] = []
    report = leave_one_out(traces, embedder=embedder, progress=lambda d, t: seen.append((d, t)))
    assert report.retriever == "hybrid" and report.hit_at_1 == 1.0
    assert len(embedder.seen) == len(set(embedder.seen))
    assert seen == [(n, 6) for n in range(1, 7)]


def test_leave_one_out_needs_two_traces() -> None:
    with pytest.raises(UsageError):
        leave_one_out(CANCELS[:1], embedder=None)
