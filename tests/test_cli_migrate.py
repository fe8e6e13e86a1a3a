"""``procmem migrate``: what a store lacks, listed without changes, then applied."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from procmem.cli import main
from procmem.store import SQLiteStore, pending_migrations
from procmem.store.migrate import apply_migrations, load_migrations


@pytest.fixture(autouse=True)
def _sqlite_only(store_factory: object) -> None:
    """These tests read SQLite's migration table (``--store-backend`` swaps the store)."""
    if store_factory is not SQLiteStore:
        pytest.skip("reads SQLite's schema_migrations table")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_dry_run_lists_every_migration_of_a_new_store_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    code, out = _run("--db", str(db), "migrate", "--dry-run", "--json")
    assert code == 0, out
    report = json.loads(out)
    assert [m["version"] for m in report["pending"]] == [m.version for m in load_migrations()]
    assert report["applied"] == [] and not db.exists()


def test_migrate_applies_what_an_old_store_lacks_once(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    *older, newest = load_migrations()
    conn = sqlite3.connect(db, isolation_level=None)  # made by the release before the newest
    apply_migrations(conn, older)
    conn.close()
    assert [m.version for m in pending_migrations(db)] == [newest.version]
    code, out = _run("--db", str(db), "migrate")
    assert code == 0 and f"applied 1 migration(s)\n  {newest.name}" in out
    assert pending_migrations(db) == []
    code, out = _run("--db", str(db), "migrate")
    assert code == 0 and "the schema is current" in out


def test_a_tenant_is_migrated_in_its_own_store(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    code, out = _run("--db", str(db), "--tenant", "acme", "migrate", "--json")
    assert code == 0, out
    assert len(json.loads(out)["applied"]) == len(load_migrations())
    assert (tmp_path / "m.db.tenants" / "acme.db").exists() and not db.exists()
    assert pending_migrations(db, tenant="acme") == []


def test_a_malformed_location_is_a_usage_error(tmp_path: Path) -> None:
    code, out = _run("--db", "sqlite:/nowhere", "migrate")
    assert code == 2 and "error[usage]" in out
