"""Regressions where compiled code gave numbers other than numpy's: each function's compiled primal is compared
with numpy, and its derivatives (dp.vjp for reverse mode, dp.jvp for forward mode, dp.jacobian for the batched
forward lanes) with central finite differences and with autograd.
"""
import warnings

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog as dp

RTOL, ATOL = 1e-6, 1e-8


def _fd_jacobian(fn, args, k, h=1e-6):
    """Central differences of fn (numpy) with respect to args[k]: shape out.shape + args[k].shape."""
    x = np.asarray(args[k], dtype=np.float64)
    out = np.asarray(fn(*args))
    jac = np.zeros(out.shape + x.shape)
    for index in np.ndindex(x.shape):
        step = h * max(1.0, abs(float(x[index])))
        shifted = []
        for sign in (1.0, -1.0):
            y = x.copy()
            y[index] += sign * step
            new = list(args)
            new[k] = y if np.ndim(args[k]) else float(y)
            shifted.append(np.asarray(fn(*new), dtype=np.float64))
        jac[(Ellipsis,) + index] = (shifted[0] - shifted[1]) / (2 * step)
    return jac


def _close(got, expected, what, atol=ATOL, rtol=RTOL):
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape}, expected {expected.shape}"
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, err_msg=what)


def check(fn, reference, args, fd=True, seed=0):
    """fn (compiled by diffprog, written with numpy) against numpy and, for its derivatives with respect to every
    float argument, against autograd (`reference`, written with autograd.numpy) and central differences."""
    rng = np.random.default_rng(seed)
    expected = fn(*args)
    got = dp.differentiable(fn)(*args)
    _close(got, expected, "primal vs numpy")
    value, pullback = dp.vjp(fn, *args)
    _close(value, expected, "vjp's value vs numpy")
    cotangent = rng.standard_normal(np.shape(expected))
    cotangent = np.array(cotangent) if np.ndim(expected) else float(cotangent)
    pulled = pullback(cotangent)
    tangents = tuple(rng.standard_normal(np.shape(a)) if np.ndim(a) else float(rng.standard_normal()) for a in args)
    _, pushed = dp.jvp(fn, args, tangents)
    pushed_expected = 0.0
    for k in range(len(args)):
        independent = autograd.jacobian(reference, k)(*args)
        jac_fd = _fd_jacobian(fn, args, k) if fd else independent
        out_axes = np.ndim(expected)
        for name, jac in (("autograd", independent), ("finite differences", jac_fd)):
            jac = np.asarray(jac).reshape(np.shape(expected) + np.shape(args[k]))
            atol = 1e-5 if name == "finite differences" else ATOL
            rtol = 1e-4 if name == "finite differences" else RTOL
            _close(pulled[k], np.tensordot(cotangent, jac, axes=out_axes), f"vjp {k} vs {name}", atol, rtol)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a fallback to one pass per column still gives the Jacobian
                _close(dp.jacobian(fn, argnums=k)(*args), jac, f"jacobian {k} vs {name}", atol, rtol)
        pushed_expected = pushed_expected + np.tensordot(
            np.asarray(independent).reshape(np.shape(expected) + np.shape(args[k])), tangents[k],
            axes=np.ndim(args[k]))
    _close(pushed, pushed_expected, "jvp vs autograd")


floats = st.floats(-3.0, 3.0, allow_nan=False).filter(lambda v: abs(v) > 1e-3)


def shape(min_rank=1, max_rank=3, min_side=1, max_side=3):
    return st.lists(st.integers(min_side, max_side), min_size=min_rank, max_size=max_rank).map(tuple)


def arrays(shape_):
    return st.builds(lambda seed: np.random.default_rng(seed).uniform(-2.0, 2.0, shape_), st.integers(0, 2 ** 31))


# 1. np.array of a number is a 0-d array (it was an array of shape (1,)); its adjoint sums to a number.
def array_times(x):
    return np.array(x) * 2.0 + x


def array_itself(x):
    return np.array(x)


def array_squared_sum(x, v):
    return np.sum((np.array(x) + v) ** 2)


def asarray_itself(x):
    return np.asarray(x * 3.0)


@given(floats, st.integers(1, 4), st.integers(0, 2 ** 31))
@settings(max_examples=10, deadline=None)
def test_array_of_a_number_is_0d(x, n, seed):
    assert np.shape(dp.differentiable(array_itself)(x)) == ()
    assert np.shape(dp.differentiable(asarray_itself)(x)) == ()
    check(array_times, lambda x: anp.array(x) * 2.0 + x, (x,))
    check(array_itself, lambda x: anp.array(x), (x,))
    check(asarray_itself, lambda x: anp.array(x * 3.0), (x,))
    v = np.random.default_rng(seed).standard_normal(n)
    check(array_squared_sum, lambda x, v: anp.sum((anp.array(x) + v) ** 2), (x, v))


def array_of_array(A):
    return np.array(A) * 3.0


def test_array_of_an_array_is_a_copy():
    A = np.arange(6.0).reshape(2, 3)
    check(array_of_array, lambda A: anp.array(A) * 3.0, (A,))


# 2. np.vstack, np.hstack, np.concatenate and np.stack of one array join its items along its first axis, as numpy
# does (np.vstack of a vector gave (1, n) instead of (n, 1), of a 3-d array the array unchanged).
def vstack_one(A):
    return np.vstack(A) * 2.0


def hstack_one(A):
    return np.hstack(A) * 2.0


def concatenate_one(A):
    return np.concatenate(A) * 2.0


def stack_one(A):
    return np.stack(A) * 2.0


JOINS_OF_ONE = {  # function, autograd's, the ranks numpy accepts and diffprog supports
    "vstack": (vstack_one, lambda A: anp.vstack(A) * 2.0, (1, 2, 3, 4)),
    "hstack": (hstack_one, lambda A: anp.hstack(A) * 2.0, (1, 2)),
    "concatenate": (concatenate_one, lambda A: anp.concatenate(A) * 2.0, (2, 3, 4)),
    "stack": (stack_one, lambda A: anp.stack(A) * 2.0, (1, 2, 3, 4)),
}


@pytest.mark.parametrize("name", sorted(JOINS_OF_ONE))
@given(data=st.data())
@settings(max_examples=6, deadline=None)
def test_join_of_one_array(name, data):
    fn, reference, ranks = JOINS_OF_ONE[name]
    shape_ = data.draw(shape(min_rank=min(ranks), max_rank=max(ranks)), label="shape")
    A = data.draw(arrays(shape_), label="A")
    check(fn, reference, (A,))


def hstack_one_3d(A):
    return np.hstack(A)


def concatenate_one_along(A):
    return np.concatenate(A, axis=1)


@pytest.mark.parametrize("fn, shape_, message", [
    (hstack_one_3d, (2, 3, 4), "np.hstack of one array"),
    (concatenate_one, (3,), "np.concatenate of one array"),
    (concatenate_one_along, (2, 3, 4), "np.concatenate of one array along an axis"),
])
def test_join_of_one_array_unsupported(fn, shape_, message):
    with pytest.raises(dp.DifferentiabilityError, match=message):
        dp.differentiable(fn)(np.ones(shape_))


# 3. np.std over one element (a length-1 axis, or a 1-element array) is 0 for every x: its slope is 0, as
# autograd's (it was 0 / 0 = NaN). Where n > 1 equal elements make the std 0, NaN (a kink) is autograd's too, and
# so is NaN for np.linalg.norm at the zero vector.
def std_axis0(x):
    return np.std(x, axis=0) * 2.0


def std_axis1(x):
    return np.std(x, axis=1)


def std_whole(x):
    return np.std(x) + np.var(x)


def var_axis0(x):
    return np.var(x, axis=0)


@given(data=st.data())
@settings(max_examples=8, deadline=None)
def test_std_over_one_element(data):
    n = data.draw(st.integers(1, 3), label="n")
    check(std_axis0, lambda x: anp.std(x, axis=0) * 2.0, (data.draw(arrays((1, n)), label="x"),))
    check(std_axis1, lambda x: anp.std(x, axis=1), (data.draw(arrays((n, 1)), label="y"),))
    check(std_axis0, lambda x: anp.std(x, axis=0) * 2.0, (data.draw(arrays((1,)), label="v"),))
    check(std_whole, lambda x: anp.std(x) + anp.var(x), (data.draw(arrays((1,) * n), label="w"),))
    check(var_axis0, lambda x: anp.var(x, axis=0), (data.draw(arrays((1, n)), label="u"),))


def norm_whole(x):
    return np.linalg.norm(x)


def test_kinks_give_nan_as_autograd():
    for fn, reference in ((std_whole, lambda x: anp.std(x) + anp.var(x)), (norm_whole, anp.linalg.norm)):
        x = np.full(3, 0.0 if fn is norm_whole else 1.5)
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = autograd.grad(reference)(x)
        assert np.all(np.isnan(expected))
        assert np.all(np.isnan(dp.grad(fn)(x)))
        assert np.all(np.isnan(dp.jvp(fn, (x,), (np.ones(3),))[1]))


# 4. Powers at a zero base: a ** 0 is 1 for every a (slope 0, it was 0 * inf = NaN for arrays and np.power),
# a ** 1 has slope 1, and 0 ** b (b > 0) is 0 for every b (slope 0 in b, no log(0)). At 0 autograd gives NaN
# for these, so the limits are checked against central differences; away from 0, against autograd too.
def power_zero(x):
    return np.power(x, 0.0) * 2.0


def pow_zero(x):
    return x ** 0.0 + x ** 0


def pow_one(x):
    return x ** 1.0 * 3.0


def zero_pow(y):
    return 0.0 ** y + np.power(0.0, y)


def zeros_pow(y):
    return np.power(np.zeros(y.shape), y) + np.zeros(y.shape) ** y


POWERS = [(power_zero, lambda x: anp.power(x, 0.0) * 2.0), (pow_zero, lambda x: x ** 0.0 + x ** 0),
          (pow_one, lambda x: x ** 1.0 * 3.0)]


def _derivatives(fn, x):
    """dp.vjp (reverse), dp.jvp (forward) and dp.jacobian (batched lanes) of fn at x, as Jacobians."""
    value = fn(x)
    if np.ndim(x) == 0:
        return [dp.vjp(fn, x)[1](1.0 if np.ndim(value) == 0 else np.ones(np.shape(value)))[0],
                dp.jvp(fn, (x,), (1.0,))[1], dp.jacobian(fn)(x)]
    n = x.size
    return [np.stack([dp.vjp(fn, x)[1](np.eye(n)[i])[0] for i in range(n)]),
            np.stack([dp.jvp(fn, (x,), (np.eye(n)[i],))[1] for i in range(n)], axis=-1), dp.jacobian(fn)(x)]


@pytest.mark.parametrize("fn", [f for f, _ in POWERS] + [zero_pow, zeros_pow], ids=lambda f: f.__name__)
def test_power_limits_at_zero(fn):
    for x in ((1.5, 0.5) if fn in (zero_pow, zeros_pow) else (0.0,)):
        x = np.full(3, x) if fn is zeros_pow else x
        for point in ((x, np.full(2, x)) if fn not in (zero_pow, zeros_pow) else (x,)):
            expected = _fd_jacobian(fn, (point,), 0)
            assert np.all(np.isfinite(expected))
            np.testing.assert_allclose(dp.differentiable(fn)(point), fn(point))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for got in _derivatives(fn, point):
                    np.testing.assert_allclose(got, expected, atol=1e-8, err_msg=f"{fn.__name__} at {point}")


@given(floats, st.integers(1, 3))
@settings(max_examples=6, deadline=None)
def test_powers_away_from_zero(x, n):
    for fn, reference in POWERS:
        check(fn, reference, (x,))
        check(fn, reference, (np.linspace(0.5, 2.0, n) * x,))


# 5. np.inner sums over the last axes of both arguments (it computed x @ Y, numpy computes Y @ x).
def inner(a, b):
    return np.inner(a, b) * 2.0


@pytest.mark.parametrize("ranks", [(1, 1), (1, 2), (2, 1), (2, 2)])
@given(data=st.data())
@settings(max_examples=5, deadline=None)
def test_inner_as_numpy(ranks, data):
    n = data.draw(st.integers(1, 3), label="n")  # the summed (last) axis
    shapes = [(n,) if r == 1 else (data.draw(st.integers(1, 3), label="m"), n) for r in ranks]
    args = tuple(data.draw(arrays(s), label="arg") for s in shapes)
    check(inner, lambda a, b: anp.inner(a, b) * 2.0, args)


def test_inner_of_other_ranks_is_reported():
    with pytest.raises(dp.DifferentiabilityError, match=r"np.inner of arguments of ranks \(3, 1\)"):
        dp.differentiable(inner)(np.ones((2, 2, 2)), np.ones(2))
