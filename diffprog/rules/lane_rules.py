"""Tangent rules of batched forward mode (transforms/batched.py), where every tangent carries a trailing lane axis:
the tangent of a number is a vector of `lanes` values, the tangent of an array of shape S an array of shape
(*S, lanes), one directional derivative per lane.

Elementwise primitives need nothing here: a tangent (*S, lanes) broadcasts against others from the right like
its primal, and the transform gives array partials a trailing axis (`lanes.scale`). The non-elementwise ones
(reductions, linear algebra, shapes, and the linear maps generated adjoints use) get one template per argument,
as their single-direction `jvps` do, over the parameters, `out`, `t` (the argument's tangent, lanes last) and
`laxis` (the primitive's axis counted in the tangent: one less for a negative axis). Templates call the helpers
of backend/runtime/lanes.py through the `lanes` markers below where numba's numpy lacks a form for arrays of one more
axis; linear algebra becomes one matrix product for all lanes where it can.

Each primitive declares its lane rules where it is declared (rules/numpy_rules.py, rules/structural.py):
`lane_jvps`, one template per argument (None: the result does not depend on it), a dict keyed by the arguments'
ranks, or a function of the ranks (variadic primitives); or `lane_joins` for the primitives whose tangent joins the
arguments' tangents as the primal joins the arguments (argument rank -> the joining primitive). A primitive
without either has no batched rule: the transform reports DP102, and dp.jacobian says so and runs one
single-direction pass per column instead. This module declares the helpers those templates call.
"""
from types import SimpleNamespace

from ..ir import types as T
from .registry import primitive as p
from .runtime_calls import RuntimeHelper, runtime_import

_HELPERS = ("zeros", "fit", "scale", "tape", "tape_reserve", "sum", "dot", "cumsum", "ravel", "reshape", "matvec",
            "matmat", "vecmat", "matmat_right", "transpose", "trace", "solve", "cholesky_jvp", "unbroadcast",
            "scatter", "split", "embed", "prod_others_tangent", "prod_others_along_tangent")
# Markers that rule templates call as `lanes.NAME(...)`: each stands for backend/runtime/lanes.py's `lanes_NAME`.
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
