"""Value extractors, learning half: where a param's value sits in a task text.

An :class:`~procmem.core.model.Extractor` is three regexes — ``before``, ``pattern``,
``after`` — plus ``occurrence``, ``kind`` and ``support``. They are learned from
the demonstrations (the value and the task text it was found in):

* ``kind`` (:mod:`procmem.induction.valuekinds`: email, url, date, integer, number, id,
  enum, text, token) decides ``pattern`` where the kind has one (any email, any
  integer length when the demonstrations' lengths varied, the enum's values, free
  text); otherwise ``pattern`` generalizes the values' *shape* by character class:
  digit runs become ``\\d{n}``, letter runs stay literal when every demonstration
  agrees (``#W`` in ``#W6067464``) and keep their case and a short common length
  otherwise (``ATL`` -> ``[A-Z]{3}``), punctuation stays literal; one alternative
  per distinct shape (``credit_card_\\d{7}|paypal_\\d{7}``).
* ``before`` / ``after`` are the longest token-wise common suffix / prefix of
  the text around the value in every demonstration (``Cancel order `` ...
  `` because``), cut back to what the corpus's other examples of the argument
  share; whitespace alone is never a context. With no words after the value,
  ``after`` is where every demonstrated value ended: the end of the text, or a
  clause end followed by a space. Free text gets an extractor only between a
  word before it and such a hard end after it.
* ``occurrence`` is the value's index among the anchored matches when every
  demonstration agrees (the second of two ``Cancel order #W...`` clauses);
  ``support`` is how many demonstrations (or corpus examples) agree on the context.

Finding a value with an extractor is :mod:`procmem.induction.extract_find` (re-exported here).

Invariant: learning is deterministic, and a learned extractor's regexes compile
(:func:`check_extractor`).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from functools import lru_cache
from typing import Any

from ..core.model import Extractor
from .extract_find import (
    Found,
    anchored_matches,
    check_extractor,
    distinctive,
    find,
    find_all,
    wordy,
)
from .valuekinds import infer_kind, kind_pattern

__all__ = ["Found", "check_extractor", "distinctive", "find", "find_all", "learn_extractor",
           "locate", "locate_all", "wordy"]

_TOKEN = re.compile(r"\d+|[A-Za-z]+|\s+|[^\w\s]|_")
_MAX_BEFORE = 6  # tokens of left context kept
_MAX_AFTER = 3  # tokens of right context kept
_MAX_SHAPES = 6


def _locatable(value: Any) -> str | None:
    """``value`` as the text to look for, or ``None`` when it cannot be located."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    s = str(value)
    return s if len(s) >= 2 else None


def _word(c: str) -> bool:
    """Whether ``c`` is a regex ``\\w`` character (``str.isalnum()`` or ``_``)."""
    return c.isalnum() or c == "_"


def _occurrences(s: str, text: str, *, first: bool = False) -> list[int]:
    """Starts of the non-overlapping token-bounded occurrences of ``s`` in ``text``.

    The same positions as ``re.finditer(_bounded(re.escape(s), s), text)`` (a
    value that starts with a word character or ``#`` must not follow a word
    character or ``#``; one that ends with a word character must not precede
    one), found with ``str.find``: no regex is compiled per value, which made
    corpus statistics over thousands of distinct values slow.
    """
    left = _word(s[0]) or s[0] == "#"
    right = _word(s[-1])
    out: list[int] = []
    start = text.find(s)
    while start != -1:
        end = start + len(s)
        if ((not left or start == 0 or not (_word(text[start - 1]) or text[start - 1] == "#"))
                and (not right or end == len(text) or not _word(text[end]))):
            out.append(start)
            if first:
                break
            start = text.find(s, end)
        else:
            start = text.find(s, start + 1)
    return out


_NUMBER_TOKEN = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w]|\.\d)")


def _number_spans(value: float, text: str) -> list[tuple[int, int]]:
    """Spans of the numbers in ``text`` equal to ``value`` as decimals ("35.50" for 35.5)."""
    want = Decimal(repr(value))
    return [(m.start(), m.end()) for m in _NUMBER_TOKEN.finditer(text)
            if Decimal(m.group()) == want]


def _written(value: Any, text: str, start: int) -> str:
    """The text of ``value``'s occurrence at ``start``: ``str(value)``, or for a float
    the number as written there."""
    if isinstance(value, float):
        m = _NUMBER_TOKEN.match(text, start)
        if m is not None:
            return m.group()
    return str(value)


def locate(value: Any, text: str) -> int | None:
    """Index of the first verbatim, token-bounded occurrence of ``value`` in ``text``.

    Only strings of 2+ characters and integers of 2+ digits (not booleans) can
    be located; anything else returns ``None``.
    """
    found = locate_all(value, text)
    return found[0] if found else None


def locate_all(value: Any, text: str) -> list[int]:
    """Start indexes of every token-bounded occurrence of ``value`` (see :func:`locate`);
    a float is also found written with other decimals (35.5 in "$35.50")."""
    if isinstance(value, float) and math.isfinite(value):
        return [a for a, _ in _number_spans(value, text)]
    s = _locatable(value)
    return _occurrences(s, text) if s is not None else []


def _choose_positions(all_pos: list[list[int]], texts: list[str], widths: list[int], *,
                      nth: int = 0, text_order: bool = False) -> list[int]:
    """One occurrence per demonstration: the one whose context agrees best with the others.

    Demonstrations where the value occurs once fix a reference context (the
    tokens before and after it); where it occurs several times, the occurrence
    sharing the longest context with the reference is chosen (first on ties,
    the ``nth`` best-agreeing one for the ``nth`` param with these values).
    With ``text_order``, simply the ``nth`` occurrence in text order (for an
    ``nth`` use whose context differs from the first's).
    """
    if text_order:
        return [at[min(nth, len(at) - 1)] for at in all_pos]
    ref_idx = next((j for j, p in enumerate(all_pos) if len(p) == 1), 0)

    def context(j: int, p: int) -> tuple[list[str], list[str]]:
        t = texts[j]
        left = [_norm_ctx(x) for x in _left_tokens(t, p)]
        right = [_norm_ctx(x) for x in _right_tokens(t, p + widths[j])]
        return left, right

    ref_left, ref_right = context(ref_idx, all_pos[ref_idx][0])

    def agreement(j: int, p: int) -> int:
        left, right = context(j, p)
        n = 0
        while n < min(len(left), len(ref_left)) and left[-1 - n] == ref_left[-1 - n]:
            n += 1
        m = 0
        while m < min(len(right), len(ref_right)) and right[m] == ref_right[m]:
            m += 1
        return n + m

    chosen = []
    for j, options in enumerate(all_pos):
        best = sorted(((agreement(j, x), -x) for x in options), reverse=True)
        pick = [b for b in best if b[0] == best[0][0]]
        pick.sort(key=lambda b: -b[1])  # text order among the best-agreeing ones
        chosen.append(-(pick[nth] if nth < len(pick) else pick[-1])[1])
    return chosen


def _bounded(rx: str, sample: str) -> str:
    """Wrap ``rx`` so that it does not match inside a longer word."""
    left = r"(?<![\w#])" if sample[:1].isalnum() or sample[:1] in "_#" else ""
    right = r"(?!\w)" if sample[-1:].isalnum() or sample[-1:] == "_" else ""
    return f"{left}{rx}{right}"


def _tokens(s: str) -> list[str]:
    return _TOKEN.findall(s)


_WINDOW = 160  # characters read around a value for its context (tokens are short)


def _left_tokens(text: str, end: int) -> list[str]:
    """The last :data:`_MAX_BEFORE` tokens of ``text[:end]``, reading only a window
    before ``end`` (the whole prefix when a window holds too few whole tokens)."""
    start = max(0, end - _WINDOW)
    toks = _TOKEN.findall(text, start, end)
    if start > 0:
        toks = toks[1:]  # the first may be cut
        if len(toks) < _MAX_BEFORE:
            toks = _TOKEN.findall(text, 0, end)
    return toks[-_MAX_BEFORE:]


def _right_tokens(text: str, start: int) -> list[str]:
    """The first :data:`_MAX_AFTER` tokens of ``text[start:]`` (a window, see
    :func:`_left_tokens`)."""
    end = min(len(text), start + _WINDOW)
    toks = _TOKEN.findall(text, start, end)
    if end < len(text):
        toks = toks[:-1]  # the last may be cut
        if len(toks) < _MAX_AFTER:
            toks = _TOKEN.findall(text, start)
    return toks[:_MAX_AFTER]


def _tok_class(tok: str) -> str:
    if tok.isdigit():
        return "D"
    if tok.isalpha() and tok.isascii():
        return "A"
    if tok.isspace():
        return "S"
    return tok


def _render_context(tokens: list[str]) -> str:
    out = []
    for t in tokens:
        if t.isdigit() and len(t) >= 3:
            out.append(r"\d+")
        elif t.isspace():
            out.append(r"\s+")
        else:
            out.append(re.escape(t))
    return "".join(out)


def _norm_ctx(tok: str) -> str:
    if tok.isdigit() and len(tok) >= 3:
        return "0"
    return " " if tok.isspace() else tok


def _shape(values: list[str]) -> str:
    """A regex matching every value in ``values`` (one alternative per token structure)."""
    groups: dict[tuple[str, ...], list[list[str]]] = {}
    for v in values:
        toks = _tokens(v)
        key = tuple(_tok_class(t) for t in toks)
        groups.setdefault(key, []).append(toks)
    if len(groups) > _MAX_SHAPES:
        return r"[^\s'\",;]+(?:\s[^\s'\",;]+)*?"
    alts = []
    for key, members in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        parts = []
        for i, cls in enumerate(key):
            col = {m[i] for m in members}
            if cls == "D":
                lens = {len(t) for t in col}
                parts.append(rf"\d{{{lens.pop()}}}" if len(lens) == 1 else r"\d+")
            elif cls == "A":
                tok = next(iter(col))
                same = len(col) == 1 and (len(members) > 1 or len(tok) == 1)
                parts.append(re.escape(tok) if same else _letters(col))
            elif cls == "S":
                parts.append(r"\s")
            else:
                parts.append(re.escape(cls))
        alts.append("".join(parts))
    return "|".join(alts)


def _letters(col: set[str]) -> str:
    """A regex for letter runs that keeps what every example agrees on: case
    (``ATL``/``JFK`` -> ``[A-Z]{3}``, ``Ethan``/``Mei`` -> ``[A-Z][a-z]+``) and a
    short common length (codes); otherwise ``[A-Za-z]+``."""
    lengths = {len(t) for t in col}
    size = f"{{{lengths.pop()}}}" if len(lengths) == 1 and max(map(len, col)) <= 4 else "+"
    if all(t.isupper() for t in col):
        return f"[A-Z]{size}"
    if all(t.islower() for t in col):
        return f"[a-z]{size}"
    if all(t[0].isupper() and t[1:].islower() for t in col) and min(map(len, col)) > 1:
        return "[A-Z][a-z]+"
    return "[A-Za-z]+"


def learn_extractor(
    values: list[Any],
    texts: list[str],
    *,
    shape_values: list[str] | None = None,
    context_examples: list[tuple[Any, str]] | None = None,
    nth: int = 0,
    corpus_values: list[Any] | None = None,
    corpus_count: int = 0,
) -> Extractor | None:
    """Learn how to find a param in a task text from demonstrations.

    Args:
        values: The param's value in each demonstration (same length as ``texts``).
        texts: Each demonstration's task text.
        shape_values: More values of the same kind (e.g. every value the corpus
            has for an argument of that name) to generalize the shape from.
        context_examples: ``(value, text)`` pairs of the same action argument
            elsewhere in the corpus. The surrounding words are a property of
            the action, so when these pairs agree on a context it is used;
            otherwise the demonstrations' own context, shortened, is used.

        nth: This is the ``nth`` (0-based) param of the procedure with these
            same values (two cancel clauses with the same reason): the extractor
            is pinned to the ``nth`` anchored occurrence.
        corpus_values / corpus_count: Distinct values (at most 3 are kept) and
            occurrences of this argument in the corpus: a small closed set seen
            often is an ``enum`` of those values (see
            :func:`procmem.induction.valuekinds.infer_kind`).

    Returns:
        An :class:`Extractor` whose ``kind`` says what a value must be to bind;
        ``None`` when some value is not in its text, when the value is free
        text without a learned context on both sides (its end could not be
        told), or when the ``nth`` occurrence cannot be pinned in every
        demonstration.
    """
    args = (values, texts, shape_values, context_examples, nth, corpus_values, corpus_count)
    ex = _learn(*args, text_order=False)
    if ex is None and nth:
        # the nth use may have a context of its own ("... because X. Then cancel ...
        # because X." ends the text): learn it at the nth occurrence in text order
        ex = _learn(*args, text_order=True)
    return ex


def _learn(values: list[Any], texts: list[str], shape_values: list[str] | None,
           context_examples: list[tuple[Any, str]] | None, nth: int,
           corpus_values: list[Any] | None, corpus_count: int, *, text_order: bool
           ) -> Extractor | None:
    """:func:`learn_extractor` at the positions :func:`_choose_positions` picks; with
    ``text_order``, at the ``nth`` occurrence, its occurrence the index of that very
    position among the matches of its own context."""
    all_pos: list[list[int]] = []
    for v, t in zip(values, texts, strict=True):
        at = locate_all(v, t)
        if not at:
            return None
        all_pos.append(at)
    if text_order and any(len(at) <= nth for at in all_pos):
        return None  # no nth occurrence to pin in some demonstration
    strs = [str(v) for v in values]
    widths = [len(x) for x in strs]
    positions = _choose_positions(all_pos, texts, widths, nth=nth, text_order=text_order)
    # a number may be written otherwise ("$35.50" for 35.5): its context is the text's
    strs = [_written(v, t, p) for v, t, p in zip(values, texts, positions, strict=True)]
    kind = infer_kind(values, corpus_distinct=None if corpus_values is None else len(corpus_values),
                      corpus_count=corpus_count)
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        pattern = r"-?\d+"  # a count or an amount, not an id: any length
    elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        pattern = r"-?\d+(?:\.\d+)?"
    else:
        digit_lengths = {len(s.lstrip("-")) for s in strs}
        enum_values = strs + [str(v) for v in corpus_values or () if kind == "enum"]
        pattern = (kind_pattern(kind, enum_values, digits_vary=len(digit_lengths) > 1)
                   or _shape(sorted(set(strs) | set(shape_values or ()))))
    before, after = _context(strs, texts, positions)
    pairs = [(_written(v, t, pos), t) for v, t in context_examples or ()
             if (pos := locate(v, t)) is not None]
    if pairs:
        before, after = _supported(before, after, pairs)
    before, after = _trim_words(before, 1, left=True), _trim_words(after, 1, left=False)
    while after and after[-1].isspace():  # a new text may end right there ("needed.")
        after = after[:-1]
    # whitespace is not a context: it would make any word of any text "anchored"
    if all(t.isspace() for t in before):
        before = []
    if all(t.isspace() for t in after):
        after = []
    after_rx = _render_context(after)
    if not after_rx or (kind == "text" and not _hard(after)):
        # no words after the value: its end is the end of the text or of a clause
        after_rx = _delimiter(strs, texts, positions)
    if kind == "text" and not (_has_word(before) and after_rx):
        return None  # free text whose start or end cannot be told: the replay asks
    ex = Extractor(pattern=pattern, before=_render_context(before), after=after_rx,
                   kind=kind, support=max(len(values), _corroborated(before, after, pairs)))
    if not (ex.before or ex.after):
        return ex
    # occurrence: an index among the anchored matches that holds the value in every demo
    common: set[int] | None = None
    for sv, t, p in zip(strs, texts, positions, strict=True):
        idx = {i for i, f in enumerate(anchored_matches(ex, t))
               if f.value == sv and (not text_order or f.start == p)}
        common = idx if common is None else common & idx
    if common:
        ordered = sorted(common)
        pick = 0 if text_order else nth
        if pick >= len(ordered):
            return None
        ex = ex.model_copy(update={"occurrence": ordered[pick]})
    elif nth:
        return None
    return ex


_DELIMITER = r"\s*[.,;:!?)](?=\s|$)"
_END = r"\s*[.!?]?\s*$"


def _delimiter(strs: list[str], texts: list[str], positions: list[int]) -> str:
    """A right context for values followed by no common words, or ``""``.

    :data:`_END` (the value runs to the end of the text, a final ``.!?``
    allowed) when every demonstrated value did; :data:`_DELIMITER` (a clause
    end, ``.,;:!?)``) when every one ended the text or a clause; else ``""``.
    A span is only as sure as its end: "the spine" is not "the spine is
    cracked", and "Dr" is not "Dr. Okafor is on leave".
    """
    ends = set()
    for s, t, p in zip(strs, texts, positions, strict=True):
        rest = t[p + len(s):].strip()
        if rest in ("", ".", "!", "?"):
            ends.add("end")
        elif rest[0] in ".,;:!?)":
            ends.add("clause")
        else:
            return ""
    return _END if ends == {"end"} else _DELIMITER


def _hard(tokens: list[str]) -> bool:
    """Whether a right context surely ends free text: it has a word, or starts with
    a closing quote or bracket (``',`` after a quoted value); a bare ``.`` does
    not ("Dr. Okafor is on leave")."""
    first = next((t for t in tokens if not t.isspace()), "")
    return _has_word(tokens) or (first[:1] in "'\")]}" and first != "")


def _has_word(tokens: list[str]) -> bool:
    return any(t.isalpha() or t.isdigit() for t in tokens)


def _context(strs: list[str], texts: list[str], positions: list[int]
             ) -> tuple[list[str], list[str]]:
    befores = [_left_tokens(t, p) for t, p in zip(texts, positions, strict=True)]
    afters = [_right_tokens(t, p + len(s))
              for t, p, s in zip(texts, positions, strs, strict=True)]
    return _common_suffix(befores), _common_prefix(afters)


def _corroborated(before: list[str], after: list[str], pairs: list[tuple[str, str]]) -> int:
    """How many corpus examples of the argument have this context around their value
    (0 without a context: nothing to corroborate)."""
    if not pairs or not (before or after):
        return 0
    lefts, rights = _corpus_contexts(tuple(pairs))
    nb = [_norm_ctx(x) for x in before]
    na = [_norm_ctx(x) for x in after]
    return sum(1 for lt, rt in zip(lefts, rights, strict=True)
               if (not nb or lt[-len(nb):] == nb) and (not na or rt[:len(na)] == na))


def _supported(before: list[str], after: list[str], pairs: list[tuple[str, str]]
               ) -> tuple[list[str], list[str]]:
    """Shorten a context to what at least half of the corpus examples share.

    The words around an argument are a property of the action: a context
    that only one demonstration has (a name, an item) is cut back to the part
    that the same action's other occurrences in the corpus also have.
    """
    lefts, rights = _corpus_contexts(tuple(pairs))
    need = max(1, (len(pairs) + 1) // 2)
    nb = [_norm_ctx(x) for x in before]
    na = [_norm_ctx(x) for x in after]
    k = len(nb)
    while k > 0 and sum(1 for lt in lefts if lt[-k:] == nb[-k:] and len(lt) >= k) < need:
        k -= 1
    m = len(na)
    while m > 0 and sum(1 for rt in rights if rt[:m] == na[:m]) < need:
        m -= 1
    return (before[len(before) - k:] if k else []), after[:m]


@lru_cache(maxsize=512)
def _corpus_contexts(pairs: tuple[tuple[str, str], ...]
                     ) -> tuple[list[list[str]], list[list[str]]]:
    """The normalized left and right context of each ``(value, text)`` pair (cached:
    every group that has an action's argument reads the same corpus examples)."""
    vals, texts = [p[0] for p in pairs], [p[1] for p in pairs]
    pos = _choose_positions([locate_all(v, t) for v, t in pairs], texts,
                            [len(v) for v in vals])
    lefts = [[_norm_ctx(x) for x in _left_tokens(t, p)]
             for t, p in zip(texts, pos, strict=True)]
    rights = [[_norm_ctx(x) for x in _right_tokens(t, p + len(v))]
              for t, p, v in zip(texts, pos, vals, strict=True)]
    return lefts, rights


def _trim_words(tokens: list[str], words: int, *, left: bool) -> list[str]:
    """Keep at most ``words`` word tokens of context next to the value."""
    seq = tokens[::-1] if left else tokens
    out: list[str] = []
    seen = 0
    for t in seq:
        if seen == words:
            break
        out.append(t)
        if t.isalpha():
            seen += 1
    return out[::-1] if left else out


def _common_suffix(seqs: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i in range(1, min(len(s) for s in seqs) + 1):
        col = {_norm_ctx(s[-i]) for s in seqs}
        if len(col) != 1:
            break
        out.insert(0, seqs[0][-i])
    return out


def _common_prefix(seqs: list[list[str]]) -> list[str]:
    out: list[str] = []
    for i in range(min(len(s) for s in seqs)):
        col = {_norm_ctx(s[i]) for s in seqs}
        if len(col) != 1:
            break
        out.append(seqs[0][i])
    return out
