"""Reading and writing procmem trace files (JSONL, one trace per line).

The format is described in ``data/tau-retail/README.md``: one JSON object per
line, each a :class:`~procmem.core.model.Trace`. A file whose first non-space
character is ``[`` is read as one JSON array of traces instead.

Invariants:
    * Every problem with a record is an :class:`~procmem.core.errors.InvalidTrace`
      naming the file, the 1-based line where the record starts and, when
      known, the dotted field path (``"steps.0.action"``). An unreadable file
      is a :class:`~procmem.core.errors.UsageError`.
    * Trace ids are unique within a file; a repeated id is an error on the
      later record.
    * A record without an ``id`` gets a deterministic one,
      ``"tr_" + sha256(canonical JSON of the record, secrets redacted)[:16]``, so
      importing the same file twice yields the same ids, and an id tells nothing
      of a secret the record held (its hash is of the redacted record).
    * ``write_traces`` then ``read_traces`` returns equal traces.
    * Nothing here prints or reads the environment.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from procmem.core.errors import InvalidTrace, UsageError
from procmem.core.model import Trace
from procmem.formats.validation import first_problem
from procmem.security.limits import READ_MAX_DEPTH, json_problem

__all__ = ["iter_traces", "json_records", "read_text_file", "read_traces", "trace_id_for",
           "write_traces"]

_decoder = json.JSONDecoder()


def trace_id_for(record: dict[str, Any]) -> str:
    """The deterministic id of a trace record that has none.

    Args:
        record: The record as parsed JSON (without an ``id``).

    Returns:
        ``"tr_"`` + the first 16 hex chars of the SHA-256 of the record's
        canonical JSON (sorted keys, no spaces, UTF-8) after the default
        redaction (:func:`procmem.security.redaction.default_redactor`), e.g.
        ``"tr_9f86d081884c7d65"``.
    """
    from procmem.security.redaction import default_redactor  # lazy: detect-secrets loads on use

    canonical = json.dumps(default_redactor().redact(record), sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    return "tr_" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def read_text_file(path: Path) -> str:
    """The text of a trace or transcript file (UTF-8, a BOM dropped).

    Raises:
        UsageError: The file cannot be read or is not UTF-8.
    """
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as err:
        raise UsageError(f"cannot read trace file {str(path)!r}: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise UsageError(f"trace file {str(path)!r} is not UTF-8 text: {err.reason}") from err


def json_records(text: str, source: str) -> Iterator[tuple[int, Any | InvalidTrace]]:
    """``(line, parsed JSON or InvalidTrace)`` for each record of a file's text."""
    start = len(text) - len(text.lstrip())
    if text[start : start + 1] != "[":
        # split on "\n" only: str.splitlines() would also split inside JSON strings
        # holding U+2028 or other Unicode line breaks
        for number, raw in enumerate(text.split("\n"), start=1):
            if not raw.strip():
                continue
            try:
                yield number, json.loads(raw)
            except ValueError as err:
                yield number, InvalidTrace(f"not valid JSON: {err}", source=source, line=number)
            except RecursionError:
                yield number, InvalidTrace(f"not valid JSON: nested deeper than {READ_MAX_DEPTH} "
                                           "levels", source=source, line=number)
        return
    # A JSON array: decode element by element so that each one keeps its line.
    pos, expect_item, first = start + 1, True, True
    line, counted = 1, 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        line, counted = line + text.count("\n", counted, pos), pos
        char = text[pos : pos + 1]
        problem = None
        if char == "":
            problem = "unterminated JSON array"
        elif char == "]" and (first or not expect_item):
            if text[pos + 1 :].strip():
                problem = "text after the closing ']'"
            else:
                return
        elif not expect_item:
            if char == ",":
                pos, expect_item = pos + 1, True
                continue
            problem = f"expected ',' or ']', got {char!r}"
        else:
            try:
                value, pos = _decoder.raw_decode(text, pos)
            except json.JSONDecodeError as err:
                problem, line = str(err), err.lineno
            except RecursionError:
                problem = f"nested deeper than {READ_MAX_DEPTH} levels"
            else:
                yield line, value
                expect_item, first = False, False
                continue
        yield line, InvalidTrace(f"not valid JSON: {problem}", source=source, line=line)
        return


def _to_trace(value: Any, source: str, line: int) -> Trace | InvalidTrace:
    problem = json_problem(value)
    if problem is not None:
        return InvalidTrace(problem, source=source, line=line)
    try:
        return _validate(value, source, line)
    except (TypeError, ValueError, RecursionError, UnicodeError) as err:  # never a traceback
        return InvalidTrace(f"malformed trace ({type(err).__name__}: {err})"[:300],
                            source=source, line=line)


def _validate(value: Any, source: str, line: int) -> Trace | InvalidTrace:
    if not isinstance(value, dict):
        kind = type(value).__name__
        return InvalidTrace(f"expected a JSON object, got {kind}", source=source, line=line)
    if value.get("id") is None:
        value = {k: v for k, v in value.items() if k != "id"}
        value["id"] = trace_id_for(value)
    try:
        return Trace.model_validate(value)
    except ValidationError as err:
        first = first_problem(err)
        return InvalidTrace(first.msg, source=source, line=line, field=first.where or None)


def iter_traces(path: str | os.PathLike[str]) -> Iterator[Trace | InvalidTrace]:
    """Yield each record of a trace file as a :class:`Trace` or an :class:`InvalidTrace`.

    Errors are yielded, not raised, so a caller can decide to stop or skip.
    A record after an unrecoverable JSON array syntax error is not reached.

    Args:
        path: A procmem trace JSONL file (or a JSON array of traces).

    Raises:
        UsageError: The file is missing, unreadable or not UTF-8.
    """
    source = str(path)
    text = read_text_file(Path(path))
    first_line: dict[str, int] = {}
    for line, value in json_records(text, source):
        if isinstance(value, InvalidTrace):
            yield value
            continue
        item = _to_trace(value, source, line)
        if isinstance(item, Trace):
            if item.id in first_line:
                problem = f"duplicate trace id {item.id!r} (first on line {first_line[item.id]})"
                item = InvalidTrace(problem, source=source, line=line, field="id")
            else:
                first_line[item.id] = line
        yield item


def read_traces(
    path: str | os.PathLike[str], *, skip_invalid: bool = False
) -> tuple[list[Trace], list[InvalidTrace]]:
    """Read a procmem trace file.

    One JSON object per line (blank lines ignored), or one JSON array of trace
    objects when the first non-space character is ``[``. Records without an
    ``id`` (or with ``"id": null``) get :func:`trace_id_for`.

    Args:
        path: The file, e.g. ``"data/tau-retail/train.jsonl"``.
        skip_invalid: ``False``: raise the first problem. ``True``: return the
            valid traces and every problem.

    Returns:
        ``(traces, problems)`` in file order; ``problems`` is empty unless
        ``skip_invalid``.

    Raises:
        InvalidTrace: A record is not JSON, does not validate, or repeats an id
            (only when ``skip_invalid`` is false); carries ``line`` and ``field``.
        UsageError: The file is missing, unreadable or not UTF-8.
    """
    traces: list[Trace] = []
    problems: list[InvalidTrace] = []
    for item in iter_traces(path):
        if isinstance(item, Trace):
            traces.append(item)
        elif skip_invalid:
            problems.append(item)
        else:
            raise item
    return traces, problems


def write_traces(path: str | os.PathLike[str], traces: Iterable[Trace]) -> int:
    """Write traces as procmem trace JSONL (UTF-8, one full trace per line).

    Every trace is serialized before the file is opened, so a bad item leaves
    an existing file untouched.

    Args:
        path: Destination file; its directory must exist.
        traces: The traces, in the order to write them.

    Returns:
        The number of traces written.

    Raises:
        UsageError: An item is not a :class:`Trace`, two traces share an id,
            or the file cannot be written.
    """
    target = Path(path)
    lines: list[str] = []
    seen: set[str] = set()
    for index, trace in enumerate(traces):
        if not isinstance(trace, Trace):
            raise UsageError(f"item {index} is a {type(trace).__name__}, not a Trace")
        if trace.id in seen:
            raise UsageError(f"duplicate trace id {trace.id!r} (item {index})")
        seen.add(trace.id)
        lines.append(trace.model_dump_json(by_alias=True) + "\n")
    try:
        with target.open("w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(lines)
    except OSError as err:
        raise UsageError(f"cannot write trace file {str(path)!r}: {err.strerror or err}") from err
    return len(lines)
