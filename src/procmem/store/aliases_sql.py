"""Procedure renames on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`
(also the alias half of :class:`procmem.store.listing.ListingRecords`).

Table ``procedure_aliases`` (migration ``0011_procedure_aliases.sql``); the
rules are those of :class:`procmem.store.aliases.AliasRecords`. Run statistics
(``procedure_stats``) move with the executions: the triggers of migration 0010
move an execution's counters when its ``procedure`` column changes.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from ..core.errors import Conflict, NotFound, UsageError
from ..core.model import utcnow
from .common import check_alias, timestamp

__all__ = ["AliasSQL"]

_BY_NAME = ("procedure_flags", "verifications", "procedure_notes")
"""Tables keyed by the procedure's ``name`` that move as they are."""


class AliasSQL:
    """Rename methods of the SQLite store."""

    if TYPE_CHECKING:
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...
        def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[str, ...]]: ...
        def _reindex(self, conn: sqlite3.Connection, name: str) -> None: ...

    def rename_procedure(self, old: str, new: str) -> int:
        """Move every record of ``old`` to ``new`` in one transaction (see the protocol)."""
        if old == new:
            raise UsageError(f"cannot rename {old!r} to itself")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM procedures WHERE name = ? LIMIT 1",
                            (new,)).fetchone():
                raise Conflict("procedure", new, "the name is taken")
            moved = conn.execute(
                "UPDATE procedures SET name = ?, json = json_set(json, '$.name', ?) "
                "WHERE name = ?", (new, new, old)).rowcount
            if not moved:
                raise NotFound("procedure", old)
            conn.execute("UPDATE executions SET procedure = ?, "
                         "json = json_set(json, '$.procedure', ?) WHERE procedure = ?",
                         (new, new, old))
            for table in _BY_NAME:
                conn.execute(f"UPDATE {table} SET name = ? WHERE name = ?",  # noqa: S608
                             (new, old))
            conn.execute("DELETE FROM procedure_aliases WHERE old = ?", (new,))
            conn.execute("UPDATE procedure_aliases SET new = ? WHERE new = ?", (new, old))
            conn.execute("INSERT OR REPLACE INTO procedure_aliases (old, new, renamed_at) "
                         "VALUES (?, ?, ?)", (old, new, timestamp(utcnow())))
            self._reindex(conn, old)
            self._reindex(conn, new)
        return int(moved)

    def resolve_alias(self, name: str) -> str | None:
        """The name ``name`` was renamed to, or ``None``."""
        rows = self._rows("SELECT new FROM procedure_aliases WHERE old = ?", (name,))
        return str(rows[0][0]) if rows else None

    def list_aliases(self) -> dict[str, str]:
        """Every alias ``{old: new}``, by old name (code-point order)."""
        return {str(o): str(n) for o, n in
                self._rows("SELECT old, new FROM procedure_aliases ORDER BY old")}

    def put_alias(self, old: str, new: str) -> None:
        """Store the alias ``old`` -> ``new`` as it is, moving no record (``procmem copy``).

        Raises:
            UsageError: An empty name, ``old == new``, or the alias would chain.
        """
        check_alias(old, new)
        with self._write() as conn:
            chain = conn.execute("SELECT old, new FROM procedure_aliases "
                                 "WHERE old = ?2 OR new = ?1", (old, new)).fetchone()
            if chain is not None:
                raise UsageError(f"alias {old!r} -> {new!r} would chain with the alias "
                                 f"{chain[0]!r} -> {chain[1]!r}")
            conn.execute("INSERT OR REPLACE INTO procedure_aliases (old, new, renamed_at) "
                         "VALUES (?, ?, ?)", (old, new, timestamp(utcnow())))

