"""SQLite specifics of the store: FTS5 keyword search, files, migrations, open_store.

The behaviour every backend must show is the contract suite
(``tests/test_store_contract.py``, tests in ``tests/storecontract/``); this module
tests what only the SQLite backend has or does: ``search_text`` (FTS5 BM25, not
part of the protocol), the deletion count behind its change-feed tokens, tool
schema history, ``find_lease``, WAL files shared by connections, migrations.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

import storebackend
from procmem.core.errors import (
    Conflict,
    ExecutionBusy,
    MissingExtra,
    NotFound,
    StoreError,
    StoreUnavailable,
    UsageError,
)
from procmem.core.model import Execution, Procedure, Step, Trace
from procmem.store import SQLiteStore, index_text, open_store
from procmem.store.sqlite import Migration, apply_migrations, load_migrations
from storecontract.helpers import T0, proc, step_run
from storecontract.records import search_fixture


@pytest.fixture(params=["sqlite-memory", "sqlite-file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
    location = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "m.db")
    with SQLiteStore(location) as store:
        yield store


# ------------------------------------------------------------------ FTS5 keyword search


def test_search_ranks_by_demonstration_tasks(store: SQLiteStore) -> None:
    search_fixture(store)
    results = store.search_text("cancel my order")
    assert results[0][0] == "proc_a"
    scores = dict(results)
    assert scores["proc_a"] > scores.get("proc_b", float("-inf"))
    assert [n for n, _ in store.search_text("shipping address")] == ["proc_b"]
    assert [n for n, _ in store.search_text("modify")] == ["proc_b"]
    assert store.search_text("cancel order", limit=0) == []


def test_search_is_case_and_accent_insensitive(store: SQLiteStore) -> None:
    store.put_procedure(proc("cafe_menu", description="Order a café crème"))
    assert [n for n, _ in store.search_text("CAFE CREME")] == ["cafe_menu"]


@pytest.mark.parametrize("query", [
    '"', 'cancel" OR "', "(order", "order)", "cancel AND", "AND", "OR NOT", "*", "canc*",
    "NEAR(cancel order)", "cancel NEAR order", "name:cancel", "^cancel", "{body}: order",
    "-cancel", "cancel + order", "o'rder", "\\", "cancel\x00order", "_", "__init__",
])
def test_search_never_leaks_query_syntax(store: SQLiteStore, query: str) -> None:
    search_fixture(store)
    results = store.search_text(query)
    assert isinstance(results, list)
    if "cancel" in query.lower() or "order" in query.lower():
        assert "proc_a" in [n for n, _ in results]


@pytest.mark.parametrize("query", ["", "   ", "?!", "(\")", "—…"])
def test_search_without_words_is_empty(store: SQLiteStore, query: str) -> None:
    search_fixture(store)
    assert store.search_text(query) == []


def test_search_indexes_the_current_active_version(store: SQLiteStore) -> None:
    store.put_procedure(proc("flow", 1, "active", description="alpha words"))
    store.put_procedure(proc("flow", 2, "candidate", description="beta words"))
    assert [n for n, _ in store.search_text("alpha")] == ["flow"]
    assert store.search_text("beta") == []
    store.set_status("flow", 2, "active")
    assert store.search_text("alpha") == []
    assert [n for n, _ in store.search_text("beta")] == ["flow"]
    store.set_status("flow", 2, "deprecated")
    assert store.search_text("beta") == []  # deprecated: out of the index
    assert [n for n, _ in store.search_text("alpha")] == ["flow"]  # v1 is active again
    store.set_status("flow", 1, "deprecated")
    assert store.search_text("alpha") == []  # no active version: not searchable
    store.put_procedure(proc("drafts", 1, "candidate", description="gamma"))
    assert store.search_text("gamma") == []  # only candidates: not indexed
    assert [n for n, _ in store.search_text("words")] == []


def test_deleted_traces_and_procedures_leave_keyword_search(store: SQLiteStore) -> None:
    search_fixture(store)
    assert [n for n, _ in store.search_text("mistake")] == ["proc_a"]
    store.delete_trace("d1")
    assert store.search_text("mistake") == []
    assert store.delete_procedure("proc_b")
    assert store.search_text("shipping") == []


def test_transaction_rollback_leaves_keyword_search(store: SQLiteStore) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.put_procedure(proc("gone"))
        raise RuntimeError("caller failed")
    assert store.search_text("gone") == []


# ------------------------------------------------------------------ SQLite-only reads


def test_trace_deletions_count_real_deletions(store: SQLiteStore) -> None:
    batch = [Trace(task=f"task {i}") for i in range(3)]
    store.put_traces(batch)
    assert store.trace_deletions() == 0
    assert store.delete_trace(batch[1].id) is True
    assert store.delete_trace(batch[1].id) is False
    assert store.trace_deletions() == 1  # only a real deletion counts


def test_feed_tokens_hold_across_connections_not_across_files(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as a, SQLiteStore(tmp_path / "a.db") as again, \
            SQLiteStore(tmp_path / "b.db") as b:
        a.put_traces([Trace(id="t1", task="x")])
        b.put_traces([Trace(id="t1", task="x")])  # same trace, other store
        token = a.traces_since(None).token
        a.put_traces([Trace(id="t2", task="y")])
        page = again.traces_since(token)
        assert ([t.id for t in page.traces], page.reset) == (["t2"], False)
        assert b.traces_since(token).reset is True


def test_a_copied_file_that_went_its_own_way_starts_the_feed_over(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "a.db") as a:
        a.put_traces([Trace(id="t1", task="x"), Trace(id="t2", task="y")])
        shared = a.traces_since(None).token
    (tmp_path / "b.db").write_bytes((tmp_path / "a.db").read_bytes())  # same store id
    with SQLiteStore(tmp_path / "a.db") as a, SQLiteStore(tmp_path / "b.db") as b:
        a.put_traces([Trace(id="ta", task="in a")])
        b.put_traces([Trace(id="tb", task="in b")])
        page = b.traces_since(shared)  # the common history holds
        assert ([t.id for t in page.traces], page.reset) == (["tb"], False)
        token = a.traces_since(shared).token  # after "ta", which b never had
        page = b.traces_since(token)
        assert ([t.id for t in page.traces], page.reset) == (["t1", "t2", "tb"], True)


def test_find_lease(store: SQLiteStore) -> None:
    ex = Execution(procedure="refund", version=1)
    store.put_execution(ex)
    assert store.find_lease(ex.id, now=T0) is None
    until = store.acquire_lease(ex.id, "a", lease_s=10, now=T0)
    assert store.find_lease(ex.id, now=T0) == ("a", until)
    assert store.find_lease(ex.id, now=until) is None  # expired at its expiry
    assert store.find_lease("ex_nope") is None
    assert store.find_lease(ex.id, now=T0 + timedelta(seconds=5)) == ("a", until)


def test_tool_schema_history(store: SQLiteStore) -> None:
    cancel = {"name": "cancel", "description": "Cancel an order."}
    assert store.put_tool_schema("cancel", cancel) is True
    assert store.put_tool_schema("cancel", dict(reversed(list(cancel.items())))) is False
    changed = {**cancel, "description": "Cancel a pending order."}
    assert store.put_tool_schema("cancel", changed) is True
    history = store.list_tool_schema_history("cancel")
    assert [h["schema"] for h in history] == [cancel]
    assert history[0]["hash"] and history[0]["replaced_at"]
    store.put_tool_schema("alpha", {"name": "alpha"})
    assert store.list_tool_schema_history("alpha") == []


# ------------------------------------------------------------------ SQLite files


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


def test_step_runs_survive_reopening(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    ex = Execution(procedure="refund", version=1, started_at=T0)
    store.put_execution(ex)
    store.put_step_run(ex.id, step_run(0))
    store.put_step_run(ex.id, step_run(1))
    store.close()
    with SQLiteStore(db_path) as reopened:
        assert reopened.get_execution(ex.id).step_runs == [step_run(0), step_run(1)]


def test_step_runs_are_visible_to_another_connection_at_once(db_path: Path) -> None:
    with SQLiteStore(db_path) as writer, SQLiteStore(db_path) as reader:
        ex = Execution(procedure="refund", version=1)
        writer.put_execution(ex)
        writer.put_step_run(ex.id, step_run(0))
        assert reader.get_execution(ex.id).step_runs == [step_run(0)]


def test_a_lease_is_decided_in_the_file_not_in_the_process(db_path: Path) -> None:
    with SQLiteStore(db_path) as first, SQLiteStore(db_path) as second:
        ex = Execution(procedure="refund", version=1)
        first.put_execution(ex)
        first.acquire_lease(ex.id, "first", lease_s=60)
        with pytest.raises(ExecutionBusy):
            second.acquire_lease(ex.id, "second", lease_s=60)
        assert second.find_lease(ex.id) is not None
        first.put_execution(ex.model_copy(update={"status": "paused"}))
        assert second.acquire_lease(ex.id, "second", lease_s=60)


def test_migrations_recorded_once(db_path: Path) -> None:
    shipped = [m.version for m in load_migrations()]
    assert shipped and shipped[0] == 1 and shipped == sorted(set(shipped))
    SQLiteStore(db_path).close()
    with sqlite3.connect(db_path) as conn:
        first = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert [v for v, _ in first] == shipped
    with SQLiteStore(db_path) as store:  # reopening applies nothing and keeps the data path
        store.put_traces([Trace(task="t")])
    with sqlite3.connect(db_path) as conn:
        again = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert again == first
    assert mode == "wal"


def test_apply_migrations_applies_only_new_ones_atomically() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    base = load_migrations()
    assert apply_migrations(conn, base) == [m.version for m in base]
    extra = Migration(900, "0900_extra.sql", "-- a; comment\nCREATE TABLE extra (a);\n")
    assert apply_migrations(conn, [*base, extra]) == [900]
    assert apply_migrations(conn, [*base, extra]) == []
    broken = Migration(901, "0901_broken.sql", "CREATE TABLE half (a);\nSELECT * FROM nowhere;")
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, [broken])
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert 900 in versions and 901 not in versions
    assert not conn.in_transaction


def test_unopenable_locations(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        SQLiteStore(tmp_path)  # a directory
    assert info.value.location == str(tmp_path)
    assert isinstance(info.value.__cause__, sqlite3.Error)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreUnavailable):
        SQLiteStore(garbage)
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "m.db")


def test_closed_store_raises_store_error() -> None:
    store = SQLiteStore(":memory:")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError):
        store.count_traces()
    with pytest.raises(StoreError):
        store.put_traces([Trace(task="t")])


def test_transaction_commits_only_at_the_outermost_level(db_path: Path) -> None:
    with SQLiteStore(db_path) as store, SQLiteStore(db_path) as other:
        a, b, c = Trace(task="a"), Trace(task="b"), Trace(task="c")
        with store.transaction():
            store.put_traces([a])
            with store.transaction():
                store.put_traces([b])
            assert other.count_traces() == 0  # nothing committed yet
            with pytest.raises(Conflict), store.transaction():
                store.put_traces([c])
                store.put_traces([b.model_copy(update={"task": "changed"})])
        assert [t.id for t in other.list_traces()] == [a.id, b.id]  # c was undone

        with pytest.raises(RuntimeError), store.transaction():
            store.put_procedure(proc("gone"))
            raise RuntimeError("caller failed")
        with pytest.raises(NotFound):
            other.get_procedure("gone")


def test_concurrent_writers_share_one_store(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        ex = Execution(procedure="p", version=1)
        store.put_execution(ex)

        def write(start: int) -> None:
            for i in range(start, 200, 4):
                store.put_step_run(ex.id, step_run(i))

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.index for r in store.get_execution(ex.id).step_runs] == list(range(200))


def test_index_text_builds_the_document() -> None:
    p = Procedure.model_validate({
        "name": "cancel_pending-order.v2", "description": "Cancel an order", "tags": ["retail"],
        "params": [{"name": "order_id", "description": "the order number"}],
        "steps": [{"id": "s1", "action": "get_order_details"}, {"id": "s2", "action": "cancel"}],
    })
    text = index_text(p, ["cancel #W1 please"])
    lines = text.split("\n")
    assert lines[0] == "cancel pending order v2"
    for part in ("Cancel an order", "retail", "order_id", "order id", "the order number",
                 "get_order_details", "get order details", "cancel", "cancel #W1 please"):
        assert part in lines
    assert lines[-1] == "cancel #W1 please"
    assert "" not in lines
    assert index_text(p, []) == index_text(p, [])
    assert "cancel #W1 please" not in index_text(p, []).split("\n")


# ------------------------------------------------------------------ open_store


def test_open_store_paths_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   store_factory: storebackend.Factory) -> None:
    monkeypatch.chdir(tmp_path)
    probe = store_factory(str(tmp_path / "probe.db"))  # SQLiteStore unless --store-backend
    embedded = type(probe)
    probe.close()
    with open_store("plain.db") as store:  # type: ignore[attr-defined]
        assert isinstance(store, embedded) and store.location == "plain.db"
    with open_store("sqlite:///relative.db") as store:  # type: ignore[attr-defined]
        assert store.location == "relative.db"
    absolute = tmp_path / "abs.db"
    with open_store(f"sqlite:///{absolute}") as store:  # type: ignore[attr-defined]
        assert store.location == str(absolute)
    for memory in ("sqlite://", "sqlite:///:memory:", ":memory:"):
        with open_store(memory) as store:  # type: ignore[attr-defined]
            assert store.location == ":memory:"
    assert {p.name for p in tmp_path.iterdir()} >= {"plain.db", "relative.db", "abs.db"}


@pytest.mark.parametrize("url", ["postgresql://u@localhost/db", "postgres://localhost/x"])
def test_open_store_postgres_needs_the_extra(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if procmem[postgres] were not installed
    for name in [m for m in sys.modules if m.startswith("procmem.store.postgres")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(MissingExtra) as info:
        open_store(url)
    assert info.value.extra == "postgres"
    assert "pip install -e '.[postgres]'" in str(info.value)


@pytest.mark.parametrize("url", ["postgresql://u@127.0.0.1:1/db", "postgres://127.0.0.1:1/x"])
def test_open_store_postgres_without_a_server_is_unavailable(url: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(StoreUnavailable):  # port 1 refuses at once: no server, no wait
        open_store(url)


@pytest.mark.parametrize("url", ["mysql://localhost/db", "http://example.com/m.db", "sqlite:/x"])
def test_open_store_rejects_other_schemes(url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError):
        open_store(url)


def test_two_connections_racing_one_transition_apply_it_once(tmp_path: Path) -> None:
    """Two stores on one file stand for two processes deciding the same promotion."""
    path = tmp_path / "race.db"
    stores = [SQLiteStore(path), SQLiteStore(path)]
    for version, status in ((1, "active"), (2, "candidate")):
        stores[0].put_procedure(Procedure(name="p", version=version, status=status,
                                          steps=[Step(id="s1", action=f"a{version}")]))
    barrier = threading.Barrier(2)
    results: list[bool] = []

    def decide(store: SQLiteStore) -> None:
        barrier.wait()
        results.append(store.transition_status(
            "p", [(2, "candidate", "active"), (1, "active", "deprecated")]))

    threads = [threading.Thread(target=decide, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True]
    assert [p.status for p in stores[1].list_versions("p")] == ["deprecated", "active"]
    for s in stores:
        s.close()
