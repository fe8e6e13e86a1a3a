"""Calibrated confidence: the logistic model, the threshold, the labels and Memory.calibrate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmem.core.errors import UsageError
from procmem.core.model import Procedure, Trace, TraceStep
from procmem.formats.traceio import read_traces
from procmem.memory import Memory
from procmem.search.calibration import (
    FEATURES,
    Calibration,
    bound_values_right,
    calibration_key,
    choose_threshold,
    features_of,
    fit_logistic,
)


def calibration(**fields: Any) -> Calibration:
    base: dict[str, Any] = {
        "retriever": "bm25", "weights": (2.0, 0.5, 0.0, 1.0, 0.0, 0.0), "bias": -0.5,
        "mean": (0.5,) * 6, "scale": (0.25,) * 6, "threshold": 0.9, "target_precision": 0.99,
        "samples": 100, "positives": 80, "cv_precision": 0.99, "cv_coverage": 0.8, "folds": 5,
        "traces": 120,
    }
    return Calibration(**{**base, **fields})


# ------------------------------------------------------------------------- fit_logistic


def test_fit_logistic_separates_a_separable_set_and_is_monotone() -> None:
    x = np.array([[0.0, 1.0], [0.1, 1.0], [0.2, 1.0], [0.8, 1.0], [0.9, 1.0], [1.0, 1.0]])
    y = np.array([0, 0, 0, 1, 1, 1], dtype=float)
    weights, bias, mean, scale = fit_logistic(x, y)
    assert weights.shape == (2,) and mean.shape == (2,) and scale.shape == (2,)
    assert scale[1] == 1.0  # a constant feature is not divided by zero
    cal = calibration(weights=(*weights, 0, 0, 0, 0), bias=bias, mean=(*mean, 0, 0, 0, 0),
                      scale=(*scale, 1, 1, 1, 1))
    probs = [cal.predict([v, 1.0, 0, 0, 0, 0]) for v in np.linspace(0, 1, 21)]
    assert all(a < b for a, b in zip(probs, probs[1:], strict=False))  # strictly increasing
    for row, label in zip(x, y, strict=True):
        p = cal.predict([*row, 0, 0, 0, 0])
        assert (p > 0.5) == bool(label)
        assert 0.0 < p < 1.0


def test_fit_logistic_refuses_mismatched_shapes() -> None:
    with pytest.raises(UsageError):
        fit_logistic(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(UsageError):
        fit_logistic(np.zeros(3), np.zeros(3))


# ------------------------------------------------------------------------- choose_threshold


def test_choose_threshold_reaches_the_target_precision() -> None:
    p = [0.9, 0.8, 0.7, 0.6, 0.2]
    y = [1, 1, 0, 1, 0]
    threshold, precision, coverage = choose_threshold(p, y, 1.0)
    assert (threshold, precision) == (0.8, 1.0)
    assert coverage == pytest.approx(2 / 3)
    threshold, precision, coverage = choose_threshold(p, y, 0.75)
    assert (threshold, precision, coverage) == (0.6, 0.75, 1.0)  # the lowest that reaches it


def test_choose_threshold_returns_nothing_confident_when_impossible() -> None:
    assert choose_threshold([0.9, 0.5], [0, 0], 0.5) == (1.0, 0.0, 0.0)
    assert choose_threshold([0.9, 0.1], [0, 1], 0.99) == (1.0, 0.0, 0.0)
    # equal probabilities cannot be split: 1 right of 2 at 0.9 is not 0.99
    assert choose_threshold([0.9, 0.9], [1, 0], 0.99) == (1.0, 0.0, 0.0)
    assert choose_threshold([], [], 0.99) == (1.0, 0.0, 0.0)


# ------------------------------------------------------------------------- Calibration


def test_predict_is_a_probability_that_follows_the_weights() -> None:
    cal = calibration()
    low, high = cal.predict([0.0] * 6), cal.predict([1.0] * 6)
    assert 0.0 < low < high < 1.0
    assert 0.0 < cal.predict([1e9] * 6) <= 1.0  # clipped, never overflows
    with pytest.raises(ValueError):
        cal.predict([0.0] * 5)  # one value per feature


finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
six = st.tuples(finite, finite, finite, finite, finite, finite)


@settings(max_examples=100, deadline=None)
@given(weights=six, mean=six, scale=six, bias=finite, threshold=st.floats(0, 1),
       counts=st.tuples(st.integers(0, 10**6), st.integers(0, 10**6)))
def test_calibration_json_round_trip(weights: tuple[float, ...], mean: tuple[float, ...],
                                     scale: tuple[float, ...], bias: float, threshold: float,
                                     counts: tuple[int, int]) -> None:
    cal = calibration(weights=weights, mean=mean, scale=scale, bias=bias, threshold=threshold,
                      samples=counts[0], positives=counts[1])
    text = cal.to_json()
    assert Calibration.from_json(text) == cal
    assert Calibration.from_json(text).to_json() == text


@pytest.mark.parametrize("text", ["", "not json", "null", "[]", "{}", '"bm25"', "42",
                                  '{"features": []}'])
def test_from_json_refuses_garbage(text: str) -> None:
    with pytest.raises(UsageError):
        Calibration.from_json(text)


def test_from_json_refuses_a_calibration_of_other_features_or_fields() -> None:
    raw = json.loads(calibration().to_json())
    with pytest.raises(UsageError, match="features"):
        Calibration.from_json(json.dumps({**raw, "features": ["structure", "relevance"]}))
    with pytest.raises(UsageError):
        Calibration.from_json(json.dumps({**raw, "unknown": 1}))
    with pytest.raises(UsageError):
        Calibration.from_json(json.dumps({**raw, "weights": ["heavy"] * 6}))
    missing = dict(raw)
    del missing["threshold"]
    with pytest.raises(UsageError):
        Calibration.from_json(json.dumps(missing))


def test_calibration_key_and_features_of() -> None:
    assert calibration_key("bm25", "model-a") == "bm25"
    assert calibration_key("hybrid", "model-a") == "hybrid:model-a"
    assert calibration_key("vector", "model-a") == "vector:model-a"
    signals = {"structure": 0.9, "relevance": 0.5, "prior": 0.25}
    assert features_of(signals, margin=0.3, fit=1.0, cosine=None) == [0.9, 0.5, 0.25, 0.3,
                                                                       1.0, 0.0]
    assert features_of(signals, margin=0.3, fit=1.0, cosine=0.7)[5] == 0.7
    assert len(FEATURES) == 6


# ------------------------------------------------------------------------- bound_values_right


def two_step() -> Procedure:
    return Procedure.model_validate({
        "name": "cancel_twice",
        "params": [{"name": "order_id"}, {"name": "order_id_2"}, {"name": "reason"}],
        "steps": [
            {"id": "s1", "action": "cancel_pending_order",
             "args": {"order_id": {"$param": "order_id"}, "reason": {"$param": "reason"}}},
            {"id": "s2", "action": "cancel_pending_order",
             "args": {"order_id": {"$param": "order_id_2"}, "reason": {"$param": "reason"}}},
        ],
    })


def cancel_trace(*calls: tuple[str, str]) -> Trace:
    steps = [TraceStep(action="get_order_details", args={"order_id": calls[0][0]}, output="{}")]
    steps += [TraceStep(action="cancel_pending_order", args={"order_id": o, "reason": r},
                        output="ok") for o, r in calls]
    return Trace(task="t", steps=steps, outcome="success")


def test_bound_values_right_compares_each_use_with_the_aligned_call() -> None:
    proc = two_step()
    trace = cancel_trace(("#W1", "no longer needed"), ("#W2", "no longer needed"))
    right = {"order_id": "#W1", "order_id_2": "#W2", "reason": "no longer needed"}
    assert bound_values_right(proc, right, trace)
    assert bound_values_right(proc, {}, trace)  # nothing bound, nothing wrong
    assert bound_values_right(proc, {"order_id_2": "#W2"}, trace)
    # the k-th cancel step aligns with the k-th recorded cancel
    assert not bound_values_right(proc, {**right, "order_id": "#W2", "order_id_2": "#W1"},
                                  trace)
    # a value used by two steps must be right at both
    mixed = cancel_trace(("#W1", "no longer needed"), ("#W2", "ordered by mistake"))
    assert not bound_values_right(proc, right, mixed)
    # the recorded trace has no second cancel to compare with
    assert not bound_values_right(proc, right, cancel_trace(("#W1", "no longer needed")))


# ------------------------------------------------------------------------- Memory.calibrate


@pytest.fixture(scope="module")
def sample() -> list[Trace]:
    ref = resources.files("procmem").joinpath("data", "tau_retail", "sample.jsonl")
    with resources.as_file(ref) as path:
        traces, problems = read_traces(path)
    assert not problems
    return traces


@pytest.fixture(scope="module")
def calibrated(sample: list[Trace]) -> Iterator[tuple[Memory, Any]]:
    with Memory(":memory:", embedder=None) as memory:
        memory.learn(sample)
        before = memory.search(sample[0].task, limit=3)
        assert before and all(h.confidence is None for h in before)  # no calibration yet
        report = memory.calibrate(folds=5)
        yield memory, report


def test_calibrate_saves_a_bm25_calibration(calibrated: tuple[Memory, Any],
                                            sample: list[Trace]) -> None:
    memory, report = calibrated
    assert report.traces == len(sample) and report.folds == 5
    assert set(report.calibrations) == {"bm25"} and report.skipped == {}
    cal = report.calibrations["bm25"]
    assert Calibration.from_json(memory.store.get_calibration("bm25") or "") == cal
    assert memory.store.get_calibration("hybrid:anything") is None
    assert 0 < cal.positives < cal.samples <= len(sample)
    assert cal.target_precision == 0.99 and 0.0 <= cal.threshold <= 1.0
    if cal.cv_coverage > 0:
        assert cal.cv_precision >= cal.target_precision


def test_after_calibration_hits_carry_a_confidence_that_decides_confident(
        calibrated: tuple[Memory, Any], sample: list[Trace]) -> None:
    memory, report = calibrated
    threshold = report.calibrations["bm25"].threshold
    tasks = [t.task for t in sample[::8]] + [
        "Return order #W2378156 because no longer needed.",
        "Cancel order #W2378156 because no longer needed.",
        "Exchange the keyboard in order #W2378156 for a quieter one.",
    ]
    seen_confident = seen_conflict = False
    for task in tasks:
        for hit in memory.search(task, limit=3):
            assert hit.confidence is not None and 0.0 <= hit.confidence <= 1.0
            conflict = bool(hit.explanation.get("verb_conflict"))
            seen_conflict |= conflict
            if abs(hit.confidence - threshold) < 1e-4:
                continue  # confidence is rounded to 4 places
            assert hit.confident == (hit.confidence >= threshold and not conflict)
            seen_confident |= hit.confident
    assert seen_confident and seen_conflict


def test_calibrate_on_too_few_traces_keeps_no_calibration(sample: list[Trace]) -> None:
    with Memory(":memory:", embedder=None) as memory:
        memory.learn(sample[:12])
        report = memory.calibrate(folds=3)
        assert report.calibrations == {}
        assert "needs" in report.skipped["bm25"]
        assert memory.store.get_calibration("bm25") is None
        hits = memory.search(sample[0].task)
        assert hits and all(h.confidence is None for h in hits)  # the fixed rule stays


@pytest.mark.parametrize("kwargs", [{"folds": 1}, {"folds": 21}, {"target_precision": 0.4},
                                    {"target_precision": 1.01},
                                    {"retrievers": ["hybrid"]}])
def test_calibrate_refuses_bad_arguments(kwargs: dict[str, Any]) -> None:
    with Memory(":memory:", embedder=None) as memory, pytest.raises(UsageError):
        memory.calibrate(**kwargs)
