"""Minimized failures found by the randomized differential tests (tests/test_random_programs.py).

Each test is a plain reproducer. A test marked xfail(strict=True) is an open compiler bug: when it is fixed the
test starts passing, strict xfail turns that into a failure, and the marker (and the matching entry of
KNOWN_BUGS in tests/test_random_programs.py, which keeps the fuzzer from re-finding the same bug) is removed.
"""
from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest

import diffprog as dp
from reference import write_module

HEADER = "import math\nfrom dataclasses import dataclass\n\nimport numpy as np\n\nimport diffprog as dp\n\n"


def module(body):
    m, _ = write_module(HEADER + textwrap.dedent(body), "regression")
    return m


def close(a, b, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=rtol,
                               atol=atol)


# ---- functions with equal bytecode in two modules share one parse ---------------------------------------------
# diffprog/frontend/source.py caches parses by `fn.__code__`; code objects compare by value and ignore
# co_filename and globals, so `f` below in the second module reuses the first module's parse -- including what
# its free name `h` resolved to. The fuzzer hit this as a wrong *primal* (the quaternion programs as a spurious
# DP101 "'q' holds a Quat here but a Quat elsewhere": Quat's methods resolved `Quat` to the first module's class).
SAME_F = """
def h(x):
    return x * {k}


def f(x):
    return h(x)
"""


@pytest.mark.parametrize("jit", [False, True])
def test_equal_bytecode_in_two_modules_uses_its_own_callee(jit):
    first = module(SAME_F.format(k="2.0"))
    second = module(SAME_F.format(k="3.0"))
    assert dp.differentiable(first.f, jit=jit)(1.0) == 2.0
    assert dp.differentiable(second.f, jit=jit)(1.0) == 3.0
    assert dp.grad(dp.differentiable(second.f, jit=jit))(1.0) == 3.0


def test_reloaded_module_with_edited_helper(tmp_path):
    path = tmp_path / "dp_regression_reload.py"
    path.write_text(HEADER + SAME_F.format(k="2.0"))
    sys.path.insert(0, str(tmp_path))
    try:
        mod = importlib.import_module("dp_regression_reload")
        assert dp.grad(dp.differentiable(mod.f))(1.0) == 2.0
        path.write_text(HEADER + SAME_F.format(k="5.0"))
        importlib.invalidate_caches()
        mod = importlib.reload(mod)
        assert mod.f(1.0) == 5.0
        assert dp.grad(dp.differentiable(mod.f))(1.0) == 5.0
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dp_regression_reload", None)


QUAT = """
@dp.differentiable_type
@dataclass(frozen=True)
class Quat:
    w: float
    x: float
    y: float
    z: float

    def conj(self):
        return Quat(self.w, -self.x, -self.y, -self.z)


def f(x):
    q = Quat(x, {c}, 1.0, 2.0)
    q = q.conj()
    q = q.conj()
    return q.w * q.x
"""


def test_same_differentiable_type_defined_in_two_modules():
    for c in (0.5, 0.25):  # the two f differ (a constant), their Quat.conj do not
        m = module(QUAT.format(c=c))
        assert dp.differentiable(m.f, jit=False)(2.0) == 2.0 * c
        assert dp.grad(dp.differentiable(m.f, jit=False))(2.0) == c


# ---- array adjoints initialised from arrays that were never assigned -------------------------------------------
# The backward sweep starts with `b_adj = np.zeros(b.shape)` for every array temporary b, also when the forward
# sweep never assigned b (an early return before it, an if-branch not taken, a loop with no iterations): with
# jit=False that raises UnboundLocalError; compiled, numba reads an unassigned array (it happens to give the right
# answer in these cases).
def _both(m, args, expected, cotangent=1.0):
    for jit in (True, False):
        _, pullback = dp.vjp(dp.differentiable(m.f, jit=jit), *args)
        got = pullback(cotangent)
        for g, e in zip(got, expected):
            if e is not None:
                close(g, e)


def test_array_adjoint_of_unassigned_temporary_after_early_return():
    m = module("""
        def f(x, a):
            if x > 0.0:
                return x
            b = a * x
            return np.sum(b)
        """)
    a = np.array([1.0, 2.0])
    _both(m, (-1.0, a), (3.0, [-1.0, -1.0]))
    _both(m, (1.0, a), (1.0, [0.0, 0.0]))


def test_array_adjoint_of_unassigned_temporary_in_branch_not_taken():
    m = module("""
        def f(x, a):
            if x > 0.0:
                x = np.sum(a * x)
            return x
        """)
    a = np.array([1.0, 2.0])
    _both(m, (2.0, a), (3.0, [2.0, 2.0]))
    _both(m, (-1.0, a), (1.0, [0.0, 0.0]))


def test_array_adjoint_of_early_returned_array_result():
    m = module("""
        def f(x, a):
            if x < 0.0:
                return a * 1.0
            return a * a
        """)
    a = np.array([1.0, 2.0])
    _both(m, (1.0, a), (0.0, [2.0, 4.0]), np.ones(2))
    _both(m, (-1.0, a), (0.0, [1.0, 1.0]), np.ones(2))


# ---- a tape written past its reserved length -------------------------------------------------------------------
# A `while` with an active condition inside a `for`, followed by tuple assignments: the reverse sweep writes
# tape_x0[16] of a 16-long tape. jit=False raises IndexError; compiled, numba does not check bounds, so the write
# lands outside the array (memory corruption; the gradient happened to be right here).
TAPE = """
def f(x0, a0, x2, x1):
    v4 = x0
    x2 -= x2
    for i5 in range(a0.shape[0]):
        j6 = 0
        while j6 < 4 and x0 < 0.5:
            x0 = x2
            j6 += 1
        x1, x0 = x1 - x2 * x1, x2
        x0, x2 = x0, x1 - x0 * v4
    return x0
"""


def test_tape_overflow_while_inside_for():
    m = module(TAPE)
    args = (0.0, np.array([0.25, 0.0, -1.8]), 1.0, 0.0)
    assert m.f(*args) == 0.0
    # central differences give d/dx0 = 0, d/dx2 = 0, d/dx1 = 1 (and 0 for a0): x0 ends as x1 - x2 * x1 with x2 == 0
    expected = (0.0, [0.0, 0.0, 0.0], 0.0, 1.0)
    for jit in (False, True):
        _, pullback = dp.vjp(dp.differentiable(m.f, jit=jit), *args)
        for g, e in zip(pullback(1.0), expected):
            close(g, e)


# ---- a value assigned only on paths numba sees as possible ------------------------------------------------------
# A `return` inside a loop over a constant empty range: the loop's condition is a constant numba folds, and it then
# rejected `result` (assigned in the loop and after it) as undefined ("Unsupported assignment encountered:
# Undefined", DP301), in the primal and in every derivative. Found by the fuzzer; every number and array a path
# may read before assigning now gets a first value (normalize/cleanup.py, initialize_unassigned).
RETURN_IN_EMPTY_LOOP = """
def f(x0, a0, x1):
    for k in range(2, 2):
        if (-2.0 * k) >= (0.5 - x1):
            return x0 + 0.5 * np.sum(a0)
        x1 = x0
    return x1 * x0 + np.sum(a0 * a0)
"""


def test_return_inside_a_loop_that_never_runs_compiles():
    f = dp.differentiable(module(RETURN_IN_EMPTY_LOOP).f)
    a0 = np.array([0.5, -2.0])
    close(f(0.3, a0, 1.5), 0.45 + 4.25)
    gradient = dp.grad(f, (0, 1, 2))(0.3, a0, 1.5)
    close(gradient[0], 1.5)
    close(gradient[1], 2.0 * a0)
    close(gradient[2], 0.3)
    close(dp.jvp(f, (0.3, a0, 1.5), (1.0, np.ones(2), 1.0))[1], 1.5 + 2.0 * np.sum(a0) + 0.3)
