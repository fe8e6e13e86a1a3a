"""PostgreSQL as the test suite's store backend: ``pytest --store-backend pgstore:factory``.

Needs ``PROCMEM_TEST_PG_URL`` (a database on a server with pgvector, e.g.
``postgresql://postgres@127.0.0.1:55432/postgres``), read when this module is
imported (before the tests' environment is cleaned, see ``tests/conftest.py``).

Each embedded location the tests open becomes a schema of that database:
``":memory:"`` a fresh schema every call (dropped when its store is closed), a
file path one schema per absolute path for the whole session (reopening the path
sees the same data, as with SQLite files). Every schema this process created is
dropped at exit. A schema is much cheaper than a database per location (see
``test_store_postgres.py::test_a_schema_per_location_is_cheap`` for the numbers).
"""

from __future__ import annotations

import atexit
import itertools
import os
import threading
from typing import Any

ENV = "PROCMEM_TEST_PG_URL"
URL = os.environ.get(ENV, "")
PREFIX = f"pmt_{os.getpid()}_"
"""Schemas of this test process: ``pmt_<pid>_<n>``."""

_lock = threading.Lock()
_counter = itertools.count(1)
_by_path: dict[str, str] = {}
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
    """
    from procmem.store.postgres import PostgresStore

    if not URL:
        raise RuntimeError(f"pgstore:factory needs ${ENV} (a PostgreSQL URL with pgvector)")
    location = os.fspath(location)
    if location == ":memory:":
        return _Ephemeral(URL, schema=_new_schema(), location=":memory:")
    path = os.path.abspath(location)
    with _lock:
        schema = _by_path.get(path)
    if schema is None:
        schema = _new_schema()
        with _lock:
            schema = _by_path.setdefault(path, schema)
    store = PostgresStore(URL, schema=schema)
    store.location = location  # tests compare it with the path they opened
    return store


def _ephemeral_class() -> type:
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
                drop_schemas([self.schema])

    return Ephemeral


def _Ephemeral(url: str, *, schema: str, location: str) -> Any:  # noqa: N802 - a class factory
    global _EPHEMERAL
    if _EPHEMERAL is None:
        _EPHEMERAL = _ephemeral_class()
    return _EPHEMERAL(url, schema=schema, location=location)


_EPHEMERAL: type | None = None


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


@atexit.register
def _cleanup() -> None:
    with _lock:
        names = sorted(_created)
    drop_schemas(names)
