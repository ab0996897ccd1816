"""The shape of the house: the import graph of hw5jax (every import, those inside functions
too) has no cycle, the training core knows nothing of run directories, the errors module is
a leaf, experiments are thin and none imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The floors of hw5jax, lowest first: a module imports only from its own floor or below.
FLOORS = (
    ("hw5jax.errors",),
    ("hw5jax.core", "hw5jax.models", "hw5jax.data", "hw5jax.kernels"),
    (
        "hw5jax.runs",
        "hw5jax.reporting",
        "hw5jax.theory",
        "hw5jax.alexnet",
        "hw5jax.reference",
        "hw5jax.bench",
    ),
    ("hw5jax.configs",),
    ("hw5jax.pipelines",),
    ("hw5jax.cli",),
)
MAX_MODULE_LINES = 500
MAX_CLI_LINES = 150


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_names(source: str, module: str, is_package: bool) -> set[str]:
    """Every module `source` imports, anywhere in it (function bodies included), as dotted
    names: `from a.b import c` counts as both `a.b` and `a.b.c` (c may be a module)."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def import_graph(files: list[Path], root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the modules of `files` it imports. A package's own __init__ is not an edge
    for the modules inside it (importing a submodule runs its parents first anyway)."""
    modules = {module_name(f, root): f for f in files}
    graph = {}
    for name, path in modules.items():
        edges = imported_names(path.read_text(), name, path.name == "__init__.py")
        graph[name] = {
            target
            for target in edges
            if target in modules
            and target != name
            and not name.startswith(target + ".")
            and not target.startswith(name + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The cycles a depth-first search meets (each as [a, b, ..., a]); empty if none."""
    state: dict[str, int] = {}
    path: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                found.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def floor_of(module: str) -> int | None:
    for level, packages in enumerate(FLOORS):
        if any(module == p or module.startswith(p + ".") for p in packages):
            return level
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import from a module into a higher floor; a `__main__` (an entry point, like
    `python -m hw5jax.data`) may import the command-line edge."""
    found = []
    for module, targets in sorted(graph.items()):
        low = floor_of(module)
        if low is None or module.endswith(".__main__"):
            continue
        for target in sorted(targets):
            high = floor_of(target)
            if high is not None and high > low:
                found.append(f"{module} -> {target}")
    return found


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(python_files("hw5jax") + python_files("experiments"))


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import x\n")
    (pkg / "b.py").write_text("def f():\n    from pkg import c\n")  # inside a function
    (pkg / "c.py").write_text("from . import a\n")  # relative
    (pkg / "d.py").write_text("import pkg.a\n")
    found = cycles(import_graph(sorted(pkg.glob("*.py")), tmp_path))
    assert found == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]
    (pkg / "c.py").write_text("import json\n")
    assert cycles(import_graph(sorted(pkg.glob("*.py")), tmp_path)) == []


def test_no_import_cycles(graph):
    assert cycles(graph) == []


def test_imports_only_go_down_the_floors(graph):
    assert upward_imports(graph) == []
    every = {module for module in graph if module.startswith("hw5jax.")}
    assert {m for m in every if floor_of(m) is None} == set()  # every module has a floor


def test_an_upward_import_is_found():
    graph = {"hw5jax.core.fit": {"hw5jax.runs.store"}, "hw5jax.runs.store": {"hw5jax.errors"}}
    assert upward_imports(graph) == ["hw5jax.core.fit -> hw5jax.runs.store"]


def test_errors_is_a_leaf(graph):
    assert graph["hw5jax.errors"] == set()


def test_the_training_core_knows_nothing_of_run_directories(graph):
    above = ("hw5jax.runs", "hw5jax.reporting", "hw5jax.pipelines", "hw5jax.cli", "hw5jax.configs")
    for module, targets in graph.items():
        if module.startswith("hw5jax.core"):
            assert not [t for t in targets if t.startswith(above)], module


def test_the_library_never_imports_an_experiment_and_no_experiment_imports_another(graph):
    for module, targets in graph.items():
        assert not [t for t in targets if t.startswith("experiments")], module


def test_modules_and_clis_are_short():
    long = {
        str(f.relative_to(ROOT)): n
        for f in python_files("hw5jax")
        if (n := len(f.read_text().splitlines())) > MAX_MODULE_LINES
    }
    long |= {
        str(f.relative_to(ROOT)): n
        for f in python_files("experiments")
        if (n := len(f.read_text().splitlines())) > MAX_CLI_LINES
    }
    assert long == {}
