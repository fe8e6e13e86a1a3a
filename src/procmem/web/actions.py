"""The UI's writes: each validates its target, calls one ``Memory`` method, and says
what changed as JSON ``{"ok": true, "message": ...}``.

Promote and reject a candidate apply by hand the two decisions
:meth:`procmem.Memory.review` takes from evidence (``promote``: the candidate becomes
active, the active version deprecated; ``demote``: the candidate is deprecated),
through the store's ``set_status`` as ``review`` does; they refuse a version that
is not a candidate. Rename (:meth:`procmem.Memory.rename`) asks for the new name in
the confirmation dialog.
"""

from __future__ import annotations

from typing import Any, Literal

from ..core.errors import Conflict, UsageError
from ..learning.changes import Change, apply_decision
from ..memory import Memory

__all__ = ["delete", "pin", "promote", "reject", "rename", "report", "rollback"]


def pin(mem: Memory, name: str, pinned: bool) -> dict[str, Any]:
    """Pin or unpin ``name`` (:meth:`Memory.pin`). Raises ``NotFound``."""
    mem.get_procedure(name)
    mem.pin(name, pinned)
    return {"ok": True, "message": f"{'pinned' if pinned else 'unpinned'} {name}"}


def rollback(mem: Memory, name: str, version: int) -> dict[str, Any]:
    """Make ``version`` current again as a new version (:meth:`Memory.rollback`)."""
    restored = mem.rollback(name, version)
    return {"ok": True, "version": restored.version,
            "message": f"{name} v{restored.version} is now current: it restores v{version}"}


def _decide(mem: Memory, name: str, version: int, decision: Literal["promote", "demote"]
            ) -> list[Change]:
    """A decision taken by hand on candidate ``version``, written as review writes its own
    (:func:`procmem.learning.changes.apply_decision`: a promotion in one transaction)."""
    candidate = mem.store.get_procedure(name, version)
    if candidate.status != "candidate":
        raise Conflict("procedure", f"{name} v{version}",
                       f"is {candidate.status}, not a candidate")
    active = mem.store.get_procedure(name)  # the current version the candidate competes with
    changes = apply_decision(mem.store, name, active, candidate, decision,
                             reason="decided by hand in the web UI")
    if not changes:  # another process changed a status between the reads and the write
        raise Conflict("procedure", f"{name} v{version}", "changed meanwhile; reload")
    return changes


def promote(mem: Memory, name: str, version: int) -> dict[str, Any]:
    """Make candidate ``version`` active and deprecate the current version.

    Raises:
        NotFound: No such version.
        Conflict: The version is not a candidate.
    """
    _decide(mem, name, version, "promote")
    return {"ok": True, "message": f"promoted {name} v{version}: it is now active"}


def reject(mem: Memory, name: str, version: int) -> dict[str, Any]:
    """Deprecate candidate ``version`` (it stops competing).

    Raises:
        NotFound: No such version.
        Conflict: The version is not a candidate.
    """
    _decide(mem, name, version, "demote")
    return {"ok": True, "message": f"rejected {name} v{version}: deprecated"}


def delete(mem: Memory, name: str, confirm: str) -> dict[str, Any]:
    """Delete every version of ``name`` (:meth:`Memory.delete_procedure`).

    Raises:
        UsageError: ``confirm`` is not the name (the dialog asks to type it).
    """
    if confirm != name:
        raise UsageError("to delete, type the procedure's name to confirm")
    mem.get_procedure(name)
    mem.delete_procedure(name)
    return {"ok": True, "message": f"deleted every version of {name}"}


def rename(mem: Memory, name: str, new_name: str) -> dict[str, Any]:
    """Rename ``name`` to ``new_name`` (:meth:`Memory.rename`); the old name stays an alias.

    Raises:
        NotFound: No procedure ``name``.
        Conflict: ``new_name`` is taken.
        InvalidProcedure: ``new_name`` is not a valid name.
    """
    renamed = mem.rename(name, new_name)
    return {"ok": True, "name": renamed.name,
            "message": f"renamed {name} to {renamed.name}; {name} now resolves to it"}


def report(mem: Memory, execution_id: str, reward: float, source: str,
           note: str) -> dict[str, Any]:
    """Report evidence on an execution (:meth:`Memory.report`, which then reviews)."""
    result = mem.report(execution_id, reward=reward, source=source, note=note)
    ev = result.evidence
    changed = "; ".join(f"{c.name} v{c.version} {c.change}" for c in result.changes)
    return {"ok": True, "message": f"reported reward {ev.reward:g} ({ev.source}) on "
                                   f"{execution_id}" + (f"; {changed}" if changed else "")}
