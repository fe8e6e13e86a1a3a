"""PostgreSQL as the test suite's store backend: ``pytest --store-backend pgstore:factory``.

Needs ``PROCMEM_TEST_PG_URL`` (a database on a server with pgvector, e.g.
``postgresql://postgres@127.0.0.1:55432/postgres``), read when this module is
imported (before the tests' environment is cleaned, see ``tests/conftest.py``).

Each embedded location the tests open becomes a schema of that database
(``pmt_<pid>_<n>``; a schema is far cheaper than a database per location):

* ``":memory:"``: a fresh schema every call, dropped when its store is closed.
* a file path: the file holds a small marker naming the schema and the path it
  was written for. Opening a path without a file (or an empty one) makes a fresh
  schema and writes the marker; reopening the path opens the same schema; a
  marker written for another path (the tests copied a built memory file) is
  cloned into a fresh schema, so the copy goes its own way as a copied SQLite
  file does. A file that is not a marker is ``StoreUnavailable``, as SQLite's
  "not a database".

Every schema this process created is dropped at exit.

Speed: a new store's schema costs about 160 ms to create from a new connection
(a new server process with cold catalog caches) but about 55 ms on a warm one, so
one background thread (:class:`_Janitor`) keeps a few migrated schemas ready for
``":memory:"`` stores and drops the closed ones, on one long-lived connection.
"""

from __future__ import annotations

import atexit
import itertools
import os
import queue
import threading
from typing import Any

ENV = "PROCMEM_TEST_PG_URL"
URL = os.environ.get(ENV, "")
PREFIX = f"pmt_{os.getpid()}_"
"""Schemas of this test process: ``pmt_<pid>_<n>``."""
MAGIC = b"procmem-pgstore-test\n"
CHILD_ENV = {ENV: URL}
"""What a child process of a test needs to open the same stores (``storebackend.child_environ``)."""

_lock = threading.Lock()
_counter = itertools.count(1)
_created: set[str] = set()


def _new_schema() -> str:
    with _lock:
        name = f"{PREFIX}{next(_counter)}"
        _created.add(name)
    return name


def factory(location: str) -> Any:
    """Open a :class:`procmem.store.postgres.PostgresStore` for an embedded location.

    Raises:
        RuntimeError: ``PROCMEM_TEST_PG_URL`` is not set.
        StoreUnavailable: The file at ``location`` is not a marker of this module.
    """
    from procmem.core.errors import StoreUnavailable
    from procmem.store.postgres import PostgresStore

    if not URL:
        raise RuntimeError(f"pgstore:factory needs ${ENV} (a PostgreSQL URL with pgvector)")
    location = os.fspath(location)
    if location == ":memory:":
        return _ephemeral_class()(URL, schema=_janitor().take(), location=":memory:")
    path = os.path.abspath(location)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    except OSError as err:
        raise StoreUnavailable(location, str(err)) from err
    if data and not data.startswith(MAGIC):
        raise StoreUnavailable(location, "file is not a database (no pgstore marker)")
    source, _, written_for = data[len(MAGIC):].decode().partition("\n") if data else ("", "", "")
    if data and written_for == path and _exists(source):
        schema = source
    else:
        schema = _new_schema()
        if data and _exists(source):
            clone_schema(source, schema)
        try:
            with open(path, "wb") as f:
                f.write(MAGIC + f"{schema}\n{path}".encode())
        except OSError as err:
            raise StoreUnavailable(location, str(err)) from err
    store = PostgresStore(URL, schema=schema)
    store.location = location  # tests compare it with the path they opened
    return store


def _exists(schema: str) -> bool:
    import psycopg

    with psycopg.connect(URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s",
                            (schema,)).fetchone() is not None


def clone_schema(source: str, target: str) -> None:
    """Copy every row of the store schema ``source`` into a new store schema ``target``.

    The target is migrated like any store; rows are copied table by table
    (identity values kept, then the identity sequences moved past them; the
    statistics trigger is off meanwhile, its table is copied as it is). HNSW
    indexes are not copied: the clone's models are searched exactly until their
    next put creates the index again.
    """
    import psycopg
    from psycopg import sql

    from procmem.store.postgres import apply_pg_migrations

    with psycopg.connect(URL, autocommit=True) as conn:
        apply_pg_migrations(conn, target)
        src, dst = sql.Identifier(source), sql.Identifier(target)
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
            "AND table_type = 'BASE TABLE' AND table_name <> 'schema_migrations' "
            "ORDER BY table_name = 'step_runs', table_name", (source,)).fetchall()]
        with conn.transaction():
            conn.execute(sql.SQL("ALTER TABLE {}.executions DISABLE TRIGGER USER").format(dst))
            for table in tables:
                name = sql.Identifier(table)
                conn.execute(sql.SQL("DELETE FROM {}.{}").format(dst, name))
                conn.execute(sql.SQL("INSERT INTO {}.{} OVERRIDING SYSTEM VALUE "
                                     "SELECT * FROM {}.{}").format(dst, name, src, name))
            conn.execute(sql.SQL("ALTER TABLE {}.executions ENABLE TRIGGER USER").format(dst))
            conn.execute(sql.SQL("UPDATE {}.embedding_models SET dim = NULL, index_name = NULL")
                         .format(dst))
            for table, column in conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = %s AND is_identity = 'YES'", (target,)).fetchall():
                conn.execute(sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({}, {}), "
                    "COALESCE((SELECT MAX({}) FROM {}.{}), 0) + 1, false)").format(
                        sql.Literal(f'"{target}"."{table}"'), sql.Literal(column),
                        sql.Identifier(column), dst, sql.Identifier(table)))


_EPHEMERAL: type | None = None


def _ephemeral_class() -> type:
    global _EPHEMERAL
    if _EPHEMERAL is None:
        from procmem.store.postgres import PostgresStore

        class Ephemeral(PostgresStore):
            """A store whose schema is dropped when it is closed (``":memory:"``)."""

            def __init__(self, url: str, *, schema: str, location: str) -> None:
                super().__init__(url, schema=schema)
                self.location = location

            def close(self) -> None:
                was_open = self._pool is not None
                super().close()
                if was_open:
                    _janitor().drop(self.schema)

        _EPHEMERAL = Ephemeral
    return _EPHEMERAL


def drop_schemas(names: list[str]) -> None:
    """Drop these schemas (and everything in them); errors are ignored (best effort)."""
    import psycopg
    from psycopg import sql

    if not names or not URL:
        return
    try:
        with psycopg.connect(URL, autocommit=True, connect_timeout=5) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                    sql.Identifier(name)))
                with _lock:
                    _created.discard(name)
    except psycopg.Error:
        pass


class _Janitor:
    """One daemon thread on one connection: keeps :data:`READY` migrated schemas ready, drops
    the schemas of closed ``":memory:"`` stores."""

    READY = 3

    def __init__(self) -> None:
        self.ready: queue.Queue[str] = queue.Queue()
        self.doomed: queue.Queue[str] = queue.Queue()
        self.wake = threading.Event()
        self.stopped = False
        threading.Thread(target=self._run, name="pgstore-janitor", daemon=True).start()

    def take(self) -> str:
        """A migrated, empty schema (made here when none is ready)."""
        self.wake.set()
        try:
            return self.ready.get_nowait()
        except queue.Empty:
            return _new_schema()  # the store migrates it itself

    def drop(self, schema: str) -> None:
        self.doomed.put(schema)
        self.wake.set()

    def _run(self) -> None:
        import psycopg
        from psycopg import sql

        from procmem.store.postgres import apply_pg_migrations

        try:
            conn = psycopg.connect(URL, autocommit=True)
        except psycopg.Error:
            return
        with conn:
            while not self.stopped:
                self.wake.wait(timeout=1.0)
                self.wake.clear()
                try:
                    while self.ready.qsize() < self.READY and not self.stopped:
                        name = _new_schema()
                        apply_pg_migrations(conn, name)
                        self.ready.put(name)
                    while not self.doomed.empty() and not self.stopped:
                        name = self.doomed.get_nowait()
                        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(
                            sql.Identifier(name)))
                        with _lock:
                            _created.discard(name)
                except (psycopg.Error, queue.Empty):
                    continue


_JANITOR: _Janitor | None = None


def _janitor() -> _Janitor:
    global _JANITOR
    with _lock:
        if _JANITOR is None:
            _JANITOR = _Janitor()
        return _JANITOR


@atexit.register
def _cleanup() -> None:
    if _JANITOR is not None:
        _JANITOR.stopped = True
    with _lock:
        names = sorted(_created)
    drop_schemas(names)
