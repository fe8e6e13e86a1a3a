"""Tests for ``procmem eval``'s safety figures and ``--loo``, through the real CLI entry point."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from procmem.cli import main

SAFETY_KEYS = {"hit_at_1", "first_stage_hit_at_1", "overlap_hit_at_1", "supplied_precision",
               "silent_errors", "silent_error_cases", "confident_precision",
               "confident_coverage", "reliability", "paused_at_selection", "folds",
               "hit_at_5", "mrr", "replay_exact", "automation", "findable"}


def sample_lines() -> list[str]:
    ref = resources.files("procmem").joinpath("data", "tau_retail", "sample.jsonl")
    return ref.read_text(encoding="utf-8").splitlines()


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = tmp_path / "memory.db"
    monkeypatch.setenv("PROCMEM_DB", str(db))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return db


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["--embedder", "none", *args], catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("\n".join(sample_lines()[:60]) + "\n")
    test.write_text("\n".join(sample_lines()[60:75]) + "\n")
    return train, test


def check_figures(figures: dict[str, Any]) -> None:
    assert SAFETY_KEYS <= set(figures)
    assert isinstance(figures["silent_errors"], int) and figures["silent_errors"] >= 0
    assert len(figures["silent_error_cases"]) <= figures["silent_errors"]
    for key in ("hit_at_1", "first_stage_hit_at_1", "overlap_hit_at_1"):
        assert 0 <= figures[key] <= 1, key
    for key in ("confident_precision", "confident_coverage"):
        assert figures[key] is None or 0 <= figures[key] <= 1, key
    assert set(figures["supplied_precision"]) >= {"task", "step", "literal", "asked"}
    for row in figures["supplied_precision"].values():
        assert set(row) == {"right", "total", "precision"}
    assert sum(row["n"] for row in figures["reliability"]) <= figures["test_traces"]
    for row in figures["reliability"]:
        assert set(row) == {"bin", "n", "predicted", "observed"}
        assert row["bin"][0] <= row["predicted"] <= row["bin"][1]


def test_eval_json_has_the_safety_figures(files: tuple[Path, Path], tmp_path: Path) -> None:
    train, test = files
    figures = run_json("eval", "--train", str(train), "--test", str(test))
    check_figures(figures)
    assert figures["folds"] is None and figures["test_traces"] == 15
    assert not (tmp_path / "memory.db").exists()


def test_eval_cases_say_each_silent_error_and_selection(files: tuple[Path, Path]) -> None:
    train, test = files
    out = run_json("eval", "--train", str(train), "--test", str(test), "--cases")
    cases = out["cases"]
    assert [c["trace"] for c in cases if c.get("silent_errors")] == out["silent_error_cases"]
    for case in cases:
        assert case["selection"] in {"confident", "confirmed", "paused_at_selection", None}
        assert isinstance(case["right"], bool)


def test_eval_loo_json(tmp_path: Path) -> None:
    traces = tmp_path / "traces.jsonl"
    traces.write_text("\n".join(sample_lines()[:20]) + "\n")
    figures = run_json("eval", "--train", str(traces), "--loo")
    check_figures(figures)
    assert (figures["folds"], figures["test_traces"], figures["train_traces"]) == (20, 20, 19)
    assert figures["findable"] > 0 and figures["hit_at_5"] > 0


def test_eval_human_table_shows_the_safety_figures(files: tuple[Path, Path]) -> None:
    train, test = files
    result = run("eval", "--train", str(train), "--test", str(test))
    assert result.exit_code == 0, result.output
    for word in ("silent_errors", "confident_precision", "confident_coverage",
                 "first_stage_hit_at_1", "overlap_hit_at_1", "values sent, by source",
                 "reliability", "hit_at_1"):
        assert word in result.stdout, word


def test_eval_loo_excludes_test_and_holdout(files: tuple[Path, Path]) -> None:
    train, test = files
    for extra in (["--test", str(test)], ["--holdout", "5"]):
        result = run("eval", "--train", str(train), "--loo", *extra)
        assert result.exit_code == 2
        assert "exactly one of --test FILE, --holdout N or --loo" in result.output
