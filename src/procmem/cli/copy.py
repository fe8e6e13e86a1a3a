"""``procmem copy SRC DST``: copy a whole memory into an empty store of any backend.

A thin adapter over :func:`procmem.store.copy.copy_store` (what is and is not
copied is said there). ``SRC`` and ``DST`` are store locations as ``--db`` takes
them: a file path, ``sqlite:///path``, or ``postgresql://user@host/db``.

Invariants:
    * The group's ``--db`` is not used; ``--tenant`` picks the tenant on both sides.
    * ``SRC`` is never created: a missing file is ``error[not_found]`` (exit 3).
    * A ``DST`` that holds anything is refused (``error[conflict]``, exit 4) and
      left as it was; a failed copy leaves it empty (``error[store_error]``, exit 1).
    * The report (counts and SHA-256 of every record kind on both sides) goes to
      stdout, as JSON with ``--json``; a mismatch prints it, then
      ``error[copy_mismatch]`` (exit 1). Progress goes to stderr on a terminal.
    * A password in a URL is shown as ``***``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from .app import EXIT_CODES, emit, fail, json_option, main

if TYPE_CHECKING:
    from ..store.copy import CopyReport, Progress

__all__ = ["copy"]


@main.command()
@click.argument("src", metavar="SRC")
@click.argument("dst", metavar="DST")
@json_option
@click.pass_context
def copy(ctx: click.Context, src: str, dst: str, as_json: bool) -> None:
    """Copy every record of the memory SRC into the empty store DST, and verify it.

    SRC and DST are file paths or URLs (sqlite:///path, postgresql://user@host/db),
    of the same or different backends: e.g. procmem copy memory.db
    postgresql://procmem@db.internal/procmem. Traces, procedure versions with
    their statuses, pins, verifications, aliases, executions with step runs,
    evidence, embeddings, tool schemas, notes, calibrations and API keys are
    copied; saved search indexes are rebuilt by the first search. Both sides are
    then counted and hashed per record kind; the report says whether they match.
    """
    from ..store import open_store
    from ..store.copy import copy_store, shown_location

    if "://" not in src and src != ":memory:" and not os.path.exists(src):
        fail("not_found", f"no store at {src} (SRC must exist)", EXIT_CODES["not_found"])
    if "://" not in dst and dst != ":memory:":
        folder = os.path.dirname(os.path.abspath(dst))
        if not os.path.isdir(folder):
            fail("usage", f"DST {dst}: the folder {folder} does not exist (create it first)", 2)
    tenant = ctx.obj.get("tenant") or "default"
    source = ctx.with_resource(_closing(open_store(src, tenant=tenant)))
    target = ctx.with_resource(_closing(open_store(dst, tenant=tenant)))
    with _progress(not as_json and sys.stderr.isatty()) as progress:
        report = copy_store(source, target, progress=progress)
    if as_json:
        emit(report.to_json())
    else:
        _print(report)
    if not report.ok:
        fail("copy_mismatch", f"the copy in {shown_location(dst)} differs from "
             f"{shown_location(src)} in: {', '.join(report.mismatched)} (see the report)", 1)


@contextmanager
def _closing(store: Any) -> Iterator[Any]:
    try:
        yield store
    finally:
        store.close()


@contextmanager
def _progress(enabled: bool) -> Iterator[Progress | None]:
    """``progress(kind, done, total)`` drawing one rich bar on stderr (None when disabled)."""
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   console=Console(stderr=True), transient=True)
    task = bar.add_task("reading the source", total=None)

    def update(kind: str, done: int, total: int | None) -> None:
        verb = "copying" if total is not None else "counting"
        bar.update(task, description=f"{verb} {kind.replace('_', ' ')}", completed=done,
                   total=total)

    with bar:
        yield update


def _print(report: CopyReport) -> None:
    click.echo(f"copied {report.source} -> {report.destination}")
    width = max(len(k.kind) for k in report.kinds)
    click.echo(f"{'kind':<{width}}  {'source':>8}  {'copy':>8}  sha256 (source)   match")
    for k in report.kinds:
        click.echo(f"{k.kind:<{width}}  {k.source_count:>8}  {k.dest_count:>8}  "
                   f"{k.source_hash[:16]}  {'yes' if k.ok else 'NO'}")
    click.echo("not copied: " + "; ".join(report.not_copied))
    if report.ok:
        click.echo("verified: every kind has the same count and SHA-256 on both sides")
