"""Paging: reading a ``limit``/``offset`` listing (or a cursor listing) page by page.

Every listing of the store and of :class:`procmem.Memory` takes ``limit`` and
``offset``; a caller that wants everything reads pages until a short one. That
loop is written once, here (:func:`read_all`), as is its cursor twin for MCP
listings (:func:`aread_all_cursor`). :class:`Page` is one page with the offset
to ask for next; :func:`procmem.formats.serialize.page_record` is its JSON.

Invariants: a page shorter than the ``limit`` asked for is the last one; the
listing's order must be stable across calls (the store's name and ``seq``
orders are), otherwise reading by offset can skip or repeat items.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["PAGE", "Page", "aread_all_cursor", "read_all", "read_page"]

T = TypeVar("T")

PAGE = 1000
"""Rows read per page by :func:`read_all`."""


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a listing.

    Attributes:
        items: The items, in the listing's order.
        next_offset: The offset of the next page, ``None`` when this is the last.
    """

    items: Sequence[T]
    next_offset: int | None


def read_page(fetch: Callable[[int, int], Sequence[T]], *, limit: int, offset: int = 0
              ) -> Page[T]:
    """One page of ``fetch(limit, offset)``.

    One more item than ``limit`` is asked for, so that a full last page is known
    to be the last (``next_offset`` is ``None``) without another call.

    Args:
        fetch: The listing, called as ``fetch(limit, offset)``.
        limit: Items per page, at least 1.
        offset: Items to skip, at least 0.

    Raises:
        ValueError: ``limit`` < 1 or ``offset`` < 0.
    """
    if limit < 1 or offset < 0:
        raise ValueError(f"a page needs limit >= 1 and offset >= 0, got {limit}, {offset}")
    got = list(fetch(limit + 1, offset))
    more = len(got) > limit
    return Page(items=got[:limit], next_offset=offset + limit if more else None)


def read_all(fetch: Callable[[int, int], Sequence[T]], *, page: int = PAGE) -> list[T]:
    """Everything ``fetch(limit, offset)`` returns, read ``page`` rows at a time.

    Args:
        fetch: The listing, called as ``fetch(limit, offset)``.
        page: Rows per call, at least 1.
    """
    out: list[T] = []
    while True:
        got = fetch(page, len(out))
        out.extend(got)
        if len(got) < page:
            return out


async def aread_all_cursor(fetch: Callable[[str | None], Awaitable[tuple[Sequence[T], str | None]]]
                           ) -> list[T]:
    """Everything a cursor listing returns (MCP's ``tools/list`` and the like).

    Args:
        fetch: Called with ``None`` first, then with each next cursor; returns the
            page's items and the next cursor (``None`` or ``""`` on the last page).
    """
    out: list[T] = []
    cursor: str | None = None
    while True:
        items, cursor = await fetch(cursor)
        out.extend(items)
        if not cursor:
            return out
