"""An in-memory BM25 index over procedure documents, scored with numpy.

Okapi BM25 (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework:
BM25 and Beyond") with ``k1 = 1.2``, ``b = 0.75`` and the non-negative idf
``log(1 + (N - df + 0.5) / (df + 0.5))`` (as in Lucene).

Why not score in SQLite: an FTS5 query that ORs a task's ~35 words matches
nearly every document and computes ``bm25()`` for each before sorting (measured
50 ms p50 at 10,000 procedures). Here each term's weights are precomputed per
posting, so a query is one ``numpy.bincount`` over the query terms' postings
and an ``argpartition`` for the top k. The store's FTS5 table stays the durable
source of the documents (``Store.index_documents``).

Large indexes: a ~40-word task query has words such as "your", "name", "is" in
nearly every document, so an exhaustive query reads about 10 million postings at
a million documents (35 ms p50 here). Such words have an idf near 0 (the
classical stop-word effect of idf, Sparck Jones 1972), so from
``_PRUNE_POSTINGS`` postings on, queries use MaxScore (Turtle & Flood 1995,
"Query evaluation: strategies and optimizations"): each term's largest weight
bounds what it can add; a first pass over the rarest terms gives a lower bound
on the k-th score; only the "essential" terms, those whose bounds together could
lift a document to that score, are read in full, and the others are looked up
(binary search) for the few candidates that can still make the top k. Pruning
is exact: the same documents and the same float scores as the exhaustive query
(the final scores are summed in the same order), only faster
(``benchmarks/bench_retrieval_latency.py``).

Invariants: tokens are lower case with diacritics removed (NFKD, combining
marks dropped); words are maximal runs of letters, digits and ``_``. A word with
``_`` inside (a snake_case name such as ``cancel_pending_order`` or a payment id
such as ``credit_card_4190576``) gives the whole word first, then its parts, so
both "cancel_pending_order" and "cancel order" match it. Every other character
(``#``, ``-``, ``.``, ``@``, spaces) separates words: an id such as ``#W6067464``
is one token, ``w6067464``, with its digits whole. This is FTS5 ``unicode61
remove_diacritics 2`` plus the whole snake_case words. Scores are > 0 for every
returned document; ties are broken by document order (also at the cut: of
equal scores at rank ``limit``, the earliest documents are returned).
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from ..core.errors import UsageError

__all__ = ["BM25Index", "postings", "tokenize"]

_PRUNE_POSTINGS = 500_000  # from this many query postings on, use MaxScore
_PROBE = 16  # the first MaxScore pass reads at most N / _PROBE postings
_GATHER = 16  # scatter/gather instead of binary search when docs * 16 > postings
_EPS = 1e-9  # relative margin on score bounds, far above float rounding (~1e-15)

_WORD = re.compile(r"\w+")
_PART = re.compile(r"[^\W_]+")


def tokenize(text: str) -> list[str]:
    """The index terms of ``text``: lower-cased words, diacritics removed.

    A snake_case word gives itself and then its parts; ids made of one run of
    letters and digits stay one token:

    >>> tokenize("Cancel_pending_order #W6067464, Café")
    ['cancel_pending_order', 'cancel', 'pending', 'order', 'w6067464', 'cafe']
    """
    folded = text.lower()
    if not folded.isascii():
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(c for c in folded if not unicodedata.combining(c))
    tokens: list[str] = []
    for word in _WORD.findall(folded):
        parts = _PART.findall(word)
        if len(parts) > 1:
            tokens.append("_".join(parts))
        tokens.extend(parts)
    return tokens


def postings(counts: Mapping[str, int], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """A document's ``(term ids, term frequencies)``: int64 and float64 arrays of one
    length, ids taken from ``vocab`` (new terms are added to it)."""
    ids = np.fromiter((vocab.setdefault(t, len(vocab)) for t in counts), dtype=np.int64,
                      count=len(counts))
    return ids, np.fromiter(counts.values(), dtype=np.float64, count=len(counts))


class BM25Index:
    """BM25 over a fixed list of ``(key, text)`` documents.

    Args:
        documents: ``(key, text)`` pairs; keys are returned by :meth:`search`.
        k1: Term-frequency saturation.
        b: Length normalization, 0-1.

    Build cost is linear in the number of tokens (about 1 s per million here;
    64 s and about 1.3 GiB for a million τ-retail task documents), most of it
    tokenizing; the index is immutable: build a new one when documents change
    (:meth:`from_postings` reuses the unchanged documents' term ids). A ~40-word query takes
    about 0.3 ms at 10,000 documents and 15 ms at a million (MaxScore, see above).
    """

    def __init__(self, documents: Sequence[tuple[str, str]], *, k1: float = 1.2,
                 b: float = 0.75) -> None:
        vocab: dict[str, int] = {}
        self._build([k for k, _ in documents],
                    [postings(Counter(tokenize(text)), vocab) for _, text in documents],
                    vocab, k1=k1, b=b)

    @classmethod
    def from_postings(cls, keys: Sequence[str],
                      docs: Sequence[tuple[np.ndarray, np.ndarray]], vocab: Mapping[str, int],
                      *, k1: float = 1.2, b: float = 0.75) -> BM25Index:
        """The index of documents given as term ids: ``docs[i]`` is ``(ids, tfs)`` of
        ``keys[i]`` (:func:`postings`), ids from ``vocab``.

        ``vocab`` may hold terms no document has (an index that changes a few
        documents at a time keeps one vocabulary and the others' postings); the
        index is the same as one built from the texts: every score is summed in
        the order of the query's terms, not of their ids.

        Raises:
            UsageError: ``keys`` and ``docs`` differ in length.
        """
        if len(keys) != len(docs):
            raise UsageError(f"{len(keys)} keys but {len(docs)} term counts")
        index = cls.__new__(cls)
        index._build(list(keys), docs, vocab, k1=k1, b=b)
        return index

    def _build(self, keys: list[str], docs: Sequence[tuple[np.ndarray, np.ndarray]],
               vocab: Mapping[str, int], *, k1: float, b: float) -> None:
        n = len(keys)
        sizes = np.fromiter((len(ids) for ids, _ in docs), dtype=np.int64, count=n)
        term_ids = (np.concatenate([ids for ids, _ in docs]) if n
                    else np.zeros(0, dtype=np.int64)).astype(np.int64, copy=False)
        tf_arr = (np.concatenate([tfs for _, tfs in docs]) if n
                  else np.zeros(0)).astype(np.float64, copy=False)
        doc_ids = np.repeat(np.arange(n, dtype=np.int64), sizes)
        lengths = np.bincount(doc_ids, weights=tf_arr, minlength=n)
        order = np.argsort(term_ids, kind="stable")  # by (term, document)
        self._finish(keys, vocab, term_ids[order], doc_ids[order], tf_arr[order], lengths,
                     k1=k1, b=b)

    def _finish(self, keys: list[str], vocab: Mapping[str, int], terms: np.ndarray,
                docs: np.ndarray, tfs: np.ndarray, lengths: np.ndarray, *,
                k1: float, b: float) -> None:
        """Weights, offsets and bounds from the postings sorted by (term, document)."""
        self.keys = keys
        self.vocab = vocab
        n = len(keys)
        df = np.bincount(terms, minlength=len(vocab)).astype(np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5)) if n else df
        avgdl = float(lengths.mean()) if n and lengths.mean() > 0 else 1.0
        norm = k1 * (1 - b + b * lengths[docs] / avgdl) if n else tfs
        self._weights = idf[terms] * tfs * (k1 + 1) / (tfs + norm)
        self._docs = docs.astype(np.int32)
        self._tfs = tfs.astype(np.float32)  # for replace(); whole counts, exact
        self._lengths = lengths
        self._params = (k1, b)
        self._offsets = np.concatenate(([0], np.cumsum(df))).astype(np.int64)
        # largest weight of each term: what it can add to any document (MaxScore);
        # 0 for a term of the vocabulary that no document has
        self._bound = np.zeros(len(vocab))
        present = np.flatnonzero(df)
        if len(present):
            self._bound[present] = np.maximum.reduceat(self._weights, self._offsets[present])
        self._n = n

    def replace(self, keys: Sequence[str], changed: Mapping[str, tuple[np.ndarray, np.ndarray]],
                vocab: Mapping[str, int]) -> BM25Index:
        """A new index whose documents are ``keys``: the unchanged ones of this index and
        ``changed`` (new or replaced documents as :func:`postings`, ids from ``vocab``,
        a superset of this index's vocabulary).

        Equal to :meth:`from_postings` over the same documents (the same arrays,
        float for float, when frequencies are whole counts as :func:`postings` gives),
        at the cost of a merge instead of a sort: one document changed among
        100,000 of 40 terms takes 0.08 s instead of 0.55 s here. Keys of this index
        that are neither in ``keys`` nor in ``changed`` are removed.

        Raises:
            UsageError: A key of ``keys`` is neither in this index nor in ``changed``,
                or the unchanged keys are not in the same order as here.
        """
        k1, b = self._params
        position = {k: i for i, k in enumerate(keys)}
        old_to_new = np.fromiter(
            (position.get(k, -1) if k not in changed else -1 for k in self.keys),
            dtype=np.int64, count=len(self.keys))
        kept = old_to_new[old_to_new >= 0]
        if (len(kept) + len(changed) != len(keys) or not all(k in position for k in changed)
                or not bool(np.all(np.diff(kept) > 0))):
            raise UsageError("replace needs every key of the new index to be kept in order "
                             "or given in changed")
        n = len(keys)
        terms = np.repeat(np.arange(len(self._offsets) - 1, dtype=np.int64),
                          np.diff(self._offsets))
        docs = old_to_new[self._docs]
        keep = docs >= 0
        terms, docs, tfs = terms[keep], docs[keep], self._tfs[keep].astype(np.float64)
        lengths = np.zeros(n)
        lengths[kept] = self._lengths[old_to_new >= 0]
        new_terms, new_docs, new_tfs = [], [], []
        for key, (ids, counts) in changed.items():
            d = position[key]
            new_terms.append(np.asarray(ids, dtype=np.int64))
            new_docs.append(np.full(len(ids), d, dtype=np.int64))
            new_tfs.append(np.asarray(counts, dtype=np.float64))
            # the sequential sum of a fresh build's bincount, in the document's own order
            lengths[d] = np.bincount(np.zeros(len(ids), dtype=np.int64),
                                     weights=new_tfs[-1], minlength=1)[0]
        if changed:
            add_t, add_d = np.concatenate(new_terms), np.concatenate(new_docs)
            add_f = np.concatenate(new_tfs)
            order = np.lexsort((add_d, add_t))
            add_t, add_d, add_f = add_t[order], add_d[order], add_f[order]
            at = np.searchsorted(terms * (n + 1) + docs, add_t * (n + 1) + add_d)
            terms, docs = np.insert(terms, at, add_t), np.insert(docs, at, add_d)
            tfs = np.insert(tfs, at, add_f)
        index = BM25Index.__new__(BM25Index)
        index._finish(list(keys), vocab, terms, docs, tfs, lengths, k1=k1, b=b)
        return index

    def __len__(self) -> int:
        return self._n

    def document_frequency(self, term: str) -> int:
        """How many documents contain ``term`` (a token of :func:`tokenize`); 0 if none."""
        t = self.vocab.get(term)
        return 0 if t is None else int(self._offsets[t + 1] - self._offsets[t])

    def search(self, query: str, *, limit: int = 50) -> list[tuple[str, float]]:
        """The best documents for ``query``.

        Args:
            query: Plain words; no query syntax is interpreted.
            limit: At most this many results (>= 1).

        Returns:
            ``[(key, score)]`` by descending BM25 score, ties by document order;
            documents sharing no term with the query are never returned.
        """
        # terms in text order: scores are summed in that order, whatever the ids are
        ids = np.asarray([self.vocab[t] for t in sorted(set(tokenize(query)))
                          if t in self.vocab], dtype=np.int64)
        if not len(ids) or not self._n:
            return []
        found: tuple[np.ndarray, np.ndarray] | None = None
        if int((self._offsets[ids + 1] - self._offsets[ids]).sum()) >= _PRUNE_POSTINGS:
            found = self._maxscore(ids, limit)
        if found is None:
            scores = self._dense(ids)
            docs = np.flatnonzero(scores > 0)
            docs = docs[scores[docs] >= _kth(scores[docs], limit)]
            found = docs, scores[docs]
        docs, scores = found
        best = np.lexsort((docs, -scores))[:limit]
        return [(self.keys[d], s) for d, s in zip(docs[best].tolist(), scores[best].tolist(),
                                                   strict=True)]

    def _dense(self, ids: np.ndarray) -> np.ndarray:
        """``[N]`` sums of the weights of terms ``ids`` per document (one bincount)."""
        starts, ends = self._offsets[ids], self._offsets[ids + 1]
        docs = np.concatenate([self._docs[s:e] for s, e in zip(starts, ends, strict=True)])
        weights = np.concatenate([self._weights[s:e]
                                  for s, e in zip(starts, ends, strict=True)])
        return np.bincount(docs, weights=weights, minlength=self._n)

    def _lookup(self, term: int, docs: np.ndarray,
                buffer: np.ndarray | None = None) -> np.ndarray:
        """Weight of ``term`` in each of the sorted ``docs`` (0 where absent).

        Binary search per document; with ``buffer`` (``[N]`` zeros, left zeroed)
        and many documents, a scatter of the term's postings and a gather instead.
        """
        s, e = self._offsets[term], self._offsets[term + 1]
        if s == e:  # a vocabulary term whose documents are all gone (refreshes keep its id)
            return np.zeros(len(docs))
        postings = self._docs[s:e]
        if buffer is not None and len(docs) * _GATHER > e - s:
            buffer[postings] = self._weights[s:e]
            found = buffer[docs]
            buffer[postings] = 0.0
            return found
        pos = np.minimum(np.searchsorted(postings, docs), e - s - 1)
        return np.where(postings[pos] == docs, self._weights[s:e][pos], 0.0)

    def _maxscore(self, ids: np.ndarray,
                  limit: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact top-``limit`` candidates by MaxScore, or None when pruning cannot help.

        Returns documents that include every document of the exhaustive top
        ``limit`` (and its ties at the cut), with their exact scores.
        """
        bound = self._bound[ids]
        order = np.lexsort((ids, -bound))  # terms by descending bound (~ rarest first)
        rest = np.concatenate((np.cumsum(bound[order][::-1])[::-1], [0.0]))
        dfs = (self._offsets[ids + 1] - self._offsets[ids])[order]
        # 1. a lower bound on the k-th score from the rarest terms alone
        probe = max(1, int(np.searchsorted(np.cumsum(dfs), self._n // _PROBE, side="right")))
        partial = self._dense(ids[order[:probe]])
        seen = np.flatnonzero(partial)
        if len(seen) < limit:
            return None
        low = _kth(partial[seen], limit)
        # 2. essential terms: a document none of them contains cannot reach ``low``
        essential = int(np.argmax(rest * (1 + _EPS) < low))
        if essential >= len(ids):
            return None
        if essential > probe:
            partial += self._dense(ids[order[probe:essential]])
        read = max(probe, essential)  # terms summed in ``partial``
        docs = np.flatnonzero(partial >= low / (1 + _EPS) - rest[read])
        docs = docs.astype(self._docs.dtype)
        scores = partial[docs]
        # 3. the other terms, for the documents that can still reach the k-th score
        buffer = np.zeros(self._n)  # scatter buffer of ``_lookup``
        for i in range(read, len(ids)):
            keep = scores >= low / (1 + _EPS) - rest[i]
            docs, scores = docs[keep], scores[keep]
            scores = scores + self._lookup(int(ids[order[i]]), docs, buffer)
            low = max(low, _kth(scores, limit))
        # 4. exact scores, summed in term order like the bincount of ``_dense``
        exact = np.zeros(len(docs))
        for term in ids.tolist():
            exact += self._lookup(term, docs)
        return docs.astype(np.int64), exact


def _kth(values: np.ndarray, k: int) -> float:
    """The ``k``-th largest of ``values`` (the smallest when there are fewer than ``k``)."""
    if len(values) <= k:
        return float(values.min()) if len(values) else 0.0
    return float(values[np.argpartition(-values, k - 1)[k - 1]])
