"""diffprog ships type information (py.typed): `grad(f)` keeps f's parameters and returns gradients, so mypy and
pyright users get sensible types. Runs mypy on a small snippet when mypy is installed."""
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import diffprog

PACKAGE = Path(diffprog.__file__).resolve().parent
REPO = PACKAGE.parent

SNIPPET = textwrap.dedent("""
    import numpy as np
    import diffprog as dp


    def f(x: float, y: float) -> float:
        return x * y


    g = dp.grad(f)
    reveal_type(g)
    reveal_type(dp.grad(f, argnums=(0, 1)))
    value, slope = dp.value_and_grad(f)(1.0, 2.0)
    reveal_type(value)
    g(1.0, "two")  # ERROR


    @dp.differentiable
    def h(a: np.ndarray) -> float:
        return float(np.sum(a))


    reveal_type(h)
    out, pullback = dp.vjp(f, 1.0, 2.0)
    reveal_type(out)
    reveal_type(dp.source(f))
    """).lstrip("\\n")


def test_py_typed_is_shipped():
    assert (PACKAGE / "py.typed").is_file()
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'\[tool\.setuptools\.package-data\]\s*diffprog\s*=\s*\[[^\]]*"py\.typed"', pyproject)


def test_mypy_sees_sensible_types(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed")
    snippet = tmp_path / "snippet.py"
    snippet.write_text(SNIPPET)
    # MYPYPATH: the package under test, also when it is installed in editable mode (whose import hook mypy cannot
    # follow); errors inside diffprog's own modules are not what this checks (follow-imports=silent).
    env = {"MYPYPATH": str(REPO), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
                           "--cache-dir", str(tmp_path / "cache"), "--hide-error-context", str(snippet)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    lines = done.stdout.splitlines()
    revealed = [line.split('Revealed type is "', 1)[1].rstrip('"') for line in lines if "Revealed type" in line]
    assert revealed == [
        "def (x: builtins.float, y: builtins.float) -> Any",
        "def (x: builtins.float, y: builtins.float) -> builtins.tuple[Any, ...]",
        "builtins.float",
        "def (a: numpy.ndarray[Any, numpy.dtype[Any]]) -> builtins.float",
        "builtins.float",
        "builtins.str",
    ] or [r.replace("builtins.", "") for r in revealed] == [
        "def (x: float, y: float) -> Any",
        "def (x: float, y: float) -> tuple[Any, ...]",
        "float",
        revealed[3].replace("builtins.", ""),
        "float",
        "str",
    ], done.stdout + done.stderr
    assert "ndarray" in revealed[3]
    errors = [line for line in lines if ": error:" in line]
    error_line = SNIPPET.splitlines().index('g(1.0, "two")  # ERROR') + 1
    assert len(errors) == 1 and f"snippet.py:{error_line}:" in errors[0] and '"str"' in errors[0], done.stdout
