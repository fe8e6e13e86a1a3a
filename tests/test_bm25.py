"""The in-memory BM25 index: tokenization, ranking, limits."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from procmem.bm25 import BM25Index, tokenize

DOCS = [
    ("cancel", "cancel pending order. Cancel order #W1 because no longer needed"),
    ("return", "return delivered order items. Return #W2 via paypal_1: Kettle"),
    ("address", "modify pending order address. change address to 1 Main Street"),
]


def test_tokenize_follows_fts5_unicode61() -> None:
    assert tokenize("Cancel_pending_order #W123, Café CRÈME!") == [
        "cancel", "pending", "order", "w123", "cafe", "creme"]
    assert tokenize("—…?!") == []


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
