"""Second derivatives: dp.grad(dp.grad(f)) for scalar, loop-free f, checked against autograd's
grad(grad(...)) on the same source, hand-derived formulas, and finite differences of dp's first derivative.
"""
import math

import autograd
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import F, Program, draw_args, finite_difference, load

HEADER = "import math\nimport diffprog as dp\n\n"


def P(name, body, args, hand2=None, ok=None):
    program = Program(name, HEADER + body, tuple(args), ok=ok)
    program.hand2 = hand2
    return program


PROGRAMS = [
    P(
        "sin_times_square",
        """
def f(x):
    return math.sin(x) * x ** 2
""",
        [F(-3, 3)],
        hand2=lambda x: -math.sin(x) * x * x + 4 * x * math.cos(x) + 2 * math.sin(x),
    ),
    P(
        "gaussian",
        """
def f(x):
    return math.exp(-x * x)
""",
        [F(-3, 3)],
        hand2=lambda x: (4 * x * x - 2) * math.exp(-x * x),
    ),
    P(
        "rational",
        """
def f(x):
    return 1.0 / (1.0 + x * x)
""",
        [F(-3, 3)],
        hand2=lambda x: (6 * x * x - 2) / (1 + x * x) ** 3,
    ),
    P(
        "tanh_log1p",
        """
def f(x):
    return math.tanh(x) + math.log1p(x * x)
""",
        [F(-2, 2)],
    ),
    P(
        "cubic_polynomial_with_ints",
        """
def f(x):
    return 2 * x ** 3 - 3 * x ** 2 + x - 7
""",
        [F(-3, 3)],
        hand2=lambda x: 12 * x - 6,
    ),
    P(
        "branch_loop_free",
        """
def f(x):
    if x > 0.0:
        return x ** 3
    return math.sin(x)
""",
        [F(-3, 3)],
        hand2=lambda x: 6 * x if x > 0 else -math.sin(x),
        ok=lambda x: abs(x) > 1e-3,
    ),
    P(
        "calls_helper",
        """
def inner(t):
    return math.exp(t) / (1.0 + t * t)

def f(x):
    return inner(x) * x
""",
        [F(-2, 2)],
    ),
    P(
        "sqrt_atan_erf",
        """
def f(x):
    return math.sqrt(1.0 + x * x) + math.atan(x) * math.erf(x)
""",
        [F(-3, 3)],
    ),
]

_SECOND = {}


def _second(program):
    if id(program) not in _SECOND:
        loaded = load(program)
        first = dp.grad(loaded.plain)
        _SECOND[id(program)] = (first, dp.grad(first))
    return _SECOND[id(program)]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_second_derivative(program, data):
    (x,) = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(x))
    loaded = load(program)
    first, second = _second(program)
    got = second(x)
    assert np.ndim(got) == 0
    expected = autograd.grad(autograd.grad(loaded.reference))(x)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-8)
    if program.hand2 is not None:
        np.testing.assert_allclose(got, program.hand2(x), rtol=1e-6, atol=1e-8)
    fd, smooth = finite_difference(lambda t: float(first(t)), (x,), 0)
    assume(smooth)
    np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-5 * (1 + abs(float(first(x)))))


def mixed(x, y):
    return x * x * y + math.sin(x * y)


def test_mixed_partial_via_nested_grad_with_argnums():
    dxy = dp.grad(dp.grad(mixed, argnums=0), argnums=1)
    dxx = dp.grad(dp.grad(mixed, argnums=0), argnums=0)
    for x, y in [(0.3, -1.2), (1.5, 0.7), (-2.0, 0.1)]:
        np.testing.assert_allclose(
            dxy(x, y), 2 * x + math.cos(x * y) - x * y * math.sin(x * y), rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(dxx(x, y), 2 * y - y * y * math.sin(x * y), rtol=1e-9, atol=1e-12)


@dp.differentiable
def decorated_quintic(x):
    return x ** 5 - 2.0 * x


def test_second_derivative_of_decorated_function():
    second = dp.grad(dp.grad(decorated_quintic))
    for x in (-1.5, 0.0, 0.8, 2.0):
        np.testing.assert_allclose(second(x), 20 * x ** 3, rtol=1e-12, atol=1e-12)


def test_value_and_grad_of_grad():
    vg = dp.value_and_grad(dp.grad(decorated_quintic))
    value, curvature = vg(1.3)
    np.testing.assert_allclose(value, 5 * 1.3 ** 4 - 2.0, rtol=1e-12)
    np.testing.assert_allclose(curvature, 20 * 1.3 ** 3, rtol=1e-12)


def _steps(x, n):
    for i in range(n):
        x = x + 0.1 * math.sin(x) * x
    return x


def _settle(x, y):
    k = 0
    while k < 4:
        x = x * math.cos(y) + 0.3 * math.exp(-x * x)
        k += 1
    return x * y


def _steps_autograd(x, n):
    for i in range(n):
        x = x + 0.1 * autograd.numpy.sin(x) * x
    return x


def test_third_and_fourth_derivatives_through_loops():
    """Derivatives of derivatives of loops: the tapes of a derivative are differentiated like any array (a tape
    restored only for its shape keeps its extents, so no tape is saved as a shared array). Run uncompiled:
    compiling a third derivative takes half a minute, and the code is the same."""
    steps = dp.differentiable(jit=False)(_steps)
    third = dp.grad(dp.grad(dp.grad(steps)))
    fourth = dp.grad(third)
    reference = autograd.grad(autograd.grad(autograd.grad(_steps_autograd)))
    for x in (0.5, -1.3, 2.0):
        np.testing.assert_allclose(third(x, 7), reference(x, 7), rtol=1e-10)
        np.testing.assert_allclose(fourth(x, 7), autograd.grad(reference)(x, 7), rtol=1e-10)
        second = dp.grad(dp.grad(steps))
        np.testing.assert_allclose(third(x, 7), finite_difference(second, (x, 7), 0)[0], rtol=1e-6, atol=1e-6)
    settle = dp.differentiable(jit=False)(_settle)
    mixed = dp.grad(dp.grad(settle, 0), 1)
    np.testing.assert_allclose(dp.grad(mixed, 0)(0.7, 0.4), finite_difference(mixed, (0.7, 0.4), 0)[0],
                               rtol=1e-6, atol=1e-7)
