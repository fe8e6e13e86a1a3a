"""Plans: what a replay would do for a task, worked out without calling any tool.

:func:`plan_procedure` reads a procedure (and the sub-procedures it runs), binds
its params the way :meth:`procmem.Memory.replay` does (the caller's ``params``
first, then the built-in binder over the task text, then schema defaults) and
walks the args templates. It returns a :class:`Plan`: for every step, every
argument leaf (a JSON Pointer into the step's args) with the value it would send
and where that value comes from, plus the needs the replay would pause on and
where. An agent reads it before running anything; :meth:`procmem.Memory.plan`
picks the procedure (the top search hit by default) and delegates here.

Value sources (:data:`Source`):

* ``literal``: written in the procedure;
* ``param``: bound from the task text by the built-in binder (``span`` says where);
* ``given``: supplied by the caller's ``params``;
* ``default``: the param schema's ``default``;
* ``secret``: a secret param's value (never shown; see :func:`is_secret`);
* ``step``: an earlier step's output (``step`` / ``pointer``): known at run time only;
* ``selection``: the element of an earlier step's list (``ref``: the list) that a
  ``$select`` node's predicates pick (``where`` / ``get``): known at run time only,
  and the replay pauses there when zero or several elements match;
* ``ask``: an ``$ask`` hole: the replay pauses there for an answer;
* ``missing``: a required param without a value: the replay pauses before its
  first step;
* ``omitted``: an optional param without a value: the arg is left out.

Invariants:
    * Pure and deterministic: no I/O, no tool call, no clock; the same inputs give
      an equal plan.
    * No drift from replay: when :attr:`Plan.would_complete_without_asking` is
      true and a step's values are all known now, :attr:`PlanStep.args` equals the
      args the replay sends to that step's tool (``tests/test_planning.py`` replays
      against recording tools to check it); a pause listed in :attr:`Plan.pauses`
      is a need the replay raises, with the same key, before the step it names.
    * The replay may also pause where a plan cannot know it: a step failing with
      ``on_error: ask`` (:attr:`PlanStep.on_error`), or a selection that zero or
      several elements match (source ``selection``). Values from step outputs are
      checked only at run time.
    * Secret values never appear in a plan (value ``None``, no span text, ``args``
      ``None``).
    * :meth:`Plan.to_json` is the one serializer of a plan, shared by the CLI
      (``procmem plan --json``), REST (``POST /plan``) and MCP (search hits' ``plan``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..core.alternatives import choice_steps, conditional_params, output_used
from ..core.checks import check_params, check_subprocedures
from ..core.model import Hit, Param, Procedure, Step
from ..core.replay import OMIT, strip_omitted
from ..core.template import bind, is_ref, join_pointer
from ..formats.record import DEFAULT_SECRET_KEYS
from .bind import bind_task

__all__ = [
    "Plan",
    "PlanPause",
    "PlanStep",
    "PlanValue",
    "Source",
    "Span",
    "StepRef",
    "is_secret",
    "nothing_fits",
    "plan_hit",
    "plan_procedure",
]

Source = Literal["literal", "param", "given", "default", "secret", "step", "selection", "ask",
                 "missing", "omitted"]
"""Where a planned value comes from (see the module docstring)."""

KNOWN_NOW = frozenset({"literal", "param", "given", "default", "secret", "omitted"})
"""Sources whose value is decided before anything runs."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Span(_Model):
    """Where a value bound from the task text stands in it.

    Attributes:
        start: Offset of the first character (0-based, Python ``str`` indices).
        end: Offset one past the last character: the span is ``task[start:end]``.
        text: ``task[start:end]`` (it may differ from the value sent: an id written
            without its leading mark gets it back, a number is converted).
    """

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


class StepRef(_Model):
    """An earlier step's output: step ``step``, JSON Pointer ``pointer`` into it."""

    step: str
    pointer: str = ""


class PlanValue(_Model):
    """One argument leaf of a step, or one param of the procedure, as planned.

    Attributes:
        path: JSON Pointer into the step's args (``""`` for an entry of
            :attr:`Plan.params`).
        source: Where the value comes from (:data:`Source`).
        known: True when the value is decided now (``source`` in :data:`KNOWN_NOW`).
        value: The value that would be sent; ``None`` when not known now, or secret.
        param: The param name, for a ``$param`` reference.
        span: Where the value stands in the task (source ``param``).
        ref: The step output the value comes from (source ``step``), or the list a
            selection picks from (source ``selection``).
        where: A selection's predicates, as written in the procedure (source ``selection``).
        get: A selection's JSON Pointer into the chosen element (source ``selection``).
        prompt: The question of an ``$ask`` hole, or a missing param's prompt.
        candidates: Values to choose from, when known now (for a missing param:
            the candidate strings the binder saw in the task).
        candidates_from: The step output an ``$ask`` hole's candidates come from.
    """

    path: str
    source: Source
    known: bool
    value: Any = None
    param: str | None = None
    span: Span | None = None
    ref: StepRef | None = None
    where: list[dict[str, Any]] | None = None
    get: str | None = None
    prompt: str | None = None
    candidates: list[Any] | None = None
    candidates_from: StepRef | None = None


class PlanPause(_Model):
    """A need the replay would raise, and where it would stop for it.

    ``key``, ``kind``, ``name``, ``prompt``, ``step_id``, ``action`` and
    ``arg_path`` are those of the :class:`~procmem.core.model.Need` the replay raises
    (needs of a sub-procedure run by step ``S`` carry the key prefix ``S/``).

    Attributes:
        candidates: Values to choose from, when known now.
        candidates_from: The step output an ``$ask`` hole's candidates come from.
        at_step: The id of the top-level step before which the replay stops
            (``None`` when the procedure has no step).
        at_index: That step's 0-based index: missing params stop the replay
            before its first step (index 0), an ``$ask`` before its own step.
    """

    key: str
    kind: Literal["param", "ask"]
    name: str | None = None
    prompt: str = ""
    step_id: str | None = None
    action: str | None = None
    arg_path: str | None = None
    candidates: list[Any] | None = None
    candidates_from: StepRef | None = None
    at_step: str | None = None
    at_index: int = Field(ge=0)


class PlanStep(_Model):
    """One step as the replay would run it.

    Attributes:
        index: 0-based position in the procedure.
        id / action / side_effect: Those of the :class:`~procmem.core.model.Step`.
        on_error: The step's failure policy (``ask`` may pause at run time).
        values: Every argument leaf, in document order.
        args: The args exactly as the replay would send them, when every value is
            known now and none is secret; else ``None``.
        pauses: True when the replay would stop before calling this step (missing
            params before the first step, an ``$ask`` hole here, a pause inside
            its sub-procedure).
        optional / choice / option: Those of the :class:`~procmem.core.model.Step`.
        skipped: Why the replay would skip this step (an optional read that would
            not bind, an alternative not taken), else ``None``.
        subprocedure: ``NAME`` of a ``procedure:NAME`` step; its steps are in ``steps``.
        version: The sub-procedure version planned.
        steps: The sub-procedure's steps (empty for a tool step).
    """

    index: int = Field(ge=0)
    id: str
    action: str
    side_effect: bool | None = None
    on_error: Literal["stop", "skip", "retry", "ask"] = "stop"
    values: list[PlanValue] = Field(default_factory=list)
    args: dict[str, Any] | None = None
    pauses: bool = False
    optional: bool = False
    choice: str | None = None
    option: int | None = None
    skipped: str | None = None
    subprocedure: str | None = None
    version: int | None = None
    steps: list[PlanStep] = Field(default_factory=list)


class Plan(_Model):
    """What a replay of a procedure would do for a task, without calling any tool.

    Attributes:
        task: The task text planned for.
        procedure / version: The procedure chosen; ``None`` when nothing fits.
        selected_by: ``search`` (the top hit), ``caller`` (named by the caller),
            or ``None`` when nothing fits.
        confident: The search hit's verdict that the procedure fits the task
            (``False`` when the procedure was not among the hits).
        confidence: The hit's calibrated probability of being right, when search
            gives one.
        score: The hit's fused score (not a probability), when there is a hit.
        params: Every param of the procedure with its planned value (``path`` ``""``).
        steps: Every step, in order.
        pauses: The needs the replay would raise when nobody answers, in order.
        first_pause: The index of the top-level step before which the replay would
            first stop, or ``None``.
        side_effects_before_first_pause: Ids of the top-level steps that would run
            before the first pause (every step when none) and may change the world
            (``side_effect`` true or unknown).
        would_complete_without_asking: A procedure was chosen and no pause is
            planned (a tool failure may still stop or pause it at run time).
        summary: One line in plain words.
    """

    task: str
    procedure: str | None = None
    version: int | None = None
    selected_by: Literal["search", "caller"] | None = None
    confident: bool = False
    confidence: float | None = Field(default=None, ge=0, le=1)
    score: float | None = None
    params: list[PlanValue] = Field(default_factory=list)
    steps: list[PlanStep] = Field(default_factory=list)
    pauses: list[PlanPause] = Field(default_factory=list)
    first_pause: int | None = None
    side_effects_before_first_pause: list[str] = Field(default_factory=list)
    would_complete_without_asking: bool = False
    summary: str = ""

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON data, ``None`` fields left out: the one shape every surface
        serves (``Plan.model_validate(plan.to_json()) == plan``)."""
        return self.model_dump(mode="json", exclude_none=True)


def is_secret(param: Param) -> bool:
    """True when a param holds a secret: its schema says ``writeOnly: true`` or
    ``format: password``, or its name is a secret key word of :mod:`procmem.formats.record`
    (``password``, ``token``, ``api_key`` ...)."""
    schema = param.schema_
    if schema.get("writeOnly") is True or schema.get("format") == "password":
        return True
    name = param.name.lower()
    return any(name == w or name.endswith("_" + w) for w in DEFAULT_SECRET_KEYS)


def nothing_fits(task: str) -> Plan:
    """The plan when no procedure fits ``task``: no steps, nothing would run."""
    return Plan(task=task, summary="no procedure in memory fits this task")


def plan_hit(hit: Hit, task: str, *, params: Mapping[str, Any] | None = None,
             procedures: Mapping[str, Procedure] | None = None) -> Plan:
    """Plan the replay of a search hit's procedure for ``task`` (see :func:`plan_procedure`)."""
    return plan_procedure(hit.procedure, task, params=params, procedures=procedures, hit=hit,
                          selected_by="search")


def plan_procedure(procedure: Procedure, task: str, *, params: Mapping[str, Any] | None = None,
                   procedures: Mapping[str, Procedure] | None = None, hit: Hit | None = None,
                   selected_by: Literal["search", "caller"] = "caller") -> Plan:
    """Plan the replay of ``procedure`` for ``task`` without calling any tool.

    Params are resolved as :meth:`procmem.Memory.replay` resolves them: ``params``
    first, then values the built-in binder finds in ``task``
    (:func:`procmem.induction.bind.bind_task`), then each schema's ``default``; a required
    param still without a value is a pause before the first step.

    Args:
        procedure: The procedure version to plan.
        task: The task text (may be empty: nothing is bound from it).
        params: Param values by name, as given to replay.
        procedures: Sub-procedures by name (the versions replay would run).
        hit: The search hit behind the choice, for ``confident``, ``confidence``
            and ``score``.
        selected_by: How the procedure was chosen.

    Returns:
        A :class:`Plan`.

    Raises:
        ParamError: A given param is unknown or of the wrong JSON type (as replay).
        CycleError: Sub-procedures call each other in a cycle.
        NotFound: A sub-procedure is missing from ``procedures``.
        InvalidProcedure: A sub-procedure step passes an arg the sub-procedure lacks.
    """
    subs = dict(procedures or {})
    check_subprocedures(procedure, subs)
    given = dict(params or {})
    check_params(procedure, given)
    top = _param_values(procedure, task, given)
    planner = _Planner(subs)
    later = conditional_params(procedure)  # asked for only when their step would run
    steps = planner.steps(procedure, top, [v for v in top.values()
                                           if v.source == "missing" and v.param not in later],
                          prefix="")
    first = min((p.at_index for p in planner.pauses), default=None)
    stops = {p.at_index for p in planner.pauses}
    steps = [s.model_copy(update={"pauses": True}) if s.index in stops else s for s in steps]
    plan = Plan(
        task=task, procedure=procedure.name, version=procedure.version, selected_by=selected_by,
        confident=hit.confident if hit is not None else False,
        confidence=hit.confidence if hit is not None else None,
        score=hit.score if hit is not None else None,
        params=[v.model_copy(update={"path": ""}) for v in top.values()],
        steps=steps, pauses=planner.pauses, first_pause=first,
        side_effects_before_first_pause=[
            s.id for s in steps[:first if first is not None else len(steps)]
            if s.side_effect is not False and s.skipped is None],
        would_complete_without_asking=not planner.pauses,
    )
    return plan.model_copy(update={"summary": _summary(plan)})


# ------------------------------------------------------------------ params


def _param_values(procedure: Procedure, task: str,
                  given: Mapping[str, Any]) -> dict[str, PlanValue]:
    """Each param's planned value, resolved in replay's order (given, task, default)."""
    binding = bind_task(procedure, task) if task else None
    later = conditional_params(procedure)
    out: dict[str, PlanValue] = {}
    for p in procedure.params:
        if p.name in given:
            value = PlanValue(path="", source="given", known=True,
                              value=copy.deepcopy(given[p.name]), param=p.name)
        elif binding is not None and p.name in binding.values:
            start, end = binding.spans[p.name]
            value = PlanValue(path="", source="param", known=True, value=binding.values[p.name],
                              param=p.name, span=Span(start=start, end=end, text=task[start:end]))
        elif "default" in p.schema_:
            value = PlanValue(path="", source="default", known=True,
                              value=copy.deepcopy(p.schema_["default"]), param=p.name)
        elif p.required or p.name in later:
            cands = binding.candidates.get(p.name) if binding is not None else None
            value = PlanValue(path="", source="missing", known=False, param=p.name,
                              prompt=p.description or f"value for {p.name!r}",
                              candidates=list(cands) if cands else None)
        else:
            value = PlanValue(path="", source="omitted", known=True, param=p.name)
        out[p.name] = _hide(value) if is_secret(p) else value
    return out


def _hide(value: PlanValue) -> PlanValue:
    """A secret param's planned value: known or missing, never shown."""
    if not value.known or value.source == "omitted":
        return value
    return value.model_copy(update={"source": "secret", "value": None, "span": None})


def _child_params(child: Procedure, step: Step, values: list[PlanValue]
                  ) -> tuple[dict[str, PlanValue], list[PlanValue]]:
    """A sub-procedure's planned params, and those it would pause for.

    The replay passes the parent step's bound args as the child's params (an
    omitted arg is not passed); the child applies defaults and asks for a
    required param still missing (a need keyed ``S/param:NAME``).
    """
    groups: dict[str, list[PlanValue]] = {}
    for v in values:
        key = v.path[1:].split("/", 1)[0].replace("~1", "/").replace("~0", "~")
        groups.setdefault(key, []).append(v)
    passed: dict[str, PlanValue] = {}
    for key, leaves in groups.items():
        whole = join_pointer("", key)
        if len(leaves) == 1 and leaves[0].path == whole:
            if leaves[0].source != "omitted":
                passed[key] = leaves[0]
            continue
        args = _args({key: step.args[key]}, leaves)  # an arg assembled from several leaves
        if args is not None:
            passed[key] = PlanValue(path="", source="literal", known=True, value=args[key])
        else:
            passed[key] = next(v for v in leaves if not v.known or v.source == "secret")
    out: dict[str, PlanValue] = {}
    asked: list[PlanValue] = []
    for p in child.params:
        if p.name in passed:
            value = passed[p.name].model_copy(update={"path": ""})
        elif "default" in p.schema_:
            value = PlanValue(path="", source="default", known=True,
                              value=copy.deepcopy(p.schema_["default"]), param=p.name)
        elif p.required:
            value = PlanValue(path="", source="missing", known=False, param=p.name,
                              prompt=p.description or f"value for {p.name!r}")
            asked.append(value)
        else:
            value = PlanValue(path="", source="omitted", known=True, param=p.name)
        out[p.name] = _hide(value) if is_secret(p) else value
    return out, asked


# ------------------------------------------------------------------ steps


class _Planner:
    """Walks a procedure's steps (and sub-procedures'), collecting the pauses."""

    def __init__(self, procedures: Mapping[str, Procedure]) -> None:
        self.procedures = procedures
        self.pauses: list[PlanPause] = []

    def steps(self, proc: Procedure, params: dict[str, PlanValue], asked: list[PlanValue], *,
              prefix: str, at: tuple[str, int] | None = None) -> list[PlanStep]:
        """Plan ``proc``'s steps.

        ``asked``: the missing params the replay asks for before the first step;
        ``prefix``: the need-key prefix (``S/`` in a child); ``at``: the top-level
        step and index a child runs at (``None``: top level).
        """
        first: tuple[str | None, int] = at if at is not None else (
            (proc.steps[0].id, 0) if proc.steps else (None, 0))
        for v in asked:
                self.pauses.append(PlanPause(
                    key=f"{prefix}param:{v.param}", kind="param", name=v.param,
                    prompt=v.prompt or "", candidates=v.candidates,
                    at_step=first[0], at_index=first[1]))
        out = []
        chosen: dict[str, int | None] = {}
        for index, step in enumerate(proc.steps):
            where = at if at is not None else (step.id, index)
            skipped = self._skipped(proc, index, step, params, chosen, prefix, where)
            if skipped is not None:
                out.append(PlanStep(index=index, id=step.id, action=step.action,
                                    side_effect=step.side_effect, on_error=step.on_error.policy,
                                    optional=step.optional, choice=step.choice,
                                    option=step.option, skipped=skipped))
                continue
            out.append(self._step(proc, index, step, params, prefix, where))
        return out

    def _skipped(self, proc: Procedure, index: int, step: Step, params: dict[str, PlanValue],
                 chosen: dict[str, int | None], prefix: str, at: tuple[str, int]) -> str | None:
        """Why replay would skip the step (as :func:`procmem.core.alternatives.gate` decides)."""
        def blocked(s: Step) -> list[PlanValue]:
            return [v for k, arg in s.args.items()
                    for v in _leaves(arg, params, join_pointer("", k))
                    if v.source in ("missing", "ask")]
        if step.optional:
            why = blocked(step)
            return None if not why else "optional read: " + ", ".join(
                f"{v.param or v.path} {'missing' if v.source == 'missing' else 'asked'}"
                for v in why)
        if step.choice is None:
            return None
        if step.choice not in chosen:
            options = choice_steps(proc, step.choice)
            waits = [[v for i in idx for v in blocked(proc.steps[i])] for idx in options]
            ready = [k for k, w in enumerate(waits) if not w]
            asks = [k for k, w in enumerate(waits) if all(v.source == "ask" for v in w)]
            fallback: int | None = -1 if not output_used(proc, step.choice) else None
            chosen[step.choice] = ready[0] if ready else asks[0] if asks else fallback
            if chosen[step.choice] is None:
                for k, w in enumerate(waits):
                    for v in w:
                        key = f"{prefix}param:{v.param}"
                        if v.source == "missing" and all(p.key != key for p in self.pauses):
                            self.pauses.append(PlanPause(
                                key=key, kind="param", name=v.param,
                                prompt=f"{v.prompt or v.param} (lets option {k} of choice "
                                       f"{step.choice!r} run)",
                                candidates=v.candidates, at_step=at[0], at_index=at[1]))
        pick = chosen[step.choice]
        if pick is None or pick == step.option:
            return None
        if pick < 0:
            return "alternatives skipped: none can run without asking and none is used later"
        return f"alternative not taken: option {pick} would run"

    def _step(self, proc: Procedure, index: int, step: Step, params: dict[str, PlanValue],
              prefix: str, at: tuple[str, int]) -> PlanStep:
        # args that are one reference node (``{"$ask": ...}``) are the whole arguments
        # object, at pointer "": their keys are not argument names
        values = (list(_leaves(step.args, params)) if is_ref(step.args)
                  else [v for k, arg in step.args.items()
                        for v in _leaves(arg, params, join_pointer("", k))])
        before = len(self.pauses)
        for v in values:
            if v.source == "ask":
                self.pauses.append(PlanPause(
                    key=f"{prefix}ask:{step.id}:{v.path}", kind="ask", prompt=v.prompt or "",
                    step_id=step.id, action=step.action, arg_path=v.path,
                    candidates_from=v.candidates_from, at_step=at[0], at_index=at[1]))
        planned = PlanStep(index=index, id=step.id, action=step.action,
                           side_effect=step.side_effect, on_error=step.on_error.policy,
                           values=values, args=_args(step.args, values),
                           optional=step.optional, choice=step.choice, option=step.option)
        name = step.subprocedure
        if name is not None and name in self.procedures:
            child = self.procedures[name]
            planned.subprocedure, planned.version = name, child.version
            child_params, asked = _child_params(child, step, values)
            planned.steps = self.steps(child, child_params, asked,
                                       prefix=f"{prefix}{step.id}/", at=at)
        planned.pauses = len(self.pauses) > before
        return planned


def _leaves(template: Any, params: Mapping[str, PlanValue], base: str = ""
            ) -> Iterator[PlanValue]:
    """Every argument leaf of ``template``: reference nodes, ``$literal`` nodes, scalars
    and empty containers; literal objects and arrays are descended into."""
    if is_ref(template):
        yield _ref_value(template, params, base)
    elif isinstance(template, dict) and template:
        for k, v in template.items():
            yield from _leaves(v, params, join_pointer(base, k))
    elif isinstance(template, list) and template:
        for i, v in enumerate(template):
            yield from _leaves(v, params, join_pointer(base, i))
    else:
        yield PlanValue(path=base, source="literal", known=True, value=copy.deepcopy(template))


def _ref_value(node: dict[str, Any], params: Mapping[str, PlanValue], path: str) -> PlanValue:
    if "$literal" in node:
        return PlanValue(path=path, source="literal", known=True,
                         value=copy.deepcopy(node["$literal"]))
    if "$param" in node:
        return params[node["$param"]].model_copy(update={"path": path})
    if "$step" in node:
        return PlanValue(path=path, source="step", known=False,
                         ref=StepRef(step=node["$step"], pointer=node.get("path", "")))
    if "$select" in node:
        src = node["$select"]
        return PlanValue(path=path, source="selection", known=False,
                         ref=StepRef(step=src["$step"], pointer=src.get("path", "")),
                         where=copy.deepcopy(node.get("where", [])), get=node.get("get", ""),
                         prompt=node.get("prompt"))
    src = node.get("from")
    if isinstance(src, dict) and "$select" in src:
        src = src["$select"]
    return PlanValue(path=path, source="ask", known=False, prompt=str(node.get("$ask", "")),
                     candidates_from=StepRef(step=src["$step"], pointer=src.get("path", ""))
                     if isinstance(src, dict) else None)


def _args(template: Any, values: list[PlanValue]) -> dict[str, Any] | None:
    """The args the replay would send, when every leaf is known now and none is secret."""
    if any(not v.known or v.source == "secret" for v in values):
        return None
    by_path = {v.path: v for v in values}

    def resolve(pointer: str, _node: dict[str, Any]) -> tuple[Any, str]:
        v = by_path[pointer]
        return (OMIT if v.source == "omitted" else copy.deepcopy(v.value)), v.source

    bound, _ = bind(template, resolve)
    stripped = strip_omitted(bound)
    return stripped if isinstance(stripped, dict) else None


def _summary(plan: Plan) -> str:
    n = len(plan.steps)
    steps = f"{n} step{'s' if n != 1 else ''}"
    if not plan.pauses:
        text = f"would run {steps} of {plan.procedure} without asking"
    else:
        keys = ", ".join(p.key for p in plan.pauses)
        where = plan.steps[plan.first_pause].id if plan.first_pause is not None and \
            plan.first_pause < n else "the start"
        text = f"would pause before step {where} of {plan.procedure} for {keys}"
    if not plan.confident:
        text += " (not confident that it fits the task)"
    return text
