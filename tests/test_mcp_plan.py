"""Plans on the MCP server's search hits (procmem.mcp.server), through the official
MCP SDK client, on the bundled τ-retail sample (MIT, see tests/data)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from procmem.core.model import Param, Procedure, Step
from procmem.induction.planning import Plan
from procmem.mcp.server import build_server
from procmem.memory import Memory

pytestmark = pytest.mark.anyio
CANCEL = "Cancel order #W1234567 because ordered by mistake."


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def mem(tmp_path: Path, tau_sample_path: Path) -> Iterator[Memory]:
    with Memory(tmp_path / "m.db", embedder=None) as m:
        m.import_traces(tau_sample_path)
        m.learn()
        yield m


async def search(mem: Memory, args: dict[str, Any]) -> dict[str, Any]:
    async with Client(build_server(mem), mode="legacy") as client:
        result = await client.call_tool("search_procedures", args)
    assert not result.is_error and isinstance(result.structured_content, dict)
    return result.structured_content


async def test_every_search_hit_carries_its_plan(mem: Memory) -> None:
    found = await search(mem, {"task": CANCEL, "limit": 3})
    hits = mem.search(CANCEL, limit=3)
    assert [h["name"] for h in found["hits"]] == [h.procedure.name for h in hits]
    for data, hit in zip(found["hits"], hits, strict=True):
        # the one serializer: the plan Memory.plan gives for that hit, as CLI and REST serve it
        assert data["plan"] == mem.plan(CANCEL, procedure=hit).to_json()
    top = Plan.model_validate(found["hits"][0]["plan"])
    assert top.procedure == "cancel_pending_order" and top.would_complete_without_asking
    assert top.steps[0].args == {"order_id": "#W1234567", "reason": "ordered by mistake"}
    assert top.to_json() == mem.plan(CANCEL).to_json()  # the top hit's plan is Memory.plan's


async def test_a_hit_that_cannot_be_planned_says_why(mem: Memory) -> None:
    mem.put_procedure(Procedure(
        name="ghost_caller", description="Haunt the ghost order house now",
        params=[Param(name="x", required=False)],
        steps=[Step(id="s1", action="procedure:ghost")]))
    found = await search(mem, {"task": "haunt the ghost order house now"})
    ghost = next(h for h in found["hits"] if h["name"] == "ghost_caller")
    assert "plan" not in ghost and ghost["plan_error"].startswith("error[not_found]")
