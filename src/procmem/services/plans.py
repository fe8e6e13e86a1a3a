"""Plans on a :class:`~procmem.memory.Memory`: what a replay would do, and task plans.

:class:`Plans` is the service ``Memory.plan``, ``plan_task``, ``replay_plan`` and
``areplay_plan`` delegate to. A plan of one procedure is made by
:mod:`procmem.induction.planning`; a task plan (several requests, one procedure each) by
:mod:`procmem.services.multiplan`; its parts run through the replay core
(:mod:`procmem.core.replay`). It searches with a :class:`~procmem.services.search.Searcher`
and runs with an :class:`~procmem.services.replay.Executions` (store, lease, secrets).

Invariants: planning never calls a tool and never writes to the store; a task
plan's tools and procedures are all checked before its first part runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from ..core.drivers import NeedResolver as Resolver
from ..core.drivers import Tools
from ..core.model import Execution, Hit, Need, Procedure
from ..core.replay import adrive, drive, replay_core
from ..induction.planning import Plan, nothing_fits, plan_hit, plan_procedure
from ..security.secret_params import SecretProvider
from ..store.base import Store
from .lease import LeaseKeeper, new_owner
from .multiplan import PlanRun, TaskPlan, plan_task, prepare_parts, run_result
from .replay import Executions
from .search import Searcher

__all__ = ["Plans"]


class Plans:
    """Plans of one procedure or of a whole task, and task plans' replays.

    Args:
        searcher: Finds the procedures that fit a task.
        executions: Gives the store, the lease length and the secret provider of runs.
    """

    def __init__(self, searcher: Searcher, executions: Executions) -> None:
        self.searcher = searcher
        self.executions = executions

    @property
    def store(self) -> Store:
        """The store of :attr:`executions`."""
        return self.executions.store

    @property
    def lease_s(self) -> float:
        """The lease length of :attr:`executions` (seconds)."""
        return self.executions.lease_s

    @property
    def secrets(self) -> SecretProvider | None:
        """The secret provider of :attr:`executions`."""
        return self.executions.secrets

    def plan(self, task: str, *, procedure: Procedure | Hit | str | None = None,
             version: int | None = None, params: Mapping[str, Any] | None = None) -> Plan:
        """What a replay for ``task`` would do, without calling a tool (:mod:`induction.planning`).

        Args:
            task: The task in plain words (may be empty when ``procedure`` is given).
            procedure: The top search hit by default; else a hit (planned with its
                confidence, no search), a procedure or a name (its current version, or
                ``version``; confident only as its hit among the top 10). A replay by
                name may pick a verified candidate: replay ``plan.version`` to match.
            version: With a name: plan this version.
            params: Param values by name, as :meth:`replay` takes them.

        Returns:
            A :class:`~procmem.induction.planning.Plan`; one without procedure when nothing fits.

        Raises:
            NotFound: No such procedure, version or sub-procedure.
            UsageError: ``task`` is empty and no procedure is named.
            ParamError / CycleError: As :meth:`replay` raises them.
        """
        if procedure is None:
            hits = self.searcher.search(task, limit=1)
            if not hits:
                return nothing_fits(task)
            procedure = hits[0]
        if isinstance(procedure, Hit):
            subs = self.executions.subprocedures(procedure.procedure)
            return plan_hit(procedure, task, params=params, procedures=subs)
        proc = procedure if isinstance(procedure, Procedure) else \
            self.store.get_procedure(procedure, version)
        hit = next((h for h in (self.searcher.search(task, limit=10) if task.strip() else [])
                    if h.procedure.key == proc.key), None)
        return plan_procedure(proc, task, params=params,
                              procedures=self.executions.subprocedures(proc), hit=hit)

    def plan_task(self, task: str) -> TaskPlan:
        """Plan a task that may hold several requests: one procedure per request when
        the top hit leaves one uncovered (:mod:`procmem.services.multiplan`), else the top hit.

        Args:
            task: The task in plain words.

        Returns:
            A :class:`~procmem.services.multiplan.TaskPlan`: its ``parts`` run in order
            (:meth:`replay_plan`); ``uncovered`` lists requests no part covers.

        Raises:
            UsageError: ``task`` is empty.
        """
        return plan_task(task, search=lambda text, limit: self.searcher.search(text, limit=limit),
                         plan=lambda hit, text: self.plan(text, procedure=hit))

    def replay_plan(self, plan: TaskPlan, *, tools: Tools, resolver: Resolver | None = None,
                    partial: bool = False) -> PlanRun:
        """Replay a task plan's parts in order, stopping at the first that does not succeed.

        Each part runs its planned version, its params bound from its own request's
        text (``part.text``). Every part's tools are checked before anything runs.
        To go on after a pause: :meth:`resume` the stopped execution with its answers,
        then replay the rest, ``plan.model_copy(update={"parts": plan.parts[i + 1:]})``.

        Args:
            plan: From :meth:`plan_task`.
            tools: Tool callables by action name (as :meth:`replay`).
            resolver: Answers needs (as :meth:`replay`).
            partial: Run the parts even when the plan has uncovered requests (the
                run then ends ``paused``, listing them); by default such a plan is
                ``refused`` and nothing runs.

        Returns:
            A :class:`~procmem.services.multiplan.PlanRun`: status, the executions that ran,
            where it stopped, the parts not run.

        Raises:
            NotFound / UnknownTool / ParamError / CycleError / ExecutionBusy: As
                :meth:`replay` (tools and procedures are checked before any part runs).
        """
        ready = prepare_parts(self.store, plan, tools, partial=partial,
                              secrets=self.secrets)
        if isinstance(ready, PlanRun):
            return ready
        executions: list[Execution] = []
        for proc, ex, subs in ready:
            with LeaseKeeper(self.store, new_owner(), self.lease_s,
                             redactor=self.executions.redactor) as keeper:
                executions.append(drive(replay_core(proc, ex, subs), tools, resolver, keeper))
            if executions[-1].status != "succeeded":
                break
        return run_result(plan, executions)

    async def areplay_plan(self, plan: TaskPlan, *, tools: Tools,
                           resolver: Callable[[Need], Any | Awaitable[Any]] | None = None,
                           partial: bool = False) -> PlanRun:
        """Async twin of :meth:`replay_plan`."""
        ready = prepare_parts(self.store, plan, tools, partial=partial,
                              secrets=self.secrets)
        if isinstance(ready, PlanRun):
            return ready
        executions: list[Execution] = []
        for proc, ex, subs in ready:
            with LeaseKeeper(self.store, new_owner(), self.lease_s,
                             redactor=self.executions.redactor) as keeper:
                executions.append(await adrive(replay_core(proc, ex, subs), tools, resolver,
                                               keeper))
            if executions[-1].status != "succeeded":
                break
        return run_result(plan, executions)

