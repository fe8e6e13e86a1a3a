"""The REST routes of plans: ``POST /plan`` (see :meth:`procmem.Memory.plan`) and
``POST /plan/task`` (one procedure per request, :meth:`procmem.Memory.plan_task`).

:func:`add_plan_route` adds it to the app :func:`procmem.rest.app.create_app` builds,
with that app's strict body validation, so it follows the invariants of
:mod:`procmem.rest.app` (one error shape, JSON types checked as JSON Schema would).

Invariants:
    * No tool is called; the answer is :meth:`procmem.induction.planning.Plan.to_json`, the
      shape ``procmem plan --json`` and the MCP search hits' ``plan`` carry too
      (``/plan/task``: :meth:`procmem.services.multiplan.TaskPlan.to_json`, as
      ``procmem plan --multi --json`` and MCP's ``task_plan``).
    * "Nothing fits" is a 200 answer: a plan without procedure and steps.

FastAPI is imported by the caller only (this module imports none of it).
"""

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import UsageError
from ..core.model import NAME_PATTERN
from ..induction.planning import Plan
from ..memory import Memory
from ..services.multiplan import TaskPlan
from .models import error_responses

__all__ = ["PlanRequest", "TaskPlanRequest", "add_plan_route"]

class PlanRequest(BaseModel):
    """``POST /plan``: what would a replay do for this task?

    Attributes:
        task: The task in plain words; params are bound from it. It may be empty
            only when ``procedure`` is given.
        procedure: Plan this procedure instead of the top search hit.
        version: With ``procedure``: plan this version (default: the current one).
        params: Param values by name, as for ``POST /executions``.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"task": "Cancel order #W6067464 because no longer needed."},
        {"task": "Cancel order #W6067464 please", "procedure": "cancel_pending_order",
         "params": {"reason": "no longer needed"}},
    ]})

    task: str = Field(max_length=20_000)
    procedure: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=200)
    version: int | None = Field(default=None, ge=1, le=2**31 - 1)
    params: dict[str, Any] = Field(default_factory=dict)


class TaskPlanRequest(BaseModel):
    """``POST /plan/task``: which procedures would do this task, one per request?

    Attributes:
        task: The task in plain words, possibly several requests.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"task": "Cancel order #W6067464 because no longer needed. Also, return "
                 "#W2286012 via gift_card_7588375: Electric Toothbrush."},
    ]})

    task: str = Field(min_length=1, max_length=20_000)


def add_plan_route(app: Any, memory: Memory, strict_body: Callable[[Any], Any]) -> None:
    """Add ``POST /plan`` and ``POST /plan/task`` to ``app``.

    Args:
        app: The FastAPI app.
        memory: The app's memory.
        strict_body: The app's strict JSON body validation dependency factory.
    """

    @app.post("/plan", response_model=Plan, response_model_exclude_none=True, tags=["search"],
              operation_id="plan", dependencies=[strict_body(PlanRequest)],
              responses=error_responses(400, 404))
    def plan(body: PlanRequest) -> dict[str, Any]:
        """What a replay would do for a task, without calling any tool: the procedure
        (the top search hit, or the one named), each value it would send with its
        source (and span in the task), what would pause it, and the confidence."""
        if body.version is not None and body.procedure is None:
            raise UsageError("version needs procedure")
        answer: dict[str, Any] = memory.plan(
            body.task, procedure=body.procedure, version=body.version,
            params=body.params).to_json()
        return answer

    @app.post("/plan/task", response_model=TaskPlan, response_model_exclude_none=True,
              tags=["search"], operation_id="plan_task",
              dependencies=[strict_body(TaskPlanRequest)], responses=error_responses(400))
    def plan_task(body: TaskPlanRequest) -> dict[str, Any]:
        """Which procedures would do a task, without calling any tool: the top hit when
        it covers every request of the task, else one plan per request (each bound
        from its own request's text) when every request has a well-supported hit;
        requests no procedure covers are listed in ``uncovered``."""
        answer: dict[str, Any] = memory.plan_task(body.task).to_json()
        return answer
