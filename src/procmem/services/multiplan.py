"""Task plans: one procedure per request when a task asks for several things.

Many tasks hold two or three requests ("Cancel order #W1 because no longer needed.
For #W2, return the kettle."). Search ranks procedures for the whole task; its top
hit may do only part of it. :func:`plan_task` splits the task into requests
(:func:`segment`), checks which requests the top hit covers, and, only when it
leaves one uncovered, searches each request alone and proposes a
:class:`TaskPlan` with one :class:`PlanPart` (a :class:`~procmem.induction.planning.Plan`
bound from that request's text) per request.

Requests (:func:`segment`): the task is cut into sentences (``.``, ``!``, ``?``
followed by space, or a line break) and each sentence into clauses at ``;`` and at
the joiners ``and``, ``then``, ``also``. A clause that names an action verb of the
tools in play (:func:`procmem.search.retrieval.named_verbs`) starts a request; a sentence
without one starts a request too when it holds a value some procedure's extractors
anchor (an order id after "For"); any other piece belongs to the request before it,
or, before the first request, to the *context* (who is asking: "Your name is ...").
Each part is searched and bound on ``context + " " + request``, so a value of
another request is never bound into it.

Choosing (conservative: a pause is a success, a wrong call the worst outcome):

* a request is *covered* by a hit when the hit's procedure has one of the request's
  verbs (or the request names none) and binds a value inside the request's span
  (a task's only request may hold no value any candidate anchors: the verb suffices);
* the single top hit is the answer when it covers every request, or when the task
  has one request;
* otherwise each request's own top hit becomes a part when it has no verb conflict,
  covers its request, and is confident or bound cleanly (no required param left
  without a value; for a request naming no verb, a clean hit must also bind two
  anchored values inside it); the parts must differ (another procedure, or other
  values). :attr:`TaskPlan.confident` says whether every part's hit was confident.
  If any request fails that, the answer is the single top hit, with the requests it
  leaves uncovered listed in :attr:`TaskPlan.uncovered` (never a guess).

Invariants:
    * No tool is called; the same memory and task give an equal plan.
    * Parts are in task order; their request spans do not overlap.
    * A part's values were bound from :attr:`PlanPart.text` only; replaying the part
      with ``task=part.text`` binds the same values (:func:`procmem.induction.bind.bind_task`
      is deterministic).
    * :meth:`TaskPlan.to_json` is the one serializer, shared by the CLI
      (``procmem plan --multi --json``), REST (``POST /plan/task``) and MCP
      (``search_procedures``' ``task_plan``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.model import Execution, Hit, Procedure
from ..induction.bind import bind_task
from ..induction.planning import Plan, Span, nothing_fits
from ..search.retrieval import action_verb, named_verbs
from .replay import prepare

if TYPE_CHECKING:
    from ..security.secret_params import SecretProvider
    from ..store.base import Store

__all__ = ["PlanPart", "PlanRun", "Request", "TaskPlan", "plan_task", "prepare_parts",
           "run_result", "segment", "verbs_of"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_CLAUSE = re.compile(r";\s*|,?\s+(?:and then|and also|then|also|and)\s+", re.IGNORECASE)
_UNIVERSE_HITS = 20
"""Hits of the whole task whose tools' verbs make the universe of action verbs."""
_CLAIM_HITS = 10
"""Hits of the whole task whose anchored spans count as the task's values."""
_EVIDENCE = 2
"""Anchored values inside a request naming no verb that a hit short of confident must
bind to become its part (as :mod:`procmem.search.retrieval` asks of re-ranking)."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanPart(_Model):
    """One request of a task and the plan for it.

    Attributes:
        span: The request in the task (``task[start:end]``).
        text: What was searched and bound: the task's context (the sentences before
            the first request) and the request, joined by a space. Replay the part
            with ``task=text``.
        plan: The plan of the request's procedure (its ``task`` is ``text``; value
            spans are offsets into ``text``).
    """

    span: Span
    text: str
    plan: Plan


class TaskPlan(_Model):
    """What replays for a task would do: one part per procedure, in task order.

    Attributes:
        task: The task text.
        requests: Every request found in the task (:func:`segment`), in order.
        parts: The plans to run in order: one part (the top hit, bound from the
            whole task) when one procedure covers the task or several are not
            well supported; one per request otherwise; none when nothing fits.
        uncovered: Requests no part covers: nothing would do them (report them,
            never guess).
        multi: True when the parts are one per request (more than one).
        confident: Parts exist, every part's hit is confident and no request is
            uncovered (else confirm the plan before replaying it, as for a hit).
        would_complete_without_asking: Parts exist, none would pause and no
            request is uncovered.
        summary: One line in plain words.
    """

    task: str
    requests: list[Span] = Field(default_factory=list)
    parts: list[PlanPart] = Field(default_factory=list)
    uncovered: list[Span] = Field(default_factory=list)
    multi: bool = False
    confident: bool = False
    would_complete_without_asking: bool = False
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        """The task plan as JSON data, ``None`` fields left out
        (``TaskPlan.model_validate(p.to_json()) == p``)."""
        return self.model_dump(mode="json", exclude_none=True)


class PlanRun(_Model):
    """What :meth:`procmem.Memory.replay_plan` did.

    Attributes:
        status: ``succeeded`` (every part succeeded and nothing is uncovered),
            ``paused`` (a part paused, or requests are uncovered: see ``uncovered``),
            ``failed`` (a part failed), ``refused`` (nothing ran: the plan has no
            part, or has uncovered requests and ``partial`` was not given).
        executions: The executions of the parts that ran, in order (the last one
            is the one that stopped, when one did).
        stopped_at: Index of the part that paused or failed, else ``None``.
        not_run: Indices of the parts not started.
        uncovered: The task plan's uncovered requests.
    """

    status: Literal["succeeded", "paused", "failed", "refused"]
    executions: list[Execution] = Field(default_factory=list)
    stopped_at: int | None = None
    not_run: list[int] = Field(default_factory=list)
    uncovered: list[Span] = Field(default_factory=list)


@dataclass(frozen=True)
class Request:
    """A request found in a task: its span and the action verbs it names (stemmed)."""

    start: int
    end: int
    verbs: frozenset[str]


def verbs_of(procedure: Procedure) -> frozenset[str]:
    """The stemmed verbs of a procedure's actions (:func:`procmem.search.retrieval.action_verb`)."""
    return frozenset(v for s in procedure.steps if (v := action_verb(s.action)))


def _pieces(text: str, pattern: re.Pattern[str], start: int, end: int
            ) -> list[tuple[int, int]]:
    """``text[start:end]`` cut at ``pattern``, each piece trimmed of spaces; empty ones dropped."""
    out = []
    at = start
    for m in pattern.finditer(text, start, end):
        out.append((at, m.start()))
        at = m.end()
    out.append((at, end))
    trimmed = []
    for a, z in out:
        while a < z and text[a].isspace():
            a += 1
        while z > a and text[z - 1].isspace():
            z -= 1
        if a < z:
            trimmed.append((a, z))
    return trimmed


def segment(task: str, universe: frozenset[str],
            claims: Sequence[tuple[int, int]] = ()) -> tuple[tuple[int, int] | None,
                                                            list[Request]]:
    """Split a task into its context and its requests (see the module docstring).

    Args:
        task: The task text.
        universe: The action verbs in play, stemmed (:func:`procmem.search.retrieval.action_verb`).
        claims: Value spans some procedure's extractors anchor in ``task``.

    Returns:
        ``(context, requests)``: ``context`` is the span of the sentences before the
        first request (``None`` when there are none); requests are in task order and
        do not overlap.
    """
    starts = [a for a, _ in claims]
    context: tuple[int, int] | None = None
    requests: list[list[Any]] = []  # [start, end, verbs]
    for s_start, s_end in _pieces(task, _SENTENCE, 0, len(task)):
        clauses = _pieces(task, _CLAUSE, s_start, s_end)
        for i, (c_start, c_end) in enumerate(clauses):
            verbs = named_verbs(task[c_start:c_end], universe)
            valued = i == 0 and any(s_start <= a < s_end for a in starts)
            if verbs or (valued and not any(
                    named_verbs(task[a:z], universe) for a, z in clauses)):
                requests.append([c_start, c_end, verbs])
            elif requests:
                requests[-1][1] = c_end
                requests[-1][2] = requests[-1][2] | verbs
            else:
                context = (context[0] if context else c_start, c_end)
    return context, [Request(a, z, frozenset(v)) for a, z, v in requests]


def _covers(hit: Hit, spans: Sequence[tuple[int, int]], request: Request,
            claims: Sequence[tuple[int, int]], *, alone: bool) -> bool:
    """Whether ``hit`` (binding ``spans`` of the same text) covers ``request``.

    Its procedure must have one of the request's verbs (when it names one) and bind
    a value inside the request; a request without any anchored value is covered
    by the verb alone only when it is the task's one request (``alone``).
    """
    if request.verbs and not request.verbs & verbs_of(hit.procedure):
        return False
    if any(request.start <= a < request.end for a, _ in spans):
        return True
    return alone and not any(request.start <= a < request.end for a, _ in claims)


def _request_text(task: str, context: tuple[int, int] | None, request: Request
                  ) -> tuple[str, int]:
    """The text a request is searched and bound on, and the offset of the request in it."""
    body = task[request.start:request.end]
    if context is None:
        return body, 0
    head = task[context[0]:context[1]]
    return f"{head} {body}", len(head) + 1


def _span(task: str, a: int, z: int) -> Span:
    return Span(start=a, end=z, text=task[a:z])


def plan_task(task: str, *, search: Callable[[str, int], list[Hit]],
              plan: Callable[[Hit, str], Plan]) -> TaskPlan:
    """Plan one procedure per request when the top hit leaves a request uncovered.

    Args:
        task: The task in plain words.
        search: ``search(text, limit) -> hits`` (:meth:`procmem.Memory.search`).
        plan: ``plan(hit, text) -> Plan`` (:meth:`procmem.Memory.plan` with a hit).

    Returns:
        A :class:`TaskPlan` (see the module docstring for how it is chosen).

    Raises:
        UsageError: ``task`` is empty (from ``search``).
    """
    hits = search(task, _UNIVERSE_HITS)
    universe = frozenset().union(*(verbs_of(h.procedure) for h in hits))
    claims = sorted({b.spans[p] for h in hits[:_CLAIM_HITS]
                     for b in (bind_task(h.procedure, task),) for p in b.anchored})
    context, requests = segment(task, universe, claims)
    spans = [_span(task, r.start, r.end) for r in requests]
    top = hits[0] if hits else None
    if top is None:
        single = None
        uncovered = list(requests)
    else:
        single = PlanPart(span=_span(task, 0, len(task)), text=task, plan=plan(top, task))
        bound = [(v.span.start, v.span.end) for v in single.plan.params if v.span]
        uncovered = [r for r in requests
                     if not _covers(top, bound, r, claims, alone=len(requests) == 1)]
    if len(requests) >= 2 and uncovered:
        parts = _parts(task, context, requests, claims, search, plan)
        if parts is not None:
            return _finish(TaskPlan(task=task, requests=spans, parts=parts, multi=True))
    return _finish(TaskPlan(
        task=task, requests=spans, parts=[single] if single is not None else [],
        uncovered=[_span(task, r.start, r.end) for r in uncovered]))


def _parts(task: str, context: tuple[int, int] | None, requests: Sequence[Request],
           claims: Sequence[tuple[int, int]], search: Callable[[str, int], list[Hit]],
           plan: Callable[[Hit, str], Plan]) -> list[PlanPart] | None:
    """One well-supported part per request, or ``None`` when any request has none."""
    parts: list[PlanPart] = []
    seen: set[tuple[str, str]] = set()
    for r in requests:
        text, offset = _request_text(task, context, r)
        hits = search(text, 1)
        if not hits or hits[0].explanation.get("verb_conflict"):
            return None
        hit = hits[0]
        planned = plan(hit, text)
        shifted = r.start - offset  # request offsets in ``text`` -> in ``task``
        bound = [(v.span.start + shifted, v.span.end + shifted) for v in planned.params
                 if v.span and v.span.start >= offset]
        if not _covers(hit, bound, r, claims, alone=False):
            return None
        clean = not any(v.source == "missing" for v in planned.params)
        anchored = set(hit.explanation.get("anchored", ()))
        inside = sum(1 for v in planned.params if v.param in anchored and v.span
                     and v.span.start >= offset)
        if not (hit.confident or (clean and (r.verbs or inside >= _EVIDENCE))):
            return None
        key = (planned.procedure or "", repr(sorted(
            (v.param or "", repr(v.value)) for v in planned.params if v.source == "param")))
        if key in seen:
            return None  # the same call twice: not two requests
        seen.add(key)
        parts.append(PlanPart(span=_span(task, r.start, r.end), text=text, plan=planned))
    return parts


def _finish(tp: TaskPlan) -> TaskPlan:
    """Fill ``would_complete_without_asking`` and ``summary``."""
    complete = bool(tp.parts) and not tp.uncovered and all(
        p.plan.would_complete_without_asking for p in tp.parts)
    if not tp.parts:
        text = nothing_fits(tp.task).summary
    elif tp.multi:
        names = ", ".join(f"{p.plan.procedure}" for p in tp.parts)
        text = f"{len(tp.parts)} requests, one procedure each: {names}"
        if not complete:
            pausing = [str(i + 1) for i, p in enumerate(tp.parts)
                       if not p.plan.would_complete_without_asking]
            text += f"; part {', '.join(pausing)} would pause"
    else:
        text = tp.parts[0].plan.summary
    if tp.uncovered:
        text += (f"; {len(tp.uncovered)} request{'s' if len(tp.uncovered) != 1 else ''} "
                 f"no procedure covers: " + "; ".join(repr(s.text[:60]) for s in tp.uncovered))
    confident = bool(tp.parts) and not tp.uncovered and all(p.plan.confident for p in tp.parts)
    if tp.multi and not confident:
        text += " (not confident in every part)"
    return tp.model_copy(update={"would_complete_without_asking": complete,
                                 "confident": confident, "summary": text})


Prepared = tuple[Procedure, Execution, dict[str, Procedure]]


def prepare_parts(store: Store, plan: TaskPlan, tools: Mapping[str, Any], *,
                  partial: bool = False, secrets: SecretProvider | None = None
                  ) -> list[Prepared] | PlanRun:
    """Every part's procedure version (as planned), new execution and sub-procedures.

    Each part's params are bound from its :attr:`PlanPart.text`
    (:func:`procmem.services.replay.prepare`), so a value of another request never
    reaches it.

    Args:
        store: Where the planned versions are read.
        plan: The task plan.
        tools: Tool callables by action name (checked for every part before any runs).
        partial: Run the parts even when requests are uncovered.
        secrets: Where secret params' values come from (as a single replay).

    Returns:
        The prepared parts in order, or a ``refused`` :class:`PlanRun` when nothing
        may run (no part; uncovered requests without ``partial``).

    Raises:
        NotFound: A planned procedure version or a sub-procedure is missing.
        UnknownTool: A step of some part has no tool (nothing has run).
    """
    if not plan.parts or (plan.uncovered and not partial):
        return PlanRun(status="refused", not_run=list(range(len(plan.parts))),
                       uncovered=plan.uncovered)
    out = []
    for part in plan.parts:
        if part.plan.procedure is None or part.plan.version is None:
            return PlanRun(status="refused", not_run=list(range(len(plan.parts))),
                           uncovered=plan.uncovered)
        proc = store.get_procedure(part.plan.procedure, part.plan.version)
        out.append(prepare(store, proc, tools, part.text, None, secrets))
    return out


def run_result(plan: TaskPlan, executions: Sequence[Execution]) -> PlanRun:
    """The :class:`PlanRun` of the parts that ran (``executions``, in order; the run
    stops at the first part that did not succeed)."""
    stopped = next((i for i, ex in enumerate(executions) if ex.status != "succeeded"), None)
    ran = len(executions)
    if stopped is not None:
        status: Literal["succeeded", "paused", "failed", "refused"] = (
            "failed" if executions[stopped].status == "failed" else "paused")
    else:
        status = "paused" if plan.uncovered else "succeeded"
    return PlanRun(status=status, executions=list(executions), stopped_at=stopped,
                   not_run=list(range(ran, len(plan.parts))), uncovered=plan.uncovered)
