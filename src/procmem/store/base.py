"""The storage protocol every backend implements: small record protocols, one union.

:class:`Store` is the union of the record protocols below; code above the store
types against ``Store`` (or against the one record protocol it needs, e.g. a
helper that only reads traces takes a :class:`TraceRecords`). To add records,
add a protocol here and list it among ``Store``'s bases: the contract suite
(``tests/test_store_contract.py``) then fails until every new method has a
contract test.

Invariants (every backend; checked by the contract suite):
    * Traces are immutable: ``put_traces`` with an existing id and the same
      content is a no-op; with different content it raises ``Conflict``. The
      only way one leaves is ``delete_trace``.
    * Procedure versions are immutable in content: ``put_procedure`` of an
      existing ``(name, version)`` with the same :meth:`Procedure.content` is a
      no-op, different content raises ``Conflict``. Only ``status`` may change,
      through ``set_status``.
    * Every write method is atomic on its own (``put_traces`` stores a whole
      batch or nothing). Several writes that must stand or fall together run
      inside one :meth:`UnitOfWork.transaction` (see there).
    * ``put_step_run`` commits at once (outside a transaction), so a crash loses
      at most the step in flight. It replaces the row of ``(execution id,
      index)``; the replay core puts a step run again only with every earlier
      try kept in its ``history`` (tries are append-only, see
      :class:`procmem.core.model.StepRun`).
    * **Name order.** Every result said to be "by name" is in Unicode
      code-point order of the names (Python's ``sorted`` of ``str``; SQLite's
      default ``BINARY`` collation of UTF-8; PostgreSQL needs ``COLLATE "C"``),
      never a locale or case-insensitive order: ``"Zeta" < "alpha" < "zeta" <
      "Äpfel" < "éclair"``. Paging (``limit``/``offset``) follows that order.
    * **Commit order of traces.** Traces have one total order, the order their
      writes committed in (within one ``put_traces`` batch, batch order). It is
      the order of ``list_traces``, ``get_traces`` and the change feed
      :meth:`TraceRecords.traces_since`: a trace committed after another is
      never listed before it, and a reader that has seen a trace has seen every
      trace committed before it.
    * Ranking, statistics and optimization live above the store.
    * A tool schema put again unchanged (same canonical JSON) changes nothing;
      a changed one keeps the old schema in the tool's history. Procedure notes
      are append-only and deleted with their procedure.
    * An embedding is stored once per (model id, text hash) and read back only
      under the same model id.
    * Executions have a lease, decided in the store (never in per-process state),
      so any process can continue any execution but two never run one at once
      (the rules are on :class:`LeaseRecords`).
    * API keys: a key's secret never reaches the store (only its hash); a key is
      never replaced, and a revoked key is never un-revoked.
    * Tenants: one store holds one tenant's data (:func:`procmem.store.tenant_location`
      gives each tenant its own file), so no query can reach another tenant's rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

import numpy as np

from ..core.model import Evidence, Execution, Procedure, StepRun, Trace
from ..core.procstats import ProcedureStats, RunOutcome
from ..security.keys import ApiKey
from .aliases import AliasRecords
from .common import SEPARATORS, index_text
from .jobs import JobRecords
from .listing import ListingRecords
from .status import StatusRecords

__all__ = ["RECORD_PROTOCOLS", "SEPARATORS", "AliasRecords", "EmbeddingRecords", "ExecutionRecords",
           "JobRecords", "KeyRecords", "LeaseRecords", "ListingRecords", "ProcedureRecords",
           "SearchIndexRecords", "StatsRecords", "StatusRecords", "Store", "ToolSchemaRecords",
           "TraceChanges", "TraceRecords", "UnitOfWork", "index_text", "protocol_methods"]


class TraceChanges(NamedTuple):
    """One read of the trace change feed (:meth:`TraceRecords.traces_since`).

    Attributes:
        traces: Traces committed after the token read from, in commit order.
        token: Where the next read continues (opaque; pass it back as is).
        reset: True when the feed started over from the first trace: the token
            was ``None``, another store's, or stale (a trace was deleted since it
            was issued). Whatever was folded from earlier reads is void then.
    """

    traces: list[Trace]
    token: str
    reset: bool


@runtime_checkable
class UnitOfWork(Protocol):
    """The store as a whole: where it lives, transactions, closing."""

    location: str

    def transaction(self) -> AbstractContextManager[Any]:
        """A unit of work: the writes made inside stand or fall together.

        Use as ``with store.transaction(): ...``. On leaving the block normally
        every write made inside (through any method of this store) commits at
        once; on an exception every one of them is undone and the exception
        propagates. Reads inside see the block's own writes; other connections
        see none of them until the outermost block commits.

        Nestable: an inner ``with store.transaction()`` is a savepoint. An
        exception leaving the inner block undoes only the inner block's writes
        (the outer block goes on if it catches the exception); only the
        outermost block commits. A backend may serialize transactions (SQLite
        holds its write lock and its thread lock throughout), so keep slow work
        (replays, model calls) outside. What a block reads and then writes must
        be atomic against other processes' blocks (SQLite: ``BEGIN IMMEDIATE``;
        PostgreSQL: the store's writer advisory lock taken right after ``BEGIN``):
        a new version's number and a status transition
        (:mod:`procmem.store.status`) are read and written in one block.

        Raises:
            StoreError: The backend could not begin or commit.
        """
        ...

    def close(self) -> None:
        """Release the connection; later calls raise ``StoreError``. Idempotent."""
        ...


@runtime_checkable
class TraceRecords(Protocol):
    """Demonstration traces: immutable, in commit order, with a change feed."""

    def put_traces(self, traces: Iterable[Trace]) -> int:
        """Store traces in one transaction (all or none); returns how many were new.

        Raises:
            Conflict: An id is stored with different content (``created_at``
                aside); nothing of the batch is stored.
        """
        ...

    def get_trace(self, trace_id: str) -> Trace:
        """The trace, or ``NotFound``."""
        ...

    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        """Traces in commit order, ``limit`` after skipping ``offset`` (``UsageError`` if < 0)."""
        ...

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        """The stored traces among ``trace_ids``, in commit order (unknown ids left out)."""
        ...

    def count_traces(self) -> int:
        """How many traces are stored."""
        ...

    def get_tasks(self, trace_ids: Sequence[str]) -> dict[str, str]:
        """Task text by trace id for the stored traces among ``trace_ids``."""
        ...

    def delete_trace(self, trace_id: str) -> bool:
        """Delete one trace in one transaction; False if there was none.

        Procedure versions are kept as they are (their lineage still lists the
        id), but the search document of every name whose current version
        learned from the trace is rebuilt without its task (logged as an index
        change), and every change-feed token issued before is stale.
        """
        ...

    def traces_since(self, token: str | None, *, limit: int = 1000) -> TraceChanges:
        """The change feed of traces: what was committed after ``token``.

        Traces are append-only apart from :meth:`delete_trace`, so a reader
        folds the feed: read with ``None``, keep the returned token, read again
        with it later to get only the traces committed since, in commit order.
        The token is the store's (opaque text, never parsed by callers); it
        stays valid across connections and processes of the same store.

        Rules:
            * Each trace is returned once per pass; reading with the same
              token twice returns the same traces (plus any committed since).
            * The feed starts over (``reset`` True, traces from the first
              one) when ``token`` is ``None``, not this store's, malformed, or
              stale: any trace was deleted after it was issued.
            * At most ``limit`` traces per read; when ``limit`` are returned
              there may be more: read again with the new token.
            * With nothing new since a valid token, the traces are empty and the
              token comes back unchanged.

        Args:
            token: A token from an earlier read of this store, or ``None``.
            limit: Most traces to return, >= 1.

        Returns:
            A :class:`TraceChanges`.

        Raises:
            UsageError: ``limit`` < 1.
        """
        ...


@runtime_checkable
class ProcedureRecords(Protocol):
    """Procedure versions (immutable but for ``status``), pins and verification records.

    The *current* version of a name is its highest ``active`` version, else its
    highest ``deprecated`` one, else its highest ``candidate``.
    """

    def put_procedure(self, procedure: Procedure) -> bool:
        """Store one immutable version and re-index its name; True if it was new.

        Raises:
            Conflict: ``(name, version)`` is stored with other content.
        """
        ...

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One version (``None``: the current one), or ``NotFound``."""
        ...

    def get_procedures_json(self, names: Sequence[str]) -> dict[str, str]:
        """``{name: JSON text of its current version}``; names without a version are left out.

        ``Procedure.model_validate_json(text)`` must equal ``get_procedure(name)``:
        search builds its rank views from these texts without validating them.
        """
        ...

    def count_procedures(self) -> int:
        """How many procedure names have at least one version (deleted names not counted)."""
        ...

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        """The current version of each name, by name (code-point order), paged.

        Args:
            status: Only names whose *current* version has this status.

        Raises:
            UsageError: Unknown ``status``, or a negative ``limit``/``offset``.
        """
        ...

    def list_versions(self, name: str) -> list[Procedure]:
        """Every version of one procedure, oldest first (``NotFound`` if none)."""
        ...

    def list_versions_by_trace(self, trace_id: str) -> list[Procedure]:
        """Every version whose lineage lists ``trace_id``, by name then version."""
        ...

    def set_status(self, name: str, version: int, status: str) -> None:
        """Change one version's status (the only mutable field) and re-index its name.

        Raises:
            UsageError: ``status`` is not candidate, active or deprecated.
            NotFound: No such version.
        """
        ...

    def delete_procedure(self, name: str) -> bool:
        """Delete every version of ``name`` with its pin, verifications and notes;
        False if there was none (executions and evidence are kept)."""
        ...

    def set_pinned(self, name: str, pinned: bool) -> None:
        """Pin or unpin a procedure name (``NotFound`` if it has no version)."""
        ...

    def is_pinned(self, name: str) -> bool:
        """True when ``name`` is pinned (unknown names are not)."""
        ...

    def put_verification(self, name: str, version: int, record: dict[str, Any]) -> None:
        """Store (replace) one version's verification record (``NotFound`` if no such version)."""
        ...

    def get_verification(self, name: str, version: int) -> dict[str, Any] | None:
        """One version's verification record, or ``None``."""
        ...


@runtime_checkable
class ExecutionRecords(Protocol):
    """Executions (a header plus step runs) and the evidence about them (append-only)."""

    def put_execution(self, execution: Execution) -> None:
        """Upsert an execution's header (status, params, needs...), not its step runs.

        A header whose status is not ``running`` clears the execution's lease."""
        ...

    def put_step_run(self, execution_id: str, step_run: StepRun) -> None:
        """Upsert one step run by ``(execution_id, index)``, committed at once.

        Raises:
            NotFound: The execution's header was never put.
        """
        ...

    def get_execution(self, execution_id: str) -> Execution:
        """The execution with its step runs by index, or ``NotFound``."""
        ...

    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        """Executions with their step runs, newest first: by ``started_at`` (the
        instant, whatever its time zone), ties by the order of their first put,
        the later first. ``UsageError`` for a negative ``limit``/``offset``."""
        ...

    def put_evidence(self, evidence: Evidence) -> None:
        """Append one evidence record."""
        ...

    def list_evidence(self, execution_id: str | None = None, *,
                      procedure: str | None = None) -> list[Evidence]:
        """Evidence, oldest first (``created_at``, ties in append order), optionally
        for one execution or for the executions of one procedure name."""
        ...


@runtime_checkable
class LeaseRecords(Protocol):
    """Execution leases, decided in the store so that two runs never drive one execution.

    Rules:
        * a lease is live while it has an owner and its expiry is later than now;
        * ``acquire_lease`` takes or renews it atomically (one conditional write):
          it succeeds when the execution has no live lease or the live lease is
          the caller's own, and otherwise raises ``ExecutionBusy`` changing nothing;
        * ``release_lease`` clears it only for its owner;
        * ``put_execution`` of a header whose status is not ``running`` clears it
          (paused, succeeded and failed executions have no live lease); a
          ``running`` header leaves it as it is; a new execution has none;
        * an expired lease is free: anyone may take it.

    The store does not check leases on ``put_execution``/``put_step_run``: the
    run that holds the lease renews it before it writes (see :mod:`procmem.services.lease`).
    """

    def acquire_lease(self, execution_id: str, owner: str, *, lease_s: float,
                      now: datetime | None = None) -> datetime:
        """Take or renew an execution's lease for ``lease_s`` seconds; returns its expiry.

        ``now`` defaults to the backend's clock. Raises ``ExecutionBusy`` (another
        owner's lease is live; it names the owner and expiry), ``NotFound``,
        ``UsageError`` (empty owner, ``lease_s`` <= 0).
        """
        ...

    def release_lease(self, execution_id: str, owner: str) -> bool:
        """Clear ``owner``'s lease of an execution; True if ``owner`` held it."""
        ...


@runtime_checkable
class SearchIndexRecords(Protocol):
    """The keyword documents of search, their change log, saved indexes and calibrations.

    The store keeps one document per procedure name, :func:`index_text` of its
    current version (whatever its status), rebuilt in the same transaction as
    every write that changes it (a version put, a status set, a procedure or a
    demonstration trace deleted, a tool schema added or changed).

    Change log: every such rebuild bumps :meth:`index_revision` and logs the
    name under the new revision; :meth:`index_changes` lists the names logged
    after a revision a reader kept, so a search index is refreshed by name
    rather than rebuilt.
    """

    def index_documents(self, status: str | None = "active") -> list[tuple[str, str]]:
        """Indexed ``(procedure name, document text)`` of current versions with this
        status (``None``: all), by name."""
        ...

    def index_status(self) -> dict[str, str]:
        """The status of each indexed name's current version."""
        ...

    def index_revision(self) -> int:
        """A number that grows with every change of the documents (reads and
        idempotent puts leave it as it is)."""
        ...

    def index_changes(self, since: int) -> list[str] | None:
        """Names whose search document changed after revision ``since``, by name;
        ``None`` when they cannot be listed (the log no longer reaches back to
        ``since``, e.g. any ``since`` < 0, or a change touched every document):
        rebuild everything."""
        ...

    def index_entries(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{name: (status, document text)}`` of these names (unindexed ones left out)."""
        ...

    def get_index_snapshot(self, key: str) -> tuple[int, bytes] | None:
        """The saved search index under ``key``: ``(index revision, data)``, or ``None``."""
        ...

    def put_index_snapshot(self, key: str, revision: int, data: bytes) -> None:
        """Save (replace) the search index under ``key``, built at ``revision``
        (``UsageError`` for an empty key)."""
        ...

    def delete_index_snapshots(self, key: str | None = None) -> int:
        """Delete the saved search index under ``key`` (``None``: all); returns how many."""
        ...

    def get_calibration(self, key: str) -> str | None:
        """The confidence calibration saved under ``key`` (JSON text), or ``None``."""
        ...

    def put_calibration(self, key: str, text: str) -> None:
        """Save (replace) a calibration's JSON text under ``key`` (``UsageError`` for an
        empty key); a later :meth:`get_calibration` of ``key`` returns exactly ``text``."""
        ...


@runtime_checkable
class EmbeddingRecords(Protocol):
    """Dense vectors of hybrid search, one per (model id, text hash)."""

    def get_embeddings(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored float32 vectors of ``model_id`` by text hash (unknown hashes left out)."""
        ...

    def put_embeddings(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Store vectors of ``model_id`` by text hash in one transaction; returns the count.

        Raises:
            UsageError: ``model_id`` is empty, or the vectors are not 1-D of one length.
        """
        ...

    def count_embeddings(self) -> dict[str, int]:
        """Stored vectors per model id."""
        ...

    def delete_embeddings(self, model_id: str | None = None) -> int:
        """Delete one model's vectors (``None``: all); returns how many."""
        ...


@runtime_checkable
class ToolSchemaRecords(Protocol):
    """Tool schemas (with their history) and the notes kept about procedure names."""

    def put_tool_schemas(self, schemas: Mapping[str, Mapping[str, Any]], *,
                         notes: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]] | None
                         = None) -> dict[str, str]:
        """Store schemas, and the ``tool_schema`` notes of each tool that is added or
        changed now, in one transaction; ``{name: "added" | "changed" | "unchanged"}``.

        Raises:
            UsageError: An empty name or a schema that is not JSON (nothing is stored).
            NotFound: A note names a procedure without a version (nothing is stored).
        """
        ...

    def find_tool_schema(self, name: str) -> dict[str, Any] | None:
        """One tool's current schema, or ``None``."""
        ...

    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Every tool's current schema, by name (code-point order)."""
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


@runtime_checkable
class KeyRecords(Protocol):
    """API keys (:mod:`procmem.security.keys`; kept in the main file, for every tenant)."""

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


# ------------------------------------------------------------ run statistics


@runtime_checkable
class StatsRecords(Protocol):
    """Run statistics read in batches (statistics themselves live above the store).

    Rules (checked by ``StatsContract``, ``tests/test_store_stats.py``, in the contract suite):
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
class Store(UnitOfWork, TraceRecords, ProcedureRecords, ExecutionRecords, LeaseRecords,
            SearchIndexRecords, EmbeddingRecords, ToolSchemaRecords, KeyRecords, StatsRecords,
            AliasRecords, JobRecords, StatusRecords, ListingRecords, Protocol):
    """A whole backend: every record protocol, and the unit of work that spans them."""


RECORD_PROTOCOLS: tuple[type, ...] = (UnitOfWork, TraceRecords, ProcedureRecords,
                                      ExecutionRecords, LeaseRecords, SearchIndexRecords,
                                      EmbeddingRecords, ToolSchemaRecords, KeyRecords,
                                      StatsRecords, AliasRecords, JobRecords, StatusRecords,
                                      ListingRecords)
"""The protocols :class:`Store` unites, in the order of its bases."""


def protocol_methods(protocol: type = Store) -> list[str]:
    """The names of the methods a protocol declares (its bases' included), sorted.

    Used by the contract suite to demand a contract test for each.
    """
    names: set[str] = set()
    for klass in protocol.__mro__:
        if klass is object or klass is Protocol or not getattr(klass, "_is_protocol", False):
            continue
        names.update(n for n, v in vars(klass).items()
                     if callable(v) and not n.startswith("_"))
    return sorted(names)
