"""The search index on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Tables: ``procedures_fts`` + ``procedure_index`` (the full-text document and the
status of each name's current version, written by the store when a version is
put or changes status; migrations 0001 and 0004), ``meta.index_revision``, and
``embeddings(model_id, hash, dim, vector, created_at)`` (migration 0004), one row
per embedding model and distinct text, and ``index_snapshots(key, revision,
created_at, data)`` (migration 0006), saved search indexes, and
``calibrations(key, created_at, json)`` (migration 0007), fitted confidence models.

Invariants:
    * :meth:`SearchSQL.search_text` and :meth:`SearchSQL.index_documents` read only
      what ``SQLiteStore._reindex`` wrote; ``index_revision`` grows with every change.
    * ``hash`` is :func:`text_hash` of the text (SHA-256 of its UTF-8 bytes), so
      a text is embedded once per model however many procedures share it.
    * ``vector`` is the little-endian float32 bytes of an L2-normalized vector of
      ``dim`` floats; :meth:`SearchSQL.get_embeddings` returns them as numpy rows.
    * Rows of different ``model_id`` never mix: a model's vectors are only read
      back under the same id.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.errors import UsageError
from ..core.model import utcnow
from ..core.texthash import text_hash
from .common import CURRENT_ORDER, INDEX_LOG_KEEP, check_page, timestamp

__all__ = ["INDEX_LOG_KEEP", "SearchSQL", "log_index_change", "text_hash"]

_CHUNK = 500
_SCAN_FROM = 10_000
"""Hashes from which get_embeddings reads the model's rows in one pass when they are at
least half of them: 200,000 of 200,000 take 0.3-0.9 s that way, 2.3 s by key."""


def _keep(found: dict[str, np.ndarray], h: str, dim: int, blob: bytes) -> None:
    if len(blob) == 4 * dim:  # a truncated blob is left out: the caller recomputes it
        found[h] = np.frombuffer(blob, dtype="<f4")  # read-only, no copy


def _fts_query(query: str) -> str:
    """Plain words -> an FTS5 query that ORs quoted terms; ``""`` when there are none."""
    tokens = re.findall(r"\w+", query.lower())
    words = dict.fromkeys(w for token in tokens for w in token.split("_") if w)
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)



def log_index_change(conn: sqlite3.Connection, name: str) -> None:
    """Bump ``meta.index_revision`` and log ``name`` under the new revision.

    ``name`` ``"*"`` means every document may have changed (see migration 0005).
    Every 1,000 revisions, entries older than :data:`INDEX_LOG_KEEP` revisions
    are deleted and ``meta.index_log_start`` moves past them.
    """
    conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'index_revision'")
    revision = int(conn.execute(
        "SELECT value FROM meta WHERE key = 'index_revision'").fetchone()[0])
    conn.execute("INSERT INTO index_log (revision, name) VALUES (?, ?)", (revision, name))
    if revision % 1000 == 0 and revision > INDEX_LOG_KEEP:
        start = revision - INDEX_LOG_KEEP
        conn.execute("DELETE FROM index_log WHERE revision <= ?", (start,))
        conn.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'index_log_start'",
                     (start,))


class SearchSQL:
    """Search-index, embedding and task-lookup methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def search_text(self, query: str, *, limit: int = 50) -> list[tuple[str, float]]:
        """Full-text candidates for a plain-words query, best first.

        The query's words (``\\w+``, lower-cased, deduplicated, also split on
        ``_``) are each quoted and ORed, so no FTS5 syntax from the caller is
        interpreted. Names whose current version is deprecated are skipped.

        Args:
            query: Plain words, e.g. ``"cancel my order #W123"``.
            limit: At most this many results.

        Returns:
            ``[(procedure name, score)]`` with score = -BM25 (higher is better);
            empty when the query has no words.

        Raises:
            UsageError: ``limit`` is negative.
        """
        check_page(limit)
        match = _fts_query(query)
        if not match:
            return []
        rows = self._rows(
            "SELECT i.name, bm25(procedures_fts) AS rank FROM procedures_fts "
            "JOIN procedure_index AS i ON i.id = procedures_fts.rowid "
            "WHERE procedures_fts MATCH ? AND i.status = 'active' ORDER BY rank LIMIT ?",
            (match, limit),
        )
        return [(r[0], -float(r[1])) for r in rows]

    def index_documents(self, status: str | None = "active") -> list[tuple[str, str]]:
        """Indexed ``(procedure name, document text)`` pairs, by name.

        The documents are :func:`index_text` of each name's current version.

        Args:
            status: Only names whose current version has this status
                (``None``: every name).
        """
        if status is None:
            return [(r[0], r[1]) for r in self._rows(
                "SELECT i.name, f.body FROM procedure_index AS i "
                "JOIN procedures_fts AS f ON f.rowid = i.id ORDER BY i.name")]
        return [(r[0], r[1]) for r in self._rows(
            "SELECT i.name, f.body FROM procedure_index AS i "
            "JOIN procedures_fts AS f ON f.rowid = i.id WHERE i.status = ? ORDER BY i.name",
            (status,))]

    def index_status(self) -> dict[str, str]:
        """The status of each indexed name's current version."""
        return {r[0]: r[1] for r in self._rows("SELECT name, status FROM procedure_index")}

    def index_revision(self) -> int:
        """A number that grows whenever the search index changes (any connection)."""
        return int(self._rows("SELECT value FROM meta WHERE key = 'index_revision'")[0][0])

    def index_changes(self, since: int) -> list[str] | None:
        """The names whose search document changed after revision ``since``.

        Args:
            since: An ``index_revision`` read earlier.

        Returns:
            The distinct names logged after ``since``, in name order (empty when
            nothing changed), or ``None`` when they cannot be listed: ``since`` is
            older than the log (a database migrated to version 5 after it) or a
            change touched every document (a tool schema changed).
        """
        start = self._rows("SELECT value FROM meta WHERE key = 'index_log_start'")
        if not start or since < int(start[0][0]):
            return None
        names = [r[0] for r in self._rows(
            "SELECT DISTINCT name FROM index_log WHERE revision > ? ORDER BY name", (since,))]
        return None if "*" in names else names

    def index_entries(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{name: (status, document text)}`` of these names; names not indexed are left out."""
        found: dict[str, tuple[str, str]] = {}
        unique = list(dict.fromkeys(names))
        for i in range(0, len(unique), _CHUNK):
            for name, status, body in self._rows(
                "SELECT i.name, i.status, f.body FROM procedure_index AS i "
                "JOIN procedures_fts AS f ON f.rowid = i.id "
                "WHERE i.name IN (SELECT value FROM json_each(?))",
                (json.dumps(unique[i:i + _CHUNK]),),
            ):
                found[name] = (status, body)
        return found

    def count_procedures(self) -> int:
        """How many procedure names have at least one version."""
        return int(self._rows("SELECT COUNT(DISTINCT name) FROM procedures")[0][0])

    def get_procedures_json(self, names: Sequence[str]) -> dict[str, str]:
        """``{name: stored JSON of its current version}``; names without a version are left out.

        The text is the record as it was put (``model_dump_json(by_alias=True)`` of a
        validated procedure): ``Procedure.model_validate_json`` of it equals
        ``get_procedure(name)``. For readers that need a few fields of many
        procedures at once (search's rank views: one query, no model validation).
        """
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(names))
        for i in range(0, len(unique), _CHUNK):
            for name, text in self._rows(
                "SELECT name, json FROM (SELECT name, json, ROW_NUMBER() OVER "
                f"(PARTITION BY name ORDER BY {CURRENT_ORDER}) AS rank FROM procedures "
                "WHERE name IN (SELECT value FROM json_each(?))) WHERE rank = 1",
                (json.dumps(unique[i:i + _CHUNK]),),
            ):
                found[name] = text
        return found

    def get_embeddings(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``model_id`` for these text hashes.

        Args:
            model_id: The embedder's ``model_id``.
            hashes: :func:`text_hash` values; unknown ones are left out.

        Returns:
            ``{hash: float32 array [dim]}`` (read-only views of the stored bytes).
        """
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        if len(unique) >= _SCAN_FROM:
            stored = self._rows("SELECT count(*) FROM embeddings WHERE model_id = ?",
                                (model_id,))[0][0]
            if len(unique) * 2 >= stored:  # most of the model's rows: one pass in key order
                wanted = set(unique)
                for h, dim, blob in self._rows(
                        "SELECT hash, dim, vector FROM embeddings WHERE model_id = ?",
                        (model_id,)):
                    if h in wanted:
                        _keep(found, h, dim, blob)
                return found
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i:i + _CHUNK]
            for h, dim, blob in self._rows(  # IN, not a JOIN: SQLite then seeks by key
                "SELECT hash, dim, vector FROM embeddings "
                "WHERE model_id = ? AND hash IN (SELECT value FROM json_each(?))",
                (model_id, json.dumps(chunk)),
            ):
                _keep(found, h, dim, blob)
        return found

    def put_embeddings(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Store vectors of ``model_id`` by text hash (one transaction; existing rows replaced).

        Args:
            model_id: The embedder's ``model_id``.
            vectors: ``{text hash: float32 array [dim]}``, all of one ``dim``.

        Returns:
            The number of rows written.

        Raises:
            UsageError: ``model_id`` is empty, or the vectors are not 1-D of one length.
        """
        if not model_id:
            raise UsageError("an embedding needs a model id")
        dims = {np.asarray(v).shape for v in vectors.values()}
        if len(dims) > 1 or any(len(d) != 1 for d in dims):
            raise UsageError(f"embeddings of {model_id!r} must be 1-D of one length, got {dims}")
        now = timestamp(utcnow())
        rows = [(model_id, h, int(np.asarray(v).shape[0]),
                 np.asarray(v, dtype="<f4").tobytes(), now) for h, v in vectors.items()]
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model_id, hash, dim, vector, created_at) "
                "VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def count_embeddings(self) -> dict[str, int]:
        """Stored vectors per model id."""
        return {m: n for m, n in self._rows(
            "SELECT model_id, COUNT(*) FROM embeddings GROUP BY model_id ORDER BY model_id")}

    def list_embedding_hashes(self, model_id: str) -> list[str]:
        """The text hashes of ``model_id``'s stored vectors, sorted."""
        return [h for (h,) in self._rows(
            "SELECT hash FROM embeddings WHERE model_id = ? ORDER BY hash", (model_id,))]

    def get_index_snapshot(self, key: str) -> tuple[int, bytes] | None:
        """The search index saved under ``key`` (migration 0006): ``(revision, data)``, or None."""
        rows = self._rows("SELECT revision, data FROM index_snapshots WHERE key = ?", (key,))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def put_index_snapshot(self, key: str, revision: int, data: bytes) -> None:
        """Save (replace) the search index under ``key``, built at index ``revision``.

        Raises:
            UsageError: ``key`` is empty.
        """
        if not key:
            raise UsageError("an index snapshot needs a key")
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO index_snapshots (key, revision, created_at, data) "
                         "VALUES (?, ?, ?, ?)", (key, revision, timestamp(utcnow()), data))

    def delete_index_snapshots(self, key: str | None = None) -> int:
        """Delete the search index saved under ``key`` (``None``: every one); returns the count."""
        with self._write() as conn:
            if key is None:
                return conn.execute("DELETE FROM index_snapshots").rowcount
            return conn.execute("DELETE FROM index_snapshots WHERE key = ?", (key,)).rowcount

    def get_calibration(self, key: str) -> str | None:
        """The calibration saved under ``key`` (migration 0007) as JSON text, or None."""
        rows = self._rows("SELECT json FROM calibrations WHERE key = ?", (key,))
        return str(rows[0][0]) if rows else None

    def put_calibration(self, key: str, text: str) -> None:
        """Save (replace) a calibration's JSON text under ``key``.

        Raises:
            UsageError: ``key`` is empty.
        """
        if not key:
            raise UsageError("a calibration needs a key")
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO calibrations (key, created_at, json) "
                         "VALUES (?, ?, ?)", (key, timestamp(utcnow()), text))

    def list_calibration_keys(self) -> list[str]:
        """The keys of every saved calibration, sorted."""
        return [k for (k,) in self._rows("SELECT key FROM calibrations ORDER BY key")]

    def list_procedure_names(self) -> list[str]:
        """Every name with a stored version, sorted (code-point order: SQLite's BINARY)."""
        return [n for (n,) in self._rows("SELECT DISTINCT name FROM procedures ORDER BY name")]

    def delete_embeddings(self, model_id: str | None = None) -> int:
        """Delete the stored vectors of one model (``None``: of every model); returns the count."""
        with self._write() as conn:
            if model_id is None:
                return conn.execute("DELETE FROM embeddings").rowcount
            return conn.execute("DELETE FROM embeddings WHERE model_id = ?",
                                (model_id,)).rowcount

    def get_tasks(self, trace_ids: Sequence[str]) -> dict[str, str]:
        """The task text of each stored trace among ``trace_ids`` (unknown ids are left out)."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(trace_ids))
        for i in range(0, len(unique), _CHUNK):
            for tid, task in self._rows(
                "SELECT t.id, t.task FROM json_each(?) AS j JOIN traces AS t ON t.id = j.value",
                (json.dumps(unique[i:i + _CHUNK]),),
            ):
                found[tid] = task
        return found
