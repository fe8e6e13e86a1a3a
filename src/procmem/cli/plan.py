"""The ``procmem plan`` command: what a replay would do for a task, without calling any tool.

It registers on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it); the views are in :mod:`procmem.cli.render_plan`.

Invariants:
    * A thin adapter over :meth:`procmem.Memory.plan`; settings, errors and exit
      codes are those of :mod:`procmem.cli`. It never loads or calls a tool.
    * ``--json`` prints :meth:`procmem.induction.planning.Plan.to_json` (the shape REST and
      MCP serve too) and nothing else on stdout; with ``--multi``,
      :meth:`procmem.services.multiplan.TaskPlan.to_json` (one plan per request when one
      procedure does not cover the task). Exit code 0 whether or not the plan would
      pause, and when nothing fits (the plan says so).
"""

from __future__ import annotations

from typing import Any

import click

from .app import JSON_OBJECT, console, emit, json_option, main, open_memory

__all__: list[str] = []


@main.command()
@click.argument("task")
@click.option("--procedure", metavar="NAME",
              help="Plan this procedure instead of the top search hit.")
@click.option("--version", type=click.IntRange(min=1), help="With --procedure: this version.")
@click.option("--params", type=JSON_OBJECT, help="Param values, a JSON object (as for replay).")
@click.option("--multi", is_flag=True,
              help="Split TASK into its requests and plan one procedure per request when "
                   "the top hit does not cover them all (lists requests nothing covers).")
@json_option
@click.pass_context
def plan(ctx: click.Context, task: str, procedure: str | None, version: int | None,
         params: dict[str, Any] | None, multi: bool, as_json: bool) -> None:
    """Show what replaying a procedure for TASK would do, without calling any tool.

    For each step: every argument with the value it would send and where that
    value comes from (the task text with its span, --params, a default, an earlier
    step's output, a question); then what would pause the replay, and how
    confident search is that the procedure fits. With --multi, a task holding
    several requests ("cancel #W1 ... Also, return #W2 ...") gets one plan per
    request when no single procedure covers them all.
    """
    from .render_plan import plan_view, task_plan_view

    if version is not None and procedure is None:
        raise click.UsageError("--version needs --procedure")
    if multi:
        if procedure is not None or params is not None:
            raise click.UsageError("--multi plans the procedures search finds: "
                                   "no --procedure or --params with it")
        task_plan = open_memory(ctx).plan_task(task)
        if as_json:
            emit(task_plan.to_json())
        else:
            console().print(task_plan_view(task_plan))
        return
    result = open_memory(ctx).plan(task, procedure=procedure, version=version, params=params)
    if as_json:
        emit(result.to_json())
        return
    console().print(plan_view(result))
