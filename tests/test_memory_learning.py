"""Learning over time through Memory: evidence, repair candidates, verification,
Thompson sampling, promotion, rollback, history, pins, decay, deletion."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from procmem.core.errors import NotFound
from procmem.core.model import Procedure, utcnow
from procmem.learning.changes import Change, apply_decision
from procmem.learning.promote import PromotionPolicy
from procmem.memory import Memory
from shipping import ship_trace


class World:
    """charge_card fails above 100 once ``drifted``; charge_wallet always works."""

    def __init__(self) -> None:
        self.drifted = False
        self.calls: list[str] = []

    def tools(self) -> dict[str, Any]:
        def charge_card(order_id: str, amount: int) -> str:
            self.calls.append("charge_card")
            if self.drifted and amount > 100:
                raise RuntimeError("card declined")
            return json.dumps({"charged": amount})

        def charge_wallet(order_id: str, amount: int) -> str:
            self.calls.append("charge_wallet")
            return json.dumps({"charged": amount, "via": "wallet"})

        def ship(order_id: str) -> str:
            self.calls.append("ship")
            return json.dumps({"shipped": order_id})

        return {"charge_card": charge_card, "charge_wallet": charge_wallet, "ship": ship}


@pytest.fixture
def mem() -> Iterator[Memory]:
    policy = PromotionPolicy(threshold=0.95, min_runs=5)
    with Memory("memory.db", policy=policy, seed=7) as m:
        m.learn([ship_trace(i) for i in range(3)])
        yield m


NAME = "charge_card-then-ship"


def fail_and_recover(mem: Memory, world: World, order: str, amount: int) -> str:
    task = f"Ship order {order} paying {amount} dollars."
    ex = mem.replay(NAME, tools=world.tools(), task=task)
    assert ex.status == "failed"
    mem.report(ex.id, reward=0.0, source="environment")
    with mem.record(task, metadata={"recovers": ex.id}) as rec:
        tools = rec.wrap_tools(world.tools())
        tools["charge_wallet"](order_id=order, amount=amount)
        tools["ship"](order_id=order)
    return ex.id


def test_a_recovered_failure_becomes_a_verified_repair_candidate(mem: Memory) -> None:
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    report = mem.optimize(NAME)
    repairs = [c for c in report.created if c["kind"] == "repair"]
    assert len(repairs) == 1 and repairs[0]["version"] == 2
    cand = mem.store.get_procedure(NAME, 2)
    assert cand.status == "candidate"
    assert [s.action for s in cand.steps] == ["charge_wallet", "ship"]
    record = mem.store.get_verification(NAME, 2)
    assert record is not None and record["ok"] and record["reproduced"]
    assert mem.get_procedure(NAME).version == 1  # the candidate is not current yet
    assert mem.optimize(NAME).created == []  # not proposed twice


def test_thompson_sampling_then_promotion_on_evidence(mem: Memory) -> None:
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    mem.optimize(NAME)
    ran: list[int] = []
    changed: list[list[Change]] = []
    for i in range(40):
        if mem.get_procedure(NAME).version == 2:
            break
        task = f"Ship order #O3{i:03d} paying 150 dollars."
        ex = mem.replay(NAME, tools=world.tools(), task=task)
        ran.append(ex.version)
        result = mem.report(ex.id, reward=1.0 if ex.status == "succeeded" else 0.0,
                            source="environment")
        assert result.evidence.execution_id == ex.id
        changed.append(result.changes)
    assert 2 in ran and 1 in ran  # both competed
    # the report that promoted says so (and only that one): the status diff, from report()
    assert all(c == [] for c in changed[:-1])
    assert [(c.version, c.change, c.from_status, c.to_status) for c in changed[-1]] == [
        (2, "promoted", "candidate", "active"), (1, "replaced", "active", "deprecated")]
    assert "P(v2 better than v1)" in changed[-1][0].reason
    current = mem.get_procedure(NAME)
    assert current.version == 2 and current.status == "active"
    assert mem.store.get_procedure(NAME, 1).status == "deprecated"
    history = mem.history(NAME)
    assert [h["version"] for h in history] == [1, 2]
    assert history[1]["current"] and history[1]["reason"].startswith("repair")
    assert any(line.startswith("+ ") and "charge_wallet" in line for line in mem.diff(NAME, 1, 2))


def test_agent_evidence_alone_never_promotes(mem: Memory) -> None:
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    mem.optimize(NAME)
    cand = mem.store.get_procedure(NAME, 2)
    for i in range(30):
        task = f"Ship order #O4{i:03d} paying 150 dollars."
        ex = mem.replay(cand, tools=world.tools(), task=task)
        mem.report(ex.id, reward=1.0, source="agent")
    assert mem.review(NAME) == []
    assert mem.get_procedure(NAME).version == 1


def test_an_unverified_candidate_never_competes_nor_is_promoted(mem: Memory) -> None:
    base = mem.store.get_procedure(NAME)
    unverified = base.model_copy(update={"version": 2, "status": "candidate",
                                         "description": "hand-made, never verified"})
    mem.store.put_procedure(unverified)
    world = World()
    for i in range(20):
        ex = mem.replay(unverified, tools=world.tools(),
                        task=f"Ship order #O5{i:03d} paying 50 dollars.")
        mem.report(ex.id, reward=1.0, source="environment")
    assert mem.review(NAME) == []
    assert all(mem.choose_version(NAME).version == 1 for _ in range(20))
    assert mem.store.get_procedure(NAME, 2).status == "candidate"


def test_rollback_restores_the_exact_earlier_version(mem: Memory) -> None:
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    mem.optimize(NAME)
    mem.store.set_status(NAME, 2, "active")  # as if promoted
    assert mem.get_procedure(NAME).version == 2
    restored = mem.rollback(NAME, 1)
    assert restored.version == 3 and mem.get_procedure(NAME).version == 3
    v1 = mem.store.get_procedure(NAME, 1)
    assert restored.steps == v1.steps and restored.params == v1.params
    assert restored.lineage.parent_version == 1
    with pytest.raises(NotFound):
        mem.rollback(NAME, 9)


def test_stats_flags_failing_steps_and_pins_exempt_from_decay(mem: Memory) -> None:
    world = World()
    world.drifted = True
    for i in range(4):
        task = f"Ship order #O6{i:03d} paying 500 dollars."
        ex = mem.replay(NAME, tools=world.tools(), task=task)
        assert ex.status == "failed"
    (st,) = mem.stats(NAME)
    assert st.runs == 4 and st.failures == 4
    charge = st.steps[0]
    assert charge.failures == 4 and charge.errors == {"RuntimeError": 4}
    assert "failing" in charge.flags
    later = utcnow() + timedelta(days=365)
    mem.pin(NAME)
    assert mem.decay(now=later) == []
    mem.pin(NAME, False)
    assert [d["name"] for d in mem.decay(now=later)] == [NAME]
    assert mem.search("Ship order #O1 paying 5 dollars.") == []  # deprecated: out of search
    assert mem.store.get_procedure(NAME, 1).status == "deprecated"  # not deleted


def test_delete_is_explicit_and_keeps_executions(mem: Memory) -> None:
    world = World()
    ex = mem.replay(NAME, tools=world.tools(), task="Ship order #O7001 paying 20 dollars.")
    assert mem.delete_procedure(NAME) is True
    assert mem.find_procedure(NAME) is None
    assert mem.get_execution(ex.id).procedure == NAME
    assert mem.delete_procedure(NAME) is False


def test_merge_candidate_for_a_near_duplicate(mem: Memory) -> None:
    base = mem.store.get_procedure(NAME)
    twin = base.model_copy(update={"name": "ship_it", "version": 1})
    mem.put_procedure(Procedure.model_validate(twin.model_dump(by_alias=True)))
    report = mem.optimize()
    merged = [c for c in report.created if c["kind"] == "merge"]
    assert len(merged) == 1
    winner = merged[0]["name"]
    assert winner in (NAME, "ship_it") and merged[0]["status"] == "active"
    loser = "ship_it" if winner == NAME else NAME
    assert mem.find_procedure(loser) is not None
    assert mem.store.get_procedure(loser).status == "deprecated"
    assert [h.procedure.name for h in mem.search("Ship order #O9 paying 5 dollars.")] == [winner]
    assert mem.optimize().created == []


def test_learning_ignores_recovery_traces_and_evolved_procedures(mem: Memory) -> None:
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    report = mem.learn()
    assert report.created == [] and report.updated == []  # the recovery tail is no demo
    mem.optimize(NAME)
    mem.store.set_status(NAME, 2, "active")  # the repaired version is current
    mem.add_traces([ship_trace(9, "#O1009", 30)])  # a new demo of the old way
    report = mem.learn()
    assert NAME in report.unchanged and report.created == []
    assert mem.get_procedure(NAME).version == 2


def test_a_demoted_candidate_leaves_the_active_version_current(mem: Memory) -> None:
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    mem.optimize(NAME)
    cand = mem.store.get_procedure(NAME, 2)
    base = mem.store.get_procedure(NAME, 1)
    for i in range(12):  # the candidate keeps failing, the active keeps succeeding
        ex = mem.replay(cand, tools={**world.tools(), "charge_wallet": _broken},
                        task=f"Ship order #O8{i:03d} paying 50 dollars.")
        mem.report(ex.id, reward=0.0, source="environment")
        ex = mem.replay(base, tools=world.tools(), task=f"Ship order #O9{i:03d} paying 50 dollars.")
        mem.report(ex.id, reward=1.0, source="environment")
    assert mem.store.get_procedure(NAME, 2).status == "deprecated"
    assert mem.get_procedure(NAME).version == 1
    assert [h.procedure.name for h in mem.search("Ship order #O1 paying 5 dollars.")] == [NAME]


def _broken(**_: Any) -> str:
    raise RuntimeError("wallet down")


def test_a_decision_taken_on_stale_statuses_writes_nothing(mem: Memory) -> None:
    """Two processes decide on the same reads (two reports at once): one writes the
    promotion and says so, the other finds the statuses moved and changes nothing."""
    world = World()
    world.drifted = True
    fail_and_recover(mem, world, "#O2001", 150)
    mem.optimize(NAME)
    active, cand = mem.store.get_procedure(NAME, 1), mem.store.get_procedure(NAME, 2)
    first = apply_decision(mem.store, NAME, active, cand, "promote", "first")
    assert [c.change for c in first] == ["promoted", "replaced"]
    assert apply_decision(mem.store, NAME, active, cand, "promote", "second") == []
    assert apply_decision(mem.store, NAME, active, cand, "demote", "late") == []
    assert [p.status for p in mem.list_versions(NAME)] == ["deprecated", "active"]
