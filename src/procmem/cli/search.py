"""The search commands of the ``procmem`` CLI: search, reindex and calibrate.

They register on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it); the hit table lives in :mod:`procmem.cli.render`.

Invariants:
    * Thin adapters over :meth:`procmem.Memory.search` and :meth:`procmem.Memory.reindex`;
      settings (``--db``, ``--embedder``), errors and exit codes are those of :mod:`procmem.cli`.
    * With ``--json`` they print plain JSON on stdout only; progress goes to stderr.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .app import (
    RETRIEVERS,
    TARGET_PRECISION,
    console,
    emit,
    hit_json,
    json_option,
    main,
    open_memory,
    progress_bar,
)

if TYPE_CHECKING:
    from ..search.retrieval import Retriever

__all__: list[str] = []


@main.command()
@click.argument("task")
@click.option("--limit", default=5, show_default=True, type=int, help="Maximum hits (1-100).")
@click.option("--retriever", type=click.Choice(RETRIEVERS), default="hybrid", show_default=True,
              help="First stage: BM25, dense vectors, or both fused by their scores.")
@click.option("--tag", "tags", multiple=True, metavar="TAG",
              help="Only procedures with this tag (repeatable: all of them).")
@click.option("--status", type=click.Choice(["active", "candidate", "deprecated", "any"]),
              default="active", show_default=True, help="Only procedures with this status.")
@click.option("--namespace", metavar="NS", help="Only procedures of this namespace.")
@click.option("--confident", "confident_only", is_flag=True,
              help="Only confident hits: nothing printed means nothing in memory fits.")
@json_option
@click.pass_context
def search(ctx: click.Context, task: str, limit: int, retriever: Retriever,
           tags: tuple[str, ...], status: str, namespace: str | None, confident_only: bool,
           as_json: bool) -> None:
    """Find the procedures that best fit TASK (a task in plain words).

    Each hit says why: its BM25 and vector ranks, the matched terms, the nearest
    demonstration task, the params bound from TASK, and whether it is confident.
    """
    from . import render

    mem = open_memory(ctx)
    if 1 <= limit <= 100 and retriever != "bm25" and mem.embedder is not None:
        # the index is built now in any case; texts embedded for the first time (a new
        # model, procedures learned without one) get a progress bar
        with progress_bar(not as_json, "embedding procedures for search",
                          lazy=True) as progress:
            mem.warm_index(progress=progress)
    hits = mem.search(task, limit=limit, retriever=retriever, tags=tags,
                      status=None if status == "any" else status,
                      namespace=namespace, confident_only=confident_only)
    if as_json:
        emit([hit_json(i, h) for i, h in enumerate(hits, 1)])
        return
    if not hits:
        click.echo("no procedure fits this task")
        return
    out = console()
    out.print(render.hits_table(hits))
    out.print(render.hits_evidence(hits))


@main.command()
@click.option("--force", is_flag=True,
              help="Embed every text again (drop this model's stored vectors first).")
@json_option
@click.pass_context
def reindex(ctx: click.Context, force: bool, as_json: bool) -> None:
    """Compute the vectors of hybrid search for texts that have none (e.g. a new model)."""
    mem = open_memory(ctx)
    with progress_bar(not as_json, "embedding procedures for search") as progress:
        report = mem.reindex(force=force, progress=progress)
    if as_json:
        emit(report)
        return
    if report["model_id"] is None:
        click.echo(f"{report['procedures']} procedure(s) indexed for BM25 only: no embedder")
        return
    click.echo(f"{report['procedures']} procedure(s), {report['rows']} text(s): "
               f"{report['embedded']} embedded now, {report['stored']} vector(s) stored "
               f"for {report['model_id']}")


@main.command()
@click.option("--folds", default=5, show_default=True, type=int,
              help="K of the cross-validation (2-20).")
@click.option("--target", "target_precision", default=TARGET_PRECISION, show_default=True,
              type=float, help="Share of confident hits that must be right (0.5-1).")
@click.option("--retriever", "retrievers", type=click.Choice(RETRIEVERS), multiple=True,
              help="First stage(s) to calibrate (repeatable; default bm25, and hybrid with an "
                   "embedder).")
@json_option
@click.pass_context
def calibrate(ctx: click.Context, folds: int, target_precision: float,
              retrievers: tuple[str, ...], as_json: bool) -> None:
    """Calibrate search confidence on cross-validation folds of the stored traces.

    Afterwards every hit carries a probability (``confidence``) that it and every
    value it bound are right, and ``confident`` means it clears the threshold at
    which the cross-validated hits were right --target of the time.
    """
    from ..formats.serialize import calibration_record
    from . import render

    mem = open_memory(ctx)
    with progress_bar(not as_json,
                      "cross-validating: learning each fold, searching the rest") as bar:
        report = mem.calibrate(folds=folds, target_precision=target_precision,
                               retrievers=list(retrievers) or None, progress=bar)
    record = calibration_record(report)
    if as_json:
        emit(record)
        return
    out = console()
    out.print(render.calibration_table(record))
