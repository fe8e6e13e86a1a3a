"""Hybrid search through Memory: vectors stored once per text, retrievers, filters, abstention."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedders import CountingEmbedder
from procmem.core.errors import UsageError
from procmem.core.model import Procedure, Step, Trace, TraceStep
from procmem.core.texthash import text_hash
from procmem.memory import Memory
from procmem.search.embed import MiniLMEmbedder, default_embedder
from procmem.search.index import card_text
from procmem.search.retrieval import ABSTAIN, RRF_K, first_stage, is_confident, rrf


def _trace(tid: str, task: str, action: str, args: dict) -> Trace:
    return Trace(id=tid, task=task, steps=[TraceStep(action=action, args=args, output="ok")])


TRACES = [
    _trace("c1", "Cancel order #W1000001 because no longer needed", "cancel_order",
           {"order_id": "#W1000001"}),
    _trace("c2", "Cancel order #W1000002 because no longer needed", "cancel_order",
           {"order_id": "#W1000002"}),
    _trace("r1", "Return #W2000001 via paypal_1111111: Yoga Mat", "return_items",
           {"order_id": "#W2000001", "payment": "paypal_1111111"}),
    _trace("r2", "Return #W2000002 via paypal_2222222: Kettle", "return_items",
           {"order_id": "#W2000002", "payment": "paypal_2222222"}),
]


@pytest.fixture
def mem(tmp_path: Path) -> Memory:
    m = Memory(tmp_path / "m.db", embedder=CountingEmbedder())
    m.learn(TRACES)
    return m


def test_every_distinct_text_is_embedded_once_and_reused_across_instances(
        mem: Memory, tmp_path: Path) -> None:
    emb = mem.embedder
    assert isinstance(emb, CountingEmbedder)
    # learn embedded a card per procedure plus each distinct demonstration task
    assert len(emb.seen) == len(set(emb.seen)) == 6
    first = mem.reindex()  # the vectors come from the store: nothing embedded again
    assert first == {"model_id": "test:bow", "procedures": 2, "rows": 6, "embedded": 0,
                     "stored": 6}
    assert len(emb.seen) == 6
    mem.close()
    again = Memory(tmp_path / "m.db", embedder=CountingEmbedder())
    assert again.reindex()["embedded"] == 0  # all six vectors come from the store
    assert again.store.get_embeddings("test:bow", [text_hash(TRACES[0].task)])
    other = Memory(tmp_path / "m.db", embedder=CountingEmbedder("test:other"))
    assert other.reindex()["embedded"] == 6  # a new model id: a new vector space
    assert other.store.count_embeddings() == {"test:bow": 6, "test:other": 6}
    forced = other.reindex(force=True)
    assert forced["embedded"] == 6 and forced["stored"] == 6


def test_retrievers_rank_and_explain(mem: Memory) -> None:
    task = "please cancel my order #W1234567 because no longer needed"
    for retriever in ("bm25", "vector", "hybrid"):
        hits = mem.search(task, retriever=retriever)
        assert hits[0].procedure.name == "cancel_order", retriever
    best = mem.search(task)[0]
    assert best.ranks["bm25"] == 1 and best.ranks["vector"] == 1
    assert {"cancel", "order", "needed"} <= set(best.explanation["matched_terms"])
    assert best.explanation["nearest_demonstration"].startswith("Cancel order #W100000")
    assert best.explanation["bound"] == {"order_id": "#W1234567"}
    assert "cosine" not in mem.search(task, retriever="bm25")[0].explanation
    with pytest.raises(UsageError, match="retriever"):
        mem.search(task, retriever="dense")  # type: ignore[arg-type]


def test_without_an_embedder_search_is_bm25_only(tmp_path: Path) -> None:
    m = Memory(tmp_path / "k.db", embedder=None)
    m.learn(TRACES)
    hits = m.search("cancel order #W1234567")
    assert hits[0].procedure.name == "cancel_order"
    assert "vector" not in hits[0].ranks and "cosine" not in hits[0].explanation
    with pytest.raises(UsageError, match="embedder"):
        m.search("cancel order", retriever="vector")
    assert m.reindex()["model_id"] is None


def test_filters_by_tags_namespace_and_status(mem: Memory) -> None:
    ret = mem.get_procedure("return_items")
    mem.put_procedure(ret.model_copy(update={"tags": ["billing"], "namespace": "shop"}))
    task = "cancel or return order #W1234567"
    assert [h.procedure.name for h in mem.search(task, tags=["billing"])] == ["return_items"]
    assert [h.procedure.name for h in mem.search(task, namespace="shop")] == ["return_items"]
    assert mem.search(task, namespace="nowhere") == []
    assert {h.procedure.name for h in mem.search(task)} == {"cancel_order", "return_items"}
    version = mem.get_procedure("cancel_order").version
    mem.store.set_status("cancel_order", version, "deprecated")
    assert [h.procedure.name for h in mem.search(task)] == ["return_items"]
    assert [h.procedure.name for h in mem.search(task, status="deprecated")] == ["cancel_order"]
    assert {h.procedure.name for h in mem.search(task, status=None)} == {
        "cancel_order", "return_items"}
    with pytest.raises(UsageError, match="status"):
        mem.search(task, status="gone")


def test_confident_only_abstains_when_nothing_fits(mem: Memory) -> None:
    unrelated = "what is the weather in Paris tomorrow morning"
    hits = mem.search(unrelated, limit=5)
    assert all(not h.confident for h in hits)
    assert mem.search(unrelated, confident_only=True) == []
    fits = mem.search("Cancel order #W1234567 because no longer needed", confident_only=True)
    assert [h.procedure.name for h in fits][:1] == ["cancel_order"]


def test_rrf_fuses_ranks_with_weights() -> None:
    fused = rrf([["a", "b"], ["b", "c"]], k=RRF_K)
    assert fused["b"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1))
    assert max(fused, key=fused.__getitem__) == "b"
    weighted = rrf([["a"], ["b"]], k=1, weights=[2.0, 1.0])
    assert weighted == {"a": 1.0, "b": 0.5}
    with pytest.raises(UsageError):
        rrf([["a"]], weights=[1.0, 2.0])


def test_first_stage_keeps_both_lists_ranks() -> None:
    facts = first_stage([("a", 3.0), ("b", 1.0)], [("b", 0.9, "demo b"), ("c", 0.5, "demo c")],
                        "hybrid")
    assert [f["name"] for f in facts] == ["b", "a", "c"]
    assert facts[0]["ranks"] == {"bm25": 2, "vector": 1} and facts[0]["relevance"] == 1.0
    assert facts[0]["nearest"] == "demo b" and facts[1]["cosine"] is None
    only_kw = first_stage([("a", 3.0), ("b", 1.0)], [], "bm25")
    assert [(f["name"], f["relevance"]) for f in only_kw] == [("a", 1.0), ("b", 1 / 3)]


def test_abstention_rule_uses_either_signal() -> None:
    assert is_confident(ABSTAIN["structure"], None)
    assert is_confident(0.0, ABSTAIN["cosine"])
    assert not is_confident(0.0, None)
    assert not is_confident(ABSTAIN["structure"] - 0.01, ABSTAIN["cosine"] - 0.01)


def test_card_text_carries_tool_descriptions() -> None:
    proc = Procedure(name="cancel_order", steps=[Step(id="s1", action="cancel_order", args={})])
    text = card_text(proc, {"cancel_order": "Cancel a pending order."})
    assert text.startswith("cancel order") and "Cancel a pending order." in text


def test_cli_reindex_and_search_explain(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from procmem.cli import main

    src = tmp_path / "t.jsonl"
    src.write_text("\n".join(t.model_dump_json() for t in TRACES) + "\n")
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    learned = runner.invoke(main, ["--db", db, "learn", str(src), "--json"])
    assert learned.exit_code == 0, learned.output
    assert json.loads(learned.output)["index"]["procedures"] == 2
    again = runner.invoke(main, ["--db", db, "reindex", "--json"])
    assert again.exit_code == 0 and json.loads(again.output)["embedded"] == 0
    out = runner.invoke(main, ["--db", db, "search", "Cancel order #W1234567 because no longer "
                                          "needed", "--json"])
    top = json.loads(out.output)[0]
    assert top["name"] == "cancel_order" and top["confident"] is True
    assert top["nearest_demonstration"] and "cancel" in top["matched_terms"]
    bm25 = runner.invoke(main, ["--db", db, "--embedder", "none", "search", "cancel order",
                                "--retriever", "bm25", "--json"])
    assert json.loads(bm25.output)[0]["cosine"] is None
    bad = runner.invoke(main, ["--db", db, "--embedder", "nope", "search", "x"])
    assert bad.exit_code == 2 and "embedder" in bad.output


@pytest.mark.skipif(default_embedder() is None, reason="the default embedder is not installed")
def test_the_default_memory_uses_the_bundled_model(tmp_path: Path) -> None:
    m = Memory(tmp_path / "d.db")
    assert isinstance(m.embedder, MiniLMEmbedder)
    m.learn(TRACES)
    hits = m.search("I would like to send back the kettle I received", retriever="vector")
    assert hits[0].procedure.name == "return_items"


def test_cli_embedding_failure_is_one_error_line_and_exit_5(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from procmem.cli import main

    src = tmp_path / "t.jsonl"
    src.write_text("\n".join(t.model_dump_json() for t in TRACES) + "\n")
    db = str(tmp_path / "fail.db")
    runner = CliRunner()
    assert runner.invoke(main, ["--db", db, "--embedder", "none", "learn", str(src)]).exit_code == 0
    dead = "openai:m@http://127.0.0.1:9/v1"  # nothing listens on port 9 (discard)
    out = runner.invoke(main, ["--db", db, "--embedder", dead, "search", "cancel order"])
    assert out.exit_code == 5, out.output
    assert "error[embedding_error]" in out.output and "Traceback" not in out.output
    ok = runner.invoke(main, ["--db", db, "--embedder", "none", "search", "cancel order",
                              "--json"])
    assert json.loads(ok.output)[0]["name"] == "cancel_order"  # nothing stored was harmed


def test_reliability_from_evidence_reorders_near_ties(tmp_path: Path) -> None:
    twins = [
        _trace("a1", "Refund order #W1000001 to the card", "refund_card",
               {"order_id": "#W1000001"}),
        _trace("b1", "Refund order #W2000001 to the wallet", "refund_wallet",
               {"order_id": "#W2000001"}),
    ]
    m = Memory(tmp_path / "r.db", embedder=CountingEmbedder())
    m.learn(twins)
    task = "Refund order #W3000003"
    before = m.search(task)
    assert {h.procedure.name for h in before} == {"refund_card", "refund_wallet"}
    assert all(h.reliability == 0.5 for h in before)  # no evidence yet: factor 1
    loser = before[0].procedure.name
    tools = {"refund_card": lambda **kw: "ok", "refund_wallet": lambda **kw: "ok"}
    for _ in range(4):
        ex = m.replay(loser, tools=tools, task=task)
        m.report(ex.id, reward=0.0, source="user")
    after = m.search(task)
    assert after[0].procedure.name != loser
    failing = next(h for h in after if h.procedure.name == loser)
    assert failing.reliability < 0.3  # Beta(1, 1 + 4 failures) mean = 1/6
    assert failing.score < before[0].score


def test_learning_embeds_the_new_texts_and_searches_only_their_query(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    m = Memory(tmp_path / "lazy.db", embedder=emb)
    m.learn(TRACES)
    assert len(emb.seen) == 6  # learn embedded the rows
    assert m.search("cancel order #W1234567", retriever="bm25")[0].procedure.name == "cancel_order"
    assert len(emb.seen) == 6  # a keyword search embeds nothing, not even its query
    m.search("cancel order #W1234567")  # hybrid: the query only
    assert emb.seen[6:] == ["cancel order #W1234567"]
    m.learn([_trace("c3", "Cancel order #W1000003 because no longer needed", "cancel_order",
                    {"order_id": "#W1000003"})])
    new = emb.seen[7:]  # learn embedded only the new texts
    assert len(new) == 2
    assert "Cancel order #W1000003 because no longer needed" in new  # the new demonstration
    assert any("Learned from 3 demonstrations" in t for t in new)  # the new version's card
    m.search("cancel order #W1234567")  # the store changed: the index reads stored vectors
    assert emb.seen[9:] == ["cancel order #W1234567"]


def test_learn_namespace_sticks_to_new_procedures_and_versions(tmp_path: Path) -> None:
    m = Memory(tmp_path / "ns.db", embedder=None)
    m.learn(TRACES[:2], namespace="shop")
    m.learn(TRACES[2:])
    assert m.get_procedure("cancel_order").namespace == "shop"
    assert m.get_procedure("return_items").namespace == "default"
    m.learn([_trace("c3", "Cancel order #W1000003 because no longer needed", "cancel_order",
                    {"order_id": "#W1000003"})])  # a new version keeps its namespace
    assert m.get_procedure("cancel_order").version == 2
    assert m.get_procedure("cancel_order").namespace == "shop"
    assert [h.procedure.name for h in m.search("order", namespace="shop")] == ["cancel_order"]
    with pytest.raises(UsageError, match="namespace"):
        m.learn(namespace="no spaces")


def test_cli_learn_namespace(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from procmem.cli import main

    src = tmp_path / "t.jsonl"
    src.write_text("\n".join(t.model_dump_json() for t in TRACES) + "\n")
    db = str(tmp_path / "cli_ns.db")
    runner = CliRunner()
    bad = runner.invoke(main, ["--db", db, "--embedder", "none", "learn", str(src),
                               "--namespace", "a b"])
    assert bad.exit_code == 2 and "namespace" in bad.output
    assert Memory(db, embedder=None).store.count_traces() == 0  # nothing imported
    ok = runner.invoke(main, ["--db", db, "--embedder", "none", "learn", str(src),
                              "--namespace", "shop"])
    assert ok.exit_code == 0, ok.output
    hits = runner.invoke(main, ["--db", db, "--embedder", "none", "search", "order",
                                "--namespace", "shop", "--json"])
    assert {h["name"] for h in json.loads(hits.output)} == {"cancel_order", "return_items"}


def test_the_default_embedder_is_resolved_on_first_use_only(monkeypatch: pytest.MonkeyPatch,
                                                            tmp_path: Path) -> None:
    import procmem.memory as memory_module

    calls: list[int] = []
    monkeypatch.setattr(memory_module, "default_embedder",
                        lambda: calls.append(1) or CountingEmbedder())
    m = Memory(tmp_path / "lazy2.db")
    m.add_traces(TRACES)
    m.list_procedures()
    m.search("cancel order", retriever="bm25")
    assert calls == []  # nothing that does not need vectors resolves the model
    m.learn()  # learning embeds the new procedures' texts: it resolves the model once
    assert isinstance(m.embedder, CountingEmbedder) and m.embedder is m.embedder
    assert calls == [1]
