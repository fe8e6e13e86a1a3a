"""Tests for the learning commands of the ``procmem`` CLI (procmem.cli.learning),
through the real entry point (procmem.cli.main) with ``--db`` under ``tmp_path``.

The memory is built through the Python API on the same file: a procedure
learned from three "Ship order ..." traces (charge_card, then ship), replayed
against Python tools that can decline cards and ship slowly, with evidence.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import storebackend
from procmem.cli import main
from procmem.cli import render_learning as render
from procmem.core.model import Trace, TraceStep
from procmem.memory import Memory
from shipping import ship_trace

SHIP = "charge_card-then-ship"
REFUND = "refund"


def refund_trace(i: int) -> Trace:
    order, amount = f"#R{2000 + i}", 10 + 5 * i
    return Trace(id=f"refund-{i}", task=f"Refund order {order} for {amount} dollars.",
                 outcome="success", steps=[
                     TraceStep(action="refund", args={"order_id": order, "amount": amount},
                               output=json.dumps({"refunded": amount}))])


def charge_card(order_id: str, amount: int) -> str:
    if amount > 100:
        raise RuntimeError("card declined")
    return json.dumps({"charged": amount})


def charge_wallet(order_id: str, amount: int) -> str:
    return json.dumps({"charged": amount, "via": "wallet"})


def ship(order_id: str) -> str:
    time.sleep(0.03)  # the slow step: it dominates the procedure's duration
    return json.dumps({"shipped": order_id})


def refund(order_id: str, amount: int) -> str:
    return json.dumps({"refunded": amount})


TOOLS: dict[str, Any] = {"charge_card": charge_card, "charge_wallet": charge_wallet,
                         "ship": ship, "refund": refund}


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A memory with the two learned procedures and no executions yet."""
    monkeypatch.setenv("COLUMNS", "200")  # rich output wide enough not to fold names
    path = tmp_path / "learning.db"
    with Memory(path) as mem:
        mem.learn([*(ship_trace(i) for i in range(3)), *(refund_trace(i) for i in range(3))])
        assert {p.name for p in mem.list_procedures()} == {SHIP, REFUND}
    return path


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), *args], catch_exceptions=False)


def run_json(db: Path, *args: str) -> Any:
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def ship_runs(db: Path, *, ok: int, failed: int) -> list[str]:
    """``ok`` successful and ``failed`` declined replays of SHIP v1, each with evidence."""
    ids = []
    with Memory(db) as mem:
        v1 = mem.get_procedure(SHIP, 1)
        for i in range(ok + failed):
            amount = 20 if i < ok else 500
            ex = mem.replay(v1, tools=TOOLS, task=f"Ship order #O3{i:03d} paying {amount} dollars.")
            assert ex.status == ("succeeded" if i < ok else "failed")
            mem.report(ex.id, reward=1.0 if i < ok else 0.0, source="environment")
            ids.append(ex.id)
    return ids


def fail_and_recover(db: Path) -> str:
    """A declined replay, then the agent finishing the task itself with the wallet."""
    task = "Ship order #O2001 paying 150 dollars."
    with Memory(db) as mem:
        ex = mem.replay(SHIP, tools=TOOLS, task=task)
        assert ex.status == "failed"
        mem.report(ex.id, reward=0.0, source="environment")
        with mem.record(task, metadata={"recovers": ex.id}) as rec:
            tools = rec.wrap_tools(TOOLS)
            tools["charge_wallet"](order_id="#O2001", amount=150)
            tools["ship"](order_id="#O2001")
    return ex.id


# ----------------------------------------------------------------------- stats


def test_stats_json_counts_steps_and_flags_slow_and_failing(db: Path) -> None:
    ship_runs(db, ok=5, failed=5)
    rows = run_json(db, "stats")
    assert [r["name"] for r in rows] == sorted([SHIP, REFUND])
    by_name = {r["name"]: r for r in rows}
    st = by_name[SHIP]
    assert (st["version"], st["runs"], st["successes"], st["failures"]) == (1, 10, 5, 5)
    assert st["reliability"] == pytest.approx(0.5)  # Beta(6, 6)
    assert st["reliability_lower"] < 0.5 < st["reliability_upper"]
    assert set(st["flags"]) == {"has-slow-steps", "has-failing-steps"}
    charge, shipping = st["steps"]
    assert (charge["action"], charge["runs"], charge["successes"], charge["failures"]) == (
        "charge_card", 10, 5, 5)
    assert charge["errors"] == {"RuntimeError": 5}
    assert charge["flags"] == ["failing"]
    assert (shipping["action"], shipping["runs"], shipping["successes"]) == ("ship", 5, 5)
    assert shipping["flags"] == ["slow"] and shipping["p50_ms"] >= 30
    assert by_name[REFUND]["runs"] == 0 and by_name[REFUND]["flags"] == []


def test_stats_name_lists_every_version_and_human_tables(db: Path) -> None:
    ship_runs(db, ok=5, failed=5)
    fail_and_recover(db)
    assert run_json(db, "optimize", SHIP)["created"]
    rows = run_json(db, "stats", SHIP)
    assert [(r["version"], r["status"]) for r in rows] == [(1, "active"), (2, "candidate")]
    assert rows[0]["runs"] == 11 and rows[1]["runs"] == 0
    human = run(db, "stats", SHIP)
    assert human.exit_code == 0, human.output
    out = human.stdout
    assert "steps of charge_card-then-ship v1" in out  # the current version's steps
    assert "RuntimeError ×6" in out and "failing" in out and "slow" in out
    assert "▶ 1" in out and "candidate" in out
    assert "failing: 3+ failed or skipped runs" in out  # legend for the flags shown
    everything = run(db, "stats")
    assert everything.exit_code == 0 and SHIP in everything.stdout and REFUND in everything.stdout


def test_stats_empty_memory_and_unknown_name(tmp_path: Path,
                                            store_factory: storebackend.Factory) -> None:
    empty = tmp_path / "empty.db"
    assert run(empty, "stats").exit_code == 3 and not empty.exists()  # never creates a store
    store_factory(str(empty)).close()  # an empty store of the backend under test
    result = run(empty, "stats")
    assert result.exit_code == 0 and "no procedures yet" in result.stdout
    assert run_json(empty, "stats") == []
    missing = run(empty, "stats", "nope")
    assert missing.exit_code == 3
    assert missing.stderr == "error[not_found]: procedure 'nope' not found\n"


def test_flags_render_with_their_colors() -> None:
    text = render.flags_text(["slow", "failing"], pinned=True)
    assert text.plain == "failing slow pinned"  # most serious first, pinned last
    styles = {text.plain[s.start:s.end]: str(s.style) for s in text.spans}
    assert styles == {"failing": "bold red", "slow": "yellow", "pinned": "cyan"}


# ---------------------------------------------------------------------- report


def test_report_json_moves_reliability_and_bad_reward_exits_2(db: Path) -> None:
    (ex_id,) = ship_runs(db, ok=1, failed=0)
    first = run_json(db, "stats", SHIP)[0]
    assert first["evidence"] == 1
    bad = run(db, "report", ex_id, "--reward", "1.5")
    assert bad.exit_code == 2 and bad.stderr.startswith("error[usage]: bad evidence")
    assert len(bad.stderr.strip().splitlines()) == 1
    assert run(db, "report", ex_id, "--reward", "lots").exit_code == 2
    assert run(db, "report", ex_id, "--reward", "1", "--source", "oracle").exit_code == 2
    assert run_json(db, "stats", SHIP)[0]["evidence"] == 1  # nothing stored
    data = run_json(db, "report", ex_id, "--reward", "1", "--source", "test",
                    "--note", "order arrived")
    assert data["evidence"]["source"] == "test" and data["evidence"]["note"] == "order arrived"
    assert data["before"]["reliability"] == pytest.approx(2 / 3)
    assert data["after"]["reliability"] == pytest.approx(3 / 4)
    assert data["changes"] == []
    agent = run_json(db, "report", ex_id, "--reward", "1", "--source", "agent")
    assert agent["after"]["reliability"] == pytest.approx(3 / 4)  # agent cannot raise it
    missing = run(db, "report", "ex_nope", "--reward", "1")
    assert missing.exit_code == 3 and missing.stderr.startswith("error[not_found]: ")


def test_report_that_promotes_a_candidate_says_so(db: Path) -> None:
    ship_runs(db, ok=0, failed=4)
    fail_and_recover(db)
    assert run_json(db, "optimize")["created"][0]["version"] == 2
    with Memory(db) as mem:
        cand = mem.get_procedure(SHIP, 2)
        ids = [mem.replay(cand, tools=TOOLS, task=f"Ship order #O5{i:03d} paying 150 dollars.").id
               for i in range(10)]
        for ex_id in ids[:9]:  # below the 10 judged runs a decision needs
            mem.report(ex_id, reward=1.0, source="environment")
        assert mem.get_procedure(SHIP).version == 1
    data = run_json(db, "report", ids[9], "--reward", "1", "--source", "environment")
    assert data["version"] == 2 and data["after"]["successes"] == 10
    assert {(c["version"], c["change"]) for c in data["changes"]} == {(2, "promoted"),
                                                                      (1, "replaced")}
    assert run_json(db, "show", SHIP)["version"] == 2
    human = run(db, "report", ids[0], "--reward", "1", "--source", "user")
    assert human.exit_code == 0
    assert "reliability of charge_card-then-ship v2" in human.stdout
    assert "no version was promoted or demoted" in human.stdout


# --------------------------------------------------------- optimize and history


def test_optimize_json_creates_a_verified_repair_candidate_with_its_diff(db: Path) -> None:
    failed_id = fail_and_recover(db)
    data = run_json(db, "optimize", SHIP)
    assert data["rejected"] == [] and data["extra"] == []
    (cand,) = data["created"]
    assert (cand["name"], cand["version"], cand["kind"], cand["status"]) == (
        SHIP, 2, "repair", "candidate")
    assert cand["parent_version"] == 1 and len(cand["reproduced"]) >= 1
    assert any(line.startswith("+ ") and "charge_wallet" in line for line in cand["diff"])
    assert any(line.startswith("- ") and "charge_card" in line for line in cand["diff"])
    assert failed_id
    assert run_json(db, "optimize", SHIP)["created"] == []  # not proposed twice
    again = run(db, "optimize")
    assert again.exit_code == 0 and "no candidates" in again.stdout
    assert run(db, "optimize", "nope").exit_code == 3


def test_optimize_human_output_lists_candidate_and_diff(db: Path) -> None:
    fail_and_recover(db)
    result = run(db, "optimize")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "1 candidate(s) created" in out and "repair" in out
    assert "charge_card-then-ship v1 → v2" in out
    assert "+ r1 charge_wallet(order_id=$param order_id, amount=$param amount)" in out
    assert "- s1 charge_card(order_id=$param order_id, amount=$param amount)" in out


def test_history_json_and_table(db: Path) -> None:
    fail_and_recover(db)
    run_json(db, "optimize")
    rows = run_json(db, "history", SHIP)
    assert [(r["version"], r["status"], r["current"]) for r in rows] == [
        (1, "active", True), (2, "candidate", False)]
    assert rows[0]["verification"] is None and rows[0]["runs"] == 1
    assert rows[1]["parent_version"] == 1 and rows[1]["reason"].startswith("repair")
    assert rows[1]["verification"]["ok"] is True and rows[1]["steps"] == 2
    human = run(db, "history", SHIP)
    assert human.exit_code == 0
    assert "history of charge_card-then-ship" in human.stdout
    assert "▶ 1" in human.stdout and "✓ 1 run(s)" in human.stdout
    assert run(db, "history", "nope").exit_code == 3


def test_diff_lines_colored_and_missing_version(db: Path) -> None:
    fail_and_recover(db)
    run_json(db, "optimize")
    result = run(db, "diff", SHIP, "1", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == f"{SHIP} v1 → v2"
    assert "- s1 charge_card(order_id=$param order_id, amount=$param amount)" in lines
    assert "+ r1 charge_wallet(order_id=$param order_id, amount=$param amount)" in lines
    assert run_json(db, "diff", SHIP, "1", "2")["lines"] == lines[1:]
    same = run(db, "diff", SHIP, "1", "1")
    assert same.exit_code == 0 and "same steps and params" in same.stdout
    assert run(db, "diff", SHIP, "1", "9").exit_code == 3
    text = render.diff_text(["+ added", "- removed", "~ params: ~ amount"])
    assert [str(s.style) for s in text.spans] == ["green", "red", "yellow"]


def test_rollback_restores_the_exact_earlier_version(db: Path) -> None:
    fail_and_recover(db)
    run_json(db, "optimize")
    with Memory(db) as mem:
        mem.store.set_status(SHIP, 2, "active")  # as if promoted
    assert run_json(db, "show", SHIP)["version"] == 2
    data = run_json(db, "rollback", SHIP, "1")
    assert data == {"name": SHIP, "version": 3, "restores": 1, "status": "active"}
    old = run_json(db, "show", SHIP, "--version", "1")
    new = run_json(db, "show", SHIP, "--version", "3")
    assert new["steps"] == old["steps"] and new["params"] == old["params"]
    assert new["lineage"]["parent_version"] == 1
    assert run_json(db, "show", SHIP)["version"] == 3
    human = run(db, "rollback", SHIP, "2")
    assert human.exit_code == 0 and "v4 is now current: it restores v2" in human.stdout
    assert run(db, "rollback", SHIP, "9").exit_code == 3


# ------------------------------------------------------- pin, decay and delete


def test_pinned_procedures_do_not_decay(db: Path) -> None:
    with Memory(db) as mem:  # five refunds and five shipments judged failed
        for i in range(5):
            for name, task in ((SHIP, f"Ship order #O7{i:03d} paying 500 dollars."),
                               (REFUND, f"Refund order #R7{i:03d} for 10 dollars.")):
                ex = mem.replay(name, tools=TOOLS, task=task)
                mem.report(ex.id, reward=0.0, source="user")
    assert all("unreliable" in r["flags"] for r in run_json(db, "stats"))
    pinned = run(db, "pin", SHIP)
    assert pinned.exit_code == 0 and f"pinned {SHIP}" in pinned.stdout
    assert run_json(db, "stats", SHIP)[0]["pinned"] is True
    assert run_json(db, "decay") == [{"name": REFUND, "version": 1, "why": "unreliable"}]
    statuses = {p["name"]: p["status"] for p in run_json(db, "list")}
    assert statuses == {SHIP: "active", REFUND: "deprecated"}  # deprecated, not deleted
    nothing = run(db, "decay")
    assert nothing.exit_code == 0 and "nothing to deprecate" in nothing.stdout
    assert run(db, "unpin", SHIP).exit_code == 0
    assert run_json(db, "stats", SHIP)[0]["pinned"] is False
    human = run(db, "decay")
    assert human.exit_code == 0 and SHIP in human.stdout and "unreliable" in human.stdout
    assert run(db, "pin", "nope").exit_code == 3


def test_delete_needs_yes(db: Path) -> None:
    refused = run(db, "delete", SHIP)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error[usage]: delete removes all 1 version(s)")
    assert "--yes" in refused.stderr
    assert SHIP in {p["name"] for p in run_json(db, "list")}
    done = run(db, "delete", SHIP, "--yes")
    assert done.exit_code == 0 and f"deleted {SHIP}" in done.stdout
    assert {p["name"] for p in run_json(db, "list")} == {REFUND}
    gone = run(db, "delete", SHIP, "--yes")
    assert gone.exit_code == 3
    assert gone.stderr == f"error[not_found]: procedure {SHIP!r} not found\n"
