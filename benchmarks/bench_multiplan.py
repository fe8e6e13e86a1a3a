"""How many held-out tasks get a multi-part plan, and how the parts replay.

Learns the first 400 τ-retail train traces (as ``procmem eval --holdout 100``
does, calibrated unless ``--no-calibrate``), then plans every held-out train task
and every dev task with :meth:`procmem.Memory.plan_task` and replays each plan
against the trace's recorded tools, no resolver (a pause stops it):

* ``multi``: plans with one part per request;
* ``uncovered``: plans that list requests no part covers;
* ``calls_right`` / ``calls_wrong``: tool calls sent by the replays whose args
  match / do not match a recorded call of the trace (a wrong one is a silent error);
* ``exact``: replays whose calls are exactly the trace's;
* for multi plans, the same counts, whether the parts' actions are the trace's
  (``multi_actions_match``; then each value bound from the task is compared with the
  recorded call's: ``multi_bound_right`` / ``multi_bound_wrong``), and whether the
  single top hit had the trace's actions (``multi_single_top_matches``).

Run: ``PYTHONPATH=src python benchmarks/bench_multiplan.py [--no-calibrate] [--show] [--db F]``.
Prints numbers; never fails on them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from _common import load, load_optional

from procmem import Memory
from procmem.core.template import resolve_pointer
from procmem.evaluation.evaluate import split_holdout
from procmem.learning.recorded import RecordedEnvironment
from procmem.services.multiplan import run_result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-calibrate", action="store_true")
    ap.add_argument("--show", action="store_true", help="print each multi or uncovered plan")
    ap.add_argument("--db", type=Path, help="keep the learned memory in this file and reuse it")
    a = ap.parse_args()
    train_all, dev = load("train"), load_optional("dev")
    train, holdout = split_holdout(train_all, 100)
    out: dict[str, dict[str, int]] = {}
    reuse = a.db is not None and a.db.exists()
    with Memory(a.db or ":memory:") as mem, Memory(":memory:", embedder=None) as scratch:
        if not reuse:
            mem.learn(train)
            mem.reindex()
            if not a.no_calibrate:
                mem.calibrate(retrievers=["hybrid"])
        for label, tests in (("holdout", holdout), ("dev", dev)):
            c: Counter[str] = Counter()
            for trace in tests:
                if not trace.task.strip():
                    continue
                tp = mem.plan_task(trace.task)
                env = RecordedEnvironment(trace)
                executions = []  # as Memory.replay_plan(partial=True), in the scratch memory
                for p in tp.parts:
                    proc = mem.get_procedure(p.plan.procedure or "", p.plan.version)
                    executions.append(scratch.replay(
                        proc, tools=env.tools(proc.signature()), task=p.text))
                    if executions[-1].status != "succeeded":
                        break
                run = run_result(tp, executions)
                sent = len(env.calls)
                wrong = sent - len(env.used)  # calls no recorded call answers
                c["tasks"] += 1
                c["multi"] += tp.multi
                c["uncovered"] += bool(tp.uncovered)
                c["calls_right"] += sent - wrong
                c["calls_wrong"] += wrong
                c["exact"] += env.exact()
                if tp.multi:
                    c["multi_calls_right"] += sent - wrong
                    c["multi_calls_wrong"] += wrong
                    c["multi_exact"] += env.exact()
                    c["multi_confident"] += tp.confident
                    c["multi_run_" + run.status] += 1
                    sig = trace.signature()
                    planned = tuple(s.action for p in tp.parts for s in p.plan.steps)
                    c["multi_actions_match"] += planned == sig
                    if planned == sig:  # i-th planned step <-> i-th recorded step
                        steps = [s for p in tp.parts for s in p.plan.steps]
                        for step, rec in zip(steps, trace.successful_steps(), strict=True):
                            for v in step.values:
                                if v.source == "param":
                                    ok = resolve_pointer(rec.args, v.path) == v.value
                                    c["multi_bound_right" if ok else "multi_bound_wrong"] += 1
                    top = mem.search(trace.task, limit=1)
                    c["multi_single_top_matches"] += bool(
                        top and top[0].procedure.signature() == sig)
                if a.show and (tp.multi or tp.uncovered):
                    print(trace.id, tp.summary, "| trace:", list(trace.signature()),
                          "| run:", run.status, wrong, file=sys.stderr)
            out[label] = dict(c)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
