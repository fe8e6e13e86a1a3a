"""Numbered PostgreSQL migrations: discover, apply once each under an advisory lock, record.

Invariants:
    * Migrations live in ``procmem/store/migrations_pg/NNNN_name.sql`` and carry
      the numbers of the SQLite ones (``procmem/store/migrations``), so one
      schema version means the same records on both backends.
    * The pending migrations of a schema run in one transaction (all or none;
      PostgreSQL's DDL is transactional) and each is recorded in the store
      schema's ``schema_migrations(version, applied_at)``.
    * Applying holds a session-level advisory lock (:data:`MIGRATION_LOCK`, one
      per database), so several processes opening one database at once apply
      each migration exactly once: the others wait, then find nothing pending.
      The lock also guards ``CREATE EXTENSION vector`` (database-wide).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from ..migrate import Migration, load_migrations

__all__ = ["MIGRATION_LOCK", "apply_pg_migrations", "load_pg_migrations", "pending_pg_migrations",
           "vector_schema"]

MIGRATION_LOCK = 0x70726F636D656D  # "procmem" in ASCII: the advisory lock key of migrations


def load_pg_migrations() -> list[Migration]:
    """The migrations shipped in ``procmem/store/migrations_pg``, by ascending version."""
    return load_migrations("migrations_pg")


def _applied(conn: psycopg.Connection[Any], schema: str) -> set[int] | None:
    """Versions recorded in ``schema``; ``None`` when the schema has no migration table."""
    row = conn.execute("SELECT to_regclass(%s)", (f'"{schema}".schema_migrations',)).fetchone()
    if row is None or row[0] is None:
        return None
    query = sql.SQL("SELECT version FROM {}.schema_migrations").format(sql.Identifier(schema))
    return {r[0] for r in conn.execute(query).fetchall()}


def pending_pg_migrations(conn: psycopg.Connection[Any], schema: str) -> list[Migration]:
    """The shipped migrations ``schema`` lacks (all of them for a new schema), by version."""
    done = _applied(conn, schema) or set()
    return [m for m in load_pg_migrations() if m.version not in done]


def vector_schema(conn: psycopg.Connection[Any]) -> str | None:
    """The schema the ``vector`` extension is installed in, or ``None``."""
    row = conn.execute("SELECT extnamespace::regnamespace::text FROM pg_extension "
                       "WHERE extname = 'vector'").fetchone()
    return None if row is None else str(row[0]).strip('"')


def apply_pg_migrations(conn: psycopg.Connection[Any], schema: str) -> list[int]:
    """Create ``schema`` (and the ``vector`` extension) if needed and apply its pending migrations.

    Every pending migration and its ``schema_migrations`` row go to the server
    as one script in one transaction (PostgreSQL's DDL is transactional): the
    schema ends up fully current or unchanged, in one round trip (a new store's
    eleven migrations take about 55 ms that way, 130 ms one transaction each).

    Args:
        conn: An autocommit connection, not in a transaction.
        schema: The store's schema (created when missing).

    Returns:
        The versions applied now (empty when the schema is current).

    Raises:
        psycopg.Error: A statement failed; nothing of this call is applied.
    """
    if not pending_pg_migrations(conn, schema):
        return []
    conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
    try:
        if vector_schema(conn) is None:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public")
        ext = vector_schema(conn) or "public"
        pending = pending_pg_migrations(conn, schema)  # again, under the lock
        if not pending:
            return []
        ident = sql.Identifier(schema)
        head = sql.SQL(
            "CREATE SCHEMA IF NOT EXISTS {s};\nSET LOCAL search_path TO {s}, {e};\n"
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL);\n"
        ).format(s=ident, e=sql.Identifier(ext)).as_string(conn)
        parts = [head]
        for migration in pending:
            parts += [migration.sql, f"\n;INSERT INTO schema_migrations (version, applied_at) "
                                     f"VALUES ({int(migration.version)}, now());\n"]
        with conn.transaction():
            conn.execute("".join(parts).encode())  # no parameters: several statements
        return [m.version for m in pending]
    finally:
        if not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
