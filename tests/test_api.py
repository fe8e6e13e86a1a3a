"""Tests for the curated public API (procmem/__init__.py)."""

from __future__ import annotations

import inspect
import re
import shutil
import types
from importlib import metadata
from pathlib import Path
from typing import Any

import procmem


def test_all_lists_exactly_the_public_names() -> None:
    for name in procmem.__all__:  # most are imported on first use (PEP 562)
        getattr(procmem, name)
    public = {
        name for name, value in vars(procmem).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert sorted(procmem.__all__) == sorted(public)
    assert len(procmem.__all__) == len(set(procmem.__all__))
    assert 20 <= len(procmem.__all__) <= 30


def test_every_public_name_has_its_own_docstring() -> None:
    for name in procmem.__all__:
        obj = getattr(procmem, name)
        doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else obj.__doc__
        assert doc and doc.strip(), f"procmem.{name} has no docstring"


def test_the_expected_entry_points_are_exported() -> None:
    expected = {
        "Memory", "Trace", "TraceStep", "Procedure", "Step", "Param", "Check", "OnError",
        "Execution", "StepRun", "Need", "Evidence", "Hit", "ProcmemError", "UsageError",
        "InvalidTrace", "NotFound", "Conflict", "ReplayError", "UnknownTool", "ParamError",
        "CycleError", "StoreUnavailable", "MissingExtra", "read_traces", "write_traces",
        "evaluate",
    }
    assert expected <= set(procmem.__all__)


def test_exported_errors_share_one_root_and_have_distinct_codes() -> None:
    errors = [getattr(procmem, n) for n in procmem.__all__
              if inspect.isclass(getattr(procmem, n))
              and issubclass(getattr(procmem, n), BaseException)]
    assert all(issubclass(e, procmem.ProcmemError) for e in errors)
    codes = [e.code for e in errors]
    assert len(codes) == len(set(codes))
    assert issubclass(procmem.InvalidTrace, procmem.UsageError)
    assert issubclass(procmem.CycleError, procmem.ReplayError)


def test_version_is_the_installed_distribution_version() -> None:
    assert procmem.__version__ == metadata.version("procedural-memory")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", procmem.__version__)


def test_the_module_docstring_example_runs(tau_sample_path: Path) -> None:
    doc = procmem.__doc__ or ""
    block = doc.split("::", 1)[1].split("\n\n", 2)[1]
    lines = [line[4:] for line in block.splitlines()]
    assert len(lines) == 6 and lines[0] == "import procmem"
    shutil.copy(tau_sample_path, "traces.jsonl")  # cwd is a tmp dir (conftest)
    calls: list[dict[str, Any]] = []
    printed: list[tuple[Any, ...]] = []
    namespace: dict[str, Any] = {
        "tools": {"cancel_pending_order": lambda **kw: calls.append(kw) or "cancelled"},
        "print": lambda *args: printed.append(args),
    }
    exec("\n".join(lines), namespace)  # our own docstring, run as written
    assert calls == [{"order_id": "#W6067464", "reason": "no longer needed"}]
    expected = lines[-1].split("# ", 1)[1]
    assert " ".join(str(a) for a in printed[0]) == expected
    namespace["mem"].close()
