"""Memory by composition: services built and used alone, a thin facade, shared by threads."""

from __future__ import annotations

import ast
import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import procmem
from procmem.core.model import Procedure, Step, Trace
from procmem.memory import Memory
from procmem.services.learning import LearningLoop
from procmem.services.plans import Plans
from procmem.services.procedures import Procedures
from procmem.services.replay import Executions
from procmem.services.search import Searcher
from procmem.services.stats import Statistics
from procmem.services.tools import ToolSchemas
from procmem.services.traces import Traces
from procmem.store.sqlite import SQLiteStore

SRC = Path(procmem.__file__).parent
OWN = ("learn", "close", "for_tenant")  # written in the facade itself
SERVICES = ("traces", "procedures", "tool_schemas", "statistics", "learner", "learning",
            "searcher", "executions", "plans", "calibrator")


def ping(name: str = "ping", description: str = "") -> Procedure:
    """A one-step procedure with no params: it replays without asking anything."""
    return Procedure(name=name, description=description,
                     steps=[Step(id="s1", action="ping", args={})])


# ------------------------------------------------------------------ the facade


def test_memory_has_no_mixins() -> None:
    assert Memory.__mro__ == (Memory, object)


def test_memory_modules_have_no_stubs_type_ignores_or_foreign_private_imports() -> None:
    for path in sorted(SRC.glob("memory*.py")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) < 600, path.name
        assert "NotImplementedError" not in text, path.name
        assert "type: ignore" not in text, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.startswith("__")]
                assert private == [], (path.name, node.module, private)


def test_each_delegating_method_has_its_service_methods_parameters_and_docs() -> None:
    mem = Memory(":memory:", embedder=None)
    try:
        checked = 0
        for name, fn in vars(Memory).items():
            if (name.startswith("_") or name in OWN or not inspect.isfunction(fn)
                    or fn.__name__ != name):
                continue  # twins are checked by test_memory_async
            for service in SERVICES:
                target = getattr(type(getattr(mem, service)), name, None)
                if target is None or not inspect.isfunction(target):
                    continue
                mine = list(inspect.signature(fn).parameters.values())[1:]
                theirs = list(inspect.signature(target).parameters.values())[1:]
                assert [(p.name, p.kind, p.default) for p in mine] == [
                    (p.name, p.kind, p.default) for p in theirs], name
                assert fn.__doc__ and fn.__doc__ == target.__doc__, name
                checked += 1
        assert checked >= 40
    finally:
        mem.close()


def test_settings_set_on_the_memory_reach_every_service_that_uses_them(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "a.db", embedder=None)
    other = SQLiteStore(tmp_path / "b.db")
    try:
        mem.store = other
        assert all(getattr(mem, s).store is other for s in
                   ("traces", "procedures", "tool_schemas", "statistics", "learning",
                    "searcher", "executions", "plans"))
        mem.lease_s = 5.0
        mem.search_budget_s = None
        assert mem.executions.lease_s == 5.0 and mem.executions.client.lease_s == 5.0
        assert mem.searcher.search_budget_s is None and mem.search_budget_s is None
        assert mem.learning.policy is mem.statistics.policy is mem.policy
    finally:
        mem.close()


# ------------------------------------------------------------- services alone


@pytest.fixture
def store(tmp_path: Path) -> SQLiteStore:
    return SQLiteStore(tmp_path / "alone.db")


def test_traces_and_procedures_services_work_alone(store: SQLiteStore) -> None:
    forgotten: list[int] = []
    traces = Traces(store, forget=lambda: forgotten.append(1))
    trace = Trace(task="ping the server", outcome="success", steps=[])
    assert traces.add_traces([trace]) == 1 and traces.get_trace(trace.id).task == trace.task
    assert traces.delete_trace(trace.id) and forgotten == [1]
    stats = Statistics(store)
    procedures = Procedures(store, stats, ToolSchemas(store))
    assert procedures.put_procedure(ping()).version == 1
    assert procedures.put_procedure(ping(description="new words")).version == 2
    assert [p.version for p in procedures.list_versions("ping")] == [1, 2]


def test_executions_and_learning_work_alone(store: SQLiteStore) -> None:
    store.put_procedure(ping())
    stats = Statistics(store)
    learning = LearningLoop(store, stats, seed=1)
    runs = Executions(store, choose_version=learning.choose_version)
    ex = runs.replay("ping", tools={"ping": lambda: "pong"})
    assert ex.status == "succeeded"
    turn = runs.start("ping")
    assert turn.call is not None and turn.call.action == "ping"
    done = runs.advance(turn.execution.id, step_id=turn.call.step_id, output="pong")
    assert done.done and done.execution.status == "succeeded"
    assert learning.report(ex.id, reward=1.0, source="test").evidence.execution_id == ex.id
    assert stats.with_stats([store.get_procedure("ping")])[0].execution_count == 2
    assert [row["runs"] for row in learning.history("ping")] == [2]


def test_search_and_plans_work_alone(store: SQLiteStore) -> None:
    store.put_procedure(ping(description="ping the server to see that it is up"))
    searcher = Searcher(store, Statistics(store), embedder=None)
    hits = searcher.search("ping the server", retriever="bm25")
    assert [h.procedure.name for h in hits] == ["ping"] and searcher.index is not None
    plans = Plans(searcher, Executions(store))
    assert plans.plan("ping the server").procedure == "ping"


# ------------------------------------------------------------------ threads


def _together(jobs: list[Callable[[], Any]]) -> list[Any]:
    """Run ``jobs`` in threads released at once; each one's result or exception, in order."""
    out: list[Any] = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def run(i: int) -> None:
        barrier.wait()
        try:
            out[i] = jobs[i]()
        except BaseException as err:  # returned to the test, which asserts on it
            out[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return out


def test_racing_results_for_one_call_advance_it_once(tmp_path: Path) -> None:
    with Memory(tmp_path / "race.db", embedder=None) as mem:
        mem.put_procedure(ping())
        turn = mem.start("ping")
        assert turn.call is not None
        step = turn.call.step_id
        out = _together([lambda: mem.advance(turn.execution.id, step_id=step, output="pong")
                         for _ in range(8)])
        done = [o for o in out if not isinstance(o, BaseException)]
        assert len(done) == 1 and done[0].execution.status == "succeeded"
        assert {type(o).__name__ for o in out if isinstance(o, BaseException)} == {
            "ReplayError"}
        assert mem.get_procedure("ping").execution_count == 1


def test_racing_learns_learn_each_group_once(tmp_path: Path, tau_sample: list[Trace]) -> None:
    with Memory(tmp_path / "learn.db", embedder=None) as mem:
        mem.add_traces(tau_sample[:60])
        reports = _together([mem.learn for _ in range(4)])
        assert not [r for r in reports if isinstance(r, BaseException)]
        created = sorted(n for r in reports for n in r.created + r.updated)
        assert created == sorted({p.name for p in mem.list_procedures(limit=1000)})
        assert all(not r.failed_groups for r in reports)
        assert all(p.version == 1 for p in mem.list_procedures(limit=1000))


def test_one_memory_shared_by_threads_ends_as_one_used_by_one_thread(
        tmp_path: Path, tau_sample: list[Trace]) -> None:
    """Learning, searching, writing versions and runs at once on one memory: nothing
    fails, and what each thread did is there as if it had run alone."""
    first, rest = tau_sample[:20], tau_sample[20:50]
    chunks = [rest[i:i + 10] for i in range(0, len(rest), 10)]
    runs = 6
    mem = Memory(tmp_path / "shared.db", embedder=None)
    mem.learn(first)
    mem.put_procedure(ping())

    def learner() -> None:
        for chunk in chunks:
            mem.learn(chunk)

    def searcher() -> None:
        for trace in rest:
            for hit in mem.search(trace.task, retriever="bm25", status=None):
                assert hit.procedure.name

    def writer() -> None:
        for i in range(runs):
            mem.put_procedure(ping("note", description=f"note {i}"))

    def driver() -> None:
        for _ in range(runs):
            turn = mem.start("ping")
            assert turn.call is not None
            done = mem.advance(turn.execution.id, step_id=turn.call.step_id, output="pong")
            assert done.execution.status == "succeeded"
            mem.report(done.execution.id, reward=1.0, source="test")

    def replayer() -> None:
        for _ in range(runs):
            assert mem.replay("ping", tools={"ping": lambda: "pong"}).status == "succeeded"

    try:
        out = _together([learner, searcher, writer, driver, replayer])
        assert [o for o in out if isinstance(o, BaseException)] == []
        assert [p.version for p in mem.list_versions("note")] == list(range(1, runs + 1))
        assert mem.get_procedure("ping").execution_count == 2 * runs
        with Memory(tmp_path / "alone.db", embedder=None) as alone:
            alone.learn(first)
            for chunk in chunks:
                alone.learn(chunk)
            learned = {p.name: p.content() for p in alone.list_procedures(limit=1000)}
        shared = {p.name: p.content() for p in mem.list_procedures(limit=1000)
                  if p.name not in ("ping", "note")}
        assert shared == learned
    finally:
        mem.close()
