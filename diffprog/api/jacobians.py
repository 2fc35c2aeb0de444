"""Whole derivatives: `jacobian` (batched forward passes, or reverse passes per output), `hessian` and `hvp`
(forward mode over the adjoint)."""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import numpy as np

from ..compiler.function import arg_key
from ..errors import DifferentiabilityError, user_facing
from ..ir import types as T
from ..custom_types import layout as L
from ..custom_types import protocol as P
from .functions import Params, _differentiable_positions, bound
from .gradients import _cotangent, _reverse_runner, as_differentiable, grad
from .tangents import _run_forward
from .. import codes


def _unit_directions(x):
    """The unit tangents e_1, ..., e_n for an argument: one direction for a float, one per entry of a 1-D array,
    and for a registered type one per entry of its tangent as a dense vector (`custom_types/layout.tangent_vector`:
    fields in declaration order, nested types depth first, array fields raveled), each a value of its tangent
    type."""
    if P.is_registered(x):
        yield from L.unit_tangents(x)
    elif isinstance(x, np.ndarray):  # entries in C order
        for j in range(x.size):
            e = np.zeros(x.size)
            e[j] = 1.0
            yield e.reshape(x.shape)
    else:
        yield 1.0


def _dense(value, like=None):
    """A value as a Jacobian takes it: a registered-type value (a tangent of `like`, or of itself) as the dense
    vector of its tangent fields; numbers and arrays as float64 arrays."""
    if P.is_registered(value) or (like is not None and P.is_registered(like)):
        return L.tangent_vector(like if like is not None else value, value)
    return np.asarray(value, dtype=np.float64)


def _dense_shape(value) -> tuple:
    """The shape a value has in a Jacobian: a registered-type value counts as its dense tangent vector."""
    return (L.tangent_dim(value),) if P.is_registered(value) else np.shape(value)


def _stack_columns(columns, x):
    """Columns d out / d x_j -> an array of shape out_shape + x_shape (a float for a float out and x)."""
    columns = [np.asarray(c, dtype=np.float64) for c in columns]
    if not isinstance(x, np.ndarray) and not P.is_registered(x):
        return columns[0][()] if columns[0].ndim == 0 else columns[0]
    if isinstance(x, np.ndarray) and x.ndim != 1 and columns:
        return np.stack(columns, axis=-1).reshape(columns[0].shape + x.shape)
    return np.stack(columns, axis=-1) if columns else np.zeros((0,))


JACOBIAN_LANES = 64  # the most tangent directions one batched forward pass carries (memory: lanes x the arrays)


class JacobianFallbackWarning(UserWarning):
    """dp.jacobian runs one forward pass per column because batched forward mode has no rule for an operation
    (the message names it); the result is the same, only slower."""


class JacobianFunction:
    """d f / d args[argnums], by forward mode (batched: one tangent pass per JACOBIAN_LANES input entries) or
    reverse mode (one adjoint pass per output)."""

    __diffprog_api__ = "jacobian"  # lowering reports calling one in differentiated code (compiler/registry.py)

    def __init__(self, f, argnums, mode):
        if mode not in ("auto", "forward", "reverse"):
            raise ValueError(f"mode must be 'auto', 'forward' or 'reverse', not {mode!r}")
        if not isinstance(argnums, int):
            raise NotImplementedError("JacobianFunction takes one argument position (an int); "
                                      "dp.jacobian(f, (i, j)) combines several")
        self.df = as_differentiable(f)
        self.argnums, self.mode = argnums, mode
        functools.update_wrapper(self, self.df.__diffprog_function__, updated=())

    @user_facing
    def __call__(self, *args, **kwargs):
        args = bound(self.df.bind, self.df.arity, args, kwargs)
        if not -len(args) <= self.argnums < len(args):
            raise ValueError(f"jacobian: argnums {self.argnums} is not a position among the {len(args)} arguments")
        self.argnums %= len(args)
        x = args[self.argnums]
        if not (T.type_of_value(x).differentiable or (P.is_registered(x) and L.tangent_dim(x) > 0)):
            raise TypeError(f"jacobian: argument {self.argnums} must be a float, a float array or a value of a "
                            f"differentiable type with derivative-carrying fields, not {type(x).__name__}")
        mode = self.mode if self.mode != "auto" else self._choose(args)
        return self._forward(args) if mode == "forward" else self._reverse(args)

    def _choose(self, args) -> str:
        """Forward mode unless there are more inputs than outputs (a tangent pass costs less than an adjoint
        pass: no tapes), and reverse mode when forward mode has no rule for an operation used (reductions and
        linear algebra have adjoint rules only, so far)."""
        x = args[self.argnums]
        inputs = int(np.prod(_dense_shape(x)))
        value = self.df(*args)
        outputs = sum(int(np.prod(_dense_shape(v))) for v in (value if isinstance(value, tuple) else (value,)))
        if inputs > outputs:
            return "reverse"
        try:
            if self._batched(args) is None:
                self.df.forward_specialization((self.argnums,), args)
        except DifferentiabilityError as error:
            if any(d.code == codes.NO_RULE for d in error.diagnostics):
                return "reverse"
            raise
        return "forward"

    def _forward(self, args):
        """Batched forward mode: each pass pushes up to JACOBIAN_LANES unit directions at once (one pass for
        up to that many columns). Where batched forward mode has no rule for an operation used, a warning says
        so and the Jacobian takes one single-direction pass per column (`_forward_passes`)."""
        spec = self._batched(args)
        if spec is None:
            return self._forward_passes(args)
        x = args[self.argnums]
        shape = np.shape(x)
        n = int(np.prod(shape))
        size = -(-n // -(-n // JACOBIAN_LANES)) if n else 0  # equal chunks of at most JACOBIAN_LANES
        per_output = [[] for _ in range(spec.results)]
        for start in range(0, max(n, 1), max(size, 1)):
            lanes = min(size, n - start)
            seeds = np.zeros((n, lanes))
            seeds[np.arange(start, start + lanes), np.arange(lanes)] = 1.0  # columns of the identity, lanes last
            out = spec.run(*args, seeds.reshape(shape + (lanes,)))
            for columns, t in zip(per_output, out[spec.results:]):
                columns.append(t)
        blocks = []
        for columns in per_output:
            t = np.concatenate(columns, axis=-1) if len(columns) > 1 else np.asarray(columns[0])
            block = t.reshape(t.shape[:-1] + shape)  # out_shape + x_shape
            blocks.append(block[()] if block.ndim == 0 else block)
        return _combine_outputs(spec.returns_tuple, blocks)

    def _batched(self, args):
        """The batched tangent code for these argument types, or None: for registered types (a tangent type
        has no lane axis; one pass per entry of its dense tangent), or, announced by a warning, when batched
        forward mode has no rule for an operation used but single-direction forward mode has."""
        x = args[self.argnums]
        if P.is_registered(x):
            return None
        key = (self.argnums, tuple(map(arg_key, args)))
        found = self.df.__dict__.setdefault("_batched", {})  # per function: dp.jacobian(f)(x) in a loop builds once
        spec = found.get(key, False)
        if spec is False or (spec is not None and not spec.deps.fresh()):  # new, or a helper redefined since
            try:
                spec = self.df.forward_specialization((self.argnums,), args, mode="forward_batched")
            except DifferentiabilityError as error:
                if not all(d.code == codes.NO_RULE for d in error.diagnostics):
                    raise
                self.df.forward_specialization((self.argnums,), args)  # its own problems, if any, are the user's
                name = self.df.compiler.parsed.name
                warnings.warn(JacobianFallbackWarning(
                    f"jacobian of '{name}' takes one forward pass per column (k passes, not one): "
                    + "; ".join(f"{d.origin.shown()}: {d.message}" if d.origin else d.message
                                for d in error.diagnostics)),
                    stacklevel=4)
                spec = None
            if spec is not None and any(isinstance(t, L.Node) for t in spec.result_types):
                spec = None  # a registered-type result: its tangent has no lane axis either
            found[key] = spec
        return found[key]

    def _forward_passes(self, args):
        """One tangent pass per unit direction, calling the compiled code directly."""
        x, wrt = args[self.argnums], (self.argnums,)
        spec = self.df.forward_specialization(wrt, args)
        per_output = [[] for _ in range(spec.results)]
        for e in _unit_directions(x):
            tangents = spec.run(*args, e)[spec.results:]
            for column, t in zip(per_output, tangents):
                column.append(_dense(t) if P.is_registered(t) else t)
        blocks = [_stack_columns(c, x) for c in per_output]
        return _combine_outputs(spec.returns_tuple, blocks)

    def _reverse(self, args):
        """One adjoint pass per output element (the Jacobian's rows), each seeded with a unit cotangent (for a
        registered-type output, one per entry of its dense tangent vector)."""
        x = args[self.argnums]
        spec = _reverse_runner(self.df, (self.argnums,)).specialization(args)
        value = self.df(*args)
        outputs = value if spec.returns_tuple else (value,)
        zeros = [P.zero_tangent(out) if P.is_registered(out) else _cotangent(np.zeros(np.shape(out)), t)
                 for out, t in zip(outputs, spec.result_types)]
        blocks = []
        for k, out in enumerate(outputs):
            rows = []
            if P.is_registered(out):
                units = list(L.unit_tangents(out))
            else:
                units = [_cotangent(_unit(np.shape(out), index), spec.result_types[k])
                         for index in np.ndindex(*np.shape(out))]
            for unit in units:
                seeds = list(zeros)
                seeds[k] = unit
                rows.append(_dense(spec.run(*args, *seeds)[spec.results], like=x))
            block = np.stack(rows).reshape(_dense_shape(out) + _dense_shape(x))
            blocks.append(block[()] if block.ndim == 0 else block)
        if not spec.returns_tuple:
            return blocks[0]
        return _combine_outputs(True, blocks)


class JacobianTuple:
    """dp.jacobian(f, (i, j, ...)): a tuple with one entry per position, each what dp.jacobian(f, i) returns;
    dp.hessian(f, (i, j, ...)): a tuple of such tuples (block (i, j) is d/dx_j of d f/dx_i), as in JAX."""

    def __init__(self, f, parts):
        self.parts = parts  # one JacobianFunction or JacobianTuple per position
        functools.update_wrapper(self, as_differentiable(f).__diffprog_function__, updated=())

    @user_facing
    def __call__(self, *args, **kwargs):
        return tuple(part(*args, **kwargs) for part in self.parts)


def _unit(shape, index):
    unit = np.zeros(shape)
    unit[index] = 1.0
    return unit


def _combine_outputs(returns_tuple, blocks):
    """One output: its Jacobian block. A tuple of number outputs: the blocks stacked along a leading axis (a
    matrix); a tuple with array outputs: a tuple of blocks."""
    if not returns_tuple:
        return blocks[0]
    if all(np.ndim(b) == np.ndim(blocks[0]) and np.shape(b) == np.shape(blocks[0]) for b in blocks) and \
            all(np.ndim(b) <= 1 for b in blocks):
        return np.array(blocks, dtype=np.float64)
    return tuple(blocks)


@user_facing
def jacobian(f: Callable[Params, Any], argnums: int | tuple[int, ...] = 0, mode: str = "auto"
             ) -> Callable[Params, Any]:
    """The Jacobian of f with respect to argument `argnums` (a float, a float array, or a value of a registered
    differentiable type), as a function; for a tuple of positions, a tuple with one such Jacobian per position
    (JAX's structure). The function takes the calls f takes (keywords, defaults); `argnums` are positions in
    f's full parameter list.

    Its shape is f's result shape followed by the argument's shape; a tuple of numbers returned by f counts as a
    vector. A registered-type value (argument or result) counts as the dense vector of its tangent: the
    derivative-carrying fields in declaration order, nested types depth first, array fields raveled (fields
    outside the tangent left out), so the Jacobian w.r.t. a `Pose(q: Quaternion, t: 3-array)` has 7 columns (one
    forward pass per column: a tangent type has no lane axis). `mode="forward"` runs batched forward mode: one pass of the tangent code carries up to 64 input
    directions at once (`dp.source(f, mode="forward_batched")` shows it), so k columns cost ceil(k / 64) passes;
    where an operation has no batched rule yet, a `JacobianFallbackWarning` names it and each column takes one
    pass. `"reverse"` runs one adjoint pass per output (outputs must be numbers), and `"auto"` picks forward
    unless there are more inputs than outputs.

    Example:
        ```python
        import math
        import numpy as np
        import diffprog as dp

        def polar_to_xy(p):
            return p[0] * math.cos(p[1]), p[0] * math.sin(p[1])

        dp.jacobian(polar_to_xy)(np.array([2.0, 0.5]))
        # array([[ 0.87758256, -0.95885108],
        #        [ 0.47942554,  1.75516512]])

        def scaled(x, s):
            return x * s

        dp.jacobian(scaled, (0, 1))(np.array([1.0, 2.0]), 3.0)
        # (array([[3., 0.], [0., 3.]]), array([1., 2.])): d/dx and d/ds
        ```
    """
    if isinstance(argnums, int):
        return JacobianFunction(f, argnums, mode)
    argnums = _argnum_tuple(argnums, "jacobian")
    return JacobianTuple(f, tuple(JacobianFunction(f, k, mode) for k in argnums))


def _argnum_tuple(argnums, who) -> tuple:
    items = tuple(argnums)
    if not items or not all(isinstance(k, int) and not isinstance(k, bool) for k in items):
        raise TypeError(f"{who}: argnums must be an int or a non-empty tuple of ints, not {argnums!r}")
    if len(set(items)) != len(items):
        raise ValueError(f"{who}: argnums {argnums!r} names an argument twice")
    return items


@user_facing
def jacfwd(f: Callable[Params, Any], argnums: int | tuple[int, ...] = 0) -> Callable[Params, Any]:
    """`dp.jacobian(f, argnums, mode="forward")`, by JAX's name: batched forward mode, up to 64 input directions
    per pass of the tangent code (best when f has fewer inputs than outputs).

    Example:
        ```python
        import math
        import numpy as np
        import diffprog as dp

        def polar_to_xy(p):
            return p[0] * math.cos(p[1]), p[0] * math.sin(p[1])

        dp.jacfwd(polar_to_xy)(np.array([2.0, 0.5]))   # as dp.jacobian(polar_to_xy)
        ```
    """
    return jacobian(f, argnums, mode="forward")


@user_facing
def jacrev(f: Callable[Params, Any], argnums: int | tuple[int, ...] = 0) -> Callable[Params, Any]:
    """`dp.jacobian(f, argnums, mode="reverse")`, by JAX's name: one adjoint pass per output entry (best when f
    has more inputs than outputs).

    Example:
        ```python
        import numpy as np
        import diffprog as dp

        def f(x):
            return x[0] * x[1], x[1] + x[2]

        dp.jacrev(f)(np.array([1.0, 2.0, 3.0]))
        # array([[2., 1., 0.],
        #        [0., 1., 1.]])
        ```
    """
    return jacobian(f, argnums, mode="reverse")


@user_facing
def hessian(f: Callable[Params, Any], argnums: int | tuple[int, ...] = 0) -> Callable[Params, Any]:
    """The Hessian of scalar-valued f with respect to argument `argnums` (a float, a float array, or a value of a
    registered differentiable type), as a function: forward mode applied to the generated gradient code
    (forward-over-reverse), batched as in `jacobian` (up to 64 columns per pass).

    For a registered type the Hessian is a dense (n, n) array over its tangent as a vector, in the order
    `jacobian` uses: derivative-carrying fields in declaration order, nested types depth first, array fields
    raveled (`Pose(q: Quaternion, t: 3-array)`: q.w, q.x, q.y, q.z, t[0], t[1], t[2]).

    For a tuple of positions `(i, j, ...)`, a tuple of tuples of blocks as in JAX: block `[a][b]` is the
    derivative with respect to argument `argnums[b]` of the gradient with respect to `argnums[a]`, of shape
    `x_a.shape + x_b.shape`.

    Example:
        ```python
        import numpy as np
        import diffprog as dp

        def rosenbrock(x):
            s = 0.0
            for i in range(x.shape[0] - 1):
                s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
            return s

        dp.hessian(rosenbrock)(np.array([1.0, 1.0]))
        # array([[ 802., -400.],
        #        [-400.,  200.]])

        def f(x, y):
            return x * x * y

        dp.hessian(f, (0, 1))(3.0, 2.0)   # ((4.0, 6.0), (6.0, 0.0))
        ```
    """
    if isinstance(argnums, int):
        return JacobianFunction(grad(f, argnums), argnums, "forward")
    argnums = _argnum_tuple(argnums, "hessian")
    rows = tuple(JacobianTuple(f, tuple(JacobianFunction(grad(f, i), j, "forward") for j in argnums))
                 for i in argnums)
    return JacobianTuple(f, rows)


@user_facing
def hvp(f: Callable[..., Any], primals: tuple, vector: tuple) -> tuple[Any, ...]:
    """The Hessian of scalar-valued f at `primals` applied to `vector`, without forming the Hessian: one pass of
    forward mode over the generated gradient code (forward-over-reverse).

    `primals` and `vector` are tuples matching f's arguments (vector entries of int arguments are ignored); the
    result is a tuple matching f's arguments, None for int arguments. `primals` may leave out trailing
    parameters that have defaults (held fixed: they get no entry in `vector` or in the result). A registered-type argument's vector entry,
    and its entry of the result, are values of its tangent type.

    Example:
        ```python
        import numpy as np
        import diffprog as dp

        def rosenbrock(x):
            s = 0.0
            for i in range(x.shape[0] - 1):
                s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
            return s

        x = np.array([1.0, 1.0])
        dp.hvp(rosenbrock, (x,), (np.array([1.0, 0.0]),))   # (array([ 802., -400.]),): the Hessian's column 0
        ```
    """
    primals, vector = tuple(primals), tuple(vector)
    given = len(primals)
    primals = bound(as_differentiable(f).bind, as_differentiable(f).arity, primals, {})  # defaults left out
    wrt = _differentiable_positions(primals[:given])  # parameters left to their defaults: held fixed
    if not wrt:
        raise TypeError("hvp needs at least one float or float-array argument")
    gradient = grad(f, wrt).as_function()
    _, _, tangents = _run_forward(gradient, primals, wrt, tuple(vector[k] for k in wrt))
    by_position = dict(zip(wrt, tangents))
    return tuple(by_position.get(k) for k in range(given))
