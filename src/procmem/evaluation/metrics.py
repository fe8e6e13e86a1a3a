"""Judging one replay against its recorded trace: silent errors, supplied values, right hits.

Pure functions over a procedure, the :class:`~procmem.core.model.Execution` its replay
produced and the test :class:`~procmem.core.model.Trace`; :mod:`procmem.evaluation.evaluate`
sums them into figures. Also the word-overlap baseline ranker and the
reliability table (predicted probability vs observed rate).

Terms:

* **aligned call** — the recorded call a step run is compared with: the k-th
  successful recorded step with the same action as the run's procedure step
  (:func:`procmem.learning.recorded.aligned_step`);
* **issued call** — a step run that actually called its tool (``attempts > 0``);
* **oracle-supplied value** — an arg value from an ``$ask`` answer or from a param
  whose value came from an answered need (``param_sources[name] == "answer"``);
* **source of a value** — ``task`` (a param bound from the task text), ``step``
  (a ``$step`` reference to an earlier output), ``selection`` (an element of an
  earlier output's list picked by a ``$select`` node), ``literal`` (a
  constant of the procedure, or a param's schema default), ``asked`` (the oracle);
  ``given`` / ``other`` for anything else.

Invariant: nothing here calls a tool or reads a store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..core.model import Execution, Procedure, StepRun, Trace, TraceStep
from ..core.template import join_pointer
from ..learning.recorded import aligned_step, bound_mismatches

__all__ = ["SOURCES", "OverlapRanker", "bound_mismatches", "classify_source", "leaf_values",
           "oracle_paths", "reliability_table", "silent_errors", "supplied_values"]

SOURCES = ("task", "step", "selection", "literal", "asked")
"""The value sources always reported by ``supplied_precision``, in display order."""

_MISSING = object()
_WORD = re.compile(r"\w+")


def leaf_values(value: Any, base: str = "") -> Iterator[tuple[str, Any]]:
    """``(JSON Pointer, value)`` of every leaf (an empty object or list is a leaf)."""
    if isinstance(value, dict) and value:
        for k, v in value.items():
            yield from leaf_values(v, join_pointer(base, k))
    elif isinstance(value, list) and value:
        for i, v in enumerate(value):
            yield from leaf_values(v, join_pointer(base, i))
    else:
        yield base, value


def _at(value: Any, pointer: str) -> Any:
    """The value at a JSON Pointer, or ``_MISSING`` (JSON text in args is not parsed)."""
    if pointer == "":
        return value
    cur = value
    for raw in pointer[1:].split("/"):
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(cur, dict) and token in cur:
            cur = cur[token]
        elif isinstance(cur, list) and token.isdigit() and int(token) < len(cur):
            cur = cur[int(token)]
        else:
            return _MISSING
    return cur


def _under(path: str, pointer: str) -> bool:
    return pointer == path or pointer.startswith(path + "/")


def classify_source(source: str, param_sources: Mapping[str, str]) -> str:
    """The source class of one ``StepRun.sources`` entry (see the module docstring).

    Args:
        source: ``literal``, ``param:NAME``, ``step:ID#POINTER``, ``ask`` or
            ``select:ID#POINTER``.
        param_sources: The execution's ``param_sources`` (``task``, ``answer``,
            ``default``, ``given``, ...).

    Returns:
        One of ``task``, ``step``, ``selection``, ``literal``, ``asked``, ``given``,
        ``other``.
    """
    if source == "ask":
        return "asked"
    if source == "literal":
        return "literal"
    if source.startswith("step:"):
        return "step"
    if source.startswith("select:"):
        return "selection"
    if source.startswith("param:"):
        origin = param_sources.get(source[6:], "")
        return {"task": "task", "answer": "asked", "default": "literal",
                "given": "given"}.get(origin, "other")
    return "other"


def _valued_paths(run: StepRun, param_sources: Mapping[str, str]) -> list[tuple[str, str]]:
    """``(pointer, source class)`` of every value the run's args hold.

    A sourced value (one ``run.sources`` entry) counts once, whatever its size;
    each leaf outside every sourced value is one ``literal``.
    """
    sourced = [(path, classify_source(src, param_sources)) for path, src in run.sources.items()
               if _at(run.args, path) is not _MISSING]
    out = list(sourced)
    for pointer, _ in leaf_values(run.args):
        if pointer and not any(_under(path, pointer) for path, _ in sourced):
            out.append((pointer, "literal"))
    return out


def oracle_paths(run: StepRun, param_sources: Mapping[str, str]) -> list[str]:
    """Pointers of the run's args whose value the oracle supplied."""
    return [path for path, src in run.sources.items()
            if classify_source(src, param_sources) == "asked"]


def _issued(execution: Execution) -> Iterator[StepRun]:
    return (run for run in execution.step_runs if run.attempts > 0)


def silent_errors(execution: Execution, procedure: Procedure,
                  trace: Trace) -> list[dict[str, Any]]:
    """The issued calls of a replay that are silent errors.

    A silent error is an issued call whose args hold no oracle-supplied value
    and that differs from its aligned recorded call, or has none (except an
    optional read with none: it changes nothing and no later step uses it). A
    call equal to one the recording made that the environment rejected (its
    step has an ``error``) is not one either: the demonstrator sent the same
    values, and a successful-steps alignment alone would count the world's
    refusal (an insufficient gift-card balance) as procmem's wrong value.

    Args:
        execution: The replay of ``procedure`` (its step runs).
        procedure: The procedure version that was replayed.
        trace: The test trace the replay is judged against.

    Returns:
        One dict per silent error, in call order: ``{"step", "action",
        "recorded": bool, "wrong": [{"path", "sent", "recorded", "source"}]}``;
        ``recorded`` is False when no recorded call aligns (``wrong`` then lists
        every value sent); a ``sent`` or ``recorded`` key is absent where that
        side has no value at ``path``.
    """
    recorded = trace.successful_steps()
    out = []
    for run in _issued(execution):
        if oracle_paths(run, execution.param_sources):
            continue  # the agent was asked: not silent
        aligned = aligned_step(recorded, procedure, run.step_id)
        if aligned is not None and run.args == aligned.args:
            continue
        if _refused(run, trace):
            continue  # the recording made this very call; the environment refused it
        if aligned is None and _optional(procedure, run.step_id):
            continue  # an optional read the trace did not make: no right value, no effect
        out.append({"step": run.step_id, "action": run.action, "recorded": aligned is not None,
                    "wrong": _differences(run, execution.param_sources, aligned)})
    return out


def _optional(procedure: Procedure, step_id: str) -> bool:
    return any(s.id == step_id and s.optional and s.side_effect is False
               for s in procedure.steps)


def _refused(run: StepRun, trace: Trace) -> bool:
    """Whether the recording made ``run``'s very call and the environment refused it."""
    return any(s.error is not None and s.action == run.action and s.args == run.args
               for s in trace.steps)


def _differences(run: StepRun, param_sources: Mapping[str, str],
                 aligned: TraceStep | None) -> list[dict[str, Any]]:
    """Where the run's args differ from the aligned call's, with each sent value's source."""
    theirs = aligned.args if aligned is not None else {}
    values = _valued_paths(run, param_sources)
    wrong = []
    for pointer, source in values:
        sent, want = _at(run.args, pointer), _at(theirs, pointer)
        if sent != want or aligned is None:
            entry: dict[str, Any] = {"path": pointer, "source": source, "sent": sent}
            if want is not _MISSING:
                entry["recorded"] = want
            wrong.append(entry)
    for pointer, want in leaf_values(theirs):
        if pointer and not any(_under(path, pointer) or _under(pointer, path)
                               for path, _ in values):
            wrong.append({"path": pointer, "source": None, "recorded": want})
    return wrong


def supplied_values(execution: Execution, procedure: Procedure,
                    trace: Trace) -> dict[str, list[int]]:
    """How many values of each source the replay sent, and how many were right.

    A value is right when it equals the value at the same JSON Pointer in the
    run's aligned recorded call (no aligned call, or no value there: wrong), or
    when the whole call equals one the recording made and the environment
    refused (see :func:`silent_errors`).

    Returns:
        ``{source: [right, total]}`` for the sources that sent a value.
    """
    recorded = trace.successful_steps()
    out: dict[str, list[int]] = {}
    for run in _issued(execution):
        aligned = aligned_step(recorded, procedure, run.step_id)
        refused = _refused(run, trace)
        for pointer, source in _valued_paths(run, execution.param_sources):
            counts = out.setdefault(source, [0, 0])
            counts[1] += 1
            if refused or (aligned is not None
                           and _at(aligned.args, pointer) == _at(run.args, pointer)):
                counts[0] += 1
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


class OverlapRanker:
    """A word-overlap baseline: procedures ranked by the words they share with a task.

    A procedure's document is its name, its description and the tasks of its
    demonstrations; its score is the number of distinct lowercase word tokens
    (``\\w+``) it shares with the task. Ties by name.

    Args:
        procedures: The procedures to rank (current versions).
        tasks: Task text by trace id, for the demonstrations (``lineage.traces``);
            ids not in it are left out.
    """

    def __init__(self, procedures: Iterable[Procedure], tasks: Mapping[str, str]) -> None:
        self.documents: list[tuple[str, tuple[str, ...], set[str]]] = []
        for p in sorted(procedures, key=lambda p: p.name):
            text = " ".join([p.name.replace("_", " ").replace("-", " "), p.description,
                             *(tasks[t] for t in p.lineage.traces if t in tasks)])
            self.documents.append((p.name, p.signature(), _words(text)))

    def top(self, task: str) -> tuple[str, tuple[str, ...]] | None:
        """``(name, action signature)`` of the best procedure for ``task``, or ``None``."""
        words = _words(task)
        best = None
        best_score = -1
        for name, signature, document in self.documents:  # sorted by name: ties keep the first
            score = len(words & document)
            if score > best_score:
                best, best_score = (name, signature), score
        return best


def reliability_table(pairs: Sequence[tuple[float, bool]], *,
                      bins: int = 10) -> list[dict[str, Any]]:
    """Predicted probability vs observed rate, by equal-width bins of the prediction.

    Args:
        pairs: ``(predicted probability 0-1, observed outcome)`` per case.
        bins: Number of bins over [0, 1]; the last one includes 1.

    Returns:
        One dict per non-empty bin, lowest first: ``{"bin": [lo, hi], "n",
        "predicted" (mean prediction), "observed" (share of True outcomes)}``.
    """
    grouped: dict[int, list[tuple[float, bool]]] = {}
    for p, ok in pairs:
        grouped.setdefault(min(int(max(p, 0.0) * bins), bins - 1), []).append((p, ok))
    return [{"bin": [round(i / bins, 4), round((i + 1) / bins, 4)], "n": len(rows),
             "predicted": round(sum(p for p, _ in rows) / len(rows), 4),
             "observed": round(sum(ok for _, ok in rows) / len(rows), 4)}
            for i, rows in sorted(grouped.items())]
