"""Procedure versions as :class:`procmem.Memory` stores and reads them.

A small service under the facade (which delegates to it): the checks a
hand-written procedure passes before it is stored, numbering by content, and
statistics derived from the stored executions when a version is read.

Invariants:
    * Versions are immutable and numbered 1, 2, ... per name; a procedure equal
      in content to the current version (ignoring ``version``, ``status`` and
      the lineage's ``parent_version`` and ``reason``) is never stored again.
    * Statistics (``execution_count``, ``success_rate``, ``last_executed_at``,
      ``avg_duration_ms``) are attached on read from the store's counters of the
      version's top-level executions (one call per batch); they are never
      stored, and a new version (an edit, a rollback) starts with no runs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from ..core.checks import check_templates
from ..core.errors import InvalidProcedure, NotFound, UsageError
from ..core.model import Procedure
from ..formats.paging import PAGE, read_all
from ..induction.extract import check_extractor
from ..store.base import Store

__all__ = ["PAGE", "check_procedure", "paged", "put_version", "same_content", "versions",
           "with_stats"]

T = TypeVar("T")
P = TypeVar("P", bound=Procedure)


def paged(fetch: Callable[[int, int], list[T]]) -> list[T]:
    """Everything ``fetch(limit, offset)`` returns, :data:`PAGE` rows at a time
    (:func:`procmem.formats.paging.read_all`)."""
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
    with store.transaction():  # numbered and stored at once: two writers never share a number
        known = versions(store, procedure.name)
        if known and same_content(known[-1], procedure):
            return known[-1]
        stored = procedure.model_copy(update={"version": known[-1].version + 1 if known else 1})
        stored = stored.with_stats(None)  # a new version has no runs of its own
        store.put_procedure(stored)
    return stored


def with_stats(store: Store, procs: Sequence[P]) -> list[P]:
    """``procs`` with the run statistics of their own versions attached.

    One store call for the whole batch (:meth:`Store.procedure_stats`, counters
    kept on write): cost does not grow with the number of executions.

    Returns:
        Copies of ``procs``, in order, each with the
        :class:`~procmem.core.procstats.ProcedureStats` of its ``(name, version)``
        (top-level executions: ``execution_count`` counts runs finished or
        not; ``success_rate`` (0-1) and ``avg_duration_ms`` are over finished
        runs, ``None`` while none finished); a version never run reads 0 runs.
    """
    if not procs:
        return []
    stats = store.procedure_stats([p.name for p in procs])
    return [p.with_stats(stats.get((p.name, p.version))) for p in procs]
