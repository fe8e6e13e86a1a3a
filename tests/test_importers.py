"""Tests for the transcript importers and ``procmem import``.

Transcripts are built from the real τ-retail traces (tests/data/tau_retail_sample.jsonl,
MIT, see tests/data/README.md) in each format the way the vendors' APIs write them:
the user message is the task, one assistant turn per step with a tool call, then
the tool result (a failed step is an error result). Importing them back must give
the original traces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from procmem.cli import main
from procmem.core.errors import InvalidTrace, UsageError
from procmem.core.model import Trace
from procmem.formats.importers import (
    FORMATS,
    NO_RESULT,
    import_transcripts,
    looks_like_error,
    parse_anthropic,
    parse_openai_chat,
    parse_openai_responses,
)
from procmem.formats.record import REDACTED
from procmem.formats.traceio import read_traces
from procmem.memory import Memory

Transcript = dict[str, Any]


def _result_text(step: Any) -> str:
    return step.error if step.failed else step.output


def to_openai_chat(trace: Trace, *, parallel: bool = False, variant: int = 0) -> Transcript:
    """Chat Completions messages; ``parallel`` puts every call in one assistant turn."""
    calls = [{"id": f"call_{i}", "type": "function",
              "function": {"name": s.action, "arguments": json.dumps(s.args)}}
             for i, s in enumerate(trace.steps)]
    results = [{"role": "tool", "tool_call_id": f"call_{i}",
                "content": [{"type": "text", "text": _result_text(s)}] if variant % 2
                else _result_text(s)} for i, s in enumerate(trace.steps)]
    user = ({"role": "user", "content": [{"type": "text", "text": trace.task}]} if variant % 2
            else {"role": "user", "content": trace.task})
    messages: list[Any] = [{"role": "system", "content": "You are a retail agent."}, user]
    if parallel:
        messages += [{"role": "assistant", "content": None, "tool_calls": calls}, *results]
    else:
        for call, result in zip(calls, results, strict=True):
            messages += [{"role": "assistant", "content": None, "tool_calls": [call]}, result]
    messages.append({"role": "assistant", "content": "Done."})
    return {"id": trace.id, "outcome": trace.outcome, "messages": messages}


def to_openai_responses(trace: Trace, *, parallel: bool = False, variant: int = 0) -> Transcript:
    """Responses API items (function_call / function_call_output)."""
    calls = [{"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}",
              "name": s.action, "arguments": json.dumps(s.args)}
             for i, s in enumerate(trace.steps)]
    results = [{"type": "function_call_output", "call_id": f"call_{i}",
                "output": _result_text(s)} for i, s in enumerate(trace.steps)]
    user = ({"type": "message", "role": "user",
             "content": [{"type": "input_text", "text": trace.task}]} if variant % 2
            else {"role": "user", "content": trace.task})
    items: list[Any] = [{"role": "developer", "content": "You are a retail agent."}, user,
                        {"type": "reasoning", "id": "rs_0", "summary": []}]
    if parallel:
        items += [*calls, *results]
    else:
        for call, result in zip(calls, results, strict=True):
            items += [call, result]
    items.append({"type": "message", "role": "assistant",
                  "content": [{"type": "output_text", "text": "Done."}]})
    return {"id": trace.id, "outcome": trace.outcome, "input": items}


def to_anthropic(trace: Trace, *, parallel: bool = False, variant: int = 0) -> Transcript:
    """Anthropic Messages (tool_use / tool_result blocks)."""
    uses = [{"type": "tool_use", "id": f"toolu_{i}", "name": s.action, "input": s.args}
            for i, s in enumerate(trace.steps)]
    results: list[dict[str, Any]] = []
    for i, s in enumerate(trace.steps):
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": f"toolu_{i}",
                                 "content": [{"type": "text", "text": _result_text(s)}]
                                 if variant % 2 else _result_text(s)}
        if s.failed:
            block["is_error"] = True
        results.append(block)
    messages: list[Any] = [{"role": "user", "content": trace.task if variant % 2
                            else [{"type": "text", "text": trace.task}]}]
    if parallel:
        messages += [{"role": "assistant", "content": [{"type": "text", "text": "On it."}, *uses]},
                     {"role": "user", "content": results}]
    else:
        for use, result in zip(uses, results, strict=True):
            messages += [{"role": "assistant", "content": [use]},
                         {"role": "user", "content": [result]}]
    messages.append({"role": "assistant", "content": [{"type": "text", "text": "Done."}]})
    return {"id": trace.id, "outcome": trace.outcome, "messages": messages}


BUILDERS: dict[str, Callable[..., Transcript]] = {
    "openai-chat": to_openai_chat, "openai-responses": to_openai_responses,
    "anthropic": to_anthropic}
PARSERS: dict[str, Callable[[Any], Trace]] = {
    "openai-chat": parse_openai_chat, "openai-responses": parse_openai_responses,
    "anthropic": parse_anthropic}
TRANSCRIPT_FORMATS = list(BUILDERS)


def essence(trace: Trace) -> tuple[Any, ...]:
    return (trace.task, [(s.action, s.args, s.output, s.error) for s in trace.steps])


def write_jsonl(path: Path, transcripts: list[Any]) -> Path:
    path.write_text("".join(json.dumps(t) + "\n" for t in transcripts), encoding="utf-8")
    return path


def multi_step(tau_sample: list[Trace], n: int = 3) -> Trace:
    return next(t for t in tau_sample if len(t.steps) >= n and not any(s.failed for s in t.steps))


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


# ------------------------------------------------------------------ round trips


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_round_trip_of_every_sample_trace(fmt: str, tau_sample: list[Trace],
                                          tmp_path: Path) -> None:
    build = BUILDERS[fmt]
    path = write_jsonl(tmp_path / "t.jsonl",
                       [build(t, parallel=i % 3 == 0, variant=i) for i, t in enumerate(tau_sample)])
    traces, problems = import_transcripts(path, fmt)
    assert problems == []
    assert [essence(t) for t in traces] == [essence(t) for t in tau_sample]
    assert [(t.id, t.outcome) for t in traces] == [(t.id, t.outcome) for t in tau_sample]
    assert {t.source for t in traces} == {f"{fmt} transcript"}
    failed = [s for t in traces for s in t.steps if s.failed]
    assert len(failed) == 3  # the sample's gift-card failures came back as errors
    assert all(s.output is None and s.error.startswith("Error:") for s in failed)


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_results_out_of_order_are_matched_by_id(fmt: str, tau_sample: list[Trace]) -> None:
    trace = multi_step(tau_sample)
    transcript = BUILDERS[fmt](trace, parallel=True)
    key = "input" if fmt == "openai-responses" else "messages"
    items = transcript[key]
    if fmt == "anthropic":
        items[-2]["content"].reverse()  # the user turn holding every tool_result
    else:
        n = len(trace.steps)
        first = next(i for i, m in enumerate(items) if m.get("role") == "tool"
                     or m.get("type") == "function_call_output")
        items[first:first + n] = reversed(items[first:first + n])
    parsed = PARSERS[fmt](transcript)
    assert essence(parsed) == essence(trace)
    assert len({s.output for s in parsed.steps}) == len(parsed.steps)  # distinct, so order shows


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_a_call_without_result_is_a_failed_step_and_unknown_outcome(
        fmt: str, tau_sample: list[Trace]) -> None:
    trace = multi_step(tau_sample)
    transcript = BUILDERS[fmt](trace)
    key = "input" if fmt == "openai-responses" else "messages"
    # drop the last result (the item before the closing "Done." message)
    del transcript[key][-2]
    parsed = PARSERS[fmt](transcript)
    assert parsed.outcome == "unknown" and trace.outcome == "success"
    assert [s.action for s in parsed.steps] == [s.action for s in trace.steps]
    assert parsed.steps[-1].error == NO_RESULT and parsed.steps[-1].output is None
    assert essence(parsed)[1][:-1] == essence(trace)[1][:-1]


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_a_result_without_call_names_file_line_and_field(
        fmt: str, tau_sample: list[Trace], tmp_path: Path) -> None:
    good, other = tau_sample[0], tau_sample[1]
    bad = BUILDERS[fmt](other)
    key = "input" if fmt == "openai-responses" else "messages"
    idx = len(bad[key]) - 2
    result = bad[key][idx]
    expected = {
        "openai-chat": f"messages.{idx}.tool_call_id",
        "openai-responses": f"input.{idx}.call_id",
        "anthropic": f"messages.{idx}.content.0.tool_use_id",
    }[fmt]
    if fmt == "anthropic":
        result["content"][0]["tool_use_id"] = "toolu_nobody"
    else:
        result["tool_call_id" if fmt == "openai-chat" else "call_id"] = "call_nobody"
    path = write_jsonl(tmp_path / "t.jsonl", [BUILDERS[fmt](good), bad])
    with pytest.raises(InvalidTrace) as info:
        import_transcripts(path, fmt)
    err = info.value
    assert (err.source, err.line, err.field) == (str(path), 2, expected)
    assert "matches no tool call" in err.problem and "nobody" in err.problem
    assert str(path) in str(err) and ":2" in str(err)


def test_malformed_json_line_names_the_line(tau_sample: list[Trace], tmp_path: Path) -> None:
    lines = [json.dumps(to_anthropic(t)) for t in tau_sample[:3]]
    lines[1] = lines[1][:-5]  # truncated line
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InvalidTrace) as info:
        import_transcripts(path, "anthropic")
    assert (info.value.line, info.value.source) == (2, str(path))
    assert "not valid JSON" in info.value.problem
    traces, problems = import_transcripts(path, "anthropic", skip_invalid=True)
    assert [t.id for t in traces] == [tau_sample[0].id, tau_sample[2].id]
    assert [p.line for p in problems] == [2]


@pytest.mark.parametrize(("fmt", "field"), [
    ("openai-chat", "messages.2.tool_calls.0.function.arguments"),  # after system, user
    ("openai-responses", "input.3.arguments"),  # after developer, user, reasoning
])
def test_bad_arguments_json_names_the_field(fmt: str, field: str, tau_sample: list[Trace],
                                            tmp_path: Path) -> None:
    transcript = BUILDERS[fmt](tau_sample[0])
    if fmt == "openai-chat":
        target = transcript["messages"][2]["tool_calls"][0]["function"]
    else:
        target = transcript["input"][3]
    target["arguments"] = '{"order_id": "#W6067464",'
    path = write_jsonl(tmp_path / "t.jsonl", [BUILDERS[fmt](tau_sample[1]), transcript])
    with pytest.raises(InvalidTrace) as info:
        import_transcripts(path, fmt)
    assert (info.value.line, info.value.field) == (2, field)
    assert "not valid JSON" in info.value.problem
    target["arguments"] = '["#W6067464"]'
    with pytest.raises(InvalidTrace, match="must be a JSON object") as info:
        PARSERS[fmt](transcript)
    assert info.value.field == field


def test_anthropic_input_must_be_an_object(tau_sample: list[Trace]) -> None:
    transcript = to_anthropic(tau_sample[0])
    transcript["messages"][1]["content"][0]["input"] = '{"order_id": "#W1"}'
    with pytest.raises(InvalidTrace) as info:
        parse_anthropic(transcript)
    assert info.value.field == "messages.1.content.0.input"


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_repeated_call_id_is_an_error(fmt: str, tau_sample: list[Trace]) -> None:
    transcript = BUILDERS[fmt](multi_step(tau_sample), parallel=True)
    text = json.dumps(transcript)
    for prefix in ("call_", "toolu_"):
        text = text.replace(f'"{prefix}1"', f'"{prefix}0"')
    with pytest.raises(InvalidTrace, match="repeated tool call id"):
        PARSERS[fmt](json.loads(text))


# ------------------------------------------------------------------ shapes and rules


def test_file_shapes_json_array_bare_lists_and_pretty_single(tau_sample: list[Trace],
                                                             tmp_path: Path) -> None:
    chats = [to_openai_chat(t) for t in tau_sample[:3]]
    array = tmp_path / "array.json"
    array.write_text(json.dumps(chats, indent=2), encoding="utf-8")
    traces, _ = import_transcripts(array, "openai-chat")
    assert [essence(t) for t in traces] == [essence(t) for t in tau_sample[:3]]
    bare = write_jsonl(tmp_path / "bare.jsonl", [c["messages"] for c in chats])
    traces, _ = import_transcripts(bare, "openai-chat")
    assert [essence(t) for t in traces] == [essence(t) for t in tau_sample[:3]]
    chats[2]["messages"][1].pop("role")
    text = json.dumps(chats, indent=2)
    array.write_text(text, encoding="utf-8")
    starts = [n for n, line in enumerate(text.split("\n"), 1) if line == "  {"]
    with pytest.raises(InvalidTrace) as info:  # the third element, where it starts
        import_transcripts(array, "openai-chat")
    assert (info.value.line, info.value.field) == (starts[2], "messages.1.role")
    single = tmp_path / "single.json"
    single.write_text(json.dumps(to_openai_chat(tau_sample[0])["messages"], indent=2),
                      encoding="utf-8")
    traces, _ = import_transcripts(single, "openai-chat")
    assert [essence(t) for t in traces] == [essence(tau_sample[0])]


def test_ids_are_deterministic_without_an_id(tau_sample: list[Trace], tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl",
                       [to_anthropic(t)["messages"] for t in tau_sample[:5]])
    first, _ = import_transcripts(path, "anthropic")
    again, _ = import_transcripts(path, "anthropic")
    assert [t.id for t in first] == [t.id for t in again]
    assert len({t.id for t in first}) == 5 and all(t.id.startswith("tr_") for t in first)
    assert {t.outcome for t in first} == {"unknown"}  # no outcome given


def test_duplicate_transcript_is_an_error_on_the_later_line(tau_sample: list[Trace],
                                                            tmp_path: Path) -> None:
    item = to_openai_responses(tau_sample[0])
    path = write_jsonl(tmp_path / "t.jsonl", [item, to_openai_responses(tau_sample[1]), item])
    with pytest.raises(InvalidTrace, match="duplicate trace id") as info:
        import_transcripts(path, "openai-responses")
    assert (info.value.line, info.value.field) == (3, "id")


def test_given_task_wins_and_a_missing_task_is_an_error(tau_sample: list[Trace]) -> None:
    transcript = to_openai_chat(tau_sample[0])
    assert parse_openai_chat({**transcript, "task": "return the kettle"}).task == \
        "return the kettle"
    no_user = [m for m in transcript["messages"] if m["role"] != "user"]
    with pytest.raises(InvalidTrace, match="no task"):
        parse_openai_chat(no_user)


def test_error_heuristic_of_openai_formats() -> None:
    assert looks_like_error("Error: insufficient gift card balance")
    assert looks_like_error('{"error": "order not found"}')
    assert not looks_like_error('{"error": null, "status": "ok"}')
    assert not looks_like_error('{"order_id": "#W1", "status": "pending"}')
    assert not looks_like_error("No errors found")


def test_openai_error_results_become_failed_steps() -> None:
    messages = [
        {"role": "user", "content": "cancel #W1"},
        {"role": "assistant", "tool_calls": [
            {"id": "a", "type": "function", "function": {"name": "cancel", "arguments": "{}"}},
            {"id": "b", "type": "function", "function": {"name": "look", "arguments": ""}}]},
        {"role": "tool", "tool_call_id": "b", "content": '{"error": "no such order"}'},
        {"role": "tool", "tool_call_id": "a", "content": "ok"},
    ]
    trace = parse_openai_chat(messages)
    assert [(s.action, s.args, s.output, s.error) for s in trace.steps] == [
        ("cancel", {}, "ok", None), ("look", {}, None, '{"error": "no such order"}')]


def test_unsupported_shapes_are_rejected_not_dropped() -> None:
    legacy = [{"role": "user", "content": "x"},
              {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]
    with pytest.raises(InvalidTrace) as info:
        parse_openai_chat(legacy)
    assert info.value.field == "messages.1.function_call"
    custom = [{"role": "user", "content": "x"},
              {"type": "custom_tool_call", "call_id": "c", "name": "f", "input": "text"}]
    with pytest.raises(InvalidTrace) as info:
        parse_openai_responses(custom)
    assert info.value.field == "input.1.type"
    misplaced = [{"role": "user", "content": [
        {"type": "text", "text": "x"}, {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]
    with pytest.raises(InvalidTrace, match="assistant message"):
        parse_anthropic(misplaced)
    with pytest.raises(UsageError, match="unknown transcript format"):
        import_transcripts("missing.jsonl", "gemini")


def test_responses_request_with_response_output(tau_sample: list[Trace]) -> None:
    trace = tau_sample[0]
    items = to_openai_responses(trace)["input"]
    cut = next(i for i, it in enumerate(items) if it.get("type") == "function_call")
    transcript = {"model": "gpt-4.1", "input": trace.task, "output": items[cut:]}
    assert essence(parse_openai_responses(transcript)) == essence(trace)


def test_procmem_format_is_the_trace_reader(tau_sample_path: Path) -> None:
    traces, _ = import_transcripts(tau_sample_path, "procmem")
    assert [essence(t) for t in traces] == [essence(t) for t in read_traces(tau_sample_path)[0]]


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_secrets_are_redacted(fmt: str) -> None:
    secret = "sk-" + "A1b2C3d4" * 4
    trace = Trace(task=f"log in with key {secret}", steps=[
        {"action": "login", "args": {"user": "ann", "password": "hunter2", "note": secret},
         "output": f'{{"session": "abc", "echo": "{secret}"}}'}])
    parsed = PARSERS[fmt](BUILDERS[fmt](trace))
    dumped = parsed.model_dump_json()
    assert secret not in dumped and "hunter2" not in dumped
    step = parsed.steps[0]
    assert step.args == {"user": "ann", "password": REDACTED, "note": "[REDACTED:api_key]"}
    assert json.loads(step.output)["session"] == REDACTED
    assert parsed.task == "log in with key [REDACTED:api_key]"


# ------------------------------------------------------------------ learning and CLI


def learned_shapes(mem: Memory) -> list[tuple[tuple[str, ...], list[str]]]:
    procs = mem.list_procedures(limit=1000)
    return sorted((p.signature(), [q.name for q in p.params]) for p in procs)


@pytest.mark.parametrize("fmt", TRANSCRIPT_FORMATS)
def test_learning_from_transcripts_equals_learning_from_traces(
        fmt: str, tau_sample: list[Trace]) -> None:
    with Memory(":memory:") as original, Memory(":memory:") as imported:
        original.learn(tau_sample)
        transcripts = [BUILDERS[fmt](t, parallel=i % 2 == 0, variant=i)
                       for i, t in enumerate(tau_sample)]
        imported.learn([PARSERS[fmt](t) for t in transcripts])
        expected = learned_shapes(original)
        assert len(expected) > 20
        assert learned_shapes(imported) == expected


def test_cli_bad_file_stores_nothing_and_skip_invalid_stores_the_good(
        tau_sample: list[Trace], tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    good = [to_openai_chat(t) for t in tau_sample[:40]]
    assert run("--db", str(db), "import", "--format", "openai-chat",
               str(write_jsonl(tmp_path / "first.jsonl", good[:5]))).exit_code == 0
    broken = [dict(g) for g in good[5:]]
    broken[3] = {**broken[3], "messages": json.loads(
        json.dumps(broken[3]["messages"]).replace('"arguments": "{', '"arguments": "{{'))}
    path = write_jsonl(tmp_path / "bad.jsonl", broken)
    before = run("--db", str(db), "list", "--json").stdout
    result = run("--db", str(db), "import", "--format", "openai-chat", str(path), "--learn")
    assert result.exit_code == 2
    assert f"{path}:4" in result.stderr and "messages.2.tool_calls.0.function.arguments" \
        in result.stderr
    with Memory(db) as mem:
        assert mem.store.count_traces() == 5
    assert run("--db", str(db), "list", "--json").stdout == before
    result = run("--db", str(db), "import", "--format", "openai-chat", str(path),
                 "--skip-invalid", "--learn", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert (data["import"]["read"], data["import"]["stored"]) == (34, 34)
    assert len(data["import"]["errors"]) == 1 and ":4 field" in data["import"]["errors"][0]
    assert data["learn"]["traces"] == 39 and data["learn"]["created"]
    with Memory(db) as mem:
        assert mem.store.count_traces() == 39
        assert tau_sample[8].id not in {t.id for t in mem.list_traces(limit=100)}
    again = run("--db", str(db), "import", "--format", "openai-chat", str(path),
                "--skip-invalid")
    assert again.exit_code == 0
    assert "34 read, 0 new trace(s), 34 already stored, 1 invalid skipped" in again.stdout
    assert "skipped:" in again.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_imports_every_format(fmt: str, tau_sample: list[Trace], tau_sample_path: Path,
                                  tmp_path: Path) -> None:
    if fmt == "procmem":
        path = tau_sample_path
    else:
        path = write_jsonl(tmp_path / "t.jsonl", [BUILDERS[fmt](t) for t in tau_sample])
    result = run("import", "--format", fmt, str(path), "--learn")
    assert result.exit_code == 0, result.output
    assert "120 read, 120 new trace(s)" in result.stdout
    with Memory(str(tmp_path / "procmem.db")) as mem:
        stored = {t.id: t for t in mem.list_traces(limit=200)}
        assert [essence(stored[t.id]) for t in tau_sample] == [essence(t) for t in tau_sample]
        assert len(mem.list_procedures(limit=1000)) == 34


def test_a_transcript_read_in_the_wrong_format_fails_instead_of_losing_calls(
        tau_sample: list[Trace]) -> None:
    with pytest.raises(InvalidTrace, match="'anthropic' format") as info:
        parse_openai_chat(to_anthropic(tau_sample[0]))
    assert info.value.field == "messages.2.content.0.type"
    with pytest.raises(InvalidTrace, match="'openai-chat' format") as info:
        parse_openai_responses(to_openai_chat(tau_sample[0])["messages"])
    assert info.value.field == "input.2"
    with pytest.raises(InvalidTrace) as info:
        parse_anthropic(to_openai_chat(tau_sample[0]))
    assert info.value.field == "messages.2.content"  # the assistant's content: null
