"""Tests for ranking procedures for a task (search.retrieval) and Memory.search on real data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from procmem.core.errors import UsageError
from procmem.core.model import Extractor, Param, Procedure, Step, Trace
from procmem.induction.bind import Binding
from procmem.induction.induce import CorpusStats, group_traces, induce
from procmem.memory import Memory
from procmem.search.calibration import Calibration
from procmem.search.retrieval import (
    WEIGHTS,
    Candidate,
    RankView,
    _in_order,
    action_verb,
    fuse,
    rank,
    rrf,
    stem,
    verb_conflict,
)

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
    index = memory.searcher._search_index().keyword
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


# ------------------------------------------------------------------ fusion


def test_fuse_keeps_the_size_of_a_clear_lead() -> None:
    fused = fuse([("lead", 7.5), ("other", 1.1)], [("lead", 0.77, "a"), ("other", 0.31, "b")])
    assert fused["lead"] == pytest.approx(2.0, abs=1e-4)
    assert fused["other"] == pytest.approx(1.1 / 7.5 + 0.31 / 0.77, abs=1e-4)  # about 0.55
    assert fused["lead"] > 3 * fused["other"]
    plain = rrf([["lead", "other"], ["lead", "other"]])
    assert plain["lead"] < 1.05 * plain["other"]  # what rank fusion alone would have said


def test_fuse_breaks_only_exact_ties_by_rank() -> None:
    fused = fuse([("b", 3.0), ("a", 3.0)], [])
    assert fused["b"] > fused["a"]  # same score: first in the list wins
    assert fused["b"] - fused["a"] < 1e-6
    # a tiny real difference in score beats any rank
    fused = fuse([("b", 3.0), ("a", 2.999)], [("a", 0.5, "x"), ("b", 0.5, "y")])
    assert fused["b"] > fused["a"]


def test_fuse_handles_one_sided_candidates_and_negative_scores() -> None:
    fused = fuse([("kw", 4.0)], [("vec", 0.8, "t")])
    assert fused["kw"] == pytest.approx(1.0, abs=1e-4)
    assert fused["vec"] == pytest.approx(1.0, abs=1e-4)
    fused = fuse([("a", 2.0), ("b", -1.0)], [])
    assert fused["a"] > fused["b"] >= 0.0
    assert fuse([], []) == {}


# ------------------------------------------------------------------ action verbs


def test_stem_and_action_verb() -> None:
    assert stem("cancelled") == stem("cancels") == stem("cancel") == stem("Cancelling")
    assert stem("returned") == stem("return") == stem("returns")
    assert stem("exchanged") == stem("exchange")
    assert action_verb("cancel_pending_order") == "cancel"
    assert action_verb("procedure:refund_order") == "refund"
    assert action_verb("returnDeliveredOrderItems") == "return"
    assert action_verb("do_it") is None
    assert action_verb("x2_order") is None


UNIVERSE = frozenset({"cancel", "return", "exchange", "get"})


@pytest.mark.parametrize(("task", "conflict"), [
    ("Return order #W1000001 because no longer needed.", True),
    ("Cancel order #W1000001 because no longer needed.", False),
    ("I cancelled nothing yet, please cancel order #W1000001.", False),
    ("The order I want cancelled is #W1000001.", False),
    ("Return one item and cancel order #W1000001.", False),  # one of the verbs is its own
    ("Order #W1000001 is no longer needed.", False),  # names no verb at all
])
def test_verb_conflict(task: str, conflict: bool) -> None:
    assert verb_conflict(task, frozenset({"cancel"}), UNIVERSE) is conflict


def test_verb_conflict_only_counts_verbs_of_the_tools_in_play() -> None:
    task = "Return order #W1000001 because no longer needed."
    assert not verb_conflict(task, frozenset({"cancel"}), frozenset({"cancel"}))


# ------------------------------------------------------------------ structure


def _binding(spans: dict[str, int]) -> Binding:
    return Binding(values=dict.fromkeys(spans, "v"),
                   spans={k: (s, s + 1) for k, s in spans.items()},
                   anchored=set(spans), learnable=len(spans))


def test_in_order_ignores_a_param_reused_by_a_later_step() -> None:
    steps = (("email",), ("order_id",), ("email", "address"))
    # email at 0, order at 30, address at 60: in task order though step 3 reuses the email
    assert _in_order(steps, _binding({"email": 0, "order_id": 30, "address": 60})) == 1.0
    # the address comes before the order: one of two step pairs is out of order
    assert _in_order(steps, _binding({"email": 0, "order_id": 60, "address": 30})) == 0.5
    assert _in_order((("email",), ("email",)), _binding({"email": 0})) == 1.0
    assert _in_order((), Binding()) == 1.0


ORDER_ONE = Extractor(pattern=r"\#W\d{7}", before=r"order\s+", after=r"\s+because",
                      occurrence=0, kind="id")


def cancels(name: str, n: int) -> Procedure:
    names = ["order_id", "order_id_2"][:n]
    return Procedure(
        name=name,
        params=[Param(name=pn, extractor=ORDER_ONE.model_copy(update={"occurrence": i}))
                for i, pn in enumerate(names)],
        steps=[Step(id=f"s{i + 1}", action="cancel_pending_order",
                    args={"order_id": {"$param": pn}}) for i, pn in enumerate(names)])


def test_coverage_counts_spans_so_a_value_named_in_two_requests_needs_two_steps() -> None:
    task = ("Cancel order #W1000001 because no longer needed. Then cancel order #W1000001 "
            "because it was ordered twice.")
    hits = rank(task, [Candidate(cancels("one", 1)), Candidate(cancels("two", 2))])
    assert [h.procedure.name for h in hits] == ["two", "one"]
    structure = {h.procedure.name: h.explanation["signals"]["structure"] for h in hits}
    assert structure == {"two": 1.0, "one": 0.5}
    assert hits[0].explanation["bound"] == {"order_id": "#W1000001", "order_id_2": "#W1000001"}


def test_rank_with_a_calibration_sets_confidence_and_a_verb_conflict_is_never_confident(
) -> None:
    returns = Procedure(
        name="return_one", params=[Param(name="order_id", extractor=ORDER_ONE)],
        steps=[Step(id="s1", action="return_delivered_order_items",
                    args={"order_id": {"$param": "order_id"}})])
    sure = Calibration(retriever="bm25", weights=(0.0,) * 6, bias=5.0, mean=(0.0,) * 6,
                       scale=(1.0,) * 6, threshold=0.5, target_precision=0.99, samples=40,
                       positives=30, cv_precision=1.0, cv_coverage=1.0, folds=5, traces=40)
    task = "Return order #W1000001 because no longer needed."
    hits = rank(task, [Candidate(cancels("cancel_one", 1)), Candidate(returns)],
                calibration=sure)
    by_name = {h.procedure.name: h for h in hits}
    for h in hits:
        assert h.confidence == pytest.approx(sure.predict(h.explanation["features"]), abs=1e-4)
        assert len(h.explanation["features"]) == 6
    assert by_name["return_one"].confident
    assert "verb_conflict" not in by_name["return_one"].explanation
    assert by_name["cancel_one"].explanation["verb_conflict"] is True
    assert not by_name["cancel_one"].confident
    # without a calibration: no probability, the fixed rule decides (still no conflict passes)
    plain = {h.procedure.name: h for h in rank(task, [Candidate(cancels("cancel_one", 1)),
                                                      Candidate(returns)])}
    assert all(h.confidence is None for h in plain.values())
    assert not plain["cancel_one"].confident


def _one_step(name: str, action: str) -> Procedure:
    return Procedure(name=name, steps=[Step(id="s1", action=action, args={})])


def test_first_stage_puts_candidates_that_do_a_named_action_first() -> None:
    exchange = Candidate(_one_step("exchange_items", "exchange_delivered_order_items"),
                         relevance=1.0, ranks={"bm25": 1})
    returns = Candidate(_one_step("return_items", "return_delivered_order_items"),
                        relevance=0.9, ranks={"bm25": 2})
    lookup = Candidate(_one_step("look_up", "get_order_details"), relevance=0.8,
                       ranks={"bm25": 3})
    task = "I want to return the skateboard and get a full refund by mail."
    hits = rank(task, [exchange, returns, lookup])
    # "return" and "get" are named: exchange does neither, so the first stage puts it
    # after both; re-ranking keeps the first stage's choice (no supported evidence)
    assert hits[0].procedure.name == "return_items"
    assert {h.procedure.name: h.ranks["first_stage"] for h in hits} == {
        "return_items": 1, "look_up": 2, "exchange_items": 3}
    # no tool verb named, or every candidate in conflict: the first stage's order stands
    for plain in ("The skateboard is cheaper elsewhere.", "Cancel it."):
        assert [h.procedure.name for h in rank(plain, [exchange, returns, lookup])][0] \
            == "exchange_items"
