"""Tests for ``procmem plan`` (procmem.cli.plan), through the real entry point
(procmem.cli.main), on the bundled τ-retail sample (MIT, see tests/data) learned
into a store under ``tmp_path``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import storebackend
from procmem.cli import main
from procmem.induction.planning import Plan
from procmem.memory import Memory

SAMPLE = Path(__file__).parent / "data" / "tau_retail_sample.jsonl"
CANCEL = "Cancel order #W1234567 because ordered by mistake."


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "memory.db"
    monkeypatch.setenv("PROCMEM_DB", str(path))
    monkeypatch.setenv("PROCMEM_EMBEDDER", "none")
    monkeypatch.setenv("COLUMNS", "200")
    with Memory(path, embedder=None) as mem:
        mem.import_traces(SAMPLE)
        mem.learn()
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_plan_json_is_the_plan_shape_memory_returns(db: Path) -> None:
    result = run("plan", CANCEL, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    with Memory(db, embedder=None) as mem:
        assert data == mem.plan(CANCEL).to_json()
    plan = Plan.model_validate(data)
    assert plan.procedure == "cancel_pending_order" and plan.would_complete_without_asking
    assert plan.steps[0].args == {"order_id": "#W1234567", "reason": "ordered by mistake"}


def test_plan_table_shows_values_sources_spans_and_pauses(db: Path) -> None:
    result = run("plan", "Return #W1234567 via paypal_7654321: Electric Kettle; ")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "return_delivered_order_items@1" in out and "confident" in out
    assert "/order_id" in out and "#W1234567" in out and "param order_id" in out
    assert "[7, 16)" in out  # the span in the task
    assert "ask:s1:/item_ids" in out and "would pause" in out


def test_plan_of_a_named_procedure_with_params(db: Path) -> None:
    data = json.loads(run("plan", "Cancel order #W1234567 please", "--procedure",
                          "cancel_pending_order", "--params",
                          '{"reason": "no longer needed"}', "--json").stdout)
    assert data["selected_by"] == "caller" and data["pauses"] == []
    sources = {v["path"]: v["source"] for v in data["steps"][0]["values"]}
    assert sources == {"/order_id": "param", "/reason": "given"}
    missing = run("plan", "Cancel order #W1234567 please", "--procedure",
                  "cancel_pending_order")
    assert missing.exit_code == 0 and "param:reason" in missing.stdout


def test_plan_errors_and_nothing_fits(db: Path, tmp_path: Path,
                                      store_factory: storebackend.Factory) -> None:
    unknown = run("plan", CANCEL, "--procedure", "nope")
    assert unknown.exit_code == 3 and "error[not_found]" in unknown.stderr
    bad = run("plan", CANCEL, "--procedure", "cancel_pending_order", "--params", '{"x": 1}')
    assert bad.exit_code == 2 and "error[param_error]" in bad.stderr
    assert run("plan", CANCEL, "--version", "1").exit_code == 2
    store_factory(str(tmp_path / "empty.db")).close()  # an empty store of the backend under test
    empty = run("--db", str(tmp_path / "empty.db"), "plan", CANCEL)
    assert empty.exit_code == 0 and "no procedure" in empty.stdout
    data = json.loads(run("--db", str(tmp_path / "empty.db"), "plan", CANCEL, "--json").stdout)
    assert "procedure" not in data  # None fields are left out
    assert data["steps"] == [] and data["would_complete_without_asking"] is False
