"""Async twins of :class:`procmem.Memory` methods, for async agent frameworks.

``areplay``, ``aresume`` and ``areplay_plan`` drive the replay core with the async
driver (tools and resolvers may be coroutines); they are written in
:mod:`procmem.services.replay` and :mod:`procmem.services.plans`. Every other public
method ``m`` has a twin ``am`` made by :func:`twin`: it runs ``m`` in a worker
thread (:func:`asyncio.to_thread`), so the event loop never blocks on the store
or on learning.

Invariants:
    * Every public method of ``Memory`` has a twin whose parameters (names,
      kinds, defaults) equal its own (``tests/test_memory_async.py`` checks it).
    * A twin returns exactly what its sync method returns for the same arguments.
    * Twins hold no lock of their own: ``Memory`` is safe to share between threads
      (each service guards its own state), so concurrent twins are safe.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, ParamSpec, TypeVar

__all__ = ["twin"]

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")


def twin(method: Callable[Concatenate[S, P], R]
         ) -> Callable[Concatenate[S, P], Coroutine[Any, Any, R]]:
    """The async twin of ``method``: same parameters, runs it in a worker thread.

    The twin looks the method up on the instance at call time, so a subclass's
    override (or a test's patch) is the one that runs.

    Example (in a class body)::

        asearch = twin(search)
    """
    name = method.__name__

    @functools.wraps(method)
    async def run(self: S, /, *args: P.args, **kwargs: P.kwargs) -> R:
        fn: Callable[P, R] = getattr(self, name)
        return await asyncio.to_thread(fn, *args, **kwargs)

    run.__name__ = f"a{name}"
    run.__qualname__ = f"{method.__qualname__.rpartition('.')[0]}.a{name}".lstrip(".")
    run.__doc__ = f"Async twin of :meth:`{name}` (runs it in a worker thread)."
    return run
