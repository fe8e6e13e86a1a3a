"""Numbered SQL migrations: discover, apply once each, record.

Invariants: migrations live in ``procmem/store/migrations/NNNN_name.sql``; each is
applied in one transaction and recorded in ``schema_migrations(version,
applied_at)``; a database only gets the migrations it lacks, in ascending order.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

__all__ = ["Migration", "apply_migrations", "load_migrations", "pending_sqlite_migrations"]

_MIGRATION_FILE = re.compile(r"^(\d{4})_[\w-]+\.sql$")


def _now_text() -> str:
    """Now as fixed-width UTC text, the format the store uses for every timestamp."""
    return datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Migration:
    """One numbered schema change: ``version`` from the file name ``NNNN_name.sql``."""

    version: int
    name: str
    sql: str


def load_migrations(folder: str = "migrations") -> list[Migration]:
    """The migrations shipped in ``procmem/store/<folder>``, by ascending version
    (``migrations`` for SQLite, ``migrations_pg`` for PostgreSQL: the same numbering)."""
    found = []
    for entry in (resources.files("procmem.store") / folder).iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), entry.name, entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into complete statements (triggers' ``BEGIN ... END`` kept whole)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending  # only comments run as a no-op; an unfinished statement fails


def apply_migrations(
    conn: sqlite3.Connection, migrations: list[Migration] | None = None
) -> list[int]:
    """Apply the migrations ``conn`` lacks, each in its own transaction.

    Args:
        conn: A connection in autocommit mode (``isolation_level=None``), not in a transaction.
        migrations: What to apply, by ascending version; defaults to :func:`load_migrations`.

    Returns:
        The versions applied now (empty when the schema is current).

    Raises:
        sqlite3.Error: A statement failed; that migration is rolled back.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                 "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    applied: list[int] = []
    for migration in migrations if migrations is not None else load_migrations():
        if _is_applied(conn, migration.version):
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Checked again under the write lock: another process may have just applied it.
            if not _is_applied(conn, migration.version):
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                             (migration.version, _now_text()))
                applied.append(migration.version)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return applied


def _is_applied(conn: sqlite3.Connection, version: int) -> bool:
    query = "SELECT 1 FROM schema_migrations WHERE version = ?"
    return conn.execute(query, (version,)).fetchone() is not None


# --------------------------------------------------------------------------- helpers




def pending_sqlite_migrations(path: str) -> list[Migration]:
    """The shipped migrations the SQLite file ``path`` lacks, read without changing it.

    Args:
        path: A database file, or ``":memory:"``.

    Returns:
        By ascending version; every migration for ``":memory:"`` or a missing file.

    Raises:
        sqlite3.Error: The file is not a database procmem can read.
    """
    if path == ":memory:" or not os.path.exists(path):
        return load_migrations()
    conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                             "AND name = 'schema_migrations'").fetchone()
        done = {r[0] for r in conn.execute("SELECT version FROM schema_migrations")} if found \
            else set()
    finally:
        conn.close()
    return [m for m in load_migrations() if m.version not in done]
