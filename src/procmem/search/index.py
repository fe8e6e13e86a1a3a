"""The search index of a memory: BM25 over documents plus dense vectors over texts.

Built from the store, then kept up to date as its ``index_revision`` changes
(:func:`refresh_index` re-reads only the names changed since):

* **keyword** — :class:`procmem.search.bm25.BM25Index` over each active procedure's
  full-text document (:func:`procmem.store.base.index_text`);
* **vector** — :class:`procmem.search.vectors.VectorIndex` over several rows per
  procedure: one *card* (name, description, param names, actions and the
  descriptions of their tools when tool schemas are stored) and one row per
  distinct demonstration task, so a new task is matched against every
  demonstration, not one summary.

Invariants:
    * A text is embedded once per embedding model: vectors are stored in the
      store under ``(model_id, sha256(text))`` and reused by every later build;
      only texts without a stored vector are embedded.
    * Without an embedder the index is keyword-only (``vectors is None``).
    * Building reads the store and writes only embeddings.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import UsageError
from ..core.model import Procedure
from ..core.texthash import text_hash
from ..store.base import SEPARATORS, Store
from .bm25 import BM25Index, postings, tokenize
from .embed import Embedder
from .vectors import VectorIndex

__all__ = [
    "SNAPSHOT_FORMAT", "IndexRow", "SearchIndex", "add_vectors", "build_index", "card_text",
    "dump_index", "embed_procedures", "load_index", "refresh_index",
]

Progress = Callable[[int, int], None]
_EMBED_BATCH = 64
_READ_CHUNK = 1000
SNAPSHOT_FORMAT = 1
"""Version of the :func:`dump_index` layout; :func:`load_index` refuses any other."""


@dataclass(frozen=True)
class IndexRow:
    """One vector row: the procedure it belongs to, its kind and its text."""

    name: str
    kind: str  # "card" | "task"
    text: str


@dataclass
class SearchIndex:
    """Everything a search needs, for one ``index_revision`` of the store.

    Attributes:
        keyword: BM25 over the procedures' documents.
        postings: Each indexed procedure's document as BM25 term ids (int64) and
            frequencies (float64, whole counts), by name in name order: what a
            refresh rebuilds BM25 from and what matched terms read (the texts are
            not kept).
        vocab: Term -> id for ``postings``.
        vectors: The dense index, or ``None`` when no embedder is configured.
        rows: The text behind each vector row (``rows[i]`` is row ``i``).
        model_id: The embedder's model id, or ``None``.
        embedded: How many texts this build embedded (the rest were stored).
    """

    keyword: BM25Index
    postings: dict[str, tuple[np.ndarray, np.ndarray]] = field(repr=False)
    vocab: dict[str, int] = field(repr=False)
    vectors: VectorIndex | None = None
    rows: list[IndexRow] = field(default_factory=list)
    model_id: str | None = None
    embedded: int = 0

    def matched_terms(self, name: str, query: str | Sequence[str], *,
                      limit: int = 12) -> list[str]:
        """Query words that also occur in ``name``'s document, rarest in the index first
        (the ones that discriminate), ties in query order.

        ``query`` is the text or its :func:`~procmem.search.bm25.tokenize` tokens (pass the
        tokens when asking for several names).
        """
        ids = self.postings.get(name)
        doc = set(ids[0].tolist()) if ids is not None else set()
        tokens = tokenize(query) if isinstance(query, str) else query
        seen = list(dict.fromkeys(t for t in tokens if self.vocab.get(t, -1) in doc))
        seen.sort(key=self.keyword.document_frequency)  # stable: query order among ties
        return seen[:limit]


def _postings(text: str, vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """``text``'s BM25 term ids (from ``vocab``) and frequencies (:func:`search.bm25.postings`)."""
    return postings(Counter(tokenize(text)), vocab)


def card_text(procedure: Procedure, tool_descriptions: dict[str, str]) -> str:
    """The text that stands for a procedure itself (not one of its demonstrations).

    Name with separators as spaces, description, param names and descriptions,
    then each step's action words and its tool's description when known.
    """
    parts = [SEPARATORS.sub(" ", procedure.name).strip(), procedure.description]
    parts.extend(procedure.tags)
    for p in procedure.params:
        parts.append(p.name.replace("_", " "))
        parts.append(p.description)
    for s in procedure.steps:
        parts.append(s.action.replace("_", " "))
        parts.append(tool_descriptions.get(s.action, ""))
    return ". ".join(p.strip() for p in parts if p and p.strip())


def _tool_descriptions(store: Store) -> dict[str, str]:
    return {name: str(schema.get("description") or "")
            for name, schema in store.list_tool_schemas().items()}


def vector_rows(store: Store, procedures: list[Procedure]) -> list[IndexRow]:
    """The vector rows of ``procedures``: a card each, then their distinct demonstration tasks."""
    tools = _tool_descriptions(store)
    wanted = [tid for p in procedures for tid in p.lineage.traces]
    tasks = store.get_tasks(wanted)
    rows: list[IndexRow] = []
    for p in procedures:
        rows.append(IndexRow(p.name, "card", card_text(p, tools)))
        seen: set[str] = set()
        for tid in p.lineage.traces:
            task = tasks.get(tid, "").strip()
            if task and task not in seen:
                seen.add(task)
                rows.append(IndexRow(p.name, "task", task))
    return rows


def embed_rows(store: Store, embedder: Embedder, texts: list[str], *,
               progress: Progress | None = None) -> tuple[np.ndarray, int]:
    """Vectors of ``texts`` (float32 ``[len(texts), dim]``), reusing stored ones.

    Missing texts are embedded in batches of 64 and stored after each batch, so
    an interrupted build keeps what it computed.

    Returns:
        ``(vectors, number of texts embedded now)``.

    Raises:
        EmbeddingError: The embedder failed (from the embedder).
    """
    hashes = [text_hash(t) for t in texts]
    stored = store.get_embeddings(embedder.model_id, hashes)
    todo = list(dict.fromkeys(h for h in hashes if h not in stored))
    text_of = dict(zip(hashes, texts, strict=True))
    done = 0
    if progress:
        progress(0, len(todo))
    for i in range(0, len(todo), _EMBED_BATCH):
        batch = todo[i:i + _EMBED_BATCH]
        vecs = embedder.embed([text_of[h] for h in batch])
        fresh = {h: vecs[j] for j, h in enumerate(batch)}
        store.put_embeddings(embedder.model_id, fresh)
        stored.update(fresh)
        done += len(batch)
        if progress:
            progress(done, len(todo))
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32), 0
    return np.vstack([stored[h] for h in hashes]).astype(np.float32), len(todo)


def embed_procedures(store: Store, embedder: Embedder, procedures: list[Procedure], *,
                     progress: Progress | None = None) -> int:
    """Embed and store the vectors of ``procedures``' rows (:func:`vector_rows`) that
    the store has none of for ``embedder``, in batches (:func:`embed_rows`), so that
    the index built or refreshed later reads them instead of embedding.

    Returns:
        The number of texts embedded now (0 when every vector was stored).

    Raises:
        EmbeddingError: The embedder failed (the batches before stay stored).
    """
    rows = vector_rows(store, procedures)
    return embed_rows(store, embedder, [r.text for r in rows], progress=progress)[1]


def build_index(store: Store, procedure: Callable[[str], Procedure], *,
                embedder: Embedder | None, progress: Progress | None = None,
                status: str | None = "active", ann_threshold: int = 20_000) -> SearchIndex:
    """Build the search index of the store's active procedures.

    Args:
        store: The store to read (and to write embeddings to).
        procedure: Loads a procedure's current version by name (a cache).
        embedder: The embedding model, or ``None`` for keyword-only search.
        progress: Called as ``progress(done, total)`` while texts are embedded.
        status: Index the names whose current version has this status (``None``: all).
        ann_threshold: Vector rows from which an ANN index replaces exact search.

    Returns:
        The :class:`SearchIndex`.

    Raises:
        EmbeddingError: The embedder failed.
    """
    docs = store.index_documents(status)
    vocab: dict[str, int] = {}
    kept = {name: _postings(text, vocab) for name, text in docs}
    index = SearchIndex(keyword=BM25Index.from_postings(list(kept), list(kept.values()), vocab),
                        postings=kept, vocab=vocab)
    if embedder is None:
        return index
    return add_vectors(index, store, procedure, embedder=embedder, progress=progress,
                       ann_threshold=ann_threshold)


def add_vectors(index: SearchIndex, store: Store, procedure: Callable[[str], Procedure], *,
                embedder: Embedder, progress: Progress | None = None,
                ann_threshold: int = 20_000) -> SearchIndex:
    """Give a keyword-only index its vectors (for the procedures it holds); returns it.

    Raises:
        EmbeddingError: The embedder failed.
    """
    names = list(index.postings)
    rows: list[IndexRow] = []
    for i in range(0, len(names), _READ_CHUNK):  # a chunk of whole procedures at a time
        rows.extend(vector_rows(store, [procedure(n) for n in names[i:i + _READ_CHUNK]]))
    matrix, embedded = embed_rows(store, embedder, [r.text for r in rows], progress=progress)
    index.vectors = VectorIndex([r.name for r in rows], matrix, ann_threshold=ann_threshold)
    index.rows, index.model_id, index.embedded = rows, embedder.model_id, embedded
    return index


def refresh_index(index: SearchIndex, store: Store, names: Sequence[str],
                  procedure: Callable[[str], Procedure], *, embedder: Embedder | None,
                  progress: Progress | None = None) -> dict[str, str]:
    """Bring ``index`` up to date for ``names``, the names changed since it was built.

    Changed documents are tokenized again and BM25 is rebuilt from the kept
    term ids of the others (the same index a full build makes); the vector
    rows of the changed names are replaced in place (only texts without a
    stored vector are embedded). Names no longer indexed (deleted) are removed.

    Args:
        index: An index built by :func:`build_index` with ``status=None``.
        store: The store it was built from.
        names: From :meth:`Store.index_changes`.
        procedure: Loads a procedure's current version by name.
        embedder: The index's embedding model, used when the index has vectors.
        progress: Called as ``progress(done, total)`` while texts are embedded.

    Returns:
        ``{name: status}`` of the names of ``names`` still indexed.

    Raises:
        EmbeddingError: The embedder failed; the vectors are then unchanged and
            the caller must rebuild the index.
    """
    entries = store.index_entries(names)
    for name in names:
        if name in entries:
            index.postings[name] = _postings(entries[name][1], index.vocab)
        else:
            index.postings.pop(name, None)
    keys = sorted(index.postings)  # the order of a full build (index_documents by name)
    index.postings = {k: index.postings[k] for k in keys}
    changed = {name: index.postings[name] for name in names if name in entries}
    # a merge of the changed postings into the others, equal to a new index: both key
    # lists are in name order (SQLite's byte order of UTF-8 is code-point order)
    index.keyword = index.keyword.replace(keys, changed, index.vocab)
    if index.vectors is not None and embedder is not None:
        rows = vector_rows(store, [procedure(n) for n in names if n in entries])
        matrix, embedded = embed_rows(store, embedder, [r.text for r in rows],
                                      progress=progress)
        index.vectors.update(names, [r.name for r in rows], matrix)
        index.rows.extend(rows)
        index.embedded += embedded
    return {name: entry[0] for name, entry in entries.items()}


def dump_index(index: SearchIndex) -> bytes:
    """The index as bytes for :meth:`Store.put_index_snapshot` (read back by :func:`load_index`).

    Layout (:data:`SNAPSHOT_FORMAT` 1): an ``.npz`` archive (numpy's zip of
    ``.npy`` arrays, read with ``allow_pickle=False``) holding ``meta`` (UTF-8
    JSON: format, the indexed names in order, the vocabulary in id order, and
    with vectors the model id, dim, HNSW settings and each vector row's
    ``[name, kind, text]``), ``sizes`` / ``ids`` / ``tfs`` (every document's BM25
    term ids and frequencies, concatenated, int32), and with vectors ``alive``
    (rows not removed, when some are) and ``graph`` (usearch's serialized HNSW
    graph, when there is one). The vectors themselves are not copied: they stay
    in the store's ``embeddings`` table, found again by the hash of each row's text.
    """
    keys = list(index.postings)
    docs = list(index.postings.values())
    meta: dict[str, object] = {"format": SNAPSHOT_FORMAT, "keys": keys,
                               "vocab": sorted(index.vocab, key=index.vocab.__getitem__)}
    arrays: dict[str, np.ndarray] = {
        "sizes": np.fromiter((len(ids) for ids, _ in docs), dtype=np.int64, count=len(docs)),
        "ids": (np.concatenate([ids for ids, _ in docs]) if docs
                else np.zeros(0)).astype(np.int32),
        "tfs": (np.concatenate([tfs for _, tfs in docs]) if docs
                else np.zeros(0)).astype(np.int32),  # whole counts: exact either way
    }
    if index.vectors is not None:
        state = index.vectors.state()
        meta.update(model_id=index.model_id, dim=index.vectors.dim, ann=state["ann"],
                    rows=[[r.name, r.kind, r.text] for r in index.rows])
        if state["alive"] is not None:
            arrays["alive"] = state["alive"]
        if state["graph"] is not None:
            arrays["graph"] = np.frombuffer(state["graph"], dtype=np.uint8)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    out = io.BytesIO()
    np.savez(out, allow_pickle=False, **arrays)
    return out.getvalue()


def load_index(data: bytes, store: Store, embedder: Embedder | None) -> SearchIndex:
    """The index :func:`dump_index` wrote, exactly as it was.

    Args:
        data: From :meth:`Store.get_index_snapshot`.
        store: The store the index was built from (its stored vectors are read).
        embedder: The memory's embedding model; the vectors are used only when it
            has the snapshot's model id and dim (``None``: keyword-only).

    Raises:
        UsageError: ``data`` is not a snapshot of this format, its parts do not fit
            together, or a vector it needs is no longer stored.
        ValueError, TypeError, KeyError, OSError, EOFError, zipfile.BadZipFile:
            ``data`` is not a readable archive or its JSON is not of this layout
            (raised by numpy, zipfile and json; a flipped byte fails the archive's CRC-32).
    """
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        meta = json.loads(archive["meta"].tobytes().decode("utf-8"))
        if meta.get("format") != SNAPSHOT_FORMAT:
            raise UsageError(f"index snapshot format {meta.get('format')!r}, "
                             f"this procmem reads {SNAPSHOT_FORMAT}")
        keys: list[str] = meta["keys"]
        vocab = {term: i for i, term in enumerate(meta["vocab"])}
        sizes = archive["sizes"]
        ids = archive["ids"].astype(np.int64)
        tfs = archive["tfs"].astype(np.float64)
        if (len(sizes) != len(keys) or int(sizes.sum()) != len(ids) or len(tfs) != len(ids)
                or len(vocab) != len(meta["vocab"])
                or (len(ids) and not 0 <= int(ids.min()) <= int(ids.max()) < len(vocab))):
            raise UsageError("index snapshot: its postings do not fit its names and vocabulary")
        cuts = np.cumsum(sizes)[:-1]
        postings = dict(zip(keys, zip(np.split(ids, cuts), np.split(tfs, cuts), strict=True),
                            strict=True))
        index = SearchIndex(keyword=BM25Index.from_postings(keys, list(postings.values()), vocab),
                            postings=postings, vocab=vocab)
        if embedder is None or "rows" not in meta:
            return index
        if meta["model_id"] != embedder.model_id or meta["dim"] != embedder.dim:
            raise UsageError(f"index snapshot of {meta['model_id']!r} ({meta['dim']} dims), "
                             f"the embedder is {embedder.model_id!r} ({embedder.dim})")
        rows = [IndexRow(*row) for row in meta["rows"]]
        hashes = [text_hash(r.text) for r in rows]
        stored = store.get_embeddings(embedder.model_id, hashes)
        missing = len(set(hashes) - stored.keys())
        if missing:
            raise UsageError(f"index snapshot: {missing} of its vectors are no longer stored")
        matrix = (np.vstack([stored[h] for h in hashes]).astype(np.float32) if rows
                  else np.zeros((0, embedder.dim), dtype=np.float32))
        alive = archive["alive"] if "alive" in archive.files else None
        graph = archive["graph"].tobytes() if "graph" in archive.files else None
        index.vectors = VectorIndex.from_state([r.name for r in rows], matrix, alive, graph,
                                               meta["ann"])
        index.rows, index.model_id = rows, embedder.model_id
        return index
