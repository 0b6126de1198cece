"""The modules of the `mims` package import one another without cycles: in a cycle the import order
decides what works, and a function-level import only hides it. Every import counts, read with `ast`:
at the top, inside functions, under TYPE_CHECKING."""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Collection
from itertools import pairwise
from pathlib import Path

import pytest

import mims

PACKAGE = Path(mims.__file__).parent

# Cycles in modules other work owns, as the sets of modules in them. The list only shrinks: a new
# cycle fails the test, and so does a listed one that is gone (then remove it here).
KNOWN_CYCLES: set[frozenset[str]] = set()

Graph = dict[str, dict[str, int]]  # module -> the mims modules it imports -> the line of the first import


def module_files() -> dict[str, Path]:
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_modules(name: str, path: Path, modules: Collection[str]) -> dict[str, int]:
    """The mims modules `name` imports: `from a.b import c` is module a.b.c when there is one, else a.b
    (importing a.b.c runs a/__init__.py and a/b/__init__.py too; that order is Python's, not a cycle)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: `from . import x` in package a.b is a.b.x
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                found.setdefault(target, node.lineno)
    return found


@pytest.fixture(scope="module")
def graph() -> Graph:
    files = module_files()
    return {name: imported_modules(name, path, files) for name, path in files.items()}


def cycles(graph: Graph) -> set[frozenset[str]]:
    """The strongly connected sets of modules: each module of one imports every other, through others."""
    reach = {module: _reachable(graph, module) for module in graph}
    return {
        frozenset(other for other in reach[module] if module in reach[other])
        for module in graph
        if module in reach[module]
    }


def _reachable(graph: Graph, start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def describe(graph: Graph, cycle: frozenset[str]) -> str:
    """A shortest loop from the cycle's first module back to it, with the file and line of each import."""
    start = min(cycle)
    paths, seen = deque([[start]]), {start}
    while True:  # `start` is in a cycle: the loop is found
        path = paths.popleft()
        if start in graph[path[-1]]:
            return _loop_lines(graph, [*path, start])
        for target in graph[path[-1]]:
            if target in cycle and target not in seen:
                seen.add(target)
                paths.append([*path, target])


def _loop_lines(graph: Graph, loop: list[str]) -> str:
    files = module_files()
    steps = [f"  {files[a].relative_to(PACKAGE.parent.parent)}:{graph[a][b]} imports {b}" for a, b in pairwise(loop)]
    return "\n".join([" -> ".join(loop), *steps])


def test_no_new_import_cycle(graph):
    new = cycles(graph) - KNOWN_CYCLES
    assert not new, "import cycles:\n" + "\n".join(describe(graph, c) for c in sorted(new, key=min))


def test_known_import_cycles_are_still_there(graph):
    gone = KNOWN_CYCLES - cycles(graph)
    assert not gone, f"no longer cycles, remove them from KNOWN_CYCLES: {[sorted(c) for c in gone]}"
