"""Execution leases: who runs an execution now, held in the store while a run drives it.

A run (one ``replay``/``resume`` call, or a client-driven execution) takes the
execution's lease in the store (:meth:`procmem.store.base.Store.acquire_lease`)
and renews it as it persists, so another process that tries to resume the same
execution gets :class:`~procmem.core.errors.ExecutionBusy` instead of running its
tools a second time.

Invariants:
    * The decision is the store's (one conditional write); this module keeps no
      state another process would need: :class:`LeaseKeeper` only remembers which
      leases its own run holds and when it last renewed them.
    * A run renews its lease before every write, at most once per
      ``lease_s / 4`` seconds (monotonic clock); a renewal refused because
      another run took the lease after it expired raises ``ExecutionBusy`` out of
      the driver before anything else is written or called.
    * A header that is not ``running`` (paused, succeeded, failed) clears the
      lease in the store; :meth:`LeaseKeeper.release` gives up what is left
      (an exception stopped the run), so a resume can continue at once. A run
      killed outright keeps its lease until it expires: ``lease_s`` should exceed
      the longest tool call.
    * What it writes passes the redactor first (:mod:`procmem.security.redaction`): a
      secret in the task, a param, an answer or a tool's output is stored as
      ``[REDACTED:kind]``, never in clear. The run itself keeps the clear values;
      a resume that reads a marker back asks for the value again
      (:mod:`procmem.core.replay`), it never sends the marker.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from ..core.errors import NotFound, ProcmemError
from ..core.model import Execution, StepRun
from ..security.redaction import Redactor, default_redactor
from ..security.secret_params import scrub_execution, scrub_step_run, secret_names
from ..store.base import Store

__all__ = ["DEFAULT_LEASE_S", "LeaseKeeper", "client_owner", "new_owner"]

DEFAULT_LEASE_S = 60.0
"""How long a lease lasts unless renewed (s): a run killed mid-call blocks a resume this long."""

_EXECUTION_FIELDS = ("task", "params", "answers", "needs", "error", "in_flight")
_RUN_FIELDS = ("args", "output", "error", "history")


def new_owner() -> str:
    """A fresh owner id for one run: ``"HOST:PID:RANDOM"``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def client_owner(execution_id: str) -> str:
    """The owner id of a client-driven execution (``start``/``advance``): ``"client:ID"``.

    The same in every process, so any process can take the next turn of a
    client-driven execution, while a ``resume`` with tools (another owner) is refused.
    """
    return f"client:{execution_id}"


class LeaseKeeper:
    """The persist callback of one run: takes, renews and releases its leases.

    A context manager: leaving the ``with`` block calls :meth:`release`.

    Args:
        store: Where executions and leases live.
        owner: This run's owner id (:func:`new_owner` or :func:`client_owner`).
        lease_s: Lease duration in seconds (> 0).
    """

    def __init__(self, store: Store, owner: str, lease_s: float, *,
                 redactor: Redactor | None = None) -> None:
        self.store, self.owner, self.lease_s = store, owner, lease_s
        self.redactor = redactor if redactor is not None else default_redactor()
        self._renewed: dict[str, float] = {}  # execution id -> monotonic time of the last renewal
        self._secrets: dict[tuple[str, int], set[str]] = {}  # (procedure, version) -> names

    def acquire(self, execution_id: str) -> None:
        """Take (or renew) the lease of a stored execution now.

        Raises:
            ExecutionBusy: Another run holds a live lease.
            NotFound: No such execution.
        """
        self.store.acquire_lease(execution_id, self.owner, lease_s=self.lease_s)
        self._renewed[execution_id] = time.monotonic()

    def _renew(self, execution_id: str) -> None:
        last = self._renewed.get(execution_id)
        if last is None or time.monotonic() - last >= self.lease_s / 4:
            self.acquire(execution_id)

    def __call__(self, execution: Execution, step_run: StepRun | None) -> None:
        """Persist as :class:`procmem.core.drivers.Persist` says, holding the lease.

        A header not stored yet (a new execution, or a new child execution) is
        stored first, then leased; otherwise the lease is renewed first.

        Raises:
            ExecutionBusy: The lease was lost to another run (nothing is written).
        """
        ex_id = execution.id
        names = self._secret_names(execution)
        if names:  # secret params' values never reach the store (procmem.security.secret_params)
            if step_run is not None:
                step_run = scrub_step_run(execution, step_run, names)
            execution = scrub_execution(execution, names)
        # any other secret (in the task, an answer, a tool's output) is redacted too
        if step_run is not None:
            step_run = self.redactor.model(step_run, _RUN_FIELDS)[0]
        else:
            execution = self.redactor.model(execution, _EXECUTION_FIELDS)[0]
        if step_run is not None:
            self._renew(ex_id)
            self.store.put_step_run(ex_id, step_run)
            return
        if ex_id in self._renewed:
            self._renew(ex_id)
        elif execution.status == "running":
            try:
                self.acquire(ex_id)
            except NotFound:  # new: nobody else knows its id yet
                self.store.put_execution(execution)
                self.acquire(ex_id)
                return
        self.store.put_execution(execution)
        if execution.status != "running":
            self._renewed.pop(ex_id, None)  # the store cleared the lease

    def _secret_names(self, execution: Execution) -> set[str]:
        """The secret params of the execution's procedure version (read once per version)."""
        key = (execution.procedure, execution.version)
        if key not in self._secrets:
            try:
                self._secrets[key] = secret_names(self.store.get_procedure(*key))
            except NotFound:
                self._secrets[key] = set()
        return self._secrets[key]

    def __enter__(self) -> LeaseKeeper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        """Give up every lease this run still holds (best effort: store errors are ignored)."""
        for ex_id in list(self._renewed):
            try:
                self.store.release_lease(ex_id, self.owner)
            except ProcmemError:  # releasing early is an optimization: expiry frees it too
                pass
            self._renewed.pop(ex_id, None)
