"""The export and import commands of the ``procmem`` CLI: ``export``, ``import-skill``.

* ``procmem export NAME [--version N] --format markdown|json|skill [--out PATH]``:
  Markdown how-to (:func:`procmem.formats.export.to_markdown`) or JSON
  (:func:`procmem.formats.export.to_json`) on stdout, or in the file ``--out``; an
  Agent Skills folder (:func:`procmem.formats.skills.export_skill`) under the folder
  ``--out`` (required for ``skill``).
* ``procmem export --all --format ... [--status S]``: every procedure (current
  versions, status ``active`` by default): skill folders under ``--out``, a
  JSON array, or the Markdown documents separated by ``---`` lines.
* ``procmem import-skill FOLDER... [--json]``: each folder, or each skill
  folder inside a folder of skills, becomes a procedure
  (:func:`procmem.formats.skills.import_skill`) stored with
  :meth:`procmem.Memory.put_procedure` (a new version unless the content is
  unchanged); text-only skills too.

They register on :data:`procmem.cli.main` when this module is imported.

Invariants:
    * Thin adapters: the behaviour is in :mod:`procmem.formats.export`,
      :mod:`procmem.formats.skills` and :class:`procmem.Memory`; errors, settings and
      exit codes are those of :mod:`procmem.cli` (a bad skill exits 2).
    * ``import-skill`` reads and validates every folder before storing any:
      one invalid skill stores nothing.
    * ``export --all --format skill`` checks every target folder before writing any.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from ..core.errors import Conflict, NotFound, UsageError
from .app import all_procedures, emit, json_option, main, open_memory

if TYPE_CHECKING:
    from pathlib import Path

    from ..core.model import Procedure
    from ..memory import Memory

__all__ = ["FORMATS"]

FORMATS = ("markdown", "json", "skill")
"""The export formats."""


def _write(out: str | None, text: str) -> None:
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    from pathlib import Path

    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write: {err}") from err
    click.echo(f"wrote {out}", err=True)


@main.command("export")
@click.argument("name", required=False)
@click.option("--version", "version", type=click.IntRange(min=1), help="A given version.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="markdown: a how-to for a prompt; json: the full procedure; "
                   "skill: an Agent Skills folder (SKILL.md + procedure.json).")
@click.option("--out", metavar="PATH",
              help="File to write (markdown, json; default stdout), or the folder to "
                   "write skill folders into (skill; required).")
@click.option("--all", "all_", is_flag=True, help="Export every procedure instead of NAME.")
@click.option("--status", type=click.Choice(["active", "candidate", "deprecated", "any"]),
              default="active", show_default=True,
              help="With --all: only procedures whose current version has this status.")
@click.option("--overwrite", is_flag=True,
              help="Replace skill folders that hold another skill.")
@click.pass_context
def export_cmd(ctx: click.Context, name: str | None, version: int | None, fmt: str,
               out: str | None, all_: bool, status: str, overwrite: bool) -> None:
    """Export procedure NAME (or --all) as Markdown, JSON or an Agent Skills folder."""
    from ..formats.export import to_json, to_markdown
    from ..formats.skills import export_skill, export_skills

    if (name is None) == (not all_):
        raise click.UsageError("give exactly one of NAME or --all")
    if all_ and version is not None:
        raise click.UsageError("--version applies to one procedure, not to --all")
    if fmt == "skill" and out is None:
        raise click.UsageError("--format skill needs --out DIR (the folder to write skills into)")
    mem = open_memory(ctx)
    if name is not None:
        procs = [mem.get_procedure(name, version)]
    else:
        procs = all_procedures(mem, None if status == "any" else status)
        if not procs:
            raise NotFound("procedure with status", status)
    if fmt == "skill":
        assert out is not None
        folders = (export_skills(procs, out, overwrite=overwrite) if all_
                   else [export_skill(procs[0], out, overwrite=overwrite)])
        for proc, folder in zip(procs, folders, strict=True):
            click.echo(f"{proc.key} -> {folder}")
        return
    if fmt == "json":
        data: Any = [to_json(p) for p in procs] if all_ else to_json(procs[0])
        _write(out, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    _write(out, "\n---\n\n".join(to_markdown(p) for p in procs))


def _import_row(mem: Memory, folder: Path, proc: Procedure) -> dict[str, Any]:
    from ..formats.skills import is_text_only

    try:
        before = {v.version for v in mem.list_versions(proc.name)}
    except NotFound:
        before = set()
    stored = mem.put_procedure(proc)
    return {"folder": str(folder), "name": stored.name, "version": stored.version,
            "kind": "text-only" if is_text_only(stored) else "replayable",
            "steps": len(stored.steps), "stored": stored.version not in before}


@main.command("import-skill")
@click.argument("folders", nargs=-1, required=True, metavar="FOLDER...")
@click.option("--replace", is_flag=True,
              help="Store a skill whose procedure exists with other content as its next version.")
@json_option
@click.pass_context
def import_skill_cmd(ctx: click.Context, folders: tuple[str, ...], replace: bool,
                     as_json: bool) -> None:
    """Import Agent Skills folders (SKILL.md, optional procedure.json) as procedures.

    A FOLDER holding SKILL.md is one skill; a folder of skill folders imports
    each. With procedure.json the skill is a replayable procedure; without it, a
    text-only procedure (tag text-only, no steps) that search finds and an LLM
    follows. Every skill is validated before any is stored. A procedure that
    exists with other content is refused unless --replace is given (then the
    skill becomes its next version); the same content is left unchanged.
    """
    from ..formats.skills import find_skill_folders, import_skill
    from ..services.versions import same_content

    skills = [folder for arg in folders for folder in find_skill_folders(arg)]
    procs = [(folder, import_skill(folder)) for folder in skills]
    mem = open_memory(ctx)
    if not replace:
        for folder, proc in procs:
            current = mem.find_procedure(proc.name)
            if current is not None and not same_content(current, proc):
                raise Conflict("procedure", proc.name,
                               f"exists (v{current.version}) with other content than {folder}; "
                               "pass --replace to store the skill as its next version")
    with mem.store.transaction():  # every skill, or none
        rows = [_import_row(mem, folder, proc) for folder, proc in procs]
    if as_json:
        emit(rows)
        return
    for row in rows:
        what = "imported" if row["stored"] else "unchanged"
        steps = f"{row['steps']} step(s)" if row["kind"] == "replayable" else "no steps"
        click.echo(f"{what} {row['name']} v{row['version']} ({row['kind']}, {steps}) "
                   f"from {row['folder']}")
