"""The REST API (procmem.rest.app) through FastAPI's TestClient, on the real τ-retail sample.

Learning through POST /traces + POST /learn, search, a learned procedure run step
by step by a client that answers with the tool outputs recorded in a trace, pause
on a missing param and resume with answers, the one error shape, the OpenAPI
document, and ``procmem serve`` (the loopback test that starts it is in the
``server`` lane: ``python -m pytest -m server``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from fastapi.testclient import TestClient

from keyed import rest_client
from procmem.cli import main
from procmem.core.errors import MissingExtra
from procmem.core.template import resolve_pointer
from procmem.rest.app import create_app

CANCEL = "cancel_pending_order"
TWO_STEPS = "modify_pending_order_address-then-modify_pending_order_items"

PATHS = {
    "/traces", "/traces/{trace_id}", "/procedures", "/procedures/{name}",
    "/procedures/{name}/versions", "/procedures/{name}/versions/{version}",
    "/procedures/{name}/history", "/procedures/{name}/rename", "/learn", "/optimize",
    "/search", "/executions",
    "/executions/{execution_id}", "/executions/{execution_id}/results",
    "/executions/{execution_id}/answers", "/executions/{execution_id}/evidence",
    "/stats", "/stats/{name}", "/health", "/plan", "/plan/task", "/keys", "/keys/{key_id}",
    "/jobs", "/jobs/{job_id}",
}


def sample_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def client() -> Iterator[TestClient]:
    with rest_client("memory.db") as c:
        yield c


@pytest.fixture
def learned(client: TestClient, tau_sample_path: Path) -> TestClient:
    r = client.post("/traces", json=sample_lines(tau_sample_path))
    assert r.status_code == 200 and r.json()["stored"] == 120
    r = client.post("/learn")
    assert r.status_code == 200 and CANCEL in r.json()["created"]
    return client


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"] and "\n" not in body["error"]["message"]
    return dict(body["error"])


# ------------------------------------------------------------------ learning and search


def test_traces_are_stored_once_and_learned_into_versioned_procedures(
        learned: TestClient, tau_sample_path: Path) -> None:
    again = learned.post("/traces", json=sample_lines(tau_sample_path)[:5])
    assert again.json() == {"received": 5, "stored": 0,
                            "ids": [f"tau-retail-train-{i}" for i in range(5)]}
    page = learned.get("/traces", params={"limit": 2, "offset": 1}).json()
    assert [t["id"] for t in page] == ["tau-retail-train-1", "tau-retail-train-2"]
    assert learned.get("/traces/tau-retail-train-0").json()["steps"][0]["action"] == \
        "return_delivered_order_items"
    assert learned.post("/learn").json()["created"] == []  # idempotent
    names = [p["name"] for p in learned.get("/procedures", params={"limit": 1000}).json()]
    assert CANCEL in names and TWO_STEPS in names
    proc = learned.get(f"/procedures/{CANCEL}").json()
    assert proc["version"] == 1 and [s["action"] for s in proc["steps"]] == [CANCEL]
    assert {p["name"] for p in proc["params"]} == {"order_id", "reason"}
    assert [v["version"] for v in learned.get(f"/procedures/{CANCEL}/versions").json()] == [1]
    assert learned.get(f"/procedures/{CANCEL}/versions/1").json()["name"] == CANCEL
    history = learned.get(f"/procedures/{CANCEL}/history").json()
    assert [(h["version"], h["current"]) for h in history] == [(1, True)]


def test_search_returns_hits_with_score_ranks_and_explanation(learned: TestClient) -> None:
    r = learned.get("/search", params={"task": "Cancel order #W1234567 because no longer needed.",
                                       "limit": 3})
    hits = r.json()
    assert r.status_code == 200 and 1 <= len(hits) <= 3
    assert hits[0]["name"] == hits[0]["procedure"]["name"] == CANCEL
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    assert hits[0]["score"] >= hits[-1]["score"]
    assert hits[0]["ranks"] and 0 <= hits[0]["reliability"] <= 1
    assert hits[0]["bound"] == {"order_id": "#W1234567", "reason": "no longer needed"}
    assert hits[0]["actions"] == [s["action"] for s in hits[0]["procedure"]["steps"]]


def test_a_put_procedure_gets_versions_and_bad_templates_are_refused(client: TestClient) -> None:
    body = {"name": "greet", "params": [{"name": "who", "schema": {"type": "string"}}],
            "steps": [{"id": "s1", "action": "say", "args": {"text": {"$param": "who"}}}]}
    first = client.put("/procedures/greet", json=body)
    assert first.status_code == 200 and first.json()["version"] == 1
    assert first.json()["params"][0]["schema"] == {"type": "string"}  # served by alias
    assert client.put("/procedures/greet", json=body).json()["version"] == 1  # same content
    body["description"] = "say hello"
    assert client.put("/procedures/greet", json=body).json()["version"] == 2
    versions = client.get("/procedures/greet/versions").json()
    assert [v["version"] for v in versions] == [1, 2]
    assert client.get("/procedures/greet").json()["description"] == "say hello"
    body["steps"][0]["args"] = {"text": {"$param": "nobody"}}
    assert_error(client.put("/procedures/greet", json=body), 400, "invalid_procedure")
    assert_error(client.put("/procedures/other", json=body), 400, "usage")
    body["steps"][0]["args"] = {"text": {"$param": "who"}}
    body["params"][0]["extractor"] = {"pattern": "(", "before": "greet "}
    err = assert_error(client.put("/procedures/greet", json=body), 400, "invalid_procedure")
    assert "regular expression" in err["message"]
    assert len(client.get("/procedures/greet/versions").json()) == 2  # nothing stored
    assert client.get("/search", params={"task": "greet Ada, say hello"}).status_code == 200


# ------------------------------------------------------------------ executions


def drive(client: TestClient, turn: dict[str, Any], trace: dict[str, Any]
          ) -> tuple[dict[str, Any], list[str]]:
    """Play the client: make each call with the trace's recorded output, answer each
    need from the trace's args, until the execution ends.

    Returns the last turn and the keys of the needs answered.
    """
    steps = trace["steps"]
    done = 0
    answered: list[str] = []
    for _ in range(20):
        ex_id = turn["execution_id"]
        if turn["awaiting"] == "tool_result":
            call = turn["next_call"]
            recorded = steps[done]
            assert (call["action"], call["args"]) == (recorded["action"], recorded["args"])
            r = client.post(f"/executions/{ex_id}/results",
                            json={"step_id": call["step_id"], "output": recorded["output"],
                                  "duration_ms": 3.5})
            done += 1
        elif turn["status"] == "paused":
            assert turn["needs"] and turn["next_call"] is None
            answers = {n["key"]: resolve_pointer(steps[done]["args"], n["arg_path"])
                       for n in turn["needs"]}
            r = client.post(f"/executions/{ex_id}/answers", json={"answers": answers})
            answered.extend(answers)
        else:
            return turn, answered
        assert r.status_code == 200, r.text
        turn = r.json()
    raise AssertionError("the execution did not end")


def test_a_learned_procedure_runs_step_by_step_to_the_end(learned: TestClient) -> None:
    proc = learned.get(f"/procedures/{TWO_STEPS}").json()
    demo = learned.get(f"/traces/{proc['lineage']['traces'][-1]}").json()
    hits = learned.get("/search", params={"task": demo["task"], "limit": 5}).json()
    assert TWO_STEPS in [h["procedure"]["name"] for h in hits]
    r = learned.post("/executions", json={"procedure": TWO_STEPS, "task": demo["task"]})
    assert r.status_code == 201
    first = r.json()
    assert first["awaiting"] == "tool_result" and first["next_call"]["step_id"] == "s1"
    last, answered = drive(learned, first, demo)
    assert last["status"] == "succeeded" and last["error"] is None
    # step 2's item lists are $ask holes: the execution paused there and resumed
    assert answered == ["ask:s2:/item_ids", "ask:s2:/new_item_ids"]
    ex = learned.get(f"/executions/{last['execution_id']}").json()
    assert ex["status"] == "succeeded"
    assert [(r["action"], r["args"]) for r in ex["step_runs"]] == \
        [(s["action"], s["args"]) for s in demo["steps"]]
    assert [r["duration_ms"] for r in ex["step_runs"]] == [3.5, 3.5]
    listed = learned.get("/executions", params={"procedure": TWO_STEPS}).json()
    assert [e["id"] for e in listed] == [ex["id"]]
    ev = learned.post(f"/executions/{ex['id']}/evidence",
                      json={"reward": 1.0, "source": "test", "note": "replayed the demo"})
    assert ev.status_code == 201 and ev.json()["evidence"]["execution_id"] == ex["id"]
    assert ev.json()["changes"] == []  # no candidate competes
    stats = learned.get(f"/stats/{TWO_STEPS}").json()
    assert (stats[0]["runs"], stats[0]["successes"], stats[0]["evidence"]) == (1, 1, 1)
    assert stats[0]["reliability"] > 0.5
    assert TWO_STEPS in {s["name"] for s in learned.get("/stats").json()}
    assert learned.get(f"/procedures/{TWO_STEPS}").json()["execution_count"] == 1


def test_a_missing_param_pauses_and_answers_resume(learned: TestClient) -> None:
    turn = learned.post("/executions", json={"procedure": CANCEL}).json()  # no task: no params
    assert turn["status"] == "paused" and turn["next_call"] is None
    assert sorted(n["key"] for n in turn["needs"]) == ["param:order_id", "param:reason"]
    ex_id = turn["execution_id"]
    assert learned.get(f"/executions/{ex_id}").json()["status"] == "paused"
    turn = learned.post(f"/executions/{ex_id}/answers",
                        json={"answers": {"param:order_id": "#W2575533"}}).json()
    assert turn["status"] == "paused"  # one need left, and it says which
    assert [n["key"] for n in turn["needs"]] == ["param:reason"]
    turn = learned.post(f"/executions/{ex_id}/answers",
                        json={"answers": {"param:reason": "ordered by mistake"}}).json()
    assert turn["awaiting"] == "tool_result"
    assert turn["next_call"]["args"] == {"order_id": "#W2575533", "reason": "ordered by mistake"}
    assert_error(learned.post(f"/executions/{ex_id}/answers", json={"answers": {}}),
                 400, "usage")  # a tool result is outstanding, not a need
    assert_error(learned.post(f"/executions/{ex_id}/results", json={"step_id": "s9"}),
                 400, "usage")
    turn = learned.post(f"/executions/{ex_id}/results",
                        json={"step_id": "s1", "error": "ValueError: order is not pending"}
                        ).json()
    assert turn["status"] == "failed" and turn["step_runs"][0]["status"] == "failed"
    err = assert_error(learned.post(f"/executions/{ex_id}/results", json={"step_id": "s1"}),
                       409, "replay_error")
    assert "already failed" in err["message"]


def test_a_paused_execution_resumes_in_a_new_server(tmp_path: Path,
                                                    tau_sample_path: Path) -> None:
    with rest_client("memory.db") as first:
        first.post("/traces", json=sample_lines(tau_sample_path))
        first.post("/learn")
        ex_id = first.post("/executions", json={"procedure": CANCEL}).json()["execution_id"]
    with rest_client("memory.db") as second:  # a restart: rebuilt from the store
        turn = second.post(f"/executions/{ex_id}/answers", json={"answers": {
            "param:order_id": "#W1", "param:reason": "no longer needed"}}).json()
        assert turn["next_call"]["args"] == {"order_id": "#W1", "reason": "no longer needed"}
        turn = second.post(f"/executions/{ex_id}/results",
                           json={"step_id": "s1", "output": '{"status": "cancelled"}'}).json()
        assert turn["status"] == "succeeded"


def test_concurrent_clients_each_finish_their_execution(learned: TestClient) -> None:
    results: list[str] = []

    def run(i: int) -> None:
        for j in range(3):
            task = f"Cancel order #W{i}00000{j} because no longer needed."
            turn = learned.post("/executions", json={"procedure": CANCEL, "task": task}).json()
            turn = learned.post(f"/executions/{turn['execution_id']}/results",
                                json={"step_id": "s1", "output": "{}"}).json()
            results.append(turn["status"])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["succeeded"] * 12
    assert len(learned.get("/executions", params={"procedure": CANCEL}).json()) == 12


def test_racing_results_for_one_call_advance_it_once_without_a_server_lock(
        learned: TestClient) -> None:
    """The app holds no lock around its memory: the memory's own keeps one result."""
    task = "Cancel order #W3000001 because no longer needed."
    turn = learned.post("/executions", json={"procedure": CANCEL, "task": task}).json()
    barrier, codes = threading.Barrier(6), []

    def post() -> None:
        barrier.wait()
        codes.append(learned.post(f"/executions/{turn['execution_id']}/results",
                                  json={"step_id": "s1", "output": "{}"}).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [200] + [409] * 5
    ex = learned.get(f"/executions/{turn['execution_id']}").json()
    assert ex["status"] == "succeeded" and len(ex["step_runs"]) == 1


# ------------------------------------------------------------------ errors and document


def test_errors_have_one_json_shape(learned: TestClient, tau_sample_path: Path) -> None:
    assert_error(learned.get("/procedures/nope"), 404, "not_found")
    assert_error(learned.get(f"/procedures/{CANCEL}/versions/7"), 404, "not_found")
    assert_error(learned.get("/traces/nope"), 404, "not_found")
    assert_error(learned.post("/executions/ex_nope/answers", json={"answers": {}}),
                 404, "not_found")
    assert_error(learned.post("/executions", json={"procedure": "nope"}), 404, "not_found")
    assert_error(learned.get("/no/such/endpoint"), 404, "not_found")
    err = assert_error(learned.post("/executions", json={"procedure": CANCEL,
                                                         "params": {"bogus": 1}}),
                       400, "param_error")
    assert "bogus" in err["message"]
    changed = sample_lines(tau_sample_path)[0] | {"task": "something else"}
    err = assert_error(learned.post("/traces", json=[changed]), 409, "conflict")
    assert "tau-retail-train-0" in err["message"]
    err = assert_error(learned.get("/search"), 422, "usage")
    assert err["details"][0]["loc"] == ["query", "task"]
    assert_error(learned.get("/search", params={"task": "   "}), 422, "usage")
    assert_error(learned.get("/procedures", params={"limit": 0}), 422, "usage")
    err = assert_error(learned.post("/executions/x/evidence", json={"reward": "1"}),
                       422, "usage")  # JSON types are strict: "1" is not a number
    assert err["details"][0]["loc"] == ["body", "reward"]
    naive = {"task": "t", "created_at": "2024-01-01T00:00:00"}
    assert_error(learned.post("/traces", json=[naive]), 422, "usage")
    assert_error(learned.post("/traces", content=b"{not json",
                              headers={"content-type": "application/json"}), 422, "usage")
    r = learned.delete("/procedures/x")
    assert_error(r, 405, "usage")
    assert r.headers["allow"] == "GET, PUT"  # every method of the path, not the first route's


def test_rename_moves_versions_and_runs_and_the_old_name_resolves(learned: TestClient) -> None:
    versions = [p["version"] for p in learned.get(f"/procedures/{CANCEL}/versions").json()]
    r = learned.post(f"/procedures/{CANCEL}/rename", json={"new_name": "cancel_order"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "cancel_order"
    assert [p["version"] for p in
            learned.get("/procedures/cancel_order/versions").json()] == versions
    assert learned.get(f"/procedures/{CANCEL}").json()["name"] == "cancel_order"
    names = [h["procedure"]["name"] for h in
             learned.get("/search", params={"task": "cancel my pending order"}).json()]
    assert "cancel_order" in names and CANCEL not in names
    other = next(p["name"] for p in learned.get("/procedures").json()
                 if p["name"] != "cancel_order")
    assert_error(learned.post(f"/procedures/{other}/rename", json={"new_name": "cancel_order"}),
                 409, "conflict")
    assert_error(learned.post("/procedures/nope/rename", json={"new_name": "x"}), 404,
                 "not_found")
    assert learned.post(f"/procedures/{other}/rename",
                        json={"new_name": "bad name"}).status_code == 422


def test_the_openapi_document_lists_every_path_and_error_response(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.") and set(doc["paths"]) == PATHS
    ref = "#/components/schemas/ErrorResponse"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            assert {"500", "503"} <= set(errors), (method, path)
            for status, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ref}, (method, path, status)
            if op.get("parameters") or op.get("requestBody"):
                assert "422" in errors, (method, path)
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert client.get("/health").json()["status"] == "ok"


def test_create_app_without_fastapi_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtra, match=r"pip install -e .\.\[server\]."):
        create_app(":memory:")


# ------------------------------------------------------------------ procmem serve


def test_serve_prints_the_docs_url_and_runs_uvicorn(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    import uvicorn

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: seen.update(app=app, **kw))
    result = CliRunner().invoke(main, ["serve", "--port", "9001", "--db", "served.db"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:9001/openapi.json" in result.output
    assert "http://127.0.0.1:9001/docs" in result.output
    assert isinstance(seen["app"], FastAPI) and (seen["host"], seen["port"]) == ("127.0.0.1",
                                                                                 9001)
    assert (tmp_path / "served.db").exists()
    assert seen["app"].state.memory.searcher.index is not None  # made ready first
    # a fresh memory gets a key, printed once with how to use it (two lines)
    key = re.search(r"pmk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", result.output)
    assert key and f"Authorization: Bearer {key[0]}" in result.output
    again = CliRunner().invoke(main, ["serve", "--port", "9001", "--db", "served.db"])
    assert "pmk_" not in again.output  # a memory with a live key gets no new one


def test_serve_without_the_extra_fails_with_the_install_command(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code == 1
    assert "error[missing_extra]" in result.output and "pip install -e '.[server]'" in \
        result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.server
def test_procmem_serve_answers_over_loopback(tmp_path: Path, tau_sample_path: Path) -> None:
    port = free_port()
    made = CliRunner().invoke(main, ["--db", str(tmp_path / "m.db"), "keys", "create", "--json"])
    auth = {"Authorization": f"Bearer {json.loads(made.stdout)['key']}"}
    code = "from procmem.cli import main; main()"
    server = subprocess.Popen(
        [sys.executable, "-c", code, "--db", str(tmp_path / "m.db"), "serve", "--port",
         str(port), "--log-level", "warning"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ})
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):  # wait up to ~20 s for the server to listen
            try:
                if httpx.get(f"{base}/health").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        assert httpx.get(f"{base}/procedures").status_code == 401  # a key is required
        r = httpx.post(f"{base}/traces", json=sample_lines(tau_sample_path)[:10], headers=auth)
        assert r.json()["stored"] == 10
        assert CANCEL in httpx.post(f"{base}/learn", headers=auth).json()["created"]
        turn = httpx.post(f"{base}/executions", json={"procedure": CANCEL}, headers=auth).json()
        assert turn["status"] == "paused"
        assert set(httpx.get(f"{base}/openapi.json").json()["paths"]) == PATHS
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=20)
    assert f"{base}/openapi.json" in out.decode()
