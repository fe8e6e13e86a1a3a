"""Storage backends behind one protocol (:class:`procmem.store.base.Store`, the union
of small record protocols: traces, procedures, executions, leases, search index,
embeddings, tool schemas, keys, and the unit of work).

Invariants:
    * :func:`open_store` is the only place that maps a location (path or URL) to
      a backend; everything above the store sees only the ``Store`` protocol.
    * A missing optional backend raises ``MissingExtra`` naming the install command.
    * Embedded locations (a file path or ``":memory:"``) are opened by the module
      attribute ``_open_embedded`` (``SQLiteStore``). The test suite replaces it
      (``pytest --store-backend module:factory``, see ``tests/conftest.py``) to run
      every test, ``Memory`` level included, against another backend.
    * Tenants are kept apart by storage, not by a filter: the ``default`` tenant
      is the location itself (existing data, the embedded library); tenant ``t``
      of a SQLite file ``PATH`` is the file ``PATH.tenants/t.db``
      (:func:`tenant_location`), of ``":memory:"`` a fresh in-memory database;
      on PostgreSQL, tenant ``t`` is the schema ``procmem_t_t`` of the URL's
      database (the default tenant: schema ``procmem``).
      A store holds one tenant's data, so every read, write, search, execution
      and export through it stays inside that tenant whatever the query.
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.errors import MissingExtra, StoreUnavailable, UsageError
from ..security.keys import DEFAULT_TENANT, check_tenant
from .base import (
    RECORD_PROTOCOLS,
    AliasRecords,
    EmbeddingRecords,
    ExecutionRecords,
    JobRecords,
    KeyRecords,
    LeaseRecords,
    ListingRecords,
    ProcedureRecords,
    SearchIndexRecords,
    StatsRecords,
    StatusRecords,
    Store,
    ToolSchemaRecords,
    TraceChanges,
    TraceRecords,
    UnitOfWork,
    index_text,
    protocol_methods,
)
from .migrate import Migration, pending_sqlite_migrations
from .sqlite import SQLiteStore

if TYPE_CHECKING:
    from ..security.redaction import Redactor
    from .scrub import ScrubReport

__all__ = ["RECORD_PROTOCOLS", "AliasRecords", "EmbeddingRecords", "ExecutionRecords", "JobRecords",
           "KeyRecords", "LeaseRecords", "ListingRecords", "ProcedureRecords", "SQLiteStore",
           "SearchIndexRecords", "StatsRecords", "StatusRecords", "Store", "ToolSchemaRecords",
           "TraceChanges", "TraceRecords", "UnitOfWork", "embedded_path", "index_text",
           "open_store", "pending_migrations", "protocol_methods", "scrub_store", "tenant_location"]

_open_embedded: Callable[[str], Store] = SQLiteStore
"""Opens an embedded location (a path or ``":memory:"``); tests may swap the backend."""

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_KNOWN_SCHEME = re.compile(r"^(sqlite|postgres|postgresql):(?!//)", re.IGNORECASE)


def tenant_location(path: str, tenant: str) -> str:
    """The SQLite file of ``tenant`` for the memory file ``path``.

    Args:
        path: A SQLite file path, or ``":memory:"``.
        tenant: A tenant name (:data:`procmem.security.keys.TENANT_PATTERN`).

    Returns:
        ``path`` for the default tenant and for ``":memory:"``, else
        ``PATH.tenants/TENANT.db`` (its folder is created when missing).

    Raises:
        UsageError: ``tenant`` is not a valid tenant name.
    """
    check_tenant(tenant)
    if tenant == DEFAULT_TENANT or path == ":memory:":
        return path
    folder = f"{path}.tenants"
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{tenant}.db")


def open_store(location: str | os.PathLike[str], *, tenant: str = DEFAULT_TENANT) -> Store:
    """Open the store of one tenant at a path or URL.

    Args:
        location: A file path (``"memory.db"``), ``":memory:"``, a SQLite URL
            (``"sqlite:///memory.db"`` is relative, ``"sqlite:////var/m.db"``
            absolute, ``"sqlite://"`` in memory), or a PostgreSQL URL
            (``"postgresql://user@host/db"`` or ``postgres://``; see
            :mod:`procmem.store.postgres`).
        tenant: Whose data to open (see :func:`tenant_location`); ``"default"``
            is the location itself. On PostgreSQL each tenant is a schema of
            the URL's database (``procmem`` for the default one, ``procmem_t_<tenant>``
            for the others), created on first open.

    Returns:
        A store implementing :class:`Store`.

    Raises:
        MissingExtra: A PostgreSQL URL without ``procmem[postgres]`` installed.
        UsageError: Any other URL scheme, a malformed SQLite URL, or a bad tenant name.
        StoreUnavailable: The database cannot be opened.
    """
    text = os.fsdecode(location)
    match = _SCHEME.match(text)
    if match is not None and match[1].lower() in ("postgresql", "postgres"):
        return _open_postgres(text, tenant)
    return _open_embedded(tenant_location(embedded_path(text), tenant))


def _open_postgres(url: str, tenant: str) -> Store:
    """A :class:`~procmem.store.postgres.PostgresStore` of ``tenant`` (its own schema)."""
    try:
        from .postgres import PostgresStore
    except ImportError as err:  # psycopg, psycopg_pool or pgvector missing
        raise MissingExtra("PostgreSQL storage", "postgres") from err
    return PostgresStore(url, tenant=tenant)


def scrub_store(store: Store, redactor: Redactor, *, dry_run: bool = False) -> ScrubReport:
    """Redact every stored record of ``store`` in place (``procmem redact``); the
    backend's own maintenance (:func:`procmem.store.scrub.scrub_sqlite` for SQLite,
    :func:`procmem.store.postgres.scrub.scrub_postgres` for PostgreSQL).

    Raises:
        UsageError: The backend has no scrub.
        StoreError: The backend failed (nothing is changed then).
    """
    from .scrub import scrub_sqlite

    if not isinstance(store, SQLiteStore) and "procmem.store.postgres" in sys.modules:
        from .postgres import PostgresStore  # imported already: a PostgresStore may exist
        from .postgres.scrub import scrub_postgres

        if isinstance(store, PostgresStore):
            return scrub_postgres(store, redactor, dry_run=dry_run)
    return scrub_sqlite(store, redactor, dry_run=dry_run)


def pending_migrations(location: str | os.PathLike[str], *,
                       tenant: str = DEFAULT_TENANT) -> list[Migration]:
    """The schema migrations the store at ``location`` lacks, read without applying them
    (``procmem migrate`` shows them; opening the store applies them).

    Args:
        location: As :func:`open_store` takes it.
        tenant: Whose store (a SQLite tenant file, a PostgreSQL tenant schema).

    Returns:
        By ascending version; all of them for a store that does not exist yet.

    Raises:
        UsageError: A malformed or unsupported location.
        MissingExtra: A PostgreSQL URL without the ``postgres`` extra.
        StoreUnavailable: The store cannot be read.
    """
    text = os.fsdecode(location)
    scheme = _SCHEME.match(text)
    if scheme is not None and scheme[1].lower() in ("postgresql", "postgres"):
        try:
            from .postgres import pending_migrations as pending_pg
        except ImportError as err:  # psycopg, psycopg_pool or pgvector missing
            raise MissingExtra("PostgreSQL storage", "postgres") from err
        return pending_pg(text, tenant=tenant)
    check_tenant(tenant)
    path = embedded_path(text)
    if path != ":memory:" and tenant != DEFAULT_TENANT:  # tenant_location, without creating
        path = os.path.join(f"{path}.tenants", f"{tenant}.db")
    try:
        return pending_sqlite_migrations(path)
    except sqlite3.Error as err:
        raise StoreUnavailable(path, str(err)) from err


def embedded_path(text: str) -> str:
    """The SQLite file (or ``":memory:"``) of a path or ``sqlite:`` URL, as
    :func:`open_store` reads it (before the tenant's file is chosen).

    Raises:
        UsageError: A malformed SQLite URL, or another scheme.
    """
    match = _SCHEME.match(text)
    if match is None:
        if _KNOWN_SCHEME.match(text):
            raise UsageError(f"malformed store URL {text!r}: expected scheme://...")
        return text
    if match[1].lower() != "sqlite":
        raise UsageError(f"unsupported store location {text!r}: use a file path, "
                         "sqlite:///path or postgresql://")
    rest = text[match.end():]
    if rest in ("", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/") or rest == "/":
        raise UsageError(f"SQLite URL must look like sqlite:///path (got {text!r})")
    return rest[1:]
