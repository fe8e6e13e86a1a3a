"""Async twins of :class:`procmem.Memory` methods, for async agent frameworks.

``areplay`` / ``aresume`` drive the replay core with the async driver (tools and
resolvers may be coroutines). The other twins (``asearch``, ``alearn`` ...) run
the sync method in a worker thread (:func:`asyncio.to_thread`), so the event
loop never blocks on SQLite or on learning.

Invariants: a twin returns exactly what its sync method returns for the same
arguments (``tests/test_memory_async.py`` checks parity); calls through the
twins of one Memory run one at a time (an ``asyncio.Lock``), so its caches are
never updated by two threads at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from .learning.changes import ReportResult
from .model import Execution, Hit, Procedure, Trace
from .planning import Plan

if TYPE_CHECKING:
    from .multiplan import TaskPlan

__all__ = ["AsyncMixin"]

T = TypeVar("T")


class AsyncMixin:
    """``a``-prefixed twins of :class:`procmem.Memory` methods."""

    _alock: asyncio.Lock | None = None

    async def _in_thread(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        if self._alock is None:
            self._alock = asyncio.Lock()
        async with self._alock:
            return await asyncio.to_thread(fn, *args, **kwargs)

    async def asearch(self, task: str, *, limit: int = 5) -> list[Hit]:
        """Async twin of :meth:`procmem.Memory.search`."""
        return await self._in_thread(self.search, task, limit=limit)  # type: ignore[attr-defined]

    async def aplan(self, task: str, *, procedure: Procedure | Hit | str | None = None,
                    version: int | None = None,
                    params: Mapping[str, Any] | None = None) -> Plan:
        """Async twin of :meth:`procmem.Memory.plan`."""
        return await self._in_thread(self.plan, task,  # type: ignore[attr-defined]
                                     procedure=procedure, version=version, params=params)

    async def aplan_task(self, task: str) -> TaskPlan:
        """Async twin of :meth:`procmem.Memory.plan_task`."""
        return await self._in_thread(self.plan_task, task)  # type: ignore[attr-defined]

    async def alearn(self, traces: Iterable[Trace] | None = None) -> Any:
        """Async twin of :meth:`procmem.Memory.learn`."""
        items = list(traces) if traces is not None else None
        return await self._in_thread(self.learn, items)  # type: ignore[attr-defined]

    async def aadd_traces(self, traces: Iterable[Trace]) -> int:
        """Async twin of :meth:`procmem.Memory.add_traces`."""
        return await self._in_thread(self.add_traces, list(traces))  # type: ignore[attr-defined]

    async def aget_procedure(self, name: str, version: int | None = None) -> Procedure:
        """Async twin of :meth:`procmem.Memory.get_procedure`."""
        return await self._in_thread(self.get_procedure, name, version)  # type: ignore[attr-defined]

    async def areport(self, execution_id: str, *, reward: float, source: str = "user",
                      note: str = "") -> ReportResult:
        """Async twin of :meth:`procmem.Memory.report`."""
        return await self._in_thread(self.report, execution_id,  # type: ignore[attr-defined]
                                     reward=reward, source=source, note=note)

    async def aoptimize(self, name: str | None = None) -> Any:
        """Async twin of :meth:`procmem.Memory.optimize`."""
        return await self._in_thread(self.optimize, name)  # type: ignore[attr-defined]

    async def astart(self, procedure: Procedure | str, *, task: str | None = None,
                     params: Mapping[str, Any] | None = None) -> Any:
        """Async twin of :meth:`procmem.Memory.start`."""
        return await self._in_thread(self.start, procedure,  # type: ignore[attr-defined]
                                     task=task, params=params)

    async def aadvance(self, execution_id: str, **kwargs: Any) -> Any:
        """Async twin of :meth:`procmem.Memory.advance` (same keyword arguments)."""
        return await self._in_thread(self.advance, execution_id, **kwargs)  # type: ignore[attr-defined]

    async def aget_execution(self, execution_id: str) -> Execution:
        """Async twin of :meth:`procmem.Memory.get_execution`."""
        return await self._in_thread(self.get_execution, execution_id)  # type: ignore[attr-defined]
