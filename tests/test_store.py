"""The Store contract suite, run against every backend, plus SQLite specifics.

``StoreContract`` holds the behaviour every backend must show (see the invariants
in ``procmem/store/base.py``); each backend gets a ``Test...`` subclass that
provides the ``store`` fixture.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procmem.errors import (
    Conflict,
    ExecutionBusy,
    MissingExtra,
    NotFound,
    StoreError,
    StoreUnavailable,
    UsageError,
)
from procmem.model import (
    Attempt,
    Evidence,
    Execution,
    Lineage,
    Param,
    Procedure,
    Step,
    StepRun,
    Trace,
    TraceStep,
)
from procmem.procstats import ProcedureStats
from procmem.store import SQLiteStore, Store, index_text, open_store
from procmem.store.sqlite import Migration, apply_migrations, load_migrations

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

# ------------------------------------------------------------------ strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)

trace_steps = st.builds(
    TraceStep,
    action=st.text(min_size=1, max_size=20),
    args=json_objects,
    output=json_values,
    error=st.none() | st.text(max_size=40),
    duration_ms=st.none() | st.floats(min_value=0, max_value=1e7),
)
traces = st.builds(
    Trace,
    task=st.text(max_size=200),
    steps=st.lists(trace_steps, max_size=5),
    outcome=st.sampled_from(["success", "failure", "unknown"]),
    reward=st.none() | st.floats(min_value=0, max_value=1),
    source=st.none() | st.text(max_size=12),
    metadata=json_objects,
    created_at=moments,
)

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
params = st.builds(
    Param,
    name=identifiers,
    schema_=st.sampled_from([{}, {"type": "string"}, {"type": "integer", "minimum": 0}]),
    description=st.text(max_size=40),
    examples=st.lists(json_scalars, max_size=3),
    required=st.booleans(),
)
steps = st.builds(
    Step,
    id=identifiers,
    action=st.text(min_size=1, max_size=20),
    args=json_objects,
    side_effect=st.none() | st.booleans(),
    description=st.text(max_size=40),
)
procedures = st.builds(
    Procedure,
    name=st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,30}", fullmatch=True),
    version=st.integers(min_value=1, max_value=10_000),
    description=st.text(max_size=100),
    params=st.lists(params, max_size=3, unique_by=lambda p: p.name),
    steps=st.lists(steps, max_size=4, unique_by=lambda s: s.id),
    tags=st.lists(st.text(max_size=10), max_size=3),
    status=st.sampled_from(["candidate", "active", "deprecated"]),
    lineage=st.builds(Lineage, traces=st.lists(st.text(max_size=10), max_size=3),
                      parent_version=st.none() | st.integers(min_value=1, max_value=9),
                      reason=st.text(max_size=20)),
    created_at=moments,
)

fixture_ok = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def proc(name: str, version: int = 1, status: str = "active", **fields: Any) -> Procedure:
    return Procedure.model_validate({"name": name, "version": version, "status": status,
                                     "steps": [{"id": "s1", "action": "noop"}], **fields})


def step_run(index: int, **fields: Any) -> StepRun:
    return StepRun(index=index, step_id=f"s{index}", action="get_order", args={"i": index},
                   output=f'{{"n": {index}}}', started_at=T0, **fields)


# ------------------------------------------------------------------ the contract


class StoreContract:
    """Behaviour every backend must show. Subclasses provide a ``store`` fixture."""

    def test_implements_protocol(self, store: Store) -> None:
        assert isinstance(store, Store)
        assert isinstance(store.location, str)

    # traces ---------------------------------------------------------------

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

    def test_list_traces_pages_in_insertion_order(self, store: Store) -> None:
        batch = [Trace(task=f"task {i}", created_at=T0 - timedelta(days=i)) for i in range(5)]
        store.put_traces(batch[:2])
        store.put_traces(batch[2:])
        assert [t.id for t in store.list_traces(limit=2, offset=1)] == [batch[1].id, batch[2].id]
        assert [t.id for t in store.list_traces(offset=3)] == [batch[3].id, batch[4].id]
        assert store.list_traces(limit=0) == []
        with pytest.raises(UsageError):
            store.list_traces(limit=-1)

    def test_get_traces_in_insertion_order_without_unknown_ids(self, store: Store) -> None:
        batch = [Trace(task=f"task {i}") for i in range(5)]
        store.put_traces(batch)
        wanted = [batch[3].id, "tr_nope", batch[0].id, batch[3].id, batch[4].id]
        assert store.get_traces(wanted) == [batch[0], batch[3], batch[4]]
        assert store.get_traces([]) == []

    def test_get_missing_trace(self, store: Store) -> None:
        with pytest.raises(NotFound) as info:
            store.get_trace("tr_nope")
        assert (info.value.kind, info.value.key) == ("trace", "tr_nope")

    def test_delete_trace(self, store: Store) -> None:
        batch = [Trace(task=f"task {i}") for i in range(4)]
        store.put_traces(batch)
        assert store.trace_deletions() == 0
        assert store.delete_trace(batch[1].id) is True
        assert store.delete_trace(batch[1].id) is False  # already gone
        assert store.delete_trace("tr_nope") is False
        assert store.trace_deletions() == 1  # only a real deletion counts
        with pytest.raises(NotFound):
            store.get_trace(batch[1].id)
        assert store.count_traces() == 3
        assert [t.id for t in store.list_traces()] == [batch[0].id, batch[2].id, batch[3].id]
        # deleted and put again: a new trace, after the others; the count of deletions stays
        store.put_traces([batch[1].model_copy(update={"task": "other content"})])
        assert [t.id for t in store.list_traces()][-1] == batch[1].id
        assert store.delete_trace(batch[3].id) is True
        assert store.trace_deletions() == 2
        assert store.count_traces() == 3

    def test_delete_trace_keeps_versions_and_reindexes_their_names(self, store: Store) -> None:
        self._search_fixture(store)
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
        assert store.search_text("mistake") == []

    # procedures -----------------------------------------------------------

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

    # search -----------------------------------------------------------------

    def _search_fixture(self, store: Store) -> None:
        demos = [Trace(id="d1", task="Please cancel order #W123, I ordered by mistake"),
                 Trace(id="d2", task="cancel my pending order #W999")]
        store.put_traces(demos)
        store.put_procedure(proc("proc_a", lineage={"traces": ["d1", "d2", "never-stored"]},
                                 steps=[{"id": "s1", "action": "do_thing"}]))
        store.put_procedure(proc("proc_b", description="change the shipping address",
                                 steps=[{"id": "s1", "action": "modify_address"}]))

    def test_search_ranks_by_demonstration_tasks(self, store: Store) -> None:
        self._search_fixture(store)
        results = store.search_text("cancel my order")
        assert results[0][0] == "proc_a"
        scores = dict(results)
        assert scores["proc_a"] > scores.get("proc_b", float("-inf"))
        assert [n for n, _ in store.search_text("shipping address")] == ["proc_b"]
        assert [n for n, _ in store.search_text("modify")] == ["proc_b"]
        assert store.search_text("cancel order", limit=0) == []

    def test_search_is_case_and_accent_insensitive(self, store: Store) -> None:
        store.put_procedure(proc("cafe_menu", description="Order a café crème"))
        assert [n for n, _ in store.search_text("CAFE CREME")] == ["cafe_menu"]

    @pytest.mark.parametrize("query", [
        '"', 'cancel" OR "', "(order", "order)", "cancel AND", "AND", "OR NOT", "*", "canc*",
        "NEAR(cancel order)", "cancel NEAR order", "name:cancel", "^cancel", "{body}: order",
        "-cancel", "cancel + order", "o'rder", "\\", "cancel\x00order", "_", "__init__",
    ])
    def test_search_never_leaks_query_syntax(self, store: Store, query: str) -> None:
        self._search_fixture(store)
        results = store.search_text(query)
        assert isinstance(results, list)
        if "cancel" in query.lower() or "order" in query.lower():
            assert "proc_a" in [n for n, _ in results]

    @pytest.mark.parametrize("query", ["", "   ", "?!", "(\")", "—…"])
    def test_search_without_words_is_empty(self, store: Store, query: str) -> None:
        self._search_fixture(store)
        assert store.search_text(query) == []

    def test_search_indexes_the_current_version(self, store: Store) -> None:
        store.put_procedure(proc("flow", 1, "active", description="alpha words"))
        store.put_procedure(proc("flow", 2, "candidate", description="beta words"))
        assert [n for n, _ in store.search_text("alpha")] == ["flow"]
        assert store.search_text("beta") == []
        store.set_status("flow", 2, "active")
        assert store.search_text("alpha") == []
        assert [n for n, _ in store.search_text("beta")] == ["flow"]
        store.set_status("flow", 2, "deprecated")
        assert store.search_text("beta") == []  # deprecated: out of the index
        assert [n for n, _ in store.search_text("alpha")] == ["flow"]  # v1 is active again
        store.set_status("flow", 1, "deprecated")
        assert store.search_text("alpha") == []  # no active version: not searchable
        store.put_procedure(proc("drafts", 1, "candidate", description="gamma"))
        assert store.search_text("gamma") == []  # only candidates: not indexed
        assert [n for n, _ in store.search_text("words")] == []

    def test_index_documents_follow_the_current_active_version(self, store: Store) -> None:
        rev0 = store.index_revision()
        self._search_fixture(store)
        docs = dict(store.index_documents())
        assert sorted(docs) == ["proc_a", "proc_b"]
        assert "ordered by mistake" in docs["proc_a"]  # demonstration tasks are indexed
        assert "shipping address" in docs["proc_b"]
        rev1 = store.index_revision()
        assert rev1 > rev0
        store.set_status("proc_b", 1, "deprecated")
        assert [n for n, _ in store.index_documents()] == ["proc_a"]
        assert store.index_revision() > rev1

    def test_index_revision_is_unchanged_by_reads_and_idempotent_puts(self, store: Store) -> None:
        self._search_fixture(store)
        rev = store.index_revision()
        store.search_text("cancel")
        store.index_documents()
        assert store.put_procedure(store.get_procedure("proc_b")) is False
        assert store.index_revision() == rev

    # executions ---------------------------------------------------------------

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

    # leases -------------------------------------------------------------------

    def test_a_lease_is_taken_by_one_owner_until_it_expires(self, store: Store) -> None:
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        assert store.find_lease(ex.id, now=T0) is None  # a new execution has none
        until = store.acquire_lease(ex.id, "a", lease_s=10, now=T0)
        assert until == T0 + timedelta(seconds=10)
        assert store.find_lease(ex.id, now=T0) == ("a", until)
        with pytest.raises(ExecutionBusy) as busy:
            store.acquire_lease(ex.id, "b", lease_s=10, now=T0 + timedelta(seconds=9))
        assert isinstance(busy.value, Conflict) and busy.value.code == "execution_busy"
        assert (busy.value.execution_id, busy.value.owner, busy.value.expires_at) == \
            (ex.id, "a", until)
        assert store.find_lease(ex.id, now=T0) == ("a", until)  # a refusal changes nothing
        renewed = store.acquire_lease(ex.id, "a", lease_s=10, now=T0 + timedelta(seconds=9))
        assert renewed == T0 + timedelta(seconds=19)  # the owner renews its own lease
        assert store.find_lease(ex.id, now=renewed) is None  # expired at its expiry
        assert store.acquire_lease(ex.id, "b", lease_s=5, now=renewed) == \
            renewed + timedelta(seconds=5)  # an expired lease is free
        assert not store.release_lease(ex.id, "a")  # only the owner releases
        assert store.release_lease(ex.id, "b")
        assert store.find_lease(ex.id, now=renewed) is None
        assert store.acquire_lease(ex.id, "c", lease_s=5, now=renewed)

    def test_a_header_that_is_not_running_clears_the_lease(self, store: Store) -> None:
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        store.acquire_lease(ex.id, "a", lease_s=60, now=T0)
        store.put_execution(ex)  # still running: the lease stays
        assert store.find_lease(ex.id, now=T0) is not None
        for status in ("paused", "failed", "succeeded"):
            store.acquire_lease(ex.id, "a", lease_s=60, now=T0)
            store.put_execution(ex.model_copy(update={"status": status}))
            assert store.find_lease(ex.id, now=T0) is None
            assert store.acquire_lease(ex.id, "b", lease_s=60, now=T0)  # anyone may resume
            store.release_lease(ex.id, "b")

    def test_lease_errors(self, store: Store) -> None:
        with pytest.raises(NotFound):
            store.acquire_lease("ex_nope", "a", lease_s=1)
        assert not store.release_lease("ex_nope", "a")
        assert store.find_lease("ex_nope") is None
        ex = Execution(procedure="refund", version=1)
        store.put_execution(ex)
        for owner, lease_s in (("", 1.0), ("a", 0.0), ("a", -1.0)):
            with pytest.raises(UsageError):
                store.acquire_lease(ex.id, owner, lease_s=lease_s)

    # evidence -----------------------------------------------------------------

    def test_evidence_is_append_only(self, store: Store) -> None:
        late = Evidence(execution_id="ex_1", source="test", reward=1.0, created_at=T0)
        early = Evidence(execution_id="ex_1", source="user", reward=0.0,
                         created_at=T0 - timedelta(hours=1))
        other = Evidence(execution_id="ex_2", source="environment", reward=0.5, created_at=T0)
        for e in (late, early, other, late):
            store.put_evidence(e)
        assert store.list_evidence("ex_1") == [early, late, late]
        assert store.list_evidence() == [early, late, other, late]
        assert store.list_evidence("ex_3") == []

    # calibrations ---------------------------------------------------------------

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
        assert store.get_calibration("") is None

    def test_calibration_needs_a_key(self, store: Store) -> None:
        with pytest.raises(UsageError):
            store.put_calibration("", "{}")
        assert store.get_calibration("") is None

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(key=st.text(min_size=1, max_size=30), text=st.text(max_size=200))
    def test_calibration_text_comes_back_exactly(self, store: Store, key: str, text: str) -> None:
        store.put_calibration(key, text)
        assert store.get_calibration(key) == text

    # API keys -------------------------------------------------------------

    def test_api_keys_round_trip_are_never_replaced_and_stay_revoked(self, store: Store) -> None:
        from procmem.keys import ApiKey

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
        assert {k.id for k in store.list_api_keys()} >= {first.id, other.id}
        assert store.revoke_api_key(first.id) is True
        assert store.revoke_api_key(first.id) is False  # revoked once, never cleared
        revoked = store.find_api_key(first.id)
        assert revoked is not None and revoked.revoked_at is not None
        assert store.revoke_api_key("0" * 12) is False


# ------------------------------------------------------------------ the backends


class TestSQLiteStore(StoreContract):
    """The contract on SQLite, in memory and in a file."""

    @pytest.fixture(params=["sqlite-memory", "sqlite-file"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
        location = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "m.db")
        with SQLiteStore(location) as store:
            yield store


# ------------------------------------------------------------------ SQLite specifics


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "memory.db"


def test_step_runs_survive_reopening(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    ex = Execution(procedure="refund", version=1, started_at=T0)
    store.put_execution(ex)
    store.put_step_run(ex.id, step_run(0))
    store.put_step_run(ex.id, step_run(1))
    store.close()
    with SQLiteStore(db_path) as reopened:
        assert reopened.get_execution(ex.id).step_runs == [step_run(0), step_run(1)]


def test_step_runs_are_visible_to_another_connection_at_once(db_path: Path) -> None:
    with SQLiteStore(db_path) as writer, SQLiteStore(db_path) as reader:
        ex = Execution(procedure="refund", version=1)
        writer.put_execution(ex)
        writer.put_step_run(ex.id, step_run(0))
        assert reader.get_execution(ex.id).step_runs == [step_run(0)]


def test_a_lease_is_decided_in_the_file_not_in_the_process(db_path: Path) -> None:
    with SQLiteStore(db_path) as first, SQLiteStore(db_path) as second:
        ex = Execution(procedure="refund", version=1)
        first.put_execution(ex)
        first.acquire_lease(ex.id, "first", lease_s=60)
        with pytest.raises(ExecutionBusy):
            second.acquire_lease(ex.id, "second", lease_s=60)
        assert second.find_lease(ex.id) is not None
        first.put_execution(ex.model_copy(update={"status": "paused"}))
        assert second.acquire_lease(ex.id, "second", lease_s=60)


def test_migrations_recorded_once(db_path: Path) -> None:
    shipped = [m.version for m in load_migrations()]
    assert shipped and shipped[0] == 1 and shipped == sorted(set(shipped))
    SQLiteStore(db_path).close()
    with sqlite3.connect(db_path) as conn:
        first = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
    assert [v for v, _ in first] == shipped
    with SQLiteStore(db_path) as store:  # reopening applies nothing and keeps the data path
        store.put_traces([Trace(task="t")])
    with sqlite3.connect(db_path) as conn:
        again = conn.execute("SELECT version, applied_at FROM schema_migrations").fetchall()
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    assert again == first
    assert mode == "wal"


def test_apply_migrations_applies_only_new_ones_atomically() -> None:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    base = load_migrations()
    assert apply_migrations(conn, base) == [m.version for m in base]
    extra = Migration(900, "0900_extra.sql", "-- a; comment\nCREATE TABLE extra (a);\n")
    assert apply_migrations(conn, [*base, extra]) == [900]
    assert apply_migrations(conn, [*base, extra]) == []
    broken = Migration(901, "0901_broken.sql", "CREATE TABLE half (a);\nSELECT * FROM nowhere;")
    with pytest.raises(sqlite3.OperationalError):
        apply_migrations(conn, [broken])
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert 900 in versions and 901 not in versions
    assert not conn.in_transaction


def test_unopenable_locations(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        SQLiteStore(tmp_path)  # a directory
    assert info.value.location == str(tmp_path)
    assert isinstance(info.value.__cause__, sqlite3.Error)
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(StoreUnavailable):
        SQLiteStore(garbage)
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path / "no" / "such" / "dir" / "m.db")


def test_closed_store_raises_store_error() -> None:
    store = SQLiteStore(":memory:")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError):
        store.count_traces()
    with pytest.raises(StoreError):
        store.put_traces([Trace(task="t")])


def test_transaction_commits_only_at_the_outermost_level(db_path: Path) -> None:
    with SQLiteStore(db_path) as store, SQLiteStore(db_path) as other:
        a, b, c = Trace(task="a"), Trace(task="b"), Trace(task="c")
        with store.transaction():
            store.put_traces([a])
            with store.transaction():
                store.put_traces([b])
            assert other.count_traces() == 0  # nothing committed yet
            with pytest.raises(Conflict), store.transaction():
                store.put_traces([c])
                store.put_traces([b.model_copy(update={"task": "changed"})])
        assert [t.id for t in other.list_traces()] == [a.id, b.id]  # c was undone

        with pytest.raises(RuntimeError), store.transaction():
            store.put_procedure(proc("gone"))
            raise RuntimeError("caller failed")
        with pytest.raises(NotFound):
            other.get_procedure("gone")
        assert store.search_text("gone") == []


def test_concurrent_writers_share_one_store(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        ex = Execution(procedure="p", version=1)
        store.put_execution(ex)

        def write(start: int) -> None:
            for i in range(start, 200, 4):
                store.put_step_run(ex.id, step_run(i))

        threads = [threading.Thread(target=write, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert [r.index for r in store.get_execution(ex.id).step_runs] == list(range(200))


def test_index_text_builds_the_document() -> None:
    p = Procedure.model_validate({
        "name": "cancel_pending-order.v2", "description": "Cancel an order", "tags": ["retail"],
        "params": [{"name": "order_id", "description": "the order number"}],
        "steps": [{"id": "s1", "action": "get_order_details"}, {"id": "s2", "action": "cancel"}],
    })
    text = index_text(p, ["cancel #W1 please"])
    lines = text.split("\n")
    assert lines[0] == "cancel pending order v2"
    for part in ("Cancel an order", "retail", "order_id", "order id", "the order number",
                 "get_order_details", "get order details", "cancel", "cancel #W1 please"):
        assert part in lines
    assert lines[-1] == "cancel #W1 please"
    assert "" not in lines
    assert index_text(p, []) == index_text(p, [])
    assert "cancel #W1 please" not in index_text(p, []).split("\n")


# ------------------------------------------------------------------ open_store


def test_open_store_paths_and_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with open_store("plain.db") as store:  # type: ignore[attr-defined]
        assert isinstance(store, SQLiteStore) and store.location == "plain.db"
    with open_store("sqlite:///relative.db") as store:  # type: ignore[attr-defined]
        assert store.location == "relative.db"
    absolute = tmp_path / "abs.db"
    with open_store(f"sqlite:///{absolute}") as store:  # type: ignore[attr-defined]
        assert store.location == str(absolute)
    for memory in ("sqlite://", "sqlite:///:memory:", ":memory:"):
        with open_store(memory) as store:  # type: ignore[attr-defined]
            assert store.location == ":memory:"
    assert {p.name for p in tmp_path.iterdir()} >= {"plain.db", "relative.db", "abs.db"}


@pytest.mark.parametrize("url", ["postgresql://u@localhost/db", "postgres://localhost/x"])
def test_open_store_postgres_needs_the_extra(url: str) -> None:
    with pytest.raises(MissingExtra) as info:
        open_store(url)
    assert info.value.extra == "postgres"
    assert "procedural-memory[postgres]" in str(info.value)


@pytest.mark.parametrize("url", ["mysql://localhost/db", "http://example.com/m.db", "sqlite:/x"])
def test_open_store_rejects_other_schemes(url: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError):
        open_store(url)


class TestLearningRecords:
    """Pins, verification records and explicit deletion (SQLite)."""

    def test_pin_verification_and_delete(self, tmp_path: Path) -> None:
        with SQLiteStore(tmp_path / "m.db") as store:
            store.put_procedure(proc("flow", 1, "active", description="alpha"))
            store.put_procedure(proc("flow", 2, "candidate", description="beta"))
            assert store.is_pinned("flow") is False
            store.set_pinned("flow", True)
            assert store.is_pinned("flow") is True
            store.set_pinned("flow", False)
            assert store.is_pinned("flow") is False
            with pytest.raises(NotFound):
                store.set_pinned("nope", True)
            assert store.get_verification("flow", 2) is None
            store.put_verification("flow", 2, {"ok": True, "reproduced": ["t1"]})
            store.put_verification("flow", 2, {"ok": False, "reproduced": []})
            assert store.get_verification("flow", 2) == {"ok": False, "reproduced": []}
            with pytest.raises(NotFound):
                store.put_verification("flow", 9, {})
            assert [n for n, _ in store.search_text("alpha")] == ["flow"]
            assert store.delete_procedure("flow") is True
            assert store.delete_procedure("flow") is False
            with pytest.raises(NotFound):
                store.get_procedure("flow")
            assert store.search_text("alpha") == []
            assert store.get_verification("flow", 2) is None


# ------------------------------------------------------------------ tool schemas


class ToolSchemaContract:
    """Tool schemas and procedure notes: behaviour every backend must show."""

    CANCEL = {"name": "cancel", "description": "Cancel an order.",
              "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}},
                             "required": ["order_id"]}}

    def test_put_reports_new_or_changed_and_keeps_history(self, store: Store) -> None:
        assert store.find_tool_schema("cancel") is None
        assert store.put_tool_schema("cancel", self.CANCEL) is True
        assert store.put_tool_schema("cancel", dict(reversed(list(self.CANCEL.items())))) is False
        assert store.find_tool_schema("cancel") == self.CANCEL
        changed = {**self.CANCEL, "description": "Cancel a pending order."}
        assert store.put_tool_schema("cancel", changed) is True
        assert store.find_tool_schema("cancel") == changed
        history = store.list_tool_schema_history("cancel")
        assert [h["schema"] for h in history] == [self.CANCEL]
        assert history[0]["hash"] and history[0]["replaced_at"]
        store.put_tool_schema("alpha", {"name": "alpha"})
        assert list(store.list_tool_schemas()) == ["alpha", "cancel"]
        assert store.list_tool_schema_history("alpha") == []

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
        assert [n["record"] for n in store.list_procedure_notes(kind="tool_schema")] == [
            {"a": 1}, {"c": 3}]
        assert [n["record"] for n in store.list_procedure_notes("flow", kind="other_kind")] == [
            {"b": 2}]
        assert store.delete_procedure_notes("flow", kind="other_kind") == 1
        assert store.delete_procedure("flow") is True
        assert [n["name"] for n in store.list_procedure_notes()] == ["other"]
        assert store.delete_procedure_notes() == 1
        assert store.list_procedure_notes() == []


class TestSQLiteToolSchemas(ToolSchemaContract):
    """The tool-schema contract on SQLite, in memory and in a file."""

    @pytest.fixture(params=["sqlite-memory", "sqlite-file"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
        location = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "m.db")
        with SQLiteStore(location) as store:
            yield store
