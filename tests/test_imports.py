"""The import graph: ``rules/`` never imports ``app/``, and no module-level import cycle anywhere.

A cycle is dodged by importing inside a function or under ``TYPE_CHECKING``; the graph here is
of module-level imports only, so such dodges are not seen as cycles (they are not the subject of
this test), but a new module-level cycle fails it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules(package: str) -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / package).rglob("*.py"))}


def _top_level_imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports when it is loaded (not inside functions, not for
    type checking only)."""
    found: set[str] = set()
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        statements = [node] if isinstance(node, (ast.Import, ast.ImportFrom)) else []
        for statement in statements:
            if isinstance(statement, ast.Import):
                found.update(a.name for a in statement.names if a.name in known)
                continue
            base = statement.module or ""
            if statement.level:
                anchor = package.split(".")[: len(package.split(".")) - statement.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in statement.names:
                target = f"{base}.{alias.name}"
                if target in known:
                    found.add(target)
                elif base in known:
                    found.add(base)
    found.discard(module)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def _graph(*packages: str) -> dict[str, set[str]]:
    modules: dict[str, Path] = {}
    for package in packages:
        modules.update(_modules(package))
    known = set(modules)
    return {name: _top_level_imports(path, known) for name, path in modules.items()}


def test_the_engine_has_no_import_cycle() -> None:
    assert _cycles(_graph("rules")) == []


def test_the_engine_never_imports_the_service() -> None:
    graph = _graph("rules", "app")
    engine = {name: deps for name, deps in graph.items() if name.startswith("rules")}
    assert {name: sorted(d for d in deps if d.startswith("app")) for name, deps in engine.items()
            if any(d.startswith("app") for d in deps)} == {}


def test_the_service_has_no_import_cycle_at_module_level() -> None:
    assert _cycles(_graph("rules", "app")) == []


def test_the_graph_sees_absolute_relative_and_submodule_imports() -> None:
    graph = _graph("rules")
    assert {"rules.catalog", "rules.checks", "rules.checks.context"} <= graph["rules.diff"]
    assert "rules.checks.assets" in graph["rules.checks"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
