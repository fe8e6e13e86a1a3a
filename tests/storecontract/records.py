"""Contract tests of :class:`~procmem.store.base.TraceRecords` and
:class:`~procmem.store.base.ProcedureRecords`, ordering rules included."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given

from procmem.core.errors import Conflict, NotFound, UsageError
from procmem.core.model import Procedure, Trace
from procmem.core.procstats import ProcedureStats
from procmem.store import Store

from .helpers import NAMES, T0, fixture_ok, proc, procedures, traces, unique


def search_fixture(store: Store) -> None:
    """Two demonstration traces, ``proc_a`` learned from them (and an unknown id), ``proc_b``."""
    demos = [Trace(id="d1", task="Please cancel order #W123, I ordered by mistake"),
             Trace(id="d2", task="cancel my pending order #W999")]
    store.put_traces(demos)
    store.put_procedure(proc("proc_a", lineage={"traces": ["d1", "d2", "never-stored"]},
                             steps=[{"id": "s1", "action": "do_thing"}]))
    store.put_procedure(proc("proc_b", description="change the shipping address",
                             steps=[{"id": "s1", "action": "modify_address"}]))


class TraceContract:
    """Traces: immutable, all-or-nothing batches, commit order, the change feed."""

    @fixture_ok
    @given(trace=traces)
    def test_trace_round_trip(self, store: Store, trace: Trace) -> None:
        trace = trace.model_copy(update={"id": unique("tr")})
        assert store.put_traces([trace]) == 1
        assert store.get_trace(trace.id) == trace

    def test_put_traces_is_idempotent(self, store: Store) -> None:
        a, b = Trace(task="first"), Trace(task="second")
        assert store.put_traces([a, b]) == 2
        assert store.put_traces(iter([b, a])) == 0
        # created_at is not part of a trace's identity: re-importing is a no-op
        assert store.put_traces([a.model_copy(update={"created_at": T0})]) == 0
        assert store.get_trace(a.id).created_at == a.created_at
        assert store.count_traces() == 2
        assert [t.id for t in store.list_traces()] == [a.id, b.id]

    def test_put_traces_is_all_or_nothing(self, store: Store) -> None:
        stored = Trace(task="cancel order #W1")
        store.put_traces([stored])
        before, changed, after = Trace(task="x"), stored.model_copy(update={"task": "y"}), \
            Trace(task="z")
        with pytest.raises(Conflict) as info:
            store.put_traces([before, changed, after])
        assert info.value.key == stored.id
        assert store.count_traces() == 1
        assert store.get_trace(stored.id) == stored
        for missing in (before, after):
            with pytest.raises(NotFound):
                store.get_trace(missing.id)

    def test_duplicate_ids_within_a_batch(self, store: Store) -> None:
        t = Trace(task="same")
        assert store.put_traces([t, t]) == 1
        with pytest.raises(Conflict):
            store.put_traces([Trace(id="dup", task="a"), Trace(id="dup", task="b")])
        assert store.count_traces() == 1

    def test_list_traces_pages_in_commit_order(self, store: Store) -> None:
        # created_at runs backwards and ids are random: only commit order is kept
        batch = [Trace(task=f"task {i}", created_at=T0 - timedelta(days=i)) for i in range(5)]
        store.put_traces(batch[:2])
        store.put_traces(batch[2:])
        assert [t.id for t in store.list_traces(limit=2, offset=1)] == [batch[1].id, batch[2].id]
        assert [t.id for t in store.list_traces(offset=3)] == [batch[3].id, batch[4].id]
        assert store.list_traces(limit=0) == []
        with pytest.raises(UsageError):
            store.list_traces(limit=-1)

    def test_get_traces_in_commit_order_without_unknown_ids(self, store: Store) -> None:
        batch = [Trace(task=f"task {i}") for i in range(5)]
        store.put_traces(batch)
        wanted = [batch[3].id, "tr_nope", batch[0].id, batch[3].id, batch[4].id]
        assert store.get_traces(wanted) == [batch[0], batch[3], batch[4]]
        assert store.get_traces([]) == []

    def test_get_missing_trace(self, store: Store) -> None:
        with pytest.raises(NotFound) as info:
            store.get_trace("tr_nope")
        assert (info.value.kind, info.value.key) == ("trace", "tr_nope")

    def test_get_tasks_of_stored_traces_only(self, store: Store) -> None:
        a, b = Trace(task="cancel #W1"), Trace(task="")
        store.put_traces([a, b])
        assert store.get_tasks([b.id, "tr_nope", a.id, a.id]) == {a.id: "cancel #W1", b.id: ""}
        assert store.get_tasks([]) == {}

    def test_delete_trace(self, store: Store) -> None:
        batch = [Trace(task=f"task {i}") for i in range(4)]
        store.put_traces(batch)
        assert store.delete_trace(batch[1].id) is True
        assert store.delete_trace(batch[1].id) is False  # already gone
        assert store.delete_trace("tr_nope") is False
        with pytest.raises(NotFound):
            store.get_trace(batch[1].id)
        assert store.count_traces() == 3
        assert [t.id for t in store.list_traces()] == [batch[0].id, batch[2].id, batch[3].id]
        # deleted and put again: a new trace, after the others
        store.put_traces([batch[1].model_copy(update={"task": "other content"})])
        assert [t.id for t in store.list_traces()][-1] == batch[1].id
        assert store.get_tasks([batch[1].id]) == {batch[1].id: "other content"}

    def test_delete_trace_keeps_versions_and_reindexes_their_names(self, store: Store) -> None:
        search_fixture(store)
        store.put_procedure(proc("proc_a", 2, "candidate", lineage={"traces": ["d2"]}))
        assert [(p.name, p.version) for p in store.list_versions_by_trace("d1")] == [
            ("proc_a", 1)]
        assert [(p.name, p.version) for p in store.list_versions_by_trace("d2")] == [
            ("proc_a", 1), ("proc_a", 2)]
        assert store.list_versions_by_trace("tr_nope") == []
        rev = store.index_revision()
        assert store.delete_trace("d1") is True
        assert [p.version for p in store.list_versions("proc_a")] == [1, 2]  # kept
        assert store.get_procedure("proc_a", 1).lineage.traces == ["d1", "d2", "never-stored"]
        assert [(p.name, p.version) for p in store.list_versions_by_trace("d1")] == [
            ("proc_a", 1)]  # the lineage still names it
        assert store.index_revision() > rev
        assert "proc_a" in (store.index_changes(rev) or [])
        docs = dict(store.index_documents())
        assert "ordered by mistake" not in docs["proc_a"]  # the deleted task left search
        assert "pending order" in docs["proc_a"]

    # the change feed --------------------------------------------------------

    def test_feed_returns_traces_once_in_commit_order(self, store: Store) -> None:
        first = store.traces_since(None)
        assert (first.traces, first.reset) == ([], True)
        batch = [Trace(task=f"t{i}", created_at=T0 - timedelta(days=i)) for i in range(5)]
        store.put_traces(batch[:3])
        page = store.traces_since(first.token)
        assert ([t.id for t in page.traces], page.reset) == ([t.id for t in batch[:3]], False)
        again = store.traces_since(page.token)
        assert (again.traces, again.token, again.reset) == ([], page.token, False)
        store.put_traces(batch[3:])
        assert store.traces_since(first.token).traces == batch  # a token can be read twice
        tail = store.traces_since(page.token)
        assert (tail.traces, tail.reset) == (batch[3:], False)
        whole = store.traces_since(None)
        assert (whole.traces, whole.reset) == (batch, True)

    def test_feed_pages_by_limit(self, store: Store) -> None:
        batch = [Trace(task=f"t{i}") for i in range(7)]
        store.put_traces(batch)
        seen, token = [], None
        for _ in range(10):
            page = store.traces_since(token, limit=3)
            assert len(page.traces) <= 3
            seen.extend(page.traces)
            token = page.token
            if not page.traces:
                break
        assert seen == batch
        with pytest.raises(UsageError):
            store.traces_since(None, limit=0)

    def test_feed_starts_over_after_a_deletion_or_with_a_foreign_token(self, store: Store) -> None:
        batch = [Trace(task=f"t{i}") for i in range(4)]
        store.put_traces(batch[:2])
        token = store.traces_since(None).token
        store.put_traces(batch[2:])
        store.delete_trace(batch[0].id)
        page = store.traces_since(token)
        assert (page.traces, page.reset) == (batch[1:], True)
        after = store.traces_since(page.token)
        assert (after.traces, after.reset) == ([], False)
        store.delete_trace(batch[3].id)  # even a trace the token never saw makes it stale
        assert store.traces_since(after.token).reset is True
        for foreign in ("", "garbage", "1:2:3", "::::", str(uuid.uuid4())):
            page = store.traces_since(foreign)
            assert (page.traces, page.reset) == (batch[1:3], True)


class ProcedureContract:
    """Procedure versions, the current-version rule, name order, pins and verifications."""

    @fixture_ok
    @given(procedure=procedures)
    def test_procedure_round_trip(self, store: Store, procedure: Procedure) -> None:
        procedure = procedure.model_copy(update={"name": f"{procedure.name}.{uuid.uuid4().hex}"})
        assert store.put_procedure(procedure) is True
        assert store.get_procedure(procedure.name, procedure.version) == procedure
        assert store.list_versions(procedure.name) == [procedure]

    def test_procedure_versions_are_immutable(self, store: Store) -> None:
        p = proc("refund", description="refund an item")
        assert store.put_procedure(p) is True
        assert store.put_procedure(p) is False
        same_content = p.model_copy(update={"created_at": T0}).with_stats(ProcedureStats(runs=7))
        assert store.put_procedure(same_content) is False
        with pytest.raises(Conflict):
            store.put_procedure(p.model_copy(update={"description": "something else"}))
        with pytest.raises(Conflict):
            store.put_procedure(proc("refund", steps=[{"id": "s1", "action": "other"}]))
        assert store.get_procedure("refund", 1) == p
        assert store.put_procedure(proc("refund", version=2, description="v2")) is True
        assert [v.version for v in store.list_versions("refund")] == [1, 2]

    def test_current_version_rules(self, store: Store) -> None:
        store.put_procedure(proc("only_candidates", 1, "candidate"))
        store.put_procedure(proc("only_candidates", 2, "candidate"))
        assert store.get_procedure("only_candidates").version == 2

        store.put_procedure(proc("mixed", 1, "active"))
        store.put_procedure(proc("mixed", 2, "active"))
        store.put_procedure(proc("mixed", 3, "candidate"))
        assert store.get_procedure("mixed").version == 2
        assert store.get_procedure("mixed", 3).status == "candidate"

        store.put_procedure(proc("old", 1, "deprecated"))
        store.put_procedure(proc("old", 2, "deprecated"))
        store.put_procedure(proc("old", 3, "candidate"))
        assert store.get_procedure("old").version == 2

        store.put_procedure(proc("demoted", 1, "active"))
        store.put_procedure(proc("demoted", 2, "deprecated"))  # a demoted candidate
        assert store.get_procedure("demoted").version == 1  # the active one stays current

        current = {p.name: (p.version, p.status) for p in store.list_procedures()}
        assert current == {"demoted": (1, "active"), "mixed": (2, "active"),
                           "old": (2, "deprecated"), "only_candidates": (2, "candidate")}
        store.set_status("demoted", 1, "deprecated")
        assert store.get_procedure("demoted").version == 2
        assert [p.name for p in store.list_procedures()] == [
            "demoted", "mixed", "old", "only_candidates"]
        assert [p.name for p in store.list_procedures(status="active")] == ["mixed"]
        assert [p.name for p in store.list_procedures(status="deprecated")] == ["demoted", "old"]
        assert [p.name for p in store.list_procedures(status="candidate")] == ["only_candidates"]
        assert [p.name for p in store.list_procedures(limit=1, offset=1)] == ["mixed"]
        with pytest.raises(UsageError):
            store.list_procedures(status="bogus")
        with pytest.raises(UsageError):
            store.list_procedures(offset=-1)

    def test_names_are_listed_in_code_point_order(self, store: Store) -> None:
        rev = store.index_revision()
        for name in NAMES:
            store.put_procedure(proc(name, description=f"about {name}"))
            store.put_procedure(proc(name, 2, "candidate", lineage={"traces": ["shared"]}))
        want = sorted(NAMES)
        assert want != sorted(NAMES, key=str.casefold)
        assert [p.name for p in store.list_procedures()] == want
        assert [p.name for p in store.list_procedures(limit=4, offset=3)] == want[3:7]
        assert [n for n, _ in store.index_documents()] == want
        assert [n for n, _ in store.index_documents(None)] == want
        assert store.index_changes(rev) == want
        assert [p.name for p in store.list_versions_by_trace("shared")] == want

    def test_procedures_json_is_the_current_version(self, store: Store) -> None:
        store.put_procedure(proc("j_mixed", 1, "active", tags=["a"]))
        store.put_procedure(proc("j_mixed", 2, "active", description="two"))
        store.put_procedure(proc("j_mixed", 3, "candidate"))
        store.put_procedure(proc("j_old", 1, "deprecated"))
        store.put_procedure(proc("j_old", 2, "candidate"))
        found = store.get_procedures_json(["j_old", "nope", "j_mixed", "j_old"])
        assert set(found) == {"j_mixed", "j_old"}  # unknown names left out, no duplicates
        for name, text in found.items():
            assert Procedure.model_validate_json(text) == store.get_procedure(name)
        assert Procedure.model_validate_json(found["j_mixed"]).version == 2
        assert store.get_procedures_json([]) == {}

    def test_count_procedures_counts_names_not_versions(self, store: Store) -> None:
        assert store.count_procedures() == 0
        store.put_procedure(proc("c_one", 1))
        store.put_procedure(proc("c_one", 2, "candidate"))
        store.put_procedure(proc("c_two", 1, "deprecated"))
        assert store.count_procedures() == 2
        assert store.delete_procedure("c_one")
        assert store.count_procedures() == 1

    def test_missing_procedures(self, store: Store) -> None:
        store.put_procedure(proc("exists"))
        with pytest.raises(NotFound):
            store.get_procedure("nope")
        with pytest.raises(NotFound) as info:
            store.get_procedure("exists", 2)
        assert info.value.key == "exists@2"
        with pytest.raises(NotFound):
            store.list_versions("nope")

    def test_set_status(self, store: Store) -> None:
        v1, v2 = proc("ship", 1, "active"), proc("ship", 2, "candidate", description="faster")
        store.put_procedure(v1)
        store.put_procedure(v2)
        store.set_status("ship", 2, "active")
        assert store.get_procedure("ship") == v2.model_copy(update={"status": "active"})
        store.set_status("ship", 1, "deprecated")
        assert [v.status for v in store.list_versions("ship")] == ["deprecated", "active"]
        # re-putting a version whose status changed is a no-op: the stored status stays
        assert store.put_procedure(v1) is False
        assert store.get_procedure("ship", 1).status == "deprecated"
        with pytest.raises(NotFound):
            store.set_status("ship", 3, "active")
        with pytest.raises(NotFound):
            store.set_status("nope", 1, "active")
        with pytest.raises(UsageError):
            store.set_status("ship", 1, "retired")

    def test_pins_verifications_and_deletion(self, store: Store) -> None:
        store.put_procedure(proc("flow", 1, "active", description="alpha"))
        store.put_procedure(proc("flow", 2, "candidate", description="beta"))
        store.put_procedure(proc("other"))
        assert store.is_pinned("flow") is False
        store.set_pinned("flow", True)
        assert (store.is_pinned("flow"), store.is_pinned("other")) == (True, False)
        store.set_pinned("flow", False)
        assert store.is_pinned("flow") is False
        assert store.is_pinned("nope") is False
        with pytest.raises(NotFound):
            store.set_pinned("nope", True)
        assert store.get_verification("flow", 2) is None
        store.put_verification("flow", 2, {"ok": True, "reproduced": ["t1"]})
        store.put_verification("flow", 2, {"ok": False, "reproduced": []})  # replaces
        assert store.get_verification("flow", 2) == {"ok": False, "reproduced": []}
        assert store.get_verification("flow", 1) is None
        with pytest.raises(NotFound):
            store.put_verification("flow", 9, {})
        store.set_pinned("flow", True)
        assert "flow" in dict(store.index_documents())
        assert store.delete_procedure("flow") is True
        assert store.delete_procedure("flow") is False
        with pytest.raises(NotFound):
            store.get_procedure("flow")
        assert "flow" not in dict(store.index_documents(None))  # out of search
        assert store.get_verification("flow", 2) is None
        assert store.is_pinned("flow") is False
        store.put_procedure(proc("flow", 1, "active", description="alpha"))  # a new start
        assert (store.is_pinned("flow"), store.get_verification("flow", 2)) == (False, None)
        assert [p.name for p in store.list_procedures()] == ["flow", "other"]
