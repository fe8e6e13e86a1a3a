"""Run statistics as aggregates: the store's batch reads and what Memory shows from them.

The contract (``StatsContract``) runs against every backend: ``procedure_stats``
equals the aggregate of the stored executions after any sequence of writes,
and ``recent_outcomes`` lists exactly what ``list_executions`` and
``list_evidence`` would, for a whole batch of names.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procmem.core.errors import UsageError
from procmem.core.model import Evidence, Execution, Procedure, Step
from procmem.core.procstats import STATS_FIELDS, ProcedureStats
from procmem.learning.stats import outcome_posterior, posterior
from procmem.memory import Memory
from procmem.store import SQLiteStore, Store
from procmem.store.sqlite import apply_migrations, load_migrations

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ["running", "paused", "succeeded", "failed"]


def aggregate(store: Store, names: list[str]) -> dict[tuple[str, int], ProcedureStats]:
    """The statistics recomputed from the raw executions (what the counters must equal)."""
    out: dict[tuple[str, int], ProcedureStats] = {}
    for name in names:
        runs = [e for e in store.list_executions(procedure=name, limit=100_000)
                if e.parent_id is None]
        for version in sorted({e.version for e in runs}):
            mine = [e for e in runs if e.version == version]
            done = [e for e in mine if e.done]
            out[name, version] = ProcedureStats(
                runs=len(mine), finished=len(done),
                succeeded=sum(e.status == "succeeded" for e in done),
                duration_ms=sum(e.duration_ms for e in done),
                last_executed_at=max(e.started_at for e in mine))
    return out


def same(a: dict[tuple[str, int], ProcedureStats], b: dict[tuple[str, int], ProcedureStats]
         ) -> None:
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        assert (x.runs, x.finished, x.succeeded, x.last_executed_at) == \
               (y.runs, y.finished, y.succeeded, y.last_executed_at), key
        assert x.duration_ms == pytest.approx(y.duration_ms, abs=1e-6), key


writes = st.lists(st.tuples(
    st.integers(0, 5),                # which execution (re-putting one updates it)
    st.sampled_from(["a", "b"]),       # procedure
    st.integers(1, 2),                 # version
    st.sampled_from(STATUSES),
    st.booleans(),                     # a sub-procedure run (parent_id set)
    st.integers(0, 50),                # duration_ms
    st.integers(0, 100),               # started_at offset (minutes)
), max_size=25)


class StatsContract:
    """Behaviour every backend's statistics reads must show. Subclasses provide ``store``."""

    @settings(max_examples=40, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(ops=writes)
    def test_counters_equal_the_aggregate_after_any_writes(
            self, store: Store, ops: list[tuple[Any, ...]]) -> None:
        ids = [f"ex_{i}_{id(ops)}" for i in range(6)]
        for i, name, version, status, child, duration, minutes in ops:
            store.put_execution(Execution(
                id=ids[i], procedure=name, version=version, status=status,
                parent_id="ex_parent" if child else None, duration_ms=duration,
                started_at=T0 + timedelta(minutes=minutes)))
        names = ["a", "b"]
        got = {k: v for k, v in store.procedure_stats(names).items() if k[0] in names}
        want = aggregate(store, names)
        same({k: v for k, v in got.items() if v.runs}, want)
        for st_ in got.values():
            assert 0 <= st_.succeeded <= st_.finished <= st_.runs
            rate = st_.success_rate
            assert rate is None or 0 <= rate <= 1

    def test_versions_never_run_are_absent(self, store: Store) -> None:
        store.put_execution(Execution(procedure="p", version=1, status="succeeded"))
        got = store.procedure_stats(["p", "unknown"])
        assert list(got) == [("p", 1)] and got["p", 1].runs == 1
        assert store.procedure_stats([]) == {}

    def test_a_rolled_back_write_leaves_the_counters(self, store: Store) -> None:
        store.put_execution(Execution(procedure="p", version=1, status="succeeded"))
        before = store.procedure_stats(["p"])
        with pytest.raises(RuntimeError), store.transaction():  # type: ignore[attr-defined]
            store.put_execution(Execution(procedure="p", version=1, status="failed"))
            raise RuntimeError("boom")
        assert store.procedure_stats(["p"]) == before

    def test_recent_outcomes_are_what_the_record_lists(self, store: Store) -> None:
        for k in range(12):
            name = "p" if k % 3 else "q"
            ex = Execution(procedure=name, version=1 + k % 2,
                           status=STATUSES[k % 4], parent_id="ex_x" if k == 5 else None,
                           started_at=T0 + timedelta(minutes=k // 2))  # ties: insertion order
            store.put_execution(ex)
            for r in range(k % 3):
                store.put_evidence(Evidence(execution_id=ex.id, reward=r / 2,
                                            source=["environment", "agent"][r % 2],
                                            created_at=T0 + timedelta(minutes=r)))
        got = store.recent_outcomes(["q", "p", "p", "none"], window=5)
        for name in ("p", "q"):
            mine = [o for o in got if o.procedure == name]
            listed = store.list_executions(procedure=name, limit=5)
            assert [o.execution_id for o in mine] == [e.id for e in listed]
            assert [(o.version, o.status, o.parent_id) for o in mine] == \
                   [(e.version, e.status, e.parent_id) for e in listed]
            for o in mine:
                evs = store.list_evidence(o.execution_id)
                assert o.evidence == tuple((e.source, e.reward) for e in evs)
            ids = {e.id for e in listed}
            evidence = [e for e in store.list_evidence(procedure=name) if e.execution_id in ids]
            assert outcome_posterior(mine) == posterior(listed, evidence)
        assert [o.procedure for o in got] == sorted(o.procedure for o in got)

    def test_recent_outcomes_needs_a_window(self, store: Store) -> None:
        with pytest.raises(UsageError):
            store.recent_outcomes(["p"], window=0)
        assert store.recent_outcomes([], window=3) == []

    def test_stored_versions_hold_no_statistics(self, store: Store) -> None:
        proc = Procedure(name="p").with_stats(ProcedureStats(runs=4, finished=1, succeeded=1))
        store.put_procedure(proc)
        text = store.get_procedures_json(["p"])["p"]
        assert STATS_FIELDS.isdisjoint(json.loads(text))
        assert store.get_procedure("p").execution_count == 0


class TestSQLiteStats(StatsContract):
    """The contract on SQLite, in memory and in a file."""

    @pytest.fixture(params=["sqlite-memory", "sqlite-file"])
    def store(self, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SQLiteStore]:
        location = ":memory:" if request.param == "sqlite-memory" else str(tmp_path / "m.db")
        with SQLiteStore(location) as store:
            yield store


def test_the_migration_counts_executions_stored_before_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, [m for m in load_migrations() if m.version < 10])
    runs = [("e1", "p", 1, "succeeded", None, 10.0, "2026-01-01T00:00:00.000000"),
            ("e2", "p", 1, "failed", None, 30.0, "2026-01-02T00:00:00.000000"),
            ("e3", "p", 1, "running", None, 0.0, "2026-01-03T00:00:00.000000"),
            ("e4", "p", 1, "succeeded", "e1", 5.0, "2026-01-04T00:00:00.000000")]
    for seq, (ex_id, name, version, status, parent, duration, at) in enumerate(runs, 1):
        header = {"id": ex_id, "procedure": name, "version": version, "status": status,
                  "parent_id": parent, "duration_ms": duration, "started_at": at + "Z"}
        conn.execute("INSERT INTO executions (id, procedure, version, status, json, started_at, "
                     "seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (ex_id, name, version, status, json.dumps(header), at, seq))
    legacy = {"name": "p", "version": 1, "execution_count": 9, "success_rate": 1.0,
              "avg_duration_ms": 3.0, "last_executed_at": None}  # stored before they left
    conn.execute("INSERT INTO procedures (name, version, status, json, created_at) "
                 "VALUES ('p', 1, 'active', ?, '2026-01-01T00:00:00.000000')",
                 (json.dumps(legacy),))
    conn.close()
    with SQLiteStore(path) as store:
        same(store.procedure_stats(["p"]), aggregate(store, ["p"]))
        assert store.procedure_stats(["p"])["p", 1].runs == 3
        assert store.get_procedure("p").execution_count == 0  # never the stored figure


# ------------------------------------------------------------------ Memory


def _proc(description: str = "cancel an order") -> Procedure:
    return Procedure(name="cancel_order", description=description,
                     steps=[Step(id="s1", action="cancel", args={"order_id": "#W1"})])


@pytest.fixture
def mem() -> Iterator[Memory]:
    with Memory(":memory:", embedder=None) as m:
        yield m


def test_an_edited_version_starts_with_no_runs(mem: Memory) -> None:
    v1 = mem.put_procedure(_proc())
    mem.replay(v1, tools={"cancel": lambda **kw: "ok"})
    read = mem.get_procedure("cancel_order")
    assert (read.execution_count, read.success_rate) == (1, 1.0)
    v2 = mem.put_procedure(read.model_copy(update={"description": "cancel a pending order"}))
    assert v2.version == 2
    assert (v2.execution_count, v2.success_rate, v2.last_executed_at) == (0, None, None)
    again = mem.get_procedure("cancel_order")
    assert again.version == 2 and again.execution_count == 0 and again.success_rate is None
    assert mem.get_procedure("cancel_order", 1).execution_count == 1  # v1 keeps its own
    assert [v.execution_count for v in mem.list_versions("cancel_order")] == [1, 0]


def test_a_dump_carries_the_statistics_and_validation_drops_them(mem: Memory) -> None:
    proc = mem.put_procedure(_proc())
    mem.replay(proc, tools={"cancel": lambda **kw: "ok"})
    read = mem.get_procedure("cancel_order")
    dumped = read.model_dump(mode="json")
    assert dumped["execution_count"] == 1 and dumped["success_rate"] == 1.0
    back = Procedure.model_validate(dumped)
    assert back == read and back.execution_count == 0  # equal content; stats are a view


class _Counting:
    """A store wrapper that counts calls by method name."""

    def __init__(self, store: Store) -> None:
        self._store, self.calls = store, {}  # type: ignore[var-annotated]

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if callable(attr):
            def counted(*args: Any, **kw: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                return attr(*args, **kw)
            return counted
        return attr


def test_search_reads_statistics_for_all_hits_in_one_call_each(mem: Memory) -> None:
    for k, verb in enumerate(["cancel", "refund", "exchange"]):
        p = Procedure(name=f"{verb}_order", description=f"{verb} an order",
                      steps=[Step(id="s1", action=verb, args={"order_id": "#W1"})])
        mem.put_procedure(p)
        for i in range(k + 1):
            ex = mem.replay(p.name, tools={verb: (lambda **kw: "ok") if i else _fail})
            mem.report(ex.id, reward=float(bool(i)), source="environment")
    expected = {}
    for name in ("cancel_order", "refund_order", "exchange_order"):
        executions = mem.store.list_executions(procedure=name, limit=mem.policy.window)
        mine = [e for e in executions if e.parent_id is None]
        ids = {e.id for e in mine}
        evidence = [e for e in mem.store.list_evidence(procedure=name) if e.execution_id in ids]
        alpha, beta, _, _ = posterior(mine, evidence)
        expected[name] = alpha / (alpha + beta)
    counting = _Counting(mem.store)
    mem.store = counting  # type: ignore[assignment]
    hits = mem.search("an order", limit=5, retriever="bm25")
    assert len(hits) == 3
    assert counting.calls.get("recent_outcomes") == 1
    assert counting.calls.get("procedure_stats") == 1
    assert "list_executions" not in counting.calls and "list_evidence" not in counting.calls
    for h in hits:
        assert h.reliability == pytest.approx(expected[h.procedure.name])
        assert h.procedure.execution_count == mem.get_procedure(h.procedure.name).execution_count


def _fail(**kw: Any) -> str:
    raise RuntimeError("tool broke")
