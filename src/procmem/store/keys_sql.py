"""API keys on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Table ``api_keys`` (migration ``0009_api_keys.sql``). Invariants (the rules of
:class:`procmem.store.base.Store`):
    * A key's secret is never stored; only :func:`procmem.security.keys.hash_secret` of it.
    * ``put_api_key`` never replaces a key: an id stored already is a ``Conflict``.
    * ``revoke_api_key`` sets ``revoked_at`` once; nothing clears it.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..core.errors import Conflict
from ..core.model import utcnow
from ..security.keys import ApiKey
from .common import timestamp

__all__ = ["KeysSQL"]

_COLUMNS = "id, tenant, scopes, secret_hash, name, created_at, revoked_at"


class KeysSQL:
    """API key methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def put_api_key(self, key: ApiKey) -> None:
        """Store a new key (its hash, tenant and scopes).

        Raises:
            Conflict: A key with this id is stored already.
        """
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM api_keys WHERE id = ?", (key.id,)).fetchone():
                raise Conflict("API key", key.id, "already stored")
            conn.execute(
                f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key.id, key.tenant, json.dumps(list(key.scopes)), key.secret_hash, key.name,
                 timestamp(key.created_at),
                 None if key.revoked_at is None else timestamp(key.revoked_at)))

    def find_api_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked or not), or ``None``."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,))
        return _record(rows[0]) if rows else None

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        """Keys oldest first, revoked ones too; only ``tenant``'s when given."""
        rows = self._rows(f"SELECT {_COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tenant = ?1) "
                          "ORDER BY created_at, id", (tenant,))
        return [_record(r) for r in rows]

    def revoke_api_key(self, key_id: str) -> bool:
        """Revoke a key; True if it was live until now (False: unknown or revoked already)."""
        with self._write() as conn:
            return bool(conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (timestamp(utcnow()), key_id)).rowcount)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _record(row: tuple[Any, ...]) -> ApiKey:
    return ApiKey(id=row[0], tenant=row[1], scopes=tuple(json.loads(row[2])),
                  secret_hash=row[3], name=row[4], created_at=_moment(row[5]),
                  revoked_at=None if row[6] is None else _moment(row[6]))
