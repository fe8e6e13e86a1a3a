"""``POST /plan`` (procmem.rest.plan) through FastAPI's TestClient, on the bundled
τ-retail sample (MIT, see tests/data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from keyed import rest_client
from procmem.induction.planning import Plan
from procmem.memory import Memory

CANCEL = "Cancel order #W1234567 because ordered by mistake."


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory, tau_sample_path: Path) -> Iterator[Memory]:
    with Memory(tmp_path_factory.mktemp("rest-plan") / "m.db", embedder=None) as m:
        m.import_traces(tau_sample_path)
        m.learn()
        yield m


@pytest.fixture
def client(mem: Memory) -> Iterator[TestClient]:
    with rest_client(mem) as c:
        yield c


def test_post_plan_answers_the_plan_shape(client: TestClient, mem: Memory) -> None:
    r = client.post("/plan", json={"task": CANCEL})
    assert r.status_code == 200, r.text
    assert r.json() == mem.plan(CANCEL).to_json()  # the one serializer
    plan = Plan.model_validate(r.json())
    assert plan.procedure == "cancel_pending_order" and plan.would_complete_without_asking
    assert plan.steps[0].args == {"order_id": "#W1234567", "reason": "ordered by mistake"}


def test_post_plan_with_a_named_procedure_and_params(client: TestClient) -> None:
    r = client.post("/plan", json={"task": "Cancel order #W1234567 please",
                                   "procedure": "cancel_pending_order", "version": 1})
    assert r.status_code == 200
    assert [p["key"] for p in r.json()["pauses"]] == ["param:reason"]
    r = client.post("/plan", json={"task": "Cancel order #W1234567 please",
                                   "procedure": "cancel_pending_order",
                                   "params": {"reason": "no longer needed"}})
    assert r.json()["would_complete_without_asking"] is True
    assert r.json()["selected_by"] == "caller"


def test_post_plan_errors(client: TestClient) -> None:
    r = client.post("/plan", json={"task": CANCEL, "procedure": "nope"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.post("/plan", json={"task": CANCEL, "procedure": "cancel_pending_order",
                                   "params": {"reason": 1}})
    assert r.status_code == 400 and r.json()["error"]["code"] == "param_error"
    r = client.post("/plan", json={"task": " "})
    assert r.status_code == 400 and r.json()["error"]["code"] == "usage"
    r = client.post("/plan", json={"task": CANCEL, "version": 1})
    assert r.status_code == 400
    r = client.post("/plan", json={"task": CANCEL, "typo": 1})
    assert r.status_code == 422


def test_post_plan_when_nothing_fits(tmp_path: Path) -> None:
    with rest_client(tmp_path / "empty.db") as c:
        r = c.post("/plan", json={"task": CANCEL})
    assert r.status_code == 200
    assert r.json()["steps"] == [] and "procedure" not in r.json()


def test_openapi_documents_post_plan(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/plan"]["post"]
    assert op["operationId"] == "plan"
    assert {"200", "400", "404", "422"} <= set(op["responses"])
