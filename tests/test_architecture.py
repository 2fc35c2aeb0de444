"""The shape of the code base, checked: data flows one way between the stages (no import cycle between
subpackages, imports inside functions included), and no file or class grows past what a reader can hold."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "diffprog"
MAX_FILE_LINES = 800
MAX_CLASS_LINES = 400

# The stages in the order data flows through them; a stage may import those before it, never those after.
LAYERS = (
    ("errors", "ir", "version", "progress", "codes"),
    ("frontend",),
    ("rules", "custom_types"),
    ("normalize",),
    ("analysis",),
    ("transforms",),
    ("backend",),
    ("compiler",),
    ("api", "__init__"),
    ("cli", "__main__"),
)


def _sources():
    return sorted(PACKAGE.rglob("*.py"))


def _unit(path: Path) -> str:
    """The top-level subpackage (or module) of diffprog a file belongs to."""
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _submodule(name: str) -> str:
    """What `from diffprog import name` imports: a subpackage or module, else a name diffprog/__init__ defines."""
    return name if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").exists() else "__init__"


def imported_units(path: Path) -> set:
    """The diffprog subpackages a file imports, at module level or inside functions."""
    package = ["diffprog", *path.relative_to(PACKAGE).parts[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - node.level + 1]
            module = base + (node.module.split(".") if node.module else [])
            found.update([module[1]] if len(module) > 1 else [_submodule(alias.name) for alias in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("diffprog."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("diffprog."))
    return {unit for unit in found if _is_unit(unit)} - {_unit(path)}


def _is_unit(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def import_graph() -> dict:
    graph = {}
    for path in _sources():
        graph.setdefault(_unit(path), set()).update(imported_units(path))
    return graph


def test_imports_flow_one_way_through_the_stages():
    layer = {unit: k for k, units in enumerate(LAYERS) for unit in units}
    graph = import_graph()
    assert set(graph) <= set(layer), f"place the new subpackages in LAYERS: {set(graph) - set(layer)}"
    backwards = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if layer[b] > layer[a])
    assert backwards == []


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    state = {}

    def visit(unit, path):
        if state.get(unit) == "done":
            return
        assert state.get(unit) != "open", "import cycle: " + " -> ".join(path + [unit])
        state[unit] = "open"
        for target in sorted(graph.get(unit, ())):
            visit(target, path + [unit])
        state[unit] = "done"

    for unit in sorted(graph):
        visit(unit, [])


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_files_and_classes_stay_small(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_FILE_LINES
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            assert node.end_lineno - node.lineno + 1 <= MAX_CLASS_LINES, node.name


def test_the_checking_half_never_imports_numba():
    """The command line checker and the language server run the front half of the pipeline only."""
    code = ("import sys, diffprog.cli.engine, diffprog.compiler.front; "
            "print('numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
