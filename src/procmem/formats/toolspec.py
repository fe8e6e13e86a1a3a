"""Which functions ``--tools MODULE:OBJECT`` exposes to replay: only explicit ones.

A stored procedure can name any action, so the tool registry must hold only what
its owner meant to expose. A module once exposed ``subprocess.run`` because the
tools module had imported it. The rules (:func:`load_tools`):

* ``MODULE:OBJECT`` where ``OBJECT`` is a **mapping** ``action -> callable``: that mapping
  (its values must be callable).
* ``OBJECT`` a **module**: the callables named in its ``__all__``; a module without
  ``__all__`` is refused (list the tools instead).
* ``OBJECT`` an **instance**: its public bound methods (methods of its class, not
  attributes that merely hold a function or a module).
* ``MODULE:name1,name2``: exactly those callables of ``MODULE`` (an explicit list;
  a single function name is a list of one).

Anything else (a class, a module without ``__all__``, a private name) is a
:class:`~procmem.core.errors.UsageError` that says what to write instead.

Invariant: the returned mapping never grows after loading; its keys are exactly
the tools the replay may call.
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

from ..core.errors import UsageError

__all__ = ["load_tools"]

_HINT = ("expose a mapping (TOOLS = {'name': fn}), a module with __all__, an object whose "
         "public methods are the tools, or list them: MODULE:name1,name2")


def _import(spec: str, module_name: str) -> Any:
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(f"--tools {spec!r}: cannot import module {module_name!r}: {err}") from err
    except Exception as err:
        raise UsageError(f"--tools {spec!r}: importing module {module_name!r} raised "
                         f"{type(err).__name__}: {err}") from err


def _attr(spec: str, obj: Any, dotted: str, module_name: str) -> Any:
    for part in dotted.split("."):
        if not part:
            raise UsageError(f"--tools {spec!r}: {dotted!r} is not a name")
        if not hasattr(obj, part):
            raise UsageError(f"--tools {spec!r}: module {module_name!r} has no attribute "
                             f"{dotted!r}")
        obj = getattr(obj, part)
    return obj


def _from_module(spec: str, module: types.ModuleType) -> dict[str, Callable[..., Any]]:
    names = getattr(module, "__all__", None)
    if not isinstance(names, list | tuple):
        raise UsageError(f"--tools {spec!r}: module {module.__name__!r} has no __all__, so "
                         f"which of its functions are tools is not explicit; {_HINT}")
    return {n: getattr(module, n) for n in names
            if isinstance(n, str) and callable(getattr(module, n, None))}


def _from_instance(obj: Any) -> dict[str, Callable[..., Any]]:
    out: dict[str, Callable[..., Any]] = {}
    for name, _ in inspect.getmembers(type(obj), callable):
        if name.startswith("_"):
            continue
        value = getattr(obj, name, None)
        if inspect.ismethod(value) and value.__self__ is obj:
            out[name] = value
    return out


def load_tools(spec: str) -> Mapping[str, Callable[..., Any]]:
    """Import the tools named by ``MODULE:OBJECT`` or ``MODULE:name1,name2`` (see the
    module docstring for what each form exposes). The current directory is importable.

    Returns:
        ``action -> callable``; only the tools the spec names explicitly.

    Raises:
        UsageError: ``spec`` is malformed, the module cannot be imported, a name is
            missing or private, or the object does not say which tools it exposes.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--tools must be MODULE:OBJECT (e.g. mytools:TOOLS), got {spec!r}")
    module = _import(spec, module_name)
    if "," in attr:
        names = [n.strip() for n in attr.split(",") if n.strip()]
        out: dict[str, Callable[..., Any]] = {}
        for n in names:
            fn = _attr(spec, module, n, module_name)
            if not callable(fn) or n.startswith("_"):
                raise UsageError(f"--tools {spec!r}: {n!r} is not a public callable")
            out[n.rsplit(".", 1)[-1]] = fn
        return out
    obj = _attr(spec, module, attr, module_name)
    if isinstance(obj, Mapping):
        bad = [k for k, v in obj.items() if not callable(v)]
        if bad:
            raise UsageError(f"--tools {spec!r}: not callable: {', '.join(map(str, bad[:5]))}")
        return dict(obj)
    if isinstance(obj, types.ModuleType):
        return _from_module(spec, obj)
    if inspect.isclass(obj):
        raise UsageError(f"--tools {spec!r}: {attr!r} is a class; expose an instance, or "
                         f"{_HINT}")
    if isinstance(obj, types.FunctionType | types.BuiltinFunctionType | types.MethodType):
        return {attr.rsplit(".", 1)[-1]: obj}  # one function named explicitly
    tools = _from_instance(obj)
    if not tools:
        raise UsageError(f"--tools {spec!r}: {attr!r} has no public methods; {_HINT}")
    return tools
