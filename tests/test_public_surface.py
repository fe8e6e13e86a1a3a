"""The public surface is whole: every procmem type in a public signature, and every
exception of the error tree, is exported from ``procmem`` (issue "See and steer")."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import typing
from typing import Any

import procmem
import procmem.core.errors
from procmem.memory import Memory


def _procmem_types() -> dict[str, type]:
    """Every class defined in procmem, by name (to resolve string annotations)."""
    out: dict[str, type] = {}
    for info in pkgutil.walk_packages(procmem.__path__, "procmem."):
        if info.name.startswith(("procmem.cli", "procmem.web")):
            continue  # adapters: their types are not part of the Python API
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, type) and value.__module__.startswith("procmem"):
                out.setdefault(name, value)
    return out


def _collect(tp: Any, into: set[type]) -> None:
    if isinstance(tp, type) and tp.__module__.startswith("procmem"):
        into.add(tp)
    origin = typing.get_origin(tp)
    if isinstance(origin, type) and origin.__module__.startswith("procmem"):
        into.add(origin)
    for arg in typing.get_args(tp):
        _collect(arg, into)


def _public_signature_types() -> set[type]:
    names = _procmem_types()
    found: set[type] = set()
    members = [fn for name, fn in inspect.getmembers(Memory)
               if not name.startswith("_") or name == "__init__"]
    members += [getattr(procmem, n) for n in ("evaluate", "read_traces", "write_traces")]
    for fn in members:
        target = fn.fget if isinstance(fn, property) else fn
        if not callable(target):
            continue
        for hint in typing.get_type_hints(target, localns=names).values():
            _collect(hint, found)
    return found


def test_every_type_in_a_public_signature_is_exported() -> None:
    used = _public_signature_types()
    assert len(used) > 20  # the walk found the signatures' types
    missing = sorted(t.__name__ for t in used if t.__name__ not in procmem.__all__)
    assert missing == [], f"public signatures use types procmem does not export: {missing}"
    for t in used:
        assert getattr(procmem, t.__name__) is t


def test_every_exception_of_the_error_tree_is_exported() -> None:
    tree = {name for name, value in vars(procmem.core.errors).items()
            if isinstance(value, type) and issubclass(value, procmem.core.errors.ProcmemError)}
    assert "NotFound" in tree and "ProcmemError" in tree
    assert sorted(tree - set(procmem.__all__)) == []


def test_every_exported_name_resolves() -> None:
    for name in procmem.__all__:
        assert getattr(procmem, name) is not None, name
    assert sorted(procmem.__all__) == sorted(set(procmem.__all__))
