"""The ``procmem tools`` commands: import, list and check tool schemas; show tool flags.

Tool schemas are OpenAI function schemas (e.g. ``data/tau-retail/tools.json``);
see :mod:`procmem.formats.toolschema` for the format and the checks. The commands
register on :data:`procmem.cli.app.main` when this module is imported (the package
:mod:`procmem.cli` imports it).

Invariants:
    * Thin adapters over :class:`procmem.Memory` (``import_tool_schemas``,
      ``list_tool_schemas``, ``check_procedure(s)``, ``tool_flags``); the
      settings, error handling and exit codes are those of :mod:`procmem.cli`.
    * With ``--json`` a command prints plain JSON on stdout only.
    * ``tools check`` exits 1 when it finds a problem (0 when clean), so it can
      gate a CI job; a malformed tools file is a usage error (exit 2) and
      stores nothing.
"""

from __future__ import annotations

import click

from .app import emit, json_option, main, open_memory

__all__ = ["tools"]


@main.group()
def tools() -> None:
    """Tool schemas (OpenAI function format): import, list, check, flags."""


def _problem_lines(problems: dict[str, list[str]], indent: str = "    ") -> list[str]:
    return [f"{indent}{step}: {msg}" for step, msgs in problems.items() for msg in msgs]


@tools.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@json_option
@click.pass_context
def import_cmd(ctx: click.Context, file: str, as_json: bool) -> None:
    """Store the tool schemas in FILE and re-check the procedures that use them.

    FILE is a JSON array of OpenAI tools ({"type": "function", "function":
    {...}}), bare function objects, or {"tools": [...]}. Procedures that call a
    tool whose schema changed are flagged with what the re-check found.
    """
    report = open_memory(ctx).import_tool_schemas(file)
    if as_json:
        emit(report)
        return
    counts = {k: len(report[k]) for k in ("added", "changed", "unchanged")}
    total = sum(counts.values())
    click.echo(f"{total} tool schema(s): " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    if report["changed"]:
        click.echo("changed: " + ", ".join(report["changed"]))
    flagged = [c for c in report["checked"] if c["flagged"]]
    if flagged:
        click.echo(f"flagged {len(report['flagged'])} procedure(s):")
    for c in flagged:
        verdict = "problems:" if c["problems"] else "re-checked, no problem"
        click.echo(f"  {c['procedure']}@{c['version']} ({c['tool']} {c['reason']}): {verdict}")
        for line in _problem_lines(c["problems"]):
            click.echo(line)
    clean = {c["procedure"] for c in report["checked"] if not c["flagged"]}
    if clean:
        click.echo(f"{len(clean)} procedure(s) using an added tool check clean against it")


@tools.command("list")
@json_option
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """The stored tool schemas: name, args (* = required) and description."""
    schemas = open_memory(ctx).list_tool_schemas()
    if as_json:
        emit(list(schemas.values()))
        return
    if not schemas:
        click.echo("no tool schemas yet: import some with `procmem tools import tools.json`")
        return
    for name, schema in schemas.items():
        params = schema.get("parameters", {})
        required = set(params.get("required", []))
        args = ", ".join(a + ("*" if a in required else "") for a in params.get("properties", {}))
        first = schema.get("description", "").split(". ")[0].strip()
        click.echo(f"{name}({args})" + (f"  {first}" if first else ""))


@tools.command("check")
@click.argument("name", required=False)
@json_option
@click.pass_context
def check_cmd(ctx: click.Context, name: str | None, as_json: bool) -> None:
    """Check procedures' step args against the stored tool schemas (exit 1 on a problem).

    With NAME: that procedure's current version; without: every procedure.
    """
    mem = open_memory(ctx)
    if name is not None:
        problems = {name: mem.check_procedure(name)}
        problems = {k: v for k, v in problems.items() if v}
    else:
        problems = mem.check_procedures()
    if as_json:
        emit({"tools": len(mem.list_tool_schemas()), "problems": problems})
    elif not mem.list_tool_schemas():
        click.echo("no tool schemas to check against: import some with "
                   "`procmem tools import tools.json`")
    elif not problems:
        click.echo(f"{name or 'every procedure'}: no problem")
    else:
        for proc, steps in problems.items():
            click.echo(f"{proc}:")
            for line in _problem_lines(steps, "  "):
                click.echo(line)
    if problems:
        ctx.exit(1)


@tools.command("flags")
@click.argument("name", required=False)
@click.option("--clear", is_flag=True, help="Delete the flags shown (after printing them).")
@json_option
@click.pass_context
def flags_cmd(ctx: click.Context, name: str | None, clear: bool, as_json: bool) -> None:
    """Procedures flagged because a tool they use changed (or their args break it)."""
    mem = open_memory(ctx)
    flags = mem.tool_flags(name)
    if clear:
        mem.clear_tool_flags(name)
    if as_json:
        emit(flags)
        return
    if not flags:
        click.echo("no tool flags")
    for f in flags:
        verdict = "problems:" if f["problems"] else "no problem"
        click.echo(f"{f['created_at'][:19]}  {f['procedure']}@{f['version']}  "
                   f"{f['tool']} {f['reason']}: {verdict}")
        for line in _problem_lines(f["problems"]):
            click.echo(line)
    if clear and flags:
        click.echo(f"cleared {len(flags)} flag(s)")
