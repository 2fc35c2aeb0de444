"""Derivative rules for numpy: elementwise functions, reductions, linear algebra and shape functions.

Elementwise functions give per-element partials (the reverse transform multiplies them by the result's adjoint
and sums over broadcast dimensions). Other primitives give vector-Jacobian products directly: one expression per
argument over the parameters, `out` and `g` (the adjoint of the result), keyed by the ranks of the arguments
when the rule depends on them. Templates are written in forms numba compiles (it lacks `np.mean(x, axis=k)`,
for instance), so the printed code runs as is.

Each primitive is declared with all its rules: `vjps` (reverse mode), `jvps` (forward mode: the contribution of
an argument's tangent `t`) and `lane_jvps` (batched forward mode, the tangent `t` carrying a trailing lane axis:
rules/lane_rules.py describes those templates; `lane_joins` for the joining functions).
"""
import numpy as np

from ..ir import types as T
from .registry import FRESH, REGISTRY, Traits
from .registry import options, primitive
from .runtime_calls import RuntimeHelper, rt, runtime_import
from .scalar import POW_DA, POW_DA_ARRAYS


def p(name, template, params, *partials, traits=FRESH, **options):
    """Declares a primitive of this module: numpy functions compute new arrays or numbers (Traits.fresh) unless
    declared otherwise (views: traits=VIEW)."""
    return primitive(name, template, params, *partials, traits=traits, **options)


VIEW = Traits(view_of=0)  # the result may share the first argument's memory
_PURE = Traits(fresh=True, hoistable=True)  # cannot raise: normalize/cleanup.py may hoist it out of loops
# Not claimed (yet): most of these make new arrays too, but backend/in_place.py never counted on it; claiming
# `fresh` would let it zero more adjoint buffers in place, a change in generated code to make on its own.
# split_along's result is a block of its argument: a view, not claimed either for the same reason.
_UNCLAIMED = Traits()
_SHAPE = Traits(fresh=True, shape_only=(0,))  # reads its argument's shape only


_float = lambda ts: T.broadcast(ts, "float")  # noqa: E731


def _where_result(ts):
    """np.where takes its shape from all three arguments and its dtype from the two values."""
    values = T.broadcast(ts[1:])
    if not T.is_array(ts[0]):
        return values
    return T.Array(T.dtype_of(values), max(ts[0].ndim, getattr(values, "ndim", 0)))

# Elementwise: one line each (name, printed form, parameters, partial per parameter). Slopes that are infinite
# somewhere divide with np.reciprocal, which gives inf there also for a number (Python's / would raise).
for _name, _partial in [
    ("sin", "np.cos(x)"), ("cos", "-np.sin(x)"), ("tan", "1.0 + out * out"),
    ("arcsin", "np.reciprocal(np.sqrt(1.0 - x * x))"), ("arccos", "-np.reciprocal(np.sqrt(1.0 - x * x))"),
    ("arctan", "1.0 / (1.0 + x * x)"), ("sinh", "np.cosh(x)"), ("cosh", "np.sinh(x)"),
    ("tanh", "1.0 - out * out"), ("exp", "out"), ("expm1", "out + 1.0"), ("log", "np.reciprocal(x)"),
    ("log1p", "np.reciprocal(1.0 + x)"), ("log2", "np.reciprocal(x * 0.6931471805599453)"),
    ("log10", "np.reciprocal(x * 2.302585092994046)"), ("sqrt", "0.5 * np.reciprocal(out)"), ("square", "2.0 * x"),
    ("reciprocal", "-out * out"), ("negative", "-1.0"),
]:
    p(f"np.{_name}", f"np.{_name}({{0}})", "x", _partial, keys=[getattr(np, _name)], result=_float,
      traits=_PURE if _name in ("sin", "cos", "exp", "tanh", "square") else FRESH)
p("np.abs", "np.abs({0})", "x", "np.sign(x)", keys=[np.abs, np.absolute], result="same")
p("np.sign", "np.sign({0})", "x", None, keys=[np.sign], result="same", cut=True)
p("np.floor", "np.floor({0})", "x", None, keys=[np.floor], result="same", cut=True)
p("np.ceil", "np.ceil({0})", "x", None, keys=[np.ceil], result="same", cut=True)
p("np.arctan2", "np.arctan2({0}, {1})", "y, x", "x / (x * x + y * y)", "-y / (x * x + y * y)",
  keys=[np.arctan2], result=_float)
p("np.hypot", "np.hypot({0}, {1})", "x, y", "x / out", "y / out", keys=[np.hypot], result=_float)
# np.maximum/np.minimum return a NaN argument: its derivative goes there (a first when both are NaN).
p("np.maximum", "np.maximum({0}, {1})", "a, b", "np.where(a >= b, 1.0, np.where(a != a, 1.0, 0.0))",
  "np.where(a >= b, 0.0, np.where(a != a, 0.0, 1.0))",
  keys=[np.maximum], result="numeric")
p("np.minimum", "np.minimum({0}, {1})", "a, b", "np.where(a <= b, 1.0, np.where(a != a, 1.0, 0.0))",
  "np.where(a <= b, 0.0, np.where(a != a, 0.0, 1.0))",
  keys=[np.minimum], result="numeric")
# as the operator's (rules/scalar.py, `pow`): numbers branch, arrays choose elementwise; at a == 0 the slope in a is
# 0 for b == 0 (a ** 0 is 1 everywhere), the slope in b is 0 (0 ** b is 0 for b > 0: no log(0))
p("np.power", "np.power({0}, {1})", "a, b", POW_DA, "out * math.log(a) if a > 0 else (0.0 if a == a else a)",
  keys=[np.power], result="numeric", array_partials=(POW_DA_ARRAYS, "out * np.log(np.where(a > 0, a, 1.0))"))
p("np.where", "np.where({0}, {1}, {2})", "c, a, b", None, "np.where(c, 1.0, 0.0)", "np.where(c, 0.0, 1.0)",
  keys=[np.where], result=lambda ts: _where_result(ts))
p("np.clip", "np.clip({0}, {1}, {2})", "x, lo, hi", "np.where(x < lo, 0.0, np.where(x > hi, 0.0, 1.0))",
  "np.where(x < lo, 1.0, 0.0)", "np.where(x > hi, 1.0, 0.0)", keys=[np.clip], result="numeric")

# Reductions (no axis): the adjoint spreads g over the input's shape.
# Tangents: ties in max/min count every tied element, as their adjoints do. Lane tangents are vectors of lanes.
_ones = "np.ones(x.shape)"
_TIES = "np.where(x == out, 1.0, 0.0)"
_TIES_AXIS = "np.where(x == np.expand_dims(out, axis), 1.0, 0.0)"
_STD_SLOPE = "(np.reciprocal(x.size * out) if x.size > 1 else 1.0)"  # inf, not an error, at 0
for _name, _vjp, _jvp, _lanes in [
    # a number accumulated into the array adjoint: broadcast, and x is not kept for its shape
    ("sum", "g", "np.sum(t)", "lanes.sum(t)"),
    ("mean", f"{_ones} * (g / x.size)", "np.mean(t)", "lanes.sum(t) / x.size"),
    # ties share g; a NaN maximum equals no element: 0 / 0, as an array division (NaN, not an error)
    ("max", f"{_TIES} / np.sum({_TIES}) * g", f"np.sum(np.where(x == out, t, 0.0) / np.sum({_TIES}))",
     f"lanes.dot({_TIES}, t) / np.sum({_TIES})"),
    ("min", f"{_TIES} / np.sum({_TIES}) * g", f"np.sum(np.where(x == out, t, 0.0) / np.sum({_TIES}))",
     f"lanes.dot({_TIES}, t) / np.sum({_TIES})"),
    ("prod", "rt.prod_others(x) * g", "np.sum(rt.prod_others(x) * t)", "lanes.dot(rt.prod_others(x), t)"),
    ("var", "2.0 * (x - np.mean(x)) / x.size * g", "np.sum(2.0 * (x - np.mean(x)) / x.size * t)",
     "lanes.dot(2.0 * (x - np.mean(x)) / x.size, t)"),
    # std of one element is 0 for every x: slope 0 (x - mean is exactly 0 there, 1 / out is not finite). Where
    # n > 1 elements are equal the slope is 0 / 0 = NaN, as autograd's (a kink: no derivative to report)
    ("std", f"(x - np.mean(x)) * (g * {_STD_SLOPE})", f"np.sum((x - np.mean(x)) * t) * {_STD_SLOPE}",
     f"lanes.dot(x - np.mean(x), t) * {_STD_SLOPE}"),
]:
    p(f"np.{_name}", f"np.{_name}({{0}})", "x", keys=[getattr(np, _name), f"method:{_name}"], vjps=(_vjp,),
      positional_options=("axis",),
      jvps=(_jvp,), lane_jvps=(_lanes,),
      result=lambda ts: T.Scalar("float" if T.np.dtype(T.dtype_of(ts[0])).kind == "f" else "int"),
      traits=Traits(fresh=True, hoistable=True, takes_any_layout=True) if _name == "sum" else FRESH)
p("np.cumsum", "np.cumsum({0})", "x", keys=[np.cumsum, "method:cumsum"], positional_options=("axis",),
  vjps=("np.ascontiguousarray(np.cumsum(g[::-1])[::-1]).reshape(x.shape)",),
  jvps=("np.cumsum(np.ascontiguousarray(t))",), lane_jvps=("lanes.cumsum(t)",),
  result=lambda ts: T.Array(T.dtype_of(ts[0]), 1))

# Sum and mean along an axis (numba has np.sum(x, axis=k); mean is sum / n). With keepdims the result gets its axis
# back by the runtime helper `keep_axis` (np.expand_dims, which numba refuses for the number a vector reduces to).
_axis_result = lambda ts, keep: ts[0] if keep else (  # noqa: E731
    T.Array(ts[0].dtype, ts[0].ndim - 1) if ts[0].ndim > 1 else T.FLOAT)
_keeps = lambda keep, *others: (runtime_import("keep_axis") if keep else ()) + others  # noqa: E731
_AXIS = {False: options("axis"), True: options("axis", keepdims=True)}  # the variants' keys, by keepdims
for _keep in (False, True):
    _k = "_keepdims" if _keep else ""
    _spread = "g" if _keep else "np.expand_dims(g, axis)"
    _sum = "np.sum({0}, axis={axis})" if not _keep else "keep_axis(np.sum({0}, axis={axis}), {axis})"
    _summed, _lane_summed = (  # the tangent's sum along the axis (lane tangents: the same axis, counted as laxis)
        ("np.expand_dims(np.sum(t, axis=axis), axis)", "np.expand_dims(np.sum(t, axis=laxis), laxis)") if _keep
        else ("np.sum(t, axis=axis)", "np.sum(t, axis=laxis)"))
    p(f"np.sum_axis{_k}", _sum, "x", vjps=(_spread,),  # broadcast into x's adjoint: x not kept for its shape
      variant_of=("np.sum", _AXIS[_keep]),
      jvps=(_summed,), lane_jvps=(_lane_summed,),
      result=lambda ts, keep=_keep: _axis_result(ts, keep), imports=_keeps(_keep))
    p(f"np.mean_axis{_k}", "(" + _sum + " / {0}.shape[{axis}])", "x", variant_of=("np.mean", _AXIS[_keep]),
      vjps=(f"{_ones} * ({_spread} / x.shape[axis])",), jvps=(f"{_summed} / x.shape[axis]",),
      lane_jvps=(f"{_lane_summed} / x.shape[axis]",), result=lambda ts, keep=_keep: _axis_result(ts, keep),
      imports=_keeps(_keep))

# Linear algebra. Adjoints depend on whether operands are vectors (rank 1) or matrices (rank 2).
_MATMUL_VJPS = {
    (1, 1): ("g * b", "g * a"),
    (2, 1): ("np.outer(g, b)", "a.T @ g"),
    (1, 2): ("b @ g", "np.outer(a, g)"),
    (2, 2): ("g @ b.T", "a.T @ g"),
}


def _matmul_result(ts):
    a, b = ts
    dtype = np.promote_types(T.dtype_of(a), T.dtype_of(b)).name
    rank = {(1, 1): 0, (2, 1): 1, (1, 2): 1, (2, 2): 2}.get((getattr(a, "ndim", 0), getattr(b, "ndim", 0)))
    if rank is None:
        raise TypeError("matrix products need vectors or matrices")
    return T.FLOAT if rank == 0 else T.Array(dtype, rank)


p("matmul", "{0} @ {1}", "a, b", keys=["MatMult", np.matmul, np.dot, "method:dot"], vjps=_MATMUL_VJPS,
  jvps=("t @ b", "a @ t"),
  lane_jvps={(1, 1): ("b @ t", "a @ t"), (2, 1): ("lanes.matvec(t, b)", "a @ t"),  # one product for all lanes
             (1, 2): ("b.T @ t", "lanes.vecmat(a, t)"), (2, 2): ("lanes.matmat(t, b)", "lanes.matmat_right(a, t)")},
  result=_matmul_result, traits=Traits(fresh=True, hoistable=True, added_into="add_matmul"))
# np.inner sums over the last axes of both: for a matrix b that is b @ a or a @ b.T, not a @ b (runtime helper
# inner_product, by ranks: numba has no np.inner)
_INNER_RANKS = {(1, 1): 0, (1, 2): 1, (2, 1): 1, (2, 2): 2}


def _inner_result(ts):
    ranks = tuple(getattr(t, "ndim", 0) for t in ts)
    if ranks not in _INNER_RANKS:
        raise TypeError(f"np.inner of arguments of ranks {ranks} is not supported (only vectors and matrices: "
                        "ranks (1, 1), (1, 2), (2, 1), (2, 2))")
    dtype = np.promote_types(T.dtype_of(ts[0]), T.dtype_of(ts[1])).name
    return T.FLOAT if ranks == (1, 1) else T.Array(dtype, _INNER_RANKS[ranks])


p("np.inner", "inner_product({0}, {1})", "a, b", keys=[np.inner], imports=runtime_import("inner_product"),
  vjps={(1, 1): ("g * b", "g * a"), (1, 2): ("b.T @ g", "np.outer(g, a)"), (2, 1): ("np.outer(g, b)", "a.T @ g"),
        (2, 2): ("g @ b", "g.T @ a")},
  jvps={(1, 1): ("np.dot(t, b)", "np.dot(a, t)"), (1, 2): ("b @ t", "t @ a"), (2, 1): ("t @ b", "a @ t"),
        (2, 2): ("t @ b.T", "a @ t.T")},
  lane_jvps={(1, 1): ("b @ t", "a @ t"), (1, 2): ("b @ t", "lanes.matvec(t, a)"),
             (2, 1): ("lanes.matvec(t, b)", "a @ t"),
             (2, 2): ("lanes.matmat(t, b.T)", "lanes.matmat_right(a, lanes.transpose(t))")},
  result=_inner_result)
OUTER_LANE_JVPS = ("np.expand_dims(t, 1) * np.expand_dims(b, 1)", "np.expand_dims(np.expand_dims(a, 1), 2) * t")
p("np.outer", "np.outer({0}, {1})", "a, b", keys=[np.outer], vjps=("g @ b", "g.T @ a"),
  jvps=("np.outer(t, b)", "np.outer(a, t)"), lane_jvps=OUTER_LANE_JVPS,
  result=lambda ts: T.Array(np.promote_types(T.dtype_of(ts[0]), T.dtype_of(ts[1])).name, 2),
  traits=Traits(fresh=True, hoistable=True, added_into="add_outer"))
p("transpose", "{0}.T", "x", keys=[np.transpose, "attr:T", "method:transpose"], vjps=("g.T",), result="same",
  jvps=("t.T",), lane_jvps={(1,): ("t",), (2,): ("lanes.transpose(t)",)},
  traits=Traits(view_of=0, hoistable=True, cheap_for=frozenset({"any"})))
p("np.trace", "np.trace({0})", "x", keys=[np.trace, "method:trace"],
  vjps=("np.eye(x.shape[0], x.shape[1]) * g",), jvps=("np.trace(t)",), lane_jvps=("lanes.trace(t)",),
  result=lambda ts: T.FLOAT)
p("np.linalg.norm", "np.linalg.norm({0})", "x", keys=[np.linalg.norm], vjps=("x / out * g",),
  positional_options=("ord", "axis", "keepdims"),
  jvps=("np.sum(x * t) * np.reciprocal(out)",), lane_jvps=("lanes.dot(x, t) / out",),
  result=lambda ts: T.FLOAT, default_options={"ord": None, "axis": None})
p("np.linalg.inv", "np.linalg.inv({0})", "a", keys=[np.linalg.inv], vjps=("-(out.T @ g @ out.T)",),
  jvps=("-(out @ t @ out)",), lane_jvps=("-lanes.matmat_right(out, lanes.matmat(t, out))",), result="same")
p("np.linalg.det", "np.linalg.det({0})", "a", keys=[np.linalg.det], vjps=("g * out * np.linalg.inv(a).T",),
  jvps=("out * np.trace(np.linalg.solve(a, t))",), lane_jvps=("out * lanes.trace(lanes.solve(a, t))",),
  result=lambda ts: T.FLOAT)
p("np.linalg.solve", "np.linalg.solve({0}, {1})", "a, b", keys=[np.linalg.solve],
  vjps={(2, 1): ("-np.outer(np.linalg.solve(a.T, g), out)", "np.linalg.solve(a.T, g)"),
        (2, 2): ("-(np.linalg.solve(a.T, g) @ out.T)", "np.linalg.solve(a.T, g)")},
  jvps={(2, 1): ("-np.linalg.solve(a, t @ out)", "np.linalg.solve(a, t)"),
        (2, 2): ("-np.linalg.solve(a, t @ out)", "np.linalg.solve(a, t)")},
  lane_jvps={(2, 1): ("-lanes.solve(a, lanes.matvec(t, out))", "lanes.solve(a, t)"),
             (2, 2): ("-lanes.solve(a, lanes.matmat(t, out))", "lanes.solve(a, t)")},
  result=lambda ts: T.Array(np.promote_types(T.dtype_of(ts[0]), T.dtype_of(ts[1])).name, ts[1].ndim))

# Shape functions: the adjoint reshapes g back to the argument's shape.
_back = ("np.ascontiguousarray(g).reshape(x.shape)",)
p("ravel", "np.ravel({0})", "x", keys=[np.ravel, "method:ravel", "method:flatten"], vjps=_back,
  jvps=("np.ravel(t)",), lane_jvps=("lanes.ravel(t)",), result=lambda ts: T.Array(ts[0].dtype, 1), traits=VIEW)
p("reshape", lambda args: f"np.ascontiguousarray({args[0]}).reshape({_shape(args[1:])})", "",
  vjps=lambda ranks: ("np.ascontiguousarray(g).reshape(a0.shape)",) + (None,) * (len(ranks) - 1),
  jvps=lambda ranks: ("np.ascontiguousarray(t).reshape(out.shape)",) + (None,) * (len(ranks) - 1),
  lane_jvps=lambda ranks: ("lanes.reshape(t, out)",) + (None,) * (len(ranks) - 1),
  keys=[np.reshape, "method:reshape"], result=lambda ts: T.Array(ts[0].dtype, len(ts) - 1), tuple_arg=1,
  shape_form="reshape_shape",
  traits=VIEW)
# a view of x too, as reshape is; not claimed yet: analysis/check.py would report more aliasing (true positives)
p("reshape_shape", "np.ascontiguousarray({0}).reshape({1}.shape)", "x, like", vjps=(
    "np.ascontiguousarray(g).reshape(x.shape)", None), result=lambda ts: T.Array(ts[0].dtype, ts[1].ndim),
  traits=_UNCLAIMED)
def _expanded(ts):
    if not T.is_array(ts[0]):  # numba's np.expand_dims takes arrays only
        raise TypeError("np.expand_dims needs an array; for a number use np.array([x])")
    return T.Array(ts[0].dtype, ts[0].ndim + 1)


p("np.expand_dims", "np.expand_dims({0}, {1})", "x, axis", keys=[np.expand_dims], vjps=_back + (None,),
  jvps=("np.expand_dims(t, axis)", None), lane_jvps=("np.expand_dims(t, laxis)", None), result=_expanded,
  traits=VIEW)
p("size", "{0}.size", "x", None, keys=["attr:size"], result="int",
  traits=Traits(fresh=True, shape_only=(0,), cheap_for=frozenset({"any"})))
p("ndim", "{0}.ndim", "x", None, keys=["attr:ndim"], result="int")
p("copy", "np.copy({0})", "x", keys=[np.copy, "method:copy"], vjps=("g",), jvps=("np.copy(t)",),
  lane_jvps=("np.copy(t)",), result="same")

# Constructors: constants (no derivative). A shape tuple is passed as its elements (normalize splits tuples).
def _shape(args) -> str:
    return "(" + ", ".join(args) + ",)"


for _name in ("zeros", "ones", "empty"):
    p(f"np.{_name}", lambda args, f=_name: f"np.{f}({_shape(args)})", "", keys=[getattr(np, _name)],
      shape_form=f"np.{_name}_shape",
      result=lambda ts: T.Array("float64", len(ts)), tuple_arg=0)
    p(f"np.{_name}_shape", f"np.{_name}({{0}}.shape)", "x", None, result=lambda ts: T.Array("float64", ts[0].ndim),
      traits=Traits(fresh=True, shape_only=(0,), extents_form="zeros_extents",
                    reusable_zeros=("has_shape_like", "lacks_shape_like")) if _name == "zeros" else _SHAPE)
    p(f"np.{_name}_like", f"np.{_name}_like({{0}})", "x", None, keys=[getattr(np, f"{_name}_like")],
      result="same", traits=_SHAPE)
p("np.full", lambda args: f"np.full({_shape(args[:-1])}, {args[-1]})", "", keys=[np.full], shape_form="np.full_shape",
  result=lambda ts: T.Array(T.dtype_of(ts[-1]), len(ts) - 1), tuple_arg=0)
p("np.full_shape", "np.full({0}.shape, {1})", "x, value", None, None,
  result=lambda ts: T.Array(T.dtype_of(ts[1]), ts[0].ndim), traits=_SHAPE)
p("np.full_like", "np.full_like({0}, {1})", "x, value", None, None, keys=[np.full_like], result="same")
p("np.eye", "np.eye({0})", "n", None, keys=[(np.eye, 1)], result=lambda ts: T.Array("float64", 2))
p("np.eye2", "np.eye({0}, {1})", "n, m", None, None, keys=[(np.eye, 2)], result=lambda ts: T.Array("float64", 2))
p("np.arange", "np.arange({0})", "n", None, keys=[(np.arange, 1)],
  result=lambda ts: T.Array(T.dtype_of(ts[0]), 1))
p("np.arange2", "np.arange({0}, {1})", "start, stop", None, None, keys=[(np.arange, 2)],
  result=lambda ts: T.Array(T.dtype_of(T.broadcast(ts)), 1))
p("np.linspace", "np.linspace({0}, {1}, {2})", "start, stop, n", None, None, None, keys=[(np.linspace, 3)],
  result=lambda ts: T.Array("float64", 1))


rt.array_of = RuntimeHelper("array_of")


def _array_of(ts):
    if T.is_array(ts[0]):
        return ts[0]
    return T.Array(T.dtype_of(ts[0]), 0)


# np.array(x) of one value, not a list: of a number a 0-d array (whose adjoint, a 0-d array, sums to a number), of
# an array a copy
p("np.array_of", "array_of({0})", "x", keys=[rt.array_of], imports=runtime_import("array_of"),
  vjps=lambda ranks: ("np.sum(g)",) if ranks[0] == 0 else ("g",),
  jvps=lambda ranks: ("rt.array_of(t)",) if ranks[0] == 0 else ("np.copy(t)",),
  lane_jvps=("np.copy(t)",),  # lanes of a number are a vector, lanes of its 0-d array the same vector
  result=_array_of)
p("np.array", lambda args: f"np.array([{', '.join(args)}])", "", keys=[np.array, np.asarray], tuple_arg=0,
  single_form="np.array_of",
  vjps=lambda ranks: tuple(f"g[{k}]" for k in range(len(ranks))) if set(ranks) <= {0} else None,
  jvps=lambda ranks: tuple(f"np.array([{', '.join('t' if j == k else '0.0' for j in range(len(ranks)))}])"
                           for k in range(len(ranks))) if set(ranks) <= {0} else None,
  lane_joins={0: "np.stack"},  # the numbers' lane tangents stacked: (n, lanes)
  result=lambda ts: T.Array(T.dtype_of(T.broadcast(ts, "float")), 1))

# Factorizations and helpers numba lacks, computed by runtime helpers.
p("np.linalg.cholesky", "np.linalg.cholesky({0})", "a", keys=[np.linalg.cholesky], vjps=("rt.cholesky_vjp(out, g)",),
  jvps=("rt.cholesky_jvp(out, t)",), lane_jvps=("lanes.cholesky_jvp(out, t)",), result="same")
p("rt.prod_others", "prod_others({0})", "x", keys=[rt.prod_others], result=lambda ts: T.Array("float64", ts[0].ndim),
  imports=runtime_import("prod_others"), vjps=("rt.prod_others_tangent(x, g)",),  # symmetric: the Hessian
  jvps=("rt.prod_others_tangent(x, t)",), lane_jvps=("lanes.prod_others_tangent(x, t)",))
p("rt.cholesky_vjp", "cholesky_vjp({0}, {1})", "lower, g", keys=[rt.cholesky_vjp], result=lambda ts: ts[0],
  traits=_UNCLAIMED, imports=runtime_import("cholesky_vjp"))
p("rt.cholesky_jvp", "cholesky_jvp({0}, {1})", "lower, t", keys=[rt.cholesky_jvp], result=lambda ts: ts[0],
  traits=_UNCLAIMED, imports=runtime_import("cholesky_jvp"))
p("np.linalg.slogdet", "", "a", keys=[np.linalg.slogdet], components=("slogdet_sign", "slogdet_logabsdet"),
  result="float")
p("slogdet_sign", "np.linalg.slogdet({0})[0]", "a", None, result=lambda ts: T.FLOAT, traits=_UNCLAIMED)
p("slogdet_logabsdet", "np.linalg.slogdet({0})[1]", "a", vjps=("g * np.linalg.inv(a).T",), traits=_UNCLAIMED,
  jvps=("np.trace(np.linalg.solve(a, t))",), lane_jvps=("lanes.trace(lanes.solve(a, t))",),
  result=lambda ts: T.FLOAT)
for _name in ("max", "min"):
    p(f"np.{_name}_axis", f"{_name}_along({{0}}, {{axis}})", "x", variant_of=(f"np.{_name}", _AXIS[False]), vjps=(
        "np.where(x == np.expand_dims(out, axis), 1.0, 0.0) * np.expand_dims(g / np.sum(np.where("
        "x == np.expand_dims(out, axis), 1.0, 0.0), axis=axis), axis)",),
      jvps=("np.sum(np.where(x == np.expand_dims(out, axis), t, 0.0), axis=axis) / np.sum(np.where("
            "x == np.expand_dims(out, axis), 1.0, 0.0), axis=axis)",),
      lane_jvps=(f"lanes.scale(1.0 / np.sum({_TIES_AXIS}, axis=axis), np.sum(lanes.scale({_TIES_AXIS}, t), "
                 "axis=laxis))",),
      result=lambda ts: _axis_result(ts, False), imports=runtime_import(f"{_name}_along"))
    # keepdims: the result keeps the reduced axis (size 1), so it broadcasts against x without expand_dims
    p(f"np.{_name}_axis_keepdims", f"keep_axis({_name}_along({{0}}, {{axis}}), {{axis}})", "x",
      variant_of=(f"np.{_name}", _AXIS[True]), vjps=(
        "np.where(x == out, 1.0, 0.0) / np.expand_dims(np.sum(np.where(x == out, 1.0, 0.0), axis=axis), axis) * g",),
      jvps=("np.expand_dims(np.sum(np.where(x == out, t, 0.0), axis=axis) / np.sum(np.where("
            "x == out, 1.0, 0.0), axis=axis), axis)",),
      lane_jvps=(f"np.expand_dims(lanes.scale(1.0 / np.sum({_TIES}, axis=axis), np.sum(lanes.scale("
                 f"{_TIES}, t), axis=laxis)), laxis)",),
      result="same", imports=_keeps(True, *runtime_import(f"{_name}_along")))

# Variance and standard deviation along an axis, from numba's np.sum(x, axis=k): mean = sum / n.
CENTERED_ALONG_AXIS = "(x - np.expand_dims(np.sum(x, axis=axis) / x.shape[axis], axis))"  # x minus its mean
_VAR = ("(np.sum(({0} - keep_axis(np.sum({0}, axis={axis}) / {0}.shape[{axis}], {axis})) ** 2, axis={axis})"
        " / {0}.shape[{axis}])")
p("np.var_axis", _VAR, "x", variant_of=("np.var", _AXIS[False]),
  vjps=(f"2.0 * {CENTERED_ALONG_AXIS} / x.shape[axis] * np.expand_dims(g, axis)",),
  jvps=(f"np.sum(2.0 * {CENTERED_ALONG_AXIS} * t, axis=axis) / x.shape[axis]",),
  lane_jvps=(f"np.sum(lanes.scale(2.0 * {CENTERED_ALONG_AXIS} / x.shape[axis], t), axis=laxis)",),
  result=lambda ts: _axis_result(ts, False), imports=_keeps(True))
# along an axis of length 1 the std is 0 for every x: slope 0, as for np.std of one element (above)
_STD_AXIS_SLOPE = "(1.0 / (x.shape[axis] * out) if x.shape[axis] > 1 else np.ones(out.shape))"
p("np.std_axis", f"np.sqrt({_VAR})", "x", variant_of=("np.std", _AXIS[False]),
  vjps=(f"{CENTERED_ALONG_AXIS} * np.expand_dims(g * {_STD_AXIS_SLOPE}, axis)",),
  jvps=(f"np.sum({CENTERED_ALONG_AXIS} * t, axis=axis) * {_STD_AXIS_SLOPE}",),
  lane_jvps=(f"lanes.scale({_STD_AXIS_SLOPE}, np.sum(lanes.scale({CENTERED_ALONG_AXIS}, t), axis=laxis))",),
  result=lambda ts: _axis_result(ts, False), imports=_keeps(True))

# Product and prefix sums along an axis. numba's np.prod takes no axis: `prod_along`; the adjoint of the product
# multiplies g by the product of the other elements along the axis (exact at zeros, as np.prod's).
for _helper in ("prod_others_along", "cumsum_reversed", "split_along", "embed_along", "prod_others_tangent",
                "prod_others_along_tangent"):
    setattr(rt, _helper, RuntimeHelper(_helper))  # rule templates call these as rt.NAME
for _keep in (False, True):
    _k, _spread = ("_keepdims", "g") if _keep else ("", "np.expand_dims(g, axis)")
    _along, _lane_along = ("np.sum(rt.prod_others_along(x, axis) * t, axis=axis)",
                           "np.sum(lanes.scale(rt.prod_others_along(x, axis), t), axis=laxis)")
    p(f"np.prod_axis{_k}", "keep_axis(prod_along({0}, {axis}), {axis})" if _keep else "prod_along({0}, {axis})",
      "x", variant_of=("np.prod", _AXIS[_keep]), vjps=(f"rt.prod_others_along(x, axis) * {_spread}",),
      jvps=(f"np.expand_dims({_along}, axis)" if _keep else _along,),
      lane_jvps=(f"np.expand_dims({_lane_along}, laxis)" if _keep else _lane_along,),
      result=lambda ts, keep=_keep: _axis_result(ts, keep), imports=_keeps(_keep, *runtime_import("prod_along")))
p("np.cumsum_axis", "np.cumsum({0}, axis={axis})", "x", variant_of=("np.cumsum", _AXIS[False]),
  vjps=("rt.cumsum_reversed(g, axis)",),
  jvps=("np.cumsum(t, axis=axis)",), lane_jvps=("np.cumsum(t, axis=laxis)",), result="same")
p("rt.prod_others_along", "prod_others_along({0}, {1})", "x, axis", keys=[rt.prod_others_along],
  vjps=("rt.prod_others_along_tangent(x, g, axis)", None), jvps=("rt.prod_others_along_tangent(x, t, axis)", None),
  lane_jvps=("lanes.prod_others_along_tangent(x, t, axis)", None),
  result=lambda ts: T.Array("float64", ts[0].ndim), imports=runtime_import("prod_others_along"))
# the second derivatives of products (runtime.py: `_prod_pairs`), linear in their second argument
p("rt.prod_others_tangent", "prod_others_tangent({0}, {1})", "x, w", keys=[rt.prod_others_tangent], traits=_UNCLAIMED,
  vjps=(None, "rt.prod_others_tangent(x, g)"), jvps=(None, "rt.prod_others_tangent(x, t)"),
  lane_jvps=(None, "lanes.prod_others_tangent(x, t)"),
  result=lambda ts: T.Array("float64", ts[0].ndim), imports=runtime_import("prod_others_tangent"))
p("rt.prod_others_along_tangent", "prod_others_along_tangent({0}, {1}, {2})", "x, w, axis",
  keys=[rt.prod_others_along_tangent], traits=_UNCLAIMED, vjps=(None, "rt.prod_others_along_tangent(x, g, axis)", None),
  jvps=(None, "rt.prod_others_along_tangent(x, t, axis)", None),
  lane_jvps=(None, "lanes.prod_others_along_tangent(x, t, axis)", None),
  result=lambda ts: T.Array("float64", ts[0].ndim), imports=runtime_import("prod_others_along_tangent"))
# the linear maps these adjoints use, each the other's transpose (second derivatives differentiate them)
p("rt.cumsum_reversed", "cumsum_reversed({0}, {1})", "x, axis", keys=[rt.cumsum_reversed],
  vjps=("np.cumsum(g, axis=axis)", None), jvps=("rt.cumsum_reversed(t, axis)", None),
  lane_jvps=("rt.cumsum_reversed(t, laxis)", None),
  result=lambda ts: T.Array("float64", ts[0].ndim), imports=runtime_import("cumsum_reversed"))
p("rt.split_along", "split_along({0}, {1}, {2}, {3})", "x, axis, start, like", keys=[rt.split_along], traits=_UNCLAIMED,
  vjps=("rt.embed_along(g, x, axis, start)", None, None, None),
  jvps=("rt.split_along(t, axis, start, like)", None, None, None),
  lane_jvps=("lanes.split(t, axis, start, like)", None, None, None),
  result=lambda ts: T.Array("float64", ts[3].ndim), imports=runtime_import("split_along"))
p("rt.embed_along", "embed_along({0}, {1}, {2}, {3})", "x, like, axis, start", keys=[rt.embed_along], traits=_UNCLAIMED,
  vjps=("rt.split_along(g, axis, start, x)", None, None, None),
  jvps=("rt.embed_along(t, like, axis, start)", None, None, None),
  lane_jvps=("lanes.embed(t, like, axis, start)", None, None, None),
  result=lambda ts: T.Array("float64", ts[1].ndim), imports=runtime_import("embed_along"))


# Norms with `ord` and `axis`. ord='fro' (matrices) and ord=2 (vectors) are the default norm; ord=2 of a matrix (its
# largest singular value) and other orders have no rule. numba's norm takes no axis: the 2-norm along an axis is
# sqrt(sum(x * x)), as numpy computes it; like norm(x), its derivative x / norm is 0 / 0 = NaN where norm is 0.
# At the zero vector the norm has no derivative (a cone's tip); NaN there is autograd's choice (its vjp is
# x / norm * g) and JAX's (sqrt's slope at 0 times 0), where a subgradient (0) would hide that kink.
def _norm_of_rank(rank, form):
    def result(ts):
        if getattr(ts[0], "ndim", 0) != rank:
            raise TypeError(f"{form} needs an array of rank {rank}")
        return T.FLOAT
    return result


def _norm_along(ts, keep):
    dtype = ts[0].dtype if np.dtype(ts[0].dtype).kind == "f" else "float64"
    return _axis_result((T.Array(dtype, ts[0].ndim),), keep)


NORMS_ALONG_AXIS = {}  # variant name: whether it keeps the reduced axis
for _name, _rank, _ord in (("np.linalg.norm_ord_fro", 2, "fro"), ("np.linalg.norm_ord_2", 1, 2)):
    p(_name, "np.linalg.norm({0})", "x", variant_of=("np.linalg.norm", options(ord=_ord)),
      vjps=("x / out * g",), jvps=("np.sum(x * t) * np.reciprocal(out)",),
      lane_jvps=("lanes.dot(x, t) / out",), result=_norm_of_rank(_rank, _name))
for _ord in ("", "_ord_2"):  # ord=2 along an axis is the default vector norm
    for _keep in (False, True):
        _name = f"np.linalg.norm_axis{'_keepdims' if _keep else ''}{_ord}"
        NORMS_ALONG_AXIS[_name] = _keep
        _norm = "np.sqrt(np.sum({0} * {0}, axis={axis}))"
        p(_name, f"keep_axis({_norm}, {{axis}})" if _keep else _norm, "x",
          variant_of=("np.linalg.norm", _AXIS[_keep] | (options(ord=2) if _ord else frozenset())),
          vjps=("x / out * g" if _keep else "x / np.expand_dims(out, axis) * np.expand_dims(g, axis)",),
          jvps=("np.expand_dims(np.sum(x * t, axis=axis), axis) / out" if _keep
                else "np.sum(x * t, axis=axis) / out",),
          lane_jvps=("lanes.scale(1.0 / out, np.expand_dims(np.sum(lanes.scale(x, t), axis=laxis), laxis))"
                     if _keep else "lanes.scale(1.0 / out, np.sum(lanes.scale(x, t), axis=laxis))",),
          result=lambda ts, keep=_keep: _norm_along(ts, keep), imports=_keeps(_keep))


def _concatenated(ranks, stacked=False):
    """Adjoint of joining arrays along axis 0: each argument gets its slice (or, stacked, its row) of g."""
    rules, offset = [], "0"
    for k in range(len(ranks)):
        rules.append(f"g[{k}]" if stacked else f"g[{offset}:{offset} + a{k}.shape[0]]")
        offset = f"{offset} + a{k}.shape[0]"
    return tuple(rules)


def _joined_tangents(ranks, join):
    zeros = [f"np.zeros(a{j}.shape)" for j in range(len(ranks))]
    return tuple(f"np.{join}(({', '.join(zeros[:k] + ['t'] + zeros[k + 1:])},))" for k in range(len(ranks)))


def _joined(ts, extra_rank):
    dtype = ts[0].dtype
    for t in ts[1:]:
        dtype = np.promote_types(dtype, t.dtype).name
    return T.Array(dtype, ts[0].ndim + extra_rank)


_JOINS = {  # name: (numpy function, stacks a new axis?, ranks it accepts, the lane tangents' join by rank)
    "concatenate": (np.concatenate, False, None, {1: "np.concatenate", 2: "np.concatenate", 3: "np.concatenate"}),
    "stack": (np.stack, True, None, {1: "np.stack", 2: "np.stack"}),
    "hstack": (np.hstack, False, 1, {1: "np.concatenate"}),
    "vstack": (np.vstack, None, None, {1: "np.stack", 2: "np.concatenate"}),
}
for _name, (_func, _stacked, _only, _lanes) in _JOINS.items():
    def _rules(ranks, stacked=_stacked, only=_only):
        if only is not None and set(ranks) != {only}:
            return None
        return _concatenated(ranks, stacked if stacked is not None else ranks[0] == 1)

    def _tangents(ranks, name=_name, only=_only):
        return None if only is not None and set(ranks) != {only} else _joined_tangents(ranks, name)

    p(f"np.{_name}", lambda args, n=_name: f"np.{n}(({', '.join(args)},))", "", keys=[_func], tuple_arg=0,
      default_options={"axis": 0}, positional_options=("axis",), single_form=f"np.{_name}_of",
      vjps=_rules, jvps=_tangents, lane_joins=_lanes,
      result=lambda ts, s=_stacked: _joined(ts, 1 if s or (s is None and ts[0].ndim == 1) else 0))


# One array given where the tuple goes (np.vstack(A)): numpy joins its items along its first axis. Every form with a
# rule is A's elements in C order in a new shape (the runtime helpers `vstack_of`... by rank), so its adjoint
# reshapes g back and its tangent is t reshaped alike; the result's rank by A's, None where numpy raises or the
# elements move (np.hstack of a 3-d array transposes).
_JOINED_ONE_RANKS = {
    "vstack": lambda r: {1: 2, 2: 2, 3: 2, 4: 3}.get(r), "hstack": lambda r: {1: 1, 2: 1}.get(r),
    "concatenate": lambda r: {2: 1, 3: 2, 4: 3}.get(r), "stack": lambda r: r if 1 <= r <= 4 else None,
}


def _joined_one(ts, name):
    rank = _JOINED_ONE_RANKS[name](getattr(ts[0], "ndim", 0))
    if rank is None:
        raise TypeError(f"np.{name} of one array (its items joined) is not supported for "
                        f"{'a number' if not T.is_array(ts[0]) else f'an array of rank {ts[0].ndim}'}: "
                        "pass a tuple of arrays")
    return T.Array(ts[0].dtype, rank)


for _name in _JOINS:
    p(f"np.{_name}_of", f"{_name}_of({{0}})", "x", imports=runtime_import(f"{_name}_of"),
      vjps=("np.ascontiguousarray(g).reshape(x.shape)",), jvps=("np.ascontiguousarray(t).reshape(out.shape)",),
      lane_jvps=("lanes.reshape(t, out)",), result=lambda ts, n=_name: _joined_one(ts, n))


def _no_join_of_one(ts):
    raise TypeError("np.concatenate of one array along an axis other than 0 is not supported: pass a tuple of "
                    "arrays")


p("np.concatenate_of_axis", "", "x", result=_no_join_of_one)


class _JoinAlong(str):
    """The template of np.concatenate along a static axis: any number of arrays, then the axis option (what
    Primitive.render passes to a string template's `format`)."""

    def format(self, *args, **options):
        return f"np.concatenate(({', '.join(args)},), axis={options['axis']})"


def along_axis(ranks, template):
    """One rule per argument of a join along `axis`: `template` over the argument (a{k}) and its offset."""
    rules, offset = [], "0"
    for k in range(len(ranks)):
        rules.append(template.format(arg=f"a{k}", offset=offset))
        offset = f"{offset} + a{k}.shape[axis]"
    return tuple(rules)


# Along another axis (axis=0 is the primitive above): argument k's adjoint is its block of g along the axis, its
# tangent contribution zeros holding t in that block (runtime helpers: numba slices along a given axis only
# with a static index expression).
p("np.concatenate_axis", _JoinAlong("np.concatenate"), "", tuple_arg=0, variant_of=("np.concatenate", _AXIS[False]),
  single_form="np.concatenate_of_axis",
  vjps=lambda ranks: along_axis(ranks, "rt.split_along(g, axis, {offset}, {arg})"),
  jvps=lambda ranks: along_axis(ranks, "rt.embed_along(t, out, axis, {offset})"),
  lane_jvps=lambda ranks: along_axis(ranks, "lanes.embed(t, out, axis, {offset})"),
  result=lambda ts: _joined(ts, 0))


# A reduction along the only axis of a vector is the whole reduction: a number, or with keepdims a 1-element array.
# There its rules are the whole reduction's (the axis forms expand the number's adjoint or tangent, which numba
# refuses), so ties and NaNs follow the same conventions; a 1-element `g` and `out` broadcast as numbers do, and a
# tangent (a number, or of a rule dividing by `out` a 1-element array) is given its axis back by `keep`.
VECTOR_REDUCTIONS = {variant.name: (whole, ("keepdims", True) in key) for whole in (
    "np.sum", "np.mean", "np.max", "np.min", "np.prod", "np.var", "np.std", "np.linalg.norm")
    for key, variant in REGISTRY.named(whole).variants.items() if "axis" in key}  # along an axis: (whole, keepdims?)


def of_vectors_whole(along, whole, keep=None):
    """Rules by the argument's rank: `whole`'s at rank 1 (each passed through the format `keep`), else `along`."""
    whole = tuple(r if r is None or keep is None else keep.format(r) for r in whole)
    return lambda ranks: whole if ranks[0] == 1 else along


for _name, (_whole, _keep) in VECTOR_REDUCTIONS.items():
    _along, _of = REGISTRY.named(_name), REGISTRY.named(_whole)
    _along.vjps = of_vectors_whole(_along.vjps, _of.vjps)
    _along.jvps = of_vectors_whole(_along.jvps, _of.jvps, "np.ones(1) * ({})" if _keep else None)
    _along.lane_jvps = of_vectors_whole(_along.lane_jvps, _of.lane_jvps, "np.expand_dims({}, 0)" if _keep else None)
