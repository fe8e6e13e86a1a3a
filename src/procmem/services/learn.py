"""Learning procedures from the stored traces: the trace fold and per-group induction.

A small service under :class:`procmem.Memory` (``Memory.learn`` delegates to its
:class:`Learner`, passing its store). Traces are grouped by action sequence
(:func:`procmem.induction.induce.group_traces`), and groups with equal writes whose reads
align are learned together (:func:`procmem.induction.induce_alt.merge_plan`; alone again
when the merge is rejected); each group is induced
(:func:`procmem.induction.induce.induce`) and stored as version 1 of its name, or as the
next version when its traces and content changed.

Invariants:
    * Learning is deterministic and idempotent: learning again over the same
      traces stores nothing new; a group whose traces changed gets a new version
      (the old one stays, immutable), unless the procedure has evolved since (its
      current version does other actions, e.g. after a repair).
    * The fold (grouping and :class:`~procmem.induction.induce.CorpusStats` over every
      stored trace) is kept between calls and brought up to date with the traces
      stored since, read from the store's change feed (``traces_since``); it
      starts over when the feed does (a trace deleted, another store) and after
      :meth:`Learner.reset`. A fold interrupted by an error is dropped whole.
    * A :class:`Learner` may be shared by threads: ``learn``, ``fold`` and ``reset``
      hold its ``lock``, so one fold is brought up to date at a time.
    * A group that cannot be induced (an error of procmem's tree or an invalid
      model) is skipped and reported (:func:`procmem.services.traces.group_failure`);
      the other groups are learned.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..core.alternatives import side_effect_of
from ..core.errors import Conflict, LimitExceeded, UsageError
from ..core.model import NAME_PATTERN, Lineage, Trace
from ..induction.induce import MIN_CONSTANT, CorpusStats, group_key, induce, procedure_name
from ..induction.induce_alt import MergeRejected, merge_plan
from ..security.secret_params import secretize
from ..store.base import Store
from .support import synchronized
from .traces import group_failure
from .versions import PAGE, same_content, versions

__all__ = ["LearnReport", "Learner", "TraceFold", "check_namespace"]


@dataclass
class LearnReport:
    """What :meth:`Memory.learn` did.

    Attributes:
        traces: Traces considered.
        groups: Groups of traces doing the same task.
        created: Names of new procedures.
        updated: Names of procedures that got a new version.
        unchanged: Names of procedures whose induction gave the same content.
        skipped: Traces left out (failed outcome, or no successful step).
        failed_groups: Groups that could not be induced, skipped so that the
            others are learned: one :func:`procmem.services.traces.group_failure`
            row each (``name``, ``actions``, ``traces``, ``trace_count``,
            ``code``, ``error``, ``message``). A later ``learn`` tries them again.
    """

    traces: int = 0
    groups: int = 0
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: int = 0
    failed_groups: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TraceFold:
    """What :class:`Learner` folds over the stored traces, in insertion order.

    Attributes:
        count: Traces folded.
        token: The store's change-feed token after the last trace folded
            (:meth:`procmem.store.base.TraceRecords.traces_since`).
        corpus: :class:`~procmem.induction.induce.CorpusStats` over all of them.
        groups: The trace ids of each :func:`procmem.induction.induce.group_traces` group,
            by signature, in order of first appearance.
        skipped: Traces in no group.
    """

    count: int = 0
    token: str | None = None
    corpus: CorpusStats = field(default_factory=CorpusStats)
    groups: dict[tuple[str, ...], list[str]] = field(default_factory=dict)
    skipped: int = 0


class Learner:
    """Induces and stores procedures from a store's traces, keeping its fold between calls.

    The store is passed to each call (a memory's store may be replaced); the
    fold notices a store other than the one it folded and starts over.
    """

    def __init__(self, min_constant: int = MIN_CONSTANT, max_procedures: int | None = None
                 ) -> None:
        if min_constant < 1:
            raise UsageError(f"min_constant must be at least 1, got {min_constant}")
        self.min_constant = min_constant
        self.max_procedures = max_procedures  # new names beyond it: a failed group
        self.lock = threading.RLock()
        self._fold = self._empty()

    def _empty(self) -> TraceFold:
        return TraceFold(corpus=CorpusStats(min_constant=self.min_constant))

    @synchronized
    def reset(self) -> None:
        """Drop the fold, so that the next :meth:`learn` reads every trace again."""
        self._fold = self._empty()

    @synchronized
    def learn(self, store: Store, namespace: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> LearnReport:
        """Bring the fold up to date and learn every group whose traces changed.

        Args:
            store: Where traces are read and procedures written.
            namespace: The namespace of new procedures (``None``: the model's
                default); a new version keeps its procedure's namespace. It is
                not checked here (see :func:`check_namespace`).
            progress: Called as ``progress(done, total)`` in groups (of traces
                with one action sequence, merged where they share their writes).

        Returns:
            A :class:`LearnReport`.
        """
        state, new = self.fold(store)
        parsed = {t.id: t for t in new}  # the others are read back only for a group induced again
        report = LearnReport(traces=state.count, groups=len(state.groups), skipped=state.skipped)
        effects = {name: side_effect_of(name, schema)
                   for name, schema in store.list_tool_schemas().items()}
        sigs = list(state.groups)
        plan = list(merge_plan(sigs, [len(state.groups[s]) for s in sigs], effects))
        for done, together in enumerate(plan):
            if progress is not None:
                progress(done, len(plan))
            ids = [i for sig in together for i in state.groups[sig]]
            try:
                _learn_group(store, together[0], ids, parsed, state.corpus, report, namespace,
                             effects, self.max_procedures)
                continue
            except MergeRejected:  # learn each read pattern alone
                pass
            except (UsageError, Conflict, ValidationError) as err:  # this group only
                report.failed_groups.append(
                    group_failure(procedure_name(together[0]), together[0], ids, err))
                continue
            for sig in together:
                try:
                    _learn_group(store, sig, state.groups[sig], parsed, state.corpus, report,
                                 namespace, effects, self.max_procedures)
                except (UsageError, Conflict, ValidationError) as err:
                    report.failed_groups.append(
                        group_failure(procedure_name(sig), sig, state.groups[sig], err))
        if progress is not None:
            progress(len(plan), len(plan))
        return report

    @synchronized
    def fold(self, store: Store) -> tuple[TraceFold, list[Trace]]:
        """The fold over every trace of ``store``, brought up to date; and the traces it just read.

        Only the traces committed since the last call are read, from the store's
        change feed; the fold starts over when the feed does.
        """
        state = self._fold
        token, new = state.token, list[Trace]()
        while True:  # the store's change feed of traces (procmem.store.base.TraceRecords)
            page = store.traces_since(token, limit=PAGE)
            if page.reset:  # first read, another store, or a trace deleted: start over
                state, new = self._empty(), []
            new.extend(page.traces)
            token = page.token
            if len(page.traces) < PAGE:
                break
        self._fold = self._empty()  # until the fold below is whole
        state.token = token
        state.corpus.add(new)
        for t in new:
            sig = group_key(t)
            if sig is None:
                state.skipped += 1
            else:
                state.groups.setdefault(sig, []).append(t.id)
        state.count += len(new)
        self._fold = state
        return state, new


def _learn_group(store: Store, sig: tuple[str, ...], ids: list[str], parsed: dict[str, Trace],
                 corpus: CorpusStats, report: LearnReport, namespace: str | None,
                 effects: dict[str, bool | None] | None = None,
                 max_procedures: int | None = None) -> None:
    """Induce one group, store the result if it is new, and say so in ``report``.

    Raises:
        LimitExceeded: A new name would make the store hold more than ``max_procedures``.
    """
    base = procedure_name(sig)
    name = store.resolve_alias(base) or base  # a renamed procedure keeps learning
    known = versions(store, name)
    if known and all(not v.matches(sig) for v in known):
        name = f"{base}-{len(sig)}"  # the name is taken by other actions
        name = store.resolve_alias(name) or name
        known = versions(store, name)
    if known and not store.get_procedure(name).matches(sig):
        report.unchanged.append(name)  # evolved (repaired, pruned...): evidence rules it now
        return
    if known and any(v.lineage.traces == ids for v in known):
        report.unchanged.append(name)
        return
    missing = [i for i in ids if i not in parsed]
    read = {t.id: t for t in store.get_traces(missing)} if missing else {}
    group = [parsed[i] if i in parsed else read[i] for i in ids]
    # a redacted literal ("[REDACTED:keyed]") becomes a secret param (security.secret_params)
    proc = secretize(induce(group, name=name, corpus=corpus, version=len(known) + 1,
                            effects=effects))
    if known:
        last = known[-1]
        proc = proc.model_copy(update={"namespace": last.namespace})  # a name keeps it
        if same_content(last, proc):
            report.unchanged.append(name)
            return
        lineage = Lineage(traces=proc.lineage.traces, parent_version=last.version,
                          reason=f"re-induced from {len(group)} trace(s)")
        proc = proc.model_copy(update={"version": last.version + 1, "lineage": lineage})
        report.updated.append(name)
    else:
        if max_procedures is not None and (count := store.count_procedures()) >= max_procedures:
            raise LimitExceeded("procedures in this store (one tenant)", count + 1,
                                max_procedures, where=f"procedure {name!r}",
                                setting="Limits.max_procedures")
        if namespace is not None:
            proc = proc.model_copy(update={"namespace": namespace})
        report.created.append(name)
    store.put_procedure(proc)


def check_namespace(namespace: str) -> None:
    """Raise ``UsageError`` unless ``namespace`` is valid (the ``Procedure.namespace`` rule)."""
    if len(namespace) > 100 or not re.fullmatch(NAME_PATTERN, namespace):
        raise UsageError(f"namespace must match {NAME_PATTERN} (100 characters at most), "
                         f"got {namespace!r}")
