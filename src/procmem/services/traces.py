"""Stored traces as records a user can add, list, show and delete, and what a deletion changes.

:class:`Traces` is the service under :class:`procmem.Memory` (which delegates to
it): every ingest path (import, learn, REST, MCP, recorder, proxy) stores traces
through :meth:`Traces.add_traces`, which checks limits and redacts secrets
first. This module also holds the one serializer of each trace shape that the
CLI and REST share.

Invariants:
    * Deleting a trace never changes a procedure version: versions are immutable,
      and a version's lineage keeps naming the trace. What changes is said by
      :class:`TraceImpact`: the search document of every name whose current
      version learned from the trace loses its task at once (the store
      re-indexes), and the next :meth:`procmem.Memory.learn` re-induces each
      group the trace was in from the traces that remain (a new version only
      when the result differs; a group left with no trace keeps its procedure).
    * The learn fold (:meth:`procmem.Memory.learn` caches grouping and corpus
      statistics over the stored traces) starts over after any deletion: the
      store's trace change feed (:meth:`procmem.store.base.TraceRecords.traces_since`)
      starts over then.
    * A group that cannot be induced is reported by :func:`group_failure` with
      its error's stable ``code``; it never stops the other groups.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.errors import InvalidTrace, LimitExceeded, ProcmemError
from ..core.model import Trace
from ..formats.record import Recorder
from ..formats.traceio import read_traces
from ..formats.validation import validation_message
from ..security.limits import DEFAULT_LIMITS, Limits
from ..security.redaction import Redactor, default_redactor
from ..store.base import Store
from .versions import paged

__all__ = ["MAX_LISTED_IDS", "ImportReport", "TraceImpact", "Traces", "deletion_json",
           "group_failure", "trace_impact", "trace_summary"]

MAX_LISTED_IDS = 100
"""At most this many trace ids are listed for one failed group (``trace_count`` has all)."""

_MAX_MESSAGE = 500  # characters of an error message kept in a report


@dataclass
class ImportReport:
    """What :meth:`Memory.import_traces` did: lines ``read``, new traces ``stored``, errors."""

    read: int = 0
    stored: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class TraceImpact:
    """What deleting one trace changes (see the module invariants).

    Attributes:
        trace_id: The trace.
        learned_from: ``{"name", "version", "status"}`` of every procedure version
            whose lineage lists the trace, by name then version. They are kept as
            they are.
        effect: The consequence in plain words.
    """

    trace_id: str
    learned_from: list[dict[str, Any]] = field(default_factory=list)
    effect: str = ""


def trace_impact(store: Store, trace_id: str) -> TraceImpact:
    """What deleting ``trace_id`` would change (nothing is deleted here).

    Raises:
        NotFound: No trace has this id.
    """
    store.get_trace(trace_id)
    versions = store.list_versions_by_trace(trace_id)
    learned = [{"name": p.name, "version": p.version, "status": p.status} for p in versions]
    if not learned:
        effect = "No procedure was learned from this trace; deleting it changes no procedure."
    else:
        names = sorted({p.name for p in versions})
        effect = (f"{len(learned)} procedure version(s) of {', '.join(names)} learned from this "
                  "trace. They are kept as they are (versions are immutable; their lineage "
                  "still names the trace), and their search documents lose its task. The next "
                  "`learn` re-induces the group from the traces that remain: a new version only "
                  "if the result differs; with no trace left the procedure stays as it is.")
    return TraceImpact(trace_id=trace_id, learned_from=learned, effect=effect)


def deletion_json(impact: TraceImpact, deleted: bool) -> dict[str, Any]:
    """The answer of ``traces rm`` and ``DELETE /traces/{id}``, shared by the CLI and REST.

    Returns:
        ``{"trace_id", "deleted", "learned_from", "effect"}`` (see :class:`TraceImpact`).
    """
    return {"trace_id": impact.trace_id, "deleted": deleted,
            "learned_from": [dict(row) for row in impact.learned_from], "effect": impact.effect}


def trace_summary(trace: Trace) -> dict[str, Any]:
    """One line of ``traces list`` as JSON, shared by the CLI and REST.

    Returns:
        ``{"id", "task", "outcome", "reward", "source", "steps", "actions",
        "created_at"}``: ``steps`` counts every step, ``actions`` names the
        successful ones in order (the trace's signature); ``created_at`` is
        ISO 8601 UTC.
    """
    return {"id": trace.id, "task": trace.task, "outcome": trace.outcome,
            "reward": trace.reward, "source": trace.source, "steps": len(trace.steps),
            "actions": list(trace.signature()), "created_at": trace.created_at.isoformat()}


def group_failure(name: str, signature: Sequence[str], trace_ids: Sequence[str],
                  err: ProcmemError | ValidationError) -> dict[str, Any]:
    """A group that :meth:`procmem.Memory.learn` could not induce, as a report row.

    Args:
        name: The name of the group's actions (:func:`procmem.induction.induce.procedure_name`;
            ``learn`` appends ``-<steps>`` when another procedure holds that name).
        signature: Its action sequence.
        trace_ids: Its traces, in insertion order.
        err: What stopped it: an error of procmem's tree, or a model validation error.

    Returns:
        ``{"name", "actions", "traces", "trace_count", "code", "error", "message"}``:
        ``traces`` lists the first :data:`MAX_LISTED_IDS` ids; ``code`` is the
        error's stable code (``invalid_procedure`` for a validation error, whose
        message is its first problem, :func:`procmem.formats.validation.validation_message`);
        ``error`` its class name; ``message`` at most 500 characters.
    """
    code = err.code if isinstance(err, ProcmemError) else "invalid_procedure"
    message = " ".join((str(err) if isinstance(err, ProcmemError)
                        else validation_message(err, f"invalid {err.title}")).split())
    if len(message) > _MAX_MESSAGE:
        message = message[:_MAX_MESSAGE - 1] + "…"
    return {"name": name, "actions": list(signature), "traces": list(trace_ids[:MAX_LISTED_IDS]),
            "trace_count": len(trace_ids), "code": code, "error": type(err).__name__,
            "message": message}


class Traces:
    """Adding, reading and deleting the traces of one store.

    Args:
        store: Where traces are stored.
        limits: Size limits every trace is checked against.
        redactor: The secret redaction every trace passes before it is stored.
        forget: Called before a trace is deleted (``Memory`` passes its learner's
            ``reset``, so the next learn folds every trace again).
    """

    def __init__(self, store: Store, *, limits: Limits | None = None,
                 redactor: Redactor | None = None,
                 forget: Callable[[], None] | None = None) -> None:
        self.store = store
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.redactor = redactor if redactor is not None else default_redactor()
        self.forget = forget

    def add_traces(self, traces: Iterable[Trace]) -> int:
        """Store traces in one transaction; returns how many were new.

        Every trace is checked against :attr:`limits` and redacted by
        :attr:`redactor` first (:mod:`procmem.security.redaction`): this is the one step
        every ingest path (import, learn, REST, MCP, recorder, proxy) goes through.

        Raises:
            Conflict: A trace id exists with different content (nothing is stored).
            LimitExceeded: A trace is over a size limit (nothing is stored).
        """
        return self.store.put_traces([self.admit_trace(t) for t in traces])

    def admit_trace(self, trace: Trace) -> Trace:
        """``trace`` as it may be stored: checked against :attr:`limits`, then redacted.

        Raises:
            LimitExceeded: The trace is over a size limit.
        """
        self.limits.check_trace(trace)
        return self.redactor.trace(trace)[0]

    def import_traces(self, path: str | os.PathLike[str], *,
                      skip_invalid: bool = False) -> ImportReport:
        """Read a trace JSONL file and store its traces in one transaction.

        Args:
            path: procmem trace JSONL (``data/tau-retail/README.md``) or a JSON array.
            skip_invalid: Store the valid lines and report the others instead
                of failing on the first bad line.

        Raises:
            InvalidTrace: A bad line (file, line, field named) when not skipping;
                nothing is stored then.
            UsageError: The file cannot be read.
        """
        traces, errors = read_traces(Path(path), skip_invalid=skip_invalid)
        if not skip_invalid:
            stored = self.add_traces(traces)
            return ImportReport(read=len(traces), stored=stored, errors=[str(e) for e in errors])
        admitted = []  # a trace over a limit is reported like a bad line
        for t in traces:
            try:
                admitted.append(self.admit_trace(t))  # checked and redacted once
            except LimitExceeded as err:
                errors.append(InvalidTrace(str(err), source=str(path)))
        stored = self.store.put_traces(admitted)
        return ImportReport(read=len(admitted), stored=stored, errors=[str(e) for e in errors])

    def get_trace(self, trace_id: str) -> Trace:
        """One trace; raises ``NotFound``."""
        return self.store.get_trace(trace_id)

    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        """Traces in insertion order."""
        return self.store.list_traces(limit=limit, offset=offset)

    def all_traces(self) -> list[Trace]:
        """Every stored trace, in insertion order (read page by page)."""
        return paged(lambda limit, offset: self.store.list_traces(limit=limit, offset=offset))

    def delete_trace(self, trace_id: str) -> bool:
        """Delete one stored trace; False if there was none.

        Procedure versions learned from it are kept as they are; see
        :meth:`trace_impact` for what the deletion changes.
        """
        if self.forget is not None:
            self.forget()
        return self.store.delete_trace(trace_id)

    def trace_impact(self, trace_id: str) -> TraceImpact:
        """What deleting a trace would change: the procedure versions learned from it.

        Raises:
            NotFound: No trace has this id.
        """
        return trace_impact(self.store, trace_id)

    def record(self, task: str, *, source: str | None = None,
               metadata: dict[str, Any] | None = None, redact_secrets: bool = True) -> Recorder:
        """A recorder whose trace is stored when its ``with`` block exits.

        Example::

            with mem.record("cancel order #W1") as rec:
                tools = rec.wrap_tools(tools)
                tools["cancel_pending_order"](order_id="#W1", reason="no longer needed")
        """
        return Recorder(task, on_finish=lambda t: self.add_traces([t]), source=source,
                        metadata=metadata, redact_secrets=redact_secrets)
