"""API keys are stored hashed and bound to a tenant and scopes; tenants are kept apart
in the store itself (Memory(..., tenant=...)), whatever adapter asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from procmem import Memory
from procmem.cli import main
from procmem.core.errors import Conflict, NotFound, Unauthorized, UsageError
from procmem.security.keys import SCOPES, ApiKey, KeyRing, check_scopes, check_tenant, hash_secret
from procmem.store import SQLiteStore, open_store, tenant_location

SAMPLE = Path(__file__).parent.parent / "data" / "tau_retail_sample.jsonl"


def test_a_key_verifies_to_its_tenant_and_scopes(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as store:
        ring = KeyRing(store)
        record, text = ring.create(tenant="acme", scopes=["run", "read"], name="agent")
        principal = ring.verify(text)
        assert (principal.key_id, principal.tenant, principal.scopes) == (record.id, "acme",
                                                                         ("read", "run"))
        assert ring.verify(f"  {text} ").tenant == "acme"  # surrounding blanks are not the key


def test_malformed_unknown_wrong_and_revoked_keys_are_refused(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as store:
        ring = KeyRing(store)
        record, text = ring.create()
        wrong = text[:-1] + ("A" if text[-1] != "A" else "B")
        unknown = "pmk_000000000000_" + text.split("_", 2)[2]
        for bad in ("", "Bearer", "pmk_xyz", text + "x", wrong, unknown):
            with pytest.raises(Unauthorized):
                ring.verify(bad)
        assert ring.revoke(record.id).revoked
        with pytest.raises(Unauthorized, match="revoked"):
            ring.verify(text)
        assert ring.revoke(record.id).revoked  # idempotent, stays revoked
        with pytest.raises(NotFound):
            ring.revoke("0123456789ab")
        with pytest.raises(NotFound):  # an admin of another tenant cannot revoke it
            ring.revoke(ring.create(tenant="acme")[0].id, tenant="default")


def test_the_secret_is_not_recoverable_from_the_store(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    texts = []
    with SQLiteStore(db) as store:
        ring = KeyRing(store)
        for tenant in ("default", "acme", "globex"):
            texts.append(ring.create(tenant=tenant, scopes=SCOPES)[1])
        ring.revoke(ring.list("globex")[0].id)
        stored = ring.list()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())  # db, wal, shm
    for text in texts:
        secret = text.split("_", 2)[2]
        assert secret.encode() not in raw and text.encode() not in raw
        assert secret not in json.dumps([k.model_dump(mode="json") for k in stored])
    assert all(len(k.secret_hash) == 64 for k in stored)
    key_id, secret = texts[0].split("_", 2)[1:]
    assert stored[0].secret_hash == hash_secret(key_id, secret)  # one-way: SHA-256 of 256 bits


def test_a_key_is_never_replaced(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "m.db") as store:
        record, _ = KeyRing(store).create()
        with pytest.raises(Conflict):
            store.put_api_key(ApiKey(id=record.id, tenant="acme", scopes=SCOPES,
                                     secret_hash="0" * 64))
        assert store.find_api_key(record.id) == record


@pytest.mark.parametrize("name", ["", "../x", "a/b", "A", "x" * 64, "-x", "a b", "a.db", "..",
                                  "a\x00"])
def test_tenant_names_that_could_be_paths_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UsageError):
        check_tenant(name)
    with pytest.raises(UsageError):
        Memory(tmp_path / "m.db", tenant=name, embedder=None)


def test_scopes_are_checked() -> None:
    assert check_scopes(["admin", "read", "read"]) == ("read", "admin")
    for bad in ([], ["root"], ["read", "sudo"]):
        with pytest.raises(UsageError):
            check_scopes(bad)


def test_each_tenant_has_its_own_store(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    assert tenant_location(db, "default") == db
    assert tenant_location(db, "acme") == f"{db}.tenants/acme.db"
    assert tenant_location(":memory:", "acme") == ":memory:"
    with open_store(f"sqlite:///{db}", tenant="acme") as store:
        assert store.location == f"{db}.tenants/acme.db"


def test_another_tenant_never_reads_or_updates_a_tenants_procedure(tmp_path: Path) -> None:
    """Tenant B's learn on the same task family creates B's own procedure; A's is untouched
    (issue 12: "Tenant B's learn updated tenant A's procedure")."""
    db = tmp_path / "m.db"
    lines = SAMPLE.read_text().splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:40]) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[40:80]) + "\n")
    with Memory(db, embedder=None) as a, Memory(db, tenant="acme", embedder=None) as b:
        a.import_traces(tmp_path / "a.jsonl")
        learned = a.learn()
        before = {p.name: p.model_dump() for p in a.list_procedures(limit=1000)}
        assert learned.created and b.list_procedures() == [] and b.list_traces() == []
        assert b.search("cancel my pending order #W1234567") == []
        for name in before:
            with pytest.raises(NotFound):
                b.get_procedure(name)
        b.import_traces(tmp_path / "b.jsonl")
        assert set(b.learn().created) & set(before)  # the same names, in B's own store
        after = {p.name: p.model_dump() for p in a.list_procedures(limit=1000)}
        assert after == before
        assert len(a.list_traces(limit=1000)) == 40 == len(b.list_traces(limit=1000))
        assert {t.id for t in a.list_traces(limit=1000)}.isdisjoint(
            {t.id for t in b.list_traces(limit=1000)})
        turn = b.start(next(iter(before)))
        with pytest.raises(NotFound):
            a.get_execution(turn.execution.id)


def test_cli_keys_create_list_revoke(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    made = runner.invoke(main, ["--db", db, "keys", "create", "--tenant", "acme",
                                "--scope", "read", "--name", "ci", "--json"])
    assert made.exit_code == 0, made.output
    created = json.loads(made.stdout)
    assert created["tenant"] == "acme" and created["scopes"] == ["read"]
    assert "secret_hash" not in created and created["key"].startswith("pmk_")
    listed = json.loads(runner.invoke(main, ["--db", db, "keys", "list", "--json"]).stdout)
    assert [k["id"] for k in listed] == [created["id"]]
    assert created["key"] not in runner.invoke(main, ["--db", db, "keys", "list"]).output
    gone = runner.invoke(main, ["--db", db, "keys", "revoke", created["id"], "--json"])
    assert json.loads(gone.stdout)["revoked_at"] is not None
    bad = runner.invoke(main, ["--db", db, "keys", "create", "--tenant", "../etc"])
    assert bad.exit_code == 2 and "error[usage]" in bad.output


def test_cli_tenant_option_scopes_every_command(tmp_path: Path) -> None:
    db = str(tmp_path / "m.db")
    runner = CliRunner()
    learned = runner.invoke(main, ["--db", db, "--embedder", "none", "learn", str(SAMPLE)])
    assert learned.exit_code == 0, learned.output
    theirs = runner.invoke(main, ["--db", db, "--tenant", "acme", "list", "--json"])
    assert theirs.exit_code == 0 and json.loads(theirs.stdout) == []
    ours = json.loads(runner.invoke(main, ["--db", db, "list", "--json"]).stdout)
    assert ours
    export = runner.invoke(main, ["--db", db, "--tenant", "acme", "export", ours[0]["name"],
                                   "--format", "json"])
    assert export.exit_code != 0 and "not_found" in export.output
