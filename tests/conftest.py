"""Shared fixtures: hermetic working directory and the bundled τ-retail sample."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import procmem.store
import storebackend
from procmem.model import Trace
from procmem.store import SQLiteStore
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


# ------------------------------------------------------------------ the store backend


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        storebackend.OPTION, default=None, metavar="MODULE:FACTORY",
        help="run the store contract suite and every Memory-level test against this store "
             f"factory (default: ${storebackend.ENV}, else {storebackend.DEFAULT})")


def pytest_report_header(config: pytest.Config) -> str:
    return f"store backend: {_backend_spec(config)}"


def _backend_spec(config: pytest.Config) -> str:
    return (config.getoption(storebackend.OPTION) or os.environ.get(storebackend.ENV)
            or storebackend.DEFAULT)


@pytest.fixture(scope="session")
def store_factory(pytestconfig: pytest.Config) -> storebackend.Factory:
    """The chosen backend: ``factory(location) -> Store`` (see ``tests/storebackend.py``)."""
    return storebackend.load_factory(_backend_spec(pytestconfig))


@pytest.fixture(scope="session", autouse=True)
def _store_backend(store_factory: storebackend.Factory) -> Iterator[None]:
    """Make :func:`procmem.store.open_store` open embedded locations with the chosen backend
    (for the whole session, so module- and session-scoped fixtures use it too)."""
    with pytest.MonkeyPatch.context() as patch:
        if store_factory is not SQLiteStore:
            patch.setattr(procmem.store, "_open_embedded", store_factory)
        yield
