"""Reading elements of 1-D float64 array arguments (`a[i]`, `a[-1]`, `a.shape[0]`, `len(a)`); the gradient
wrt an array argument is an array of the same shape.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import A, F, I, Program, check_gradient, draw_args, finite_difference

HEADER = "import math\nimport diffprog as dp\n\n"


def P(name, body, args, **kw):
    return Program(name, HEADER + body, tuple(args), **kw)


def _distinct(a, margin=1e-3):
    s = np.sort(a)
    return bool(np.all(np.diff(s) > margin))


PROGRAMS = [
    P(
        "sum_of_squares_shape",
        """
def f(a):
    s = 0.0
    for i in range(a.shape[0]):
        s = s + a[i] * a[i]
    return s
""",
        [A(-3, 3)],
    ),
    P(
        "horner_len_with_scalar",
        """
def f(a, x):
    s = 0.0
    for i in range(len(a)):
        s = s * x + a[i]
    return s
""",
        [A(-2, 2), F(-1.5, 1.5)],
    ),
    P(
        "negative_and_fixed_indices",
        """
def f(a):
    return a[-1] * a[0] + a[1] - a[-2] * 2.0
""",
        [A(-3, 3, min_len=2)],
    ),
    P(
        "computed_indices",
        """
def f(a, k):
    n = a.shape[0]
    s = 0.0
    for i in range(n):
        s = s + a[(i * k) % n] * a[i] * (i + 1)
    return s
""",
        [A(-2, 2), I(0, 5)],
    ),
    P(
        "dot_two_arrays",
        """
def f(a, b):
    s = 0.0
    for i in range(len(a)):
        s = s + a[i] * b[i]
    return s
""",
        [A(-3, 3, group="n"), A(-3, 3, group="n")],
    ),
    P(
        "math_on_elements_and_mean",
        """
def f(a):
    n = len(a)
    s = 0.0
    for i in range(n):
        s = s + math.exp(a[i] * 0.5) + math.sin(a[i]) * a[i]
    return s / n
""",
        [A(-2, 2)],
    ),
    P(
        "running_max_with_branch",
        """
def f(a):
    m = a[0]
    for i in range(1, a.shape[0]):
        if a[i] > m:
            m = a[i]
    return m * m + a[0]
""",
        [A(-3, 3)],
        ok=lambda a: _distinct(a),
    ),
    P(
        "reverse_loop_negative_step",
        """
def f(a, x):
    s = 0.0
    for i in range(len(a) - 1, -1, -1):
        s = s * x + a[i] * a[i]
    return s
""",
        [A(-2, 2), F(-1.5, 1.5)],
    ),
    P(
        "while_over_array",
        """
def f(a):
    i = 0
    s = 1.0
    while i < len(a):
        s = s * (1.0 + a[i] * 0.1)
        i += 1
    return s
""",
        [A(-3, 3)],
    ),
    P(
        "array_passed_to_helper",
        """
def get(a, i):
    return a[i]

def weighted(a, w):
    s = 0.0
    for i in range(len(a)):
        s = s + get(a, i) * get(w, i)
    return s

def f(a, w, x):
    return weighted(a, w) * x + get(a, -1) * x * x
""",
        [A(-2, 2, group="n"), A(-2, 2, group="n"), F(-2, 2)],
    ),
    P(
        "break_when_element_large",
        """
def f(a, x):
    s = 0.0
    for i in range(len(a)):
        if a[i] > 1.0:
            break
        s = s + a[i] * x
    return s
""",
        [A(-2, 2), F(-2, 2)],
        ok=lambda a, x: bool(np.all(np.abs(a - 1.0) > 1e-3)),
    ),
    P(
        "unused_elements_get_zero",
        """
def f(a):
    return a[0] * 3.0
""",
        [A(-3, 3, min_len=1, max_len=5)],
    ),
    P(
        "pairwise_differences",
        """
def f(a):
    s = 0.0
    n = a.shape[0]
    for i in range(n - 1):
        d = a[i + 1] - a[i]
        s = s + d * d
    return s
""",
        [A(-3, 3)],
    ),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_array_gradient_matches_autograd_and_fd(program, data):
    args = draw_args(data, program.args)
    check_gradient(program, args)


# --------------------------------------------------------------------------------------------------------
# Shape/type and hand-formula checks
# --------------------------------------------------------------------------------------------------------


def sum_cubes(a):
    s = 0.0
    for i in range(a.shape[0]):
        s = s + a[i] ** 3
    return s


def last_times_first(a):
    return a[-1] * a[0] * len(a)


def test_gradient_wrt_array_is_array_of_same_shape_and_values():
    g = dp.grad(sum_cubes)
    for n in (1, 3, 7):
        a = np.linspace(-1.0, 2.0, n)
        got = g(a)
        assert isinstance(got, np.ndarray)
        assert got.shape == a.shape
        assert got.dtype.kind == "f"
        np.testing.assert_allclose(got, 3 * a**2, rtol=1e-12)


def test_gradient_uses_negative_index_and_len():
    g = dp.grad(last_times_first)
    a = np.array([2.0, 5.0, -1.0, 4.0])
    got = g(a)
    np.testing.assert_allclose(got, [4.0 * 4, 0.0, 0.0, 2.0 * 4], rtol=1e-12)
    a1 = np.array([3.0])
    # single element: a[-1] is a[0]; f = 1 * a0^2
    np.testing.assert_allclose(g(a1), [6.0], rtol=1e-12)


def test_gradient_does_not_modify_the_input_array():
    g = dp.grad(sum_cubes)
    a = np.array([1.0, -2.0, 0.5])
    before = a.copy()
    g(a)
    np.testing.assert_array_equal(a, before)


def dot_scaled(a, b, x):
    s = 0.0
    for i in range(len(a)):
        s = s + a[i] * b[i]
    return s * x


def test_mixed_array_and_scalar_argnums():
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([-1.0, 0.5, 2.0])
    x = 1.5
    ga, gb, gx = dp.grad(dot_scaled, argnums=(0, 1, 2))(a, b, x)
    np.testing.assert_allclose(ga, b * x)
    np.testing.assert_allclose(gb, a * x)
    np.testing.assert_allclose(gx, float(a @ b))
    only_b = dp.grad(dot_scaled, argnums=1)(a, b, x)
    np.testing.assert_allclose(only_b, a * x)
    fd, _ = finite_difference(dot_scaled, (a, b, x), 1)
    np.testing.assert_allclose(only_b, fd, rtol=1e-6)
