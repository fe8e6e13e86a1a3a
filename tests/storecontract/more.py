"""Contract tests of executions, leases, the search index, embeddings, tool schemas and keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procmem.core.errors import Conflict, ExecutionBusy, NotFound, UsageError
from procmem.core.model import Attempt, Evidence, Execution
from procmem.store import Store, index_text

from .helpers import T0, lease_of, proc, step_run
from .records import search_fixture


class ExecutionContract:
    """Execution headers, step runs, newest-first order, append-only evidence."""

    def test_execution_header_and_step_runs(self, store: Store) -> None:
        ex = Execution(procedure="refund", version=1, params={"order_id": "#W1"},
                       started_at=T0, step_runs=[step_run(0)])
        store.put_execution(ex)
        assert store.get_execution(ex.id) == ex.model_copy(update={"step_runs": []})
        for i in (2, 0, 1):
            store.put_step_run(ex.id, step_run(i))
        store.put_step_run(ex.id, step_run(1, status="failed", error="boom"))
        got = store.get_execution(ex.id)
        assert [r.index for r in got.step_runs] == [0, 1, 2]
        assert got.step_runs[1] == step_run(1, status="failed", error="boom")
        finished = ex.model_copy(update={"status": "failed", "error": "boom", "step_runs": []})
        store.put_execution(finished)
        got = store.get_execution(ex.id)
        assert (got.status, got.error, len(got.step_runs)) == ("failed", "boom", 3)
        assert got.model_copy(update={"step_runs": []}) == finished

    def test_missing_executions(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.get_execution("ex_nope")
        with pytest.raises(NotFound):
            store.put_step_run("ex_nope", step_run(0))

    def test_list_executions_newest_first(self, store: Store) -> None:
        def put(procedure: str, started_at: datetime) -> Execution:
            ex = Execution(procedure=procedure, version=1, started_at=started_at)
            store.put_execution(ex)
            return ex

        middle = put("a", T0 + timedelta(seconds=1))
        minus_five = timezone(timedelta(hours=-5))  # ordered by instant, not wall time
        newest = put("b", (T0 + timedelta(seconds=1, microseconds=500_000)).astimezone(minus_five))
        oldest = put("a", T0)
        tie_first = put("a", T0 + timedelta(seconds=1))  # same time as middle, put later
        store.put_step_run(oldest.id, step_run(0))
        store.put_execution(middle.model_copy(update={"status": "succeeded"}))  # keeps its place
        ids = [e.id for e in store.list_executions()]
        assert ids == [newest.id, tie_first.id, middle.id, oldest.id]
        assert [e.id for e in store.list_executions(procedure="a", limit=2, offset=1)] == \
            [middle.id, oldest.id]
        assert store.list_executions(procedure="a")[-1].step_runs == [step_run(0)]
        assert store.list_executions(procedure="zzz") == []
        with pytest.raises(UsageError):
            store.list_executions(offset=-1)

    def test_step_run_tries_round_trip(self, store: Store) -> None:
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        failed = Attempt(attempt=1, status="failed", args={"a": 1}, error="OSError: x",
                         duration_ms=2.0, started_at=T0)
        unknown = Attempt(attempt=2, status="unknown", started_at=T0)
        run = step_run(0, attempt=2, attempts=3, history=[failed, unknown])
        store.put_step_run(ex.id, run)
        assert store.get_execution(ex.id).step_runs == [run]

    def test_evidence_is_append_only_oldest_first(self, store: Store) -> None:
        mine = Execution(procedure="refund", version=1)
        store.put_execution(mine)
        late = Evidence(execution_id=mine.id, source="test", reward=1.0, created_at=T0)
        early = Evidence(execution_id=mine.id, source="user", reward=0.0,
                         created_at=T0 - timedelta(hours=1))
        other = Evidence(execution_id="ex_2", source="environment", reward=0.5, created_at=T0)
        for e in (late, early, other, late):
            store.put_evidence(e)
        assert store.list_evidence(mine.id) == [early, late, late]
        assert store.list_evidence() == [early, late, other, late]
        assert store.list_evidence("ex_3") == []
        assert store.list_evidence(procedure="refund") == [early, late, late]
        assert store.list_evidence(procedure="nope") == []


class LeaseContract:
    """The lease rules of :class:`procmem.store.base.LeaseRecords`."""

    def test_a_lease_is_taken_by_one_owner_until_it_expires(self, store: Store) -> None:
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        assert lease_of(store, ex.id, now=T0) is None  # a new execution has none
        until = store.acquire_lease(ex.id, "a", lease_s=10, now=T0)
        assert until == T0 + timedelta(seconds=10)
        with pytest.raises(ExecutionBusy) as busy:
            store.acquire_lease(ex.id, "b", lease_s=10, now=T0 + timedelta(seconds=9))
        assert isinstance(busy.value, Conflict) and busy.value.code == "execution_busy"
        assert (busy.value.execution_id, busy.value.owner, busy.value.expires_at) == \
            (ex.id, "a", until)
        assert lease_of(store, ex.id, now=T0) == ("a", until)  # a refusal changes nothing
        renewed = store.acquire_lease(ex.id, "a", lease_s=10, now=T0 + timedelta(seconds=9))
        assert renewed == T0 + timedelta(seconds=19)  # the owner renews its own lease
        assert lease_of(store, ex.id, now=renewed) is None  # expired at its expiry
        assert store.acquire_lease(ex.id, "b", lease_s=5, now=renewed) == \
            renewed + timedelta(seconds=5)  # an expired lease is free
        assert not store.release_lease(ex.id, "a")  # only the owner releases
        assert store.release_lease(ex.id, "b")
        assert lease_of(store, ex.id, now=renewed) is None
        assert store.acquire_lease(ex.id, "c", lease_s=5, now=renewed)

    def test_a_header_that_is_not_running_clears_the_lease(self, store: Store) -> None:
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        store.acquire_lease(ex.id, "a", lease_s=60, now=T0)
        store.put_execution(ex)  # still running: the lease stays
        assert lease_of(store, ex.id, now=T0) is not None
        for status in ("paused", "failed", "succeeded"):
            store.acquire_lease(ex.id, "a", lease_s=60, now=T0)
            store.put_execution(ex.model_copy(update={"status": status}))
            assert lease_of(store, ex.id, now=T0) is None
            assert store.acquire_lease(ex.id, "b", lease_s=60, now=T0)  # anyone may resume
            store.release_lease(ex.id, "b")

    def test_lease_errors(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.acquire_lease("ex_nope", "a", lease_s=1)
        assert not store.release_lease("ex_nope", "a")
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        for owner, lease_s in (("", 1.0), ("a", 0.0), ("a", -1.0)):
            with pytest.raises(UsageError):
                store.acquire_lease(ex.id, owner, lease_s=lease_s)


class SearchIndexContract:
    """Documents follow current versions; the change log; saved indexes; calibrations."""

    def test_documents_are_index_text_of_the_current_version(self, store: Store) -> None:
        rev0 = store.index_revision()
        search_fixture(store)
        docs = dict(store.index_documents())
        assert sorted(docs) == ["proc_a", "proc_b"]
        tasks = ["Please cancel order #W123, I ordered by mistake", "cancel my pending order #W999"]
        assert docs["proc_a"] == index_text(store.get_procedure("proc_a"), tasks)
        assert docs["proc_b"] == index_text(store.get_procedure("proc_b"), [])
        rev1 = store.index_revision()
        assert rev1 > rev0
        store.set_status("proc_b", 1, "deprecated")
        assert [n for n, _ in store.index_documents()] == ["proc_a"]
        assert [n for n, _ in store.index_documents("deprecated")] == ["proc_b"]
        assert store.index_revision() > rev1
        assert store.index_changes(rev1) == ["proc_b"]

    def test_every_status_is_indexed_and_filtered(self, store: Store) -> None:
        store.put_procedure(proc("flow", 1, "active", description="alpha words"))
        store.put_procedure(proc("flow", 2, "candidate", description="beta words"))
        store.put_procedure(proc("drafts", 1, "candidate", description="gamma"))
        assert store.index_status() == {"flow": "active", "drafts": "candidate"}
        assert "alpha" in dict(store.index_documents())["flow"]
        store.set_status("flow", 2, "active")
        assert "beta" in dict(store.index_documents())["flow"]
        store.set_status("flow", 2, "deprecated")  # v1 is current again
        assert "alpha" in dict(store.index_documents())["flow"]
        store.set_status("flow", 1, "deprecated")
        assert store.index_status() == {"flow": "deprecated", "drafts": "candidate"}
        assert [n for n, _ in store.index_documents(None)] == ["drafts", "flow"]
        assert store.index_documents() == []
        entries = store.index_entries(["flow", "nope", "flow"])
        assert set(entries) == {"flow"}
        assert entries["flow"] == ("deprecated", dict(store.index_documents(None))["flow"])
        assert store.index_entries([]) == {}

    def test_revision_is_unchanged_by_reads_and_idempotent_puts(self, store: Store) -> None:
        search_fixture(store)
        rev = store.index_revision()
        store.index_documents()
        store.index_entries(["proc_a"])
        assert store.put_procedure(store.get_procedure("proc_b")) is False
        assert store.index_revision() == rev
        assert store.index_changes(rev) == []
        assert store.index_changes(-1) is None  # before any revision: the log cannot tell
        store.put_procedure(proc("proc_c"))
        store.put_procedure(proc("proc_a", 2, "candidate"))
        assert store.index_changes(rev) == ["proc_a", "proc_c"]

    def test_a_tool_schema_change_makes_the_changes_unlistable(self, store: Store) -> None:
        store.put_procedure(proc("flow"))
        rev = store.index_revision()
        store.put_tool_schemas({"noop": {"description": "Does nothing"}})
        assert store.index_changes(rev) is None  # every card may have changed
        again = store.index_revision()
        assert again > rev
        store.put_tool_schemas({"noop": {"description": "Does nothing"}})
        assert store.index_revision() == again  # unchanged schema: nothing logged

    def test_index_snapshots_round_trip_replace_and_delete(self, store: Store) -> None:
        assert store.get_index_snapshot("bm25") is None
        store.put_index_snapshot("bm25", 3, b"\x00one")
        store.put_index_snapshot("model-x", 4, b"two")
        assert store.get_index_snapshot("bm25") == (3, b"\x00one")
        store.put_index_snapshot("bm25", 5, b"three")  # replaces
        assert store.get_index_snapshot("bm25") == (5, b"three")
        with pytest.raises(UsageError):
            store.put_index_snapshot("", 1, b"x")
        assert store.delete_index_snapshots("nope") == 0
        assert store.delete_index_snapshots("bm25") == 1
        assert store.get_index_snapshot("bm25") is None
        assert store.get_index_snapshot("model-x") == (4, b"two")
        store.put_index_snapshot("bm25", 6, b"")
        assert store.delete_index_snapshots() == 2
        assert store.get_index_snapshot("model-x") is None

    def test_calibration_round_trip_and_replace(self, store: Store) -> None:
        assert store.get_calibration("bm25") is None
        store.put_calibration("bm25", '{"a": 1}')
        store.put_calibration("hybrid:model-é", '{"b": [1.5, 2]}')
        assert store.get_calibration("bm25") == '{"a": 1}'
        assert store.get_calibration("hybrid:model-é") == '{"b": [1.5, 2]}'
        store.put_calibration("bm25", '{"a": 2}')  # replaces, keeps the other
        assert store.get_calibration("bm25") == '{"a": 2}'
        assert store.get_calibration("hybrid:model-é") == '{"b": [1.5, 2]}'
        assert store.get_calibration("hybrid:other") is None
        with pytest.raises(UsageError):
            store.put_calibration("", "{}")
        assert store.get_calibration("") is None

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=st.text(min_size=1, max_size=30), text=st.text(max_size=200))
    def test_calibration_text_comes_back_exactly(self, store: Store, key: str, text: str) -> None:
        store.put_calibration(key, text)
        assert store.get_calibration(key) == text


class EmbeddingContract:
    """Vectors by (model id, text hash), never mixed across models."""

    def test_models_never_mix_and_replace_or_delete(self, store: Store) -> None:
        store.put_embeddings("a", {"h1": np.ones(3, np.float32), "h2": np.zeros(3, np.float32)})
        store.put_embeddings("b", {"h1": np.full(5, 2, np.float32)})
        assert set(store.get_embeddings("a", ["h1", "h2", "h3", "h1"])) == {"h1", "h2"}
        assert store.get_embeddings("b", ["h1"])["h1"].shape == (5,)
        assert store.get_embeddings("c", ["h1"]) == {}
        assert store.put_embeddings("a", {"h1": np.full(3, 7, np.float32)}) == 1  # replaced
        back = store.get_embeddings("a", ["h1"])["h1"]
        assert back.dtype == np.float32 and back.tolist() == [7, 7, 7]
        assert store.count_embeddings() == {"a": 2, "b": 1}
        assert store.delete_embeddings("a") == 2 and store.count_embeddings() == {"b": 1}
        assert store.delete_embeddings() == 1 and store.count_embeddings() == {}

    def test_bad_vectors_are_refused_and_nothing_is_stored(self, store: Store) -> None:
        with pytest.raises(UsageError):
            store.put_embeddings("m", {"a": np.ones(3, np.float32), "b": np.ones(4, np.float32)})
        with pytest.raises(UsageError):
            store.put_embeddings("m", {"a": np.ones((2, 2), np.float32)})
        with pytest.raises(UsageError):
            store.put_embeddings("", {"a": np.ones(3, np.float32)})
        assert store.count_embeddings() == {}


class ToolSchemaContract:
    """Tool schemas and procedure notes."""

    CANCEL = {"name": "cancel", "description": "Cancel an order.",
              "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                             "required": ["order_id"]}}

    def test_put_reports_added_changed_unchanged(self, store: Store) -> None:
        assert store.find_tool_schema("cancel") is None
        assert store.put_tool_schemas({"cancel": self.CANCEL}) == {"cancel": "added"}
        same = dict(reversed(list(self.CANCEL.items())))  # canonical JSON: key order aside
        assert store.put_tool_schemas({"cancel": same}) == {"cancel": "unchanged"}
        assert store.find_tool_schema("cancel") == self.CANCEL
        changed = {**self.CANCEL, "description": "Cancel a pending order."}
        assert store.put_tool_schemas({"zz": {}, "cancel": changed}) == {
            "zz": "added", "cancel": "changed"}
        assert store.find_tool_schema("cancel") == changed
        store.put_tool_schemas({"Zulu": {"name": "Zulu"}, "_x": {}, "alpha": {"name": "alpha"}})
        assert list(store.list_tool_schemas()) == ["Zulu", "_x", "alpha", "cancel", "zz"]

    def test_batch_is_one_transaction_and_notes_follow_changes(self, store: Store) -> None:
        store.put_procedure(proc("flow"))
        notes = {"cancel": [("flow", {"n": 1})], "alpha": [("flow", {"n": 2})]}
        assert store.put_tool_schemas({"cancel": self.CANCEL}) == {"cancel": "added"}
        status = store.put_tool_schemas({"cancel": self.CANCEL, "alpha": {"name": "alpha"}},
                                        notes=notes)
        assert status == {"cancel": "unchanged", "alpha": "added"}
        assert [n["record"] for n in store.list_procedure_notes("flow")] == [{"n": 2}]
        with pytest.raises(UsageError):
            store.put_tool_schemas({"beta": {"name": "beta"}, "bad": {"x": {1, 2}}})
        with pytest.raises(NotFound):
            store.put_tool_schemas({"gamma": {"name": "gamma"}},
                                   notes={"gamma": [("no-such-procedure", {})]})
        assert list(store.list_tool_schemas()) == ["alpha", "cancel"]
        assert len(store.list_procedure_notes()) == 1

    def test_notes_are_listed_filtered_deleted_and_go_with_their_procedure(
            self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.add_procedure_note("flow", "tool_schema", {})
        store.put_procedure(proc("flow"))
        store.put_procedure(proc("other"))
        store.add_procedure_note("flow", "tool_schema", {"a": 1})
        store.add_procedure_note("flow", "other_kind", {"b": 2})
        store.add_procedure_note("other", "tool_schema", {"c": 3})
        notes = store.list_procedure_notes()
        assert [(n["name"], n["kind"], n["record"]) for n in notes] == [
            ("flow", "tool_schema", {"a": 1}), ("flow", "other_kind", {"b": 2}),
            ("other", "tool_schema", {"c": 3})]
        assert all(set(n) == {"id", "name", "kind", "created_at", "record"} for n in notes)
        assert [n["record"] for n in store.list_procedure_notes(kind="tool_schema")] == [
            {"a": 1}, {"c": 3}]
        assert [n["record"] for n in store.list_procedure_notes("flow", kind="other_kind")] == [
            {"b": 2}]
        assert store.delete_procedure_notes("flow", kind="other_kind") == 1
        assert store.delete_procedure("flow") is True
        assert [n["name"] for n in store.list_procedure_notes()] == ["other"]
        assert store.delete_procedure_notes() == 1
        assert store.list_procedure_notes() == []


class KeyContract:
    """API keys: never replaced, revoked for good."""

    def test_api_keys_round_trip_are_never_replaced_and_stay_revoked(self, store: Store) -> None:
        from procmem.security.keys import ApiKey

        first = ApiKey(id=uuid.uuid4().hex[:12], tenant="acme", scopes=("read", "run"),
                       secret_hash="a" * 64, name="agent")
        other = ApiKey(id=uuid.uuid4().hex[:12], tenant="default", scopes=("admin",),
                       secret_hash="b" * 64)
        store.put_api_key(first)
        store.put_api_key(other)
        assert store.find_api_key(first.id) == first
        assert store.find_api_key("0" * 12) is None
        with pytest.raises(Conflict):
            store.put_api_key(first.model_copy(update={"tenant": "default"}))
        assert [k.id for k in store.list_api_keys("acme")] == [first.id]
        assert {k.id for k in store.list_api_keys()} == {first.id, other.id}
        assert store.revoke_api_key(first.id) is True
        assert store.revoke_api_key(first.id) is False  # revoked once, never cleared
        revoked = store.find_api_key(first.id)
        assert revoked is not None and revoked.revoked_at is not None
        assert store.revoke_api_key("0" * 12) is False
