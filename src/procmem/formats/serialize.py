"""One JSON shape per record, shared by every surface (CLI ``--json``, REST, MCP, the UI).

The shapes, documented for users in ``docs/shapes.md``:

* **hit** (:func:`hit_record`): a search hit, flat: the procedure's identity,
  the scores, and each part of the explanation as its own key;
* **change** (:func:`change_record`): a version whose status an operation moved
  (promoted, demoted, replaced ...); **report** (:func:`report_record`): the
  evidence stored and the changes it caused;
* **error** (:func:`error_record`, :func:`error_line`, :func:`error_of`):
  ``{"error": {"code", "message", "details"?}}`` and its one-line form
  ``error[<code>]: <message>``;
* **page** (:func:`page_record`): ``{"items", "next_offset"}``
  (:class:`procmem.formats.paging.Page`);
* **calibration** (:func:`calibration_record`).

Invariants: the functions here are pure and return plain JSON values (dicts, lists,
strings, numbers, booleans, ``None``); a surface may add its own keys (the MCP tool
name, a plan, REST's full procedure) but never renames or drops these. Messages
are one line (runs of whitespace made one space).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..core.errors import ProcmemError
from ..core.model import Hit
from .validation import details as validation_details
from .validation import validation_message

if TYPE_CHECKING:
    from ..learning.changes import Change, ReportResult
    from ..services.calibrate import CalibrationReport
    from .paging import Page

__all__ = ["calibration_record", "change_record", "error_line", "error_of", "error_record",
           "hit_record", "page_record", "report_record"]

def hit_record(rank: int, hit: Hit) -> dict[str, Any]:
    """A search hit as JSON.

    Args:
        rank: 1-based position in the answer.
        hit: The hit.

    Returns:
        ``{"rank", "name", "version", "namespace", "status", "tags", "description",
        "score", "ranks", "reliability", "confident", "confidence", "verb_conflict",
        "signals", "bound", "anchored", "matched_terms", "bm25", "cosine",
        "nearest_demonstration", "first_stage_kept", "budget_exceeded", "rerank",
        "features", "actions", "params"}``: ``confidence`` is the calibrated
        probability (0-1) that the hit and its bound values are right, ``None``
        without a calibration (``procmem calibrate``); ``verb_conflict`` is true when
        the task names an action verb this procedure has none of; ``bound`` holds the
        param values read from the task and ``anchored`` the params among them found
        next to their cue word; ``bm25`` and ``cosine`` are the first-stage scores
        (``None`` when that ranker did not see the hit); ``budget_exceeded`` is true
        when the extraction time budget ran out (the hit is then never confident);
        ``rerank`` is ``{"model", "position"}`` when a reranker saw it; ``features``
        the calibration's inputs; ``params`` lists ``{"name", "required"}``.
    """
    proc, why = hit.procedure, hit.explanation
    return {"rank": rank, "name": proc.name, "version": proc.version,
            "namespace": proc.namespace, "status": proc.status, "tags": list(proc.tags),
            "description": proc.description, "score": hit.score, "ranks": hit.ranks,
            "reliability": hit.reliability, "confident": hit.confident,
            "confidence": hit.confidence,
            "verb_conflict": bool(why.get("verb_conflict", False)),
            "signals": why.get("signals", {}),
            "bound": why.get("bound", {}),
            "anchored": why.get("anchored", []),
            "matched_terms": why.get("matched_terms", []),
            "bm25": why.get("bm25"),
            "cosine": why.get("cosine"),
            "nearest_demonstration": why.get("nearest_demonstration"),
            "first_stage_kept": bool(why.get("first_stage_kept", False)),
            "budget_exceeded": bool(why.get("budget_exceeded", False)),
            "rerank": why.get("rerank"),
            "features": why.get("features", []),
            "actions": list(proc.signature()),
            "params": [{"name": p.name, "required": p.required} for p in proc.params]}


def change_record(change: Change) -> dict[str, Any]:
    """A status change as JSON: ``{"name", "version", "change", "from", "to", "reason"}``.

    ``change`` is ``promoted``, ``demoted``, ``replaced``, ``deprecated``,
    ``created`` or ``restored`` (:data:`procmem.learning.changes.ChangeKind`);
    ``from`` / ``to`` are statuses (``from`` is ``None`` for a new version).
    """
    return {"name": change.name, "version": change.version, "change": change.change,
            "from": change.from_status, "to": change.to_status, "reason": change.reason}


def report_record(result: ReportResult) -> dict[str, Any]:
    """What :meth:`procmem.Memory.report` did, as JSON: ``{"evidence", "changes"}``:
    the stored :class:`~procmem.core.model.Evidence` (``execution_id``, ``reward``,
    ``source``, ``note``, ``created_at``) and a :func:`change_record` per change."""
    return {"evidence": result.evidence.model_dump(mode="json"),
            "changes": [change_record(c) for c in result.changes]}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def error_record(code: str, message: str,
                 details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """An error as JSON: ``{"error": {"code", "message"}}``, plus ``details`` (a list
    of ``{"loc", "msg", "type"}``, for validation errors) when given.

    ``code`` is a stable procmem code (:mod:`procmem.core.errors`); ``message`` one line.
    """
    body: dict[str, Any] = {"code": code, "message": _one_line(message)}
    if details is not None:
        body["details"] = details
    return {"error": body}


def error_line(code: str, message: str) -> str:
    """An error as one line of text: ``error[<code>]: <message>`` (the CLI's stderr,
    the text content of an MCP error result)."""
    return f"error[{code}]: {_one_line(message)}"


def error_of(err: BaseException) -> tuple[str, str, list[dict[str, Any]] | None]:
    """The ``(code, message, details)`` of an exception, as every surface reports it.

    A :class:`~procmem.core.errors.ProcmemError` gives its code and message; a pydantic
    ``ValidationError`` is ``usage`` with its first problem as the message
    (:func:`procmem.formats.validation.validation_message`) and every problem in
    ``details``; anything else is ``internal`` (``"<type>: <message>"``).
    """
    if isinstance(err, ProcmemError):
        return err.code, _one_line(str(err)), None
    if isinstance(err, ValidationError):
        return ("usage", _one_line(validation_message(err, f"invalid {err.title}")),
                validation_details(err))
    return "internal", _one_line(f"{type(err).__name__}: {err}"), None


def page_record(page: Page[Any], item: Any = None) -> dict[str, Any]:
    """A page as JSON: ``{"items", "next_offset"}``; ``next_offset`` is the offset
    to ask for next, ``None`` on the last page. ``item`` turns each item into
    JSON (default: the item as it is, or its ``model_dump(mode="json")``)."""
    def plain(x: Any) -> Any:
        if item is not None:
            return item(x)
        return x.model_dump(mode="json") if hasattr(x, "model_dump") else x
    return {"items": [plain(x) for x in page.items], "next_offset": page.next_offset}


def calibration_record(report: CalibrationReport) -> dict[str, Any]:
    """A calibration report as JSON: ``{"traces", "folds", "calibrations": {retriever:
    {threshold, target_precision, samples, positives, cv_precision, cv_coverage,
    weights, bias, mean, scale, features, ...}}, "skipped": {retriever: reason}}``."""
    return {"traces": report.traces, "folds": report.folds,
            "calibrations": {r: asdict(c) for r, c in report.calibrations.items()},
            "skipped": dict(report.skipped)}
