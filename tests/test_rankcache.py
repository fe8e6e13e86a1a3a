"""Search's performance mechanics change no result (search.rankcache, procmem.search.rankviews).

The fast path (one binding per distinct param-spec set, interned specs, rank views
made from stored JSON) is compared with the exhaustive one (every candidate bound
on its own, views from whole validated procedures) on a memory learned from the
bundled τ-retail sample, with renamed copies of its procedures so that many
candidates share their specs, as versions and variants do.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import procmem.search.retrieval as retrieval
import procmem.services.search as memory_search
from procmem.core.model import Extractor, Procedure, Trace
from procmem.core.template import references
from procmem.induction.bind import BindSpec, bind_params
from procmem.memory import Memory
from procmem.search.rankcache import bind_all, intern_specs, params_of
from procmem.search.rankviews import view_from_json
from procmem.search.retrieval import RankView

LEARN = 90
COPIES = 2


@pytest.fixture(scope="module")
def db(tau_sample: list[Trace], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rankcache") / "memory.db"
    mem = Memory(path, embedder=None)
    mem.learn(tau_sample[:LEARN])
    for p in mem.store.list_procedures(limit=1000):
        for k in range(COPIES):
            mem.store.put_procedure(p.model_copy(update={"name": f"{p.name}.copy-{k}"}))
    mem.close()
    return path


@pytest.fixture()
def memory(db: Path) -> Iterator[Memory]:
    mem = Memory(db, embedder=None)
    yield mem
    mem.close()


def queries(tau_sample: list[Trace]) -> list[str]:
    held_out = [t.task for t in tau_sample[LEARN:]]
    return held_out + [t.task for t in tau_sample[:10]]


def results(mem: Memory, tasks: list[str]) -> list[list[dict[str, Any]]]:
    return [[h.model_dump(mode="json") for h in mem.search(t, limit=10)] for t in tasks]


def test_search_results_equal_the_exhaustive_path(db: Path, tau_sample: list[Trace],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = queries(tau_sample)
    fast_mem = Memory(db, embedder=None)
    fast = results(fast_mem, tasks)
    views = [fast_mem.searcher._views[n] for n in sorted(fast_mem.searcher._views)]
    fast_mem.close()
    # not vacuous: candidates shared specs, and their views came from stored JSON
    assert len({id(v.params) for v in views}) < len(views) / 2
    assert fast_mem.searcher._procs.keys() < fast_mem.searcher._views.keys()

    with monkeypatch.context() as m:
        m.setattr(retrieval, "bind_all",
                  lambda vs, task: [bind_params(v.params, task) for v in vs])
        m.setattr(retrieval, "intern_specs", lambda specs: specs)
        m.setattr(memory_search.Searcher, "_load_views", lambda self, names: {})
        slow_mem = Memory(db, embedder=None)
        slow = results(slow_mem, tasks)
        slow_views = list(slow_mem.searcher._views.values())
        slow_mem.close()
    assert len({id(v.params) for v in slow_views}) == len(slow_views)
    assert sum(len(r) for r in fast) > len(tasks)
    for task, a, b in zip(tasks, fast, slow, strict=True):
        assert a == b, task  # names, order, scores, bound values, ranks, confidence


def test_view_from_json_equals_the_view_of_the_validated_procedure(memory: Memory) -> None:
    names = [p.name for p in memory.store.list_procedures(limit=1000)]
    stored = memory.store.get_procedures_json(names)
    assert set(stored) == set(names)
    for name, text in stored.items():
        assert view_from_json(text) == RankView.of(memory.store.get_procedure(name)), name


@pytest.mark.parametrize("text", ["not json", "[]", '{"name": "x", "params": [{}]}',
                                  '{"name": "x", "params": [{"name": "a", "extractor": 3}]}'])
def test_view_from_json_refuses_what_is_not_a_record(text: str) -> None:
    with pytest.raises(ValueError):
        view_from_json(text)


def test_hits_bound_values_are_not_shared_between_hits(memory: Memory,
                                                       tau_sample: list[Trace]) -> None:
    hits = memory.search(tau_sample[LEARN].task, limit=10)
    base = hits[0].procedure.name.split(".copy-")[0]
    first, copy = [h for h in hits if h.procedure.name.split(".copy-")[0] == base][:2]
    assert first.explanation["bound"] == copy.explanation["bound"]  # one shared binding
    assert first.explanation["bound"]
    first.explanation["bound"]["extra"] = 1
    assert "extra" not in copy.explanation["bound"]


def spec(name: str, schema: dict[str, Any], **ex: Any) -> BindSpec:
    return BindSpec(name, schema, Extractor(**ex) if ex else None)


def test_intern_specs_shares_only_equal_specs() -> None:
    a = (spec("order_id", {"type": "string"}, pattern=r"\#W\d{7}", before="order "),)
    same = (spec("order_id", {"type": "string"}, pattern=r"\#W\d{7}", before="order "),)
    other_schema = (spec("order_id", {"type": "integer"}, pattern=r"\#W\d{7}", before="order "),)
    other_support = (spec("order_id", {"type": "string"}, pattern=r"\#W\d{7}",
                          before="order ", support=3),)
    assert intern_specs(a) is a
    assert intern_specs(same) is a
    assert intern_specs(other_schema) is other_schema
    assert intern_specs(other_support) is other_support
    assert intern_specs(()) == ()


def test_bind_all_equals_binding_each_view() -> None:
    class View:
        def __init__(self, params: tuple[BindSpec, ...]) -> None:
            self.params = params

    order = intern_specs((spec("order_id", {"type": "string"}, pattern=r"\#W\d{7}",
                               before=r"order\s+"),))
    email = (spec("email", {"type": "string"}, pattern=r"[a-z.]+@[a-z.]+", kind="email"),)
    views = [View(order), View(email), View(order), View(())]
    task = "Cancel order #W1234567 for ana.lee@example.com"
    got = bind_all(views, task)
    assert got == [bind_params(v.params, task) for v in views]
    assert got[0] is got[2] and got[0].values == {"order_id": "#W1234567"}


@pytest.mark.parametrize("template", [
    {},
    {"a": {"$param": "x"}, "b": [{"$param": "y"}, {"c": {"$param": "x"}}]},
    {"a": {"$literal": {"$param": "no"}}, "b": {"$step": "s1", "path": "/x"}},
    [{"$param": "z"}, [{"$param": "w"}], "text", 3, None],
    {"$param": "top"},
    {"a": {"$ask": "what?"}, "b": {"deep": [[{"$param": "v"}]]}},
])
def test_params_of_finds_what_references_finds(template: Any) -> None:
    expected = [node["$param"] for _, node in references(template) if "$param" in node]
    assert params_of(template) == expected


def test_step_params_of_real_procedures(memory: Memory) -> None:
    for p in memory.store.list_procedures(limit=1000):
        assert retrieval.step_params(p) == tuple(
            tuple(node["$param"] for _, node in references(s.args) if "$param" in node)
            for s in p.steps)


def test_rank_view_of_procedure_without_params() -> None:
    proc = Procedure(name="noop", steps=[{"id": "s1", "action": "ping"}])
    assert view_from_json(proc.model_dump_json(by_alias=True)) == RankView.of(proc)


def test_params_of_reads_params_inside_selections_and_asks() -> None:
    from procmem.search.rankcache import params_of

    args = {"a": {"$param": "order_id"},
            "b": {"$select": {"$step": "s1", "path": "/items"},
                  "where": [{"path": "/item_id", "equals": {"$param": "item_id"}}],
                  "get": "/product_id"},
            "c": {"$ask": "which", "from": {"$select": {"$step": "s1", "path": "/x"},
                                             "where": [{"path": "/n",
                                                        "contains": {"$param": "name"}}]}},
            "d": {"$literal": {"$param": "not_a_param"}}}
    assert params_of(args) == ["order_id", "item_id", "name"]
