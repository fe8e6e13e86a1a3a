"""The CLI package's shape and its cheap start (issue 13): no cycle, no private
imports across modules, and ``procmem --version`` / ``--help`` import nothing heavy.

Nothing here is timed (``benchmarks/bench_startup.py`` prints the CPU times);
the tests check which modules a fresh ``python -m procmem`` imports.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import procmem
from procmem.cli import app

CLI_DIR = Path(app.__file__).parent
HEAVY = ("numpy", "pydantic", "pydantic_core", "rich", "procmem.memory", "procmem.core.model",
         "procmem.evaluation.evaluate", "procmem.store", "importlib.metadata")


def _imported_by(*argv: str) -> set[str]:
    """Modules a fresh ``python -X importtime -m procmem *argv`` imports."""
    env = dict(os.environ, PYTHONPATH=str(Path(procmem.__file__).parent.parent))
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "procmem", *argv],
                          env=env, capture_output=True, text=True, timeout=60, check=True)
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


@pytest.mark.parametrize("argv", [["--version"], ["--help"], ["learn", "--help"]])
def test_version_and_help_import_nothing_heavy(argv: list[str]) -> None:
    modules = _imported_by(*argv)
    assert "procmem.cli.app" in modules  # the check sees the CLI's imports at all
    heavy = sorted(m for m in modules
                   if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert heavy == []


def test_version_names_the_installed_distribution() -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(procmem.__file__).parent.parent))
    done = subprocess.run([sys.executable, "-m", "procmem", "--version"], env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().endswith(f"version {metadata.version('procedural-memory')}")
    assert app.installed_version() == metadata.version("procedural-memory")


def test_the_option_choices_copied_into_the_app_equal_their_originals() -> None:
    from procmem.formats import importers
    from procmem.search import calibration, retrieval
    from procmem.security import keys

    assert app.RETRIEVERS == retrieval.RETRIEVERS
    assert app.TRANSCRIPT_FORMATS == importers.FORMATS
    assert app.SCOPES == keys.SCOPES
    assert app.DEFAULT_TENANT == keys.DEFAULT_TENANT
    assert app.TARGET_PRECISION == calibration.TARGET_PRECISION


def _module_imports(path: Path) -> list[ast.ImportFrom]:
    """The relative ``from ... import`` statements at the top level of a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.level]


def test_the_app_imports_no_command_module_and_nobody_imports_a_private_name() -> None:
    for path in sorted(CLI_DIR.glob("*.py")):
        for node in _module_imports(path):
            private = [a.name for a in node.names if a.name.startswith("_")]
            assert private == [], f"{path.name} imports {private} from {node.module}"
    siblings = [n for n in _module_imports(CLI_DIR / "app.py") if n.level == 1]
    assert siblings == []
    assert not list(CLI_DIR.parent.glob("cli_*.py")), "command modules live in procmem/cli/"


def test_every_command_module_registers_on_the_one_group() -> None:
    from procmem.cli import main

    expected = {"learn", "list", "show", "replay", "resume", "demo", "sample", "eval", "search",
                "reindex", "calibrate", "plan", "stats", "report", "optimize", "history",
                "diff", "rollback", "pin", "unpin", "decay", "delete", "traces", "tools",
                "import", "export", "import-skill", "redact", "keys", "serve", "mcp", "proxy",
                "executions", "rename", "copy", "migrate"}
    assert set(main.commands) == expected
