"""Run statistics of a procedure version: derived from executions, never part of the version.

A stored procedure version is immutable; how often it ran is not. So the figures
users see on a :class:`procmem.core.model.Procedure` (``execution_count``,
``success_rate``, ``avg_duration_ms``, ``last_executed_at``) are not fields:
they are read-only properties over a :class:`ProcedureStats` value that
:class:`procmem.Memory` attaches when it reads a version (one aggregate store
call per batch of names, see :meth:`procmem.store.base.StatsRecords.procedure_stats`).

Invariants:
    * ``ProcedureStats`` counts top-level executions of one ``(name, version)``
      (sub-procedure runs, ``parent_id`` set, count for nothing); a new version
      starts with no runs of its own.
    * ``0 <= succeeded <= finished <= runs``; ``success_rate`` (0-1) is over
      finished runs, ``None`` while none finished; durations are milliseconds.
    * The statistics never reach storage or a version's identity: dumps carry
      them (as computed fields) for users, validation drops them, and two
      procedures with equal fields are equal whatever statistics are attached.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, computed_field, model_validator

__all__ = ["STATS_FIELDS", "ProcedureStats", "RunOutcome", "WithStats"]

STATS_FIELDS = frozenset({"execution_count", "success_rate", "avg_duration_ms",
                          "last_executed_at"})
"""The derived keys a procedure's dump carries; dropped when a procedure is validated."""


class ProcedureStats(BaseModel):
    """How one procedure version has run (its top-level executions).

    Attributes:
        runs: Executions, finished or not.
        finished: Executions that succeeded or failed.
        succeeded: Executions that succeeded.
        duration_ms: Sum of the finished executions' durations (ms).
        last_executed_at: Latest ``started_at`` (UTC), ``None`` when never run.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    runs: int = Field(default=0, ge=0)
    finished: int = Field(default=0, ge=0)
    succeeded: int = Field(default=0, ge=0)
    duration_ms: float = Field(default=0.0, ge=0)
    last_executed_at: datetime | None = None

    @property
    def success_rate(self) -> float | None:
        """Succeeded / finished (0-1); ``None`` while no run finished."""
        return self.succeeded / self.finished if self.finished else None

    @property
    def avg_duration_ms(self) -> float | None:
        """Mean duration of the finished runs (ms); ``None`` while none finished."""
        return self.duration_ms / self.finished if self.finished else None


NO_RUNS = ProcedureStats()


class RunOutcome(NamedTuple):
    """One execution as reliability needs it (see :func:`procmem.learning.stats.posterior`).

    ``evidence`` holds ``(source, reward)`` per evidence record about it, oldest first.
    """

    execution_id: str
    procedure: str
    version: int
    status: str
    parent_id: str | None
    evidence: tuple[tuple[str, float], ...]


class WithStats(BaseModel):
    """The statistics view of :class:`procmem.core.model.Procedure` (a base class, no fields)."""

    _stats: ProcedureStats | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _drop_stats(cls, data: Any) -> Any:
        """Derived keys (from a dump, or a record stored before they left) are not input."""
        if isinstance(data, dict) and not STATS_FIELDS.isdisjoint(data):
            return {k: v for k, v in data.items() if k not in STATS_FIELDS}
        return data

    @property
    def stats(self) -> ProcedureStats:
        """The attached statistics (no runs when none were attached)."""
        return self._stats or NO_RUNS

    def with_stats(self, stats: ProcedureStats | None) -> Any:
        """A copy with ``stats`` attached (``None``: detached); ``self`` is unchanged."""
        copy = self.model_copy()
        copy._stats = stats if stats is not None and stats.runs else None
        return copy

    @computed_field  # type: ignore[prop-decorator]
    @property
    def execution_count(self) -> int:
        """Top-level executions of this version, finished or not."""
        return self.stats.runs

    @computed_field  # type: ignore[prop-decorator]
    @property
    def success_rate(self) -> float | None:
        """Share of finished runs that succeeded (0-1); ``None`` while none finished."""
        return self.stats.success_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def avg_duration_ms(self) -> float | None:
        """Mean duration of finished runs (ms); ``None`` while none finished."""
        return self.stats.avg_duration_ms

    @computed_field  # type: ignore[prop-decorator]
    @property
    def last_executed_at(self) -> datetime | None:
        """When the latest run started (UTC); ``None`` when never run."""
        at = self.stats.last_executed_at
        return at.replace(tzinfo=UTC) if at is not None and at.tzinfo is None else at

    def __eq__(self, other: object) -> bool:
        """Equal fields (statistics are a view, not part of the version)."""
        if not isinstance(other, BaseModel):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]
