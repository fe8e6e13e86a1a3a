"""Tests for procmem.formats.traceio: reading and writing trace JSONL files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from procmem.core.errors import InvalidTrace, UsageError
from procmem.core.model import Trace, TraceStep
from procmem.formats.traceio import iter_traces, read_traces, trace_id_for, write_traces

SHARED_TRAIN = Path(__file__).resolve().parents[2] / "shared/data/tau-retail/train.jsonl"

INLINE: dict[str, Any] = {
    "id": "inline-1",
    "task": "Cancel order #W2378156 because it was ordered by mistake.",
    "outcome": "success",
    "source": "inline test",
    "metadata": {"user_id": "yusuf_rossi_9620"},
    "steps": [
        {
            "action": "cancel_pending_order",
            "args": {"order_id": "#W2378156", "reason": "ordered by mistake"},
            "output": '{"order_id": "#W2378156", "status": "cancelled"}',
            "error": None,
        }
    ],
}


def record(i: int, **changes: Any) -> dict[str, Any]:
    """A small valid trace record with id ``t{i}``."""
    return {"id": f"t{i}", "task": f"task {i}", "steps": [{"action": "a", "args": {"n": i}}]} | (
        changes
    )


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_inline_trace(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [json.dumps(INLINE), "", "   "])
    traces, problems = read_traces(path)
    assert problems == [] and len(traces) == 1
    trace = traces[0]
    assert trace.id == "inline-1" and trace.outcome == "success"
    assert trace.steps[0].args == {"order_id": "#W2378156", "reason": "ordered by mistake"}
    assert json.loads(trace.steps[0].output)["status"] == "cancelled"


@pytest.mark.skipif(not SHARED_TRAIN.exists(), reason="../shared data not available")
def test_read_real_tau_retail_lines(tmp_path: Path) -> None:
    with SHARED_TRAIN.open(encoding="utf-8") as fh:
        lines = [next(fh) for _ in range(5)]
    path = tmp_path / "sample.jsonl"
    path.write_text("".join(lines), encoding="utf-8")
    traces, _ = read_traces(path)
    assert [t.id for t in traces] == [json.loads(line)["id"] for line in lines]
    first = json.loads(lines[0])
    assert traces[0].task == first["task"]
    assert [s.action for s in traces[0].steps] == [s["action"] for s in first["steps"]]
    assert traces[0].steps[0].output == first["steps"][0]["output"]  # JSON text kept verbatim
    assert all(t.source and t.source.startswith("tau-bench retail/train") for t in traces)


def test_bad_json_on_line_3(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "t.jsonl", [json.dumps(record(1)), json.dumps(record(2)), "{"])
    with pytest.raises(InvalidTrace) as info:
        read_traces(path)
    err = info.value
    assert (err.line, err.source, err.field) == (3, str(path), None)
    assert "not valid JSON" in str(err) and str(path) in str(err)


def test_missing_task_names_field(tmp_path: Path) -> None:
    bad = record(1)
    del bad["task"]
    path = write_lines(tmp_path / "t.jsonl", [json.dumps(bad)])
    with pytest.raises(InvalidTrace) as info:
        read_traces(path)
    assert (info.value.line, info.value.field) == (1, "task")


def test_wrong_type_for_step_action_names_nested_field(tmp_path: Path) -> None:
    bad = record(2, steps=[{"action": 42, "args": {}}])
    path = write_lines(tmp_path / "t.jsonl", [json.dumps(record(1)), json.dumps(bad)])
    with pytest.raises(InvalidTrace) as info:
        read_traces(path)
    assert (info.value.line, info.value.field) == (2, "steps.0.action")
    assert info.value.code == "invalid_trace"


def test_not_an_object_and_unknown_field(tmp_path: Path) -> None:
    lines = [json.dumps(record(1, colour="red")), "[1, 2]", '"text"']
    traces, problems = read_traces(write_lines(tmp_path / "t.jsonl", lines), skip_invalid=True)
    assert traces == []
    assert [(p.line, p.field) for p in problems] == [(1, "colour"), (2, None), (3, None)]
    assert "expected a JSON object, got list" in problems[1].problem


def test_skip_invalid_returns_rest_and_errors(tmp_path: Path) -> None:
    no_task = record(3)
    del no_task["task"]
    lines = [json.dumps(record(1)), "not json", json.dumps(no_task), json.dumps(record(4))]
    path = write_lines(tmp_path / "t.jsonl", lines)
    traces, problems = read_traces(path, skip_invalid=True)
    assert [t.id for t in traces] == ["t1", "t4"]
    assert [(p.line, p.field) for p in problems] == [(2, None), (3, "task")]
    with pytest.raises(InvalidTrace) as info:  # strict mode stops at the first one
        read_traces(path)
    assert info.value.line == 2


def test_duplicate_ids_error_on_later_line(tmp_path: Path) -> None:
    lines = [json.dumps(record(1)), json.dumps(record(2)), json.dumps(record(1, task="again"))]
    path = write_lines(tmp_path / "t.jsonl", lines)
    with pytest.raises(InvalidTrace) as info:
        read_traces(path)
    assert (info.value.line, info.value.field) == (3, "id")
    assert "first on line 1" in str(info.value)
    traces, problems = read_traces(path, skip_invalid=True)
    assert [t.task for t in traces] == ["task 1", "task 2"] and len(problems) == 1


def test_missing_file_and_directory_raise_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.jsonl"
    with pytest.raises(UsageError, match="nope.jsonl") as info:
        read_traces(missing)
    assert not isinstance(info.value, InvalidTrace)
    with pytest.raises(UsageError):
        read_traces(tmp_path)


def test_json_array_form_with_line_numbers(tmp_path: Path) -> None:
    bad = record(3, steps=[{"action": 7}])
    text = "  [\n" + ",\n".join(json.dumps(r) for r in [record(1), record(2), bad]) + "\n]\n"
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8")
    traces, problems = read_traces(path, skip_invalid=True)
    assert [t.id for t in traces] == ["t1", "t2"]
    assert [(p.line, p.field) for p in problems] == [(4, "steps.0.action")]
    empty = tmp_path / "empty.json"
    empty.write_text("[ ]", encoding="utf-8")
    assert read_traces(empty) == ([], [])


def test_json_array_syntax_errors(tmp_path: Path) -> None:
    for text, line in [('[\n{"task": "t"}\n', 3), ('[{"id": "a", "task": "t"}\n{"id": "b"}]', 2)]:
        path = tmp_path / "bad.json"
        path.write_text(text, encoding="utf-8")
        with pytest.raises(InvalidTrace) as info:
            read_traces(path)
        assert info.value.line == line and "not valid JSON" in str(info.value)


def test_deterministic_ids_for_records_without_id(tmp_path: Path) -> None:
    a = {"task": "return the kettle", "steps": [{"action": "return_items", "args": {"o": "#W1"}}]}
    b = {"steps": a["steps"], "task": a["task"]}  # same content, other key order
    p1 = write_lines(tmp_path / "a.jsonl", [json.dumps(a)])
    p2 = write_lines(tmp_path / "b.jsonl", [json.dumps(b, indent=None, separators=(",", ":"))])
    (t1,), _ = read_traces(p1)
    (t1_again,), _ = read_traces(p1)
    (t2,), _ = read_traces(p2)
    assert t1.id == t1_again.id == t2.id == trace_id_for(a)
    assert t1.id.startswith("tr_") and len(t1.id) == 19
    c = a | {"task": "return the lamp"}
    assert trace_id_for(c) != t1.id
    null_id = write_lines(tmp_path / "n.jsonl", [json.dumps(a | {"id": None})])
    assert read_traces(null_id)[0][0].id == t1.id


def test_unicode_line_separator_inside_json_string(tmp_path: Path) -> None:
    rec = record(1, task="line\u2028break \u00e9")
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    (trace,), _ = read_traces(path)
    assert trace.task == "line\u2028break \u00e9"


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    traces = [
        Trace(
            id="w1",
            task="cancel #W1 — café",
            steps=[
                TraceStep(action="cancel", args={"id": "#W1"}, output='{"ok": true}'),
                TraceStep(action="notify", args={}, error="Timeout", duration_ms=12.5),
            ],
            outcome="failure",
            reward=0.0,
            source="test",
            metadata={"n": [1, 2]},
        ),
        Trace(task="empty"),
    ]
    path = tmp_path / "out.jsonl"
    assert write_traces(path, traces) == 2
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    back, problems = read_traces(path)
    assert back == traces and problems == []
    assert [type(x) for x in iter_traces(path)] == [Trace, Trace]


def test_write_rejects_duplicates_and_non_traces(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text("keep\n", encoding="utf-8")
    with pytest.raises(UsageError, match="duplicate"):
        write_traces(path, [Trace(id="x", task="a"), Trace(id="x", task="b")])
    with pytest.raises(UsageError, match="not a Trace"):
        write_traces(path, [{"task": "a"}])  # type: ignore[list-item]
    assert path.read_text(encoding="utf-8") == "keep\n"  # untouched
    with pytest.raises(UsageError):
        write_traces(tmp_path / "no" / "dir.jsonl", [Trace(task="a")])
