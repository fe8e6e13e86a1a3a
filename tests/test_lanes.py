"""The test harness itself: no setting of the shell reaches a test (tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import LANE_INPUTS, leaky_names


def test_no_setting_of_the_shell_reaches_a_test(tmp_path: Path) -> None:
    assert leaky_names(os.environ) == ["PROCMEM_DB"]  # set by the hermetic fixture
    assert os.environ["PROCMEM_DB"] == str(tmp_path / "procmem.db")
    assert Path.cwd() == tmp_path


def test_leaky_names_are_procmem_openai_proxy_and_terminal_settings() -> None:
    environ = {"PROCMEM_EMBEDDER": "none", "PROCMEM_SECRET_PASSWORD": "x", "procmem_key": "k",
               "OPENAI_API_KEY": "sk", "http_proxy": "p", "HTTPS_PROXY": "p", "NO_PROXY": "*",
               "FORCE_COLOR": "1", "COLUMNS": "40", "PATH": "/bin", "HOME": "/root",
               "PYTHONPATH": "src", "MY_PROCMEM_NOTE": "kept", "COLUMNS_X": "kept"}
    assert leaky_names(environ) == ["COLUMNS", "FORCE_COLOR", "HTTPS_PROXY", "NO_PROXY",
                                    "OPENAI_API_KEY", "PROCMEM_EMBEDDER",
                                    "PROCMEM_SECRET_PASSWORD", "http_proxy", "procmem_key"]


def test_a_test_may_set_a_setting_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROCMEM_EMBEDDER", "none")
    assert "PROCMEM_EMBEDDER" in leaky_names(os.environ)  # monkeypatch undoes it after the test


def test_the_lane_inputs_are_read_before_the_environment_is_cleaned(
        lane_environ: dict[str, str]) -> None:
    assert set(lane_environ) <= set(LANE_INPUTS)
    assert not set(LANE_INPUTS) & set(os.environ)
