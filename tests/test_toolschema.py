"""Tool schemas (procmem.formats.toolschema, procmem.services.tools, procmem.cli.tools).

Real data: the 16 τ-retail tools (``tests/data/tau-retail-tools.json``, MIT, see
``tests/data/README.md``) and procedures learned from the bundled τ-retail sample.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from procmem.cli import main
from procmem.core.errors import InvalidProcedure, UsageError
from procmem.core.model import Param, Procedure, Step
from procmem.formats.toolschema import (
    check_procedure,
    check_step,
    parse_tools,
    step_problems,
    validate_value,
)
from procmem.memory import Memory

TOOLS_FILE = Path(__file__).parent / "data" / "tau-retail-tools.json"
CANCEL = "cancel_pending_order"


def tau_tools() -> list[dict[str, Any]]:
    return json.loads(TOOLS_FILE.read_text(encoding="utf-8"))


def changed_tools(**edits: Any) -> list[dict[str, Any]]:
    """The τ-retail tools with ``cancel_pending_order``'s parameters edited."""
    tools = tau_tools()
    params = next(t for t in tools if t["function"]["name"] == CANCEL)["function"]["parameters"]
    if "reason_enum" in edits:
        params["properties"]["reason"]["enum"] = edits["reason_enum"]
    if "new_required" in edits:
        params["properties"][edits["new_required"]] = {"type": "string"}
        params["required"].append(edits["new_required"])
    return tools


@pytest.fixture(scope="module")
def learned_db(tmp_path_factory: pytest.TempPathFactory, tau_sample_path: Path) -> Path:
    """A memory file with the procedures learned from the τ-retail sample (built once)."""
    path = tmp_path_factory.mktemp("learned") / "learned.db"
    with Memory(path) as mem:
        mem.import_traces(tau_sample_path)
        assert mem.learn().created
    return path


@pytest.fixture
def mem(learned_db: Path, tmp_path: Path) -> Iterator[Memory]:
    db = tmp_path / "procmem.db"
    shutil.copy(learned_db, db)
    with Memory(db) as memory:
        yield memory


def users_of(mem: Memory, tool: str) -> set[str]:
    return {p.name for p in mem.list_procedures(limit=1000) if tool in p.signature()}


# ------------------------------------------------------------------ parsing


def test_parse_the_real_tau_retail_tools() -> None:
    tools = parse_tools(tau_tools())
    assert len(tools) == 16
    cancel = tools[CANCEL]
    assert set(cancel) == {"name", "description", "parameters"}
    assert cancel["parameters"]["required"] == ["order_id", "reason"]
    assert cancel["parameters"]["properties"]["reason"]["enum"] == [
        "no longer needed", "ordered by mistake"]


def test_parse_accepts_bare_functions_the_tools_object_and_flat_items() -> None:
    bare = [{"name": "ping", "parameters": {"type": "object", "properties": {}}},
            {"type": "function", "name": "echo", "strict": True,
             "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}},
            {"name": "now"}]
    tools = parse_tools({"tools": bare})
    assert list(tools) == ["ping", "echo", "now"]
    assert tools["echo"]["strict"] is True
    assert tools["now"]["parameters"] == {"type": "object", "properties": {}}
    assert tools["ping"]["description"] == ""


@pytest.mark.parametrize(("data", "where"), [
    ({"functions": []}, "f.json: expected a JSON array"),
    ("nope", "f.json: expected a JSON array of tools, got a JSON string"),
    ([{"type": "function", "function": {"name": "a"}}, 7], "f.json: [1]: a tool must be"),
    ([{"type": "function", "function": {"description": "x"}}], "f.json: [0].function.name"),
    ([{"type": "web_search"}], "f.json: [0].type: only function tools"),
    ([{"name": "a", "parameters": []}], "f.json: [0].parameters: must be a JSON Schema"),
    ([{"name": "a", "parameters": {"type": "array"}}], "f.json: [0].parameters.type"),
    ([{"name": "a", "parameters": {"properties": {"r": {"enum": "x"}}}}],
     "f.json: [0].parameters.properties.r.enum: must be an array"),
    ([{"name": "a", "parameters": {"properties": {"r": {"type": "text"}}}}],
     "f.json: [0].parameters.properties.r.type: unknown type 'text'"),
    ([{"name": "a", "parameters": {"required": "r"}}], "f.json: [0].parameters.required"),
    ([{"name": "a"}, {"name": "b"}, {"name": "a"}],
     "f.json: [2].name: duplicate tool name 'a' (also at index 0)"),
    ({"tools": [{"name": ""}]}, "f.json: tools[0].name"),
])
def test_parse_errors_name_the_index_and_field(data: Any, where: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_tools(data, source="f.json")
    assert str(info.value).startswith(where)


# ------------------------------------------------------------------ checks

SCHEMA = parse_tools([{"name": "ship", "parameters": {
    "type": "object",
    "properties": {
        "order_id": {"type": "string"},
        "speed": {"type": "string", "enum": ["slow", "fast"]},
        "count": {"type": "integer"},
        "weight": {"type": "number"},
        "items": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"]},
        "meta": {"type": "object"},
    },
    "required": ["order_id", "speed"],
}}])["ship"]


def step(**args: Any) -> Step:
    return Step(id="s1", action="ship", args=args)


def test_a_clean_step_has_no_problem() -> None:
    s = step(order_id={"$param": "order_id"}, speed="fast", count=2, weight=2,
             items=["a", {"$step": "s0", "path": "/x"}], address={"city": "Oslo"},
             meta={"anything": 1})
    assert check_step(s, SCHEMA, [Param(name="order_id", schema={"type": "string"})]) == []


def test_unknown_and_missing_args() -> None:
    assert check_step(step(order_id="#1", colour="red"), SCHEMA) == [
        "arg 'colour': unknown arg (the schema allows: order_id, speed, count, weight, items, "
        "address, meta)",
        "arg 'speed': missing required arg",
    ]


def test_literal_types_enums_items_and_nested_objects() -> None:
    problems = step_problems(step(order_id=7, speed="warp", count=1.5, weight=True,
                                  items=["a", 3], address={"town": "x"}), SCHEMA)
    assert [(p.arg, p.kind) for p in problems] == [
        ("/order_id", "type"), ("/speed", "enum"), ("/count", "type"), ("/weight", "type"),
        ("/items/1", "type"), ("/address/town", "unknown_arg"), ("/address/city", "missing_arg"),
    ]
    assert str(problems[0]) == "arg 'order_id': expected string, got integer 7"
    assert str(problems[1]) == "arg 'speed': \"warp\" is not one of [\"slow\", \"fast\"]"
    assert problems[1].describe().startswith("step 's1' (ship): arg 'speed'")
    assert all(p.blocking for p in problems)


def test_integers_are_numbers_and_literal_escapes_are_checked() -> None:
    assert check_step(step(order_id="#1", speed="slow", weight=3), SCHEMA) == []
    escaped = step(order_id={"$literal": {"$x": 1}}, speed="slow")
    assert check_step(escaped, SCHEMA) == [
        "arg 'order_id': expected string, got object {\"$x\": 1}"]


def test_param_refs_are_checked_by_declared_type_and_examples() -> None:
    s = step(order_id={"$param": "oid"}, speed={"$param": "speed"}, count={"$param": "n"})
    params = [Param(name="oid", schema={"type": "integer"}),
              Param(name="speed", schema={"type": "string"}, examples=["fast", "warp"]),
              Param(name="n", schema={"type": "number"})]
    problems = step_problems(s, SCHEMA, params)
    assert [(p.arg, p.kind, p.blocking) for p in problems] == [
        ("/order_id", "param_type", True), ("/speed", "example", False)]
    assert "param 'oid' is integer but the tool expects string" in str(problems[0])
    assert "example of param 'speed'" in str(problems[1]) and '"warp"' in str(problems[1])


def test_ask_and_step_refs_are_left_to_replay() -> None:
    s = step(order_id={"$ask": "which order?"}, speed={"$step": "s0", "path": "/speed"})
    assert check_step(s, SCHEMA) == []


def test_open_objects_and_additional_properties() -> None:
    open_schema = {"type": "object", "additionalProperties": True,
                   "properties": {"a": {"type": "string"}}}
    assert validate_value({"a": "x", "b": 1}, open_schema) == []
    typed = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert validate_value({"b": "x"}, typed) == ["/b: expected integer, got string \"x\""]
    assert validate_value({"b": "x"}, {"type": "object"}) == []
    assert validate_value(["x"], {"type": "array", "items": {"enum": [1, True]}}) == [
        "/0: \"x\" is not one of [1, true]"]
    assert validate_value(1, {"enum": [True]}) != []


def test_check_procedure_keys_problems_by_step() -> None:
    proc = Procedure(name="p", steps=[
        step(order_id="#1", speed="slow"),
        Step(id="s2", action="ship", args={"order_id": "#2"}),
        Step(id="s3", action="unknown_tool", args={"x": 1}),
        Step(id="s4", action="procedure:other", args={"y": 2}),
    ])
    assert check_procedure(proc, {"ship": SCHEMA}) == {
        "s2": ["arg 'speed': missing required arg"]}


# ------------------------------------------------------------------ memory


def test_import_stores_all_16_and_learned_procedures_check_clean(mem: Memory) -> None:
    report = mem.import_tool_schemas(TOOLS_FILE)
    assert len(report["added"]) == 16 and report["changed"] == report["unchanged"] == []
    assert mem.list_tool_schemas() == parse_tools(tau_tools())
    assert report["flagged"] == [] and mem.tool_flags() == []
    assert {c["procedure"] for c in report["checked"] if c["tool"] == CANCEL} == users_of(
        mem, CANCEL)
    assert all(c["problems"] == {} for c in report["checked"])
    assert mem.check_procedures() == {}
    assert mem.get_tool_schema(CANCEL)["parameters"]["required"] == ["order_id", "reason"]


def test_reimporting_the_same_file_changes_nothing(mem: Memory) -> None:
    mem.import_tool_schemas(TOOLS_FILE)
    again = mem.import_tool_schemas(str(TOOLS_FILE))
    assert len(again["unchanged"]) == 16
    assert again["added"] == again["changed"] == again["checked"] == again["flagged"] == []
    assert mem.tool_flags() == []
    if hasattr(mem.store, "list_tool_schema_history"):  # SQLite's; not in the Store protocol
        assert mem.store.list_tool_schema_history(CANCEL) == []


def test_a_narrower_enum_flags_exactly_the_users_of_the_tool(mem: Memory) -> None:
    mem.import_tool_schemas(TOOLS_FILE)
    users = users_of(mem, CANCEL)
    assert len(users) >= 10
    report = mem.import_tool_schemas(changed_tools(reason_enum=["no longer needed"]))
    assert report["changed"] == [CANCEL] and len(report["unchanged"]) == 15
    assert set(report["flagged"]) == users
    flags = mem.tool_flags()
    assert {f["procedure"] for f in flags} == users
    assert all(f["tool"] == CANCEL and f["reason"] == "changed" for f in flags)
    # Every demonstrated "ordered by mistake" reason is now a problem on its step and arg.
    for name in users:
        proc = mem.get_procedure(name)
        problems = mem.check_procedure(name)
        for s in proc.steps:
            if s.action != CANCEL:
                assert s.id not in problems
                continue
            examples = proc.param(s.args["reason"]["$param"]).examples  # type: ignore[union-attr]
            if "ordered by mistake" in examples:
                assert any(m.startswith("arg 'reason': example of param")
                           and "ordered by mistake" in m for m in problems[s.id])
            else:
                assert s.id not in problems
    flagged = next(f for f in flags if f["problems"])
    assert flagged["problems"] == mem.check_procedure(flagged["procedure"])
    if hasattr(mem.store, "list_tool_schema_history"):  # SQLite's; not in the Store protocol
        history = mem.store.list_tool_schema_history(CANCEL)
        assert [h["schema"] for h in history] == [parse_tools(tau_tools())[CANCEL]]
        assert flagged["previous_hash"] == history[0]["hash"]


def test_a_new_required_arg_is_a_problem_on_every_cancel_step(mem: Memory) -> None:
    mem.import_tool_schemas(TOOLS_FILE)
    report = mem.import_tool_schemas({"tools": changed_tools(new_required="note")})
    assert report["changed"] == [CANCEL]
    assert set(report["flagged"]) == users_of(mem, CANCEL)
    for check in report["checked"]:
        proc = mem.get_procedure(check["procedure"])
        cancel_steps = [s.id for s in proc.steps if s.action == CANCEL]
        assert list(check["problems"]) == cancel_steps
        assert all(msgs == ["arg 'note': missing required arg"]
                   for msgs in check["problems"].values())
    assert set(mem.check_procedures()) == users_of(mem, CANCEL)


def test_a_malformed_tools_file_stores_nothing(mem: Memory, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"type": "function", "function": {"name": "a"}},\n  {"name": }]')
    with pytest.raises(UsageError, match=r"broken.json:2:\d+: not valid JSON"):
        mem.import_tool_schemas(broken)
    bad = tau_tools()
    bad[5]["function"]["parameters"]["properties"]["order_id"]["type"] = "text"
    with pytest.raises(UsageError, match=r"tools: \[5\]\.function\.parameters\.properties"
                                         r"\.order_id\.type: unknown type 'text'"):
        mem.import_tool_schemas(bad)
    with pytest.raises(UsageError, match="cannot read tool schemas"):
        mem.import_tool_schemas(tmp_path / "missing.json")
    assert mem.list_tool_schemas() == {}
    assert mem.tool_flags() == []


def cancel_procedure(reason: Any) -> Procedure:
    return Procedure(name="cancel-by-hand", params=[Param(name="order_id",
                                                          schema={"type": "string"})],
                     steps=[Step(id="s1", action=CANCEL,
                                 args={"order_id": {"$param": "order_id"}, "reason": reason})])


def test_put_procedure_refuses_args_that_break_a_stored_schema(mem: Memory) -> None:
    assert mem.put_procedure(cancel_procedure(5)).version == 1  # no schema known yet
    mem.delete_procedure("cancel-by-hand")
    mem.import_tool_schemas(TOOLS_FILE)
    with pytest.raises(InvalidProcedure) as info:
        mem.put_procedure(cancel_procedure(5))
    assert "step 's1' (cancel_pending_order): arg 'reason': expected string, got integer 5" in str(
        info.value)
    with pytest.raises(InvalidProcedure, match="arg 'reason': \"by accident\" is not one of"):
        mem.put_procedure(cancel_procedure("by accident"))
    assert mem.find_procedure("cancel-by-hand") is None
    assert mem.put_procedure(cancel_procedure("no longer needed")).version == 1


def test_learn_flags_instead_of_refusing(tau_sample_path: Path, tmp_path: Path) -> None:
    tools = tau_tools()
    address = next(t for t in tools if t["function"]["name"] == "modify_pending_order_address")
    address["function"]["parameters"]["properties"]["country"]["enum"] = ["Canada"]
    with Memory(tmp_path / "m.db") as memory:
        memory.import_tool_schemas(tools)
        memory.import_traces(tau_sample_path)
        report = memory.learn()
        users = {n for n in report.created if "modify_pending_order_address" in n}
        assert users
        flags = memory.tool_flags()
        assert {f["procedure"] for f in flags} == users
        assert all(f["reason"] == "learned" and f["tool"] == "modify_pending_order_address"
                   for f in flags)
        first = flags[0]
        # every task names "USA", so country is a param; its examples are checked
        assert any("arg 'country': example of param 'country': \"USA\" is not one of "
                   "[\"Canada\"]" in m
                   for msgs in first["problems"].values() for m in msgs)
        assert memory.clear_tool_flags(first["procedure"]) == 1
        assert len(memory.tool_flags()) == len(flags) - 1
        memory.delete_procedure(flags[1]["procedure"])
        assert len(memory.tool_flags()) == len(flags) - 2


# ------------------------------------------------------------------ CLI


def run(*args: str) -> Any:
    result = CliRunner().invoke(main, list(args))
    return result


def test_cli_import_list_check_and_flags(mem: Memory, tmp_path: Path) -> None:
    db = mem.store.location
    mem.close()
    first = run("--db", db, "tools", "import", str(TOOLS_FILE))
    assert first.exit_code == 0, first.output
    assert "16 tool schema(s): 16 added, 0 changed, 0 unchanged" in first.output
    listed = run("--db", db, "tools", "list", "--json")
    assert [t["name"] for t in json.loads(listed.output)] == sorted(parse_tools(tau_tools()))
    text = run("--db", db, "tools", "list").output
    assert "cancel_pending_order(order_id*, reason*)" in text
    clean = run("--db", db, "tools", "check", "--json")
    assert clean.exit_code == 0 and json.loads(clean.output) == {"tools": 16, "problems": {}}

    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(changed_tools(new_required="note")))
    out = run("--db", db, "tools", "import", str(changed), "--json")
    assert out.exit_code == 0
    report = json.loads(out.output)
    assert report["changed"] == [CANCEL] and report["flagged"]
    text = run("--db", db, "tools", "import", str(changed)).output
    assert "16 tool schema(s): 0 added, 0 changed, 16 unchanged" in text

    check = run("--db", db, "tools", "check", CANCEL)
    assert check.exit_code == 1
    assert "s1: arg 'note': missing required arg" in check.output
    check_all = run("--db", db, "tools", "check", "--json")
    assert check_all.exit_code == 1
    assert set(json.loads(check_all.output)["problems"]) == set(report["flagged"])

    flags = run("--db", db, "tools", "flags", CANCEL, "--json", "--clear")
    assert [f["reason"] for f in json.loads(flags.output)] == ["changed"]
    assert run("--db", db, "tools", "flags", CANCEL).output.strip() == "no tool flags"


def test_cli_import_shows_flagged_procedures_and_rejects_bad_files(mem: Memory,
                                                                  tmp_path: Path) -> None:
    db = mem.store.location
    mem.close()
    assert run("--db", db, "tools", "import", str(TOOLS_FILE)).exit_code == 0
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(changed_tools(reason_enum=["no longer needed"])))
    text = run("--db", db, "tools", "import", str(changed)).output
    assert "changed: cancel_pending_order" in text
    assert f"  {CANCEL}@1 ({CANCEL} changed): problems:" in text
    assert "    s1: arg 'reason': example of param 'reason'" in text

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "x", "parameters": {"type": "string"}}]))
    result = run("--db", db, "tools", "import", str(bad))
    assert result.exit_code == 2
    assert "error[usage]:" in result.output and "[0].parameters.type" in result.output
    missing = run("--db", db, "tools", "check", "no-such-procedure")
    assert missing.exit_code == 3

