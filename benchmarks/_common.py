"""Shared helpers for the benchmark scripts: data location, timing summaries, machine line.

Not a benchmark itself. Stdlib only. The scripts import it as ``_common`` (Python
puts ``benchmarks/`` first on ``sys.path`` when a script there is run).

Data: the real τ-retail traces in ``../shared/data/tau-retail/`` (relative to the
repository root); when ``../shared`` is missing, the bundled sample
(``tests/data/tau_retail_sample.jsonl`` or ``src/procmem/data/tau_retail/sample.jsonl``).
Every script prints which file it used.
"""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = (ROOT / ".." / "shared" / "data" / "tau-retail").resolve()
FALLBACKS = (
    ROOT / "tests" / "data" / "tau_retail_sample.jsonl",
    ROOT / "src" / "procmem" / "data" / "tau_retail" / "sample.jsonl",
)

try:  # run from a checkout without installing: use the source tree
    import procmem  # noqa: F401
except ImportError:  # pragma: no cover - depends on the environment
    sys.path.insert(0, str(ROOT / "src"))


def data_file(split: str = "train") -> tuple[Path, bool]:
    """The trace file to read for ``split`` and whether it is the real shared data.

    Returns:
        ``(path, True)`` for ``../shared/data/tau-retail/{split}.jsonl``; for
        ``train`` without ``../shared``, ``(sample, False)``.

    Raises:
        SystemExit: No data file at all.
    """
    real = SHARED / f"{split}.jsonl"
    if real.is_file():
        return real, True
    if split == "train":
        for path in FALLBACKS:
            if path.is_file():
                return path, False
    raise SystemExit(f"no {split} data: neither {real} nor a bundled sample exists")


def load(split: str = "train") -> list:
    """Read a split's traces (``formats.traceio.read_traces``); prints which file was used."""
    from procmem.formats.traceio import read_traces

    path, real = data_file(split)
    traces, _ = read_traces(path)
    where = "real shared data" if real else "FALLBACK bundled sample (../shared missing)"
    print(f"data: {path} ({len(traces)} traces, {where})")
    return traces


def load_optional(split: str) -> list:
    """Traces of ``split`` from ``../shared`` or ``[]`` when that file is missing."""
    from procmem.formats.traceio import read_traces

    real = SHARED / f"{split}.jsonl"
    if not real.is_file():
        print(f"data: {real} missing, {split} skipped")
        return []
    traces, _ = read_traces(real)
    print(f"data: {real} ({len(traces)} traces, real shared data)")
    return traces


def machine() -> str:
    """One line describing where the numbers come from."""
    return (f"machine: {platform.machine()} {os.cpu_count()} CPU(s), "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"{platform.system()} {platform.release()}")


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``values`` by linear interpolation."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def summary(values: list[float], unit: str = "s", scale: float = 1.0, digits: int = 3) -> str:
    """``median (min .. max)`` of ``values`` times ``scale``, with ``unit``."""
    v = [x * scale for x in values]
    return (f"median {statistics.median(v):.{digits}f} {unit} "
            f"(min {min(v):.{digits}f}, max {max(v):.{digits}f}, n={len(v)})")
