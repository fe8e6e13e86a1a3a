"""The store contract suite, run against the chosen backend (SQLite by default).

``pytest --store-backend module:factory`` (or ``PROCMEM_TEST_STORE``) picks the
backend; see ``tests/storebackend.py``. The tests themselves live in
``tests/storecontract/`` (one class per record protocol). This module also checks
that every protocol method has a contract test, that a second backend made of
plain dicts (``tests/dictstore.py``) passes it, and that it fails deliberately
broken backends (``tests/brokenstores.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import CodeType

import pytest

import storebackend
from brokenstores import BROKEN
from dictstore import DictStore
from procmem.store import RECORD_PROTOCOLS, KeyRecords, SQLiteStore, Store, protocol_methods
from storecontract import CONTRACTS, StoreContract


class TestStoreContract(StoreContract):
    """The contract on the chosen backend, at a fresh in-memory and a fresh file location."""

    @pytest.fixture(params=[":memory:", "file"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path,
              store_factory: storebackend.Factory) -> Iterator[Store]:
        location = ":memory:" if request.param == ":memory:" else str(tmp_path / "m.db")
        store = store_factory(location)
        try:
            yield store
        finally:
            store.close()


def _contract_tests(klass: type) -> dict[str, Callable[..., None]]:
    return {name: fn for name, fn in vars(klass).items()
            if name.startswith("test_") and callable(fn)}


def _names_used(code: CodeType) -> set[str]:
    """Attribute and global names a function's code uses, nested functions included."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, CodeType):
            names |= _names_used(const)
    return names


def _uncovered(protocol: type, contract: type) -> list[str]:
    """The methods of ``protocol`` that no test of ``contract`` calls."""
    called = set().union(*(_names_used(fn.__code__) for fn in _contract_tests(contract).values()))
    return [name for name in protocol_methods(protocol) if name not in called]


def test_the_coverage_check_sees_a_method_without_a_test() -> None:
    class Partial:
        def test_only_reads(self, store: Store) -> None:
            store.find_api_key("k")

    assert _uncovered(KeyRecords, Partial) == ["list_api_keys", "put_api_key", "revoke_api_key"]


def test_every_protocol_method_has_a_contract_test() -> None:
    """Each method of each record protocol is called by a test of that protocol's contract."""
    assert len(CONTRACTS) == len(RECORD_PROTOCOLS)
    missing = []
    for protocol, contract in zip(RECORD_PROTOCOLS, CONTRACTS, strict=True):
        missing.extend(f"{protocol.__name__}.{name} (in {contract.__name__})"
                       for name in _uncovered(protocol, contract))
    assert missing == [], "protocol methods without a contract test: " + ", ".join(missing)
    covered = {n for p in RECORD_PROTOCOLS for n in protocol_methods(p)}
    assert covered == set(protocol_methods(Store))  # Store is the union, nothing more


def test_the_protocols_split_the_store_without_overlap() -> None:
    seen: dict[str, str] = {}
    for protocol in RECORD_PROTOCOLS:
        for name in protocol_methods(protocol):
            assert name not in seen, f"{name} in {seen.get(name)} and {protocol.__name__}"
            seen[name] = protocol.__name__


def _run_contract(factory: Callable[[str], Store]) -> dict[str, str]:
    """Run every example-based contract test on a fresh in-memory store; ``{test: error}``."""
    failed = {}
    for klass in CONTRACTS:
        for name, fn in _contract_tests(klass).items():
            if hasattr(fn, "hypothesis"):
                continue  # property tests: covered by the real run above
            store = factory(":memory:")
            try:
                fn(klass(), store)
            except (AssertionError, pytest.fail.Exception) as err:
                failed[name] = str(err).splitlines()[0] if str(err) else "AssertionError"
            except Exception as err:  # a broken backend may fail loudly, too
                failed[name] = f"{type(err).__name__}: {err}"
            finally:
                store.close()
    return failed


@pytest.mark.parametrize("backend", [SQLiteStore, DictStore], ids=lambda k: k.__name__)
def test_the_contract_passes_both_backends_when_run_by_hand(backend: type[Store]) -> None:
    assert _run_contract(backend) == {}


@pytest.mark.parametrize("broken", list(BROKEN), ids=lambda k: k.__name__)
def test_the_contract_fails_a_broken_backend(broken: type[SQLiteStore]) -> None:
    failed = _run_contract(broken)
    assert failed, f"the contract suite passes the broken {broken.__name__}"
    assert set(BROKEN[broken]) <= set(failed), failed
