"""CPU time of starting the ``procmem`` command line: ``--version``, ``--help`` and ``demo``.

Each command runs in a fresh child process (``python -m procmem ...``, the module
entry point, with this checkout's ``src`` first on ``PYTHONPATH``, or ``--src DIR``
to measure another checkout); the figure is the child's CPU time, user + system,
read with ``resource.getrusage(RUSAGE_CHILDREN)`` before and after the run (so
wall-clock waits and other processes do not count). As an installed package would,
the child reads and writes byte-code caches (``PYTHONDONTWRITEBYTECODE`` is dropped
from its environment) and one unmeasured run warms them.
Prints the median of ``--runs`` runs (default 7 for the quick commands, 3 for the
demo) and the min and max. Issue 13's target: ``--version`` and ``--help`` under
150 ms of CPU. ``demo`` includes loading the embedding model and replaying the
held-out traces.

Usage: python benchmarks/bench_startup.py [--runs N] [--no-demo] [--src DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

from _common import machine

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def cpu_seconds(argv: list[str], src: Path = SRC) -> float:
    """User + system CPU seconds of one run of ``python -m procmem *argv`` in a child."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), env.get("PYTHONPATH", "")) if p)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "procmem", *argv], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def report(label: str, argv: list[str], runs: int, src: Path) -> None:
    """Print the median (min, max) CPU time of ``runs`` runs of ``argv`` in milliseconds."""
    cpu_seconds(argv, src)  # warm the byte-code caches
    times = [cpu_seconds(argv, src) * 1000 for _ in range(runs)]
    print(f"procmem {label:<10} CPU median {statistics.median(times):7.0f} ms "
          f"(min {min(times):.0f}, max {max(times):.0f}, n={runs})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs of --version and --help")
    parser.add_argument("--no-demo", action="store_true", help="skip `procmem demo`")
    parser.add_argument("--src", type=Path, default=SRC,
                        help="the source folder to run (default: this checkout's src)")
    args = parser.parse_args()
    src = args.src.resolve()
    print(__doc__.splitlines()[0])
    print(machine())
    print(f"source: {src}")
    report("--version", ["--version"], args.runs, src)
    report("--help", ["--help"], args.runs, src)
    if not args.no_demo:
        report("demo", ["demo"], max(1, min(args.runs, 3)), src)


if __name__ == "__main__":
    main()
