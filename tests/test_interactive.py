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
    # the cell as IPython's own tracebacks name it (run_cell without history: every cell is In[1])
    assert "Cell In[1], line 2, column 12: error DP102" in out, out
    assert "<ipython-input-" not in out, out


def test_a_cell_name_needs_ipython_running(monkeypatch):
    """Without IPython imported, a cell-like file name stays as it is (and IPython is not imported for it)."""
    monkeypatch.delitem(sys.modules, "IPython", raising=False)
    origin = dp.errors.Origin("/tmp/ipykernel_4242/1234567890.py", 4, 10)
    assert origin.shown() == "/tmp/ipykernel_4242/1234567890.py:4:11" and "IPython" not in sys.modules


NOTEBOOK_CELLS = [
    "import math\nimport diffprog as dp",
    "def f(x):\n    return math.sin(x) * x\nprint('gradient', dp.grad(f)(1.0))",
    "@dp.differentiable\ndef bad(x):\n    y = x * 2.0\n    try:\n        return y\n    except ValueError:\n"
    "        return 0.0",
    "def helper(x):\n    return math.lgamma(x)\n\ndef uses(x):\n    return helper(x) * x\n\ndp.grad(uses)(1.5)",
    "from diffprog import progress\nprogress.THRESHOLD = 0.0\ndp.set_progress(True)  # the suite turns it off\n\n"
    "def cube(x):\n    return x * x * x\n"
    "print('slope', dp.grad(cube)(2.0))",
]


def test_a_jupyter_kernel_shows_the_cell(tmp_path):
    """A real notebook run by a kernel (nbclient, ipykernel): diagnostics name the cell, `Cell In[3], line 4`,
    not the kernel's temporary file, and show no traceback."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()

    def text(cell):
        parts = []
        for output in cell.outputs:
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type == "error":
                parts.append("\n".join(output.traceback))
            elif "text/plain" in output.get("data", {}):
                parts.append(output.data["text/plain"])
        return "\n".join(parts)

    cells = notebook.cells
    assert f"gradient {math.sin(1.0) + math.cos(1.0)}" in text(cells[1]), text(cells[1])
    decorated = text(cells[2])
    assert "Cell In[3], line 4, column 5: error DP101: try/except cannot be differentiated" in decorated, decorated
    assert "ipykernel_" not in decorated and "Traceback" not in decorated and "diffprog/" not in decorated
    called = text(cells[3])
    assert "Cell In[4], line 2, column 12: error DP102" in called, called
    assert "note: 'helper' is called from 'uses' at Cell In[4], line 5, column 12" in called, called
    assert "ipykernel_" not in called
    progress = cells[4].outputs  # a long compilation: one line of the cell's output, updated in place
    assert [o.output_type for o in progress] == ["display_data", "stream"], progress
    assert progress[0].data["text/plain"].startswith("diffprog: compiled the gradient of cube (") and \
        progress[1].text == "slope 12.0\n", progress
