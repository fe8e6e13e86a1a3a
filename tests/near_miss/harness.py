"""The one harness every near-miss case runs through: an agent that trusts procmem.

The agent emulated is the simplest one procmem must keep safe: it searches, and
when the top hit is ``confident`` it replays that procedure with the task text,
answering no question about a param (every value procmem cannot bind pauses
the replay). It answers only ``$ask`` holes for values that are nowhere in the
task (item ids an agent looks up, e.g. ``/item_ids``), with the right value,
keyed by the hole's arg path whatever the action — so the params procmem did
bind in that call are actually sent, and checked.

Invariants:
    * A case passes when every call actually sent equals the expected call at its
      position (action and args, exactly) and no call is sent beyond the expected
      ones; a ``must_complete`` case must also be selected confidently and run
      every expected call to success (coverage).
    * Each case runs on its own copy of a store learned once per training set, so a
      replay (its executions, their reliability) never changes a later case's search.
"""

from __future__ import annotations

import inspect
import json
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from procmem import Memory, Need, ProcmemError, Trace

SMALL_STORE_MIN_CONSTANT = 2
"""The stores here learn from 2-4 demonstrations per procedure, and their constants
(e-mail template names, notify flags) are the tools' own vocabulary: they lower
``Memory(min_constant=...)`` from its default of 48, as a small desk would. The
default's own behaviour (a constant seen a few times is asked for) is tested in
``tests/test_induce.py``."""

__all__ = [
    "CATEGORIES",
    "Call",
    "Case",
    "Outcome",
    "TrainingSet",
    "check",
    "describe",
    "learned_store",
    "recording_tools",
    "run_case",
]

CATEGORIES = (
    "span",  # truncated and overlong spans (free text, addresses)
    "shape",  # values of unseen shapes (emails, ids, amounts, dates)
    "number",  # numbers inside other values
    "one-word",  # two procedures whose tasks are one word apart
    "reuse",  # params reused across steps
    "reserved",  # reserved-key data in demonstrations
    "clean",  # well-formed tasks worded like the demonstrations
)


@dataclass(frozen=True)
class Call:
    """One tool call: the action and its keyword arguments (JSON values)."""

    action: str
    args: dict[str, Any]

    def __str__(self) -> str:
        return f"{self.action}({json.dumps(self.args, sort_keys=True)})"


@dataclass(frozen=True)
class Case:
    """A constructed task and what a correct agent sends for it.

    Attributes:
        name: Readable id, unique within its domain.
        category: One of :data:`CATEGORIES`.
        task: The task text given to the agent.
        expected: The calls a correct agent sends, in order (written by hand from
            the task; empty: no call may be sent, e.g. a needed value is missing).
        must_complete: The task is clear and worded like the demonstrations, so
            the replay must send every expected call (not only avoid wrong ones).
        answers: Values for ``$ask`` holes by arg path (``"/item_ids"``).
        note: Why the case is a near miss.
    """

    name: str
    category: str
    task: str
    expected: tuple[Call, ...]
    must_complete: bool = False
    answers: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"{self.name}: unknown category {self.category!r}")


@dataclass
class Outcome:
    """What the emulated agent did for one case.

    ``stage`` is ``no-hit``, ``not-confident`` (paused at selection), ``error``
    (replay raised), ``learn-error`` (the store could not be learned), or the
    execution's status (``paused``, ``succeeded``, ``failed``).
    """

    case: Case
    stage: str
    selected: str | None = None
    sent: list[Call] = field(default_factory=list)
    detail: str = ""

    @property
    def wrong(self) -> list[tuple[int, Call, Call | None]]:
        """Calls sent that differ from the expected call at their position."""
        out = []
        for i, call in enumerate(self.sent):
            want = self.case.expected[i] if i < len(self.case.expected) else None
            if call != want:
                out.append((i, call, want))
        return out


@dataclass(frozen=True)
class TrainingSet:
    """What a store learns before its cases run: traces, and tool schemas if any."""

    name: str
    traces: Callable[[], list[Trace]]
    tool_schemas: Path | None = None


def learned_store(training: TrainingSet, path: Path) -> Path:
    """Learn ``training`` into a new SQLite store at ``path`` and index it (embeddings stored).

    Returns:
        ``path``, closed, ready to be copied once per case.
    """
    with Memory(path, embedder="default", min_constant=SMALL_STORE_MIN_CONSTANT) as mem:
        mem.add_traces(training.traces())
        if training.tool_schemas is not None:
            mem.import_tool_schemas(training.tool_schemas)
        mem.learn()
        mem.search("warm the index")  # embeds every procedure text once, stored in the store
    return path


def _copy_store(template: Path, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    target = into / template.name
    for suffix in ("", "-wal", "-shm"):
        src = template.with_name(template.name + suffix)
        if src.exists():
            shutil.copyfile(src, target.with_name(target.name + suffix))
    return target


def recording_tools(signatures: Mapping[str, Iterable[tuple[str, bool]]],
                    impl: Callable[[str, dict[str, Any]], Any],
                    sent: list[Call]) -> dict[str, Callable[..., Any]]:
    """Tools that record every call into ``sent`` and return ``impl(action, args)``.

    Args:
        signatures: Each tool's keyword parameters as ``(name, required)``, in order;
            the callables get exactly that signature (no ``**kwargs``).
        impl: The real tool behaviour; it may raise (a failed step).
        sent: Appended with a :class:`Call` (args copied) before ``impl`` runs.
    """
    tools: dict[str, Callable[..., Any]] = {}
    for action, params in signatures.items():
        def tool(*, _action: str = action, **kwargs: Any) -> Any:
            args = json.loads(json.dumps(kwargs))
            sent.append(Call(_action, args))
            return impl(_action, args)

        tool.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                              default=inspect.Parameter.empty if required else None)
            for name, required in params])
        tool.__name__ = action
        tools[action] = tool
    return tools


def run_case(case: Case, template: Path, workdir: Path,
             make_tools: Callable[[list[Call]], dict[str, Callable[..., Any]]]) -> Outcome:
    """Run one case the way a trusting agent would, on a fresh copy of a learned store.

    Args:
        case: The case.
        template: A store made by :func:`learned_store` (it is copied, never opened).
        workdir: An empty directory for the copy.
        make_tools: Fresh tools (fresh database) recording into the list given.
    """
    sent: list[Call] = []
    tools = make_tools(sent)

    def resolver(need: Need) -> Any:
        if need.kind == "ask" and need.arg_path is not None and need.arg_path in case.answers:
            return json.loads(json.dumps(case.answers[need.arg_path]))
        return None  # a param procmem could not bind: the agent cannot answer

    with Memory(_copy_store(template, workdir), embedder="default",
                min_constant=SMALL_STORE_MIN_CONSTANT) as mem:
        hits = mem.search(case.task)
        if not hits:
            return Outcome(case, "no-hit")
        top = hits[0]
        name = top.procedure.name
        if not top.confident:
            return Outcome(case, "not-confident", name)
        try:
            ex = mem.replay(top.procedure, tools=tools, task=case.task, resolver=resolver)
        except ProcmemError as err:
            return Outcome(case, "error", name, sent, f"{type(err).__name__}: {err}")
        detail = "; ".join(n.key for n in ex.needs) if ex.status == "paused" else (ex.error or "")
        return Outcome(case, ex.status, name, sent, detail)


def check(outcome: Outcome) -> list[str]:
    """The problems of one outcome (empty: the case passes)."""
    case = outcome.case
    problems = []
    for i, call, want in outcome.wrong:
        problems.append(f"WRONG CALL #{i + 1} sent: {call}\n    expected: "
                        f"{want if want is not None else 'no call at this position'}")
    if case.must_complete and not outcome.wrong and outcome.sent != list(case.expected):
        problems.append(f"INCOMPLETE: a clear task; stage {outcome.stage} "
                        f"(procedure {outcome.selected}, {outcome.detail or 'no detail'}); "
                        f"sent {len(outcome.sent)} of {len(case.expected)} expected calls")
    elif case.must_complete and not outcome.wrong and outcome.stage != "succeeded":
        problems.append(f"INCOMPLETE: all calls sent but the execution is {outcome.stage}")
    return problems


def describe(outcome: Outcome) -> str:
    """A readable account of a case and its outcome, for assertion messages."""
    case = outcome.case
    lines = [f"[{case.category}] {case.name}: {case.note}".rstrip(": "),
             f"  task: {case.task!r}",
             f"  selected: {outcome.selected} -> {outcome.stage} {outcome.detail}".rstrip()]
    lines += [f"  sent #{i + 1}: {c}" for i, c in enumerate(outcome.sent)]
    lines += [f"  expected #{i + 1}: {c}" for i, c in enumerate(case.expected)]
    return "\n".join(lines)

