"""Records and helpers shared by the contract tests (protocol methods only)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from procmem.core.errors import ExecutionBusy
from procmem.core.model import Lineage, Param, Procedure, Step, StepRun, Trace, TraceStep
from procmem.store import Store

T0 = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)

NAMES = ["zeta", "Zeta", "alpha", "_x", "z_b", "z-a", "z.a", "B", "a2", "a10", "Z9"]
"""Procedure names whose code-point order (``sorted``: ``B Z9 Zeta _x a10 a2 alpha z-a z.a
z_b zeta``) differs from case-insensitive, natural and locale orders."""

fixture_ok = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# ------------------------------------------------------------------ strategies

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=4),
    max_leaves=10,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
moments = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)

trace_steps = st.builds(
    TraceStep,
    action=st.text(min_size=1, max_size=20),
    args=json_objects,
    output=json_values,
    error=st.none() | st.text(max_size=40),
    duration_ms=st.none() | st.floats(min_value=0, max_value=1e7),
)
traces = st.builds(
    Trace,
    task=st.text(max_size=200),
    steps=st.lists(trace_steps, max_size=5),
    outcome=st.sampled_from(["success", "failure", "unknown"]),
    reward=st.none() | st.floats(min_value=0, max_value=1),
    source=st.none() | st.text(max_size=12),
    metadata=json_objects,
    created_at=moments,
)

identifiers = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
params = st.builds(
    Param,
    name=identifiers,
    schema_=st.sampled_from([{}, {"type": "string"}, {"type": "integer", "minimum": 0}]),
    description=st.text(max_size=40),
    examples=st.lists(json_scalars, max_size=3),
    required=st.booleans(),
)
steps = st.builds(
    Step,
    id=identifiers,
    action=st.text(min_size=1, max_size=20),
    args=json_objects,
    side_effect=st.none() | st.booleans(),
    description=st.text(max_size=40),
)
procedures = st.builds(
    Procedure,
    name=st.from_regex(r"[a-z0-9_][a-z0-9_.-]{0,30}", fullmatch=True),
    version=st.integers(min_value=1, max_value=10_000),
    description=st.text(max_size=100),
    params=st.lists(params, max_size=3, unique_by=lambda p: p.name),
    steps=st.lists(steps, max_size=4, unique_by=lambda s: s.id),
    tags=st.lists(st.text(max_size=10), max_size=3),
    status=st.sampled_from(["candidate", "active", "deprecated"]),
    lineage=st.builds(Lineage, traces=st.lists(st.text(max_size=10), max_size=3),
                      parent_version=st.none() | st.integers(min_value=1, max_value=9),
                      reason=st.text(max_size=20)),
    created_at=moments,
)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


def proc(name: str, version: int = 1, status: str = "active", **fields: Any) -> Procedure:
    return Procedure.model_validate({"name": name, "version": version, "status": status,
                                     "steps": [{"id": "s1", "action": "noop"}], **fields})


def step_run(index: int, **fields: Any) -> StepRun:
    return StepRun(index=index, step_id=f"s{index}", action="get_order", args={"i": index},
                   output=f'{{"n": {index}}}', started_at=T0, **fields)


def lease_of(store: Store, execution_id: str, *,
             now: datetime | None = None) -> tuple[str, datetime] | None:
    """The live lease ``(owner, expires_at)`` of an execution, or ``None``, through the protocol.

    A probe owner tries to take the lease: ``ExecutionBusy`` names the live one;
    when the probe gets it (no live lease) it gives it back at once. ``None``
    too for an unknown execution.
    """
    probe = f"lease-probe-{uuid.uuid4().hex[:8]}"
    try:
        store.acquire_lease(execution_id, probe, lease_s=1e-3, now=now)
    except ExecutionBusy as busy:
        return busy.owner, busy.expires_at
    except Exception:  # NotFound: an unknown execution has no lease
        return None
    store.release_lease(execution_id, probe)
    return None
