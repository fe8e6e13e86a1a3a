"""What each UI page shows, gathered from :class:`procmem.Memory` (no HTML here).

Each function returns plain dicts for the templates. They read through the public
``Memory`` methods the CLI and REST API use (``list_procedures``, ``stats``,
``tool_flags``, ``search``, ``plan``, ``history``, ``diff``, ``get_execution``...),
so the UI shows the same figures; the only figure computed here is reliability over
time, which is :func:`procmem.learning.stats.version_stats` over growing prefixes
of the runs.

Invariants:
    * Read only: nothing here writes to the memory.
    * The memory given is the request's tenant's (the REST app's tenant proxy).
"""

from __future__ import annotations

import json
from typing import Any

from ..core.errors import NotFound
from ..core.model import Execution, Hit
from ..core.template import join_pointer
from ..formats.serialize import hit_record
from ..memory import Memory
from . import svg

__all__ = ["execution_view", "procedure_view", "procedures_view", "search_view", "short_json",
           "trace_view"]

_RELIABILITY_POINTS = 60
_RUNS_WINDOW = 500


def short_json(value: Any, width: int = 120) -> str:
    """``value`` as compact JSON, cut to ``width`` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                            default=str)
    return text if len(text) <= width else text[:width - 1] + "…"


def procedures_view(mem: Memory, *, status: str | None = None, flag: str | None = None,
                    text: str = "", limit: int = 1000) -> dict[str, Any]:
    """The procedures table: one row per current procedure.

    Returns:
        ``{"rows": [...], "flags": [all flags seen]}``; a row is ``{"name", "version",
        "status", "pinned", "reliability", "lower", "upper", "runs", "flags",
        "tool_flags", "last_run_at", "description", "steps"}``.
    """
    stats = {s.name: s for s in mem.stats()}
    tool_flags: dict[str, int] = {}
    for f in mem.tool_flags():
        tool_flags[f["procedure"]] = tool_flags.get(f["procedure"], 0) + 1
    rows, seen = [], set()
    needle = text.strip().lower()
    for proc in mem.list_procedures(status=status, limit=limit):
        st = stats.get(proc.name)
        flags = list(st.flags if st else [])
        if tool_flags.get(proc.name):
            flags.append("tool-changed")
        seen.update(flags)
        if flag and flag not in flags:
            continue
        if needle and needle not in proc.name.lower() and needle not in \
                proc.description.lower():
            continue
        rows.append({
            "name": proc.name, "version": proc.version, "status": proc.status,
            "pinned": bool(st and st.pinned), "description": proc.description,
            "steps": len(proc.steps),
            "reliability": st.reliability if st else None,
            "lower": st.reliability_lower if st else None,
            "upper": st.reliability_upper if st else None,
            "runs": st.runs if st else proc.execution_count,
            "flags": flags, "tool_flags": tool_flags.get(proc.name, 0),
            "last_run_at": (st.last_run_at if st else None) or proc.last_executed_at})
    return {"rows": rows, "flags": sorted(seen)}


def search_view(mem: Memory, task: str, *, status: str | None = "active",
                limit: int = 5) -> list[dict[str, Any]]:
    """The hits of ``procmem search TASK`` (:meth:`Memory.search`), each as
    :func:`procmem.formats.serialize.hit_record` plus ``plan``: the hit's
    :meth:`Memory.plan` as JSON (the bound values with their sources, pauses, summary).
    """
    hits: list[Hit] = mem.search(task, limit=limit, status=status)
    out = []
    for rank, hit in enumerate(hits, 1):
        record = hit_record(rank, hit)
        try:
            record["plan"] = mem.plan(task, procedure=hit).to_json()
        except NotFound:  # a sub-procedure is missing: the hit stays, without a plan
            record["plan"] = None
        out.append(record)
    return out


def _reliability_series(mem: Memory, name: str, version: int) -> list[tuple[str, float,
                                                                            float, float]]:
    from ..learning.stats import version_stats

    proc = mem.get_procedure(name, version)
    runs = [e for e in mem.list_executions(procedure=name, limit=_RUNS_WINDOW)
            if e.version == version and e.parent_id is None]
    runs.sort(key=lambda e: e.started_at)
    if not runs:
        return []
    evidence = mem.store.list_evidence(procedure=name)
    every = max(1, len(runs) // _RELIABILITY_POINTS)
    points = []
    for end in [*range(every, len(runs), every), len(runs)]:
        st = version_stats(proc, runs[:end], evidence)
        points.append((runs[end - 1].started_at.strftime("%Y-%m-%d %H:%M"),
                       st.reliability, st.reliability_lower, st.reliability_upper))
    return points


def procedure_view(mem: Memory, name: str, version: int | None = None) -> dict[str, Any]:
    """Everything the procedure page shows.

    Returns:
        ``{"proc", "current", "versions", "history", "diffs", "stats", "diagram",
        "durations", "failures", "reliability", "flags", "executions", "subs"}``;
        ``diffs`` maps a version to ``(from_version, lines)``.

    Raises:
        NotFound: No such procedure or version.
    """
    current = mem.get_procedure(name)
    proc = mem.get_procedure(name, version) if version is not None else current
    history = mem.history(name)
    diffs: dict[int, tuple[int, list[str]]] = {}
    previous = None
    for row in history:
        base = row["parent_version"] or previous
        if base is not None and base != row["version"]:
            try:
                diffs[row["version"]] = (base, mem.diff(name, base, row["version"]))
            except NotFound:
                pass
        previous = row["version"]
    stats = {s.version: s for s in mem.stats(name)}
    st = stats.get(proc.version)
    steps = st.steps if st else []
    executions = mem.list_executions(procedure=name, limit=20)
    subs = sorted({s.subprocedure for s in proc.steps if s.subprocedure})
    return {
        "proc": proc, "current": current, "history": history, "diffs": diffs,
        "stats": st, "subs": subs,
        "diagram": svg.flow_diagram(proc),
        "durations": svg.bar_chart([(s.step_id, s.p50_ms) for s in steps], unit=" ms",
                                   title="p50 duration per step"),
        "failures": svg.bar_chart([(s.step_id, float(s.failures)) for s in steps],
                                  title="failed tries per step"),
        "reliability": svg.line_chart(_reliability_series(mem, name, proc.version),
                                      title=f"reliability of v{proc.version} over its runs "
                                            "(posterior mean, 5-95 % band)"),
        "flags": mem.tool_flags(name), "executions": executions,
        "candidates": [r["version"] for r in history if r["status"] == "candidate"],
    }


def _arg_rows(run: Any, ex: Execution) -> list[dict[str, str]]:
    """Each top-level arg of a step run with where its value came from
    (:func:`procmem.cli.render.source_text`, the words ``procmem replay`` prints)."""
    from ..cli.render import source_text  # imported on use: the CLI package is not small

    rows = []
    for key, value in run.args.items():
        pointer = join_pointer("", key)
        if pointer in run.sources:
            source = source_text(run.sources[pointer], ex, answered_by="the user").plain
        else:
            inner = [(p, s) for p, s in run.sources.items() if p.startswith(pointer + "/")]
            source = "; ".join(f"{p[len(pointer):]}: "
                               f"{source_text(s, ex, answered_by='the user').plain}"
                               for p, s in inner) or \
                source_text("literal", ex, answered_by="the user").plain
        rows.append({"arg": key, "value": short_json(value), "source": source})
    return rows


def execution_view(mem: Memory, execution_id: str) -> dict[str, Any]:
    """The execution page: its step runs and attempts on a timeline, each arg with
    its source, its needs, evidence and sub-executions.

    Raises:
        NotFound: No such execution.
    """
    ex = mem.get_execution(execution_id)
    bars: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for run in ex.step_runs:
        for att in run.history:
            bars.append({"label": f"{run.step_id} try {att.attempt}",
                         "start_ms": (att.started_at - ex.started_at).total_seconds() * 1000,
                         "duration_ms": att.duration_ms, "status": att.status})
        bars.append({"label": f"{run.step_id}" + (f" try {run.attempt}" if run.attempt > 1
                                                  else ""),
                     "start_ms": max(0.0, (run.started_at - ex.started_at).total_seconds()
                                     * 1000),
                     "duration_ms": run.duration_ms, "status": run.status})
        runs.append({"run": run, "args": _arg_rows(run, ex),
                     "output": short_json(run.output, 300),
                     "attempts": [{"attempt": a.attempt, "status": a.status,
                                   "error": a.error, "duration_ms": a.duration_ms}
                                  for a in run.history]})
    for b in bars:
        b["start_ms"] = max(0.0, b["start_ms"])
    evidence = [e for e in mem.store.list_evidence(procedure=ex.procedure)
                if e.execution_id == ex.id]
    params = [{"name": k, "value": short_json(v),
               "source": ex.param_sources.get(k, "given")} for k, v in ex.params.items()]
    return {"ex": ex, "timeline": svg.timeline(bars), "runs": runs, "params": params,
            "needs": ex.needs, "evidence": evidence}


def trace_view(mem: Memory, trace_id: str) -> dict[str, Any]:
    """A trace with its steps and the procedure versions learned from it.

    Raises:
        NotFound: No such trace.
    """
    trace = mem.get_trace(trace_id)
    impact = mem.trace_impact(trace_id)
    steps = [{"action": s.action, "args": short_json(s.args, 200),
              "output": short_json(s.output, 200), "error": s.error,
              "duration_ms": s.duration_ms} for s in trace.steps]
    return {"trace": trace, "steps": steps, "learned_from": impact.learned_from}
