"""Status transitions of the store contract: compare-and-set, so a decision is made once.

Two processes that review the same procedure at the same moment both see candidate
v2 beating active v1; both would promote it, and both would report a promotion. A
decision is therefore written as a transition: *if* v2 is still ``candidate`` and v1
still ``active``, make v2 ``active`` and v1 ``deprecated``. Of two racing
transitions from the same statuses exactly one applies; the other changes nothing
and says so (``False``), and its caller reports no change.

Rules a backend must follow (tested by ``tests/storecontract/status.py`` and, across
processes, by ``tests/test_multihost.py``):
    * Every ``from`` status is checked before anything is written; on a mismatch
      nothing is written and the result is ``False``.
    * The check and the writes are one unit of work that no other transition on the
      same name can interleave with (SQLite: its write lock, taken when the
      transaction begins; PostgreSQL: row locks on the versions, ``SELECT ... FOR UPDATE``).
    * Each write is a :meth:`~procmem.store.base.ProcedureRecords.set_status` (re-index
      included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from ..core.errors import UsageError
from .common import check_status

if TYPE_CHECKING:
    from .base import Store

__all__ = ["SerializedTransitions", "StatusRecords", "Transition", "check_moves",
           "transition_serialized"]

Transition = tuple[int, str, str]
"""``(version, from_status, to_status)``."""


@runtime_checkable
class StatusRecords(Protocol):
    """Compare-and-set of several versions' statuses at once."""

    def transition_status(self, name: str, moves: Sequence[Transition]) -> bool:
        """Move each version of ``name`` from its ``from`` status to its ``to`` status,
        all or none: True if applied, False (nothing written) if any version's
        status was not its ``from`` status.

        Raises:
            UsageError: No moves, a version named twice, or an unknown status.
            NotFound: No such version.
        """
        ...


def check_moves(moves: Sequence[Transition]) -> None:
    """Raise ``UsageError`` unless ``moves`` is non-empty, names each version once
    and uses known statuses."""
    if not moves:
        raise UsageError("a status transition needs at least one move")
    versions = [v for v, _, _ in moves]
    if len(set(versions)) != len(versions):
        raise UsageError(f"a status transition names a version twice: {versions}")
    for _, old, new in moves:
        check_status(old)
        check_status(new)


def transition_serialized(store: Store, name: str, moves: Sequence[Transition]) -> bool:
    """:meth:`StatusRecords.transition_status` for a backend whose
    :meth:`~procmem.store.base.UnitOfWork.transaction` serializes writers (SQLite
    takes its write lock when the transaction begins): check, then write, inside one
    transaction."""
    check_moves(moves)
    with store.transaction():
        for version, old, _ in moves:
            if store.get_procedure(name, version).status != old:
                return False
        for version, _, new in moves:
            store.set_status(name, version, new)
    return True


class SerializedTransitions:
    """``transition_status`` by :func:`transition_serialized`: a mixin for backends
    whose transactions serialize writers (the SQLite store, the tests' dict store)."""

    def transition_status(self, name: str, moves: Sequence[Transition]) -> bool:
        """See :meth:`StatusRecords.transition_status`."""
        return transition_serialized(self, name, moves)  # type: ignore[arg-type]
