"""Setting up a replay or a resume of a stored procedure: the I/O around the replay core.

A small service under :class:`procmem.Memory` (whose ``replay``, ``resume``,
``start`` and ``plan`` delegate to it): it reads the procedure and its
sub-procedures from the store, binds params, and reopens a stored execution
under a lease. The policy itself is :func:`procmem.replay.replay_core`; the
drivers are :mod:`procmem.drivers`.

Invariants:
    * Every check that can refuse a run (missing tools, sub-procedures, params)
      runs before any tool is called.
    * Params given by the caller win over values bound from the task; each value's
      source is kept in ``Execution.param_sources`` (``"given"`` or ``"task"``).
    * :func:`reopen` takes the execution's lease before it touches the execution,
      and reads it again once leased, so a run elsewhere is never resumed twice
      and a run that succeeded meanwhile is never run again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .bind import bind_task
from .drivers import Core
from .errors import NotFound, ReplayError
from .lease import LeaseKeeper, new_owner
from .model import Execution, Procedure
from .redaction import Redactor
from .replay import check_tools, replay_core
from .secret_params import SecretProvider, fill_secrets
from .store.base import Store

__all__ = ["prepare", "reopen", "subprocedures"]


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
        secrets: Where secret params' values come from (:mod:`procmem.secret_params`).

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
            stored; see :mod:`procmem.secret_params`).

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
