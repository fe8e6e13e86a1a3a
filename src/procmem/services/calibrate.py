"""Calibrating a memory's search confidence on cross-validation folds of its own traces.

A service of :class:`procmem.Memory` (``Memory.calibrate`` delegates to
:class:`Calibrator`); the model and the fitting are in :mod:`procmem.search.calibration`.

Folds are assigned by a hash of each trace's id (SHA-256), so the same traces
always give the same folds, whatever their order. Each fold's memory is a new
in-memory one that shares the caller's embedder; nothing is written to the caller's
store but the fitted calibrations.

Invariants: calibration never changes a procedure, a trace or an execution; a
retriever whose cross-validation gives too few hits (:data:`~search.calibration.MIN_SAMPLES`)
or no right or no wrong hit keeps no calibration (the fixed rule stays in force).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, cast

import numpy as np

from ..core.errors import UsageError
from ..core.model import Trace
from ..induction.induce import group_key
from ..search.calibration import (
    MIN_EACH,
    MIN_SAMPLES,
    TARGET_PRECISION,
    Calibration,
    bound_values_right,
    calibration_key,
    choose_threshold,
    fit_logistic,
)
from ..search.embed import Embedder
from ..search.retrieval import Retriever
from ..store.base import Store

__all__ = ["CalibrationReport", "Calibrator", "Source", "calibrate", "cross_validate"]

Progress = Callable[[int, int], None]


@dataclass
class CalibrationReport:
    """What :func:`calibrate` did.

    Attributes:
        traces: Stored traces that could be learned from (cross-validated).
        folds: K.
        calibrations: Retriever -> the fitted calibration (saved in the store).
        skipped: Retriever -> why no calibration was fitted.
    """

    traces: int
    folds: int
    calibrations: dict[str, Calibration] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


class Source(Protocol):
    """Where calibration reads traces and writes calibrations, and its embedder
    (a :class:`~procmem.services.search.Searcher` or a :class:`~procmem.Memory`)."""

    @property
    def store(self) -> Store: ...

    @property
    def embedder(self) -> Embedder | None: ...


def _fold(trace_id: str, folds: int) -> int:
    return int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:4], "big") % folds


def cross_validate(memory: Source, traces: Sequence[Trace], *, folds: int,
                   retrievers: Sequence[str], progress: Progress | None = None
                   ) -> dict[str, tuple[list[list[float]], list[int]]]:
    """Features and right/wrong labels of each held-out trace's top hit, per retriever.

    Args:
        memory: Gives the embedder (shared by every fold's memory).
        traces: Learnable traces (see :func:`procmem.induction.induce.group_key`).
        folds: K, 2-20.
        retrievers: Which first stages to search with.
        progress: ``progress(done, total)`` per held-out trace.

    Returns:
        ``{retriever: (features rows, labels)}``; a held-out trace whose search
        returns no hit adds nothing.
    """
    from ..memory import Memory  # a fold's memory is another Memory: import at call time

    out: dict[str, tuple[list[list[float]], list[int]]] = {r: ([], []) for r in retrievers}
    by_fold: dict[int, list[Trace]] = {}
    for t in traces:
        by_fold.setdefault(_fold(t.id, folds), []).append(t)
    done = 0
    embedder = memory.embedder
    for k in range(folds):
        held = by_fold.get(k, [])
        train = [t for j, ts in by_fold.items() if j != k for t in ts]
        if not held or not train:
            done += len(held)
            continue
        with Memory(":memory:", embedder=embedder, save_index=False) as fold:
            fold.learn(train)
            for t in held:
                for r in retrievers:
                    hits = fold.search(t.task, limit=2, retriever=cast(Retriever, r))
                    if not hits:
                        continue
                    top = hits[0]
                    right = (top.procedure.matches(t.signature())
                             and bound_values_right(top.procedure, top.explanation["bound"], t))
                    out[r][0].append(list(top.explanation["features"]))
                    out[r][1].append(int(right))
                done += 1
                if progress:
                    progress(done, len(traces))
    return out


def calibrate(memory: Source, *, folds: int = 5, target_precision: float = TARGET_PRECISION,
              retrievers: Sequence[str] | None = None,
              progress: Progress | None = None) -> CalibrationReport:
    """Fit and save the confidence calibration of every retriever the memory can use.

    Args:
        memory: The memory whose stored traces are cross-validated and whose
            store receives the calibrations.
        folds: K of the cross-validation, 2-20.
        target_precision: The share of confident hits that must be right on the
            cross-validated hits, 0.5-1.
        retrievers: Which first stages to calibrate (default: ``bm25``, and
            ``hybrid`` when the memory has an embedder).
        progress: ``progress(done, total)`` per held-out trace.

    Returns:
        A :class:`CalibrationReport`.

    Raises:
        UsageError: ``folds`` or ``target_precision`` is out of range.
    """
    if not 2 <= folds <= 20:
        raise UsageError(f"folds must be 2-20, got {folds}")
    if not 0.5 <= target_precision <= 1:
        raise UsageError(f"target_precision must be 0.5-1, got {target_precision}")
    traces = [t for t in memory.store.list_traces(limit=10_000_000) if group_key(t) is not None]
    embedder = memory.embedder
    if retrievers is None:
        retrievers = ["bm25"] if embedder is None else ["bm25", "hybrid"]
    elif embedder is None and any(r != "bm25" for r in retrievers):
        raise UsageError("only the bm25 retriever can be calibrated without an embedder")
    report = CalibrationReport(traces=len(traces), folds=folds)
    data = cross_validate(memory, traces, folds=folds, retrievers=retrievers, progress=progress)
    for r, (rows, labels) in data.items():
        positives = sum(labels)
        if len(labels) < MIN_SAMPLES or min(positives, len(labels) - positives) < MIN_EACH:
            report.skipped[r] = (f"{len(labels)} cross-validated hits, {positives} right: "
                                 f"needs {MIN_SAMPLES}+ with {MIN_EACH}+ right and wrong")
            continue
        x, y = np.array(rows, dtype=float), np.array(labels, dtype=float)
        weights, bias, mean, scale = fit_logistic(x, y)
        cal = Calibration(
            retriever=r, weights=tuple(float(w) for w in weights), bias=bias,
            mean=tuple(float(m) for m in mean), scale=tuple(float(s) for s in scale),
            threshold=1.0, target_precision=target_precision, samples=len(labels),
            positives=positives, cv_precision=0.0, cv_coverage=0.0, folds=folds,
            traces=len(traces))
        probs = [cal.predict(row) for row in rows]
        threshold, precision, coverage = choose_threshold(probs, labels, target_precision)
        cal = replace(cal, threshold=threshold, cv_precision=round(precision, 4),
                      cv_coverage=round(coverage, 4))
        key = calibration_key(r, embedder.model_id if embedder is not None else None)
        memory.store.put_calibration(key, cal.to_json())
        report.calibrations[r] = cal
    return report


class Calibrator:
    """Calibrates the search confidence of one store's memory.

    Args:
        source: Gives the store (traces in, calibrations out) and the embedder.
    """

    def __init__(self, source: Source) -> None:
        self.source = source

    def calibrate(self, *, folds: int = 5, target_precision: float = TARGET_PRECISION,
                  retrievers: Sequence[str] | None = None,
                  progress: Progress | None = None) -> CalibrationReport:
        """Calibrate search confidence on cross-validation folds of the stored traces.

        For each of ``folds`` folds, learn from the other folds in a new
        in-memory memory, search every held-out task, and record whether the top
        hit and every value it bound were right; fit a logistic model of that
        on the hit's features and choose the threshold at which the
        cross-validated confident hits are right ``target_precision`` of the
        time (see :mod:`procmem.search.calibration`). The calibrations are saved in the
        store: from then on every hit has a ``confidence`` probability and
        ``confident`` means it clears the threshold.

        Args:
            folds: K, 2-20.
            target_precision: 0.5-1 (default 0.99).
            retrievers: First stages to calibrate (default ``bm25``, and
                ``hybrid`` with an embedder).
            progress: ``progress(done, total)`` per held-out trace.

        Returns:
            A :class:`CalibrationReport` (a retriever
            with too few cross-validated hits is listed in ``skipped``).

        Raises:
            UsageError: ``folds`` or ``target_precision`` is out of range, or a
                retriever other than ``bm25`` without an embedder.
        """
        return calibrate(self.source, folds=folds, target_precision=target_precision,
                         retrievers=retrievers, progress=progress)
