"""The record protocol that lets a whole store be read out and written back:
:class:`ListingRecords`.

Every other record kind can be enumerated through its own protocol (traces,
procedure names and versions, executions, evidence, notes, tool schemas, API keys
of every tenant); these are the listings the others lack, for records they reach
only by key, and the one write they lack. :func:`procmem.store.copy.copy_store`
(``procmem copy``) is built on them. Kept apart from :mod:`procmem.store.base`
(which lists it among ``Store``'s bases) so that module stays small.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["ListingRecords"]


@runtime_checkable
class ListingRecords(Protocol):
    """Listings of aliases, embedding hashes, calibration keys and procedure names, and
    the alias write.

    Rules (checked by ``ListingContract`` in the contract suite):
        * Each listing is sorted by code-point order (Python's ``sorted``), like
          every "by name" result, and reflects every committed write.
        * ``put_alias`` stores an alias as it is and moves no record; it keeps
          :class:`~procmem.store.aliases.AliasRecords`' rule that aliases never
          chain, so it refuses an alias whose target is an alias or whose old
          name is the target of one. Renames go through ``rename_procedure``.
    """

    def list_aliases(self) -> dict[str, str]:
        """Every alias as ``{old name: name it was renamed to}``, by old name."""
        ...

    def put_alias(self, old: str, new: str) -> None:
        """Store (replace) the alias ``old`` -> ``new`` as it is, moving no record.

        Raises:
            UsageError: An empty name, ``old == new``, or the alias would chain
                (``new`` is an alias itself, or an alias points at ``old``).
        """
        ...

    def list_embedding_hashes(self, model_id: str) -> list[str]:
        """The text hashes of ``model_id``'s stored vectors, sorted (``[]`` for an
        unknown model); read the vectors with ``get_embeddings``."""
        ...

    def list_calibration_keys(self) -> list[str]:
        """The keys of every saved calibration, sorted; read one with ``get_calibration``."""
        ...

    def list_procedure_names(self) -> list[str]:
        """Every name with a stored version (any status), sorted: what
        ``list_procedures(status=None)`` pages through, read as names alone in
        one query (a whole-store copy reads it instead of every procedure)."""
        ...
