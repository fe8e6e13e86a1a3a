"""Import OpenAI Responses API transcripts (``function_call`` / ``function_call_output`` items).

Format (https://platform.openai.com/docs/api-reference/responses/create and
https://platform.openai.com/docs/guides/function-calling): a list of items.
``{"type": "function_call", "call_id", "name", "arguments"}`` is a call
(``arguments`` is JSON *text*); ``{"type": "function_call_output", "call_id",
"output"}`` is its result (a string, or a list of content parts such as
``{"type": "input_text", "text"}``). Messages are
``{"type": "message", "role", "content"}`` or the short ``{"role", "content"}``,
with string content or parts (``input_text``, ``output_text``).

Invariants:
    * One step per ``function_call``, in call order; matched to its output by
      ``call_id`` (not the item ``id``).
    * The format has no error flag, so an output is an error by the heuristic
      of :func:`procmem.formats.importers._common.looks_like_error` (text starting with
      ``"Error"``, or a JSON object with a non-null ``"error"``).
    * A transcript object may hold a request's ``input`` plus its response's
      ``output`` items; they are read in that order. A string ``input`` is the
      user message.
    * Other item types are skipped: ``reasoning``, and the calls of hosted tools
      (``web_search_call``, ``file_search_call``, ``mcp_call`` ...), which are not
      the caller's tools and which procmem cannot replay. Free-form
      ``custom_tool_call`` items (text input, not a JSON object) are rejected.
"""

from __future__ import annotations

from typing import Any

from procmem.core.errors import InvalidTrace
from procmem.core.model import Trace

from ._common import (
    CallLog,
    build_trace,
    content_text,
    looks_like_error,
    parse_arguments,
    require_str,
    unwrap,
)

__all__ = ["FORMAT", "parse_openai_responses"]

FORMAT = "openai-responses"

_REJECTED = frozenset({"custom_tool_call", "custom_tool_call_output"})


def parse_openai_responses(obj: Any) -> Trace:
    """Turn one Responses API transcript into a trace.

    Args:
        obj: A list of items, or ``{"input"|"items"|"messages": [...], "output"?:
            [...], "id"?, "task"?, "outcome"?, "reward"?, "metadata"?}``.

    Returns:
        The redacted trace; ``source`` is ``"openai-responses transcript"``.

    Raises:
        InvalidTrace: Malformed transcript, bad ``arguments`` JSON (e.g. field
            ``"input.3.arguments"``), an output for no call, a repeated
            ``call_id``, or no task.
    """
    if isinstance(obj, dict) and isinstance(obj.get("input"), str):
        obj = {**obj, "input": [{"role": "user", "content": obj["input"]}]}
    t = unwrap(obj, root="input", extra=("output",) if isinstance(obj, dict) else ())
    log = CallLog()
    first_user: str | None = None
    for where, item in t.items:
        if not isinstance(item, dict):
            raise InvalidTrace(f"expected an item object, got {type(item).__name__}",
                               field=where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = require_str(item, "role", where)
            if role == "tool" or "tool_calls" in item:
                raise InvalidTrace("a Chat Completions message (tool_calls or role 'tool'): "
                                   "use the 'openai-chat' format", field=where)
            if role == "user":
                text = content_text(item.get("content"), f"{where}.content")
                if first_user is None and text.strip():
                    first_user = text
        elif kind == "function_call":
            name = require_str(item, "name", where)
            args = parse_arguments(item.get("arguments"), f"{where}.arguments")
            log.call(require_str(item, "call_id", where), name, args, f"{where}.call_id")
        elif kind == "function_call_output":
            call_id = require_str(item, "call_id", where)
            text = content_text(item.get("output"), f"{where}.output")
            log.result(call_id, text, looks_like_error(text), f"{where}.call_id")
        elif kind in _REJECTED:
            raise InvalidTrace(f"unsupported item type {kind!r}: free-form tool input is not "
                               "a JSON object", field=f"{where}.type")
        elif not isinstance(kind, str):
            raise InvalidTrace("an item needs a 'type' (or a 'role' for a message)",
                               field=f"{where}.type")
    return build_trace(t, FORMAT, first_user, log)
