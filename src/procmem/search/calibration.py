"""Calibrated confidence: the probability that a hit and every value it bound are right.

A search hit carries ranking signals (:mod:`procmem.search.retrieval`). Calibration maps
them to a probability, so that ``confident`` means "the top hit is the right
procedure and every value it bound from the task is the value a correct agent
would send", with a measured probability behind it.

Method (Platt scaling generalized to several features, Platt 1999, "Probabilistic
outputs for support vector machines"; cf. Niculescu-Mizil & Caruana, ICML 2005,
"Predicting good probabilities with supervised learning"):

1. **Cross-validation on the store's own traces** (:func:`procmem.services.calibrate.calibrate`):
   split them into K folds by a hash of their ids; for each fold learn from the
   others, search every held-out task, and label its top hit *right* when its
   action sequence equals the held-out trace's and each bound value equals the
   value the trace sent at that argument (:func:`bound_values_right`).
2. **Logistic regression** on the hit's features (:data:`FEATURES`),
   standardized, with an L2 penalty, fitted by Newton's method (IRLS).
3. **Threshold**: the smallest predicted probability at which the cross-validated
   predictions at or above it are right at least ``target_precision`` of the time
   (default :data:`TARGET_PRECISION`, 0.99); a hit is ``confident`` when its probability clears it.

No development or test set is used: only the traces the store already holds.

Invariants: :meth:`Calibration.predict` is a pure function of the features and is in
(0, 1); a calibration round-trips through :meth:`Calibration.to_json` /
:meth:`Calibration.from_json` unchanged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..core.errors import UsageError
from ..core.model import Procedure, Trace
from ..learning.recorded import bound_mismatches

__all__ = ["FEATURES", "TARGET_PRECISION", "Calibration", "bound_values_right", "calibration_key",
           "choose_threshold", "features_of", "fit_logistic"]

FEATURES: tuple[str, ...] = ("structure", "relevance", "prior", "margin", "fit", "cosine")
"""What a hit's probability is computed from: the ranking signals (0-1), the score
margin over the best other hit, the share of params bound, and the cosine to the
nearest demonstration (0 when the hit was not a vector candidate)."""

TARGET_PRECISION = 0.99
"""The default share of cross-validated confident hits that must be right. A pause
costs a question; a wrong call costs a refund sent to the wrong order: measured on
the 400/100 τ-retail split, 0.98 lets 4 wrong hits of 93 through as confident, 0.99
two (both trace errors: the demonstrator left out a request the task makes), at a
coverage of 0.89 (``procmem eval --holdout 100``)."""

MIN_SAMPLES = 30
"""Cross-validated hits needed (with at least :data:`MIN_EACH` right and wrong ones)
before a calibration is fitted; below that the fixed rule of
:func:`procmem.search.retrieval.is_confident` stays in force."""
MIN_EACH = 3


@dataclass(frozen=True)
class Calibration:
    """A fitted map from hit features to the probability that the hit is right.

    Attributes:
        retriever: The first stage it was fitted for (``bm25``, ``hybrid``, ``vector``).
        weights / bias: Logistic regression coefficients over standardized features.
        mean / scale: Standardization of each feature in :data:`FEATURES` order.
        threshold: Probability from which a hit is ``confident``.
        target_precision: The precision the threshold was chosen for (0-1).
        samples / positives: Cross-validated hits it was fitted on, and how many were right.
        cv_precision / cv_coverage: Of the cross-validated hits at or above the
            threshold, the share right; and the share of right hits that clear it.
        folds: K of the cross-validation.
        traces: How many stored traces the cross-validation used.
    """

    retriever: str
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float
    target_precision: float
    samples: int
    positives: int
    cv_precision: float
    cv_coverage: float
    folds: int
    traces: int
    features: tuple[str, ...] = field(default=FEATURES)

    def predict(self, x: Sequence[float]) -> float:
        """The probability that a hit with features ``x`` (in :data:`FEATURES` order) is right."""
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in
                            zip(self.weights, x, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_json(self) -> str:
        """The calibration as JSON text (for the store)."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Read :meth:`to_json` output.

        Raises:
            UsageError: The text is not a calibration of these features.
        """
        try:
            raw = json.loads(text)
            raw["features"] = tuple(raw["features"])
            for key in ("weights", "mean", "scale"):
                raw[key] = tuple(float(v) for v in raw[key])
            cal = cls(**raw)
        except (ValueError, TypeError, KeyError) as err:
            raise UsageError(f"stored calibration is unreadable: {err}") from err
        if cal.features != FEATURES:
            raise UsageError(f"stored calibration has features {cal.features}, "
                             f"this version uses {FEATURES}: run `procmem calibrate`")
        return cal


def calibration_key(retriever: str, model_id: str | None) -> str:
    """The store key of a retriever's calibration: ``bm25``, or ``hybrid:<model id>``."""
    return "bm25" if retriever == "bm25" or model_id is None else f"{retriever}:{model_id}"


def features_of(signals: Mapping[str, float], *, margin: float, fit: float,
                cosine: float | None) -> list[float]:
    """A hit's feature vector, in :data:`FEATURES` order."""
    return [float(signals.get("structure", 0.0)), float(signals.get("relevance", 0.0)),
            float(signals.get("prior", 0.0)), float(margin), float(fit),
            float(cosine) if cosine is not None else 0.0]


def fit_logistic(x: np.ndarray, y: np.ndarray, *, l2: float = 1.0, iterations: int = 50
                 ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularized logistic regression by Newton's method (IRLS).

    Args:
        x: Features, shape ``(n, d)``.
        y: Labels 0/1, shape ``(n,)``.
        l2: Penalty on the weights (not the bias), in units of the log-likelihood.
        iterations: Newton steps at most (it stops when the step is below 1e-8).

    Returns:
        ``(weights (d,), bias, mean (d,), scale (d,))``: the model over features
        standardized by ``mean`` and ``scale``.

    Raises:
        UsageError: ``x`` and ``y`` do not have the same number of rows.
    """
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise UsageError(f"fit_logistic needs x (n, d) and y (n,), got {x.shape} and {y.shape}")
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([np.ones((x.shape[0], 1)), (x - mean) / scale])
    beta = np.zeros(z.shape[1])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(z @ beta, -60, 60)))
        grad = z.T @ (p - y) + penalty * beta
        hess = (z * (p * (1 - p))[:, None]).T @ z + np.diag(penalty) + 1e-9 * np.eye(z.shape[1])
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return beta[1:], float(beta[0]), mean, scale


def choose_threshold(p: Sequence[float], y: Sequence[int], target_precision: float
                     ) -> tuple[float, float, float]:
    """The lowest threshold whose predictions at or above it are right ``target_precision``
    of the time.

    Args:
        p: Predicted probabilities.
        y: Whether each prediction's hit was right (0/1).
        target_precision: 0-1.

    Returns:
        ``(threshold, precision, coverage)``: precision of the hits at or above
        the threshold, and the share of right hits they include. When no
        threshold reaches the target, ``(1.0, 0.0, 0.0)``: nothing is confident.
    """
    order = sorted(zip(p, y, strict=True), key=lambda t: -t[0])
    positives = sum(y) or 1
    best = (1.0, 0.0, 0.0)
    right = 0
    for k, (prob, label) in enumerate(order, 1):
        right += label
        nxt = order[k][0] if k < len(order) else -1.0
        if nxt == prob:
            continue  # a threshold cannot split equal probabilities
        if right / k >= target_precision:
            best = (prob, right / k, right / positives)
    return best


def bound_values_right(procedure: Procedure, bound: Mapping[str, Any], trace: Trace) -> bool:
    """Whether every bound param equals what ``trace`` sent where the procedure uses it.

    Args:
        procedure: The hit's procedure (its action sequence should equal the trace's).
        bound: Param name -> value bound from the task.
        trace: The recorded trace of the same task.

    Returns:
        False as soon as one use of a bound param differs from (or is missing in)
        the aligned recorded call.
    """
    return not bound_mismatches(procedure, bound, trace)
