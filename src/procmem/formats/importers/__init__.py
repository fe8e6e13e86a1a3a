"""Importers: agent transcripts in real API formats -> procmem traces.

Formats (``FORMATS``):

* ``openai-chat``: OpenAI Chat Completions messages (``tool_calls`` + ``tool``
  messages), :func:`parse_openai_chat`.
* ``openai-responses``: OpenAI Responses API items (``function_call`` /
  ``function_call_output``), :func:`parse_openai_responses`.
* ``anthropic``: Anthropic Messages (``tool_use`` / ``tool_result`` blocks),
  :func:`parse_anthropic`.
* ``procmem``: procmem trace JSONL, read by :func:`procmem.formats.traceio.read_traces`.

A transcript file is JSONL, one transcript per line, or one JSON array of
transcripts. A transcript is a bare list of messages/items, or an object
``{"messages"|"input"|"items": [...], "id"?, "task"?, "outcome"?, "reward"?,
"metadata"?}``. A file that starts with ``[`` is read as a JSON array of
transcripts when it is one JSON array whose elements are all transcripts
(lists, or objects with a message list); as one bare transcript when it is one
JSON array of messages; otherwise as JSONL (each line may be a bare list).

Invariants:
    * Calls are matched to results by id; a call without a result is a failed
      step (``"no result recorded"``) and makes the outcome ``"unknown"``.
    * Every problem is an :class:`~procmem.core.errors.InvalidTrace` naming the file,
      the 1-based line where the transcript starts, and the dotted field path
      (``"messages.3.tool_calls.0.function.arguments"``). Trace ids are unique
      within a file (a repeated id is an error on the later line).
    * Ids are deterministic (:func:`procmem.formats.traceio.trace_id_for` of the
      transcript when it has no ``id``); secrets are redacted
      (:func:`procmem.formats.record.redact`) before a trace is returned.
    * Nothing here stores, prints or reads the environment.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from procmem.core.errors import InvalidTrace, UsageError
from procmem.core.model import Trace
from procmem.formats.traceio import json_records, read_text_file, read_traces
from procmem.security.limits import READ_MAX_DEPTH, json_problem

from ._common import LIST_KEYS, NO_RESULT, looks_like_error
from .anthropic import parse_anthropic
from .openai_chat import parse_openai_chat
from .openai_responses import parse_openai_responses

__all__ = [
    "FORMATS",
    "NO_RESULT",
    "import_transcripts",
    "looks_like_error",
    "parse_anthropic",
    "parse_openai_chat",
    "parse_openai_responses",
]

PARSERS: dict[str, Callable[[Any], Trace]] = {
    "openai-chat": parse_openai_chat,
    "openai-responses": parse_openai_responses,
    "anthropic": parse_anthropic,
}

FORMATS: tuple[str, ...] = (*PARSERS, "procmem")
"""Every ``format`` :func:`import_transcripts` accepts."""


def _is_transcript(value: Any) -> bool:
    return isinstance(value, list) or (
        isinstance(value, dict) and any(k in value for k in LIST_KEYS))


def _jsonl(text: str, source: str) -> Iterator[tuple[int, Any]]:
    # split on "\n" only: str.splitlines() would also split inside JSON strings
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


def _transcripts(text: str, source: str) -> Iterator[tuple[int, Any]]:
    """``(line, parsed JSON or InvalidTrace)`` per transcript (see the module docstring)."""
    body = text.lstrip()
    if not body.startswith("["):
        yield from _jsonl(text, source)
        return
    first_line = text.count("\n", 0, len(text) - len(body)) + 1
    try:
        whole = json.loads(text)
    except RecursionError:
        yield first_line, InvalidTrace(f"not valid JSON: nested deeper than {READ_MAX_DEPTH} "
                                       "levels", source=source, line=first_line)
        return
    except ValueError:
        head = body.split("\n", 1)[0]
        try:
            json.loads(head)
        except ValueError:  # a broken (pretty-printed) JSON array: say where it breaks
            yield from json_records(text, source)
        else:
            yield from _jsonl(text, source)
        return
    if all(_is_transcript(v) for v in whole):
        yield from json_records(text, source)
    else:
        yield first_line, whole


def import_transcripts(
    path: str | os.PathLike[str], format: str, *, skip_invalid: bool = False
) -> tuple[list[Trace], list[InvalidTrace]]:
    """Read a transcript file and turn each transcript into a trace.

    Args:
        path: JSONL (one transcript per line) or a JSON array of transcripts.
        format: One of :data:`FORMATS`, e.g. ``"anthropic"``.
        skip_invalid: ``False``: raise the first problem. ``True``: return the
            valid traces and every problem.

    Returns:
        ``(traces, problems)`` in file order; ``problems`` is empty unless
        ``skip_invalid``.

    Raises:
        InvalidTrace: A transcript is not JSON, is malformed, or repeats an id
            (only when ``skip_invalid`` is false); names file, line and field.
        UsageError: Unknown ``format``, or the file is missing, unreadable or
            not UTF-8.
    """
    if format == "procmem":
        return read_traces(path, skip_invalid=skip_invalid)
    parser = PARSERS.get(format)
    if parser is None:
        raise UsageError(f"unknown transcript format {format!r}; expected one of "
                         f"{', '.join(FORMATS)}")
    source = str(path)
    traces: list[Trace] = []
    problems: list[InvalidTrace] = []
    first_line: dict[str, int] = {}
    for line, value in _transcripts(read_text_file(Path(path)), source):
        item: Trace | InvalidTrace
        if isinstance(value, InvalidTrace):
            item = value
        else:
            problem = json_problem(value)
            try:
                if problem is not None:
                    raise InvalidTrace(problem)
                item = parser(value)
            except InvalidTrace as err:
                item = InvalidTrace(err.problem, source=source, line=line, field=err.field)
                item.__cause__ = err
            except (TypeError, ValueError, AttributeError, KeyError, IndexError,
                    RecursionError, UnicodeError) as err:  # malformed: never a traceback
                item = InvalidTrace(f"malformed {format} transcript ({type(err).__name__}: "
                                    f"{err})"[:300], source=source, line=line)
        if isinstance(item, Trace):
            if item.id in first_line:
                problem = f"duplicate trace id {item.id!r} (first on line {first_line[item.id]})"
                item = InvalidTrace(problem, source=source, line=line, field="id")
            else:
                first_line[item.id] = line
                traces.append(item)
                continue
        if not skip_invalid:
            raise item
        problems.append(item)
    return traces, problems
