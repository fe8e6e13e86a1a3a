"""The core commands of the ``procmem`` CLI: learn, list, show, replay, resume.

They register on :data:`procmem.cli.app.main` when this module is imported (the
package :mod:`procmem.cli` imports it); rendering lives in :mod:`procmem.cli.render`.

Invariants:
    * Thin adapters over :class:`procmem.Memory`; settings, errors and exit codes
      are those of :mod:`procmem.cli.app`.
    * Importing this module is cheap: the memory, the models and rich are
      imported when a command runs.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from ..formats.toolspec import load_tools
from .app import (
    JSON_OBJECT,
    PAUSED_EXIT,
    all_procedures,
    console,
    emit,
    json_option,
    main,
    open_memory,
    procedure_summary,
    progress_bar,
)

if TYPE_CHECKING:
    from ..core.model import Execution

__all__: list[str] = []


@main.command()
@click.argument("file", metavar="FILE.jsonl")
@click.option("--skip-invalid", is_flag=True,
              help="Store the valid lines and list the invalid ones instead of failing.")
@click.option("--namespace", metavar="NS",
              help="Namespace of the procedures this creates (search --namespace filters by it).")
@json_option
@click.pass_context
def learn(ctx: click.Context, file: str, skip_invalid: bool, namespace: str | None,
          as_json: bool) -> None:
    """Import traces from FILE.jsonl (one transaction) and learn procedures from them."""
    from ..services.learn import check_namespace
    from . import render

    mem = open_memory(ctx)
    if namespace is not None:
        check_namespace(namespace)  # before anything is imported
    imported = asdict(mem.import_traces(file, skip_invalid=skip_invalid))
    with progress_bar(not as_json, "embedding procedures for search", lazy=True) as progress:
        learned = asdict(mem.learn(namespace=namespace, progress=progress))
        indexed = mem.warm_index(progress=progress)
    if as_json:
        emit({"import": imported, "learn": learned, "index": indexed})
        return
    for error in imported["errors"]:
        click.echo(f"skipped: {error}", err=True)
    console().print(render.learn_view(imported, learned))


@main.command("list")
@click.option("--status", type=click.Choice(["candidate", "active", "deprecated"]),
              help="Only procedures with this status.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List procedures (current versions)."""
    from . import render

    procs = all_procedures(open_memory(ctx), status)
    if as_json:
        emit([procedure_summary(p) for p in procs])
        return
    if not procs:
        click.echo("no procedures yet: learn some with `procmem learn FILE.jsonl`")
        return
    console().print(render.procedures_table(procs, title=f"{len(procs)} procedure(s)",
                                         examples=False))


@main.command()
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), help="A given version.")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """Show one procedure: params, steps (args templates), lineage, statistics."""
    from . import render

    proc = open_memory(ctx).get_procedure(name, version)
    if as_json:
        emit(proc.model_dump(mode="json", by_alias=True))
        return
    console().print(render.procedure_view(proc))


def _resume_command(ctx: click.Context, ex: Execution, tools: str) -> str:
    from . import render

    db = ""
    if ctx.parent and ctx.parent.get_parameter_source("db") == ParameterSource.COMMANDLINE:
        db = f" --db {shlex.quote(ctx.obj['db'])}"
    answers = json.dumps(render.answers_template(ex.needs), ensure_ascii=False)
    return (f"procmem{db} resume {ex.id} --tools {shlex.quote(tools)} "
            f"--answers {shlex.quote(answers)}")


def _show_execution(ctx: click.Context, ex: Execution, tools: str, as_json: bool) -> None:
    from . import render

    if as_json:
        data = ex.model_dump(mode="json")
        if ex.status == "paused":
            data["resume_command"] = _resume_command(ctx, ex, tools)
        emit(data)
    else:
        out = console()
        out.print(render.execution_view(ex))
        if ex.status == "paused":
            out.print(render.needs_view(ex.needs, _resume_command(ctx, ex, tools)))
    if ex.status == "failed":
        ctx.exit(1)
    if ex.status == "paused":
        ctx.exit(PAUSED_EXIT)


def _answers_resolver(answers: Mapping[str, Any]) -> Callable[[Any], Any]:
    return lambda need: answers.get(need.key)


@main.command()
@click.argument("name")
@click.option("--tools", "tools_spec", required=True, metavar="MODULE:OBJECT",
              help="Tools: a mapping action->callable, or an object whose attributes are tools.")
@click.option("--task", help="The new task's text; params are bound from it.")
@click.option("--params", type=JSON_OBJECT, help="Param values, a JSON object.")
@click.option("--answers", type=JSON_OBJECT,
              help="Answers to needs by key, a JSON object (e.g. '{\"ask:s1:/item_ids\": [1]}').")
@json_option
@click.pass_context
def replay(ctx: click.Context, name: str, tools_spec: str, task: str | None,
           params: dict[str, Any] | None, answers: dict[str, Any] | None, as_json: bool) -> None:
    """Replay procedure NAME against real tools.

    Needs that neither --params, --task nor --answers fill pause the execution;
    the output shows them and the `procmem resume` command that continues it.
    """
    mem = open_memory(ctx)
    proc = mem.get_procedure(name)
    tools = load_tools(tools_spec)
    ex = mem.replay(proc, tools=tools, task=task, params=params,
                    resolver=_answers_resolver(answers or {}))
    _show_execution(ctx, ex, tools_spec, as_json)


@main.command()
@click.argument("execution_id")
@click.option("--tools", "tools_spec", required=True, metavar="MODULE:OBJECT",
              help="Tools: a mapping action->callable, or an object whose attributes are tools.")
@click.option("--answers", type=JSON_OBJECT, required=True,
              help="Answers to the open needs by key, a JSON object.")
@json_option
@click.pass_context
def resume(ctx: click.Context, execution_id: str, tools_spec: str, answers: dict[str, Any],
           as_json: bool) -> None:
    """Continue a paused, failed or interrupted execution with answers to its needs.

    Refused (exit 4, execution_busy) while the execution runs in another process.
    """
    mem = open_memory(ctx)
    mem.get_execution(execution_id)
    ex = mem.resume(execution_id, answers, tools=load_tools(tools_spec))
    _show_execution(ctx, ex, tools_spec, as_json)
