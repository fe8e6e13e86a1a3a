"""Executions: replaying, resuming and client-driving stored procedures (the I/O around the core).

:class:`Executions` is the service under :class:`procmem.Memory` (whose
``replay``, ``resume``, ``start``, ``advance`` and their twins delegate to it): it
reads the procedure and its sub-procedures from the store, binds params, reopens
a stored execution under a lease, and drives the replay core with the sync or
async driver (or, for ``start`` / ``advance``, one turn at a time through
:class:`procmem.services.client.ClientDriver`). The policy itself is
:func:`procmem.core.replay.replay_core`; the drivers are :mod:`procmem.core.drivers`.

Invariants:
    * Every check that can refuse a run (missing tools, sub-procedures, params)
      runs before any tool is called.
    * Params given by the caller win over values bound from the task; each value's
      source is kept in ``Execution.param_sources`` (``"given"`` or ``"task"``).
    * :func:`reopen` takes the execution's lease before it touches the execution,
      and reads it again once leased, so a run elsewhere is never resumed twice
      and a run that succeeded meanwhile is never run again.
    * ``replay`` and ``resume`` hold no lock of this process while tools run (a
      tool may take long, or call the memory itself): the execution's lease in
      the store keeps two runs of one execution apart.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..core.drivers import Core
from ..core.errors import NotFound, ReplayError
from ..core.model import Execution, Need, Procedure
from ..core.replay import adrive, check_tools, drive, replay_core
from ..induction.bind import bind_task
from ..security.redaction import Redactor, default_redactor
from ..security.secret_params import SecretProvider, fill_secrets
from ..store.base import Store
from .client import ClientDriver, Turn
from .execution_view import DEFAULT_CLIENT_TTL_S, expire_if_abandoned
from .lease import DEFAULT_LEASE_S, LeaseKeeper, new_owner
from .support import docs_from

__all__ = ["Executions", "prepare", "reopen", "subprocedures"]

Tools = Mapping[str, Callable[..., Any]]
Resolver = Callable[[Need], Any]


def subprocedures(store: Store, proc: Procedure) -> dict[str, Procedure]:
    """The current version of every sub-procedure ``proc`` calls, directly or not, by name.

    A missing one is left out (``replay_core`` reports it); ``proc`` itself is
    never included (``replay_core`` reports the cycle).
    """
    subs: dict[str, Procedure] = {}
    stack = [proc]
    while stack:
        for step in stack.pop().steps:
            name = step.subprocedure
            if name and name not in subs and name != proc.name:
                try:
                    subs[name] = store.get_procedure(name)
                except NotFound:
                    continue  # replay_core reports the missing sub-procedure
                stack.append(subs[name])
    return subs


def prepare(store: Store, proc: Procedure, tools: Mapping[str, Any], task: str | None,
            params: Mapping[str, Any] | None, secrets: SecretProvider | None = None
            ) -> tuple[Procedure, Execution, dict[str, Procedure]]:
    """A new execution of ``proc`` with its params bound, and the sub-procedures it needs.

    Args:
        store: Where sub-procedures are read.
        proc: The version to run.
        tools: Tool callables by action name (only their names are checked here).
        task: The task text; the built-in binder fills params not in ``params``.
        params: Param values by name.
        secrets: Where secret params' values come from (:mod:`procmem.security.secret_params`).

    Returns:
        ``(proc, execution, sub-procedures by name)``; the execution is not stored.

    Raises:
        UnknownTool: A step's action has no tool.
        NotFound: A sub-procedure is missing.
    """
    subs = subprocedures(store, proc)
    check_tools(proc, subs, tools)
    given = dict(params or {})
    sources = {k: "given" for k in given}
    if task:
        found = bind_task(proc, task)
        for k, v in found.values.items():
            if k not in given:
                given[k] = v
                sources[k] = "task"
    ex = Execution(procedure=proc.name, version=proc.version, task=task, params=given,
                   param_sources=sources)
    fill_secrets(proc, ex, secrets)  # never from the task; from the provider (or a need)
    return proc, ex, subs


def reopen(store: Store, execution_id: str, answers: Mapping[str, Any] | None,
           tools: Mapping[str, Any], lease_s: float,
           secrets: SecretProvider | None = None, redactor: Redactor | None = None
           ) -> tuple[Core, LeaseKeeper]:
    """The core that continues a stored execution, and the lease it now holds.

    Args:
        store: Where the execution and its procedure are stored.
        execution_id: The execution to continue.
        answers: Values by need key, added to the execution's answers.
        tools: Tool callables by action name (only their names are checked here).
        lease_s: How long the lease is held unless renewed (seconds).
        secrets: Where secret params' values come from again (they are never
            stored; see :mod:`procmem.security.secret_params`).

    Returns:
        ``(core, keeper)``: the caller drives the core and releases the keeper
        (``with keeper:``).

    Raises:
        NotFound: No such execution, or its procedure version or a sub-procedure
            is missing.
        ReplayError: The execution already succeeded.
        UnknownTool: A step's action has no tool.
        ExecutionBusy: Another run holds the execution's live lease.
    """
    ex = store.get_execution(execution_id)
    if ex.status == "succeeded":
        raise ReplayError(f"execution {execution_id!r} already succeeded")
    proc = store.get_procedure(ex.procedure, ex.version)
    subs = subprocedures(store, proc)
    check_tools(proc, subs, tools)
    keeper = LeaseKeeper(store, new_owner(), lease_s, redactor=redactor)
    keeper.acquire(execution_id)  # ExecutionBusy while another run holds it
    ex = store.get_execution(execution_id)  # as stored once leased
    if ex.status == "succeeded":
        keeper.release()
        raise ReplayError(f"execution {execution_id!r} already succeeded")
    ex.answers.update(answers or {})
    fill_secrets(proc, ex, secrets)
    ex.status, ex.needs, ex.error, ex.finished_at = "running", [], None, None
    return replay_core(proc, ex, subs), keeper


class Executions:
    """Runs of the procedures of one store: replay, resume, start and advance.

    Args:
        store: Where procedures and executions are stored.
        lease_s: How long a run holds an execution's lease unless it renews it (seconds).
        client_ttl_s: How long a client-driven execution may stay ``running``
            with no turn before reading it marks it failed (seconds; ``None``: never;
            :func:`procmem.services.execution_view.expire_if_abandoned`).
        secrets: Where secret params' values come from at replay time (``None``: nowhere).
        choose_version: The version a run of a procedure given by name runs
            (``Memory`` passes its learning loop's ``choose_version``); default
            the current version.
        redactor: Redacts what a run stores (:class:`procmem.services.lease.LeaseKeeper`;
            default :func:`procmem.security.redaction.default_redactor`).
    """

    def __init__(self, store: Store, *, lease_s: float = DEFAULT_LEASE_S,
                 client_ttl_s: float | None = DEFAULT_CLIENT_TTL_S,
                 secrets: SecretProvider | None = None,
                 choose_version: Callable[[str], Procedure] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.store = store
        self.lease_s = lease_s
        self.client_ttl_s = client_ttl_s
        self.secrets = secrets
        self.redactor = redactor if redactor is not None else default_redactor()
        self.choose_version = choose_version or self._current
        self.client = ClientDriver(self)

    def _current(self, name: str) -> Procedure:
        return self.store.get_procedure(name)

    def prepare(self, procedure: Procedure | str, tools: Mapping[str, Any], task: str | None,
                params: Mapping[str, Any] | None, *, provider: bool = True
                ) -> tuple[Procedure, Execution, dict[str, Procedure]]:
        """A new execution of ``procedure`` (by name: :attr:`choose_version`), see :func:`prepare`.

        ``provider``: fill secret params from :attr:`secrets` (not when the client
        makes the calls).
        """
        proc = procedure if isinstance(procedure, Procedure) else self.choose_version(procedure)
        return prepare(self.store, proc, tools, task, params,
                       self.secrets if provider else None)

    def subprocedures(self, proc: Procedure) -> dict[str, Procedure]:
        """The sub-procedures ``proc`` calls, by name (:func:`subprocedures`)."""
        return subprocedures(self.store, proc)

    def replay(self, procedure: Procedure | str, *, tools: Tools, task: str | None = None,
               params: Mapping[str, Any] | None = None,
               resolver: Resolver | None = None) -> Execution:
        """Run a procedure against real tools, recording every step run durably.

        Params come from ``params`` first, then from ``task`` through the
        built-in binder; what is still missing, and every ``$ask`` hole, becomes
        a :class:`~procmem.core.model.Need` for ``resolver(need) -> value`` (``None``
        = cannot answer). Unanswered needs pause the execution; continue it
        with :meth:`resume`.

        Args:
            procedure: A procedure, or the name of one: then the current version
                runs, or a verified candidate competing with it, chosen by
                Thompson sampling (:meth:`choose_version`).
            tools: Tool callables by action name, called as ``tool(**args)``; a
                tool with a parameter named ``idempotency_key`` also gets the call's
                key (see :mod:`procmem.core.replay`).
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
        proc, ex, subs = self.prepare(procedure, tools, task, params)
        with LeaseKeeper(self.store, new_owner(), self.lease_s,
                         redactor=self.redactor) as keeper:
            return drive(replay_core(proc, ex, subs), tools, resolver, keeper)

    async def areplay(self, procedure: Procedure | str, *, tools: Tools, task: str | None = None,
                      params: Mapping[str, Any] | None = None,
                      resolver: Callable[[Need], Any | Awaitable[Any]] | None = None
                      ) -> Execution:
        """Async twin of :meth:`replay`: awaits coroutine tools and resolvers."""
        proc, ex, subs = self.prepare(procedure, tools, task, params)
        with LeaseKeeper(self.store, new_owner(), self.lease_s,
                         redactor=self.redactor) as keeper:
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

    @docs_from(ClientDriver.start)
    def start(self, procedure: Procedure | str, *, task: str | None = None,
              params: Mapping[str, Any] | None = None) -> Turn:
        return self.client.start(procedure, task=task, params=params)

    @docs_from(ClientDriver.advance)
    def advance(self, execution_id: str, *, step_id: str | None = None, output: Any = None,
                error: str | None = None, duration_ms: float = 0.0,
                answers: Mapping[str, Any] | None = None) -> Turn:
        return self.client.advance(execution_id, step_id=step_id, output=output, error=error,
                                   duration_ms=duration_ms, answers=answers)

    def get_execution(self, execution_id: str) -> Execution:
        """One execution with its step runs; raises ``NotFound``.

        A client-driven execution with no turn for longer than ``client_ttl_s`` is
        marked failed (``"expired: no turn for N s"``) as it is read.
        """
        return expire_if_abandoned(self.store, self.store.get_execution(execution_id),
                                   self.client_ttl_s)

    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        """Executions, newest first (abandoned client-driven ones expired as in
        :meth:`get_execution`)."""
        return [expire_if_abandoned(self.store, ex, self.client_ttl_s)
                for ex in self.store.list_executions(procedure=procedure, limit=limit,
                                                     offset=offset)]
