"""A tiny synthetic "ship an order" demonstration shared by several test modules."""

from __future__ import annotations

import json

from procmem.core.model import Trace, TraceStep

SHIP = "charge_card-then-ship"
"""The name procmem learns for these demonstrations."""


def ship_trace(i: int, order: str | None = None, amount: int | None = None) -> Trace:
    """Demonstration ``i``: charge ``amount`` for ``order``, then ship it.

    Defaults: order ``#O{1000 + i}``, amount ``20 + 30 * i`` dollars.
    """
    order = order or f"#O{1000 + i}"
    amount = 20 + 30 * i if amount is None else amount
    return Trace(id=f"ship-{i}", task=f"Ship order {order} paying {amount} dollars.",
                 outcome="success", steps=[
                     TraceStep(action="charge_card", args={"order_id": order, "amount": amount},
                               output=json.dumps({"charged": amount})),
                     TraceStep(action="ship", args={"order_id": order},
                               output=json.dumps({"shipped": order}))])
