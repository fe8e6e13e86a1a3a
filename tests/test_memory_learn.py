"""The learning service on its own (procmem.services.learn): a Learner over a bare store."""

from __future__ import annotations

import json

from procmem.core.model import Trace, TraceStep
from procmem.memory import Memory
from procmem.services.learn import Learner
from procmem.store import open_store


def order_trace(order: str, *, action: str = "cancel_order") -> Trace:
    return Trace(id=f"t-{action}-{order}", task=f"cancel order {order}", outcome="success",
                 steps=[
                     TraceStep(action="get_order", args={"order_id": order},
                               output=json.dumps({"order_id": order, "status": "pending"})),
                     TraceStep(action=action, args={"order_id": order, "reason": "no need"},
                               output="ok"),
                 ])


def test_a_learner_over_a_bare_store_learns_once_and_reads_only_new_traces() -> None:
    store = open_store(":memory:")
    learner = Learner()
    store.put_traces([order_trace(f"#W{i}") for i in range(3)])
    first = learner.learn(store, namespace="desk")
    assert (first.traces, first.groups, first.created) == (3, 1, ["get_order-then-cancel_order"])
    assert store.get_procedure("get_order-then-cancel_order").namespace == "desk"
    assert learner.learn(store).unchanged == ["get_order-then-cancel_order"]  # idempotent

    store.put_traces([order_trace("#W9", action="refund")])
    state, new = learner.fold(store)
    assert [t.id for t in new] == ["t-refund-#W9"]  # only the trace stored since
    assert state.count == 4 and len(state.groups) == 2
    report = learner.learn(store)  # folds nothing new; reads the group's trace back to induce it
    assert (report.traces, report.created) == (4, ["get_order-then-refund"])
    assert report.unchanged == ["get_order-then-cancel_order"]
    assert store.get_procedure("get_order-then-refund").lineage.traces == ["t-refund-#W9"]

def test_the_fold_starts_over_after_a_deletion_a_reset_or_on_another_store() -> None:
    store = open_store(":memory:")
    learner = Learner()
    store.put_traces([order_trace(f"#W{i}") for i in range(4)])
    _, new = learner.fold(store)
    assert len(new) == 4
    assert learner.fold(store)[1] == []  # nothing stored since
    store.delete_trace("t-cancel_order-#W0")
    state, new = learner.fold(store)  # the store's change feed started over
    assert len(new) == 3 and state.count == 3
    learner.reset()
    assert len(learner.fold(store)[1]) == 3
    other = open_store(":memory:")  # same count, other traces
    other.put_traces([order_trace(f"#X{i}", action="refund") for i in range(3)])
    state, new = learner.fold(other)
    assert len(new) == 3 and list(state.groups) == [("get_order", "refund")]


def test_memory_learn_stores_what_its_learner_stores() -> None:
    traces = [order_trace(f"#W{i}") for i in range(3)] + [order_trace("#W7", action="refund")]
    store = open_store(":memory:")
    store.put_traces(traces)
    alone = Learner().learn(store)
    with Memory(":memory:", embedder=None) as mem:
        report = mem.learn(traces)
        assert report == alone
        assert [p.content() for p in mem.store.list_procedures()] == [
            p.content() for p in store.list_procedures()]
