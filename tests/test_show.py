"""`diffprog show FILE::FUNCTION`: the generated code, printed without writing a script; and DIFFPROG_VERBOSE."""
import os
import subprocess
import sys
import textwrap
import time

import pytest

import diffprog as dp
from diffprog import progress
from diffprog.cli import main
from diffprog.cli.show import evaluate_args, highlight, wants_color

MODULE = textwrap.dedent("""
    import math
    import numpy as np
    import diffprog as dp

    print("module ran")


    @dp.differentiable
    def f(x, y):
        return math.sin(x) * y


    def g(a, s):
        return np.sum(a * a) * s


    class Model:
        @staticmethod
        def loss(x):
            return x * x


    def broken(x):
        try:
            return x
        except ValueError:
            return 0.0
    """).lstrip("\\n")


@pytest.fixture
def module(tmp_path):
    path = tmp_path / "model.py"
    path.write_text(MODULE)
    return path


def test_reverse_code_of_a_decorated_function(module, capsys):
    assert main(["show", f"{module}::f"]) == 0
    out = capsys.readouterr().out
    assert "def f_reverse(x, y, seed):" in out and "math.cos(x)" in out and "x_adj" in out
    assert "\x1b[" not in out  # not a terminal: plain text
    assert out.startswith("# diffprog ") and out.endswith("return (value, x_adj)\n")


def test_forward_and_primal_with_args_and_argnums(module, capsys):
    assert main(["show", f"{module}::g", "--mode", "forward", "--args", "np.ones(3), 2.0", "--argnums", "0,1"]) == 0
    out = capsys.readouterr().out
    assert "def g_forward(a, s, a_dot, s_dot):" in out and "float64[:]" in out
    assert main(["show", f"{module}::Model.loss", "--mode", "primal"]) == 0
    out = capsys.readouterr().out
    assert "primal code for loss" in out and "mul_" in out


def test_show_runs_the_module_unlike_check(module, capsys):
    main(["show", f"{module}::f", "--mode", "primal"])
    captured = capsys.readouterr()
    assert "module ran" in captured.err and "module ran" not in captured.out  # stdout: only the code
    main(["check", str(module)])
    captured = capsys.readouterr()
    assert "module ran" not in captured.out + captured.err


def test_errors(module, capsys):
    assert main(["show", f"{module}::broken"]) == 1
    assert "DP101" in capsys.readouterr().err
    assert main(["show", f"{module}::missing"]) == 2
    assert "has no function 'missing'" in capsys.readouterr().err
    assert main(["show", str(module)]) == 2
    assert "FILE::FUNCTION" in capsys.readouterr().err
    assert main(["show", f"{module}::g", "--args", "np.ones(3), ("]) == 2
    assert "--args" in capsys.readouterr().err
    bad = module.parent / "bad.py"
    bad.write_text("raise RuntimeError('boom')\n")
    assert main(["show", f"{bad}::f"]) == 2
    assert "boom" in capsys.readouterr().err


def test_default_args_are_floats():
    def h(a, b, c):
        return a
    assert evaluate_args(None, h) == (1.0, 1.0, 1.0)
    assert evaluate_args("1, np.zeros(2)", h)[0] == 1


def test_highlighting_only_where_it_is_supported(monkeypatch):
    pytest.importorskip("pygments")
    code = "def f(x):\n    return x\n"
    assert highlight(code, "never") == code
    assert highlight(code, "auto") == code  # pytest's stdout is not a terminal
    assert "\x1b[" in highlight(code, "always")

    class Tty:
        def isatty(self):
            return True
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert wants_color("auto", Tty())
    monkeypatch.setenv("NO_COLOR", "1")
    assert not wants_color("auto", Tty())
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not wants_color("auto", Tty())


def test_show_is_a_console_command(module, tmp_path):
    done = subprocess.run([sys.executable, "-m", "diffprog", "show", f"{module}::f", "--mode", "primal"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "def f_primal" in done.stdout or "def f(" in done.stdout or "primal code for f" in done.stdout


# ---- DIFFPROG_VERBOSE ----------------------------------------------------------------------------------------
class FakeCompiler:
    class parsed:
        name = "slow"
        file = "/somewhere/model.py"
        line_offset = 0

        class node:
            lineno = 12


def test_verbose_reports_long_compilations(monkeypatch, capsys):
    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")
    monkeypatch.setattr(progress, "THRESHOLD", 0.05)

    @progress.reported
    def specialize(compiler, mode, wrt, args):
        time.sleep(0.15)
        return "spec"

    assert specialize(FakeCompiler(), "reverse", (0,), (1.0,)) == "spec"
    err = capsys.readouterr().err
    assert "diffprog: compiling reverse code for slow (model.py:12, wrt (0,)) ..." in err
    assert "diffprog: compiled reverse code for slow (model.py:12, wrt (0,)) in 0.1 s" in err \
        or "diffprog: compiled reverse code for slow (model.py:12, wrt (0,)) in 0.2 s" in err


def test_verbose_is_silent_for_quick_compilations_and_when_unset(monkeypatch, capsys):
    @progress.reported
    def specialize(compiler, mode, wrt, args):
        time.sleep(0.15)
        return "spec"

    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")
    specialize(FakeCompiler(), "forward", (), ())  # shorter than the 1 s threshold
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "THRESHOLD", 0.05)
    for value in ("", "0"):
        monkeypatch.setenv("DIFFPROG_VERBOSE", value)
        specialize(FakeCompiler(), "forward", (), ())
        assert capsys.readouterr().err == ""


def test_verbose_failure_is_reported_and_raised(monkeypatch, capsys):
    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")
    monkeypatch.setattr(progress, "THRESHOLD", 0.05)

    @progress.reported
    def specialize(compiler, mode, wrt, args):
        time.sleep(0.1)
        raise dp.DifferentiabilityError([])

    with pytest.raises(dp.DifferentiabilityError):
        specialize(FakeCompiler(), "primal", (), ())
    assert "failed after" in capsys.readouterr().err


def test_the_compiler_reports_through_it(monkeypatch, capsys):
    from diffprog.compiler.function import FunctionCompiler

    assert FunctionCompiler.specialize.__wrapped__ is not None
    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")
    monkeypatch.setattr(progress, "THRESHOLD", 0.0)
    assert dp.grad(square, 0)(3.0) == 6.0
    assert "compiled reverse code for square" in capsys.readouterr().err


def square(x):
    return x * x
