"""The package-scale rules of docs/architecture.md, checked on the source tree itself.

- no import circle between production modules (a module-level or function-level import
  both count: a deferred import is still a dependency);
- no production module over 450 lines, except the sans-I/O FIX session (650);
- the actor packages do not reach into each other except through the names listed here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "protocol")
MAX_LINES = 450
# One cohesive module may be longer: the sans-I/O FIX session state machine.
LONGER_ALLOWED = {"actors/connector/fix/session.py": 650}


def _source_files() -> Iterator[Path]:
    for pkg in PACKAGES:
        yield from sorted((ROOT / pkg).rglob("*.py"))
    yield ROOT / "supervisor.py"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imported_modules(path: Path, known: set[str]) -> set[str]:
    """Project modules `path` imports (`from pkg import mod` counts as pkg.mod when mod is
    a module, else as pkg)."""
    name = _module_name(path)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & known
            found.update(subs or {target})
    return {m for m in found if m in known and m != name}


def _import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in _source_files()}
    known = set(files)
    return {name: _imported_modules(path, known) for name, path in files.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_between_production_modules() -> None:
    """A circle (a imports b imports a, directly or through others) fails with its members."""
    assert _cycles(_import_graph()) == []


def test_cycle_finder_sees_a_circle() -> None:
    """The checker itself: a three-module circle and a self-contained tree."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"x": {"y"}, "y": set()}) == []


def test_no_production_module_over_the_line_budget() -> None:
    """Every module readable in one sitting: <= 450 lines, the FIX session <= 650."""
    too_long = {}
    for path in _source_files():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text().splitlines())
        if lines > LONGER_ALLOWED.get(rel, MAX_LINES):
            too_long[rel] = lines
    assert too_long == {}


def test_actor_packages_do_not_import_the_supervisor() -> None:
    """The supervisor starts actors; an actor package importing `actors.supervisor` would
    tie every actor process to the daemon's code (and invite circles)."""
    offenders = {
        name: sorted(d for d in deps if d.startswith("actors.supervisor"))
        for name, deps in _import_graph().items()
        if name.startswith("actors.")
        and not name.startswith(("actors.supervisor", "actors.__main__"))
        and any(d.startswith("actors.supervisor") for d in deps)
    }
    assert offenders == {}
