"""Calls to other plain Python functions: module-level helpers, deep call chains, decorated and undecorated
callees, closures over constants, nested function definitions, module-level constants, helpers returning
tuples, helpers with loops/branches, and no_derivative / stop_gradient.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import F, I, Program, away_from, check_gradient, draw_args, finite_difference

HEADER = "import math\nimport diffprog as dp\n\n"


def P(name, body, args, **kw):
    return Program(name, HEADER + body, tuple(args), **kw)


PROGRAMS = [
    P(
        "module_level_helper",
        """
def sq(t):
    return t * t

def f(x, y):
    return sq(x) + sq(x * y) - sq(sq(y))
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "helper_defined_after_caller",
        """
def f(x):
    return later(x) * 2.0 + x

def later(t):
    return math.sin(t) * t
""",
        [F(-3, 3)],
    ),
    P(
        "call_chain_depth_six",
        """
def h6(t):
    return math.sin(t) + t
def h5(t):
    return h6(t) * t
def h4(t):
    return h5(t) + math.exp(-t * t)
def h3(t):
    return h4(t * 0.5) * 2.0
def h2(t):
    return h3(t) - t * h3(t)
def h1(t, u):
    return h2(t) * u
def f(x, y):
    return h1(x, y) + h6(y)
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "decorated_helper",
        """
@dp.differentiable
def g(t, u):
    return t * math.cos(u) + u * u

def f(x, y):
    return g(x, y) * g(y, x)
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "decorated_caller_and_callee",
        """
@dp.differentiable
def g(t):
    return math.tanh(t) * t

@dp.differentiable
def f(x):
    return g(x) + g(2.0 * x)
""",
        [F(-3, 3)],
    ),
    P(
        "helper_decorated_without_jit",
        """
@dp.differentiable(jit=False)
def g(t):
    return math.exp(t) / (1.0 + t * t)

def f(x):
    return g(x) * x
""",
        [F(-3, 3)],
    ),
    P(
        "closure_factory_over_constant",
        """
def make_scale(c):
    def inner(t):
        return t * c + c * c
    return inner

scale3 = make_scale(3.0)

def f(x):
    return scale3(x) * x + scale3(x * x)
""",
        [F(-3, 3)],
    ),
    P(
        "nested_def_inside_function",
        """
def f(x, y):
    def inner(t):
        return t * t + 1.0
    return inner(x) * inner(2.0 * y) + inner(x * y)
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "module_level_constants",
        """
SCALE = 2.5
OFFSET = -0.75
N_TERMS = 4
TWO_PI = 2.0 * math.pi

def f(x):
    s = OFFSET
    for i in range(N_TERMS):
        s = s + SCALE * math.sin(TWO_PI * x * i)
    return s
""",
        [F(-2, 2)],
    ),
    P(
        "helper_with_branch_and_early_return",
        """
def clip(t, lo, hi):
    if t < lo:
        return lo
    if t > hi:
        return hi
    return t

def f(x, y):
    return clip(x * y, -1.0, 1.0) * x + clip(y, 0.0, 1.5)
""",
        [F(-2, 2), F(-2, 2)],
        ok=lambda x, y: away_from(x * y, (-1.0, 1.0)) and away_from(y, (0.0, 1.5)),
    ),
    P(
        "helper_returning_tuple",
        """
def polar(r, t):
    return r * math.cos(t), r * math.sin(t)

def f(r, t):
    a, b = polar(r, t)
    c = polar(a, b)
    return a * b + a + c[0] - c[1]
""",
        [F(0.1, 2), F(-3, 3)],
    ),
    P(
        "helper_with_loop_and_int_arg",
        """
def power_sum(t, n):
    s = 0.0
    p = 1.0
    for i in range(n):
        p = p * t
        s = s + p / (i + 1)
    return s

def f(x, n):
    return power_sum(x, n) + power_sum(x * 0.5, n + 1)
""",
        [F(-1.5, 1.5), I(0, 6)],
    ),
    P(
        "helper_called_in_loop",
        """
def step(s, x):
    return s + math.sin(s) * x * 0.5

def f(x, n):
    s = 0.3
    for i in range(n):
        s = step(s, x)
    return s
""",
        [F(-2, 2), I(0, 7)],
    ),
    P(
        "helper_with_default_argument",
        """
def affine(t, a=2.0, b=-1.0):
    return a * t + b

def f(x):
    return affine(x) * affine(x, 3.0) + affine(x, b=0.5)
""",
        [F(-3, 3)],
    ),
    P(
        "helper_ignoring_some_arguments",
        """
def first(t, u):
    return t * 3.0

def f(x, y):
    return first(x, y) + first(y * y, x)
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "no_derivative",
        """
def f(x, y):
    c = dp.no_derivative(x * y)
    return c * x + y * dp.no_derivative(math.sin(y))
""",
        [F(-2, 2), F(-2, 2)],
        fd=False,
        hand=lambda x, y: (x * y, math.sin(y)),
    ),
    P(
        "stop_gradient_alias",
        """
def f(x):
    return dp.stop_gradient(x) * x + dp.stop_gradient(x * x)
""",
        [F(-2, 2)],
        fd=False,
        hand=lambda x: (x,),
    ),
    P(
        "helper_uses_module_constant_and_calls_helper",
        """
RATE = 0.3

def decay(t):
    return math.exp(-RATE * t)

def model(t, a):
    return a * decay(t) + (1.0 - a) * decay(2.0 * t)

def f(x, a):
    return model(x, a) * model(a, x)
""",
        [F(-2, 2), F(-2, 2)],
    ),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_call_gradient_matches_autograd_and_fd(program, data):
    args = draw_args(data, program.args)
    check_gradient(program, args)


# --------------------------------------------------------------------------------------------------------
# Hand-checked call shapes defined in this file
# --------------------------------------------------------------------------------------------------------


def _cube(t):
    return t * t * t


@dp.differentiable
def decorated_quartic(t):
    return _cube(t) * t


def uses_decorated(x):
    return decorated_quartic(x) + _cube(x)


def test_decorated_callee_from_undecorated_caller():
    g = dp.grad(uses_decorated)
    for x in (-1.3, 0.0, 0.4, 2.0):
        np.testing.assert_allclose(g(x), 4 * x**3 + 3 * x**2, rtol=1e-12, atol=1e-12)


def _make_poly(c0, c1, c2):
    def poly(t):
        return c0 + c1 * t + c2 * t * t

    return poly


_POLY = _make_poly(1.0, -2.0, 0.5)


def closure_caller(x):
    return _POLY(x) * _POLY(2.0 * x)


def test_closure_over_constants_hand_formula():
    g = dp.grad(closure_caller)

    def p(t):
        return 1.0 - 2.0 * t + 0.5 * t * t

    def dp_(t):
        return -2.0 + t

    for x in (-1.0, 0.25, 1.7):
        expected = dp_(x) * p(2 * x) + p(x) * 2.0 * dp_(2 * x)
        np.testing.assert_allclose(g(x), expected, rtol=1e-12)
        fd, _ = finite_difference(closure_caller, (x,), 0)
        np.testing.assert_allclose(g(x), fd, rtol=1e-5)


def nested_closure_over_active(x):
    def times_x(t):
        return t * x

    return times_x(x) + times_x(3.0)


def test_nested_def_closing_over_active_value_works_or_is_diagnosed():
    # The contract lists nested closures as supported; a closure over an *active* local is the hard case.
    # Either the derivative is right or the compiler says so with a DifferentiabilityError.
    try:
        got = dp.grad(nested_closure_over_active)(1.5)
    except dp.DifferentiabilityError as err:
        assert err.diagnostics and all(d.hint for d in err.diagnostics)
    else:
        np.testing.assert_allclose(got, 2 * 1.5 + 3.0, rtol=1e-12)


def chain_a(x):
    return chain_b(x) + 1.0


def chain_b(x):
    return chain_c(x) * 2.0


def chain_c(x):
    return chain_d(x) - x


def chain_d(x):
    return chain_e(x) * x


def chain_e(x):
    return chain_f(x) + math.sin(x)


def chain_f(x):
    return x * x


def test_depth_six_chain_hand_formula():
    # chain_a = 2 * ((x*x + sin x) * x - x) + 1
    g = dp.grad(chain_a)
    for x in (-2.0, -0.3, 0.0, 1.1):
        expected = 2.0 * (3 * x * x + math.sin(x) + x * math.cos(x) - 1.0)
        np.testing.assert_allclose(g(x), expected, rtol=1e-12, atol=1e-12)


def no_derivative_int(x):
    n = dp.no_derivative(int(x))
    return x * n


def test_no_derivative_of_int_gives_zero_derivative_for_cut():
    g = dp.grad(no_derivative_int)
    for x in (0.5, 2.3, -3.7, 4.9):
        assert g(x) == pytest.approx(float(int(x)))


def test_no_derivative_is_identity_on_values():
    assert dp.no_derivative(2.5) == 2.5
    assert dp.stop_gradient(-1.25) == -1.25
    arr = np.array([1.0, 2.0])
    np.testing.assert_array_equal(dp.no_derivative(arr), arr)
