"""The ``procmem import`` command: agent transcripts -> stored traces (-> procedures).

It registers on :data:`procmem.cli.app.main` when imported (the package
:mod:`procmem.cli` imports it).

Invariants:
    * Parsing is :func:`procmem.formats.importers.import_transcripts`; storing is one
      :meth:`procmem.Memory.add_traces` call, i.e. one transaction: when a
      transcript is bad and ``--skip-invalid`` is not given, the command fails
      with the file, line and field of the first problem and stores nothing.
    * With ``--skip-invalid`` the valid transcripts are stored and each problem
      is listed (on stderr, or under ``errors`` with ``--json``).
    * ``--learn`` runs :meth:`procmem.Memory.learn` after storing.
    * With ``--json`` stdout holds one JSON object:
      ``{"import": {"format", "file", "read", "stored", "errors"}, "learn": {...} | null}``
      (``read``: traces parsed; ``stored``: of those, new ones; ``learn``: the
      fields of :class:`procmem.memory.LearnReport`).
    * Errors and exit codes are those of :mod:`procmem.cli.app`.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import Any

import click

from .app import (
    TRANSCRIPT_FORMATS,
    console,
    emit,
    json_option,
    main,
    open_memory,
    progress_bar,
)

__all__: list[str] = []


@main.command("import")
@click.argument("file", metavar="FILE")
@click.option("--format", "fmt", required=True, type=click.Choice(TRANSCRIPT_FORMATS),
              help="The transcript format of FILE.")
@click.option("--skip-invalid", is_flag=True,
              help="Store the valid transcripts and list the invalid ones instead of failing.")
@click.option("--learn", "then_learn", is_flag=True,
              help="Learn procedures from the stored traces afterwards.")
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, file: str, fmt: str, skip_invalid: bool, then_learn: bool,
               as_json: bool) -> None:
    """Import agent transcripts from FILE as traces (one transaction).

    FILE is JSONL, one transcript per line (or one JSON array of them). A
    transcript is a list of messages (openai-chat, anthropic) or items
    (openai-responses), or an object {"messages": [...], "task"?, "outcome"?,
    "id"?, "metadata"?}. Tool calls are matched to their results by id.
    --format procmem reads procmem trace JSONL (as `procmem learn` does).
    """
    from ..formats.importers import import_transcripts
    from . import render

    traces, problems = import_transcripts(file, fmt, skip_invalid=skip_invalid)
    mem = open_memory(ctx)
    stored = mem.add_traces(traces)
    imported: dict[str, Any] = {"format": fmt, "file": file, "read": len(traces),
                                "stored": stored, "errors": [str(p) for p in problems]}
    learned = None
    if then_learn:
        with progress_bar(not as_json and sys.stderr.isatty(),  # stderr stays as it was
                          "embedding procedures for search", lazy=True) as bar:
            learned = asdict(mem.learn(progress=bar))
    if as_json:
        emit({"import": imported, "learn": learned})
        return
    for error in imported["errors"]:
        click.echo(f"skipped: {error}", err=True)
    summary = (f"{fmt} transcripts: {len(traces)} read, {stored} new trace(s), "
               f"{len(traces) - stored} already stored")
    if problems:
        summary += f", {len(problems)} invalid skipped"
    click.echo(summary)
    if learned is not None:
        console().print(render.learn_view(None, learned))
