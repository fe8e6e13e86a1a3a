"""The REST API refuses what issue 12 found open: DNS rebinding, cross-site simple POSTs,
requests without a valid key or scope, and any reach into another tenant's data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from procmem import Memory
from procmem.core.errors import UsageError
from procmem.rest.app import create_app

SAMPLE = Path(__file__).parent.parent / "data" / "tau_retail_sample.jsonl"
BASE = "http://127.0.0.1:8765"
CANCEL = "cancel_pending_order"
TASK = "Cancel order #W1234567 because no longer needed."


def lines(first: int, last: int) -> list[dict[str, Any]]:
    return [json.loads(x) for x in SAMPLE.read_text().splitlines()[first:last]]


class World:
    """An app over one memory file, with keys of two tenants and a few scopes."""

    def __init__(self, tmp_path: Path) -> None:
        self.app = create_app(Memory(tmp_path / "m.db", embedder=None))
        ring = self.app.state.tenants.keyring()
        self.ring = ring
        self.keys = {
            "a": ring.create(tenant="default", scopes=["read", "write", "run", "admin"])[1],
            "b": ring.create(tenant="acme", scopes=["read", "write", "run", "admin"])[1],
            "read": ring.create(tenant="default", scopes=["read"])[1],
            "write": ring.create(tenant="default", scopes=["read", "write"])[1],
        }
        revoked, text = ring.create(tenant="default", scopes=["read", "write", "run"])
        ring.revoke(revoked.id)
        self.keys["revoked"] = text
        self.client = TestClient(self.app, base_url=BASE)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path)
    with w.client:
        a = w.auth("a")
        assert w.client.post("/traces", json=lines(0, 40), headers=a).status_code == 200
        assert CANCEL in w.client.post("/learn", headers=a).json()["created"]
        yield w


# Every operation of the API, with path values that exist in tenant A.
def operations(world: World) -> list[tuple[str, str, Any]]:
    a = world.auth("a")
    turn = world.client.post("/executions", json={"procedure": CANCEL, "task": TASK},
                             headers=a).json()
    ex = turn["execution_id"]
    return [
        ("GET", "/traces", None), ("POST", "/traces", lines(40, 41)),
        ("GET", "/traces/tau-retail-train-0", None), ("DELETE", "/traces/tau-retail-train-0", None),
        ("GET", "/procedures", None), ("GET", f"/procedures/{CANCEL}", None),
        ("PUT", f"/procedures/{CANCEL}", world.client.get(f"/procedures/{CANCEL}",
                                                          headers=a).json()),
        ("GET", f"/procedures/{CANCEL}/versions", None),
        ("GET", f"/procedures/{CANCEL}/versions/1", None),
        ("GET", f"/procedures/{CANCEL}/history", None), ("POST", "/learn", None),
        ("POST", "/optimize", None), ("GET", f"/search?task={TASK}", None),
        ("POST", "/plan", {"task": TASK}), ("POST", "/plan/task", {"task": TASK}),
        ("POST", "/executions", {"procedure": CANCEL, "task": TASK}),
        ("GET", "/executions", None), ("GET", f"/executions/{ex}", None),
        ("POST", f"/executions/{ex}/results", {"step_id": "s1", "output": "{}"}),
        ("POST", f"/executions/{ex}/answers", {"answers": {}}),
        ("POST", f"/executions/{ex}/evidence", {"reward": 1.0, "source": "test"}),
        ("GET", "/stats", None), ("GET", f"/stats/{CANCEL}", None),
        ("GET", "/keys", None), ("POST", "/keys", {"scopes": ["read"]}),
        ("DELETE", "/keys/0123456789ab", None),
    ]


def call(world: World, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return world.client.request(method, path, json=body, headers=headers)


def test_every_operation_but_health_and_the_document_needs_a_valid_key(world: World) -> None:
    ops = operations(world)
    wrong = world.keys["a"][:-2] + ("xx" if not world.keys["a"].endswith("xx") else "yy")
    refused = 0
    for method, path, body in ops:
        for headers in ({}, {"Authorization": f"Bearer {wrong}"}, world.auth("revoked"),
                        {"Authorization": world.keys["a"]},  # no scheme
                        {"Authorization": f"Basic {world.keys['a']}"}):
            r = call(world, method, path, body, headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["www-authenticate"].startswith('Bearer realm="procmem"')
            assert r.json()["error"]["code"] == "unauthorized"
            refused += 1
    assert refused == 5 * len(ops)
    # a key in the query string is not a key (MCP authorization spec, token usage)
    r = world.client.get(f"/procedures?access_token={world.keys['a']}")
    assert r.status_code == 401
    assert world.client.get("/health").status_code == 200
    assert world.client.get("/openapi.json").json()["components"]["securitySchemes"]


def test_a_key_without_the_scope_is_refused_with_403(world: World) -> None:
    for method, path, body in operations(world):
        scope = ("admin" if path.startswith("/keys") else
                 "read" if method == "GET" or path.startswith("/plan") else
                 "run" if path.startswith("/executions") else "write")
        for who, scopes in (("read", {"read"}), ("write", {"read", "write"})):
            r = call(world, method, path, body, world.auth(who))
            if scope in scopes:
                assert r.status_code not in (401, 403), (who, method, path, r.text)
                continue
            assert r.status_code == 403, (who, method, path, r.text)
            assert f'error="insufficient_scope", scope="{scope}"' in \
                r.headers["www-authenticate"]


def test_dns_rebinding_hosts_are_refused(world: World) -> None:
    a = world.auth("a")
    for host in ("attacker.example", "attacker.example:8765", "127.0.0.1.nip.io",
                 "localhost.attacker.example", ""):
        for method, path, body in (("GET", "/traces", None), ("GET", "/procedures", None),
                                   ("PUT", f"/procedures/{CANCEL}", {}),
                                   ("POST", "/learn", None), ("GET", "/health", None)):
            r = call(world, method, path, body, {**a, "Host": host})
            assert r.status_code == 421, (host, method, path)
            assert r.json()["error"]["code"] == "bad_host"
    for host in ("127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765"):
        assert world.client.get("/procedures", headers={**a, "Host": host}).status_code == 200


def test_an_allowed_host_is_configurable(tmp_path: Path) -> None:
    app = create_app(Memory(tmp_path / "m.db", embedder=None), allow_hosts=("procmem.internal",))
    with TestClient(app, base_url="http://procmem.internal") as client:
        assert client.get("/health").status_code == 200
        assert client.get("/health", headers={"Host": "other.internal"}).status_code == 421


def test_cross_site_simple_posts_are_refused(world: World) -> None:
    a = world.auth("a")
    for path in ("/learn", "/optimize", "/traces", "/executions"):
        # an HTML form or fetch(no-cors) can send text/plain, form or multipart bodies
        for kind in ("text/plain", "application/x-www-form-urlencoded",
                     "multipart/form-data; boundary=x"):
            r = world.client.post(path, content=b"[]", headers={**a, "Content-Type": kind})
            assert r.status_code == 415, (path, kind)
            r = world.client.post(path, content=b"", headers={**a, "Content-Type": kind})
            assert r.status_code == 415, (path, kind)
        assert world.client.post(path, content=b"[]", headers=a).status_code == 415  # no type
        r = world.client.post(path, headers={**a, "Origin": "https://evil.example"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "bad_origin"
        assert "access-control-allow-origin" not in r.headers
    # the server's own origin (its /docs page) is admitted
    assert world.client.get("/procedures", headers={**a, "Origin": BASE}).status_code == 200


def test_no_cors_unless_configured(tmp_path: Path) -> None:
    mem = Memory(tmp_path / "m.db", embedder=None)
    app = create_app(mem, cors_origins=("https://ui.example",))
    _, key = app.state.tenants.keyring().create(scopes=["read"])
    with TestClient(app, base_url=BASE) as client:
        pre = client.options("/procedures", headers={
            "Origin": "https://ui.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://ui.example"
        assert "Authorization" in pre.headers["access-control-allow-headers"]
        r = client.get("/procedures", headers={"Origin": "https://ui.example",
                                               "Authorization": f"Bearer {key}"})
        assert r.status_code == 200
        assert r.headers["access-control-allow-origin"] == "https://ui.example"
        r = client.options("/procedures", headers={"Origin": "https://other.example",
                                                   "Access-Control-Request-Method": "GET"})
        assert r.status_code == 403 and "access-control-allow-origin" not in r.headers


def test_request_bodies_over_the_limit_are_refused(tmp_path: Path) -> None:
    app = create_app(Memory(tmp_path / "m.db", embedder=None), max_body_bytes=1000)
    _, key = app.state.tenants.keyring().create()
    with TestClient(app, base_url=BASE) as client:
        big = lines(0, 5)
        r = client.post("/traces", json=big, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 413 and r.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while read
            yield b"[" + b" " * 900
            yield b" " * 900 + b"]"
        r = client.post("/traces", content=chunks(), headers={
            "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        assert r.status_code == 413
        assert client.get("/traces", headers={"Authorization": f"Bearer {key}"}).json() == []


def test_no_auth_exists_only_on_loopback(tmp_path: Path) -> None:
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(UsageError, match="only allowed on 127.0.0.1"):
            create_app(Memory(":memory:", embedder=None), auth=False, bind_host=host)
    app = create_app(Memory(":memory:", embedder=None), auth=False)
    with TestClient(app, base_url=BASE) as client:
        assert client.get("/procedures").status_code == 200
        # the browser defences stay on without keys
        assert client.get("/procedures", headers={"Host": "evil.example"}).status_code == 421
        assert client.post("/learn", headers={"Content-Type": "text/plain"}).status_code == 415


def test_another_tenant_cannot_read_write_search_run_or_export(world: World) -> None:
    a, b = world.auth("a"), world.auth("b")
    c = world.client
    turn = c.post("/executions", json={"procedure": CANCEL, "task": TASK}, headers=a).json()
    ex = turn["execution_id"]
    proc_a = c.get(f"/procedures/{CANCEL}", headers=a).json()
    exec_a = c.get(f"/executions/{ex}", headers=a).json()
    # read
    assert c.get("/traces", headers=b).json() == []
    assert c.get("/procedures", headers=b).json() == []
    assert c.get("/executions", headers=b).json() == []
    assert c.get("/stats", headers=b).json() == []
    for path in ("/traces/tau-retail-train-0", f"/procedures/{CANCEL}",
                 f"/procedures/{CANCEL}/versions", f"/procedures/{CANCEL}/versions/1",
                 f"/procedures/{CANCEL}/history", f"/executions/{ex}", f"/stats/{CANCEL}"):
        assert c.get(path, headers=b).status_code == 404, path
    # search and plan
    assert c.get("/search", params={"task": TASK, "status": "any"}, headers=b).json() == []
    plan = c.post("/plan", json={"task": TASK, "procedure": CANCEL}, headers=b)
    assert plan.status_code == 404
    # run and resume
    assert c.post("/executions", json={"procedure": CANCEL}, headers=b).status_code == 404
    for path, body in ((f"/executions/{ex}/results", {"step_id": "s1", "output": "{}"}),
                       (f"/executions/{ex}/answers", {"answers": {"order_id": "#W1"}}),
                       (f"/executions/{ex}/evidence", {"reward": 0.0, "source": "test"})):
        assert c.post(path, json=body, headers=b).status_code == 404, path
    # write: delete, learn, put never touch A
    assert c.delete("/traces/tau-retail-train-0", headers=b).status_code == 404
    assert c.post("/traces", json=lines(40, 80), headers=b).json()["stored"] == 40
    assert CANCEL in c.post("/learn", headers=b).json()["created"]  # B's own, version 1
    mine = {**proc_a, "description": "tenant B's version"}
    assert c.put(f"/procedures/{CANCEL}", json=mine, headers=b).status_code == 200
    assert c.post("/optimize", headers=b).status_code == 200
    assert c.get(f"/procedures/{CANCEL}", headers=a).json() == proc_a
    assert len(c.get(f"/procedures/{CANCEL}/versions", headers=a).json()) == 1
    assert len(c.get("/traces", params={"limit": 1000}, headers=a).json()) == 40
    assert c.get(f"/executions/{ex}", headers=a).json() == exec_a
    # keys: an admin of B sees and revokes only B's keys
    assert {k["tenant"] for k in c.get("/keys", headers=b).json()} == {"acme"}
    a_key_id = world.keys["a"].split("_")[1]
    assert c.delete(f"/keys/{a_key_id}", headers=b).status_code == 404
    made = c.post("/keys", json={"scopes": ["read"]}, headers=b).json()
    assert made["record"]["tenant"] == "acme"
    assert c.get("/procedures", headers={"Authorization": f"Bearer {made['key']}"}).json()[0][
        "description"] == "tenant B's version"


def test_an_admin_cannot_mint_a_key_with_more_than_it_has(world: World) -> None:
    world.ring.create(tenant="default", scopes=["admin"])
    _, admin_only = world.ring.create(tenant="default", scopes=["admin"])
    r = world.client.post("/keys", json={"scopes": ["read", "write"]},
                          headers={"Authorization": f"Bearer {admin_only}"})
    assert r.status_code == 403
    r = world.client.post("/keys", json={"scopes": ["root"]}, headers=world.auth("a"))
    assert r.status_code == 400
