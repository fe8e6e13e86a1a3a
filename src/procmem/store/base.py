"""The storage protocol every backend implements.

Invariants (checked by ``tests/test_store.py``, one contract suite for every backend):
    * Traces are immutable: ``put_traces`` with an existing id and the same
      content is a no-op; with different content it raises ``Conflict``. The
      only way one leaves is ``delete_trace``, which bumps ``trace_deletions``.
    * Procedure versions are immutable in content: ``put_procedure`` of an
      existing ``(name, version)`` with the same :meth:`Procedure.content` is a
      no-op, different content raises ``Conflict``. Only ``status`` may change,
      through ``set_status``.
    * ``put_traces`` is one transaction: either every trace is stored or none.
    * ``put_step_run`` commits at once, so a crash loses at most the step in flight.
      It replaces the row of ``(execution id, index)``; the replay core puts a step
      run again only with every earlier try kept in its ``history`` (tries are
      append-only, see :class:`procmem.model.StepRun`).
    * Ranking, statistics and optimization live above the store.
    * A tool schema put again unchanged (same canonical JSON) changes nothing;
      a changed one keeps the old schema in the tool's history. Procedure notes
      are append-only and deleted with their procedure.
    * An embedding is stored once per (model id, text hash) and read back only
      under the same model id.
    * Executions have a lease, decided in the store (never in per-process state),
      so any process can continue any execution but two never run one at once:
        - a lease is live while it has an owner and its expiry is later than now;
        - ``acquire_lease`` takes or renews it atomically (one conditional write):
          it succeeds when the execution has no live lease or the live lease is
          the caller's own, and otherwise raises ``ExecutionBusy`` changing nothing;
        - ``release_lease`` clears it only for its owner;
        - ``put_execution`` of a header whose status is not ``running`` clears it
          (paused, succeeded and failed executions have no live lease); a
          ``running`` header leaves it as it is; a new execution has none;
        - an expired lease is free: anyone may take it.
      The store does not check leases on ``put_execution``/``put_step_run``: the
      run that holds the lease renews it before it writes (see
      :mod:`procmem.lease`).
    * API keys: a key's secret never reaches the store (only its hash); a key is
      never replaced, and a revoked key is never un-revoked.
    * Tenants: one store holds one tenant's data (:func:`procmem.store.tenant_location`
      gives each tenant its own file), so no query can reach another tenant's rows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..keys import ApiKey
from ..model import Evidence, Execution, Procedure, StepRun, Trace
from ..procstats import ProcedureStats, RunOutcome

__all__ = ["SEPARATORS", "StatsRecords", "Store", "index_text"]


# ------------------------------------------------------------ run statistics


@runtime_checkable
class StatsRecords(Protocol):
    """Run statistics read in batches (statistics themselves live above the store).

    Rules (checked by ``tests/test_store_stats.py``):
        * ``procedure_stats`` equals the aggregate of the stored executions: per
          ``(name, version)``, the top-level executions (``parent_id`` null) —
          ``runs``, ``finished`` (succeeded or failed), ``succeeded``,
          ``duration_ms`` (sum over finished) and ``last_executed_at`` (latest
          ``started_at``) — after every ``put_execution``, in the same
          transaction. Versions that never ran are absent, so a new version
          starts with none.
        * ``recent_outcomes`` gives, per name, exactly the executions
          ``list_executions(procedure=name, limit=window)`` lists, in that order,
          each with its evidence as ``list_evidence`` orders it.
        * Both answer for a whole batch of names in one call; neither reads
          step runs.
    """

    def procedure_stats(self, names: Sequence[str]) -> dict[tuple[str, int], ProcedureStats]:
        """Run counters of every version of ``names`` with a top-level execution."""
        ...

    def recent_outcomes(self, names: Sequence[str], *, window: int) -> list[RunOutcome]:
        """The last ``window`` executions of each name (any version), with their evidence."""
        ...


@runtime_checkable
class Store(StatsRecords, Protocol):
    """A narrow persistence interface for procmem records."""

    location: str

    # traces
    def put_traces(self, traces: Iterable[Trace]) -> int:
        """Store traces in one transaction; returns how many were new."""
        ...

    def get_trace(self, trace_id: str) -> Trace:
        """The trace, or ``NotFound``."""
        ...

    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        """Traces in insertion order."""
        ...

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        """The stored traces among ``trace_ids``, in insertion order (unknown ids left out)."""
        ...

    def count_traces(self) -> int:
        """How many traces are stored."""
        ...

    def delete_trace(self, trace_id: str) -> bool:
        """Delete one trace in one transaction; False if there was none.

        Procedure versions are kept as they are (their lineage still lists the
        id), but the search document of every name whose current version
        learned from the trace is rebuilt without its task (logged as an index
        change), and :meth:`trace_deletions` grows.
        """
        ...

    def trace_deletions(self) -> int:
        """A number that grows whenever a trace is deleted (0 when none ever was).

        Traces are otherwise append-only: a cache folded over them in insertion
        order stays valid while this number and the trace count say nothing was
        taken out.
        """
        ...

    def list_versions_by_trace(self, trace_id: str) -> list[Procedure]:
        """Every procedure version whose lineage lists ``trace_id``, by name then version."""
        ...

    # procedures
    def put_procedure(self, procedure: Procedure) -> bool:
        """Store one immutable version; True if it was new (see module invariants)."""
        ...

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One version, or ``NotFound``.

        With ``version`` None, the current version: the highest ``active`` one,
        else the highest ``deprecated``, else the highest ``candidate``.
        """
        ...

    def get_procedures_json(self, names: Sequence[str]) -> dict[str, str]:
        """``{name: JSON text of its current version}`` (the rule of :meth:`get_procedure`);
        names without a version are left out.

        ``Procedure.model_validate_json(text)`` must equal ``get_procedure(name)``:
        search builds its rank views from these texts without validating them.
        """
        ...

    def count_procedures(self) -> int:
        """How many procedure names have at least one version (deleted names not counted)."""
        ...

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        """The current version of each procedure, by name."""
        ...

    def list_versions(self, name: str) -> list[Procedure]:
        """Every version of one procedure, oldest first (``NotFound`` if none)."""
        ...

    def set_status(self, name: str, version: int, status: str) -> None:
        """Change one version's status (the only mutable field)."""
        ...

    def search_text(self, query: str, *, limit: int = 50) -> list[tuple[str, float]]:
        """Full-text candidates ``(procedure name, BM25 score)``; higher is better.

        ``query`` is plain words; the backend quotes them (no query syntax leaks).
        """
        ...

    def index_documents(self, status: str | None = "active") -> list[tuple[str, str]]:
        """Indexed ``(procedure name, document text)`` of current versions with this
        status (``None``: all), by name."""
        ...

    def index_status(self) -> dict[str, str]:
        """The status of each indexed name's current version."""
        ...

    def index_revision(self) -> int:
        """A number that grows whenever the searchable documents change."""
        ...

    def index_changes(self, since: int) -> list[str] | None:
        """Names whose search document changed after revision ``since``, by name;
        ``None`` when they cannot be listed (rebuild everything)."""
        ...

    def index_entries(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{name: (status, document text)}`` of these names (unindexed ones left out)."""
        ...

    def get_index_snapshot(self, key: str) -> tuple[int, bytes] | None:
        """The saved search index under ``key``: ``(index revision, data)``, or ``None``."""
        ...

    def put_index_snapshot(self, key: str, revision: int, data: bytes) -> None:
        """Save (replace) the search index under ``key``, built at ``revision``."""
        ...

    def delete_index_snapshots(self, key: str | None = None) -> int:
        """Delete the saved search index under ``key`` (``None``: all); returns how many."""
        ...

    def get_calibration(self, key: str) -> str | None:
        """The confidence calibration saved under ``key`` (JSON text), or ``None``."""
        ...

    def put_calibration(self, key: str, text: str) -> None:
        """Save (replace) a calibration's JSON text under ``key``; a later
        :meth:`get_calibration` of ``key`` returns exactly ``text``."""
        ...

    def set_pinned(self, name: str, pinned: bool) -> None:
        """Pin or unpin a procedure name (``NotFound`` if it has no version)."""
        ...

    def is_pinned(self, name: str) -> bool:
        """True when ``name`` is pinned."""
        ...

    def put_verification(self, name: str, version: int, record: dict[str, Any]) -> None:
        """Store (replace) one version's verification record (``NotFound`` if no such version)."""
        ...

    def get_verification(self, name: str, version: int) -> dict[str, Any] | None:
        """One version's verification record, or ``None``."""
        ...

    def delete_procedure(self, name: str) -> bool:
        """Delete every version of ``name`` (executions and evidence are kept)."""
        ...

    # tool schemas and procedure notes
    def put_tool_schema(self, name: str, schema: Mapping[str, Any]) -> bool:
        """Store (replace) one tool's schema; True if it was new or changed."""
        ...

    def put_tool_schemas(self, schemas: Mapping[str, Mapping[str, Any]], *,
                         notes: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]] | None
                         = None) -> dict[str, str]:
        """Store schemas, and the ``tool_schema`` notes of each tool that is added or
        changed now, in one transaction; ``{name: "added" | "changed" | "unchanged"}``."""
        ...

    def find_tool_schema(self, name: str) -> dict[str, Any] | None:
        """One tool's current schema, or ``None``."""
        ...

    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Every tool's current schema, by name."""
        ...

    def list_tool_schema_history(self, name: str) -> list[dict[str, Any]]:
        """Replaced schemas of one tool, oldest first: ``{"hash", "schema", "replaced_at"}``."""
        ...

    def add_procedure_note(self, name: str, kind: str, record: Mapping[str, Any]) -> None:
        """Append a note about a procedure name (``NotFound`` if it has no version)."""
        ...

    def list_procedure_notes(self, name: str | None = None, *,
                             kind: str | None = None) -> list[dict[str, Any]]:
        """Notes oldest first: ``{"id", "name", "kind", "created_at", "record"}``."""
        ...

    def delete_procedure_notes(self, name: str | None = None, *, kind: str | None = None) -> int:
        """Delete notes (all, about ``name``, of ``kind``); returns how many."""
        ...

    # embeddings (hybrid search)
    def get_embeddings(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored float32 vectors of ``model_id`` by text hash (unknown hashes left out)."""
        ...

    def put_embeddings(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Store vectors of ``model_id`` by text hash in one transaction; returns the count."""
        ...

    def count_embeddings(self) -> dict[str, int]:
        """Stored vectors per model id."""
        ...

    def delete_embeddings(self, model_id: str | None = None) -> int:
        """Delete one model's vectors (``None``: all); returns how many."""
        ...

    def get_tasks(self, trace_ids: Sequence[str]) -> dict[str, str]:
        """Task text by trace id for the stored traces among ``trace_ids``."""
        ...

    # executions
    def put_execution(self, execution: Execution) -> None:
        """Upsert an execution's header (status, params, needs...), not its step runs.

        A header whose status is not ``running`` clears the execution's lease."""
        ...

    def put_step_run(self, execution_id: str, step_run: StepRun) -> None:
        """Upsert one step run by ``(execution_id, index)``, committed at once."""
        ...

    def get_execution(self, execution_id: str) -> Execution:
        """The execution with its step runs, or ``NotFound``."""
        ...

    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        """Executions, newest first, with their step runs."""
        ...

    def acquire_lease(self, execution_id: str, owner: str, *, lease_s: float,
                      now: datetime | None = None) -> datetime:
        """Take or renew an execution's lease for ``lease_s`` seconds; returns its expiry.

        ``now`` defaults to the backend's clock. Raises ``ExecutionBusy`` (another
        owner's lease is live), ``NotFound``, ``UsageError`` (empty owner, ``lease_s`` <= 0).
        """
        ...

    def release_lease(self, execution_id: str, owner: str) -> bool:
        """Clear ``owner``'s lease of an execution; True if ``owner`` held it."""
        ...

    def find_lease(self, execution_id: str, *,
                   now: datetime | None = None) -> tuple[str, datetime] | None:
        """The live lease ``(owner, expires_at)`` of an execution, or ``None``."""
        ...

    # API keys (procmem.keys; kept in the main file, for every tenant)
    def put_api_key(self, key: ApiKey) -> None:
        """Store a new key: its id, tenant, scopes and secret hash, never the secret.

        Raises ``Conflict`` when the id is stored already (a key is never replaced)."""
        ...

    def find_api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id, revoked or not, or ``None``."""
        ...

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Keys oldest first (revoked ones too); only ``tenant``'s when given."""
        ...

    def revoke_api_key(self, key_id: str) -> bool:
        """Set a key's ``revoked_at`` (never cleared); True if it was live until now."""
        ...

    # evidence
    def put_evidence(self, evidence: Evidence) -> None:
        """Append one evidence record."""
        ...

    def list_evidence(self, execution_id: str | None = None, *,
                      procedure: str | None = None) -> list[Evidence]:
        """Evidence, oldest first, optionally for one execution or one procedure name."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


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
