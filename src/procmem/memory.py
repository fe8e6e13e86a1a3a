"""Memory: the one object a user holds.

``mem = procmem.Memory("memory.db")`` opens (or creates) a store and offers the
whole lifecycle: add traces, learn procedures, search, replay, resume, report.
It is a facade: whole jobs live in small services it delegates to, each usable
alone over a :class:`~procmem.store.base.Store` (:mod:`procmem.memory_learn`
learning from traces, :mod:`procmem.memory_versions` storing and reading
versions, :mod:`procmem.memory_replay` setting up runs, :mod:`procmem.memory_traces`,
:mod:`procmem.planning`, :mod:`procmem.lease`). Services never import this module.

Invariants:
    * Nothing below this module reads the environment or prints; this module
      neither prints nor reads settings either (adapters do).
    * Learning is deterministic and idempotent: re-running :meth:`learn` on the
      same traces stores nothing new; a group whose traces changed gets a new
      version (the old one stays, immutable), unless the procedure has evolved
      since (its current version does other actions, e.g. after a repair).
    * Every step run of a replay is committed as soon as it finishes, and every
      tool call is stored as started before it is sent; a replay or resume holds
      the execution's lease in the store meanwhile (:mod:`procmem.lease`).
    * Statistics (``execution_count``, ``success_rate`` ...) are attached from the
      store's run counters when a procedure is read (one call per batch); they
      are never stored, and a new version starts with no runs.
"""

from __future__ import annotations

import os
import random
import re
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .bind import Binding, bind_task
from .embed import Embedder, default_embedder
from .errors import InvalidTrace, LimitExceeded, NotFound, UsageError
from .induce import MIN_CONSTANT
from .keys import DEFAULT_TENANT, check_tenant
from .learning.promote import PromotionPolicy
from .lease import DEFAULT_LEASE_S, LeaseKeeper, new_owner
from .limits import DEFAULT_LIMITS, Limits
from .memory_async import AsyncMixin
from .memory_client import ClientDriveMixin
from .memory_learn import Learner, LearnReport
from .memory_learning import LearningMixin
from .memory_plans import TaskPlanMixin
from .memory_replay import prepare, reopen, subprocedures
from .memory_search import SearchMixin
from .memory_tools import ToolSchemaMixin
from .memory_traces import TraceImpact, trace_impact
from .memory_versions import check_procedure, paged, put_version, with_stats
from .model import NAME_PATTERN, Execution, Hit, Need, Procedure, Trace
from .planning import Plan, nothing_fits, plan_hit, plan_procedure
from .record import Recorder
from .redaction import Redactor, default_redactor
from .replay import Core, ToolCall, adrive, drive, replay_core
from .rerank import Reranker
from .retrieval import RankView
from .search_index import SearchIndex
from .secret_params import EnvSecrets, SecretProvider, secretize
from .store import open_store
from .store.base import Store
from .traceio import read_traces

__all__ = ["ImportReport", "LearnReport", "Memory", "check_namespace"]

Tools = Mapping[str, Callable[..., Any]]
Resolver = Callable[[Need], Any]


@dataclass
class ImportReport:
    """What :meth:`Memory.import_traces` did: lines ``read``, new traces ``stored``, errors."""

    read: int = 0
    stored: int = 0
    errors: list[str] = field(default_factory=list)


_PROC_FIELDS = ("description", "steps", "params", "tags")


class Memory(SearchMixin, LearningMixin, ClientDriveMixin, ToolSchemaMixin, TaskPlanMixin,
             AsyncMixin):
    """Procedural memory backed by one store.

    Args:
        location: A file path (SQLite, created if missing), ``":memory:"``, or a
            URL (``sqlite:///path``). Defaults to ``procmem.db`` in the current
            directory.
        store: Use this store object instead of opening ``location``.
        policy: When candidates are promoted or demoted and procedures decay.
        stats_window: Statistics use the last this many executions of a procedure.
        seed: Seed of the random generator behind Thompson sampling (None: random).
        embedder: The embedding model of hybrid search: ``"default"`` (the
            bundled offline MiniLM, :func:`procmem.embed.default_embedder`; BM25
            only, with one warning, when it is not installed), an
            :class:`procmem.embed.Embedder`, or ``None`` for BM25 only.
        reranker: A language model that reorders the top hits of every search
            (:mod:`procmem.rerank`); ``None`` (the default): no model is asked.
        lease_s: How long a replay or resume holds an execution's lease unless
            it renews it (seconds, default :data:`procmem.lease.DEFAULT_LEASE_S`,
            60): another process cannot resume the execution meanwhile
            (``ExecutionBusy``). A run renews it as steps finish; a run killed
            outright blocks a resume this long, so make it longer than the
            longest tool call.
        min_constant: How many demonstrations must agree on a value (with none
            disagreeing) before learning sends it as a literal without asking
            (default :data:`procmem.induce.MIN_CONSTANT`, 48: by the rule of
            succession, the chance that the next task needs another value is
            then at most 2 %). Fewer agreeing demonstrations make an ``$ask``.
            A small store of config-like constants may lower it, trading
            safety for autonomy.
        save_index: Save a search index built from
            :data:`procmem.memory_search.SNAPSHOT_MIN` procedures or more in the
            store, so the next process loads it instead of building it (it adds
            about a fifth to the store's size); ``False``: never save one (a saved
            one is still loaded).
        tenant: Whose data this memory holds (:data:`procmem.keys.TENANT_PATTERN`).
            ``"default"`` (the default) is ``location`` itself; any other tenant
            has its own store beside it (:func:`procmem.store.tenant_location`),
            so every read, write, search, execution and export of this memory
            stays inside the tenant. Ignored when ``store`` is given.
        redactor: The secret redaction every trace and hand-written procedure
            passes before it is stored (:class:`procmem.redaction.Redactor`; add
            your own patterns there). Default: the built-in rules.
        limits: Size limits on traces and procedures (:class:`procmem.limits.Limits`).
        secrets: Where secret params' values come from at replay time
            (:class:`procmem.secret_params.SecretProvider`); default
            :class:`~procmem.secret_params.EnvSecrets` (``PROCMEM_SECRET_<NAME>``).

    Raises:
        StoreUnavailable: The store cannot be opened.
        MissingExtra: The URL needs an optional backend that is not installed.
        UsageError: ``tenant`` is not a valid tenant name.
    """

    def __init__(self, location: str | os.PathLike[str] = "procmem.db", *,
                 store: Store | None = None, policy: PromotionPolicy | None = None,
                 stats_window: int = 500, seed: int | None = None,
                 embedder: Embedder | str | None = "default",
                 reranker: Reranker | None = None, save_index: bool = True,
                 lease_s: float = DEFAULT_LEASE_S, min_constant: int = MIN_CONSTANT,
                 tenant: str = DEFAULT_TENANT, redactor: Redactor | None = None,
                 limits: Limits | None = None,
                 secrets: SecretProvider | None = None) -> None:
        if not lease_s > 0:
            raise UsageError(f"lease_s must be > 0 seconds, got {lease_s!r}")
        self.lease_s = lease_s
        self.redactor = redactor if redactor is not None else default_redactor()
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.secrets: SecretProvider | None = secrets if secrets is not None else EnvSecrets()
        self.location = os.fsdecode(location) if store is None else store.location
        self.tenant = check_tenant(tenant)
        self.store: Store = store if store is not None else open_store(location, tenant=tenant)
        self.reranker = reranker
        self.policy = policy or PromotionPolicy()
        self.stats_window = stats_window
        self._rng = random.Random(seed)
        self._rejected: set[str] = set()
        self._live: dict[str, tuple[Core, ToolCall]] = {}
        if isinstance(embedder, str) and embedder != "default":
            raise UsageError(f"embedder must be 'default', an Embedder or None, got {embedder!r}")
        self._embedder: Embedder | str | None = embedder  # "default" is resolved on first use
        self._index: SearchIndex | None = None
        self._index_revision = -1
        self._snapshot_revision = -1  # index revision of the index last saved or loaded
        self.save_index = save_index
        # procmem.memory_learn: the trace fold kept between learns
        self._learner = Learner(min_constant, self.limits.max_procedures)
        self._procs: OrderedDict[str, Procedure] = OrderedDict()
        self._views: dict[str, RankView] = {}
        self._status: dict[str, str] = {}

    @property
    def embedder(self) -> Embedder | None:
        """The embedding model of hybrid search, or ``None`` (BM25 only).

        ``"default"`` is resolved here, on first use, so commands that neither learn,
        store a procedure nor search with vectors never load the model's runtime.
        """
        if isinstance(self._embedder, str):
            self._embedder = default_embedder()
        return self._embedder

    def for_tenant(self, tenant: str) -> Memory:
        """A new memory over ``tenant``'s store at this memory's location, with the
        same settings (policy, embedder, reranker, lease, redaction, limits, secrets);
        the caller closes it.

        Raises:
            UsageError: ``tenant`` is not a valid tenant name.
            StoreUnavailable: The tenant's store cannot be opened.
        """
        return Memory(self.location, policy=self.policy, stats_window=self.stats_window,
                      embedder=self._embedder, reranker=self.reranker,
                      save_index=self.save_index, lease_s=self.lease_s, tenant=tenant,
                      min_constant=self._learner.min_constant, redactor=self.redactor,
                      limits=self.limits, secrets=self.secrets)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # ------------------------------------------------------------------ traces

    def add_traces(self, traces: Iterable[Trace]) -> int:
        """Store traces in one transaction; returns how many were new.

        Every trace is checked against :attr:`limits` and redacted by
        :attr:`redactor` first (:mod:`procmem.redaction`): this is the one step
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

    # Deleting traces: what it changes is in procmem.memory_traces.
    def delete_trace(self, trace_id: str) -> bool:
        """Delete one stored trace; False if there was none.

        Procedure versions learned from it are kept as they are; see
        :meth:`trace_impact` for what the deletion changes.
        """
        self._learner.reset()
        return self.store.delete_trace(trace_id)

    def trace_impact(self, trace_id: str) -> TraceImpact:
        """What deleting a trace would change: the procedure versions learned from it.

        Raises:
            NotFound: No trace has this id.
        """
        return trace_impact(self.store, trace_id)

    def _all_traces(self) -> list[Trace]:
        """Every stored trace, in insertion order (read page by page)."""
        return paged(lambda limit, offset: self.store.list_traces(limit=limit, offset=offset))

    def _all_procedures(self) -> list[Procedure]:
        """The current version of every procedure (no statistics), by name."""
        return paged(lambda limit, offset: self.store.list_procedures(limit=limit,
                                                                       offset=offset))

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

    # ---------------------------------------------------------------- learning

    def learn(self, traces: Iterable[Trace] | None = None, *,
              namespace: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> LearnReport:
        """Induce procedures from the stored traces (after adding ``traces``, if given).

        Traces are grouped by action sequence (:func:`procmem.induce.group_traces`);
        each group whose set of traces differs from its procedure's lineage is
        induced again (:func:`procmem.induce.induce`) and stored as version 1
        or as the next version when the content changed. The grouping and the
        corpus statistics are kept between calls and brought up to date with the
        traces stored since (traces are append-only; after a deletion they are
        computed again), so a later call reads only those and the traces of the
        groups it induces again. A group that cannot be induced (an error of
        procmem's tree or an invalid model) is skipped and listed under
        ``failed_groups``; the other groups are learned.

        With an embedder, the search texts of the created and updated procedures
        are embedded and stored now (in batches), so the first search embeds only
        its query.

        Args:
            traces: Traces to add first.
            namespace: The namespace of the procedures this call creates (default
                ``"default"``); a new version keeps its procedure's namespace.
            progress: Called as ``progress(done, total)``: first counted in groups
                of traces as they are learned, then in texts while the new
                procedures' search texts are embedded (``total`` changes between
                the two phases).

        Returns:
            A :class:`LearnReport`.

        Raises:
            UsageError: ``namespace`` is not a valid name.
            EmbeddingError: The embedder failed; the procedures are learned and
                stored, and the texts left are embedded by the next search.
        """
        if namespace is not None:
            check_namespace(namespace)
        if traces is not None:
            self.add_traces(traces)
        report = self._learner.learn(self.store, namespace, progress)  # procmem.memory_learn
        self._flag_learned(report.created + report.updated)  # flags args that break tool schemas
        self._embed_new(report.created + report.updated, progress)  # procmem.memory_search
        return report

    # -------------------------------------------------------------- procedures

    def put_procedure(self, procedure: Procedure) -> Procedure:
        """Store a procedure written by hand (or edited) as a new version.

        A procedure equal in content to the current version is not stored
        again. Otherwise it is stored as the next version number.

        With an embedder, its search texts are embedded and stored now, so the
        first search embeds only its query.

        Raises:
            InvalidProcedure: A template reference does not validate, a param's
                extractor is not a valid regex, or a step's args break its tool's
                stored schema (:meth:`import_tool_schemas`).
            LimitExceeded: Too large, or a new name beyond ``limits.max_procedures``.
            EmbeddingError: The embedder failed to embed its search texts (it is
                stored; the next search embeds them).
        """
        self.limits.check_procedure(procedure)  # sizes (procmem.limits)
        if (self.find_procedure(procedure.name) is None
                and (n := self.store.count_procedures()) >= self.limits.max_procedures):
            raise LimitExceeded("procedures in this store (one tenant)", n + 1,
                                self.limits.max_procedures, where=f"procedure {procedure.name!r}",
                                setting="Limits.max_procedures")
        procedure = secretize(self.redactor.model(procedure, _PROC_FIELDS)[0])
        check_procedure(procedure)  # templates and extractors (procmem.memory_versions)
        self._check_tool_args(procedure)  # refuses args that break a stored tool schema
        stored = put_version(self.store, procedure)
        self._embed_new([stored.name])  # procmem.memory_search
        return stored

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One procedure version with its statistics (current version by default).

        Raises:
            NotFound: No such procedure or version.
        """
        return self._with_stats([self.store.get_procedure(name, version)])[0]

    def find_procedure(self, name: str) -> Procedure | None:
        """The current version, or ``None``."""
        try:
            return self.get_procedure(name)
        except NotFound:
            return None

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        """Current versions by name, with statistics."""
        procs = self.store.list_procedures(status=status, limit=limit, offset=offset)
        return self._with_stats(procs)

    def list_versions(self, name: str) -> list[Procedure]:
        """Every version of one procedure, oldest first, each with its own statistics.

        Raises:
            NotFound: No version of ``name``.
        """
        return self._with_stats(self.store.list_versions(name))

    def _with_stats(self, procs: Sequence[Procedure]) -> list[Procedure]:
        return with_stats(self.store, procs)  # one store call per batch

    # ------------------------------------------------------------------ search

    def bind(self, procedure: Procedure | str, task: str) -> Binding:
        """What the built-in binder fills from ``task`` (see :mod:`procmem.bind`)."""
        proc = procedure if isinstance(procedure, Procedure) else self.get_procedure(procedure)
        return bind_task(proc, task)

    def plan(self, task: str, *, procedure: Procedure | Hit | str | None = None,
             version: int | None = None, params: Mapping[str, Any] | None = None) -> Plan:
        """What a replay for ``task`` would do, without calling any tool (:mod:`procmem.planning`).

        Args:
            task: The task in plain words (may be empty when ``procedure`` is given).
            procedure: The top search hit by default; else a hit (planned with its
                confidence, no search), a procedure or a name (its current version, or
                ``version``; confident only as its hit among the top 10). A replay by
                name may pick a verified candidate: replay ``plan.version`` to match.
            version: With a name: plan this version.
            params: Param values by name, as :meth:`replay` takes them.

        Returns:
            A :class:`~procmem.planning.Plan`; one without procedure when nothing fits.

        Raises:
            NotFound: No such procedure, version or sub-procedure.
            UsageError: ``task`` is empty and no procedure is named.
            ParamError / CycleError: As :meth:`replay` raises them.
        """
        if procedure is None:
            hits = self.search(task, limit=1)
            if not hits:
                return nothing_fits(task)
            procedure = hits[0]
        if isinstance(procedure, Hit):
            subs = self._subprocedures(procedure.procedure)
            return plan_hit(procedure, task, params=params, procedures=subs)
        proc = procedure if isinstance(procedure, Procedure) else \
            self.store.get_procedure(procedure, version)
        hit = next((h for h in (self.search(task, limit=10) if task.strip() else [])
                    if h.procedure.key == proc.key), None)
        return plan_procedure(proc, task, params=params, procedures=self._subprocedures(proc),
                              hit=hit)

    # ------------------------------------------------------------------ replay

    # Setting up a run (binding, sub-procedures, reopening) is procmem.memory_replay.
    def _prepare(
        self, procedure: Procedure | str, tools: Tools, task: str | None,
        params: Mapping[str, Any] | None, *, provider: bool = True,
    ) -> tuple[Procedure, Execution, dict[str, Procedure]]:
        proc = procedure if isinstance(procedure, Procedure) else self.choose_version(procedure)
        return prepare(self.store, proc, tools, task, params,
                       self.secrets if provider else None)

    def _subprocedures(self, proc: Procedure) -> dict[str, Procedure]:
        return subprocedures(self.store, proc)

    def replay(self, procedure: Procedure | str, *, tools: Tools, task: str | None = None,
               params: Mapping[str, Any] | None = None,
               resolver: Resolver | None = None) -> Execution:
        """Run a procedure against real tools, recording every step run durably.

        Params come from ``params`` first, then from ``task`` through the
        built-in binder; what is still missing, and every ``$ask`` hole, becomes
        a :class:`~procmem.model.Need` for ``resolver(need) -> value`` (``None``
        = cannot answer). Unanswered needs pause the execution; continue it
        with :meth:`resume`.

        Args:
            procedure: A procedure, or the name of one: then the current version
                runs, or a verified candidate competing with it, chosen by
                Thompson sampling (:meth:`choose_version`).
            tools: Tool callables by action name, called as ``tool(**args)``; a
                tool with a parameter named ``idempotency_key`` also gets the call's
                key (see :mod:`procmem.replay`).
            task: The new task's text, used to bind params.
            params: Param values by name (they win over values from ``task``).
            resolver: Answers needs; without one the execution pauses on a need.

        Returns:
            The execution: ``succeeded``, ``failed`` or ``paused`` (see ``needs``).

        Raises:
            NotFound: No such procedure (or sub-procedure).
            UnknownTool: A step's action has no tool (before anything runs).
            ParamError: A param is unknown or of the wrong JSON type.
            CycleError: Sub-procedures call each other in a cycle.
            ExecutionBusy: The run lost the execution's lease (a call outlasted
                ``lease_s`` and another run resumed it); it stops before writing.
        """
        proc, ex, subs = self._prepare(procedure, tools, task, params)
        with LeaseKeeper(self.store, new_owner(), self.lease_s, redactor=self.redactor) as keeper:
            return drive(replay_core(proc, ex, subs), tools, resolver, keeper)

    async def areplay(self, procedure: Procedure | str, *, tools: Tools, task: str | None = None,
                      params: Mapping[str, Any] | None = None,
                      resolver: Callable[[Need], Any | Awaitable[Any]] | None = None
                      ) -> Execution:
        """Async twin of :meth:`replay`: awaits coroutine tools and resolvers."""
        proc, ex, subs = self._prepare(procedure, tools, task, params)
        with LeaseKeeper(self.store, new_owner(), self.lease_s, redactor=self.redactor) as keeper:
            return await adrive(replay_core(proc, ex, subs), tools, resolver, keeper)

    def _reopen(self, execution_id: str, answers: Mapping[str, Any] | None,
                tools: Tools) -> tuple[Core, LeaseKeeper]:
        return reopen(self.store, execution_id, answers, tools, self.lease_s, self.secrets,
                      self.redactor)

    def resume(self, execution_id: str, answers: Mapping[str, Any] | None = None, *,
               tools: Tools, resolver: Resolver | None = None) -> Execution:
        """Continue a paused (or interrupted, or failed) execution.

        The run takes the execution's lease first (see ``lease_s``), so an
        execution running in another process is never resumed twice.

        Args:
            execution_id: The execution to continue.
            answers: Values by need key (``param:NAME``, ``ask:STEP:POINTER``, ...).
            tools: Tool callables by action name.
            resolver: Answers further needs.

        Returns:
            The execution; finished steps are never called again. A failed step
            is tried again as a new attempt (the failed one stays in its step
            run's ``history``); a call the stopped run had sent without storing
            its result is sent again with the same idempotency key, and kept in
            the history as ``unknown``.

        Raises:
            NotFound: No such execution.
            ReplayError: The execution already succeeded.
            ExecutionBusy: Another run holds the execution's live lease (it is
                running elsewhere); nothing is called.
        """
        core, keeper = self._reopen(execution_id, answers, tools)
        with keeper:
            return drive(core, tools, resolver, keeper)

    async def aresume(self, execution_id: str, answers: Mapping[str, Any] | None = None, *,
                      tools: Tools, resolver: Callable[[Need], Any] | None = None) -> Execution:
        """Async twin of :meth:`resume`."""
        core, keeper = self._reopen(execution_id, answers, tools)
        with keeper:
            return await adrive(core, tools, resolver, keeper)

    def get_execution(self, execution_id: str) -> Execution:
        """One execution with its step runs; raises ``NotFound``."""
        return self.store.get_execution(execution_id)

    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        """Executions, newest first."""
        return self.store.list_executions(procedure=procedure, limit=limit, offset=offset)


def check_namespace(namespace: str) -> None:
    """Raise ``UsageError`` unless ``namespace`` is valid (the ``Procedure.namespace`` rule)."""
    if len(namespace) > 100 or not re.fullmatch(NAME_PATTERN, namespace):
        raise UsageError(f"namespace must match {NAME_PATTERN} (100 characters at most), "
                         f"got {namespace!r}")
