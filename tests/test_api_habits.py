"""Real programs run unchanged: decorated functions and every transform accept the calls the undecorated function
accepts (keywords, defaults, Python's TypeError for a wrong call); JAX habits (has_aux, tuple argnums for
jacobian/hessian, jacfwd/jacrev, grad of numpy/math functions); argnums for jvp and vjp. Each result is checked
against the undecorated function, derivatives against central differences and autograd where it applies.
"""
import math

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

import diffprog as dp


def central(fun, x, h=1e-6):
    """Central difference of fun at x (a float, or an array: the gradient/Jacobian column by column)."""
    if isinstance(x, np.ndarray):
        columns = []
        for k in range(x.size):
            e = np.zeros_like(x)
            e.flat[k] = h
            columns.append((np.asarray(fun(x + e)) - np.asarray(fun(x - e))) / (2 * h))
        return np.stack(columns, axis=-1).reshape(np.shape(columns[0]) + x.shape)
    return (fun(x + h) - fun(x - h)) / (2 * h)


def close(a, b, tol=1e-5):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=tol, atol=tol)


# ---- functions under test ------------------------------------------------------------------------------------------

def power(x, n=3):
    return x ** n


def weighted(x, w, scale=2.0):
    s = 0.0
    for i in range(x.shape[0]):
        s += scale * w[i] * math.sin(x[i])
    return s


def weighted_ag(x, w, scale=2.0):
    return anp.sum(scale * w * anp.sin(x))


def mixed(x, y):
    return x * x * y + math.exp(y)


def loss_with_aux(w, scale=2.0):
    r = w * scale - 1.0
    return r * r, r


def loss_with_array_aux(x, a):
    r = x * a
    return r[0] * r[0] + r[1], r


X = np.array([0.3, -1.2, 0.7])
W = np.array([1.5, 0.5, -2.0])


# ---- 1. keywords and defaults at the API boundary ----------------------------------------------------------------

def test_decorated_calls_take_keywords_and_defaults():
    f = dp.differentiable(power)
    assert f(2.0) == power(2.0) == 8.0
    assert f(2.0, n=4) == power(2.0, n=4)
    assert f(n=2, x=3.0) == power(n=2, x=3.0)
    g = dp.differentiable(weighted)
    assert math.isclose(g(X, W), weighted(X, W))
    assert math.isclose(g(X, w=W, scale=0.5), weighted(X, W, 0.5))


@pytest.mark.parametrize("call", [
    lambda f: f(),
    lambda f: f(1.0, 2, 3),
    lambda f: f(1.0, m=2),
    lambda f: f(1.0, x=2.0),
])
def test_wrong_calls_raise_pythons_type_error(call):
    with pytest.raises(TypeError) as expected:
        call(power)
    for transform in (dp.differentiable, dp.grad, dp.value_and_grad, dp.hessian, dp.jacobian, dp.jacfwd):
        with pytest.raises(TypeError) as got:
            call(transform(power))
        assert str(got.value) == str(expected.value)


def test_grad_and_value_and_grad_take_keywords_and_defaults():
    assert dp.grad(power)(2.0) == 12.0
    assert dp.grad(power)(2.0, n=4) == 32.0
    assert dp.grad(mixed)(x=1.0, y=2.0) == dp.grad(mixed)(1.0, 2.0)
    assert dp.grad(mixed, 1)(1.0, y=2.0) == pytest.approx(central(lambda y: mixed(1.0, y), 2.0))
    value, gradient = dp.value_and_grad(weighted, (0, 1))(X, w=W, scale=0.5)
    assert value == pytest.approx(weighted(X, W, 0.5))
    close(gradient[0], autograd.grad(weighted_ag, 0)(X, W, 0.5))
    close(gradient[1], autograd.grad(weighted_ag, 1)(X, W, 0.5))
    close(dp.grad(weighted)(X, W), central(lambda x: weighted(x, W), X))


def test_argnums_are_positions_in_the_full_signature():
    # scale is argument 2 even when left to its default, or passed by keyword
    assert dp.grad(weighted, 2)(X, W) == pytest.approx(weighted(X, W, 1.0))
    assert dp.grad(weighted, 2)(X, w=W, scale=3.0) == pytest.approx(weighted(X, W, 1.0))
    assert dp.grad(weighted, -1)(X, W) == pytest.approx(weighted(X, W, 1.0))


def test_jvp_vjp_hvp_jacobian_hessian_fill_defaults():
    value, tangent = dp.jvp(weighted, (X, W), (np.ones(3), np.zeros(3)))
    assert value == pytest.approx(weighted(X, W))
    assert tangent == pytest.approx(float(np.sum(central(lambda x: weighted(x, W), X))))
    value, pullback = dp.vjp(weighted, X, W, scale=0.5)
    assert value == pytest.approx(weighted(X, W, 0.5))
    gx, gw, gs = pullback(1.0)
    close(gx, autograd.grad(weighted_ag, 0)(X, W, 0.5))
    close(gw, autograd.grad(weighted_ag, 1)(X, W, 0.5))
    assert gs == pytest.approx(weighted(X, W, 1.0))
    hv = dp.hvp(weighted, (X, W), (np.ones(3), np.zeros(3)))
    assert len(hv) == 2
    close(hv[0], autograd.hessian(weighted_ag)(X, W) @ np.ones(3))
    close(dp.hessian(weighted)(X, W), autograd.hessian(weighted_ag)(X, W))
    close(dp.hessian(weighted)(X, w=W, scale=0.5), autograd.hessian(weighted_ag)(X, W, 0.5))
    close(dp.jacobian(power)(2.0, n=4), 32.0)


def test_grad_of_grad_takes_keywords():
    assert dp.grad(dp.grad(power))(2.0) == pytest.approx(12.0)
    assert dp.grad(dp.grad(power))(2.0, n=4) == pytest.approx(48.0)


def test_calls_inside_differentiated_code_take_keywords_and_defaults():
    def outer(x):
        return power(x) + power(x, n=2) + power(n=1, x=x)

    assert dp.differentiable(outer)(2.0) == outer(2.0)
    assert dp.grad(outer)(2.0) == pytest.approx(central(outer, 2.0))


def test_keyword_only_parameters_are_reported_at_decoration():
    def f(x, *, scale=1.0):
        return x * scale

    with pytest.raises(dp.DifferentiabilityError, match="keyword-only"):
        dp.differentiable(f)


# ---- 2. JAX habits -----------------------------------------------------------------------------------------------

def test_grad_has_aux():
    gradient, aux = dp.grad(loss_with_aux, has_aux=True)(1.0)
    assert (gradient, aux) == (4.0, 1.0)
    assert dp.grad(loss_with_aux, has_aux=True)(w=1.0, scale=3.0) == (12.0, 2.0)
    (value, aux), gradient = dp.value_and_grad(loss_with_aux, has_aux=True)(1.5)
    assert (value, aux) == loss_with_aux(1.5)
    assert gradient == pytest.approx(central(lambda w: loss_with_aux(w)[0], 1.5))
    gradients, aux = dp.grad(loss_with_aux, (0, 1), has_aux=True)(1.0, 2.0)
    assert gradients == pytest.approx((4.0, 2.0)) and aux == 1.0


def test_grad_has_aux_array():
    a = np.array([2.0, -1.0])
    gradient, aux = dp.grad(loss_with_array_aux, has_aux=True)(0.7, a)
    close(aux, loss_with_array_aux(0.7, a)[1])
    assert gradient == pytest.approx(central(lambda x: loss_with_array_aux(x, a)[0], 0.7))
    # matches jax's structure for value_and_grad
    (value, aux), gradient = dp.value_and_grad(loss_with_array_aux, 1, has_aux=True)(0.7, a)
    assert value == pytest.approx(loss_with_array_aux(0.7, a)[0])
    close(gradient, central(lambda b: loss_with_array_aux(0.7, b)[0], a))


def test_grad_has_aux_needs_a_pair():
    with pytest.raises(dp.DifferentiabilityError, match="has_aux=True needs a function returning a pair"):
        dp.grad(power, has_aux=True)(2.0)


def test_jacobian_tuple_argnums():
    def f(x, s):
        return x * s + np.sin(x)

    def f_ag(x, s):
        return x * s + anp.sin(x)

    x, s = np.array([0.5, -1.0, 2.0]), 1.5
    for jac in (dp.jacobian, dp.jacfwd, dp.jacrev):
        jx, js = jac(f, (0, 1))(x, s)
        close(jx, autograd.jacobian(f_ag, 0)(x, s))
        close(js, autograd.jacobian(f_ag, 1)(x, s))
        close(js, central(lambda t: f(x, t), s))
    (only,) = dp.jacobian(f, (1,))(x, s=s)
    close(only, x)


def test_jacfwd_jacrev_agree_with_jacobian():
    def polar(p):
        return p[0] * math.cos(p[1]), p[0] * math.sin(p[1])

    p = np.array([2.0, 0.5])
    expected = central(lambda q: np.array(polar(q)), p)
    close(dp.jacfwd(polar)(p), expected)
    close(dp.jacrev(polar)(p), expected)
    close(dp.jacobian(polar)(p), expected)


def test_hessian_tuple_argnums():
    x, w = X, W
    blocks = dp.hessian(weighted, (0, 1))(x, w)
    for a in range(2):
        for b in range(2):
            expected = autograd.jacobian(autograd.grad(weighted_ag, a), b)(x, w)
            close(blocks[a][b], expected)
    (h,), = dp.hessian(mixed, (1,))(1.0, 2.0)
    assert h == pytest.approx(math.exp(2.0))


@pytest.mark.parametrize("fn, args, argnum, expected", [
    (np.sin, (1.0,), 0, math.cos(1.0)),
    (math.sin, (1.0,), 0, math.cos(1.0)),
    (np.exp, (0.5,), 0, math.exp(0.5)),
    (math.atan2, (1.0, 2.0), 0, 2.0 / 5.0),
    (math.atan2, (1.0, 2.0), 1, -1.0 / 5.0),
    (np.hypot, (3.0, 4.0), 1, 4.0 / 5.0),
])
def test_grad_of_library_functions(fn, args, argnum, expected):
    assert dp.grad(fn, argnum)(*args) == pytest.approx(expected)
    assert dp.grad(fn, argnum) is dp.grad(fn, argnum)  # cached although not weakly referenceable
    assert dp.value_and_grad(fn, argnum)(*args)[0] == pytest.approx(fn(*args))


def test_grad_of_a_library_function_on_arrays():
    x = np.array([0.1, 0.2])
    close(dp.jacobian(np.tanh)(x), np.diag(1 - np.tanh(x) ** 2))


def test_grad_of_a_library_function_without_known_arity_is_a_clear_type_error():
    with pytest.raises(TypeError, match="wrap the call in a Python function"):
        dp.grad(math.log)(2.0)  # math.log(x[, base]): the number of arguments is not fixed


# ---- 3. argnums for jvp and vjp ------------------------------------------------------------------------------------

def test_jvp_argnums():
    t = np.array([1.0, 0.0, -1.0])
    value, tangent = dp.jvp(weighted, (X, W), (t,), argnums=0)
    expected_value, expected_tangent = dp.jvp(weighted, (X, W), (t, np.zeros(3)))
    assert value == expected_value and tangent == pytest.approx(expected_tangent)
    assert tangent == pytest.approx(float(autograd.grad(weighted_ag)(X, W) @ t))
    _, tangent = dp.jvp(weighted, (X, W, 0.5), (1.0,), argnums=2)
    assert tangent == pytest.approx(weighted(X, W, 1.0))
    _, tangent = dp.jvp(weighted, (X, W), (t, 2.0), argnums=(0, 2))  # the default scale gets a tangent
    assert tangent == pytest.approx(float(autograd.grad(weighted_ag)(X, W) @ t) + 2.0 * weighted(X, W, 1.0))
    with pytest.raises(ValueError, match="one tangent per position"):
        dp.jvp(weighted, (X, W), (t, t), argnums=0)


def test_vjp_argnums():
    value, pullback = dp.vjp(weighted, X, W, argnums=0)
    assert value == pytest.approx(weighted(X, W))
    close(pullback(1.0), autograd.grad(weighted_ag, 0)(X, W))
    value, pullback = dp.vjp(weighted, X, W, argnums=(1, 2))
    gw, gs = pullback(2.0)
    close(gw, 2.0 * autograd.grad(weighted_ag, 1)(X, W))
    assert gs == pytest.approx(2.0 * weighted(X, W, 1.0))
    with pytest.raises(ValueError, match="not a position"):
        dp.vjp(weighted, X, W, argnums=5)


def test_vjp_default_is_unchanged():
    def pick(x, a, n):
        return x * a[n]

    _, pullback = dp.vjp(pick, 1.5, np.array([1.0, 2.0, 3.0]), 2)
    gx, ga, gn = pullback(1.0)
    assert gx == 3.0 and gn is None
    close(ga, [0.0, 0.0, 1.5])
