"""The store contract suite: behaviour every backend of :class:`procmem.store.Store` must show.

One class per record protocol of :mod:`procmem.store.base`; :class:`StoreContract`
unites them. A backend's test module subclasses it (``class TestMine(StoreContract)``)
and provides a ``store`` fixture; ``tests/test_store_contract.py`` runs it against
the backend chosen by ``--store-backend`` / ``PROCMEM_TEST_STORE`` (SQLite by
default) and checks that every protocol method has a contract test.
"""

from __future__ import annotations

from test_store_stats import StatsContract  # the stats lane's contract

from .aliases import AliasContract
from .helpers import lease_of
from .jobs import JobContract
from .listing import ListingContract
from .more import (
    EmbeddingContract,
    ExecutionContract,
    KeyContract,
    LeaseContract,
    SearchIndexContract,
    ToolSchemaContract,
)
from .records import ProcedureContract, TraceContract
from .status import StatusContract
from .unit import UnitOfWorkContract

__all__ = ["CONTRACTS", "StoreContract", "lease_of"]


class StoreContract(UnitOfWorkContract, TraceContract, ProcedureContract, ExecutionContract,
                    LeaseContract, SearchIndexContract, EmbeddingContract, ToolSchemaContract,
                    KeyContract, StatsContract, AliasContract, JobContract,
                    StatusContract, ListingContract):
    """Every contract test; subclasses provide a ``store`` fixture (a fresh, empty store)."""


CONTRACTS: tuple[type, ...] = StoreContract.__mro__[1:-1]
"""The per-protocol contract classes."""
