"""Traces as records (list, show, delete and what a deletion changes), and a learn that
skips a group it cannot induce instead of failing the whole run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import procmem.memory
from procmem.errors import InvalidTemplate, NotFound
from procmem.induce import induce
from procmem.memory import Memory
from procmem.memory_traces import MAX_LISTED_IDS, group_failure
from procmem.model import Trace, TraceStep


def order_trace(order: str, *, action: str = "cancel_order", tid: str | None = None,
                reason: Any = "no longer needed") -> Trace:
    fields: dict[str, Any] = {} if tid is None else {"id": tid}
    return Trace(task=f"cancel order {order}", outcome="success", **fields, steps=[
        TraceStep(action="get_order", args={"order_id": order},
                  output=json.dumps({"order_id": order, "status": "pending"})),
        TraceStep(action=action, args={"order_id": order, "reason": reason}, output="ok"),
    ])


def versions(mem: Memory, name: str) -> list[list[str]]:
    return [v.lineage.traces for v in mem.store.list_versions(name)]


# ------------------------------------------------------------ list, show, delete


def test_list_get_and_delete_traces() -> None:
    mem = Memory(":memory:", embedder=None)
    batch = [order_trace(f"#W{i}000", tid=f"tr{i}") for i in range(5)]
    mem.add_traces(batch)
    assert [t.id for t in mem.list_traces(limit=2, offset=1)] == ["tr1", "tr2"]
    assert mem.get_trace("tr3") == batch[3]
    assert mem.delete_trace("tr3") is True
    assert mem.delete_trace("tr3") is False
    with pytest.raises(NotFound):
        mem.get_trace("tr3")
    with pytest.raises(NotFound):
        mem.trace_impact("tr3")
    assert [t.id for t in mem.list_traces()] == ["tr0", "tr1", "tr2", "tr4"]


def test_impact_lists_the_versions_learned_from_a_trace_and_keeps_them() -> None:
    mem = Memory(":memory:", embedder=None)
    mem.learn([order_trace("#W1000", tid="a1"), order_trace("#W2000", tid="a2"),
               Trace(id="lone", task="say hi", outcome="success",
                     steps=[TraceStep(action="greet", args={})])])
    name = "get_order-then-cancel_order"
    impact = mem.trace_impact("a2")
    assert impact.learned_from == [{"name": name, "version": 1, "status": "active"}]
    assert "kept as they are" in impact.effect and name in impact.effect
    mem.add_traces([Trace(id="unused", task="x")])
    assert mem.trace_impact("unused").learned_from == []
    assert mem.delete_trace("a2") is True
    assert versions(mem, name) == [["a1", "a2"]]  # the version is immutable: kept as is
    report = mem.learn()
    assert report.updated == [name]  # re-induced from the trace that remains
    assert versions(mem, name) == [["a1", "a2"], ["a1"]]
    assert mem.learn().unchanged == [name, "greet"]
    mem.delete_trace("lone")  # its group is left empty: the procedure stays as it is
    report = mem.learn()
    assert report.groups == 1 and report.unchanged == [name]
    assert versions(mem, "greet") == [["lone"]]


def test_learn_fold_is_rebuilt_after_a_deletion_in_another_process(tmp_path: Path) -> None:
    """The fold is keyed on the count and the last trace; deleting a trace and adding one
    with the last folded id again (same count, same last id) must not fool it."""
    db = tmp_path / "m.db"
    kept = Memory(db, embedder=None)
    a, b, c = (order_trace(f"#W{i}111", tid=t) for i, t in enumerate(("a", "b", "c")))
    kept.learn([a, b, c])
    name = "get_order-then-cancel_order"
    assert versions(kept, name) == [["a", "b", "c"]]
    with Memory(db, embedder=None) as other:
        assert other.delete_trace("b") and other.delete_trace("c")
        other.add_traces([order_trace("#W9999", tid="x"), c])
    assert [t.id for t in kept.list_traces()] == ["a", "x", "c"]  # 3 traces, "c" last again
    report = kept.learn()
    assert report.updated == [name]
    assert versions(kept, name)[-1] == ["a", "x", "c"]
    with Memory(db, embedder=None) as afresh:
        assert afresh.learn().unchanged == [name]  # what a new process learns: the same
    kept.close()


# ------------------------------------------------------------ uninducible groups


def test_reference_looking_values_no_longer_break_learn_for_every_group() -> None:
    """The issue's case: one trace with an invalid reference as data, 50 clean traces."""
    mem = Memory(":memory:", embedder=None)
    clean = [order_trace(f"#W{i:04d}") for i in range(50)]
    bad = order_trace("#W7777", action="refund", reason={"$step": "s9", "path": "/card"})
    report = mem.learn([bad, *clean])
    assert report.failed_groups == []
    assert sorted(report.created) == ["get_order-then-cancel_order", "get_order-then-refund"]
    step = mem.get_procedure("get_order-then-refund").steps[1]
    assert step.args["reason"] == {"$literal": {"$step": "s9", "path": "/card"}}


def test_a_store_with_an_uninducible_group_still_learns_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def induce_or_fail(group: list[Trace], **kw: Any) -> Any:
        if group[0].signature()[-1] == "refund":
            raise InvalidTemplate("$step 's9' is not an earlier step", step_id="s2",
                                  path="/reason")
        return induce(group, **kw)

    monkeypatch.setattr(procmem.memory, "induce", induce_or_fail)
    mem = Memory(":memory:", embedder=None)
    bad = [order_trace(f"#W{i}", action="refund", tid=f"bad{i}") for i in range(3)]
    clean = [order_trace(f"#W{i:04d}") for i in range(10)]
    report = mem.learn([*clean[:5], *bad, *clean[5:]])
    assert report.created == ["get_order-then-cancel_order"]
    assert versions(mem, "get_order-then-cancel_order") == [[t.id for t in clean]]
    assert report.failed_groups == [{
        "name": "get_order-then-refund", "actions": ["get_order", "refund"],
        "traces": ["bad0", "bad1", "bad2"], "trace_count": 3, "code": "invalid_template",
        "error": "InvalidTemplate", "message": report.failed_groups[0]["message"]}]
    assert "'s9' is not an earlier step" in report.failed_groups[0]["message"]
    assert mem.find_procedure("get_order-then-refund") is None
    # tried again by the next learn, and learned once induction works
    assert mem.learn().failed_groups[0]["traces"] == ["bad0", "bad1", "bad2"]
    monkeypatch.setattr(procmem.memory, "induce", induce)
    report = mem.learn()
    assert report.failed_groups == [] and report.created == ["get_order-then-refund"]


def test_group_failure_bounds_ids_and_message() -> None:
    ids = [f"t{i}" for i in range(MAX_LISTED_IDS + 50)]
    row = group_failure("n", ("a",), ids, InvalidTemplate("x" * 2000))
    assert len(row["traces"]) == MAX_LISTED_IDS and row["trace_count"] == len(ids)
    assert len(row["message"]) <= 500
