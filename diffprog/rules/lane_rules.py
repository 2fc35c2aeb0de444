"""Tangent rules of batched forward mode (transforms/batched.py), where every tangent carries a trailing lane axis:
the tangent of a number is a vector of `lanes` values, the tangent of an array of shape S an array of shape
(*S, lanes), one directional derivative per lane.

Elementwise primitives need nothing here: a tangent (*S, lanes) broadcasts against others from the right like
its primal, and the transform gives array partials a trailing axis (`lanes.scale`). The non-elementwise ones
(reductions, linear algebra, shapes, and the linear maps generated adjoints use) get one template per argument,
as their single-direction `jvps` do, over the parameters, `out`, `t` (the argument's tangent, lanes last) and
`laxis` (the primitive's axis counted in the tangent: one less for a negative axis). Templates call the helpers
of backend/runtime.py through the `lanes` markers below where numba's numpy lacks a form for arrays of one more
axis; linear algebra becomes one matrix product for all lanes where it can.

A primitive without an entry here has no batched rule: the transform reports DP102, and dp.jacobian says so
and runs one single-direction pass per column instead.
"""
from types import SimpleNamespace

from ..ir import types as T
from .numpy_rules import CENTERED_ALONG_AXIS, NORMS_ALONG_AXIS, VECTOR_REDUCTIONS, along_axis, of_vectors_whole
from .registry import REGISTRY
from .registry import primitive as p
from .runtime_calls import RuntimeHelper, runtime_import

_HELPERS = ("zeros", "fit", "scale", "tape", "tape_reserve", "sum", "dot", "cumsum", "ravel", "reshape", "matvec",
            "matmat", "vecmat", "matmat_right", "transpose", "trace", "solve", "cholesky_jvp", "unbroadcast",
            "scatter", "split", "embed", "prod_others_tangent", "prod_others_along_tangent")
# Markers that rule templates call as `lanes.NAME(...)`: each stands for backend/runtime.py's `lanes_NAME`.
lanes = SimpleNamespace(**{name: RuntimeHelper(f"lanes_{name}") for name in _HELPERS})

_PARAMS = {"zeros": "lanes, like", "fit": "t, like", "scale": "weights, t", "tape": "lanes, capacity",
           "tape_reserve": "tape, length, count", "dot": "weights, t", "reshape": "t, like", "matvec": "t, b",
           "matmat": "t, b", "vecmat": "a, t", "matmat_right": "a, t", "solve": "a, t", "cholesky_jvp": "lower, t",
           "unbroadcast": "t, like", "scatter": "target, index, t", "split": "t, axis, start, like",
           "embed": "t, like, axis, start", "prod_others_tangent": "x, t",
           "prod_others_along_tangent": "x, t, axis"}
_array = lambda rank: lambda ts: T.Array("float64", rank(ts))  # noqa: E731
_RESULTS = {
    "zeros": _array(lambda ts: ts[1].ndim + 1), "fit": _array(lambda ts: ts[1].ndim + 1),
    "scale": _array(lambda ts: max(ts[0].ndim + 1, ts[1].ndim)), "tape": _array(lambda ts: 2),
    "tape_reserve": _array(lambda ts: 2), "sum": _array(lambda ts: 1), "dot": _array(lambda ts: 1),
    "cumsum": _array(lambda ts: 2), "ravel": _array(lambda ts: 2), "reshape": _array(lambda ts: ts[1].ndim + 1),
    "matvec": _array(lambda ts: 2), "matmat": _array(lambda ts: 3), "vecmat": _array(lambda ts: 2),
    "matmat_right": _array(lambda ts: 3), "transpose": _array(lambda ts: 3), "trace": _array(lambda ts: 1),
    "solve": _array(lambda ts: ts[1].ndim), "cholesky_jvp": _array(lambda ts: 3),
    "unbroadcast": _array(lambda ts: ts[0].ndim), "scatter": _array(lambda ts: ts[0].ndim + 1),
    "split": _array(lambda ts: ts[3].ndim + 1), "embed": _array(lambda ts: ts[1].ndim + 1),
    "prod_others_tangent": _array(lambda ts: ts[1].ndim), "prod_others_along_tangent": _array(lambda ts: ts[1].ndim),
}
for _name in _HELPERS:
    _count = len(_PARAMS.get(_name, "t").split(","))
    p(f"lanes.{_name}", f"lanes_{_name}({', '.join('{%d}' % k for k in range(_count))})", _PARAMS.get(_name, "t"),
      keys=[getattr(lanes, _name)], result=_RESULTS[_name], imports=runtime_import(f"lanes_{_name}"))

_TIES = "np.where(x == out, 1.0, 0.0)"
_TIES_AXIS = "np.where(x == np.expand_dims(out, axis), 1.0, 0.0)"
_MATMUL = {(1, 1): ("b @ t", "a @ t"), (2, 1): ("lanes.matvec(t, b)", "a @ t"),
           (1, 2): ("b.T @ t", "lanes.vecmat(a, t)"), (2, 2): ("lanes.matmat(t, b)", "lanes.matmat_right(a, t)")}

# Per primitive: one template per argument (None: the result does not depend on it), or a dict keyed by the
# arguments' ranks, or a function of the ranks (variadic primitives).
LANE_JVPS = {
    # reductions over every axis: a vector of lanes
    "np.sum": ("lanes.sum(t)",),
    "np.mean": ("lanes.sum(t) / x.size",),
    "np.max": (f"lanes.dot({_TIES}, t) / np.sum({_TIES})",),
    "np.min": (f"lanes.dot({_TIES}, t) / np.sum({_TIES})",),
    "np.prod": ("lanes.dot(rt.prod_others(x), t)",),
    "np.var": ("lanes.dot(2.0 * (x - np.mean(x)) / x.size, t)",),
    "np.std": ("lanes.dot((x - np.mean(x)) / (x.size * out), t)",),
    "np.cumsum": ("lanes.cumsum(t)",),
    # reductions along an axis: the same axis of the tangent
    "np.sum_axis": ("np.sum(t, axis=laxis)",),
    "np.sum_axis_keepdims": ("np.expand_dims(np.sum(t, axis=laxis), laxis)",),
    "np.mean_axis": ("np.sum(t, axis=laxis) / x.shape[axis]",),
    "np.mean_axis_keepdims": ("np.expand_dims(np.sum(t, axis=laxis), laxis) / x.shape[axis]",),
    "np.max_axis": (f"lanes.scale(1.0 / np.sum({_TIES_AXIS}, axis=axis), np.sum(lanes.scale({_TIES_AXIS}, t), "
                    "axis=laxis))",),
    "np.min_axis": (f"lanes.scale(1.0 / np.sum({_TIES_AXIS}, axis=axis), np.sum(lanes.scale({_TIES_AXIS}, t), "
                    "axis=laxis))",),
    "np.max_axis_keepdims": (f"np.expand_dims(lanes.scale(1.0 / np.sum({_TIES}, axis=axis), np.sum(lanes.scale("
                             f"{_TIES}, t), axis=laxis)), laxis)",),
    "np.min_axis_keepdims": (f"np.expand_dims(lanes.scale(1.0 / np.sum({_TIES}, axis=axis), np.sum(lanes.scale("
                             f"{_TIES}, t), axis=laxis)), laxis)",),
    "np.var_axis": (f"np.sum(lanes.scale(2.0 * {CENTERED_ALONG_AXIS} / x.shape[axis], t), axis=laxis)",),
    "np.std_axis": (f"lanes.scale(1.0 / (x.shape[axis] * out), np.sum(lanes.scale({CENTERED_ALONG_AXIS}, t), "
                    "axis=laxis))",),
    "np.prod_axis": ("np.sum(lanes.scale(rt.prod_others_along(x, axis), t), axis=laxis)",),
    "np.prod_axis_keepdims": ("np.expand_dims(np.sum(lanes.scale(rt.prod_others_along(x, axis), t), axis=laxis), "
                              "laxis)",),
    "np.cumsum_axis": ("np.cumsum(t, axis=laxis)",),
    **{name: ("lanes.scale(1.0 / out, np.expand_dims(np.sum(lanes.scale(x, t), axis=laxis), laxis))" if keep else
              "lanes.scale(1.0 / out, np.sum(lanes.scale(x, t), axis=laxis))",)
       for name, keep in NORMS_ALONG_AXIS.items()},
    # linear algebra
    "matmul": _MATMUL,
    "np.inner": {(1, 1): ("b @ t", "a @ t")},
    "np.outer": ("np.expand_dims(t, 1) * np.expand_dims(b, 1)", "np.expand_dims(np.expand_dims(a, 1), 2) * t"),
    "transpose": {(1,): ("t",), (2,): ("lanes.transpose(t)",)},
    "np.trace": ("lanes.trace(t)",),
    "np.linalg.norm": ("lanes.dot(x, t) / out",),
    "np.linalg.norm_ord_fro": ("lanes.dot(x, t) / out",),
    "np.linalg.norm_ord_2": ("lanes.dot(x, t) / out",),
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
    "np.concatenate_axis": lambda ranks: along_axis(ranks, "lanes.embed(t, out, axis, {offset})"),
    # the linear maps generated adjoints use (forward over reverse: Hessians)
    "unbroadcast": lambda ranks: ("lanes.unbroadcast(t, like)" if ranks[1] > 0 else "t", None),
    **{f"unbroadcast_extents{rank}": ("lanes.unbroadcast(t, out)",) + (None,) * rank for rank in range(1, 5)},
    "scatter_add": ("t", None, "lanes.scatter(target, index, t)"),
    "sum_leading": ("np.sum(t, axis=0)",),
    "as_float64": ("rt.as_float64(t)",),
    "rt.cumsum_reversed": ("rt.cumsum_reversed(t, laxis)", None),
    "rt.split_along": ("lanes.split(t, axis, start, like)", None, None, None),
    "rt.embed_along": ("lanes.embed(t, like, axis, start)", None, None, None),
    "rt.prod_others": ("lanes.prod_others_tangent(x, t)",),
    "rt.prod_others_along": ("lanes.prod_others_along_tangent(x, t, axis)", None),
    "rt.prod_others_tangent": (None, "lanes.prod_others_tangent(x, t)"),
    "rt.prod_others_along_tangent": (None, "lanes.prod_others_along_tangent(x, t, axis)", None),
}
LANE_JVPS["add_outer"] = ("t",) + LANE_JVPS["np.outer"]  # target + np.outer(a, b)

# Along the only axis of a vector, the whole reduction's rules (numpy_rules.py: VECTOR_REDUCTIONS), lanes last
for _name, (_whole, _keep) in VECTOR_REDUCTIONS.items():
    LANE_JVPS[_name] = of_vectors_whole(LANE_JVPS[_name], LANE_JVPS[_whole], "np.expand_dims({}, 0)" if _keep else None)

# Primitives whose tangent joins the arguments' tangents (zero for constant arguments) as the primal joins the
# arguments, lanes last: the joining primitive applied to the tangents, by the arguments' rank.
JOINS = {
    "np.array": {0: "np.stack"},
    "np.concatenate": {1: "np.concatenate", 2: "np.concatenate", 3: "np.concatenate"},
    "np.hstack": {1: "np.concatenate"},
    "np.stack": {1: "np.stack", 2: "np.stack"},
    "np.vstack": {1: "np.stack", 2: "np.concatenate"},
}


for _name, _rules in LANE_JVPS.items():
    REGISTRY.named(_name).lane_jvps = _rules
for _name, _joins in JOINS.items():
    REGISTRY.named(_name).lane_joins = _joins


def lane_jvp(prim, k: int, ranks: tuple):
    """The template (text) of argument k's lane tangent contribution, None when the result does not depend on
    it, or KeyError when the primitive has no batched rule (at these ranks)."""
    return prim.lane_jvp(k, ranks)


def has_lane_rule(prim) -> bool:
    return prim.has_lane_rule

