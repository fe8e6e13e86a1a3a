"""Selections: ``$select`` nodes in templates, replay, plans, eval sources and induction."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from procmem.core import template as tpl
from procmem.core.checks import check_templates
from procmem.core.errors import InvalidTemplate
from procmem.core.model import Execution, Need, Param, Procedure, Step, Trace, TraceStep
from procmem.core.replay import adrive, drive, replay_core
from procmem.evaluation.metrics import classify_source
from procmem.induction.induce import CorpusStats, induce
from procmem.induction.planning import plan_procedure
from procmem.learning.factor import referenced_params, referenced_steps, rename_refs

# ------------------------------------------------------------------ τ-retail-shaped data


def item(item_id: str, product_id: str, name: str, **options: str) -> dict[str, Any]:
    return {"name": name, "product_id": product_id, "item_id": item_id, "price": 10.5,
            "options": options}


def order(order_id: str, items: list[dict[str, Any]], status: str = "delivered") -> dict:
    return {"order_id": order_id, "user_id": "u_1", "items": items, "status": status,
            "payment_history": [{"transaction_type": "payment", "amount": 21.0,
                                 "payment_method_id": "paypal_1"}]}


KETTLE = item("1111111111", "9000000001", "Electric Kettle", color="black")
LAMP = item("2222222222", "9000000002", "Desk Lamp", color="white")
MUG = item("3333333333", "9000000003", "Coffee Mug", size="large")
CHARGER = item("4444444444", "9000000004", "Portable Charger", capacity="5000mAh")

SELECT_PRODUCT = {
    "$select": {"$step": "s1", "path": "/items"},
    "where": [{"path": "/item_id", "equals": {"$param": "item_id"}}],
    "get": "/product_id",
}


def lookup_procedure(node: dict[str, Any] | None = None) -> Procedure:
    return Procedure(
        name="product-of-item",
        params=[Param(name="order_id", schema={"type": "string"}),
                Param(name="item_id", schema={"type": "string"})],
        steps=[Step(id="s1", action="get_order_details", args={"order_id": tpl.param("order_id")}),
               Step(id="s2", action="get_product_details",
                    args={"product_id": node if node is not None else SELECT_PRODUCT})])


class Tools:
    def __init__(self, output: Any) -> None:
        self.output = output
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def tools(self) -> dict[str, Any]:
        def get_order_details(**args: Any) -> Any:
            self.calls.append(("get_order_details", args))
            return json.dumps(self.output)

        def get_product_details(**args: Any) -> Any:
            self.calls.append(("get_product_details", args))
            return {"product_id": args["product_id"]}

        return {"get_order_details": get_order_details, "get_product_details": get_product_details}


def run(procedure: Procedure, output: Any, resolver: Any = None, **params: Any
        ) -> tuple[Execution, Tools]:
    tools = Tools(output)
    ex = Execution(procedure=procedure.name, version=procedure.version, task="t", params=params)
    return drive(replay_core(procedure, ex, {}), tools.tools(), resolver), tools


# ------------------------------------------------------------------ the template language


def test_select_validates_and_its_inner_references_are_found() -> None:
    proc = lookup_procedure()
    check_templates(proc)
    node = proc.steps[1].args["product_id"]
    assert tpl.is_ref(node)
    assert [path for path, _ in tpl.references(proc.steps[1].args)] == ["/product_id"]
    assert referenced_steps(proc.steps[1].args) == {"s1"}
    assert referenced_params(proc.steps[1].args) == {"item_id"}
    renamed = rename_refs(proc.steps[1].args, param=lambda n: n + "_x", step=lambda s: "s9")
    assert renamed["product_id"]["$select"]["$step"] == "s9"
    assert renamed["product_id"]["where"][0]["equals"] == {"$param": "item_id_x"}


@pytest.mark.parametrize("bad", [
    {"$select": {"$param": "order_id"}, "where": [], "get": ""},
    {"$select": {"$step": "s2", "path": "/items"}, "where": []},
    {"$select": {"$step": "s1", "path": "items"}, "where": []},
    {"$select": {"$step": "s1"}, "where": {"path": "/a", "equals": 1}},
    {"$select": {"$step": "s1"}, "where": [{"path": "/a"}]},
    {"$select": {"$step": "s1"}, "where": [{"path": "/a", "equals": 1, "contains": 1}]},
    {"$select": {"$step": "s1"}, "where": [{"path": "a", "equals": 1}]},
    {"$select": {"$step": "s1"}, "where": [{"path": "/a", "equals": {"$param": "nope"}}]},
    {"$select": {"$step": "s1"}, "where": [{"path": "/a", "equals": {"$step": "s1"}}]},
    {"$select": {"$step": "s1"}, "where": [{"path": "/a", "equals": {"x": {"$k": 1}}}]},
    {"$select": {"$step": "s1"}, "where": [], "get": "id"},
    {"$select": {"$step": "s1"}, "where": [], "limit": 1},
    {"$select": {"$step": "s1"}, "$step": "s1"},
    {"$ask": "which", "from": {"$param": "order_id"}},
])
def test_malformed_selections_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(InvalidTemplate):
        check_templates(lookup_procedure(bad))


def test_data_with_a_select_key_stays_literal_through_induction_and_replay() -> None:
    data = {"$select": {"$step": "s1", "path": "/items"}, "where": [], "get": "/id"}
    traces = [Trace(task=f"save the filter named f{n}", steps=[
        TraceStep(action="save_filter", args={"name": f"f{n}", "filter": data}, output="ok")])
        for n in (1, 2)]
    proc = induce(traces, corpus=CorpusStats.from_traces(traces, min_constant=2))
    assert proc.steps[0].args["filter"] == {"$literal": data}
    sent: list[dict[str, Any]] = []
    ex = Execution(procedure=proc.name, version=proc.version, task="t",
                   params={p.name: "f3" for p in proc.params})
    done = drive(replay_core(proc, ex, {}), {"save_filter": lambda **a: sent.append(a) or "ok"})
    assert done.status == "succeeded", done.needs
    assert sent[0]["filter"] == data
    assert tpl.literal(data) == {"$literal": data}


# ------------------------------------------------------------------ replay


def test_selection_picks_the_element_in_a_list_of_other_length_and_order() -> None:
    execution, tools = run(lookup_procedure(), order("#W2", [MUG, CHARGER, LAMP, KETTLE]),
                           order_id="#W2", item_id=LAMP["item_id"])
    assert execution.status == "succeeded"
    assert tools.calls[1] == ("get_product_details", {"product_id": LAMP["product_id"]})
    assert execution.step_runs[1].sources == {"/product_id": "select:s1#/items"}


def test_async_driver_selects_the_same_element() -> None:
    proc = lookup_procedure()
    tools = Tools(order("#W2", [CHARGER, KETTLE]))
    ex = Execution(procedure=proc.name, version=proc.version, task="t",
                   params={"order_id": "#W2", "item_id": KETTLE["item_id"]})
    done = asyncio.run(adrive(replay_core(proc, ex, {}), tools.tools()))
    assert done.step_runs[1].args == {"product_id": KETTLE["product_id"]}


def test_no_match_asks_with_every_candidate_and_resumes_with_the_answer() -> None:
    items = [MUG, CHARGER]
    execution, tools = run(lookup_procedure(), order("#W2", items), order_id="#W2",
                           item_id=LAMP["item_id"])
    assert execution.status == "paused"
    assert [c for c, _ in tools.calls] == ["get_order_details"]  # nothing sent silently
    (need,) = execution.needs
    assert need.key == "ask:s2:/product_id" and need.kind == "ask"
    assert need.candidates == items
    assert need.context["selection"]["get"] == "/product_id"

    def answer(n: Need) -> Any:
        return CHARGER["product_id"] if n.key == need.key else None

    resumed, tools = run(lookup_procedure(), order("#W2", items), answer, order_id="#W2",
                         item_id=LAMP["item_id"])
    assert resumed.status == "succeeded"
    assert resumed.step_runs[1].sources == {"/product_id": "ask"}


def test_several_matches_ask_with_the_matching_elements_only() -> None:
    twin = {**LAMP, "product_id": "9000000099"}
    execution, _ = run(lookup_procedure(), order("#W2", [MUG, LAMP, twin]), order_id="#W2",
                       item_id=LAMP["item_id"])
    assert execution.status == "paused"
    assert execution.needs[0].candidates == [LAMP, twin]


def test_several_matches_with_one_value_resolve() -> None:
    node = {**SELECT_PRODUCT, "where": [{"path": "/name", "equals": "Desk Lamp"}],
            "get": "/name"}
    execution, tools = run(lookup_procedure(node), order("#W2", [LAMP, MUG, LAMP]),
                           order_id="#W2", item_id="x")
    assert tools.calls[1][1] == {"product_id": "Desk Lamp"}
    assert execution.status == "succeeded"


def test_contains_and_literal_predicates_and_object_maps() -> None:
    methods = {"credit_card_7": {"source": "credit_card", "id": "credit_card_7"},
               "gift_card_3": {"source": "gift_card", "id": "gift_card_3", "balance": 20},
               "paypal_1": {"source": "paypal", "id": "paypal_1"}}
    node = {"$select": {"$step": "s1", "path": "/payment_methods"},
            "where": [{"path": "/source", "equals": "gift_card"}], "get": "/id"}
    execution, tools = run(lookup_procedure(node), {"payment_methods": methods},
                           order_id="#W2", item_id="x")
    assert tools.calls[1][1] == {"product_id": "gift_card_3"}
    node = {"$select": {"$step": "s1", "path": "/fulfillments"},
            "where": [{"path": "/item_ids", "contains": {"$param": "item_id"}}],
            "get": "/tracking_id/0"}
    output = {"fulfillments": [{"tracking_id": ["A"], "item_ids": ["1", "2"]},
                               {"tracking_id": ["B"], "item_ids": ["3"]}]}
    execution, tools = run(lookup_procedure(node), output, order_id="#W2", item_id="3")
    assert tools.calls[1][1] == {"product_id": "B"}


def test_a_boolean_never_equals_a_number() -> None:
    node = {"$select": {"$step": "s1", "path": "/rows"},
            "where": [{"path": "/flag", "equals": True}], "get": "/id"}
    execution, _ = run(lookup_procedure(node), {"rows": [{"flag": 1, "id": "a"}]},
                       order_id="#W2", item_id="x")
    assert execution.status == "paused"


def test_a_source_that_is_no_list_fails_the_step() -> None:
    execution, tools = run(lookup_procedure(), {"items": "none"}, order_id="#W2", item_id="x")
    assert execution.status == "failed"
    assert len(tools.calls) == 1


# ------------------------------------------------------------------ plan and eval sources


def test_plan_shows_the_selection_source() -> None:
    plan = plan_procedure(lookup_procedure(), "", params={"order_id": "#W1", "item_id": "1"})
    value = plan.steps[1].values[0]
    assert value.source == "selection" and not value.known
    assert value.ref is not None and (value.ref.step, value.ref.pointer) == ("s1", "/items")
    assert value.get == "/product_id" and value.where == SELECT_PRODUCT["where"]
    assert plan.to_json()["steps"][1]["values"][0]["source"] == "selection"


def test_eval_counts_selections_as_their_own_source() -> None:
    assert classify_source("select:s1#/items", {}) == "selection"
    assert classify_source("step:s1#/id", {}) == "step"


# ------------------------------------------------------------------ induction


def demo(order_id: str, chosen: dict[str, Any], items: list[dict[str, Any]],
         task: str) -> Trace:
    return Trace(task=task, steps=[
        TraceStep(action="get_order_details", args={"order_id": order_id},
                  output=json.dumps(order(order_id, items))),
        TraceStep(action="get_product_details", args={"product_id": chosen["product_id"]},
                  output={"product_id": chosen["product_id"]})])


def test_induction_selects_the_item_by_the_id_the_task_names() -> None:
    traces = [
        demo("#W1001", LAMP, [KETTLE, LAMP, MUG],
             f"In order #W1001, what product is item {LAMP['item_id']}?"),
        demo("#W1002", CHARGER, [CHARGER, KETTLE],
             f"In order #W1002, what product is item {CHARGER['item_id']}?"),
    ]
    proc = induce(traces)
    node = proc.steps[1].args["product_id"]
    assert "$select" in node
    assert node["$select"] == {"$step": "s1", "path": "/items"}
    assert node["get"] == "/product_id"
    (pred,) = node["where"]
    assert pred["path"] == "/item_id" and "$param" in pred["equals"]
    name = pred["equals"]["$param"]
    # a new user: another list, another order; the right product, or a question
    execution, tools = run(proc, order("#W9", [MUG, CHARGER, KETTLE, LAMP]),
                           order_id="#W9", **{name: KETTLE["item_id"]})
    assert tools.calls[1][1] == {"product_id": KETTLE["product_id"]}
    execution, tools = run(proc, order("#W9", [MUG]), order_id="#W9",
                           **{name: KETTLE["item_id"]})
    assert execution.status == "paused" and len(tools.calls) == 1


def test_a_position_fitted_to_one_demonstration_becomes_a_question() -> None:
    traces = [demo("#W1001", LAMP, [KETTLE, LAMP, MUG], "Look up the second item of #W1001")]
    node = induce(traces).steps[1].args["product_id"]
    assert node["$ask"] and node["from"] == {"$step": "s1", "path": "/items"}


def test_a_position_proven_by_two_demonstrations_is_kept() -> None:
    traces = [demo("#W1001", KETTLE, [KETTLE, LAMP], "Look up the first item of #W1001"),
              demo("#W1002", MUG, [MUG, CHARGER, LAMP], "Look up the first item of #W1002")]
    node = induce(traces).steps[1].args["product_id"]
    assert node == {"$step": "s1", "path": "/items/0/product_id"}


def test_a_literal_predicate_needs_min_constant_demonstrations() -> None:
    def user(methods: list[dict[str, Any]]) -> str:
        return json.dumps({"payment_methods": {m["id"]: m for m in methods}})

    def pay(uid: str, methods: list[dict[str, Any]], chosen: str) -> Trace:
        return Trace(task=f"Pay for {uid} with the gift card", steps=[
            TraceStep(action="get_user_details", args={"user_id": uid}, output=user(methods)),
            TraceStep(action="pay", args={"payment_method_id": chosen}, output="ok")])

    card = {"source": "credit_card", "id": "credit_card_1", "brand": "visa"}
    gift = {"source": "gift_card", "id": "gift_card_2", "balance": 5}
    paypal = {"source": "paypal", "id": "paypal_3"}
    gift9 = {"source": "gift_card", "id": "gift_card_9", "balance": 50}
    one = induce([pay("u1", [card, gift], "gift_card_2")]).steps[1].args["payment_method_id"]
    assert one["$ask"] and one["from"]["$select"] == {"$step": "s1", "path": "/payment_methods"}
    demos = [pay("u1", [card, gift], "gift_card_2"), pay("u2", [gift9, paypal], "gift_card_9")]
    # two agreeing demonstrations: below the default bar of a literal, still a question
    assert "$ask" in induce(demos).steps[1].args["payment_method_id"]
    few = CorpusStats.from_traces(demos, min_constant=2)
    two = induce(demos, corpus=few).steps[1].args["payment_method_id"]
    assert two == {"$select": {"$step": "s1", "path": "/payment_methods"},
                   "where": [{"path": "/source", "equals": "gift_card"}], "get": "/id"}


def test_induction_creates_a_param_for_the_item_name_the_task_names() -> None:
    traces = [
        demo("#W1001", LAMP, [KETTLE, LAMP, MUG],
             "In order #W1001, exchange the Desk Lamp for a new one"),
        demo("#W1002", CHARGER, [CHARGER, KETTLE],
             "In order #W1002, exchange the Portable Charger for a new one"),
    ]
    proc = induce(traces)
    node = proc.steps[1].args["product_id"]
    (pred,) = node["where"]
    assert pred["path"] == "/name"
    name = pred["equals"]["$param"]
    assert proc.param(name) is not None
    execution, tools = run(proc, order("#W9", [MUG, KETTLE]), order_id="#W9",
                           **{name: "Coffee Mug"})
    assert tools.calls[1][1] == {"product_id": MUG["product_id"]}
    twins = order("#W9", [MUG, {**MUG, "product_id": "9000000077"}])
    execution, tools = run(proc, twins, order_id="#W9", **{name: "Coffee Mug"})
    assert execution.status == "paused" and len(tools.calls) == 1
