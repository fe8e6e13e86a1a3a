"""The ``procmem eval`` command: how well procedural memory fits a set of traces.

It registers on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it); the figures are rendered by :mod:`procmem.cli.render`
and :mod:`procmem.cli.render_eval`.

Invariant: a thin adapter over :func:`procmem.evaluation.evaluate.evaluate` and
:func:`procmem.evaluation.evaluate.leave_one_out`; nothing is written to ``--db``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .app import (
    RETRIEVERS,
    console,
    emit,
    json_option,
    main,
    make_embedder,
    make_reranker,
    progress_bar,
)

if TYPE_CHECKING:
    from ..search.retrieval import Retriever

__all__: list[str] = []


@main.command("eval")
@click.option("--train", "train_path", required=True, metavar="FILE",
              help="Trace JSONL to learn from.")
@click.option("--test", "test_path", metavar="FILE", help="Trace JSONL to search and replay.")
@click.option("--holdout", type=click.IntRange(min=1), metavar="N",
              help="Test on the last N traces of --train instead (train on the rest).")
@click.option("--loo", is_flag=True,
              help="Leave-one-out: test on each trace of --train, learning from all the others.")
@click.option("--retriever", type=click.Choice(RETRIEVERS), default="hybrid", show_default=True,
              help="First stage of search: BM25, dense vectors, or both fused by their scores.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Calibrate confidence on cross-validation folds of the train traces "
                   "first, as `procmem calibrate` does for a memory in use.")
@click.option("--cases", "show_cases", is_flag=True,
              help="Also show each test trace: its actions, the rank of its procedure, the "
                   "top hit and how its replay went (a \"cases\" list with --json).")
@json_option
@click.pass_context
def eval_cmd(ctx: click.Context, train_path: str, test_path: str | None, holdout: int | None,
             loo: bool, retriever: Retriever, calibrate: bool, show_cases: bool,
             as_json: bool) -> None:
    """Measure how well procedural memory fits a set of traces, and how safely.

    Learns from the train traces, then for each test trace searches by its task
    text and replays the top hit against the recorded calls (needs answered
    from the test trace). Reports retrieval (hit@k, first-stage and word-overlap
    baselines), replay, and what an agent trusting procmem would risk (silent
    errors, confident precision and coverage, reliability). Nothing is written
    to --db.
    """
    from ..evaluation.evaluate import evaluate, leave_one_out, split_holdout
    from ..formats.traceio import read_traces
    from . import render, render_eval

    if sum((test_path is not None, holdout is not None, loo)) != 1:
        raise click.UsageError("give exactly one of --test FILE, --holdout N or --loo")
    train, _ = read_traces(train_path)
    embedder = make_embedder(ctx.obj.get("embedder"))
    reranker = make_reranker(ctx.obj.get("reranker"))
    if loo:
        with progress_bar(not as_json, "leave-one-out: learning and replaying each trace") as fold:
            report = leave_one_out(train, retriever=retriever, embedder=embedder,
                                   reranker=reranker, progress=fold, calibrate=calibrate)
    else:
        if holdout is not None:
            train, test = split_holdout(train, holdout)
        else:
            assert test_path is not None
            test, _ = read_traces(test_path)
        with progress_bar(not as_json, "learning, embedding, then replaying held-out traces",
                       "replaying held-out traces") as (embedded, replayed):
            report = evaluate(train, test, retriever=retriever, embedder=embedder,
                              reranker=reranker, progress=replayed, embed_progress=embedded,
                              calibrate=calibrate)
    if as_json:
        emit(dict(report.figures(), cases=report.cases) if show_cases else report.figures())
        return
    if show_cases:
        console().print(render.cases_table(report.cases))
    console().print(render.figures_table(report.figures(), title=f"procmem eval: {train_path}"))
    console().print(render_eval.safety_view(report.figures()))
