"""Induction: traces -> parameterized procedures, with no LLM.

Algorithm (anti-unification over aligned demonstrations, cf. Plotkin 1970,
"A note on inductive generalization"; data flow as in programming by
demonstration, Cypher 1993 "Watch What I Do"):

1. **Group** traces by their *signature*, the action sequence of their
   successful steps (failed steps are dropped: a mistake in a demonstration is
   not copied). Traces with outcome ``failure`` and empty signatures are left out.
   Groups with the same *writes* whose reads align are then learned together
   (alternative and optional reads: :mod:`procmem.induction.induce_alt`); every induced
   step gets its ``side_effect`` and, for a read no later step needs, ``optional``
   (:func:`procmem.induction.induce_alt.annotate`).
2. **Align** the traces of a group position by position (equal signatures make
   the alignment exact) and walk every argument leaf (objects are descended;
   lists and scalars are leaves; an object with a ``$`` key is data, one leaf,
   kept whole: it becomes a ``$literal``, never a reference).
3. **Classify** each leaf across the demonstrations, in this order:

   * constant wherever the corpus uses that (action, argument), seen at least
     :data:`MIN_CONSTANT` times, and not named by every task that used it -> literal;
   * found verbatim in every demonstration's task text -> ``$param`` (leaves
     with identical values in every demonstration share one param when each
     task names the value once; otherwise the k-th such leaf gets its own param,
     found at the k-th occurrence);
   * found at the same JSON Pointer of the same earlier step's output in every
     demonstration, a pointer through no list index and no data key -> ``$step``;
   * found in an element of the same earlier list (or object used as a map) in
     every demonstration -> a ``$select`` of that element by predicates true in
     every demonstration, or a position the demonstrations prove
     (:func:`procmem.core.selection.infer_reference`);
   * equal in every demonstration, :data:`MIN_CONSTANT` or more -> literal;
   * found in an element of the same earlier list but not selectable -> ``$ask``
     with candidates ``from`` that list;
   * otherwise -> ``$ask``.

Invariants: trace values are data: a value taken from a trace enters the
procedure only through :func:`procmem.core.template.literal` (escaped when it has a
``$`` key), so a replay sends back exactly what was demonstrated; induction is
deterministic (same traces in the same order give
the same procedure content); every reference in the result validates
(:func:`procmem.core.template.validate`); the result has at least one step.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..core import selection
from ..core import template as tpl
from ..core.checks import check_templates, json_type
from ..core.errors import UsageError
from ..core.model import Lineage, Param, Procedure, Step, Trace
from ..security.secret_params import holds_marker
from .extract import learn_extractor, locate, locate_all
from .induce_alt import annotate, induce_merged, merge_plan

__all__ = ["LITERAL_PRECISION", "MIN_CONSTANT", "CorpusStats", "flatten", "group_key",
           "group_traces", "induce", "leaves", "procedure_name", "same_value", "set_pointer"]

_FLATTEN_LIMIT = 5000  # max pointers indexed per step output

LITERAL_PRECISION = 0.98
"""How often a value kept literal must be the right one for a new task."""
MIN_CONSTANT = math.ceil(1 / (1 - LITERAL_PRECISION)) - 2
"""Sightings of one value (and no other) before it is kept literal: 48.

By Laplace's rule of succession (Laplace 1814, *Essai philosophique sur les
probabilités*), after ``n`` sightings of one value and none of another the
chance that the next use differs is ``1 / (n + 2)``; it is at most
``1 - LITERAL_PRECISION`` from ``n = 48``. Four cancellations that all gave
"no longer needed" leave a one-in-six chance that the fifth gives another
reason: that value is asked for, not sent."""


def group_traces(traces: Iterable[Trace], *, merge: bool = True,
                 effects: Mapping[str, bool | None] | None = None) -> list[list[Trace]]:
    """Group traces that do the same task: equal action sequences of successful steps.

    With ``merge`` (the default), groups whose write actions are equal and whose
    reads align become one group (alternative and optional reads; see
    :func:`procmem.induction.induce_alt.merge_plan`); :func:`induce` learns it as one
    procedure, or raises :class:`procmem.induction.induce_alt.MergeRejected` (then learn
    each signature alone).

    Returns:
        Groups in order of first appearance; traces inside a group keep their
        order. Failed traces, traces with no successful step, and recovery
        traces (``metadata["recovers"]``: an agent finishing a task a replay
        started, which is only the tail of a task) are left out.
    """
    groups: dict[tuple[str, ...], list[Trace]] = {}
    for t in traces:
        sig = group_key(t)
        if sig is not None:
            groups.setdefault(sig, []).append(t)
    if not merge:
        return list(groups.values())
    sigs = list(groups)
    return [[t for sig in together for t in groups[sig]]
            for together in merge_plan(sigs, [len(groups[s]) for s in sigs], effects)]


def group_key(trace: Trace) -> tuple[str, ...] | None:
    """The group of :func:`group_traces` a trace joins (its signature), or ``None`` when
    it is left out (failed, no successful step, or a recovery trace)."""
    if trace.outcome == "failure" or "recovers" in trace.metadata:
        return None
    return trace.signature() or None


def procedure_name(signature: Sequence[str]) -> str:
    """A deterministic, readable name for an action sequence.

    ``("cancel_pending_order",)`` -> ``cancel_pending_order``;
    two equal actions -> ``cancel_pending_order_x2``; otherwise the actions
    joined by ``-then-`` (shortened with a hash past 120 characters).
    """
    runs: list[tuple[str, int]] = []
    for a in signature:
        safe = re.sub(r"[^A-Za-z0-9_.]+", "_", a.replace("procedure:", "")).strip("_") or "step"
        if runs and runs[-1][0] == safe:
            runs[-1] = (safe, runs[-1][1] + 1)
        else:
            runs.append((safe, 1))
    name = "-then-".join(a if n == 1 else f"{a}_x{n}" for a, n in runs)
    if len(name) > 120:
        digest = hashlib.sha256("|".join(signature).encode()).hexdigest()[:8]
        name = f"{name[:100]}-{digest}"
    return name


@dataclass
class CorpusStats:
    """Which (action, argument pointer) pairs are constant across a whole corpus.

    Used so that a value is only kept literal when the corpus says it never
    varies: ``min_constant`` sightings of it and of no other value (default
    :data:`MIN_CONSTANT`, 48; a smaller number trades safety for autonomy on
    a small store).
    """

    values: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    shapes: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    contexts: dict[tuple[str, str], list[tuple[Any, str]]] = field(
        default_factory=lambda: defaultdict(list))
    counts: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    named: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    min_constant: int = MIN_CONSTANT

    @classmethod
    def from_traces(cls, traces: Iterable[Trace], *,
                    min_constant: int = MIN_CONSTANT) -> CorpusStats:
        """Collect the distinct values of every (action, pointer) leaf."""
        return cls(min_constant=min_constant).add(traces)

    def add(self, traces: Iterable[Trace]) -> CorpusStats:
        """Fold more traces in, after the ones already counted; returns ``self``.

        A fold in trace order: ``from_traces(a + b)`` equals ``from_traces(a).add(b)``,
        so a memory whose traces only grow can keep its statistics up to date.
        """
        for t in traces:
            for s in t.successful_steps():
                for ptr, v in leaves(s.args):
                    bucket = self.values[(s.action, ptr)]
                    self.counts[(s.action, ptr)] += 1
                    if len(bucket) < 3:
                        bucket.add(_canon(v))
                    if locate(v, t.task) is not None:
                        self.named[(s.action, ptr)] += 1
                        ctx = self.contexts[(s.action, ptr)]
                        if len(ctx) < 100:
                            ctx.append((v, t.task))
                    if isinstance(v, str) and len(v) >= 2:
                        kinds = self.shapes[_param_name(ptr)]
                        if len(kinds) < 200:
                            kinds.add(v)
        return self

    def is_constant(self, action: str, pointer: str) -> bool:
        """True when the corpus has exactly one value for this leaf, seen at least
        ``min_constant`` times (default :data:`MIN_CONSTANT`): a few demonstrations
        cannot tell a constant from a value that varies."""
        return (len(self.values.get((action, pointer), ())) == 1
                and self.counts.get((action, pointer), 0) >= self.min_constant)

    def named_in_every_task(self, action: str, pointer: str) -> bool:
        """True when every task whose trace set this leaf also names its value.

        A leaf that is constant across the corpus yet named by every task is a
        value the user chose that happened to agree (every demonstrated
        cancellation gave the same reason), not a constant: kept literal, it
        would send that value for a task that names another one.
        """
        count = self.counts.get((action, pointer), 0)
        return count > 0 and self.named.get((action, pointer), 0) == count


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def leaves(obj: Any, base: str = "") -> Iterator[tuple[str, Any]]:
    """(pointer, value) for every leaf: objects are descended, lists and scalars are leaves.

    An object with a ``$`` key (:func:`procmem.core.template.has_reserved_key`) is one
    leaf, never descended: rebuilt key by key it would read as a reference, so
    it only enters a template whole, through :func:`procmem.core.template.literal`.
    At the top (``base == ""``) such an object is yielded whole at pointer ``""``.
    """
    if isinstance(obj, dict) and obj and not tpl.has_reserved_key(obj):
        for k, v in obj.items():
            yield from leaves(v, tpl.join_pointer(base, k))
    else:
        yield base, obj


def flatten(obj: Any, base: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every pointer -> value of a parsed output (objects and lists descended)."""
    out = {} if out is None else out
    if len(out) >= _FLATTEN_LIMIT:
        return out
    out[base] = obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            flatten(v, tpl.join_pointer(base, k), out)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            flatten(v, tpl.join_pointer(base, i), out)
    return out


def _schema_of(values: list[Any]) -> dict[str, Any]:
    """The narrowest JSON Schema ``type`` (with array ``items``) that all ``values`` share."""
    types = {json_type(v) or "null" for v in values}
    if types == {"integer", "number"}:
        types = {"number"}
    if len(types) == 1:
        t = types.pop()
        schema: dict[str, Any] = {"type": t}
        if t == "array":
            inner = [x for v in values for x in v]
            if inner:
                schema["items"] = _schema_of(inner)
        return schema
    return {}


@lru_cache(maxsize=4096)
def _param_name(pointer: str) -> str:
    """A param name from an argument's JSON Pointer: its last non-index token, as a word."""
    tokens = [t for t in pointer.split("/")[1:] if not t.isdigit()]
    raw = tokens[-1] if tokens else "value"
    name = re.sub(r"\W+", "_", raw).strip("_").lower() or "value"
    return name if not name[0].isdigit() else f"p_{name}"


def induce(
    traces: Sequence[Trace],
    *,
    name: str | None = None,
    corpus: CorpusStats | None = None,
    version: int = 1,
    effects: Mapping[str, bool | None] | None = None,
) -> Procedure:
    """Induce one parameterized procedure from traces that do the same task.

    Args:
        traces: One group from :func:`group_traces`, 1+ traces: equal signatures,
            or equal writes with reads that align (:mod:`procmem.induction.induce_alt`).
        name: Procedure name; defaults to :func:`procedure_name` of the signature.
        corpus: Statistics over all known traces (see :class:`CorpusStats`);
            defaults to statistics over ``traces`` only.
        version: The version number to give the result.
        effects: Side effects by action, when known (e.g. from tool schemas);
            others by :func:`procmem.core.alternatives.side_effect_of`.

    Returns:
        A :class:`Procedure` with status ``active`` and lineage listing the traces.

    Raises:
        UsageError: ``traces`` is empty, or a signature is empty.
        MergeRejected: The signatures differ and cannot be learned as one
            procedure (:class:`procmem.induction.induce_alt.MergeRejected`, a ``UsageError``).
    """
    if not traces:
        raise UsageError("induce() needs at least one trace")
    sig = traces[0].signature()
    if not sig or any(not t.signature() for t in traces):
        raise UsageError("induce() needs traces with a non-empty action sequence")
    corpus = corpus or CorpusStats.from_traces(traces)
    if any(t.signature() != sig for t in traces):  # equal writes, different reads
        merged = induce_merged(
            traces, name=name or procedure_name(sig), version=version, corpus=corpus,
            step_args=_step_args, flatten=flatten, parse=tpl.parse_output,
            single=lambda ts: induce(ts, corpus=corpus, effects=effects), describe=_describe,
            effects=effects)
        check_templates(merged)
        return annotate(merged, effects)
    demos = [t.successful_steps() for t in traces]
    tasks = [t.task for t in traces]
    outputs = [[tpl.parse_output(s.output) for s in d] for d in demos]
    flat_cache: dict[tuple[int, int], dict[str, Any]] = {}

    def flat(j: int, i: int) -> dict[str, Any]:
        if (j, i) not in flat_cache:
            flat_cache[(j, i)] = flatten(outputs[j][i])
        return flat_cache[(j, i)]

    step_ids = [f"s{i + 1}" for i in range(len(sig))]
    params: dict[str, Param] = {}
    param_by_values: dict[str, list[str]] = {}
    steps: list[Step] = []
    n = len(traces)
    for i, action in enumerate(sig):
        args = _step_args([d[i].args for d in demos], i, action, n, tasks, corpus, flat,
                          step_ids, params, param_by_values)
        steps.append(Step(id=step_ids[i], action=action, args=args))
    proc = Procedure(
        name=name or procedure_name(sig),
        version=version,
        description=_describe(sig, n),
        params=list(params.values()),
        steps=steps,
        tags=sorted({a.split("_", 1)[0] for a in sig}),
        lineage=Lineage(traces=[t.id for t in traces], reason=f"induced from {n} trace(s)"),
    )
    check_templates(proc)
    return annotate(proc, effects)


def _step_args(arg_dicts: list[dict[str, Any]], i: int, action: str, n: int, tasks: list[str],
               corpus: CorpusStats, flat: Any, step_ids: list[str], params: dict[str, Param],
               param_by_values: dict[str, list[str]]) -> Any:
    """One step's args template from its aligned demonstrations (see :func:`_classify`)."""
    if any(tpl.has_reserved_key(a) for a in arg_dicts):
        # args with a "$" key at the top are data: the whole object is one leaf
        return _classify(arg_dicts, "", i, action, n, tasks, corpus, flat, step_ids, params,
                         param_by_values)
    args: dict[str, Any] = {}
    for ptr in _common_keys(arg_dicts):
        values = [_get(a, ptr) for a in arg_dicts]
        node = _classify(
            values, ptr, i, action, n, tasks, corpus, flat, step_ids, params, param_by_values
        )
        set_pointer(args, ptr, node)
    return args


def _common_keys(arg_dicts: list[dict[str, Any]]) -> list[str]:
    """Leaf pointers present in every demonstration (first demonstration's order)."""
    first = [p for p, _ in leaves(arg_dicts[0])] if arg_dicts[0] else []
    common = set(first)
    for a in arg_dicts[1:]:
        common &= {p for p, _ in leaves(a)} if a else set()
    return [p for p in first if p in common and p != ""]


def _get(obj: Any, ptr: str) -> Any:
    return tpl.resolve_pointer(obj, ptr)


def set_pointer(obj: dict[str, Any], ptr: str, value: Any) -> None:
    """Set the value at JSON Pointer ``ptr`` (RFC 6901) in ``obj``, making objects on the way."""
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in ptr.split("/")[1:]]
    cur = obj
    for t in tokens[:-1]:
        cur = cur.setdefault(t, {})
    cur[tokens[-1]] = value


def _classify(
    values: list[Any],
    ptr: str,
    i: int,
    action: str,
    n: int,
    tasks: list[str],
    corpus: CorpusStats,
    flat: Any,
    step_ids: list[str],
    params: dict[str, Param],
    param_by_values: dict[str, list[str]],
) -> Any:
    canon = [_canon(v) for v in values]
    all_equal = len(set(canon)) == 1
    if (all_equal and corpus.is_constant(action, ptr)
            and not corpus.named_in_every_task(action, ptr)):
        return tpl.literal(values[0])
    # a value the task text names -> $param
    if all(locate(v, t) is not None for v, t in zip(values, tasks, strict=True)):
        key = "|".join(canon)
        same = param_by_values.setdefault(key, [])
        if same and _mentioned_once(values, tasks):
            return tpl.param(same[0])  # one mention feeding several steps
        return tpl.param(_new_param(values, ptr, action, step_ids[i], tasks, corpus, params,
                                    same))
    # a value an earlier step returned -> $step at a fixed pointer, or a selection
    prompt = f"{ptr[1:].replace('/', '.') or 'args'} for {action}"
    found: list[dict[str, Any]] = []
    for k in range(i):
        hits = [{p for p, x in flat(j, k).items() if same_value(x, v)}
                for j, v in enumerate(values)]
        if not all(hits):
            continue
        docs = [flat(j, k)[""] for j in range(n)]
        fixed = selection.fixed_pointers(docs, hits)
        if fixed:
            return tpl.step_ref(step_ids[k], min(fixed, key=lambda p: (p.count("/"), p)))

        def new_param(xs: list[Any], field: str) -> str | None:
            if not all(locate(x, t) is not None for x, t in zip(xs, tasks, strict=True)):
                return None
            key = "|".join(_canon(x) for x in xs)
            return _new_param(xs, field, action, step_ids[i], tasks, corpus, params,
                              param_by_values.setdefault(key, []))

        node = selection.infer_reference(
            values, docs, hits, step_ids[k], params=selection.param_values(param_by_values, n),
            same=same_value, prompt=prompt, new_param=new_param, min_literal=corpus.min_constant)
        if node is not None:
            found.append(node)
    for node in found:  # a selection or a proven position (first earlier step first)
        if "$ask" not in node:
            return node
    if all_equal and (n >= corpus.min_constant or holds_marker(values[0])):
        # a redacted secret is never sent as it is: secretize() makes it a secret param
        return tpl.literal(values[0])
    return found[0] if found else tpl.ask(prompt)


def _new_param(values: list[Any], ptr: str, action: str, step_id: str, tasks: list[str],
               corpus: CorpusStats, params: dict[str, Param], same: list[str]) -> str:
    """Create the param for a value every task names (its extractor learned from the
    tasks); ``same`` lists the params already made for these values and gets the new one."""
    base = _param_name(ptr)
    pname, k = base, 2
    while pname in params:
        pname, k = f"{base}_{k}", k + 1
    ex = learn_extractor(values, tasks, shape_values=sorted(corpus.shapes.get(base, ())),
                         context_examples=corpus.contexts.get((action, ptr)),
                         nth=len(same),
                         corpus_values=[json.loads(c) for c in
                                        sorted(corpus.values.get((action, ptr), ()))],
                         corpus_count=corpus.counts.get((action, ptr), 0))
    examples: list[Any] = []
    for v in values:
        if v not in examples and len(examples) < 3:
            examples.append(v)
    params[pname] = Param(
        name=pname,
        schema=_schema_of(values),
        description=f"{ptr[1:].replace('/', '.')} of {action} (step {step_id})",
        examples=examples,
        extractor=ex,
    )
    same.append(pname)
    return pname


def _mentioned_once(values: list[Any], tasks: list[str]) -> bool:
    """Whether each demonstration's task names its value exactly once.

    Two steps that use the same value share one param only then: "cancel #W1
    because no longer needed; cancel #W2 because no longer needed" names the
    reason twice, and a new task may give two different reasons.
    """
    return all(len(locate_all(v, t)) == 1 for v, t in zip(values, tasks, strict=True))


def same_value(x: Any, v: Any) -> bool:
    """Whether output value ``x`` is the demonstrated value ``v``: booleans by identity,
    a one-character string never, lists and objects when equal and non-empty, other
    values when equal and of the same type."""
    if isinstance(v, bool) or isinstance(x, bool):
        return x is v
    if isinstance(v, str) and len(v) < 2:
        return False
    if isinstance(v, dict | list) or isinstance(x, dict | list):
        return bool(v) and x == v
    return bool(x == v) and type(x) is type(v)


def _describe(sig: Sequence[str], n: int) -> str:
    words = [a.replace("procedure:", "").replace("_", " ") for a in sig]
    text = ", then ".join(words)
    return f"{text[:1].upper()}{text[1:]}. Learned from {n} demonstration{'s' * (n != 1)}."
