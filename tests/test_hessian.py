"""Second and third derivatives by forward-over-reverse: dp.hessian, dp.hvp, dp.jvp of dp.grad.

Hessians of functions with loops (whose adjoints use tapes), while loops, branches on active values and early
returns, checked against autograd's hessian of the same source, against finite differences of diffprog's
gradient, and for symmetry to 1e-10. Third derivatives against closed forms, including one of a function with
a loop (forward over forward over reverse).
"""
import math

import autograd
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import A, F, I, Program, draw_args, finite_difference, load

HEADER = "import math\nimport diffprog as dp\n\n"


def P(name, body, args, argnums=0, ok=None):
    program = Program(name, HEADER + body, tuple(args), ok=ok)
    program.argnums = argnums
    return program


PROGRAMS = [
    P(
        "extended_rosenbrock_loop",
        """
def f(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s
""",
        [A(-2, 2, min_len=2)],
    ),
    P(
        "taped_recurrence_with_scalar",
        """
def f(a, c):
    s = c
    for i in range(a.shape[0]):
        s = math.log(1.0 + math.exp(s * a[i])) + a[i] * a[i] * c
    return s * s
""",
        [A(-1.5, 1.5), F(-1, 1)],
    ),
    P(
        "while_with_active_branches",
        """
def f(a):
    s = 0.0
    i = 0
    while i < a.shape[0]:
        if a[i] > 0.0:
            s = s + a[i] ** 3
        else:
            s = s + math.sin(a[i]) * s
        i += 1
    return s * s + s
""",
        [A(-2, 2)],
        ok=lambda a: bool(np.all(np.abs(a) > 1e-3)),
    ),
    P(
        "nested_loops_cross_terms",
        """
def f(a):
    s = 0.0
    for i in range(a.shape[0]):
        for j in range(i, a.shape[0]):
            s = s + a[i] * a[j] * math.cos(a[i] - a[j] + 0.1 * j)
    return math.exp(0.1 * s)
""",
        [A(-1.5, 1.5)],
    ),
    P(
        "early_return_in_loop",
        """
def f(x, y, n):
    for i in range(n):
        x = x * math.cos(y) + y * 0.5
        if x * x > 9.0:
            return x * y * y
    return math.sin(x) * y + x * x * x
""",
        [F(-2, 2), F(-2, 2), I(0, 6)],
        ok=lambda x, y, n: True,
    ),
    P(
        "scalar_argument_in_position_one",
        """
def f(a, t):
    s = 0.0
    for i in range(a.shape[0]):
        s = s + math.tanh(a[i] * t) * t
    return s
""",
        [A(-2, 2), F(-2, 2)],
        argnums=1,
    ),
]


def _hessian(program):
    return load(program).cached("hessian", lambda: dp.hessian(load(program).plain, argnums=program.argnums))


def _reference_hessian(program, args):
    k = program.argnums
    reference = load(program).reference

    def along(v):
        return reference(*(v if j == k else a for j, a in enumerate(args)))

    return np.asarray(autograd.hessian(along)(args[k]), dtype=np.float64)


def _fd_of_gradient(program, args):
    """Central differences of diffprog's (reverse-mode) gradient, one column per input entry."""
    k = program.argnums
    gradient = load(program).cached("grad_k", lambda: dp.grad(load(program).plain, argnums=k))
    x = args[k]
    columns, smooth_all = [], True
    entries = range(x.size) if isinstance(x, np.ndarray) else [None]
    for e in entries:
        def phi(t, e=e):
            moved = x.copy() if isinstance(x, np.ndarray) else t
            if e is not None:
                moved[e] = t
            return np.asarray(gradient(*(moved if j == k else a for j, a in enumerate(args))))

        base = float(x[e]) if e is not None else float(x)
        h = 1e-5 * max(1.0, abs(base))
        plus, minus, center = phi(base + h), phi(base - h), phi(base)
        forward, backward = (plus - center) / h, (center - minus) / h
        smooth_all &= bool(np.all(np.abs(forward - backward) <= 1e-2 * (1 + np.abs(forward) + np.abs(backward))))
        columns.append((plus - minus) / (2 * h))
    fd = np.stack(columns, axis=-1) if isinstance(x, np.ndarray) else columns[0]
    return fd, smooth_all


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_hessian_matches_autograd_finite_differences_and_is_symmetric(program, data):
    args = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(*args))
    fd, smooth = _fd_of_gradient(program, args)
    assume(smooth)
    hess = _hessian(program)(*args)
    x = args[program.argnums]
    if isinstance(x, np.ndarray):
        assert hess.shape == (x.size, x.size)
        scale = max(1.0, float(np.max(np.abs(hess))))
        assert np.max(np.abs(hess - hess.T)) <= 1e-10 * scale, f"{program.name}: Hessian not symmetric"
    else:
        assert np.ndim(hess) == 0
        scale = max(1.0, abs(float(hess)))
    np.testing.assert_allclose(hess, _reference_hessian(program, args), rtol=1e-9, atol=1e-9 * scale,
                               err_msg=f"{program.name}: dp.hessian vs autograd.hessian at {args!r}")
    np.testing.assert_allclose(hess, fd, rtol=1e-4, atol=1e-5 * scale,
                               err_msg=f"{program.name}: dp.hessian vs finite differences of dp.grad at {args!r}")


@pytest.mark.parametrize("program", PROGRAMS[:3], ids=lambda p: p.name)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_hvp_is_hessian_times_vector(program, data):
    args = draw_args(data, program.args)
    vector = tuple(None if isinstance(a, int) else
                   (np.array(data.draw(st.lists(st.floats(-2, 2), min_size=a.size, max_size=a.size)))
                    if isinstance(a, np.ndarray) else data.draw(st.floats(-2, 2)))
                   for a in args)
    products = dp.hvp(load(program).plain, args, vector)
    diff = [k for k, a in enumerate(args) if not isinstance(a, int)]
    reference = load(program).reference

    def moved(**replaced):
        return reference(*(replaced.get(f"a{m}", a) for m, a in enumerate(args)))

    for k in diff:  # block row k of the full Hessian (by autograd) times the vector
        expected = 0.0
        for j in diff:
            if j == k:
                block = autograd.hessian(lambda v: moved(**{f"a{k}": v}))(args[k])
            else:
                block = autograd.jacobian(autograd.grad(lambda u, v: moved(**{f"a{k}": u, f"a{j}": v}), 0), 1)(
                    args[k], args[j])
            expected = expected + np.tensordot(np.asarray(block), vector[j], axes=np.ndim(vector[j]))
        np.testing.assert_allclose(products[k], expected, rtol=1e-9, atol=1e-9 * (1 + np.max(np.abs(expected))))
    assert all(products[k] is None for k, a in enumerate(args) if isinstance(a, int))


def test_hvp_equals_hessian_column_combination_on_rosenbrock():
    program = PROGRAMS[0]
    x = np.linspace(-1.2, 1.4, 7)
    v = np.cos(np.arange(7.0))
    (product,) = dp.hvp(load(program).plain, (x,), (v,))
    np.testing.assert_allclose(product, _hessian(program)(x) @ v, rtol=1e-12, atol=1e-10)


def test_hessian_of_hundred_variable_rosenbrock_is_tridiagonal_and_exact():
    x = np.linspace(-1.5, 1.5, 100)
    hess = _hessian(PROGRAMS[0])(x)
    expected = np.zeros((100, 100))
    for i in range(99):  # 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
        expected[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        expected[i, i + 1] += -400.0 * x[i]
        expected[i + 1, i] += -400.0 * x[i]
        expected[i + 1, i + 1] += 200.0
    np.testing.assert_allclose(hess, expected, rtol=1e-12, atol=1e-9)


# ---- third derivatives -------------------------------------------------------------------------------------
def sin_exp(x):
    return math.sin(x) * math.exp(x)


def quintic(x):
    return x ** 5 - 3.0 * x ** 2


def gaussian(x):
    return math.exp(-x * x)


def tanh_(x):
    return math.tanh(x)


def _tanh3(x):
    t = math.tanh(x)
    return (1 - t * t) * (6 * t * t - 2)


THIRD = [
    (sin_exp, lambda x: 2 * math.exp(x) * (math.cos(x) - math.sin(x))),
    (quintic, lambda x: 60 * x * x),
    (gaussian, lambda x: (12 * x - 8 * x ** 3) * math.exp(-x * x)),
    (tanh_, _tanh3),
]


@pytest.mark.parametrize("f, closed_form", THIRD, ids=[f.__name__ for f, _ in THIRD])
@pytest.mark.parametrize("x", [-1.3, 0.0, 0.4, 2.1])
def test_third_derivative_closed_forms(f, closed_form, x):
    expected = closed_form(x)
    tolerance = dict(rel=1e-10, abs=1e-12)
    # forward over reverse over reverse
    assert dp.jvp(dp.grad(dp.grad(f)), (x,), (1.0,))[1] == pytest.approx(expected, **tolerance)
    # reverse over forward over reverse
    assert dp.grad(dp.jvp_function(dp.grad(f)))(x, 1.0) == pytest.approx(expected, **tolerance)
    # the "Hessian" of the gradient
    assert dp.hessian(dp.grad(f))(x) == pytest.approx(expected, **tolerance)


def waves(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(x * (i + 1))
    return s * 1.0


@pytest.mark.parametrize("n", [0, 1, 5])
def test_third_derivative_through_a_loop(n):
    """Third derivatives through a loop: forward over forward over reverse."""
    x = 0.3
    tangent_of_gradient = dp.jvp_function(dp.grad(waves))  # (x, n, x_dot) -> f''(x) x_dot
    second = tangent_of_gradient(x, n, 1.0)
    third = dp.jvp(tangent_of_gradient, (x, n, 1.0), (1.0, None, 0.0))[1]
    assert second == pytest.approx(-sum((i + 1) ** 2 * math.sin(x * (i + 1)) for i in range(n)), abs=1e-12)
    assert third == pytest.approx(-sum((i + 1) ** 3 * math.cos(x * (i + 1)) for i in range(n)), abs=1e-12)


def reassigned_in_loop(x, n):
    y = x
    for i in range(n):
        y = math.sin(y) * x
    return y


def test_reverse_over_reverse_differentiates_the_tapes_of_loops():
    fd, smooth = finite_difference(lambda t: dp.grad(reassigned_in_loop)(t, 3), (0.5,), 0)
    assert smooth
    forward_over_reverse = dp.hessian(reassigned_in_loop)(0.5, 3)
    assert forward_over_reverse == pytest.approx(fd, rel=1e-6)
    assert dp.grad(dp.grad(reassigned_in_loop))(0.5, 3) == pytest.approx(forward_over_reverse, rel=1e-12)
