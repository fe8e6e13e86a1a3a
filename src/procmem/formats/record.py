"""Recording traces from live tool calls, and redacting secrets from them.

Invariants:
    * :func:`redact` never mutates its input; it returns a deep copy in which
      secret values are replaced by ``"[REDACTED:kind]"`` (:mod:`procmem.security.redaction`).
      Text that holds no secret comes back unchanged, character for character.
    * A :class:`Recorder` builds exactly one :class:`~procmem.core.model.Trace` and
      passes it to ``on_finish`` exactly once, when its ``with`` block exits.
      With ``redact_secrets`` (the default) nothing unredacted reaches
      ``on_finish``: task, args, outputs, errors and metadata are redacted.
    * Recording never changes what a wrapped tool does: the wrapper returns the
      tool's value and re-raises the tool's exception unchanged. An exception
      raised by the ``with`` block propagates; it is never swallowed.
    * Recorded values are plain JSON (dicts, lists, strings, numbers, booleans,
      null); anything else is stored as ``str(value)``.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar, cast

from pydantic import ValidationError

from procmem.core.errors import UsageError
from procmem.core.model import Trace, TraceStep, utcnow
from procmem.formats.validation import validation_message
from procmem.security.redaction import SECRET_KEYS, Redactor, default_redactor

__all__ = ["DEFAULT_SECRET_KEYS", "REDACTED", "Recorder", "redact"]

REDACTED = "[REDACTED:keyed]"
"""The marker of a value redacted for its key name (other kinds: ``[REDACTED:jwt]`` ...)."""

DEFAULT_SECRET_KEYS: tuple[str, ...] = SECRET_KEYS


def redact(value: Any, *, keys: tuple[str, ...] = DEFAULT_SECRET_KEYS) -> Any:
    """Return a deep copy of ``value`` with secrets replaced by ``"[REDACTED:kind]"``.

    The rules are :class:`procmem.security.redaction.Redactor`'s (key names, token shapes,
    the ``detect-secrets`` plugins and entropy, free text such as "my password is
    …"), applied recursively through dicts, lists and tuples. Ordinary ids
    (``"#W6067464"``, ``"credit_card_4190576"``) and e-mail addresses are kept.
    :meth:`procmem.Memory.add_traces` applies the same step to every trace it
    stores, so this is only needed for values kept outside a memory.

    Args:
        value: Any value; typically a JSON-like structure or a string.
        keys: Key words that mark a dict value as secret.

    Returns:
        A redacted deep copy of ``value`` (same shape and types).
    """
    keys = tuple(keys)
    r = default_redactor() if keys == SECRET_KEYS else _keyed(keys)
    return r.redact(value)


@functools.lru_cache(maxsize=8)
def _keyed(keys: tuple[str, ...]) -> Redactor:
    return Redactor(keys=keys)


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON (a fresh copy), or ``str(value)`` if it is not JSON."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError):
        return str(value)


def _call_args(
    fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The arguments actually passed, by parameter name (no defaults filled in)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except (TypeError, ValueError):  # no signature, or a call that will fail anyway
        return {**({"_positional": list(args)} if args else {}), **kwargs}
    out: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        elif kind is inspect.Parameter.VAR_POSITIONAL:
            out[name] = list(value)
        else:
            out[name] = value
    return out


F = TypeVar("F", bound=Callable[..., Any])
Outcome = Literal["success", "failure", "unknown"]
_OUTCOMES = ("success", "failure", "unknown")


class Recorder:
    """Record one trace from the tool calls made inside a ``with`` block.

    Example::

        with Recorder("cancel order #W1", on_finish=mem.put_trace) as rec:
            tools = rec.wrap_tools({"cancel_pending_order": cancel_pending_order})
            tools["cancel_pending_order"](order_id="#W1", reason="no longer needed")

    Outcome: ``"failure"`` when the block raises (the exception propagates);
    otherwise the value set on ``rec.outcome``, or ``"success"`` when nothing was
    set and the block ended normally (even if some tool calls failed: the agent
    is assumed to have recovered; set ``rec.outcome`` to say otherwise).
    Wrappers and :meth:`add_step` work only while the block is open; outside it
    they raise :class:`~procmem.core.errors.UsageError`. Appends are thread-safe.

    Args:
        task: The task in plain words.
        on_finish: Called once with the finished trace (e.g. a store's put).
            Under ``async with`` it may return an awaitable, which is awaited.
            If it fails while the block itself raised, the block's exception
            propagates with a note saying the trace was not saved.
        source: Where the trace came from (free text), stored on the trace.
        metadata: Extra JSON data stored on the trace (copied; ``rec.metadata``).
        redact_secrets: Apply :func:`redact` to task, args, outputs, errors and
            metadata before the trace is built.
    """

    def __init__(
        self,
        task: str,
        *,
        on_finish: Callable[[Trace], Any],
        source: str | None = None,
        metadata: dict[str, Any] | None = None,
        redact_secrets: bool = True,
    ) -> None:
        if not isinstance(task, str):
            raise UsageError(f"task must be a string, got {type(task).__name__}")
        self.task, self.source, self.redact_secrets = task, source, redact_secrets
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._on_finish = on_finish
        self._steps: list[TraceStep] = []
        self._lock = threading.Lock()
        self._state: Literal["new", "open", "closed"] = "new"
        self._outcome: Outcome | None = None
        self._reward: float | None = None
        self._started_at = utcnow()
        self._trace: Trace | None = None

    @property
    def outcome(self) -> Outcome | None:
        """The outcome set so far (``None`` until set or finished); see the class docs."""
        return self._outcome

    @outcome.setter
    def outcome(self, value: Outcome) -> None:
        if value not in _OUTCOMES:
            raise UsageError(f"outcome must be one of {_OUTCOMES}, got {value!r}")
        self._outcome = value

    @property
    def reward(self) -> float | None:
        """Optional reward in [0, 1] stored on the trace; anything else raises UsageError."""
        return self._reward

    @reward.setter
    def reward(self, value: float | None) -> None:
        if value is not None and not (
            isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1
        ):
            raise UsageError(f"reward must be a number in [0, 1] or None, got {value!r}")
        self._reward = None if value is None else float(value)

    @property
    def trace(self) -> Trace | None:
        """The finished trace, or ``None`` until the block has exited."""
        return self._trace

    def _append(self, step: TraceStep | None) -> None:
        """Append ``step`` (``None``: only check that the block is open)."""
        with self._lock:
            if self._state != "open":
                raise UsageError(
                    f"recorder for task {self.task!r} is {self._state}: "
                    "tool calls are recorded only inside its `with` block"
                )
            if step is not None:
                self._steps.append(step)

    def add_step(
        self,
        action: str,
        args: dict[str, Any],
        output: Any = None,
        error: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        """Record a tool call made elsewhere (e.g. by an MCP client).

        Args:
            action: Tool name, non-empty.
            args: Keyword arguments of the call (non-JSON values become strings).
            output: What the tool returned.
            error: The error message if the call failed.
            duration_ms: Wall time in milliseconds, >= 0, if measured.

        Raises:
            UsageError: The block is not open, or a value is malformed.
        """
        self._append(None)
        if not isinstance(args, dict):
            raise UsageError(f"args must be a dict, got {type(args).__name__}")
        try:
            step = TraceStep(
                action=action,
                args={str(k): _jsonable(v) for k, v in args.items()},
                output=_jsonable(output),
                error=error,
                duration_ms=duration_ms,
            )
        except ValidationError as err:
            raise UsageError(validation_message(err, "bad step field")) from err
        self._append(step)

    def _record(self, action: str, args: dict[str, Any], start: float, out: Any, exc: Any) -> None:
        self._append(
            TraceStep(
                action=action,
                args={k: _jsonable(v) for k, v in args.items()},
                output=None if exc is not None else _jsonable(out),
                error=None if exc is None else f"{type(exc).__name__}: {exc}",
                duration_ms=max(0.0, (time.perf_counter() - start) * 1000),
            )
        )

    def wrap(self, fn: F, name: str | None = None) -> F:
        """Wrap a tool so that each call is recorded as a step.

        The wrapper has ``fn``'s signature and metadata (``functools.wraps``); a
        coroutine function gets an async wrapper. A call records the arguments
        actually passed (positional ones under their parameter names, ``**kwargs``
        flattened, defaults not filled in), the return value, ``duration_ms``,
        and for a raised ``Exception`` the error ``"TypeName: message"`` (the
        exception is re-raised unchanged).

        Args:
            fn: The tool function.
            name: Action name; defaults to ``fn.__name__``.

        Returns:
            The wrapper. Calling it outside the ``with`` block raises
            :class:`~procmem.core.errors.UsageError` without calling ``fn``.

        Raises:
            UsageError: ``fn`` is not callable.
        """
        action = name or getattr(fn, "__name__", None) or type(fn).__name__
        if not callable(fn):
            raise UsageError(f"cannot wrap {action!r}: not callable")
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                self._append(None)
                call, start = _call_args(fn, args, kwargs), time.perf_counter()
                try:
                    result = await cast(Callable[..., Awaitable[Any]], fn)(*args, **kwargs)
                except Exception as exc:
                    self._record(action, call, start, None, exc)
                    raise
                self._record(action, call, start, result, None)
                return result

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._append(None)
            call, start = _call_args(fn, args, kwargs), time.perf_counter()
            try:
                result = fn(*args, **kwargs)
            except Exception as exc:
                self._record(action, call, start, None, exc)
                raise
            self._record(action, call, start, result, None)
            return result

        return cast(F, wrapper)

    def wrap_tools(self, tools: Mapping[str, Callable[..., Any]]) -> dict[str, Callable[..., Any]]:
        """Wrap every tool of a ``name -> callable`` mapping; keys become action names.

        Raises:
            UsageError: A value is not callable.
        """
        return {name: self.wrap(fn, name=name) for name, fn in tools.items()}

    def __enter__(self) -> Recorder:
        with self._lock:
            if self._state != "new":
                raise UsageError("a Recorder can be entered only once")
            self._state, self._started_at = "open", utcnow()
        return self

    async def __aenter__(self) -> Recorder:
        return self.__enter__()

    def _finish(self, failed: bool) -> Trace:
        with self._lock:
            self._state, steps = "closed", list(self._steps)
        self._outcome = "failure" if failed else (self._outcome or "success")
        task, metadata = self.task, _jsonable(self.metadata)
        if self.redact_secrets:
            task, metadata = redact(task), redact(metadata)
            steps = [
                s.model_copy(
                    update={"args": redact(s.args), "output": redact(s.output)}
                    | ({"error": redact(s.error)} if s.error is not None else {})
                )
                for s in steps
            ]
        self._trace = Trace(
            task=task,
            steps=steps,
            outcome=self._outcome,
            reward=self._reward,
            source=self.source,
            metadata=metadata if isinstance(metadata, dict) else {"value": metadata},
            created_at=self._started_at,
        )
        return self._trace

    @staticmethod
    def _on_finish_failed(exc: BaseException | None, err: Exception) -> None:
        if exc is None:
            raise err
        exc.add_note(f"procmem: on_finish failed, the trace was not saved: {err!r}")

    def __exit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        try:
            result = self._on_finish(self._finish(failed=exc is not None))
            if inspect.isawaitable(result):
                if inspect.iscoroutine(result):
                    result.close()
                raise UsageError("on_finish returned an awaitable: use `async with Recorder(...)`")
        except Exception as err:
            self._on_finish_failed(exc, err)

    async def __aexit__(self, _type: object, exc: BaseException | None, _tb: object) -> None:
        try:
            result = self._on_finish(self._finish(failed=exc is not None))
            if inspect.isawaitable(result):
                await result
        except Exception as err:
            self._on_finish_failed(exc, err)
