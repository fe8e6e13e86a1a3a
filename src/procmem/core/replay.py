"""Replay: the policy core, a generator that does no I/O, driven by drive / adrive.

:func:`replay_core` walks a procedure's steps and *yields* what it needs done;
the driver does it and ``send()``s the reply (STYLE §6, like httpx auth flows):

* ``ToolCall(step_id, action, args, attempt, idempotency_key)``: call a tool with
  ``args`` as keyword arguments; reply a :class:`ToolResult`.
* ``NeedValues(needs)``: values the core cannot bind; reply ``{need.key: value}``
  for any subset (an empty dict is fine: the execution pauses).
* ``Sleep(seconds)``: back off before a retry; reply ``None``.
* ``Persist(execution, step_run)``: store the header and the step run if any;
  reply ``None``.

Invariants:
    * All policy (binding, ``expect``, ``on_error``, needs, pause, resume) lives in
      the core; :func:`drive` and :func:`adrive` only perform events, so they
      produce equal executions for equal tools and answers. Events and drivers
      live in :mod:`procmem.core.drivers`, pre-run and ``expect`` checks in
      :mod:`procmem.core.checks`; both are re-exported here.
    * An execution holds at most one step run per step index, sorted by index;
      a re-run replaces it. Every new or replaced step run is followed at once by
      ``Persist(execution, step_run)``; the header is persisted before the first
      step run, before every tool call (with the call in ``execution.in_flight``)
      and when the execution ends or pauses.
    * Tries are append-only: a retry, or a resume that runs a failed step again,
      keeps the failed try in the step run's ``history`` and sends the next
      attempt number; a failed try that will be retried is persisted before the
      retry is sent. An ``on_error: ask`` answer keeps the failed try too.
    * Idempotency keys: every ``ToolCall`` carries
      ``idempotency_key(execution.id, step_id, attempt)`` =
      ``"EXECUTION_ID/STEP_ID/ATTEMPT"``. Because the call is stored as started
      before it is yielded, a run that stopped between the tool's side effect and
      the stored result leaves ``in_flight`` open; resume then keeps that call in
      the history as ``unknown`` and sends it again with the *same* attempt
      number, hence the same key, so a tool that remembers keys can make the
      repeat harmless (when the args no longer bind to the same values, the next
      number is used instead). The drivers pass the key only to a tool whose
      signature has a parameter named ``idempotency_key``
      (:func:`procmem.core.drivers.accepts_idempotency_key`); other tools are called
      exactly as before. A sub-procedure step has no key of its own: its child
      execution's calls have theirs, but a child interrupted mid-call is started
      again as a new child execution (new keys) on resume.
    * A tool that fails, a failing ``expect`` check, a ``$step`` reference that does
      not resolve, a sub-procedure that fails: all are data (a failed step run),
      never exceptions. Exceptions are for caller mistakes and are raised before
      any tool call: ``CycleError``, ``NotFound``, ``InvalidProcedure``,
      ``ParamError``, ``ReplayError`` (and ``UnknownTool`` from :func:`check_tools`).
    * Resume = run the core again on the same execution (with answers added): it
      starts at the first step index without a ``succeeded`` or ``skipped`` step
      run, so a finished step is never called twice. That a run is not running the
      same execution elsewhere is the caller's lease (:mod:`procmem.services.lease`).
    * A ``$select`` reference binds only when its selection decides the value
      (one match, or matches whose values are equal; source
      ``select:STEP_ID#POINTER``); otherwise it is a need keyed like an ``$ask``,
      with the matching elements (all when none match) as candidates: never a pick.
    * Need keys: ``param:NAME``, ``ask:STEP_ID:POINTER``, ``error:STEP_ID``. Needs
      of a sub-procedure run by step ``S`` carry the prefix ``S/`` (e.g.
      ``s2/param:order_id``), both when yielded and when paused; a paused child's
      execution snapshot is kept in ``answers["child:S"]`` so resume continues it.
    * Stored outputs are JSON values (copied); anything else is stored as ``str()``.
    * A value holding a redaction marker (``[REDACTED:kind]``: a secret redacted
      when the execution was stored, :mod:`procmem.services.lease`) is never sent: a param,
      a ``$step`` value, a selection or an answer holding one becomes a need again.
"""

from __future__ import annotations

import copy
from collections.abc import Generator, Mapping
from functools import partial
from typing import Any, NamedTuple

from ..security.secret_params import contains_marker
from .alternatives import choice_output, conditional_params, gate
from .checks import check_params, check_subprocedures, check_tools, first_failure
from .drivers import (
    Core,
    Event,
    NeedValues,
    Persist,
    Sleep,
    ToolCall,
    ToolResult,
    adrive,
    drive,
    idempotency_key,
)
from .errors import CycleError, InvalidTemplate, ParamError, ReplayError
from .model import (
    CallStarted,
    Execution,
    Need,
    Param,
    Procedure,
    Step,
    StepRun,
    utcnow,
)
from .replay_parts import OMIT, next_try, strip_omitted, where_predicates
from .replay_parts import as_attempt as _as_attempt
from .replay_parts import relay as _relay
from .replay_parts import storable as _storable
from .template import (
    bind,
    join_pointer,
    json_equal,
    resolve_pointer,
    select_candidates,
    select_matches,
)

__all__ = [
    "OMIT",
    "Core",
    "Event",
    "NeedValues",
    "Persist",
    "Sleep",
    "ToolCall",
    "ToolResult",
    "adrive",
    "check_params",
    "check_subprocedures",
    "check_tools",
    "drive",
    "idempotency_key",
    "replay_core",
    "strip_omitted",
]


def replay_core(
    procedure: Procedure,
    execution: Execution,
    procedures: Mapping[str, Procedure],
    *,
    chain: tuple[str, ...] = (),
) -> Core:
    """Run (or resume) one execution of ``procedure``, yielding the events a driver performs.

    Args:
        procedure: The procedure version ``execution`` runs.
        execution: New (no step runs) or partially done (resume). Mutated in
            place and returned. A succeeded execution is returned unchanged.
        procedures: Sub-procedures by name, pre-loaded by the caller.
        chain: Names of the calling procedures (set for sub-procedures only).

    Yields:
        :class:`ToolCall`, :class:`NeedValues`, :class:`Sleep`, :class:`Persist`.

    Returns:
        The execution, ``succeeded``, ``failed`` or ``paused`` (``needs`` set).

    Raises:
        CycleError, NotFound, InvalidProcedure: see :func:`check_subprocedures`
            (top-level run only).
        ParamError: A given or answered param is unknown or of the wrong type.
        ReplayError: ``execution`` belongs to another procedure version.
    """
    if not chain:
        check_subprocedures(procedure, procedures)
    elif procedure.name in chain:
        raise CycleError([*chain, procedure.name])
    if (execution.procedure, execution.version) != (procedure.name, procedure.version):
        raise ReplayError(
            f"execution {execution.id!r} runs {execution.procedure}@{execution.version}, "
            f"not {procedure.key}"
        )
    if execution.status == "succeeded":
        return execution
    return (yield from _Run(procedure, execution, procedures, chain).run())


class _Outcome(NamedTuple):
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    child_id: str | None = None
    paused: bool = False


class _BindFailure(Exception):
    """A reference that cannot bind at replay time (data: the step fails)."""


_OMIT = OMIT
_NEXT, _STOP, _PAUSE = "next", "stop", "pause"


class _Run:
    """The mutable state of one core run: which outputs and skips earlier steps left."""

    def __init__(
        self,
        procedure: Procedure,
        execution: Execution,
        procedures: Mapping[str, Procedure],
        chain: tuple[str, ...],
    ) -> None:
        self.proc, self.ex, self.procedures, self.chain = procedure, execution, procedures, chain
        self.outputs: dict[str, Any] = {}
        self.skipped: set[str] = set()

    def record(self, run: StepRun) -> Generator[Event, Any, None]:  # alternatives.RunState
        return self._record(run)

    def exchange(self, needs: list[Need]) -> Generator[Event, Any, list[Need]]:
        return self._exchange(needs)

    def adopt_param_answers(self) -> None:
        self._adopt_param_answers()

    def run(self) -> Core:
        ex = self.ex
        ex.status, ex.error, ex.needs, ex.finished_at = "running", None, [], None
        open_needs = yield from self._bind_params()
        if open_needs:
            return (yield from self._pause(open_needs))
        yield Persist(ex, None)
        finished = {r.index: r for r in ex.step_runs if r.status in ("succeeded", "skipped")}
        steps, start = self.proc.steps, 0
        while start < len(steps) and start in finished:  # resume after the finished prefix
            done = finished[start]
            if done.status == "succeeded":
                self.outputs[done.step_id] = done.output
                choice_output(self.proc, start, self.outputs)
            else:
                self.skipped.add(done.step_id)
            start += 1
        for index in range(start, len(steps)):  # gate: optional reads, alternatives
            verdict = (yield from gate(self, index, steps[index])) or (
                yield from self._step(index, steps[index]))
            if verdict == _PAUSE:
                return (yield from self._pause(ex.needs))
            if verdict == _STOP:
                return (yield from self._end("failed"))
        return (yield from self._end("succeeded"))

    # -- params

    def _bind_params(self) -> Generator[Event, Any, list[Need]]:
        proc, ex = self.proc, self.ex
        self._adopt_param_answers()
        for p in proc.params:
            if p.name not in ex.params and "default" in p.schema_:
                ex.params[p.name] = copy.deepcopy(p.schema_["default"])
                ex.param_sources[p.name] = "default"
        # a value redacted when the execution was stored is no value: ask for it again
        redacted = {name for name, v in ex.params.items() if contains_marker(v)}
        for name in redacted:
            del ex.params[name]
            ex.param_sources.pop(name, None)
        later = conditional_params(proc)  # asked for by gate() when their step runs
        missing = [p for p in proc.params
                   if (p.required or p.name in redacted) and p.name not in ex.params
                   and p.name not in later]
        if not missing:
            return []
        open_needs = yield from self._exchange([self._param_need(p) for p in missing])
        self._adopt_param_answers()
        return open_needs

    def _adopt_param_answers(self) -> None:
        """Move ``param:NAME`` answers into ``params`` and validate every param."""
        ex = self.ex
        for key in [k for k in ex.answers if k.startswith("param:")]:
            name = key.removeprefix("param:")
            ex.params[name] = ex.answers.pop(key)
            ex.param_sources[name] = "answer"
        check_params(self.proc, ex.params)

    def _param_need(self, p: Param) -> Need:
        return Need(
            key=f"param:{p.name}",
            kind="param",
            name=p.name,
            prompt=p.description or f"value for {p.name!r}",
            context={"schema": p.schema_, "examples": p.examples, **self._context()},
        )

    def _context(self) -> dict[str, Any]:
        return {"procedure": self.proc.name, "task": self.ex.task}

    # -- one step

    def _step(self, index: int, step: Step) -> Generator[Event, Any, str]:
        ex, policy = self.ex, step.on_error
        last = ex.step_runs[-1] if ex.step_runs else None
        prev = last if last is not None and last.index == index else next(
            (r for r in ex.step_runs if r.index == index), None)
        error_key = f"error:{step.id}"
        resuming_ask = policy.policy == "ask" and error_key in ex.answers
        if prev is not None and prev.status == "failed" and resuming_ask:
            return (yield from self._use_answer(prev.model_copy(deep=True),
                                                ex.answers[error_key]))
        bound = yield from self._bind_args(step)
        if isinstance(bound, list):
            ex.needs = bound
            return _PAUSE
        run = self._next_try(index, step, prev, None if isinstance(bound, str) else bound[0])
        if isinstance(bound, str):  # args cannot bind: retrying would not help
            run.error = bound
            return (yield from self._after_failure(step, run))
        run.args, run.sources = bound
        tries = 0
        while True:
            if tries:  # a retry: the failed try is kept, the next one has a new number
                run.history.append(_as_attempt(run, "failed"))
                run.attempt += 1
                run.output, run.error, run.child_execution_id = None, None, None
                run.started_at, run.duration_ms = utcnow(), 0.0
            tries += 1
            if step.subprocedure is not None:
                outcome = yield from self._call_child(step, run, tries == 1)
            else:
                outcome = yield from self._call_tool(step, run)
            if outcome.paused:
                return _PAUSE
            run.attempts += 1
            run.duration_ms = outcome.duration_ms
            run.output, run.child_execution_id = outcome.output, outcome.child_id
            run.error = outcome.error
            if run.error is None:
                failed_check = first_failure(step.expect, run.output)
                run.error = None if failed_check is None else f"expect failed: {failed_check}"
            if run.error is None or policy.policy != "retry" or tries > policy.retries:
                break
            run.status = "failed"  # stored as failed until the retry's outcome is known
            yield from self._record(run)
            run.status = "succeeded"
            yield Sleep(policy.backoff_s * 2 ** (tries - 1))
        if run.error is not None:
            return (yield from self._after_failure(step, run))
        self.outputs[step.id] = run.output
        choice_output(self.proc, index, self.outputs)
        yield from self._record(run)
        return _NEXT

    def _next_try(self, index: int, step: Step, prev: StepRun | None,
                  args: dict[str, Any] | None) -> StepRun:
        """The step's next try (:func:`core.replay_parts.next_try`); the open call is used."""
        run = next_try(index, step.id, step.action, prev, args, self.ex.in_flight)
        self.ex.in_flight = None
        return run

    def _after_failure(self, step: Step, run: StepRun) -> Generator[Event, Any, str]:
        """Apply ``on_error`` to a failed step run; returns next / stop / pause."""
        ex, policy = self.ex, step.on_error.policy
        run.status = "failed"
        if policy == "skip":
            run.status = "skipped"
            self.skipped.add(step.id)
            yield from self._record(run)
            return _NEXT
        if policy == "ask":
            key = f"error:{step.id}"
            if key not in ex.answers:
                need = Need(
                    key=key,
                    kind="error",
                    prompt=f"step {step.id!r} ({step.action}) failed; "
                    "give the output to use instead",
                    step_id=step.id,
                    action=step.action,
                    context={"error": run.error, "args": run.args, **self._context()},
                )
                open_needs = yield from self._exchange([need])
                if open_needs:
                    yield from self._record(run)
                    ex.needs = open_needs
                    return _PAUSE
            return (yield from self._use_answer(run, ex.answers[key]))
        yield from self._record(run)  # stop, or retries exhausted
        ex.error = f"step {step.id!r} ({step.action}) failed: {run.error}"
        return _STOP

    def _use_answer(self, run: StepRun, answer: Any) -> Generator[Event, Any, str]:
        """An ``on_error: ask`` answer becomes the step's output; the failed try is kept."""
        run.history.append(_as_attempt(run, "failed"))
        run.output, run.error, run.status = _storable(answer), None, "succeeded"
        run.duration_ms = 0.0
        run.sources = {"": "ask"}
        self.outputs[run.step_id] = run.output
        yield from self._record(run)
        return _NEXT

    # -- binding

    def _bind_args(
        self, step: Step
    ) -> Generator[Event, Any, tuple[dict[str, Any], dict[str, str]] | str | list[Need]]:
        """Bind the step's args: ``(args, sources)``, an error text, or the open needs."""
        asks: list[Need] = []
        try:
            bound = self._bind_once(step, asks)
            if asks:  # every $ask of the step in ONE exchange
                open_needs = yield from self._exchange(asks)
                if open_needs:
                    return open_needs
                bound = self._bind_once(step, [])
        except _BindFailure as err:
            return str(err)
        args, sources = bound
        if not isinstance(args, dict):
            return f"args must bind to a JSON object, got {type(args).__name__}"
        return args, sources

    def _bind_once(self, step: Step, asks: list[Need]) -> tuple[Any, dict[str, str]]:
        omitted: list[str] = []
        args, sources = bind(step.args, partial(self._resolve, step, asks, omitted))
        for pointer in omitted:
            sources.pop(pointer, None)
        return strip_omitted(args), sources

    def _resolve(
        self, step: Step, asks: list[Need], omitted: list[str], pointer: str, node: dict[str, Any]
    ) -> tuple[Any, str]:
        ex = self.ex
        if "$param" in node:
            name = node["$param"]
            if name in ex.params:
                return ex.params[name], f"param:{name}"
            spec = self.proc.param(name)
            if spec is not None and not spec.required:
                omitted.append(pointer)
                return _OMIT, ""
            raise _BindFailure(f"param {name!r} has no value")
        key = f"ask:{step.id}:{pointer}"
        redacted = ""  # why a value found must be asked for instead
        if "$step" in node:
            value = self._step_value(node)
            if not contains_marker(value):
                return value, f"step:{node['$step']}#{node.get('path', '')}"
            redacted = (f"the output of step {node['$step']!r} at {node.get('path', '') or '/'} "
                        "was redacted when stored (a secret)")
        if key in ex.answers and not contains_marker(ex.answers[key]):
            return ex.answers[key], "ask"
        if redacted:
            asks.append(Need(key=key, kind="ask", step_id=step.id, action=step.action,
                             arg_path=pointer, context=self._context(),
                             prompt=f"{pointer[1:] or 'args'} for {step.action}: {redacted}; "
                                    "supply the value"))
            return None, "ask"
        candidates, context, prompt = None, self._context(), str(node.get("$ask", ""))
        src = node.get("from", node)
        if "$select" in src:
            matches, everything = self._select(src)
            candidates = [m[0] for m in matches] or everything
            if (src is node and matches and all(json_equal(m[1], matches[0][1]) for m in matches)
                    and not contains_marker(matches[0][1])):
                at = node["$select"]
                return matches[0][1], f"select:{at['$step']}#{at.get('path', '')}"
            if src is node:
                prompt = str(node.get("prompt") or f"{pointer[1:] or 'args'} for {step.action}"
                             f": {len(matches)} of {len(everything)} candidates match")
                context["selection"] = {k: node.get(k) for k in ("$select", "where", "get")}
        elif "from" in node:
            found = self._step_value(src)
            candidates = found if isinstance(found, list) else [found]
        asks.append(Need(key=key, kind="ask", prompt=prompt, step_id=step.id,
                         action=step.action, arg_path=pointer, candidates=candidates,
                         context=context))
        return None, "ask"

    def _select(self, node: Mapping[str, Any]) -> tuple[list[tuple[Any, Any]], list[Any]]:
        """A ``$select`` node's ``(matches, all candidates)``; see :mod:`procmem.core.template`."""
        src = node["$select"]
        candidates = select_candidates(self._step_value(src))
        if candidates is None:
            raise _BindFailure(f"$select source {src.get('$step')!r} path "
                               f"{src.get('path', '')!r} is neither a list nor an object")
        try:
            where = where_predicates(node, self.ex.params)
        except KeyError as err:
            raise _BindFailure(f"param {err.args[0]!r} has no value") from err
        return select_matches(candidates, where, node.get("get", "")), candidates

    def _step_value(self, node: Mapping[str, Any]) -> Any:
        ref, path = node.get("$step"), node.get("path", "")
        if ref in self.skipped:
            raise _BindFailure(f"$step {ref!r} was skipped, so it has no output")
        if ref not in self.outputs:
            raise _BindFailure(f"$step {ref!r} has no output (not an earlier step)")
        try:
            return copy.deepcopy(resolve_pointer(self.outputs[ref], path))
        except (KeyError, InvalidTemplate) as err:
            reason = err.args[0] if err.args else str(err)
            raise _BindFailure(f"$step {ref!r} path {path!r} does not resolve: {reason}") from err

    # -- calls

    def _call_tool(self, step: Step, run: StepRun) -> Generator[Event, Any, _Outcome]:
        """Store the call as started (``in_flight``), then yield it."""
        ex = self.ex
        # run.args is not changed after binding (the tool gets a copy): no copy here
        ex.in_flight = CallStarted.model_construct(
            index=run.index, step_id=step.id, action=step.action, attempt=run.attempt,
            args=run.args, started_at=run.started_at)
        yield Persist(ex, None)
        result = yield ToolCall(step.id, step.action, copy.deepcopy(run.args), run.attempt,
                                idempotency_key(ex.id, step.id, run.attempt))
        ex.in_flight = None  # stored at the next header write; stale until then (see Execution)
        if not isinstance(result, ToolResult):
            raise ReplayError(f"driver answered a ToolCall with {type(result).__name__}")
        return _Outcome(_storable(result.output), result.error, max(result.duration_ms, 0.0))

    def _call_child(self, step: Step, run: StepRun,
                    first: bool) -> Generator[Event, Any, _Outcome]:
        """Run the sub-procedure as a child execution; its events pass through.

        ``first``: the first try of this run, which continues a paused child.
        """
        ex, name = self.ex, step.subprocedure
        assert name is not None
        child_proc = self.procedures[name]  # present: check_subprocedures ran
        snap_key, prefix = f"child:{step.id}", f"{step.id}/"
        snapshot = ex.answers.get(snap_key) if first else None
        if snapshot is not None:
            child = Execution.model_validate(snapshot)
        else:
            child = Execution(
                procedure=name,
                version=child_proc.version,
                task=ex.task,
                params=copy.deepcopy(run.args),
                param_sources={
                    k: "parent:" + run.sources.get(join_pointer("", k), "literal")
                    for k in run.args
                },
                parent_id=ex.id,
            )
        child.answers.update(
            {k.removeprefix(prefix): v for k, v in ex.answers.items() if k.startswith(prefix)}
        )
        sub = replay_core(child_proc, child, self.procedures, chain=(*self.chain, self.proc.name))
        try:
            child = yield from _relay(sub, prefix)
        except ParamError as err:  # args bound from data do not fit the child: data too
            return _Outcome(error=f"sub-procedure {name!r}: {err}")
        if child.status == "paused":
            ex.answers[snap_key] = child.model_dump(mode="json")
            ex.needs = [n.model_copy(update={"key": prefix + n.key}) for n in child.needs]
            return _Outcome(paused=True)
        ex.answers.pop(snap_key, None)
        if child.status == "failed":
            return _Outcome(
                error=f"sub-procedure {name!r} failed: {child.error}",
                duration_ms=child.duration_ms,
                child_id=child.id,
            )
        last = next((r.output for r in reversed(child.step_runs) if r.status == "succeeded"), None)
        return _Outcome(last, None, child.duration_ms, child.id)

    # -- bookkeeping

    def _exchange(self, needs: list[Need]) -> Generator[Event, Any, list[Need]]:
        """Yield one NeedValues; store the answers given; return the needs still open."""
        reply = yield NeedValues(list(needs))
        keys = {n.key for n in needs}
        got = {k: v for k, v in (reply or {}).items() if k in keys and v is not None}
        self.ex.answers.update(got)
        return [n for n in needs if n.key not in got]

    def _record(self, run: StepRun) -> Generator[Event, Any, None]:
        runs = self.ex.step_runs
        if not runs or runs[-1].index < run.index:
            runs.append(run)  # the common case: the next step
        else:
            kept = [r for r in runs if r.index != run.index]
            self.ex.step_runs = sorted([*kept, run], key=lambda r: r.index)
        yield Persist(self.ex, run)

    def _pause(self, needs: list[Need]) -> Core:
        ex = self.ex
        ex.status, ex.needs, ex.in_flight = "paused", needs, None
        ex.duration_ms = sum(r.total_ms for r in ex.step_runs)
        yield Persist(ex, None)
        return ex

    def _end(self, status: str) -> Core:
        ex = self.ex
        ex.status = "succeeded" if status == "succeeded" else "failed"
        ex.needs, ex.finished_at, ex.in_flight = [], utcnow(), None
        ex.duration_ms = sum(r.total_ms for r in ex.step_runs)
        yield Persist(ex, None)
        return ex


