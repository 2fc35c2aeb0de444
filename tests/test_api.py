"""The public API surface: decorated calls run the primal, argnums shapes, value_and_grad, vjp (None for int
arguments, tuple cotangents for tuple-valued functions, array arguments), jit=False agrees with jit=True,
dp.source in both modes, and plain (undecorated) functions are accepted everywhere.
"""
import ast
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import finite_difference

finite = dict(allow_nan=False, allow_infinity=False, allow_subnormal=False)


# --------------------------------------------------------------------------------------------------------
# Functions under test (plain bodies, decorated copies)
# --------------------------------------------------------------------------------------------------------


def poly_plain(x, y):
    return 3.0 * x * x * y - y ** 3 + 2.0 * x


poly = dp.differentiable(poly_plain)
poly_nojit = dp.differentiable(jit=False)(poly_plain)


@dp.differentiable
def loop_decorated(x, n):
    s = 0.0
    for i in range(n):
        if s > 2.0:
            s = s * 0.5
        s = s + math.sin(x * i) + i
    return s


def loop_plain(x, n):
    s = 0.0
    for i in range(n):
        if s > 2.0:
            s = s * 0.5
        s = s + math.sin(x * i) + i
    return s


@dp.differentiable(jit=False)
def loop_nojit(x, n):
    s = 0.0
    for i in range(n):
        if s > 2.0:
            s = s * 0.5
        s = s + math.sin(x * i) + i
    return s


def weighted_plain(a, x):
    s = 0.0
    for i in range(len(a)):
        s = s + a[i] * x ** i
    return s


weighted = dp.differentiable(weighted_plain)


def mixed_args(x, n, y):
    s = 0.0
    for i in range(n):
        s = s + x * y ** i
    return s


def polar(r, t):
    return r * math.cos(t), r * math.sin(t)


def scaled_by_int(x, n):
    return x * n


# --------------------------------------------------------------------------------------------------------
# Calling decorated functions
# --------------------------------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(x=st.floats(-10, 10, **finite), y=st.floats(-10, 10, **finite))
def test_decorated_call_returns_primal_value(x, y):
    np.testing.assert_allclose(poly(x, y), poly_plain(x, y), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(poly_nojit(x, y), poly_plain(x, y), rtol=1e-12, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(x=st.floats(-3, 3, **finite), n=st.integers(0, 12))
def test_decorated_call_with_loops_and_int_args(x, n):
    np.testing.assert_allclose(loop_decorated(x, n), loop_plain(x, n), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(loop_nojit(x, n), loop_plain(x, n), rtol=1e-12, atol=1e-12)


def test_decorated_call_accepts_ints_for_float_parameters():
    assert poly(2, 3) == pytest.approx(poly_plain(2, 3))
    assert poly(2, 3.5) == pytest.approx(poly_plain(2, 3.5))


def test_decorated_call_with_array():
    a = np.array([1.0, -2.0, 0.5])
    assert weighted(a, 1.5) == pytest.approx(weighted_plain(a, 1.5))


# --------------------------------------------------------------------------------------------------------
# grad / argnums
# --------------------------------------------------------------------------------------------------------


def _poly_grad(x, y):
    return (6.0 * x * y + 2.0, 3.0 * x * x - 3.0 * y * y)


def test_grad_default_argnum_is_first_and_bare():
    g = dp.grad(poly)(1.5, -0.5)
    assert not isinstance(g, tuple)
    assert np.ndim(g) == 0
    assert float(g) == pytest.approx(_poly_grad(1.5, -0.5)[0])


def test_grad_int_argnums_gives_bare_gradient():
    g = dp.grad(poly, argnums=1)(1.5, -0.5)
    assert not isinstance(g, tuple)
    assert float(g) == pytest.approx(_poly_grad(1.5, -0.5)[1])


def test_grad_tuple_argnums_gives_tuple():
    g = dp.grad(poly, argnums=(0, 1))(1.5, -0.5)
    assert isinstance(g, tuple) and len(g) == 2
    np.testing.assert_allclose(g, _poly_grad(1.5, -0.5), rtol=1e-12)


def test_grad_tuple_of_length_one_gives_tuple():
    g0 = dp.grad(poly, argnums=(0,))(1.5, -0.5)
    assert isinstance(g0, tuple) and len(g0) == 1
    assert g0[0] == pytest.approx(_poly_grad(1.5, -0.5)[0])
    g1 = dp.grad(poly, argnums=(1,))(1.5, -0.5)
    assert isinstance(g1, tuple) and len(g1) == 1
    assert g1[0] == pytest.approx(_poly_grad(1.5, -0.5)[1])


def test_grad_tuple_argnums_follow_requested_order():
    g = dp.grad(poly, argnums=(1, 0))(1.5, -0.5)
    expected = _poly_grad(1.5, -0.5)
    np.testing.assert_allclose(g, (expected[1], expected[0]), rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(x=st.floats(-5, 5, **finite), y=st.floats(-5, 5, **finite))
def test_grad_of_plain_and_decorated_agree(x, y):
    plain = _GRADS.setdefault("plain", dp.grad(poly_plain, argnums=(0, 1)))
    deco = _GRADS.setdefault("deco", dp.grad(poly, argnums=(0, 1)))
    expected = _poly_grad(x, y)
    np.testing.assert_allclose(plain(x, y), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(deco(x, y), expected, rtol=1e-10, atol=1e-10)
    for k in (0, 1):
        fd, _ = finite_difference(poly_plain, (x, y), k)
        np.testing.assert_allclose(plain(x, y)[k], fd, rtol=1e-4, atol=1e-4)


_GRADS = {}


def test_grad_is_reusable_and_consistent():
    g = dp.grad(loop_decorated)
    first = [g(x, 7) for x in (0.1, 0.2, 0.3)]
    second = [g(x, 7) for x in (0.1, 0.2, 0.3)]
    assert first == second


# --------------------------------------------------------------------------------------------------------
# value_and_grad
# --------------------------------------------------------------------------------------------------------


def test_value_and_grad_int_argnums():
    value, grad = dp.value_and_grad(poly)(1.5, -0.5)
    assert value == pytest.approx(poly_plain(1.5, -0.5))
    assert not isinstance(grad, tuple)
    assert grad == pytest.approx(_poly_grad(1.5, -0.5)[0])


def test_value_and_grad_tuple_argnums():
    value, grad = dp.value_and_grad(poly_plain, argnums=(0, 1))(0.7, 2.0)
    assert value == pytest.approx(poly_plain(0.7, 2.0))
    assert isinstance(grad, tuple) and len(grad) == 2
    np.testing.assert_allclose(grad, _poly_grad(0.7, 2.0), rtol=1e-12)


def test_value_and_grad_length_one_tuple():
    value, grad = dp.value_and_grad(poly_plain, argnums=(1,))(0.7, 2.0)
    assert value == pytest.approx(poly_plain(0.7, 2.0))
    assert isinstance(grad, tuple) and len(grad) == 1
    assert grad[0] == pytest.approx(_poly_grad(0.7, 2.0)[1])


def test_value_and_grad_with_loop_and_int_arg():
    x, n = 0.4, 9
    value, grad = dp.value_and_grad(loop_decorated)(x, n)
    assert value == pytest.approx(loop_plain(x, n))
    fd, smooth = finite_difference(loop_plain, (x, n), 0)
    assert smooth
    assert grad == pytest.approx(fd, rel=1e-5)


# --------------------------------------------------------------------------------------------------------
# vjp
# --------------------------------------------------------------------------------------------------------


def test_vjp_scalar_function_with_int_argument():
    x, n, y = 1.3, 4, 0.7
    value, pullback = dp.vjp(mixed_args, x, n, y)
    assert value == pytest.approx(mixed_args(x, n, y))
    cts = pullback(1.0)
    assert isinstance(cts, tuple) and len(cts) == 3
    assert cts[1] is None
    assert cts[0] == pytest.approx(sum(y ** i for i in range(n)))
    assert cts[2] == pytest.approx(x * sum(i * y ** (i - 1) for i in range(1, n)))


def test_vjp_scales_with_cotangent_and_is_reusable():
    value, pullback = dp.vjp(poly, 1.5, -0.5)
    assert value == pytest.approx(poly_plain(1.5, -0.5))
    gx, gy = _poly_grad(1.5, -0.5)
    a = pullback(1.0)
    b = pullback(2.5)
    c = pullback(0.0)
    assert isinstance(a, tuple) and len(a) == 2
    np.testing.assert_allclose(a, (gx, gy), rtol=1e-12)
    np.testing.assert_allclose(b, (2.5 * gx, 2.5 * gy), rtol=1e-12)
    np.testing.assert_allclose(c, (0.0, 0.0), atol=0)


def test_vjp_with_array_argument():
    a = np.array([1.0, -2.0, 0.5, 3.0])
    x = 1.5
    value, pullback = dp.vjp(weighted, a, x)
    assert value == pytest.approx(weighted_plain(a, x))
    ga, gx = pullback(2.0)
    assert isinstance(ga, np.ndarray) and ga.shape == a.shape
    np.testing.assert_allclose(ga, 2.0 * x ** np.arange(4), rtol=1e-12)
    assert gx == pytest.approx(2.0 * sum(i * a[i] * x ** (i - 1) for i in range(1, 4)))


def test_vjp_tuple_valued_function_with_tuple_cotangent():
    r, t = 1.7, 0.6
    value, pullback = dp.vjp(polar, r, t)
    assert isinstance(value, tuple) and len(value) == 2
    np.testing.assert_allclose(value, polar(r, t), rtol=1e-12)
    ca, cb = 0.3, -1.1
    gr, gt = pullback((ca, cb))
    np.testing.assert_allclose(gr, ca * math.cos(t) + cb * math.sin(t), rtol=1e-12)
    np.testing.assert_allclose(gt, -ca * r * math.sin(t) + cb * r * math.cos(t), rtol=1e-12)
    # unit cotangents give the rows of the Jacobian
    np.testing.assert_allclose(pullback((1.0, 0.0)), (math.cos(t), -r * math.sin(t)), rtol=1e-12)
    np.testing.assert_allclose(pullback((0.0, 1.0)), (math.sin(t), r * math.cos(t)), rtol=1e-12)


def test_vjp_of_decorated_tuple_valued_function():
    value, pullback = dp.vjp(dp.differentiable(polar), 2.0, -0.4)
    np.testing.assert_allclose(value, polar(2.0, -0.4), rtol=1e-12)
    gr, gt = pullback((1.0, 1.0))
    np.testing.assert_allclose(gr, math.cos(-0.4) + math.sin(-0.4), rtol=1e-12)
    np.testing.assert_allclose(gt, -2.0 * math.sin(-0.4) + 2.0 * math.cos(-0.4), rtol=1e-12)


def test_vjp_int_argument_in_last_position_gives_none():
    value, pullback = dp.vjp(scaled_by_int, 1.5, 3)
    assert value == pytest.approx(4.5)
    cts = pullback(2.0)
    assert isinstance(cts, tuple) and len(cts) == 2
    assert cts[1] is None
    assert cts[0] == pytest.approx(6.0)


def test_grad_of_tuple_valued_function_points_to_vjp():
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.grad(polar)(1.0, 0.5)
    assert "vjp" in str(info.value)
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.value_and_grad(polar)(1.0, 0.5)
    assert "vjp" in str(info.value)


# --------------------------------------------------------------------------------------------------------
# jit=False agrees with jit=True
# --------------------------------------------------------------------------------------------------------


def helper_sq(t):
    return t * t + math.cos(t)


def program_branch_loop_call(x, y, n):
    s = y
    k = 0
    while k < n:
        if s > x:
            s = s - helper_sq(x) * 0.1
        else:
            s = s * 0.9 + x * y
        k += 1
    for i in range(n, 0, -2):
        if i == 3:
            continue
        s = s + math.tanh(s) * i
    return s


def program_array(a, x):
    s = 0.0
    for i in range(a.shape[0]):
        s = s + math.exp(a[i] * x) - a[-1]
    return s


_JIT_PAIRS = {}


def _pair(fn, argnums):
    key = (fn.__name__, argnums)
    if key not in _JIT_PAIRS:
        _JIT_PAIRS[key] = (
            dp.grad(dp.differentiable(fn), argnums=argnums),
            dp.grad(dp.differentiable(jit=False)(fn), argnums=argnums),
        )
    return _JIT_PAIRS[key]


@settings(max_examples=20, deadline=None)
@given(x=st.floats(-2, 2, **finite), y=st.floats(-2, 2, **finite), n=st.integers(0, 7))
def test_jit_false_matches_jit_true_scalar(x, y, n):
    jit, nojit = _pair(program_branch_loop_call, (0, 1))
    a = jit(x, y, n)
    b = nojit(x, y, n)
    assert isinstance(a, tuple) and isinstance(b, tuple)
    np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@settings(max_examples=20, deadline=None)
@given(
    a=st.lists(st.floats(-1, 1, **finite), min_size=1, max_size=6).map(np.array),
    x=st.floats(-1, 1, **finite),
)
def test_jit_false_matches_jit_true_array(a, x):
    jit, nojit = _pair(program_array, (0, 1))
    ga, gx = jit(a, x)
    ha, hx = nojit(a, x)
    np.testing.assert_allclose(ga, ha, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, hx, rtol=1e-10, atol=1e-12)
    expected_a = x * np.exp(a * x)
    expected_a[-1] -= len(a)
    np.testing.assert_allclose(ga, expected_a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, np.sum(a * np.exp(a * x)), rtol=1e-10, atol=1e-12)


def test_jit_false_vjp_and_value_and_grad():
    value, pullback = dp.vjp(poly_nojit, 1.5, -0.5)
    assert value == pytest.approx(poly_plain(1.5, -0.5))
    np.testing.assert_allclose(pullback(1.0), _poly_grad(1.5, -0.5), rtol=1e-12)
    value, grad = dp.value_and_grad(loop_nojit)(0.4, 9)
    v2, g2 = dp.value_and_grad(loop_decorated)(0.4, 9)
    assert value == pytest.approx(v2, rel=1e-12)
    assert grad == pytest.approx(g2, rel=1e-10)


# --------------------------------------------------------------------------------------------------------
# dp.source
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn", [poly, poly_plain, loop_decorated, loop_nojit, program_branch_loop_call])
def test_source_reverse_is_python_with_def(fn):
    src = dp.source(fn, mode="reverse")
    assert isinstance(src, str)
    assert "def" in src
    ast.parse(src)
    assert dp.source(fn) == src  # reverse is the default mode


@pytest.mark.parametrize("fn", [poly, poly_plain, loop_decorated, program_branch_loop_call])
def test_source_primal_is_python_with_def(fn):
    src = dp.source(fn, mode="primal")
    assert isinstance(src, str)
    assert "def" in src
    ast.parse(src)


def test_source_with_example_args():
    rev = dp.source(program_branch_loop_call, mode="reverse", args=(0.5, 1.0, 3))
    prim = dp.source(program_branch_loop_call, mode="primal", args=(0.5, 1.0, 3))
    for src in (rev, prim):
        assert isinstance(src, str) and "def" in src
        ast.parse(src)
    arr = dp.source(program_array, mode="reverse", args=(np.array([1.0, 2.0]), 0.5))
    assert isinstance(arr, str) and "def" in arr


def test_source_does_not_break_later_calls():
    dp.source(poly_plain, mode="reverse")
    dp.source(poly_plain, mode="primal")
    assert dp.grad(poly_plain, argnums=1)(1.0, 2.0) == pytest.approx(_poly_grad(1.0, 2.0)[1])


# --------------------------------------------------------------------------------------------------------
# Exception class and aliases
# --------------------------------------------------------------------------------------------------------


def test_differentiability_error_is_an_exception():
    assert issubclass(dp.DifferentiabilityError, Exception)


def test_stop_gradient_alias_behaves_like_no_derivative():
    def a(x):
        return dp.no_derivative(x) * x

    def b(x):
        return dp.stop_gradient(x) * x

    assert dp.grad(a)(3.0) == pytest.approx(3.0)
    assert dp.grad(b)(3.0) == pytest.approx(3.0)
