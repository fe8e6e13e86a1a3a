"""Learning over time: the service :class:`procmem.Memory` delegates to (:class:`LearningLoop`).

Evidence -> statistics -> candidates -> verification -> Thompson sampling ->
promotion or demotion; decay; history, diff and rollback. The policies live in
:mod:`procmem.learning`; this module only reads and writes the store.

Invariants:
    * A candidate is stored only after it reproduced every recorded run it
      claims to cover (its verification record is stored with it), so an
      unverified change never competes and is never promoted.
    * Versions are immutable: promotion and demotion change statuses; a
      rollback stores a new version whose content equals the earlier one.
    * Nothing is deleted except by :meth:`LearningLoop.delete_procedure`.
    * ``stats``/``version_stats`` use the last ``stats_window`` executions of a
      procedure name; decisions (Thompson sampling, promotion) and search's
      reliability use the last ``policy.window``, so that old successes do not
      hide a change in the world. A version's own runs count for it alone: a new
      version (edit, candidate, rollback) starts with none. The counters shown on
      a read procedure (``execution_count`` ...) cover every top-level run of
      its version (:mod:`procmem.core.procstats`).
    * Every change of versions or statuses (report and review, decay, optimize,
      rollback) holds ``lock``, shared with the other writers of versions.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..core.errors import NotFound, UsageError
from ..core.model import Evidence, Execution, Lineage, Procedure, Trace
from ..formats.validation import validation_message
from ..learning.candidates import Candidate, diff, factor, merge, prune, repair
from ..learning.changes import Change, ReportResult, review_candidates
from ..learning.promote import PromotionPolicy, choose, should_decay
from ..learning.stats import EXTERNAL_SOURCES, VersionStats, version_stats
from ..learning.verify import Verification, verify
from ..security.redaction import Redactor, default_redactor
from ..store.base import Store
from .stats import Statistics
from .support import synchronized
from .versions import paged

__all__ = ["LearningLoop", "OptimizeReport"]


@dataclass
class OptimizeReport:
    """What :meth:`LearningLoop.optimize` did.

    ``created``: ``{"name", "version", "kind", "reason", "reproduced"}`` per stored
    candidate; ``rejected``: ``{"name", "kind", "reason", "why"}`` per candidate
    that failed verification (not stored); ``extra``: sub-procedures created.
    """

    created: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


class LearningLoop:
    """Evidence, statistics, optimization and version history over one store.

    Args:
        store: Where versions, executions and evidence are stored.
        statistics: Reads the runs and evidence decisions are made on.
        policy: When candidates are promoted or demoted and procedures decay.
        seed: Seed of the random generator behind Thompson sampling (None: random).
        lock: Held while versions or statuses change (default: a lock of its own).
        redactor: Redacts evidence notes before they are stored (default:
            :func:`procmem.security.redaction.default_redactor`).
    """

    def __init__(self, store: Store, statistics: Statistics, *,
                 policy: PromotionPolicy | None = None, seed: int | None = None,
                 lock: AbstractContextManager[Any] | None = None,
                 redactor: Redactor | None = None) -> None:
        self.store = store
        self.redactor = redactor if redactor is not None else default_redactor()
        self.statistics = statistics
        self.policy = policy or PromotionPolicy()
        self.lock = lock if lock is not None else threading.RLock()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._rejected: set[str] = set()  # fingerprints of candidates that failed verification

    def _all_traces(self) -> list[Trace]:
        """Every stored trace, in insertion order."""
        return paged(lambda limit, offset: self.store.list_traces(limit=limit, offset=offset))

    # ------------------------------------------------------------ evidence

    @synchronized
    def report(self, execution_id: str, *, reward: float, source: str = "user",
               note: str = "") -> ReportResult:
        """Record evidence about an execution's outcome, then review its procedure.

        Reliability moves on evidence from outside the agent (``environment``,
        ``test``, ``user``); ``agent`` evidence is stored and can only lower it
        (see :mod:`procmem.learning.stats`). A candidate competing with the
        active version may be promoted or demoted by this report.

        Args:
            execution_id: The execution the evidence is about.
            reward: Task success in [0, 1].
            source: ``environment``, ``test``, ``user`` or ``agent``.
            note: Free text.

        Raises:
            NotFound: No such execution.
            UsageError: ``reward`` or ``source`` is out of range.

        Returns:
            The evidence stored and the status changes the review made
            (:class:`~procmem.learning.changes.ReportResult`; its ``changes``
            are empty unless a candidate was promoted or demoted).
        """
        ex = self.store.get_execution(execution_id)
        try:
            ev = Evidence.model_validate({"execution_id": execution_id, "reward": reward,
                                          "source": source, "note": note})
        except ValidationError as err:
            raise UsageError(validation_message(err, "bad evidence")) from err
        ev = self.redactor.model(ev, ("note",))[0]  # a secret in the note is not stored
        self.store.put_evidence(ev)
        changes: list[Change] = []
        if ev.source in EXTERNAL_SOURCES or ev.reward < 1:
            changes = self.review(ex.procedure)
        return ReportResult(ev, changes)

    # ----------------------------------------------------------- statistics

    def _runs(self, name: str, window: int | None = None
              ) -> tuple[list[Execution], list[Evidence]]:
        return self.statistics.runs(name, window)

    def version_stats(self, name: str, version: int | None = None) -> VersionStats:
        """Statistics of one version (the current one by default).

        Raises:
            NotFound: No such procedure or version.
        """
        proc = self.store.get_procedure(name, version)
        executions, evidence = self._runs(name)
        return version_stats(proc, executions, evidence, pinned=self.store.is_pinned(name),
                             unused_days=self.policy.unused_days)

    def stats(self, name: str | None = None) -> list[VersionStats]:
        """Statistics of every version of ``name``, or of every current procedure.

        Raises:
            NotFound: ``name`` has no version.
        """
        if name is not None:
            executions, evidence = self._runs(name)
            pinned = self.store.is_pinned(name)
            return [version_stats(p, executions, evidence, pinned=pinned,
                                  unused_days=self.policy.unused_days)
                    for p in self.store.list_versions(name)]
        out = []
        for proc in self.store.list_procedures(limit=100_000):
            executions, evidence = self._runs(proc.name)
            out.append(version_stats(proc, executions, evidence,
                                     pinned=self.store.is_pinned(proc.name),
                                     unused_days=self.policy.unused_days))
        return out

    # ------------------------------------------------- competition and review

    def _competitors(self, name: str) -> tuple[Procedure, list[Procedure]]:
        active = self.store.get_procedure(name)
        cands = []
        for p in self.store.list_versions(name):
            if p.status == "candidate" and p.version > active.version:
                record = self.store.get_verification(name, p.version)
                if record and record.get("ok"):
                    cands.append(p)
        return active, cands

    def choose_version(self, name: str) -> Procedure:
        """The version a replay of ``name`` runs: the current one, or a verified
        candidate chosen by Thompson sampling (:func:`procmem.learning.promote.choose`).

        Raises:
            NotFound: No such procedure.
        """
        active, cands = self._competitors(name)
        if not cands:
            return active
        executions, evidence = self._runs(name, self.policy.window)
        stats = {p.version: version_stats(p, executions, evidence) for p in [active, *cands]}
        with self._rng_lock:
            picked = choose(stats[active.version], [stats[c.version] for c in cands], self._rng)
        return next(p for p in [active, *cands] if p.version == picked.version)

    @synchronized
    def review(self, name: str) -> list[Change]:
        """Promote or demote the verified candidates of ``name`` from their posteriors
        (:func:`procmem.learning.changes.review_candidates`).

        Returns:
            Every status change made, in order (:class:`~procmem.learning.changes.Change`).
        """
        try:
            active, cands = self._competitors(name)
        except NotFound:
            return []
        if not cands:
            return []
        executions, evidence = self._runs(name, self.policy.window)
        return review_candidates(self.store, active, cands,
                                 lambda p: version_stats(p, executions, evidence), self.policy)

    @synchronized
    def decay(self, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Deprecate active procedures that are unused or unreliable (pinned ones are exempt).

        Deprecated procedures leave search; nothing is deleted.

        Returns:
            ``{"name", "version", "why"}`` per deprecated procedure.
        """
        out = []
        for proc in self.store.list_procedures(status="active", limit=100_000):
            executions, evidence = self._runs(proc.name)
            st = version_stats(proc, executions, evidence, pinned=self.store.is_pinned(proc.name),
                               unused_days=self.policy.unused_days, now=now)
            why = should_decay(st, self.policy)
            if why:
                with self.store.transaction():  # every active version of the name, or none
                    for v in self.store.list_versions(proc.name):
                        if v.status == "active":
                            self.store.set_status(proc.name, v.version, "deprecated")
                out.append({"name": proc.name, "version": proc.version, "why": why})
        return out

    # -------------------------------------------------------------- optimize

    @synchronized
    def optimize(self, name: str | None = None, *,
                 progress: Callable[[int, int], None] | None = None) -> OptimizeReport:
        """Propose, verify and store candidate versions (repair, prune, merge, factor).

        Each candidate is replayed against recorded environments built from
        the runs it claims to cover (no side effects); only the ones that
        reproduce all of them are stored, as status ``candidate`` with their
        verification record. They then compete with the active version
        (:meth:`choose_version`) until :meth:`review` promotes or demotes them.

        Args:
            name: Only this procedure (merge and factor look at all procedures).
            progress: Called as ``progress(done, total)``, counted in procedures
                looked at, then one more unit for merge and factor together.

        Returns:
            An :class:`OptimizeReport`.
        """
        procs = self.store.list_procedures(status="active", limit=100_000)
        scope = [p for p in procs if name is None or p.name == name]
        traces = self._all_traces()
        demos = {t.id: t for t in traces}
        recoveries = {str(t.metadata["recovers"]): t for t in traces
                      if isinstance(t.metadata.get("recovers"), str)}
        cands: list[Candidate] = []
        reliability: dict[str, float] = {}
        for done, proc in enumerate(scope):
            if progress is not None:
                progress(done, len(scope) + 1)
            executions, evidence = self._runs(proc.name)
            mine = [e for e in executions if e.version == proc.version and e.parent_id is None]
            reliability[proc.name] = version_stats(proc, executions, evidence).reliability
            for ex in mine:
                if ex.status in ("failed", "paused") and ex.id in recoveries:
                    c = repair(proc, ex, recoveries[ex.id])
                    if c is not None:
                        cands.append(c)
            ok_ids = _succeeded_by_evidence(mine, evidence)
            cands.extend(prune(proc, mine, ok_ids))
        if progress is not None:
            progress(len(scope), len(scope) + 1)
        for proc in procs:
            reliability.setdefault(proc.name, 0.5)
        cands.extend(c for c in merge(procs, reliability, demos)
                     if name is None or c.procedure.name == name)
        cands.extend(c for c in factor(procs, demos)
                     if name is None or c.procedure.name == name)
        report = self._store_candidates(cands, {p.name: p for p in procs})
        if progress is not None:
            progress(len(scope) + 1, len(scope) + 1)
        return report

    def _store_candidates(self, cands: list[Candidate], current: dict[str, Procedure]
                          ) -> OptimizeReport:
        report = OptimizeReport()
        for cand in cands:
            versions = self.store.list_versions(cand.procedure.name)
            if cand.kind != "merge" and any(_same_steps(v, cand.procedure) for v in versions):
                continue  # proposed (or tried) before; a merge is new while its twins are active
            if cand.kind == "repair" and any(
                    v.status == "candidate" and v.signature() == cand.procedure.signature()
                    for v in versions):
                continue  # a repair doing the same is already competing: let evidence decide
            fingerprint = _fingerprint(cand)
            if fingerprint in self._rejected:
                continue  # failed verification before (this process)
            procedures = {**current, **{p.name: p for p in cand.extra}}
            result: Verification = verify(cand.procedure, cand.covers, procedures)
            row = {"name": cand.procedure.name, "kind": cand.kind, "reason": cand.reason}
            if not result.ok:
                self._rejected.add(fingerprint)
                why = "; ".join(f"{k}: {v}" for k, v in list(result.failed.items())[:3])
                report.rejected.append({**row, "why": why or "covers no recorded run"})
                continue
            version = max(v.version for v in versions) + 1
            lineage = Lineage(traces=cand.procedure.lineage.traces,
                              parent_version=cand.procedure.lineage.parent_version,
                              reason=f"{cand.kind}: {cand.reason}")
            base = current.get(cand.procedure.name)
            # A merge that keeps its base's steps behaves exactly as the base, whose
            # evidence it inherits: it replaces the base (and its twins) at once.
            at_once = cand.kind == "merge" and base is not None and _same_steps(base,
                                                                                 cand.procedure)
            stored = cand.procedure.model_copy(update={
                "version": version, "status": "active" if at_once else "candidate",
                "lineage": lineage})
            record = result.model_dump(mode="json")
            record.update(version=version, kind=cand.kind, diff=cand.diff)
            with self.store.transaction():  # the candidate, its extras and record, or none
                for extra in cand.extra:
                    if self.store.put_procedure(extra.model_copy(update={"status": "active"})):
                        report.extra.append(extra.name)
                self.store.put_procedure(stored)
                self.store.put_verification(stored.name, version, record)
                if at_once:
                    self._retire_merged(stored, current)
            report.created.append({**row, "version": version, "reproduced": result.reproduced,
                                   "status": stored.status})
        return report

    def _retire_merged(self, merged: Procedure, current: dict[str, Procedure]) -> None:
        """Deprecate the procedures a merge absorbed (same actions, demos all included)."""
        covered = set(merged.lineage.traces)
        for other in current.values():
            if (other.name != merged.name and other.signature() == merged.signature()
                    and other.lineage.traces and set(other.lineage.traces) <= covered):
                self.store.set_status(other.name, other.version, "deprecated")

    # --------------------------------------------------------------- history

    def history(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, oldest first, with status, reason, stats and verification.

        Raises:
            NotFound: No such procedure.
        """
        executions, evidence = self._runs(name)
        pinned = self.store.is_pinned(name)
        current = self.store.get_procedure(name).version
        out = []
        for p in self.store.list_versions(name):
            st = version_stats(p, executions, evidence, pinned=pinned)
            out.append({
                "version": p.version, "status": p.status, "current": p.version == current,
                "created_at": p.created_at.isoformat(), "reason": p.lineage.reason,
                "parent_version": p.lineage.parent_version, "steps": len(p.steps),
                "runs": st.runs, "reliability": round(st.reliability, 4),
                "verification": self.store.get_verification(name, p.version),
            })
        return out

    def diff(self, name: str, v1: int, v2: int) -> list[str]:
        """Human-readable differences from version ``v1`` to ``v2`` of ``name``.

        Raises:
            NotFound: A version does not exist.
        """
        return diff(self.store.get_procedure(name, v1), self.store.get_procedure(name, v2))

    @synchronized
    def rollback(self, name: str, version: int) -> Procedure:
        """Make an earlier version current again, as a new version with its exact content.

        Other active versions of ``name`` are deprecated (kept, not deleted).

        Raises:
            NotFound: The version does not exist.
        """
        old = self.store.get_procedure(name, version)
        latest = max(p.version for p in self.store.list_versions(name))
        restored = old.model_copy(update={
            "version": latest + 1, "status": "active",
            "lineage": Lineage(traces=old.lineage.traces, parent_version=version,
                               reason=f"rollback to version {version}"),
        })
        with self.store.transaction():  # the restored version and the demotions, or none
            self.store.put_procedure(restored)
            for v in self.store.list_versions(name):
                if v.status == "active" and v.version != restored.version:
                    self.store.set_status(name, v.version, "deprecated")
        return restored

    def pin(self, name: str, pinned: bool = True) -> None:
        """Pin (or unpin) ``name``: pinned procedures never decay. Raises ``NotFound``."""
        self.store.set_pinned(name, pinned)

    def delete_procedure(self, name: str) -> bool:
        """Delete every version of ``name`` (executions and evidence are kept).

        The only way procmem deletes a procedure; returns False if there was none.
        """
        return self.store.delete_procedure(name)


def _succeeded_by_evidence(executions: list[Execution], evidence: list[Evidence]) -> set[str]:
    rewards: dict[str, list[float]] = {}
    for ev in evidence:
        if ev.source in EXTERNAL_SOURCES:
            rewards.setdefault(ev.execution_id, []).append(ev.reward)
    return {e.id for e in executions
            if e.id in rewards and sum(rewards[e.id]) / len(rewards[e.id]) >= 0.5}


def _fingerprint(cand: Candidate) -> str:
    """What makes two candidates the same proposal: kind, name, content, covered runs."""
    body = cand.procedure.model_dump(mode="json", by_alias=True,
                                     include={"name", "params", "steps"})
    return json.dumps([cand.kind, body, sorted(t.id for t in cand.covers)], sort_keys=True)


def _same_steps(a: Procedure, b: Procedure) -> bool:
    return (a.model_dump(include={"steps", "params"}, by_alias=True)
            == b.model_dump(include={"steps", "params"}, by_alias=True))
