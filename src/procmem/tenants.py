"""The memories of a server's tenants, opened on demand.

A server holds one :class:`~procmem.Memory` per tenant that has sent a request:
the ``default`` tenant is the memory it was given (the main file); tenant ``t``
is ``root.for_tenant(t)`` (its own store, :func:`procmem.store.tenant_location`).

Invariants:
    * Isolation is the store's: a tenant's memory can only reach its own store,
      so an adapter that picks the memory by the request's key cannot mix tenants.
    * :meth:`TenantMemories.current` fails closed: outside a request (no
      principal) it raises ``Unauthorized`` instead of falling back to a tenant.
    * Keys are read through their own connection to the main file, so checking a
      key never waits behind a long write on the default tenant's memory.
"""

from __future__ import annotations

import threading
from typing import Any

from .core.errors import Unauthorized
from .memory import Memory
from .security.http_guard import current_principal
from .security.keys import DEFAULT_TENANT, KeyRing, check_tenant
from .store import open_store
from .store.base import Store

__all__ = ["TenantMemories", "TenantMemoryProxy"]


class TenantMemories:
    """One memory per tenant over a root memory (see the module docs).

    Args:
        root: The default tenant's memory (the caller keeps owning it).
    """

    def __init__(self, root: Memory) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._open: dict[str, Memory] = {DEFAULT_TENANT: root}
        self._key_store: Store | None = None

    def get(self, tenant: str) -> Memory:
        """The memory of ``tenant``, opened on first use.

        Raises:
            UsageError: ``tenant`` is not a valid tenant name.
            StoreUnavailable: Its store cannot be opened.
        """
        with self._lock:
            mem = self._open.get(tenant)
            if mem is None:
                mem = self._open[check_tenant(tenant)] = self.root.for_tenant(tenant)
            return mem

    def current(self) -> Memory:
        """The memory of the request being served (:data:`security.http_guard.current_principal`).

        Raises:
            Unauthorized: No request principal is set.
        """
        principal = current_principal.get()
        if principal is None:
            raise Unauthorized("no authenticated request")
        return self.get(principal.tenant)

    def keyring(self) -> KeyRing:
        """The keys of every tenant, read through a connection of their own."""
        with self._lock:
            if self._key_store is None:
                location = self.root.location
                self._key_store = (self.root.store if location == ":memory:"
                                   else open_store(location))
            return KeyRing(self._key_store)

    def close(self) -> None:
        """Close the tenants' memories and the key connection (never the root)."""
        with self._lock:
            for tenant, mem in self._open.items():
                if tenant != DEFAULT_TENANT:
                    mem.close()
            self._open = {DEFAULT_TENANT: self.root}
            if self._key_store is not None and self._key_store is not self.root.store:
                self._key_store.close()
            self._key_store = None


class TenantMemoryProxy:
    """Stands for "the memory of the request's tenant": every attribute is looked
    up on :meth:`TenantMemories.current` at the moment it is used."""

    def __init__(self, memories: TenantMemories) -> None:
        self._memories = memories

    def __getattr__(self, name: str) -> Any:
        return getattr(self._memories.current(), name)
