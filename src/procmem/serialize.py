"""One JSON shape per record, shared by every surface (CLI ``--json``, MCP, the UI).

Invariants: the functions here are pure and return plain JSON values (dicts, lists,
strings, numbers, booleans, ``None``); a surface may add its own keys (the MCP tool
name, a plan) but never renames or drops these.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from .model import Hit

if TYPE_CHECKING:
    from .memory_calibrate import CalibrationReport

__all__ = ["calibration_record", "hit_record"]


def hit_record(rank: int, hit: Hit) -> dict[str, Any]:
    """A search hit as JSON.

    Args:
        rank: 1-based position in the answer.
        hit: The hit.

    Returns:
        ``{"rank", "name", "version", "description", "score", "ranks", "reliability",
        "confident", "confidence", "verb_conflict", "signals", "bound",
        "matched_terms", "cosine", "nearest_demonstration", "rerank", "actions",
        "params"}``: ``confidence`` is the calibrated probability (0-1) that the hit
        and its bound values are right, ``None`` without a calibration
        (``procmem calibrate``); ``verb_conflict`` is true when the task names an
        action verb this procedure has none of.
    """
    proc = hit.procedure
    return {"rank": rank, "name": proc.name, "version": proc.version,
            "description": proc.description, "score": hit.score, "ranks": hit.ranks,
            "reliability": hit.reliability, "confident": hit.confident,
            "confidence": hit.confidence,
            "verb_conflict": bool(hit.explanation.get("verb_conflict", False)),
            "signals": hit.explanation.get("signals", {}),
            "bound": hit.explanation.get("bound", {}),
            "matched_terms": hit.explanation.get("matched_terms", []),
            "cosine": hit.explanation.get("cosine"),
            "nearest_demonstration": hit.explanation.get("nearest_demonstration"),
            "rerank": hit.explanation.get("rerank"),
            "actions": list(proc.signature()),
            "params": [{"name": p.name, "required": p.required} for p in proc.params]}


def calibration_record(report: CalibrationReport) -> dict[str, Any]:
    """A calibration report as JSON: ``{"traces", "folds", "calibrations": {retriever:
    {threshold, target_precision, samples, positives, cv_precision, cv_coverage,
    weights, bias, mean, scale, features, ...}}, "skipped": {retriever: reason}}``."""
    return {"traces": report.traces, "folds": report.folds,
            "calibrations": {r: asdict(c) for r, c in report.calibrations.items()},
            "skipped": dict(report.skipped)}
