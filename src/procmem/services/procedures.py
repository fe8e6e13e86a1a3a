"""Procedures as :class:`procmem.Memory` stores and reads them: one service.

:class:`Procedures` stores hand-written (or edited) procedures as new versions,
after the checks they must pass, and reads versions back with their statistics.
Numbering and content equality are in :mod:`procmem.services.versions`; statistics in
:mod:`procmem.services.stats`; tool-schema checks in :mod:`procmem.services.tools`.

Invariants:
    * A stored procedure has passed the size limits, secret redaction
      (:func:`procmem.security.secret_params.secretize`), the template and extractor checks
      and the stored tool schemas' blocking checks, in that order.
    * Writes hold ``lock`` (shared with learning, so that version numbers are
      never read and written by two threads at once).
    * A renamed procedure's old name is an alias (:meth:`Procedures.rename`): reads by
      name (``get_procedure``, ``find_procedure``, ``list_versions``) resolve it to the
      new name; a new procedure may not take it (``Conflict``; rename back instead).
"""

from __future__ import annotations

import re
import threading
from contextlib import AbstractContextManager
from typing import Any

from ..core.errors import Conflict, InvalidProcedure, LimitExceeded, NotFound
from ..core.model import NAME_PATTERN, Procedure
from ..induction.bind import Binding, bind_task
from ..security.limits import DEFAULT_LIMITS, Limits
from ..security.redaction import Redactor, default_redactor
from ..security.secret_params import secretize
from ..store.base import Store
from .stats import Statistics
from .support import synchronized
from .tools import ToolSchemas
from .versions import check_procedure, paged, put_version

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
            Conflict: The name is the old name of a renamed procedure (an alias).
            EmbeddingError: (``Memory.put_procedure``) The embedder failed to embed
                its search texts (it is stored; the next search embeds them).
        """
        self.limits.check_procedure(procedure)  # sizes (procmem.security.limits)
        if (target := self.store.resolve_alias(procedure.name)) is not None:
            raise Conflict("procedure", procedure.name,
                           f"it was renamed to {target!r} and is an alias now; put the "
                           f"procedure as {target!r}, or rename {target!r} back first")
        if (self.find_procedure(procedure.name) is None
                and (n := self.store.count_procedures()) >= self.limits.max_procedures):
            raise LimitExceeded("procedures in this store (one tenant)", n + 1,
                                self.limits.max_procedures, where=f"procedure {procedure.name!r}",
                                setting="Limits.max_procedures")
        procedure = secretize(self.redactor.model(procedure, _PROC_FIELDS)[0])
        check_procedure(procedure)  # templates and extractors (procmem.services.versions)
        self.tools.check_args(procedure)  # refuses args that break a stored tool schema
        return put_version(self.store, procedure)

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        """One procedure version with its statistics (current version by default).

        ``name`` may be the old name of a renamed procedure (see :meth:`rename`).

        Raises:
            NotFound: No such procedure or version.
        """
        try:
            found = self.store.get_procedure(name, version)
        except NotFound:
            if (target := self.store.resolve_alias(name)) is None:
                raise
            found = self.store.get_procedure(target, version)
        return self.statistics.with_stats([found])[0]

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
            NotFound: No version of ``name`` (nor of the name it was renamed to).
        """
        return self.statistics.with_stats(self.store.list_versions(self.resolve_name(name)))

    def resolve_name(self, name: str) -> str:
        """``name``, or the name it was renamed to when it is an alias with no version."""
        if (target := self.store.resolve_alias(name)) is None:
            return name
        return target

    @synchronized
    def rename(self, old: str, new: str) -> Procedure:
        """Rename a procedure, keeping its versions, lineage, executions and statistics.

        Every record keyed by the name moves to ``new`` in one store transaction
        (:meth:`procmem.store.Store.rename_procedure`): versions, executions, run
        statistics, the pin, verifications, notes and the search document. ``old``
        stays an alias: reading it by name gives ``new``'s procedure, and learning
        that induces a group named ``old`` again adds a version of ``new``.

        Args:
            old: The current name (or an alias of it).
            new: The new name (:data:`procmem.core.model.NAME_PATTERN`, at most 200 characters).

        Returns:
            The current version under its new name, with statistics.

        Raises:
            NotFound: No procedure ``old``.
            Conflict: ``new`` is taken by another procedure.
            InvalidProcedure: ``new`` is not a valid name.
            UsageError: ``new`` is ``old``.
        """
        if len(new) > 200 or not re.fullmatch(NAME_PATTERN, new):
            raise InvalidProcedure(old, f"cannot rename it to {new!r}: a name is letters, "
                                        f"digits, _ . - (it must match {NAME_PATTERN})")
        old = self.resolve_name(old)
        with self.store.transaction():
            self.store.rename_procedure(old, new)
        return self.get_procedure(new)

    def all_procedures(self) -> list[Procedure]:
        """The current version of every procedure (no statistics), by name."""
        return paged(lambda limit, offset: self.store.list_procedures(limit=limit,
                                                                       offset=offset))

    def bind(self, procedure: Procedure | str, task: str) -> Binding:
        """What the built-in binder fills from ``task`` (see :mod:`procmem.induction.bind`)."""
        proc = procedure if isinstance(procedure, Procedure) else self.get_procedure(procedure)
        return bind_task(proc, task)
