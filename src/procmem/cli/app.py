"""The ``procmem`` command line's app: the Click group, its options, errors and helpers.

The commands live in the other modules of :mod:`procmem.cli`; each imports this
module and registers on :data:`main`, and :mod:`procmem.cli` (the package)
imports them all. Nothing here imports a command module, so there is no cycle.
Rendering lives in :mod:`procmem.cli.render` (and ``render_*``).

Invariants:
    * Starting is cheap: this module and the command modules import only the
      standard library, Click and :mod:`procmem.core.errors` at import time;
      ``procmem --version`` and ``--help`` never import numpy, pydantic, rich, the
      models or the evaluator. Commands import what they use when they run. The
      option choices below (:data:`RETRIEVERS`, ...) are copies of the constants
      of the modules that own them, kept here for that reason; a test asserts
      they are equal.
    * Settings are read here only: ``--db PATH``, else the ``PROCMEM_DB``
      environment variable, else ``procmem.db`` in the current directory.
      ``eval`` and ``demo`` use a temporary in-memory store and never open it.
    * With ``--json`` a command prints plain JSON on stdout and nothing else
      there (progress bars and warnings go to stderr).
    * A :class:`~procmem.core.errors.ProcmemError` becomes one line
      ``error[<code>]: <message>`` on stderr and an exit code chosen by its
      code: usage errors (``usage``, ``invalid_*``, ``param_error``,
      ``unknown_tool``) 2, ``not_found`` 3, ``conflict`` and ``execution_busy`` 4,
      any other 1.
      Malformed options (bad JSON in ``--params``) and every Click usage error
      (unknown command or option, missing argument) print
      ``error[usage]: ...`` too, exit code 2. Bad input never shows a traceback.
      Ctrl-C prints ``error[interrupted]: ...`` and exits 130
      (:data:`INTERRUPTED_EXIT`).
    * ``replay`` and ``resume`` exit 0 when the execution succeeded,
      :data:`PAUSED_EXIT` (10) when it paused on a need, and 1 when it failed
      (a failed tool call is data, not an error line).
    * Read commands (:data:`READ_COMMANDS`) never create a store: without the
      file they fail with ``error[not_found]: no store at PATH ...`` (exit 3).
      A ``--db`` in a folder that does not exist is a usage error (exit 2).
    * A procedure name argument that is the old name of a renamed procedure
      prints ``note: OLD was renamed to NEW`` on stderr (the command uses NEW).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..core.errors import ProcmemError, UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from ..core.model import Hit, Procedure
    from ..memory import Memory
    from ..search.embed import Embedder
    from ..search.rerank import Reranker

__all__ = [
    "DEFAULT_TENANT", "EXIT_CODES", "INTERRUPTED_EXIT", "JSON_OBJECT", "PAUSED_EXIT",
    "READ_COMMANDS", "RETRIEVERS", "SCOPES", "TARGET_PRECISION",
    "TRANSCRIPT_FORMATS", "all_procedures", "console", "emit", "exit_code", "fail", "hit_json",
    "installed_version", "json_option", "main", "make_embedder", "make_reranker", "note_renamed",
    "open_memory", "procedure_summary", "progress_bar",
]

EXIT_CODES: dict[str, int] = {
    "usage": 2, "invalid_trace": 2, "invalid_template": 2, "invalid_procedure": 2,
    "param_error": 2, "unknown_tool": 2, "not_found": 3, "conflict": 4, "execution_busy": 4,
    "embedding_error": 5,
    "rerank_error": 5, "model_error": 5,
}
"""Exit code by error code; a code not listed exits with 1 (2 for any UsageError)."""
PAUSED_EXIT = 10
"""Exit code of ``replay``/``resume`` when the execution paused on a need (not an error)."""
INTERRUPTED_EXIT = 130
"""Exit code after Ctrl-C (128 + SIGINT, the shell convention)."""
READ_COMMANDS = frozenset({
    "list", "show", "search", "stats", "history", "diff", "plan", "export",
    "traces list", "traces show", "executions list", "executions show",
})
"""Commands (paths below ``procmem``) that only read: they never create a store."""

# Copies of constants owned by heavier modules (tests/test_cli_startup.py checks them).
RETRIEVERS = ("bm25", "vector", "hybrid")
"""First stages of search (:data:`procmem.search.retrieval.RETRIEVERS`)."""
TRANSCRIPT_FORMATS = ("openai-chat", "openai-responses", "anthropic", "procmem")
"""Formats of ``procmem import`` (:data:`procmem.formats.importers.FORMATS`)."""
SCOPES = ("read", "write", "run", "admin")
"""Scopes of an API key (:data:`procmem.security.keys.SCOPES`)."""
DEFAULT_TENANT = "default"
"""The tenant of ``--tenant`` when none is given (:data:`procmem.security.keys.DEFAULT_TENANT`)."""
TARGET_PRECISION = 0.99
"""Default ``calibrate --target`` (:data:`procmem.search.calibration.TARGET_PRECISION`)."""


def exit_code(err: ProcmemError) -> int:
    """The process exit code for an error (see :data:`EXIT_CODES`)."""
    if err.code in EXIT_CODES:
        return EXIT_CODES[err.code]
    return 2 if isinstance(err, UsageError) else 1


def fail(code: str, message: str, status: int) -> NoReturn:
    """Print ``error[<code>]: <message>`` (on one line, :func:`formats.serialize.error_line`)
    on stderr and exit with ``status``."""
    from ..formats.serialize import error_line  # only on failure: --help stays light

    click.echo(error_line(code, message), err=True)
    sys.exit(status)


class _Group(click.Group):
    """A Click group that turns procmem errors into one line and an exit code."""

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Register ``cmd``; a procedure ``NAME`` argument resolves renamed names."""
        callback = cmd.callback
        if callback is not None and any(isinstance(p, click.Argument) and p.name == "name"
                                        for p in cmd.params):
            cmd.callback = functools.update_wrapper(_resolving(callback), callback)
        super().add_command(cmd, name)

    def main(self, args: Any = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             **extra: Any) -> Any:
        """Run the command line; Click's own errors and Ctrl-C as ``error[code]: ...`` too."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except click.UsageError as err:
            hint = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
            fail("usage", err.format_message() + hint, 2)
        except click.ClickException as err:
            fail("file" if isinstance(err, click.FileError) else "error",
                 err.format_message(), err.exit_code)
        except (click.Abort, KeyboardInterrupt):
            fail("interrupted", "interrupted (Ctrl-C); nothing after this point ran",
                 INTERRUPTED_EXIT)
        sys.exit(status if isinstance(status, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ProcmemError as err:
            fail(err.code, str(err), exit_code(err))
        except Exception as err:
            # pydantic's ValidationError is pydantic_core's; when that module was never
            # imported, no such error can have been raised (and --help stays light).
            core = sys.modules.get("pydantic_core")
            if core is None or not isinstance(err, core.ValidationError):
                raise
            from ..formats.serialize import error_of

            fail(*error_of(err)[:2], 2)


def _resolving(callback: Callable[..., Any]) -> Callable[..., Any]:
    """``callback`` with its ``name`` argument resolved by :func:`note_renamed`."""

    def run(*args: Any, **kwargs: Any) -> Any:
        name = kwargs.get("name")
        ctx = click.get_current_context()
        db = str(ctx.obj["db"])
        if isinstance(name, str) and (db == ":memory:" or "://" in db or os.path.isfile(db)):
            kwargs["name"] = note_renamed(open_memory(ctx), name)  # no store: nothing renamed
        return callback(*args, **kwargs)

    return run


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
"""A Click type: an option value that must be a JSON object (a dict)."""
json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON on stdout.")
"""The ``--json`` flag of every command that prints something (as ``as_json``)."""


def console() -> Console:
    """A rich console on stdout, for human output (no highlighting, no soft wrap)."""
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def emit(data: Any) -> None:
    """Print ``data`` as indented JSON on stdout (non-JSON values as ``str``)."""
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def make_reranker(spec: str | None) -> Reranker | None:
    """The reranker of ``--reranker`` / ``PROCMEM_RERANKER`` (``OPENAI_API_KEY`` for openai:)."""
    from ..search.rerank import reranker_from_spec

    return reranker_from_spec(spec, api_key=os.environ.get("OPENAI_API_KEY"))


def make_embedder(spec: str | None) -> Embedder | str | None:
    """The embedder of ``--embedder`` / ``PROCMEM_EMBEDDER`` (``OPENAI_API_KEY`` for openai:)."""
    if spec is None or spec == "default":
        return "default"
    from ..search.embed import embedder_from_spec

    return embedder_from_spec(spec, api_key=os.environ.get("OPENAI_API_KEY"))


def open_memory(ctx: click.Context) -> Memory:
    """The memory at ``--db`` (with the group's settings), closed when the command ends.

    Opened once per command (a second call returns the same memory).
    """
    mem: Memory | None = ctx.meta.get("procmem.memory")
    if mem is None:
        _check_location(ctx)
        mem = ctx.meta["procmem.memory"] = _open(ctx)
    return mem


def _open(ctx: click.Context) -> Memory:
    from ..memory import Memory

    extra = {} if ctx.obj.get("min_constant") is None else {"min_constant":
                                                            ctx.obj["min_constant"]}
    return ctx.with_resource(Memory(ctx.obj["db"],
                                    embedder=make_embedder(ctx.obj.get("embedder")),
                                    reranker=make_reranker(ctx.obj.get("reranker")),
                                    tenant=ctx.obj.get("tenant") or DEFAULT_TENANT, **extra))


def _check_location(ctx: click.Context) -> None:
    """Refuse a ``--db`` whose folder is missing, and a missing store for a read command."""
    db = str(ctx.obj["db"])
    if db == ":memory:" or "://" in db:
        return
    folder = os.path.dirname(os.path.abspath(db))
    if not os.path.isdir(folder):
        raise UsageError(f"--db {db}: the folder {folder} does not exist (create it first)")
    names, at = [], ctx
    while at.parent is not None:
        names.append(at.info_name or "")
        at = at.parent
    command = " ".join(reversed(names))
    if command in READ_COMMANDS and not os.path.exists(db):
        fail("not_found", f"no store at {db} (procmem learn or procmem import creates one; "
                          "--db PATH or PROCMEM_DB picks another)", EXIT_CODES["not_found"])


def note_renamed(mem: Memory, name: str) -> str:
    """``name``, or the name it was renamed to, saying so on stderr (``note: ...``)."""
    new = mem.procedures.resolve_name(name)
    if new != name:
        click.echo(f"note: {name} was renamed to {new}", err=True)
    return new


def all_procedures(mem: Memory, status: str | None = None) -> list[Procedure]:
    """Every procedure (current versions) of ``mem``, optionally of one ``status``, paged."""
    from ..formats.paging import read_all

    return read_all(lambda limit, offset: mem.list_procedures(status=status, limit=limit,
                                                              offset=offset))


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
    """The ``search --json`` record of one hit (:func:`procmem.formats.serialize.hit_record`)."""
    from ..formats.serialize import hit_record

    return hit_record(rank, hit)


# ------------------------------------------------------------------ progress


@contextmanager
def progress_bar(enabled: bool, label: str, then: str | None = None, *,
                 lazy: bool = False) -> Iterator[Any]:
    """A progress bar on stderr, as ``update(done, total)`` (``None`` when disabled).

    With ``then``, yields two updaters: the first for ``label``, the second for a
    next phase that relabels the same bar. With ``lazy``, the bar only appears
    once an update has something to count (``total > 0``).
    """
    if not enabled:
        yield (None, None) if then else None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

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


# ------------------------------------------------------------------ the group

_DIST = "procedural-memory"


def installed_version() -> str:
    """The version of the installed ``procedural-memory`` distribution.

    Read from the name of its ``procedural_memory-<version>.dist-info`` folder on
    ``sys.path``, first match in path order as :mod:`importlib.metadata` searches
    (the name format is the PyPA spec "Recording installed projects"); that keeps
    ``procmem --version`` from importing :mod:`importlib.metadata` (about a third of
    its start-up CPU). Falls back to :func:`importlib.metadata.version` when no
    such folder is found (an egg, a zip), and to ``0.0.0+unknown`` when the
    distribution is not installed at all.
    """
    prefix = _DIST.replace("-", "_") + "-"
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.startswith(prefix) and name.endswith(".dist-info"):
                return name[len(prefix):-len(".dist-info")]
    from importlib import metadata

    try:
        return metadata.version(_DIST)
    except metadata.PackageNotFoundError:
        return "0.0.0+unknown"


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``--version``: what :func:`click.version_option` prints, the version read lazily."""
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"{ctx.find_root().info_name}, version {installed_version()}")
    ctx.exit()


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
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_show_version, help="Show the version and exit.")
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
