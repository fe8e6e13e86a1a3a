"""The child processes of ``tests/test_multihost.py``: one role per command.

Run as ``python -m multihost_child ROLE LOCATION OUT [ARGS...]`` with ``tests/`` and
``src/`` on ``PYTHONPATH``. Every role opens its own :class:`procmem.memory.Memory` on
``LOCATION`` (a SQLite file path or a ``postgresql://`` URL: only the location
differs between backends), does its part, and writes its result as JSON to
``OUT`` (written to ``OUT.tmp`` then renamed, so a reader never sees half a file).

Synchronization is on files only: a role that must start at the same moment as
another writes ``OUT.ready`` and waits for the ``--go`` file the test creates once
every racer is ready; a role that needs another's result waits for that file.
The tools are deterministic and in-process; each appends the calls it receives
to ``OUT.calls`` (one JSON line per call, written before it returns), so the test
can count the calls every process sent.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procmem.core.errors import ExecutionBusy, ReplayError
from procmem.formats.traceio import read_traces
from procmem.learning.promote import PromotionPolicy
from procmem.memory import Memory

POLICY = PromotionPolicy(threshold=0.95, min_runs=5)
"""The promotion policy every process of the promotion race uses (the parent too)."""

WAIT_S = 120.0


def wait_file(path: Path) -> None:
    """Wait until ``path`` exists (another process creates it); SystemExit after WAIT_S."""
    deadline = time.monotonic() + WAIT_S
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {path}")
        time.sleep(0.002)


def write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value), encoding="utf-8")
    os.replace(tmp, path)


def logging_tools(log: Path, outputs: dict[str, list[Any]]) -> dict[str, Callable[..., Any]]:
    """Tools answering from ``outputs`` (per action, in order; the last one repeats)
    that append ``{"pid", "action", "args", "key"}`` to ``log`` before they return."""
    seen: dict[str, int] = {}

    def make(action: str) -> Callable[..., Any]:
        def tool(**kwargs: Any) -> Any:
            i = seen.get(action, 0)
            seen[action] = i + 1
            with log.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"pid": os.getpid(), "action": action,
                                    "args": kwargs}) + "\n")
            answers = outputs[action]
            return answers[min(i, len(answers) - 1)]
        return tool
    return {action: make(action) for action in outputs}


def memory(location: str, **kw: Any) -> Memory:
    return Memory(location, embedder=None, **kw)


def race_start(out: Path, go: Path | None) -> None:
    """Say this process is ready, then wait for the common start."""
    if go is not None:
        write_json(out.with_name(out.name + ".ready"), os.getpid())
        wait_file(go)


# ----------------------------------------------------------------------- roles


def learn(location: str, out: Path, args: argparse.Namespace) -> None:
    """Import the trace file ``args.traces`` and learn; the result names the procedures."""
    with memory(location) as mem:
        imported = mem.import_traces(args.traces)
        report = mem.learn()
        write_json(out, {"stored": imported.stored, "created": report.created})


def find_and_replay(location: str, out: Path, args: argparse.Namespace) -> None:
    """Wait for ``args.after``, search for the held-out trace's task, replay the top hit
    with tools answering the held-out trace's recorded outputs."""
    (held,), _ = read_traces(args.traces)
    wait_file(Path(args.after))
    with memory(location) as mem:
        hits = mem.search(held.task)
        outputs: dict[str, list[Any]] = {}
        for step in held.steps:
            outputs.setdefault(step.action, []).append(step.output)
        log = out.with_name(out.name + ".calls")
        ex = mem.replay(hits[0].procedure.name,
                        tools=logging_tools(log, outputs), task=held.task)
        write_json(out, {"hits": [h.procedure.name for h in hits], "status": ex.status,
                         "execution_id": ex.id})


def resume(location: str, out: Path, args: argparse.Namespace) -> None:
    """Race to resume ``args.execution`` with ``args.answers``: ``won``, ``busy`` or
    ``already_succeeded``."""
    tools = logging_tools(out.with_name(out.name + ".calls"),
                          {"charge": ['{"charged": true}'], "notify": ['"sent"']})
    with memory(location) as mem:
        race_start(out, args.go)
        try:
            ex = mem.resume(args.execution, json.loads(args.answers), tools=tools)
            outcome = {"outcome": "won", "status": ex.status}
        except ExecutionBusy as busy:
            outcome = {"outcome": "busy", "owner": busy.owner}
        except ReplayError as err:
            if "already succeeded" not in str(err):
                raise
            outcome = {"outcome": "already_succeeded"}
        write_json(out, outcome)


def report(location: str, out: Path, args: argparse.Namespace) -> None:
    """Report success evidence for ``args.execution`` at the common start; the
    result lists the status changes the report made."""
    with memory(location, policy=POLICY) as mem:
        race_start(out, args.go)
        result = mem.report(args.execution, reward=1.0, source="environment")
        write_json(out, {"changes": [[c.version, c.change, c.from_status, c.to_status]
                                     for c in result.changes]})


def start(location: str, out: Path, args: argparse.Namespace) -> None:
    """Start a client-driven execution of ``args.procedure`` for ``args.task``; the result
    is the first turn (the call this process does NOT make)."""
    with memory(location) as mem:
        turn = mem.start(args.procedure, task=args.task)
        write_json(out, turn.to_json())


def advance(location: str, out: Path, args: argparse.Namespace) -> None:
    """Wait for the first turn ``args.after`` another process started, then make every
    outstanding call of that execution and give its result with ``advance`` until done."""
    wait_file(Path(args.after))
    first = json.loads(Path(args.after).read_text(encoding="utf-8"))
    outputs = {"charge_card": ['{"charged": true}'], "ship": ['{"shipped": true}']}
    tools = logging_tools(out.with_name(out.name + ".calls"), outputs)
    with memory(location) as mem:
        view, call = first, first["next_call"]
        while call is not None:
            output = tools[call["action"]](**call["args"])
            view = mem.advance(first["execution_id"], step_id=call["step_id"],
                               output=output).to_json()
            call = view["next_call"]
        write_json(out, view)


ROLES: dict[str, Callable[[str, Path, argparse.Namespace], None]] = {
    "learn": learn, "find_and_replay": find_and_replay, "resume": resume,
    "report": report, "start": start, "advance": advance}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="multihost_child")
    parser.add_argument("role", choices=sorted(ROLES))
    parser.add_argument("location")
    parser.add_argument("out", type=Path)
    parser.add_argument("--traces")
    parser.add_argument("--after")
    parser.add_argument("--go", type=Path)
    parser.add_argument("--execution")
    parser.add_argument("--answers", default="{}")
    parser.add_argument("--procedure")
    parser.add_argument("--task")
    args = parser.parse_args(argv)
    ROLES[args.role](args.location, args.out, args)


if __name__ == "__main__":
    main(sys.argv[1:])
