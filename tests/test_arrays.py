"""Reverse mode on numpy array programs (issue 3): elementwise functions and broadcasting, reductions, linear
algebra, shape functions, indexing reads, diagnostics and vjp of array-valued functions.

Every program is written once as numpy source; `dp.grad` of it is compared with autograd differentiating the very
same source (numpy swapped for autograd.numpy) and with central finite differences, on hypothesis-drawn shapes and
values. A float32 subset checks that float32 arguments get float32 gradients close to the float64 ones.
Writes into local arrays live in test_arrays_writes.py.

Known bugs are `xfail(strict=True)` with the bug in the reason, so each flips to a failure once fixed.
"""
import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import diffprog as dp
from reference import (Arr, ArrayProgram, F, I, check_gradient_nd, check_gradient_nd_f32, draw_nd_args,
                       load_nd, write_module)

HEADER = "import math\nimport numpy as np\n\n"


def P(name, body, args, **kw):
    return ArrayProgram(name, HEADER + body.strip() + "\n", tuple(args), **kw)


# Known bugs, by program name -> reason. Tests of these programs are xfail(strict=True). BUGS apply to the
# generated code run as Python and compiled; BUGS_JIT only to the numba-compiled code (and float32).
BUGS: dict = {}
BUGS_JIT: dict = {}

# Compiling the generated adjoints with numba costs seconds per program (about 5 s per elementwise term of a 2-D
# program on a 2-core machine), so every program is checked on many examples with the generated code run as plain
# Python (jit=False: the same source, no numba), and compiled with numba in `slow` tests (`-m "not slow"` skips
# them). A few small programs are always compiled (float32 and the *_compiled_smoke tests).
slow = pytest.mark.slow


# Compiled variants left to `pytest -m long` (CI time): their forms compile in the other compiled programs too.
LONG_JIT = {"concatenate_axis_variants", "cumsum_axis_variants", "sum_mean_axis_keepdims", "norm_axis_keepdims_ord",
            "axis_forms_1d_methods_norm_cumsum", "prod_axis_keepdims_methods_positional",
            "unary_general_2d", "unary_domain_2d"}  # compiled elementwise rules: unary_1d; 2-D: uncompiled


def params(programs, jit=False):
    out = []
    for prog in programs:
        reason = BUGS.get(prog.name) or (BUGS_JIT.get(prog.name) if jit else None)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        if jit and prog.name in LONG_JIT:
            marks.append(pytest.mark.long)
        out.append(pytest.param(prog, id=prog.name, marks=marks))
    return out


def nojit(program, args):
    return check_gradient_nd(program, args, jit=False)


def run_examples(program, check, max_examples=10):
    """Run `check(program, args)` on hypothesis-drawn args. No shrinking for known bugs (they fail anyway)."""
    phases = [Phase.explicit, Phase.generate]
    if program.name not in BUGS and program.name not in BUGS_JIT:
        phases.append(Phase.shrink)

    @settings(max_examples=max_examples, deadline=None, phases=phases, database=None)
    @given(data=st.data())
    def inner(data):
        check(program, draw_nd_args(data, program))

    inner()


def away(*points, margin=1e-2):
    """ok-predicate: every element of every array/float argument is at least `margin` from each point."""
    def ok(*args):
        for a in args:
            if isinstance(a, (float, np.ndarray)):
                for p in points:
                    if np.any(np.abs(np.asarray(a) - p) < margin):
                        return False
        return True
    return ok


def distinct(margin=1e-3):
    """ok-predicate: all elements of the first argument are pairwise distinct (no ties for max/min)."""
    def ok(x, *rest):
        s = np.sort(np.ravel(x))
        return bool(np.all(np.diff(s) > margin))
    return ok


def no_ties(a, b, margin=1e-2):
    return bool(np.all(np.abs(np.asarray(a) - np.asarray(b)) > margin))


NM = ("n", "m")
POS = dict(lo=0.2, hi=3.0)


def pushed(*points, margin=0.05, which=None):
    """prep: move every element of the array/float arguments (all, or those at positions `which`) that is
    within `margin` of one of `points` to 2*margin from it, keeping kinks out of the finite differences."""
    def prep(*args):
        out = []
        for k, a in enumerate(args):
            if isinstance(a, (float, np.ndarray)) and (which is None or k in which):
                a = np.asarray(a, dtype=np.float64)
                for p in points:
                    a = np.where(np.abs(a - p) < margin, p + 2 * margin * np.where(a >= p, 1.0, -1.0), a)
                a = float(a) if a.ndim == 0 else a
            out.append(a)
        return out
    return prep


def untied(i, j, margin=0.05):
    """prep: shift args[i] (broadcast against args[j]) where the two are within `margin` (no max/min ties)."""
    def prep(*args):
        args = list(args)
        a, b = np.asarray(args[i], dtype=np.float64), args[j]
        args[i] = np.where(np.abs(a - b) < margin, a + 2 * margin, a)
        return args
    return prep


def chain(*preps):
    def prep(*args):
        for p in preps:
            args = p(*args)
        return args
    return prep


# =============================================================================================================
# Elementwise functions. Grouped programs take one argument per function, so the gradient wrt each argument
# checks one rule (and compile time is paid once per group).
# =============================================================================================================

_UNARY_GENERAL = ["np.sin", "np.cos", "np.arctan", "np.sinh", "np.cosh", "np.tanh", "np.exp", "np.expm1",
                  "np.square", "np.negative", "-"]
_UNARY_DOMAIN = [("np.log", POS), ("np.log2", POS), ("np.log10", POS), ("np.sqrt", POS), ("np.reciprocal", POS),
                 ("np.log1p", dict(lo=-0.8, hi=3.0)), ("np.tan", dict(lo=-1.2, hi=1.2)),
                 ("np.arcsin", dict(lo=-0.9, hi=0.9)), ("np.arccos", dict(lo=-0.9, hi=0.9))]


def _unary_program(name, fns, domains, ndim_shape=NM, **kw):
    names = [f"x{k}" for k in range(len(fns))]
    terms = " + ".join(f"np.sum({fn}({v}) * np.cos({v}))" if fn != "-" else f"np.sum(-{v} * np.cos({v}))"
                       for fn, v in zip(fns, names))
    body = f"def f({', '.join(names)}):\n    return {terms}\n"
    return P(name, body, [Arr(ndim_shape, **d) for d in domains], **kw)


UNARY = [
    # argument k of each program goes through the k-th function of the list
    _unary_program("unary_general_2d", _UNARY_GENERAL, [{}] * len(_UNARY_GENERAL)),
    _unary_program("unary_domain_2d", [n for n, _ in _UNARY_DOMAIN], [d for _, d in _UNARY_DOMAIN]),
    _unary_program("unary_abs_sign_2d", ["np.abs", "np.absolute"], [{}, {}], prep=pushed(0.0)),
    _unary_program("unary_1d", ["np.sin", "np.exp", "np.tanh", "np.log", "np.sqrt"],
                   [{}, {}, {}, POS, POS], ndim_shape=("n",)),
]

ELEMENTWISE = UNARY + [
    P("arith_same_shape", """
def f(x, y, z, w):
    return np.sum((x + y) * (x - y) + x * y) + np.sum(z / w) - np.sum(w / (z * z + 1.0))
""", [Arr(NM), Arr(NM), Arr(NM), Arr(NM, **POS)]),
    P("powers", """
def f(x0, x1, x2, x3, x4, x5, x6, p, b):
    return (np.sum(x0 ** 3) + np.sum(x1 ** 2.5) + np.sum(x2 ** p) + np.sum(2.0 ** x3) + np.sum(b ** x4)
            + np.sum(x5 ** x6))
""", [Arr(NM), Arr(NM, **POS), Arr(NM, **POS), Arr(NM), Arr(NM), Arr(NM, **POS), Arr(NM), F(0.5, 2.5),
      F(0.5, 3.0)]),
    P("np_power", """
def f(x, y, z):
    return np.sum(np.power(x, y)) + np.sum(np.power(z, 3.0))
""", [Arr(NM, **POS), Arr(NM), Arr(NM)]),
    P("binary_functions", """
def f(y0, x0, x1, y1):
    return np.sum(np.arctan2(y0, x0)) + np.sum(np.hypot(x1, y1))
""", [Arr(NM), Arr(NM), Arr(NM), Arr(NM)], prep=pushed(0.0, margin=0.1, which=(1, 2))),
    P("maximum_minimum", """
def f(x, y, u, v):
    return np.sum(np.maximum(x, y) * x) + np.sum(np.minimum(u, v) * v)
""", [Arr(NM), Arr(NM), Arr(NM), Arr(NM)], prep=chain(untied(0, 1), untied(2, 3))),
    P("maximum_minimum_scalar", """
def f(x):
    return np.sum(np.maximum(x, 0.0) ** 2 + np.minimum(x, 0.5))
""", [Arr(NM)], prep=pushed(0.0, 0.5)),
    P("where", """
def f(x, y, z):
    return np.sum(np.where(x > 0.0, x * y, np.sin(y))) + np.sum(np.where(z > 0.0, z * z, 0.0))
""", [Arr(NM), Arr(NM), Arr(NM)], prep=pushed(0.0, which=(0, 2))),
    P("clip", """
def f(x, z, lo, hi):
    return np.sum(np.clip(x, -1.0, 1.0) * x) + np.sum(np.clip(z, lo, hi) ** 2)
""", [Arr(NM), Arr(NM), F(-1.5, -0.5), F(0.5, 1.5)],
      # autograd has no derivative of clip wrt its bounds: the reference spells it with maximum/minimum
      ref_source=HEADER + """
def f(x, z, lo, hi):
    return np.sum(np.clip(x, -1.0, 1.0) * x) + np.sum(np.minimum(np.maximum(z, lo), hi) ** 2)
""",
      prep=chain(pushed(-1.0, 1.0, which=(0,)),
                 lambda x, z, lo, hi: (x, pushed(lo, hi)(z)[0], lo, hi))),
    P("sign", """
def f(x, y):
    return np.sum(np.sign(x) * x * x) + np.sum(np.sign(y))
""", [Arr(NM), Arr(NM)], prep=pushed(0.0)),
    P("scalar_mixed", """
def f(x, a):
    return np.sum(a * x + x / a - a + 2.0 * x * x - 1.0 / (1.0 + x * x) * a + (a - x) * (3.0 - x))
""", [Arr(NM), F(0.5, 2.0)]),
    P("scalar_array_chain_1d", """
def f(x, a):
    y = np.exp(-a * x * x)
    return np.sum(np.log(1.0 + y) + np.sqrt(1.0 + x * x) * a) + np.sum(np.tanh(x) * np.exp(-x * x))
""", [Arr(("n",)), F(0.5, 2.0)]),
    P("rank3_elementwise", """
def f(x, y):
    return np.sum(np.sin(x) * y + x * x)
""", [Arr(("n", "m", "k")), Arr(("n", "m", "k"))]),
    # broadcasting: (n,m) with (m,), (n,m) with (n,1), (n,1) with (1,m), scalar with (n,m)
    P("broadcast_arith", """
def f(x, b, c, r, a):
    return (np.sum(np.sin(x + b) * b) + np.sum(np.exp(x * c) - c) + np.sum(np.tanh(c - r) * c)
            + np.sum(np.sin(a * x) + a / (1.0 + x * x)) + np.sum((b * x) ** 2 - x / (b * b + 1.0)))
""", [Arr(NM), Arr(("m",)), Arr(("n", 1)), Arr((1, "m")), F(-2, 2)]),
    P("broadcast_binary_functions", """
def f(x, b, y, p):
    return (np.sum(x / p + p / (1.0 + x * x)) + np.sum(np.hypot(x, p)) + np.sum(np.arctan2(x, p))
            + np.sum(np.power(y, b)) + np.sum(np.where(x > 0.0, x * b, b)) + np.sum(np.maximum(x, b) * b))
""", [Arr(NM), Arr(("m",)), Arr(NM, **POS), Arr(("m",), **POS)],
      # autograd's np.where does not undo broadcasting of its arguments: the reference broadcasts b explicitly
      ref_source=HEADER + """
def f(x, b, y, p):
    return (np.sum(x / p + p / (1.0 + x * x)) + np.sum(np.hypot(x, p)) + np.sum(np.arctan2(x, p))
            + np.sum(np.power(y, b)) + np.sum(np.where(x > 0.0, x * b, b + 0.0 * x)) + np.sum(np.maximum(x, b) * b))
""",
      prep=chain(pushed(0.0, which=(0,)), untied(0, 1))),
    P("broadcast_rank3_with_rank2", """
def f(x, y):
    return np.sum(x * y)
""", [Arr(("k", "n", "m")), Arr(("n", "m"))]),
]


@pytest.mark.parametrize("program", params(ELEMENTWISE))
def test_elementwise(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(ELEMENTWISE, jit=True))
def test_elementwise_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)



# =============================================================================================================
# Reductions
# =============================================================================================================


def spread(*which, step=0.1):
    """prep: add step * (0, 1, 2, ...) to the arrays at positions `which`, so ties (max/min) and constant arrays
    (std) are rare; examples that still tie are rejected by `distinct_args`."""
    def prep(*args):
        return [a + step * np.arange(a.size).reshape(a.shape) if k in which else a for k, a in enumerate(args)]
    return prep


def distinct_args(*which, margin=1e-3):
    def ok(*args):
        for k in which:
            s = np.sort(np.ravel(args[k]))
            if not np.all(np.diff(s) > margin):
                return False
        return True
    return ok


REDUCTIONS = [
    P("reductions_no_axis", """
def f(a, b, c, d, e, g, h):
    return (np.sin(np.sum(a)) + np.mean(b) ** 2 + np.prod(c) + np.max(d) ** 2 + np.min(e) * np.min(e)
            + np.var(g) + np.std(h))
""", [Arr(NM), Arr(NM), Arr(NM, lo=0.5, hi=1.5), Arr(NM), Arr(NM), Arr(NM), Arr(NM)],
      dims=dict(n=(1, 3), m=(2, 3)), prep=spread(3, 4, 6), ok=distinct_args(3, 4)),
    P("reductions_methods", """
def f(a, b, c, d, e, g, h):
    return (np.sin(a.sum()) + b.mean() ** 2 + c.prod() + d.max() ** 2 + e.min() * e.min() + g.var() + h.std())
""", [Arr(NM), Arr(NM), Arr(NM, lo=0.5, hi=1.5), Arr(NM), Arr(NM), Arr(NM), Arr(NM)],
      dims=dict(n=(1, 3), m=(2, 3)), prep=spread(3, 4, 6), ok=distinct_args(3, 4)),
    P("reductions_1d", """
def f(a, c, d, h):
    return np.sin(np.sum(a * a)) + np.prod(c) + np.max(d) - np.min(d) + np.std(h) * np.mean(h)
""", [Arr(("n",)), Arr(("n",), lo=0.5, hi=1.5), Arr(("n",)), Arr(("n",))], dims=dict(n=(2, 5)),
      prep=spread(2, 3), ok=distinct_args(2)),
    P("prod_signed", """
def f(c):
    return np.prod(c)
""", [Arr(NM)], prep=pushed(0.0, margin=0.2)),
    P("sum_mean_axis", """
def f(a, b, c, d):
    return (np.sum(np.sin(np.sum(a, axis=0))) + np.sum(np.sin(np.sum(b, axis=1)) * 2.0)
            + np.sum(np.exp(np.mean(c, axis=0))) + np.sum(np.mean(d, axis=1) ** 2))
""", [Arr(NM), Arr(NM), Arr(NM), Arr(NM)]),
    P("sum_mean_axis_keepdims", """
def f(a, b, c, d):
    return (np.sum(np.sin(a - np.sum(a, axis=0, keepdims=True))) + np.sum(np.sin(np.sum(b, axis=1, keepdims=True)))
            + np.sum((c - np.mean(c, axis=0, keepdims=True)) ** 2) + np.sum(d * np.mean(d, axis=1, keepdims=True)))
""", [Arr(NM), Arr(NM), Arr(NM), Arr(NM)]),
    P("sum_mean_axis_methods", """
def f(a, c, d):
    return np.sum(np.sin(a.sum(axis=0))) + np.sum(c.mean(axis=1) ** 2) + np.sum(np.sin(d.sum(axis=1, keepdims=True)))
""", [Arr(NM), Arr(NM), Arr(NM)]),
    P("sum_mean_axis_positional", """
def f(b, c):
    return np.sum(np.sin(np.sum(b, 1))) + np.sum(np.mean(c, 0) ** 2)
""", [Arr(NM), Arr(NM)]),
    P("max_min_axis", """
def f(x, y):
    return np.sum(np.max(x, axis=0) ** 2) + np.sum(np.sin(np.min(y, axis=1)))
""", [Arr(NM), Arr(NM)], prep=spread(0, 1, step=0.37), ok=distinct_args(0, 1)),
    P("sum_mean_axis_3d_and_negative", """
def f(x, y):
    return (np.sum(np.sin(np.sum(x, axis=1))) + np.sum(np.cos(np.sum(x, axis=-1)))
            + np.sum((y - np.mean(y, axis=-1, keepdims=True)) ** 2))
""", [Arr(("n", "m", "k")), Arr(NM)]),
    P("prod_axis", """
def f(x):
    return np.sum(np.prod(x, axis=0))
""", [Arr(NM, lo=0.5, hi=1.5)]),
    P("prod_axis_keepdims_methods_positional", """
def f(x, y):
    return (np.sum(np.prod(x, axis=1, keepdims=True) * x) + np.sum(np.sin(x.prod(axis=0)))
            + np.sum(np.prod(y, -1) ** 2) + np.sum(np.cos(y.prod(0))))
""", [Arr(NM), Arr(NM)], prep=pushed(0.0, margin=0.2)),  # autograd's prod adjoint divides by x
    P("prod_axis_3d", """
def f(x):
    return np.sum(np.sin(np.prod(x, axis=1))) + np.sum(np.prod(x, axis=-1, keepdims=True) * x)
""", [Arr(("n", "m", "k"))], dims=dict(n=(1, 3), m=(1, 3), k=(1, 3)), prep=pushed(0.0, margin=0.2)),
    P("var_std_axis", """
def f(x, y):
    return np.sum(np.var(x, axis=0)) + np.sum(np.std(y, axis=1))
""", [Arr(NM), Arr(NM)], dims=dict(n=(2, 3), m=(2, 3)), prep=spread(0, 1, step=0.37)),
    P("max_axis_keepdims", """
def f(x):
    return np.sum(np.exp(x - np.max(x, axis=1, keepdims=True)))
""", [Arr(NM)], prep=spread(0, step=0.37), ok=distinct_args(0)),
    P("cumsum_axis", """
def f(x):
    return np.sum(np.sin(np.cumsum(x, axis=0)))
""", [Arr(NM)]),
    P("cumsum_axis_variants", """
def f(x, y, z):
    return (np.sum(np.sin(np.cumsum(x, axis=1))) + np.sum(np.cos(x.cumsum(axis=-1)) * np.arange(x.shape[1]))
            + np.sum(np.cumsum(y, 0) ** 2) + np.sum(np.sin(np.cumsum(z, axis=1)) * z))
""", [Arr(NM), Arr(NM), Arr(("n", "m", "k"))], dims=dict(n=(1, 3), m=(1, 4), k=(1, 3))),
    # along the only axis of a vector (axis=0 or -1): the whole reduction, a number (with keepdims a 1-element array)
    P("axis_reductions_1d", """
def f(a, b, c, d):
    return (np.sin(np.sum(a, axis=0)) * np.max(b, axis=0) + np.mean(a, axis=-1) ** 2 + np.min(b, axis=-1)
            + np.prod(c, axis=0) + np.var(d, axis=0) + np.std(d, axis=-1) * np.prod(c, -1))
""", [Arr(("n",)), Arr(("n",)), Arr(("n",), lo=0.5, hi=1.5), Arr(("n",))], dims=dict(n=(2, 5)),
      prep=spread(1, 3, step=0.37), ok=distinct_args(1)),
    P("axis_reductions_1d_keepdims", """
def f(x, y, z):
    return (np.sum(np.sin(x - np.sum(x, axis=0, keepdims=True))) + np.sum(np.exp(y - np.max(y, axis=-1, keepdims=True)))
            + np.sum(x * np.mean(z, axis=0, keepdims=True)) + np.sum(np.min(y, axis=0, keepdims=True) * z)
            + np.sum(np.prod(z, axis=-1, keepdims=True) * x) + np.sum(np.mean(x, axis=-1, keepdims=True) ** 2))
""", [Arr(("n",)), Arr(("n",)), Arr(("n",), lo=0.5, hi=1.5)], dims=dict(n=(1, 5)),
      prep=spread(1, step=0.37), ok=distinct_args(1)),
    P("axis_forms_1d_methods_norm_cumsum", """
def f(x, y):
    return (np.sin(x.sum(axis=0)) + y.max(axis=-1) * x.mean(axis=0) + np.linalg.norm(x, axis=0) + x.min(0)
            + np.sum(np.linalg.norm(y, axis=-1, keepdims=True) * x) + np.sum(np.sin(np.cumsum(x, axis=0)))
            + np.sum(np.cos(np.cumsum(y, -1))) + np.sum(y, 0) * x.prod(axis=-1) + y.std(axis=0))
""", [Arr(("n",)), Arr(("n",))], dims=dict(n=(2, 5)), prep=chain(spread(0, 1, step=0.37), pushed(0.0, margin=0.2)),
      ok=distinct_args(0, 1), ref_source=HEADER + """
def f(x, y):
    return (np.sin(x.sum(axis=0)) + y.max(axis=-1) * x.mean(axis=0) + np.linalg.norm(x, axis=0) + x.min(0)
            + np.sum(np.linalg.norm(y) * x) + np.sum(np.sin(np.cumsum(x, axis=0)))
            + np.sum(np.cos(np.cumsum(y, -1))) + np.sum(y, 0) * x.prod(axis=-1) + y.std(axis=0))
"""),  # autograd's norm(keepdims=True) of a vector gives a (1, n) adjoint
    P("cumsum_2d_flattens", """
def f(x):
    return np.sum(np.sin(np.cumsum(x)) * np.arange(x.size))
""", [Arr(NM)]),
    P("cumsum_1d", """
def f(x, y):
    return np.sum(np.sin(np.cumsum(x))) + np.sum(y.cumsum() ** 2)
""", [Arr(("n",)), Arr(("n",))], dims=dict(n=(1, 6))),
    P("logsumexp_large", """
def f(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))
""", [Arr(("n",), lo=900.0, hi=1100.0)], dims=dict(n=(1, 6))),
]


@pytest.mark.parametrize("program", params(REDUCTIONS))
def test_reductions(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(REDUCTIONS, jit=True))
def test_reductions_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)



def test_logsumexp_gradient_finite_on_large_inputs():
    prog = next(p for p in REDUCTIONS if p.name == "logsumexp_large")
    x = np.array([1000.0, 1001.0, 999.5, 1200.0, -800.0])
    g = dp.grad(load_nd(prog).plain)(x)
    e = np.exp(x - x.max())
    assert np.all(np.isfinite(g))
    np.testing.assert_allclose(g, e / e.sum(), rtol=1e-12, atol=1e-300)


def test_prod_with_a_zero_element():
    """d prod(x) / d x_k = product of the other elements, also when some element is 0 (no 0/0)."""
    prog = next(p for p in REDUCTIONS if p.name == "prod_signed")
    x = np.array([[0.0, 2.0, 3.0], [1.5, -1.0, 0.5]])
    g = dp.grad(load_nd(prog).plain)(x)
    expected = np.array([[2.0 * 3.0 * 1.5 * -1.0 * 0.5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    x1 = np.array([0.0, 0.0, 2.0])  # two zeros: every product of the others is 0
    g1 = dp.grad(load_nd(prog).plain)(x1.reshape(1, 3))
    np.testing.assert_allclose(g, expected)
    np.testing.assert_array_equal(g1, np.zeros((1, 3)))


PROD_ALONG = HEADER + """
def f(x):
    return np.sum(np.sin(np.prod(x, axis=1)))


def g(x):
    return np.sum(np.prod(x, axis=0, keepdims=True) * np.arange(1.0, x.shape[1] + 1.0))


def whole(x):
    return np.sin(np.prod(x))
"""


def _prod_others_along(x, axis):
    """Brute force: for each element, the product of the others along `axis`."""
    out = np.empty_like(x)
    for index in np.ndindex(*x.shape):
        line = np.take(x, index[1 - axis], axis=1 - axis).copy()
        line[index[axis]] = 1.0
        out[index] = np.prod(line)
    return out


def _prod_others(x):
    return np.array([np.prod(np.delete(x.ravel(), k)) for k in range(x.size)]).reshape(x.shape)


@pytest.mark.parametrize("jit", [False, pytest.param(True, marks=pytest.mark.long)])
def test_prod_along_an_axis_with_zero_elements(jit):
    """d prod(x, axis) / d x = the product of the others along the axis, also where one or several elements of
    the line are 0 (no 0/0), in reverse, forward and batched forward mode; and Hessians, also of np.prod(x)
    (they missed the second derivative of the product of the others)."""
    module, _ = write_module(PROD_ALONG, f"prod_along_zeros_{jit}")
    x = np.array([[0.0, 2.0, 3.0], [1.5, -1.0, 0.5], [0.0, 0.0, 2.0], [-0.5, 0.0, 1.25]])
    expected_f = np.cos(np.prod(x, axis=1))[:, None] * _prod_others_along(x, 1)
    expected_g = np.arange(1.0, 4.0) * _prod_others_along(x, 0)
    expected_whole = np.cos(np.prod(x)) * _prod_others(x)
    for fn, expected in ((module.f, expected_f), (module.g, expected_g), (module.whole, expected_whole)):
        fn = dp.differentiable(jit=jit)(fn)
        np.testing.assert_allclose(dp.grad(fn)(x), expected, rtol=1e-14, atol=0.0)
        assert np.all(np.isfinite(dp.jacobian(fn, mode="forward")(x)))
        np.testing.assert_allclose(dp.jacobian(fn, mode="forward")(x), expected, rtol=1e-14, atol=0.0)
        _, tangent = dp.jvp(fn, (x,), (np.ones_like(x),))
        assert tangent == pytest.approx(np.sum(expected), rel=1e-14)
        # second derivatives (products of the others but two): central differences of the exact gradient
        gradient, h = dp.grad(fn), 1e-6
        columns = [(gradient(x + h * e.reshape(x.shape)) - gradient(x - h * e.reshape(x.shape))) / (2 * h)
                   for e in np.eye(x.size)]
        np.testing.assert_allclose(dp.hessian(fn)(x).reshape(x.size, x.size), np.stack(columns, -1).reshape(
            x.size, x.size), rtol=1e-6, atol=1e-7)


def test_axis_forms_reject_bad_options_with_the_supported_forms():
    source = HEADER + """
def by_variable(x, i):
    return np.sum(np.prod(x, axis=i))


def matrix_ord_3(x):
    return np.linalg.norm(x, ord=3)


def fro_of_vector(v):
    return np.linalg.norm(v, 'fro')
"""
    module, _ = write_module(source, "axis_forms_errors")
    x = np.ones((2, 3))
    with pytest.raises(dp.DifferentiabilityError, match=r"DP101.*'axis' of np.prod must be a constant") as e:
        dp.grad(module.by_variable)(x, 0)
    assert "axis_forms_errors" in str(e.value) and "np.prod(x, axis=i)" in str(e.value)
    with pytest.raises(dp.DifferentiabilityError, match=r"DP101: np.linalg.norm with ord=3 is not supported") as e:
        dp.grad(module.matrix_ord_3)(x)
    assert "np.linalg.norm(..., ord='fro')" in str(e.value) and "np.linalg.norm(..., axis=k)" in str(e.value)
    with pytest.raises(dp.DifferentiabilityError, match=r"DP101: np.linalg.norm_ord_fro cannot be applied"):
        dp.grad(module.fro_of_vector)(x[0])


def test_max_with_ties_is_a_subgradient():
    """At a tie, max(x + t) = max(x) + t, so the gradient's entries must sum to 1 (autograd and JAX split it
    evenly); giving every tied element the full adjoint doubles the directional derivative."""
    module, _ = write_module(HEADER + "def f(x):\n    return np.max(x)\n\ndef g(x):\n    return np.min(x)\n", "ties")
    x = np.array([1.0, 3.0, 3.0, -2.0])
    for fn in (module.f, module.g):
        grad = dp.grad(fn)(x if fn is module.f else -x)
        assert grad.sum() == pytest.approx(1.0), grad


# =============================================================================================================
# Linear algebra
# =============================================================================================================


def well_conditioned(*which):
    """prep: add (2n + 1) I to the square matrices at positions `which`: with entries in [-2, 2] they are then
    strictly diagonally dominant, so never singular (n I alone let hypothesis find [[-1.0]] + 1 = 0)."""
    def prep(*args):
        return [a + (2 * a.shape[0] + 1) * np.eye(a.shape[0]) if k in which else a for k, a in enumerate(args)]
    return prep


def _matmul_program(name, op, **kw):
    """vec.vec, mat.vec, vec.mat and mat.mat through one spelling `op` (a format string of two operands)."""
    mm = lambda a, b: op.format(a, b)  # noqa: E731
    body = f"""
def f(u, v, A, w, B):
    return (np.sin({mm('u', 'v')}) + np.sum(np.sin({mm('A', 'v')})) + np.sum(np.cos({mm('w', 'A')}))
            + np.sum(np.sin({mm('A', 'B')})))
"""
    return P(name, body, [Arr(("m",)), Arr(("m",)), Arr(("n", "m")), Arr(("n",)), Arr(("m", "k"))], **kw)


LINALG = [
    _matmul_program("matmul_operator", "({0} @ {1})"),
    _matmul_program("np_dot", "np.dot({0}, {1})"),
    _matmul_program("np_matmul", "np.matmul({0}, {1})"),
    # autograd arrays have no .dot method: the reference spells it np.dot
    _matmul_program("dot_method", "{0}.dot({1})", ref_source=_matmul_program("_", "np.dot({0}, {1})").source),
    P("outer_inner", """
def f(u, v, a, b):
    return np.sum(np.sin(np.outer(u, v))) + np.sin(np.inner(a, b))
""", [Arr(("n",)), Arr(("m",)), Arr(("m",)), Arr(("m",))]),
    P("transpose", """
def f(A, B, C, w):
    return np.sum(np.sin(A.T) * B) + np.sum(np.sin(np.transpose(C) @ w)) + np.sum(np.sin(A.T @ A))
""", [Arr(("n", "m")), Arr(("m", "n")), Arr(("n", "m")), Arr(("n",))]),
    P("trace", """
def f(S, R):
    return np.sin(np.trace(S)) + np.trace(R @ R)
""", [Arr(("n", "n")), Arr(("n", "n"))]),
    P("norms", """
def f(v, A):
    return np.linalg.norm(v) + np.linalg.norm(A) ** 2 + np.sin(np.linalg.norm(A))
""", [Arr(("n",)), Arr(("n", "m"))], prep=pushed(0.0, margin=0.1)),
    P("norm_fro_and_axis", """
def f(x, y):
    return np.linalg.norm(x, 'fro') + np.sum(np.linalg.norm(y, axis=0))
""", [Arr(NM), Arr(NM)], prep=pushed(0.0, margin=0.1)),
    # autograd's gradient of norm(..., keepdims=True) has a wrong shape: the reference expands the axis itself
    P("norm_axis_keepdims_ord", """
def f(y, v, A, z):
    return (np.sum(np.linalg.norm(y, axis=1, keepdims=True) * y) + np.linalg.norm(v, ord=2) + np.linalg.norm(v, 2.0)
            + np.linalg.norm(A, ord='fro') ** 2 + np.sum(np.sin(np.linalg.norm(z, axis=-1)))
            + np.sum(np.linalg.norm(y, 2, 0, True) * y))
""", [Arr(NM), Arr(("m",)), Arr(NM), Arr(("n", "m", "k"))], prep=pushed(0.0, margin=0.1),
      dims=dict(n=(1, 3), m=(1, 3), k=(1, 3)), ref_source=HEADER + """
def f(y, v, A, z):
    return (np.sum(np.expand_dims(np.linalg.norm(y, axis=1), 1) * y) + np.linalg.norm(v, ord=2)
            + np.linalg.norm(v, 2.0) + np.linalg.norm(A, ord='fro') ** 2 + np.sum(np.sin(np.linalg.norm(z, axis=-1)))
            + np.sum(np.expand_dims(np.linalg.norm(y, 2, 0), 0) * y))
"""),
    P("solve_vector_rhs", """
def f(A, b):
    return np.sum(np.sin(np.linalg.solve(A, b)))
""", [Arr(("n", "n")), Arr(("n",))], prep=well_conditioned(0)),
    P("solve_matrix_rhs", """
def f(A, B):
    return np.sum(np.sin(np.linalg.solve(A, B)))
""", [Arr(("n", "n")), Arr(("n", "k"))], prep=well_conditioned(0)),
    P("inv", """
def f(A):
    return np.sum(np.sin(np.linalg.inv(A)))
""", [Arr(("n", "n"))], prep=well_conditioned(0)),
    P("det", """
def f(A):
    return np.linalg.det(A) + np.log(np.linalg.det(A))
""", [Arr(("n", "n"))], prep=well_conditioned(0)),
    P("slogdet_cholesky", """
def f(A, S):
    sign, logdet = np.linalg.slogdet(A)
    L = np.linalg.cholesky(S @ S.T + S.shape[0] * np.eye(S.shape[0]))
    return sign * logdet + np.sum(np.sin(L))
""", [Arr(("n", "n")), Arr(("n", "n"))], prep=well_conditioned(0)),
    P("linalg_chain", """
def f(A, x, y):
    r = A @ x - y
    return 0.5 * (r @ r) + np.sum(np.linalg.solve(A, y) * x) + np.linalg.det(A) * np.trace(A.T @ A)
""", [Arr(("n", "n")), Arr(("n",)), Arr(("n",))], prep=well_conditioned(0)),
]


@pytest.mark.parametrize("program", params(LINALG))
def test_linalg(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(LINALG, jit=True))
def test_linalg_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)



# =============================================================================================================
# Shape functions and constructors
# =============================================================================================================

SHAPES = [
    P("reshape_method_tuple_and_args", """
def f(x, y):
    n = x.shape[0]
    m = x.shape[1]
    a = x.reshape((m, n))
    b = y.reshape(m, n)
    return np.sum(np.sin(a) * np.arange(n)) + np.sum(np.cos(b) * b[:, 0:1])
""", [Arr(NM), Arr(NM)]),
    P("np_reshape_to_1d_and_back", """
def f(x):
    n = x.shape[0]
    m = x.shape[1]
    v = np.reshape(x, (n * m,))
    w = np.reshape(np.sin(v), (n, m))
    return np.sum(w * x) + np.sum(v * np.arange(n * m))
""", [Arr(NM)]),
    P("reshape_1d_to_2d", """
def f(v, k):
    a = v.reshape((k, 2))
    return np.sum(np.sin(a) @ np.ones(2)) + np.sum(a[:, 1] * a[:, 0])
""", [Arr((6,)), I(3, 3)]),
    P("ravel_flatten", """
def f(x, y, z):
    return (np.sum(np.sin(np.ravel(x)) * np.arange(x.size)) + np.sum(y.ravel() ** 2 * np.arange(y.size))
            + np.sum(np.cos(z.flatten()) * np.arange(z.size)))
""", [Arr(NM), Arr(NM), Arr(NM)]),
    P("expand_dims", """
def f(u, v):
    a = np.expand_dims(u, 0)
    b = np.expand_dims(v, 1)
    return np.sum(np.sin(a * b)) + np.sum(a ** 2)
""", [Arr(("n",)), Arr(("m",))]),
    P("copy", """
def f(x, y):
    a = x.copy()
    b = np.copy(y)
    return np.sum(np.sin(a) * b) + np.sum(a * a)
""", [Arr(NM), Arr(NM)], ref_source=HEADER + """
def f(x, y):
    a = x + 0.0
    b = y + 0.0
    return np.sum(np.sin(a) * b) + np.sum(a * a)
"""),
    P("constructors_as_constants", """
def f(x, v):
    n = x.shape[0]
    m = x.shape[1]
    z = np.zeros((n, m)) + x
    o = np.ones((n, m)) * x
    e = np.full((n, m), 2.0) * x
    zl = np.zeros_like(x) + x * x
    ol = np.ones_like(x) * np.sin(x)
    r = np.arange(m) * x
    l = np.linspace(0.0, 1.0, m) * x
    I = np.eye(n) @ x
    w = np.zeros(v.shape[0]) + np.ones(v.shape[0]) * v
    return (np.sum(np.sin(z) + o * e + zl * ol) + np.sum(r ** 2 + l * x) + np.sum(np.cos(I))
            + np.sum(np.sin(w)))
""", [Arr(NM), Arr(("k",))]),
    P("empty_then_filled", """
def f(x):
    b = np.empty(x.shape[0])
    b[:] = 0.0
    return np.sum((b + x) ** 2)
""", [Arr(("n",))], ref_source=HEADER + """
def f(x):
    return np.sum(x ** 2)
"""),
]


SHAPES += [
    P("concatenate_stack", """
def f(x, y, A, B):
    return (np.sum(np.sin(np.concatenate((x, y))) * np.arange(x.shape[0] + y.shape[0]))
            + np.sum(np.cos(np.stack((x, x * 2.0))) * np.arange(x.shape[0]))
            + np.sum(np.sin(np.hstack((x, y))) ** 2) + np.sum(np.tanh(np.vstack((A, B))) * 1.5))
""", [Arr(("n",)), Arr(("m",)), Arr(("k", "m")), Arr(("j", "m"))]),
    P("concatenate_axis_keyword", """
def f(A, B):
    return np.sum(np.sin(np.concatenate((A, B), axis=0))) + np.sum(np.cos(np.concatenate((A, A), axis=1)))
""", [Arr(("k", "m")), Arr(("j", "m"))]),
    P("concatenate_axis_variants", """
def f(A, B, u, v, X, Y):
    return (np.sum(np.sin(np.concatenate((A, B, A * B), axis=1)) * np.arange(3 * A.shape[1]))
            + np.sum(np.cos(np.concatenate((B, A), axis=-1)) ** 2) + np.sum(np.concatenate((A, B), 1) ** 3)
            + np.sum(np.tanh(np.concatenate((u, v), axis=0))) + np.sum(np.concatenate((u, v), 0) ** 2)
            + np.sum(np.sin(np.concatenate((X, Y), axis=2))) + np.sum(np.concatenate((X, X), axis=0) ** 2))
""", [Arr(("n", "m")), Arr(("n", "m")), Arr(("k",)), Arr(("j",)), Arr(("n", "k", "m")), Arr(("n", "k", "j"))],
      dims=dict(n=(1, 3), m=(1, 3), k=(1, 3), j=(1, 3))),
    P("newaxis", """
def f(u, v):
    return np.sum(np.sin(u[:, np.newaxis] * v[np.newaxis, :])) + np.sum(np.cos(u[:, None] - u[None, :]))
""", [Arr(("n",)), Arr(("m",))]),
]


@pytest.mark.parametrize("program", params(SHAPES))
def test_shapes(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(SHAPES, jit=True))
def test_shapes_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)


# =============================================================================================================
# Indexing reads of arguments
# =============================================================================================================


def random_index(n_from, size, which):
    """prep: replace the int argument at position `which` (a seed) by an int64 index array of length `size`
    into the first dimension of the argument at `n_from`, with repeated entries."""
    def prep(*args):
        args = list(args)
        n = args[n_from].shape[0]
        rng = np.random.default_rng(args[which])
        idx = rng.integers(0, n, size=size)
        idx[-1] = idx[0]  # at least one repeat
        args[which] = idx.astype(np.int64)
        return args
    return prep


def valid_index(*specs):
    """prep: each (int position, array position, axis) turns the drawn int r into a valid index into that axis,
    negative when r < 0 (so both index forms are exercised)."""
    def prep(*args):
        args = list(args)
        for pos, arr, axis in specs:
            n = args[arr].shape[axis]
            r = args[pos]
            args[pos] = r % n - (n if r < 0 else 0)
        return args
    return prep


IX = I(-1000, 1000)

INDEXING = [
    P("int_index_scalar_arg", """
def f(a, i):
    return np.sin(a[i]) * a[i] + a[-1] * a[-2]
""", [Arr(("n",)), IX], dims=dict(n=(2, 5)), prep=valid_index((1, 0, 0))),
    P("int_index_2d", """
def f(a, i, j):
    return np.sin(a[i, j]) + a[-1, -1] * a[0, 0] + a[i, -1]
""", [Arr(NM), IX, IX], prep=valid_index((1, 0, 0), (2, 0, 1))),
    P("row_and_column", """
def f(a, i, k):
    return np.sum(np.sin(a[:, k]) * a[:, 0]) + np.sum(a[i, :] ** 2) + np.sum(np.cos(a[i]))
""", [Arr(NM), IX, IX], prep=valid_index((1, 0, 0), (2, 0, 1))),
    P("slices", """
def f(a):
    n = a.shape[0]
    return np.sum(np.sin(a[1:n]) * a[0:n - 1]) + np.sum(a[::-1] * np.arange(n)) + np.sum(a[:2] ** 2)
""", [Arr(("n",))], dims=dict(n=(2, 6))),
    P("stencil", """
def f(a):
    d = a[1:-1] - a[:-2]
    dd = a[2:] - 2.0 * a[1:-1] + a[:-2]
    return np.sum(d ** 2) + np.sum(np.sin(dd))
""", [Arr(("n",))], dims=dict(n=(3, 7))),
    P("slices_2d", """
def f(a):
    return np.sum(np.sin(a[1:, :]) * a[:-1, :]) + np.sum(a[:, ::-1] * a) + np.sum(a[::2, 1:] ** 2)
""", [Arr(NM)], dims=dict(n=(2, 4), m=(2, 4))),
    P("negative_step_stencil_2d", """
def f(a):
    return np.sum((a[:, 1:] - a[:, :-1]) ** 2) + np.sum(np.cos(a[::-1, :]) * a)
""", [Arr(NM)], dims=dict(m=(2, 4))),
    P("integer_array_index_repeated", """
def f(a, idx):
    return np.sum(np.sin(a[idx]) * np.arange(idx.shape[0]))
""", [Arr(("n",)), I(0, 10_000)], prep=random_index(0, 7, 1)),
    P("integer_array_index_rows", """
def f(a, idx):
    return np.sum(np.sin(a[idx]) * a[idx])
""", [Arr(NM), I(0, 10_000)], prep=random_index(0, 5, 1)),
    P("boolean_mask_1d", """
def f(a):
    return np.sum(np.sin(a[a > 0.0]) * 2.0) + np.sum(a[a <= 0.0] ** 2)
""", [Arr(("n",))], dims=dict(n=(1, 6)), prep=pushed(0.0)),
    P("boolean_mask_argument", """
def f(a, b):
    return np.sum(np.exp(a[b > 0.0]) * b[b > 0.0])
""", [Arr(("n",)), Arr(("n",))], dims=dict(n=(1, 6)), prep=pushed(0.0, which=(1,))),
]


@pytest.mark.parametrize("program", params(INDEXING))
def test_indexing(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(INDEXING, jit=True))
def test_indexing_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)


@pytest.mark.parametrize("i,j", [(0, 0), (1, 2), (-1, -2), (-2, 0)])
def test_int_index_positions(i, j):
    """a[i, j] with negative and positive indices: the gradient is a one-hot at exactly that element."""
    prog = next(p for p in INDEXING if p.name == "int_index_2d")
    a = np.arange(12.0).reshape(3, 4) / 10.0
    (g,) = as_tuple(load_nd(prog).dp_grad(jit=False)(a, i, j))
    expected = np.zeros_like(a)
    expected[i, j] += np.cos(a[i, j])
    expected[-1, -1] += a[0, 0]
    expected[0, 0] += a[-1, -1]
    expected[i, -1] += 1.0
    np.testing.assert_allclose(g, expected)


def as_tuple(x):
    return x if isinstance(x, tuple) else (x,)


# =============================================================================================================
# Diagnostics
# =============================================================================================================


def _codes_and_lines(excinfo):
    return {(d.code, d.line) for d in excinfo.value.diagnostics}


def _line_of(source, marker):
    return next(k for k, text in enumerate(source.splitlines(), 1) if marker in text)


WRITE_ARGUMENT = HEADER + """
def f(a, x):
    a[0] = x  # MARK
    return np.sum(a * a)

def g(a, x):
    for i in range(a.shape[0]):
        a[i] += x * a[i]  # MARK
    return np.sum(a)

def h(a, b):
    a[:] = 0.0  # MARK
    return np.sum(a * b)

def k(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        a[i, :] = b  # MARK
        s = s + np.sum(a[i] * b)
    return s
"""


@pytest.mark.parametrize("entry,args,argnums", [
    ("f", (np.ones(3), 2.0), (0, 1)),
    ("f", (np.ones(3), 2.0), 0),
    ("g", (np.ones(3), 2.0), (0, 1)),
    ("h", (np.ones(3), np.ones(3)), 0),
    ("k", (np.ones((2, 3)), np.ones(3)), 0),
])
def test_write_into_differentiated_argument_is_DP107(entry, args, argnums):
    module, _ = write_module(WRITE_ARGUMENT, "write_arg")
    fn = getattr(module, entry)
    with pytest.raises(dp.DifferentiabilityError) as excinfo:
        dp.grad(fn, argnums)(*(a.copy() if isinstance(a, np.ndarray) else a for a in args))
    lines = [k for k, t in enumerate(WRITE_ARGUMENT.splitlines(), 1) if "# MARK" in t]
    codes = _codes_and_lines(excinfo)
    assert any(code == "DP107" and line in lines for code, line in codes), codes


def test_write_into_argument_does_not_mutate_caller_array_on_error():
    module, _ = write_module(WRITE_ARGUMENT, "write_arg_nomut")
    a = np.ones(3)
    with pytest.raises(dp.DifferentiabilityError):
        dp.grad(module.f, (0, 1))(a, 2.0)
    np.testing.assert_array_equal(a, np.ones(3))


WRITE_THROUGH_VIEW = HEADER + """
def f(x):
    b = np.zeros(3)
    v = b[1:]
    v[0] = x  # MARK
    return np.sum(b * b) + x

def g(x):
    b = np.zeros((2, 3))
    r = b[1]
    r[:] = x  # MARK
    return np.sum(np.sin(b))
"""


@pytest.mark.parametrize("entry", ["f", "g"])
def test_write_through_a_view_is_DP101(entry):
    module, _ = write_module(WRITE_THROUGH_VIEW, "write_view")
    with pytest.raises(dp.DifferentiabilityError) as excinfo:
        dp.grad(getattr(module, entry))(1.5)
    line = [k for k, t in enumerate(WRITE_THROUGH_VIEW.splitlines(), 1) if "# MARK" in t][["f", "g"].index(entry)]
    codes = _codes_and_lines(excinfo)
    assert ("DP101", line) in codes, codes


def test_write_into_local_copy_of_argument_is_fine():
    src = HEADER + """
def f(a, x):
    b = a.copy()
    b[0] = x * b[1]
    return np.sum(b * b)
"""
    module, _ = write_module(src, "write_copy")
    a = np.array([1.0, 2.0, 3.0])
    ga, gx = dp.grad(dp.differentiable(jit=False)(module.f), (0, 1))(a, 0.5)
    # b = [x*a1, a1, a2]: d/da = [0, 2 b1 + 2 b0 x, 2 a2], d/dx = 2 b0 a1
    np.testing.assert_allclose(ga, [0.0, 2 * 2.0 + 2 * (0.5 * 2.0) * 0.5, 6.0])
    assert gx == pytest.approx(2 * (0.5 * 2.0) * 2.0)
    np.testing.assert_array_equal(a, [1.0, 2.0, 3.0])


# =============================================================================================================
# vjp of array-valued functions
# =============================================================================================================

VJP_PROGRAMS = [
    P("vjp_elementwise", """
def f(x, a):
    return np.sin(x) * a + x * x
""", [Arr(NM), F(-2, 2)]),
    P("vjp_matvec", """
def f(A, v):
    return np.tanh(A @ v)
""", [Arr(NM), Arr(("m",))]),
    P("vjp_matmat_broadcast", """
def f(A, B, b):
    return np.exp(0.3 * (A @ B)) + b
""", [Arr(NM), Arr(("m", "k")), Arr(("k",))]),
    P("vjp_sum_axis", """
def f(x):
    return np.sum(x * x, axis=0)
""", [Arr(NM)]),
    P("vjp_cumsum", """
def f(x):
    return np.cumsum(np.sin(x))
""", [Arr(("n",))]),
    P("vjp_tuple_array_and_scalar", """
def f(x, y):
    return np.sin(x) * y, np.sum(x * y)
""", [Arr(("n",)), Arr(("n",))]),
]


def _draw_cotangent(data, value):
    if isinstance(value, tuple):
        return tuple(_draw_cotangent(data, v) for v in value)
    shape = np.shape(value)
    n = int(np.prod(shape, dtype=np.int64))
    vals = data.draw(st.lists(st.floats(-2, 2, allow_nan=False, allow_subnormal=False), min_size=n, max_size=n))
    arr = np.array(vals, dtype=np.float64).reshape(shape)
    return float(arr) if arr.ndim == 0 else arr


def check_vjp(program, args, data, jit):
    import autograd
    loaded = load_nd(program)
    fn = loaded.plain if jit else dp.differentiable(jit=False)(loaded.plain)
    value, pullback = dp.vjp(fn, *args)
    expected_value = loaded.plain(*args)
    if isinstance(expected_value, tuple):
        for v, e in zip(value, expected_value):
            np.testing.assert_allclose(v, e, rtol=1e-12)
    else:
        np.testing.assert_allclose(value, expected_value, rtol=1e-12)
    ct = _draw_cotangent(data, expected_value)
    got = pullback(ct)
    assert len(got) == len(args)
    for k, (g, a) in enumerate(zip(got, args)):
        if isinstance(expected_value, tuple):  # autograd needs one box out: add the vjps of each output
            exp = sum(autograd.make_vjp(lambda *a, i=i: loaded.reference(*a)[i], k)(*args)[0](c)
                      for i, c in enumerate(ct))
        else:
            exp = autograd.make_vjp(loaded.reference, k)(*args)[0](ct)
        assert np.shape(g) == np.shape(a), f"cotangent {k} has shape {np.shape(g)}, expected {np.shape(a)}"
        np.testing.assert_allclose(np.asarray(g, dtype=np.float64), np.asarray(exp, dtype=np.float64),
                                   rtol=1e-6, atol=1e-8, err_msg=f"{program.name}: vjp argument {k}")


def run_vjp_examples(program, jit, max_examples=10):
    @settings(max_examples=max_examples, deadline=None, database=None)
    @given(data=st.data())
    def inner(data):
        check_vjp(program, draw_nd_args(data, program), data, jit)

    inner()


@pytest.mark.parametrize("program", params(VJP_PROGRAMS))
def test_vjp_array_valued(program):
    run_vjp_examples(program, jit=False)


@slow
@pytest.mark.parametrize("program", params(VJP_PROGRAMS, jit=True))
def test_vjp_array_valued_compiled(program):
    run_vjp_examples(program, jit=True, max_examples=5)


# =============================================================================================================
# float32: gradients of float32 arguments are float32 and close to float64 autograd (compiled; small programs)
# =============================================================================================================

FLOAT32 = [
    P("f32_unary_1d", """
def f(x):
    return np.sum(np.sin(x) * np.exp(0.5 * x) + np.sqrt(x * x + 1.0))
""", [Arr(("n",))]),
    P("f32_broadcast", """
def f(x, b, c):
    return np.sum(np.tanh(x + b) * c)
""", [Arr(NM), Arr(("m",)), Arr(("n", 1))]),
    P("f32_scalar_mixed", """
def f(x, a):
    return np.sum(a * x ** 2 - x / a)
""", [Arr(NM), F(0.5, 2.0)]),
    P("f32_matvec_matmat", """
def f(A, v, B):
    return np.sum(np.sin(A @ v)) + np.sum(np.cos(A @ B))
""", [Arr(NM), Arr(("m",)), Arr(("m", "k"))]),
    P("f32_sum_mean_axis", """
def f(x):
    return np.sum(np.mean(x, axis=0) ** 2) + np.sum(np.sin(np.sum(x, axis=1, keepdims=True)) * x)
""", [Arr(NM)]),
    P("f32_reductions", """
def f(x, y):
    return np.prod(x) + np.max(y) + np.std(y)
""", [Arr(("n",), lo=0.5, hi=1.5), Arr(("n",))], dims=dict(n=(2, 5)), prep=spread(1), ok=distinct_args(1)),
    P("f32_axis_forms", """
def f(x, y):
    return (np.sum(np.prod(x, axis=0)) + np.sum(np.sin(np.cumsum(x, axis=1))) + np.sum(np.linalg.norm(y, axis=0))
            + np.sum(np.cos(np.concatenate((x, y * 2.0), axis=1))))
""", [Arr(NM), Arr(NM)], prep=pushed(0.0, margin=0.1)),
    P("f32_axis_reductions_1d", """
def f(x, y):
    return (np.sum(x, axis=0) * np.max(y, axis=0) + np.mean(x, axis=-1) + np.std(y, axis=0)
            + np.sum(np.prod(x, axis=0, keepdims=True) * y) + np.sum(np.min(y, axis=-1, keepdims=True) * x))
""", [Arr(("n",), lo=0.5, hi=1.5), Arr(("n",))], dims=dict(n=(2, 5)), prep=spread(1, step=0.37),
      ok=distinct_args(1)),
    P("f32_solve_inv_det", """
def f(A, b):
    return np.sum(np.linalg.solve(A, b)) + np.sum(np.linalg.inv(A)) + np.linalg.det(A)
""", [Arr(("n", "n")), Arr(("n",))], prep=well_conditioned(0)),
    P("f32_logsumexp", """
def f(x):
    m = np.max(x)
    return m + np.log(np.sum(np.exp(x - m)))
""", [Arr(("n",), lo=-50.0, hi=50.0)]),
    P("f32_write_loop", """
def f(x):
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = x[i] * x[i] + np.sin(x[i])
    return np.sum(out * out)
""", [Arr(("n",))], ref_source=HEADER + """
def f(x):
    out = x * x + np.sin(x)
    return np.sum(out * out)
"""),
]


@pytest.mark.parametrize("program", params(FLOAT32, jit=True))
def test_float32(program):
    run_examples(program, check_gradient_nd_f32, max_examples=5)


def test_float32_and_float64_arguments_together():
    """Each gradient takes its own argument's dtype."""
    prog = next(p for p in FLOAT32 if p.name == "f32_broadcast")
    x = np.linspace(-1, 1, 6).reshape(2, 3).astype(np.float32)
    b = np.array([0.1, -0.2, 0.3])  # float64
    c = np.array([[0.5], [1.5]], dtype=np.float32)
    gx, gb, gc = load_nd(prog).dp_grad()(x, b, c)
    assert (gx.dtype, gb.dtype, gc.dtype) == (np.float32, np.float64, np.float32)
    t = np.tanh(x.astype(np.float64) + b)
    np.testing.assert_allclose(gx, (1 - t * t) * c, rtol=1e-5)
    np.testing.assert_allclose(gb, np.sum((1 - t * t) * c, axis=0), rtol=1e-5)
    np.testing.assert_allclose(gc, np.sum(t, axis=1, keepdims=True), rtol=1e-5)
