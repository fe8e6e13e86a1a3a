"""Tests for induction: traces -> parameterized procedures (procmem.induction.induce)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from procmem.core.errors import UsageError
from procmem.core.model import Trace, TraceStep
from procmem.core.template import references, validate
from procmem.induction.bind import bind_task
from procmem.induction.induce import MIN_CONSTANT, CorpusStats, group_traces, induce, procedure_name

# ------------------------------------------------------------------------ helpers


def step(action: str, output: Any = "ok", error: str | None = None, **args: Any) -> TraceStep:
    if error is not None:
        output = None
    return TraceStep(action=action, args=args, output=output, error=error)


def trace(task: str, *steps: TraceStep, outcome: str = "success", id: str | None = None) -> Trace:
    extra = {"id": id} if id else {}
    return Trace(task=task, steps=list(steps), outcome=outcome, **extra)  # type: ignore[arg-type]


ORDERS = ["#W1234567", "#W7654321", "#W5550001"]
REASONS = ["no longer needed", "ordered by mistake", "no longer needed"]


def cancel_demos() -> list[Trace]:
    return [
        trace(f"Cancel order {o} because {r}.",
              step("cancel_pending_order", order_id=o, reason=r, notify=True), id=f"c{i}")
        for i, (o, r) in enumerate(zip(ORDERS, REASONS, strict=True))
    ]


def lookup_demos() -> list[Trace]:
    """find_user -> get_orders(user_id from s1) -> return(order picked from s2's list)."""
    users = ["u_anna_17", "u_bob_42", "u_cleo_99"]
    orders = [["#W1000001", "#W1000002"], ["#W2000001", "#W2000002", "#W2000003"],
              ["#W3000001"]]
    picked = ["#W1000002", "#W2000001", "#W3000001"]  # at a different index in each demo
    items = ["111", "222", "333"]
    out = []
    for i in range(3):
        email = f"user{i}@example.com"
        out.append(trace(
            f"I am {email}. Return one of my orders.",
            step("find_user_id_by_email", json.dumps({"user_id": users[i], "tier": "gold"}),
                 email=email),
            step("get_user_orders", json.dumps({"orders": orders[i], "count": len(orders[i])}),
                 user_id=users[i]),
            step("return_delivered_order_items", order_id=picked[i], item_ids=[items[i]]),
            id=f"l{i}",
        ))
    return out


# ------------------------------------------------------------------ classification


def test_value_equal_in_every_demo_stays_literal_from_min_constant_demos() -> None:
    demos = cancel_demos()
    proc = induce(demos, corpus=CorpusStats.from_traces(demos, min_constant=3))
    assert proc.steps[0].args["notify"] is True


def test_a_value_few_demonstrations_agree_on_is_asked_for_not_sent() -> None:
    # three demonstrations that all notify: by the rule of succession a fourth task
    # may want otherwise one time in five; the default (48 agreeing) makes it an $ask
    assert MIN_CONSTANT == 48
    proc = induce(cancel_demos())
    assert "$ask" in proc.steps[0].args["notify"]
    many = [trace(f"Cancel order #W{n:07d}.", step("cancel_pending_order",
                                                   order_id=f"#W{n:07d}", notify=True))
            for n in range(1000000, 1000000 + MIN_CONSTANT)]
    assert induce(many).steps[0].args["notify"] is True
    assert "$ask" in induce(many[:-1]).steps[0].args["notify"]


def test_value_equal_in_two_demos_stays_literal_when_the_corpus_never_varies() -> None:
    demos = cancel_demos()[:2]
    proc = induce(demos, corpus=CorpusStats.from_traces(demos, min_constant=2))
    assert proc.steps[0].args["notify"] is True
    # ...but becomes a param when the wider corpus shows it varying and the task names it
    demos = [trace(f"Cancel {o} because no longer needed.",
                   step("cancel_pending_order", order_id=o, reason="no longer needed"))
             for o in ORDERS[:2]]
    other = trace("Cancel #W5550001 because ordered by mistake.",
                  step("cancel_pending_order", order_id="#W5550001", reason="ordered by mistake"))
    proc = induce(demos, corpus=CorpusStats.from_traces([*demos, other]))
    assert proc.steps[0].args["reason"] == {"$param": "reason"}


def test_value_in_the_task_text_becomes_a_typed_param_with_an_extractor() -> None:
    proc = induce(cancel_demos())
    args = proc.steps[0].args
    assert args["order_id"] == {"$param": "order_id"}
    assert args["reason"] == {"$param": "reason"}
    p = proc.param("order_id")
    assert p is not None
    assert p.schema_ == {"type": "string"}
    assert p.examples == ORDERS
    assert p.description  # non-empty, says where it goes
    assert p.required
    assert p.extractor is not None
    assert re.fullmatch(p.extractor.pattern, "#W9999999")
    assert not re.fullmatch(p.extractor.pattern, "#X9999999")
    reason = proc.param("reason")
    assert reason is not None and reason.examples == ["no longer needed", "ordered by mistake"]


def test_integer_in_the_task_text_becomes_an_integer_param() -> None:
    demos = [trace(f"Buy {n} lamps for order {o}.", step("buy", quantity=n, order_id=o))
             for n, o in zip([13, 12, 27], ORDERS, strict=True)]
    proc = induce(demos)
    assert proc.steps[0].args["quantity"] == {"$param": "quantity"}
    qty = proc.param("quantity")
    assert qty is not None and qty.schema_ == {"type": "integer"} and qty.examples == [13, 12, 27]


def test_value_from_an_earlier_json_text_output_becomes_a_step_reference() -> None:
    proc = induce(lookup_demos())
    assert proc.steps[0].args == {"email": {"$param": "email"}}
    assert proc.steps[1].args == {"user_id": {"$step": "s1", "path": "/user_id"}}


def test_value_inside_an_earlier_list_becomes_an_ask_with_candidates() -> None:
    proc = induce(lookup_demos())
    node = proc.steps[2].args["order_id"]
    assert set(node) == {"$ask", "from"}
    assert isinstance(node["$ask"], str) and "order_id" in node["$ask"]
    assert node["from"] == {"$step": "s2", "path": "/orders"}


def test_varying_unexplained_value_becomes_an_ask_without_candidates() -> None:
    proc = induce(lookup_demos())
    node = proc.steps[2].args["item_ids"]
    assert set(node) == {"$ask"}


def test_leaves_with_identical_values_in_every_demo_share_one_param() -> None:
    demos = [trace(f"Move everything from {o} to a new address.",
                   step("get_order", order_id=o),
                   step("modify_address", order_id=o, target={"order": o}))
             for o in ORDERS]
    proc = induce(demos)
    refs = [n for s in proc.steps for _, n in references(s.args)]
    assert refs == [{"$param": "order_id"}] * 3
    assert [p.name for p in proc.params] == ["order_id"]


def test_same_arg_name_with_different_values_gets_distinct_params() -> None:
    demos = [trace(f"Cancel order {a} because no longer needed. "
                   f"Cancel order {b} because ordered by mistake.",
                   step("cancel_pending_order", order_id=a, reason="no longer needed"),
                   step("cancel_pending_order", order_id=b, reason="ordered by mistake"))
             for a, b in [(ORDERS[0], ORDERS[1]), (ORDERS[2], "#W8880008")]]
    proc = induce(demos)
    assert proc.steps[0].args["order_id"] == {"$param": "order_id"}
    assert proc.steps[1].args["order_id"] == {"$param": "order_id_2"}
    first, second = proc.param("order_id"), proc.param("order_id_2")
    assert first and second and first.extractor and second.extractor
    assert (first.extractor.occurrence, second.extractor.occurrence) == (0, 1)


def two_cancels(template: str) -> list[Trace]:
    """Demonstrations cancelling two orders for the same reason, named twice in the task."""
    out = []
    for (a, b), r in zip([(ORDERS[0], ORDERS[1]), (ORDERS[2], "#W8880008")],
                         ["no longer needed", "ordered by mistake"], strict=True):
        out.append(trace(template.format(a=a, b=b, r=r),
                         step("cancel_pending_order", order_id=a, reason=r),
                         step("cancel_pending_order", order_id=b, reason=r)))
    return out


def test_a_value_named_twice_gets_one_param_per_use_pinned_to_its_occurrence() -> None:
    proc = induce(two_cancels("Cancel order {a} because {r} and order {b} because {r} and "
                              "that is all."))
    assert proc.steps[0].args["reason"] == {"$param": "reason"}
    assert proc.steps[1].args["reason"] == {"$param": "reason_2"}
    first, second = proc.param("reason"), proc.param("reason_2")
    assert first and second and first.extractor and second.extractor
    assert (first.extractor.occurrence, second.extractor.occurrence) == (0, 1)
    task = ("Cancel order #W1000001 because it broke and order #W1000002 because it came late "
            "and that is all.")
    assert bind_task(proc, task).values == {
        "order_id": "#W1000001", "order_id_2": "#W1000002",
        "reason": "it broke", "reason_2": "it came late"}


def test_the_second_use_of_a_value_named_twice_is_bound_where_its_clause_ends_the_task() -> None:
    proc = induce(two_cancels("Cancel order {a} because {r}. Then cancel order {b} because {r}."))
    assert [s.args["reason"] for s in proc.steps] == [{"$param": "reason"},
                                                       {"$param": "reason_2"}]
    second = proc.param("reason_2")
    assert second is not None and second.extractor is not None
    task = ("Cancel order #W1000001 because it broke. "
            "Then cancel order #W1000002 because it is late.")
    assert bind_task(proc, task).values == {
        "order_id": "#W1000001", "order_id_2": "#W1000002",
        "reason": "it broke", "reason_2": "it is late"}


def test_a_value_named_once_and_used_by_two_steps_is_one_param() -> None:
    demos = [trace(f"I am {e}. Update my address, then email {e} a receipt.",
                   step("find_user_id_by_email", email=e),
                   step("modify_user_address", user="u"),
                   step("send_receipt", email=e))
             for e in ["ann@example.com", "bob.lee@example.org"]]
    # named twice in the task text: each use is its own param
    assert [p.name for p in induce(demos).params] == ["email", "email_2"]
    once = [trace(f"I am {e}. Update my address and send me a receipt.",
                  *d.steps) for e, d in zip(["ann@example.com", "bob.lee@example.org"], demos,
                                            strict=True)]
    proc = induce(once)
    assert [p.name for p in proc.params] == ["email"]
    assert proc.steps[0].args["email"] == proc.steps[2].args["email"] == {"$param": "email"}
    email = proc.param("email")
    assert email is not None and email.extractor is not None and email.extractor.kind == "email"
    assert bind_task(proc, "I am zoe@mail.other.net. Send me a receipt.").values == {
        "email": "zoe@mail.other.net"}


def test_enum_values_come_from_the_corpus() -> None:
    corpus_traces = [trace(f"Cancel order #W{1000000 + i} because {r}.",
                           step("cancel_pending_order", order_id=f"#W{1000000 + i}", reason=r))
                     for i, r in enumerate(["no longer needed", "ordered by mistake"] * 5)]
    corpus = CorpusStats.from_traces(corpus_traces)
    proc = induce(corpus_traces[:1], corpus=corpus)  # one demonstration: "no longer needed"
    reason = proc.param("reason")
    assert reason is not None and reason.extractor is not None
    assert reason.extractor.kind == "enum"
    assert re.fullmatch(reason.extractor.pattern, "ordered by mistake")  # seen in the corpus
    assert not re.fullmatch(reason.extractor.pattern, "it broke")


def test_a_failed_demonstration_step_is_not_copied() -> None:
    demos = cancel_demos()
    bad = trace(
        "Cancel order #W4444444 because no longer needed.",
        step("cancel_pending_order", error="Error: order not found", order_id="#W444444",
             reason="no longer needed", notify=True),
        step("cancel_pending_order", order_id="#W4444444", reason="no longer needed",
             notify=True),
    )
    assert bad.signature() == demos[0].signature()
    proc = induce([*demos, bad])
    assert [s.action for s in proc.steps] == ["cancel_pending_order"]
    assert [s.id for s in proc.steps] == ["s1"]
    assert proc.steps[0].args["order_id"] == {"$param": "order_id"}
    order = proc.param("order_id")
    assert order is not None and "#W444444" not in order.examples


def test_result_shape_lineage_and_name() -> None:
    demos = lookup_demos()
    proc = induce(demos)
    assert proc.name == ("find_user_id_by_email-then-get_user_orders-then-"
                         "return_delivered_order_items")
    assert proc.version == 1 and proc.status == "active"
    assert proc.lineage.traces == ["l0", "l1", "l2"]
    assert proc.signature() == demos[0].signature()
    assert "3 demonstrations" in proc.description
    assert induce(demos, name="returns", version=4).key == "returns@4"


def test_procedure_name() -> None:
    assert procedure_name(["cancel_pending_order"]) == "cancel_pending_order"
    assert procedure_name(["a", "a", "b"]) == "a_x2-then-b"
    assert procedure_name(["procedure:child", "x y"]) == "child-then-x_y"
    long = procedure_name([f"action_number_{i}" for i in range(20)])
    assert len(long) <= 120
    assert long != procedure_name([f"action_number_{i}" for i in range(21)])


# ---------------------------------------------------------------------- grouping


def test_group_traces_groups_by_successful_action_sequence() -> None:
    a1 = trace("t1", step("a"), step("b"), id="a1")
    b1 = trace("t2", step("b"), id="b1")
    a2 = trace("t3", step("a"), step("x", error="boom"), step("b"), id="a2")  # failed step
    failed = trace("t4", step("a"), step("b"), outcome="failure", id="f")
    empty = trace("t5", id="e")
    only_failed_steps = trace("t6", step("a", error="boom"), id="o")
    unknown = trace("t7", step("b"), outcome="unknown", id="b2")
    groups = group_traces([a1, b1, failed, a2, empty, only_failed_steps, unknown])
    assert [[t.id for t in g] for g in groups] == [["a1", "a2"], ["b1", "b2"]]


def test_induce_is_deterministic() -> None:
    for demos in (cancel_demos(), lookup_demos()):
        assert induce(demos).content() == induce(demos).content()


def test_induce_rejects_mixed_or_empty_signatures() -> None:
    with pytest.raises(UsageError, match="equal"):
        induce([*cancel_demos(), trace("t", step("other"))])
    with pytest.raises(UsageError):
        induce([])
    with pytest.raises(UsageError):
        induce([trace("nothing done")])


# ------------------------------------------------------------------ real traces


@pytest.fixture(scope="module")
def sample_procedures(tau_sample: list[Trace]) -> dict[tuple[str, ...], Any]:
    corpus = CorpusStats.from_traces(tau_sample)
    return {g[0].signature(): induce(g, corpus=corpus) for g in group_traces(tau_sample)}


@pytest.mark.parametrize("action", ["return_delivered_order_items",
                                    "exchange_delivered_order_items"])
def test_real_return_and_exchange_take_order_id_from_task_and_ask_for_items(
    sample_procedures: dict[tuple[str, ...], Any], action: str
) -> None:
    proc = sample_procedures[(action,)]
    args = proc.steps[0].args
    assert args["order_id"] == {"$param": "order_id"}
    assert args["payment_method_id"] == {"$param": "payment_method_id"}
    assert "$ask" in args["item_ids"]
    assert len(proc.lineage.traces) >= 10
    order = proc.param("order_id")
    assert order is not None and order.extractor is not None
    assert re.fullmatch(order.extractor.pattern, "#W6067464")


def test_real_cancel_takes_order_id_and_reason_from_task(
    sample_procedures: dict[tuple[str, ...], Any]
) -> None:
    proc = sample_procedures[("cancel_pending_order",)]
    assert proc.steps[0].args == {"order_id": {"$param": "order_id"},
                                  "reason": {"$param": "reason"}}
    two = sample_procedures[("cancel_pending_order", "cancel_pending_order")]
    assert [s.args["order_id"] for s in two.steps] == [{"$param": "order_id"},
                                                       {"$param": "order_id_2"}]


def test_every_real_procedure_validates(
    tau_sample: list[Trace], sample_procedures: dict[tuple[str, ...], Any]
) -> None:
    groups = group_traces(tau_sample)
    assert len(sample_procedures) == len(groups) > 20
    for proc in sample_procedures.values():
        names = {p.name for p in proc.params}
        assert len(names) == len(proc.params)
        for k, s in enumerate(proc.steps):
            validate(s.args, params=names, earlier_steps={x.id for x in proc.steps[:k]},
                     step_id=s.id)
        used = {n["$param"] for s in proc.steps for _, n in references(s.args) if "$param" in n}
        assert used == names  # no unused param


def test_constant_named_by_every_task_is_a_param_not_a_literal() -> None:
    # every demonstration (and the whole corpus) gave the same reason, and every task
    # names it: a user's choice that happened to agree, not a constant of the tool
    demos = [trace(f"Cancel order {o} because no longer needed.",
                   step("cancel_pending_order", order_id=o, reason="no longer needed"))
             for o in ORDERS]
    proc = induce(demos, corpus=CorpusStats.from_traces(demos))
    reason = proc.steps[0].args["reason"]
    assert reason == {"$param": "reason"}
    bound = bind_task(proc, "Cancel order #W9999999 because ordered by mistake.").values
    assert bound.get("reason") != "no longer needed"


def test_constant_the_tasks_do_not_name_stays_literal() -> None:
    demos = [trace(f"Cancel order {o}.",
                   step("cancel_pending_order", order_id=o, reason="no longer needed"))
             for o in ORDERS]
    proc = induce(demos, corpus=CorpusStats.from_traces(demos, min_constant=3))
    assert proc.steps[0].args["reason"] == "no longer needed"
