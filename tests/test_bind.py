"""Tests for the built-in binder: params from a new task's text (procmem.induction.bind)."""

from __future__ import annotations

import pytest

from procmem.core.model import Extractor, Param, Procedure, Step, Trace
from procmem.induction.bind import bind_task
from procmem.induction.induce import CorpusStats, group_traces, induce
from procmem.induction.valuekinds import text_pattern

ORDER = Extractor(pattern=r"#W\d{7}", before=r"order\s+", after=r"\s+because")


def proc(*params: Param) -> Procedure:
    return Procedure(name="p", params=list(params),
                     steps=[Step(id="s1", action="a",
                                 args={p.name: {"$param": p.name} for p in params})])


def test_bind_task_fills_params_from_the_text_with_spans() -> None:
    p = proc(Param(name="order_id", schema={"type": "string"}, extractor=ORDER))
    task = "Cancel order #W1234567 because no longer needed."
    b = bind_task(p, task)
    assert b.values == {"order_id": "#W1234567"}
    start, end = b.spans["order_id"]
    assert task[start:end] == "#W1234567"
    assert b.anchored == {"order_id"}
    assert b.fit == 1.0 and b.learnable == 1


def test_bind_task_coerces_integer_and_number_params() -> None:
    p = proc(
        Param(name="quantity", schema={"type": "integer"},
              extractor=Extractor(pattern=r"\d+", before=r"buy\s+")),
        Param(name="budget", schema={"type": "number"},
              extractor=Extractor(pattern=r"\d+\.\d+", before=r"under\s+")),
    )
    b = bind_task(p, "Please buy 12 lamps for under 99.50 dollars.")
    assert b.values == {"quantity": 12, "budget": 99.5}
    assert type(b.values["quantity"]) is int
    assert type(b.values["budget"]) is float


def test_bind_task_leaves_a_value_that_does_not_fit_the_type_as_a_candidate() -> None:
    p = proc(Param(name="quantity", schema={"type": "integer"},
                   extractor=Extractor(pattern=r"[a-z]+", before=r"buy\s+")))
    b = bind_task(p, "Please buy some lamps.")
    assert b.values == {}
    assert b.candidates == {"quantity": ["some"]}


def test_bind_task_does_not_bind_one_span_to_two_params() -> None:
    p = proc(Param(name="first", extractor=ORDER), Param(name="second", extractor=ORDER))
    b = bind_task(p, "Cancel order #W1234567 because no longer needed.")
    assert b.values == {"first": "#W1234567"}
    assert b.candidates == {"second": ["#W1234567"]}
    assert b.fit == 0.5


def test_bind_task_reports_candidates_when_ambiguous_and_skips_params_without_extractor() -> None:
    ambiguous = Extractor(pattern=r"#W\d{7}", before=r"order\s+")
    p = proc(Param(name="order_id", extractor=ambiguous), Param(name="item_ids"))
    b = bind_task(p, "order #W1000001 or order #W1000002")
    assert b.values == {}
    assert b.candidates == {"order_id": ["#W1000001", "#W1000002"]}
    assert b.learnable == 1 and b.fit == 0.0


def test_bind_task_shape_only_match_counts_half() -> None:
    p = proc(Param(name="order_id", extractor=ORDER))
    b = bind_task(p, "Something about #W7777777 here.")
    assert b.values == {"order_id": "#W7777777"}
    assert b.anchored == set() and b.fit == 0.5


@pytest.fixture(scope="module")
def learned(tau_sample: list[Trace]) -> dict[tuple[str, ...], Procedure]:
    corpus = CorpusStats.from_traces(tau_sample)
    return {g[0].signature(): induce(g, corpus=corpus) for g in group_traces(tau_sample)}


def test_bind_task_with_extractors_learned_from_real_traces(
    learned: dict[tuple[str, ...], Procedure]
) -> None:
    cancel = learned[("cancel_pending_order",)]
    b = bind_task(cancel, "Your name is Kim Ito. Cancel order #W6067464 because no longer needed.")
    assert b.values == {"order_id": "#W6067464", "reason": "no longer needed"}

    two = learned[("cancel_pending_order", "cancel_pending_order")]
    b = bind_task(two, "Cancel order #W1000001 because no longer needed. "
                       "Cancel order #W2000002 because ordered by mistake. ")
    assert b.values == {"order_id": "#W1000001", "reason": "no longer needed",
                        "order_id_2": "#W2000002", "reason_2": "ordered by mistake"}

    ret = learned[("return_delivered_order_items",)]
    b = bind_task(ret, "Your name is Kim Ito. Return #W6067464 via paypal_3738584: Yoga Mat; ")
    assert b.values == {"order_id": "#W6067464", "payment_method_id": "paypal_3738584"}
    assert b.anchored == {"order_id", "payment_method_id"}


def test_bind_task_is_deterministic(learned: dict[tuple[str, ...], Procedure]) -> None:
    task = "Cancel order #W1000001 because no longer needed."
    for p in learned.values():
        assert bind_task(p, task) == bind_task(p, task)


# ------------------------------------------------------------------ span safety

REASON = Extractor(pattern=text_pattern([]), before=r"because\s+", after=r"\s*[.!?]?\s*$",
                   kind="text")
ADDRESS = Extractor(pattern=r"\d+\s[A-Za-z]+\s(?:St|Road)", before=r"ship\s+to\s+")


def test_bind_task_binds_neither_of_two_overlapping_spans() -> None:
    street = Param(name="street", extractor=ADDRESS)
    number = Param(name="house_number", schema={"type": "integer"},
                   extractor=Extractor(pattern=r"\d+", before=r"ship\s+to\s+"))
    b = bind_task(proc(street, number), "Please ship to 12 Main St today.")
    assert b.values == {} and b.spans == {} and b.anchored == set()
    assert b.candidates == {"street": ["12 Main St"], "house_number": ["12"]}
    assert b.learnable == 2 and b.fit == 0.0


def test_bind_task_keeps_free_text_from_running_into_another_params_context() -> None:
    p = proc(Param(name="address", extractor=ADDRESS), Param(name="reason", extractor=REASON))
    task = "Please ship to 12 Main St. Cancel it because no longer needed and ship to the office"
    b = bind_task(p, task)
    assert b.values == {"address": "12 Main St"}
    assert b.candidates == {"reason": ["no longer needed and ship to the office"]}
    # the same reason without the other param's words binds whole
    b = bind_task(p, "Please ship to 12 Main St. Cancel it because no longer needed.")
    assert b.values == {"address": "12 Main St", "reason": "no longer needed"}
    assert b.anchored == {"address", "reason"}


def test_bind_task_text_check_reads_only_contexts_with_words() -> None:
    marked = Param(name="code", extractor=Extractor(pattern=r"\d{3}", before=r"\#"))
    p = proc(marked, Param(name="reason", extractor=REASON))
    b = bind_task(p, "Code #123. Cancel because item #4 broke")
    assert b.values["reason"] == "item #4 broke"  # "#" alone is no other param's context
