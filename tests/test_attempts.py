"""Step runs keep every try, and each tool call carries an idempotency key.

(procmem.core.replay, procmem.core.drivers, procmem.learning.stats)
"""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from typing import Any

import pytest

from procmem.core.drivers import accepts_idempotency_key, adrive, drive, idempotency_key
from procmem.core.model import CallStarted, Execution, OnError, Procedure, Step
from procmem.core.replay import replay_core
from procmem.core.template import param
from procmem.memory import Memory

PAY = Procedure(name="pay", steps=[Step(id="s1", action="charge"),
                                   Step(id="s2", action="notify")])


def new_ex(procedure: Procedure, **params: Any) -> Execution:
    return Execution(procedure=procedure.name, version=procedure.version, params=params)


def test_a_failed_attempt_survives_a_successful_resume_in_the_record_and_in_stats(
        tmp_path: Path) -> None:
    mem = Memory(tmp_path / "m.db", embedder=None)
    mem.put_procedure(PAY)
    up, charged = {"mail": False}, []

    def notify() -> str:
        if not up["mail"]:
            raise ConnectionError("mail server down")
        return "sent"

    tools = {"charge": lambda: charged.append(1) or "charged", "notify": notify}
    ex = mem.replay("pay", tools=tools)
    assert ex.status == "failed"
    up["mail"] = True
    assert mem.resume(ex.id, tools=tools).status == "succeeded"

    stored = mem.get_execution(ex.id)
    assert stored.status == "succeeded" and len(charged) == 1  # s1 was not called again
    run = stored.step_runs[1]
    assert (run.status, run.attempt, run.attempts, run.error) == ("succeeded", 2, 2, None)
    assert [(a.attempt, a.status, a.error) for a in run.history] == \
        [(1, "failed", "ConnectionError: mail server down")]
    assert stored.duration_ms == pytest.approx(sum(r.total_ms for r in stored.step_runs))

    stats = mem.version_stats("pay")
    s1, s2 = stats.steps
    assert (s1.runs, s1.successes, s1.failures) == (1, 1, 0)
    assert (s2.runs, s2.successes, s2.failures) == (2, 1, 1)
    assert s2.errors == {"ConnectionError": 1}
    assert stats.failed_attempts == 1 and stats.runs == 1


def test_retries_keep_each_failed_try_and_number_them() -> None:
    tries: list[str] = []

    def flaky(idempotency_key: str) -> str:
        tries.append(idempotency_key)
        if len(tries) < 3:
            raise TimeoutError(f"try {len(tries)}")
        return "ok"

    pr = Procedure(name="p", steps=[Step(id="s1", action="f",
                                         on_error=OnError(policy="retry", retries=3))])
    stored: list[tuple[str, int]] = []
    ex = new_ex(pr)
    ex = drive(replay_core(pr, ex, {}), {"f": flaky},
               persist=lambda e, r: stored.append((r.status, r.attempt)) if r else None)
    assert tries == [f"{ex.id}/s1/{n}" for n in (1, 2, 3)]  # a retry is a new key
    run = ex.step_runs[0]
    assert (run.status, run.attempt, run.attempts) == ("succeeded", 3, 3)
    assert [(a.attempt, a.status, a.error) for a in run.history] == \
        [(1, "failed", "TimeoutError: try 1"), (2, "failed", "TimeoutError: try 2")]
    # every failed try is stored before the next one is sent
    assert stored == [("failed", 1), ("failed", 2), ("succeeded", 3)]


def test_the_idempotency_key_reaches_a_tool_that_declares_it_and_no_other() -> None:
    seen: dict[str, dict[str, Any]] = {}

    def declares(order_id: str, idempotency_key: str = "") -> str:
        seen["declares"] = {"order_id": order_id, "idempotency_key": idempotency_key}
        return "ok"

    def keyword_only(*, idempotency_key: str) -> str:
        seen["keyword_only"] = {"idempotency_key": idempotency_key}
        return "ok"

    def plain(order_id: str) -> str:
        seen["plain"] = {"order_id": order_id}
        return "ok"

    def catch_all(**kwargs: Any) -> str:
        seen["catch_all"] = kwargs
        return "ok"

    pr = Procedure(name="p", steps=[
        Step(id="a", action="declares", args={"order_id": "#W1"}),
        Step(id="b", action="keyword_only"),
        Step(id="c", action="plain", args={"order_id": "#W1"}),
        Step(id="d", action="catch_all", args={"x": 1})])
    tools = {"declares": declares, "keyword_only": keyword_only, "plain": plain,
             "catch_all": catch_all}
    ex = drive(replay_core(pr, new_ex(pr), {}), tools)
    assert ex.status == "succeeded"
    assert seen == {
        "declares": {"order_id": "#W1", "idempotency_key": f"{ex.id}/a/1"},
        "keyword_only": {"idempotency_key": f"{ex.id}/b/1"},
        "plain": {"order_id": "#W1"},  # an existing tool keeps working unchanged
        "catch_all": {"x": 1},  # **kwargs does not declare it
    }
    assert all(r.args == s.args for r, s in zip(ex.step_runs, pr.steps, strict=True))


def test_async_driver_passes_the_same_keys() -> None:
    keys: list[tuple[str, str]] = []

    async def charge(amount: int, idempotency_key: str) -> int:
        keys.append(("async", idempotency_key))
        return amount

    def notify(idempotency_key: str) -> str:
        keys.append(("sync", idempotency_key))
        return "sent"

    pr = Procedure(name="p", steps=[Step(id="s1", action="charge", args={"amount": 3}),
                                    Step(id="s2", action="notify")])
    ex = asyncio.run(adrive(replay_core(pr, new_ex(pr), {}),
                            {"charge": charge, "notify": notify}))
    assert ex.status == "succeeded"
    assert keys == [("async", f"{ex.id}/s1/1"), ("sync", f"{ex.id}/s2/1")]


def test_which_callables_declare_the_key() -> None:
    class Tool:
        def __call__(self, x: int, idempotency_key: str) -> None: ...

    def positional_only(idempotency_key: str, /) -> None: ...

    def f(x: int, idempotency_key: str) -> None: ...

    assert accepts_idempotency_key(Tool())
    assert accepts_idempotency_key(functools.partial(f, 1))
    assert not accepts_idempotency_key(positional_only)  # cannot be passed by keyword
    assert not accepts_idempotency_key(len)  # no readable signature named so
    assert not accepts_idempotency_key(lambda **kw: None)
    assert idempotency_key("ex_1", "s2", 3) == "ex_1/s2/3"


def test_an_open_call_is_repeated_with_its_key_only_when_its_args_are_the_same() -> None:
    pr = Procedure(name="p", steps=[Step(id="s1", action="charge",
                                         args={"amount": param("amount")})],
                   params=[{"name": "amount", "schema": {"type": "integer"}}])
    keys: list[str] = []

    def charge(amount: int, idempotency_key: str) -> int:
        keys.append(idempotency_key)
        return amount

    for amount, expected in ((5, 1), (6, 2)):
        ex = new_ex(pr, amount=amount)
        ex.in_flight = CallStarted(index=0, step_id="s1", action="charge", attempt=1,
                                   args={"amount": 5})  # a run stopped after sending it
        ex = drive(replay_core(pr, ex, {}), {"charge": charge})
        run = ex.step_runs[0]
        assert [(a.attempt, a.status, a.args) for a in run.history] == \
            [(1, "unknown", {"amount": 5})]
        assert run.attempt == expected and keys[-1] == f"{ex.id}/s1/{expected}"
        assert ex.in_flight is None


def test_a_stale_in_flight_marker_is_not_an_unknown_call() -> None:
    ex = drive(replay_core(PAY, new_ex(PAY), {}),
               {"charge": lambda: "c", "notify": lambda: 1 / 0})
    assert ex.status == "failed"
    # s2's call was stored as started and then finished: a resume starts a new try
    ex.in_flight = CallStarted(index=1, step_id="s2", action="notify", attempt=1)
    ex = drive(replay_core(PAY, ex, {}), {"charge": lambda: "c", "notify": lambda: "sent"})
    assert [(a.attempt, a.status) for a in ex.step_runs[1].history] == [(1, "failed")]
    assert ex.step_runs[1].attempt == 2


def test_an_ask_answer_keeps_the_failed_try() -> None:
    def boom() -> None:
        raise RuntimeError("gone")

    pr = Procedure(name="p", steps=[Step(id="s1", action="a", on_error=OnError(policy="ask"))])
    ex = drive(replay_core(pr, new_ex(pr), {}), {"a": boom})
    assert ex.status == "paused"
    ex.answers["error:s1"] = "manual"
    ex = drive(replay_core(pr, ex, {}), {"a": boom})
    run = ex.step_runs[0]
    assert (run.status, run.output, run.sources) == ("succeeded", "manual", {"": "ask"})
    assert [(a.status, a.error) for a in run.history] == [("failed", "RuntimeError: gone")]
