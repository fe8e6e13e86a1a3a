"""Schemathesis against the REST app's OpenAPI document, in process (ASGI).

Every operation of ``/openapi.json`` gets generated requests, valid and
invalid; each response must pass schemathesis's checks. The memory is seeded
with procedures learned from the τ-retail sample, a finished execution with
evidence and a paused one, so that generated requests also reach real records.
The same run against a live server is ``scripts/schemathesis.sh``.

The whole module is the ``server`` lane (``python -m pytest -m server``): it
drives every operation of the API, which takes minutes, not seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.schemas import OpenApiSchema

from procmem.core.errors import NotFound
from procmem.memory import Memory
from procmem.rest.app import create_app
from procmem.security.keys import SCOPES

ROOT = Path(__file__).parent.parent
TAU_SAMPLE = ROOT / "tests" / "data" / "tau_retail_sample.jsonl"
CONFIG = ROOT / "scripts" / "schemathesis.toml"  # shared with scripts/schemathesis.sh

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]

pytestmark = pytest.mark.server


def api_schema(app: FastAPI, key: str) -> OpenApiSchema:
    """The app's OpenAPI schema for schemathesis, sending ``key`` as the bearer.

    ``scripts/schemathesis.toml`` reads the key from ``$PROCMEM_KEY`` when it is
    loaded; it is set only for that moment, so no other test sees it."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PROCMEM_KEY", key)
        return schemathesis.openapi.from_asgi("/openapi.json", app,
                                              config=schemathesis.Config.from_path(CONFIG))


# The schema is read at import time (from the app, not from the memory); the
# memory is seeded by the module fixture before the first generated request.
APP = create_app(Memory(":memory:"), allow_hosts=("testserver",))  # the ASGI client's Host
_, KEY = APP.state.tenants.keyring().create(scopes=SCOPES, name="schemathesis")
schema = api_schema(APP, KEY)


@pytest.fixture(scope="module", autouse=True)
def seeded() -> Iterator[Memory]:
    mem: Memory = APP.state.memory
    _seed(mem)
    yield mem
    mem.close()


def _seed(mem: Memory) -> None:
    """Procedures learned from the sample, a finished execution with evidence, a paused one."""
    # a search that runs out of its time budget binds less: on a loaded machine that
    # would make responses depend on timing, and the stateful run's generation with them
    mem.search_budget_s = 120.0
    mem.import_traces(TAU_SAMPLE)
    assert mem.learn().created
    turn = mem.start("cancel_pending_order",
                     task="Cancel order #W1234567 because no longer needed.")
    assert turn.call is not None
    turn = mem.advance(turn.execution.id, step_id=turn.call.step_id, output='{"ok": true}')
    assert turn.done
    mem.report(turn.execution.id, reward=1.0, source="test")
    assert mem.start("cancel_pending_order").execution.status == "paused"
    # fit the confidence calibration now (about 20 s), not inside a request's read timeout
    mem.search("Cancel order #W6067464 because no longer needed.", confident_only=True)


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_every_operation_conforms_to_the_openapi_document(case: schemathesis.Case) -> None:
    case.call_and_validate()


def test_the_checks_catch_an_undocumented_status(monkeypatch: pytest.MonkeyPatch,
                                                 seeded: Memory) -> None:
    """The harness has teeth: a status the document does not list for an operation fails."""
    def broken(**_: object) -> None:
        raise NotFound("procedure", "anything")

    monkeypatch.setattr(seeded.store, "count_traces", broken)  # what /health asks
    case = schema["/health"]["GET"].Case()
    with pytest.raises(FailureGroup, match="Undocumented status code"):
        case.call_and_validate()


def test_linked_operations_conform_in_sequence() -> None:
    """Stateful: sequences that follow the document's links (explicit and inferred), e.g.
    POST /executions then its results and answers, pass every check.

    On an app of its own, seeded alike: the state machine's choices follow the
    server's answers, so they must not depend on what the tests before it changed."""
    app = create_app(Memory(":memory:"), allow_hosts=("testserver",))
    _, key = app.state.tenants.keyring().create(scopes=SCOPES, name="schemathesis")
    _seed(app.state.memory)
    fresh = api_schema(app, key)
    fresh.as_state_machine().run(settings=settings(
        max_examples=20, stateful_step_count=6, deadline=None, derandomize=True,
        suppress_health_check=list(HealthCheck)))
