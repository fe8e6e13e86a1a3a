"""Memory: the one object a user holds.

``mem = procmem.Memory("memory.db")`` opens (or creates) a store and offers the
whole lifecycle: add traces, learn procedures, search, replay, resume, report.
It is a facade with no behaviour of its own: it builds small services over one
:class:`~procmem.store.base.Store`, each usable and testable alone, and every
public method delegates to one of them (see :class:`Memory`). Services get what
they need through their constructors (the store, settings, other services);
they never import this module or reach into it.

Invariants:
    * Nothing below this module reads the environment or prints; this module
      neither prints nor reads settings either (adapters do).
    * Learning is deterministic and idempotent: re-running :meth:`learn` on the
      same traces stores nothing new; a group whose traces changed gets a new
      version (the old one stays, immutable), unless the procedure has evolved
      since (its current version does other actions, e.g. after a repair).
    * Every step run of a replay is committed as soon as it finishes, and every
      tool call is stored as started before it is sent; a replay or resume holds
      the execution's lease in the store meanwhile (:mod:`procmem.services.lease`).
    * Statistics (``execution_count``, ``success_rate`` ...) are attached from the
      store's run counters when a procedure is read (one call per batch); they
      are never stored, and a new version starts with no runs.
    * Safe to share between threads (see :class:`Memory`), so adapters (REST,
      MCP) hold no lock of their own around it.
    * Every public method has an async twin (``a`` prefix) with equal parameters.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from .core.errors import UsageError
from .core.model import Execution, Hit, Need, Procedure, Trace
from .formats.record import Recorder
from .induction.bind import Binding
from .induction.induce import MIN_CONSTANT
from .induction.planning import Plan
from .learning.changes import Change, ReportResult
from .learning.promote import PromotionPolicy
from .learning.stats import VersionStats
from .memory_async import twin
from .search.calibration import TARGET_PRECISION
from .search.embed import Embedder, default_embedder
from .search.rerank import Reranker
from .search.retrieval import Retriever
from .security.keys import DEFAULT_TENANT, check_tenant
from .security.limits import DEFAULT_LIMITS, Limits
from .security.redaction import Redactor
from .security.secret_params import EnvSecrets, SecretProvider
from .services.calibrate import CalibrationReport, Calibrator
from .services.client import ClientDriver, Turn
from .services.execution_view import DEFAULT_CLIENT_TTL_S
from .services.learn import Learner, LearnReport, check_namespace
from .services.learning import LearningLoop, OptimizeReport
from .services.lease import DEFAULT_LEASE_S
from .services.multiplan import PlanRun, TaskPlan
from .services.plans import Plans
from .services.procedures import Procedures
from .services.replay import Executions
from .services.search import Progress, Searcher
from .services.stats import Statistics
from .services.support import Setting, docs_from
from .services.tools import ToolSchemas
from .services.traces import ImportReport, TraceImpact, Traces
from .store import open_store
from .store.base import Store

__all__ = ["ImportReport", "LearnReport", "Memory", "check_namespace"]

Tools = Mapping[str, Callable[..., Any]]
Resolver = Callable[[Need], Any]
_ALL = ("traces", "procedures", "tool_schemas", "statistics", "learning", "searcher",
        "executions")  # the services that hold the store


class Memory:
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
            bundled offline MiniLM, :func:`procmem.search.embed.default_embedder`; BM25
            only, with one warning, when it is not installed), another spec of
            :func:`procmem.search.embed.embedder_from_spec` (``"none"``, ``"minilm-l6"``,
            ``"st:…"``, ``"openai:…"``), an ``Embedder``, or ``None`` (BM25 only).
        reranker: A language model that reorders the top hits of every search
            (:mod:`procmem.search.rerank`); ``None`` (the default): no model is asked.
        lease_s: How long a replay or resume holds an execution's lease unless
            it renews it (seconds, default :data:`procmem.services.lease.DEFAULT_LEASE_S`,
            60): another process cannot resume the execution meanwhile
            (``ExecutionBusy``). A run renews it as steps finish; a run killed
            outright blocks a resume this long, so make it longer than the
            longest tool call.
        client_ttl_s: Seconds a client-driven execution (``start``/``advance``,
            REST, MCP) may stay ``running`` with no turn (default 24 h; ``None``:
            never); reading it then marks it ``failed``, ``"expired: no turn for N s"``.
        min_constant: How many demonstrations must agree on a value (with none
            disagreeing) before learning sends it as a literal without asking
            (default :data:`procmem.induction.induce.MIN_CONSTANT`, 48: by the rule of
            succession, the chance that the next task needs another value is
            then at most 2 %). Fewer agreeing demonstrations make an ``$ask``.
            A small store of config-like constants may lower it, trading
            safety for autonomy.
        save_index: Save a search index built from
            :data:`procmem.services.search.SNAPSHOT_MIN` procedures or more in the
            store, so the next process loads it instead of building it (it adds
            about a fifth to the store's size); ``False``: never save one (a saved
            one is still loaded).
        tenant: Whose data this memory holds (:data:`procmem.security.keys.TENANT_PATTERN`).
            ``"default"`` (the default) is ``location`` itself; any other tenant
            has its own store beside it (:func:`procmem.store.tenant_location`),
            so every read, write, search, execution and export of this memory
            stays inside the tenant. Ignored when ``store`` is given.
        redactor: The secret redaction every trace and hand-written procedure
            passes before it is stored (:class:`procmem.security.redaction.Redactor`; add
            your own patterns there). Default: the built-in rules.
        limits: Size limits on traces and procedures (:class:`procmem.security.limits.Limits`).
        secrets: Where secret params' values come from at replay time
            (:class:`procmem.security.secret_params.SecretProvider`); default
            :class:`~procmem.security.secret_params.EnvSecrets` (``PROCMEM_SECRET_<NAME>``).

    Services: the public methods delegate to services, each built with what it
    needs and usable alone (see their modules): :attr:`traces`
    (:class:`~procmem.services.traces.Traces`), :attr:`procedures`
    (:class:`~procmem.services.procedures.Procedures`), :attr:`learner`
    (:class:`~procmem.services.learn.Learner`, induction), :attr:`learning`
    (:class:`~procmem.services.learning.LearningLoop`: evidence, review, optimize,
    decay, history), :attr:`statistics` (:class:`~procmem.services.stats.Statistics`),
    :attr:`searcher` (:class:`~procmem.services.search.Searcher`: index, caches,
    snapshots), :attr:`executions` (:class:`~procmem.services.replay.Executions`:
    replay, resume, start, advance), :attr:`plans`
    (:class:`~procmem.services.plans.Plans`), :attr:`tool_schemas`
    (:class:`~procmem.services.tools.ToolSchemas`), :attr:`calibrator`
    (:class:`~procmem.services.calibrate.Calibrator`). Settings such as ``store``,
    ``policy``, ``reranker`` or ``lease_s`` can be set on the memory; they are
    set on every service that uses them.

    A memory may be shared by threads: each service guards its own state with
    its own lock, and writes of procedure versions and statuses (learn, put,
    report and review, decay, optimize, rollback, tool-schema imports) share one
    lock; the store serializes its connection. A replay or resume holds no lock
    while its tools run (the execution's lease in the store keeps runs apart).
    Every public method ``m`` has an async twin ``am`` with the same parameters.

    Raises:
        StoreUnavailable: The store cannot be opened.
        MissingExtra: An optional backend or ``embedder`` package is not installed.
        UsageError: A bad ``tenant``, ``embedder`` spec, ``lease_s`` or ``client_ttl_s``.
    """

    store = Setting[Store](*_ALL)
    policy = Setting[PromotionPolicy]("learning", "statistics")
    stats_window = Setting[int]("statistics")
    reranker = Setting[Reranker | None]("searcher")
    save_index = Setting[bool]("searcher")
    search_budget_s = Setting[float | None]("searcher")
    """Wall time one search may spend binding params (seconds; ``None``: no limit; 2.0)."""
    lease_s = Setting[float]("executions")
    client_ttl_s = Setting[float | None]("executions")
    secrets = Setting[SecretProvider | None]("executions")
    limits = Setting[Limits]("traces", "procedures")
    redactor = Setting[Redactor]("traces", "procedures", "learning", "executions")

    def __init__(self, location: str | os.PathLike[str] = "procmem.db", *,
                 store: Store | None = None, policy: PromotionPolicy | None = None,
                 stats_window: int = 500, seed: int | None = None,
                 embedder: Embedder | str | None = "default",
                 reranker: Reranker | None = None, save_index: bool = True,
                 lease_s: float = DEFAULT_LEASE_S, min_constant: int = MIN_CONSTANT,
                 tenant: str = DEFAULT_TENANT, redactor: Redactor | None = None,
                 limits: Limits | None = None, secrets: SecretProvider | None = None,
                 client_ttl_s: float | None = DEFAULT_CLIENT_TTL_S) -> None:
        for name, value in (("lease_s", lease_s), ("client_ttl_s", client_ttl_s)):
            if value is not None and not value > 0:
                raise UsageError(f"{name} must be > 0 seconds, got {value!r}")
        self.location = os.fsdecode(location) if store is None else store.location
        self.tenant = check_tenant(tenant)
        store = store if store is not None else open_store(location, tenant=tenant)
        policy = policy or PromotionPolicy()
        writes = threading.RLock()  # writes of versions and statuses, one thread at a time
        self._writes = writes
        self.statistics = Statistics(store, stats_window=stats_window, policy=policy)
        self.searcher = Searcher(store, self.statistics, embedder=embedder, reranker=reranker,
                                 resolve_default=lambda: default_embedder(),
                                 save_index=save_index)
        self.learner = Learner(min_constant, (limits or DEFAULT_LIMITS).max_procedures)
        self.traces = Traces(store, limits=limits, redactor=redactor, forget=self.learner.reset)
        self.tool_schemas = ToolSchemas(store, lock=writes)
        self.procedures = Procedures(store, self.statistics, self.tool_schemas,
                                     limits=self.traces.limits, redactor=self.traces.redactor,
                                     lock=writes)
        self.learning = LearningLoop(store, self.statistics, policy=policy, seed=seed,
                                     lock=writes, redactor=self.traces.redactor)
        self.executions = Executions(store, lease_s=lease_s, client_ttl_s=client_ttl_s,
                                     secrets=secrets if secrets is not None else EnvSecrets(),
                                     choose_version=self.learning.choose_version,
                                     redactor=self.traces.redactor)
        self.plans = Plans(self.searcher, self.executions)
        self.calibrator = Calibrator(self.searcher)

    @property
    def embedder(self) -> Embedder | None:
        """The embedding model of hybrid search, or ``None`` (BM25 only).

        ``"default"`` is resolved here, on first use, so commands that never search
        never load the model's runtime.
        """
        return self.searcher.embedder

    def for_tenant(self, tenant: str) -> Memory:
        """A new memory over ``tenant``'s store at this memory's location, with the
        same settings (policy, embedder, reranker, lease, redaction, limits, secrets);
        the caller closes it.

        Raises:
            UsageError: ``tenant`` is not a valid tenant name.
            StoreUnavailable: The tenant's store cannot be opened.
        """
        return Memory(self.location, policy=self.policy, stats_window=self.stats_window,
                      embedder=self.searcher.embedder_choice, reranker=self.reranker,
                      save_index=self.save_index, lease_s=self.lease_s, tenant=tenant,
                      min_constant=self.learner.min_constant, redactor=self.redactor,
                      limits=self.limits, secrets=self.secrets,
                      client_ttl_s=self.client_ttl_s)

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    # ------------------------------------------------------- traces (memory_traces)

    @docs_from(Traces.add_traces)
    def add_traces(self, traces: Iterable[Trace]) -> int:
        return self.traces.add_traces(traces)

    @docs_from(Traces.admit_trace)
    def admit_trace(self, trace: Trace) -> Trace:
        return self.traces.admit_trace(trace)

    @docs_from(Traces.import_traces)
    def import_traces(self, path: str | os.PathLike[str], *,
                      skip_invalid: bool = False) -> ImportReport:
        return self.traces.import_traces(path, skip_invalid=skip_invalid)

    @docs_from(Traces.get_trace)
    def get_trace(self, trace_id: str) -> Trace:
        return self.traces.get_trace(trace_id)

    @docs_from(Traces.list_traces)
    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        return self.traces.list_traces(limit=limit, offset=offset)

    @docs_from(Traces.delete_trace)
    def delete_trace(self, trace_id: str) -> bool:
        return self.traces.delete_trace(trace_id)

    @docs_from(Traces.trace_impact)
    def trace_impact(self, trace_id: str) -> TraceImpact:
        return self.traces.trace_impact(trace_id)

    @docs_from(Traces.record)
    def record(self, task: str, *, source: str | None = None,
               metadata: dict[str, Any] | None = None, redact_secrets: bool = True) -> Recorder:
        return self.traces.record(task, source=source, metadata=metadata,
                                  redact_secrets=redact_secrets)

    # -------------------------------------------------------------------- learning

    def learn(self, traces: Iterable[Trace] | None = None, *,
              namespace: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> LearnReport:
        """Induce procedures from the stored traces (after adding ``traces``, if given).

        Traces are grouped by action sequence (:func:`procmem.induction.induce.group_traces`);
        each group whose set of traces differs from its procedure's lineage is
        induced again (:func:`procmem.induction.induce.induce`) and stored as version 1
        or as the next version when the content changed. The grouping and the
        corpus statistics are kept between calls and brought up to date with the
        traces stored since (traces are append-only; after a deletion they are
        computed again), so a later call reads only those and the traces of the
        groups it induces again. A group that cannot be induced (an error of
        procmem's tree or an invalid model) is skipped and listed under
        ``failed_groups``; the other groups are learned.

        With an embedder, the new search texts are embedded now (in batches), so
        the first search embeds only its query.

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
        with self._writes:  # versions are numbered from what is stored: one writer at a time
            report = self.learner.learn(self.store, namespace, progress)  # procmem.services.learn
            self.tool_schemas.flag_learned(report.created + report.updated)
        self.searcher.embed_new(report.created + report.updated, progress)  # no lock held
        return report

    # ------------------------------------------------ procedures (memory_procedures)

    @docs_from(Procedures.put_procedure)
    def put_procedure(self, procedure: Procedure) -> Procedure:
        stored = self.procedures.put_procedure(procedure)
        self.searcher.embed_new([stored.name])  # the first search embeds only its query
        return stored

    @docs_from(Procedures.get_procedure)
    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        return self.procedures.get_procedure(name, version)

    @docs_from(Procedures.find_procedure)
    def find_procedure(self, name: str) -> Procedure | None:
        return self.procedures.find_procedure(name)

    @docs_from(Procedures.list_procedures)
    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        return self.procedures.list_procedures(status=status, limit=limit, offset=offset)

    @docs_from(Procedures.list_versions)
    def list_versions(self, name: str) -> list[Procedure]:
        return self.procedures.list_versions(name)

    @docs_from(Procedures.rename)
    def rename(self, old: str, new: str) -> Procedure:
        renamed = self.procedures.rename(old, new)
        self.searcher.embed_new([renamed.name])  # its search texts name it anew
        return renamed

    @docs_from(Procedures.bind)
    def bind(self, procedure: Procedure | str, task: str) -> Binding:
        return self.procedures.bind(procedure, task)

    # ---------------------------------------------------------- search (memory_search)

    @docs_from(Searcher.search)
    def search(self, task: str, *, limit: int = 5, retriever: Retriever = "hybrid",
               tags: Sequence[str] = (), status: str | None = "active",
               namespace: str | None = None, confident_only: bool = False,
               rerank: bool = True) -> list[Hit]:
        return self.searcher.search(task, limit=limit, retriever=retriever, tags=tags,
                                    status=status, namespace=namespace,
                                    confident_only=confident_only, rerank=rerank)

    @docs_from(Searcher.reindex)
    def reindex(self, *, force: bool = False, progress: Progress | None = None
                ) -> dict[str, Any]:
        return self.searcher.reindex(force=force, progress=progress)

    @docs_from(Searcher.warm_index)
    def warm_index(self, *, progress: Progress | None = None,
                   views: bool = False) -> dict[str, Any]:
        return self.searcher.warm_index(progress=progress, views=views)

    @docs_from(Calibrator.calibrate)
    def calibrate(self, *, folds: int = 5, target_precision: float = TARGET_PRECISION,
                  retrievers: Sequence[str] | None = None,
                  progress: Progress | None = None) -> CalibrationReport:
        return self.calibrator.calibrate(folds=folds, target_precision=target_precision,
                                         retrievers=retrievers, progress=progress)

    # ------------------------------------------------------------ plans (memory_plans)

    @docs_from(Plans.plan)
    def plan(self, task: str, *, procedure: Procedure | Hit | str | None = None,
             version: int | None = None, params: Mapping[str, Any] | None = None) -> Plan:
        return self.plans.plan(task, procedure=procedure, version=version, params=params)

    @docs_from(Plans.plan_task)
    def plan_task(self, task: str) -> TaskPlan:
        return self.plans.plan_task(task)

    @docs_from(Plans.replay_plan)
    def replay_plan(self, plan: TaskPlan, *, tools: Tools, resolver: Resolver | None = None,
                    partial: bool = False) -> PlanRun:
        return self.plans.replay_plan(plan, tools=tools, resolver=resolver, partial=partial)

    @docs_from(Plans.areplay_plan)
    async def areplay_plan(self, plan: TaskPlan, *, tools: Tools,
                           resolver: Callable[[Need], Any | Awaitable[Any]] | None = None,
                           partial: bool = False) -> PlanRun:
        return await self.plans.areplay_plan(plan, tools=tools, resolver=resolver,
                                             partial=partial)

    # ---------------------------------------------------- executions (memory_replay)

    @docs_from(Executions.replay)
    def replay(self, procedure: Procedure | str, *, tools: Tools, task: str | None = None,
               params: Mapping[str, Any] | None = None,
               resolver: Resolver | None = None) -> Execution:
        return self.executions.replay(procedure, tools=tools, task=task, params=params,
                                      resolver=resolver)

    @docs_from(Executions.areplay)
    async def areplay(self, procedure: Procedure | str, *, tools: Tools, task: str | None = None,
                      params: Mapping[str, Any] | None = None,
                      resolver: Callable[[Need], Any | Awaitable[Any]] | None = None
                      ) -> Execution:
        return await self.executions.areplay(procedure, tools=tools, task=task, params=params,
                                             resolver=resolver)

    @docs_from(Executions.resume)
    def resume(self, execution_id: str, answers: Mapping[str, Any] | None = None, *,
               tools: Tools, resolver: Resolver | None = None) -> Execution:
        return self.executions.resume(execution_id, answers, tools=tools, resolver=resolver)

    @docs_from(Executions.aresume)
    async def aresume(self, execution_id: str, answers: Mapping[str, Any] | None = None, *,
                      tools: Tools, resolver: Callable[[Need], Any] | None = None) -> Execution:
        return await self.executions.aresume(execution_id, answers, tools=tools,
                                             resolver=resolver)

    @docs_from(ClientDriver.start)
    def start(self, procedure: Procedure | str, *, task: str | None = None,
              params: Mapping[str, Any] | None = None) -> Turn:
        return self.executions.start(procedure, task=task, params=params)

    @docs_from(ClientDriver.advance)
    def advance(self, execution_id: str, *, step_id: str | None = None, output: Any = None,
                error: str | None = None, duration_ms: float = 0.0,
                answers: Mapping[str, Any] | None = None) -> Turn:
        return self.executions.advance(execution_id, step_id=step_id, output=output,
                                       error=error, duration_ms=duration_ms, answers=answers)

    @docs_from(Executions.get_execution)
    def get_execution(self, execution_id: str) -> Execution:
        return self.executions.get_execution(execution_id)

    @docs_from(Executions.list_executions)
    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        return self.executions.list_executions(procedure=procedure, limit=limit, offset=offset)

    # ----------------------------------------------- learning over time (memory_learning)

    @docs_from(LearningLoop.report)
    def report(self, execution_id: str, *, reward: float, source: str = "user",
               note: str = "") -> ReportResult:
        return self.learning.report(execution_id, reward=reward, source=source, note=note)

    @docs_from(LearningLoop.version_stats)
    def version_stats(self, name: str, version: int | None = None) -> VersionStats:
        return self.learning.version_stats(name, version)

    @docs_from(LearningLoop.stats)
    def stats(self, name: str | None = None) -> list[VersionStats]:
        return self.learning.stats(name)

    @docs_from(LearningLoop.choose_version)
    def choose_version(self, name: str) -> Procedure:
        return self.learning.choose_version(name)

    @docs_from(LearningLoop.review)
    def review(self, name: str) -> list[Change]:
        return self.learning.review(name)

    @docs_from(LearningLoop.decay)
    def decay(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        return self.learning.decay(now=now)

    @docs_from(LearningLoop.optimize)
    def optimize(self, name: str | None = None, *,
                 progress: Callable[[int, int], None] | None = None) -> OptimizeReport:
        return self.learning.optimize(name, progress=progress)

    @docs_from(LearningLoop.history)
    def history(self, name: str) -> list[dict[str, Any]]:
        return self.learning.history(name)

    @docs_from(LearningLoop.diff)
    def diff(self, name: str, v1: int, v2: int) -> list[str]:
        return self.learning.diff(name, v1, v2)

    @docs_from(LearningLoop.rollback)
    def rollback(self, name: str, version: int) -> Procedure:
        return self.learning.rollback(name, version)

    @docs_from(LearningLoop.pin)
    def pin(self, name: str, pinned: bool = True) -> None:
        self.learning.pin(name, pinned)

    @docs_from(LearningLoop.delete_procedure)
    def delete_procedure(self, name: str) -> bool:
        return self.learning.delete_procedure(name)

    # --------------------------------------------------- tool schemas (memory_tools)

    @docs_from(ToolSchemas.import_tool_schemas)
    def import_tool_schemas(
        self, source: str | os.PathLike[str] | list[Any] | Mapping[str, Any]
    ) -> dict[str, Any]:
        return self.tool_schemas.import_tool_schemas(source)

    @docs_from(ToolSchemas.list_tool_schemas)
    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        return self.tool_schemas.list_tool_schemas()

    @docs_from(ToolSchemas.get_tool_schema)
    def get_tool_schema(self, name: str) -> dict[str, Any]:
        return self.tool_schemas.get_tool_schema(name)

    @docs_from(ToolSchemas.check_procedure)
    def check_procedure(self, name: str, version: int | None = None) -> dict[str, list[str]]:
        return self.tool_schemas.check_procedure(name, version)

    @docs_from(ToolSchemas.check_procedures)
    def check_procedures(self) -> dict[str, dict[str, list[str]]]:
        return self.tool_schemas.check_procedures()

    @docs_from(ToolSchemas.tool_flags)
    def tool_flags(self, name: str | None = None) -> list[dict[str, Any]]:
        return self.tool_schemas.tool_flags(name)

    @docs_from(ToolSchemas.clear_tool_flags)
    def clear_tool_flags(self, name: str | None = None) -> int:
        return self.tool_schemas.clear_tool_flags(name)

    # ------------------------------------------- async twins (memory_async; areplay,
    # aresume and areplay_plan are above): one per public method, same parameters
    aadd_traces = twin(add_traces)
    aadmit_trace = twin(admit_trace)
    aimport_traces = twin(import_traces)
    aget_trace = twin(get_trace)
    alist_traces = twin(list_traces)
    adelete_trace = twin(delete_trace)
    atrace_impact = twin(trace_impact)
    arecord = twin(record)
    alearn = twin(learn)
    aput_procedure = twin(put_procedure)
    aget_procedure = twin(get_procedure)
    afind_procedure = twin(find_procedure)
    alist_procedures = twin(list_procedures)
    alist_versions = twin(list_versions)
    arename = twin(rename)
    abind = twin(bind)
    asearch = twin(search)
    areindex = twin(reindex)
    awarm_index = twin(warm_index)
    acalibrate = twin(calibrate)
    aplan = twin(plan)
    aplan_task = twin(plan_task)
    astart = twin(start)
    aadvance = twin(advance)
    aget_execution = twin(get_execution)
    alist_executions = twin(list_executions)
    areport = twin(report)
    aversion_stats = twin(version_stats)
    astats = twin(stats)
    achoose_version = twin(choose_version)
    areview = twin(review)
    adecay = twin(decay)
    aoptimize = twin(optimize)
    ahistory = twin(history)
    adiff = twin(diff)
    arollback = twin(rollback)
    apin = twin(pin)
    adelete_procedure = twin(delete_procedure)
    aimport_tool_schemas = twin(import_tool_schemas)
    alist_tool_schemas = twin(list_tool_schemas)
    aget_tool_schema = twin(get_tool_schema)
    acheck_procedure = twin(check_procedure)
    acheck_procedures = twin(check_procedures)
    atool_flags = twin(tool_flags)
    aclear_tool_flags = twin(clear_tool_flags)
    afor_tenant = twin(for_tenant)
    aclose = twin(close)
