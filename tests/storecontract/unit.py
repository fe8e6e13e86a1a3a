"""Contract tests of :class:`~procmem.store.base.UnitOfWork`: transactions and closing."""

from __future__ import annotations

import pytest

from procmem.core.errors import Conflict, NotFound, StoreError
from procmem.core.model import Execution, Trace
from procmem.store import RECORD_PROTOCOLS, Store

from .helpers import proc


class Boom(Exception):
    """The caller's own failure inside a transaction."""


class UnitOfWorkContract:
    """Transactions commit whole or not at all; nesting; close."""

    def test_implements_every_record_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert all(isinstance(store, protocol) for protocol in RECORD_PROTOCOLS)
        assert isinstance(store.location, str)

    def test_transaction_commits_every_write_at_the_end(self, store: Store) -> None:
        a = Trace(task="a")
        with store.transaction():
            store.put_traces([a])
            store.put_procedure(proc("flow", 1, "active"))
            store.put_procedure(proc("flow", 2, "candidate", description="v2"))
            store.set_status("flow", 2, "active")
            store.set_status("flow", 1, "deprecated")
            # reads inside see the block's own writes
            assert store.get_procedure("flow").version == 2
            assert store.count_traces() == 1
        assert [v.status for v in store.list_versions("flow")] == ["deprecated", "active"]
        assert store.get_trace(a.id) == a

    def test_an_exception_undoes_every_write_of_the_block(self, store: Store) -> None:
        store.put_procedure(proc("flow", 1, "active"))
        store.put_procedure(proc("flow", 2, "candidate", description="v2"))
        rev, token = store.index_revision(), store.traces_since(None).token
        ex = Execution(procedure="flow", version=1)
        with pytest.raises(Boom), store.transaction():
            store.set_status("flow", 2, "active")  # a promotion: both statuses, or neither
            store.set_status("flow", 1, "deprecated")
            store.put_verification("flow", 2, {"ok": True})
            store.put_traces([Trace(task="gone")])
            store.put_procedure(proc("gone"))
            store.set_pinned("flow", True)
            store.put_execution(ex)
            store.put_calibration("bm25", "{}")
            raise Boom("the caller failed half way")
        assert [v.status for v in store.list_versions("flow")] == ["active", "candidate"]
        assert store.get_verification("flow", 2) is None
        assert store.count_traces() == 0
        with pytest.raises(NotFound):
            store.get_procedure("gone")
        with pytest.raises(NotFound):
            store.get_execution(ex.id)
        assert (store.is_pinned("flow"), store.get_calibration("bm25")) == (False, None)
        assert store.index_status() == {"flow": "active"}
        assert store.index_changes(rev) == []  # the index log was undone too
        assert store.traces_since(token).traces == []

    def test_a_store_error_inside_undoes_the_block_too(self, store: Store) -> None:
        kept = Trace(task="kept")
        store.put_traces([kept])
        with pytest.raises(Conflict), store.transaction():
            store.put_procedure(proc("half"))
            store.put_traces([kept.model_copy(update={"task": "changed"})])
        with pytest.raises(NotFound):
            store.get_procedure("half")
        assert store.list_traces() == [kept]

    def test_nested_blocks_are_savepoints(self, store: Store) -> None:
        a, b, c = Trace(task="a"), Trace(task="b"), Trace(task="c")
        with store.transaction():
            store.put_traces([a])
            with store.transaction():
                store.put_traces([b])
            with pytest.raises(Boom), store.transaction():
                store.put_traces([c])
                store.put_procedure(proc("inner"))
                raise Boom()
            assert [t.id for t in store.list_traces()] == [a.id, b.id]  # only c undone
            store.put_procedure(proc("outer"))
        assert [t.id for t in store.list_traces()] == [a.id, b.id]
        assert [p.name for p in store.list_procedures()] == ["outer"]
        with pytest.raises(Boom), store.transaction():
            with store.transaction():
                store.put_procedure(proc("inner_committed"))
            raise Boom()  # the outer block fails: the inner block's writes go with it
        assert [p.name for p in store.list_procedures()] == ["outer"]

    def test_the_store_works_after_a_rolled_back_transaction(self, store: Store) -> None:
        with pytest.raises(Boom), store.transaction():
            store.put_procedure(proc("gone"))
            raise Boom()
        store.put_procedure(proc("kept"))
        with store.transaction():
            store.put_procedure(proc("kept_too"))
        assert [p.name for p in store.list_procedures()] == ["kept", "kept_too"]

    def test_close_is_idempotent_and_final(self, store: Store) -> None:
        store.put_traces([Trace(task="t")])
        store.close()
        store.close()
        with pytest.raises(StoreError):
            store.count_traces()
        with pytest.raises(StoreError):
            store.put_traces([Trace(task="t")])
