"""Forward mode for users: `jvp` and `jvp_function` run the compiled tangent code."""
from __future__ import annotations

import weakref
from typing import Any, Callable

import numpy as np

from ..compiler.derived import TangentCompiler
from ..compiler.registry import LOCK
from ..errors import user_facing
from ..custom_types import protocol as P
from .functions import DifferentiableFunction, _differentiable_positions, bound
from .gradients import as_differentiable


def _tangent_value(primal, tangent):
    """A tangent as the compiled code takes it: a float, or a contiguous float64 array of the primal's shape."""
    if tangent is None:
        raise TypeError("a tangent is needed for every float or float-array argument (None is for ints only); "
                        "pass 0.0 or np.zeros_like(x) for a zero tangent")
    if P.is_registered(primal):  # a value of the tangent type, split into fields at the compiled boundary
        return tangent
    if isinstance(primal, np.ndarray):
        array = np.ascontiguousarray(tangent, dtype=np.float64)
        if array.shape != primal.shape:
            raise ValueError(f"a tangent of shape {array.shape} was given for an argument of shape {primal.shape}")
        return array
    return float(tangent)


def _run_forward(df, primals, wrt, tangents, lanes=False):
    """(values, tangents out), each a tuple with one entry per result of f, from one pass of the tangent code;
    with `lanes`, of the batched tangent code, the tangents carrying directions along a trailing axis."""
    if lanes:
        arrays = [_lanes_value(primals[k], t) for k, t in zip(wrt, tangents)]
        if len({a.shape[-1] for a in arrays}) > 1:
            raise ValueError("jvp(lanes=True): every tangent needs the same number of directions (its last axis), "
                             f"got {[a.shape[-1] for a in arrays]}")
    else:
        arrays = [_tangent_value(primals[k], t) for k, t in zip(wrt, tangents)]
    spec = df.forward_specialization(wrt, primals, mode="forward_batched" if lanes else "forward")
    out = spec.run(*primals, *arrays)
    return spec, tuple(out[:spec.results]), tuple(out[spec.results:])


def _shaped(spec, items):
    return items if spec.returns_tuple else items[0]


@user_facing
def jvp(f: Callable[..., Any], primals: tuple, tangents: tuple, *, argnums: int | tuple[int, ...] | None = None,
        lanes: bool = False) -> tuple[Any, Any]:
    """`(value, tangent_out)`: f's value at `primals` and its directional derivative along `tangents`, from one
    pass of the generated forward-mode code.

    `primals` and `tangents` are tuples matching f's arguments; the tangents of int/bool arguments are ignored
    (pass None). `tangent_out` has the structure of f's result (a number, an array, or a tuple of them).
    `primals` may leave out trailing parameters that have defaults (their tangents are then zero).

    With `argnums` (an int or a tuple of positions among f's parameters), only those arguments carry tangents:
    `tangents` has one entry per position in `argnums`, and every other argument (data arrays, say) is held
    fixed, without a zero tangent to pass or to push through the code.

    With `lanes=True`, each tangent carries several directions along a trailing axis (shape `x.shape + (L,)`,
    `(L,)` for a float), and so does each tangent out: one pass of the batched tangent code (the code
    `dp.jacobian` runs, `dp.source(f, mode="forward_batched")`) pushes all L directions. Seeding directions that
    touch disjoint outputs gives a compressed Jacobian: e.g. the 15 columns of every observation's block in a
    bundle adjustment, from one pass (benchmarks/ba.py).

    Example:
        ```python
        import math
        import diffprog as dp

        def polar(r, theta):
            return r * math.cos(theta), r * math.sin(theta)

        value, tangent = dp.jvp(polar, (2.0, 0.5), (0.0, 1.0))   # derivative along theta
        # value   == (1.7551651237807455, 0.958851077208406)
        # tangent == (-0.958851077208406, 1.7551651237807455)

        value, tangent = dp.jvp(polar, (2.0, 0.5), (1.0,), argnums=1)   # theta only: tangent as above
        ```
    """
    df = as_differentiable(f)
    primals, tangents = tuple(primals), tuple(tangents)
    given = len(primals)
    primals = bound(df.bind, df.arity, primals, {})  # defaults of parameters left out
    if argnums is not None:
        from .gradients import _positions
        wrt = _positions(argnums, len(primals), "jvp")
        if len(tangents) != len(wrt):
            raise ValueError(f"jvp needs one tangent per position in argnums {argnums!r}: got {len(tangents)}")
        spec, values, tangents_out = _run_forward(df, primals, wrt, tangents, lanes)
        return _shaped(spec, values), _shaped(spec, tangents_out)
    if given != len(tangents):
        raise ValueError(f"jvp needs one tangent per primal: {given} primals, {len(tangents)} tangents")
    wrt = _differentiable_positions(primals[:given])  # parameters left out to their defaults: held fixed
    spec, values, tangents_out = _run_forward(df, primals, wrt, tuple(tangents[k] for k in wrt), lanes)
    return _shaped(spec, values), _shaped(spec, tangents_out)


def _lanes_value(primal, tangent):
    """A tangent with directions along a trailing axis, as the batched tangent code takes it."""
    if P.is_registered(primal):
        raise TypeError(f"jvp(lanes=True): a {type(primal).__name__} tangent has no axis of directions; "
                        "pass one direction at a time (lanes=False)")
    if tangent is None:
        raise TypeError("a tangent is needed for every float or float-array argument (None is for ints only)")
    array = np.ascontiguousarray(tangent, dtype=np.float64)
    shape = np.shape(primal)
    if array.shape[:-1] != shape or array.ndim != len(shape) + 1:
        raise ValueError(f"jvp(lanes=True): a tangent of shape {array.shape} was given for an argument of shape "
                         f"{shape}; it needs the shape {shape + ('L',)}, L directions along its last axis")
    return array


@user_facing
def jvp_function(f):
    """f's tangent map as a differentiable function: `t(*primals, *tangents)` returns the tangent of f's result,
    with one tangent per float, float-array or registered-type primal (a value of its tangent type).
    `grad(jvp_function(f))` is reverse-over-forward.

    Example:
        ```python
        import math
        import diffprog as dp

        def f(x):
            return math.sin(x) * x

        t = dp.jvp_function(f)
        t(1.0, 1.0)            # f'(1) = sin(1) + cos(1) = 1.3817732906760363
        dp.grad(t)(1.0, 1.0)   # f''(1) = 2 cos(1) - sin(1) = 0.23913362692838303
        ```
    """
    df = as_differentiable(f)
    with LOCK:
        if df not in _tangent_maps:
            compiler = TangentCompiler(df.compiler, jit=df.compiler.jit)
            _tangent_maps[df] = DifferentiableFunction(df.__diffprog_function__, compiler=compiler,
                                                       signature=False)  # takes primals and tangents
        return _tangent_maps[df]


_tangent_maps = weakref.WeakKeyDictionary()
