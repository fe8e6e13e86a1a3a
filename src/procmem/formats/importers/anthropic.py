"""Import Anthropic Messages transcripts (``tool_use`` / ``tool_result`` blocks).

Format (https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use):
a list of ``{"role": "user"|"assistant", "content"}`` messages whose content is
a string or a list of blocks. An assistant block
``{"type": "tool_use", "id", "name", "input"}`` is a call (``input`` is a JSON
object, not text); a user block ``{"type": "tool_result", "tool_use_id",
"content"?, "is_error"?}`` is its result (content: a string or text/image blocks).

Invariants:
    * One step per ``tool_use`` block, in call order; matched to its result by
      ``tool_use_id``. A result with ``is_error: true`` is a failed step whose
      ``error`` is the result text; there is no text heuristic here.
    * The task is the text of the first user message that has text (its text
      blocks, not its tool results), unless ``task`` is given.
    * ``tool_use`` outside an assistant message and ``tool_result`` outside a
      user message are errors. Other blocks (``text`` of the assistant,
      ``thinking``, images, hosted ``server_tool_use`` and its results) are
      skipped. ``system`` messages (some logs keep them in the list) are ignored.
"""

from __future__ import annotations

from typing import Any

from procmem.core.errors import InvalidTrace
from procmem.core.model import Trace

from ._common import TEXT_PART_TYPES, CallLog, build_trace, content_text, require_str, unwrap

__all__ = ["FORMAT", "parse_anthropic"]

FORMAT = "anthropic"


def _blocks(msg: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    content = msg.get("content")
    if isinstance(content, str):
        return [(f"{where}.content", {"type": "text", "text": content})]
    if not isinstance(content, list):
        raise InvalidTrace("expected a string or a list of content blocks",
                           field=f"{where}.content")
    out: list[tuple[str, dict[str, Any]]] = []
    for k, block in enumerate(content):
        at = f"{where}.content.{k}"
        if not isinstance(block, dict):
            raise InvalidTrace(f"expected a content block object, got {type(block).__name__}",
                               field=at)
        out.append((at, block))
    return out


def _result(block: dict[str, Any], at: str, log: CallLog) -> None:
    call_id = require_str(block, "tool_use_id", at)
    is_error = block.get("is_error", False)
    if not isinstance(is_error, bool):
        raise InvalidTrace("expected true or false", field=f"{at}.is_error")
    text = content_text(block.get("content"), f"{at}.content")
    log.result(call_id, text, is_error, f"{at}.tool_use_id")


def parse_anthropic(obj: Any) -> Trace:
    """Turn one Anthropic Messages transcript into a trace.

    Args:
        obj: A list of messages, or ``{"messages": [...], "id"?, "task"?,
            "outcome"?, "reward"?, "metadata"?}`` (a request body with ``model``,
            ``system`` and ``tools`` works too: other keys are ignored).

    Returns:
        The redacted trace; ``source`` is ``"anthropic transcript"``.

    Raises:
        InvalidTrace: Malformed transcript, ``input`` not an object (e.g. field
            ``"messages.1.content.0.input"``), a result for no call, a repeated
            id, or no task.
    """
    t = unwrap(obj, root="messages")
    log = CallLog()
    first_user: str | None = None
    for where, msg in t.items:
        if not isinstance(msg, dict):
            raise InvalidTrace(f"expected a message object, got {type(msg).__name__}",
                               field=where)
        role = require_str(msg, "role", where)
        if role == "system":
            continue
        if role not in ("user", "assistant"):
            raise InvalidTrace(f"unknown role {role!r}", field=f"{where}.role")
        texts: list[str] = []
        for at, block in _blocks(msg, where):
            kind = block.get("type")
            if kind == "tool_use":
                if role != "assistant":
                    raise InvalidTrace("a tool_use block must be in an assistant message",
                                       field=f"{at}.type")
                name = require_str(block, "name", at)
                args = block.get("input", {})
                if not isinstance(args, dict):
                    raise InvalidTrace(f"expected a JSON object, got {type(args).__name__}",
                                       field=f"{at}.input")
                log.call(require_str(block, "id", at), name, args, f"{at}.id")
            elif kind == "tool_result":
                if role != "user":
                    raise InvalidTrace("a tool_result block must be in a user message",
                                       field=f"{at}.type")
                _result(block, at, log)
            elif kind in TEXT_PART_TYPES and role == "user":
                if not isinstance(block.get("text"), str):
                    raise InvalidTrace("a text block needs a string 'text'", field=f"{at}.text")
                texts.append(block["text"])
        text = "\n".join(texts)
        if role == "user" and first_user is None and text.strip():
            first_user = text
    return build_trace(t, FORMAT, first_user, log)
