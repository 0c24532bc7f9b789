"""The package's rooms and the one way their imports run (README "Layout").

Read from the source, not by importing it: every ``import`` and ``from … import`` of the
package, at module level or inside a function, is an arrow from one module to another.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "topup_ledger"

# Lower rooms never import higher ones; the domain imports nothing but itself.
ROOMS = ("domain", "storage", "engine", "io", "projections", "statements", "audit", "services",
         "cli")
# What may sit directly in src/topup_ledger/ besides the rooms.
ENTRY_MODULES = {"__init__", "__main__"}
CACHES = {"lru_cache", "cache", "cached_property"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported(path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The package's modules ``path`` imports (a name imported from a package counts as
    its submodule when there is one)."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "topup_ledger")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and \
                node.module.split(".")[0] == "topup_ledger":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                yield sub if sub in known else node.module


def room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in ROOMS) else ""


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(path, known)) - {name} for name, path in known.items()}


def cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``edges``, if there is any."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_no_module_imports_another_that_imports_it_back() -> None:
    assert cycle(graph()) is None


def test_rooms_import_only_rooms_below_them() -> None:
    wrong = []
    for module, targets in graph().items():
        here = room(module)
        for target in targets:
            there = room(target)
            if here in ROOMS and there in ROOMS and ROOMS.index(there) > ROOMS.index(here):
                wrong.append(f"{module} ({here}) imports {target} ({there})")
    assert wrong == []


def test_the_domain_imports_nothing_but_itself_and_the_standard_library() -> None:
    outside = []
    for module, path in modules().items():
        if room(module) != "domain":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            for name in names:
                top = name.split(".")[0]
                if name.startswith("topup_ledger.domain") or top == "__future__":
                    continue
                if top not in sys.stdlib_module_names:
                    outside.append(f"{module} imports {name}")
    assert outside == []


def test_the_domain_keeps_no_caches() -> None:
    """Speed belongs beside the use case that needs it (engine/), not in the rules."""
    found = []
    for module, path in modules().items():
        if room(module) != "domain":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.attr if isinstance(node, ast.Attribute) else (
                node.id if isinstance(node, ast.Name) else None)
            if name in CACHES:
                found.append(f"{module}:{node.lineno} {name}")
    assert found == []


def test_at_most_three_modules_sit_outside_the_rooms() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose <= ENTRY_MODULES and len(loose) <= 3
    assert {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"} == set(ROOMS)


def test_one_benchmark_script() -> None:
    assert [p.name for p in (ROOT / "scripts").glob("bench*.py")] == ["bench.py"]


@pytest.mark.parametrize("edges, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
])
def test_the_cycle_finder_finds_cycles(edges: dict[str, set[str]], expected: list[str] | None) -> None:
    assert cycle(edges) == expected
