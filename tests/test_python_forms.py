"""Python forms users write in real programs, run unchanged: iteration over arrays (`for v in arr`, rows of a
2-D array), `enumerate`, `zip` (of arrays, and of an array with a range), loops over a tuple of numbers, `assert`,
str parameters compared with ==/!=, and `sum(...)` of a generator over a range. Each: the compiled primal equals
plain Python, dp.grad matches autograd and central differences, dp.jvp matches central differences.
"""
import autograd
import numpy as np
import pytest

import diffprog as dp
from reference import autograd_namespace, write_module

HEADER = "import math\nimport numpy as np\nimport diffprog as dp\n\n"


def _load(name, source):
    module, path = write_module(HEADER + source, name)
    return module.f, autograd_namespace(HEADER + source, path)["f"]


def _fd(fun, args, k, direction):
    h = 1e-6
    plus = list(args)
    minus = list(args)
    plus[k] = args[k] + h * direction
    minus[k] = args[k] - h * direction
    return (fun(*plus) - fun(*minus)) / (2 * h)


def check(name, source, args, diff=None, autograd_ok=True):
    """Primal, reverse (vs autograd and FD) and forward (vs FD) of `f` at `args`; `diff`: the argnums."""
    f, ref = _load(name, source)
    diff = tuple(k for k, a in enumerate(args) if isinstance(a, (float, np.ndarray))) if diff is None else diff
    expected = f(*args)
    np.testing.assert_allclose(dp.differentiable(f)(*args), expected, rtol=1e-12, atol=1e-12)
    grads = dp.grad(f, argnums=diff)(*args)
    rng = np.random.default_rng(0)
    for k, got in zip(diff, grads):
        if isinstance(args[k], np.ndarray):
            fd = np.zeros_like(args[k])
            for j in np.ndindex(args[k].shape):
                e = np.zeros_like(args[k])
                e[j] = 1.0
                fd[j] = _fd(f, args, k, e)
        else:
            fd = _fd(f, args, k, 1.0)
        np.testing.assert_allclose(got, fd, rtol=1e-5, atol=1e-6, err_msg=f"{name}: grad vs FD, arg {k}")
        if autograd_ok:
            np.testing.assert_allclose(got, autograd.grad(ref, k)(*args), rtol=1e-10, atol=1e-12,
                                       err_msg=f"{name}: grad vs autograd, arg {k}")
    tangents = tuple((rng.standard_normal(a.shape) if isinstance(a, np.ndarray) else 0.7) if k in diff else None
                     for k, a in enumerate(args))
    value, tangent_out = dp.jvp(f, args, tangents)
    np.testing.assert_allclose(value, expected, rtol=1e-12, atol=1e-12)
    fd = 0.0
    h = 1e-6
    plus = tuple(a + h * t if t is not None else a for a, t in zip(args, tangents))
    minus = tuple(a - h * t if t is not None else a for a, t in zip(args, tangents))
    fd = (f(*plus) - f(*minus)) / (2 * h)
    np.testing.assert_allclose(tangent_out, fd, rtol=1e-5, atol=1e-6, err_msg=f"{name}: jvp vs FD")


X = np.array([0.3, -1.2, 2.0, 0.7])
Y = np.array([1.1, 0.4, -0.6, 1.5])
M = np.array([[0.5, -1.0, 2.0], [1.5, 0.3, -0.2], [0.9, 1.1, -1.3]])

# ---- 1. iteration: arrays, rows, enumerate, zip, tuples ---------------------------------------------------------

ITERATION = [
    ("for_over_1d_array", """
def f(x):
    s = 0.0
    for v in x:
        s += math.sin(v) * v
    return s
""", (X,)),
    ("for_over_rows_of_2d_array", """
def f(m):
    s = 0.0
    for row in m:
        s += row[0] * row[1] - np.sum(row * row)
    return s
""", (M,)),
    ("enumerate_array", """
def f(x, y):
    s = 0.0
    for i, v in enumerate(x):
        s += (i + 1) * v * y[i]
    return s
""", (X, Y)),
    ("zip_two_arrays", """
def f(x, y):
    s = 0.0
    for a, b in zip(x, y):
        s += a * math.exp(b)
    return s
""", (X, Y)),
    ("zip_array_with_range", """
def f(x):
    s = 0.0
    for k, a in zip(range(2, 20), x):
        s += k * a * a
    return s
""", (X,)),
    ("zip_stops_at_the_shortest", """
def f(x, y):
    s = 0.0
    for a, b in zip(x, y[:2]):
        s += a * b
    return s
""", (X, Y)),
    ("for_over_array_with_break_and_continue", """
def f(x, t):
    s = 0.0
    for v in x:
        if v < 0.0:
            continue
        if s > t:
            break
        s += v * v
    return s
""", (X, 1.0)),
    ("for_over_tuple_of_numbers", """
def f(x):
    s = 0.0
    for c in (1.0, 2.5, -0.5):
        s += c * x * x
    return s
""", (0.8,)),
    ("for_over_tuple_variable", """
def f(x, y):
    t = (x, y, x * y)
    s = 0.0
    for c in t:
        s += math.sin(c)
    return s
""", (0.8, -0.3)),
    ("for_over_expressions_evaluated_once", """
def pair(a):
    return a, a * a


def f(x, m):
    s = 0.0
    for c in pair(x[0]):
        s += c
    for v in x[1:]:
        s += v * v
    for col in m.T:
        s += col[0] * col[1]
    for d in np.cumsum(x):
        s += d * d
    for e in m.ravel():
        s += e * s
    return s
""", (X, M)),
    ("nested_iteration", """
def f(m, x):
    s = 0.0
    for row in m:
        for a, b in zip(row, x):
            s += a * b
    return s
""", (M, X[:3])),
]


@pytest.mark.parametrize("name,source,args", ITERATION, ids=[p[0] for p in ITERATION])
def test_iteration_forms(name, source, args):
    check(name, source, args)


def test_iteration_lowers_to_a_range_loop_with_reads():
    f, _ = _load("lowering", ITERATION[2][1])
    text = dp.source(f, mode="primal", args=(X, Y))
    code = "\n".join(line for line in text.splitlines() if not line.strip().startswith("#"))
    assert "for i in range(" in code and "v = " in code and "enumerate" not in code


def test_iteration_over_an_empty_array():
    f, _ = _load("empty", ITERATION[0][1])
    assert dp.differentiable(f)(np.zeros(0)) == 0.0
    assert dp.grad(f)(np.zeros(0)).shape == (0,)


# ---- 2. assert: checked in the primal, no derivative ------------------------------------------------------------

ASSERT_SOURCE = """
def helper(v):
    assert v == v, "NaN in the data"
    return v * v


def f(x, y):
    assert x > 0.0, "x must be positive"
    s = 0.0
    for v in y:
        s += helper(v) * x
        assert v < 100.0
    return s * math.log(x)
"""


def test_assert_passes_and_has_no_derivative():
    check("assert", ASSERT_SOURCE, (1.5, Y))


@pytest.mark.parametrize("how", ["primal", "interpreted", "grad", "jvp"])
def test_assert_fails_with_its_message(how):
    f, _ = _load("assert_fails", ASSERT_SOURCE)
    run = {"primal": dp.differentiable(f), "interpreted": dp.differentiable(jit=False)(f), "grad": dp.grad(f),
           "jvp": lambda x, y: dp.jvp(f, (x, y), (1.0, np.ones_like(y)))}[how]
    with pytest.raises(AssertionError, match="x must be positive"):
        run(-1.0, Y)
    with pytest.raises(AssertionError, match="NaN in the data"):
        run(1.0, np.array([1.0, np.nan]))
    with pytest.raises(AssertionError):
        run(1.0, np.array([1.0, 200.0]))


def test_assert_message_must_be_a_constant():
    f, _ = _load("assert_message", """
def f(x):
    message = "bad"
    assert x > 0.0, message
    return x
""")
    with pytest.raises(dp.DifferentiabilityError) as error:
        dp.grad(f)(1.0)
    assert [d.code for d in error.value.diagnostics] == ["DP101"]
    assert "constant string" in str(error.value)


# ---- 3. str parameters compared with == / != --------------------------------------------------------------------

STR_SOURCE = """
def reduce(x, how="sum"):
    if how == "sum":
        return np.sum(x)
    return np.sum(x * x)


def f(x, mode="sum"):
    if mode == "sum":
        r = reduce(x)
    elif mode != "max":
        r = reduce(x, "squares") + reduce(x, how=mode)
    else:
        r = np.max(x) * x[0]
    return r
"""


@pytest.mark.parametrize("args", [(X,), (X, "sum"), (X, "squares"), (X, "max")], ids=["default", "sum", "sq", "max"])
def test_str_parameter_compared_and_branched_on(args):
    check("str_mode", STR_SOURCE, args, diff=(0,))


MEMBERSHIP_SOURCE = """
MODE = "mean"


def f(x, mode="sum"):
    if mode in ("sum", "total"):
        return np.sum(x * x)
    if MODE == "mean" and mode not in ("first",):
        return np.mean(x)
    return x[0] * x[1]
"""


@pytest.mark.parametrize("mode", ["sum", "total", "mean", "first"])
def test_str_membership_in_a_tuple_and_str_globals(mode):
    check("str_in", MEMBERSHIP_SOURCE, (X, mode), diff=(0,))


def test_str_parameter_interpreted():
    f, _ = _load("str_interpreted", STR_SOURCE)
    g = dp.differentiable(jit=False)(f)
    assert g(X, "squares") == f(X, "squares") and g(X) == f(X)


def test_str_parameter_is_not_differentiable():
    f, _ = _load("str_wrt", STR_SOURCE)
    with pytest.raises(dp.DifferentiabilityError) as error:
        dp.grad(f, argnums=1)(X, "sum")
    assert [d.code for d in error.value.diagnostics] == ["DP106"]


# ---- 4. sum of a generator expression: an accumulation loop ---------------------------------------------------

GENERATORS = [
    ("sum_over_range", """
def f(x, w, n):
    return sum(x[i] * w[i] for i in range(n))
""", (X, Y, 3)),
    ("sum_over_array_with_condition", """
def f(x):
    return sum(math.sin(v) * v for v in x if v > 0.0)
""", (X,)),
    ("sum_nested_generators_and_start", """
def f(x, w):
    i = 2
    total = sum((x[i] * w[j] for i in range(len(x)) for j in range(i)), 0.5)
    return total * x[i]
""", (X, Y)),
    ("sum_over_zip_and_enumerate", """
def f(x, w):
    return sum(a * b for a, b in zip(x, w)) + sum(k * v * v for k, v in enumerate(x))
""", (X, Y)),
]


@pytest.mark.parametrize("name,source,args", GENERATORS, ids=[p[0] for p in GENERATORS])
def test_sum_of_generator(name, source, args):
    check(name, source, args)


def test_generator_outside_sum_is_still_reported():
    f, _ = _load("genexp_elsewhere", """
def f(x):
    return max(v for v in x)
""")
    with pytest.raises(dp.DifferentiabilityError) as error:
        dp.grad(f)(X)
    assert [d.code for d in error.value.diagnostics] == ["DP101"]
    assert "generator expression" in str(error.value)


def test_iterating_something_else_is_reported():
    f, _ = _load("reversed", """
def f(x):
    s = 0.0
    for v in reversed(x):
        s += v
    return s
""")
    with pytest.raises(dp.DifferentiabilityError) as error:
        dp.grad(f)(X)
    assert [d.code for d in error.value.diagnostics] == ["DP101"]
    assert "only loops over range(...), arrays" in str(error.value)
