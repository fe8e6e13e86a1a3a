"""Search for :class:`procmem.Memory`: hybrid retrieval, filters, reindexing.

:class:`Searcher` is the service ``Memory.search``, ``reindex`` and ``warm_index``
delegate to; it owns the index and its caches. The index (:mod:`procmem.search.index`)
is built on the first search and kept up to date lazily: when the store's
``index_revision`` has changed, the next search re-reads only the names changed
since (``Store.index_changes``), or rebuilds the whole index when many changed.
Vectors come from the store when a text was embedded before under the same
model id.

Invariants:
    * With no embedder (none configured, or none installed) search is keyword-only
      and every retriever other than ``bm25`` raises ``UsageError`` — never a
      silent switch.
    * Filters apply before ranking, so ``limit`` hits are returned when enough
      procedures pass them.
    * A :class:`Searcher` may be shared by threads: searching and (re)building
      the index hold its ``lock``, so the index and its caches change one
      thread at a time.
"""

from __future__ import annotations

import os
import threading
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from ..core.errors import StoreError, UsageError
from ..core.model import Hit, Procedure
from ..search.bm25 import tokenize
from ..search.calibration import Calibration, calibration_key
from ..search.embed import Embedder, default_embedder, embedder_from_spec
from ..search.index import (
    SearchIndex,
    add_vectors,
    build_index,
    dump_index,
    embed_procedures,
    load_index,
    refresh_index,
)
from ..search.rankviews import view_from_json
from ..search.rerank import Reranker, RerankOption
from ..search.retrieval import (
    RETRIEVERS,
    Candidate,
    RankView,
    Retriever,
    first_stage,
    rank,
    reliability_factor,
)
from ..security.safe_regex import budget
from ..store.base import Store
from .stats import Statistics
from .support import synchronized

__all__ = ["SNAPSHOT_MIN", "IndexSnapshotWarning", "Searcher"]

Progress = Callable[[int, int], None]

_CANDIDATES = 100
_FILTERED_CANDIDATES = 1000
_STATUSES = ("active", "candidate", "deprecated")
_REFRESH_MIN = 50  # changed names below which the index is always updated in place
_PROCEDURE_CACHE = 2048  # whole procedures kept for hits (rank views are kept for all)
_VIEW_PAGE = 1000  # procedures read per store call by warm_index(views=True)
_RERANK_TOP = 10  # hits a reranker is shown
_RERANK_EXAMPLES = 3  # demonstration tasks shown per hit
SNAPSHOT_MIN = 2_000
"""Procedures from which a search index built in memory is also saved in the store,
so that the next process (a CLI command, a restarted server) loads it instead of
building it: at 10,000 procedures a build takes about 2.4 s (see README)."""
_SNAPSHOT_RESAVE = 1_000  # index revisions after which a refreshed index is saved again


class IndexSnapshotWarning(UserWarning):
    """The search index saved in the store could not be read or written (search goes on)."""


class Searcher:
    """Hybrid search over the procedures of one store, with the index kept in memory.

    Args:
        store: Where procedures, the index log, vectors and snapshots are stored.
        statistics: Gives hits their statistics and reliability.
        embedder: ``"default"`` (resolved on first use by ``resolve_default``),
            another spec of :func:`procmem.search.embed.embedder_from_spec` (``"none"``,
            ``"minilm-l6"``, ``"st:MODEL"``, ``"openai:MODEL[@URL]"``, built here; an
            ``openai:`` spec reads ``OPENAI_API_KEY``), an
            :class:`~procmem.search.embed.Embedder`, or ``None`` (BM25 only).
        resolve_default: Makes the default embedder (default
            :func:`procmem.search.embed.default_embedder`).
        reranker: Reorders the top hits of every search (``None``: no model is asked).
        save_index: Save a large index in the store (see :data:`SNAPSHOT_MIN`).
    """

    def __init__(self, store: Store, statistics: Statistics, *,
                 embedder: Embedder | str | None = "default",
                 resolve_default: Callable[[], Embedder | None] = default_embedder,
                 reranker: Reranker | None = None, save_index: bool = True) -> None:
        if isinstance(embedder, str) and embedder.strip().lower() != "default":
            # every spec of the README's embedder table: "none", "minilm-l6", "st:…", "openai:…"
            embedder = embedder_from_spec(embedder, api_key=os.environ.get("OPENAI_API_KEY"))
        elif isinstance(embedder, str):
            embedder = "default"
        self.store = store
        self.statistics = statistics
        self.reranker = reranker
        self.save_index = save_index
        self.lock = threading.RLock()
        self._embedder: Embedder | str | None = embedder  # "default" is resolved on first use
        self._resolve_default = resolve_default
        self._index: SearchIndex | None = None
        self._index_revision = -1
        self._snapshot_revision = -1  # index revision of the index last saved or loaded
        self._procs: OrderedDict[str, Procedure] = OrderedDict()
        self._views: dict[str, RankView] = {}
        self._status: dict[str, str] = {}
        self._calibration_cache: tuple[tuple[str, str], Calibration] | None = None

    @property
    def embedder(self) -> Embedder | None:
        """The embedding model of hybrid search, or ``None`` (BM25 only).

        ``"default"`` is resolved here, on first use, so commands that never search
        never load the model's runtime.
        """
        with self.lock:
            if isinstance(self._embedder, str):
                self._embedder = self._resolve_default()
            return self._embedder

    @property
    def embedder_choice(self) -> Embedder | str | None:
        """The embedder as configured: ``"default"`` until it is resolved, or the model."""
        return self._embedder

    @property
    def index(self) -> SearchIndex | None:
        """The index in memory (``None`` until a search or ``warm_index`` makes it)."""
        return self._index

    def _with_stats(self, procs: Sequence[Procedure]) -> list[Procedure]:
        return self.statistics.with_stats(procs)  # one store call for all

    def embed_new(self, names: Sequence[str], progress: Progress | None = None) -> int:
        """Embed now the search texts of the current versions of ``names`` that have no
        stored vector (the hook of :meth:`Memory.learn` and :meth:`Memory.put_procedure`),
        so the first search after learning embeds only its query. Nothing without an
        embedder; the index itself is brought up to date by the next search.

        Returns:
            The number of texts embedded.

        Raises:
            EmbeddingError: The embedder failed.
        """
        if not names or self.embedder is None:
            return 0
        procs = [self.store.get_procedure(name) for name in dict.fromkeys(names)]
        return embed_procedures(self.store, self.embedder, procs, progress=progress)

    def _search_index(self, progress: Progress | None = None, *,
                      vectors: bool = True, snapshot: bool = True) -> SearchIndex:
        """The index of the store's procedures, brought up to date when the store's index changed.

        Vectors are added only when asked for (``vectors``) and an embedder is set, so
        keyword-only searches never embed. Without an index in memory, the one saved
        in the store is loaded (``snapshot``) and brought up to date; an index built
        here from :data:`SNAPSHOT_MIN` procedures on is saved for the next process.
        """
        revision = self.store.index_revision()
        if self._index is not None and revision != self._index_revision:
            self._refresh(revision, progress)
        built = False
        if self._index is None and snapshot:
            self._load_snapshot(revision, vectors=vectors, progress=progress)
        if self._index is None:
            self._procs = OrderedDict()
            self._views = {}
            self._index = build_index(self.store, self._procedure, embedder=None, status=None)
            self._status = self.store.index_status()
            self._index_revision = revision
            built = True
        if vectors and self.embedder is not None and self._index.vectors is None:
            # every procedure is read once here: keep its rank view (a few hundred
            # bytes), so re-ranking never loads ~100 candidates per search (~8 ms at 100k)
            add_vectors(self._index, self.store, self._read_and_view, embedder=self.embedder,
                        progress=progress)
            built = True
        if built or self._index_revision - self._snapshot_revision >= _SNAPSHOT_RESAVE:
            self._save_snapshot()
        return self._index

    def _load_snapshot(self, revision: int, *, vectors: bool,
                       progress: Progress | None) -> None:
        """Make the index saved in the store the memory's index, brought up to date.

        Leaves no index (the caller builds one) when none is saved for this
        embedder, when it is newer than the store or older than its index log, or
        when it cannot be read (with a :class:`IndexSnapshotWarning`).
        """
        # the default model is not resolved for a keyword-only search: it uses the
        # keyword-only snapshot then; otherwise a snapshot with vectors serves it too
        embedder = None if isinstance(self._embedder, str) and not vectors else self.embedder
        key = embedder.model_id if embedder is not None else "bm25"
        saved = self.store.get_index_snapshot(key)
        if saved is None or saved[0] > revision or self.store.index_changes(saved[0]) is None:
            return
        try:
            index = load_index(saved[1], self.store, embedder)
        except (UsageError, ValueError, TypeError, KeyError, OSError, EOFError,
                zipfile.BadZipFile) as err:
            warnings.warn(f"procmem: the search index saved in the store cannot be used "
                          f"({type(err).__name__}: {err}); building it again",
                          IndexSnapshotWarning, stacklevel=4)
            return
        self._procs = OrderedDict()
        self._views = {}  # rank views are read when a search first needs them
        self._index = index
        self._status = self.store.index_status()
        self._index_revision = self._snapshot_revision = saved[0]
        if revision != saved[0]:
            self._refresh(revision, progress)

    def _save_snapshot(self) -> None:
        """Save the index in the store when it is complete and large enough to be worth it.

        Complete: it has vectors, or this memory has no embedder, or its default
        embedder is not resolved yet (keyword-only searches so far: saved under
        ``bm25``). A failure to save is a :class:`IndexSnapshotWarning`: the search
        itself does not need it.
        """
        index = self._index
        assert index is not None
        resolved = self._embedder is not None and not isinstance(self._embedder, str)
        if (not self.save_index or len(index.postings) < SNAPSHOT_MIN
                or (index.vectors is None and resolved)):
            return
        try:
            self.store.put_index_snapshot(index.model_id or "bm25", self._index_revision,
                                          dump_index(index))
        except StoreError as err:
            warnings.warn(f"procmem: the search index could not be saved in the store "
                          f"({err}); the next process builds it again",
                          IndexSnapshotWarning, stacklevel=4)
        self._snapshot_revision = self._index_revision  # tried: not again before many changes

    def _refresh(self, revision: int, progress: Progress | None) -> None:
        """Update the cached index for the names changed since it was built, or drop it.

        It is dropped (and rebuilt whole by the caller) when the store cannot list
        the changes, when more than a tenth of the names changed (at least
        :data:`_REFRESH_MIN`), or when removed vector rows would exceed a quarter
        of the live ones.
        """
        index = self._index
        assert index is not None
        names = self.store.index_changes(self._index_revision)
        vectors = index.vectors
        if (names is None or len(names) > max(_REFRESH_MIN, len(index.postings) // 10)
                or (vectors is not None and vectors.removed > len(vectors) // 4)):
            self._index = None
            return
        for name in names:  # stale: read again when needed (refresh_index reads some now)
            self._procs.pop(name, None)
            self._views.pop(name, None)
        try:
            statuses = refresh_index(index, self.store, names, self._read_and_view,
                                     embedder=self.embedder if vectors is not None else None,
                                     progress=progress)
        except BaseException:
            self._index = None  # half updated: rebuild on the next search
            raise
        for name in names:
            self._status.pop(name, None)
        self._status.update(statuses)
        self._index_revision = revision

    def _procedure(self, name: str, stored: str | None = None) -> Procedure:
        """The current version of ``name``, through a cache of :data:`_PROCEDURE_CACHE`
        (validated from ``stored``, its JSON from ``Store.get_procedures_json``, if given)."""
        proc = self._procs.get(name)
        if proc is None:
            proc = self._procs[name] = (self.store.get_procedure(name) if stored is None
                                        else Procedure.model_validate_json(stored))
            if len(self._procs) > _PROCEDURE_CACHE:
                self._procs.popitem(last=False)
        else:
            self._procs.move_to_end(name)
        return proc

    def _procedures(self, names: Sequence[str], stored: dict[str, str]) -> dict[str, Procedure]:
        """The current versions of ``names`` through the cache of :meth:`_procedure`; the
        ones neither cached nor in ``stored`` are read in one ``get_procedures_json``
        (a search's hits: one round trip instead of one per hit on a server store)."""
        missing = [n for n in names if n not in self._procs and n not in stored]
        if missing:
            stored = {**stored, **self.store.get_procedures_json(missing)}
        return {n: self._procedure(n, stored.get(n)) for n in names
                if n in self._procs or n in stored}

    def _read_and_view(self, name: str) -> Procedure:
        """Read the current version of ``name`` from the store and keep its rank view."""
        proc = self.store.get_procedure(name)
        self._views[name] = RankView.of(proc)
        return proc

    def _load_views(self, names: Sequence[str]) -> dict[str, str]:
        """Make the missing rank views of ``names`` from their stored JSON in one read
        (:mod:`procmem.search.rankviews`); returns that JSON by name, so a hit among them is
        validated without a second read. A name the store has no JSON for is left
        to :meth:`_view`."""
        missing = [n for n in names if n not in self._views]
        if not missing:
            return {}
        stored = self.store.get_procedures_json(missing)
        for name, text in stored.items():
            try:
                self._views[name] = view_from_json(text)
            except ValueError:
                self._views[name] = RankView.of(self._procedure(name, text))
        return stored

    def _view(self, name: str) -> RankView:
        view = self._views.get(name)
        if view is None:
            view = self._views[name] = RankView.of(self._procedure(name))
        return view

    @synchronized
    def reindex(self, *, force: bool = False, progress: Progress | None = None
                ) -> dict[str, Any]:
        """Build the search index now, embedding every text that has no stored vector.

        Args:
            force: Delete this model's stored vectors first, so every text is
                embedded again.
            progress: Called as ``progress(done, total)`` while texts are embedded.

        Returns:
            ``{"model_id", "procedures", "rows", "embedded", "stored"}``:
            ``rows`` vector rows, ``embedded`` texts embedded now, ``stored``
            vectors stored for this model afterwards (``model_id`` is ``None``
            and the counts 0 without an embedder).

        Raises:
            EmbeddingError: The embedder failed (vectors embedded before the
                failure stay stored).
        """
        if force and self.embedder is not None:
            with self.store.transaction():  # no snapshot left over vectors that are gone
                self.store.delete_embeddings(self.embedder.model_id)
                self.store.delete_index_snapshots(self.embedder.model_id)
        self._index = None
        return self._index_info(self._search_index(progress, snapshot=False))

    @synchronized
    def warm_index(self, *, progress: Progress | None = None,
                   views: bool = False) -> dict[str, Any]:
        """Make the search index ready now, the way the next search would.

        The index in memory is brought up to date; without one, the index saved in
        the store (from :data:`SNAPSHOT_MIN` procedures on) is loaded and brought up
        to date; without that, it is built (as :meth:`reindex` does). Use it
        before a first search to show progress, or at a server's start.

        Args:
            progress: Called as ``progress(done, total)`` while texts are embedded.
            views: Also make the rank view of every indexed procedure now (what a
                built index has and a loaded one makes lazily, about 75 µs per
                first-time candidate: ~7 ms of each early search at 100,000
                procedures), reading the procedures in pages of
                :data:`_VIEW_PAGE`. For a long-running server; a one-shot CLI
                search would read every procedure for one query.

        Returns:
            As :meth:`reindex`; ``embedded`` counts the texts embedded while this
            memory object built and refreshed its index (texts that :meth:`learn`
            and :meth:`put_procedure` embedded come from the store: not counted).

        Raises:
            EmbeddingError: The embedder failed.
        """
        index = self._search_index(progress)
        if views:
            names = [n for n in index.postings if n not in self._views]
            for i in range(0, len(names), _VIEW_PAGE):
                self._load_views(names[i:i + _VIEW_PAGE])
        return self._index_info(index)

    def _index_info(self, index: SearchIndex) -> dict[str, Any]:
        model = index.model_id
        return {
            "model_id": model,
            "procedures": len(index.postings),
            "rows": len(index.rows),
            "embedded": index.embedded,
            "stored": self.store.count_embeddings().get(model, 0) if model else 0,
        }


    def _passes(self, name: str, tags: Sequence[str], status: str | None,
                namespace: str | None) -> bool:
        if status is not None and self._status.get(name) != status:
            return False
        if not tags and namespace is None:
            return True
        view = self._view(name)
        if namespace is not None and view.namespace != namespace:
            return False
        return all(t in view.tags for t in tags)

    def _rerank(self, task: str, hits: list[Hit]) -> list[Hit]:
        """Reorder the top :data:`_RERANK_TOP` hits by the reranker's answer (see
        :mod:`procmem.search.rerank`); hits it leaves out follow, not confident."""
        assert self.reranker is not None
        top, rest = hits[:_RERANK_TOP], hits[_RERANK_TOP:]
        wanted = [tid for h in top for tid in h.procedure.lineage.traces[:_RERANK_EXAMPLES]]
        tasks = self.store.get_tasks(wanted)
        options = [RerankOption(
            h.procedure.name, h.procedure.description, h.procedure.signature(),
            tuple(tasks[t] for t in h.procedure.lineage.traces[:_RERANK_EXAMPLES] if t in tasks))
            for h in top]
        by_name = {h.procedure.name: h for h in top}
        chosen = list(dict.fromkeys(n for n in self.reranker.rerank(task, options)
                                    if n in by_name))
        model = self.reranker.model_id
        out = [by_name[n].model_copy(update={"explanation": dict(
            by_name[n].explanation, rerank={"model": model, "position": i})})
            for i, n in enumerate(chosen, 1)]
        out += [h.model_copy(update={"confident": False, "explanation": dict(
            h.explanation, rerank={"model": model, "position": None})})
            for h in top if h.procedure.name not in chosen]
        return out + rest

    def _calibration(self, retriever: str) -> Calibration | None:
        """The stored calibration of ``retriever`` (read from the store on every
        search, parsed only when it changed), or ``None``: the fixed rule then."""
        embedder = self.embedder if retriever != "bm25" else None
        key = calibration_key(retriever, embedder.model_id if embedder is not None else None)
        text = self.store.get_calibration(key)
        if text is None:
            return None
        cached = self._calibration_cache
        if cached is not None and cached[0] == (key, text):
            return cached[1]
        cal = Calibration.from_json(text)
        self._calibration_cache = ((key, text), cal)
        return cal

    search_budget_s: float | None = 2.0
    """Wall time one search may spend binding params (seconds; ``None``: no limit)."""

    @synchronized
    def search(self, task: str, *, limit: int = 5, retriever: Retriever = "hybrid",
               tags: Sequence[str] = (), status: str | None = "active",
               namespace: str | None = None, confident_only: bool = False,
               rerank: bool = True) -> list[Hit]:
        """Find the procedures that best fit a task description.

        Hybrid retrieval: BM25 and dense-vector candidates fused by reciprocal
        rank fusion (Cormack et al., SIGIR 2009), re-ranked by structural fit
        (params the procedure's extractors bind from the task, in step order)
        and a demonstration prior, then weighted by reliability (posterior mean
        of success); see :mod:`procmem.search.retrieval`. Without an embedder,
        ``hybrid`` is keyword-only.

        Args:
            task: The task in plain words, e.g. "return the kettle from order #W6067464".
            limit: Maximum hits, 1-100.
            retriever: ``hybrid`` (default), ``bm25`` or ``vector``.
            tags: Only procedures carrying every one of these tags.
            status: Only procedures whose current version has this status
                (``active``, ``candidate``, ``deprecated``; ``None``: any).
            namespace: Only procedures of this namespace.
            confident_only: Drop hits below the abstention threshold, so an
                empty list means "nothing in memory fits".
            rerank: With a reranker configured (``Memory(reranker=...)``), let it
                reorder the top 10 hits; hits it leaves out come after, not
                confident, and every reranked hit's ``explanation["rerank"]`` says
                its position in the model's answer (``None``: left out).

        Returns:
            Hits by descending ``score``. Each hit's ``ranks`` has its ``bm25`` and
            ``vector`` ranks (when it was in that list); its ``explanation`` has
            the signals, the params bound from the task, ``matched_terms``,
            ``cosine`` and ``nearest_demonstration``; ``confident`` is False
            below the abstention threshold. When binding ran out of
            :attr:`search_budget_s` (:func:`procmem.security.safe_regex.budget`), the
            hits are what was ranked so far, each with
            ``explanation["budget_exceeded"] = True`` and not confident.

        Raises:
            UsageError: ``limit`` is out of range, ``task`` is empty, an unknown
                retriever or status, or ``vector`` without an embedder.
            EmbeddingError: The embedder failed.
            RerankError: The reranker failed.
        """
        if not 1 <= limit <= 100:
            raise UsageError(f"limit must be 1-100, got {limit}")
        if not task.strip():
            raise UsageError("search needs a non-empty task")
        if retriever not in RETRIEVERS:
            raise UsageError(f"retriever must be one of {', '.join(RETRIEVERS)}, got {retriever!r}")
        if status is not None and status not in _STATUSES:
            raise UsageError(f"status must be one of {', '.join(_STATUSES)}, got {status!r}")
        if retriever == "vector" and self.embedder is None:
            raise UsageError("the vector retriever needs an embedder (see procmem.search.embed)")
        index = self._search_index(vectors=retriever != "bm25")
        if index.vectors is None:
            retriever = "bm25"
        filtered = bool(tags) or namespace is not None or status != "active"
        depth = _FILTERED_CANDIDATES if filtered else _CANDIDATES
        keyword: list[tuple[str, float]] = []
        vector: list[tuple[str, float, str]] = []
        if retriever in ("bm25", "hybrid"):
            keyword = [(n, s) for n, s in index.keyword.search(task, limit=depth)
                       if self._passes(n, tags, status, namespace)][:_CANDIDATES]
        if retriever in ("vector", "hybrid") and index.vectors is not None:
            assert self.embedder is not None
            query = self.embedder.embed([task])[0]
            vector = [(n, c, index.rows[row].text)
                      for n, c, row in index.vectors.search(query, limit=depth)
                      if self._passes(n, tags, status, namespace)][:_CANDIDATES]
        facts = first_stage(keyword, vector, retriever)[:_CANDIDATES]
        stored = self._load_views([f["name"] for f in facts])
        cands = [Candidate(view=self._view(f["name"]), relevance=f["relevance"], bm25=f["bm25"],
                           cosine=f["cosine"], ranks=f["ranks"], nearest=f["nearest"])
                 for f in facts]
        ranked = max(limit * 2, _RERANK_TOP if self.reranker is not None and rerank else 0)
        with budget(self.search_budget_s) as spent:  # binding stops when it runs out
            hits = rank(task, cands, limit=min(100, ranked),
                        load=lambda name: self._procedure(name, stored.get(name)),
                        load_many=lambda names: self._procedures(names, stored),
                        calibration=self._calibration(retriever))
        query_terms = tokenize(task)
        out = []
        reliabilities = self.statistics.reliabilities([h.procedure for h in hits])  # one call
        for h in hits:
            reliability = reliabilities[h.procedure.name, h.procedure.version]
            if reliability != 0.5:  # re-weight: the first ranking assumed 0.5 (factor 1)
                h = h.model_copy(update={
                    "score": round(h.score * reliability_factor(reliability), 6),
                    "reliability": reliability})
            explanation = dict(h.explanation,
                               matched_terms=index.matched_terms(h.procedure.name, query_terms))
            update: dict[str, Any] = {"explanation": explanation}
            if spent.exceeded:  # some params were not looked for: say so, never confident
                explanation["budget_exceeded"] = True
                update["confident"] = False
            out.append(h.model_copy(update=update))
        out.sort(key=lambda h: (-h.score, h.procedure.name))
        if self.reranker is not None and rerank and out:
            out = self._rerank(task, out)
        if confident_only:
            out = [h for h in out if h.confident]
        top = out[:limit]
        procs = self._with_stats([h.procedure for h in top])  # one call for all
        return [h.model_copy(update={"procedure": p}) for h, p in zip(top, procs, strict=True)]
