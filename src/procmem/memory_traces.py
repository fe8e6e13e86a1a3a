"""Stored traces as records a user can list, show and delete, and what a deletion changes.

A small service under :class:`procmem.Memory` (which delegates to it) and the one
serializer of each trace shape that the CLI and REST share.

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
      store's :meth:`procmem.store.base.Store.trace_deletions` grows with each.
    * A group that cannot be induced is reported by :func:`group_failure` with
      its error's stable ``code``; it never stops the other groups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .errors import ProcmemError
from .model import Trace
from .store.base import Store
from .validation import validation_message

__all__ = ["MAX_LISTED_IDS", "TraceImpact", "deletion_json", "group_failure", "trace_impact",
           "trace_summary"]

MAX_LISTED_IDS = 100
"""At most this many trace ids are listed for one failed group (``trace_count`` has all)."""

_MAX_MESSAGE = 500  # characters of an error message kept in a report


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
        name: The name of the group's actions (:func:`procmem.induce.procedure_name`;
            ``learn`` appends ``-<steps>`` when another procedure holds that name).
        signature: Its action sequence.
        trace_ids: Its traces, in insertion order.
        err: What stopped it: an error of procmem's tree, or a model validation error.

    Returns:
        ``{"name", "actions", "traces", "trace_count", "code", "error", "message"}``:
        ``traces`` lists the first :data:`MAX_LISTED_IDS` ids; ``code`` is the
        error's stable code (``invalid_procedure`` for a validation error, whose
        message is its first problem, :func:`procmem.validation.validation_message`);
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
