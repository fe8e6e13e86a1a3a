"""Traces as records (list, show, delete and what a deletion changes), and a learn that
skips a group it cannot induce instead of failing the whole run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import procmem.services.learn
from keyed import rest_client
from procmem.core.errors import InvalidTemplate, NotFound
from procmem.core.model import Trace, TraceStep
from procmem.induction.induce import induce
from procmem.memory import Memory
from procmem.services.traces import MAX_LISTED_IDS, group_failure


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
    mem = Memory(":memory:", embedder=None, min_constant=2)  # two agreeing make a literal
    clean = [order_trace(f"#W{i:04d}") for i in range(50)]
    card = {"$step": "s9", "path": "/card"}
    bad = order_trace("#W7777", action="refund", reason=card)
    report = mem.learn([bad, *clean])
    assert report.failed_groups == []
    assert sorted(report.created) == ["get_order-then-cancel_order", "get_order-then-refund"]
    step = mem.get_procedure("get_order-then-refund").steps[1]
    # one demonstration cannot make it a constant: a hole the agent fills, never a reference
    assert "$ask" in step.args["reason"]
    mem.learn([order_trace("#W7778", action="refund", reason=card)])
    step = mem.get_procedure("get_order-then-refund").steps[1]
    assert step.args["reason"] == {"$literal": card}  # two agree: a literal, as data


def test_a_store_with_an_uninducible_group_still_learns_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def induce_or_fail(group: list[Trace], **kw: Any) -> Any:
        if group[0].signature()[-1] == "refund":
            raise InvalidTemplate("$step 's9' is not an earlier step", step_id="s2",
                                  path="/reason")
        return induce(group, **kw)

    monkeypatch.setattr(procmem.services.learn, "induce", induce_or_fail)
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
    monkeypatch.setattr(procmem.services.learn, "induce", induce)
    report = mem.learn()
    assert report.failed_groups == [] and report.created == ["get_order-then-refund"]


def test_group_failure_bounds_ids_and_message() -> None:
    ids = [f"t{i}" for i in range(MAX_LISTED_IDS + 50)]
    row = group_failure("n", ("a",), ids, InvalidTemplate("x" * 2000))
    assert len(row["traces"]) == MAX_LISTED_IDS and row["trace_count"] == len(ids)
    assert len(row["message"]) <= 500


# ------------------------------------------------------------ CLI and REST


def cli(*args: str) -> Any:
    from click.testing import CliRunner

    from procmem.cli import main
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_traces_cli_lists_shows_and_removes(tmp_path: Path) -> None:
    with Memory(tmp_path / "procmem.db", embedder=None) as mem:  # PROCMEM_DB (conftest)
        mem.learn([order_trace("#W1000", tid="a1"), order_trace("#W2000", tid="a2",
                                                             reason={"$param": "x"})])
        mem.add_traces([Trace(id="plain", task="nothing learned")])
    listed = json.loads(cli("traces", "list", "--json").output)
    assert [r["id"] for r in listed] == ["a1", "a2", "plain"]
    assert listed[0]["actions"] == ["get_order", "cancel_order"] and listed[0]["steps"] == 2
    assert [r["id"] for r in json.loads(cli("traces", "list", "--limit", "1", "--offset", "1",
                                            "--json").output)] == ["a2"]
    assert cli("traces", "list", "--limit", "0").exit_code == 2
    human = cli("traces", "list").output
    assert "a2" in human and "cancel order #W2000" in human
    shown = json.loads(cli("traces", "show", "a2", "--json").output)
    assert shown["steps"][1]["args"]["reason"] == {"$param": "x"}  # data, shown as it is
    human = cli("traces", "show", "a2").output
    assert '{"$param": "x"}' in human and "learned into: get_order-then-cancel_order@1" in human
    missing = cli("traces", "show", "nope")
    assert missing.exit_code == 3 and "not_found" in missing.output
    refused = cli("traces", "rm", "a2")
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert "get_order-then-cancel_order" in refused.output
    assert len(json.loads(cli("traces", "list", "--json").output)) == 3  # nothing deleted
    done = json.loads(cli("traces", "rm", "a2", "--yes", "--json").output)
    assert done["deleted"] is True and done["trace_id"] == "a2"
    assert done["learned_from"] == [{"name": "get_order-then-cancel_order", "version": 1,
                                     "status": "active"}]
    assert cli("traces", "rm", "a2", "--yes").exit_code == 3
    human = cli("traces", "rm", "plain", "--yes").output
    assert "deleted trace plain" in human and "changes no procedure" in human
    assert [r["id"] for r in json.loads(cli("traces", "list", "--json").output)] == ["a1"]


def test_learn_cli_reports_a_group_it_could_not_induce(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def induce_or_fail(group: list[Trace], **kw: Any) -> Any:
        if group[0].signature()[-1] == "refund":
            raise InvalidTemplate("cannot induce this one")
        return induce(group, **kw)

    monkeypatch.setattr(procmem.services.learn, "induce", induce_or_fail)
    path = tmp_path / "in.jsonl"
    lines = [order_trace("#W1000"), order_trace("#W2000", action="refund", tid="bad")]
    path.write_text("\n".join(t.model_dump_json() for t in lines) + "\n")
    out = json.loads(cli("--embedder", "none", "learn", str(path), "--json").output)
    assert out["learn"]["created"] == ["get_order-then-cancel_order"]
    [row] = out["learn"]["failed_groups"]
    assert (row["name"], row["traces"], row["code"]) == (
        "get_order-then-refund", ["bad"], "invalid_template")
    human = cli("--embedder", "none", "learn", str(path))
    assert human.exit_code == 0
    assert "not learned (skipped): 1 group(s)" in human.output
    assert "get_order-then-refund [invalid_template] cannot induce this one" in human.output


def test_traces_rest_list_show_delete(monkeypatch: pytest.MonkeyPatch) -> None:


    with rest_client(Memory(":memory:", embedder=None)) as client:
        body = [json.loads(t.model_dump_json()) for t in
                (order_trace("#W1000", tid="a1"), order_trace("#W2000", tid="a2"))]
        assert client.post("/traces", json=body).json()["stored"] == 2
        assert client.post("/learn").json()["failed_groups"] == []
        assert [t["id"] for t in client.get("/traces", params={"limit": 1}).json()] == ["a1"]
        assert client.get("/traces", params={"limit": 1001}).status_code == 422
        assert client.get("/traces/a2").json()["steps"][0]["args"] == {"order_id": "#W2000"}
        r = client.delete("/traces/a2")
        assert r.status_code == 200
        assert r.json()["deleted"] is True and r.json()["learned_from"] == [
            {"name": "get_order-then-cancel_order", "version": 1, "status": "active"}]
        assert "kept as they are" in r.json()["effect"]
        assert client.get("/traces/a2").status_code == 404
        r = client.delete("/traces/a2")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
        assert client.post("/learn").json()["updated"] == ["get_order-then-cancel_order"]
        lineages = [v["lineage"]["traces"] for v in
                    client.get("/procedures/get_order-then-cancel_order/versions").json()]
        assert lineages == [["a1", "a2"], ["a1"]]


def test_rest_learn_lists_the_groups_it_could_not_induce(monkeypatch: pytest.MonkeyPatch) -> None:


    def induce_or_fail(group: list[Trace], **kw: Any) -> Any:
        if group[0].signature()[-1] == "refund":
            raise InvalidTemplate("cannot induce this one")
        return induce(group, **kw)

    monkeypatch.setattr(procmem.services.learn, "induce", induce_or_fail)
    with rest_client(Memory(":memory:", embedder=None)) as client:
        body = [json.loads(t.model_dump_json()) for t in
                (order_trace("#W1000"), order_trace("#W2000", action="refund", tid="bad"))]
        client.post("/traces", json=body)
        out = client.post("/learn").json()
    assert out["created"] == ["get_order-then-cancel_order"]
    assert out["failed_groups"] == [{
        "name": "get_order-then-refund", "actions": ["get_order", "refund"], "traces": ["bad"],
        "trace_count": 1, "code": "invalid_template", "error": "InvalidTemplate",
        "message": "cannot induce this one"}]
