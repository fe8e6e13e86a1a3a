"""Value kinds: what sort of value a param holds, inferred from its examples.

A param's *kind* decides which spans of a new task may be bound to it, so that an
unseen but valid value binds (any email, an integer of another length where the
demonstrations varied) and an invalid one does not:

==========  ===============================================  ===========================
kind        inferred when every example ...                   validated by
==========  ===============================================  ===========================
``email``   is an email address                               ``email-validator`` (syntax
                                                              only, no DNS look-up)
``url``     is an ``http(s)://`` URL                          :func:`urllib.parse.urlsplit`
``date``    is an ISO 8601 date (``2024-05-20``)              :meth:`datetime.date.fromisoformat`
``integer`` is an integer (JSON or digit string)              ``int()``
``number``  is a decimal amount (``12.50``)                   :class:`decimal.Decimal`
``id``      is one token of letters/marks *and* digits        the learned shape
            (``#W6067464``, ``credit_card_4190576``)
``enum``    is one of a few values repeated across many       membership
            demonstrations (``no longer needed``)
``text``    has several words (a reason, a note)              bound only between learned
                                                              contexts (see :mod:`.extract`)
``token``   anything else (a name, a city): one token         the learned shape
==========  ===============================================  ===========================

email-validator (https://github.com/JoshData/python-email-validator) is used because
email syntax (quoted local parts, internationalized domains, length limits of RFC 5321)
is easy to get subtly wrong; it is called with ``check_deliverability=False``, so no
network is touched.

Invariants: inference is deterministic; :func:`valid` never raises; every pattern here
is a plain regex without backreferences or nested unbounded repeats (no catastrophic
backtracking on long texts).
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import urlsplit

__all__ = ["KINDS", "Kind", "infer_kind", "kind_pattern", "text_pattern", "valid"]

Kind = Literal["email", "url", "date", "integer", "number", "id", "enum", "text", "token"]
KINDS: tuple[str, ...] = ("email", "url", "date", "integer", "number", "id", "enum", "text",
                          "token")

_EMAIL = r"[A-Za-z0-9](?:[A-Za-z0-9._%+\-]{0,63})@[A-Za-z0-9](?:[A-Za-z0-9\-]{0,62})" \
         r"(?:\.[A-Za-z0-9\-]{1,63}){1,8}"
_URL = r"https?://[^\s<>\"'`]{1,2000}[^\s<>\"'`.,;:!?)\]}]"
_DATE = r"\d{4}-\d{2}-\d{2}"
_NUMBER = r"-?\d+(?:\.\d+)?"
_INTEGER = r"-?\d+"
_TEXT_STOPS = ".,;:!?\"'(){}[]"


def text_pattern(values: Sequence[str]) -> str:
    """Free text: 1-41 words, lazy, so that it stops at the first learned right context
    (it is only used between learned contexts).

    A word may not hold the punctuation in ``.,;:!?"'(){}[]`` that no
    demonstrated value held: an address demonstrated with a comma may have
    commas; a reason demonstrated without periods stops at a period.
    """
    inner = {c for v in values for c in v}
    stops = "".join(c for c in _TEXT_STOPS if c not in inner)
    word = "[^\\s" + "".join("\\" + c for c in stops) + "]+"
    return f"{word}(?:[ \\t]+{word}){{0,40}}?"


_FULL_EMAIL = re.compile(rf"^{_EMAIL}$")
_FULL_URL = re.compile(rf"^{_URL}$")
_FULL_DATE = re.compile(rf"^{_DATE}$")
_FULL_NUMBER = re.compile(r"^-?\d+\.\d+$")
_FULL_DIGITS = re.compile(r"^-?\d+$")
_ID = re.compile(r"^(?=.*\d)(?=.*[A-Za-z#@$])[#@$A-Za-z0-9_\-]{2,64}$")
_ENUM_MIN_DEMOS = 5  # demonstrations before a small closed set of values is believed


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def infer_kind(values: Sequence[Any], *, corpus_distinct: int | None = None,
               corpus_count: int = 0) -> Kind:
    """The kind of a param from its demonstrated values.

    Args:
        values: The param's value in each demonstration (one per demonstration,
            repeats included: repeats are the evidence for ``enum``).
        corpus_distinct: Distinct values the whole corpus has for this argument
            (``None``: unknown; at most 3 are counted by the corpus statistics).
        corpus_count: How often the corpus has seen this argument.

    Returns:
        The narrowest kind every value fits (see the module table).
    """
    if values and all(_is_int(v) for v in values):
        return "integer"
    if values and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "number"
    strs = [v for v in values if isinstance(v, str)]
    if not strs or len(strs) != len(values):
        return "token"
    if all(_FULL_EMAIL.match(s) for s in strs):
        return "email"
    if all(_FULL_URL.match(s) for s in strs):
        return "url"
    if all(_FULL_DATE.match(s) for s in strs):
        return "date"
    distinct = set(strs)
    enum_group = len(strs) >= _ENUM_MIN_DEMOS and len(distinct) * 4 <= len(strs)
    enum_corpus = (corpus_distinct is not None and corpus_distinct <= 2
                   and corpus_count >= 2 * _ENUM_MIN_DEMOS)
    if (enum_group or enum_corpus) and not all(_FULL_DIGITS.match(s) for s in strs):
        return "enum"
    if all(_FULL_DIGITS.match(s) for s in strs):
        return "integer"
    if all(_FULL_NUMBER.match(s) for s in strs):
        return "number"
    if all(_ID.match(s) for s in strs):
        return "id"
    if any(re.search(r"[A-Za-z]{2,}\s+\S", s) for s in strs):
        return "text"
    return "token"


def kind_pattern(kind: Kind, values: Sequence[str], *, digits_vary: bool = True) -> str | None:
    """The regex a kind finds values with, or ``None`` for kinds learned by shape.

    Args:
        kind: From :func:`infer_kind`.
        values: The demonstrated values as strings (for ``enum``).
        digits_vary: For ``integer``: the demonstrations had integers of several
            lengths (else the caller keeps the exact length of the shape).
    """
    if kind == "email":
        return _EMAIL
    if kind == "url":
        return _URL
    if kind == "date":
        return _DATE
    if kind == "number":
        return _NUMBER
    if kind == "integer":
        return _INTEGER if digits_vary else None
    if kind == "enum":
        return "|".join(re.escape(v) for v in sorted(set(values), key=lambda s: (-len(s), s)))
    if kind == "text":
        return text_pattern(values)
    return None


def valid(kind: str | None, value: str) -> bool:
    """Whether ``value`` is a well-formed value of ``kind`` (``None``: any value is)."""
    try:
        if kind == "email":
            from email_validator import EmailNotValidError, validate_email
            try:
                validate_email(value, check_deliverability=False)
            except EmailNotValidError:
                return False
            return True
        if kind == "url":
            parts = urlsplit(value)
            return parts.scheme in ("http", "https") and bool(parts.netloc)
        if kind == "date":
            _dt.date.fromisoformat(value)
            return True
        if kind == "integer":
            int(value)
            return True
        if kind == "number":
            Decimal(value)
            return True
        if kind == "text":
            return bool(value.strip()) and len(value) <= 400
    except (ValueError, InvalidOperation):
        return False
    return True
