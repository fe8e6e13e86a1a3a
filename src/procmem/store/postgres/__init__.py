"""The PostgreSQL backend of :class:`procmem.store.base.Store` (extra ``procmem[postgres]``).

``open_store("postgresql://user@host/db")`` (or ``postgres://``) opens a
:class:`PostgresStore`: psycopg 3 with a ``psycopg_pool`` connection pool, and
pgvector for embeddings. One module per record protocol, as for SQLite:
:mod:`.traces` (traces and the change feed), :mod:`.procedures` (versions,
pins, verifications, renames), :mod:`.executions` (executions, evidence,
leases, statistics), :mod:`.search` (keyword documents, index log, snapshots,
calibrations, embeddings), :mod:`.tools` (tool schemas, notes, API keys);
:mod:`.base` holds the pool and the unit of work, :mod:`.migrate` the schema.

Tenants: one schema per tenant in the URL's database. The default tenant's
schema is ``procmem``; tenant ``t``'s is ``procmem_t_t`` (created, with its
tables, on first open). Every connection of a store has ``search_path`` set to
its schema (then the ``vector`` extension's), so no query reaches another
tenant's rows. API keys live in each store's schema, as on SQLite (the servers
read them from the default tenant's store).

Rules beyond SQLite's (see each module): the write transactions of one store
are serialized by a transaction-level advisory lock, as SQLite's write lock
serializes them (:mod:`.base`), so read-modify-write sequences above the store
stay correct across processes and hosts and trace ``seq`` order is commit order
(:mod:`.traces`); leases are one conditional ``UPDATE``
(:mod:`.executions`); migrations run under a session-level advisory lock
(:mod:`.migrate`); each embedding model has its own partial HNSW index
(:mod:`.search`), searched by :meth:`PostgresStore.nearest_embeddings`.
"""

from __future__ import annotations

import os

import psycopg

from ...core.errors import StoreUnavailable
from ...security.keys import DEFAULT_TENANT
from ..migrate import Migration
from ..status import SerializedTransitions
from .base import DEFAULT_SCHEMA, PostgresBase, schema_for
from .executions import ExecutionsPG
from .migrate import apply_pg_migrations, load_pg_migrations, pending_pg_migrations
from .procedures import ProceduresPG
from .records import JobsPG, ListingPG
from .search import SearchPG
from .tools import ToolsPG
from .traces import TracesPG

__all__ = ["DEFAULT_SCHEMA", "PostgresStore", "apply_pg_migrations", "load_pg_migrations",
           "pending_migrations", "schema_for"]


class PostgresStore(PostgresBase, TracesPG, ProceduresPG, ExecutionsPG, SearchPG, ToolsPG,
                    JobsPG, ListingPG, SerializedTransitions):
    """The PostgreSQL store: ``PostgresStore("postgresql://user@host/db", tenant="acme")``.

    A context manager; thread-safe (a connection pool; a transaction belongs
    to the thread that opened it). See :class:`PostgresBase` for the arguments.

    Methods beyond the protocol: :meth:`nearest_embeddings` (HNSW search),
    ``put_tool_schema``, ``list_tool_schema_history``, ``find_lease``,
    ``trace_deletions``, :meth:`pending`.
    """

    def pending(self) -> list[Migration]:
        """The shipped migrations this store's schema lacks (empty once it is open)."""
        with self._conn() as conn:
            return pending_pg_migrations(conn, self.schema)

    def __enter__(self) -> PostgresStore:
        return self


def pending_migrations(url: str | os.PathLike[str], *, tenant: str = DEFAULT_TENANT,
                       schema: str | None = None) -> list[Migration]:
    """The migrations the store at ``url`` lacks, without applying them (``procmem migrate``).

    Raises:
        StoreUnavailable: The server cannot be reached.
    """
    target = schema if schema is not None else schema_for(tenant)
    try:
        with psycopg.connect(os.fspath(url), autocommit=True, connect_timeout=10) as conn:
            return pending_pg_migrations(conn, target)
    except psycopg.Error as err:
        raise StoreUnavailable(str(url), str(err).strip()) from err


