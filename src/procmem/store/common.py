"""Helpers every backend shares: identity of immutable records, timestamps, argument checks.

Invariants: pure functions; a backend that uses them gives the same answers
for the same records (the contract suite in ``tests/test_store.py`` checks it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from ..core.errors import UsageError
from ..core.model import Procedure, Trace
from ..core.procstats import STATS_FIELDS

__all__ = ["CURRENT_ORDER", "INDEX_LOG_KEEP", "SEPARATORS", "STATUSES", "check_alias",
           "check_page", "check_status", "index_text", "procedure_json", "timestamp",
           "trace_content", "version_content"]

STATUSES = ("candidate", "active", "deprecated")
INDEX_LOG_KEEP = 100_000
"""Revisions of the search-index change log a store keeps (both backends); an index
older than that is rebuilt whole."""
CURRENT_ORDER = "(status = 'active') DESC, (status = 'deprecated') DESC, version DESC"
"""SQL ``ORDER BY`` of a name's versions whose first row is its current version: the
highest ``active``, else the highest ``deprecated``, else the highest ``candidate``."""


def timestamp(moment: datetime) -> str:
    """Fixed-width UTC text (``YYYY-MM-DDTHH:MM:SS.ffffff``): text order is time order.

    Naive datetimes are taken as UTC.
    """
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


def trace_content(trace: Trace) -> dict[str, Any]:
    """What makes two traces with one id the same trace (``created_at`` aside)."""
    return trace.model_dump(mode="json", by_alias=True, exclude={"created_at"})


def version_content(procedure: Procedure) -> dict[str, Any]:
    """A version's immutable content: :meth:`Procedure.content` without ``status``."""
    content = procedure.content()
    content.pop("status", None)
    return content


def procedure_json(procedure: Procedure) -> str:
    """The stored record of a version: its JSON without the run statistics (never stored)."""
    return procedure.model_dump_json(by_alias=True, exclude=set(STATS_FIELDS))


def check_page(limit: int, offset: int = 0) -> None:
    if limit < 0 or offset < 0:
        raise UsageError(f"limit and offset must be >= 0 (got limit={limit}, offset={offset})")


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)} (got {status!r})")


def check_alias(old: str, new: str) -> None:
    """``UsageError`` unless ``old`` and ``new`` are two non-empty, different names."""
    if not isinstance(old, str) or not isinstance(new, str) or not old or not new:
        raise UsageError(f"an alias needs two non-empty names, got {old!r} -> {new!r}")
    if old == new:
        raise UsageError(f"an alias cannot point at itself: {old!r}")


SEPARATORS = re.compile(r"[_.\-]+")
"""What separates the words of a procedure name (``_``, ``.``, ``-``)."""


def index_text(procedure: Procedure, tasks: list[str]) -> str:
    """The full-text document of one procedure version, shared by every backend.

    Pure: the same procedure and tasks always give the same text, so keyword
    search behaves the same on SQLite and PostgreSQL.

    Args:
        procedure: The version to index (normally the name's current version).
        tasks: Task texts of its demonstration traces (``procedure.lineage.traces``
            that the store holds), in lineage order.

    Returns:
        Newline-separated text: the name with ``_``, ``-`` and ``.`` turned into
        spaces, the description, the tags, each param's name (as is and split on
        ``_``) and description, each step's action (as is and split on ``_``),
        then the tasks. Empty parts are left out.
    """
    parts: list[str] = [SEPARATORS.sub(" ", procedure.name).strip(), procedure.description]
    parts.extend(procedure.tags)
    for param in procedure.params:
        parts.append(param.name)
        if "_" in param.name:
            parts.append(param.name.replace("_", " ").strip())
        parts.append(param.description)
    for step in procedure.steps:
        parts.append(step.action)
        if "_" in step.action:
            parts.append(step.action.replace("_", " ").strip())
    parts.extend(tasks)
    return "\n".join(p for p in parts if p and p.strip())
