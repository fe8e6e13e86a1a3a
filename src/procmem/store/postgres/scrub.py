"""Scrub secrets out of an existing PostgreSQL store (``procmem redact`` on PostgreSQL).

The same records and rules as :func:`procmem.store.scrub.scrub_sqlite`: traces,
procedure versions (redacted literals become secret params), executions, step
runs, evidence, verifications and notes are rewritten in place in one
transaction (their rows locked), the keyword documents are rebuilt and the saved
search indexes dropped. Then ``VACUUM FULL`` rewrites each changed table, so the
old row versions (which still hold the secrets) leave the table files. Copies
PostgreSQL keeps outside the tables (WAL segments, base backups, replicas) are
the operator's to expire.

Invariants: ``dry_run`` reads only and reports what the real run changes; ids,
versions and timestamps are kept.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from psycopg import sql

from ...core.model import Procedure, Trace
from ...security.redaction import Redactor
from ...security.secret_params import secretize
from ..common import procedure_json
from ..scrub import JSON_TABLES, PROC_FIELDS, ScrubReport, scrub_json

if TYPE_CHECKING:
    from . import PostgresStore

__all__ = ["scrub_postgres"]


def scrub_postgres(store: PostgresStore, redactor: Redactor, *,
                   dry_run: bool = False) -> ScrubReport:
    """Redact every stored record of a PostgreSQL store in place.

    Args:
        store: The store.
        redactor: The rules (:class:`procmem.security.redaction.Redactor`).
        dry_run: Report what would change; write nothing.

    Returns:
        A :class:`~procmem.store.scrub.ScrubReport`.

    Raises:
        StoreError: PostgreSQL failed (nothing is changed then).
    """
    rep = ScrubReport(dry_run=dry_run)
    with store.transaction(), store._conn() as conn:
        lock = "" if dry_run else " FOR UPDATE"
        for tid, raw in conn.execute(f"SELECT id, json FROM traces ORDER BY seq{lock}").fetchall():
            rep.scanned["traces"] += 1
            cleaned, found = redactor.trace(Trace.model_validate_json(raw))
            if found:
                rep._note("traces", tid, [f.kind for f in found])
                if not dry_run:
                    conn.execute("UPDATE traces SET json = %s WHERE id = %s",
                                 (cleaned.model_dump_json(by_alias=True), tid))
        for name, version, raw in conn.execute(
                f"SELECT name, version, json FROM procedures ORDER BY name, version{lock}"
        ).fetchall():
            rep.scanned["procedures"] += 1
            proc, found = redactor.model(Procedure.model_validate_json(raw), PROC_FIELDS)
            if found:
                rep._note("procedures", f"{name} v{version}", [f.kind for f in found])
                if not dry_run:
                    conn.execute("UPDATE procedures SET json = %s WHERE name = %s AND version = %s",
                                 (procedure_json(secretize(proc)), name, version))
        for table, keys in JSON_TABLES:
            cols = sql.SQL(", ").join(sql.Identifier(k) for k in keys)
            query = sql.SQL("SELECT {}, json FROM {} ORDER BY {}" + lock).format(
                cols, sql.Identifier(table), cols)
            for row in conn.execute(query).fetchall():
                rep.scanned[table] += 1
                cleaned, kinds = scrub_json(redactor, json.loads(row[-1]))
                if kinds:
                    rep._note(table, "/".join(str(k) for k in row[:-1]), kinds)
                    if not dry_run:
                        where = sql.SQL(" AND ").join(
                            sql.SQL("{} = %s").format(sql.Identifier(k)) for k in keys)
                        conn.execute(sql.SQL("UPDATE {} SET json = %s WHERE {}").format(
                            sql.Identifier(table), where),
                            (json.dumps(cleaned, ensure_ascii=False), *row[:-1]))
        if not dry_run and rep.changed:
            for (name,) in conn.execute("SELECT DISTINCT name FROM procedures").fetchall():
                store._reindex(conn, name)
            conn.execute("DELETE FROM index_snapshots")
    if not dry_run and rep.changed:
        tables = sorted(set(rep.changed) | {"procedure_index", "index_snapshots"})
        with store._conn() as conn:  # autocommit: VACUUM cannot run in a transaction
            for table in tables:
                conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(table)))
    return rep
