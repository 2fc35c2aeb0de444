"""Transforms called inside differentiated code: a function whose body calls `dp.grad(g)(...)`,
`dp.value_and_grad(g)(...)`, `dp.jvp(g, ...)` or `dp.hvp(g, ...)` is compiled, and differentiated in reverse and
forward mode (nested and bilevel optimization).

Each program is checked on hypothesis-drawn inputs with the generated code run without numba (jit=False: the same
code, no compile cost):
- the outer function's value against a hand formula and against the same source run by autograd (whose
  grad/jvp/hvp stand in for diffprog's);
- dp.grad of the outer function against autograd's derivative of that source (an independent method) and
  against central finite differences of the outer function;
- dp.jvp of the outer function against the gradient (the dot-product test: <grad f, u> = jvp(f, u)).
A few programs are compiled with numba; problems are reported at the user's call.
"""
import builtins
import math
import textwrap
import types
from dataclasses import dataclass

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from autograd.tracer import getval
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
from diffprog.cli.runner import check_paths
from reference import MATH_SHIM, A, F, I, draw_args, finite_difference, write_module

HEADER = "import math\nimport numpy as np\nimport diffprog as dp\n\n"


# ---- autograd stand-ins for diffprog's transforms (the independent reference) ----------------------------------
def _ag_grad(f, argnums=0):
    if isinstance(argnums, int):
        return autograd.grad(f, argnums)
    return lambda *args: tuple(autograd.grad(f, k)(*args) for k in argnums)


def _ag_value_and_grad(f, argnums=0):
    return lambda *args: (f(*args), _ag_grad(f, argnums)(*args))


def _moves(primal, tangent):
    return tangent is not None and not isinstance(primal, (int, np.integer))


def _ag_jvp(f, primals, tangents):
    def along(t):
        return f(*(p + t * d if _moves(p, d) else p for p, d in zip(primals, tangents)))

    return f(*primals), autograd.grad(along)(0.0)  # scalar-valued g only


def _ag_hvp(f, primals, vector):
    moving = [k for k, (p, v) in enumerate(zip(primals, vector)) if _moves(p, v)]

    def directional(*args):  # <grad g(args), vector>
        total = 0.0
        for k in moving:
            total = total + anp.sum(autograd.grad(f, k)(*args) * vector[k])
        return total

    return tuple(autograd.grad(directional, k)(*primals) if k in moving else None for k in range(len(primals)))


DP_SHIM = types.SimpleNamespace(differentiable=lambda fn=None, **_: fn if fn is not None else (lambda f: f),
                                no_derivative=getval, grad=_ag_grad, value_and_grad=_ag_value_and_grad,
                                jvp=_ag_jvp, hvp=_ag_hvp)


def _shim_import(name, globals=None, locals=None, fromlist=(), level=0):
    shims = {"math": MATH_SHIM, "numpy": anp, "diffprog": DP_SHIM}
    if level == 0 and name in shims:
        return shims[name]
    return builtins.__import__(name, globals, locals, fromlist, level)


def autograd_reference(source, path, entry):
    namespace = {"__builtins__": {**builtins.__dict__, "__import__": _shim_import}, "__name__": "_reference"}
    exec(compile(textwrap.dedent(source), path, "exec"), namespace)
    return namespace[entry]


# ---- programs --------------------------------------------------------------------------------------------------
@dataclass(eq=False)
class Program:
    name: str
    source: str
    args: tuple
    value: object = None  # hand formula of the outer function's value
    gradient: object = None  # hand formula of its gradient (one entry per differentiated argument)
    ok: object = None  # keeps drawn arguments away from kinks

    def __repr__(self):
        return self.name

    @property
    def diff(self) -> tuple:
        return tuple(k for k, s in enumerate(self.args) if isinstance(s, (F, A)))


_LOADED: dict = {}


def loaded(program):
    """(outer function run without numba, autograd reference), built once per program."""
    if program.name not in _LOADED:
        source = HEADER + textwrap.dedent(program.source)
        module, path = write_module(source, program.name)
        _LOADED[program.name] = (dp.differentiable(jit=False)(module.f), autograd_reference(source, path, "f"),
                                 module)
    return _LOADED[program.name]


def _bilevel_value(theta, lr, steps):
    x = 0.0
    for _ in range(steps):
        x = x - lr * (2.0 * (x - theta) + 0.4 * x ** 3)
    return (x - 1.0) ** 2


def _hvp_value(x, y):
    s, c = math.sin(x * y), math.cos(x * y)
    hxx, hxy, hyy = 6 * x * y - y * y * s, 3 * x * x + c - x * y * s, -x * x * s
    return (hxx + x * hxy) + y * (hxy + x * hyy)


PROGRAMS = [
    Program("grad", """
        def g(x, y):
            return math.sin(x) * y + x * x

        def f(x, y):
            return dp.grad(g)(x, y) * y
        """, (F(-2, 2), F(-2, 2)),
            value=lambda x, y: (math.cos(x) * y + 2 * x) * y,
            gradient=lambda x, y: ((-math.sin(x) * y + 2) * y, 2 * math.cos(x) * y + 2 * x)),
    Program("grad_argnums_tuple", """
        def g(x, y):
            return math.exp(x * y) + y ** 3

        def f(x, y):
            gx, gy = dp.grad(g, (0, 1))(x, y)
            return gx * gy + x
        """, (F(-1, 1), F(-1, 1)),
            value=lambda x, y: y * math.exp(x * y) * (x * math.exp(x * y) + 3 * y * y) + x),
    Program("grad_argnums_keyword_and_negative", """
        def g(x, n, y):
            return x ** n * y

        def f(x, y):
            return dp.grad(g, argnums=-1)(x, 3, y) + dp.grad(g, argnums=(0,))(y, 2, x)[0]
        """, (F(-2, 2), F(-2, 2)),
            value=lambda x, y: x ** 3 + 2 * y * x),
    Program("value_and_grad", """
        def g(x, y):
            return x * x * y + math.cos(y)

        def f(x, y):
            v, (gx, gy) = dp.value_and_grad(g, (0, 1))(x, y)
            w, d = dp.value_and_grad(g)(y, x)
            return v * gx + gy * w + d
        """, (F(-2, 2), F(-2, 2)),
            value=lambda x, y: ((x * x * y + math.cos(y)) * 2 * x * y + (x * x - math.sin(y))
                                * (y * y * x + math.cos(x)) + 2 * y * x)),
    Program("jvp", """
        def g(x, y):
            return math.sin(x) * math.exp(y)

        def f(x, y):
            v, t = dp.jvp(g, (x, y), (y, 1.0))
            return v * t
        """, (F(-2, 2), F(-1, 1)),
            value=lambda x, y: math.sin(x) * math.exp(y) * (math.cos(x) * math.exp(y) * y
                                                            + math.sin(x) * math.exp(y))),
    Program("jvp_int_argument", """
        def g(x, n):
            s = 0.0
            for i in range(n):
                s = s + math.sin(x * (i + 1))
            return s

        def f(x, n):
            v, t = dp.jvp(g, (x, n), (2.0, None))
            return v + t * x
        """, (F(-2, 2), I(0, 4)),
            value=lambda x, n: sum(math.sin(x * (i + 1)) + 2.0 * (i + 1) * math.cos(x * (i + 1)) * x
                                   for i in range(n))),
    Program("hvp", """
        def g(x, y):
            return x ** 3 * y + math.sin(x * y)

        def f(x, y):
            hx, hy = dp.hvp(g, (x, y), (1.0, x))
            return hx + y * hy
        """, (F(-2, 2), F(-2, 2)), value=_hvp_value),
    Program("inner_loop_branch_arrays", """
        def g(x, a, n):
            s = 0.0
            for i in range(n):
                if a[i] > 0.0:
                    s = s + math.sin(a[i] * x)
                else:
                    s = s + a[i] * x * x
            return s

        def f(x, a, n):
            gx, ga = dp.grad(g, (0, 1))(x, a, n)
            return gx * x + np.sum(ga * a)
        """, (F(-1.5, 1.5), A(-2, 2, min_len=3, max_len=5), I(0, 3)),
            ok=lambda x, a, n: all(abs(v) > 1e-3 for v in a)),
    Program("bilevel", """
        def inner(x, theta):
            return (x - theta) ** 2 + 0.1 * x ** 4

        def f(theta, lr, steps):
            x = 0.0
            for _ in range(steps):
                x = x - lr * dp.grad(inner)(x, theta)
            return (x - 1.0) ** 2
        """, (F(-1, 1), F(0.01, 0.2), I(0, 6)), value=_bilevel_value),
    Program("bilevel_arrays", """
        def inner(w, t):
            return np.sum((w - t) ** 2) + 0.5 * np.sum(w ** 4)

        def f(t, lr):
            w = 0.5 * np.ones_like(t)
            for _ in range(3):
                w = w - lr * dp.grad(inner)(w, t)
            return np.sum(w * w * t)
        """, (A(-1, 1, max_len=4), F(0.01, 0.2))),
    Program("closure", """
        def f(x, theta):
            def loss(z):
                return (z - theta) ** 2 * math.exp(z)
            return dp.grad(loss)(x) * theta
        """, (F(-1, 1), F(-1, 1)),
            value=lambda x, t: (2 * (x - t) + (x - t) ** 2) * math.exp(x) * t),
    Program("grad_of_grad", """
        def g(x, y):
            return math.sin(x * y) + x ** 4

        def f(x, y):
            return dp.grad(dp.grad(g))(x, y) * y
        """, (F(-2, 2), F(-2, 2)),
            value=lambda x, y: (-y * y * math.sin(x * y) + 12 * x * x) * y),
    Program("jvp_of_grad", """
        def g(x, y):
            return x * x * math.exp(y)

        def f(x, y):
            gx, t = dp.jvp(dp.grad(g), (x, y), (1.0, 0.5))
            return gx * t
        """, (F(-2, 2), F(-1, 1)),
            value=lambda x, y: 2 * x * math.exp(y) * (2 * math.exp(y) + 0.5 * 2 * x * math.exp(y))),
    Program("index_array_inner", """
        def picked(a, b):
            return np.sum(a[b] ** 2 * a[0])

        def f(a):
            return np.sum(dp.grad(picked)(a, np.array([0, 2, 2])) * a)
        """, (A(-1, 1, min_len=3, max_len=5),),
            value=lambda a: 3 * a[0] ** 3 + 6 * a[0] * a[2] ** 2),
    Program("helper_with_keywords_and_defaults", """
        def g(x, theta=0.5):
            return (x - theta) ** 2 * math.cos(x)

        def helper(x, t):
            return dp.grad(g)(x, theta=t) + dp.grad(g)(x)

        def f(x, t):
            return helper(x, t) * t
        """, (F(-2, 2), F(-1, 1)),
            value=lambda x, t: t * sum(2 * (x - s) * math.cos(x) - (x - s) ** 2 * math.sin(x) for s in (t, 0.5))),
    Program("decorated_inner", """
        @dp.differentiable
        def g(x, y):
            return math.sin(x * y)

        def f(x, y):
            gx, gy = dp.grad(g, (0, 1))(x, y)
            return gx * gy
        """, (F(-2, 2), F(-2, 2)),
            value=lambda x, y: x * y * math.cos(x * y) ** 2),
]


def _random_direction(data, arg, label):
    if isinstance(arg, np.ndarray):
        values = data.draw(st.lists(st.floats(-1, 1), min_size=arg.size, max_size=arg.size), label=label)
        return np.array(values, dtype=np.float64)
    return data.draw(st.floats(-1, 1), label=label)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.name)
# programs with branches reject the points where finite differences straddle a kink (assume below): many draws
# may be rejected, which is not a failure (too few accepted ones still fails, as Unsatisfiable)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_outer_value_gradient_and_jvp(program, data):
    args = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(*args))
    outer, reference, _ = loaded(program)

    value = outer(*args)
    np.testing.assert_allclose(value, reference(*args), rtol=1e-9, atol=1e-12, err_msg="value vs autograd's run")
    if program.value is not None:
        np.testing.assert_allclose(value, program.value(*args), rtol=1e-9, atol=1e-12, err_msg="value vs hand")

    fds = []
    for k in program.diff:
        fd, smooth = finite_difference(outer, args, k)
        assume(smooth)
        fds.append(fd)
    gradient = dp.grad(outer, program.diff)(*args)
    for k, got, fd in zip(program.diff, gradient, fds):
        expected = autograd.grad(reference, k)(*args)
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-9, err_msg=f"d/d arg {k} vs autograd")
        np.testing.assert_allclose(got, fd, rtol=1e-4, atol=1e-5 * (1 + abs(value)),
                                   err_msg=f"d/d arg {k} vs finite differences")
    if program.gradient is not None:
        np.testing.assert_allclose(gradient, program.gradient(*args), rtol=1e-9, atol=1e-12,
                                   err_msg="gradient vs hand")

    directions = tuple(_random_direction(data, a, f"u{k}") if k in program.diff else None
                       for k, a in enumerate(args))
    forward_value, tangent = dp.jvp(outer, args, directions)
    dot = sum(float(np.sum(g * directions[k])) for k, g in zip(program.diff, gradient))
    np.testing.assert_allclose(forward_value, value, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(tangent, dot, rtol=1e-9, atol=1e-11, err_msg="<grad f, u> vs jvp(f, u)")


def test_bilevel_gradient_matches_the_closed_form():
    """Gradient descent on a quadratic has a closed form: x_K = theta + (x_0 - theta) (1 - 2 lr)^K, so the outer
    loss (x_K - target)^2 has an exact gradient in theta and lr."""
    module, _ = write_module(HEADER + textwrap.dedent("""
        def inner(x, theta):
            return (x - theta) ** 2

        def f(theta, lr, target, steps):
            x = 2.0
            for _ in range(steps):
                x = x - lr * dp.grad(inner)(x, theta)
            return (x - target) ** 2
        """), "bilevel_closed_form")
    outer = dp.differentiable(jit=False)(module.f)
    for theta, lr, target, steps in [(0.3, 0.1, 1.0, 5), (-0.7, 0.25, 0.2, 9), (1.5, 0.05, -1.0, 1)]:
        q = 1 - 2 * lr
        x = theta + (2.0 - theta) * q ** steps
        d_theta = 2 * (x - target) * (1 - q ** steps)
        d_lr = 2 * (x - target) * (2.0 - theta) * steps * q ** (steps - 1) * -2
        np.testing.assert_allclose(outer(theta, lr, target, steps), (x - target) ** 2, rtol=1e-12)
        np.testing.assert_allclose(dp.grad(outer, (0, 1))(theta, lr, target, steps), (d_theta, d_lr), rtol=1e-10)
        np.testing.assert_allclose(dp.hvp(outer, (theta, lr, target, steps), (1.0, 0.0, 0.0, None))[0],
                                   2 * (1 - q ** steps) ** 2, rtol=1e-10)


def test_tuple_valued_jvp_and_module_level_gradients():
    """jvp of a tuple-valued g gives tuples; a gradient made at module level (`dp.grad(g)` bound to a name) and a
    tangent map made by `dp.jvp_function` can be called inside differentiated code."""
    module, _ = write_module(HEADER + textwrap.dedent("""
        def polar(r, theta):
            return r * math.cos(theta), r * math.sin(theta)

        def energy(x, y):
            return x * x * y + y ** 3

        GRADIENT = dp.grad(energy, (0, 1))
        TANGENT = dp.jvp_function(energy)

        def f(r, theta):
            (x, y), (dx, dy) = dp.jvp(polar, (r, theta), (0.0, 1.0))
            gx, gy = GRADIENT(x, y)
            return dx * gx + dy * gy + TANGENT(x, y, 1.0, 0.0)
        """), "tuple_jvp")
    outer = dp.differentiable(jit=False)(module.f)

    def hand(r, theta):
        x, y = r * math.cos(theta), r * math.sin(theta)
        return -y * 2 * x * y + x * (x * x + 3 * y * y) + 2 * x * y

    for r, theta in [(1.3, 0.4), (0.7, -2.0)]:
        np.testing.assert_allclose(outer(r, theta), hand(r, theta), rtol=1e-12)
        for k in (0, 1):
            fd, _ = finite_difference(outer, (r, theta), k)
            np.testing.assert_allclose(dp.grad(outer, k)(r, theta), fd, rtol=1e-6)


def test_second_derivatives_of_array_adjoints():
    """The linear maps generated adjoints use (unbroadcast, sum_leading, scatter_add) have derivatives, so
    derivatives of gradients of array code are complete (they were missing terms)."""
    module, _ = write_module(HEADER + textwrap.dedent("""
        def quadratic(w, data):
            return np.sum((data @ w) ** 2) + np.sum(w * w) + np.sum(w * data)

        def picked(a, b):
            return np.sum(a[b] ** 2 * a[0])
        """), "array_second_derivatives")
    quadratic = dp.differentiable(jit=False)(module.quadratic)
    picked = dp.differentiable(jit=False)(module.picked)
    w, data = np.array([0.5, -0.2]), np.array([[1.0, 2.0], [0.5, -1.0], [0.0, 1.0]])
    np.testing.assert_allclose(dp.hessian(quadratic)(w, data), 2 * data.T @ data + 2 * np.eye(2), rtol=1e-12)
    a, b = np.array([0.5, -0.3, 0.8]), np.array([0, 2, 2])
    expected = np.array([[6 * a[0], 0, 4 * a[2]], [0, 0, 0], [4 * a[2], 0, 4 * a[0]]])
    np.testing.assert_allclose(dp.hessian(picked)(a, b), expected, rtol=1e-12)
    second = dp.grad(_sum_of_gradient(module))(a)
    np.testing.assert_allclose(second, expected @ np.ones(3), rtol=1e-12)


def _sum_of_gradient(module):
    """sum of the gradient of `picked`, as a differentiable function (reverse over reverse)."""
    def total(a):
        return np.sum(dp.grad(module.picked)(a, np.array([0, 2, 2])))
    return dp.differentiable(jit=False)(total)


def test_primal_shows_the_derived_code():
    _, _, module = loaded(PROGRAMS[0])
    text = dp.source(dp.differentiable(jit=False)(module.f), mode="primal", args=(1.0, 2.0))
    assert "grad_g_x_adj" in text and "dp.grad(g)(x, y)" in text


# ---- compiled with numba ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bilevel", "hvp"])
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_compiled(name, data):
    """The compiled primal, gradient and tangent of the outer function agree with the uncompiled ones."""
    program = next(p for p in PROGRAMS if p.name == name)
    args = draw_args(data, program.args)
    outer, _, module = loaded(program)
    compiled = dp.differentiable(module.f)
    np.testing.assert_allclose(compiled(*args), outer(*args), rtol=1e-12)
    np.testing.assert_allclose(module.f(*args), outer(*args), rtol=1e-12)  # top-level transforms, run by Python
    np.testing.assert_allclose(dp.grad(compiled, program.diff)(*args), dp.grad(outer, program.diff)(*args),
                               rtol=1e-12, atol=1e-14)
    directions = tuple(0.5 if k in program.diff else None for k in range(len(args)))
    np.testing.assert_allclose(dp.jvp(compiled, args, directions), dp.jvp(outer, args, directions), rtol=1e-12,
                               atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["bilevel_arrays", "inner_loop_branch_arrays", "closure", "jvp_of_grad"])
def test_compiled_slow(name):
    program = next(p for p in PROGRAMS if p.name == name)
    outer, _, module = loaded(program)
    args = tuple(0.3 if isinstance(s, F) else 2 if isinstance(s, I) else np.linspace(-0.9, 0.8, 4)
                 for s in program.args)
    compiled = dp.differentiable(module.f)
    np.testing.assert_allclose(compiled(*args), outer(*args), rtol=1e-12)
    for got, expected in zip(dp.grad(compiled, program.diff)(*args), dp.grad(outer, program.diff)(*args)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


# ---- problems, reported at the user's call ---------------------------------------------------------------------
ERRORS = HEADER + textwrap.dedent("""
    def pair(x):
        return x, x * x

    def vector(x):
        return x * np.ones(3)

    def scaled(x, n):
        return x * n

    def uses_list(x):
        values = [x]
        return x

    def grad_of_tuple(x):
        return dp.grad(pair)(x)  # <grad_of_tuple>

    def argnums_out_of_range(x):
        return dp.grad(scaled, 2)(x, 3)  # <argnums_out_of_range>

    def not_resolvable(x):
        return dp.grad(math.sin)(x)  # <not_resolvable>

    def argnums_not_constant(x, k):
        return dp.grad(scaled, k)(x, 3)  # <argnums_not_constant>

    def int_differentiated(x):
        return dp.grad(scaled, 1)(x, 3)  # <int_differentiated>

    def grad_of_array(x):
        return dp.grad(vector)(x)  # <grad_of_array>

    def wrong_tangents(x):
        v, t = dp.jvp(scaled, (x, 3), (1.0,))  # <wrong_tangents>
        return t

    def tangent_of_wrong_type(x, a):
        v, t = dp.jvp(np_sum, (a,), (1.0,))  # <tangent_of_wrong_type>
        return t

    def np_sum(a):
        return np.sum(a * a)

    def vjp_inside(x):
        v, pullback = dp.vjp(scaled, x, 3)  # <vjp_inside>
        return v

    def recursive(x):
        return dp.grad(recursive)(x)  # <recursive>

    def inner_problem(x):
        return dp.grad(uses_list)(x)
    """)

ERROR_CASES = {  # name: (code, the marker of the line the problem is reported at, arguments[, text at its column])
    "grad_of_tuple": ("DP111", "<grad_of_tuple>", (1.0,)),
    "argnums_out_of_range": ("DP101", "<argnums_out_of_range>", (1.0,)),
    "not_resolvable": ("DP103", "<not_resolvable>", (1.0,), "math.sin)"),
    "argnums_not_constant": ("DP101", "<argnums_not_constant>", (1.0, 0), "k)(x"),
    "int_differentiated": ("DP106", "<int_differentiated>", (1.0,)),
    "grad_of_array": ("DP111", "<grad_of_array>", (1.0,)),
    "wrong_tangents": ("DP101", "<wrong_tangents>", (1.0,)),
    "tangent_of_wrong_type": ("DP101", "<tangent_of_wrong_type>", (1.0, np.ones(2))),
    "vjp_inside": ("DP101", "<vjp_inside>", (1.0,)),
    "recursive": ("DP110", "def recursive", (1.0,)),
    "inner_problem": ("DP101", "values = [x]", (1.0,)),
}


@pytest.fixture(scope="module")
def error_module():
    return write_module(ERRORS, "nested_errors")


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_problems_are_reported_at_the_users_call(name, error_module):
    module, path = error_module
    code, marker, args, *column = ERROR_CASES[name]
    lines = ERRORS.splitlines()
    line = next(k for k, text in enumerate(lines, 1) if marker in text)
    with pytest.raises(dp.DifferentiabilityError) as raised:
        dp.differentiable(jit=False)(getattr(module, name))(*args)
    diagnostics = raised.value.diagnostics
    assert len(diagnostics) == 1, str(raised.value)
    found = diagnostics[0]
    assert (found.code, found.file, found.line) == (code, path, line), str(raised.value)
    assert found.hint, str(raised.value)
    if marker.startswith("<"):  # at the call itself: the column of `dp.` (or of the argument at fault)
        assert found.col == lines[line - 1].index(column[0] if column else "dp."), str(raised.value)
    else:  # inside the function the transform is applied to: reached through the call
        assert found.origin.chain and found.origin.chain[-1].function == name, str(raised.value)


def test_static_checker_accepts_nested_transforms(tmp_path):
    path = tmp_path / "nested.py"
    path.write_text(HEADER + textwrap.dedent("""
        def inner(x, theta):
            return (x - theta) ** 2 + 0.1 * x ** 4

        @dp.differentiable
        def bilevel(theta: float, lr: float, steps: int):
            x = 0.0
            for _ in range(steps):
                x = x - lr * dp.grad(inner)(x, theta)
            return x * x

        @dp.differentiable
        def tangent(x: float, y: float):
            v, t = dp.jvp(inner, (x, y), (1.0, y))
            h, _ = dp.hvp(inner, (x, y), (1.0, 0.0))
            return v * t + h

        @dp.differentiable
        def closure(x: float, theta: float):
            def loss(z):
                return (z - theta) ** 2 * z
            return dp.grad(loss)(x) * theta

        @dp.differentiable
        def bad(x: float):
            return dp.grad(inner, 5)(x, 1.0)  # the only problem
        """))
    found = check_paths([str(path)]).diagnostics
    line = next(k for k, text in enumerate(path.read_text().splitlines(), 1) if "the only problem" in text)
    assert [(d.code, d.line) for d in found] == [("DP101", line)], found
