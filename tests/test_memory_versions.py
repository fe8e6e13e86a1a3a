"""Storing and reading procedure versions on their own (procmem.services.versions)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

import procmem.services.versions as mv
from procmem.core.errors import InvalidProcedure
from procmem.core.model import Execution, Extractor, Param, Procedure, Step
from procmem.store import open_store


def proc(reason: str = "no longer needed", **kw: Any) -> Procedure:
    return Procedure(name="cancel", steps=[
        Step(id="s1", action="cancel_order", args={"order_id": {"$param": "order_id"},
                                                   "reason": reason})],
        params=[Param(name="order_id", schema={"type": "string"})], **kw)


def test_paged_reads_every_page(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mv, "PAGE", 3)
    rows = list(range(10))
    calls: list[tuple[int, int]] = []

    def fetch(limit: int, offset: int) -> list[int]:
        calls.append((limit, offset))
        return rows[offset:offset + limit]

    assert mv.paged(fetch) == rows
    assert calls == [(3, 0), (3, 3), (3, 6), (3, 9)]


def test_put_version_numbers_by_content() -> None:
    store = open_store(":memory:")
    assert mv.versions(store, "cancel") == []
    first = mv.put_version(store, proc())
    assert first.version == 1
    again = mv.put_version(store, proc(status="candidate", version=7))  # same content
    assert again == first and len(mv.versions(store, "cancel")) == 1
    second = mv.put_version(store, proc(reason="ordered by mistake"))
    assert second.version == 2
    assert [p.version for p in mv.versions(store, "cancel")] == [1, 2]
    assert not mv.same_content(first, second)


def test_check_procedure_names_a_bad_extractor() -> None:
    bad = proc().model_copy(update={"params": [
        Param(name="order_id", schema={"type": "string"}, extractor=Extractor(pattern="(["))]})
    with pytest.raises(InvalidProcedure, match="order_id"):
        mv.check_procedure(bad)
    mv.check_procedure(proc())  # a valid one passes


def test_with_stats_derives_from_top_level_runs_of_the_version() -> None:
    store = open_store(":memory:")
    stored = mv.put_version(store, proc())
    assert mv.with_stats(store, [stored]) == [stored]  # never ran
    assert mv.with_stats(store, [stored])[0].execution_count == 0
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    runs = [
        Execution(procedure="cancel", version=1, status="succeeded", duration_ms=10.0,
                  started_at=t0),
        Execution(procedure="cancel", version=1, status="failed", duration_ms=30.0,
                  started_at=t0.replace(hour=2)),
        Execution(procedure="cancel", version=1, status="running", started_at=t0.replace(hour=3)),
        Execution(procedure="cancel", version=1, status="succeeded", parent_id="x",
                  started_at=t0.replace(hour=4)),  # a child run: not counted
        Execution(procedure="cancel", version=2, status="succeeded",
                  started_at=t0.replace(hour=5)),  # another version: not counted
    ]
    for ex in runs:
        store.put_execution(ex)
    got, other = mv.with_stats(store, [stored, stored.model_copy(update={"version": 2})])
    assert other.execution_count == 1 and other.success_rate == 1.0  # each version its own
    assert got.execution_count == 3
    assert got.success_rate == 0.5
    assert got.avg_duration_ms == 20.0
    assert got.last_executed_at == t0.replace(hour=3)
