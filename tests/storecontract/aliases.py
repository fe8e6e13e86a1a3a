"""Contract tests of :class:`~procmem.store.aliases.AliasRecords` (procedure renames)."""

from __future__ import annotations

import pytest

from procmem.core.errors import Conflict, NotFound, UsageError
from procmem.core.model import Evidence, Execution, Trace
from procmem.store import Store

from .helpers import T0, proc, step_run


def _renamable(store: Store) -> Execution:
    """``old`` in two versions (v2 learned from trace t1), pinned, verified, noted, run once."""
    store.put_traces([Trace(id="t1", task="refund the damaged blender")])
    store.put_procedure(proc("old", 1, description="refund an order"))
    store.put_procedure(proc("old", 2, description="refund an order",
                             lineage={"traces": ["t1"], "parent_version": 1}))
    store.set_pinned("old", True)
    store.put_verification("old", 2, {"ok": True})
    store.add_procedure_note("old", "review", {"text": "looked fine"})
    run = Execution(procedure="old", version=2, status="succeeded", started_at=T0,
                    duration_ms=5.0)
    store.put_execution(run)
    store.put_step_run(run.id, step_run(0))
    store.put_evidence(Evidence(execution_id=run.id, source="user", reward=1.0))
    return run


class AliasContract:
    """Renames: every record moves in one write, the old name stays an alias."""

    def test_rename_moves_every_record_and_keeps_history(self, store: Store) -> None:
        run = _renamable(store)
        stats = store.procedure_stats(["old"])
        revision = store.index_revision()
        assert store.rename_procedure("old", "new") == 2
        versions = store.list_versions("new")
        assert [(p.name, p.version) for p in versions] == [("new", 1), ("new", 2)]
        assert versions[1].lineage.traces == ["t1"] and versions[1].lineage.parent_version == 1
        assert store.get_procedure("new").description == "refund an order"
        with pytest.raises(NotFound):
            store.get_procedure("old")
        assert store.count_procedures() == 1
        assert store.is_pinned("new") and not store.is_pinned("old")
        assert store.get_verification("new", 2) == {"ok": True}
        assert [n["name"] for n in store.list_procedure_notes("new")] == ["new"]
        assert store.list_procedure_notes("old") == []
        moved = store.get_execution(run.id)
        assert moved.procedure == "new" and len(moved.step_runs) == 1
        assert [e.id for e in store.list_executions(procedure="new")] == [run.id]
        assert store.list_executions(procedure="old") == []
        assert [e.reward for e in store.list_evidence(run.id)] == [1.0]
        assert store.procedure_stats(["new"]) == {("new", 2): stats["old", 2]}
        assert store.procedure_stats(["old"]) == {}
        assert store.index_revision() > revision
        assert set(store.index_changes(revision) or []) >= {"old", "new"}
        names = [n for n, _ in store.index_documents(None)]
        assert "new" in names and "old" not in names
        assert store.resolve_alias("old") == "new"
        assert store.resolve_alias("new") is None
        assert [p.name for p in store.list_versions_by_trace("t1")] == ["new"]

    def test_rename_refuses_and_changes_nothing(self, store: Store) -> None:
        store.put_procedure(proc("a"))
        store.put_procedure(proc("b"))
        with pytest.raises(Conflict):
            store.rename_procedure("a", "b")
        with pytest.raises(NotFound):
            store.rename_procedure("missing", "c")
        with pytest.raises(UsageError):
            store.rename_procedure("a", "a")
        assert [p.name for p in store.list_procedures()] == ["a", "b"]
        assert store.resolve_alias("a") is None and store.resolve_alias("missing") is None

    def test_aliases_never_chain_and_renaming_back_drops_one(self, store: Store) -> None:
        store.put_procedure(proc("a"))
        store.rename_procedure("a", "b")
        store.rename_procedure("b", "c")
        assert store.resolve_alias("a") == "c" and store.resolve_alias("b") == "c"
        store.rename_procedure("c", "a")
        assert store.resolve_alias("a") is None
        assert store.resolve_alias("b") == "a" and store.resolve_alias("c") == "a"
        assert [p.name for p in store.list_procedures()] == ["a"]

    def test_a_rename_inside_a_failed_transaction_leaves_no_trace(self, store: Store) -> None:
        store.put_procedure(proc("a"))
        with pytest.raises(RuntimeError), store.transaction():
            store.rename_procedure("a", "b")
            raise RuntimeError("undo")
        assert store.get_procedure("a").name == "a"
        assert store.resolve_alias("a") is None
