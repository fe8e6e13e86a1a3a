"""Procedures as :class:`procmem.Memory` stores and reads them: one service.

:class:`Procedures` stores hand-written (or edited) procedures as new versions,
after the checks they must pass, and reads versions back with their statistics.
Numbering and content equality are in :mod:`procmem.memory_versions`; statistics in
:mod:`procmem.memory_stats`; tool-schema checks in :mod:`procmem.memory_tools`.

Invariants:
    * A stored procedure has passed the size limits, secret redaction
      (:func:`procmem.secret_params.secretize`), the template and extractor checks
      and the stored tool schemas' blocking checks, in that order.
    * Writes hold ``lock`` (shared with learning, so that version numbers are
      never read and written by two threads at once).
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from typing import Any

from .bind import Binding, bind_task
from .errors import LimitExceeded, NotFound
from .limits import DEFAULT_LIMITS, Limits
from .memory_facade import synchronized
from .memory_stats import Statistics
from .memory_tools import ToolSchemas
from .memory_versions import check_procedure, paged, put_version
from .model import Procedure
from .redaction import Redactor, default_redactor
from .secret_params import secretize
from .store.base import Store

__all__ = ["Procedures"]

_PROC_FIELDS = ("description", "steps", "params", "tags")


class Procedures:
    """Storing and reading procedure versions of one store.

    Args:
        store: Where procedures are stored.
        statistics: Adds statistics to the versions read.
        tools: Checks a procedure's args against the stored tool schemas.
        limits: Size limits and the most procedures a store may hold.
        redactor: The secret redaction a procedure passes before it is stored.
        lock: Held while a version is written (default: a lock of its own).
    """

    def __init__(self, store: Store, statistics: Statistics, tools: ToolSchemas, *,
                 limits: Limits | None = None, redactor: Redactor | None = None,
                 lock: AbstractContextManager[Any] | None = None) -> None:
        self.store = store
        self.statistics = statistics
        self.tools = tools
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.redactor = redactor if redactor is not None else default_redactor()
        self.lock = lock if lock is not None else threading.RLock()

    @synchronized
    def put_procedure(self, procedure: Procedure) -> Procedure:
        """Store a procedure written by hand (or edited) as a new version.

        A procedure equal in content to the current version is not stored
        again. Otherwise it is stored as the next version number.
        (:meth:`procmem.Memory.put_procedure` also embeds its search texts now,
        with an embedder, so the first search embeds only its query.)

        Raises:
            InvalidProcedure: A template reference does not validate, a param's
                extractor is not a valid regex, or a step's args break its tool's
                stored schema (:meth:`import_tool_schemas`).
            LimitExceeded: Too large, or a new name beyond ``limits.max_procedures``.
            EmbeddingError: (``Memory.put_procedure``) The embedder failed to embed
                its search texts (it is stored; the next search embeds them).
        """
        self.limits.check_procedure(procedure)  # sizes (procmem.limits)
        if (self.find_procedure(procedure.name) is None
                and (n := self.store.count_procedures()) >= self.limits.max_procedures):
            raise LimitExceeded("procedures in this store (one tenant)", n + 1,
                                self.limits.max_procedures, where=f"procedure {procedure.name!r}",
                                setting="Limits.max_procedures")
        procedure = secretize(self.redactor.model(procedure, _PROC_FIELDS)[0])
        check_procedure(procedure)  # templates and extractors (procmem.memory_versions)
        self.tools.check_args(procedure)  # refuses args that break a stored tool schema
        return put_version(self.store, procedure)

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One procedure version with its statistics (current version by default).

        Raises:
            NotFound: No such procedure or version.
        """
        return self.statistics.with_stats([self.store.get_procedure(name, version)])[0]

    def find_procedure(self, name: str) -> Procedure | None:
        """The current version, or ``None``."""
        try:
            return self.get_procedure(name)
        except NotFound:
            return None

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        """Current versions by name, with statistics."""
        procs = self.store.list_procedures(status=status, limit=limit, offset=offset)
        return self.statistics.with_stats(procs)

    def list_versions(self, name: str) -> list[Procedure]:
        """Every version of one procedure, oldest first, each with its own statistics.

        Raises:
            NotFound: No version of ``name``.
        """
        return self.statistics.with_stats(self.store.list_versions(name))

    def all_procedures(self) -> list[Procedure]:
        """The current version of every procedure (no statistics), by name."""
        return paged(lambda limit, offset: self.store.list_procedures(limit=limit,
                                                                       offset=offset))

    def bind(self, procedure: Procedure | str, task: str) -> Binding:
        """What the built-in binder fills from ``task`` (see :mod:`procmem.bind`)."""
        proc = procedure if isinstance(procedure, Procedure) else self.get_procedure(procedure)
        return bind_task(proc, task)
