"""The search index on SQLite (procmem.store.search_sql): embeddings, tasks, migration 0004."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmem.core.errors import UsageError
from procmem.core.model import Execution, Procedure, Step, Trace, TraceStep
from procmem.core.texthash import text_hash
from procmem.store import search_sql
from procmem.store.migrate import apply_migrations, load_migrations
from procmem.store.sqlite import SQLiteStore


@pytest.fixture
def store() -> SQLiteStore:
    return SQLiteStore(":memory:")


def test_text_hash_is_sha256_of_utf8() -> None:
    assert text_hash("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert text_hash("café") != text_hash("cafe")


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, width=32), min_size=1, max_size=40))
def test_vectors_round_trip_exactly(values: list[float]) -> None:
    s = SQLiteStore(":memory:")
    vec = np.asarray(values, dtype=np.float32)
    assert s.put_embeddings("m", {"h": vec}) == 1
    back = s.get_embeddings("m", ["h"])["h"]
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, vec)


def test_models_never_mix_and_replace_or_delete(store: SQLiteStore) -> None:
    store.put_embeddings("a", {"h1": np.ones(3, np.float32), "h2": np.zeros(3, np.float32)})
    store.put_embeddings("b", {"h1": np.full(5, 2, np.float32)})
    assert set(store.get_embeddings("a", ["h1", "h2", "h3"])) == {"h1", "h2"}
    assert store.get_embeddings("b", ["h1"])["h1"].shape == (5,)
    assert store.get_embeddings("c", ["h1"]) == {}
    store.put_embeddings("a", {"h1": np.full(3, 7, np.float32)})  # replaced, not duplicated
    assert store.get_embeddings("a", ["h1"])["h1"].tolist() == [7, 7, 7]
    assert store.count_embeddings() == {"a": 2, "b": 1}
    assert store.delete_embeddings("a") == 2 and store.count_embeddings() == {"b": 1}
    assert store.delete_embeddings() == 1 and store.count_embeddings() == {}


def test_bad_vectors_are_refused_and_nothing_is_stored(store: SQLiteStore) -> None:
    with pytest.raises(UsageError, match="one length"):
        store.put_embeddings("m", {"a": np.ones(3, np.float32), "b": np.ones(4, np.float32)})
    with pytest.raises(UsageError, match="1-D"):
        store.put_embeddings("m", {"a": np.ones((2, 2), np.float32)})
    with pytest.raises(UsageError, match="model id"):
        store.put_embeddings("", {"a": np.ones(3, np.float32)})
    assert store.count_embeddings() == {}


def test_many_hashes_are_read_in_chunks(store: SQLiteStore) -> None:
    vecs = {f"h{i}": np.full(2, i, np.float32) for i in range(1234)}
    store.put_embeddings("m", vecs)
    got = store.get_embeddings("m", list(vecs))
    assert len(got) == 1234 and got["h1233"].tolist() == [1233, 1233]


@pytest.mark.parametrize("wanted", [20, 3])  # most of the model's rows (one pass), or a few
def test_a_pass_over_the_model_reads_what_lookups_by_key_read(
        store: SQLiteStore, monkeypatch: pytest.MonkeyPatch, wanted: int) -> None:
    store.put_embeddings("m", {f"h{i}": np.full(2, i, np.float32) for i in range(30)})
    store.put_embeddings("n", {f"h{i}": np.full(3, i, np.float32) for i in range(5)})
    with store._write() as conn:  # a truncated blob is never returned
        conn.execute("UPDATE embeddings SET vector = x'0000' WHERE model_id = 'm' AND hash = 'h4'")
    hashes = [f"h{i}" for i in range(wanted)] + ["unknown", "h1"]
    monkeypatch.setattr(search_sql, "_SCAN_FROM", 2)
    scanned = store.get_embeddings("m", hashes)
    monkeypatch.setattr(search_sql, "_SCAN_FROM", 10**9)
    by_key = store.get_embeddings("m", hashes)
    assert {h: v.tolist() for h, v in scanned.items()} == {h: v.tolist() for h, v in by_key.items()}
    assert "h4" not in scanned and "unknown" not in scanned
    assert len(scanned) == min(wanted, 30) - (wanted > 4)


def test_get_tasks_returns_stored_traces_only(store: SQLiteStore) -> None:
    store.put_traces([Trace(id=f"t{i}", task=f"task {i}",
                            steps=[TraceStep(action="a", args={})]) for i in range(3)])
    assert store.get_tasks(["t2", "t0", "nope", "t2"]) == {"t2": "task 2", "t0": "task 0"}


def test_index_keeps_every_status_and_filters(store: SQLiteStore) -> None:
    proc = Procedure(name="p", steps=[Step(id="s1", action="a", args={})])
    store.put_procedure(proc)
    assert [n for n, _ in store.index_documents()] == ["p"]
    store.set_status("p", 1, "deprecated")
    assert store.index_documents() == []  # active only by default
    assert [n for n, _ in store.index_documents("deprecated")] == ["p"]
    assert [n for n, _ in store.index_documents(None)] == ["p"]
    assert store.index_status() == {"p": "deprecated"}
    assert store.search_text("a") == []  # FTS search stays active-only


def database_at(path: Path, version: int, *statements: str) -> Path:
    """A database with the migrations up to ``version`` only, then ``statements`` run."""
    conn = sqlite3.connect(path)
    apply_migrations(conn, [m for m in load_migrations() if m.version <= version])
    for sql in statements:
        conn.execute(sql)
    conn.commit()
    conn.close()
    return path


def test_migration_0004_upgrades_a_version_3_database(tmp_path: Path) -> None:
    path = database_at(tmp_path / "v3.db", 3, "INSERT INTO procedure_index (name) VALUES ('old')")
    store = SQLiteStore(path)  # applies 0004 on open
    assert store.index_status() == {"old": "active"}  # rows indexed before were active
    store.put_embeddings("m", {"h": np.ones(2, np.float32)})
    assert store.count_embeddings() == {"m": 1}
    store.close()


def test_migration_0005_starts_the_index_log_at_the_current_revision(tmp_path: Path) -> None:
    path = database_at(tmp_path / "v4.db", 4,
                       "UPDATE meta SET value = 7 WHERE key = 'index_revision'")
    store = SQLiteStore(path)  # applies 0005 on open
    assert store.index_revision() == 7
    assert store.index_changes(6) is None  # changes before the log: rebuild everything
    assert store.index_changes(7) == []
    store.put_procedure(Procedure(name="p", steps=[Step(id="s1", action="a")]))
    assert store.index_revision() == 8 and store.index_changes(7) == ["p"]
    store.close()


def test_migration_0006_adds_saved_indexes_to_a_version_5_database(tmp_path: Path) -> None:
    path = database_at(tmp_path / "v5.db", 5)
    store = SQLiteStore(path)  # applies 0006 on open
    assert store.get_index_snapshot("m") is None
    store.put_index_snapshot("m", store.index_revision(), b"data")
    assert store.get_index_snapshot("m") == (store.index_revision(), b"data")
    store.close()


def test_migration_0007_adds_calibrations_to_a_version_6_database(tmp_path: Path) -> None:
    path = database_at(tmp_path / "v6.db", 6, "INSERT INTO procedure_index (name) VALUES ('old')")
    with sqlite3.connect(path) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master")}
        assert "calibrations" not in names
    store = SQLiteStore(path)  # applies 0007 (and later ones) on open
    assert store.get_calibration("bm25") is None
    store.put_calibration("bm25", '{"x": 1}')
    assert store.index_status() == {"old": "active"}  # what was there stays
    store.close()
    with sqlite3.connect(path) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert 7 in versions and versions == sorted(versions)
    with SQLiteStore(path) as reopened:
        assert reopened.get_calibration("bm25") == '{"x": 1}'


def test_migration_0008_adds_leases_and_old_step_runs_stay_readable(tmp_path: Path) -> None:
    old_run = ('{"index": 0, "step_id": "s1", "action": "a", "args": {}, "sources": {}, '
               '"output": null, "error": "OSError: x", "status": "failed", "attempts": 3, '
               '"duration_ms": 1.0, "started_at": "2025-01-01T00:00:00Z", '
               '"child_execution_id": null}')
    header = Execution(id="ex_old", procedure="p", version=1, status="failed")
    path = database_at(
        tmp_path / "v6.db", 6,
        "INSERT INTO executions (id, procedure, version, status, json, started_at, seq) "
        f"VALUES ('ex_old', 'p', 1, 'failed', '{header.model_dump_json(exclude={'step_runs'})}', "
        "'2025-01-01T00:00:00.000000', 1)",
        f"INSERT INTO step_runs (execution_id, idx, json) VALUES ('ex_old', 0, '{old_run}')")
    store = SQLiteStore(path)  # applies 0007 (if any) and 0008 on open
    run = store.get_execution("ex_old").step_runs[0]
    assert (run.attempt, run.attempts, run.history) == (3, 3, [])  # its retries were 1..3
    assert store.find_lease("ex_old") is None  # rows from before have no lease
    assert store.acquire_lease("ex_old", "a", lease_s=5)
    store.close()


def test_the_index_log_keeps_a_bounded_number_of_revisions(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "m.db")
    conn = store._conn
    keep = search_sql.INDEX_LOG_KEEP
    conn.execute("UPDATE meta SET value = ? WHERE key = 'index_revision'", (keep + 998,))
    conn.execute("INSERT INTO index_log (revision, name) VALUES (5, 'old'), (?, 'recent')",
                 (keep + 500,))
    store.put_procedure(Procedure(name="p", steps=[Step(id="s1", action="a")]))  # revision keep+999
    assert store.index_changes(0) == ["old", "p", "recent"]  # not pruned yet
    store.put_procedure(Procedure(name="q", steps=[Step(id="s1", action="a")]))  # keep + 1000
    assert store.index_changes(999) is None  # older than the kept log: rebuild
    assert store.index_changes(1000) == ["p", "q", "recent"]
    assert [r[0] for r in conn.execute("SELECT name FROM index_log ORDER BY revision")] == \
        ["recent", "p", "q"]
    store.close()
