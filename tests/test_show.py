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


# ---- progress of long compilations (DIFFPROG_PROGRESS, DIFFPROG_VERBOSE) ------------------------------------------
class FakeCompiler:
    class parsed:
        name = "slow"
        file = "/somewhere/model.py"
        line_offset = 0

        class node:
            lineno = 12


@pytest.fixture
def quick_threshold(monkeypatch):
    """Progress as a user has it by default (no DIFFPROG_* setting), with a threshold of 0.05 s."""
    for name in ("DIFFPROG_VERBOSE", "DIFFPROG_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(progress, "THRESHOLD", 0.05)
    monkeypatch.setattr(progress, "TICK", 0.02)
    monkeypatch.setattr(progress, "_setting", None)


def sleeping(seconds, result="spec"):
    @progress.reported
    def specialize(compiler, mode, wrt, args):
        time.sleep(seconds)
        return result
    return specialize


def test_long_compilations_report_by_default(quick_threshold, capsys):
    assert sleeping(0.15)(FakeCompiler(), "reverse", (0,), (1.0,)) == "spec"
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert lines[0] == "diffprog: compiling the gradient of slow (model.py:12) ...", err
    assert lines[1].startswith("diffprog: compiled the gradient of slow (model.py:12) in 0."), err
    assert len(lines) == 2 and "\r" not in err  # capsys is not a terminal: plain lines, no live indicator
    assert "wrt" not in err and "reverse" not in err  # the detail is DIFFPROG_VERBOSE's


def test_the_words_for_each_mode():
    from diffprog.compiler.derived import DerivativeCompiler, TangentCompiler

    def label(compiler, mode):
        return progress._label(compiler, mode, ())
    assert label(FakeCompiler(), "primal") == "the primal of slow (model.py:12)"
    assert label(FakeCompiler(), "forward") == "the tangent code of slow (model.py:12)"
    assert label(FakeCompiler(), "forward_batched") == "the batched tangent code of slow (model.py:12)"
    derivative = DerivativeCompiler.__new__(DerivativeCompiler)
    derivative.parsed = FakeCompiler.parsed
    assert label(derivative, "primal") == "the gradient of slow (model.py:12)"
    assert label(derivative, "forward") == "the tangent code of the gradient of slow (model.py:12)"
    tangent = TangentCompiler.__new__(TangentCompiler)
    tangent.parsed = FakeCompiler.parsed
    assert label(tangent, "reverse") == "the gradient of the tangent map of slow (model.py:12)"
    assert progress._label(FakeCompiler(), "reverse", (0, 1), detail=True) == \
        "the gradient of slow (model.py:12, reverse mode, wrt (0, 1))"


def test_quick_compilations_are_silent(quick_threshold, monkeypatch, capsys):
    monkeypatch.setattr(progress, "THRESHOLD", 1.0)
    sleeping(0.1)(FakeCompiler(), "forward", (), ())
    assert capsys.readouterr().err == ""


def test_progress_off_by_setting(quick_threshold, monkeypatch, capsys):
    slow = sleeping(0.15)
    for value in ("0", "off", "false"):
        monkeypatch.setenv("DIFFPROG_PROGRESS", value)
        slow(FakeCompiler(), "forward", (), ())
        assert capsys.readouterr().err == ""
    monkeypatch.delenv("DIFFPROG_PROGRESS")
    dp.set_progress(False)
    try:
        slow(FakeCompiler(), "forward", (), ())
        assert capsys.readouterr().err == ""
        dp.set_progress(True)
        monkeypatch.setenv("DIFFPROG_PROGRESS", "0")  # the call wins over the environment
        slow(FakeCompiler(), "forward", (), ())
        assert "compiled the tangent code of slow" in capsys.readouterr().err
    finally:
        dp.set_progress(None)
    slow(FakeCompiler(), "forward", (), ())  # back to the environment's 0
    assert capsys.readouterr().err == ""


class FakeTerminal:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return True


def test_terminal_shows_a_live_line_replaced_by_the_result(quick_threshold, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    sleeping(0.3)(FakeCompiler(), "reverse", (0,), (1.0,))
    text = terminal.text
    assert text.count("\n") == 1 and text.endswith("\n"), repr(text)  # one line in the end
    updates = text.split("\r")[1:]
    assert len(updates) >= 3, repr(text)  # the opening line, at least one update of the seconds, the result
    assert updates[0].rstrip() == "diffprog: compiling the gradient of slow (model.py:12) ..."
    assert all(u.startswith("diffprog: compiling the gradient of slow (model.py:12) ... ") and u.rstrip().endswith(" s")
               for u in updates[1:-1]), repr(text)
    final = updates[-1]
    assert final.startswith("diffprog: compiled the gradient of slow (model.py:12) in 0.")
    assert len(final.rstrip("\n")) >= max(len(u) for u in updates[:-1])  # blanks what the live line showed


def test_terminal_failure_line(quick_threshold, monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    @progress.reported
    def specialize(compiler, mode, wrt, args):
        time.sleep(0.15)
        raise dp.DifferentiabilityError([])

    with pytest.raises(dp.DifferentiabilityError):
        specialize(FakeCompiler(), "primal", (), ())
    assert terminal.text.split("\r")[-1].startswith("diffprog: compiling the primal of slow (model.py:12) failed after 0.")


def test_nested_compilations_report_once(quick_threshold, capsys):
    inner = sleeping(0.1, "inner")

    @progress.reported
    def outer(compiler, mode, wrt, args):
        time.sleep(0.1)
        return inner(compiler, "reverse", (0,), args)  # a derivative compiling its inner function

    assert outer(FakeCompiler(), "forward", (0,), (1.0,)) == "inner"
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "compiling the tangent code of slow" in lines[0], lines
    assert "compiled the tangent code of slow" in lines[1]


def test_notebook_uses_one_updated_display(quick_threshold, monkeypatch, capsys):
    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(("update", obj["text/plain"]))

    def display(obj, raw=False, display_id=False):
        assert raw and display_id
        shown.append(("display", obj["text/plain"]))
        return Handle()

    monkeypatch.setattr(progress, "_notebook_display", lambda: display)
    sleeping(0.2)(FakeCompiler(), "reverse", (0,), (1.0,))
    assert capsys.readouterr().err == ""
    assert [kind for kind, _ in shown].count("display") == 1 and shown[0][0] == "display"
    assert shown[-1][1].startswith("diffprog: compiled the gradient of slow (model.py:12) in 0."), shown


def test_not_a_notebook_without_a_kernel(monkeypatch):
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    assert progress._notebook_display() is None  # and IPython is not imported for it
    assert "IPython" not in sys.modules


def test_verbose_adds_the_detail(quick_threshold, monkeypatch, capsys):
    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")
    monkeypatch.setenv("DIFFPROG_PROGRESS", "0")  # verbose reports anyway
    monkeypatch.setattr(progress, "THRESHOLD", 5.0)
    monkeypatch.setattr(progress, "VERBOSE_THRESHOLD", 0.05)  # verbose lowers the threshold
    assert sleeping(0.15)(FakeCompiler(), "reverse", (0,), (1.0,)) == "spec"
    err = capsys.readouterr().err
    assert "diffprog: compiling the gradient of slow (model.py:12, reverse mode, wrt (0,)) ..." in err
    assert "diffprog: compiled the gradient of slow (model.py:12, reverse mode, wrt (0,)) in 0." in err


def test_verbose_failure_is_reported_and_raised(quick_threshold, monkeypatch, capsys):
    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")

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
    err = capsys.readouterr().err
    assert "compiled the gradient of square (test_show.py:" in err and "reverse mode" in err


def square(x):
    return x * x
