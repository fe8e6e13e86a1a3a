"""The house rules of issue "Clear rooms", checked on the source (``docs/architecture.md``):
no import cycle, no module over 600 lines, no module importing another module's private
name, nothing outside ``procmem/store/`` importing a store backend module, and the folders
are the subsystems, with imports pointing down."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import procmem

ROOT = Path(procmem.__file__).parent
BACKENDS = ("procmem.store.sqlite", "procmem.store.keys_sql", "procmem.store.lease_sql",
            "procmem.store.search_sql", "procmem.store.tools_sql", "procmem.store.stats_sql",
            "procmem.store.feed_sql", "procmem.store.scrub")


def _modules() -> dict[str, Path]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()
BACKENDS += tuple(m for m in MODULES if m.startswith("procmem.store.postgres"))


def _target(module: str, path: Path, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if path.name != "__init__.py":
        base = base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(module: str, path: Path, *, top_level: bool) -> Iterator[tuple[str, str]]:
    """``(module imported, name)`` pairs; at top level: not under ``TYPE_CHECKING``
    and not inside a function (those run later, so they cannot make a cycle)."""
    tree = ast.parse(path.read_text())

    def walk(body: list[ast.stmt]) -> Iterator[ast.stmt]:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            yield node
            if isinstance(node, ast.If | ast.Try):
                for block in (node.body, node.orelse,
                              *[h.body for h in getattr(node, "handlers", [])]):
                    yield from walk(block)

    nodes = walk(tree.body) if top_level else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            target = _target(module, path, node)
            for alias in node.names:
                yield target, alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, ""


def test_no_module_is_over_600_lines() -> None:
    long = {m: p.read_text().count("\n") for m, p in MODULES.items()}
    assert {m: n for m, n in long.items() if n > 600} == {}


def test_the_house_has_no_import_cycle() -> None:
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        for target, name in _imports(module, path, top_level=True):
            full = f"{target}.{name}" if name else target
            dep = full if full in MODULES else target
            if dep in MODULES and dep != module:
                graph.setdefault(module, set()).add(dep)
    state: dict[str, int] = {}  # 1: on the path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep] if dep in path else [node, dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[node] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module, [module])
    # a package importing its own submodules is not a cycle of the house
    real = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c)]
    assert real == []


def test_no_module_imports_a_private_name_of_another() -> None:
    private = []
    for module, path in MODULES.items():
        for target, name in _imports(module, path, top_level=False):
            if (target.startswith("procmem") and name.startswith("_")
                    and not name.startswith("__") and target != module
                    and f"{target}.{name}" not in MODULES):
                private.append((module, target, name))
    assert private == []


def test_nothing_above_the_store_imports_a_backend_module() -> None:
    above = []
    for module, path in MODULES.items():
        if module.startswith("procmem.store"):
            continue
        for target, name in _imports(module, path, top_level=False):
            full = f"{target}.{name}"
            if target in BACKENDS or full in BACKENDS:
                above.append((module, target if target in BACKENDS else full))
    assert above == []


def test_the_checks_see_the_house() -> None:
    assert len(MODULES) > 80 and "procmem.memory" in MODULES and "procmem.store.sqlite" in MODULES


FACADE = {"procmem", "procmem.__main__", "procmem.memory", "procmem.memory_async",
          "procmem.tenants"}
BELOW_FACADE = {"core", "induction", "search", "learning", "formats", "security", "store",
                "services"}
ADAPTERS = {"cli", "rest", "mcp", "web"}
SUBSYSTEMS = BELOW_FACADE | ADAPTERS | {"evaluation"}


def _folder(module: str) -> str:
    return module.split(".")[1] if module.count(".") else ""


def test_the_folders_are_the_subsystems() -> None:
    loose = {m for m, p in MODULES.items()
             if m.count(".") == 1 and p.name != "__init__.py" and m not in FACADE}
    assert loose == set(), "a module at the top level of procmem/ that is not the facade"
    assert {_folder(m) for m in MODULES if m not in FACADE} == SUBSYSTEMS


def test_core_imports_only_core() -> None:
    allowed = {"procmem.security.secret_params"}  # a replay never sends a redacted value
    out = [(m, t) for m, p in MODULES.items() if _folder(m) == "core"
           for t, _ in _imports(m, p, top_level=False)
           if t.startswith("procmem.") and _folder(t) != "core" and t not in allowed]
    assert out == []


def test_imports_point_down() -> None:
    """Nothing below the adapters imports one; nothing below the facade imports it at
    module level (a function may drive a scratch ``Memory``)."""
    up = []
    for module, path in MODULES.items():
        folder = _folder(module)
        if folder in ADAPTERS or module in FACADE or folder == "evaluation":
            continue
        for target, _ in _imports(module, path, top_level=False):
            if target.startswith("procmem.") and _folder(target) in ADAPTERS:
                up.append((module, target))
        if folder in BELOW_FACADE:
            for target, _ in _imports(module, path, top_level=True):
                if target in FACADE - {"procmem"}:
                    up.append((module, target))
    assert up == []
