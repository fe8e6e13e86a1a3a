"""One execution shape for every surface, and the expiry of abandoned client runs.

The shape (:func:`execution_view`) is the stored :class:`~procmem.core.model.Execution`
as JSON (``id``, ``procedure``, ``version``, ``status``, ``params``, ``step_runs``,
``needs``, ``error``, ...) plus the turn view:

* ``next_call``: the tool call the client must make now (``step_id``, ``action``,
  ``args``, ``attempt``, ``idempotency_key``), or ``null``. It is set while a
  client-driven execution (``driver == "client"``) is ``running`` with a call
  handed out; for a call inside a sub-procedure it is known only to the turn
  that handed it out (``GET`` shows ``null``);
* ``awaiting``: ``"tool_result"`` (make ``next_call``, post its result),
  ``"answers"`` (``paused``: answer ``needs``), or ``null`` (running inside
  procmem, or ended);
* ``execution_id``: the same as ``id`` (kept for clients of the earlier turn shape).

REST (``POST /executions``, ``.../results``, ``.../answers``, ``GET
/executions[/{id}]``), the MCP procedure tools and ``continue_execution``, and
Python (:meth:`procmem.services.client.Turn.to_json`) all return it.

Expiry: a client-driven execution still ``running`` (a call handed out, its
result never posted) whose last turn is older than ``ttl_s`` is marked
``failed`` with the error ``"expired: no turn for N s"`` when it is read
(:func:`expire_if_abandoned`, called by ``get_execution``, ``list_executions``
and ``advance``). Paused executions wait for answers and never expire.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ..core.drivers import ToolCall, idempotency_key
from ..core.errors import ExecutionBusy
from ..core.model import Execution, utcnow
from ..store.base import Store
from .lease import client_owner

__all__ = ["DEFAULT_CLIENT_TTL_S", "execution_view", "expire_if_abandoned", "last_turn_at"]

DEFAULT_CLIENT_TTL_S = 24 * 3600.0
"""How long a client-driven execution may go without a turn before it expires (s)."""


def execution_view(ex: Execution, call: ToolCall | None = None) -> dict[str, Any]:
    """The one JSON shape of an execution (module docstring).

    Args:
        ex: The execution as stored.
        call: The call just handed out, when the caller knows it (a turn);
            otherwise it is read from ``ex.in_flight`` for a client-driven run.

    Returns:
        ``ex`` as JSON plus ``execution_id``, ``next_call`` and ``awaiting``.
    """
    out = ex.model_dump(mode="json")
    nxt: dict[str, Any] | None = None
    if call is not None:
        nxt = {"step_id": call.step_id, "action": call.action, "args": call.args,
               "attempt": call.attempt, "idempotency_key": call.idempotency_key}
    elif ex.status == "running" and ex.driver == "client" and ex.in_flight is not None:
        started = ex.in_flight
        nxt = {"step_id": started.step_id, "action": started.action, "args": started.args,
               "attempt": started.attempt,
               "idempotency_key": idempotency_key(ex.id, started.step_id, started.attempt)}
    out["execution_id"] = ex.id
    out["next_call"] = nxt
    out["awaiting"] = ("tool_result" if nxt is not None and ex.status == "running"
                       else "answers" if ex.status == "paused" else None)
    return out


def last_turn_at(ex: Execution) -> datetime:
    """When the execution last moved: its start, a step run's try, or the call handed out."""
    times = [ex.started_at]
    if ex.in_flight is not None:
        times.append(ex.in_flight.started_at)
    for run in ex.step_runs:  # a try ends duration_ms after it started
        times.append(run.started_at + timedelta(milliseconds=run.duration_ms))
    return max(times)


def expire_if_abandoned(store: Store, ex: Execution, ttl_s: float | None, *,
                        now: datetime | None = None) -> Execution:
    """Mark ``ex`` failed when it is a client-driven run with no turn for ``ttl_s`` seconds.

    Only an execution with ``driver == "client"`` and status ``running`` can
    expire. The expiry takes the execution's client lease first, so a ``resume``
    with tools that holds it (``ExecutionBusy``) leaves the execution as it is.

    Args:
        store: Where ``ex`` is stored; the failed header is written there.
        ex: The execution as read.
        ttl_s: Seconds without a turn before it expires (``None``: never).
        now: The current time (default: now, UTC).

    Returns:
        ``ex`` (failed, ``error = "expired: no turn for N s"``, when it expired).
    """
    if ttl_s is None or ex.driver != "client" or ex.status != "running":
        return ex
    now = now or utcnow()
    idle = (now - last_turn_at(ex)).total_seconds()
    if idle <= ttl_s:
        return ex
    owner = client_owner(ex.id)
    try:
        store.acquire_lease(ex.id, owner, lease_s=60.0)
    except ExecutionBusy:
        return ex
    fresh = store.get_execution(ex.id)
    if fresh.status != "running" or fresh.driver != "client":
        store.release_lease(ex.id, owner)
        return fresh
    fresh.status, fresh.needs, fresh.finished_at = "failed", [], now
    fresh.error = (f"expired: no turn for {int(idle)} s (a client-driven execution expires "
                   f"after {int(ttl_s)} s without one)")
    store.put_execution(fresh)  # not running: the store clears the lease
    return fresh
