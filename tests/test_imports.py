"""The import graph: ``rules/`` never imports ``app/``, no import cycle, no import hidden in a function.

A cycle used to be dodged by importing inside a function: the cycle stayed, only hidden. So every
import in ``app/`` and ``rules/`` is at module level (where the cycle test sees it), except the
few listed in :data:`FUNCTION_LEVEL`, each for a reason a reader can check: an optional
dependency (its line names the extra in ``pyproject.toml``), or one of :data:`LAZY_LOADERS`
loading a module only on the path that uses it (``tessera check`` must not pay for the server's,
the store's or the package fetcher's imports).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.pyast import parse_python

ROOT = Path(__file__).resolve().parents[1]

LAZY_LOADERS = {
    "app/cli.py": "the console script: only ``serve`` imports the server, and a subcommand's own modules "
    "(the store's drivers, the REST API, the GitHub client) load only when it is chosen",
    "app/check.py": "``tessera check``: the store only for ``--db``, package fetching only for a "
    "project that declares dbt packages",
    "app/workflow/packages.py": "the HTTP client only when a package is fetched: ``tessera check`` "
    "offline (``TESSERA_PACKAGES_OFFLINE=1``) reads local packages and notes the rest without it",
}
"""Where a module is loaded only on the path that needs it, so that ``tessera check`` starts
without the server, the store's drivers or an HTTP client it would not use (a warm check is
mostly start-up)."""
FUNCTION_LEVEL: dict[tuple[str, str], str] = {
    ("app/discovery/postgres.py", "psycopg"): "optional",
    ("app/cli.py", "aiohttp"): "lazy",
    ("app/cli.py", "app.server"): "lazy",
    ("app/cli.py", "app.github"): "lazy",
    ("app/cli.py", "app.demo.run"): "lazy",
    ("app/cli.py", "psycopg"): "lazy",
    ("app/cli.py", "psycopg_pool"): "lazy",
    ("app/cli.py", "app.store"): "lazy",
    ("app/cli.py", "app.store.deliveries"): "lazy",
    ("app/cli.py", "app.setup"): "lazy",
    ("app/cli.py", "app.keys"): "lazy",
    ("app/cli.py", "app.registry_sync"): "lazy",
    ("app/cli.py", "app.discovery.run"): "lazy",
    ("app/check.py", "app.check_store"): "lazy",
    ("app/check.py", "app.workflow.packages"): "lazy",
    ("app/workflow/packages.py", "aiohttp"): "lazy",
    ("app/workflow/packages.py", "yarl"): "lazy",
}
"""(file, imported module) → why it is imported inside a function: ``optional`` (the line's comment
names the extra) or ``lazy`` (the console script's ``serve``)."""


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
    for node in parse_python(path.read_text()).body:
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


def _function_level_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import inside a function or class body (not under ``TYPE_CHECKING``)."""
    tree = parse_python(path.read_text())
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for inner in ast.walk(node):
            if isinstance(inner, ast.Import):
                found.extend((inner.lineno, alias.name) for alias in inner.names)
            elif isinstance(inner, ast.ImportFrom):
                found.append((inner.lineno, "." * inner.level + (inner.module or "")))
    return sorted(set(found))


def _extras() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project.get("optional-dependencies", {}))


def test_no_import_hides_inside_a_function_except_the_listed_ones() -> None:
    unlisted: list[str] = []
    for package in ("app", "rules"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for line, module in _function_level_imports(path):
                if (relative, module) not in FUNCTION_LEVEL:
                    unlisted.append(f"{relative}:{line} imports {module}")
    assert unlisted == [], "move these to the top of the module (a cycle? move the shared piece down a layer)"


def test_each_optional_import_names_its_extra_and_each_listed_one_is_still_there() -> None:
    extras = _extras()
    for (relative, module), why in FUNCTION_LEVEL.items():
        path = ROOT / relative
        lines = path.read_text().splitlines()
        hits = [line for line, name in _function_level_imports(path) if name == module]
        assert hits, f"{relative} no longer imports {module} in a function: drop it from FUNCTION_LEVEL"
        if why == "lazy":
            assert relative in LAZY_LOADERS, f"only {sorted(LAZY_LOADERS)} load lazily, not {relative}"
            continue
        for line in hits:
            named = re.search(r"#\s*optional: the `(\w+)` extra", lines[line - 1])
            assert named and named.group(1) in extras, f"{relative}:{line}: say which extra provides {module}"


def test_an_import_inside_a_function_is_seen(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\n\ndef f():\n    from json import dumps\n    return dumps\n\n"
                      "class C:\n    def g(self):\n        import re\n")
    assert _function_level_imports(module) == [(4, "json"), (9, "re")]


SHARED = ("app.appkeys", "app.queue", "app.workflow.checkout", "app.workflow.analysis", "app.workflow.publishing")
"""What the concerns share (ARCHITECTURE.md's lower layers)."""
CONCERNS = ("app.server", "app.routing", "app.workflow.pulls", "app.workflow.slash", "app.registry_sync", "app.cli")


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_the_shared_layers_never_reach_up_to_a_concern_or_the_server() -> None:
    graph = _graph("rules", "app")
    assert {name: sorted(_reachable(graph, name) & set(CONCERNS)) for name in SHARED} == {name: [] for name in SHARED}


def _loaded_by(modules: str) -> set[str]:
    """Every module a fresh interpreter holds after importing ``modules``."""
    return set(subprocess.run(
        [sys.executable, "-c", f"import sys, {modules}; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split())


def test_tessera_check_starts_without_the_store_the_http_client_or_the_server() -> None:
    # a warm check is mostly start-up: what it does not use must not be loaded
    heavy = ("psycopg", "sqlite_utils", "aiohttp", "jwt", "cryptography", "app.store", "app.server", "app.github")
    assert sorted(set(heavy) & _loaded_by("app.check")) == []
    # a project with dbt packages adds the package reader, not the HTTP client until it fetches one,
    # nor the App's GitHub client or store
    assert sorted(set(heavy) & _loaded_by("app.check, app.workflow.packages")) == []


def test_the_console_script_loads_for_check_only_what_check_uses() -> None:
    # `tessera check` goes through app.cli: choosing `check` must not load the other commands'
    # modules (the REST API behind `keys`, the store behind `deliveries`, the GitHub client)
    script = (
        "import contextlib, io, sys, app.cli\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.suppress(SystemExit):\n"
        "    app.cli.main(['check', '--help'])\n"
        "assert '--base' in out.getvalue()\n"
        "print(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    heavy = ("psycopg", "psycopg_pool", "sqlite_utils", "aiohttp", "jwt", "cryptography", "app.store",
             "app.server", "app.github", "app.api", "app.keys", "app.registry_sync", "app.setup")
    assert sorted(set(heavy) & set(done.stdout.split())) == []
