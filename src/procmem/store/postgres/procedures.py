"""Procedure versions, pins, verifications and renames on PostgreSQL: a mixin of
:class:`PostgresStore`.

Invariants:
    * A version is inserted with ``ON CONFLICT DO NOTHING``; when another writer
      got there first the stored content decides (same: no-op, else ``Conflict``).
    * Status changes lock the version's row (``SELECT ... FOR UPDATE``) before
      rewriting it, so two promotions of one version from two processes apply
      one after the other and the search document follows the last one.
    * Every change of a name's current version rebuilds its search document in
      the same transaction (:meth:`ProceduresPG._reindex`) and logs it
      (:func:`procmem.store.postgres.search.log_index_change`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ...core.errors import Conflict, NotFound, UsageError
from ...core.model import Procedure, utcnow
from ..base import index_text
from ..common import CURRENT_ORDER, check_page, check_status, version_content
from ..common import procedure_json as _procedure_json
from .base import Conn, PendingRevisions, aware, keys
from .search import log_index_change

__all__ = ["ProceduresPG"]

_CHUNK = 1000
_BY_NAME = ("procedure_flags", "verifications", "procedure_notes")
"""Tables keyed by the procedure's ``name`` that move as they are on a rename."""


class ProceduresPG:
    """Procedure-version methods of the PostgreSQL store."""

    if TYPE_CHECKING:  # provided by PostgresStore
        def _write(self) -> AbstractContextManager[Conn]: ...

        def _revisions(self) -> PendingRevisions | None: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

    def put_procedure(self, procedure: Procedure) -> bool:
        """Store one immutable version and re-index its name; True if it was new.

        Raises:
            Conflict: ``(name, version)`` is stored with different content.
        """
        with self._write() as conn:
            inserted = conn.execute(
                "INSERT INTO procedures (name, version, status, json, lineage, created_at) "
                "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name, version) DO NOTHING",
                (procedure.name, procedure.version, procedure.status, _procedure_json(procedure),
                 json.dumps(list(procedure.lineage.traces)), aware(procedure.created_at)),
            ).rowcount
            if not inserted:
                row = conn.execute("SELECT json FROM procedures WHERE name = %s AND version = %s",
                                   (procedure.name, procedure.version)).fetchone()
                if row is None or version_content(Procedure.model_validate_json(row[0])) != \
                        version_content(procedure):
                    raise Conflict("procedure", procedure.key,
                                   "version already stored with different content")
                return False
            self._reindex(conn, procedure.name)
        return True

    def _reindex(self, conn: Conn, name: str) -> None:
        """Rebuild the search document of ``name`` from its current version, and log it."""
        log_index_change(conn, self._revisions(), name)
        row = conn.execute(f"SELECT json FROM procedures WHERE name = %s "
                           f"ORDER BY {CURRENT_ORDER} LIMIT 1", (name,)).fetchone()
        if row is None:
            conn.execute("DELETE FROM procedure_index WHERE name = %s", (name,))
            return
        procedure = Procedure.model_validate_json(row[0])
        ids = list(dict.fromkeys(procedure.lineage.traces))
        wanted = keys(ids)
        found = {tid: json.loads(text)["task"] for tid, text in conn.execute(
            "SELECT id, json FROM traces WHERE id = ANY(%s)", (wanted,)).fetchall()}
        body = index_text(procedure, [found[i] for i in ids if i in found])
        conn.execute("INSERT INTO procedure_index (name, status, body) VALUES (%s, %s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET status = excluded.status, "
                     "body = excluded.body", (name, procedure.status, body.encode()))

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One version (``None``: the current one), or ``NotFound``."""
        if version is None:
            rows = self._rows(f"SELECT json FROM procedures WHERE name = %s "
                              f"ORDER BY {CURRENT_ORDER} LIMIT 1", (name,))
        else:
            rows = self._rows("SELECT json FROM procedures WHERE name = %s AND version = %s",
                              (name, version))
        if not rows:
            raise NotFound("procedure", name if version is None else f"{name}@{version}")
        return Procedure.model_validate_json(rows[0][0])

    def get_procedures_json(self, names: Sequence[str]) -> dict[str, str]:
        """``{name: JSON text of its current version}``; names without a version are left out."""
        found: dict[str, str] = {}
        unique = keys(names)
        for i in range(0, len(unique), _CHUNK):
            for name, text in self._rows(
                    f"SELECT DISTINCT ON (name) name, json FROM procedures WHERE name = ANY(%s) "
                    f"ORDER BY name, {CURRENT_ORDER}", (unique[i:i + _CHUNK],)):
                found[name] = text
        return found

    def count_procedures(self) -> int:
        """How many procedure names have at least one version."""
        return int(self._rows("SELECT COUNT(DISTINCT name) FROM procedures")[0][0])

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        """The current version of each name, by name (code-point order), paged.

        Raises:
            UsageError: Unknown ``status``, or a negative ``limit``/``offset``.
        """
        check_page(limit, offset)
        if status is not None:
            check_status(status)
        rows = self._rows(
            f"SELECT json FROM (SELECT DISTINCT ON (name) name, status, json FROM procedures "
            f"ORDER BY name, {CURRENT_ORDER}) AS current "
            f"WHERE %(status)s::text IS NULL OR status = %(status)s "
            f"ORDER BY name LIMIT %(limit)s OFFSET %(offset)s",
            {"status": status, "limit": limit, "offset": offset})
        return [Procedure.model_validate_json(r[0]) for r in rows]

    def list_versions(self, name: str) -> list[Procedure]:
        """Every version of one procedure, oldest first (``NotFound`` if none)."""
        rows = self._rows("SELECT json FROM procedures WHERE name = %s ORDER BY version", (name,))
        if not rows:
            raise NotFound("procedure", name)
        return [Procedure.model_validate_json(r[0]) for r in rows]

    def list_versions_by_trace(self, trace_id: str) -> list[Procedure]:
        """Every version whose lineage lists ``trace_id``, by name then version."""
        rows = self._rows("SELECT json, lineage FROM procedures WHERE strpos(lineage, %s) > 0 "
                          "ORDER BY name, version", (json.dumps(trace_id),))
        return [Procedure.model_validate_json(text) for text, lineage in rows
                if trace_id in json.loads(lineage)]

    def set_status(self, name: str, version: int, status: str) -> None:
        """Change one version's status (its row locked meanwhile) and re-index its name.

        Raises:
            UsageError: ``status`` is not candidate, active or deprecated.
            NotFound: No such version.
        """
        check_status(status)
        with self._write() as conn:
            row = conn.execute("SELECT json FROM procedures WHERE name = %s AND version = %s "
                               "FOR UPDATE", (name, version)).fetchone()
            if row is None:
                raise NotFound("procedure", f"{name}@{version}")
            updated = Procedure.model_validate_json(row[0]).model_copy(update={"status": status})
            conn.execute("UPDATE procedures SET status = %s, json = %s "
                         "WHERE name = %s AND version = %s",
                         (status, _procedure_json(updated), name, version))
            self._reindex(conn, name)

    def delete_procedure(self, name: str) -> bool:
        """Delete every version of ``name`` with its pin, verifications, notes and document."""
        with self._write() as conn:
            gone = conn.execute("DELETE FROM procedures WHERE name = %s", (name,)).rowcount
            for table in _BY_NAME:
                conn.execute(f"DELETE FROM {table} WHERE name = %s", (name,))  # noqa: S608
            self._reindex(conn, name)
        return bool(gone)

    def _has_version(self, conn: Conn, name: str, version: int | None = None) -> bool:
        if version is None:
            query = "SELECT 1 FROM procedures WHERE name = %s LIMIT 1"
            return conn.execute(query, (name,)).fetchone() is not None
        query = "SELECT 1 FROM procedures WHERE name = %s AND version = %s"
        return conn.execute(query, (name, version)).fetchone() is not None

    def set_pinned(self, name: str, pinned: bool) -> None:
        """Pin or unpin a procedure name (``NotFound`` if it has no version)."""
        with self._write() as conn:
            if not self._has_version(conn, name):
                raise NotFound("procedure", name)
            conn.execute("INSERT INTO procedure_flags (name, pinned) VALUES (%s, %s) "
                         "ON CONFLICT (name) DO UPDATE SET pinned = excluded.pinned",
                         (name, bool(pinned)))

    def is_pinned(self, name: str) -> bool:
        """True when ``name`` is pinned (unknown names are not)."""
        rows = self._rows("SELECT pinned FROM procedure_flags WHERE name = %s", (name,))
        return bool(rows and rows[0][0])

    def put_verification(self, name: str, version: int, record: dict[str, Any]) -> None:
        """Store (replace) one version's verification record (``NotFound`` if no such version)."""
        with self._write() as conn:
            if not self._has_version(conn, name, version):
                raise NotFound("procedure", f"{name}@{version}")
            conn.execute("INSERT INTO verifications (name, version, json) VALUES (%s, %s, %s) "
                         "ON CONFLICT (name, version) DO UPDATE SET json = excluded.json",
                         (name, version, json.dumps(record, default=str)))

    def get_verification(self, name: str, version: int) -> dict[str, Any] | None:
        """One version's verification record, or ``None``."""
        rows = self._rows("SELECT json FROM verifications WHERE name = %s AND version = %s",
                          (name, version))
        return json.loads(rows[0][0]) if rows else None

    # ------------------------------------------------------------------ renames

    def rename_procedure(self, old: str, new: str) -> int:
        """Move every record of ``old`` to ``new`` in one transaction (see ``AliasRecords``).

        Raises:
            UsageError: ``old == new``.
            NotFound: ``old`` has no version.
            Conflict: ``new`` has a version already.
        """
        if old == new:
            raise UsageError(f"cannot rename {old!r} to itself")
        with self._write() as conn:
            if self._has_version(conn, new):
                raise Conflict("procedure", new, "the name is taken")
            rows = conn.execute("SELECT version, json FROM procedures WHERE name = %s "
                                "FOR UPDATE", (old,)).fetchall()
            if not rows:
                raise NotFound("procedure", old)
            for version, text in rows:
                record = Procedure.model_validate_json(text).model_copy(update={"name": new})
                conn.execute("UPDATE procedures SET name = %s, json = %s "
                             "WHERE name = %s AND version = %s",
                             (new, _procedure_json(record), old, version))
            for ex_id, text in conn.execute("SELECT id, json FROM executions "
                                            "WHERE procedure = %s FOR UPDATE", (old,)).fetchall():
                header = json.loads(text)
                header["procedure"] = new
                conn.execute("UPDATE executions SET procedure = %s, json = %s WHERE id = %s",
                             (new, json.dumps(header, ensure_ascii=False), ex_id))
            for table in _BY_NAME:
                conn.execute(f"UPDATE {table} SET name = %s WHERE name = %s",  # noqa: S608
                             (new, old))
            conn.execute("DELETE FROM procedure_aliases WHERE old = %s", (new,))
            conn.execute("UPDATE procedure_aliases SET new = %s WHERE new = %s", (new, old))
            conn.execute("INSERT INTO procedure_aliases (old, new, renamed_at) "
                         "VALUES (%s, %s, %s) ON CONFLICT (old) DO UPDATE SET "
                         "new = excluded.new, renamed_at = excluded.renamed_at",
                         (old, new, utcnow()))
            self._reindex(conn, old)
            self._reindex(conn, new)
        return len(rows)

    def resolve_alias(self, name: str) -> str | None:
        """The name ``name`` was renamed to, or ``None``."""
        rows = self._rows("SELECT new FROM procedure_aliases WHERE old = %s", (name,))
        return str(rows[0][0]) if rows else None
