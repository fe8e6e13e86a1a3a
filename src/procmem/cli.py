"""The ``procmem`` command line: a thin adapter over :class:`procmem.memory.Memory`.

Commands: ``learn``, ``list``, ``show``, ``search``, ``replay``, ``resume``,
``eval``, ``demo`` (``procmem --help``), and the learning commands of
:mod:`procmem.cli_learning` (``stats``, ``report``, ``optimize``, ``history``,
``diff``, ``rollback``, ``pin``, ``unpin``, ``decay``, ``delete``), ``traces``
(:mod:`procmem.cli_traces`: ``list``, ``show``, ``rm``), imported
last so that they register on :data:`main`. Rendering lives in
:mod:`procmem.cli_render`.

Invariants:
    * Settings are read here only: ``--db PATH``, else the ``PROCMEM_DB``
      environment variable, else ``procmem.db`` in the current directory.
      ``eval`` and ``demo`` use a temporary in-memory store and never open it.
    * With ``--json`` a command prints plain JSON on stdout and nothing else
      there (progress bars and warnings go to stderr).
    * A :class:`~procmem.errors.ProcmemError` becomes one line
      ``error[<code>]: <message>`` on stderr and an exit code chosen by its
      code: usage errors (``usage``, ``invalid_*``, ``param_error``,
      ``unknown_tool``) 2, ``not_found`` 3, ``conflict`` and ``execution_busy`` 4,
      any other 1.
      Malformed options (bad JSON in ``--params``) are Click usage errors
      naming the option, also exit code 2. Bad input never shows a traceback.
    * ``replay`` and ``resume`` exit 0 when the execution succeeded or paused
      and 1 when it failed (a failed tool call is data, not an error line).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict
from importlib import resources
from typing import Any, NoReturn

import click
from click.core import ParameterSource
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from . import cli_render as render
from .embed import Embedder, embedder_from_spec
from .errors import NotFound, ProcmemError, UsageError
from .evaluate import Oracle, RecordedEnvironment, count_leaves, evaluate, split_holdout
from .keys import DEFAULT_TENANT
from .memory import Memory, check_namespace
from .model import Execution, Hit, Procedure, Trace
from .paging import read_all
from .rerank import Reranker, reranker_from_spec
from .serialize import error_line, error_of, hit_record
from .toolspec import load_tools
from .traceio import read_traces

__all__ = ["EXIT_CODES", "exit_code", "load_tools", "main"]

EXIT_CODES: dict[str, int] = {
    "usage": 2, "invalid_trace": 2, "invalid_template": 2, "invalid_procedure": 2,
    "param_error": 2, "unknown_tool": 2, "not_found": 3, "conflict": 4, "execution_busy": 4,
    "embedding_error": 5,
    "rerank_error": 5,
}
"""Exit code by error code; a code not listed exits with 1 (2 for any UsageError)."""

DEMO_HOLDOUT = 30
"""The demo trains on the bundled sample except its last ``DEMO_HOLDOUT`` traces."""


def exit_code(err: ProcmemError) -> int:
    """The process exit code for an error (see :data:`EXIT_CODES`)."""
    if err.code in EXIT_CODES:
        return EXIT_CODES[err.code]
    return 2 if isinstance(err, UsageError) else 1


def _fail(code: str, message: str, status: int) -> NoReturn:
    click.echo(error_line(code, message), err=True)
    sys.exit(status)


class _Group(click.Group):
    """A Click group that turns procmem errors into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProcmemError as err:
            _fail(err.code, str(err), exit_code(err))
        except ValidationError as err:
            _fail(*error_of(err)[:2], 2)


class _JSONObject(click.ParamType):
    """A click option value that must be a JSON object."""

    name = "JSON"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        try:
            data = json.loads(value)
        except ValueError as err:
            self.fail(f"not valid JSON ({err}): {value!r}", param, ctx)
        if not isinstance(data, dict):
            self.fail(f"must be a JSON object, got a JSON {type(data).__name__}", param, ctx)
        return data


JSON_OBJECT = _JSONObject()
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON on stdout.")


def _out() -> Console:
    return Console(highlight=False, soft_wrap=False)


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _reranker(spec: str | None) -> Reranker | None:
    """The reranker of ``--reranker`` / ``PROCMEM_RERANKER`` (``OPENAI_API_KEY`` for openai:)."""
    return reranker_from_spec(spec, api_key=os.environ.get("OPENAI_API_KEY"))


def _embedder(spec: str | None) -> Embedder | str | None:
    """The embedder of ``--embedder`` / ``PROCMEM_EMBEDDER`` (``OPENAI_API_KEY`` for openai:)."""
    if spec is None or spec == "default":
        return "default"
    return embedder_from_spec(spec, api_key=os.environ.get("OPENAI_API_KEY"))


def _memory(ctx: click.Context) -> Memory:
    """The memory at ``--db``, closed when the command ends."""
    extra = {} if ctx.obj.get("min_constant") is None else {"min_constant":
                                                            ctx.obj["min_constant"]}
    return ctx.with_resource(Memory(ctx.obj["db"], embedder=_embedder(ctx.obj.get("embedder")),
                                    reranker=_reranker(ctx.obj.get("reranker")),
                                    tenant=ctx.obj.get("tenant") or DEFAULT_TENANT, **extra))


def _all_procedures(mem: Memory, status: str | None = None) -> list[Procedure]:
    return read_all(lambda limit, offset: mem.list_procedures(status=status, limit=limit,
                                                              offset=offset))


# ------------------------------------------------------------------ tools


# ------------------------------------------------------------------ JSON shapes


def procedure_summary(proc: Procedure) -> dict[str, Any]:
    """The ``list --json`` record of one procedure."""
    return {
        "name": proc.name, "version": proc.version, "status": proc.status,
        "description": proc.description, "tags": proc.tags,
        "actions": list(proc.signature()), "params": [p.name for p in proc.params],
        "demonstrations": len(proc.lineage.traces),
        "execution_count": proc.execution_count, "success_rate": proc.success_rate,
        "avg_duration_ms": proc.avg_duration_ms,
        "last_executed_at": proc.last_executed_at.isoformat() if proc.last_executed_at else None,
    }


def hit_json(rank: int, hit: Hit) -> dict[str, Any]:
    """The ``search --json`` record of one hit (:func:`procmem.serialize.hit_record`)."""
    return hit_record(rank, hit)


# ------------------------------------------------------------------ commands


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", default="procmem.db", envvar="PROCMEM_DB", show_default=True,
              metavar="PATH", help="The memory file (or ':memory:'); env PROCMEM_DB.")
@click.option("--embedder", envvar="PROCMEM_EMBEDDER", metavar="SPEC",
              help="Embedding model of hybrid search: default (paraphrase-MiniLM-L3, "
                   "offline), minilm-l6, none (BM25 only), st:MODEL_OR_PATH, "
                   "openai:MODEL[@BASE_URL]; env PROCMEM_EMBEDDER.")
@click.option("--reranker", envvar="PROCMEM_RERANKER", metavar="SPEC",
              help="A language model that reorders the top 10 hits of every search: "
                   "none (the default) or openai:MODEL[@BASE_URL] (OPENAI_API_KEY); "
                   "env PROCMEM_RERANKER.")
@click.option("--min-constant", envvar="PROCMEM_MIN_CONSTANT", type=click.IntRange(min=1),
              metavar="N", help="Demonstrations that must agree on a value before learning "
                                "sends it as a literal without asking (default 48; a small "
                                "store of config-like constants may lower it); env "
                                "PROCMEM_MIN_CONSTANT.")
@click.option("--tenant", default=DEFAULT_TENANT, envvar="PROCMEM_TENANT", show_default=True,
              metavar="NAME", help="Whose data to use (a tenant has its own store beside the "
                                   "memory file; docs/security.md); env PROCMEM_TENANT.")
@click.version_option(package_name="procedural-memory")
@click.pass_context
def main(ctx: click.Context, db: str, embedder: str | None, reranker: str | None,
         min_constant: int | None, tenant: str) -> None:
    """procmem: procedural memory for AI agents.

    Learn reusable procedures from traces of tool calls, find the right one for
    a new task, replay it against real tools, and measure how well it fits.
    Start with `procmem demo`.
    """
    ctx.obj = {"db": db, "embedder": embedder, "reranker": reranker,
               "min_constant": min_constant, "tenant": tenant}


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
    mem = _memory(ctx)
    if namespace is not None:
        check_namespace(namespace)  # before anything is imported
    imported = asdict(mem.import_traces(file, skip_invalid=skip_invalid))
    learned = asdict(mem.learn(namespace=namespace))
    with _progress(not as_json, "embedding procedures for search") as progress:
        indexed = mem.warm_index(progress=progress)
    if as_json:
        _emit({"import": imported, "learn": learned, "index": indexed})
        return
    for error in imported["errors"]:
        click.echo(f"skipped: {error}", err=True)
    _out().print(render.learn_view(imported, learned))


@main.command("list")
@click.option("--status", type=click.Choice(["candidate", "active", "deprecated"]),
              help="Only procedures with this status.")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, status: str | None, as_json: bool) -> None:
    """List procedures (current versions)."""
    procs = _all_procedures(_memory(ctx), status)
    if as_json:
        _emit([procedure_summary(p) for p in procs])
        return
    if not procs:
        click.echo("no procedures yet: learn some with `procmem learn FILE.jsonl`")
        return
    _out().print(render.procedures_table(procs, title=f"{len(procs)} procedure(s)",
                                         examples=False))


@main.command()
@click.argument("name")
@click.option("--version", "version", type=click.IntRange(min=1), help="A given version.")
@json_option
@click.pass_context
def show(ctx: click.Context, name: str, version: int | None, as_json: bool) -> None:
    """Show one procedure: params, steps (args templates), lineage, statistics."""
    proc = _memory(ctx).get_procedure(name, version)
    if as_json:
        _emit(proc.model_dump(mode="json", by_alias=True))
        return
    _out().print(render.procedure_view(proc))


def _resume_command(ctx: click.Context, ex: Execution, tools: str) -> str:
    db = ""
    if ctx.parent and ctx.parent.get_parameter_source("db") == ParameterSource.COMMANDLINE:
        db = f" --db {shlex.quote(ctx.obj['db'])}"
    answers = json.dumps(render.answers_template(ex.needs), ensure_ascii=False)
    return (f"procmem{db} resume {ex.id} --tools {shlex.quote(tools)} "
            f"--answers {shlex.quote(answers)}")


def _show_execution(ctx: click.Context, ex: Execution, tools: str, as_json: bool) -> None:
    if as_json:
        data = ex.model_dump(mode="json")
        if ex.status == "paused":
            data["resume_command"] = _resume_command(ctx, ex, tools)
        _emit(data)
    else:
        out = _out()
        out.print(render.execution_view(ex))
        if ex.status == "paused":
            out.print(render.needs_view(ex.needs, _resume_command(ctx, ex, tools)))
    if ex.status == "failed":
        ctx.exit(1)


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
    mem = _memory(ctx)
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
    mem = _memory(ctx)
    mem.get_execution(execution_id)
    ex = mem.resume(execution_id, answers, tools=load_tools(tools_spec))
    _show_execution(ctx, ex, tools_spec, as_json)


@contextmanager
def _progress(enabled: bool, label: str, then: str | None = None, *,
              lazy: bool = False) -> Iterator[Any]:
    """A progress bar on stderr, as ``update(done, total)`` (``None`` when disabled).

    With ``then``, yields two updaters: the first for ``label``, the second for a
    next phase that relabels the same bar. With ``lazy``, the bar only appears
    once an update has something to count (``total > 0``).
    """
    if not enabled:
        yield (None, None) if then else None
        return
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=True)
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        if lazy and not bar.live.is_started:
            if total <= 0:
                return
            bar.start()
        bar.update(task, completed=done, total=total)

    def update_then(done: int, total: int) -> None:
        bar.update(task, description=then, completed=done, total=total)

    if lazy:
        try:
            yield update
        finally:
            if bar.live.is_started:
                bar.stop()
        return
    with bar:
        yield (update, update_then) if then else update


# ------------------------------------------------------------------ demo


def sample_traces() -> list[Trace]:
    """The bundled τ-retail sample (160 traces; see ``procmem/data/tau_retail/README.md``)."""
    ref = resources.files("procmem").joinpath("data", "tau_retail", "sample.jsonl")
    with resources.as_file(ref) as path:
        traces, _ = read_traces(path)
    return traces


def pick_demo_trace(test: list[Trace], procs: list[Procedure]) -> Trace:
    """The first held-out trace of a kind (action sequence) that was demonstrated
    at least twice and takes two or more steps; else the first of a learned kind.
    """
    demos = {p.signature(): len(p.lineage.traces) for p in procs}
    for wanted in (lambda s: demos.get(s, 0) >= 2 and len(s) >= 2, lambda s: s in demos):
        for trace in test:
            if wanted(trace.signature()):
                return trace
    return test[0]


@main.command()
@click.option("--trace", "trace_id", metavar="ID",
              help="Demonstrate on this held-out trace instead (e.g. tau-retail-train-135).")
@json_option
def demo(trace_id: str | None, as_json: bool) -> None:
    """Learn, search, replay and evaluate on bundled real traces (offline, in memory)."""
    start = time.perf_counter()
    traces = sample_traces()
    train, test = split_holdout(traces, DEMO_HOLDOUT)
    out = Console(stderr=True, quiet=True) if as_json else _out()
    out.rule("[bold]procmem demo[/]: procedural memory on real τ-bench retail traces")
    out.print(f"Bundled sample: {len(traces)} real customer-service traces (τ-bench retail "
              f"train split, Sierra, MIT). Learning from the first {len(train)}, "
              f"holding out the last {len(test)}.", highlight=False)
    with Memory(":memory:") as mem:
        t0 = time.perf_counter()
        learned = mem.learn(train)
        learn_s = time.perf_counter() - t0
        procs = sorted(_all_procedures(mem), key=lambda p: (-len(p.lineage.traces), p.name))
        shown = [p for p in procs if len(p.lineage.traces) >= 3]
        twice = sum(1 for p in procs if len(p.lineage.traces) == 2)
        out.print()
        out.rule(f"1. learned {len(procs)} procedures in {learn_s:.2f} s, no LLM")
        out.print(render.procedures_table(
            shown, title=f"the {len(shown)} procedures demonstrated 3 times or more"))
        out.print(f"(and {twice} more demonstrated twice, {len(procs) - len(shown) - twice} "
                  "learned from a single demonstration: `procmem list` shows all)", style="dim")
        if trace_id:
            trace = next((t for t in test if t.id == trace_id), None)
            if trace is None:
                raise NotFound("held-out trace", trace_id)
        else:
            trace = pick_demo_trace(test, procs)
        hits = mem.search(trace.task, limit=5)
        out.print()
        out.rule("2. a task it has never seen")
        top = hits[0].procedure if hits else None
        spans = mem.bind(top, trace.task).spans if top else {}
        out.print(render.task_panel(trace.task, spans,
                                    title=f"held-out trace {trace.id} (highlighted: values "
                                          "the top hit binds from the text)"))
        out.print(render.hits_table(hits[:3], title="search: top hits and why (hybrid: "
                                    "BM25 + MiniLM vectors, fused by their scores)", values=False))
        out.print(render.hits_evidence(hits[:1]))
        ex = exact = None
        if top is not None:
            out.print()
            out.rule(f"3. replay the top hit: {top.name}")
            out.print(render.procedure_view(top))
            env = RecordedEnvironment(trace)
            ex = mem.replay(top, tools=env.tools(top.signature()), task=trace.task,
                            resolver=Oracle(trace, top))
            exact = env.exact()
            out.print("\nRunning it against a [bold]recorded environment[/] (a call returns the "
                      "recorded output when action and args match, else fails); values it "
                      "could not bind are answered by an [bold]oracle[/] reading the held-out "
                      "trace:\n")
            out.print(render.execution_view(ex, answered_by="the oracle"))
            total, oracle = count_leaves(ex)
            verdict = "[green]yes[/]" if exact else "[red]no[/]"
            out.print(f"\nIssued exactly the recorded calls: {verdict}. Of the {total} argument "
                      f"values sent, {total - oracle} came from the procedure and the task text, "
                      f"{oracle} from the oracle.")
        out.print()
        out.rule(f"4. evaluation on all {len(test)} held-out traces")
    with _progress(not as_json, "replaying held-out traces") as progress:
        report = evaluate(train, test, progress=progress)
    out.print(render.figures_table(report.figures(), title="procmem eval (the same as "
                                   f"`procmem eval --train sample.jsonl --holdout {len(test)}`)"))
    seconds = round(time.perf_counter() - start, 3)
    out.print(f"\nDone in {seconds:.1f} s. Try it on your own traces: procmem learn FILE.jsonl; "
              "procmem eval --train FILE.jsonl --holdout N", style="dim")
    if as_json:
        _emit({
            "sample": {"traces": len(traces), "train": len(train), "test": len(test)},
            "learned": {**asdict(learned), "procedures": [procedure_summary(p) for p in procs]},
            "task": {"trace": trace.id, "text": trace.task},
            "hits": [hit_json(i, h) for i, h in enumerate(hits, 1)],
            "execution": ex.model_dump(mode="json") if ex else None,
            "exact": exact, "figures": report.figures(), "seconds": seconds,
        })


# Command modules register themselves on ``main`` when imported.
from . import (  # noqa: E402, F401
    cli_eval,
    cli_export,
    cli_import,
    cli_keys,
    cli_learning,
    cli_mcp,
    cli_plan,
    cli_proxy,
    cli_redact,
    cli_rest,
    cli_search,
    cli_tools,
    cli_traces,
)

if __name__ == "__main__":
    main()
