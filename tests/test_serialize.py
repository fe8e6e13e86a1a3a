"""One shape per record across CLI, REST and MCP (procmem.formats.serialize), the validation
message helper (procmem.formats.validation), paging (procmem.formats.paging) and the changes a
review writes (procmem.learning.changes)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from procmem.cli import main
from procmem.core.errors import InvalidTrace, NotFound, UsageError
from procmem.core.model import Evidence, Procedure, Step, Trace, TraceStep
from procmem.formats.paging import Page, aread_all_cursor, read_all, read_page
from procmem.formats.record import Recorder
from procmem.formats.serialize import (
    change_record,
    error_line,
    error_of,
    error_record,
    hit_record,
    page_record,
    report_record,
)
from procmem.formats.traceio import iter_traces
from procmem.formats.validation import first_problem, problems, validation_message
from procmem.learning.changes import Change, ReportResult, review_candidates
from procmem.learning.promote import PromotionPolicy
from procmem.learning.stats import VersionStats
from procmem.mcp import tools as mcp_tools
from procmem.memory import Memory
from procmem.rest.models import ChangeOut, ErrorResponse, HitOut, ReportOut

TASK = "Cancel order #W1234567 because no longer needed."


def cancel_traces() -> list[Trace]:
    orders = ["#W1234567", "#W7654321", "#W5550001"]
    reasons = ["no longer needed", "ordered by mistake", "no longer needed"]
    return [Trace(id=f"cancel-{i}", task=f"Cancel order {o} because {r}.", outcome="success",
                  steps=[TraceStep(action="cancel_pending_order",
                                   args={"order_id": o, "reason": r}, output="ok")])
            for i, (o, r) in enumerate(zip(orders, reasons, strict=True))]


@pytest.fixture
def mem() -> Iterator[Memory]:
    with Memory("memory.db") as m:
        m.learn(cancel_traces())
        yield m


# ------------------------------------------------------------------ hit


def test_every_surface_gives_the_same_hit_shape(mem: Memory) -> None:
    from keyed import rest_client  # REST needs the server extra; imported here only

    hits = mem.search(TASK)
    assert hits
    base = [hit_record(i, h) for i, h in enumerate(hits, start=1)]
    assert base[0]["bound"] == {"order_id": "#W1234567", "reason": "no longer needed"}
    # the CLI: search --json
    cli = CliRunner().invoke(main, ["--db", "memory.db", "search", TASK, "--json"])
    assert cli.exit_code == 0, cli.output
    assert [{k: h[k] for k in ("name", "rank", "bound", "actions")} for h in json.loads(
        cli.stdout)] == [{k: h[k] for k in ("name", "rank", "bound", "actions")} for h in base]
    assert set(json.loads(cli.stdout)[0]) == set(base[0])
    # MCP: the hit plus the tool that runs it
    mcp = mcp_tools.hit_json(1, hits[0], "cancel_pending_order")
    assert {k: v for k, v in mcp.items() if k != "tool"} == base[0]
    # REST: the hit plus the full procedure, described by HitOut
    with rest_client(mem) as client:
        rest = client.get("/search", params={"task": TASK}).json()
    assert [{k: v for k, v in h.items() if k != "procedure"} for h in rest] == \
        json.loads(json.dumps(base))
    assert rest[0]["procedure"]["name"] == base[0]["name"]
    assert set(HitOut.model_fields) == set(base[0]) | {"procedure"}
    HitOut.model_validate(dict(base[0], procedure=hits[0].procedure))


# ------------------------------------------------------------------ change and report


def test_change_and_report_records_match_the_rest_models() -> None:
    ev = Evidence(execution_id="ex_1", reward=1.0, source="test")
    changes = [Change("p", 2, "promoted", "candidate", "active", "P > 0.95"),
               Change("p", 1, "replaced", "active", "deprecated", "P > 0.95")]
    record = report_record(ReportResult(ev, changes))
    assert record["changes"][0] == {"name": "p", "version": 2, "change": "promoted",
                                    "from": "candidate", "to": "active", "reason": "P > 0.95"}
    assert record["evidence"]["execution_id"] == "ex_1"
    out = ReportOut.model_validate(record)
    assert out.model_dump(mode="json", by_alias=True) == record
    assert set(ChangeOut.model_json_schema(by_alias=True)["properties"]) == \
        set(change_record(changes[0]))


class _Statuses:
    """The part of a store a review writes: statuses by version."""

    def __init__(self, statuses: dict[int, str]) -> None:
        self.statuses = statuses

    def set_status(self, name: str, version: int, status: str) -> None:
        self.statuses[version] = status

    def get_procedure(self, name: str, version: int) -> Procedure:  # re-read before writing
        return _proc(version, self.statuses[version])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:  # a promotion writes its two statuses in one
        yield


def _proc(version: int, status: str) -> Procedure:
    return Procedure(name="p", version=version, status=status,  # type: ignore[arg-type]
                     steps=[Step(id="s1", action="a")])


@pytest.mark.parametrize(("successes", "failures", "expected"), [
    (20, 0, [(2, "promoted", "candidate", "active"), (1, "replaced", "active", "deprecated")]),
    (0, 20, [(2, "demoted", "candidate", "deprecated")]),
    (2, 0, []),  # too few judged runs to decide
])
def test_a_review_returns_exactly_the_statuses_it_wrote(
        successes: int, failures: int, expected: list[tuple[int, str, str, str]]) -> None:
    store = _Statuses({1: "active", 2: "candidate"})
    active, cand = _proc(1, "active"), _proc(2, "candidate")

    def stats_of(p: Procedure) -> VersionStats:
        ok, bad = (10, 10) if p.version == 1 else (successes, failures)
        return VersionStats(name="p", version=p.version, status=p.status,
                            successes=ok, failures=bad, alpha=1 + ok, beta=1 + bad)

    changes = review_candidates(store, active, [cand], stats_of,  # type: ignore[arg-type]
                                PromotionPolicy())
    assert [(c.version, c.change, c.from_status, c.to_status) for c in changes] == expected
    after = {1: "active", 2: "candidate"}
    after.update({c.version: c.to_status for c in changes})
    assert store.statuses == after  # nothing written that is not reported


# ------------------------------------------------------------------ error


def test_one_error_shape_and_line_for_every_kind_of_error() -> None:
    assert error_of(NotFound("procedure", "x")) == ("not_found", "procedure 'x' not found", None)
    with pytest.raises(ValidationError) as info:
        Evidence.model_validate({"execution_id": "e", "reward": 2, "source": "oracle"})
    code, message, details = error_of(info.value)
    assert code == "usage" and message.startswith("invalid Evidence: ")
    assert message.endswith("(and 1 more)") and details is not None and len(details) == 2
    assert error_of(KeyError("k")) == ("internal", "KeyError: 'k'", None)
    record = error_record("usage", "two\n  lines", details)
    assert record == {"error": {"code": "usage", "message": "two lines", "details": details}}
    assert ErrorResponse.model_validate(record).model_dump(exclude_none=True) == record
    assert "details" not in error_record("usage", "x")["error"]
    assert error_line("not_found", "no\nsuch") == "error[not_found]: no such"
    mcp = mcp_tools.error_result("usage", "bad", details)
    assert mcp.is_error and mcp.structured_content == error_record("usage", "bad", details)


# ------------------------------------------------------------------ validation messages


def test_validation_messages_name_the_field_everywhere() -> None:
    with pytest.raises(ValidationError) as info:
        TraceStep.model_validate({"args": {}, "duration_ms": "slow"})
    err = info.value
    assert [p.where for p in problems(err)] == ["action", "duration_ms"]
    assert first_problem(err).where == "action"
    assert validation_message(err, "bad step") == \
        f"bad step: action: {first_problem(err).msg} (and 1 more)"
    assert validation_message([], "nothing") == "nothing"
    assert validation_message([{"loc": (), "msg": "bad"}], "x", root="arguments") == \
        "x: arguments: bad"
    # the recorder, the MCP argument parser, trace files and evidence all say it this way
    with pytest.raises(UsageError, match=r"^bad step field: duration_ms: "), \
            Recorder("t", on_finish=lambda _: None) as rec:
        rec.add_step("a", {}, duration_ms=-1.0)
    with pytest.raises(UsageError, match=r"^bad arguments for tool 'search_procedures': task"):
        mcp_tools.parse_args(mcp_tools.SearchArgs, "search_procedures", {})
    with pytest.raises(UsageError, match=r"^bad arguments for tool 'x': arguments: "):
        mcp_tools.parse_args(mcp_tools.SearchArgs, "x", ["task"])  # type: ignore[arg-type]


def test_a_bad_trace_line_names_its_field(tmp_path: Any) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"task": "x", "steps": [{"args": {}}]}) + "\n")
    (bad,) = list(iter_traces(path))
    assert isinstance(bad, InvalidTrace) and bad.field == "steps.0.action"


def test_bad_evidence_names_the_field(mem: Memory) -> None:
    ex = mem.replay("cancel_pending_order", tools={"cancel_pending_order": dict}, task=TASK)
    with pytest.raises(UsageError, match=r"^bad evidence: source: "):
        mem.report(ex.id, reward=0.5, source="oracle")


# ------------------------------------------------------------------ paging


def test_pages_and_reading_everything() -> None:
    items = list(range(7))
    calls: list[tuple[int, int]] = []

    def fetch(limit: int, offset: int) -> list[int]:
        calls.append((limit, offset))
        return items[offset:offset + limit]

    assert read_all(fetch, page=3) == items and calls == [(3, 0), (3, 3), (3, 6)]
    assert read_all(lambda limit, offset: items[offset:offset + limit], page=7) == items
    assert read_page(fetch, limit=3, offset=3) == Page([3, 4, 5], 6)
    assert read_page(fetch, limit=3, offset=4) == Page([4, 5, 6], None)  # full, yet the last
    assert read_page(fetch, limit=5, offset=9) == Page([], None)
    assert page_record(Page([1, 2], 2)) == {"items": [1, 2], "next_offset": 2}
    with pytest.raises(ValueError, match="limit"):
        read_page(fetch, limit=0)

    async def cursor_fetch(cursor: str | None) -> tuple[list[int], str | None]:
        start = int(cursor or 0)
        return items[start:start + 3], (str(start + 3) if start + 3 < len(items) else None)

    assert asyncio.run(aread_all_cursor(cursor_fetch)) == items


def test_listing_every_procedure_reads_past_a_page(mem: Memory) -> None:
    for i in range(3):
        mem.put_procedure(Procedure(name=f"extra_{i}", steps=[Step(id="s1", action="a")]))
    names = [p.name for p in read_all(lambda limit, offset: mem.list_procedures(
        limit=limit, offset=offset), page=2)]
    assert names == sorted(names) and len(names) == 4 == len(set(names))
