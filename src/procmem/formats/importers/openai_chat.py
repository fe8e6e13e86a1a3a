"""Import OpenAI Chat Completions transcripts (``tool_calls`` + ``tool`` messages).

Format (https://platform.openai.com/docs/api-reference/chat/create): a list of
messages. An assistant message may carry ``tool_calls``, each
``{"id", "type": "function", "function": {"name", "arguments"}}`` where
``arguments`` is JSON *text*; the result of a call is a message
``{"role": "tool", "tool_call_id", "content"}`` whose content is a string or a
list of content parts (``{"type": "text", "text"}``).

Invariants:
    * One step per tool call, in call order; action = ``function.name``,
      args = the parsed ``arguments`` (a JSON object), output = the tool
      message's text. Results are matched to calls by ``tool_call_id``.
    * The format has no error flag, so a result is an error by the heuristic
      of :func:`procmem.formats.importers._common.looks_like_error` (text starting with
      ``"Error"``, or a JSON object with a non-null ``"error"``): the step then
      has ``error`` = the text and no output.
    * The task is the first user message with text, unless ``task`` is given.
      ``system`` and ``developer`` messages are ignored. The legacy
      ``function_call`` / ``role: "function"`` protocol and non-function
      (``custom``) tool calls are rejected, never dropped silently.
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

__all__ = ["FORMAT", "parse_openai_chat"]

FORMAT = "openai-chat"

_IGNORED_ROLES = frozenset({"system", "developer"})


def _calls(msg: dict[str, Any], where: str, log: CallLog) -> None:
    if msg.get("function_call") is not None:
        raise InvalidTrace("the legacy 'function_call' is not supported: use 'tool_calls'",
                           field=f"{where}.function_call")
    calls = msg.get("tool_calls")
    if calls is None:
        return
    if not isinstance(calls, list):
        raise InvalidTrace(f"expected a list, got {type(calls).__name__}",
                           field=f"{where}.tool_calls")
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls.{j}"
        if not isinstance(call, dict):
            raise InvalidTrace(f"expected a tool call object, got {type(call).__name__}",
                               field=at)
        kind = call.get("type", "function")
        if kind != "function":
            raise InvalidTrace(f"unsupported tool call type {kind!r}: only 'function' calls "
                               "have JSON object arguments", field=f"{at}.type")
        fn = call.get("function")
        if not isinstance(fn, dict):
            raise InvalidTrace("expected an object with 'name' and 'arguments'",
                               field=f"{at}.function")
        name = require_str(fn, "name", f"{at}.function")
        args = parse_arguments(fn.get("arguments"), f"{at}.function.arguments")
        log.call(require_str(call, "id", at), name, args, f"{at}.id")


def parse_openai_chat(obj: Any) -> Trace:
    """Turn one Chat Completions transcript into a trace.

    Args:
        obj: A list of messages, or ``{"messages": [...], "id"?, "task"?,
            "outcome"?, "reward"?, "metadata"?}`` (a request body with ``model``
            and ``tools`` works too: other keys are ignored).

    Returns:
        The redacted trace; ``source`` is ``"openai-chat transcript"``.

    Raises:
        InvalidTrace: Malformed transcript, bad ``arguments`` JSON, a result for
            no call, a repeated id, or no task; ``field`` is the dotted path, e.g.
            ``"messages.3.tool_calls.0.function.arguments"``.
    """
    t = unwrap(obj, root="messages")
    log = CallLog()
    first_user: str | None = None
    for where, msg in t.items:
        if not isinstance(msg, dict):
            raise InvalidTrace(f"expected a message object, got {type(msg).__name__}",
                               field=where)
        role = require_str(msg, "role", where)
        if role == "user":
            text = content_text(msg.get("content"), f"{where}.content")
            if first_user is None and text.strip():
                first_user = text
        elif role == "assistant":
            _calls(msg, where, log)
        elif role == "tool":
            call_id = require_str(msg, "tool_call_id", where)
            text = content_text(msg.get("content"), f"{where}.content")
            log.result(call_id, text, looks_like_error(text), f"{where}.tool_call_id")
        elif role == "function":
            raise InvalidTrace("legacy 'function' messages are not supported: use 'tool' "
                               "messages with 'tool_call_id'", field=f"{where}.role")
        elif role not in _IGNORED_ROLES:
            raise InvalidTrace(f"unknown role {role!r}", field=f"{where}.role")
    return build_trace(t, FORMAT, first_user, log)
