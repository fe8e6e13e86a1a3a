"""The small tools :class:`procmem.Memory` is composed with: shared settings, docs, locks.

``Memory`` holds services (search, learning, executions, tool schemas, ...), each
built with what it needs (a store, settings, other services) and usable alone.
This module gives the facade three helpers so that it can stay a thin layer:

* :class:`Setting`: an attribute of the facade kept on one or more services (the
  store, the promotion policy, the reranker ...). Reading it reads the first
  service's; setting it sets it on every one, so the services never disagree.
* :func:`docs_from`: a facade method takes the docstring of the service method it
  delegates to, so each docstring is written once, beside its body.
* :func:`synchronized`: runs a service method while holding the service's ``lock``.

Invariants: nothing here holds state of its own; a :class:`Setting` never stores
a value on the facade.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, cast, overload

__all__ = ["Guarded", "Setting", "docs_from", "synchronized"]

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


class Setting(Generic[T]):
    """A facade attribute that lives on services: ``store = Setting[Store]("traces", ...)``.

    Args:
        services: Names of the facade's attributes holding the services; the
            attribute has the same name on each (reads come from the first).
    """

    def __init__(self, *services: str) -> None:
        if not services:
            raise ValueError("a Setting needs at least one service")
        self.services = services
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Setting[T]: ...

    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> T | Setting[T]:
        if obj is None:
            return self
        return cast(T, getattr(getattr(obj, self.services[0]), self.name))

    def __set__(self, obj: object, value: T) -> None:
        for service in self.services:
            setattr(getattr(obj, service), self.name, value)


def docs_from(source: Callable[..., Any]) -> Callable[[F], F]:
    """Give the decorated facade method the docstring of ``source`` (the service method).

    Example::

        @docs_from(Searcher.search)
        def search(self, task: str, *, limit: int = 5) -> list[Hit]:
            return self.searcher.search(task, limit=limit)
    """
    def decorate(method: F) -> F:
        method.__doc__ = source.__doc__
        return method
    return decorate


class Guarded(Protocol):
    """A service with a ``lock`` (a :class:`threading.RLock` or another context manager)."""

    @property
    def lock(self) -> AbstractContextManager[Any]: ...


G = TypeVar("G", bound=Guarded)


def synchronized(method: Callable[Concatenate[G, P], R]) -> Callable[Concatenate[G, P], R]:
    """Run ``method`` while holding ``self.lock`` (re-entrant locks let such methods nest)."""
    @functools.wraps(method)
    def run(self: G, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.lock:
            return method(self, *args, **kwargs)
    return run
