"""Tool schemas: the service :class:`procmem.Memory` delegates to (:class:`ToolSchemas`).

Import OpenAI function schemas (:func:`procmem.formats.toolschema.parse_tools`), check
procedure steps against them (:mod:`procmem.formats.toolschema`), and flag the
procedures that use a tool whose schema changed.

Flags are procedure notes of kind ``tool_schema`` (table ``procedure_notes``,
append-only, deleted with their procedure or by :meth:`ToolSchemas.clear_tool_flags`),
one per (procedure, tool), with the problems found then. A separate small table
rather than a column or the verification records: a procedure may collect
several flags over time, and verification records describe one candidate
version's reproduction of recorded runs.

Invariants:
    * An import stores every schema and every flag in one transaction, or
      nothing (a malformed file stores nothing).
    * When a tool's schema *changes*, every procedure whose current version calls
      it directly gets a flag (``reason: "changed"``), with the re-check's problems
      (possibly none). When a tool is *added*, only procedures whose steps break
      its schema are flagged (``reason: "added"``). Re-importing the same schemas
      changes nothing and flags nothing. Any change of the normalized schema
      counts, its description included.
    * ``Memory.put_procedure`` (through :meth:`ToolSchemas.check_args`)
      refuses a procedure whose args break a stored schema with a blocking
      problem (:data:`procmem.formats.toolschema.BLOCKING`); ``Memory.learn`` never refuses
      and flags instead (``reason: "learned"``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..core.errors import InvalidProcedure, NotFound, UsageError
from ..core.model import Procedure
from ..formats.toolschema import (
    group_by_step,
    parse_tools,
    procedure_problems,
    schema_hash,
    tools_used,
)
from ..store.base import Store
from .support import synchronized
from .versions import paged

__all__ = ["FLAG_KIND", "ToolSchemas"]

FLAG_KIND = "tool_schema"
"""The procedure-note kind of tool flags."""


class ToolSchemas:
    """Tool-schema import, checks and flags over one store.

    Args:
        store: Where schemas, procedures and flags are stored.
        lock: Held while schemas are imported (default: a lock of its own).
    """

    def __init__(self, store: Store, *, lock: AbstractContextManager[Any] | None = None
                 ) -> None:
        self.store = store
        self.lock = lock if lock is not None else threading.RLock()

    def _all_procedures(self) -> list[Procedure]:
        """The current version of every procedure, by name."""
        return paged(lambda limit, offset: self.store.list_procedures(limit=limit,
                                                                       offset=offset))

    # -------------------------------------------------------------- schemas

    @synchronized
    def import_tool_schemas(
        self, source: str | os.PathLike[str] | list[Any] | Mapping[str, Any]
    ) -> dict[str, Any]:
        """Store OpenAI function schemas and re-check the procedures that use them.

        Args:
            source: A JSON file path (e.g. ``data/tau-retail/tools.json``), or the
                parsed JSON: a list of tools or ``{"tools": [...]}`` (see
                :func:`procmem.formats.toolschema.parse_tools`).

        Returns:
            A JSON-ready report::

                {"added": [tool], "changed": [tool], "unchanged": [tool],
                 "checked": [{"tool", "reason", "procedure", "version",
                              "problems": {step_id: [message]}, "flagged": bool}],
                 "flagged": [procedure name]}

            ``checked`` holds, for each added or changed tool (``reason``), the
            current version of every procedure calling it, checked against the new
            schema; ``flagged`` tells whether a flag was stored for it.

        Raises:
            UsageError: The file cannot be read, is not JSON, or is not a tool list;
                the message names the file, the tool's index and the field.
                Nothing is stored then.
        """
        if isinstance(source, list | Mapping):
            data: Any = source
            label = "tools"
        else:
            label = os.fsdecode(source)
            data = _read_json(Path(label))
        schemas = parse_tools(data, source=label)
        stored = self.store.list_tool_schemas()
        merged = {**stored, **schemas}
        procs = self._all_procedures()
        checked: list[dict[str, Any]] = []
        notes: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for tool, schema in schemas.items():
            old = stored.get(tool)
            digest = schema_hash(schema)
            if old is not None and schema_hash(old) == digest:
                continue
            reason = "added" if old is None else "changed"
            for proc in procs:
                if tool not in tools_used(proc):
                    continue
                problems = group_by_step(procedure_problems(proc, merged, tools=[tool]))
                flag = reason == "changed" or bool(problems)
                checked.append({"tool": tool, "reason": reason, "procedure": proc.name,
                                "version": proc.version, "problems": problems, "flagged": flag})
                if flag:
                    notes.setdefault(tool, []).append((proc.name, {
                        "tool": tool, "reason": reason, "version": proc.version,
                        "hash": digest,
                        "previous_hash": None if old is None else schema_hash(old),
                        "problems": problems}))
        status = self.store.put_tool_schemas(schemas, notes=notes)
        report: dict[str, Any] = {k: [n for n, s in status.items() if s == k]
                                  for k in ("added", "changed", "unchanged")}
        report["checked"] = [c for c in checked if status[c["tool"]] != "unchanged"]
        report["flagged"] = sorted({c["procedure"] for c in report["checked"] if c["flagged"]})
        return report

    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        """Every stored tool schema by name: ``{"name", "description", "parameters"}``."""
        return self.store.list_tool_schemas()

    def get_tool_schema(self, name: str) -> dict[str, Any]:
        """One tool's stored schema.

        Raises:
            NotFound: No schema is stored for ``name``.
        """
        schema = self.store.find_tool_schema(name)
        if schema is None:
            raise NotFound("tool schema", name)
        return schema

    # --------------------------------------------------------------- checks

    def check_procedure(self, name: str, version: int | None = None) -> dict[str, list[str]]:
        """Check a procedure's steps against the stored tool schemas.

        Args:
            name: The procedure.
            version: A version number; default the current version.

        Returns:
            Problem messages by step id, only for steps that have some (``{}``:
            clean), e.g. ``{"s1": ["arg 'reason': \\"oops\\" is not one of [...]"]}``.
            Steps whose tool has no stored schema are not checked.

        Raises:
            NotFound: No such procedure or version.
        """
        proc = self.store.get_procedure(name, version)
        return group_by_step(procedure_problems(proc, self._schemas_for(proc)))

    def check_procedures(self) -> dict[str, dict[str, list[str]]]:
        """:meth:`check_procedure` for the current version of every procedure with problems."""
        schemas = self.store.list_tool_schemas()
        out: dict[str, dict[str, list[str]]] = {}
        for proc in self._all_procedures():
            problems = group_by_step(procedure_problems(proc, schemas))
            if problems:
                out[proc.name] = problems
        return out

    # ---------------------------------------------------------------- flags

    def tool_flags(self, name: str | None = None) -> list[dict[str, Any]]:
        """Tool flags, oldest first (all procedures, or one).

        Returns:
            ``{"id", "procedure", "created_at", "tool", "reason", "version",
            "hash", "previous_hash", "problems"}`` per flag; ``reason`` is
            ``changed``, ``added`` or ``learned``; ``problems`` maps step ids to
            messages as found when the flag was made.
        """
        return [{"id": n["id"], "procedure": n["name"], "created_at": n["created_at"],
                 **n["record"]}
                for n in self.store.list_procedure_notes(name, kind=FLAG_KIND)]

    def clear_tool_flags(self, name: str | None = None) -> int:
        """Delete tool flags (all, or one procedure's); returns how many."""
        return self.store.delete_procedure_notes(name, kind=FLAG_KIND)

    # ---------------------------------------------------------------- hooks

    def check_args(self, procedure: Procedure) -> None:
        """Refuse a procedure whose args break a stored tool schema (blocking problems).

        Raises:
            InvalidProcedure: Naming each step, tool and arg, e.g. ``step 's1'
                (cancel_pending_order): arg 'reason': expected string, got integer 5``.
        """
        schemas = self._schemas_for(procedure)
        blocking = [p for p in procedure_problems(procedure, schemas) if p.blocking]
        if blocking:
            raise InvalidProcedure(procedure.name, "args break the tool schema: "
                                   + "; ".join(p.describe() for p in blocking))

    def flag_learned(self, names: Iterable[str]) -> None:
        """Flag the newest version of each learned procedure whose args break a stored schema."""
        schemas = self.store.list_tool_schemas()
        if not schemas:
            return
        with self.store.transaction():  # every flag of this learn, or none
            for name in names:
                proc = self.store.list_versions(name)[-1]
                for tool in tools_used(proc):
                    problems = group_by_step(procedure_problems(proc, schemas, tools=[tool]))
                    if problems:
                        self.store.add_procedure_note(name, FLAG_KIND, {
                            "tool": tool, "reason": "learned", "version": proc.version,
                            "hash": schema_hash(schemas[tool]), "previous_hash": None,
                            "problems": problems})

    def _schemas_for(self, procedure: Procedure) -> dict[str, dict[str, Any]]:
        found = {tool: self.store.find_tool_schema(tool) for tool in tools_used(procedure)}
        return {tool: schema for tool, schema in found.items() if schema is not None}


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read tool schemas from {str(path)!r}: {err}") from err
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise UsageError(f"{path}:{err.lineno}:{err.colno}: not valid JSON: {err.msg}") from err
