"""Scalar derivative rules: arithmetic, unary ops, abs/min/max, the math module, int mixing, assignments,
augmented assignments, tuple packing/unpacking, and the cut (zero-derivative) builtins.

Every gradient is compared with autograd run on the very same source (see reference.py) *and* with central
finite differences; constructs autograd cannot trace (//, int(), round(), float()) are checked against
hand-derived formulas instead.
"""
import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import F, I, Program, away_from, check_gradient, draw_args, finite_difference, frac_distance

HEADER = "import math\nimport diffprog as dp\n\n"


def P(name, body, args, **kw):
    return Program(name, HEADER + body, tuple(args), **kw)


PROGRAMS = [
    P(
        "arith_mixed",
        """
def f(x, y):
    return x * y + x / y - y ** 2 + 3 * x - 1.5
""",
        [F(-3, 3), F(0.5, 3)],
    ),
    P(
        "subtraction_division_chain",
        """
def f(x, y):
    return (x - y) / (x * x + y * y + 0.5) - 2.0 / (1.0 + x * x)
""",
        [F(-3, 3), F(-3, 3)],
    ),
    P(
        "pow_integer_exponents",
        """
def f(x):
    return x ** 3 + 2.0 * x ** 2 - x ** -1 + x ** 0.5
""",
        [F(0.5, 3)],
    ),
    P(
        "pow_active_exponent",
        """
def f(x, y):
    return x ** y + 2.0 ** y + y ** 2.5
""",
        [F(0.5, 3), F(0.5, 2)],
    ),
    P(
        "modulo_positive_divisor",
        """
def f(a, b):
    return (a % b) * 2.0 + a * b
""",
        [F(-10, 10), F(0.5, 3)],
        ok=lambda a, b: frac_distance(a / b) > 1e-3,
    ),
    P(
        "modulo_negative_divisor",
        """
def f(a, b):
    r = a % b
    return r * r + b
""",
        [F(-10, 10), F(-3, -0.5)],
        ok=lambda a, b: frac_distance(a / b) > 1e-3,
    ),
    P(
        "modulo_by_constant",
        """
def f(x):
    return (x % 1.5) * x
""",
        [F(-6, 6)],
        ok=lambda x: frac_distance(x / 1.5) > 1e-3,
    ),
    P(
        "unary_minus_and_abs",
        """
def f(x, y):
    z = -x
    return z * y + abs(y) * x - (-(x * y)) + abs(x * x - 1.0)
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: abs(y) > 1e-3 and abs(x * x - 1.0) > 1e-3,
    ),
    P(
        "min_max_two_values",
        """
def f(x, y):
    return min(x, y) * max(x * x, y) + max(x, 0.5) - min(2.0 * y, 1.0)
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: abs(x - y) > 1e-3
        and abs(x * x - y) > 1e-3
        and abs(x - 0.5) > 1e-3
        and abs(2 * y - 1.0) > 1e-3,
    ),
    P(
        "trig",
        """
def f(x, y):
    return math.sin(x) * math.cos(y) + math.tan(x * 0.5)
""",
        [F(-2, 2), F(-4, 4)],
    ),
    P(
        "inverse_trig",
        """
def f(x, y):
    return math.asin(x) + math.acos(x * 0.5) * y + math.atan(y * x)
""",
        [F(-0.9, 0.9), F(-3, 3)],
    ),
    P(
        "atan2",
        """
def f(y, x):
    return math.atan2(y, x) * (1.0 + x)
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda y, x: x * x + y * y > 0.01 and not (x < 0 and abs(y) < 1e-2),
    ),
    P(
        "hyperbolic",
        """
def f(x, y):
    return math.sinh(x) + math.cosh(y) * math.tanh(x * y)
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "exp_expm1_log_log1p",
        """
def f(x, y):
    return math.exp(x) + math.expm1(y) + math.log(x * x + 1.0) + math.log1p(y * y)
""",
        [F(-3, 3), F(-3, 3)],
    ),
    P(
        "log2_log10",
        """
def f(x, y):
    return math.log2(x) * math.log10(y) + math.log2(x * y)
""",
        [F(0.1, 10), F(0.1, 10)],
    ),
    P(
        "sqrt_pow_hypot",
        """
def f(x, y):
    return math.sqrt(x) + math.pow(x, y) + math.hypot(x, y)
""",
        [F(0.1, 4), F(-2, 2)],
    ),
    P(
        "fabs",
        """
def f(x, y):
    return math.fabs(x) * x + math.fabs(y - 1.0)
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: abs(x) > 1e-3 and abs(y - 1.0) > 1e-3,
    ),
    P(
        "erf_erfc",
        """
def f(x, y):
    return math.erf(x) * math.erfc(y) + math.erf(x * y)
""",
        [F(-3, 3), F(-3, 3)],
    ),
    P(
        "math_constants",
        """
def f(x, y):
    return math.pi * x * x + math.e ** y - math.sin(math.pi * x)
""",
        [F(-2, 2), F(-2, 2)],
    ),
    P(
        "int_argument_mixing",
        """
def f(x, n):
    return x * n + n ** 2 + x ** n - n // 2 + n % 3
""",
        [F(0.5, 3), I(0, 5)],
    ),
    P(
        "int_locals_mixing",
        """
def f(x):
    k = 3
    m = k * 2 + 7 // 2
    y = k * x + m
    return y * y / k - x * m
""",
        [F(-3, 3)],
    ),
    P(
        "augmented_assignments",
        """
def f(x, y):
    z = x
    z += y
    z *= x
    z -= 1.0
    z /= y
    z **= 2
    return z
""",
        [F(-2, 2), F(0.5, 3)],
    ),
    P(
        "tuple_packing_unpacking_swap",
        """
def f(x, y):
    a, b = x * y, x + y
    a, b = b, a
    t = (a, b, x)
    p, q, r = t
    return p * q - r * r
""",
        [F(-3, 3), F(-3, 3)],
    ),
    P(
        "rebinding_parameters",
        """
def f(x):
    x = x * 2.0
    x = math.sin(x) + x
    x = x * x
    return x
""",
        [F(-2, 2)],
    ),
    P(
        "nested_composition",
        """
def f(x):
    return math.exp(math.sin(x) * math.cos(x)) / (1.0 + x * x) + math.sqrt(1.0 + math.tanh(x) ** 2)
""",
        [F(-3, 3)],
    ),
    P(
        "unused_and_constant_paths",
        """
def f(x, y):
    unused = math.exp(y) * 3.0
    c = 4.0
    c = c * 2.0
    return x * c + 1.0
""",
        [F(-3, 3), F(-3, 3)],
    ),
    P(
        "float_literals_and_ints_in_expressions",
        """
def f(x):
    return (x + 1) * (x - 2) * 3 / 4 + 2 * x ** 2
""",
        [F(-3, 3)],
    ),
    P(
        "same_variable_used_many_times",
        """
def f(x):
    y = x * x
    return y * y + y * x + math.sin(y) * y
""",
        [F(-2, 2)],
    ),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_scalar_gradient_matches_autograd_and_fd(program, data):
    args = draw_args(data, program.args)
    check_gradient(program, args)


# --------------------------------------------------------------------------------------------------------
# Constructs autograd cannot trace: hand-derived formulas (plus finite differences where smooth)
# --------------------------------------------------------------------------------------------------------


def floordiv_prog(x, y):
    return (x // y) * x + x * y


def floordiv_const(x):
    return x // 2.0 + x * 3.0


def int_cut(x):
    return int(x) * x + int(x * 3.0)


def round_cut(x):
    return round(x) * x + round(x, 2) * 2.0


def float_identity(x, n):
    return float(x) * x + float(n) * x


def mod_prog(a, b):
    return a % b


HAND_CASES = [
    # (function, arg strategies, hand gradient, kink-avoiding predicate)
    (
        floordiv_prog,
        (F(-10, 10), F(0.5, 3)),
        lambda x, y: ((x // y) + y, x),
        lambda x, y: frac_distance(x / y) > 1e-3,
    ),
    (floordiv_const, (F(-10, 10),), lambda x: (3.0,), lambda x: frac_distance(x / 2.0) > 1e-3),
    (
        int_cut,
        (F(-5, 5),),
        lambda x: (float(int(x)),),
        lambda x: frac_distance(x) > 1e-3 and frac_distance(3 * x) > 1e-3,
    ),
    (
        round_cut,
        (F(-5, 5),),
        lambda x: (float(round(x)),),
        lambda x: abs(frac_distance(x) - 0.5) > 1e-3 and abs(frac_distance(100 * x) - 0.5) > 1e-1,
    ),
    (float_identity, (F(-5, 5), I(-3, 3)), lambda x, n: (2.0 * x + n,), None),
    (
        mod_prog,
        (F(-10, 10), F(-3, 3)),
        lambda a, b: (1.0, -math.floor(a / b)),
        lambda a, b: abs(b) > 0.5 and frac_distance(a / b) > 1e-3,
    ),
]

_HAND_GRADS = {}


def _hand_grad(fn, specs):
    key = fn.__name__
    if key not in _HAND_GRADS:
        argnums = tuple(k for k, s in enumerate(specs) if isinstance(s, F))
        _HAND_GRADS[key] = (dp.grad(fn, argnums=argnums), argnums)
    return _HAND_GRADS[key]


@pytest.mark.parametrize("fn,specs,hand,ok", HAND_CASES, ids=[c[0].__name__ for c in HAND_CASES])
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_cut_and_integer_builtins_hand_formulas(fn, specs, hand, ok, data):
    args = draw_args(data, specs)
    if ok is not None:
        assume(ok(*args))
    grad, argnums = _hand_grad(fn, specs)
    got = grad(*args)
    assert isinstance(got, tuple) and len(got) == len(argnums)
    expected = hand(*args)
    for k, g, e in zip(argnums, got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-9, atol=1e-12, err_msg=f"{fn.__name__} arg {k} at {args}")
        fd, smooth = finite_difference(fn, args, k)
        if smooth:
            np.testing.assert_allclose(g, fd, rtol=1e-4, atol=1e-5, err_msg=f"{fn.__name__} FD arg {k}")


def test_floordiv_has_zero_derivative_exactly():
    g = dp.grad(floordiv_const)
    for x in (-7.3, -0.2, 0.7, 5.1):
        assert g(x) == pytest.approx(3.0, abs=0.0, rel=1e-15)


def test_modulo_derivative_wrt_divisor_is_minus_floor_of_quotient():
    g = dp.grad(mod_prog, argnums=(0, 1))
    for a, b in [(7.3, 2.0), (-7.3, 2.0), (7.3, -2.0), (-7.3, -2.0), (0.4, 1.5)]:
        da, db = g(a, b)
        assert da == pytest.approx(1.0)
        assert db == pytest.approx(-math.floor(a / b))


def test_min_max_abs_pick_the_active_branch():
    def pick(x, y):
        return min(x, y) * 2.0 + max(x, y) * 3.0 + abs(x) * 5.0

    g = dp.grad(pick, argnums=(0, 1))
    dx, dy = g(1.0, 2.0)
    assert (dx, dy) == (pytest.approx(2.0 + 5.0), pytest.approx(3.0))
    dx, dy = g(-3.0, -4.0)
    assert (dx, dy) == (pytest.approx(3.0 - 5.0), pytest.approx(2.0))
