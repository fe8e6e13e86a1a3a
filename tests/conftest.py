"""Shared fixtures: hermetic working directory and the bundled τ-retail sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from procmem.model import Trace
from procmem.traceio import read_traces

DATA = Path(__file__).parent / "data"
TAU_SAMPLE = DATA / "tau_retail_sample.jsonl"


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run every test in its own empty directory with the memory's home under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PROCMEM_DB", str(tmp_path / "procmem.db"))
    return tmp_path


@pytest.fixture(scope="session")
def tau_sample_path() -> Path:
    """Path of the bundled sample: the first 120 τ-retail train traces (MIT, see tests/data)."""
    return TAU_SAMPLE


@pytest.fixture(scope="session")
def tau_sample() -> list[Trace]:
    """The 120 traces of ``tests/data/tau_retail_sample.jsonl``, in file order."""
    traces, problems = read_traces(TAU_SAMPLE)
    assert not problems
    assert len(traces) == 120
    return traces
