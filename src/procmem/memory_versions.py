"""Procedure versions as :class:`procmem.Memory` stores and reads them.

A small service under the facade (which delegates to it): the checks a
hand-written procedure passes before it is stored, numbering by content, and
statistics derived from the stored executions when a version is read.

Invariants:
    * Versions are immutable and numbered 1, 2, ... per name; a procedure equal
      in content to the current version (ignoring ``version``, ``status`` and
      the lineage's ``parent_version`` and ``reason``) is never stored again.
    * Statistics (``execution_count``, ``success_rate``, ``last_executed_at``,
      ``avg_duration_ms``) are derived on read from the version's top-level
      executions; they are never stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .checks import check_templates
from .errors import InvalidProcedure, NotFound, UsageError
from .extract import check_extractor
from .model import Procedure
from .paging import PAGE, read_all
from .store.base import Store

__all__ = ["PAGE", "check_procedure", "paged", "put_version", "same_content", "versions",
           "with_stats"]

_STATS_RUNS = 10_000  # executions of a name read to derive a version's statistics

T = TypeVar("T")


def paged(fetch: Callable[[int, int], list[T]]) -> list[T]:
    """Everything ``fetch(limit, offset)`` returns, :data:`PAGE` rows at a time
    (:func:`procmem.paging.read_all`)."""
    return read_all(fetch, page=PAGE)


def versions(store: Store, name: str) -> list[Procedure]:
    """Every stored version of ``name``, oldest first; empty when there is none."""
    try:
        return store.list_versions(name)
    except NotFound:
        return []


def same_content(a: Procedure, b: Procedure) -> bool:
    """Whether two procedures differ only in version, status and lineage bookkeeping."""
    ca, cb = a.content(), b.content()
    for c in (ca, cb):
        c.pop("version", None)
        c.pop("status", None)
        c.get("lineage", {}).pop("parent_version", None)
        c.get("lineage", {}).pop("reason", None)
    return ca == cb


def check_procedure(procedure: Procedure) -> None:
    """Check a procedure written by hand before it is stored.

    Raises:
        InvalidProcedure: A template reference does not validate, or a param's
            extractor is not a valid regex (the message names the param).
    """
    try:
        check_templates(procedure)
    except UsageError as err:
        raise InvalidProcedure(procedure.name, str(err)) from err
    for p in procedure.params:
        if p.extractor is not None:
            try:
                check_extractor(p.extractor)
            except UsageError as err:
                raise InvalidProcedure(procedure.name, f"param {p.name!r}: {err}") from err


def put_version(store: Store, procedure: Procedure) -> Procedure:
    """Store ``procedure`` as the next version of its name, unless the current one equals it.

    Returns:
        The current version when equal in content (nothing is stored), else the
        procedure as stored, numbered one past the last version (1 for a new name).
    """
    known = versions(store, procedure.name)
    if known and same_content(known[-1], procedure):
        return known[-1]
    stored = procedure.model_copy(update={"version": known[-1].version + 1 if known else 1})
    store.put_procedure(stored)
    return stored


def with_stats(store: Store, proc: Procedure) -> Procedure:
    """``proc`` with statistics derived from its version's top-level executions.

    Returns:
        ``proc`` itself when it never ran; else a copy with ``execution_count``
        (runs, finished or not), ``last_executed_at`` (UTC), ``success_rate``
        (0-1, over finished runs) and ``avg_duration_ms`` (finished runs); the
        last two are ``None`` while no run has finished.
    """
    runs = [e for e in store.list_executions(procedure=proc.name, limit=_STATS_RUNS)
            if e.version == proc.version and e.parent_id is None]
    finished = [e for e in runs if e.done]
    if not runs:
        return proc
    ok = sum(1 for e in finished if e.status == "succeeded")
    return proc.model_copy(update={
        "execution_count": len(runs),
        "last_executed_at": max(e.started_at for e in runs),
        "success_rate": ok / len(finished) if finished else None,
        "avg_duration_ms": (sum(e.duration_ms for e in finished) / len(finished)
                            if finished else None),
    })
