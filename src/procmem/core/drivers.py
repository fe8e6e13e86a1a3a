"""The events a replay core yields, and the two drivers that perform them.

The core (:func:`procmem.core.replay.replay_core`) decides everything; a driver only
does what each event says and sends the reply back:

* ``ToolCall``: call ``tools[action](**args)``, timed; send a :class:`ToolResult`.
  A tool whose signature has a parameter named ``idempotency_key`` (see
  :func:`accepts_idempotency_key`) also gets ``idempotency_key=call.idempotency_key``;
  other tools never see it.
* ``NeedValues``: ask ``resolver(need)`` for each need; send ``{need.key: value}``
  for the values that are not ``None``.
* ``Sleep``: ``time.sleep`` / ``asyncio.sleep``; send ``None``.
* ``Persist``: call ``persist(execution, step_run)``; send ``None``.

Invariants:
    * Drivers hold no policy, so :func:`drive` and :func:`adrive` produce equal
      executions for equal tools and answers (a parity test checks it).
    * A tool that raises becomes ``ToolResult(error="TypeName: message")``; the
      core turns it into a failed step run. Resolver and persist exceptions propagate.
    * This module knows nothing of procedures; it imports only the data model
      and errors, so :mod:`procmem.core.replay` can build on it.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import UnknownTool, UsageError
from .model import Execution, Need, StepRun

__all__ = [
    "Core",
    "Event",
    "NeedValues",
    "Persist",
    "Sleep",
    "ToolCall",
    "ToolResult",
    "accepts_idempotency_key",
    "adrive",
    "drive",
    "idempotency_key",
]


# ------------------------------------------------------------------------- events


def idempotency_key(execution_id: str, step_id: str, attempt: int) -> str:
    """The idempotency key of one try of one step: ``"EXECUTION_ID/STEP_ID/ATTEMPT"``.

    Deterministic: a call repeated after an interruption (same execution, step
    and attempt number) gets the same key, so a tool that remembers the keys it
    has acted on can make the repeat harmless. A retry or a resume that tries a
    failed step again has a new attempt number, so a new key.
    """
    return f"{execution_id}/{step_id}/{attempt}"


@dataclass(frozen=True, slots=True)
class ToolCall:
    """Call the tool ``action`` with ``args`` as keyword arguments; reply with a ToolResult.

    ``attempt`` is the try's number: 1 for a step's first call, one more for each
    retry or resume that tries the step again; a call repeated after an
    interruption keeps its number. ``idempotency_key`` is
    :func:`idempotency_key` of the execution, step and attempt (empty: none).
    """

    step_id: str
    action: str
    args: dict[str, Any]
    attempt: int = 1
    idempotency_key: str = ""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a tool call gave: ``output`` (any value), ``error`` text or ``None``, wall time."""

    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0


@dataclass(frozen=True, slots=True)
class NeedValues:
    """Values the core cannot bind; reply ``{need.key: value}`` for those answered."""

    needs: list[Need]


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait ``seconds`` before the next attempt; reply ``None``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Persist:
    """Store ``execution`` (header) and ``step_run`` if given; reply ``None``.

    ``execution`` is the live object the core keeps mutating: serialize or copy it now.
    """

    execution: Execution
    step_run: StepRun | None = None


Event = ToolCall | NeedValues | Sleep | Persist
"""What a replay core yields."""
Core = Generator[Event, Any, Execution]
"""A replay core: yields events, returns the execution (see :func:`core.replay.replay_core`)."""


# ------------------------------------------------------------------------ drivers

Tools = Mapping[str, Callable[..., Any]]
NeedResolver = Callable[[Need], Any]
Persister = Callable[[Execution, StepRun | None], Any]


def _tool(tools: Tools, action: str) -> Callable[..., Any]:
    try:
        return tools[action]
    except KeyError:
        raise UnknownTool(action, list(tools)) from None


def accepts_idempotency_key(tool: Callable[..., Any]) -> bool:
    """True when ``tool`` declares a parameter named ``idempotency_key``.

    Only a named parameter counts (positional-or-keyword or keyword-only); a
    tool taking ``**kwargs`` does not declare it and never gets it. A callable
    whose signature cannot be read does not either.
    """
    try:
        return _declares(tool)
    except TypeError:  # unhashable: not cached
        return _declares.__wrapped__(tool)


@functools.lru_cache(maxsize=1024)
def _declares(tool: Callable[..., Any]) -> bool:
    try:
        param = inspect.signature(tool).parameters.get("idempotency_key")
    except (TypeError, ValueError):
        return False
    return param is not None and param.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                                inspect.Parameter.KEYWORD_ONLY)


def _kwargs(fn: Callable[..., Any], event: ToolCall) -> dict[str, Any]:
    """The call's keyword arguments: ``args``, plus the key for a tool that declares it."""
    if event.idempotency_key and accepts_idempotency_key(fn):
        return {**event.args, "idempotency_key": event.idempotency_key}
    return event.args


def _error_text(err: Exception) -> str:
    return f"{type(err).__name__}: {err}"


def drive(
    core: Core,
    tools: Tools,
    resolver: NeedResolver | None = None,
    persist: Persister | None = None,
) -> Execution:
    """Run a replay core synchronously.

    Args:
        core: A generator from :func:`procmem.core.replay.replay_core`.
        tools: Tool functions by action name, called as ``tool(**args)`` (plus
            ``idempotency_key=...`` when the tool declares that parameter). A tool
            that raises, or an async tool (use :func:`adrive`), gives a failed step run.
        resolver: ``resolver(need) -> value``; ``None`` (or returning ``None``)
            means "cannot answer", which pauses the execution. Its exceptions propagate.
        persist: ``persist(execution, step_run_or_None)``, called for every
            ``Persist`` event (copy what you keep: the execution keeps changing).

    Returns:
        The execution, succeeded, failed or paused.

    Raises:
        UnknownTool: A ``ToolCall`` names an action missing from ``tools``
            (call :func:`procmem.core.replay.check_tools` first to fail before anything runs).
        UsageError: ``resolver`` or ``persist`` returned an awaitable (use :func:`adrive`).
        Whatever the core raises.
    """
    reply: Any = None
    while True:
        try:
            event = core.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = None
        if isinstance(event, ToolCall):
            fn = _tool(tools, event.action)
            start = time.perf_counter()
            try:
                output = fn(**_kwargs(fn, event))
                if inspect.isawaitable(output):
                    _discard(output)
                    raise TypeError(f"tool {event.action!r} is async; replay it with adrive")
                reply = ToolResult(output, None, _ms_since(start))
            except Exception as err:  # a failed tool call is data
                reply = ToolResult(None, _error_text(err), _ms_since(start))
        elif isinstance(event, NeedValues):
            reply = {}
            for need in event.needs:
                value = _sync(resolver(need), "resolver") if resolver else None
                if value is not None:
                    reply[need.key] = value
        elif isinstance(event, Sleep):
            if event.seconds > 0:
                time.sleep(event.seconds)
        elif persist is not None:
            _sync(persist(event.execution, event.step_run), "persist")


async def adrive(
    core: Core,
    tools: Tools,
    resolver: Callable[[Need], Any | Awaitable[Any]] | None = None,
    persist: Callable[[Execution, StepRun | None], Any | Awaitable[Any]] | None = None,
) -> Execution:
    """Run a replay core on an event loop; the async twin of :func:`drive`.

    Coroutine tools, resolvers and persist callbacks are awaited; plain ones are
    called directly (on the loop thread). ``Sleep`` uses :func:`asyncio.sleep`.
    Args, returns and raises as :func:`drive` (no ``UsageError`` for awaitables).
    """
    reply: Any = None
    while True:
        try:
            event = core.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = None
        if isinstance(event, ToolCall):
            fn = _tool(tools, event.action)
            start = time.perf_counter()
            try:
                output = fn(**_kwargs(fn, event))
                if inspect.isawaitable(output):
                    output = await output
                reply = ToolResult(output, None, _ms_since(start))
            except Exception as err:  # a failed tool call is data
                reply = ToolResult(None, _error_text(err), _ms_since(start))
        elif isinstance(event, NeedValues):
            reply = {}
            for need in event.needs:
                value = await _maybe_await(resolver(need)) if resolver else None
                if value is not None:
                    reply[need.key] = value
        elif isinstance(event, Sleep):
            await asyncio.sleep(event.seconds)
        elif persist is not None:
            await _maybe_await(persist(event.execution, event.step_run))


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _discard(awaitable: Any) -> None:
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()  # avoid "coroutine was never awaited"


def _sync(value: Any, what: str) -> Any:
    if inspect.isawaitable(value):
        _discard(value)
        raise UsageError(f"{what} returned an awaitable; use the async driver (adrive)")
    return value


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value
