"""Fuzz: hostile REST bodies and MCP calls, with a valid key, get our errors, never a 5xx.

Hypothesis sends bodies of random shape (the routes' own keys with wrong types,
deep nesting, huge strings, lone surrogates, truncated or non-JSON bytes) to every
REST write route, and hostile ``tools/call`` arguments (and random JSON-RPC methods)
to MCP over streamable HTTP, each request carrying a key with every scope. For each:
no HTTP 5xx, an error in our shape (``{"error": {"code", "message"}}`` for REST, a
JSON-RPC error or a tool result with ``isError`` for MCP), and nothing stored half:
a refused ``POST /traces`` or ``PUT /procedures`` leaves the store as it was.

With :mod:`tests.security.test_fuzz_ingest` (2,000 files) the ``slow`` lane
(``python -m pytest -m slow``) sends 1,000 REST bodies and 600 MCP calls: 3,600
hostile inputs in all. The default lane runs 60 REST bodies and 40 MCP calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keyed import rest_client
from procmem import Memory
from procmem.mcp.http import tenant_mcp_app
from procmem.mcp.server import build_server
from procmem.mcp.tools import FIXED_TOOLS
from procmem.rest.security import guard_settings
from procmem.tenants import TenantMemories

SAMPLE = Path(__file__).parent.parent / "data" / "tau_retail_sample.jsonl"
REST_EXAMPLES = [60, pytest.param(1000, marks=pytest.mark.slow)]
MCP_EXAMPLES = [40, pytest.param(600, marks=pytest.mark.slow)]

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=12) | st.sampled_from(["\ud800", "", "-1", "1e400"])
           | st.integers(10_000, 40_000).map(lambda n: "x" * n))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=10)
KEYS = ["task", "steps", "action", "args", "output", "error", "outcome", "id", "name", "version",
        "params", "procedure", "reward", "source", "note", "answers", "step_id", "duration_ms",
        "description", "scopes", "status", "schema", "extract", "$param", "$step", "$ask",
        "$select", "path", "metadata", "namespace", "on_error", "expect", "subprocedure"]
shaped = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6),
    lambda c: st.dictionaries(st.sampled_from(KEYS), c | st.lists(c, max_size=3), max_size=5),
    max_leaves=8)


def _text(value: Any) -> str:
    return json.dumps(value)


bodies = st.one_of(shaped, st.lists(shaped, max_size=3), json_values)
texts = st.one_of(
    bodies.map(_text),
    st.integers(100, 3000).map(lambda n: "[" * n + '{"x": 1}' + "]" * n),  # deep nesting
    st.integers(100, 3000).map(lambda n: '{"task": "t", "steps": ' + "[" * n + "]" * n + "}"),
)
raw_bodies = st.one_of(
    texts.map(lambda t: t.encode("utf-8", "surrogatepass")),
    texts.map(lambda t: t[: max(1, len(t) // 2)].encode("utf-8", "surrogatepass")),
    st.binary(max_size=64),
    st.sampled_from([b"", b"null", b"[]", b"{}", b'{"task": "\\ud800"}', b"\xff\xfe{}"]))

NAMES = st.sampled_from(["cancel_pending_order", "nope", "a" * 300, "..", "%00", "x y"])
IDS = st.sampled_from(["ex_0000000000000000", "tr_1", "..", "a" * 300, "%2F"])
ROUTES = st.one_of(
    st.just(("POST", "/traces")), st.just(("POST", "/plan")), st.just(("POST", "/plan/task")),
    st.just(("POST", "/executions")), st.just(("POST", "/keys")),
    NAMES.map(lambda n: ("PUT", f"/procedures/{n}")),
    IDS.map(lambda i: ("POST", f"/executions/{i}/results")),
    IDS.map(lambda i: ("POST", f"/executions/{i}/answers")),
    IDS.map(lambda i: ("POST", f"/executions/{i}/evidence")),
)


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("fuzz") / "m.db"
    with Memory(db, embedder=None) as mem:
        mem.import_traces(SAMPLE)
        mem.learn()
    return db


def _counts(mem: Memory) -> tuple[int, int]:
    return mem.store.count_traces(), sum(len(mem.list_versions(p.name))
                                         for p in mem.list_procedures(limit=10_000))


@pytest.mark.parametrize("examples", REST_EXAMPLES)
def test_hostile_rest_bodies_get_our_errors_and_store_nothing_half(seeded: Path,
                                                                   examples: int) -> None:
    with Memory(seeded, embedder=None) as mem, rest_client(mem) as client:

        @settings(max_examples=examples, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(route=ROUTES, body=raw_bodies)
        def run(route: tuple[str, str], body: bytes) -> None:
            method, path = route
            before = _counts(mem)
            r = client.request(method, path, content=body,
                               headers={"Content-Type": "application/json"})
            assert r.status_code < 500, (method, path, body[:200], r.text[:500])
            if r.status_code >= 400:
                error = r.json()["error"]
                assert error["code"] and error["message"], r.text
                if path == "/traces" or path.startswith("/procedures/"):
                    assert _counts(mem) == before  # nothing stored half

        run()


def _rpc(client: TestClient, key: str, session: str | None, body: Any) -> Any:
    headers = {"Accept": "application/json, text/event-stream",
               "Content-Type": "application/json", "Authorization": f"Bearer {key}"}
    if session:
        headers.update({"Mcp-Session-Id": session, "Mcp-Protocol-Version": "2025-11-25"})
    return client.post("/mcp", headers=headers, content=body if isinstance(body, bytes)
                       else json.dumps(body).encode("utf-8", "surrogatepass"))


def _message(response: Any) -> dict[str, Any]:
    for line in response.text.splitlines():
        if line.startswith("data:"):
            return dict(json.loads(line[5:]))
    return dict(response.json())


@pytest.fixture
def mcp(seeded: Path) -> Iterator[tuple[TestClient, str, str]]:
    memories = TenantMemories(Memory(seeded, embedder=None))
    app = tenant_mcp_app(memories, build_server, guard_settings(memories))
    key = memories.keyring().create(scopes=["read", "write", "run"])[1]
    with TestClient(app, base_url="http://127.0.0.1:8766") as client:
        init = _rpc(client, key, None, {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                        "params": {"protocolVersion": "2025-11-25",
                                                   "capabilities": {},
                                                   "clientInfo": {"name": "fuzz", "version": "1"}}})
        assert init.status_code == 200, init.text
        session = init.headers["mcp-session-id"]
        _rpc(client, key, session, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield client, key, session
    memories.root.close()


TOOLS = st.sampled_from([*FIXED_TOOLS, "procedure__cancel_pending_order", "nope", ""])
calls = st.one_of(
    st.builds(lambda tool, args: {"method": "tools/call", "params": {"name": tool,
                                                                     "arguments": args}},
              TOOLS, shaped | json_values),
    st.builds(lambda method, params: {"method": method, "params": params},
              st.sampled_from(["tools/list", "resources/list", "prompts/list", "nope",
                               "tools/call", "initialize", ""]), bodies),
    raw_bodies.map(lambda b: {"raw": b}))


@pytest.mark.parametrize("examples", MCP_EXAMPLES)
def test_hostile_mcp_calls_get_json_rpc_errors_never_a_5xx(
        mcp: tuple[TestClient, str, str], examples: int) -> None:
    client, key, session = mcp
    seq = iter(range(10, 10**9))

    @settings(max_examples=examples, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(call=calls)
    def run(call: dict[str, Any]) -> None:
        body = call["raw"] if "raw" in call else {"jsonrpc": "2.0", "id": next(seq), **call}
        r = _rpc(client, key, session, body)
        assert r.status_code < 500, (call, r.text[:500])
        if r.status_code == 200:
            message = _message(r)
            assert "result" in message or "error" in message, message
            if "error" in message:
                assert isinstance(message["error"]["code"], int), message
        elif r.status_code != 202:  # refused (bad JSON, too large): still an error body
            assert "error" in _message(r), r.text[:500]

    run()
