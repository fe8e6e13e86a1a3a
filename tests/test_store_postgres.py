"""The PostgreSQL backend: the store contract, plus what only PostgreSQL has.

Lane ``postgres`` (``python -m pytest -m postgres``; left out of the default lane):
needs ``PROCMEM_TEST_PG_URL``, a database on a server with pgvector, and is
skipped without it. Each test works in schemas of its own (``tests/pgstore.py``),
dropped afterwards; the tenant test makes (and drops) a database of its own.

PostgreSQL-specific behaviour checked here: migrations (pending, applied once,
under concurrent opens), leases and the trace change feed across two stores
(two pools: two processes' view of one database), tenant schemas, the per-model
HNSW index behind ``nearest_embeddings``, and psycopg errors never escaping.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import pytest

import pgstore
from procmem.core.errors import ExecutionBusy, StoreError, StoreUnavailable, UsageError
from procmem.core.model import Execution, Trace
from procmem.store import Store, open_store
from storecontract import StoreContract
from storecontract.helpers import T0, proc

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not pgstore.URL, reason=f"${pgstore.ENV} is not set: "
                                 "no PostgreSQL server to test against")]

psycopg = pytest.importorskip("psycopg")
from psycopg import sql  # noqa: E402

from procmem.store.postgres import (  # noqa: E402
    PostgresStore,
    apply_pg_migrations,
    load_pg_migrations,
    pending_migrations,
)


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema name (the schema is created by the first store opened on it)."""
    name = pgstore._new_schema()
    yield name
    pgstore.drop_schemas([name])


def _open(schema: str, **kwargs: Any) -> PostgresStore:
    return PostgresStore(pgstore.URL, schema=schema, **kwargs)


class TestPostgresContract(StoreContract):
    """Every contract test, on a fresh schema per test."""

    @pytest.fixture
    def store(self, schema: str) -> Iterator[Store]:
        with _open(schema) as store:
            yield store


# ------------------------------------------------------------------ migrations


def test_migrations_mirror_the_sqlite_numbers() -> None:
    from procmem.store.sqlite import load_migrations

    assert [m.version for m in load_pg_migrations()] == [m.version for m in load_migrations()]


def test_migrations_are_pending_then_applied_once(schema: str) -> None:
    every = [m.version for m in load_pg_migrations()]
    assert [m.version for m in pending_migrations(pgstore.URL, schema=schema)] == every
    with _open(schema) as store:
        assert store.pending() == []
        assert pending_migrations(pgstore.URL, schema=schema) == []
        store.put_traces([Trace(task="kept")])
    with psycopg.connect(pgstore.URL, autocommit=True) as conn:
        assert apply_pg_migrations(conn, schema) == []  # twice: nothing to do
        rows = conn.execute(sql.SQL("SELECT version FROM {}.schema_migrations ORDER BY version")
                            .format(sql.Identifier(schema))).fetchall()
    assert [r[0] for r in rows] == every
    with _open(schema) as again:
        assert again.count_traces() == 1


def test_concurrent_opens_apply_each_migration_once(schema: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(_open(schema, pool_size=2))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    try:
        assert all(s.pending() == [] for s in stores)
        stores[0].put_traces([Trace(task="one")])
        assert {s.count_traces() for s in stores} == {1}
    finally:
        for s in stores:
            s.close()


# ------------------------------------------------------- two stores, one database


def test_a_lease_is_held_by_one_of_two_stores(schema: str) -> None:
    with _open(schema) as a, _open(schema) as b:
        ex = Execution(procedure="flow", version=1, status="running")
        a.put_execution(ex)
        until = a.acquire_lease(ex.id, "host-a", lease_s=30, now=T0)
        with pytest.raises(ExecutionBusy) as busy:
            b.acquire_lease(ex.id, "host-b", lease_s=30, now=T0 + timedelta(seconds=1))
        assert (busy.value.owner, busy.value.expires_at) == ("host-a", until)
        assert b.acquire_lease(ex.id, "host-b", lease_s=30, now=until) > until  # expired: free
        assert not a.release_lease(ex.id, "host-a")


def test_racing_stores_never_share_a_lease(schema: str) -> None:
    stores = [_open(schema, pool_size=2) for _ in range(4)]
    try:
        ex = Execution(procedure="flow", version=1, status="running")
        stores[0].put_execution(ex)
        for round_ in range(5):
            winners: list[str] = []
            start = threading.Barrier(len(stores))

            def take(i: int, store: PostgresStore, round_: int = round_,
                     start: threading.Barrier = start, winners: list[str] = winners) -> None:
                start.wait()
                try:
                    store.acquire_lease(ex.id, f"owner-{round_}-{i}", lease_s=60,
                                        now=T0 + timedelta(hours=round_))
                    winners.append(f"owner-{round_}-{i}")
                except ExecutionBusy:
                    pass

            threads = [threading.Thread(target=take, args=(i, s)) for i, s in enumerate(stores)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(winners) == 1, winners
    finally:
        for s in stores:
            s.close()


def test_the_feed_misses_nothing_while_two_stores_write(schema: str) -> None:
    """Readers following the feed during concurrent batches see every trace once, in
    ``list_traces`` order: ``seq`` order is commit order (postgres/traces.py)."""
    with _open(schema) as a, _open(schema) as b, _open(schema) as reader:
        seen: list[str] = []
        token: str | None = None
        done = threading.Event()

        def write(store: PostgresStore, tag: str) -> None:
            for i in range(15):
                store.put_traces([Trace(task=f"{tag}{i}.{j}") for j in range(3)])

        writers = [threading.Thread(target=write, args=(s, t)) for s, t in ((a, "a"), (b, "b"))]
        for w in writers:
            w.start()

        def join() -> None:
            for w in writers:
                w.join()
            done.set()

        threading.Thread(target=join).start()
        while True:
            finished = done.is_set()
            page = reader.traces_since(token, limit=7)
            assert not page.reset or token is None
            token = page.token
            seen += [t.id for t in page.traces]
            if finished and not page.traces:
                break
        assert seen == [t.id for t in reader.list_traces(limit=1000)]
        assert len(seen) == len(set(seen)) == 90


def test_a_transaction_is_invisible_to_another_store_until_it_commits(schema: str) -> None:
    with _open(schema) as a, _open(schema) as b:
        with a.transaction():
            a.put_procedure(proc("flow"))
            assert b.count_procedures() == 0
        assert b.get_procedure("flow").version == 1


# --------------------------------------------------------------------- tenants


@pytest.fixture
def database() -> Iterator[str]:
    """A database of its own (its ``procmem`` and tenant schemas are the test's)."""
    name = f"{pgstore.PREFIX}db"
    with psycopg.connect(pgstore.URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlunsplit(urlsplit(pgstore.URL)._replace(path=f"/{name}"))
    with psycopg.connect(pgstore.URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(name)))


def test_each_tenant_is_a_schema_of_its_own(database: str) -> None:
    with open_store(database) as default, open_store(database, tenant="acme") as acme:
        assert isinstance(default, PostgresStore) and isinstance(acme, PostgresStore)
        assert (default.schema, acme.schema) == ("procmem", "procmem_t_acme")
        default.put_traces([Trace(task="ours")])
        acme.put_procedure(proc("theirs"))
        assert (default.count_traces(), default.count_procedures()) == (1, 0)
        assert (acme.count_traces(), acme.count_procedures()) == (0, 1)
    with open_store(database, tenant="acme") as again:  # reopened: the same schema
        assert again.count_procedures() == 1
    with pytest.raises(UsageError):
        open_store(database, tenant="Not A Tenant")


# ------------------------------------------------------------------ embeddings


def _unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_nearest_embeddings_match_an_exact_search(schema: str) -> None:
    rng = np.random.default_rng(7)
    vectors = _unit(rng.normal(size=(300, 24)))
    hashes = [f"h{i}" for i in range(len(vectors))]
    with _open(schema) as store:
        store.put_embeddings("model-a", dict(zip(hashes, vectors, strict=True)))
        store.put_embeddings("model-b", {"other": np.ones(8, dtype=np.float32)})
        for i in (0, 17, 123):
            query = vectors[i] + np.float32(0.01) * vectors[(i + 1) % len(vectors)]
            hits = store.nearest_embeddings("model-a", query, k=10)
            exact = np.argsort(-(vectors @ _unit(query[None])[0]))[:10]
            assert hits[0][0] == hashes[i]
            assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
            assert len({h for h, _ in hits} & {hashes[j] for j in exact}) >= 9
        assert [h for h, _ in store.nearest_embeddings("model-b", np.ones(8), k=5)] == ["other"]
        assert store.nearest_embeddings("model-a", np.ones(8), k=5) == []  # other length
        with pytest.raises(UsageError):
            store.nearest_embeddings("model-a", vectors[0], k=0)


def _index_of(store: PostgresStore, model_id: str) -> str | None:
    with store._conn() as conn:
        row = conn.execute("SELECT index_name FROM embedding_models WHERE model_id = %s",
                           (model_id,)).fetchone()
    return None if row is None else row[0]


def test_each_model_gets_an_hnsw_index_that_the_search_uses(schema: str) -> None:
    rng = np.random.default_rng(3)
    with _open(schema) as store:
        rows = _unit(rng.normal(size=(50, 6)))
        store.put_embeddings("m", {f"h{i}": v for i, v in enumerate(rows)})
        index = _index_of(store, "m")
        assert index is not None
        with store.transaction(), store._conn() as conn:
            conn.execute("ANALYZE embeddings")  # no statistics yet: the planner guesses 3 rows
            conn.execute("SET LOCAL enable_seqscan = off")
            conn.execute("SET LOCAL enable_bitmapscan = off")
            conn.execute("SET LOCAL enable_sort = off")  # ordered by the index, or not at all
            plan = "\n".join(r[0] for r in conn.execute(
                "EXPLAIN SELECT hash FROM embeddings WHERE model_id = 'm' "
                "ORDER BY vector::vector(6) <=> %s::vector(6) LIMIT 5",
                (np.ones(6, dtype=np.float32),)).fetchall())
        assert index in plan
        store.put_embeddings("m", {"longer": np.ones(9, dtype=np.float32)})  # another length
        assert _index_of(store, "m") is None
        assert [h for h, _ in store.nearest_embeddings("m", np.ones(9), k=3)] == ["longer"]
        assert store.delete_embeddings("m") == 51
        assert store.count_embeddings() == {}


# ---------------------------------------------------------------------- errors


def test_closed_and_unreachable_stores_raise_store_errors(schema: str) -> None:
    store = _open(schema)
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError):
        store.count_traces()
    with pytest.raises(StoreError):
        with store.transaction():
            pass
    with pytest.raises(StoreUnavailable):
        PostgresStore("postgresql://postgres@127.0.0.1:1/none")
    with pytest.raises(UsageError):
        _open("Bad Schema")


# ------------------------------------------------------------- procmem redact


def test_procmem_redact_scrubs_a_postgres_store(schema: str) -> None:
    from procmem.security.redaction import Redactor
    from procmem.store import scrub_store
    from security.test_secrets_corpus import TRACES, _leaks

    with _open(schema) as store:
        store.put_traces(TRACES)  # below Memory: as an old store would hold them
        dry = scrub_store(store, Redactor(), dry_run=True)
        assert dry.changed["traces"] == len(TRACES)
        assert _leaks("".join(t.model_dump_json() for t in store.list_traces(limit=1000)))
        real = scrub_store(store, Redactor())
        assert real.changed == dry.changed and not _leaks(repr(real.to_json()))
        with store._conn() as conn:  # no live or dead row version keeps a secret
            stored = "".join(r[0] for r in conn.execute("SELECT json FROM traces").fetchall())
            dead = conn.execute("SELECT n_dead_tup FROM pg_stat_user_tables "
                                "WHERE schemaname = %s AND relname = 'traces'",
                                (schema,)).fetchone()
        assert not _leaks(stored)
        assert dead is None or dead[0] == 0
        assert scrub_store(store, Redactor()).changed == {}


def test_two_stores_numbering_versions_at_once_never_share_a_number(schema: str) -> None:
    """``put_version`` reads the last version and stores the next in one unit of work; the
    store's writer lock keeps two processes from taking one number (no Conflict)."""
    from procmem.services.versions import put_version

    stores = [_open(schema, pool_size=2) for _ in range(3)]
    errors: list[BaseException] = []
    start = threading.Barrier(len(stores))

    def write(i: int, store: PostgresStore) -> None:
        start.wait()
        try:
            for j in range(4):
                put_version(store, proc("flow", description=f"writer {i} edit {j}"))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=write, args=(i, s)) for i, s in enumerate(stores)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert [p.version for p in stores[0].list_versions("flow")] == list(range(1, 13))
    finally:
        for s in stores:
            s.close()


# ------------------------------------------------------------------ index log


def _meta(store: PostgresStore, key: str) -> int:
    with store._conn() as conn:
        row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
    assert row is not None
    return int(row[0])


def test_a_transaction_numbers_its_index_changes_and_commits_the_revision_once(
        schema: str) -> None:
    """The revision is counted in the transaction and written just before COMMIT (one
    UPDATE of meta, however many changes); a reader sees it only with its log entries."""
    with _open(schema) as store, _open(schema) as other:
        before = store.index_revision()
        with store.transaction():
            for i in range(5):
                store.put_procedure(proc(f"p{i}"))
            assert other.index_revision() == before  # nothing committed yet
            assert other.index_changes(before) == []
        assert other.index_revision() == before + 5
        assert other.index_changes(before) == [f"p{i}" for i in range(5)]
        assert other.index_changes(before + 4) == ["p4"]
        with pytest.raises(RuntimeError), store.transaction():  # rolled back: no revision
            store.put_procedure(proc("gone"))
            raise RuntimeError("undo")
        assert store.index_revision() == before + 5
        assert store.index_changes(before + 5) == []


def test_the_index_log_keeps_a_bounded_number_of_revisions_on_postgres(schema: str) -> None:
    from procmem.store.postgres.base import INDEX_LOG_KEEP as keep
    with _open(schema) as store:
        with store._conn() as conn:
            conn.execute("UPDATE meta SET value = %s WHERE key = 'index_revision'",
                         (keep + 998,))
            conn.execute("INSERT INTO index_log (revision, name) VALUES (5, 'old'), "
                         "(%s, 'recent')", (keep + 500,))
            conn.commit()
        store.put_procedure(proc("p"))  # revision keep + 999
        assert store.index_changes(0) == ["old", "p", "recent"]  # not pruned yet
        with store.transaction():  # keep + 1000 and keep + 1001: pruned once, at commit
            store.put_procedure(proc("q"))
            store.put_procedure(proc("r"))
        assert _meta(store, "index_revision") == keep + 1001
        assert _meta(store, "index_log_start") == 1001
        assert store.index_changes(1000) is None  # older than the kept log: rebuild
        assert store.index_changes(1001) == ["p", "q", "r", "recent"]
