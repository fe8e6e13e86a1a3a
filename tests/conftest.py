"""Shared fixtures: a clean environment, a hermetic working directory, the τ-retail sample.

Lanes (markers registered in pyproject.toml):

* default (``python -m pytest``): hermetic tests only. ``addopts`` deselects
  ``-m "not server and not slow"``: no network, no npm, no server processes.
* ``server``: tests that start a process serving procmem or a tool (``procmem
  serve``, ``procmem mcp`` over stdio or HTTP, ``procmem proxy`` and its upstreams,
  the npm reference servers, the MCP Inspector) or drive the whole REST API with
  schemathesis. ``python -m pytest -m server`` (``.ci/run`` installs the npm packages
  first; see README "Tests").
* ``slow``: full-size fuzzing, ``python -m pytest -m slow``.

A later ``-m`` on the command line replaces the one in ``addopts``; ``-m ""``
runs every lane.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

import procmem.store
import storebackend
from procmem.core.model import Trace
from procmem.formats.traceio import read_traces
from procmem.store import SQLiteStore

DATA = Path(__file__).parent / "data"
TAU_SAMPLE = DATA / "tau_retail_sample.jsonl"

# Variables that change what procmem or its libraries do, so a developer's shell
# must not reach a test: procmem's own settings (PROCMEM_EMBEDDER=none turns vectors
# off, PROCMEM_KEY, PROCMEM_SECRET_*, ...), a real OpenAI key (the CLI builds
# OpenAI embedders and rerankers from it), proxies (httpx and urllib route even
# loopback requests through them), and terminal settings that change what rich
# prints (colour codes, width).
LEAKY = re.compile(
    r"PROCMEM_.*|OPENAI_.*|(HTTP|HTTPS|ALL|NO|FTP|WS|WSS)_PROXY"
    r"|FORCE_COLOR|NO_COLOR|CLICOLOR(_FORCE)?|TTY_COMPATIBLE|TTY_INTERACTIVE|COLUMNS|LINES",
    re.IGNORECASE)


# Inputs of the test lanes themselves (where .ci/run installed the npm packages,
# where the browser lane saves its screenshots, the PostgreSQL server of test_multihost.py),
# not settings of procmem: read once per session by :func:`lane_environ`.
LANE_INPUTS = ("PROCMEM_NPM_PREFIX", "PROCMEM_NODE_DIR", "PROCMEM_SCREENSHOTS",
               "PROCMEM_TEST_PG_URL")


def leaky_names(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """The names in ``environ`` that :func:`clean_environ` removes (sorted)."""
    return sorted(name for name in environ if LEAKY.fullmatch(name))


@pytest.fixture(scope="session")
def lane_environ() -> dict[str, str]:
    """The lane inputs (``LANE_INPUTS``) set in the environment pytest was started in.

    Session-scoped, so it is read before :func:`clean_environ` removes them for a
    test; a test that starts npm packages passes these on to its process.
    """
    return {name: os.environ[name] for name in LANE_INPUTS if name in os.environ}


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every variable that could leak a setting in (see ``LEAKY``) for one test.

    Runs before every other function fixture of a test (it is requested first, by
    ``_hermetic``); a test or fixture that needs a variable sets it with
    ``monkeypatch.setenv``. Everything is restored after the test.
    """
    for name in leaky_names(os.environ):
        monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _hermetic(clean_environ: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
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
def store_backend_spec(pytestconfig: pytest.Config) -> str:
    """The chosen backend as ``module:factory`` (child processes: ``tests/storebackend.py``)."""
    return _backend_spec(pytestconfig)


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
