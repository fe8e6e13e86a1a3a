"""Value kinds: inference from examples, validation, and the patterns that find unseen values."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmem.induction.valuekinds import KINDS, infer_kind, kind_pattern, text_pattern, valid

# ------------------------------------------------------------------------- infer_kind


@pytest.mark.parametrize(("values", "kind"), [
    (["ann@example.com", "bob.lee+x@mail.example.org"], "email"),
    (["https://example.com/a", "http://shop.test/b?c=1"], "url"),
    (["2024-05-20", "2023-12-01"], "date"),
    ([3, 12], "integer"),
    (["1234", "98765"], "integer"),  # digit strings are integers
    ([1.5, 2], "number"),
    (["12.50", "3.25"], "number"),
    (["#W6067464", "#W1234567"], "id"),
    (["credit_card_4190576", "paypal_1234567"], "id"),
    (["no longer needed", "ordered by mistake"], "text"),
    (["New York"], "text"),
    (["Ethan", "Mia"], "token"),
])
def test_infer_kind_of_each_kind(values: list[object], kind: str) -> None:
    assert infer_kind(values) == kind
    assert kind in KINDS


def test_infer_kind_needs_five_demonstrations_with_repeats_for_enum() -> None:
    assert infer_kind(["no longer needed"] * 5) == "enum"
    assert infer_kind(["no longer needed"] * 4) == "text"  # too few demonstrations
    # 6 demonstrations, 2 distinct values: not enough repeats to believe a closed set
    assert infer_kind(["no longer needed", "ordered by mistake"] * 3) == "text"
    assert infer_kind(["no longer needed", "ordered by mistake"] * 4) == "enum"


def test_infer_kind_enum_from_the_corpus_rule() -> None:
    # one demonstration, but the corpus saw this argument 10 times with 2 values
    assert infer_kind(["no longer needed"], corpus_distinct=2, corpus_count=10) == "enum"
    assert infer_kind(["no longer needed"], corpus_distinct=2, corpus_count=9) == "text"
    assert infer_kind(["no longer needed"], corpus_distinct=3, corpus_count=50) == "text"
    assert infer_kind(["no longer needed"], corpus_distinct=None, corpus_count=50) == "text"


def test_infer_kind_never_makes_digit_strings_an_enum() -> None:
    assert infer_kind(["1234"] * 8) == "integer"
    assert infer_kind(["1234"], corpus_distinct=1, corpus_count=100) == "integer"


def test_infer_kind_of_mixed_or_odd_values() -> None:
    assert infer_kind(["ann@example.com", "not an email"]) == "text"  # not every one is
    assert infer_kind(["#W1234567", 3]) == "token"  # a string and a number
    assert infer_kind([True, False]) == "token"  # booleans are not integers
    assert infer_kind([]) == "token"
    assert infer_kind(["12", "3.5"]) == "token"  # neither all integers nor all decimals


# ------------------------------------------------------------------------- valid


@pytest.mark.parametrize("email", [
    "ann@example.com", "ann+tag@example.com", "a.b-c@mail.sub.example.co.uk",
    "josé@exämple.com",
])
def test_valid_accepts_well_formed_emails(email: str) -> None:
    assert valid("email", email)


@pytest.mark.parametrize("email", ["a@b", "x@@y.com", "@y.com", "ann@", "a b@c.com", "",
                                   "ann.example.com"])
def test_valid_rejects_malformed_emails(email: str) -> None:
    assert not valid("email", email)


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("url", "https://example.com/a?b=1", "ftp://example.com/a"),
    ("url", "http://x.org", "https://"),
    ("date", "2024-02-29", "2023-02-29"),
    ("date", "2024-05-20", "20-05-2024"),
    ("integer", "-42", "12a"),
    ("number", "12.50", "twelve"),
    ("text", "no longer needed", "   "),
    ("text", "x" * 400, "x" * 401),
])
def test_valid_accepts_and_rejects_by_kind(kind: str, good: str, bad: str) -> None:
    assert valid(kind, good)
    assert not valid(kind, bad)


def test_valid_without_a_kind_or_for_shape_kinds_accepts_anything() -> None:
    for kind in (None, "token", "id", "enum"):
        assert valid(kind, "anything at all")


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from([None, *KINDS]), value=st.text(max_size=80))
def test_valid_never_raises(kind: str | None, value: str) -> None:
    assert valid(kind, value) in (True, False)


# ------------------------------------------------------------------------- patterns


def full(rx: str, value: str) -> bool:
    return re.fullmatch(rx, value) is not None


def test_email_pattern_finds_an_email_of_another_domain() -> None:
    rx = kind_pattern("email", ["ann@example.com", "bob@example.com"])
    assert rx is not None
    assert full(rx, "zoe.k+orders@mail.other.org")
    assert not full(rx, "zoe@localhost")
    m = re.search(rx, "write to zoe@other.org, thanks")
    assert m is not None and m.group() == "zoe@other.org"


def test_integer_pattern_follows_whether_lengths_varied() -> None:
    varied = kind_pattern("integer", ["12", "345"], digits_vary=True)
    assert varied is not None
    assert full(varied, "7") and full(varied, "123456") and full(varied, "-3")
    assert not full(varied, "12.5")
    # one length in every demonstration: the caller keeps the exact length of the shape
    assert kind_pattern("integer", ["1234", "5678"], digits_vary=False) is None


def test_shape_kinds_have_no_kind_pattern() -> None:
    assert kind_pattern("token", ["Ethan"]) is None
    assert kind_pattern("id", ["#W1234567"]) is None


def test_other_kind_patterns_match_unseen_valid_values() -> None:
    date, number, url = (kind_pattern(k, []) for k in ("date", "number", "url"))
    assert date is not None and full(date, "1999-01-31")
    assert number is not None and full(number, "35.50") and full(number, "7")
    assert url is not None and full(url, "https://example.com/orders/7")
    assert not full(url, "https://example.com/orders/7.")  # a sentence's period is not in it


def test_enum_pattern_is_exactly_the_values_longest_first() -> None:
    rx = kind_pattern("enum", ["no longer needed", "ordered by mistake", "no longer needed"])
    assert rx is not None
    assert full(rx, "no longer needed") and full(rx, "ordered by mistake")
    assert not full(rx, "no longer wanted")
    nested = kind_pattern("enum", ["needed", "no longer needed"])
    assert nested is not None
    m = re.search(nested, "because no longer needed")
    assert m is not None and m.group() == "no longer needed"


def test_text_pattern_allows_commas_only_when_demonstrated() -> None:
    plain = text_pattern(["no longer needed"])
    assert full(plain, "the spine is cracked")
    assert not full(plain, "cracked, and torn")
    assert not full(plain, "Dr. Okafor")
    with_commas = text_pattern(["12 Main St, Apt 4"])
    assert full(with_commas, "7 Elm Road, Unit 2")
    assert not full(with_commas, "7 Elm Road. Unit 2")  # periods still stop it


def test_text_pattern_is_lazy_and_bounded_to_41_words() -> None:
    rx = text_pattern([])
    m = re.match(rx, "one two three")
    assert m is not None and m.group() == "one"  # lazy: the caller's right context ends it
    assert full(rx, " ".join(["w"] * 41))
    assert not full(rx, " ".join(["w"] * 42))
