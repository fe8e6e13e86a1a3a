"""MCP over streamable HTTP refuses the same: DNS rebinding, cross-site posts, requests
without a valid key or scope (MCP authorization spec: 401/403 with WWW-Authenticate:
Bearer), and any reach into another tenant's data, tools, recordings or sessions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from procmem import Memory
from procmem.mcp.http import mcp_scope_of, tenant_mcp_app
from procmem.mcp.server import build_server
from procmem.rest.security import guard_settings
from procmem.tenants import TenantMemories

SAMPLE = Path(__file__).parent.parent / "data" / "tau_retail_sample.jsonl"
BASE = "http://127.0.0.1:8766"
CANCEL = "cancel_pending_order"
TASK = "Cancel order #W1234567 because no longer needed."
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
INIT = {"protocolVersion": "2025-11-25", "capabilities": {},
        "clientInfo": {"name": "security-test", "version": "1"}}


def result(response: Any) -> dict[str, Any]:
    """The JSON-RPC message of a streamable HTTP answer (SSE or JSON)."""
    for line in response.text.splitlines():
        if line.startswith("data:"):
            return dict(json.loads(line[5:]))
    return dict(response.json())


class Session:
    """One MCP session over HTTP with one key."""

    def __init__(self, client: TestClient, key: str) -> None:
        self.client, self.key, self.next_id = client, key, 1
        r = self.post("initialize", INIT)
        assert r.status_code == 200, r.text
        self.id = r.headers["mcp-session-id"]
        self.client.post("/mcp", headers=self.headers(), json={
            "jsonrpc": "2.0", "method": "notifications/initialized"})

    def headers(self, **extra: str) -> dict[str, str]:
        h = {**ACCEPT, "Authorization": f"Bearer {self.key}", **extra}
        if getattr(self, "id", None):
            h.update({"Mcp-Session-Id": self.id, "Mcp-Protocol-Version": "2025-11-25"})
        return h

    def post(self, method: str, params: dict[str, Any], **headers: str) -> Any:
        self.next_id += 1
        return self.client.post("/mcp", headers=self.headers(**headers), json={
            "jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})

    def call(self, tool: str, **arguments: Any) -> dict[str, Any]:
        r = self.post("tools/call", {"name": tool, "arguments": arguments})
        assert r.status_code == 200, r.text
        return result(r)["result"]

    def tools(self) -> set[str]:
        return {t["name"] for t in result(self.post("tools/list", {}))["result"]["tools"]}


class World:
    def __init__(self, tmp_path: Path) -> None:
        root = Memory(tmp_path / "m.db", embedder=None)
        root.import_traces(SAMPLE)
        assert CANCEL in root.learn().created
        self.memories = TenantMemories(root)
        self.app = tenant_mcp_app(self.memories, build_server, guard_settings(self.memories))
        ring = self.memories.keyring()
        self.keys = {"a": ring.create(scopes=["read", "write", "run"])[1],
                     "b": ring.create(tenant="acme", scopes=["read", "write", "run"])[1],
                     "read": ring.create(scopes=["read"])[1],
                     "write": ring.create(scopes=["read", "write"])[1]}
        revoked, self.keys["revoked"] = ring.create()
        ring.revoke(revoked.id)
        self.client = TestClient(self.app, base_url=BASE)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    with w.client:
        yield w
    w.memories.root.close()


def raw(world: World, headers: dict[str, str], body: Any = None) -> Any:
    return world.client.post("/mcp", headers={**ACCEPT, **headers}, json=body or {
        "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT})


def test_missing_wrong_and_revoked_keys_get_401_with_a_bearer_challenge(world: World) -> None:
    wrong = world.keys["a"][:-1] + ("B" if world.keys["a"][-1] != "B" else "C")
    for headers in ({}, {"Authorization": f"Bearer {wrong}"},
                    {"Authorization": f"Bearer {world.keys['revoked']}"},
                    {"Authorization": world.keys["a"]}):
        for method in ("initialize", "tools/list", "tools/call"):
            r = raw(world, headers, {"jsonrpc": "2.0", "id": 1, "method": method,
                                     "params": INIT if method == "initialize" else {}})
            assert r.status_code == 401, (headers, method)
            assert r.headers["www-authenticate"].startswith('Bearer realm="procmem"')
        assert world.client.get("/mcp", headers=headers).status_code == 401
        assert world.client.delete("/mcp", headers=headers).status_code == 401
    r = world.client.post(f"/mcp?access_token={world.keys['a']}", headers=ACCEPT,
                          json={"jsonrpc": "2.0", "id": 1, "method": "initialize",
                                "params": INIT})
    assert r.status_code == 401  # never a key in the URI


def test_a_key_without_the_scope_gets_403_insufficient_scope(world: World) -> None:
    reader, writer = Session(world.client, world.keys["read"]), Session(world.client,
                                                                         world.keys["write"])
    assert "search_procedures" in reader.tools()
    assert reader.call("search_procedures", task=TASK)["structuredContent"]["hits"]
    cases = [("start_recording", {"task": "t"}, "write"),
             ("record_step", {"recording_id": "r", "action": "a"}, "write"),
             ("finish_recording", {"recording_id": "r"}, "write"),
             ("continue_execution", {"execution_id": "x"}, "run"),
             ("report_evidence", {"execution_id": "x", "reward": 1.0}, "run"),
             (CANCEL, {"task": TASK}, "run")]
    for tool, args, scope in cases:
        for session, scopes in ((reader, {"read"}), (writer, {"read", "write"})):
            r = session.post("tools/call", {"name": tool, "arguments": args})
            if scope in scopes:
                assert r.status_code == 200, (tool, r.text)
                continue
            assert r.status_code == 403, (tool, r.text)
            assert f'error="insufficient_scope", scope="{scope}"' in \
                r.headers["www-authenticate"]
    # a batch needs every scope its messages need
    assert mcp_scope_of("POST", "/mcp", json.dumps([
        {"method": "tools/call", "params": {"name": "record_step"}},
        {"method": "tools/call", "params": {"name": CANCEL}}]).encode()) == (
        "read", "write", "run")


def test_dns_rebinding_and_cross_site_requests_are_refused(world: World) -> None:
    auth = {"Authorization": f"Bearer {world.keys['a']}"}
    for host in ("attacker.example", "attacker.example:8766", "localhost.attacker.example"):
        r = raw(world, {**auth, "Host": host})
        assert r.status_code == 421 and r.json()["error"]["code"] == "bad_host"
    r = raw(world, {**auth, "Origin": "https://evil.example"})
    assert r.status_code == 403 and "access-control-allow-origin" not in r.headers
    for kind in ("text/plain", "application/x-www-form-urlencoded"):
        r = world.client.post("/mcp", content=json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": INIT}),
            headers={**auth, "Accept": ACCEPT["Accept"], "Content-Type": kind})
        assert r.status_code == 415, kind


def test_another_tenant_cannot_search_read_record_run_or_hijack(world: World) -> None:
    a, b = Session(world.client, world.keys["a"]), Session(world.client, world.keys["b"])
    # read and search
    assert CANCEL in a.tools() and CANCEL not in b.tools()
    assert b.call("search_procedures", task=TASK)["structuredContent"]["hits"] == []
    assert b.call("get_procedure", name=CANCEL)["isError"]
    # run: B cannot call A's procedure tool, nor continue or report on A's execution
    turn = a.call(CANCEL, task=TASK)["structuredContent"]
    ex = turn["execution_id"]
    assert b.call(CANCEL, task=TASK)["isError"]
    out = b.call("continue_execution", execution_id=ex, step_id="s1", output="{}")
    assert out["isError"] and out["structuredContent"]["error"]["code"] == "not_found"
    out = b.call("report_evidence", execution_id=ex, reward=0.0)
    assert out["isError"] and out["structuredContent"]["error"]["code"] == "not_found"
    # write: B cannot add to or finish A's recording; B's learn leaves A's procedure alone
    rec = a.call("start_recording", task="Cancel order #W7654321")["structuredContent"]
    assert b.call("record_step", recording_id=rec["recording_id"], action="x")["isError"]
    assert b.call("finish_recording", recording_id=rec["recording_id"])["isError"]
    before = world.memories.root.get_procedure(CANCEL)
    mine = b.call("start_recording", task=TASK)["structuredContent"]["recording_id"]
    b.call("record_step", recording_id=mine, action="cancel_pending_order",
           args={"order_id": "#W1234567", "reason": "no longer needed"}, output="{}")
    assert not b.call("finish_recording", recording_id=mine, learn=True)["isError"]
    assert world.memories.root.get_procedure(CANCEL) == before
    assert world.memories.root.get_execution(ex).status == "running"
    assert world.memories.get("acme").list_traces()[0].task == TASK
    # a session belongs to the key that opened it
    hijack = world.client.post("/mcp", headers={**b.headers(), "Mcp-Session-Id": a.id},
                               json={"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
    assert hijack.status_code == 404
