"""Tool schemas, procedure notes and API keys on PostgreSQL: a mixin of :class:`PostgresStore`.

Invariants (as on SQLite, :mod:`procmem.store.tools_sql` and :mod:`procmem.store.keys_sql`):
    * A tool schema is stored with its canonical hash; an equal schema changes
      nothing, a changed one moves the old row to ``tool_schema_history`` first
      (the current row is locked, ``FOR UPDATE``, while it is compared).
    * ``put_tool_schemas`` is one transaction; notes are added only for tools
      added or changed by the same call; any change logs ``"*"`` in the index log.
    * API keys: never replaced (``Conflict``), revoked once, secrets never stored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...core.errors import Conflict, NotFound, UsageError
from ...core.model import utcnow
from ...formats.toolschema import schema_hash
from ...security.keys import ApiKey
from .base import Conn, PendingRevisions, aware, text_time
from .search import log_index_change

__all__ = ["ToolsPG"]

Notes = Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]]
_KEY_COLUMNS = "id, tenant, scopes, secret_hash, name, created_at, revoked_at"


class ToolsPG:
    """Tool-schema, note and API-key methods of the PostgreSQL store."""

    if TYPE_CHECKING:  # provided by PostgresStore
        def _write(self) -> AbstractContextManager[Conn]: ...

        def _revisions(self) -> PendingRevisions | None: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

    # ------------------------------------------------------------ tool schemas

    def put_tool_schema(self, name: str, schema: Mapping[str, Any]) -> bool:
        """Store (replace) one tool's schema; True if new or changed (not in the protocol)."""
        return self.put_tool_schemas({name: schema})[name] != "unchanged"

    def put_tool_schemas(self, schemas: Mapping[str, Mapping[str, Any]], *,
                         notes: Notes | None = None) -> dict[str, str]:
        """Store schemas and the notes their change calls for, in one transaction.

        Returns:
            ``{name: "added" | "changed" | "unchanged"}`` in ``schemas`` order.

        Raises:
            UsageError: An empty name or a schema that is not JSON (nothing is stored).
            NotFound: A note names a procedure without a version (nothing is stored).
        """
        status: dict[str, str] = {}
        now = utcnow()
        with self._write() as conn:
            for name, schema in schemas.items():
                if not isinstance(name, str) or not name:
                    raise UsageError(f"a tool schema needs a non-empty name, got {name!r}")
                try:
                    text = json.dumps(schema, ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as err:
                    raise UsageError(f"tool {name!r}: schema is not JSON: {err}") from err
                digest = schema_hash(schema)
                row = conn.execute("SELECT hash, json FROM tool_schemas WHERE name = %s "
                                   "FOR UPDATE", (name,)).fetchone()
                if row is not None and row[0] == digest:
                    status[name] = "unchanged"
                    continue
                if row is not None:
                    conn.execute("INSERT INTO tool_schema_history (name, hash, json, replaced_at) "
                                 "VALUES (%s, %s, %s, %s)", (name, row[0], row[1], now))
                conn.execute(
                    "INSERT INTO tool_schemas (name, json, hash, updated_at) "
                    "VALUES (%s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
                    "json = excluded.json, hash = excluded.hash, updated_at = excluded.updated_at",
                    (name, text, digest, now))
                status[name] = "added" if row is None else "changed"
                for procedure, record in (notes or {}).get(name, ()):
                    self._add_note(conn, procedure, "tool_schema", record, now)
            if any(v != "unchanged" for v in status.values()):
                # tool descriptions are part of every card
                log_index_change(conn, self._revisions(), "*")
        return status

    def find_tool_schema(self, name: str) -> dict[str, Any] | None:
        """One tool's current schema, or ``None``."""
        rows = self._rows("SELECT json FROM tool_schemas WHERE name = %s", (name,))
        return json.loads(rows[0][0]) if rows else None

    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Every tool's current schema, by name (code-point order)."""
        rows = self._rows("SELECT name, json FROM tool_schemas ORDER BY name")
        return {r[0]: json.loads(r[1]) for r in rows}

    def list_tool_schema_history(self, name: str) -> list[dict[str, Any]]:
        """The schemas ``name`` had before, oldest first: ``{"hash", "schema", "replaced_at"}``."""
        rows = self._rows("SELECT hash, json, replaced_at FROM tool_schema_history "
                          "WHERE name = %s ORDER BY id", (name,))
        return [{"hash": r[0], "schema": json.loads(r[1]), "replaced_at": text_time(r[2])}
                for r in rows]

    # -------------------------------------------------------- procedure notes

    def _add_note(self, conn: Conn, name: str, kind: str, record: Mapping[str, Any],
                  now: datetime) -> None:
        if conn.execute("SELECT 1 FROM procedures WHERE name = %s LIMIT 1",
                        (name,)).fetchone() is None:
            raise NotFound("procedure", name)
        conn.execute("INSERT INTO procedure_notes (name, kind, json, created_at) "
                     "VALUES (%s, %s, %s, %s)", (name, kind, json.dumps(record, default=str), now))

    def add_procedure_note(self, name: str, kind: str, record: Mapping[str, Any]) -> None:
        """Append a note about a procedure name (``NotFound`` if it has no version)."""
        with self._write() as conn:
            self._add_note(conn, name, kind, record, utcnow())

    def list_procedure_notes(self, name: str | None = None, *,
                             kind: str | None = None) -> list[dict[str, Any]]:
        """Notes oldest first: ``{"id", "name", "kind", "created_at", "record"}``."""
        rows = self._rows(
            "SELECT id, name, kind, created_at, json FROM procedure_notes "
            "WHERE (%(n)s::text IS NULL OR name = %(n)s) AND (%(k)s::text IS NULL OR kind = %(k)s) "
            "ORDER BY id", {"n": name, "k": kind})
        return [{"id": int(r[0]), "name": r[1], "kind": r[2], "created_at": text_time(r[3]),
                 "record": json.loads(r[4])} for r in rows]

    def delete_procedure_notes(self, name: str | None = None, *, kind: str | None = None) -> int:
        """Delete notes (all, about ``name``, of ``kind``); returns how many."""
        with self._write() as conn:
            return int(conn.execute(
                "DELETE FROM procedure_notes WHERE (%(n)s::text IS NULL OR name = %(n)s) "
                "AND (%(k)s::text IS NULL OR kind = %(k)s)", {"n": name, "k": kind}).rowcount)

    # ----------------------------------------------------------------- API keys

    def put_api_key(self, key: ApiKey) -> None:
        """Store a new key (its hash, tenant and scopes; never a secret).

        Raises:
            Conflict: A key with this id is stored already.
        """
        with self._write() as conn:
            inserted = conn.execute(
                f"INSERT INTO api_keys ({_KEY_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (id) DO NOTHING",
                (key.id, key.tenant, json.dumps(list(key.scopes)), key.secret_hash, key.name,
                 aware(key.created_at),
                 None if key.revoked_at is None else aware(key.revoked_at))).rowcount
            if not inserted:
                raise Conflict("API key", key.id, "already stored")

    def find_api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not), or ``None``."""
        rows = self._rows(f"SELECT {_KEY_COLUMNS} FROM api_keys WHERE id = %s", (key_id,))
        return _key(rows[0]) if rows else None

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Keys oldest first, revoked ones too; only ``tenant``'s when given."""
        rows = self._rows(f"SELECT {_KEY_COLUMNS} FROM api_keys "
                          "WHERE %(t)s::text IS NULL OR tenant = %(t)s "
                          'ORDER BY created_at, id COLLATE "C"',
                          {"t": tenant})
        return [_key(r) for r in rows]

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; True if it was live until now."""
        with self._write() as conn:
            return bool(conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL",
                (utcnow(), key_id)).rowcount)


def _key(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(id=row[0], tenant=row[1], scopes=tuple(json.loads(row[2])),
                  secret_hash=row[3], name=row[4], created_at=aware(row[5]),
                  revoked_at=None if row[6] is None else aware(row[6]))
