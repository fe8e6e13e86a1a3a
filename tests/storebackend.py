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
from collections.abc import Callable

from procmem.store import Store

DEFAULT = "procmem.store.sqlite:SQLiteStore"
ENV = "PROCMEM_TEST_STORE"
OPTION = "--store-backend"

Factory = Callable[[str], Store]


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
