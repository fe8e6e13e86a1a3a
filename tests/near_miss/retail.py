"""Near-miss cases over the τ-retail tools, learned from the real demonstrations.

Training: the 120 real τ-retail traces bundled in ``tests/data`` (MIT, Sierra) and
the 16 tools' real schemas (``tests/data/tau-retail-tools.json``). Tasks are
worded like the real ones ("Your name is ... Cancel order #W... because ...") and
name real orders, items and payment methods of the τ-retail database.

The tools here record the call and return a stand-in of the real output (the order
id and its new status, as JSON text): no learned τ-retail procedure reads an
earlier step's output (train traces hold only the state-changing calls), so no
value sent depends on it. Item ids are not in the task (an agent looks them up),
so the cases answer the ``/item_ids`` and ``/new_item_ids`` holes with them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from procmem import Trace, read_traces

from .harness import Call, Case, TrainingSet

__all__ = ["CASES", "SIGNATURES", "TRAINING", "output"]

DATA = Path(__file__).resolve().parent.parent / "data"
TOOLS_JSON = DATA / "tau-retail-tools.json"


def _signatures() -> dict[str, list[tuple[str, bool]]]:
    out = {}
    for tool in json.loads(TOOLS_JSON.read_text()):
        fn = tool.get("function", tool)
        required = set(fn["parameters"].get("required", []))
        out[fn["name"]] = [(p, p in required) for p in fn["parameters"]["properties"]]
    return out


SIGNATURES = _signatures()
"""Each τ-retail tool's keyword parameters as ``(name, required)``, from its schema."""

_STATUS = {"cancel_pending_order": "cancelled",
           "return_delivered_order_items": "return requested",
           "exchange_delivered_order_items": "exchange requested"}


def output(action: str, args: dict[str, Any]) -> str:
    """A stand-in of the tool's output: the order (or user) and its status, as JSON text."""
    key = "order_id" if "order_id" in args else "user_id"
    return json.dumps({key: args.get(key), "status": _STATUS.get(action, "pending")})


def _traces() -> list[Trace]:
    traces, problems = read_traces(DATA / "tau_retail_sample.jsonl")
    assert not problems
    return traces


TRAINING = TrainingSet("tau-retail", _traces, TOOLS_JSON)


def call(action: str, **args: Any) -> Call:
    return Call(action, args)


def cancel(order: str, reason: str) -> Call:
    return call("cancel_pending_order", order_id=order, reason=reason)


def ret(order: str, items: list[str], payment: str) -> Call:
    return call("return_delivered_order_items", order_id=order, item_ids=items,
                payment_method_id=payment)


def modify(order: str, items: list[str], new: list[str], payment: str) -> Call:
    return call("modify_pending_order_items", order_id=order, item_ids=items,
                new_item_ids=new, payment_method_id=payment)


def address(order: str, line1: str, line2: str, city: str, state: str, zip_: str) -> Call:
    return call("modify_pending_order_address", order_id=order, address1=line1, address2=line2,
                city=city, country="USA", state=state, zip=zip_)


def who(name: str, zip_: str) -> str:
    """The opening of a τ-retail task: who the user is."""
    return f"Your name is {name} and your zip code is {zip_}. You are patient, direct. "


SOFIA = who("Sofia Rossi", "78784")  # pending #W5918442 (credit_card_5051208)
MEI = who("Mei Ahmed", "78705")  # pending #W2631563 (paypal_7160322)
SOFIA_T = who("Sofia Thomas", "75307")  # pending #W7619352 (paypal_5334408)
AVA = who("Ava Moore", "78234")  # delivered #W4817420 (gift_card_8168843)
OMAR = who("Omar Khan", "75203")  # delivered #W6304490 (credit_card_4420174)
AMELIA = who("Amelia Wilson", "75215")  # delivered #W9077205 (gift_card_7108145)

KETTLE_BOTTLE = {"/item_ids": ["6777246137", "9624127908"]}
EARBUDS = {"/item_ids": ["2757705742"], "/new_item_ids": ["8555936349"]}
EARBUDS_TEXT = ("modify Wireless Earbuds {'color': 'blue', 'battery life': '4 hours', "
                "'water resistance': 'IPX7'} to {'battery life': '8 hours', "
                "'water resistance': 'IPX4'}")
THERMOSTAT = {"/item_ids": ["2791467853"], "/new_item_ids": ["7747408585"]}
THERMOSTAT_TEXT = ("modify Smart Thermostat {'compatibility': 'Apple HomeKit', 'color': "
                   "'stainless steel'} to {'compatibility': 'Google Assistant'}")


def change_address(order: str, line1: str, line2: str, city: str, state: str, zip_: str
                   ) -> str:
    """The τ-retail wording of an address change (the dict as Python prints it)."""
    fields = {"order_id": order, "address1": line1, "address2": line2, "city": city,
              "country": "USA", "state": state, "zip": zip_}
    return f"For {order}, change address to {fields} (same as #W1242543). "


CASES: list[Case] = [
    # -- clean: worded like the real demonstrations
    Case("cancel-clean", "clean", SOFIA + "Cancel order #W5918442 because no longer needed. ",
         (cancel("#W5918442", "no longer needed"),), must_complete=True),
    Case("cancel-clean-by-mistake", "clean",
         MEI + "Cancel order #W2631563 because ordered by mistake. ",
         (cancel("#W2631563", "ordered by mistake"),), must_complete=True),
    Case("return-clean", "clean",
         AVA + "Return #W4817420 via gift_card_8168843: Water Bottle; Electric Kettle; ",
         (ret("#W4817420", ["6777246137", "9624127908"], "gift_card_8168843"),),
         must_complete=True, answers=KETTLE_BOTTLE),
    Case("modify-items-clean", "clean",
         SOFIA_T + f"For #W7619352, {EARBUDS_TEXT}; via paypal_5334408. ",
         (modify("#W7619352", ["2757705742"], ["8555936349"], "paypal_5334408"),),
         must_complete=True, answers=EARBUDS),
    Case("exchange-clean", "clean",
         OMAR + "For #W6304490, exchange Garden Hose {'length': '25ft', 'material': 'vinyl', "
         "'color': 'green'} to {'color': 'blue'}; via credit_card_4420174. ",
         (call("exchange_delivered_order_items", order_id="#W6304490", item_ids=["5753502325"],
               new_item_ids=["9829827210"], payment_method_id="credit_card_4420174"),),
         must_complete=True,
         answers={"/item_ids": ["5753502325"], "/new_item_ids": ["9829827210"]}),
    Case("cancel-two-orders", "clean",
         SOFIA + "Cancel order #W5918442 because no longer needed. Cancel order #W2631563 "
         "because ordered by mistake. ",
         (cancel("#W5918442", "no longer needed"), cancel("#W2631563", "ordered by mistake")),
         note="a task naming two orders, each with its own reason"),
    # -- reuse: one value used by several steps, or two values of one kind
    Case("address-then-items-clean", "reuse",
         MEI + change_address("#W2631563", "445 Maple Drive", "Suite 394", "Fort Worth", "TX",
                              "76165") + f"For #W2631563, {THERMOSTAT_TEXT}; via paypal_7160322. ",
         (address("#W2631563", "445 Maple Drive", "Suite 394", "Fort Worth", "TX", "76165"),
          modify("#W2631563", ["2791467853"], ["7747408585"], "paypal_7160322")),
         must_complete=True, answers=THERMOSTAT),
    Case("address-then-items-other-order", "reuse",
         MEI + change_address("#W2631563", "445 Maple Drive", "Suite 394", "Fort Worth", "TX",
                              "76165") + f"For #W5918442, {THERMOSTAT_TEXT}; via paypal_7160322. ",
         (address("#W2631563", "445 Maple Drive", "Suite 394", "Fort Worth", "TX", "76165"),
          modify("#W5918442", ["2791467853"], ["7747408585"], "paypal_7160322")),
         answers=THERMOSTAT,
         note="the demonstrations used one order for both steps; this task names two"),
    Case("payment-then-items-same-method", "reuse",
         SOFIA_T + "For #W7619352, change payment to credit_card_5051208. For #W7619352, "
         f"{EARBUDS_TEXT}; via credit_card_5051208. ",
         (call("modify_pending_order_payment", order_id="#W7619352",
               payment_method_id="credit_card_5051208"),
          modify("#W7619352", ["2757705742"], ["8555936349"], "credit_card_5051208")),
         answers=EARBUDS),
    Case("payment-then-items-two-methods", "reuse",
         SOFIA_T + "For #W7619352, change payment to credit_card_5051208. For #W7619352, "
         f"{EARBUDS_TEXT}; via paypal_5334408. ",
         (call("modify_pending_order_payment", order_id="#W7619352",
               payment_method_id="credit_card_5051208"),
          modify("#W7619352", ["2757705742"], ["8555936349"], "paypal_5334408")),
         answers=EARBUDS),
    Case("cancel-two-orders-same-reason", "reuse",
         SOFIA + "Cancel order #W5918442 because no longer needed. Cancel order #W2631563 "
         "because no longer needed. ",
         (cancel("#W5918442", "no longer needed"), cancel("#W2631563", "no longer needed"))),
    # -- span: reasons and address fields of other lengths
    Case("cancel-reason-no-final-period", "span",
         SOFIA + "Cancel order #W5918442 because ordered by mistake",
         (cancel("#W5918442", "ordered by mistake"),)),
    Case("cancel-reason-overlong", "span",
         SOFIA + "Cancel order #W5918442 because no longer needed, since my sister already "
         "gave me one as a birthday present. ",
         (cancel("#W5918442", "no longer needed"),),
         note="the reason is the tool's 'no longer needed', not the whole clause"),
    Case("cancel-reason-not-an-allowed-one", "span",
         SOFIA + "Cancel order #W5918442 because I found the same blender cheaper at a "
         "local store. ", (),
         note="the tool takes 'no longer needed' or 'ordered by mistake': ask, send nothing"),
    Case("cancel-reason-one-word", "span",
         SOFIA + "Cancel order #W5918442 because duplicate. ", (),
         note="not one of the tool's two reasons: nothing may be sent"),
    Case("address-long-street-empty-line2", "span",
         MEI + change_address("#W2631563", "1600 Pennsylvania Avenue NW", "", "Washington",
                              "DC", "20500") + f"For #W2631563, {THERMOSTAT_TEXT}; via "
         "paypal_7160322. ",
         (address("#W2631563", "1600 Pennsylvania Avenue NW", "", "Washington", "DC", "20500"),
          modify("#W2631563", ["2791467853"], ["7747408585"], "paypal_7160322")),
         answers=THERMOSTAT),
    Case("address-three-word-city", "span",
         MEI + change_address("#W2631563", "12 Canyon Road", "Apt 4B", "Salt Lake City", "UT",
                              "84101") + f"For #W2631563, {THERMOSTAT_TEXT}; via "
         "paypal_7160322. ",
         (address("#W2631563", "12 Canyon Road", "Apt 4B", "Salt Lake City", "UT", "84101"),
          modify("#W2631563", ["2791467853"], ["7747408585"], "paypal_7160322")),
         answers=THERMOSTAT),
    Case("return-with-trailing-explanation", "span",
         AVA + "Return #W4817420 via gift_card_8168843: Water Bottle; Electric Kettle; The "
         "kettle leaks and the lid of the bottle broke.",
         (ret("#W4817420", ["6777246137", "9624127908"], "gift_card_8168843"),),
         answers=KETTLE_BOTTLE),
    # -- shape: ids and reasons written another way
    Case("cancel-order-id-without-hash", "shape",
         SOFIA + "Cancel order W5918442 because no longer needed. ",
         (cancel("#W5918442", "no longer needed"),),
         note="the tool wants the '#': 'W5918442' must not be sent"),
    Case("cancel-order-id-eight-digits", "shape",
         SOFIA + "Cancel order #W59184420 because no longer needed. ",
         (cancel("#W59184420", "no longer needed"),)),
    Case("cancel-order-id-then-comma", "shape",
         SOFIA + "Cancel order #W5918442, because no longer needed. ",
         (cancel("#W5918442", "no longer needed"),)),
    Case("cancel-reason-title-case", "shape",
         SOFIA + "Cancel order #W5918442 because No Longer Needed. ",
         (cancel("#W5918442", "no longer needed"),),
         note="the tool's enum value, not the capitalized text"),
    Case("return-payment-id-eight-digits", "shape",
         AMELIA + "Return #W9077205 via gift_card_71081459: Jigsaw Puzzle; ",
         (ret("#W9077205", ["9370300555"], "gift_card_71081459"),),
         answers={"/item_ids": ["9370300555"]}),
    Case("return-payment-id-unseen-kind", "shape",
         AMELIA + "Return #W9077205 via apple_pay_7108145: Jigsaw Puzzle; ",
         (ret("#W9077205", ["9370300555"], "apple_pay_7108145"),),
         answers={"/item_ids": ["9370300555"]}),
    # -- number: other numbers and order ids next to the ones that matter
    Case("cancel-street-number-after", "number",
         who("Sofia Rossi", "20500") + "Cancel order #W5918442 because no longer needed. "
         "Ship future orders to 1600 Pennsylvania Avenue. ",
         (cancel("#W5918442", "no longer needed"),)),
    Case("cancel-one-of-two-orders", "number",
         SOFIA + "Cancel order #W5918442 because no longer needed. Keep order #W2631563, it "
         "is a gift. ",
         (cancel("#W5918442", "no longer needed"),),
         note="the second order must not be cancelled"),
    Case("cancel-reason-names-another-order", "number",
         SOFIA + "Cancel order #W5918442 because ordered by mistake, I meant to reorder "
         "#W2631563. ",
         (cancel("#W5918442", "ordered by mistake"),)),
    Case("return-another-order-after", "number",
         AVA + "Return #W4817420 via gift_card_8168843: Water Bottle; Electric Kettle; I "
         "also ordered #W6304490 last week.",
         (ret("#W4817420", ["6777246137", "9624127908"], "gift_card_8168843"),),
         answers=KETTLE_BOTTLE),
    Case("address-street-number-like-zip", "number",
         MEI + change_address("#W2631563", "20500 Ocean Boulevard", "Unit 7", "Malibu", "CA",
                              "90265") + f"For #W2631563, {THERMOSTAT_TEXT}; via "
         "paypal_7160322. ",
         (address("#W2631563", "20500 Ocean Boulevard", "Unit 7", "Malibu", "CA", "90265"),
          modify("#W2631563", ["2791467853"], ["7747408585"], "paypal_7160322")),
         answers=THERMOSTAT),
    Case("address-free-form-with-street-number", "number",
         SOFIA + "Change the shipping address of order #W5918442 to: 1600 Pennsylvania "
         "Avenue NW, Washington, DC 20500. ",
         (address("#W5918442", "1600 Pennsylvania Avenue NW", "", "Washington", "DC",
                  "20500"),),
         note="the street number must not become an order id or any other value"),
    # -- one-word: one word away from another procedure's demonstrations
    Case("return-worded-like-cancel", "one-word",
         SOFIA + "Return order #W5918442 because no longer needed. ", (),
         note="one word from a cancel task; a return needs items and a payment method"),
    Case("exchange-worded-like-cancel", "one-word",
         SOFIA + "Exchange order #W5918442 because no longer needed. ", ()),
    Case("exchange-worded-like-return", "one-word",
         AVA + "Exchange #W4817420 via gift_card_8168843: Water Bottle; Electric Kettle; ",
         (), answers=KETTLE_BOTTLE,
         note="one word from a return task; the new items are unknown: no return may be sent"),
    Case("modify-worded-like-exchange", "one-word",
         OMAR + "For #W6304490, modify Garden Hose {'length': '25ft', 'material': 'vinyl', "
         "'color': 'green'} to {'color': 'blue'}; via credit_card_4420174. ",
         (modify("#W6304490", ["5753502325"], ["9829827210"], "credit_card_4420174"),),
         answers={"/item_ids": ["5753502325"], "/new_item_ids": ["9829827210"]}),
    Case("payment-change-alone", "one-word",
         SOFIA_T + "For #W7619352, change payment to credit_card_5051208. ",
         (call("modify_pending_order_payment", order_id="#W7619352",
               payment_method_id="credit_card_5051208"),),
         answers=EARBUDS,
         note="the only payment procedure also modifies items, which this task does not ask"),
]
