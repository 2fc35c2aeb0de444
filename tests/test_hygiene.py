"""Hygiene (issue 7): generated names never collide with the user's, and `diffprog check` never runs the code it
checks.

Names: user variables and parameters named like what the generator makes (`x_adj`, `tape_x`, `tape_x_len`,
`_t0`, `seed`, `value`, `trip`, `k`, numbered temporaries such as `sin_1`, an inlined helper's prefixed locals),
like the generated module's globals (`np`, `math`, `numba`, `tape_reserve`) and like builtins the generated code
calls (`range`, `len`, `abs`, `min`, `max`, `float`, `int`), as locals where Python allows it, and a module-level
function shadowing a builtin. Each gradient (reverse mode, and forward mode for some) is compared with central
finite differences of the plain Python function, and the value with the plain Python function.

Checking: `diffprog check` run as a command (a separate process, as a user or a pre-commit hook runs it) on a
package whose `__init__`, modules, decorators, default values and `if __name__ == "__main__"` block would each
write a marker file if executed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import diffprog as dp
from reference import write_module

HEADER = "import math\nimport numpy as np\n\n"


def central_difference(f, args, k, h=1e-6):
    """d f / d args[k] (a float, or an array for an array argument), by central differences."""
    x = args[k]
    if isinstance(x, np.ndarray):
        out = np.zeros(x.shape)
        for index in np.ndindex(*x.shape):
            plus, minus = x.copy(), x.copy()
            plus[index] += h
            minus[index] -= h
            out[index] = (f(*args[:k], plus, *args[k + 1:]) - f(*args[:k], minus, *args[k + 1:])) / (2 * h)
        return out
    return (f(*args[:k], x + h, *args[k + 1:]) - f(*args[:k], x - h, *args[k + 1:])) / (2 * h)


def check_gradients(fn, args, argnums, forward=False):
    """Value vs plain Python; reverse-mode gradient (and forward mode along each argument) vs finite differences."""
    f = dp.differentiable(fn)
    np.testing.assert_allclose(f(*args), fn(*args), rtol=1e-12)
    gradients = dp.grad(f, argnums)(*args)
    for k, g in zip(argnums, gradients):
        np.testing.assert_allclose(g, central_difference(fn, args, k), rtol=1e-6, atol=1e-8,
                                   err_msg=f"d/d argument {k}")
    if forward:
        for k, g in zip(argnums, gradients):
            tangents = tuple((1.0 if j == k else 0.0) if isinstance(a, float) else None for j, a in enumerate(args))
            np.testing.assert_allclose(dp.jvp(f, args, tangents)[1], g, rtol=1e-10, atol=1e-12)
    return f


# ---- generated names ----------------------------------------------------------------------------------------------
GENERATED_NAMES = HEADER + '''
def helper(t, u):
    helper_t = t * u          # an inlined helper's locals are prefixed with its name: helper_t
    return helper_t + math.sin(t)


def f(x, y, n):
    x_adj = x * y             # x's adjoint is x_adj
    tape_x = 0.0              # x's tape
    tape_x_len = 1.0          # and its length
    _t0 = y
    seed = 0.5 * x            # the adjoint's seed parameter
    value = 0.0               # the saved result
    trip = 0.0                # a loop's trip count
    k = 0.0                   # the backward loop's counter
    sin_1 = y                 # numbered temporaries
    mul_2 = 0.25
    helper_t = y * y          # helper's inlined local
    for i in range(n):
        tape_x = tape_x + math.sin(x_adj) * tape_x_len
        tape_x_len = tape_x_len * 0.9 + _t0 * 0.1
        x = x * 0.8 + 0.1 * math.cos(tape_x)
        seed = seed * x
        value = value + seed * (k + 1.0)
        trip = trip + 1.0
        k = k + 0.5
        _t0 = _t0 * math.sin(x) + sin_1 * mul_2
        sin_1 = math.sin(sin_1 + x)
        helper_t = helper(helper_t, x) * 0.5
    return value + tape_x + x_adj * x + _t0 + trip * seed + sin_1 + helper_t
'''


def test_user_variables_named_like_generated_ones():
    m, _ = write_module(GENERATED_NAMES, "generated_names")
    f = check_gradients(m.f, (0.7, 1.3, 4), (0, 1), forward=True)
    source = dp.source(f, mode="reverse", args=(0.7, 1.3, 4), argnums=(0, 1))
    assert "x_adj" in source and "tape_x" in source  # the user's names are kept where they are free


PARAMETERS = HEADER + '''
def f(x, x_adj, seed, value, tape_x):
    for i in range(3):
        x = math.sin(x) * x_adj + seed * value
        value = value * tape_x + x
    return x * value + seed
'''


def test_parameters_named_like_generated_ones():
    """The adjoint's own parameter `seed` and results `value`, `x_adj` beside user parameters of those names."""
    m, _ = write_module(PARAMETERS, "parameters")
    check_gradients(m.f, (0.4, 1.1, 0.3, 0.9, 0.5), (0, 1, 2, 3, 4))


GLOBALS = '''
import math as m
import numpy


def f(x, a):
    np = 2.0                                  # the generated module's name for numpy
    math = x * np                             # and for math
    numba = numpy.sum(a * a) * x              # typed-list tapes are numba.typed.List
    tape_reserve = numpy.sum(numpy.sin(a) * math)
    unbroadcast = a * x + 1.0
    for i in range(a.shape[0]):
        math = math * m.cos(a[i] * x) + numba * 0.1
    return math * numba + m.sin(x) + tape_reserve + numpy.sum(unbroadcast * unbroadcast)
'''


def test_locals_named_like_the_generated_modules_globals():
    m, _ = write_module(GLOBALS, "globals")
    check_gradients(m.f, (0.6, np.array([0.3, -0.2, 0.8])), (0, 1))


BUILTINS = HEADER + '''
def loops_and_builtins(x, n):
    abs = x * 2.0                             # locals shadowing builtins the generated code calls
    len = 3.0
    max = x
    min = 0.5
    sum = 0.0
    for i in range(n):
        sum = sum + abs * len + max * x * min
        max = max * 0.5 + math.sin(sum)
    return sum


def no_range_here(x, n):
    range = x * x                             # `range` and `len` are locals: this function loops with while
    float = 2.0
    int = 3.0
    bool = x
    j = 0
    while j < n:
        bool = bool * 0.5 + range * math.cos(bool)
        j += 1
    return bool * float + int
'''


@pytest.mark.parametrize("name", ["loops_and_builtins", "no_range_here"])
def test_locals_shadowing_builtins(name):
    m, _ = write_module(BUILTINS, "builtins")
    check_gradients(getattr(m, name), (0.8, 5), (0,), forward=True)


MODULE_LEVEL_BUILTIN = HEADER + '''
def abs(x):                                   # the user's abs, not the builtin
    return x * x


def max(a, b):
    return a + b


def f(x, y):
    s = 0.0
    for i in range(3):
        s = s + abs(x - y) + max(x, y * s)
    return s
'''


def test_module_level_functions_shadowing_builtins_are_the_users():
    """(check_gradients compares the value with the plain function, which calls the user's abs and max.)"""
    m, _ = write_module(MODULE_LEVEL_BUILTIN, "module_builtins")
    check_gradients(m.f, (0.3, 1.7), (0, 1))


# ---- diffprog check runs nothing --------------------------------------------------------------------------------
def write(path: Path, text: str):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_check_command_never_imports_or_runs_the_checked_code(tmp_path):
    marker = tmp_path / "markers"
    marker.mkdir()
    touch = f"open({str(marker)!r} + '/' + __name__ + '-{{}}', 'w').close()"
    project = tmp_path / "project"
    write(project / "pkg" / "__init__.py", f"""
        {touch.format('init')}
        from .model import loss
        """)
    write(project / "pkg" / "helpers.py", f"""
        import math
        {touch.format('module')}
        SCALE = 2.0


        def shape(x):
            return math.sin(x) * SCALE
        """)
    write(project / "pkg" / "model.py", f"""
        import math
        import diffprog as dp
        from . import helpers
        from .helpers import shape
        {touch.format('module')}


        def side_effect(f):
            {touch.format('decorator')}
            return f


        def default():
            {touch.format('default')}
            return 1.0


        @side_effect
        @dp.differentiable
        def loss(x, w=default()):
            return shape(x) * w + helpers.SCALE * x


        class Model:
            {touch.format('class-body')}

            def energy(self, x):
                return loss(x) ** 2


        g = dp.grad(loss)
        g(1.0)
        if __name__ == "__main__":
            {touch.format('main')}
        """)
    write(project / "run_me.py", f"""
        {touch.format('script')}
        import pkg
        print(pkg.loss(1.0))
        if __name__ == "__main__":
            {touch.format('main')}
        """)
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    for args in (["check", "."], ["check", "--all-functions", "pkg", "run_me.py"], ["check", "pkg/model.py"]):
        result = subprocess.run([sys.executable, "-m", "diffprog", *args], cwd=project, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode in (0, 1), (args, result.stdout, result.stderr)
        assert "DP002" not in result.stdout and "Traceback" not in result.stderr, (result.stdout, result.stderr)
        assert list(marker.iterdir()) == [], (args, sorted(p.name for p in marker.iterdir()))
    # the markers do work: importing the package writes them
    subprocess.run([sys.executable, "-c", "import pkg"], cwd=project, env=env, capture_output=True, timeout=300)
    assert {p.name for p in marker.iterdir()} >= {"pkg-init", "pkg.model-module", "pkg.helpers-module"}
