"""Tests for value extractors: learn where a param sits in a task text, find it again."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmem.core.model import Extractor
from procmem.induction.extract import (
    distinctive,
    find,
    find_all,
    learn_extractor,
    locate,
    locate_all,
    wordy,
)

CANCEL_TEXTS = [
    "Your name is Ann Lee. Cancel order #W1234567 because no longer needed.",
    "You are busy. Cancel order #W7654321 because ordered by mistake. ",
    "Cancel order #W5550001 because no longer needed.",
]
CANCEL_ORDERS = ["#W1234567", "#W7654321", "#W5550001"]


def cancel_extractor() -> Extractor:
    ex = learn_extractor(CANCEL_ORDERS, CANCEL_TEXTS)
    assert ex is not None
    return ex


# ------------------------------------------------------------------------- locate


def test_locate_finds_only_token_bounded_verbatim_values() -> None:
    text = "Cancel order #W1234567 and buy 12 lamps; see #W12345678."
    assert locate("#W1234567", text) == text.index("#W1234567")
    assert locate("W1234567", text) is None  # inside "#W1234567"
    assert locate("#W123456", text) is None  # prefix of a longer token
    assert locate(12, text) == text.index("12 lamps")
    assert locate("lamp", text) is None
    assert locate_all("#W1234567", text + " #W1234567") == [13, text.index(".") + 2]


def test_locate_finds_a_float_as_written() -> None:
    text = "Refund $35.50 of the copay, not 35.5x or 135.5."
    assert locate(35.5, text) == text.index("35.50")
    assert locate_all(35.5, text) == [text.index("35.50")]
    assert locate(2.25, text) is None


@pytest.mark.parametrize("value", [True, 5, "a", None, ["#W1234567"], {"a": 1}])
def test_locate_refuses_values_too_short_or_not_text(value: object) -> None:
    assert locate(value, "True 5 a None 1.5 #W1234567") is None
    assert locate_all(value, "True 5 a None 1.5 #W1234567") == []


# ------------------------------------------------------------------------- learn


def test_learn_extractor_generalizes_the_shape_by_character_class() -> None:
    ex = cancel_extractor()
    assert ex.pattern in (r"#W\d{7}", r"\#W\d{7}")
    rx = re.compile(ex.pattern)
    assert rx.fullmatch("#W0000000")
    for other in ("#W000000", "#X0000000", "W0000000", "#W00000000"):
        assert not rx.fullmatch(other)


def test_learn_extractor_keeps_the_words_around_the_value() -> None:
    ex = cancel_extractor()
    assert re.search(f"(?:{ex.before})$", "Please cancel order ")
    assert not re.search(f"(?:{ex.before})$", "Please return ")
    assert re.match(ex.after, " because it broke")
    assert ex.occurrence == 0


def test_learn_extractor_makes_one_alternative_per_shape() -> None:
    values = ["credit_card_1234567", "paypal_7654321", "gift_card_1111111"]
    texts = [f"Refund via {v}." for v in values]
    ex = learn_extractor(values, texts)
    assert ex is not None
    rx = re.compile(f"(?:{ex.pattern})")
    for v in [*values, "paypal_0000000", "debit_card_9999999"]:
        assert rx.fullmatch(v), v
    assert not rx.fullmatch("paypal_123")


def test_learn_extractor_returns_none_when_a_value_is_not_in_its_text() -> None:
    assert learn_extractor(["#W1234567", "#W0000000"], CANCEL_TEXTS[:2]) is None


def test_learn_extractor_context_does_not_demand_trailing_whitespace() -> None:
    # the demonstrations end with ". " but a new task may end right after the period
    texts = ["Cancel order #W1234567 because no longer needed. ",
             "Cancel order #W7654321 because ordered by mistake. "]
    ex = learn_extractor(["no longer needed", "ordered by mistake"], texts)
    assert ex is not None
    found, _ = find(ex, "Cancel order #W5550001 because no longer needed.")
    assert found is not None and found.value == "no longer needed" and found.anchored


def test_learn_extractor_records_which_occurrence_holds_the_value() -> None:
    texts = [
        "Cancel order #W1111111 because no longer needed. "
        "Cancel order #W2222222 because ordered by mistake.",
        "Cancel order #W3333333 because ordered by mistake. "
        "Cancel order #W4444444 because no longer needed.",
    ]
    second = learn_extractor(["#W2222222", "#W4444444"], texts)
    first = learn_extractor(["#W1111111", "#W3333333"], texts)
    assert second is not None and first is not None
    assert (first.occurrence, second.occurrence) == (0, 1)


# ------------------------------------------------------------------------- find


def test_find_binds_the_value_in_a_new_text() -> None:
    text = "Hi, I'm Bo. Cancel order #W9999999 because ordered by mistake."
    found, candidates = find(cancel_extractor(), text)
    assert found is not None
    assert found.value == "#W9999999" and found.anchored
    assert text[found.start:found.end] == "#W9999999"
    assert candidates == []


def test_find_uses_the_surrounding_words_to_choose_between_shapes() -> None:
    text = "My other order #W1000000 is fine. Cancel order #W2000000 because no longer needed."
    ex = Extractor(pattern=r"#W\d{7}", before=r"order\s+", after=r"\s+because")
    found, _ = find(ex, text)
    assert found is not None and found.value == "#W2000000"


def test_find_picks_the_kth_occurrence_for_a_second_clause() -> None:
    texts = [
        "Cancel order #W1111111 because no longer needed. "
        "Cancel order #W2222222 because ordered by mistake.",
        "Cancel order #W3333333 because ordered by mistake. "
        "Cancel order #W4444444 because no longer needed.",
    ]
    ex = learn_extractor(["#W2222222", "#W4444444"], texts)
    assert ex is not None
    new = ("Cancel order #W5000005 because no longer needed. "
           "Cancel order #W6000006 because no longer needed.")
    found, _ = find(ex, new)
    assert found is not None and found.value == "#W6000006"
    # the k-th occurrence is not invented when the text has only one clause
    found, candidates = find(ex, "Cancel order #W5000005 because no longer needed.")
    assert found is None and candidates == ["#W5000005"]


def test_find_returns_candidates_instead_of_guessing() -> None:
    ex = Extractor(pattern=r"#W\d{7}", before=r"order\s+", after="")
    found, candidates = find(ex, "Cancel order #W1000001 and order #W1000002.")
    assert found is None
    assert candidates == ["#W1000001", "#W1000002"]
    # nothing anchored, two bare shapes: still no guess
    found, candidates = find(ex, "#W1000001 or #W1000002?")
    assert found is None and candidates == ["#W1000001", "#W1000002"]
    # the same value twice is not ambiguous
    found, _ = find(ex, "order #W1000001, yes order #W1000001")
    assert found is not None and found.value == "#W1000001"


def test_find_falls_back_to_a_unique_bare_shape() -> None:
    found, _ = find(cancel_extractor(), "Please drop #W3000003 from my account.")
    assert found is not None and found.value == "#W3000003" and not found.anchored


def test_find_puts_back_the_mark_of_an_id_written_without_it() -> None:
    found, cands = find(cancel_extractor(), "Just cancel the order (W2307204), please.")
    assert found is not None and found.value == "#W2307204" and found.restored
    assert (found.start, found.end) == (23, 31) and cands == []


def test_find_anchors_an_unmarked_id_by_its_surrounding_words() -> None:
    found, _ = find(cancel_extractor(), "See W1111111. Cancel order W2222222 because x.")
    assert found is not None and found.value == "#W2222222"
    assert found.anchored and found.restored


def test_find_anchors_a_value_at_the_end_of_a_text_without_the_words_after_it() -> None:
    reason = Extractor(pattern=r"[A-Za-z]+\s[A-Za-z]+\s[A-Za-z]+", before=r"because\s+",
                       after=r"\.", occurrence=0)
    found, _ = find(reason, "Cancel order #W1000001 because no longer needed")
    assert found is not None and found.value == "no longer needed" and found.anchored
    assert find(reason, "Cancel because no longer needed and more")[0] is None


def test_find_prefers_the_marked_id_and_never_guesses_between_unmarked_ones() -> None:
    found, _ = find(cancel_extractor(), "Not W1111111 but #W2222222.")
    assert found is not None and found.value == "#W2222222" and not found.restored
    found, cands = find(cancel_extractor(), "Either W1111111 or W2222222.")
    assert found is None and cands == ["#W1111111", "#W2222222"]


def test_find_restores_no_mark_for_a_pattern_with_alternatives_or_no_digits() -> None:
    payment = Extractor(pattern=r"\#credit_\d{7}|\#paypal_\d{7}")
    assert find(payment, "pay with paypal_1234567") == (None, [])
    words = Extractor(pattern=r"\#[A-Za-z]+")
    assert find(words, "tag urgent") == (None, [])


def test_find_on_a_text_without_the_value_finds_nothing() -> None:
    assert find(cancel_extractor(), "Return my kettle please.") == (None, [])


def test_find_all_separates_anchored_and_shape_matches() -> None:
    anchored, shape = find_all(cancel_extractor(),
                               "Cancel order #W1000001 because x. See #W1000002.")
    assert [f.value for f in anchored] == ["#W1000001"]
    assert [f.value for f in shape] == ["#W1000001", "#W1000002"]


# ------------------------------------------------------------------- hypothesis

_FRAGMENTS = ["Cancel", "order", "because", "no longer needed", "#W", "#W1234567",
              "#W12345", "W7654321", "via", "paypal_1234567", "credit_card_7654321",
              "1234567", ".", ",", " ", "  ", "\n", "é", "ordered by mistake", "_", "#"]
_texts = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=4), max_size=25).map("".join)
_extractors = st.sampled_from([
    Extractor(pattern=r"\#W\d{7}", before=r"order\s+", after=r"\s+because", occurrence=0),
    Extractor(pattern=r"\#W\d{7}", before=r"order\s+", after=r"\s+because", occurrence=1),
    Extractor(pattern=r"[A-Za-z]+\s[A-Za-z]+\s[A-Za-z]+", before=r"because\s+", after=r"\."),
    Extractor(pattern=r"[A-Za-z]+_card_\d{7}|paypal_\d{7}", before=r"via\s+", after=""),
    Extractor(pattern=r"\d+"),
])


@settings(max_examples=300, deadline=None)
@given(ex=_extractors, text=_texts)
def test_find_returns_only_values_in_the_text_or_restored_marks(ex: Extractor, text: str) -> None:
    found, candidates = find(ex, text)
    if found is not None:
        written = found.value[1:] if found.restored else found.value
        assert text[found.start:found.end] == written
        assert found.value
        assert candidates == []
    for c in candidates:
        assert c in text or (c.startswith("#") and c[1:] in text)


_VALUES = st.sampled_from(["#W1234567", "W1234567", "1234567", "12", "-5", "a-a", "no longer",
                           "é1", "_x_", "ab", "##", "x#"]) | st.text(min_size=2, max_size=4)


@settings(max_examples=400, deadline=None)
@given(value=_VALUES, text=_texts)
def test_locate_all_finds_what_the_bounded_regex_finds(value: str, text: str) -> None:
    left = r"(?<![\w#])" if value[:1].isalnum() or value[:1] in "_#" else ""
    right = r"(?!\w)" if value[-1:].isalnum() or value[-1:] == "_" else ""
    rx = re.compile(f"{left}{re.escape(value)}{right}")
    expected = [m.start() for m in rx.finditer(text)]
    assert locate_all(value, text) == expected
    assert locate(value, text) == (expected[0] if expected else None)


# ------------------------------------------------------------------------- kinds and safety

REASON_TEXTS = [
    "reason: the box is damaged.",
    "reason: it arrived too late.",
    "reason: I found a cheaper one.",
]
REASONS = ["the box is damaged", "it arrived too late", "I found a cheaper one"]


def test_learn_extractor_sets_kind_and_support() -> None:
    ex = cancel_extractor()
    assert (ex.kind, ex.support) == ("id", 3)
    reason = learn_extractor(REASONS, REASON_TEXTS)
    assert reason is not None and (reason.kind, reason.support) == ("text", 3)


def test_free_text_that_ended_every_demo_is_not_cut_at_an_inner_period() -> None:
    ex = learn_extractor(REASONS, REASON_TEXTS)
    assert ex is not None
    found, _ = find(ex, "reason: Dr. Okafor is on leave.")
    assert found is None  # not "Dr": the replay pauses instead
    found, _ = find(ex, "reason: the spine is cracked and pages fell out.")
    assert found is not None and found.anchored
    assert found.value == "the spine is cracked and pages fell out"
    found, _ = find(ex, "reason: the spine is cracked")  # no final period
    assert found is not None and found.value == "the spine is cracked"


def test_free_text_without_a_word_before_or_a_known_end_gets_no_extractor() -> None:
    # nothing but the start of the text before it
    assert learn_extractor(["no longer needed", "ordered by mistake"],
                           ["no longer needed, says Ann", "ordered by mistake, says Bo"]) is None
    # words after it differ and it does not end a clause: its end cannot be told
    assert learn_extractor(["no longer needed", "ordered by mistake"],
                           ["because no longer needed so cancel",
                            "because ordered by mistake please cancel"]) is None


FIRST_NAME_CORPUS = [("Ethan", "Your name is Ethan Kim"), ("Mia", "You are Mia Wong, in 10001"),
                     ("Raj", "Hello, Raj Patel here"), ("Li", "I am Li Na")]
_WORDS = st.lists(st.sampled_from(["Your", "name", "is", "Mia", "Wong", "you", "are", "busy",
                                   "polite", "Ethan", "Kim", "for", "and", ",", "."]),
                  min_size=1, max_size=12).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(text=_WORDS)
def test_a_one_demonstration_procedure_never_binds_a_word_by_whitespace_context_alone(
        text: str) -> None:
    # the corpus shares only the space around a first name: that is no context
    ex = learn_extractor(["Ethan"], ["Your name is Ethan Kim"],
                         context_examples=FIRST_NAME_CORPUS)
    assert ex is not None and ex.support == 1
    for rx in (ex.before, ex.after):
        assert rx == "" or re.search(r"[A-Za-z]{2,}", rx)  # never bare whitespace
    found, _ = find(ex, text)
    assert found is None
    anchored, _ = find_all(ex, text)
    assert anchored == []
    # a value that was the whole text: only the end of the text around it
    alone = learn_extractor(["Ethan"], ["Ethan"])
    assert alone is not None
    assert find(alone, text)[0] is None


def test_a_bare_four_digit_number_does_not_bind() -> None:
    for ex in (Extractor(pattern=r"\d{4}"), Extractor(pattern=r"\d{4}", kind="integer")):
        assert not distinctive(ex)
        found, candidates = find(ex, "Ship it to 1600 Pennsylvania Avenue.")
        assert found is None and candidates == ["1600"]


def test_a_marked_id_binds_bare_and_a_plain_word_does_not() -> None:
    for pattern, kind in ((r"\#W\d{7}", "id"), (r"credit_card_\d{7}", "id"), (r"\#W\d{7}", None)):
        assert distinctive(Extractor(pattern=pattern, kind=kind))
    found, _ = find(Extractor(pattern=r"\#W\d{7}", kind="id"), "please look at #W1234567 today")
    assert found is not None and found.value == "#W1234567" and not found.anchored
    assert not distinctive(Extractor(pattern=r"[A-Za-z]+", kind="token"))
    assert find(Extractor(pattern=r"[A-Za-z]+", kind="token"), "Ethan")[0] is None


def test_an_email_learned_at_one_domain_binds_an_email_at_another() -> None:
    ex = learn_extractor(["ann@example.com", "bob.lee@example.com"],
                         ["My email is ann@example.com.", "email bob.lee@example.com please"])
    assert ex is not None and ex.kind == "email" and distinctive(ex)
    found, _ = find(ex, "write to zoe+orders@mail.other.org about it")
    assert found is not None and found.value == "zoe+orders@mail.other.org"
    assert found.anchored  # the only address in the text anchors itself
    found, candidates = find(ex, "from a@x.org to b@y.org")
    assert found is None and candidates == ["a@x.org", "b@y.org"]  # two: never a guess


def test_find_validates_the_value_by_kind() -> None:
    ex = Extractor(pattern=r"\S+@\S+", before=r"email\s+", kind="email")
    assert find(ex, "email x@@y.com now") == (None, [])
    found, _ = find(ex, "email x@y.com now")
    assert found is not None and found.value == "x@y.com"


def test_nth_pins_the_nth_param_with_the_same_values() -> None:
    texts = ["Cancel order #W1234567 because no longer needed and order #W7654321 because "
             "no longer needed and thanks.",
             "Cancel order #W1111111 because ordered by mistake and order #W2222222 because "
             "ordered by mistake and thanks."]
    values = ["no longer needed", "ordered by mistake"]
    first, second = (learn_extractor(values, texts, nth=n) for n in (0, 1))
    assert first is not None and second is not None
    assert (first.occurrence, second.occurrence) == (0, 1)
    task = ("Cancel order #W3000001 because it is broken and order #W3000002 because it came "
            "late and thanks.")
    assert find(first, task)[0].value == "it is broken"  # type: ignore[union-attr]
    assert find(second, task)[0].value == "it came late"  # type: ignore[union-attr]
    assert learn_extractor(values, texts, nth=2) is None  # no third occurrence to pin


def test_a_float_is_located_and_bound_as_written() -> None:
    ex = learn_extractor([35.5, 12.0], ["Refund $35.50 now", "Refund $12.00 now"])
    assert ex is not None and ex.kind == "number"
    found, _ = find(ex, "Refund $7.25 now")
    assert found is not None and found.value == "7.25"


def test_an_id_learned_at_the_end_of_every_text_binds_bare_elsewhere_but_never_guesses() -> None:
    ex = learn_extractor(["#W1234567", "#W7654321"], ["Here: #W1234567", "see #W7654321"])
    assert ex is not None and ex.kind == "id" and not wordy(ex.before + ex.after)
    found, _ = find(ex, "what about #W5550001 then")
    assert found is not None and found.value == "#W5550001" and not found.anchored
    # the end-of-text context is no filter: two ids are two candidates, not the last one
    assert find(ex, "Cancel #W5550001 and #W5550002.") == (None, ["#W5550001", "#W5550002"])
