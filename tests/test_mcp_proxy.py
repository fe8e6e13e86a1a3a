"""Tests for the MCP proxy (procmem.mcp.proxy, ``procmem proxy -- COMMAND``).

The proxy runs as a real subprocess (``procmem proxy --db <tmp> -- UPSTREAM``)
driven by the official MCP SDK client over stdio. Upstream servers:

* the npm reference servers nobody here wrote, ``@modelcontextprotocol/server-memory``
  and ``@modelcontextprotocol/server-filesystem``, found under
  ``$PROCMEM_NPM_PREFIX`` (``.ci/run`` installs them there) or installed once per
  session with ``npm install --prefix <tmp>``; those tests skip, saying why,
  when node/npm or the packages are unavailable;
* a small Python server written here (``TOY``) so that recording, learning and
  replay through the proxy are tested even without node.

The tests that start the proxy are in the ``server`` lane (``python -m pytest -m
server``, run by ``.ci/run``); the pure helpers run in the default lane.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

pytest.importorskip("mcp", reason="the MCP proxy needs the mcp extra")

import anyio  # noqa: E402
import mcp_types as types  # noqa: E402
from mcp.client.session import ClientSession  # noqa: E402
from mcp.client.stdio import StdioServerParameters, stdio_client  # noqa: E402

from procmem.cli import main  # noqa: E402
from procmem.core.model import Execution, Need, Param, Procedure, Step  # noqa: E402
from procmem.mcp.proxy import (  # noqa: E402
    PROCEDURE_PREFIX,
    execution_summary,
    procedure_tool,
    result_text,
)
from procmem.mcp.tools import MAX_TOOL_NAME, tool_name  # noqa: E402
from procmem.memory import Memory  # noqa: E402

NPM_PACKAGES = ("@modelcontextprotocol/server-memory", "@modelcontextprotocol/server-filesystem")
PROXY = [sys.executable, "-c", "from procmem.cli import main; main()",
         "proxy"]
CONTROL = {"procmem_task", "procmem_finish", "procmem_resume"}
TIMEOUT_S = 120

TOY = '''
from mcp.server.mcpserver import MCPServer

app = MCPServer("toy-kv")
STORE: dict[str, str] = {}


@app.tool()
def put(key: str, value: str) -> str:
    """Store a value under a key."""
    STORE[key] = value
    return f"stored {key}"


@app.tool()
def get(key: str) -> str:
    """Read the value stored under a key."""
    if key not in STORE:
        raise ValueError(f"no value under {key}")
    return STORE[key]


app.run()
'''


# ------------------------------------------------------------------ fixtures


def _servers(prefix: Path) -> dict[str, Path]:
    base = prefix / "node_modules" / "@modelcontextprotocol"
    return {"memory": base / "server-memory" / "dist" / "index.js",
            "filesystem": base / "server-filesystem" / "dist" / "index.js"}


@pytest.fixture(scope="session")
def npm_servers(tmp_path_factory: pytest.TempPathFactory,
                lane_environ: dict[str, str]) -> dict[str, Path]:
    """The entry points of the npm reference servers (installed once if needed)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the npm reference MCP servers cannot run")
    given = lane_environ.get("PROCMEM_NPM_PREFIX")
    if given and all(p.is_file() for p in _servers(Path(given)).values()):
        return _servers(Path(given))
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed and $PROCMEM_NPM_PREFIX has no reference servers "
                    f"({', '.join(NPM_PACKAGES)})")
    prefix = tmp_path_factory.mktemp("npm")
    try:
        subprocess.run([npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund",
                        "--loglevel=error", *NPM_PACKAGES],
                       capture_output=True, text=True, timeout=600, check=True)
    except subprocess.CalledProcessError as err:
        pytest.skip(f"npm install {' '.join(NPM_PACKAGES)} failed: {err.stderr.strip()[-500:]}")
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install {' '.join(NPM_PACKAGES)} timed out")
    servers = _servers(prefix)
    if not all(p.is_file() for p in servers.values()):
        pytest.skip(f"npm install left no server entry point at {servers}")
    return servers


@asynccontextmanager
async def proxy(db: Path, upstream: list[str], *, env: dict[str, str] | None = None,
                on_message: Callable[[Any], Awaitable[None]] | None = None
                ) -> AsyncIterator[ClientSession]:
    """An initialized SDK client session to ``procmem proxy --db DB -- UPSTREAM``."""
    params = StdioServerParameters(command=PROXY[0], args=[*PROXY[1:], "--db", str(db), "--",
                                                           *upstream], env=env)
    with open(db.parent / "proxy-stderr.log", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write, message_handler=on_message) as session:
            await session.initialize()
            yield session


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    """Run an async scenario with a time limit (a hang fails instead of blocking CI)."""
    async def bounded() -> Any:
        with anyio.fail_after(TIMEOUT_S):
            return await scenario()
    return anyio.run(bounded)


def text(result: types.CallToolResult) -> str:
    return result_text(result)


def data(result: types.CallToolResult) -> dict[str, Any]:
    out = json.loads(text(result))
    assert isinstance(out, dict)
    return out


async def tool_names(session: ClientSession) -> set[str]:
    return {t.name for t in (await session.list_tools()).tools}


# ------------------------------------------------------- npm: server-memory


@pytest.fixture
def memory_upstream(npm_servers: dict[str, Path], tmp_path: Path
                    ) -> tuple[list[str], dict[str, str], Path]:
    """(upstream command, env, graph file) for server-memory with its graph under tmp_path."""
    graph = tmp_path / "graph.jsonl"
    return ["node", str(npm_servers["memory"])], {"MEMORY_FILE_PATH": str(graph)}, graph


@pytest.mark.server
def test_proxy_offers_the_upstream_tools_unchanged(memory_upstream: Any, tmp_path: Path) -> None:
    cmd, env, _ = memory_upstream

    async def scenario() -> tuple[list[types.Tool], list[types.Tool]]:
        params = StdioServerParameters(command=cmd[0], args=cmd[1:], env=env)
        with open(tmp_path / "upstream-stderr.log", "w") as errlog:
            async with stdio_client(params, errlog=errlog) as (r, w), ClientSession(r, w) as s:
                await s.initialize()
                direct = (await s.list_tools()).tools
        async with proxy(tmp_path / "m.db", cmd, env=env) as s:
            proxied = (await s.list_tools()).tools
        return direct, proxied

    direct, proxied = run(scenario)
    assert {"create_entities", "add_observations", "read_graph"} <= {t.name for t in direct}
    by_name = {t.name: t for t in proxied}
    for tool in direct:
        mine = by_name[tool.name]
        assert (mine.description, mine.input_schema, mine.output_schema) == \
               (tool.description, tool.input_schema, tool.output_schema)
    assert set(by_name) == {t.name for t in direct} | CONTROL  # no procedures learned yet


@pytest.mark.server
def test_proxy_forwards_calls_and_records_one_trace(memory_upstream: Any, tmp_path: Path) -> None:
    cmd, env, graph = memory_upstream
    db = tmp_path / "m.db"
    secret = "sk-" + "a1b2" * 6
    task = "Remember Alice, a person who likes green tea"
    alice = {"name": "Alice", "entityType": "person", "observations": []}
    obs = [{"entityName": "Alice", "contents": ["likes green tea", f"api key {secret}"]}]

    async def scenario() -> list[types.CallToolResult]:
        async with proxy(db, cmd, env=env) as s:
            created = await s.call_tool("create_entities", {"entities": [alice]},
                                        meta={"procmem/task": task})
            added = await s.call_tool("add_observations", {"observations": obs})
            failed = await s.call_tool("add_observations", {"observations": [
                {"entityName": "Nobody", "contents": ["x"]}]})
            finished = await s.call_tool("procmem_finish", {"outcome": "success"})
            return [created, added, failed, finished]

    created, added, failed, finished = run(scenario)
    # forwarded unchanged: upstream's own result shapes
    assert not created.is_error and json.loads(text(created)) == [alice]
    assert created.structured_content == {"entities": [alice]}
    assert json.loads(text(added)) == [{"entityName": "Alice",
                                        "addedObservations": obs[0]["contents"]}]
    assert failed.is_error and "Nobody" in text(failed)
    # the upstream state really changed (its graph file holds the unredacted value)
    assert "Alice" in graph.read_text() and secret in graph.read_text()

    summary = data(finished)
    assert (summary["task"], summary["steps"], summary["outcome"]) == (task, 3, "success")
    with Memory(db) as mem:
        [trace] = mem.list_traces()
        assert trace.id == summary["trace_id"]
        assert (trace.task, trace.outcome, trace.source) == (task, "success",
                                                             "mcp-proxy:memory-server")
        assert [s.action for s in trace.steps] == ["create_entities", "add_observations",
                                                   "add_observations"]
        assert trace.steps[0].args == {"entities": [alice]}
        assert json.loads(trace.steps[0].output) == [alice]
        # recorded with redaction on: the key sent upstream is not stored
        contents = trace.steps[1].args["observations"][0]["contents"]
        assert contents[0] == "likes green tea"
        assert contents[1].startswith("api key [REDACTED")  # [REDACTED:api_key]
        assert secret not in json.dumps(trace.model_dump(mode="json"))
        assert trace.steps[2].output is None and "Nobody" in (trace.steps[2].error or "")
        assert all(s.duration_ms is not None and s.duration_ms >= 0 for s in trace.steps)
        assert trace.metadata["upstream"]["name"] == "memory-server"


@pytest.mark.server
def test_recordings_split_by_task_and_close_at_shutdown(memory_upstream: Any,
                                                         tmp_path: Path) -> None:
    cmd, env, _ = memory_upstream
    db = tmp_path / "m.db"

    async def scenario() -> None:
        async with proxy(db, cmd, env=env) as s:
            await s.call_tool("read_graph", {})  # no task given: a default task text
            await s.call_tool("search_nodes", {"query": "tea"}, meta={"procmem/task": "Find tea"})
            await s.call_tool("open_nodes", {"names": ["tea"]}, meta={"procmem/task": "Find tea"})
            await s.call_tool("procmem_task", {"task": "Find tea lovers"})  # renames it
        # disconnect without procmem_finish

    run(scenario)
    with Memory(db) as mem:
        first, second = mem.list_traces()
    assert first.task.startswith("proxy session ") and [s.action for s in first.steps] == [
        "read_graph"]
    assert second.task == "Find tea lovers"
    assert [s.action for s in second.steps] == ["search_nodes", "open_nodes"]
    assert first.outcome == second.outcome == "unknown"


@pytest.mark.server
def test_learned_procedure_pauses_and_resumes_against_server_memory(
        memory_upstream: Any, tmp_path: Path) -> None:
    cmd, env, graph = memory_upstream
    db = tmp_path / "m.db"
    people = [("Alice", "person", "likes tea"), ("R2D2", "robot", "likes oil")]

    async def record(name: str, kind: str, note: str) -> None:
        async with proxy(db, cmd, env=env) as s:
            await s.call_tool("procmem_task", {"task": f"Remember {name}, a {kind} who {note}"})
            await s.call_tool("create_entities", {"entities": [
                {"name": name, "entityType": kind, "observations": []}]})
            await s.call_tool("add_observations", {"observations": [
                {"entityName": name, "contents": [note]}]})
            await s.call_tool("procmem_finish", {"outcome": "success"})

    for person in people:
        run(lambda p=person: record(*p))
    with Memory(db) as mem:
        report = mem.learn()
    assert report.created == ["create_entities-then-add_observations"]
    tool = PROCEDURE_PREFIX + "create_entities-then-add_observations"
    answers = {"ask:s1:/entities": [{"name": "Carol", "entityType": "person",
                                     "observations": []}],
               "ask:s2:/observations": [{"entityName": "Carol", "contents": ["likes coffee"]}]}

    async def replay() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        async with proxy(db, cmd, env=env) as s:
            assert tool in await tool_names(s)
            turns = [data(await s.call_tool(tool, {"task": "Remember Carol who likes coffee"}))]
            while turns[-1]["status"] == "paused":
                needs = {n["key"] for n in turns[-1]["needs"]}
                turns.append(data(await s.call_tool("procmem_resume", {
                    "execution_id": turns[-1]["execution_id"],
                    "answers": {k: answers[k] for k in needs}})))
            graph_now = json.loads(text(await s.call_tool("read_graph", {})))
            return turns, graph_now

    turns, graph_now = run(replay)
    assert turns[0]["status"] == "paused"
    assert [n["key"] for n in turns[0]["needs"]] == ["ask:s1:/entities"]
    assert turns[-1]["status"] == "succeeded"
    assert [(s["action"], s["status"]) for s in turns[-1]["step_runs"]] == [
        ("create_entities", "succeeded"), ("add_observations", "succeeded")]
    assert turns[-1]["step_runs"][0]["args"] == {"entities": answers["ask:s1:/entities"]}
    carol = next(e for e in graph_now["entities"] if e["name"] == "Carol")
    assert carol["observations"] == ["likes coffee"]
    assert "Carol" in graph.read_text()
    with Memory(db) as mem:
        [ex] = mem.list_executions()
        assert (ex.id, ex.status) == (turns[-1]["execution_id"], "succeeded")


# --------------------------------------------------- npm: server-filesystem


@pytest.mark.server
def test_learned_procedure_replays_against_server_filesystem(
        npm_servers: dict[str, Path], tmp_path: Path) -> None:
    """The must-show: record through the proxy, learn, replay a procedure tool through it."""
    root = tmp_path / "files"
    root.mkdir()
    cmd = ["node", str(npm_servers["filesystem"]), str(root)]
    db = tmp_path / "m.db"
    notes = [("alice.txt", "buy green tea"), ("bob.txt", "call the plumber"),
             ("carol.txt", "water the plants")]

    async def record(name: str, content: str) -> dict[str, Any]:
        path = str(root / name)
        async with proxy(db, cmd) as s:
            task = f"Write the note '{content}' to {path} and read it back"
            await s.call_tool("write_file", {"path": path, "content": content},
                              meta={"procmem/task": task})
            back = await s.call_tool("read_file", {"path": path})
            assert text(back) == content
            return data(await s.call_tool("procmem_finish", {"outcome": "success"}))

    finished = [run(lambda n=note: record(*n)) for note in notes]
    assert [f["steps"] for f in finished] == [2, 2, 2]
    with Memory(db) as mem:
        assert len(mem.list_traces()) == 3
        report = mem.learn()
        assert report.created == ["write_file-then-read_file"]
        proc = mem.get_procedure("write_file-then-read_file")
        assert {p.name for p in proc.params} == {"path", "content"}
    tool = PROCEDURE_PREFIX + "write_file-then-read_file"
    new_path = str(root / "dave.txt")
    third_path = str(root / "erin.txt")

    async def replay() -> tuple[types.Tool, dict[str, Any], dict[str, Any], str]:
        async with proxy(db, cmd) as s:
            listed = {t.name: t for t in (await s.list_tools()).tools}
            by_params = data(await s.call_tool(tool, {"path": new_path,
                                                      "content": "feed the cat"}))
            by_task = data(await s.call_tool(tool, {
                "task": f"Write the note 'fix the bike' to {third_path} and read it back"}))
            back = text(await s.call_tool("read_file", {"path": new_path}))
            return listed[tool], by_params, by_task, back

    offered, by_params, by_task, back = run(replay)
    assert offered.input_schema["properties"].keys() == {"path", "content", "task"}
    assert by_params["status"] == "succeeded"
    assert [(s["action"], s["args"]) for s in by_params["step_runs"]] == [
        ("write_file", {"path": new_path, "content": "feed the cat"}),
        ("read_file", {"path": new_path})]
    assert by_params["step_runs"][1]["output"] == "feed the cat"
    assert (root / "dave.txt").read_text() == "feed the cat" == back
    assert by_task["status"] == "succeeded"
    assert by_task["params"] == {"path": third_path, "content": "fix the bike"}
    assert (root / "erin.txt").read_text() == "fix the bike"
    with Memory(db) as mem:
        traces = mem.list_traces()
        assert len(mem.list_executions(procedure="write_file-then-read_file")) == 2
    # replayed calls are executions, not trace steps: only the forwarded read_file was recorded
    assert len(traces) == 4 and [s.action for s in traces[-1].steps] == ["read_file"]


# ------------------------------------------------- a Python upstream (no node)


@pytest.fixture
def toy(tmp_path: Path) -> list[str]:
    script = tmp_path / "toy_server.py"
    script.write_text(TOY)
    return [sys.executable, str(script)]


@pytest.mark.server
def test_finish_with_learn_offers_the_procedure_at_once(toy: list[str], tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    seen: list[Any] = []

    async def on_message(message: Any) -> None:
        seen.append(message)

    async def scenario() -> tuple[set[str], set[str], dict[str, Any], dict[str, Any], str]:
        async with proxy(db, toy, on_message=on_message) as s:
            before = await tool_names(s)
            await s.call_tool("procmem_task", {"task": "Store blue under colour"})
            await s.call_tool("put", {"key": "colour", "value": "blue"})
            missing = await s.call_tool("get", {"key": "size"})
            assert missing.is_error
            await s.call_tool("get", {"key": "colour"})
            first = data(await s.call_tool("procmem_finish", {}))
            assert (first["steps"], "learned" in first) == (3, False)
            assert not seen
            await s.call_tool("procmem_task", {"task": "Store large under size"})
            await s.call_tool("put", {"key": "size", "value": "large"})
            await s.call_tool("get", {"key": "size"})
            finished = data(await s.call_tool("procmem_finish", {"learn": True}))
            with anyio.fail_after(10):
                while not any(isinstance(m, types.ToolListChangedNotification) for m in seen):
                    await anyio.sleep(0.05)
            after = await tool_names(s)
            replayed = data(await s.call_tool(PROCEDURE_PREFIX + "put-then-get",
                                              {"key": "shape", "value": "round"}))
            got = text(await s.call_tool("get", {"key": "shape"}))
            return before, after, finished, replayed, got

    before, after, finished, replayed, got = run(scenario)
    assert before == {"put", "get"} | CONTROL
    assert finished["steps"] == 2 and finished["learned"]["created"] == ["put-then-get"]
    assert after == before | {PROCEDURE_PREFIX + "put-then-get"}
    assert replayed.get("status") == "succeeded", replayed
    assert [s["output"] for s in replayed["step_runs"]] == ["stored shape", "round"]
    assert got == "round"  # the upstream's state changed


@pytest.mark.server
def test_control_tool_errors_are_error_results(toy: list[str], tmp_path: Path) -> None:
    async def scenario() -> list[types.CallToolResult]:
        async with proxy(tmp_path / "m.db", toy) as s:
            return [await s.call_tool("procmem_finish", {}),
                    await s.call_tool("procmem_resume", {"execution_id": "ex_nope",
                                                         "answers": {}}),
                    await s.call_tool(PROCEDURE_PREFIX + "nothing", {}),
                    await s.call_tool("procmem_task", {"task": " "}),
                    await s.call_tool("put", {"key": "k", "value": "v"})]

    no_recording, no_execution, no_tool, empty_task, still_works = run(scenario)
    errors = [r.structured_content for r in (no_recording, no_execution, no_tool, empty_task)]
    assert [e["error"]["code"] for e in errors if e] == ["usage", "not_found", "usage", "usage"]
    assert all(r.is_error for r in (no_recording, no_execution, no_tool, empty_task))
    assert text(no_recording).startswith("error[usage]: no recording is open")
    assert text(still_works) == "stored k"


# ------------------------------------------------------------ pure helpers


def test_procedure_tool_names_are_prefixed_short_and_distinct() -> None:
    names = {n: tool_name(n, prefix=PROCEDURE_PREFIX) for n in
             ["a.b", "a_b", "write_file-then-read_file", "x" * 200]}
    assert names["a_b"] == "procedure__a_b" and names["a.b"].startswith("procedure__a_b-")
    assert names["write_file-then-read_file"] == "procedure__write_file-then-read_file"
    assert all(len(n) <= MAX_TOOL_NAME for n in names.values())
    assert len(set(names.values())) == 4


def test_procedure_tool_schema_lists_params_and_task() -> None:
    proc = Procedure(name="p", params=[
        Param(name="path", schema={"type": "string"}, description="file", examples=["/a"]),
        Param(name="task", schema={"type": "string"}, required=False)],
        steps=[Step(id="s1", action="read_file", args={"path": {"$param": "path"}})])
    tool = procedure_tool(proc, "procedure__p")
    props = tool.input_schema["properties"]
    assert props["path"] == {"type": "string", "description": "file (required)",
                             "examples": ["/a"]}
    assert set(props) == {"path", "task", "task_text"}  # `task` is taken by a param
    assert "required" not in tool.input_schema
    assert tool.input_schema["additionalProperties"] is False
    assert "read_file" in (tool.description or "")


def test_result_text_and_execution_summary() -> None:
    result = types.CallToolResult(content=[
        types.TextContent(type="text", text="a"),
        types.ImageContent(type="image", data="AAAA", mime_type="image/png")])
    assert result_text(result) == "a\n[image image/png]"
    assert result_text(types.CallToolResult(content=[], structured_content={"n": 1})) == \
        '{"n": 1}'
    ex = Execution(procedure="p", version=1, status="paused", needs=[
        Need(key="param:path", kind="param", name="path", prompt="path?")])
    out = execution_summary(ex)
    assert out["status"] == "paused" and out["needs"][0]["key"] == "param:path"
    assert "procmem_resume" in out["resume"]


def test_cli_proxy_needs_a_command_and_reports_a_bad_one(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["proxy"])
    assert missing.exit_code == 2 and "COMMAND" in missing.output
    bad = runner.invoke(main, ["proxy", "--db", str(tmp_path / "m.db"), "--",
                               str(tmp_path / "no-such-server")])
    assert bad.exit_code == 2
    assert "error[usage]: upstream MCP server" in bad.output
    assert "FileNotFoundError" in bad.output
    gone = runner.invoke(main, ["proxy", "--db", str(tmp_path / "m.db"), "--",
                                sys.executable, "-c", "import sys; sys.exit(3)"])
    assert gone.exit_code == 2
    assert "failed to start: MCPError: Connection closed" in gone.output
