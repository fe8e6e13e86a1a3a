"""Verification: does a candidate procedure reproduce the runs it claims to cover?

A candidate version (a repair, prune, merge or factor) may be promoted only
after it reproduces every recorded run it covers. For each covered trace,
:func:`verify` replays the candidate with the sans-IO core
(:func:`procmem.core.replay.replay_core` driven by :func:`procmem.core.replay.drive`)
against a :class:`procmem.learning.recorded.RecordedEnvironment` built from that trace:

* params are bound from the trace's task text by :func:`procmem.induction.bind.bind_task`
  (only values found verbatim in the task);
* the remaining needs are answered by a :class:`procmem.learning.recorded.Oracle` over
  the trace, aligned on the candidate's steps with sub-procedures inlined;
* the trace is *reproduced* when the replay succeeded and issued exactly the
  trace's successful calls (same actions, same args, same order, sub-procedure
  calls included). A trace with no successful step is reproduced when the
  replay succeeded without issuing any call.

Invariants:
    * No side effects: the only tools ever called are recorded environments;
      nothing is persisted (``persist=None``) and ``Sleep`` events (retry
      back-off) are answered without sleeping.
    * Deterministic: equal inputs give equal results (all fields but
      ``checked_at``).
    * A failing replay is data, never an exception: a call that differs, a
      pause, or a procmem error raised by the replay of a broken candidate
      (``CycleError``, ``NotFound``, ``InvalidProcedure``, ``ParamError``...) is
      a failure of that trace whose reason names what went wrong (for errors:
      the stable ``code`` and the message).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from ..core.checks import procedure_tree
from ..core.drivers import Core, Event, Sleep
from ..core.errors import ProcmemError
from ..core.model import Execution, Need, Procedure, Step, Trace, utcnow
from ..core.replay import check_tools, drive, replay_core
from ..core.template import references
from ..induction.bind import bind_task
from .recorded import Oracle, RecordedEnvironment

__all__ = ["Verification", "verify"]

_SHOWN_CHARS = 200  # JSON args shown in a reason are cut to about this length


class Verification(BaseModel):
    """What verifying one candidate against the runs it covers found.

    Attributes:
        name: The candidate's procedure name.
        version: The candidate's version number.
        reproduced: Ids of the covered traces the candidate replayed exactly, in
            the order given.
        failed: Trace id -> why it was not reproduced, one line, e.g.
            ``"call 2: expected cancel_pending_order({...}) got ..."``.
        ok: True when ``covers`` was not empty and every trace was reproduced.
        checked_at: When the verification ran (timezone-aware UTC).
    """

    name: str
    version: int
    reproduced: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)
    ok: bool = False
    checked_at: datetime = Field(default_factory=utcnow)


def verify(
    candidate: Procedure, covers: list[Trace], procedures: Mapping[str, Procedure]
) -> Verification:
    """Replay ``candidate`` against a recorded environment of each covered trace.

    Args:
        candidate: The proposed procedure version.
        covers: The recorded runs it must reproduce; each trace's successful
            steps are the exact calls the candidate must issue. A trace id given
            twice is verified once.
        procedures: Sub-procedures by name, for ``procedure:NAME`` steps (the
            versions the replay would use).

    Returns:
        A :class:`Verification`; ``ok`` is False when ``covers`` is empty.
    """
    reproduced: list[str] = []
    failed: dict[str, str] = {}
    seen: set[str] = set()
    actions = _tree_actions(candidate, procedures)
    flat = _flatten(candidate, procedures)
    for trace in covers:
        if trace.id in seen:
            continue
        seen.add(trace.id)
        why = _replay_one(candidate, trace, procedures, actions, flat)
        if why is None:
            reproduced.append(trace.id)
        else:
            failed[trace.id] = why
    return Verification(
        name=candidate.name,
        version=candidate.version,
        reproduced=reproduced,
        failed=failed,
        ok=bool(reproduced) and not failed,
    )


# ------------------------------------------------------------------ one trace


def _replay_one(
    candidate: Procedure,
    trace: Trace,
    procedures: Mapping[str, Procedure],
    actions: list[str],
    flat: Procedure,
) -> str | None:
    """Replay ``candidate`` on one trace: ``None`` when reproduced, else the reason."""
    env = RecordedEnvironment(trace)
    tools = env.tools(actions)
    try:
        check_tools(candidate, procedures, tools)
        params = bind_task(candidate, trace.task).values
        execution = Execution(
            procedure=candidate.name,
            version=candidate.version,
            task=trace.task,
            params=dict(params),
            param_sources={k: "task" for k in params},
        )
        core = replay_core(candidate, execution, procedures)
        done = drive(_without_sleep(core), tools, _TreeOracle(trace, flat), persist=None)
    except ProcmemError as err:
        return f"{err.code}: {err}"
    if done.status == "succeeded" and env.exact():
        return None
    return _why(env, done)


def _why(env: RecordedEnvironment, execution: Execution) -> str:
    """One line naming the first differing call and how the execution ended."""
    expected = [(s.action, s.args) for s in env.recorded]
    issued = env.calls
    parts: list[str] = []
    for i, (want, got) in enumerate(zip(expected, issued, strict=False), start=1):
        if want != got:
            parts.append(f"call {i}: expected {_call(*want)} got {_call(*got)}")
            break
    else:
        if len(issued) > len(expected):
            n = len(expected)
            parts.append(f"extra call {n + 1}: {_call(*issued[n])}")
        elif len(issued) < len(expected):
            n = len(issued)
            parts.append(f"missing call {n + 1}: expected {_call(*expected[n])}")
    if execution.status == "paused":
        keys = [n.key for n in execution.needs]
        parts.insert(0, f"execution paused: needs {_short(json.dumps(keys))}")
    elif execution.status == "failed":
        parts.append(f"execution failed: {_short(execution.error or 'unknown error')}")
    return "; ".join(parts) or f"execution ended {execution.status}"


def _call(action: str, args: Mapping[str, Any]) -> str:
    return f"{action}({_short(json.dumps(args, sort_keys=True, default=str))})"


def _short(text: str) -> str:
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _without_sleep(core: Core) -> Core:
    """Relay ``core``'s events, answering ``Sleep`` at once (recorded tools need no back-off)."""
    reply: Any = None
    while True:
        try:
            event: Event = core.send(reply)
        except StopIteration as stop:
            return stop.value
        reply = None if isinstance(event, Sleep) else (yield event)


# ------------------------------------------------------------ procedure tree


def _tree_actions(procedure: Procedure, procedures: Mapping[str, Procedure]) -> list[str]:
    """The sorted union of tool actions in the sub-procedure tree."""
    return sorted(
        {
            s.action
            for p in procedure_tree(procedure, procedures)
            for s in p.steps
            if s.subprocedure is None
        }
    )


def _flatten(procedure: Procedure, procedures: Mapping[str, Procedure]) -> Procedure:
    """A view of ``procedure`` with sub-procedures inlined, for the oracle's alignment.

    A sub-procedure step ``S`` stays in place (it issues no call) and is followed
    by its child's steps with ids ``S/ID``, matching the ``S/`` prefix of the
    child's need keys. Built with ``model_copy`` (no validation): the ids are not
    valid step ids, and the view is never replayed or stored.
    """
    steps: list[Step] = []

    def add(proc: Procedure, prefix: str, chain: tuple[str, ...]) -> None:
        for step in proc.steps:
            steps.append(step.model_copy(update={"id": prefix + step.id}))
            name = step.subprocedure
            if name is not None and name in procedures and name not in chain:
                add(procedures[name], f"{prefix}{step.id}/", (*chain, name))

    add(procedure, "", (procedure.name,))
    return procedure.model_copy(update={"steps": steps})


def _key_prefix(key: str) -> str:
    """The sub-procedure prefix of a need key: ``"s2/s1/"`` for ``"s2/s1/ask:s3:/x"``.

    Step ids hold no ``:`` and every base key does, so leading ``/``-separated
    segments without ``:`` are the prefix.
    """
    prefix = ""
    while True:
        head, sep, rest = key.partition("/")
        if not sep or ":" in head:
            return prefix
        prefix, key = f"{prefix}{head}/", rest


class _TreeOracle:
    """An :class:`~procmem.learning.recorded.Oracle` for a candidate with sub-procedures.

    Needs of a sub-procedure run by step ``S`` (keys prefixed ``S/``) are mapped
    to the inlined step ``S/ID``; a param need is turned into the first place the
    param's value is used in a tool call, following it into sub-procedures.
    Without sub-procedures this answers exactly as ``Oracle(trace, candidate)``.
    """

    def __init__(self, trace: Trace, flat: Procedure) -> None:
        self.oracle = Oracle(trace, flat)
        self.flat = flat

    def __call__(self, need: Need) -> Any:
        prefix = _key_prefix(need.key)
        if need.kind == "ask" and need.step_id is not None:
            return self.oracle(need.model_copy(update={"step_id": prefix + need.step_id}))
        if need.kind == "param" and need.name is not None:
            found = self._first_use(need.name, prefix)
            if found is None:
                return None
            step_id, pointer = found
            ask = Need(key=need.key, kind="ask", step_id=step_id, arg_path=pointer)
            return self.oracle(ask)
        return None  # error needs: a recorded run has no substitute output

    def _first_use(self, name: str, prefix: str) -> tuple[str, str] | None:
        """Where the param ``name`` of the procedure at ``prefix`` first reaches a tool call."""
        for step in self._level(prefix):
            for pointer, node in references(step.args):
                if node.get("$param") != name:
                    continue
                if step.subprocedure is None:
                    return step.id, pointer
                child_param = pointer.removeprefix("/")
                if child_param and "/" not in child_param:
                    found = self._first_use(child_param, step.id + "/")
                    if found is not None:
                        return found
        return None

    def _level(self, prefix: str) -> list[Step]:
        """The inlined steps directly inside the procedure at ``prefix``."""
        return [
            s for s in self.flat.steps
            if s.id.startswith(prefix) and "/" not in s.id[len(prefix):]
        ]

