"""API keys of procmem's HTTP servers: tenants, scopes, hashed secrets.

A key is the text ``pmk_<id>_<secret>``: ``id`` is 12 hex digits (public, shown
by ``procmem keys list``), ``secret`` 43 URL-safe characters from
:func:`secrets.token_urlsafe` (256 random bits). Each key is bound to one
tenant and a set of scopes:

========  ==================================================================
scope     allows
========  ==================================================================
``read``  list, get, search, plan, stats, export
``write`` add traces, learn, optimize, put procedures, record, report evidence
``run``   start executions and continue (resume) them
``admin`` create, list and revoke the keys of its own tenant
========  ==================================================================

Invariants:
    * The secret is never stored: the store keeps ``sha256("procmem-api-key\\0"
      id "\\0" secret)`` (hex). A 256-bit random secret cannot be guessed or
      found from its hash (SHA-256 preimage resistance), so a slow password KDF
      (scrypt, argon2) would add nothing but latency on every request: those
      exist to slow down guessing of low-entropy passwords, and there is nothing
      to guess here. Comparison is constant time (:func:`hmac.compare_digest`).
    * :meth:`KeyRing.verify` answers the same ``Unauthorized`` for a malformed,
      unknown, wrong or revoked key (the message says which, the status does not).
    * A revoked key stays revoked (``revoked_at`` is never cleared).
    * Tenant names match :data:`TENANT_PATTERN`: they become file names
      (:func:`procmem.store.tenant_location`), so they can never hold a path.

Nothing here reads the environment or prints; the CLI and servers do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from ..core.errors import Forbidden, NotFound, Unauthorized, UsageError
from ..core.model import utcnow

if TYPE_CHECKING:
    from ..store.base import Store

__all__ = ["DEFAULT_TENANT", "SCOPES", "TENANT_PATTERN", "ApiKey", "KeyRing", "Principal",
           "check_scopes", "check_tenant", "hash_secret"]

SCOPES = ("read", "write", "run", "admin")
"""Every scope a key can carry."""

DEFAULT_TENANT = "default"
"""The tenant of the memory's main file: existing data and the embedded library."""

TENANT_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_TENANT = re.compile(TENANT_PATTERN)
_KEY = re.compile(r"^pmk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


def check_tenant(tenant: str) -> str:
    """Return ``tenant`` if it is a valid tenant name, else raise ``UsageError``.

    Valid: 1-63 characters of lowercase letters, digits, ``_`` and ``-``,
    starting with a letter or digit (it becomes a file name).
    """
    if not isinstance(tenant, str) or not _TENANT.match(tenant):
        raise UsageError(f"tenant must match {TENANT_PATTERN} (got {tenant!r})")
    return tenant


def check_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """The scopes as a sorted, de-duplicated tuple in :data:`SCOPES` order.

    Raises:
        UsageError: A scope is unknown, or there is none.
    """
    wanted = set(scopes)
    unknown = sorted(wanted - set(SCOPES))
    if unknown or not wanted:
        raise UsageError(f"scopes must be some of {', '.join(SCOPES)} (got {sorted(wanted)})")
    return tuple(s for s in SCOPES if s in wanted)


def hash_secret(key_id: str, secret: str) -> str:
    """The stored form of a key's secret: hex SHA-256 over the id and the secret."""
    return hashlib.sha256(f"procmem-api-key\0{key_id}\0{secret}".encode()).hexdigest()


class ApiKey(BaseModel):
    """A stored API key (never its secret)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[0-9a-f]{12}$", description="Public key id.")
    tenant: str = Field(pattern=TENANT_PATTERN)
    scopes: tuple[str, ...]
    secret_hash: str = Field(pattern=r"^[0-9a-f]{64}$", exclude=True)
    name: str = ""
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class Principal(BaseModel):
    """Who a request acts as: a key's id, tenant and scopes (``key_id`` None: no auth)."""

    model_config = ConfigDict(frozen=True)

    key_id: str | None
    tenant: str
    scopes: tuple[str, ...]

    def require(self, scope: str) -> None:
        """Raise ``Forbidden`` unless this principal carries ``scope``."""
        if scope not in self.scopes:
            raise Forbidden(scope, self.scopes)


class KeyRing:
    """Create, verify, list and revoke API keys kept in one store.

    Args:
        store: The store of the memory's main file (keys of every tenant live there).
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, *, tenant: str = DEFAULT_TENANT,
               scopes: Iterable[str] = ("read", "write", "run"),
               name: str = "") -> tuple[ApiKey, str]:
        """Make a new key and store its hash.

        Returns:
            ``(record, key text)``; the key text is shown once and cannot be read back.

        Raises:
            UsageError: Bad tenant or scopes, or a name over 200 characters.
        """
        if len(name) > 200:
            raise UsageError("a key name is at most 200 characters")
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        record = ApiKey(id=key_id, tenant=check_tenant(tenant), scopes=check_scopes(scopes),
                        secret_hash=hash_secret(key_id, secret), name=name)
        self.store.put_api_key(record)
        return record, f"pmk_{key_id}_{secret}"

    def verify(self, key: str) -> Principal:
        """The principal of a presented key.

        Raises:
            Unauthorized: The key is malformed, unknown, wrong or revoked.
        """
        match = _KEY.match(key.strip()) if isinstance(key, str) else None
        if match is None:
            raise Unauthorized("malformed API key")
        record = self.store.find_api_key(match[1])
        if record is None or not hmac.compare_digest(record.secret_hash,
                                                     hash_secret(match[1], match[2])):
            raise Unauthorized("unknown API key")
        if record.revoked:
            raise Unauthorized("revoked API key")
        return Principal(key_id=record.id, tenant=record.tenant, scopes=record.scopes)

    def list(self, tenant: str | None = None) -> list[ApiKey]:
        """Keys (revoked ones too), oldest first; only ``tenant``'s when given."""
        return self.store.list_api_keys(tenant)

    def revoke(self, key_id: str, *, tenant: str | None = None) -> ApiKey:
        """Revoke a key (idempotent) and return its record.

        Args:
            key_id: The key's public id.
            tenant: Only a key of this tenant (an admin key manages its own tenant).

        Raises:
            NotFound: No such key (in ``tenant``).
        """
        record = self.store.find_api_key(key_id)
        if record is None or (tenant is not None and record.tenant != tenant):
            raise NotFound("API key", key_id)
        if not record.revoked:
            self.store.revoke_api_key(key_id)
            record = self.store.find_api_key(key_id) or record
        return record
