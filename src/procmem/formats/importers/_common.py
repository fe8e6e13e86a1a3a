"""What the transcript importers share: the transcript envelope, content text,
JSON arguments, matching calls to results by id, and building the trace.

Invariants:
    * Field paths are dotted, with 0-based list indices, rooted at the key that
      holds the messages or items (``"messages.3.tool_calls.0.function.arguments"``);
      a bare list of messages is rooted at the format's usual key (``messages``
      for Chat Completions and Anthropic, ``input`` for Responses).
    * Calls are matched to results by id, never by position. A call without a
      result becomes a failed step (error :data:`NO_RESULT`); a result whose id
      matches no call, a repeated call id and a repeated result id are errors.
    * Steps come in call order. Nothing unredacted leaves :func:`build_trace`:
      task, args, outputs, errors and metadata pass through
      :func:`procmem.formats.record.redact`.
    * A transcript without an ``id`` gets :func:`procmem.formats.traceio.trace_id_for`
      of the transcript as written (a bare list is hashed as ``{"messages": [...]}``),
      so importing the same file twice yields the same ids.
    * Problems raise :class:`~procmem.core.errors.InvalidTrace` carrying the field; the
      file and line are added by :func:`procmem.formats.importers.import_transcripts`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from pydantic import ValidationError

from procmem.core.errors import InvalidTrace
from procmem.core.model import Trace, TraceStep
from procmem.formats.record import redact
from procmem.formats.traceio import trace_id_for
from procmem.formats.validation import first_problem

__all__ = [
    "LIST_KEYS",
    "NO_RESULT",
    "TEXT_PART_TYPES",
    "CallLog",
    "Transcript",
    "build_trace",
    "content_text",
    "looks_like_error",
    "parse_arguments",
    "require_str",
    "unwrap",
]

LIST_KEYS = ("messages", "input", "items")
"""The keys of a transcript object that may hold its messages or items (exactly one)."""

NO_RESULT = "no result recorded"
"""The error of a step whose call has no result in the transcript."""

TEXT_PART_TYPES = frozenset({"text", "input_text", "output_text"})
"""Content part types whose ``text`` counts as text (Chat, Responses, Anthropic)."""

Outcome = Literal["success", "failure", "unknown"]
_OUTCOMES = ("success", "failure", "unknown")
_FOREIGN_BLOCKS = frozenset({"tool_use", "tool_result"})


def require_str(obj: dict[str, Any], key: str, where: str) -> str:
    """``obj[key]`` when it is a non-empty string.

    Raises:
        InvalidTrace: The key is missing, not a string, or empty (field ``where.key``,
            or ``key`` when ``where`` is empty).
    """
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        got = "missing" if value is None else f"got {json.dumps(value)[:60]}"
        raise InvalidTrace(f"expected a non-empty string ({got})",
                           field=f"{where}.{key}" if where else key)
    return value


def content_text(content: Any, where: str) -> str:
    """The text of a message or tool result ``content``.

    ``None`` is ``""``; a string is itself; a list of content parts gives the
    ``text`` of its text parts (types in :data:`TEXT_PART_TYPES`, or bare
    strings) joined by newlines. Other parts (images, files, thinking) carry no
    text and are left out.

    Raises:
        InvalidTrace: ``content`` is neither, a text part has no string ``text``,
            or a part is an Anthropic ``tool_use``/``tool_result`` block (a
            transcript read in the wrong format must not lose its tool calls).
    """
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidTrace(f"expected text or a list of content parts, got "
                           f"{type(content).__name__}", field=where)
    texts: list[str] = []
    for index, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
        elif isinstance(part, dict):
            if part.get("type") in _FOREIGN_BLOCKS:
                raise InvalidTrace(f"unexpected {part['type']!r} block here (an Anthropic "
                                   "transcript? use the 'anthropic' format)",
                                   field=f"{where}.{index}.type")
            if part.get("type") in TEXT_PART_TYPES:
                text = part.get("text")
                if not isinstance(text, str):
                    raise InvalidTrace("a text part needs a string 'text'",
                                       field=f"{where}.{index}.text")
                texts.append(text)
        else:
            raise InvalidTrace(f"expected a content part object, got {type(part).__name__}",
                               field=f"{where}.{index}")
    return "\n".join(texts)


def parse_arguments(text: Any, where: str) -> dict[str, Any]:
    """Parse a tool call's ``arguments`` (JSON text) into a JSON object.

    Empty or all-space text means no arguments (``{}``).

    Raises:
        InvalidTrace: Not a string, not valid JSON, or not a JSON object (field ``where``).
    """
    if not isinstance(text, str):
        raise InvalidTrace(f"expected JSON text, got {type(text).__name__}", field=where)
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as err:
        raise InvalidTrace(f"arguments are not valid JSON: {err}", field=where) from err
    if not isinstance(value, dict):
        raise InvalidTrace(f"arguments must be a JSON object, got a JSON "
                           f"{type(value).__name__}", field=where)
    return value


def looks_like_error(text: str) -> bool:
    """Whether an OpenAI tool result reads as an error (a heuristic).

    The Chat Completions and Responses formats have no error flag on a tool
    result, so a result counts as an error when its text starts with
    ``"Error"`` (after leading spaces), or when it is a JSON object with an
    ``"error"`` key whose value is not ``null``, ``false`` or ``""``
    (``{"error": null, ...}`` is a success report in many APIs).
    """
    stripped = text.lstrip()
    if stripped.startswith("Error"):
        return True
    if not stripped.startswith("{"):
        return False
    try:
        value = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("error") not in (None, False, "")


@dataclass
class Transcript:
    """The envelope of one transcript.

    Attributes:
        items: ``(field path, message or item)`` in transcript order.
        raw: The transcript as written (for the deterministic id).
        id, task, outcome, reward, metadata: Given values, or ``None``.
    """

    items: list[tuple[str, Any]]
    raw: Any
    id: str | None = None
    task: str | None = None
    outcome: Outcome | None = None
    reward: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def unwrap(obj: Any, *, root: str, extra: tuple[str, ...] = ()) -> Transcript:
    """Read a transcript: a bare list of messages/items, or an object.

    The object holds its list under exactly one of :data:`LIST_KEYS`, plus
    optional ``id`` (non-empty string), ``task`` (string), ``outcome``
    (``success``/``failure``/``unknown``), ``reward`` (0-1) and ``metadata``
    (object). Other keys (``model``, ``tools``, ``system`` ...) are ignored.

    Args:
        obj: The parsed JSON of one transcript.
        root: The field name of a bare list (e.g. ``"messages"``).
        extra: Further list keys appended after the main list, in order
            (``("output",)`` for a Responses API request plus its response).

    Raises:
        InvalidTrace: The shape is wrong; the field names what.
    """
    if isinstance(obj, list):
        return Transcript(items=[(f"{root}.{i}", m) for i, m in enumerate(obj)], raw=obj)
    if not isinstance(obj, dict):
        raise InvalidTrace(f"expected a transcript (a list of messages or an object with "
                           f"'messages'), got {type(obj).__name__}")
    present = [k for k in LIST_KEYS if k in obj]
    if len(present) != 1:
        problem = (f"has both {present[0]!r} and {present[1]!r}" if present
                   else "has no 'messages', 'input' or 'items' list")
        raise InvalidTrace(f"the transcript object {problem}")
    items: list[tuple[str, Any]] = []
    for key in (present[0], *extra):
        value = obj.get(key)
        if key in extra and value is None:
            continue
        if not isinstance(value, list):
            raise InvalidTrace(f"expected a list, got {type(value).__name__}", field=key)
        items.extend((f"{key}.{i}", m) for i, m in enumerate(value))
    t = Transcript(items=items, raw=obj)
    if obj.get("id") is not None:
        t.id = require_str(obj, "id", "")
    if obj.get("task") is not None:
        if not isinstance(obj["task"], str):
            raise InvalidTrace("expected a string", field="task")
        t.task = obj["task"]
    if obj.get("outcome") is not None:
        if obj["outcome"] not in _OUTCOMES:
            raise InvalidTrace(f"expected one of {', '.join(_OUTCOMES)}", field="outcome")
        t.outcome = cast(Outcome, obj["outcome"])
    reward = obj.get("reward")
    if reward is not None:
        if isinstance(reward, bool) or not isinstance(reward, int | float) or not 0 <= reward <= 1:
            raise InvalidTrace("expected a number from 0 to 1", field="reward")
        t.reward = float(reward)
    if obj.get("metadata") is not None:
        if not isinstance(obj["metadata"], dict):
            raise InvalidTrace("expected an object", field="metadata")
        t.metadata = obj["metadata"]
    return t


@dataclass
class _Call:
    call_id: str
    action: str
    args: dict[str, Any]
    where: str
    result: tuple[str, bool] | None = None


class CallLog:
    """Tool calls and their results, matched by id (not by order)."""

    def __init__(self) -> None:
        self._calls: list[_Call] = []
        self._by_id: dict[str, _Call] = {}
        self._results: dict[str, tuple[str, bool, str]] = {}

    def call(self, call_id: str, action: str, args: dict[str, Any], where: str) -> None:
        """Record a call (``where`` is the field path of its id).

        Raises:
            InvalidTrace: Another call has the same id.
        """
        if call_id in self._by_id:
            first = self._by_id[call_id].where
            raise InvalidTrace(f"repeated tool call id {call_id!r} (first at {first})",
                               field=where)
        call = _Call(call_id, action, args, where)
        self._calls.append(call)
        self._by_id[call_id] = call

    def result(self, call_id: str, text: str, error: bool, where: str) -> None:
        """Record the result of call ``call_id`` (it may come before the call).

        Raises:
            InvalidTrace: Another result has the same id.
        """
        if call_id in self._results:
            first = self._results[call_id][2]
            raise InvalidTrace(f"repeated tool result for call id {call_id!r} "
                               f"(first at {first})", field=where)
        self._results[call_id] = (text, error, where)

    def steps(self) -> tuple[list[TraceStep], bool]:
        """The steps in call order, and whether some call had no result.

        Raises:
            InvalidTrace: A result's id matches no call (field: the result's id).
        """
        for call_id, (_text, _error, where) in self._results.items():
            if call_id not in self._by_id:
                raise InvalidTrace(f"tool result for call id {call_id!r} matches no tool call",
                                   field=where)
        steps: list[TraceStep] = []
        missing = False
        for call in self._calls:
            found = self._results.get(call.call_id)
            if found is None:
                missing = True
                steps.append(TraceStep(action=call.action, args=call.args, error=NO_RESULT))
                continue
            text, error = found[0], found[1]
            steps.append(TraceStep(action=call.action, args=call.args,
                                   output=None if error else text,
                                   error=(text or "the tool reported an error") if error else None))
        return steps, missing


def build_trace(t: Transcript, fmt: str, first_user_text: str | None, log: CallLog) -> Trace:
    """The redacted trace of a parsed transcript.

    ``task`` is the given one, else ``first_user_text``. ``outcome`` is the
    given one, else ``"unknown"``; a given ``"success"`` becomes ``"unknown"``
    when a call has no result. ``source`` is ``f"{fmt} transcript"``.

    Raises:
        InvalidTrace: No task, or a result matches no call.
    """
    task = t.task if t.task is not None else first_user_text
    if task is None:
        raise InvalidTrace("no task: no user message has text and there is no 'task' field")
    steps, missing = log.steps()
    outcome: Outcome = t.outcome or "unknown"
    if missing and outcome == "success":
        outcome = "unknown"
    if t.id is not None:
        trace_id = t.id
    else:
        raw = t.raw if isinstance(t.raw, dict) else {"messages": t.raw}
        trace_id = trace_id_for({k: v for k, v in raw.items() if k != "id"})
    steps = [s.model_copy(update={"args": redact(s.args), "output": redact(s.output),
                                  "error": redact(s.error)}) for s in steps]
    try:
        return Trace(id=trace_id, task=redact(task), steps=steps, outcome=outcome,
                     reward=t.reward, source=f"{fmt} transcript", metadata=redact(t.metadata))
    except ValidationError as err:  # not expected after the checks above
        first = first_problem(err)
        raise InvalidTrace(first.msg, field=first.where or None) from err
