"""Tests for ranking procedures for a task (procmem.retrieval) and Memory.search on real data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from procmem.errors import UsageError
from procmem.induce import CorpusStats, group_traces, induce
from procmem.memory import Memory
from procmem.model import Procedure, Trace
from procmem.retrieval import WEIGHTS, Candidate, RankView, rank

PREAMBLE = "Your name is Lena Park and your zip code is 60601. You are polite, busy. "
ONE_CANCEL = PREAMBLE + "Cancel order #W1000001 because no longer needed. "
TWO_CANCELS = (PREAMBLE + "Cancel order #W1000001 because no longer needed. "
               "Cancel order #W2000002 because ordered by mistake. ")
RETURN = PREAMBLE + "Return #W3000003 via paypal_1234567: Yoga Mat; "


@pytest.fixture(scope="module")
def procedures(tau_sample: list[Trace]) -> list[Procedure]:
    corpus = CorpusStats.from_traces(tau_sample)
    return [induce(g, corpus=corpus) for g in group_traces(tau_sample)]


@pytest.fixture(scope="module")
def memory(tau_sample: list[Trace], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Memory]:
    mem = Memory(tmp_path_factory.mktemp("retrieval") / "memory.db")
    mem.learn(tau_sample)
    yield mem
    mem.close()


def top(hits: list, n: int = 1) -> list[str]:
    return [h.procedure.name for h in hits[:n]]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (ONE_CANCEL, "cancel_pending_order"),
        (TWO_CANCELS, "cancel_pending_order_x2"),
        (RETURN, "return_delivered_order_items"),
    ],
)
def test_rank_puts_the_procedure_that_explains_the_task_first(
    procedures: list[Procedure], task: str, expected: str
) -> None:
    hits = rank(task, [Candidate(p) for p in procedures], limit=5)
    assert top(hits) == [expected]


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        (ONE_CANCEL, "cancel_pending_order"),
        (TWO_CANCELS, "cancel_pending_order_x2"),
        (RETURN, "return_delivered_order_items"),
    ],
)
def test_memory_search_ranks_the_right_procedure_first(
    memory: Memory, task: str, expected: str
) -> None:
    hits = memory.search(task, limit=5)
    assert top(hits) == [expected]
    assert len(hits) == 5
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_carry_ranks_explanation_and_reliability(memory: Memory) -> None:
    hits = memory.search(TWO_CANCELS, limit=3)
    best = hits[0]
    # signals + first-stage lists + the fused first-stage position
    assert set(best.ranks) == set(WEIGHTS) | {"bm25", "vector", "first_stage"}
    assert all(r >= 1 for h in hits for r in h.ranks.values())
    terms = best.explanation["matched_terms"]
    assert "cancel" in terms and 0 < len(terms) <= 12
    index = memory._search_index().keyword
    assert [index.document_frequency(t) for t in terms] == sorted(
        index.document_frequency(t) for t in terms)  # rarest (most telling) first
    assert best.explanation["nearest_demonstration"]  # the closest vector row's text
    assert -1 <= best.explanation["cosine"] <= 1
    assert best.ranks["structure"] == 1
    assert best.explanation["bound"] == {"order_id": "#W1000001", "reason": "no longer needed",
                                         "order_id_2": "#W2000002",
                                         "reason_2": "ordered by mistake"}
    assert set(best.explanation["signals"]) == set(WEIGHTS)
    assert all(0 <= v <= 1 for v in best.explanation["signals"].values())
    assert 0 <= best.reliability <= 1


def test_ranking_is_deterministic(procedures: list[Procedure], memory: Memory) -> None:
    cands = [Candidate(p) for p in procedures]
    first = rank(ONE_CANCEL, cands, limit=10)
    again = rank(ONE_CANCEL, list(reversed(cands)), limit=10)
    assert [(h.procedure.name, h.score, h.ranks) for h in first] == [
        (h.procedure.name, h.score, h.ranks) for h in again]
    assert top(memory.search(TWO_CANCELS), 5) == top(memory.search(TWO_CANCELS), 5)


def test_ties_are_broken_by_name(procedures: list[Procedure]) -> None:
    hits = rank("nothing matches here", [Candidate(p) for p in procedures], limit=100)
    assert len(hits) == len(procedures)
    keys = [(-h.score, h.procedure.name) for h in hits]
    assert keys == sorted(keys)


def test_rank_of_no_candidates_is_empty_and_limit_applies(procedures: list[Procedure]) -> None:
    assert rank(ONE_CANCEL, []) == []
    assert len(rank(ONE_CANCEL, [Candidate(p) for p in procedures], limit=2)) == 2


def test_rank_from_views_loads_only_the_hits_and_ranks_the_same(
        procedures: list[Procedure]) -> None:
    by_name = {p.name: p for p in procedures}
    loaded: list[str] = []

    def load(name: str) -> Procedure:
        loaded.append(name)
        return by_name[name]

    from_views = rank(TWO_CANCELS, [Candidate(view=RankView.of(p)) for p in procedures],
                      limit=3, load=load)
    from_procedures = rank(TWO_CANCELS, [Candidate(p) for p in procedures], limit=3)
    assert [h.model_dump() for h in from_views] == [h.model_dump() for h in from_procedures]
    assert loaded == [h.procedure.name for h in from_views]  # the 3 hits, not every candidate


def test_rank_view_keeps_what_ranking_and_filters_read(procedures: list[Procedure]) -> None:
    p = next(p for p in procedures if p.name == "cancel_pending_order")
    view = RankView.of(p.model_copy(update={"tags": ["retail"], "namespace": "shop"}))
    assert (view.name, view.version, view.namespace) == (p.name, p.version, "shop")
    assert view.tags == frozenset({"retail"})
    assert view.demonstrations == len(p.lineage.traces)
    assert [b.name for b in view.params] == [q.name for q in p.params]
    assert view.params[0].extractor == p.params[0].extractor
    assert len(view.step_params) == len(p.steps)


def test_rank_refuses_a_candidate_it_cannot_turn_into_a_hit(procedures: list[Procedure]) -> None:
    with pytest.raises(UsageError, match="needs a procedure or a view"):
        rank(ONE_CANCEL, [Candidate()])
    with pytest.raises(UsageError, match="has no procedure and rank got no load"):
        rank(ONE_CANCEL, [Candidate(view=RankView.of(procedures[0]))])
