"""Numerical edge cases (issue 7): the conventions documented in docs/numerics.md, for both the compiled code and
the generated code run uncompiled (`jit=False`), in reverse mode and (for ties and kinks) forward mode.

* kinks and ties: abs at 0 has derivative 0 (also at -0.0); max/min at a tie send the whole derivative to the
  first argument (the one Python returns); np.maximum/np.minimum likewise, elementwise; the np.max/np.min
  reductions split it equally among the tied entries;
* infinite slopes: the derivative of sqrt at 0 is +inf, of log at 0 is +inf (as numpy's np.sqrt, np.log and
  x ** 0.5 give); np.linalg.norm at the zero vector has a NaN gradient (0 / 0);
* NaN and inf: a gradient is what the chain rule gives on the operations the primal executed, evaluated in IEEE
  arithmetic, so a NaN in the primal reaches every gradient entry whose partial derivatives involve it and never
  becomes a finite wrong value; a branch on a NaN comparison follows the primal (the derivative of the path
  taken).

Every convention below holds, compiled and uncompiled (docs/numerics.md).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import diffprog as dp

NAN, INF = math.nan, math.inf
pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy, uncompiled: "divide by zero", "invalid value"
JIT = pytest.mark.parametrize("jit", [True, False], ids=["compiled", "uncompiled"])


def grad(fn, argnums, *args, jit=True):
    f = dp.differentiable(fn, jit=jit) if not jit else fn
    return dp.grad(f, argnums)(*args)


def tangent(fn, args, tangents, jit=True):
    f = dp.differentiable(fn, jit=jit) if not jit else fn
    return dp.jvp(f, args, tangents)[1]


def same(actual, expected):
    """Equal, with NaN equal to NaN and the sign of infinities checked."""
    np.testing.assert_array_equal(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64))


# ---- the functions ----------------------------------------------------------------------------------------------
def f_abs(x):
    return abs(x)


def f_fabs(x):
    return math.fabs(x)


def f_max(a, b):
    return max(a, b)


def f_min(a, b):
    return min(a, b)


def f_sqrt(x):
    return math.sqrt(x)


def f_half_power(x):
    return x ** 0.5


def f_log(x):
    return math.log(x)


def f_mul(x, y):
    return x * y


def f_exp(x):
    return math.exp(x)


def f_sin(x):
    return math.sin(x)


def f_pow(x, y):
    return x ** y


def f_hypot(x, y):
    return math.hypot(x, y)


def f_atan2(y, x):
    return math.atan2(y, x)


def f_branch(x):
    if x > 0.0:
        return 2.0 * x
    return 3.0 * x


def f_relu(x):
    return x if x > 0.0 else 0.0


def f_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(s + x) * x
    return s


def v_abs(a):
    return np.sum(np.abs(a))


def v_sqrt(a):
    return np.sum(np.sqrt(a))


def v_log(a):
    return np.sum(np.log(a))


def v_maximum(a, b):
    return np.sum(np.maximum(a, b))


def v_minimum(a, b):
    return np.sum(np.minimum(a, b))


def v_max(a):
    return np.max(a)


def v_min(a):
    return np.min(a)


def v_norm(a):
    return np.linalg.norm(a)


def v_exp(a):
    return np.sum(np.exp(a) * a)


# ---- kinks and ties -----------------------------------------------------------------------------------------------
@JIT
@pytest.mark.parametrize("fn", [f_abs, f_fabs], ids=["abs", "fabs"])
@pytest.mark.parametrize("x", [0.0, -0.0], ids=["+0", "-0"])
def test_abs_at_zero_has_derivative_zero(fn, x, jit):
    same(grad(fn, 0, x, jit=jit), 0.0)
    same(tangent(fn, (x,), (1.0,), jit=jit), 0.0)


@JIT
def test_abs_away_from_zero_is_the_sign(jit):
    assert grad(f_abs, 0, -2.0, jit=jit) == -1.0 and grad(f_abs, 0, 3.0, jit=jit) == 1.0


@JIT
@pytest.mark.parametrize("fn", [f_max, f_min], ids=["max", "min"])
def test_max_and_min_at_a_tie_give_the_derivative_to_the_first_argument(fn, jit):
    same(grad(fn, (0, 1), 1.5, 1.5, jit=jit), (1.0, 0.0))
    same(tangent(fn, (1.5, 1.5), (1.0, 0.0), jit=jit), 1.0)
    same(tangent(fn, (1.5, 1.5), (0.0, 1.0), jit=jit), 0.0)


@JIT
@pytest.mark.parametrize("fn", [v_maximum, v_minimum], ids=["maximum", "minimum"])
def test_elementwise_maximum_and_minimum_at_ties_follow_the_first_argument(fn, jit):
    a, b = np.array([1.0, 2.0, -1.0]), np.array([1.0, 1.0, 0.0])
    ga, gb = grad(fn, (0, 1), a, b, jit=jit)
    same(ga[0], 1.0)
    same(gb[0], 0.0)
    same(ga + gb, np.ones(3))  # each element's derivative goes to exactly one side


@JIT
@pytest.mark.parametrize("fn", [v_max, v_min], ids=["max", "min"])
def test_max_and_min_reductions_split_ties_equally(fn, jit):
    a = np.array([1.0, 1.0, 1.0]) if fn is v_max else np.array([-1.0, -1.0, -1.0])
    a[2] = 0.0
    same(grad(fn, 0, a, jit=jit), [0.5, 0.5, 0.0])


@JIT
def test_abs_elementwise_at_zero(jit):
    same(grad(v_abs, 0, np.array([0.0, -0.0, -2.0, 3.0]), jit=jit), [0.0, 0.0, -1.0, 1.0])


# ---- infinite slopes ----------------------------------------------------------------------------------------------
@JIT
def test_sqrt_at_zero_elementwise_and_as_a_power_is_plus_infinity(jit):
    same(grad(v_sqrt, 0, np.array([0.0, 4.0]), jit=jit), [INF, 0.25])
    same(grad(f_half_power, 0, 0.0, jit=jit), INF)


@JIT
def test_log_at_zero_elementwise_is_plus_infinity(jit):
    same(grad(v_log, 0, np.array([0.0, 2.0]), jit=jit), [INF, 0.5])


@JIT
def test_math_sqrt_at_zero_is_plus_infinity(jit):
    same(grad(f_sqrt, 0, 0.0, jit=jit), INF)


def test_math_log_at_zero_is_plus_infinity():
    # compiled only: uncompiled, Python's math.log(0.0) raises ValueError in the primal already
    same(grad(f_log, 0, 0.0), INF)


@JIT
def test_norm_at_the_zero_vector_has_a_nan_gradient(jit):
    assert np.isnan(grad(v_norm, 0, np.zeros(2), jit=jit)).all()


@JIT
@pytest.mark.parametrize("fn", [f_hypot, f_atan2], ids=["hypot", "atan2"])
def test_hypot_and_atan2_at_the_origin_have_nan_gradients(fn, jit):
    same(grad(fn, (0, 1), 0.0, 0.0, jit=jit), (NAN, NAN))


# ---- NaN and inf ------------------------------------------------------------------------------------------------
@JIT
@pytest.mark.parametrize("fn", [f_exp, f_sin, f_sqrt, f_log, f_half_power], ids=["exp", "sin", "sqrt", "log", "pow"])
def test_nan_argument_gives_nan_derivative(fn, jit):
    same(grad(fn, 0, NAN, jit=jit), NAN)
    same(tangent(fn, (NAN,), (1.0,), jit=jit), NAN)


@JIT
def test_nan_reaches_exactly_the_partials_that_involve_it(jit):
    same(grad(f_mul, (0, 1), NAN, 2.0, jit=jit), (2.0, NAN))  # d(xy)/dx = y, d(xy)/dy = x
    same(grad(f_mul, (0, 1), INF, 0.0, jit=jit), (0.0, INF))


@JIT
def test_infinity_propagates(jit):
    same(grad(f_exp, 0, INF, jit=jit), INF)
    same(grad(f_exp, 0, -INF, jit=jit), 0.0)


@JIT
def test_nan_through_a_loop(jit):
    same(grad(f_loop, 0, NAN, 4, jit=jit), NAN)


@JIT
def test_a_branch_on_nan_follows_the_primal(jit):
    # `nan > 0.0` is False: the primal returns 3 * x, and the derivative is that of the path taken
    same(grad(f_branch, 0, NAN, jit=jit), 3.0)
    assert f_relu(NAN) == 0.0
    same(grad(f_relu, 0, NAN, jit=jit), 0.0)


@JIT
def test_elementwise_nan(jit):
    same(grad(v_abs, 0, np.array([NAN, 1.0]), jit=jit), [NAN, 1.0])
    same(grad(v_exp, 0, np.array([NAN, 0.0]), jit=jit), [NAN, 1.0])


@JIT
@pytest.mark.parametrize("fn", [v_max, v_min], ids=["max", "min"])
def test_nan_in_a_max_or_min_reduction_gives_a_nan_gradient(fn, jit):
    assert np.isnan(grad(fn, 0, np.array([1.0, NAN]), jit=jit)).all()


@JIT
def test_abs_of_nan_has_a_nan_derivative(jit):
    same(grad(f_abs, 0, NAN, jit=jit), NAN)


@JIT
@pytest.mark.parametrize("fn", [f_max, f_min], ids=["max", "min"])
def test_max_and_min_with_a_nan_give_the_derivative_to_the_argument_returned(fn, jit):
    # Python's max(a, b) and min(a, b) return a unless b is strictly greater (smaller): with a NaN, a
    assert math.isnan(fn(NAN, 1.0)) and fn(1.0, NAN) == 1.0
    same(grad(fn, (0, 1), NAN, 1.0, jit=jit), (1.0, 0.0))
    same(grad(fn, (0, 1), 1.0, NAN, jit=jit), (1.0, 0.0))


@JIT
@pytest.mark.parametrize("fn", [v_maximum, v_minimum], ids=["maximum", "minimum"])
def test_elementwise_maximum_with_a_nan_gives_the_derivative_to_the_nan(fn, jit):
    ga, gb = grad(fn, (0, 1), np.array([NAN, 1.0]), np.array([1.0, NAN]), jit=jit)
    same(ga, [1.0, 0.0])
    same(gb, [0.0, 1.0])


@JIT
def test_power_with_a_nan_base_has_a_nan_exponent_derivative(jit):
    same(grad(f_pow, (0, 1), NAN, 2.0, jit=jit), (NAN, NAN))


# ---- the other infinite slopes: tested for a singular point, never a division by zero -------------------------
def f_asin(x):
    return math.asin(x)


def f_acos(x):
    return math.acos(x)


def f_acosh(x):
    return math.acosh(x)


def f_atanh(x):
    return math.atanh(x)


def f_log1p(x):
    return math.log1p(x)


def f_log2(x):
    return math.log2(x)


def f_log10(x):
    return math.log10(x)


def f_np_arcsin(x):
    return np.arcsin(x)


def f_np_arccos(x):
    return np.arccos(x)


def f_np_log1p(x):
    return np.log1p(x)


@JIT
@pytest.mark.parametrize("fn, x, slope", [
    (f_asin, 1.0, INF), (f_asin, -1.0, INF), (f_acos, 1.0, -INF), (f_acosh, 1.0, INF),
    (f_np_arcsin, 1.0, INF), (f_np_arccos, -1.0, -INF), (f_np_log1p, -1.0, INF),
], ids=["asin(1)", "asin(-1)", "acos(1)", "acosh(1)", "np.arcsin(1)", "np.arccos(-1)", "np.log1p(-1)"])
def test_infinite_slopes_at_singular_points(fn, x, slope, jit):
    with np.errstate(divide="ignore", invalid="ignore"):
        same(grad(fn, 0, x, jit=jit), slope)


@pytest.mark.parametrize("fn, x", [(f_atanh, 1.0), (f_log1p, -1.0), (f_log2, 0.0), (f_log10, 0.0)],
                         ids=["atanh(1)", "log1p(-1)", "log2(0)", "log10(0)"])
def test_infinite_slopes_where_python_math_raises_in_the_primal(fn, x):
    # compiled only: uncompiled, Python's math module raises ValueError in the primal already
    same(grad(fn, 0, x), INF)
