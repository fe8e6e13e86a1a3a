"""Finding a param's value in a task text with a learned extractor (binding's half).

:func:`find` runs an :class:`~procmem.core.model.Extractor` (see :mod:`procmem.induction.extract`
for how one is learned) over a text: the anchored regex first (its learned left
and right contexts), then the bare shape; it never guesses between two different
candidates, and it returns only a value that is well-formed for the extractor's
kind (:func:`procmem.induction.valuekinds.valid`).

Invariant: :func:`find` returns a value only if it occurs verbatim in the text,
or occurs verbatim after its leading mark (``Found.restored``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from ..core.errors import UnsafePattern
from ..core.model import Extractor
from ..security.safe_regex import (
    anchored_spans,
    compile_user,
    normal_after,
    over_budget,
    shape_spans,
)
from .valuekinds import valid

__all__ = ["Found", "anchored_matches", "check_extractor", "distinctive", "find", "find_all",
           "find_shared", "wordy"]

# a pattern that starts with one literal mark (``\#W\d{7}``) and has no alternatives
_MARKED = re.compile(r"^(?:\\(?P<esc>[^\w\s])|(?P<lit>[^\w\s\\()\[\]{}|.^$*+?]))(?P<rest>[^|]+)$")


@dataclass(frozen=True)
class Found:
    """A value found in a text at ``[start, end)``; ``anchored`` when its context matched."""

    value: str
    start: int
    end: int
    anchored: bool
    restored: bool = False


def check_extractor(ex: Extractor) -> None:
    """Check that an extractor's regexes compile on RE2 (and so cannot break or stall
    search; see :mod:`procmem.security.safe_regex`).

    Raises:
        UnsafePattern: A regex, or the anchored or bare-shape regex combined from
            them, does not compile on RE2; the message names which.
    """
    for field in ("before", "pattern", "after"):
        rx = getattr(ex, field)
        compile_user(normal_after(rx) if field == "after" else rx, what=f"extractor {field}")
    try:
        anchored_spans(ex.before, ex.pattern, ex.after, "")
        shape_spans(ex.pattern, "")
    except UnsafePattern as err:
        raise UnsafePattern("extractor (contexts and pattern combined)", err.pattern,
                            err.problem) from None


def anchored_matches(ex: _Shape, text: str) -> list[Found]:
    """Every match of ``ex``'s anchored regex (contexts included) in ``text``, in order."""
    return [Found(text[a:b], a, b, True)
            for a, b in anchored_spans(ex.before, ex.pattern, ex.after, text)]


class _Spec(NamedTuple):
    """The fields of an :class:`~procmem.core.model.Extractor` that matching reads: a
    validated extractor's, copied without a second validation (the hot path)."""

    pattern: str
    before: str
    after: str
    occurrence: int | None
    kind: str | None


_Shape = Extractor | _Spec

_WORDLIKE = ("text", "token")  # kinds whose bare shape is any word: no evidence, no candidate


def _bare(ex: _Shape, text: str) -> list[Found]:
    """The bare-shape matches of ``ex`` in ``text`` (none for free text and plain
    tokens: every word of the text would match)."""
    if ex.kind in _WORDLIKE:
        return []
    return [Found(text[a:b], a, b, False) for a, b in shape_spans(ex.pattern, text)]


def find_all(ex: _Shape, text: str) -> tuple[list[Found], list[Found]]:
    """All anchored matches and all bare-shape matches of ``ex`` in ``text``, in order
    (bare ones not for the ``text`` and ``token`` kinds, see :func:`_bare`).

    Only a context with a word anchors (:func:`wordy`); an extractor whose
    contexts are marks or a clause end (:data:`_DELIMITER`) gets its
    context-bounded matches back as bare ones, together with the shape matches
    that do not overlap them (the context bounds a span; it filters out nothing).
    """
    if not (ex.before or ex.after):
        return [], _bare(ex, text)
    anchored = anchored_matches(ex, text)
    shape = _bare(ex, text)
    if not (wordy(ex.before) or wordy(ex.after)):
        # a context of marks or a clause end only bounds the span; it is no anchor, and
        # no filter either: the other bare matches stay ("#W1 and #W2." is two ids)
        bounded = [Found(f.value, f.start, f.end, False) for f in anchored]
        rest = [f for f in shape if not any(f.start < b.end and b.start < f.end for b in bounded)]
        return [], sorted(bounded + rest, key=lambda f: (f.start, f.end))
    return anchored, shape


@lru_cache(maxsize=4096)
def wordy(rx: str) -> bool:
    """Whether a learned context regex has a word in it (not only spaces and marks)."""
    return re.search(r"[A-Za-z]{2,}", rx) is not None


def _unmarked(ex: _Shape, text: str) -> tuple[list[Found], list[Found]]:
    """Anchored and shape matches of a marked id written without its mark, the mark put back.

    Only for an id-like pattern (digits) that starts with one literal mark and
    has no alternatives: ``\\#W\\d{7}`` finds ``W2307204`` and returns
    ``#W2307204``. Spans are of the text as written (without the mark).
    """
    m = _MARKED.match(ex.pattern)
    if m is None or "\\d" not in ex.pattern:
        return [], []
    mark = m.group("esc") or m.group("lit")
    rest = m.group("rest")
    if not rest[:1].isalnum():
        return [], []
    bare = _Spec(rest, ex.before, ex.after, ex.occurrence, ex.kind)
    anchored, shape = find_all(bare, text)
    return ([Found(mark + f.value, f.start, f.end, True, restored=True) for f in anchored],
            [Found(mark + f.value, f.start, f.end, False, restored=True) for f in shape])


def find(ex: Extractor, text: str) -> tuple[Found | None, list[str]]:
    """Find a param's value in ``text`` (results are cached: procedures share extractors).

    Returns:
        ``(found, candidates)``: ``found`` is the value when it is unambiguous
        and well-formed for the extractor's ``kind`` (anchored match at
        ``occurrence``, or the only anchored value; or, with no context at all
        matched, the only bare match of a *distinctive* kind — an email, a URL,
        an id with letters or a mark, see :func:`distinctive` — never a bare
        number or word; failing all of these, the only match of a marked id
        written without its mark, see :func:`_unmarked`); otherwise ``None``
        and the distinct candidate strings seen (possibly empty). When the
        current search's time budget has run out (:func:`procmem.security.safe_regex.budget`),
        ``(None, [])`` without matching.
    """
    found, cands = find_shared(ex, text)
    return found, list(cands)


def find_shared(ex: Extractor, text: str) -> tuple[Found | None, tuple[str, ...]]:
    """:func:`find` without the copy: the cached candidates tuple itself (the binder's path)."""
    if over_budget():  # the search's time is up: bind nothing more (see security.safe_regex)
        return None, ()
    return _find(ex.pattern, ex.before, ex.after, ex.occurrence, ex.kind, text)


# (the class body excludes a bare backslash so the two alternatives cannot both match
# it: no exponential backtracking on a stored pattern)
_CLASSES = re.compile(r"\\[dswDSW]|\[(?:\\.|[^\]\\])*\]|\{\d*,?\d*\}|\\.")


def distinctive(ex: _Shape) -> bool:
    """Whether a bare match of ``ex`` (no context) can stand for the param.

    True for the ``email`` and ``url`` kinds, and for an ``id`` (or, on
    extractors without a kind, a pattern with digits) whose pattern has a
    literal letter or mark (``\\#W\\d{7}``, ``credit_card_\\d{7}``): ``\\d{4}``
    is not, it would bind the 1600 of "1600 Pennsylvania Avenue".
    """
    if ex.kind in ("email", "url"):
        return True
    if ex.kind not in (None, "id") or "\\d" not in ex.pattern:
        return False
    bare = _CLASSES.sub("", ex.pattern.replace("\\#", "#"))
    return re.search(r"[A-Za-z#@]", bare) is not None


@lru_cache(maxsize=32768)
def _find(pattern: str, before: str, after: str, occurrence: int | None, kind: str | None,
          text: str) -> tuple[Found | None, tuple[str, ...]]:
    ex = _Spec(pattern, before, after, occurrence, kind)  # from a validated Extractor
    if before and wordy(before) or after and wordy(after):
        # anchored by words: an anchored value that is well-formed needs no shape scan
        anchored = anchored_matches(ex, text)
        pick = _pick(anchored, occurrence)
        if pick is not None and valid(kind, pick.value):
            return pick, ()
    anchored, shape = find_all(ex, text)
    if not anchored and not shape:
        anchored, shape = _unmarked(ex, text)
    found: Found | None = None
    if anchored:
        found = _pick(anchored, occurrence)
    elif (len({f.value for f in shape}) == 1 and ex.occurrence in (None, 0)
          and distinctive(ex)):
        found = shape[0]
        if kind in ("email", "url"):  # the only address in the text: its shape is its anchor
            found = Found(found.value, found.start, found.end, True, found.restored)
    if found is not None and valid(kind, found.value):
        return found, ()
    cands: list[str] = []
    for f in anchored + shape:
        if f.value not in cands and valid(kind, f.value):
            cands.append(f.value)
    return None, tuple(cands[:10])


def _pick(anchored: list[Found], occurrence: int | None) -> Found | None:
    """The anchored match at ``occurrence``, or the only anchored value (``None`` if not one)."""
    if occurrence is not None:
        return anchored[occurrence] if len(anchored) > occurrence else None
    return anchored[0] if anchored and len({f.value for f in anchored}) == 1 else None
