"""``procmem demo``: learn, search, replay and evaluate on the bundled τ-retail sample;
``procmem sample``: write that sample out (:mod:`procmem.formats.samples`).

It registers on :data:`procmem.cli.app.main` when this module is imported (the
package :mod:`procmem.cli` imports it).

Invariants:
    * Offline and in memory: a ``Memory(":memory:")``, never ``--db``.
    * With ``--json`` stdout holds one JSON object; the story goes nowhere.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from ..core.errors import NotFound
from .app import (
    all_procedures,
    console,
    emit,
    hit_json,
    json_option,
    main,
    procedure_summary,
    progress_bar,
)

if TYPE_CHECKING:
    from ..core.model import Procedure, Trace

__all__ = ["DEMO_HOLDOUT", "pick_demo_trace", "sample", "sample_traces"]

DEMO_HOLDOUT = 30
"""The demo trains on the bundled sample except its last ``DEMO_HOLDOUT`` traces."""


def sample_traces() -> list[Trace]:
    """The bundled τ-retail sample (160 traces; see ``procmem/data/tau_retail/README.md``)."""
    from importlib import resources

    from ..formats.traceio import read_traces

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
    from rich.console import Console

    from ..evaluation.evaluate import (
        Oracle,
        RecordedEnvironment,
        count_leaves,
        evaluate,
        split_holdout,
    )
    from ..memory import Memory
    from . import render

    start = time.perf_counter()
    traces = sample_traces()
    train, test = split_holdout(traces, DEMO_HOLDOUT)
    out = Console(stderr=True, quiet=True) if as_json else console()
    out.rule("[bold]procmem demo[/]: procedural memory on real τ-bench retail traces")
    out.print(f"Bundled sample: {len(traces)} real customer-service traces (τ-bench retail "
              f"train split, Sierra, MIT). Learning from the first {len(train)}, "
              f"holding out the last {len(test)}.", highlight=False)
    with Memory(":memory:") as mem:
        t0 = time.perf_counter()
        # a bar only on a terminal: the demo's stderr stays empty otherwise
        with progress_bar(not as_json and sys.stderr.isatty(),
                          "learning: embedding procedures for search", lazy=True) as embedding:
            learned = mem.learn(train, progress=embedding)
        learn_s = time.perf_counter() - t0
        procs = sorted(all_procedures(mem), key=lambda p: (-len(p.lineage.traces), p.name))
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
    with progress_bar(not as_json, "replaying held-out traces") as progress:
        report = evaluate(train, test, progress=progress)
    out.print(render.figures_table(report.figures(), title="procmem eval (the same as "
                                   f"`procmem eval --train sample.jsonl --holdout {len(test)}`)"))
    seconds = round(time.perf_counter() - start, 3)
    out.print(f"\nDone in {seconds:.1f} s. Try it on your own traces: procmem learn FILE.jsonl; "
              "procmem eval --train FILE.jsonl --holdout N", style="dim")
    if as_json:
        emit({
            "sample": {"traces": len(traces), "train": len(train), "test": len(test)},
            "learned": {**asdict(learned), "procedures": [procedure_summary(p) for p in procs]},
            "task": {"trace": trace.id, "text": trace.task},
            "hits": [hit_json(i, h) for i, h in enumerate(hits, 1)],
            "execution": ex.model_dump(mode="json") if ex else None,
            "exact": exact, "figures": report.figures(), "seconds": seconds,
        })


@main.command()
@click.argument("folder", type=click.Path(file_okay=False), default="procmem-sample")
def sample(folder: str) -> None:
    """Write the bundled τ-retail sample (160 traces, MIT licence) into FOLDER.

    FOLDER defaults to ./procmem-sample. Then: procmem learn FOLDER/tau-retail-sample.jsonl,
    or procmem eval --train FOLDER/tau-retail-sample.jsonl --holdout 40.
    """
    from ..formats.samples import write_sample

    for path in write_sample(folder):
        click.echo(str(path))
