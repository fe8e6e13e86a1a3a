"""The record protocol of procedure renames: :class:`AliasRecords`.

Kept apart from :mod:`procmem.store.base` (which lists it among ``Store``'s
bases) so that module stays small.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["AliasRecords"]


@runtime_checkable
class AliasRecords(Protocol):
    """Renamed procedures: every record moves to the new name, the old one stays an alias.

    Rules (checked by ``AliasContract`` in the contract suite):
        * ``rename_procedure`` is one atomic write: versions (their ``name`` field
          too), executions (their ``procedure`` field), run statistics, the pin,
          verifications, notes and the search document all move, or nothing does.
          Version numbers, lineage, statuses and evidence are kept as they are.
        * The search index logs both names (the old document leaves, the new one
          arrives) and ``index_revision`` grows.
        * Aliases never chain: renaming ``b`` (an alias target) to ``c`` makes every
          alias of ``b`` point at ``c``; renaming back to an old name drops that alias.
    """

    def rename_procedure(self, old: str, new: str) -> int:
        """Move every record of procedure ``old`` to ``new``; returns how many versions moved.

        Raises:
            UsageError: ``old == new``.
            NotFound: ``old`` has no version.
            Conflict: ``new`` has a version already.
        """
        ...

    def resolve_alias(self, name: str) -> str | None:
        """The name procedure ``name`` was renamed to, or ``None`` if it is no alias."""
        ...
