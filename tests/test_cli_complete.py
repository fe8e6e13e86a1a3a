"""The complete CLI (issue 15, item 2): executions, traces from lineage, rename, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import procmem
from procmem.cli import main
from procmem.cli.app import INTERRUPTED_EXIT, PAUSED_EXIT
from procmem.formats.traceio import read_traces
from procmem.memory import Memory

CANCEL = "cancel_pending_order"
TOOLS = {CANCEL: lambda **args: {"status": "cancelled", **args}}


def run(db: Path | str, *args: str) -> Result:
    return CliRunner().invoke(main, ["--db", str(db), "--embedder", "none", *args],
                              catch_exceptions=False)


def run_json(db: Path, *args: str) -> Any:
    result = run(db, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tau_sample_path: Path) -> Path:
    """A store learned from the sample, with one succeeded, one paused and one running run."""
    db = tmp_path_factory.mktemp("complete") / "m.db"
    traces, _ = read_traces(tau_sample_path)
    with Memory(db, embedder=None) as mem:
        mem.learn(traces)
        mem.replay(CANCEL, tools=TOOLS, params={"order_id": "#W1", "reason": "ordered by mistake"})
        mem.replay(CANCEL, tools=TOOLS, params={"order_id": "#W2"})  # reason missing: paused
        mem.start(CANCEL, task="cancel order #W3 because no longer needed")
    return db


@pytest.fixture
def db(built: Path, tmp_path: Path) -> Iterator[Path]:
    copy = tmp_path / "m.db"
    copy.write_bytes(built.read_bytes())
    yield copy


# ------------------------------------------------------------------ executions and traces


def test_executions_list_filters_pages_and_prints_the_rest_shape(db: Path) -> None:
    rows = run_json(db, "executions", "list")
    with Memory(db, embedder=None) as mem:
        assert rows == [e.model_dump(mode="json") for e in mem.list_executions()]
    assert len(rows) == 3 and {"paused", "succeeded"} <= {r["status"] for r in rows}
    paused = run_json(db, "executions", "list", "--status", "paused")
    assert paused == [r for r in rows if r["status"] == "paused"]
    assert run_json(db, "executions", "list", "--procedure", "nope") == []
    page = run_json(db, "executions", "list", "--limit", "1", "--offset", "1")
    assert [r["id"] for r in page] == [rows[1]["id"]]
    human = run(db, "executions", "list", "--procedure", CANCEL)
    assert human.exit_code == 0
    assert all(r["id"] in human.stdout for r in rows) and "paused" in human.stdout
    assert run(db, "executions", "list", "--status", "gone").exit_code == 2


def test_executions_show_opens_one_execution(db: Path) -> None:
    paused = run_json(db, "executions", "list", "--status", "paused")[0]
    assert run_json(db, "executions", "show", paused["id"]) == paused
    human = run(db, "executions", "show", paused["id"])
    assert human.exit_code == 0 and "paused" in human.stdout
    assert f"procmem resume {paused['id']}" in human.stdout
    missing = run(db, "executions", "show", "ex_nope")
    assert missing.exit_code == 3
    assert missing.stderr == "error[not_found]: execution 'ex_nope' not found\n"


def test_lineage_trace_ids_open_with_traces_show(db: Path) -> None:
    proc = run_json(db, "show", CANCEL)
    first = proc["lineage"]["traces"][0]
    trace = run_json(db, "traces", "show", first)
    assert trace["id"] == first
    human = run(db, "traces", "show", first)
    assert human.exit_code == 0 and f"trace {first}" in human.stdout and CANCEL in human.stdout
    listed = run_json(db, "traces", "list", "--limit", "2", "--offset", "1")
    assert len(listed) == 2


# ------------------------------------------------------------------ rename


def test_rename_keeps_history_and_the_old_name_resolves_with_a_note(db: Path) -> None:
    before = run_json(db, "history", CANCEL)
    runs = run_json(db, "executions", "list", "--procedure", CANCEL)
    renamed = run(db, "rename", CANCEL, "cancel_order")
    assert renamed.exit_code == 0, renamed.output
    assert f"renamed {CANCEL} to cancel_order" in renamed.stdout
    shown = run(db, "show", CANCEL, "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["name"] == "cancel_order"
    assert shown.stderr == f"note: {CANCEL} was renamed to cancel_order\n"
    after = run_json(db, "history", "cancel_order")
    assert [(h["version"], h["status"]) for h in after] == [
        (h["version"], h["status"]) for h in before]
    moved = run_json(db, "executions", "list", "--procedure", CANCEL)
    assert [r["id"] for r in moved] == [r["id"] for r in runs]
    assert {r["procedure"] for r in moved} == {"cancel_order"}
    names = [p["name"] for p in run_json(db, "list")]
    assert "cancel_order" in names and CANCEL not in names
    hits = run_json(db, "search", "cancel my pending order, I ordered by mistake",
                    "--retriever", "bm25")
    assert hits[0]["name"] == "cancel_order"


def test_rename_refusals(db: Path) -> None:
    taken = run(db, "rename", CANCEL, "return_delivered_order_items")
    assert taken.exit_code == 4 and taken.stderr.startswith("error[conflict]: ")
    bad = run(db, "rename", CANCEL, "no spaces")
    assert bad.exit_code == 2 and bad.stderr.startswith("error[invalid_procedure]: ")
    assert run(db, "rename", "nope", "x").exit_code == 3


# ------------------------------------------------------------------ exit codes


def test_a_paused_replay_exits_10(db: Path, tmp_path: Path) -> None:
    tools = tmp_path / "cancel_tools.py"
    tools.write_text(f"TOOLS = {{{CANCEL!r}: lambda **args: {{'status': 'cancelled'}}}}\n")
    sys.path.insert(0, str(tmp_path))
    try:
        result = run(db, "replay", CANCEL, "--tools", "cancel_tools:TOOLS", "--params",
                     '{"order_id": "#W9"}', "--json")
    finally:
        sys.path.remove(str(tmp_path))
    assert result.exit_code == PAUSED_EXIT == 10
    assert json.loads(result.stdout)["status"] == "paused"


def test_click_usage_errors_are_one_error_line(tmp_path: Path) -> None:
    for args in (["bogus"], ["show"], ["list", "--nope"], ["traces", "list", "--limit", "0"]):
        result = run(tmp_path / "m.db", *args)
        assert result.exit_code == 2, args
        assert result.stderr.startswith("error[usage]: ") and result.stderr.count("\n") == 1
        assert result.stdout == ""


def test_ctrl_c_exits_130(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Memory, "list_procedures", interrupted)
    result = run(db, "list")
    assert result.exit_code == INTERRUPTED_EXIT == 130
    assert result.stderr.lstrip("\n").startswith("error[interrupted]: ")  # after the ^C line


@pytest.mark.parametrize("args", [["list"], ["show", CANCEL], ["search", "cancel"], ["stats"],
                                  ["history", CANCEL], ["traces", "list"],
                                  ["executions", "list"], ["executions", "show", "ex_1"]])
def test_read_commands_never_create_a_store(tmp_path: Path, args: list[str]) -> None:
    db = tmp_path / "procmem.db"
    result = run(db, *args)
    assert result.exit_code == 3
    assert result.stderr == (f"error[not_found]: no store at {db} (procmem learn or procmem "
                             "import creates one; --db PATH or PROCMEM_DB picks another)\n")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_folder_is_a_clear_error(tmp_path: Path, tau_sample_path: Path) -> None:
    db = tmp_path / "no" / "such" / "m.db"
    result = run(db, "learn", str(tau_sample_path))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error[usage]: --db {db}: the folder ")
    assert "does not exist" in result.stderr and not (tmp_path / "no").exists()


def test_the_real_entry_point_prints_usage_errors_the_same_way(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(procmem.__file__).parents[1])}
    env.pop("PROCMEM_DB", None)
    done = subprocess.run([sys.executable, "-m", "procmem", "bogus"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr.startswith("error[usage]: No such command 'bogus'.")
    listed = subprocess.run([sys.executable, "-m", "procmem", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert listed.returncode == 3 and "no store at procmem.db" in listed.stderr
    assert list(tmp_path.iterdir()) == []
