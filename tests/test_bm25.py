"""The in-memory BM25 index: tokenization, ranking, limits."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from procmem.core.errors import UsageError
from procmem.search import bm25
from procmem.search.bm25 import BM25Index, tokenize

DOCS = [
    ("cancel", "cancel pending order. Cancel order #W1 because no longer needed"),
    ("return", "return delivered order items. Return #W2 via paypal_1: Kettle"),
    ("address", "modify pending order address. change address to 1 Main Street"),
]


def test_tokenize_lowercases_and_removes_diacritics() -> None:
    assert tokenize("Café CRÈME, naïve Zoë!") == ["cafe", "creme", "naive", "zoe"]
    assert tokenize("—…?!") == []


def test_tokenize_keeps_snake_case_whole_and_adds_its_parts() -> None:
    assert tokenize("cancel_pending_order") == ["cancel_pending_order", "cancel", "pending",
                                                "order"]
    assert tokenize("Pay with credit_card_4190576.") == [
        "pay", "with", "credit_card_4190576", "credit", "card", "4190576"]
    assert tokenize("__a__b__ _x_") == ["a_b", "a", "b", "x"]  # stray underscores dropped


def test_tokenize_keeps_ids_whole() -> None:
    tokens = tokenize("Return #W6067464 and #W1234567, e-mail noah.taylor1234@example.com")
    assert "w6067464" in tokens and "w1234567" in tokens
    assert "6067464" not in tokens and "w" not in tokens
    assert tokens[-4:] == ["noah", "taylor1234", "example", "com"]  # '.', '-', '@' separate


def test_a_snake_case_query_prefers_the_document_with_that_name() -> None:
    docs = [("a", "cancel_pending_order"), ("b", "cancel order pending")]
    index = BM25Index(docs)
    assert index.search("cancel_pending_order")[0][0] == "a"
    assert {k for k, _ in index.search("cancel order")} == {"a", "b"}


def test_the_document_sharing_the_rare_terms_ranks_first() -> None:
    index = BM25Index(DOCS)
    assert index.search("please cancel my order")[0][0] == "cancel"
    assert index.search("I want to return the kettle")[0][0] == "return"
    assert index.search("new shipping address")[0][0] == "address"


def test_scores_descend_and_no_unrelated_document_is_returned() -> None:
    index = BM25Index(DOCS)
    hits = index.search("order kettle")
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)
    assert all(s > 0 for s in scores)
    assert index.search("zebra") == []
    assert index.search("") == []


def test_limit_and_empty_index() -> None:
    index = BM25Index(DOCS)
    assert len(index.search("order", limit=2)) == 2
    assert len(index) == 3
    assert BM25Index([]).search("order") == []


def test_score_matches_the_okapi_formula() -> None:
    docs = [("a", "kettle kettle"), ("b", "mug"), ("c", "mug mug mug")]
    index = BM25Index(docs, k1=1.2, b=0.75)
    (key, score), = index.search("kettle")
    n, df, tf, dl, avgdl = 3, 1, 2, 2, 2.0
    idf = math.log1p((n - df + 0.5) / (df + 0.5))
    expected = idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avgdl))
    assert key == "a"
    assert math.isclose(score, expected, rel_tol=1e-9)


@given(st.lists(st.text(max_size=40), min_size=1, max_size=8), st.text(max_size=30))
def test_every_hit_shares_a_term_with_the_query(texts: list[str], query: str) -> None:
    index = BM25Index([(str(i), t) for i, t in enumerate(texts)])
    terms = set(tokenize(query))
    for key, score in index.search(query, limit=10):
        assert score > 0
        assert terms & set(tokenize(texts[int(key)]))


def _zipf_corpus(n: int, seed: int) -> tuple[list[tuple[str, str]], list[str]]:
    """Documents and queries with stop words in every document and rarer words."""
    rng = random.Random(seed)
    common = ["your", "name", "is", "and", "you", "are", "order"]
    vocab = [f"w{i}" for i in range(400)]
    weights = [1 / (i + 1) for i in range(len(vocab))]

    def text(k: int) -> str:
        return " ".join(common + rng.choices(vocab, weights, k=k))

    docs = [(f"d{i}", text(rng.randint(3, 30))) for i in range(n)]
    docs += [docs[7]] * 30  # exact ties, some of them at the cut
    return docs, [text(25) for _ in range(40)] + [docs[7][1]]


@pytest.mark.parametrize("limit", [1, 5, 50])
def test_maxscore_pruning_returns_exactly_the_exhaustive_ranking(
        monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    docs, queries = _zipf_corpus(2000, seed=limit)
    index = BM25Index(docs)
    monkeypatch.setattr(bm25, "_PRUNE_POSTINGS", 10**12)
    exhaustive = [index.search(q, limit=limit) for q in queries]
    monkeypatch.setattr(bm25, "_PRUNE_POSTINGS", 0)
    calls: list[object] = []
    real = BM25Index._maxscore
    monkeypatch.setattr(BM25Index, "_maxscore",
                        lambda self, ids, k: calls.append(r := real(self, ids, k)) or r)
    assert [index.search(q, limit=limit) for q in queries] == exhaustive  # same floats
    assert sum(c is not None for c in calls) > len(queries) // 2  # pruning did run


def test_ties_at_the_cut_keep_the_earliest_documents() -> None:
    docs = [(f"d{i}", "kettle mug") for i in range(20)] + [("best", "kettle kettle mug")]
    hits = BM25Index(docs).search("kettle", limit=5)
    assert [k for k, _ in hits] == ["best", "d0", "d1", "d2", "d3"]


@given(st.lists(st.text(alphabet="abc _", max_size=12), min_size=1, max_size=30),
       st.text(alphabet="abc _", max_size=12), st.integers(1, 5))
def test_pruned_and_exhaustive_search_agree(texts: list[str], query: str, limit: int) -> None:
    index = BM25Index([(str(i), t) for i, t in enumerate(texts)])
    saved = bm25._PRUNE_POSTINGS
    try:
        bm25._PRUNE_POSTINGS = 0
        pruned = index.search(query, limit=limit)
    finally:
        bm25._PRUNE_POSTINGS = saved
    assert pruned == index.search(query, limit=limit)


WORDS = ["cancel", "return", "order", "item", "refund", "#w1", "#w2", "kettle", "lamp", "card"]


def _arrays(index: BM25Index) -> tuple[object, ...]:
    return (index.keys, index._docs.tolist(), index._weights.tolist(), index._offsets.tolist(),
            index._bound.tolist(), index._lengths.tolist(), len(index))


@given(st.data())
def test_replace_equals_indexing_the_new_documents_anew(data: st.DataObject) -> None:
    text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=8).map(" ".join)
    names = data.draw(st.lists(st.sampled_from([f"p{i:02d}" for i in range(30)]),
                               min_size=1, max_size=12, unique=True))
    docs = {n: data.draw(text) for n in sorted(names)}
    vocab: dict[str, int] = {}
    kept = {n: bm25.postings(Counter(tokenize(t)), vocab) for n, t in docs.items()}
    old = BM25Index.from_postings(list(kept), list(kept.values()), vocab)
    removed = set(data.draw(st.lists(st.sampled_from(sorted(docs)), unique=True)))
    edits = data.draw(st.dictionaries(st.sampled_from([f"p{i:02d}" for i in range(30)]), text,
                                      max_size=6))
    changed = {n: bm25.postings(Counter(tokenize(t)), vocab) for n, t in edits.items()}
    after = {n: p for n, p in kept.items() if n not in removed}
    after.update(changed)
    keys = sorted(after)
    got = old.replace(keys, changed, vocab)
    want = BM25Index.from_postings(keys, [after[k] for k in keys], vocab)
    assert _arrays(got) == _arrays(want)
    for query in ("cancel order #w1", "refund the kettle", "lamp card item"):
        assert got.search(query, limit=5) == want.search(query, limit=5)


def test_replace_refuses_keys_it_cannot_place() -> None:
    vocab: dict[str, int] = {}
    docs = [bm25.postings(Counter(tokenize(t)), vocab) for t in ("a b", "b c")]
    index = BM25Index.from_postings(["x", "y"], docs, vocab)
    with pytest.raises(UsageError, match="kept in order"):
        index.replace(["y", "x"], {}, vocab)  # the kept documents in another order
    with pytest.raises(UsageError, match="kept in order"):
        index.replace(["x", "y", "z"], {}, vocab)  # z is new but not given
