"""Control flow: if/elif/else (also on active values), boolean operators, for-range with run-time
start/stop/step (negative steps, empty ranges), while loops with run-time trip counts, nested loops, break,
continue, early returns, variables first assigned inside branches and loops, and very long loops.
"""
import math
import time

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
        "if_else_on_active_values",
        """
def f(x, y):
    if x > y:
        r = x * y
    else:
        r = x + y * y
    return r
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: abs(x - y) > 1e-3,
    ),
    P(
        "elif_chain_on_active_value",
        """
def f(x, y):
    if x < -1.0:
        r = x ** 2
    elif x < 0.5:
        r = math.sin(x)
    elif x < 2.0:
        r = math.exp(x)
    else:
        r = 3.0 * x
    return r * y
""",
        [F(-3, 3), F(-2, 2)],
        ok=lambda x, y: away_from(x, (-1.0, 0.5, 2.0)),
    ),
    P(
        "and_or_not_in_conditions",
        """
def f(x, y):
    if (x > 0.0 and y > 0.0) or not (x > -1.0):
        r = x * y
    else:
        r = x - y
    if not (y < 1.0) and x != 0.5:
        r = r * 2.0
    return r
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: away_from(x, (0.0, -1.0, 0.5)) and away_from(y, (0.0, 1.0)),
    ),
    P(
        "comparison_operators",
        """
def f(x, y):
    r = x
    if x <= y:
        r = r * y
    if x >= 1.0:
        r = r + x * x
    if x == y:
        r = r * 100.0
    if y != 2.0:
        r = r - y
    return r
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: abs(x - y) > 1e-3 and away_from(x, (1.0,)) and away_from(y, (2.0,)),
    ),
    P(
        "chained_comparison",
        """
def f(x):
    if -1.0 < x <= 1.0:
        return x * x * x
    return 2.0 * x
""",
        [F(-3, 3)],
        ok=lambda x: away_from(x, (-1.0, 1.0)),
    ),
    P(
        "variable_first_assigned_in_branch",
        """
def f(x, y, n):
    if n > 2:
        z = x * x
        w = y
    else:
        z = y * x
        w = x
    return z + w * 3.0
""",
        [F(-3, 3), F(-3, 3), I(0, 5)],
    ),
    P(
        "branch_on_int_argument",
        """
def f(x, n):
    if n % 2 == 0:
        return math.sin(x) * n
    elif n == 1:
        return x * x
    return math.cos(x) + n
""",
        [F(-3, 3), I(0, 5)],
    ),
    P(
        "early_return_in_branch",
        """
def f(x, y):
    if x > 0.0:
        return x * y
    z = x * x
    return z + y
""",
        [F(-3, 3), F(-3, 3)],
        ok=lambda x, y: abs(x) > 1e-3,
    ),
    P(
        "for_range_constant",
        """
def f(x):
    s = 0.0
    for i in range(6):
        s = s + x ** i / (i + 1)
    return s
""",
        [F(-2, 2)],
    ),
    P(
        "for_range_runtime_start_stop_step",
        """
def f(x, a, b, c):
    s = x
    for i in range(a, b, c):
        s = s * x + i
    return s
""",
        [F(-1.5, 1.5), I(-6, 6), I(-6, 6), I(1, 3)],
    ),
    P(
        "for_range_negative_step",
        """
def f(x, a, b, c):
    s = x
    step = -c
    for i in range(a, b, step):
        s = s * x + 0.5 * i
    return s
""",
        [F(-1.5, 1.5), I(-6, 6), I(-6, 6), I(1, 3)],
    ),
    P(
        "for_range_possibly_empty",
        """
def f(x, y, n):
    s = y
    for i in range(n):
        s = math.sin(s) * x + i
    return s * y
""",
        [F(-2, 2), F(-2, 2), I(0, 4)],
    ),
    P(
        "for_range_computed_bounds",
        """
def f(x, n):
    s = 1.0
    for i in range(n // 2, 2 * n - 1):
        s = s * (1.0 + x / (i + 1))
    return s
""",
        [F(-0.5, 2), I(0, 6)],
    ),
    P(
        "while_runtime_trip_count",
        """
def f(x, n):
    i = 0
    y = x
    while i < n:
        y = y * 0.9 + math.sin(y) * x
        i += 1
    return y
""",
        [F(-2, 2), I(0, 8)],
    ),
    P(
        "while_decrementing_counter",
        """
def f(x, n):
    s = 0.0
    while n > 0:
        s = s + x * n
        s = s * 0.5
        n -= 2
    return s + x
""",
        [F(-2, 2), I(-2, 9)],
    ),
    P(
        "while_condition_on_active_value",
        """
def f(x):
    y = x
    while y < 10.0:
        y = y * 1.5 + 0.1
    return y
""",
        [F(0.5, 3)],
    ),
    P(
        "nested_loops",
        """
def f(x, y, n, m):
    s = 0.0
    for i in range(n):
        for j in range(m):
            s = s * x + y / (1 + i + j)
        s = s * 0.5 + x
    return s
""",
        [F(-1.5, 1.5), F(-2, 2), I(0, 4), I(0, 4)],
    ),
    P(
        "nested_while_in_for",
        """
def f(x, n):
    s = x
    for i in range(n):
        j = 0
        while j < i:
            s = s + math.cos(s) * 0.1 * x
            j += 1
    return s
""",
        [F(-2, 2), I(0, 5)],
    ),
    P(
        "break_on_int_condition",
        """
def f(x, n, k):
    s = 1.0
    for i in range(n):
        if i == k:
            break
        s = s * x + 1.0
    return s
""",
        [F(-1.5, 1.5), I(0, 6), I(0, 6)],
    ),
    P(
        "break_on_active_condition",
        """
def f(x):
    s = 1.0
    for i in range(20):
        s = s * x + 1.0
        if s > 5.0:
            break
    return s
""",
        [F(0.2, 1.5)],
    ),
    P(
        "while_true_with_break",
        """
def f(x, n):
    i = 0
    s = x
    while True:
        if i >= n:
            break
        s = s * s * 0.5 + x
        i = i + 1
    return s
""",
        [F(-1, 1), I(0, 5)],
    ),
    P(
        "continue_in_loop",
        """
def f(x, n):
    s = 0.0
    for i in range(n):
        if i % 3 == 1:
            continue
        s = s + x ** 2 * i + math.sin(x * i)
    return s
""",
        [F(-2, 2), I(0, 8)],
    ),
    P(
        "continue_on_active_condition",
        """
def f(x, n):
    s = 0.0
    for i in range(n):
        t = math.sin(x * (i + 1))
        if t < 0.0:
            continue
        s = s + t * t
    return s
""",
        [F(-2, 2), I(0, 6)],
        ok=lambda x, n: all(abs(math.sin(x * (i + 1))) > 1e-3 for i in range(n)),
    ),
    P(
        "early_return_inside_loop",
        """
def f(x, y, n, k):
    s = 0.0
    for i in range(n):
        s = s * x + y
        if i == k:
            return s * 2.0
    return s
""",
        [F(-1.5, 1.5), F(-2, 2), I(0, 6), I(0, 6)],
    ),
    P(
        "early_return_inside_nested_loop",
        """
def f(x, n):
    s = x
    for i in range(n):
        for j in range(n):
            s = s * 0.5 + x * j
            if i * j == 2:
                return s + i
    return s * s
""",
        [F(-2, 2), I(0, 4)],
    ),
    P(
        "break_inner_continue_outer",
        """
def f(x, n):
    s = 0.0
    for i in range(n):
        if i == 1:
            continue
        for j in range(n):
            if j > i:
                break
            s = s + x ** 2 / (1 + j) + x * i
    return s
""",
        [F(-2, 2), I(0, 5)],
    ),
    P(
        "variable_first_assigned_inside_loop",
        """
def f(x, n):
    s = x
    for i in range(n):
        t = x * i
        u = t * t
        s = s + u
    return s
""",
        [F(-2, 2), I(0, 5)],
    ),
    P(
        "loop_carried_tuple_swap",
        """
def f(x, y, n):
    a, b = x, y
    for i in range(n):
        a, b = b, a + b * 0.5
    return a * b
""",
        [F(-2, 2), F(-2, 2), I(0, 6)],
    ),
    P(
        "branch_inside_loop_on_active_value",
        """
def f(x, y, n):
    s = y
    for i in range(n):
        if s > 1.0:
            s = s * 0.5
        else:
            s = s * x + y
    return s
""",
        [F(-1.5, 1.5), F(-2, 2), I(0, 6)],
    ),
    P(
        "integer_counter_alongside_active",
        """
def f(x, n):
    k = 0
    s = x
    for i in range(n):
        k += 2
        s = s * x
    return s + k
""",
        [F(-2, 2), I(0, 6)],
    ),
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_control_flow_gradient_matches_autograd_and_fd(program, data):
    args = draw_args(data, program.args)
    check_gradient(program, args)


# --------------------------------------------------------------------------------------------------------
# Specific shapes with hand-derived expectations
# --------------------------------------------------------------------------------------------------------


def horner_range(x, a, b, c):
    s = 1.0
    for i in range(a, b, c):
        s = s * x + 1.0
    return s


def _expected_horner(x, a, b, c):
    n = len(range(a, b, c))
    # s = x^n + x^(n-1) + ... + 1  ->  ds/dx = sum_k k x^(k-1)
    return sum(k * x ** (k - 1) for k in range(1, n + 1))


@pytest.mark.parametrize(
    "a,b,c",
    [(0, 5, 1), (5, 0, -1), (10, -3, -4), (3, 3, 1), (5, 0, 1), (0, 5, -1), (-2, 7, 3), (7, -2, -3)],
)
def test_range_trip_counts_including_empty_and_negative(a, b, c):
    g = dp.grad(horner_range)
    for x in (0.7, -1.3):
        np.testing.assert_allclose(g(x, a, b, c), _expected_horner(x, a, b, c), rtol=1e-12, atol=1e-12)


def long_for_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + math.sin(x * i) * 1e-3
    return s


def long_while_loop(x, n):
    y = 1.0
    i = 0
    while i < n:
        y = y * (1.0 + x * 1e-5)
        i += 1
    return y


def test_long_for_loop_hundred_thousand_iterations():
    n = 100_000
    g = dp.grad(long_for_loop)
    x = 0.3
    got = g(x, n)
    i = np.arange(n, dtype=np.float64)
    expected = float(np.sum(i * np.cos(x * i)) * 1e-3)
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-8)
    start = time.perf_counter()
    again = g(0.31, n)
    elapsed = time.perf_counter() - start
    np.testing.assert_allclose(again, float(np.sum(i * np.cos(0.31 * i)) * 1e-3), rtol=1e-8, atol=1e-8)
    assert elapsed < 5.0, f"compiled gradient of a 1e5-iteration loop took {elapsed:.2f}s"


def test_long_while_loop_hundred_thousand_iterations():
    n = 100_000
    vg = dp.value_and_grad(long_while_loop)
    x = 0.7
    value, grad = vg(x, n)
    np.testing.assert_allclose(value, (1.0 + x * 1e-5) ** n, rtol=1e-9)
    np.testing.assert_allclose(grad, n * 1e-5 * (1.0 + x * 1e-5) ** (n - 1), rtol=1e-9)


def active_while(x):
    y = x
    count = 0
    while y < 100.0:
        y = y * 2.0
        count += 1
    return y


def test_while_trip_count_depends_on_active_value():
    g = dp.grad(active_while)
    for x in (0.3, 1.7, 3.1, 60.0, 150.0):
        k = 0
        y = x
        while y < 100.0:
            y *= 2.0
            k += 1
        assert g(x) == pytest.approx(2.0 ** k)


def branchy_early_returns(x, y):
    if x < 0.0:
        if y < 0.0:
            return x * y
        return x + y * y
    elif x < 1.0:
        for i in range(3):
            if y > 2 - i:
                return x * i * y
        return math.exp(x)
    return math.log(x) * y


@pytest.mark.parametrize(
    "x,y,expected",
    [
        (-1.5, -2.0, (-2.0, -1.5)),
        (-1.5, 2.0, (1.0, 4.0)),
        (0.5, 2.5, (0.0, 0.0)),  # returns at i == 0: x * 0 * y
        (0.5, 1.5, (1.5, 0.5)),  # i == 1
        (0.5, 0.5, (1.0, 1.0)),  # i == 2
        (0.5, -3.0, (math.exp(0.5), 0.0)),
        (2.0, 3.0, (3.0 / 2.0, math.log(2.0))),
    ],
)
def test_early_returns_in_nested_branches_and_loops(x, y, expected):
    g = dp.grad(branchy_early_returns, argnums=(0, 1))
    got = g(x, y)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    for k in (0, 1):
        fd, smooth = finite_difference(branchy_early_returns, (x, y), k)
        assert smooth
        np.testing.assert_allclose(got[k], fd, rtol=1e-4, atol=1e-6)
