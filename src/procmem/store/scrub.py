"""Scrub secrets out of an existing SQLite store (``procmem redact``).

Stores written before redaction covered every ingest path may hold secrets in
clear. :func:`scrub_sqlite` runs a :class:`~procmem.security.redaction.Redactor` over every
record that holds text a user or a tool produced, rewrites the changed rows in
place in one transaction, rebuilds the keyword index, drops saved search indexes
(they hold the terms), then checkpoints the WAL and ``VACUUM``\\ s so the old text
is not left in free pages of the database file.

Records scanned: traces (and their ``task`` column), every procedure version
(redacted literals become secret params, :func:`procmem.security.secret_params.secretize`),
executions and their step runs, evidence, verifications and procedure notes.

Invariants:
    * ``dry_run`` reads only; the report is the same as the real run's.
    * Ids, versions and timestamps are kept: only text that held a secret changes.
    * Records are immutable elsewhere; this is the one place that rewrites them.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import UsageError
from ..core.model import Procedure, Trace
from ..security.redaction import Redactor
from ..security.secret_params import secretize
from .base import Store
from .common import procedure_json
from .sqlite import SQLiteStore

__all__ = ["JSON_TABLES", "PROC_FIELDS", "ScrubReport", "scrub_json", "scrub_sqlite"]

PROC_FIELDS = ("description", "steps", "params", "tags")
# (table, key columns) of the tables whose json column is scrubbed generically
JSON_TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("executions", ("id",)),
    ("step_runs", ("execution_id", "idx")),
    ("evidence", ("id",)),
    ("verifications", ("name", "version")),
    ("procedure_notes", ("id",)),
)
# top-level fields of those records that are structure, never user text
_STRUCTURE = frozenset({"id", "procedure", "version", "status", "started_at", "finished_at",
                        "duration_ms", "parent_id", "param_sources", "execution_id", "step_id",
                        "idx", "attempt", "source", "created_at", "name", "kind"})


@dataclass
class ScrubReport:
    """What :func:`scrub_sqlite` changed (or would change, ``dry_run``).

    Attributes:
        scanned: Records read, by table.
        changed: Records rewritten, by table.
        findings: Secrets found, by kind (``aws_key``, ``keyed``, ``password`` ...).
        changed_ids: Up to 50 changed record keys per table (ids, never values).
        dry_run: Nothing was written.
    """

    scanned: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)
    findings: Counter[str] = field(default_factory=Counter)
    changed_ids: dict[str, list[str]] = field(default_factory=dict)
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape: plain dicts of counts and id lists."""
        return {"dry_run": self.dry_run, "scanned": dict(self.scanned),
                "changed": dict(self.changed), "findings": dict(self.findings),
                "changed_ids": self.changed_ids}

    def _note(self, table: str, key: str, kinds: list[str]) -> None:
        self.changed[table] += 1
        self.findings.update(kinds)
        ids = self.changed_ids.setdefault(table, [])
        if len(ids) < 50:
            ids.append(key)


def scrub_json(redactor: Redactor, data: Any) -> tuple[Any, list[str]]:
    """One stored JSON record redacted (its structure fields left as they are), with the
    kinds of secret found; shared by the SQLite and PostgreSQL scrubs."""
    if not isinstance(data, dict):
        cleaned, found = redactor.value(data)
        return cleaned, [f.kind for f in found]
    out: dict[str, Any] = dict(data)
    kinds: list[str] = []
    for k, v in data.items():
        if k in _STRUCTURE:
            continue
        cleaned, found = redactor.value(v, f"/{k}")
        if found:
            out[k] = cleaned
            kinds.extend(f.kind for f in found)
    return out, kinds


def _traces(conn: sqlite3.Connection, r: Redactor, rep: ScrubReport, dry: bool) -> None:
    for tid, raw in conn.execute("SELECT id, json FROM traces").fetchall():
        rep.scanned["traces"] += 1
        trace = Trace.model_validate_json(raw)
        cleaned, found = r.trace(trace)
        if found:
            rep._note("traces", tid, [f.kind for f in found])
            if not dry:
                conn.execute("UPDATE traces SET json = ?, task = ? WHERE id = ?",
                             (cleaned.model_dump_json(by_alias=True), cleaned.task, tid))


def _procedures(conn: sqlite3.Connection, r: Redactor, rep: ScrubReport, dry: bool) -> None:
    rows = conn.execute("SELECT name, version, json FROM procedures").fetchall()
    for name, version, raw in rows:
        rep.scanned["procedures"] += 1
        proc = Procedure.model_validate_json(raw)
        cleaned, found = r.model(proc, PROC_FIELDS)
        if found:
            cleaned = secretize(cleaned)
            rep._note("procedures", f"{name} v{version}", [f.kind for f in found])
            if not dry:
                conn.execute("UPDATE procedures SET json = ? WHERE name = ? AND version = ?",
                             (procedure_json(cleaned), name, version))


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def scrub_sqlite(store: Store, redactor: Redactor, *, dry_run: bool = False) -> ScrubReport:
    """Redact every stored record of a SQLite store in place.

    Args:
        store: The store (``Memory.store``); a SQLite store only.
        redactor: The rules (:class:`procmem.security.redaction.Redactor`).
        dry_run: Report what would change; write nothing.

    Returns:
        A :class:`ScrubReport`.

    Raises:
        UsageError: ``store`` is not a SQLite store.
        StoreError: SQLite failed (nothing is changed then).
    """
    if not isinstance(store, SQLiteStore):
        raise UsageError("procmem redact works on SQLite and PostgreSQL stores only")
    rep = ScrubReport(dry_run=dry_run)
    with store.transaction(), store._guard() as conn:
        conn.execute("PRAGMA secure_delete = ON")
        _traces(conn, redactor, rep, dry_run)
        _procedures(conn, redactor, rep, dry_run)
        present = _tables(conn)
        for table, keys in JSON_TABLES:
            if table not in present:
                continue
            cols = ", ".join(keys)
            for row in conn.execute(f"SELECT {cols}, json FROM {table}").fetchall():
                rep.scanned[table] += 1
                cleaned, kinds = scrub_json(redactor, json.loads(row[-1]))
                if kinds:
                    rep._note(table, "/".join(str(k) for k in row[:-1]), kinds)
                    if not dry_run:
                        where = " AND ".join(f"{k} = ?" for k in keys)
                        conn.execute(f"UPDATE {table} SET json = ? WHERE {where}",
                                     (json.dumps(cleaned, ensure_ascii=False), *row[:-1]))
        if not dry_run and rep.changed:
            for (name,) in conn.execute("SELECT DISTINCT name FROM procedures").fetchall():
                store._reindex(conn, name)
            if "index_snapshots" in present:
                conn.execute("DELETE FROM index_snapshots")
    if not dry_run and rep.changed:
        with store._guard() as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            conn.execute("VACUUM")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return rep
