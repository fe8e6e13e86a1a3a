"""Stored text embeddings on SQLite: a mixin of :class:`procmem.store.sqlite.SQLiteStore`.

Table (migration ``0004_embeddings.sql``): ``embeddings(model_id, hash, dim,
vector, created_at)``, one row per embedding model and distinct text.

Invariants:
    * ``hash`` is :func:`text_hash` of the text (SHA-256 of its UTF-8 bytes), so
      a text is embedded once per model however many procedures share it.
    * ``vector`` is the little-endian float32 bytes of an L2-normalized vector of
      ``dim`` floats; :meth:`VectorSQL.get_embeddings` returns them as numpy rows.
    * Rows of different ``model_id`` never mix: a model's vectors are only read
      back under the same id.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UsageError
from ..model import utcnow
from .common import timestamp

__all__ = ["VectorSQL", "text_hash"]

_CHUNK = 500


def text_hash(text: str) -> str:
    """SHA-256 hex digest of ``text`` as UTF-8: the key of its stored embedding."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class VectorSQL:
    """Embedding and task-lookup methods of the SQLite store."""

    if TYPE_CHECKING:  # provided by SQLiteStore
        def _write(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]: ...

    def get_embeddings(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of ``model_id`` for these text hashes.

        Args:
            model_id: The embedder's ``model_id``.
            hashes: :func:`text_hash` values; unknown ones are left out.

        Returns:
            ``{hash: float32 array [dim]}``.
        """
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(hashes))
        for i in range(0, len(unique), _CHUNK):
            chunk = unique[i:i + _CHUNK]
            for h, dim, blob in self._rows(
                "SELECT e.hash, e.dim, e.vector FROM json_each(?) AS j "
                "JOIN embeddings AS e ON e.model_id = ? AND e.hash = j.value",
                (json.dumps(chunk), model_id),
            ):
                vec = np.frombuffer(blob, dtype="<f4")
                if vec.shape != (dim,):
                    continue  # a truncated blob is recomputed by the caller
                found[h] = vec.astype(np.float32)
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
