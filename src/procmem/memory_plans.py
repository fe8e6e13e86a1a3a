"""Task plans on a :class:`~procmem.memory.Memory`: several requests, one procedure each.

A mixin of :class:`~procmem.memory.Memory` (planning in :mod:`procmem.multiplan`,
the replay core in :mod:`procmem.replay`); it reads the memory's store, search,
plan, lease and secret provider.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .drivers import NeedResolver as Resolver
from .drivers import Tools
from .lease import LeaseKeeper, new_owner
from .model import Execution, Need
from .multiplan import PlanRun, TaskPlan, plan_task, prepare_parts, run_result
from .replay import adrive, drive, replay_core

if TYPE_CHECKING:
    from .redaction import Redactor
    from .secret_params import SecretProvider
    from .store.base import Store

__all__ = ["TaskPlanMixin"]


class TaskPlanMixin:
    """:meth:`plan_task`, :meth:`replay_plan` and :meth:`areplay_plan` of a Memory."""

    store: Store
    lease_s: float
    secrets: SecretProvider | None
    redactor: Redactor

    def plan_task(self, task: str) -> TaskPlan:
        """Plan a task that may hold several requests: one procedure per request when
        the top hit leaves one uncovered (:mod:`procmem.multiplan`), else the top hit.

        Args:
            task: The task in plain words.

        Returns:
            A :class:`~procmem.multiplan.TaskPlan`: its ``parts`` run in order
            (:meth:`replay_plan`); ``uncovered`` lists requests no part covers.

        Raises:
            UsageError: ``task`` is empty.
        """
        memory: Any = self  # a Memory: search (procmem.memory_search) and plan
        return plan_task(task, search=lambda text, limit: memory.search(text, limit=limit),
                         plan=lambda hit, text: memory.plan(text, procedure=hit))

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
            A :class:`~procmem.multiplan.PlanRun`: status, the executions that ran,
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
                             redactor=self.redactor) as keeper:
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
                             redactor=self.redactor) as keeper:
                executions.append(await adrive(replay_core(proc, ex, subs), tools, resolver,
                                               keeper))
            if executions[-1].status != "succeeded":
                break
        return run_result(plan, executions)

