"""The contract of :class:`procmem.store.status.StatusRecords`: compare-and-set of statuses."""

from __future__ import annotations

import pytest

from procmem.core.errors import NotFound, UsageError
from procmem.store import Store

from .helpers import proc, unique


class StatusContract:
    """``transition_status``."""

    def test_a_transition_applies_once_from_the_statuses_it_names(self, store: Store) -> None:
        name = unique("cas")
        store.put_procedure(proc(name, 1, "active"))
        store.put_procedure(proc(name, 2, "candidate"))
        promote = [(2, "candidate", "active"), (1, "active", "deprecated")]
        assert store.transition_status(name, promote) is True
        assert [p.status for p in store.list_versions(name)] == ["deprecated", "active"]
        assert store.get_procedure(name).version == 2
        assert store.index_documents()[0][0] == name  # re-indexed as active
        # the same decision again (another process, late): nothing changes
        assert store.transition_status(name, promote) is False
        assert [p.status for p in store.list_versions(name)] == ["deprecated", "active"]

    def test_one_stale_status_writes_nothing(self, store: Store) -> None:
        name = unique("cas")
        store.put_procedure(proc(name, 1, "active"))
        store.put_procedure(proc(name, 2, "candidate"))
        revision = store.index_revision()
        moves = [(2, "candidate", "active"), (1, "deprecated", "candidate")]
        assert store.transition_status(name, moves) is False
        assert [p.status for p in store.list_versions(name)] == ["active", "candidate"]
        assert store.index_revision() == revision

    def test_bad_transitions_are_refused(self, store: Store) -> None:
        name = unique("cas")
        store.put_procedure(proc(name, 1, "active"))
        with pytest.raises(UsageError):
            store.transition_status(name, [])
        with pytest.raises(UsageError):
            store.transition_status(name, [(1, "active", "gone")])
        with pytest.raises(UsageError):
            store.transition_status(name, [(1, "active", "deprecated"), (1, "active", "active")])
        with pytest.raises(NotFound):
            store.transition_status(name, [(1, "active", "deprecated"), (7, "candidate", "active")])
        assert store.get_procedure(name, 1).status == "active"

    def test_a_transition_inside_a_failed_transaction_is_undone(self, store: Store) -> None:
        name = unique("cas")
        store.put_procedure(proc(name, 1, "candidate"))
        with pytest.raises(RuntimeError), store.transaction():
            assert store.transition_status(name, [(1, "candidate", "active")])
            raise RuntimeError("undo")
        assert store.get_procedure(name, 1).status == "candidate"
