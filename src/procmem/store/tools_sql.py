"""Tool schemas and procedure notes on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Tables (migration ``0003_tool_schemas.sql``): ``tool_schemas`` (the current schema
of each tool), ``tool_schema_history`` (every schema a tool had before it was
replaced) and ``procedure_notes`` (append-only notes about procedure names).

Invariants:
    * A tool schema is stored as its canonical JSON's SHA-256 (``hash``, see
      :func:`procmem.formats.toolschema.schema_hash`) plus the JSON; putting an equal
      schema changes nothing, a different one moves the old row to the history first.
    * ``put_tool_schemas`` is one transaction: every schema and every note, or none.
    * Notes for a tool are stored only if that tool was added or changed by the
      same call, so a re-import of unchanged schemas never adds notes.
    * Notes are never updated; they are deleted with their procedure or by
      :meth:`ToolSchemaSQL.delete_procedure_notes`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ..core.errors import NotFound, UsageError
from ..core.model import utcnow
from ..formats.toolschema import schema_hash
from .common import timestamp
from .search_sql import log_index_change

__all__ = ["ToolSchemaSQL"]

Notes = Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]]
"""Notes to add per tool name: ``[(procedure name, record)]``, kind ``tool_schema``."""


class ToolSchemaSQL:
    """Tool-schema and procedure-note methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    # ------------------------------------------------------------ tool schemas

    def put_tool_schema(self, name: str, schema: Mapping[str, Any]) -> bool:
        """Store (replace) one tool's schema; True if it was new or changed.

        Raises:
            UsageError: ``name`` is empty or ``schema`` is not JSON.
        """
        return self.put_tool_schemas({name: schema})[name] != "unchanged"

    def put_tool_schemas(self, schemas: Mapping[str, Mapping[str, Any]], *,
                         notes: Notes | None = None) -> dict[str, str]:
        """Store tool schemas and the notes their change calls for, in one transaction.

        Args:
            schemas: Schema (a JSON object) by tool name.
            notes: Per tool name, ``(procedure name, record)`` notes of kind
                ``tool_schema`` to add if, and only if, that tool is added or changed now.

        Returns:
            ``{name: "added" | "changed" | "unchanged"}`` in ``schemas`` order.

        Raises:
            UsageError: An empty name or a schema that is not JSON (nothing is stored).
        """
        status: dict[str, str] = {}
        now = timestamp(utcnow())
        with self._write() as conn:
            for name, schema in schemas.items():
                if not isinstance(name, str) or not name:
                    raise UsageError(f"a tool schema needs a non-empty name, got {name!r}")
                try:
                    text = json.dumps(schema, ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as err:
                    raise UsageError(f"tool {name!r}: schema is not JSON: {err}") from err
                digest = schema_hash(schema)
                row = conn.execute("SELECT hash, json FROM tool_schemas WHERE name = ?",
                                   (name,)).fetchone()
                if row is not None and row[0] == digest:
                    status[name] = "unchanged"
                    continue
                if row is not None:
                    conn.execute("INSERT INTO tool_schema_history (name, hash, json, replaced_at) "
                                 "VALUES (?, ?, ?, ?)", (name, row[0], row[1], now))
                conn.execute(
                    "INSERT INTO tool_schemas (name, json, hash, updated_at) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET json = excluded.json, "
                    "hash = excluded.hash, updated_at = excluded.updated_at",
                    (name, text, digest, now))
                status[name] = "added" if row is None else "changed"
                for procedure, record in (notes or {}).get(name, ()):
                    self._add_note(conn, procedure, "tool_schema", record, now)
            if any(v != "unchanged" for v in status.values()):
                log_index_change(conn, "*")  # tool descriptions are part of every card
        return status

    def find_tool_schema(self, name: str) -> dict[str, Any] | None:
        """One tool's current schema, or ``None``."""
        rows = self._rows("SELECT json FROM tool_schemas WHERE name = ?", (name,))
        return json.loads(rows[0][0]) if rows else None

    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Every tool's current schema, by name (sorted)."""
        rows = self._rows("SELECT name, json FROM tool_schemas ORDER BY name")
        return {r[0]: json.loads(r[1]) for r in rows}

    def list_tool_schema_history(self, name: str) -> list[dict[str, Any]]:
        """The schemas ``name`` had before, oldest first: ``{"hash", "schema", "replaced_at"}``."""
        rows = self._rows("SELECT hash, json, replaced_at FROM tool_schema_history "
                          "WHERE name = ? ORDER BY id", (name,))
        return [{"hash": r[0], "schema": json.loads(r[1]), "replaced_at": r[2]} for r in rows]

    # -------------------------------------------------------- procedure notes

    def _add_note(self, conn: sqlite3.Connection, name: str, kind: str,
                  record: Mapping[str, Any], now: str) -> None:
        if conn.execute("SELECT 1 FROM procedures WHERE name = ? LIMIT 1",
                        (name,)).fetchone() is None:
            raise NotFound("procedure", name)
        conn.execute("INSERT INTO procedure_notes (name, kind, json, created_at) "
                     "VALUES (?, ?, ?, ?)", (name, kind, json.dumps(record, default=str), now))

    def add_procedure_note(self, name: str, kind: str, record: Mapping[str, Any]) -> None:
        """Append a note (a JSON object) about a procedure name.

        Raises:
            NotFound: No version of ``name`` is stored.
        """
        with self._write() as conn:
            self._add_note(conn, name, kind, record, timestamp(utcnow()))

    def list_procedure_notes(self, name: str | None = None, *,
                             kind: str | None = None) -> list[dict[str, Any]]:
        """Notes oldest first: ``{"id", "name", "kind", "created_at", "record"}``.

        Args:
            name: Only notes about this procedure name.
            kind: Only notes of this kind.
        """
        rows = self._rows(
            "SELECT id, name, kind, created_at, json FROM procedure_notes "
            "WHERE (?1 IS NULL OR name = ?1) AND (?2 IS NULL OR kind = ?2) ORDER BY id",
            (name, kind))
        return [{"id": r[0], "name": r[1], "kind": r[2], "created_at": r[3],
                 "record": json.loads(r[4])} for r in rows]

    def delete_procedure_notes(self, name: str | None = None, *, kind: str | None = None) -> int:
        """Delete notes (all, or about ``name``, or of ``kind``); returns how many."""
        with self._write() as conn:
            return int(conn.execute(
                "DELETE FROM procedure_notes WHERE (?1 IS NULL OR name = ?1) "
                "AND (?2 IS NULL OR kind = ?2)", (name, kind)).rowcount)
