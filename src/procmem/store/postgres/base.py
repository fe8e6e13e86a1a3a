"""Plumbing of :class:`~procmem.store.postgres.PostgresStore`: the pool, the unit of work, errors.

Invariants:
    * One ``psycopg_pool.ConnectionPool`` per store (autocommit connections whose
      ``search_path`` is the store's schema, then the ``vector`` extension's,
      and whose ``TimeZone`` is UTC). A read outside a transaction borrows a
      connection for one statement; it is thread-safe.
    * A unit of work belongs to one thread: :meth:`PostgresBase.transaction`
      keeps the connection it borrowed in a thread-local, so every method called
      inside it on that thread joins it (inner levels are savepoints through
      psycopg's nested ``Connection.transaction``; only the outermost commits).
      Other threads and processes see none of it until then (READ COMMITTED).
    * Every public write is one :meth:`PostgresBase.transaction` level.
    * **Writers are serialized per store**, as SQLite's ``BEGIN IMMEDIATE`` does:
      the outermost level takes the transaction-level advisory lock
      ``(WRITE_LOCK, hashtext(schema))`` right after ``BEGIN`` and holds it until
      it commits or rolls back. So the read-modify-write sequences above the
      store (numbering a new version, a promotion's two status changes, decay)
      stay correct across processes and hosts, and the order of commits is the
      order the lock was granted in (the trace feed relies on it,
      :mod:`.traces`). Reads never wait for it (MVCC).
    * No ``psycopg`` exception escapes: failing to connect is
      ``StoreUnavailable``, anything else ``StoreError``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.types import TypeInfo
from psycopg_pool import ConnectionPool, PoolTimeout

from ...core.errors import StoreError, StoreUnavailable, UsageError
from ...security.keys import DEFAULT_TENANT, check_tenant
from ..common import INDEX_LOG_KEEP
from .migrate import apply_pg_migrations, vector_schema

__all__ = ["DEFAULT_SCHEMA", "WRITE_LOCK", "PostgresBase", "aware", "keys", "schema_for",
           "text_time"]

DEFAULT_SCHEMA = "procmem"
"""The schema of the default tenant."""

WRITE_LOCK = 0x706D7374  # "pmst": with hashtext(schema), the key of a store's writer lock
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
_LOCK_TIMEOUT_MS = 15_000
_CONNECT_TIMEOUT_S = 10

Conn = psycopg.Connection[Any]

_VECTOR_TYPES: dict[str, tuple[str, TypeInfo]] = {}
"""Per database URL: the ``vector`` extension's schema and type (fetched by the first store)."""


def schema_for(tenant: str) -> str:
    """The schema of a tenant: ``procmem`` for the default one, else ``procmem_t_<tenant>``.

    Raises:
        UsageError: ``tenant`` is not a valid tenant name.
    """
    check_tenant(tenant)
    return DEFAULT_SCHEMA if tenant == DEFAULT_TENANT else f"procmem_t_{tenant}"


def aware(moment: datetime) -> datetime:
    """A timezone-aware UTC datetime (naive ones are taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def text_time(moment: datetime) -> str:
    """The fixed-width UTC text the SQLite store returns for timestamps it hands out as text."""
    return aware(moment).replace(tzinfo=None).isoformat(timespec="microseconds")


def keys(values: Sequence[str]) -> list[str]:
    """Distinct lookup keys in first-seen order, without those holding NUL (PostgreSQL
    text cannot hold it, so no stored row has such a key)."""
    return [v for v in dict.fromkeys(values) if "\x00" not in v]


def _redacted(url: str) -> str:
    """``url`` without its password (it names the store in messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://..."
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PendingRevisions:
    """The search-index revisions one write transaction gives, written to ``meta`` once.

    Updating one row many times in one transaction makes each update walk the
    row's chain of versions, which PostgreSQL keeps until commit: 40,000 updates of
    ``meta.index_revision`` in one transaction took 10 s, the last 10,000 six times
    as long as the first (a 100,000-procedure ``procmem copy`` is one transaction).
    So the first change of a transaction reads the revision (``FOR UPDATE``), later
    ones count on in memory, and :meth:`flush`, just before ``COMMIT``, writes the
    last one and prunes the index log once. Writers are serialized by the store's
    advisory lock, so revisions still commit in ascending order, and a reader sees
    the new revision only with the log entries it covers. A savepoint rolled back
    after taking revisions leaves a gap in the numbers, which no reader minds
    (``index_changes`` asks for revisions above one it saw).
    """

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first: int | None = None
        self.last: int | None = None

    def next(self, conn: Conn) -> int:
        """The next revision of this transaction (reads ``meta`` the first time)."""
        if self.last is None:
            row = conn.execute("SELECT value FROM meta WHERE key = 'index_revision' "
                               "FOR UPDATE").fetchone()
            if row is None:
                raise StoreError("meta.index_revision is missing: the schema is not a "
                                 "procmem store")
            self.first = self.last = int(row[0])
        self.last += 1
        return self.last

    def flush(self, conn: Conn) -> None:
        """Write the last revision given; past each 1,000th, drop log entries older than
        :data:`INDEX_LOG_KEEP` revisions and move ``meta.index_log_start`` past them."""
        if self.last is None or self.first is None or self.last == self.first:
            return
        conn.execute("UPDATE meta SET value = %s WHERE key = 'index_revision'", (self.last,))
        if self.last > INDEX_LOG_KEEP and self.last // 1000 > self.first // 1000:
            start = self.last - INDEX_LOG_KEEP
            conn.execute("DELETE FROM index_log WHERE revision <= %s", (start,))
            conn.execute("UPDATE meta SET value = GREATEST(value, %s) "
                         "WHERE key = 'index_log_start'", (start,))
        self.first = self.last


class PostgresBase:
    """Connection pool, transactions and error translation of the PostgreSQL store."""

    location: str
    schema: str

    def __init__(self, url: str | os.PathLike[str], *, tenant: str = DEFAULT_TENANT,
                 schema: str | None = None, pool_size: int = 8) -> None:
        """Open the store of ``tenant`` in the database at ``url``; migrate its schema.

        Args:
            url: ``postgresql://user[:password]@host[:port]/database[?...]``.
            tenant: Whose data (:func:`schema_for` gives the schema).
            schema: A schema to use instead of the tenant's (tests give each store its own).
            pool_size: Most connections the store holds at once.

        Raises:
            UsageError: A bad tenant or schema name, or ``pool_size`` < 1.
            StoreUnavailable: The server cannot be reached, or the schema cannot
                be created or migrated (e.g. no right to ``CREATE EXTENSION vector``).
        """
        self._url = os.fspath(url)
        self.location = _redacted(self._url)
        self.schema = schema if schema is not None else schema_for(tenant)
        if not _SCHEMA.match(self.schema):
            raise UsageError(f"invalid PostgreSQL schema name {self.schema!r}")
        if pool_size < 1:
            raise UsageError(f"pool_size must be >= 1 (got {pool_size})")
        self._local = threading.local()
        self._pool: ConnectionPool[Any] | None = None
        try:
            known = _VECTOR_TYPES.get(self._url)
            if known is None:  # first store of this database in this process
                with psycopg.connect(self._url, autocommit=True,
                                     connect_timeout=_CONNECT_TIMEOUT_S) as conn:
                    apply_pg_migrations(conn, self.schema)
                    info = TypeInfo.fetch(conn, "vector")
                    if info is None:
                        raise StoreUnavailable(self.location, "the vector extension is missing")
                    known = _VECTOR_TYPES[self._url] = (vector_schema(conn) or "public", info)
            ext, self._vector = known
        except psycopg.Error as err:
            raise StoreUnavailable(self.location, str(err).strip()) from err
        pool = self._open_pool(ext, pool_size)
        try:
            with pool.connection() as conn:  # later stores migrate on the pool's connection
                apply_pg_migrations(conn, self.schema)
        except psycopg.Error as err:
            pool.close()
            raise StoreUnavailable(self.location, str(err).strip()) from err
        self._pool = pool

    def _open_pool(self, ext: str, size: int) -> ConnectionPool[Any]:
        options = (f'-c search_path="{self.schema}","{ext}" -c TimeZone=UTC '
                   f"-c lock_timeout={_LOCK_TIMEOUT_MS}")
        pool: ConnectionPool[Any] = ConnectionPool(
            self._url, min_size=1, max_size=size, open=False, timeout=30, num_workers=1,
            name=f"procmem:{self.schema}", configure=self._configure,
            kwargs={"autocommit": True, "options": options,
                    "connect_timeout": _CONNECT_TIMEOUT_S})
        try:
            pool.open(wait=True, timeout=_CONNECT_TIMEOUT_S)
        except (psycopg.Error, PoolTimeout) as err:
            pool.close()
            raise StoreUnavailable(self.location, str(err).strip()) from err
        return pool

    def _configure(self, conn: Conn) -> None:
        from pgvector.psycopg.vector import register_vector_info

        register_vector_info(conn, self._vector)  # known type: no round trip per connection

    def __repr__(self) -> str:
        return f"PostgresStore({self.location!r}, schema={self.schema!r})"

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ----------------------------------------------------------------- plumbing

    def _failure(self, err: Exception) -> StoreError:
        if isinstance(err, PoolTimeout):
            return StoreUnavailable(self.location, str(err).strip())
        return StoreError(f"PostgreSQL failure on {self.location!r}: {str(err).strip()}")

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        """The thread's transaction connection, else a pooled one; psycopg errors translated."""
        held: Conn | None = getattr(self._local, "conn", None)
        if held is not None:
            try:
                yield held
            except psycopg.Error as err:
                raise self._failure(err) from err
            return
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self.location!r} is closed")
        try:
            with pool.connection() as conn:
                yield conn
        except psycopg.Error as err:
            raise self._failure(err) from err

    def _rows(self, query: Any, params: Any = ()) -> list[Any]:
        """Run one statement and fetch every row."""
        with self._conn() as conn:
            return conn.execute(query, params).fetchall()

    def _revisions(self) -> PendingRevisions | None:
        """The index revisions of this thread's write transaction (``None`` outside one)."""
        return getattr(self._local, "revisions", None)

    @contextmanager
    def _write(self) -> Iterator[Conn]:
        """One write: a transaction level whose psycopg errors become ``StoreError``."""
        with self.transaction():
            with self._conn() as conn:
                yield conn

    @contextmanager
    def _read_transaction(self) -> Iterator[Conn]:
        """A transaction that only reads (no writer lock); joins the thread's unit of work."""
        with self._conn() as conn:
            try:
                with conn.transaction():
                    yield conn
            except psycopg.Error as err:
                raise self._failure(err) from err

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """Group several writes into one atomic transaction (see ``UnitOfWork``).

        The outermost level borrows a connection for this thread and runs
        ``BEGIN`` ... ``COMMIT``; inner levels are savepoints, so an exception
        caught inside an outer block undoes only the inner block. Any exception
        rolls the level back and propagates.

        Yields:
            This store.

        Raises:
            StoreError: PostgreSQL could not begin or commit (``StoreUnavailable``
                when no connection could be had).
        """
        held: Conn | None = getattr(self._local, "conn", None)
        if held is not None:
            try:
                with held.transaction():
                    yield self
            except psycopg.Error as err:
                raise self._failure(err) from err
            return
        pool = self._pool
        if pool is None:
            raise StoreError(f"store {self.location!r} is closed")
        try:
            with pool.connection() as conn:
                self._local.conn = conn
                self._local.revisions = PendingRevisions()
                try:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                                     (WRITE_LOCK, self.schema))
                        yield self
                        self._local.revisions.flush(conn)  # just before COMMIT
                finally:
                    self._local.conn = self._local.revisions = None
        except psycopg.Error as err:
            raise self._failure(err) from err

    def close(self) -> None:
        """Close the pool; later calls raise ``StoreError``. Idempotent."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
