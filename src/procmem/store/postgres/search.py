"""The search index, saved indexes, calibrations and embeddings on PostgreSQL: a mixin of
:class:`PostgresStore`.

Invariants:
    * ``procedure_index`` holds :func:`procmem.store.index_text` of each name's
      current version (UTF-8 bytes), rebuilt by ``ProceduresPG._reindex`` in
      the transaction of the write that changed it; every rebuild bumps
      ``meta.index_revision`` and logs the name (:func:`log_index_change`).
    * ``index_revision`` is given by the write transaction's
      :class:`~.base.PendingRevisions` and written to its ``meta`` row once, just
      before commit; writers are serialized, so revisions commit in ascending
      order and a reader that sees revision R has every log entry up to R.
    * **Embeddings.** ``embeddings.vector`` is an untyped pgvector ``vector``
      (models differ in dimension). Each model whose vectors share one
      dimension D gets a partial HNSW expression index, created the first time
      the model is stored::

          CREATE INDEX embeddings_hnsw_<md5(model)> ON embeddings
            USING hnsw ((vector::vector(D)) vector_cosine_ops) WHERE model_id = '<model>'

      :meth:`SearchPG.nearest_embeddings` orders by ``vector::vector(D) <=> q``
      under the same ``WHERE``, which the planner answers from that index
      (pgvector README, "Indexing": "Can I store vectors with different
      dimensions in the same column?"). A model stored later with another
      dimension loses its index (``embedding_models.dim`` NULL) and is searched
      exactly instead. Vectors of different models never mix.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import sql

from ...core.errors import StoreError, UsageError
from ...core.model import utcnow
from .base import INDEX_LOG_KEEP, Conn, PendingRevisions, keys

__all__ = ["INDEX_LOG_KEEP", "SearchPG", "log_index_change"]

_CHUNK = 1000


def log_index_change(conn: Conn, revisions: PendingRevisions | None, name: str) -> None:
    """Log ``name`` (``"*"``: every document) under the next index revision of the
    write transaction whose :class:`~.base.PendingRevisions` is ``revisions``.

    Raises:
        StoreError: Called outside a write transaction, or the schema has no
            ``meta.index_revision``.
    """
    if revisions is None:
        raise StoreError("an index change was logged outside a write transaction")
    conn.execute("INSERT INTO index_log (revision, name) VALUES (%s, %s)",
                 (revisions.next(conn), name))


def _index_name(model_id: str) -> str:
    return "embeddings_hnsw_" + hashlib.md5(model_id.encode(), usedforsecurity=False).hexdigest()


class SearchPG:
    """Search-index, embedding, snapshot and calibration methods of the PostgreSQL store."""

    if TYPE_CHECKING:  # provided by PostgresStore
        def _write(self) -> AbstractContextManager[Conn]: ...

        def _rows(self, query: Any, params: Any = ()) -> list[Any]: ...

        def _read_transaction(self) -> AbstractContextManager[Conn]: ...

    # --------------------------------------------------------- keyword documents

    def index_documents(self, status: str | None = "active") -> list[tuple[str, str]]:
        """Indexed ``(procedure name, document text)`` with this status (``None``: all), by name."""
        rows = self._rows("SELECT name, body FROM procedure_index "
                          "WHERE %(s)s::text IS NULL OR status = %(s)s ORDER BY name",
                          {"s": status})
        return [(name, bytes(body).decode()) for name, body in rows]

    def index_status(self) -> dict[str, str]:
        """The status of each indexed name's current version."""
        return {r[0]: r[1] for r in self._rows("SELECT name, status FROM procedure_index")}

    def index_revision(self) -> int:
        """A number that grows with every change of the documents."""
        return int(self._rows("SELECT value FROM meta WHERE key = 'index_revision'")[0][0])

    def index_changes(self, since: int) -> list[str] | None:
        """Names whose document changed after revision ``since``, by name; ``None``: rebuild all."""
        start = self._rows("SELECT value FROM meta WHERE key = 'index_log_start'")
        if not start or since < int(start[0][0]):
            return None
        names = [r[0] for r in self._rows(
            "SELECT DISTINCT name FROM index_log WHERE revision > %s ORDER BY name", (since,))]
        return None if "*" in names else names

    def index_entries(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        """``{name: (status, document text)}`` of these names (unindexed ones left out)."""
        found: dict[str, tuple[str, str]] = {}
        unique = keys(names)
        for i in range(0, len(unique), _CHUNK):
            for name, status, body in self._rows(
                    "SELECT name, status, body FROM procedure_index WHERE name = ANY(%s)",
                    (unique[i:i + _CHUNK],)):
                found[name] = (status, bytes(body).decode())
        return found

    # ------------------------------------------------ snapshots and calibrations

    def get_index_snapshot(self, key: str) -> tuple[int, bytes] | None:
        """The saved search index under ``key``: ``(index revision, data)``, or ``None``."""
        rows = self._rows("SELECT revision, data FROM index_snapshots WHERE key = %s", (key,))
        return (int(rows[0][0]), bytes(rows[0][1])) if rows else None

    def put_index_snapshot(self, key: str, revision: int, data: bytes) -> None:
        """Save (replace) the search index under ``key`` (``UsageError`` for an empty key)."""
        if not key:
            raise UsageError("an index snapshot needs a key")
        with self._write() as conn:
            conn.execute("INSERT INTO index_snapshots (key, revision, created_at, data) "
                         "VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
                         "revision = excluded.revision, created_at = excluded.created_at, "
                         "data = excluded.data", (key, revision, utcnow(), bytes(data)))

    def delete_index_snapshots(self, key: str | None = None) -> int:
        """Delete the saved search index under ``key`` (``None``: all); returns how many."""
        with self._write() as conn:
            return int(conn.execute("DELETE FROM index_snapshots WHERE %(k)s::text IS NULL "
                                    "OR key = %(k)s", {"k": key}).rowcount)

    def get_calibration(self, key: str) -> str | None:
        """The calibration saved under ``key`` (JSON text), or ``None``."""
        rows = self._rows("SELECT text FROM calibrations WHERE key = %s", (key.encode(),))
        return bytes(rows[0][0]).decode() if rows else None

    def put_calibration(self, key: str, text: str) -> None:
        """Save (replace) a calibration's text under ``key`` (``UsageError`` for an empty key)."""
        if not key:
            raise UsageError("a calibration needs a key")
        with self._write() as conn:
            conn.execute("INSERT INTO calibrations (key, created_at, text) VALUES (%s, %s, %s) "
                         "ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at, "
                         "text = excluded.text", (key.encode(), utcnow(), text.encode()))

    # ---------------------------------------------------------------- embeddings

    def get_embeddings(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Stored float32 vectors of ``model_id`` by text hash (unknown hashes left out)."""
        found: dict[str, np.ndarray] = {}
        unique = keys(hashes)
        for i in range(0, len(unique), _CHUNK):
            for h, vector in self._rows(
                    "SELECT hash, vector FROM embeddings WHERE model_id = %s AND hash = ANY(%s)",
                    (model_id, unique[i:i + _CHUNK])):
                found[h] = np.asarray(vector.to_numpy(), dtype=np.float32)
        return found

    def put_embeddings(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> int:
        """Store vectors of ``model_id`` by text hash in one transaction; returns the count.

        The first put of a model creates its HNSW index (see this module).

        Raises:
            UsageError: ``model_id`` is empty, the vectors are not 1-D of one
                length, or hold NaN or infinity (pgvector stores finite floats).
        """
        if not model_id:
            raise UsageError("an embedding needs a model id")
        arrays = {h: np.asarray(v, dtype=np.float32) for h, v in vectors.items()}
        dims = {a.shape for a in arrays.values()}
        if len(dims) > 1 or any(len(d) != 1 for d in dims):
            raise UsageError(f"embeddings of {model_id!r} must be 1-D of one length, got {dims}")
        if any(not np.isfinite(a).all() for a in arrays.values()):
            raise UsageError(f"embeddings of {model_id!r} must be finite")
        if not arrays:
            return 0
        dim = next(iter(dims))[0]
        if dim < 1:
            raise UsageError(f"embeddings of {model_id!r} need at least one dimension")
        now = utcnow()
        with self._write() as conn:
            self._index_model(conn, model_id, dim)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO embeddings (model_id, hash, dim, vector, created_at) "
                    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (model_id, hash) DO UPDATE SET "
                    "dim = excluded.dim, vector = excluded.vector, "
                    "created_at = excluded.created_at",
                    [(model_id, h, dim, a, now) for h, a in arrays.items()])
        return len(arrays)

    def _index_model(self, conn: Conn, model_id: str, dim: int) -> None:
        """Give ``model_id`` its HNSW index on first put; drop it when the dimension changes."""
        conn.execute("INSERT INTO embedding_models (model_id, dim, index_name) "
                     "VALUES (%s, NULL, NULL) ON CONFLICT (model_id) DO NOTHING", (model_id,))
        row = conn.execute("SELECT dim, index_name FROM embedding_models WHERE model_id = %s "
                           "FOR UPDATE", (model_id,)).fetchone()
        stored_dim, index = row if row is not None else (None, None)
        if index is not None and stored_dim == dim:
            return
        if index is not None:  # another dimension: that index cannot hold these rows
            conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
            conn.execute("UPDATE embedding_models SET dim = NULL, index_name = NULL "
                         "WHERE model_id = %s", (model_id,))
            return
        other = conn.execute("SELECT 1 FROM embeddings WHERE model_id = %s AND dim <> %s "
                             "LIMIT 1", (model_id, dim)).fetchone()
        if other is not None or dim > 2000:  # mixed lengths, or beyond HNSW's 2,000 dimensions
            return
        name = _index_name(model_id)
        conn.execute(sql.SQL(
            "CREATE INDEX IF NOT EXISTS {} ON embeddings USING hnsw "
            "((vector::vector({})) vector_cosine_ops) WHERE model_id = {}").format(
                sql.Identifier(name), sql.Literal(dim), sql.Literal(model_id)))
        conn.execute("UPDATE embedding_models SET dim = %s, index_name = %s WHERE model_id = %s",
                     (dim, name, model_id))

    def count_embeddings(self) -> dict[str, int]:
        """Stored vectors per model id."""
        return {m: int(n) for m, n in self._rows(
            "SELECT model_id, COUNT(*) FROM embeddings GROUP BY model_id ORDER BY model_id")}

    def delete_embeddings(self, model_id: str | None = None) -> int:
        """Delete one model's vectors (``None``: all) and their HNSW indexes; returns how many."""
        with self._write() as conn:
            for (index,) in conn.execute(
                    "SELECT index_name FROM embedding_models WHERE (%(m)s::text IS NULL "
                    "OR model_id = %(m)s) AND index_name IS NOT NULL", {"m": model_id}).fetchall():
                conn.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(index)))
            conn.execute("DELETE FROM embedding_models WHERE %(m)s::text IS NULL "
                         "OR model_id = %(m)s", {"m": model_id})
            return int(conn.execute("DELETE FROM embeddings WHERE %(m)s::text IS NULL "
                                    "OR model_id = %(m)s", {"m": model_id}).rowcount)

    def nearest_embeddings(self, model_id: str, query: np.ndarray,
                           k: int = 10) -> list[tuple[str, float]]:
        """The ``k`` stored vectors of ``model_id`` nearest to ``query`` by cosine similarity.

        Approximate when the model has its HNSW index (pgvector's HNSW, Malkov &
        Yashunin 2018; ``hnsw.ef_search`` defaults to 40, raised to ``k`` when
        larger), exact otherwise. Not in the ``Store`` protocol yet.

        Args:
            model_id: The embedder's ``model_id``.
            query: A 1-D float vector of the model's dimension.
            k: Most hits, >= 1.

        Returns:
            ``[(text hash, cosine similarity in [-1, 1])]``, most similar first;
            only vectors of ``query``'s length are compared.

        Raises:
            UsageError: ``k`` < 1, or ``query`` is not a finite non-empty 1-D vector.
        """
        q = np.asarray(query, dtype=np.float32)
        if k < 1:
            raise UsageError(f"k must be >= 1 (got {k})")
        if q.ndim != 1 or q.shape[0] < 1 or not np.isfinite(q).all():
            raise UsageError(f"query must be a finite non-empty 1-D vector, got shape {q.shape}")
        dim = int(q.shape[0])
        with self._read_transaction() as conn:  # SET LOCAL applies to this search only
            row = conn.execute("SELECT dim, index_name FROM embedding_models "
                               "WHERE model_id = %s", (model_id,)).fetchone()
            if row is not None and row[1] is not None and row[0] == dim:
                conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(
                    sql.Literal(max(40, min(k, 1000)))))
                query_sql = sql.SQL(
                    "SELECT hash, 1 - (vector::vector({d}) <=> %s::vector({d})) FROM embeddings "
                    "WHERE model_id = %s ORDER BY vector::vector({d}) <=> %s::vector({d}) "
                    "LIMIT %s").format(d=sql.Literal(dim))
                rows = conn.execute(query_sql, (q, model_id, q, k)).fetchall()
            else:
                rows = conn.execute(
                    "SELECT hash, 1 - (vector <=> %s) FROM embeddings "
                    "WHERE model_id = %s AND dim = %s ORDER BY vector <=> %s LIMIT %s",
                    (q, model_id, dim, q, k)).fetchall()
        return [(h, float(score) if score is not None else 0.0) for h, score in rows]
