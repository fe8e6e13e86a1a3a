"""Client-driven replay: the caller makes the tool calls (MCP, REST, any agent loop).

procmem cannot call an agent's tools when it is reached over a protocol, so
the replay core (:func:`procmem.core.replay.replay_core`) is driven one turn at a
time: :meth:`ClientDriver.start` returns the first tool call to make (with
its bound args) or the needs to answer; :meth:`ClientDriver.advance` takes
the tool's result (or the answers) and returns the next turn, until the
execution ends. This is the same core ``replay()`` drives, with a third driver.

Invariants:
    * Every step run is persisted as soon as its result arrives, so a crash
      loses at most the call in flight; the call is stored as started
      (``Execution.in_flight``) before it is handed to the client.
    * A client-driven execution holds its lease under the owner
      :func:`procmem.services.lease.client_owner` (the same in every process) from
      ``start`` until it pauses or ends, renewed by each ``advance``: any process
      can take its next turn, while ``resume`` with tools elsewhere is refused
      (``ExecutionBusy``) until the lease expires (``lease_s`` after the last turn).
      An ``advance`` while such a resume holds the lease is refused the same way.
    * The next call carries its idempotency key (:func:`procmem.core.drivers.idempotency_key`)
      for the client's tool.
    * A live core is kept per execution in this process; after a restart, an
      execution is rebuilt from the store (the core restarts at its first
      unfinished step). A procedure with sub-procedure steps can only be
      continued by the process that started it while a call is outstanding.
    * A result must answer the outstanding call (same step id and action);
      anything else is a ``UsageError`` and changes nothing.
    * A :class:`ClientDriver` may be shared by threads: ``start`` and ``advance``
      hold its ``lock`` (the live cores are changed one turn at a time).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ..core.drivers import Core, NeedValues, Persist, Sleep, ToolCall, ToolResult
from ..core.errors import ReplayError, UsageError
from ..core.model import Execution, Need, Procedure
from ..core.replay import replay_core
from ..security.redaction import Redactor
from ..security.secret_params import fill_secrets
from ..store.base import Store
from .execution_view import execution_view, expire_if_abandoned
from .lease import LeaseKeeper, client_owner
from .support import synchronized

__all__ = ["ClientDriver", "Runs", "Turn"]


@dataclass
class Turn:
    """One turn of a client-driven execution.

    Attributes:
        execution: The execution as stored now.
        call: The tool call the client must make next (``step_id``, ``action``,
            ``args``), or ``None`` when the execution paused on needs or ended.
    """

    execution: Execution
    call: ToolCall | None = None

    @property
    def needs(self) -> list[Need]:
        """What must be answered (``advance(..., answers={key: value})``) to go on."""
        return self.execution.needs if self.execution.status == "paused" else []

    @property
    def done(self) -> bool:
        """True once the execution succeeded or failed."""
        return self.execution.done

    def to_json(self) -> dict[str, Any]:
        """The one execution shape (:func:`procmem.services.execution_view.execution_view`):
        the execution as JSON plus ``next_call``, ``awaiting`` and ``execution_id``."""
        return execution_view(self.execution, self.call)


class Runs(Protocol):
    """What a :class:`ClientDriver` needs to set up runs
    (:class:`procmem.services.replay.Executions` is one)."""

    @property
    def store(self) -> Store: ...

    @property
    def lease_s(self) -> float: ...

    @property
    def client_ttl_s(self) -> float | None: ...

    @property
    def redactor(self) -> Redactor: ...

    def prepare(self, procedure: Procedure | str, tools: Mapping[str, Any], task: str | None,
                params: Mapping[str, Any] | None, *, provider: bool = True
                ) -> tuple[Procedure, Execution, dict[str, Procedure]]: ...

    def subprocedures(self, proc: Procedure) -> dict[str, Procedure]: ...


class ClientDriver:
    """``start`` / ``advance``: client-driven executions, one turn at a time.

    Args:
        runs: Sets up runs and gives the store and the lease length (seconds).
    """

    def __init__(self, runs: Runs) -> None:
        self.runs = runs
        self.lock = threading.RLock()
        self._live: dict[str, tuple[Core, ToolCall]] = {}

    @property
    def store(self) -> Store:
        """The store of :attr:`runs`."""
        return self.runs.store

    @property
    def lease_s(self) -> float:
        """How long a turn holds the execution's lease (seconds), as :attr:`runs` says."""
        return self.runs.lease_s

    @property
    def client_ttl_s(self) -> float | None:
        """How long a client-driven execution may go without a turn (seconds), as
        :attr:`runs` says (``None``: never expires)."""
        return self.runs.client_ttl_s

    def _prepare(self, procedure: Procedure | str, tools: Mapping[str, Any], task: str | None,
                 params: Mapping[str, Any] | None, *, provider: bool = True
                 ) -> tuple[Procedure, Execution, dict[str, Procedure]]:
        return self.runs.prepare(procedure, tools, task, params, provider=provider)

    def _subprocedures(self, proc: Procedure) -> dict[str, Procedure]:
        return self.runs.subprocedures(proc)

    @synchronized
    def start(self, procedure: Procedure | str, *, task: str | None = None,
              params: Mapping[str, Any] | None = None) -> Turn:
        """Start an execution whose tool calls the caller makes.

        Args:
            procedure: A procedure, or a name (the version is chosen as in ``replay``).
            task: The task text, to bind params from.
            params: Param values by name.

        Returns:
            The first :class:`Turn`: a tool call to make, needs, or the end.

        Raises:
            NotFound, ParamError, CycleError: as :meth:`procmem.Memory.replay`.
        """
        # the client makes the calls: the server's secrets are not handed to it
        proc, ex, subs = self._prepare(procedure, _AnyTools(), task, params, provider=False)
        ex.driver = "client"
        keeper = LeaseKeeper(self.store, client_owner(ex.id), self.lease_s,
                             redactor=self.runs.redactor)
        return self._turn(ex.id, replay_core(proc, ex, subs), None, {}, keeper)

    @synchronized
    def advance(self, execution_id: str, *, step_id: str | None = None, output: Any = None,
                error: str | None = None, duration_ms: float = 0.0,
                answers: Mapping[str, Any] | None = None) -> Turn:
        """Give the result of the outstanding tool call (or answers), get the next turn.

        Args:
            execution_id: The execution.
            step_id: The step the result is for (must be the outstanding call's);
                ``None`` when only answering needs.
            output: What the tool returned (JSON text or data).
            error: The tool's error message when it failed.
            duration_ms: How long the call took, if measured (ms).
            answers: Values by need key (``param:NAME``, ``ask:STEP:POINTER``, ...).

        Returns:
            The next :class:`Turn`.

        Raises:
            NotFound: No such execution.
            UsageError: The result does not answer the outstanding call.
            ReplayError: The execution already ended (also: it expired, no turn for
                longer than ``client_ttl_s``), or it cannot be rebuilt.
            ExecutionBusy: A ``resume`` with tools holds the execution's lease.
        """
        answers = dict(answers or {})
        keeper = LeaseKeeper(self.store, client_owner(execution_id), self.lease_s,
                             redactor=self.runs.redactor)
        stored = expire_if_abandoned(self.store, self.store.get_execution(execution_id),
                                     self.client_ttl_s)
        if stored.done:
            self._live.pop(execution_id, None)
            raise ReplayError(f"execution {execution_id!r} already {stored.status}"
                              + (f": {stored.error}" if stored.error else ""))
        keeper.acquire(execution_id)
        live = self._live.get(execution_id)
        if live is not None and not _still_outstanding(self.store.get_execution(execution_id),
                                                       live[1]):
            del self._live[execution_id]  # another run went on meanwhile: rebuild from the store
            live = None
        if live is not None:
            core, call = live
            if step_id is None:
                raise UsageError(f"execution {execution_id!r} is waiting for the result of "
                                 f"step {call.step_id!r} ({call.action})")
            if step_id != call.step_id:
                raise UsageError(f"the outstanding call is step {call.step_id!r} "
                                 f"({call.action}), not {step_id!r}")
            del self._live[execution_id]
            return self._turn(execution_id, core,
                              ToolResult(output, error, max(duration_ms, 0.0)), answers,
                              keeper, live=True)
        ex = self.store.get_execution(execution_id)
        if ex.done:
            raise ReplayError(f"execution {execution_id!r} already {ex.status}")
        proc = self.store.get_procedure(ex.procedure, ex.version)
        subs = self._subprocedures(proc)
        if subs and ex.status == "running":
            raise ReplayError(f"execution {execution_id!r} was waiting for a call inside a "
                              "sub-procedure in a process that stopped; start it again")
        ex.answers.update(answers)
        fill_secrets(proc, ex, None)  # stored secrets are markers: the client gives them again
        ex.status, ex.needs, ex.error, ex.finished_at = "running", [], None, None
        pending = None
        if step_id is not None:
            pending = ToolResult(output, error, max(duration_ms, 0.0))
            if ex.in_flight is not None and ex.in_flight.step_id == step_id:
                ex.in_flight = None  # this result is that call's: its outcome is known
        return self._turn(execution_id, replay_core(proc, ex, subs), pending, answers,
                          keeper, expect_step=step_id)

    def _turn(self, execution_id: str, core: Core, result: ToolResult | None,
              answers: Mapping[str, Any], keeper: LeaseKeeper, *, live: bool = False,
              expect_step: str | None = None) -> Turn:
        """Drive ``core`` until it needs the client: a tool call, needs, or the end.

        ``live``: ``core`` is suspended at the outstanding call and ``result``
        answers it. Otherwise ``core`` is new; if ``result`` is given it answers
        the first call the core makes, which must be step ``expect_step``.
        """
        reply: Any = result if live else None
        pending = None if live else result
        execution: Execution | None = None
        while True:
            try:
                event = core.send(reply)
            except StopIteration as stop:
                self._live.pop(execution_id, None)
                return Turn(stop.value)
            reply = None
            if isinstance(event, ToolCall):
                if pending is not None:
                    if event.step_id != expect_step:
                        raise UsageError(f"the outstanding call is step {event.step_id!r} "
                                         f"({event.action}), not {expect_step!r}")
                    reply, pending = pending, None
                    continue
                self._live[execution_id] = (core, event)
                return Turn(execution or self.store.get_execution(execution_id), event)
            if isinstance(event, NeedValues):
                reply = {n.key: answers[n.key] for n in event.needs if n.key in answers}
            elif isinstance(event, Sleep):
                reply = None  # the client decides when to call again
            elif isinstance(event, Persist):
                keeper(event.execution, event.step_run)
                if event.execution.id == execution_id:
                    execution = event.execution.model_copy(deep=True)


def _still_outstanding(stored: Execution, call: ToolCall) -> bool:
    """True when the stored execution still waits for ``call`` (no other run went on).

    A call made inside a sub-procedure (its key names the child execution) is
    checked by the parent's status only: the child's header holds its marker.
    """
    if stored.status != "running":
        return False
    if not call.idempotency_key.startswith(stored.id + "/"):
        return True
    started = stored.in_flight
    return started is not None and (started.step_id, started.attempt) == (call.step_id,
                                                                          call.attempt)


class _AnyTools(Mapping[str, Any]):
    """A tool registry that has every action: the client has the tools, not procmem."""

    def __getitem__(self, action: str) -> Any:
        return _client_side

    def __iter__(self) -> Any:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __contains__(self, action: object) -> bool:
        return True


def _client_side(**_: Any) -> Any:
    raise ReplayError("this tool is called by the client, not by procmem")
