"""The ``procmem`` command line: a thin adapter over :class:`procmem.Memory`.

Layout (imports flow one way, no cycle):

* :mod:`procmem.cli.app`: the Click group :data:`main`, its options, error
  handling (error code -> exit code) and the helpers every command shares.
* Command modules, each importing :mod:`~procmem.cli.app` and registering on
  :data:`main` when imported: :mod:`~procmem.cli.commands` (learn, list, show,
  replay, resume), :mod:`~procmem.cli.demo`, :mod:`~procmem.cli.evaluation`
  (eval), :mod:`~procmem.cli.search` (search, reindex, calibrate),
  :mod:`~procmem.cli.plan`, :mod:`~procmem.cli.learning` (stats, report,
  optimize, history, diff, rollback, pin, unpin, decay, delete),
  :mod:`~procmem.cli.traces`, :mod:`~procmem.cli.browse` (executions, rename),
  :mod:`~procmem.cli.tools`,
  :mod:`~procmem.cli.importing` (import), :mod:`~procmem.cli.export` (export,
  import-skill), :mod:`~procmem.cli.redact`, :mod:`~procmem.cli.copy`,
  :mod:`~procmem.cli.migrate`, :mod:`~procmem.cli.keys`,
  :mod:`~procmem.cli.rest` (serve), :mod:`~procmem.cli.mcp`,
  :mod:`~procmem.cli.proxy`.
* Rendering (rich): :mod:`~procmem.cli.render` and its ``render_*`` siblings,
  imported only by a command that prints.

This package imports every command module, so ``from procmem.cli import main``
gives the whole command line. ``python -m procmem`` and the ``procmem`` console
script both run :data:`main`. Importing the package is cheap (see the
invariants of :mod:`procmem.cli.app`).
"""

from __future__ import annotations

from ..formats.toolspec import load_tools
from . import (  # noqa: F401  (each registers its commands on main)
    browse,
    commands,
    copy,
    demo,
    evaluation,
    export,
    importing,
    keys,
    learning,
    mcp,
    migrate,
    plan,
    proxy,
    redact,
    rest,
    search,
    tools,
    traces,
)
from .app import EXIT_CODES, exit_code, main

__all__ = ["EXIT_CODES", "exit_code", "load_tools", "main"]
