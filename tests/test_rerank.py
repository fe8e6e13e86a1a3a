"""Rerankers: a language model reorders the top hits (search.rerank, Memory(reranker=...))."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fake_http import JSONHandler, serve
from keyed import rest_client
from procmem.cli import main
from procmem.core.errors import RerankError, UsageError
from procmem.core.model import Trace, TraceStep
from procmem.evaluation.evaluate import evaluate
from procmem.memory import Memory
from procmem.search.rerank import INSTRUCTIONS, OpenAIReranker, RerankOption, reranker_from_spec


def _trace(tid: str, task: str, action: str, order: str) -> Trace:
    return Trace(id=tid, task=task, steps=[TraceStep(action=action, args={"order_id": order},
                                                     output="ok")])


TRACES = [
    _trace("c1", "Cancel order #W1000001 please", "cancel_order", "#W1000001"),
    _trace("c2", "Cancel order #W1000002 please", "cancel_order", "#W1000002"),
    _trace("r1", "Return order #W2000001 please", "return_order", "#W2000001"),
    _trace("r2", "Return order #W2000002 please", "return_order", "#W2000002"),
    _trace("x1", "Exchange order #W3000001 please", "exchange_order", "#W3000001"),
]
TASK = "I won't be able to receive order #W9999999, I want a full refund"


class Scripted:
    """A reranker that answers a fixed ranking and records what it was shown."""

    model_id = "test:scripted"

    def __init__(self, ranking: list[str]) -> None:
        self.ranking = ranking
        self.calls: list[tuple[str, list[RerankOption]]] = []

    def rerank(self, task: str, options: Sequence[RerankOption]) -> list[str]:
        self.calls.append((task, list(options)))
        return self.ranking


class Failing:
    model_id = "test:failing"

    def rerank(self, task: str, options: Sequence[RerankOption]) -> list[str]:
        raise RerankError(self.model_id, "endpoint down")


def memory(tmp_path: Path, reranker: Any) -> Memory:
    mem = Memory(tmp_path / "m.db", embedder=None, reranker=reranker)
    mem.learn(TRACES)
    return mem


def test_the_reranker_orders_the_hits_it_chose_and_sees_each_procedure(tmp_path: Path) -> None:
    scripted = Scripted(["cancel_order", "nonexistent", "cancel_order", "exchange_order"])
    mem = memory(tmp_path, scripted)
    plain = [h.procedure.name for h in mem.search(TASK, rerank=False)]
    hits = mem.search(TASK)
    assert [h.procedure.name for h in hits[:2]] == ["cancel_order", "exchange_order"]
    assert hits[2].procedure.name == "return_order"  # left out: after the chosen ones
    assert [h.explanation["rerank"]["position"] for h in hits] == [1, 2, None]
    assert hits[2].confident is False
    assert set(plain) == {h.procedure.name for h in hits}
    task, options = scripted.calls[-1]
    assert task == TASK and len(scripted.calls) == 1  # rerank=False asked nothing
    cancel = next(o for o in options if o.name == "cancel_order")
    assert cancel.actions == ("cancel_order",)
    assert cancel.examples == ("Cancel order #W1000001 please", "Cancel order #W1000002 please")


def test_an_empty_answer_keeps_the_order_and_nothing_is_confident(tmp_path: Path) -> None:
    mem = memory(tmp_path, Scripted([]))
    hits = mem.search(TASK)
    assert [h.procedure.name for h in hits] == [
        h.procedure.name for h in mem.search(TASK, rerank=False)]
    assert not any(h.confident for h in hits)
    assert mem.search(TASK, confident_only=True) == []


def test_a_failing_reranker_raises_and_changes_nothing_stored(tmp_path: Path) -> None:
    mem = memory(tmp_path, Failing())
    before = mem.store.index_revision()
    with pytest.raises(RerankError, match="endpoint down"):
        mem.search(TASK)
    assert mem.store.index_revision() == before
    assert len(mem.search(TASK, rerank=False)) == 3


def test_evaluate_reports_the_reranker_and_asks_it_once_per_test_trace() -> None:
    scripted = Scripted(["return_order"])
    report = evaluate(TRACES[:4], [TRACES[4], TRACES[2]], retriever="bm25", reranker=scripted)
    assert report.reranker == "test:scripted" and len(scripted.calls) == 2
    assert report.cases[1]["top"] == "return_order"


# --- OpenAI-compatible chat endpoint, against a local fake server ------------------------


class FakeChat(JSONHandler):
    """``POST /v1/chat/completions``: the ranking ``["b", "a"]``, or a failure by ``mode``."""

    def answer(self, body: Any) -> tuple[int, bytes]:
        if self.mode == "500":
            return 500, b'{"error": "overloaded"}'
        content = {"ok": json.dumps({"ranking": ["b", "a"]}),
                   "notjson": "I think b fits best",
                   "notlist": json.dumps({"ranking": "b"})}[self.mode]
        return 200, json.dumps({"choices": [{"message": {"role": "assistant",
                                                          "content": content}}]}).encode()


@pytest.fixture()
def chat_server() -> Iterator[str]:
    with serve(FakeChat) as url:
        yield url


OPTIONS = [RerankOption("a", "does a", ("act_a",), ("x" * 1000,)), RerankOption("b", "does b")]


def test_openai_reranker_sends_the_task_and_options_and_reads_the_ranking(
        chat_server: str) -> None:
    reranker = OpenAIReranker("small-model", base_url=chat_server, api_key="k",
                              max_example_chars=50)
    assert reranker.rerank("do b", OPTIONS) == ["b", "a"]
    sent = FakeChat.requests[-1]
    assert sent["path"] == "/v1/chat/completions" and sent["authorization"] == "Bearer k"
    body = sent["body"]
    assert body["model"] == "small-model" and body["temperature"] == 0
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {"role": "system", "content": INSTRUCTIONS}
    user = json.loads(body["messages"][1]["content"])
    assert user["task"] == "do b"
    assert user["options"][0] == {"name": "a", "description": "does a", "actions": ["act_a"],
                                  "demonstrated_on": ["x" * 50]}
    assert reranker.rerank("anything", []) == [] and len(FakeChat.requests) == 1


@pytest.mark.parametrize(("mode", "message"), [
    ("500", "HTTP 500"), ("notjson", "unexpected answer"), ("notlist", "not a list of names"),
])
def test_openai_reranker_failures_are_rerank_errors(chat_server: str, mode: str,
                                                    message: str) -> None:
    FakeChat.mode = mode
    with pytest.raises(RerankError, match=message) as info:
        OpenAIReranker("m", base_url=chat_server).rerank("t", OPTIONS)
    assert info.value.code == "rerank_error" and info.value.model_id == "openai:m"


def test_openai_reranker_unreachable_and_bad_arguments() -> None:
    with pytest.raises(RerankError, match="cannot reach"):
        OpenAIReranker("m", base_url="http://127.0.0.1:9/v1", timeout_s=2).rerank("t", OPTIONS)
    with pytest.raises(UsageError, match="http:// or https://"):
        OpenAIReranker("m", base_url="ftp://x")
    with pytest.raises(UsageError, match="timeout_s"):
        OpenAIReranker("m", timeout_s=0)


def test_reranker_specs() -> None:
    assert reranker_from_spec(None) is None and reranker_from_spec(" none ") is None
    local = reranker_from_spec("openai:llama3@http://localhost:8000/v1", api_key="k")
    assert isinstance(local, OpenAIReranker)
    assert local.url == "http://localhost:8000/v1/chat/completions" and local.api_key == "k"
    assert local.model_id == "openai:llama3"
    hosted = reranker_from_spec("openai:gpt-4o-mini")
    assert isinstance(hosted, OpenAIReranker)
    assert hosted.url == "https://api.openai.com/v1/chat/completions"
    for bad in ("openai:", "claude:x", "openai:@http://x"):
        with pytest.raises(UsageError, match="unknown reranker"):
            reranker_from_spec(bad)


def test_cli_reranker_option(chat_server: str, tmp_path: Path) -> None:
    runner = CliRunner()
    db = str(tmp_path / "m.db")
    traces = tmp_path / "t.jsonl"
    traces.write_text("\n".join(t.model_dump_json() for t in TRACES) + "\n")
    assert runner.invoke(main, ["--db", db, "--embedder", "none", "learn", str(traces)]
                         ).exit_code == 0
    bad = runner.invoke(main, ["--db", db, "--reranker", "bogus", "search", "cancel"])
    assert bad.exit_code == 2 and "unknown reranker" in bad.output
    up = runner.invoke(main, ["--db", db, "--embedder", "none", "--reranker",
                              f"openai:m@{chat_server}", "search", "cancel order"])
    assert up.exit_code == 0, up.output  # the fake answers names this memory does not have
    assert "reranker openai:m: left out" in " ".join(up.output.split())
    FakeChat.mode = "500"
    down = runner.invoke(main, ["--db", db, "--embedder", "none", "--reranker",
                                f"openai:m@{chat_server}", "search", "cancel order"])
    assert down.exit_code == 5 and "reranker 'openai:m' failed: HTTP 500" in down.output


def test_rest_search_runs_the_server_s_reranker_unless_asked_not_to(tmp_path: Path) -> None:


    scripted = Scripted(["exchange_order"])
    mem = memory(tmp_path, scripted)
    with rest_client(mem) as client:
        top = client.get("/search", params={"task": TASK}).json()[0]
        plain = client.get("/search", params={"task": TASK, "rerank": "false"}).json()
    assert top["name"] == top["procedure"]["name"] == "exchange_order"
    assert top["rerank"] == {"model": "test:scripted", "position": 1}
    assert plain[0]["rerank"] is None and len(scripted.calls) == 1
    (tmp_path / "f").mkdir()
    failing = memory(tmp_path / "f", Failing())
    with rest_client(failing) as client:
        down = client.get("/search", params={"task": TASK})
    assert down.status_code == 503 and down.json()["error"]["code"] == "rerank_error"
