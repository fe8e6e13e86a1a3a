"""procmem's MCP server, driven by the official MCP SDK client (and the Inspector CLI).

In-process connections (``mcp.Client(server)``) run both protocol eras: the
handshake era (``mode="legacy"``, JSON-RPC over memory streams) and the
2026-07-28 era (``mode="auto"``). The stdio and HTTP tests start the real
``procmem mcp`` command, and the Inspector test runs ``scripts/mcp_inspector.sh``:
those are in the ``server`` lane (``python -m pytest -m server``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from click.testing import CliRunner
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.subscriptions import ToolsListChanged

from procmem.cli import main
from procmem.core.model import Need, Procedure, Step, Trace, utcnow
from procmem.formats.record import REDACTED
from procmem.learning.recorded import Oracle
from procmem.mcp.server import ProcmemServer, build_server
from procmem.mcp.tools import FIXED_TOOLS, json_result, tool_name
from procmem.memory import Memory

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parent.parent
TRAIN = 100  # learn from the first 100 sample traces; the last 20 are held out
MODES = ["legacy", "auto"]
NAME_RULE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def learned_db(tmp_path_factory: pytest.TempPathFactory, tau_sample: list[Trace]) -> Path:
    """A memory file that learned the first TRAIN sample traces (copied by each test)."""
    path = tmp_path_factory.mktemp("learned") / "memory.db"
    with Memory(path) as m:
        m.learn(tau_sample[:TRAIN])
    return path


@pytest.fixture
def mem(learned_db: Path, tmp_path: Path) -> Iterator[Memory]:
    shutil.copyfile(learned_db, tmp_path / "memory.db")
    with Memory(tmp_path / "memory.db") as m:
        yield m


@pytest.fixture
def server(mem: Memory) -> ProcmemServer:
    return build_server(mem)


def held_out(tau_sample: list[Trace], trace_id: str) -> Trace:
    trace = next(t for t in tau_sample[TRAIN:] if t.id == trace_id)
    return trace


async def call(client: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    """Call a tool that must succeed; its structured content."""
    result = await client.call_tool(tool, args)
    assert not result.is_error, result.content
    assert isinstance(result.structured_content, dict)
    text = [c.text for c in result.content if isinstance(c, types.TextContent)]
    assert json.loads(text[-1]) == json.loads(json.dumps(result.structured_content))
    return result.structured_content


async def call_error(client: Client, tool: str, args: dict[str, Any]) -> dict[str, str]:
    """Call a tool that must fail; its ``{"code", "message"}``."""
    result = await client.call_tool(tool, args)
    assert result.is_error
    assert isinstance(result.structured_content, dict)
    err: dict[str, str] = result.structured_content["error"]
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    assert first.text.startswith(f"error[{err['code']}]: ")
    return err


# ------------------------------------------------------------------ listing


@pytest.mark.parametrize("mode", MODES)
async def test_lists_the_fixed_tools_and_one_tool_per_active_procedure(
        server: ProcmemServer, mem: Memory, mode: str) -> None:
    active = mem.list_procedures(status="active", limit=1000)
    async with Client(server, mode=mode) as client:
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed is True
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert list(tools)[:len(FIXED_TOOLS)] == list(FIXED_TOOLS)
    assert set(tools) == set(FIXED_TOOLS) | {tool_name(p.name) for p in active}
    assert len(tools) == len(FIXED_TOOLS) + len(active) > 20
    assert all(NAME_RULE.fullmatch(n) for n in tools)
    assert tools["search_procedures"].input_schema["required"] == ["task"]
    assert tools["continue_execution"].input_schema["additionalProperties"] is False
    cancel = tools["cancel_pending_order"]
    proc = mem.get_procedure("cancel_pending_order")
    assert cancel.description is not None and cancel.description.startswith(proc.description)
    schema = cancel.input_schema
    assert schema["type"] == "object" and schema["required"] == ["order_id", "reason"]
    assert set(schema["properties"]) == {"order_id", "reason", "task"}
    assert schema["properties"]["order_id"]["type"] == "string"
    assert schema["properties"]["order_id"]["examples"] == proc.params[0].examples[:3]
    assert schema["properties"]["task"]["type"] == "string"
    long = next(p for p in active if len(p.name) > 64)  # names of long action sequences
    assert tool_name(long.name) in tools and tool_name(long.name) != long.name


def test_tool_names_are_stable_and_follow_the_strictest_client_rules() -> None:
    assert tool_name("cancel_pending_order") == "cancel_pending_order"
    long = "modify_pending_order_address-then-modify_pending_order_items-then-return_x" * 2
    assert tool_name(long) == tool_name(long) and len(tool_name(long)) == 64
    assert tool_name(long) != tool_name(long + "x")
    assert tool_name("a.b") != tool_name("a_b") == "a_b"
    assert NAME_RULE.fullmatch(tool_name("a.b"))
    assert tool_name("search_procedures") != "search_procedures"  # a fixed tool's name
    assert tool_name("x", prefix="procedure_") == "procedure_x"


# ------------------------------------------------------------------- search


@pytest.mark.parametrize("mode", MODES)
async def test_search_finds_the_procedure_of_a_held_out_task(
        server: ProcmemServer, tau_sample: list[Trace], mode: str) -> None:
    trace = held_out(tau_sample, "tau-retail-train-109")
    async with Client(server, mode=mode) as client:
        found = await call(client, "search_procedures", {"task": trace.task, "limit": 3})
        listed = {t.name for t in (await client.list_tools()).tools}
    top = found["hits"][0]
    assert top["actions"] == list(trace.signature())
    assert top["name"] == "modify_pending_order_address-then-modify_pending_order_items"
    assert top["tool"] in listed and top["bound"]["order_id"] == "#W6729841"
    assert len(found["hits"]) <= 3


@pytest.mark.parametrize("mode", MODES)
async def test_get_procedure_gives_json_and_a_markdown_how_to(
        server: ProcmemServer, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        result = await client.call_tool("get_procedure", {"name": "cancel_pending_order"})
    assert not result.is_error and isinstance(result.structured_content, dict)
    data = result.structured_content
    assert data["procedure"]["name"] == "cancel_pending_order"
    assert data["procedure"]["steps"][0]["args"]["order_id"] == {"$param": "order_id"}
    assert data["tool"] == "cancel_pending_order"
    first = result.content[0]
    assert isinstance(first, types.TextContent) and first.text == data["markdown"]
    assert data["markdown"].startswith("# cancel_pending_order")
    assert "cancel_pending_order" in data["markdown"].split("## Steps", 1)[1]


# ------------------------------------------------------- running a procedure


async def drive(client: Client, turn: dict[str, Any], trace: Trace,
                oracle: Oracle) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]], int]:
    """Play the client: make each call against the outputs recorded in ``trace``,
    answer needs from ``trace``; returns the last turn, the calls made, needs answered."""
    recorded = list(trace.successful_steps())
    calls: list[tuple[str, dict[str, Any]]] = []
    answered = 0
    while turn["awaiting"]:
        if turn["status"] == "paused":
            answers = {}
            for need in turn["needs"]:
                value = oracle(Need.model_validate(need))
                assert value is not None, f"the trace cannot answer {need['key']}"
                answers[need["key"]] = value
            answered += len(answers)
            turn = await call(client, "continue_execution",
                              {"execution_id": turn["execution_id"], "answers": answers})
            continue
        nxt = turn["next_call"]
        calls.append((nxt["action"], nxt["args"]))
        step = recorded.pop(0)
        assert (nxt["action"], nxt["args"]) == (step.action, step.args)
        assert f"`{nxt['action']}`" in turn["instruction"]
        turn = await call(client, "continue_execution",
                          {"execution_id": turn["execution_id"], "step_id": nxt["step_id"],
                           "output": step.output, "duration_ms": 12.5})
    return turn, calls, answered


@pytest.mark.parametrize(("mode", "trace_id", "needs"), [
    ("legacy", "tau-retail-train-109", 2),  # s1 bound from the task; s2 asks two item lists
    ("auto", "tau-retail-train-109", 2),
    ("auto", "tau-retail-train-100", 0),  # two cancellations, all bound from the task
    ("legacy", "tau-retail-train-117", 0),  # params the task does not give become needs
])
async def test_a_learned_procedure_runs_step_by_step_to_the_end(
        server: ProcmemServer, mem: Memory, tau_sample: list[Trace], mode: str,
        trace_id: str, needs: int) -> None:
    trace = held_out(tau_sample, trace_id)
    async with Client(server, mode=mode) as client:
        hit = (await call(client, "search_procedures", {"task": trace.task}))["hits"][0]
        proc = mem.get_procedure(hit["name"])
        turn = await call(client, hit["tool"], {"task": trace.task})
        assert turn["procedure"] == proc.name and turn["tool"] == hit["tool"]
        assert "continue_execution" in turn["instruction"]
        turn, calls, answered = await drive(client, turn, trace, Oracle(trace, proc))
        assert turn["status"] == "succeeded", turn
        assert "report_evidence" in turn["instruction"]
        evidence = await call(client, "report_evidence",
                              {"execution_id": turn["execution_id"], "reward": 1.0})
    assert calls == [(s.action, s.args) for s in trace.successful_steps()]
    assert answered >= needs
    ex = mem.get_execution(turn["execution_id"])
    assert ex.status == "succeeded" and ex.task == trace.task
    assert [r.action for r in ex.step_runs] == list(trace.signature())
    assert all(r.duration_ms == 12.5 for r in ex.step_runs)
    assert evidence["evidence"]["source"] == "agent"  # MCP clients are agents
    assert [e.source for e in mem.store.list_evidence(ex.id)] == ["agent"]


@pytest.mark.parametrize("mode", MODES)
async def test_a_need_is_answered_through_continue_execution(
        server: ProcmemServer, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        turn = await call(client, "cancel_pending_order", {})  # no task, no params
        assert turn["status"] == "paused" and turn["next_call"] is None
        assert sorted(n["key"] for n in turn["needs"]) == ["param:order_id", "param:reason"]
        assert "param:order_id" in turn["instruction"]
        turn = await call(client, "continue_execution", {
            "execution_id": turn["execution_id"],
            "answers": {"param:order_id": "#W7602708", "param:reason": "ordered by mistake"}})
        assert turn["next_call"]["args"] == {"order_id": "#W7602708",
                                             "reason": "ordered by mistake"}
        turn = await call(client, "continue_execution", {
            "execution_id": turn["execution_id"], "step_id": turn["next_call"]["step_id"],
            "output": '{"order_id": "#W7602708", "status": "cancelled"}'})
    assert turn["status"] == "succeeded"


async def test_a_failed_tool_call_fails_the_execution_as_data(server: ProcmemServer) -> None:
    async with Client(server) as client:
        turn = await call(client, "cancel_pending_order",
                          {"order_id": "#W1", "reason": "no longer needed"})
        turn = await call(client, "continue_execution", {
            "execution_id": turn["execution_id"], "step_id": "s1",
            "error": "Error: non-pending order cannot be cancelled"})
    assert turn["status"] == "failed" and "non-pending" in turn["step_runs"][0]["error"]
    assert "report_evidence" in turn["instruction"]


# ------------------------------------------------- recording and list_changed


async def record_demo(client: Client) -> dict[str, Any]:
    started = await call(client, "start_recording",
                         {"task": "Look up the user yusuf.rossi@example.com and their order."})
    rid = started["recording_id"]
    steps = [("find_user_id_by_email", {"email": "yusuf.rossi@example.com"}, "yusuf_rossi_9620"),
             ("get_user_details", {"user_id": "yusuf_rossi_9620",
                                   "authorization": "Bearer abcdef123456"},
              '{"name": "Yusuf Rossi", "orders": ["#W2378156"]}')]
    for n, (action, args, output) in enumerate(steps, 1):
        added = await call(client, "record_step", {"recording_id": rid, "action": action,
                                                   "args": args, "output": output})
        assert added["steps"] == n
    return await call(client, "finish_recording", {"recording_id": rid, "reward": 1.0})


async def test_a_recording_is_stored_as_a_trace_and_becomes_a_tool(
        server: ProcmemServer, mem: Memory) -> None:
    received = anyio.Event()

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            received.set()

    async with Client(server, mode="legacy", message_handler=on_message) as client:
        before = {t.name for t in (await client.list_tools()).tools}
        finished = await record_demo(client)
        with anyio.fail_after(10):
            await received.wait()
        after = {t.name for t in (await client.list_tools()).tools}
        err = await call_error(client, "record_step", {
            "recording_id": "rec_gone", "action": "x", "args": {}})
    new = "find_user_id_by_email-then-get_user_details"
    assert finished["learned"]["created"] == [new] and finished["tools"] == [new]
    assert after - before == {new}
    trace = mem.get_trace(finished["trace_id"])
    assert trace.outcome == "success" and trace.reward == 1.0 and trace.source == "mcp"
    assert [s.action for s in trace.steps] == ["find_user_id_by_email", "get_user_details"]
    assert trace.steps[1].args["authorization"] == REDACTED  # secrets never stored
    assert err["code"] == "not_found" and "rec_gone" in err["message"]


async def test_subscribers_hear_when_a_procedure_is_learned_elsewhere(
        server: ProcmemServer, mem: Memory, tau_sample: list[Trace]) -> None:
    async with Client(server) as client:  # 2026-07-28: change events ride subscriptions/listen
        assert client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed is True
        before = {t.name for t in (await client.list_tools()).tools}
        async with client.listen(tools_list_changed=True) as events:
            report = mem.learn(tau_sample[TRAIN:])  # e.g. `procmem learn` in another process
            assert report.created
            await call(client, "search_procedures", {"task": "cancel an order"})
            with anyio.fail_after(10):
                event = await events.__anext__()
        assert isinstance(event, ToolsListChanged)
        after = {t.name for t in (await client.list_tools()).tools}
    assert after - before == {tool_name(n) for n in report.created}


# --------------------------------------------------------------------- errors


@pytest.mark.parametrize("mode", MODES)
async def test_errors_are_error_results_and_the_server_keeps_serving(
        server: ProcmemServer, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        cases: dict[tuple[str, str], dict[str, Any]] = {
            ("get_procedure", "not_found"): {"name": "no-such-procedure"},
            ("no_such_procedure", "not_found"): {"task": "anything"},
            ("continue_execution", "not_found"): {"execution_id": "ex_missing", "step_id": "s1"},
            ("search_procedures", "usage"): {"task": "x", "limit": 0},
            ("report_evidence", "usage"): {"execution_id": "ex_1", "reward": 2},
            ("cancel_pending_order", "param_error"): {"order_id": "#W1", "colour": "red"},
        }
        for (tool, code), args in cases.items():
            err = await call_error(client, tool, args)
            assert err["code"] == code, (tool, err)
        turn = await call(client, "cancel_pending_order",
                          {"task": "Cancel order #W1234567 because no longer needed."})
        err = await call_error(client, "continue_execution", {
            "execution_id": turn["execution_id"], "step_id": "s9", "output": "{}"})
        assert err["code"] == "usage" and "'s1'" in err["message"]
        assert (await client.list_tools()).tools  # still serving


async def test_a_busy_execution_is_an_execution_busy_error_result(
        server: ProcmemServer, mem: Memory) -> None:
    async with Client(server, mode="auto") as client:
        turn = await call(client, "cancel_pending_order",
                          {"task": "Cancel order #W1234567 because no longer needed."})
        ex_id = turn["execution_id"]
        assert turn["next_call"]["idempotency_key"] == f"{ex_id}/s1/1"
        later = utcnow() + timedelta(seconds=mem.lease_s + 1)  # the client's lease lapsed
        mem.store.acquire_lease(ex_id, "host:1:resumer", lease_s=3600, now=later)
        err = await call_error(client, "continue_execution", {
            "execution_id": ex_id, "step_id": "s1", "output": "{}"})
        assert err["code"] == "execution_busy" and "host:1:resumer" in err["message"]


# ----------------------------------------------------- hooks for the proxy


class Upstream:
    """A fake upstream server: one tool, and one clashing with a procedure name."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def list_tools(self) -> list[types.Tool]:
        schema = {"type": "object", "properties": {"path": {"type": "string"}}}
        return [types.Tool(name="read_file", input_schema=schema),
                types.Tool(name="cancel_pending_order", input_schema=schema)]

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        self.calls.append((name, arguments))
        return types.CallToolResult(content=[types.TextContent(type="text", text="hello")])


async def test_extra_tools_are_served_and_a_prefix_keeps_procedures_apart(mem: Memory) -> None:
    upstream = Upstream()
    server = build_server(mem, extra_tools=upstream, tool_prefix="procedure_")
    async with Client(server) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        result = await client.call_tool("read_file", {"path": "a.txt"})
        turn = await call(client, "procedure_cancel_pending_order",
                          {"task": "Cancel order #W1234567 because no longer needed."})
    assert {"read_file", "cancel_pending_order", "procedure_cancel_pending_order"} <= set(names)
    assert names.count("cancel_pending_order") == 1
    assert upstream.calls == [("read_file", {"path": "a.txt"})]
    first = result.content[0]
    assert isinstance(first, types.TextContent) and first.text == "hello"
    assert turn["next_call"]["args"] == {"order_id": "#W1234567", "reason": "no longer needed"}


async def test_run_procedure_replaces_the_client_driven_start(mem: Memory) -> None:
    seen: list[tuple[str, str | None, dict[str, Any]]] = []

    async def run(proc: Procedure, task: str | None,
                  params: dict[str, Any]) -> types.CallToolResult:
        seen.append((proc.name, task, params))
        return json_result({"ran": proc.name})

    async with Client(build_server(mem, run_procedure=run)) as client:
        data = await call(client, "cancel_pending_order", {"task": "t", "reason": "x"})
    assert seen == [("cancel_pending_order", "t", {"reason": "x"})]
    assert data == {"ran": "cancel_pending_order"}
    assert mem.list_executions() == []  # nothing started by the server itself


async def test_a_text_only_procedure_answers_with_its_how_to(mem: Memory) -> None:
    mem.put_procedure(Procedure(name="escalate", description="Escalate to a human agent when "
                                "the user asks for something outside the policy."))
    mem.put_procedure(Procedure(name="ping_twice", steps=[Step(id="s1", action="ping"),
                                                          Step(id="s2", action="ping")]))
    async with Client(build_server(mem)) as client:
        data = await call(client, "escalate", {})
        turn = await call(client, "ping_twice", {})
    assert data["status"] == "text_only" and "Escalate to a human" in data["markdown"]
    assert turn["next_call"]["action"] == "ping"


# --------------------------------------------------- real transports (CLI)


@pytest.mark.server
async def test_procmem_mcp_over_stdio(learned_db: Path, tmp_path: Path) -> None:
    db = Path(shutil.copyfile(learned_db, tmp_path / "served.db"))
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "procmem", "--db", str(db), "mcp"])
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        turn = await call(client, "cancel_pending_order",
                          {"task": "Cancel order #W6067464 because no longer needed."})
    assert set(FIXED_TOOLS) <= names and "cancel_pending_order" in names
    assert turn["next_call"]["args"] == {"order_id": "#W6067464", "reason": "no longer needed"}
    with Memory(db) as m:  # the execution was stored by the server process
        assert m.get_execution(turn["execution_id"]).procedure == "cancel_pending_order"


@asynccontextmanager
async def http_server(db: Path) -> AsyncIterator[str]:
    """``procmem mcp --http`` on ``db`` (make a key first: the server requires one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "procmem", "--db", str(db), "mcp",
                             "--http", "--port", str(port)], stderr=subprocess.PIPE)
    try:
        with anyio.fail_after(30):
            while True:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                    await stream.aclose()
                    break
                except OSError:
                    await anyio.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reaps it and closes the stderr pipe


@pytest.mark.server
@pytest.mark.parametrize("mode", MODES)
async def test_procmem_mcp_over_streamable_http(learned_db: Path, tmp_path: Path,
                                                mode: str) -> None:
    db = Path(shutil.copyfile(learned_db, tmp_path / "served.db"))
    made = CliRunner().invoke(main, ["--db", str(db), "keys", "create", "--json"])
    headers = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
    async with http_server(db) as url:
        with pytest.raises(Exception):  # noqa: B017  (no key: 401 before any MCP message)
            async with Client(url, mode=mode) as refused:
                await refused.list_tools()
        transport = streamable_http_client(url, http_client=create_mcp_http_client(headers))
        async with Client(transport, mode=mode) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            found = await call(client, "search_procedures",
                               {"task": "Cancel order #W6067464 because no longer needed."})
    assert set(FIXED_TOOLS) <= names
    assert found["hits"][0]["tool"] == "cancel_pending_order"


def test_procmem_mcp_help_names_the_tools() -> None:
    out = CliRunner().invoke(main, ["mcp", "--help"])
    assert out.exit_code == 0
    assert "--http" in out.output and "continue_execution" in out.output


@pytest.mark.server
@pytest.mark.skipif(shutil.which("npx") is None, reason="the MCP Inspector needs node/npx")
def test_the_mcp_inspector_cli_lists_and_calls_procmem_tools(
        lane_environ: dict[str, str]) -> None:
    env = {**os.environ, **lane_environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "mcp_inspector.sh")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "7 fixed + " in done.stdout
    assert "1. cancel_pending_order" in done.stdout
    assert "call cancel_pending_order({'order_id': '#W6067464'" in done.stdout
    assert "OK: the MCP Inspector listed and called procmem's tools" in done.stdout


@pytest.mark.parametrize("mode", MODES[:1])
async def test_search_lets_the_caller_skip_the_server_s_reranker(
        mem: Memory, tau_sample: list[Trace], mode: str) -> None:
    class Reverse:
        model_id = "test:reverse"
        calls = 0

        def rerank(self, task: str, options: Any) -> list[str]:
            type(self).calls += 1
            return [o.name for o in options][::-1]

    mem.reranker = Reverse()
    trace = held_out(tau_sample, "tau-retail-train-109")
    async with Client(build_server(mem), mode=mode) as client:
        plain = await call(client, "search_procedures", {"task": trace.task, "rerank": False})
        reranked = await call(client, "search_procedures", {"task": trace.task, "limit": 10})
    assert Reverse.calls == 1
    assert plain["hits"][0]["rerank"] is None
    assert reranked["hits"][0]["rerank"] == {"model": "test:reverse", "position": 1}
    assert [h["name"] for h in reranked["hits"]][-1] == plain["hits"][0]["name"]
