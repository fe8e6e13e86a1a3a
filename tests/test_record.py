"""Tests for procmem.formats.record: redaction and the Recorder (sync and async)."""

from __future__ import annotations

import asyncio
import inspect
import json
import threading
from typing import Any

import pytest

from procmem.core.errors import UsageError
from procmem.core.model import Trace
from procmem.formats.record import REDACTED, Recorder, redact

# ------------------------------------------------------------------ redaction

SECRETS = {
    "bearer": ("Authorization: Bearer abc.DEF-123_xyz==",
               "Authorization: Bearer [REDACTED:bearer]"),
    "openai": ("key=sk-proj-abcdefghijklmnopqrstuvwxyz012345 ok", "key=[REDACTED:api_key] ok"),
    "anthropic": ("sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789", "[REDACTED:api_key]"),
    "aws": ("aws id AKIAIOSFODNN7EXAMPLE here", "aws id [REDACTED:aws_key] here"),
    "github_classic": ("token ghp_" + "a1B2" * 9, "token [REDACTED:github_token]"),
    "github_pat": ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                   "[REDACTED:github_token]"),
    "jwt": (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.SflKxwRJSMeKKF2QT4fwpM end",
        "jwt [REDACTED:jwt] end",
    ),
    "pem": (
        "k=-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc=\n-----END RSA PRIVATE KEY-----;",
        "k=[REDACTED:private_key];",
    ),
}


@pytest.mark.parametrize("kind", sorted(SECRETS))
def test_redact_each_secret_kind_in_text(kind: str) -> None:
    text, expected = SECRETS[kind]
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "#W6067464",
        "credit_card_4190576",
        "omar.anderson3203@example.com",
        "gift_card_7245904 and paypal_8049766",
        "the bearer of bad news",
        "ask-me-anything task-abcdefghijklmnopqrstuvwxyz0123",
        '{"order_id": "#W6067464", "user_id": "omar_anderson_3203"}',
    ],
)
def test_redact_leaves_ordinary_values_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize(
    "key",
    ["password", "DB_PASSWORD", "passwd", "client_secret", "access_token", "X-Auth-Token",
     "api_key", "apiKey", "Authorization", "Cookie", "session_id", "private_key", "credentials"],
)  # fmt: skip
def test_redact_secret_keys_case_insensitive_substring(key: str) -> None:
    assert redact({key: "hunter2", "order_id": "#W1"}) == {key: REDACTED, "order_id": "#W1"}


def test_redact_keeps_benign_keys_that_contain_a_key_word() -> None:
    value = {"max_tokens": 100, "author": "Ann", "order_id": "#W1", "email": "a@b.com"}
    assert redact(value) == value


def test_redact_custom_keys() -> None:
    assert redact({"pin": "1234", "password": "x"}, keys=("pin",)) == {
        "pin": REDACTED,
        "password": "x",
    }


def test_redact_nested_structures_and_no_mutation() -> None:
    original: dict[str, Any] = {
        "headers": {"Authorization": "Bearer abcdef123456"},
        "items": [{"note": "use sk-abcdefghijklmnopqrstuvwx1234", "id": "#W1"}],
        "pair": ("AKIAIOSFODNN7EXAMPLE", 3),
        "count": 2,
    }
    before = json.loads(json.dumps(original))
    out = redact(original)
    assert out == {
        "headers": {"Authorization": REDACTED},
        "items": [{"note": "use [REDACTED:api_key]", "id": "#W1"}],
        "pair": ("[REDACTED:aws_key]", 3),
        "count": 2,
    }
    assert json.loads(json.dumps(original)) == before  # input untouched
    assert out["items"] is not original["items"]


def test_redact_json_text_outputs() -> None:
    text = json.dumps({"user": "u1", "api_token": "abc", "note": "Bearer tok_123456789"})
    out = redact(text)
    assert json.loads(out) == {"user": "u1", "api_token": REDACTED,
                               "note": "Bearer [REDACTED:bearer]"}
    clean = '{"a":  1, "b": [1,2]}'  # unusual spacing survives when there is no secret
    assert redact(clean) == clean


# ------------------------------------------------------------------- recorder


def get_order(order_id: str, verbose: bool = False) -> dict[str, Any]:
    return {"order_id": order_id, "status": "pending", "verbose": verbose}


def cancel(order_id: str, reason: str) -> str:
    raise ValueError(f"order {order_id} is not pending")


class Collector:
    def __init__(self) -> None:
        self.traces: list[Trace] = []

    def __call__(self, trace: Trace) -> None:
        self.traces.append(trace)


def test_recorder_records_positional_and_keyword_args_and_outputs() -> None:
    sink = Collector()
    with Recorder("look up #W1", on_finish=sink, source="test", metadata={"k": 1}) as rec:
        lookup = rec.wrap(get_order)
        assert lookup("#W1") == {"order_id": "#W1", "status": "pending", "verbose": False}
        lookup(order_id="#W2", verbose=True)
        assert sink.traces == []  # nothing delivered before exit
    assert len(sink.traces) == 1 and rec.trace is sink.traces[0]
    trace = rec.trace
    assert trace.task == "look up #W1" and trace.source == "test" and trace.metadata == {"k": 1}
    assert [s.action for s in trace.steps] == ["get_order", "get_order"]
    assert trace.steps[0].args == {"order_id": "#W1"}  # defaults are not filled in
    assert trace.steps[1].args == {"order_id": "#W2", "verbose": True}
    assert trace.steps[1].output == {"order_id": "#W2", "status": "pending", "verbose": True}
    assert all(s.duration_ms is not None and s.duration_ms >= 0 for s in trace.steps)
    assert trace.outcome == "success"  # the documented default


def test_wrapper_keeps_signature_and_name() -> None:
    with Recorder("t", on_finish=Collector()) as rec:
        wrapped = rec.wrap(get_order)
        assert wrapped.__name__ == "get_order"
        assert inspect.signature(wrapped) == inspect.signature(get_order)


def test_tool_exception_is_recorded_and_reraised() -> None:
    sink = Collector()
    with Recorder("cancel #W9", on_finish=sink) as rec:
        tools = rec.wrap_tools({"cancel_pending_order": cancel})
        with pytest.raises(ValueError, match="not pending"):
            tools["cancel_pending_order"]("#W9", reason="no longer needed")
    (step,) = sink.traces[0].steps
    assert step.action == "cancel_pending_order"
    assert step.args == {"order_id": "#W9", "reason": "no longer needed"}
    assert step.error == "ValueError: order #W9 is not pending" and step.output is None
    assert sink.traces[0].outcome == "success"  # the block itself ended normally


def test_block_exception_gives_failure_and_propagates() -> None:
    sink = Collector()
    with pytest.raises(RuntimeError, match="boom"):
        with Recorder("t", on_finish=sink) as rec:
            rec.outcome = "success"
            rec.wrap(get_order)("#W1")
            raise RuntimeError("boom")
    assert len(sink.traces) == 1
    assert sink.traces[0].outcome == "failure" and len(sink.traces[0].steps) == 1


def test_outcome_reward_and_validation() -> None:
    sink = Collector()
    with Recorder("t", on_finish=sink) as rec:
        rec.outcome, rec.reward = "unknown", 0.25
        rec.metadata["run"] = 7
        with pytest.raises(UsageError):
            rec.outcome = "great"  # type: ignore[assignment]
        with pytest.raises(UsageError):
            rec.reward = 1.5
    assert (sink.traces[0].outcome, sink.traces[0].reward) == ("unknown", 0.25)
    assert sink.traces[0].metadata == {"run": 7}


def test_use_after_exit_or_before_enter_raises_usage_error() -> None:
    calls: list[str] = []

    def tool(x: str) -> str:
        calls.append(x)
        return x

    rec = Recorder("t", on_finish=Collector())
    wrapped = rec.wrap(tool)
    with pytest.raises(UsageError):
        wrapped("early")
    with rec:
        wrapped("inside")
    with pytest.raises(UsageError):
        wrapped("late")
    with pytest.raises(UsageError):
        rec.add_step("tool", {"x": "late"})
    with pytest.raises(UsageError):
        rec.__enter__()
    assert calls == ["inside"]  # the tool was not called outside the block
    assert rec.trace is not None and len(rec.trace.steps) == 1


def test_add_step_and_non_json_output() -> None:
    sink = Collector()

    class Opaque:
        def __str__(self) -> str:
            return "<opaque>"

    with Recorder("t", on_finish=sink) as rec:
        rec.add_step("mcp_tool", {"q": "x"}, output={"ok": True}, duration_ms=3.5)
        rec.add_step("mcp_tool", {"q": "y"}, error="Timeout: 5s")
        rec.wrap(lambda: Opaque(), name="make")()
        with pytest.raises(UsageError):
            rec.add_step("", {})
        with pytest.raises(UsageError):
            rec.add_step("x", {}, duration_ms=-1)
    steps = sink.traces[0].steps
    assert [(s.action, s.output, s.error) for s in steps] == [
        ("mcp_tool", {"ok": True}, None),
        ("mcp_tool", None, "Timeout: 5s"),
        ("make", "<opaque>", None),
    ]
    assert steps[0].duration_ms == 3.5
    Trace.model_validate_json(sink.traces[0].model_dump_json())  # serializable


def test_recorder_redacts_args_outputs_errors() -> None:
    def login(user: str, password: str) -> str:
        return json.dumps({"session": "s3cr3t", "note": "Bearer abcdef123456"})

    def fail(key: str) -> None:
        raise PermissionError(f"bad key {key}")

    sink = Collector()
    with Recorder("log in", on_finish=sink) as rec:
        rec.wrap(login)("ann", "hunter2")
        with pytest.raises(PermissionError):
            rec.wrap(fail)("sk-abcdefghijklmnopqrstuvwxyz1234")
    login_step, fail_step = sink.traces[0].steps
    assert login_step.args == {"user": "ann", "password": REDACTED}
    assert json.loads(login_step.output) == {"session": REDACTED,
                                             "note": "Bearer [REDACTED:bearer]"}
    assert fail_step.args == {"key": "[REDACTED:api_key]"}
    assert fail_step.error.startswith("PermissionError: bad key [REDACTED:")
    raw = Collector()
    with Recorder("log in", on_finish=raw, redact_secrets=False) as rec:
        rec.wrap(login)("ann", "hunter2")
    assert raw.traces[0].steps[0].args["password"] == "hunter2"


def test_thread_safe_appends() -> None:
    sink = Collector()
    with Recorder("t", on_finish=sink) as rec:
        tool = rec.wrap(get_order)
        threads = [
            threading.Thread(target=lambda i=i: [tool(f"#W{i}-{j}") for j in range(50)])
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(sink.traces[0].steps) == 400
    assert len({s.args["order_id"] for s in sink.traces[0].steps}) == 400


def test_on_finish_failure_does_not_hide_block_exception() -> None:
    def broken(trace: Trace) -> None:
        raise OSError("disk full")

    with pytest.raises(KeyError) as info:
        with Recorder("t", on_finish=broken):
            raise KeyError("x")
    assert any("disk full" in note for note in getattr(info.value, "__notes__", []))
    with pytest.raises(OSError, match="disk full"):
        with Recorder("t", on_finish=broken):
            pass


# ---------------------------------------------------------------------- async


def test_async_recorder_and_async_tools() -> None:
    sink = Collector()

    async def fetch(order_id: str, *, delay_s: float = 0.0) -> dict[str, str]:
        await asyncio.sleep(delay_s)
        return {"order_id": order_id}

    async def explode(order_id: str) -> None:
        raise LookupError(order_id)

    async def main() -> Recorder:
        async with Recorder("async", on_finish=sink) as rec:
            f = rec.wrap(fetch)
            assert inspect.iscoroutinefunction(f)
            assert await f("#W1", delay_s=0.01) == {"order_id": "#W1"}
            with pytest.raises(LookupError):
                await rec.wrap(explode)("#W2")
        with pytest.raises(UsageError):
            await f("#W3")
        return rec

    rec = asyncio.run(main())
    assert sink.traces == [rec.trace]
    ok, bad = sink.traces[0].steps
    assert ok.args == {"order_id": "#W1", "delay_s": 0.01} and ok.output == {"order_id": "#W1"}
    assert ok.duration_ms is not None and ok.duration_ms >= 5
    assert bad.error == "LookupError: #W2" and sink.traces[0].outcome == "success"


def test_async_block_exception_and_awaitable_on_finish() -> None:
    saved: list[Trace] = []

    async def save(trace: Trace) -> None:
        await asyncio.sleep(0)
        saved.append(trace)

    async def main() -> None:
        async with Recorder("ok", on_finish=save):
            pass
        with pytest.raises(ValueError):
            async with Recorder("bad", on_finish=save):
                raise ValueError("x")

    asyncio.run(main())
    assert [(t.task, t.outcome) for t in saved] == [("ok", "success"), ("bad", "failure")]
    with pytest.raises(UsageError, match="async with"):
        with Recorder("sync", on_finish=save):
            pass
