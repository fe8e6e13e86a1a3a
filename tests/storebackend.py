"""Which store backend the tests run against: ``--store-backend`` / ``PROCMEM_TEST_STORE``.

A backend factory is ``module:callable``; the callable takes an embedded location
(a file path, or ``":memory:"``) and returns an open :class:`procmem.store.Store`.
The same path must give the same data each time it is opened (tests reopen files
to see what another process wrote); ``":memory:"`` a fresh, private store each call.
The default is ``procmem.store.sqlite:SQLiteStore``.

    pytest --store-backend dictstore:DictStore       # the dict backend in tests/
    pytest --store-backend mypackage.pgtest:open_store_for_tests
    PROCMEM_TEST_STORE=mypackage.pgtest:open_store_for_tests pytest

With a backend chosen, the contract suite (``tests/test_store_contract.py``) runs
against it, and so does every test that opens a store through
:func:`procmem.store.open_store` (``Memory(path)``, ``Memory(":memory:")``, the CLI,
the servers). Tests of SQLite itself (migrations, FTS5, ``procmem redact``) keep
using :class:`~procmem.store.SQLiteStore` by name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable

from procmem.store import Store

DEFAULT = "procmem.store.sqlite:SQLiteStore"
ENV = "PROCMEM_TEST_STORE"
OPTION = "--store-backend"

Factory = Callable[[str], Store]

CHILD_PRELUDE = """
import os
if os.environ.get("PROCMEM_TEST_STORE"):  # the test session's backend, in this process too
    import procmem.store, storebackend
    procmem.store._open_embedded = storebackend.load_factory(os.environ["PROCMEM_TEST_STORE"])
"""
"""Code a test's child Python process runs first (with :func:`child_environ`) so that
``Memory(path)`` there opens the same backend as the test (a path the test opened
then names the same store)."""


def child_environ(spec: str) -> dict[str, str]:
    """Environment for a child process running :data:`CHILD_PRELUDE`: the backend ``spec``,
    the tests folder on ``PYTHONPATH`` and what the factory's module needs (its
    ``CHILD_ENV``, e.g. the PostgreSQL URL of ``tests/pgstore.py``)."""
    if spec == DEFAULT:
        return {}
    module = importlib.import_module(spec.partition(":")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    return {ENV: spec, "PYTHONPATH": here, **getattr(module, "CHILD_ENV", {})}


def load_factory(spec: str) -> Factory:
    """The callable named by ``module:attribute`` (dots allowed in the attribute).

    Raises:
        ValueError: ``spec`` has no ``:``, or the attribute is not callable.
        ImportError, AttributeError: The module or attribute does not exist.
    """
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ValueError(f"a store backend is module:factory, got {spec!r}")
    target: object = importlib.import_module(module)
    for part in attr.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{spec!r} is not callable")
    return target  # type: ignore[return-value]
