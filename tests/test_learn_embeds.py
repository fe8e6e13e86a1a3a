"""Embeddings are made when procedures are learned or stored, not on the first search
(issue 13): ``Memory.learn`` and ``Memory.put_procedure`` embed the new search texts
(in batches, with progress), so a first search embeds only its query, with the same hits.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from embedders import CountingEmbedder
from procmem.core.model import Procedure, Step, Trace, TraceStep
from procmem.formats.traceio import read_traces
from procmem.memory import Memory
from procmem.search.index import vector_rows
from procmem.services.search import Searcher


def _trace(tid: str, task: str, action: str, args: dict) -> Trace:
    return Trace(id=tid, task=task, steps=[TraceStep(action=action, args=args, output="ok")])


TRACES = [
    _trace("c1", "Cancel order #W1000001 because no longer needed", "cancel_order",
           {"order_id": "#W1000001"}),
    _trace("c2", "Cancel order #W1000002 because ordered by mistake", "cancel_order",
           {"order_id": "#W1000002"}),
    _trace("r1", "Return #W2000001 via paypal_1111111: Yoga Mat", "return_items",
           {"order_id": "#W2000001", "payment": "paypal_1111111"}),
    _trace("r2", "Return #W2000002 via paypal_2222222: Kettle", "return_items",
           {"order_id": "#W2000002", "payment": "paypal_2222222"}),
]
QUERY = "please cancel my order #W1234567, I no longer need it"


def test_learn_embeds_every_search_text_with_progress_and_search_embeds_only_the_query(
        tmp_path: Path) -> None:
    emb = CountingEmbedder()
    calls: list[tuple[int, int]] = []
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        mem.learn(TRACES, progress=lambda done, total: calls.append((done, total)))
        procs = mem.list_procedures()
        texts = [r.text for r in vector_rows(mem.store, procs)]
        assert sorted(emb.seen) == sorted(set(texts))  # each distinct text once
        # groups learned first, then the texts embedded
        n = len(set(texts))
        start = calls.index((0, n))
        assert calls[start - 1] == (calls[start - 1][1],) * 2  # the group phase ended whole
        assert calls[-1] == (n, n)
        learned = len(emb.seen)
        assert mem.search(QUERY)
        assert emb.seen[learned:] == [QUERY]
    again = CountingEmbedder()  # a new process over the same file
    with Memory(tmp_path / "m.db", embedder=again) as mem:
        assert mem.search(QUERY)[0].procedure.name == "cancel_order"
        assert again.seen == [QUERY]


def test_search_finds_the_same_hits_as_when_the_first_search_embedded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def hits(mem: Memory) -> list[tuple[str, float, dict]]:
        return [(h.procedure.name, h.score, h.ranks) for h in mem.search(QUERY, limit=5)]

    with Memory(tmp_path / "now.db", embedder=CountingEmbedder()) as mem:
        mem.learn(TRACES)
        now = hits(mem)
    monkeypatch.setattr(Searcher, "embed_new", lambda self, names, progress=None: 0)
    with Memory(tmp_path / "later.db", embedder=CountingEmbedder()) as mem:
        mem.learn(TRACES)
        assert mem.store.count_embeddings() == {}  # the old way: nothing embedded yet
        later = hits(mem)
    assert now == later and now


def test_put_procedure_embeds_its_texts_and_nothing_without_an_embedder(tmp_path: Path) -> None:
    emb = CountingEmbedder()
    proc = Procedure(name="refund_order", description="Refund an order to its card",
                     steps=[Step(id="s1", action="refund", args={})])
    with Memory(tmp_path / "m.db", embedder=emb) as mem:
        mem.put_procedure(proc)
        assert len(emb.seen) == 1 and "refund" in emb.seen[0]  # its card
        mem.put_procedure(proc)  # unchanged content: nothing new to embed
        assert len(emb.seen) == 1
    with Memory(tmp_path / "none.db", embedder=None) as mem:
        mem.learn(TRACES)
        mem.put_procedure(proc)
        assert mem.store.count_embeddings() == {}


def test_cli_learn_then_search_embeds_nothing_but_the_query(
        tmp_path: Path, tau_sample_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from procmem.cli import app, main

    emb = CountingEmbedder()
    monkeypatch.setattr(app, "make_embedder", lambda spec: emb)
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    learned = runner.invoke(main, ["--db", db, "learn", str(tau_sample_path), "--json"])
    assert learned.exit_code == 0, learned.output
    traces, _ = read_traces(tau_sample_path)
    assert emb.seen and QUERY not in emb.seen
    before = len(emb.seen)
    found = runner.invoke(main, ["--db", db, "search", QUERY, "--json"])
    assert found.exit_code == 0, found.output
    assert emb.seen[before:] == [QUERY]
