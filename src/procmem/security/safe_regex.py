"""Linear-time matching for patterns that come from outside, and a time budget.

Patterns stored in procedures (extractors: ``pattern``, ``before``, ``after``) and
user redaction patterns run on RE2 (``google-re2``, Google's automata-based
engine: match time linear in the text, no catastrophic backtracking; Cox, "Regular
Expression Matching Can Be Simple And Fast", 2007). A pattern RE2 cannot compile
(a backreference, a lookaround) is refused when it is stored, with
:class:`~procmem.core.errors.UnsafePattern`. Python's ``re`` is kept only for our own
constant patterns.

The extractor regexes had lookarounds around the value (``(?=after|\\s*$)``,
``(?<![\\w#])``, ``(?!\\w)``). RE2 has none, so the context is *consumed* and each
search restarts where the value ended (where Python's ``finditer`` would restart
after a lookahead), which gives the same values and spans. RE2's ``\\d``, ``\\w``
and ``\\s`` are ASCII; the word checks around a value use Unicode letters and
numbers (``\\p{L}``, ``\\p{N}``), as Python's did.

:func:`budget` sets a per-search deadline (a context variable, so concurrent
searches have their own); :func:`over_budget` says whether it has passed, and
callers stop starting new work then (each RE2 match is already bounded).

Invariants:
    * :func:`compile_user` returns a compiled RE2 pattern or raises
      ``UnsafePattern``; it never falls back to Python's ``re``.
    * :func:`anchored_spans` and :func:`shape_spans` return non-overlapping value
      spans in text order, as Python's ``finditer`` did with the lookaround forms.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from ..core.errors import UnsafePattern

__all__ = ["Budget", "anchored_spans", "budget", "check_pattern", "compile_user",
           "normal_after", "over_budget", "shape_spans"]

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 otherwise writes every refused pattern to stderr
_OPTIONS.max_mem = 8 << 20  # bytes of automaton per pattern (RE2's default)

MAX_PATTERN_CHARS = 2000
"""Longest pattern accepted (characters)."""

_WORD = r"\p{L}\p{N}_"


def compile_user(pattern: str, *, what: str = "pattern") -> Any:
    """Compile a pattern from outside on RE2.

    Args:
        pattern: The regex (RE2 syntax: Python's minus backreferences and lookarounds).
        what: What it is, for the message (``"extractor pattern"``).

    Returns:
        A compiled ``re2`` pattern (``search``, ``finditer``, ``sub`` like ``re``).

    Raises:
        UnsafePattern: Not a string, too long, or RE2 cannot compile it.
    """
    if not isinstance(pattern, str):
        raise UnsafePattern(what, repr(pattern), "not a string")
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsafePattern(what, pattern, f"longer than {MAX_PATTERN_CHARS} characters")
    return _compile(pattern, what)


@lru_cache(maxsize=4096)
def _compile(pattern: str, what: str) -> Any:
    try:
        return re2.compile(pattern, _OPTIONS)
    except (re2.error, TypeError, ValueError) as err:
        problem = err.args[0] if err.args else str(err)
        if isinstance(problem, bytes):
            problem = problem.decode("utf-8", "replace")
        raise UnsafePattern(what, pattern, str(problem)) from None


def check_pattern(pattern: str, what: str) -> None:
    """Raise :class:`UnsafePattern` unless ``pattern`` compiles on RE2 (:func:`compile_user`)."""
    compile_user(pattern, what=what)


_TRAILING_LOOKAHEAD = re.compile(r"\(\?=([^()]*)\)$")


def normal_after(after: str) -> str:
    """A right context as RE2 runs it: a lookahead at its very end becomes a group
    (``\\s*[.,;:!?)](?=\\s|$)``, the learned clause end, is ``...(?:\\s|$)``).

    The same matches: the context is itself only looked at (Python) or consumed
    with the search restarting where the value ended (RE2), so what follows it
    never matters either way.
    """
    return _TRAILING_LOOKAHEAD.sub(r"(?:\1)", after)


@lru_cache(maxsize=4096)
def _anchored(before: str, pattern: str, after: str) -> tuple[Any, int]:
    after = normal_after(after)
    tail = f"(?:(?:{after})|\\s*$)" if after else f"(?:[^{_WORD}]|$)"
    rx = compile_user(f"(?:{before})(?P<v>{pattern}){tail}", what="extractor")
    return rx, rx.groupindex["v"]


@lru_cache(maxsize=4096)
def _shape(pattern: str) -> tuple[Any, Any, int]:
    tail = f"(?:[^{_WORD}]|$)"
    first = compile_user(f"(?:^|[^{_WORD}#])(?P<v>{pattern}){tail}", what="extractor")
    rest = compile_user(f"[^{_WORD}#](?P<v>{pattern}){tail}", what="extractor")
    return first, rest, first.groupindex["v"]


def _spans(rx: Any, group: int, text: str, pos: int) -> tuple[int, int] | None:
    m = rx.search(text, pos)
    return None if m is None else m.span(group)


def anchored_spans(before: str, pattern: str, after: str, text: str) -> list[tuple[int, int]]:
    """Value spans of ``(?:before)(?P<v>pattern)(?=(?:after)|\\s*$)`` (no ``after``:
    ``(?!\\w)``) in ``text``, as ``finditer`` gives them.

    Raises:
        UnsafePattern: The combined regex does not compile on RE2.
    """
    rx, group = _anchored(before, pattern, after)
    out: list[tuple[int, int]] = []
    pos = 0
    while pos <= len(text):
        span = _spans(rx, group, text, pos)
        if span is None:
            break
        out.append(span)
        pos = span[1] if span[1] > span[0] else span[1] + 1
    return out


def shape_spans(pattern: str, text: str) -> list[tuple[int, int]]:
    """Value spans of ``(?<![\\w#])(?P<v>pattern)(?!\\w)`` in ``text``, as ``finditer``
    gives them (the character before a value is consumed, so a search after a
    value starts one character back, without the start-of-text alternative).

    Raises:
        UnsafePattern: The combined regex does not compile on RE2.
    """
    first, rest, group = _shape(pattern)
    out: list[tuple[int, int]] = []
    pos = 0
    while pos <= len(text):
        span = _spans(first, group, text, 0) if pos == 0 else _spans(rest, group, text, pos - 1)
        if span is None:
            break
        out.append(span)
        pos = span[1] if span[1] > span[0] else span[1] + 1
    return out


# ------------------------------------------------------------------ time budget


@dataclass
class Budget:
    """A deadline (``time.monotonic()`` seconds); ``exceeded`` once work was skipped for it."""

    deadline: float
    exceeded: bool = False


_BUDGET: ContextVar[Budget | None] = ContextVar("procmem_search_budget", default=None)


@contextmanager
def budget(seconds: float | None) -> Iterator[Budget]:
    """Give the work inside the block ``seconds`` (``None``: no limit) of wall time.

    Yields:
        The :class:`Budget`; its ``exceeded`` says whether any work was skipped.
    """
    b = Budget(time.monotonic() + seconds if seconds is not None else float("inf"))
    token = _BUDGET.set(b)
    try:
        yield b
    finally:
        _BUDGET.reset(token)


def over_budget() -> bool:
    """Whether the current block's budget has run out (marks it ``exceeded``)."""
    b = _BUDGET.get()
    if b is None or time.monotonic() < b.deadline:
        return False
    b.exceeded = True
    return True
