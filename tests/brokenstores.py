"""Deliberately broken backends: each breaks one rule of the store contract.

They exist to show that the contract suite catches such a backend
(``tests/test_store_contract.py::test_the_contract_fails_a_broken_backend``). Each
is a :class:`~procmem.store.SQLiteStore` (in memory or in a file) with one method
made wrong the way a hand-written backend plausibly gets it wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from procmem.core.errors import UsageError
from procmem.core.model import Procedure
from procmem.store import SQLiteStore, TraceChanges


class CaseFoldedNames(SQLiteStore):
    """Lists procedures in case-insensitive name order (a locale-ish collation)."""

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        super().list_procedures(status=status, limit=0, offset=offset)  # argument checks
        every = super().list_procedures(status=status, limit=1_000_000)
        every.sort(key=lambda p: p.name.casefold())
        return every[offset:offset + limit]


class NoRollback(SQLiteStore):
    """Has a ``transaction`` that groups nothing: each write commits on its own."""

    @contextmanager
    def transaction(self) -> Iterator[SQLiteStore]:  # type: ignore[override]
        yield self


class OffsetFeed(SQLiteStore):
    """A change feed by position (``OFFSET``): it never notices a deleted trace."""

    def traces_since(self, token: str | None, *, limit: int = 1000) -> TraceChanges:
        if limit < 1:
            raise UsageError(f"limit must be >= 1 (got {limit})")
        start = int(token) if token and token.isdigit() else 0
        page = self.list_traces(limit=limit, offset=start)
        return TraceChanges(page, str(start + len(page)), token is None)


BROKEN = {CaseFoldedNames: ["test_names_are_listed_in_code_point_order"],
          NoRollback: ["test_an_exception_undoes_every_write_of_the_block",
                       "test_a_store_error_inside_undoes_the_block_too",
                       "test_nested_blocks_are_savepoints",
                       "test_the_store_works_after_a_rolled_back_transaction"],
          OffsetFeed: ["test_feed_starts_over_after_a_deletion_or_with_a_foreign_token"]}
"""Each broken backend and contract tests it must fail (it may fail others too: a
backend without transactions also breaks the all-or-nothing batch writes)."""
