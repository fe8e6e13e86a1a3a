"""Setting up runs on their own (procmem.services.replay): sub-procedures, binding, reopening."""

from __future__ import annotations

from typing import Any

import pytest

from procmem.core.errors import ExecutionBusy, ReplayError, UnknownTool
from procmem.core.model import Execution, Extractor, Param, Procedure, Step
from procmem.services.replay import prepare, reopen, subprocedures
from procmem.store import open_store
from procmem.store.base import Store
from storecontract import lease_of


def calls(name: str, *actions: str) -> Procedure:
    return Procedure(name=name, steps=[Step(id=f"s{i}", action=a)
                                       for i, a in enumerate(actions, 1)])


CANCEL = Procedure(name="cancel", steps=[
    Step(id="s1", action="cancel_order",
         args={"order_id": {"$param": "order_id"}, "reason": {"$param": "reason"}})],
    params=[Param(name="order_id", schema={"type": "string"},
                  extractor=Extractor(pattern=r"#W\d+", before=r"order\s+")),
            Param(name="reason", schema={"type": "string"})])
TOOLS: dict[str, Any] = {"cancel_order": lambda **kw: "ok"}


def stored(*procs: Procedure) -> Store:
    store = open_store(":memory:")
    for p in procs:
        store.put_procedure(p)
    return store


def test_subprocedures_are_collected_through_the_tree() -> None:
    top = calls("top", "look", "procedure:mid", "procedure:gone")
    store = stored(top, calls("mid", "procedure:leaf", "procedure:top"), calls("leaf", "act"))
    assert sorted(subprocedures(store, top)) == ["leaf", "mid"]  # not itself, not the missing


def test_prepare_binds_from_the_task_and_given_params_win() -> None:
    store = stored(CANCEL)
    _, ex, subs = prepare(store, CANCEL, TOOLS, "cancel order #W123 please", {"reason": "r"})
    assert subs == {}
    assert ex.params == {"reason": "r", "order_id": "#W123"}
    assert ex.param_sources == {"reason": "given", "order_id": "task"}
    _, ex, _ = prepare(store, CANCEL, TOOLS, "cancel order #W123", {"order_id": "#W9"})
    assert ex.params == {"order_id": "#W9"} and ex.param_sources == {"order_id": "given"}
    assert store.list_executions() == []  # nothing is stored
    with pytest.raises(UnknownTool):
        prepare(store, CANCEL, {}, None, None)


def test_reopen_takes_the_lease_and_refuses_a_finished_or_busy_execution() -> None:
    store = stored(CANCEL)
    paused = Execution(procedure="cancel", version=1, status="paused", params={"reason": "r"})
    done = Execution(procedure="cancel", version=1, status="succeeded")
    store.put_execution(paused)
    store.put_execution(done)
    with pytest.raises(ReplayError, match="already succeeded"):
        reopen(store, done.id, None, TOOLS, 60)

    core, keeper = reopen(store, paused.id, {"param:order_id": "#W1"}, TOOLS, 60)
    with keeper:
        lease = lease_of(store, paused.id)
        assert lease is not None and lease[0] == keeper.owner
        with pytest.raises(ExecutionBusy):
            reopen(store, paused.id, None, TOOLS, 60)
        core.close()
    assert lease_of(store, paused.id) is None  # released by the keeper
