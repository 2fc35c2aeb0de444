"""Jupyter/IPython and the plain REPL: functions defined in cells work (IPython keeps their source in linecache);
a DifferentiabilityError renders as its diagnostics, without diffprog's internal frames; without any source (the
plain REPL, exec of a string) the error is DP109 with its fix."""
import linecache
import math
import subprocess
import sys
import textwrap

import pytest

import diffprog as dp


def _cell(source, filename):
    """What IPython does with a cell: its source registered in linecache (no file on disk), then compiled under
    that filename and run."""
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {"__name__": "__main__", "dp": dp, "math": math}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def test_function_defined_in_a_cell_is_differentiated():
    ns = _cell("def f(x):\n    y = math.sin(x)\n    return y * x\n", "<ipython-input-3-5c1d2a8b9e0f>")
    assert dp.grad(ns["f"])(1.0) == pytest.approx(math.sin(1.0) + math.cos(1.0))
    ns = _cell("@dp.differentiable\ndef g(x):\n    return x ** 3\n", "/tmp/ipykernel_4242/1234567890.py")
    assert dp.grad(ns["g"])(2.0) == pytest.approx(12.0)
    assert "g_reverse" in dp.source(ns["g"], "reverse")


def test_error_in_a_cell_points_at_the_cell_line():
    ns = _cell("def h(x):\n    try:\n        return x\n    except ValueError:\n        return 0.0\n",
               "<ipython-input-4-0a1b2c3d4e5f>")
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.grad(ns["h"])(1.0)
    [d] = info.value.diagnostics
    assert d.code == "DP101" and d.file == "<ipython-input-4-0a1b2c3d4e5f>" and d.line == 2


def test_render_traceback_shows_the_diagnostics_only():
    ns = _cell("import math\ndef k(x):\n    return math.lgamma(x) * x\n", "<ipython-input-5-aaaabbbbcccc>")
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.grad(ns["k"])(1.5)
    lines = info.value._render_traceback_()
    assert isinstance(lines, list) and all(isinstance(line, str) for line in lines)
    text = "\n".join(lines)
    assert text.startswith("DifferentiabilityError: cannot differentiate: 1 problem found")
    assert "<ipython-input-5-aaaabbbbcccc>:3:12: error DP102" in text
    assert "return math.lgamma(x) * x" in text and "fix: register one with @diffprog.derivative" in text
    assert "Traceback" not in text and "diffprog/" not in text  # no internal frames
    assert dp.CompilationError([])._render_traceback_()[0].startswith("CompilationError:")


def test_plain_repl_without_source_is_dp109_with_its_fix():
    namespace = {}
    exec(compile("def f(x):\n    return x * x\n", "<stdin>", "exec"), namespace)
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.grad(namespace["f"])(1.0)
    [d] = info.value.diagnostics
    assert d.code == "DP109" and "define the function in a .py file" in d.hint
    assert "DP109" in "\n".join(info.value._render_traceback_())


def test_real_ipython_shows_no_internal_frames(tmp_path):
    pytest.importorskip("IPython")
    script = textwrap.dedent('''
        from IPython.core.interactiveshell import InteractiveShell
        shell = InteractiveShell.instance(colors="NoColor")
        shell.run_cell("import diffprog as dp, math")
        shell.run_cell("def f(x):\\n    return math.sin(x) * x\\n")
        shell.run_cell("print('gradient', dp.grad(f)(1.0))")
        shell.run_cell("def bad(x):\\n    return math.lgamma(x) * x\\n")
        shell.run_cell("dp.grad(bad)(1.5)")
        ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    out = done.stdout + done.stderr
    assert f"gradient {math.sin(1.0) + math.cos(1.0)}" in out, out
    assert "DifferentiabilityError: cannot differentiate: 1 problem found" in out, out
    assert "error DP102" in out and "fix: register one" in out
    assert "Traceback" not in out and "site-packages" not in out and "diffprog/api/" not in out, out
