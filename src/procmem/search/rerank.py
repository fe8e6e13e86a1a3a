"""Rerankers: ask a language model which of the top procedures fits a task.

Search ranks by words, vectors and structure; none of them reads intent ("I won't
be able to receive it, I want a full refund" is a cancellation, not a return).
A reranker, when a memory has one, gets the task and the top hits (name,
description, actions, a few demonstration tasks each) and answers with the names
that fit, best first; :meth:`procmem.Memory.search` reorders its hits by that
answer. Off by default: procmem needs no model to learn, search or replay.

Invariant: a reranker only reorders the hits it was shown; names it does not
know are ignored, and hits it leaves out keep their order after the ones it
chose (and are marked not confident).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..core.errors import RerankError, UsageError
from .http_post import post_json

__all__ = ["OpenAIReranker", "RerankOption", "Reranker", "reranker_from_spec"]

INSTRUCTIONS = (
    "You choose which stored procedures fit a task. Each option is a procedure an agent "
    "learned from demonstrations: its name, description, actions in order, and tasks it "
    "was demonstrated on. Answer with JSON only: {\"ranking\": [names]}: the names of the "
    "options that do what the task asks, best first. Leave out every option that does not "
    "fit; answer {\"ranking\": []} when none fits. Judge by what the task wants done "
    "(cancel, return, exchange, modify...), not by the products or people it mentions."
)
"""The system message of :class:`OpenAIReranker`."""


@dataclass(frozen=True)
class RerankOption:
    """One procedure as a reranker sees it.

    Attributes:
        name: The procedure's name (what the reranker answers with).
        description: Its description.
        actions: Its steps' actions, in order.
        examples: Up to a few task texts it was demonstrated on.
    """

    name: str
    description: str = ""
    actions: tuple[str, ...] = ()
    examples: tuple[str, ...] = field(default=())


@runtime_checkable
class Reranker(Protocol):
    """Orders search options for a task: the names that fit, best first."""

    model_id: str

    def rerank(self, task: str, options: Sequence[RerankOption]) -> list[str]:
        """The names of ``options`` that fit ``task``, best first (may be empty).

        Raises:
            RerankError: The model could not answer.
        """
        ...


class OpenAIReranker:
    """Any OpenAI-compatible ``POST {base_url}/chat/completions`` endpoint, over stdlib HTTP.

    Sends :data:`INSTRUCTIONS` as the system message and the task with its options as
    JSON in the user message, with ``temperature`` 0 and ``response_format``
    ``json_object``; reads ``choices[0].message.content`` as ``{"ranking": [names]}``.

    Args:
        model: The endpoint's model name, e.g. ``"gpt-4o-mini"``.
        base_url: API root, ``http://`` or ``https://``.
        api_key: Sent as ``Authorization: Bearer ...`` when given.
        timeout_s: Request timeout in seconds.
        max_example_chars: Each demonstration task is cut to this many characters.

    Raises:
        UsageError: ``base_url`` is not http(s) or a number is out of range.
    """

    def __init__(self, model: str, *, base_url: str = "https://api.openai.com/v1",
                 api_key: str | None = None, timeout_s: float = 60.0,
                 max_example_chars: int = 600) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"base_url must start with http:// or https://, got {base_url!r}")
        if timeout_s <= 0 or max_example_chars < 1:
            raise UsageError("timeout_s must be > 0 and max_example_chars >= 1")
        self.model, self.model_id = model, f"openai:{model}"
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.api_key, self.timeout_s = api_key, timeout_s
        self.max_example_chars = max_example_chars

    def rerank(self, task: str, options: Sequence[RerankOption]) -> list[str]:
        """Ask the model; see :meth:`Reranker.rerank`.

        Raises:
            RerankError: HTTP or network failure, timeout, or an answer that is not
                ``{"ranking": [strings]}``.
        """
        if not options:
            return []
        cut = self.max_example_chars
        user = {"task": task, "options": [
            {"name": o.name, "description": o.description, "actions": list(o.actions),
             "demonstrated_on": [e[:cut] for e in o.examples]} for o in options]}
        payload = {"model": self.model, "temperature": 0,
                   "response_format": {"type": "json_object"},
                   "messages": [{"role": "system", "content": INSTRUCTIONS},
                                {"role": "user", "content": json.dumps(user)}]}
        answer = post_json(self.url, payload, api_key=self.api_key, timeout_s=self.timeout_s,
                           fail=lambda reason: RerankError(self.model_id, reason))
        try:
            content = answer["choices"][0]["message"]["content"]
            ranking = json.loads(content)["ranking"]
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise RerankError(self.model_id, f"unexpected answer from {self.url}: "
                              f"{str(answer)[:200]!r}") from err
        if not isinstance(ranking, list) or not all(isinstance(n, str) for n in ranking):
            raise RerankError(self.model_id, f"'ranking' is not a list of names: {ranking!r}")
        return ranking


def reranker_from_spec(spec: str | None, *, api_key: str | None = None) -> Reranker | None:
    """The reranker a CLI or config spec names.

    Specs: ``None`` / ``""`` / ``"none"`` (no reranker) and
    ``"openai:MODEL[@BASE_URL]"`` (:class:`OpenAIReranker`).

    Raises:
        UsageError: An unknown spec.
    """
    if spec is None or spec.strip() in ("", "none"):
        return None
    spec = spec.strip()
    if spec.startswith("openai:") and len(spec) > len("openai:"):
        model, _, url = spec[len("openai:"):].partition("@")
        if model and url:
            return OpenAIReranker(model, api_key=api_key, base_url=url)
        if model:
            return OpenAIReranker(model, api_key=api_key)
    raise UsageError(f"unknown reranker {spec!r}: use none or openai:MODEL[@BASE_URL]")
