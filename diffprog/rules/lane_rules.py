"""Tangent rules of batched forward mode (transforms/batched.py), where every tangent carries a leading lane axis:
the tangent of a number is a vector of `lanes` values, the tangent of an array of shape S an array of shape
(lanes, *S), one directional derivative per lane.

Elementwise primitives need nothing here: their partials broadcast against tangents with a lane axis (the
transform lifts lower-rank tangents first). The non-elementwise ones (reductions, linear algebra, shapes, and the
linear maps generated adjoints use) get one template per argument, as their single-direction `jvps` do, over the
parameters, `out`, `t` (the argument's tangent, lane axis first) and `laxis` (the primitive's axis, counted in
the tangent: one more for a non-negative axis). Templates call the helpers of backend/runtime.py through the
`lanes` markers below where numba's numpy lacks a form for arrays of one more axis.

A primitive without an entry here has no batched rule: the transform reports DP102 and dp.jacobian says so and
runs one single-direction pass per column instead.
"""
from types import SimpleNamespace

from ..ir import types as T
from .registry import REGISTRY
from .registry import primitive as p
from .runtime_calls import RuntimeHelper, runtime_import

_HELPERS = ("zeros", "fit", "tape", "tape_reserve", "sum", "cumsum", "ravel", "reshape", "matvec", "matmat",
            "vecmat", "matmat_right", "transpose", "trace", "solve", "cholesky_jvp", "unbroadcast", "scatter")
# Markers that rule templates call as `lanes.NAME(...)`: each stands for backend/runtime.py's `lanes_NAME`.
lanes = SimpleNamespace(**{name: RuntimeHelper(f"lanes_{name}") for name in _HELPERS})

_vector = lambda ts: T.Array("float64", 1)  # noqa: E731
_same_plus_lane = lambda ts: T.Array("float64", getattr(ts[-1], "ndim", 0) + 1)  # noqa: E731
_first = lambda ts: T.Array("float64", ts[0].ndim)  # noqa: E731
_RESULTS = {
    "zeros": _same_plus_lane, "fit": _same_plus_lane, "tape": lambda ts: T.Array("float64", 2),
    "tape_reserve": _first, "sum": _vector, "cumsum": lambda ts: T.Array("float64", 2),
    "ravel": lambda ts: T.Array("float64", 2), "reshape": _same_plus_lane,
    "matvec": lambda ts: T.Array("float64", 2), "matmat": lambda ts: T.Array("float64", 3),
    "vecmat": lambda ts: T.Array("float64", 2), "matmat_right": lambda ts: T.Array("float64", 3),
    "transpose": _first, "trace": _vector, "solve": lambda ts: T.Array("float64", ts[1].ndim),
    "cholesky_jvp": lambda ts: T.Array("float64", 3), "unbroadcast": _first,
    "scatter": lambda ts: T.Array("float64", ts[0].ndim + 1),
}
for _name in _HELPERS:
    _params = {"zeros": "lanes, like", "fit": "t, like", "tape": "lanes, capacity",
               "tape_reserve": "tape, length, count", "reshape": "t, like", "matvec": "t, b", "matmat": "t, b",
               "vecmat": "a, t", "matmat_right": "a, t", "solve": "a, t", "cholesky_jvp": "lower, t",
               "unbroadcast": "t, like", "scatter": "target, index, t"}.get(_name, "t")
    _count = len(_params.split(","))
    p(f"lanes.{_name}", f"lanes_{_name}({', '.join('{%d}' % k for k in range(_count))})", _params,
      keys=[getattr(lanes, _name)], result=_RESULTS[_name], imports=runtime_import(f"lanes_{_name}"))

# Joining tangents along the axis after the lanes (np.array of numbers, concatenate, stack).
p("lanes.columns", lambda args: f"np.column_stack(({', '.join(args)},))", "", result=lambda ts: T.Array("float64", 2))
p("lanes.concatenate", lambda args: f"np.concatenate(({', '.join(args)},), axis=1)", "",
  result=lambda ts: T.Array("float64", ts[0].ndim))
p("lanes.stack", lambda args: f"np.stack(({', '.join(args)},), axis=1)", "",
  result=lambda ts: T.Array("float64", ts[0].ndim + 1))

_TIES = "np.where(x == out, 1.0, 0.0)"
_TIES_AXIS = "np.where(x == np.expand_dims(out, axis), 1.0, 0.0)"
_MATMUL = {(1, 1): ("t @ b", "t @ a"), (2, 1): ("lanes.matvec(t, b)", "t @ a.T"),
           (1, 2): ("t @ b", "lanes.vecmat(a, t)"), (2, 2): ("lanes.matmat(t, b)", "lanes.matmat_right(a, t)")}

# Per primitive: one template per argument (None: the result does not depend on it), or a dict keyed by the
# arguments' ranks, or a function of the ranks (variadic primitives).
LANE_JVPS = {
    # reductions over every axis: a vector of lanes
    "np.sum": ("lanes.sum(t)",),
    "np.mean": ("lanes.sum(t) / x.size",),
    "np.max": (f"lanes.sum({_TIES} * t) / np.sum({_TIES})",),
    "np.min": (f"lanes.sum({_TIES} * t) / np.sum({_TIES})",),
    "np.prod": ("lanes.sum(rt.prod_others(x) * t)",),
    "np.var": ("lanes.sum(2.0 * (x - np.mean(x)) / x.size * t)",),
    "np.std": ("lanes.sum((x - np.mean(x)) / (x.size * out) * t)",),
    "np.cumsum": ("lanes.cumsum(t)",),
    # reductions along an axis: the same axis of the tangent, one further out
    "np.sum_axis": ("np.sum(t, axis=laxis)",),
    "np.sum_axis_keepdims": ("np.expand_dims(np.sum(t, axis=laxis), laxis)",),
    "np.mean_axis": ("np.sum(t, axis=laxis) / x.shape[axis]",),
    "np.mean_axis_keepdims": ("np.expand_dims(np.sum(t, axis=laxis), laxis) / x.shape[axis]",),
    "np.max_axis": (f"np.sum({_TIES_AXIS} * t, axis=laxis) / np.sum({_TIES_AXIS}, axis=axis)",),
    "np.min_axis": (f"np.sum({_TIES_AXIS} * t, axis=laxis) / np.sum({_TIES_AXIS}, axis=axis)",),
    # linear algebra
    "matmul": _MATMUL,
    "np.inner": {(1, 1): ("t @ b", "t @ a")},
    "np.outer": ("np.expand_dims(t, 2) * b", "np.expand_dims(a, 1) * np.expand_dims(t, 1)"),
    "transpose": {(1,): ("t",), (2,): ("lanes.transpose(t)",)},
    "np.trace": ("lanes.trace(t)",),
    "np.linalg.norm": ("lanes.sum(x * t) / out",),
    "np.linalg.inv": ("-lanes.matmat_right(out, lanes.matmat(t, out))",),
    "np.linalg.det": ("out * lanes.trace(lanes.solve(a, t))",),
    "np.linalg.solve": {(2, 1): ("-lanes.solve(a, lanes.matvec(t, out))", "lanes.solve(a, t)"),
                        (2, 2): ("-lanes.solve(a, lanes.matmat(t, out))", "lanes.solve(a, t)")},
    "np.linalg.cholesky": ("lanes.cholesky_jvp(out, t)",),
    "slogdet_logabsdet": ("lanes.trace(lanes.solve(a, t))",),
    # shapes
    "ravel": ("lanes.ravel(t)",),
    "reshape": lambda ranks: ("lanes.reshape(t, out)",) + (None,) * (len(ranks) - 1),
    "np.expand_dims": ("np.expand_dims(t, laxis)", None),
    "copy": ("np.copy(t)",),
    # the linear maps generated adjoints use (forward over reverse: Hessians)
    "unbroadcast": lambda ranks: ("lanes.unbroadcast(t, like)" if ranks[1] > 0 else "t", None),
    "scatter_add": ("t", None, "lanes.scatter(target, index, t)"),
    "sum_leading": ("np.sum(t, axis=1)",),
    "as_float64": ("rt.as_float64(t)",),
}

# Primitives whose tangent joins the arguments' tangents (zero for constant arguments) along the axis after the
# lanes: (joining primitive, the lane primitive for arguments of rank 0, 1, 2, ...; None: no rule).
JOINS = {
    "np.array": {0: "lanes.columns"},
    "np.concatenate": {1: "lanes.concatenate", 2: "lanes.concatenate", 3: "lanes.concatenate"},
    "np.hstack": {1: "lanes.concatenate"},
    "np.stack": {1: "lanes.stack", 2: "lanes.stack"},
    "np.vstack": {1: "lanes.stack", 2: "lanes.concatenate"},
}


def lane_jvp(prim, k: int, ranks: tuple):
    """The template (text) of argument k's lane tangent contribution, None when the result does not depend on
    it, or KeyError when the primitive has no batched rule (at these ranks)."""
    rules = LANE_JVPS[prim.name]
    table = rules.get(ranks) if isinstance(rules, dict) else rules(ranks) if callable(rules) else rules
    if table is None:
        raise KeyError(prim.name)
    return table[k]


def has_lane_rule(prim) -> bool:
    return prim.name in LANE_JVPS or prim.name in JOINS


def lane_primitive(name):
    return REGISTRY.named(name)
