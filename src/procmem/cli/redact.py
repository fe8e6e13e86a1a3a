"""``procmem redact``: scrub secrets out of an existing memory, and say what changed.

Uses :func:`procmem.store.scrub.scrub_sqlite` with the memory's redaction rules
(:mod:`procmem.security.redaction`), plus any ``--pattern NAME=REGEX`` (RE2 syntax).

Invariants:
    * ``--dry-run`` writes nothing; its report equals the real run's.
    * The report names kinds, counts and record ids, never a secret value.
"""

from __future__ import annotations

import click

from ..core.errors import UsageError
from .app import emit, json_option, main, open_memory

__all__ = ["redact"]


@main.command()
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--pattern", "patterns", multiple=True, metavar="NAME=REGEX",
              help="Also redact matches of REGEX (RE2 syntax) as [REDACTED:NAME]; repeatable.")
@json_option
@click.pass_context
def redact(ctx: click.Context, dry_run: bool, patterns: tuple[str, ...], as_json: bool) -> None:
    """Redact secrets already stored: traces, procedures, executions, evidence.

    Rewrites the changed records in place, rebuilds the search index and
    compacts the database file (VACUUM) so no old copy stays in it.
    """
    from ..security.redaction import Redactor
    from ..store import scrub_store

    extra: dict[str, str] = {}
    for p in patterns:
        name, sep, rx = p.partition("=")
        if not sep or not name or not rx:
            raise UsageError(f"--pattern must be NAME=REGEX, got {p!r}")
        extra[name] = rx
    mem = open_memory(ctx)
    redactor = Redactor(keys=mem.redactor.keys, patterns={**mem.redactor.pattern_sources,
                                                          **extra})
    report = scrub_store(mem.store, redactor, dry_run=dry_run)
    if as_json:
        emit(report.to_json())
        return
    verb = "would change" if dry_run else "changed"
    total = sum(report.changed.values())
    click.echo(f"{verb} {total} record(s): " + (", ".join(
        f"{t} {n}/{report.scanned[t]}" for t, n in sorted(report.changed.items())) or "none"))
    if report.findings:
        click.echo("secrets by kind: " + ", ".join(
            f"{k} {n}" for k, n in report.findings.most_common()))
    for table, ids in sorted(report.changed_ids.items()):
        more = report.changed[table] - len(ids)
        click.echo(f"  {table}: {', '.join(ids)}" + (f" (+{more} more)" if more > 0 else ""))
