"""The user-facing functions: decorate, differentiate, inspect."""
from __future__ import annotations

import functools
import warnings
import weakref

import numpy as np

from .compiler.derived import DerivativeCompiler, TangentCompiler
from .compiler.function import FunctionCompiler, arg_key
from .compiler.pipeline import render
from .compiler.registry import LOCK, function_compiler
from .errors import DifferentiabilityError, Diagnostic
from .ir import types as T
from .normalize.lower import API_FUNCTIONS
from .types import layout as L
from .types import protocol as P

# ---- types for mypy/pyright (diffprog ships py.typed) ------------------------------------------------------------
from typing import Any, Callable, ParamSpec, TypeVar, overload  # noqa: E402

_P = ParamSpec("_P")
_R = TypeVar("_R")
# A derivative has the structure of what it is taken with respect to: a float for a float argument, an array of
# the argument's shape for an array, a value of the tangent type for a registered type. Typed Any: it depends on
# the argument's run-time type, which argnums selects.
Gradient = Any

# ---- threads -------------------------------------------------------------------------------------------------------
# Decorating, and the first call for each specialization, build shared state that is not safe to build from two
# threads at once: the process-wide caches below and in the compiler (parses, lowered functions), the generated
# module written to the cache directory and registered in sys.modules before it has run (backend/cache.py), and
# numba's dispatcher. So every path that may build (a cache miss) runs under one process-wide lock; calls whose
# specialization exists take the lock-free fast path (a dict lookup), so compiled code still runs in parallel.
# One lock rather than one per function: numba serializes compilations under its own global lock anyway, and the
# on-disk cache is shared. Reentrant, because building can call back into this module (jacobian's mode choice
# runs the primal; grad of grad builds the inner gradient). The lock is the compiler's (compiler/registry.py), which
# builds under it too when differentiated code applies a transform to a function.
_lock = LOCK


class DifferentiableFunction:
    """A function diffprog has parsed and checked; calling it runs the numba-compiled primal."""

    def __init__(self, fn, jit=True, compiler=None, checkpoint=None):
        if compiler is None:
            with _lock:  # parses and checks fn (process-wide parse cache)
                compiler = FunctionCompiler(fn, jit=jit, checkpoint=_snapshots(checkpoint))
        self.compiler = compiler
        self.__diffprog_function__ = fn
        self._primal: dict = {}
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args):
        key = tuple(map(arg_key, args))
        run = self._primal.get(key)
        if run is None:
            with _lock:
                run = self._primal.get(key)
                if run is None:
                    run = self._primal[key] = self.compiler.specialize("primal", (), args).run
        return run(*args)

    def __repr__(self):
        return f"<diffprog.differentiable {self.compiler.parsed.name}>"

    def __diffprog_compiler__(self):
        """The compiler of this function (the protocol by which the compiler recognises API objects)."""
        return self.compiler

    def forward_specialization(self, wrt: tuple, args, mode="forward"):
        """The compiled tangent code for tangents of the arguments at positions `wrt` (cached per types);
        mode="forward_batched" for tangents with a leading lane axis (dp.jacobian)."""
        specs = self.__dict__.setdefault("_forward", {})
        key = (mode, wrt, tuple(map(arg_key, args)))
        spec = specs.get(key)
        if spec is None:
            with _lock:
                spec = specs.get(key)
                if spec is None:
                    spec = specs[key] = self.compiler.specialize(mode, wrt, args)
        return spec


@overload
def differentiable(fn: Callable[_P, _R], *, jit: bool = True, checkpoint: bool | int = False) -> Callable[_P, _R]: ...
@overload
def differentiable(fn: None = None, *, jit: bool = True, checkpoint: bool | int = False
                   ) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]: ...
def differentiable(fn=None, *, jit=True, checkpoint=False):
    """Decorator: parse, check and (lazily, per argument types) compile `fn` with numba.

    The function's source is read and checked when it is decorated (problems raise `DifferentiabilityError`
    listing every one, at your source lines); the numba-compiled primal is built at the first call for each
    combination of argument types. `@differentiable(jit=False)` runs the generated Python without numba, for
    debugging. Decorating is optional for `grad` and friends, which accept plain functions too.

    `checkpoint=True` (or a number of snapshots) differentiates every outermost `for` loop of the function
    with binomial checkpointing, as if each were wrapped in `with diffprog.checkpoint(...)`: reverse mode
    then keeps a few snapshots of the loops' state instead of a tape per iteration.

    Example:
        ```python
        import math
        import diffprog as dp

        @dp.differentiable
        def f(x, y):
            return math.sin(x) * y + x ** 2

        f(1.0, 2.0)          # 2.682941969615793, computed by the compiled primal
        dp.grad(f)(1.0, 2.0) # 3.0806046117362795
        ```
    """
    if fn is None:
        return lambda f: DifferentiableFunction(f, jit=jit, checkpoint=checkpoint)
    return DifferentiableFunction(fn, jit=jit, checkpoint=checkpoint)


def _snapshots(checkpoint) -> int | None:
    """`differentiable(checkpoint=...)` as the reverse transform takes it: None (off) or snapshots (0: auto)."""
    if checkpoint is False or checkpoint is None:
        return None
    if checkpoint is True:
        return 0
    if type(checkpoint) is int and checkpoint >= 1:
        return checkpoint
    raise ValueError(f"differentiable(checkpoint=...) takes True, False or a number of snapshots >= 1, "
                     f"not {checkpoint!r}")


_wrapped = weakref.WeakKeyDictionary()


def as_differentiable(f) -> DifferentiableFunction:
    if isinstance(f, DifferentiableFunction):
        return f
    if isinstance(f, GradientFunction):
        return f.as_function()
    wrapped = _wrapped.get(f)
    if wrapped is None:
        with _lock:
            wrapped = _wrapped.get(f)
            if wrapped is None:  # the function's compiler is shared with differentiated code calling dp.grad(f)
                wrapped = _wrapped[f] = DifferentiableFunction(f, compiler=function_compiler(f))
    return wrapped


class _ReverseRunner:
    """Calls the compiled adjoint for one choice of differentiated arguments, specializing on first use."""

    def __init__(self, f, wrt):
        self.df = as_differentiable(f)
        self.wrt = wrt
        self._compiled: dict = {}

    def specialization(self, args):
        key = tuple(map(arg_key, args))
        spec = self._compiled.get(key)
        if spec is None:
            with _lock:
                spec = self._compiled.get(key)
                if spec is None:
                    spec = self._compiled[key] = self.df.compiler.specialize("reverse", self.wrt, args)
        return spec


class GradientFunction(_ReverseRunner):
    def __init__(self, f, argnums, with_value):
        self.single = isinstance(argnums, int)
        wrt = (argnums,) if self.single else tuple(argnums)
        super().__init__(f, wrt)
        self.with_value = with_value
        self._as_function = None
        functools.update_wrapper(self, self.df.__diffprog_function__, updated=())

    def as_function(self) -> DifferentiableFunction:
        """This gradient as a differentiable function of its own (for grad of grad)."""
        if self._as_function is None:
            with _lock:
                if self._as_function is None:
                    outputs = tuple(range(1, 1 + len(self.wrt)))
                    if self.with_value:
                        outputs = (0,) + outputs
                    compiler = DerivativeCompiler(self.df.compiler, self.wrt, outputs, jit=self.df.compiler.jit)
                    self._as_function = DifferentiableFunction(self, compiler=compiler)
        return self._as_function

    def __diffprog_compiler__(self):
        """The compiler of this gradient as a function of its own (compiler/registry.py)."""
        return self.as_function().compiler

    def __diffprog_gradient__(self):
        """(kind, function, wrt, single): what differentiated code calling this gradient map applies."""
        return ("value_and_grad" if self.with_value else "grad"), self.df, self.wrt, self.single

    def __call__(self, *args):
        spec = self.specialization(args)
        if spec.results != 1 or spec.returns_tuple or isinstance(spec.result_types[0], (T.Array, L.Node)):
            raise _not_scalar(self.df, spec)
        out = spec.run(*args, 1.0)
        grads = tuple(_like(g, args[k]) for g, k in zip(out[1:], self.wrt))
        grads = grads[0] if self.single else grads
        return (out[0], grads) if self.with_value else grads


def _like(gradient, argument):
    """Adjoints accumulate in float64; a float32 argument gets a float32 gradient, as in numpy and JAX."""
    if type(argument) is np.ndarray and argument.dtype != gradient.dtype:
        return gradient.astype(argument.dtype)
    return gradient


def _cotangent(value, t):
    if P.is_registered(value):  # the cotangent of a registered-type result: its tangent type (types/boundary.py)
        return value
    if isinstance(t, T.Array):
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != t.ndim:
            raise ValueError(f"the cotangent must be an array of rank {t.ndim} (the result's rank), "
                             f"not {array.ndim}")
        return array
    return float(value)


def _not_scalar(df, spec):
    parsed = df.compiler.parsed
    what = "an array" if spec.results == 1 and not spec.returns_tuple else "a tuple"
    if spec.results == 1 and not spec.returns_tuple and isinstance(spec.result_types[0], L.Node):
        what = f"a {spec.result_types[0].cls.__name__}"
    return DifferentiabilityError([Diagnostic(
        "DP111", f"grad needs a function returning one number, but '{parsed.name}' returns {what}",
        parsed.origin(parsed.node), "use diffprog.vjp(f, *args) with a cotangent shaped like the result, or "
        "diffprog.jacobian(f)")])


_grad_cache = weakref.WeakKeyDictionary()


def _cached(f, kind, argnums):
    """grad(f) is cheap to call repeatedly (users write grad(f)(x) inside optimizer loops)."""
    key = (kind, argnums)
    try:
        cached = _grad_cache.get(f, {}).get(key)
    except TypeError:  # f cannot be weakly referenced
        return GradientFunction(f, argnums, kind == "value_and_grad")
    if cached is None:
        with _lock:
            per_function = _grad_cache.setdefault(f, {})
            cached = per_function.get(key)
            if cached is None:
                cached = per_function[key] = GradientFunction(f, argnums, kind == "value_and_grad")
    return cached


@overload
def grad(f: Callable[_P, Any], argnums: int = 0) -> Callable[_P, Gradient]: ...
@overload
def grad(f: Callable[_P, Any], argnums: tuple[int, ...]) -> Callable[_P, tuple[Gradient, ...]]: ...
def grad(f, argnums=0):
    """The gradient of scalar-valued `f` with respect to argument `argnums` (an int), or a tuple of gradients
    (a tuple of ints, even of length one).

    Returns a function taking the same arguments as `f`. A float argument gets a float gradient, a float array
    an array of its shape, a registered type (`differentiable_type`) a value of its tangent type. Integer
    arguments (counts, indices) may be passed but not differentiated (DP106). `grad(f)` is cached, so writing
    `dp.grad(f)(x)` inside an optimizer loop is cheap. Composable: `grad(grad(f))` is the second derivative.

    Example:
        ```python
        import math
        import numpy as np
        import diffprog as dp

        def f(x, y):
            return math.sin(x) * y + x ** 2

        dp.grad(f)(1.0, 2.0)            # 3.0806046117362795  (d f / d x)
        dp.grad(f, (0, 1))(1.0, 2.0)    # (3.0806046117362795, 0.8414709848078965)

        def energy(a, n):
            s = 0.0
            for i in range(n):
                s += a[i] * a[i]
            return s

        dp.grad(energy)(np.array([1.0, 2.0, 3.0]), 2)   # array([2., 4., 0.])
        ```
    """
    return _cached(f, "grad", argnums)


@overload
def value_and_grad(f: Callable[_P, _R], argnums: int = 0) -> Callable[_P, tuple[_R, Gradient]]: ...
@overload
def value_and_grad(f: Callable[_P, _R], argnums: tuple[int, ...]) -> Callable[_P, tuple[_R, tuple[Gradient, ...]]]: ...
def value_and_grad(f, argnums=0):
    """Like `grad`, but returns `(value, gradient)` from one run of the generated adjoint.

    Example:
        ```python
        import math
        import diffprog as dp

        def f(x, y):
            return math.sin(x) * y + x ** 2

        dp.value_and_grad(f, (0, 1))(1.0, 2.0)
        # (2.682941969615793, (3.0806046117362795, 0.8414709848078965))
        ```
    """
    return _cached(f, "value_and_grad", argnums)


def vjp(f: Callable[..., _R], *args: Any) -> tuple[_R, Callable[[Any], tuple[Gradient, ...]]]:
    """`(value, pullback)`: `pullback(cotangent)` gives one cotangent per argument (None for integers).

    The value is `f(*args)`; `pullback` runs the compiled adjoint seeded with `cotangent`, which has the
    structure of the result: a number, an array of the result's shape, or a tuple of those for a function
    returning a tuple. One `vjp` can be pulled back many times (e.g. once per output to build a Jacobian).

    Example:
        ```python
        import math
        import numpy as np
        import diffprog as dp

        def polar(r, theta):
            return r * math.cos(theta), r * math.sin(theta)

        value, pullback = dp.vjp(polar, 2.0, 0.5)   # value == (1.7551651237807455, 0.958851077208406)
        pullback((1.0, 0.0))                        # (0.8775825618903728, -0.958851077208406)

        def pick(x, a, n):
            return x * a[n]

        value, pullback = dp.vjp(pick, 1.5, np.array([1.0, 2.0, 3.0]), 2)
        pullback(1.0)                               # (3.0, array([0. , 0. , 1.5]), None)
        ```
    """
    df = as_differentiable(f)
    differentiable = tuple(k for k, a in enumerate(args) if _is_differentiable(a))
    spec = _reverse_runner(df, differentiable).specialization(args)  # cached: vjp is called in loops
    value = df(*args)

    def pullback(cotangent):
        seeds = tuple(cotangent) if spec.returns_tuple else (cotangent,)
        if len(seeds) != spec.results:
            raise ValueError(f"pullback expects {spec.results} cotangents, got {len(seeds)}")
        adjoints = spec.run(*args, *map(_cotangent, seeds, spec.result_types))[spec.results:]
        by_position = dict(zip(differentiable, adjoints))
        return tuple(by_position.get(k) for k in range(len(args)))

    return value, pullback


def _differentiable_positions(args) -> tuple:
    """Positions of the float and float-array arguments (fast paths: this runs on every jvp/hvp call)."""
    return tuple(k for k, a in enumerate(args) if _is_differentiable(a))


def _is_differentiable(value) -> bool:
    if type(value) is float:
        return True
    if type(value) is np.ndarray:
        return value.dtype.kind == "f"
    if P.is_registered(value):  # a registered type with derivative-carrying fields
        return bool(P.info(type(value)).tangent_fields)
    return T.type_of_value(value).differentiable


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


def jvp(f: Callable[..., Any], primals: tuple, tangents: tuple, *, lanes: bool = False) -> tuple[Any, Any]:
    """`(value, tangent_out)`: f's value at `primals` and its directional derivative along `tangents`, from one
    pass of the generated forward-mode code.

    `primals` and `tangents` are tuples matching f's arguments; the tangents of int/bool arguments are ignored
    (pass None). `tangent_out` has the structure of f's result (a number, an array, or a tuple of them).

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
        ```
    """
    df = as_differentiable(f)
    primals, tangents = tuple(primals), tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp needs one tangent per primal: {len(primals)} primals, {len(tangents)} tangents")
    wrt = _differentiable_positions(primals)
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
    with _lock:
        if df not in _tangent_maps:
            compiler = TangentCompiler(df.compiler, jit=df.compiler.jit)
            _tangent_maps[df] = DifferentiableFunction(df.__diffprog_function__, compiler=compiler)
        return _tangent_maps[df]


_tangent_maps = weakref.WeakKeyDictionary()


def _unit_directions(x):
    """The unit tangents e_1, ..., e_n for an argument: one direction for a float, one per entry of a 1-D array,
    and for a registered type one per entry of its tangent as a dense vector (`types/layout.tangent_vector`:
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
            raise NotImplementedError("jacobian takes one argument position (an int) for now")
        self.df = as_differentiable(f)
        self.argnums, self.mode = argnums, mode
        functools.update_wrapper(self, self.df.__diffprog_function__, updated=())

    def __call__(self, *args):
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
            if any(d.code == "DP102" for d in error.diagnostics):
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
        if key not in found:
            try:
                spec = self.df.forward_specialization((self.argnums,), args, mode="forward_batched")
            except DifferentiabilityError as error:
                if not all(d.code == "DP102" for d in error.diagnostics):
                    raise
                self.df.forward_specialization((self.argnums,), args)  # its own problems, if any, are the user's
                name = self.df.compiler.parsed.name
                warnings.warn(JacobianFallbackWarning(
                    f"jacobian of '{name}' takes one forward pass per column (k passes, not one): "
                    + "; ".join(f"{d.origin}: {d.message}" if d.origin else d.message for d in error.diagnostics)),
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


_reverse_runners = weakref.WeakKeyDictionary()


def _reverse_runner(df, wrt):
    runner = _reverse_runners.get(df, {}).get(wrt)
    if runner is None:
        with _lock:
            per_function = _reverse_runners.setdefault(df, {})
            runner = per_function.get(wrt)
            if runner is None:
                runner = per_function[wrt] = _ReverseRunner(df, wrt)
    return runner


def jacobian(f: Callable[_P, Any], argnums: int = 0, mode: str = "auto") -> Callable[_P, Any]:
    """The Jacobian of f with respect to argument `argnums` (a float, a float array, or a value of a registered
    differentiable type), as a function.

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
        ```
    """
    return JacobianFunction(f, argnums, mode)


def hessian(f: Callable[_P, Any], argnums: int = 0) -> Callable[_P, Any]:
    """The Hessian of scalar-valued f with respect to argument `argnums` (a float, a float array, or a value of a
    registered differentiable type), as a function: forward mode applied to the generated gradient code
    (forward-over-reverse), batched as in `jacobian` (up to 64 columns per pass).

    For a registered type the Hessian is a dense (n, n) array over its tangent as a vector, in the order
    `jacobian` uses: derivative-carrying fields in declaration order, nested types depth first, array fields
    raveled (`Pose(q: Quaternion, t: 3-array)`: q.w, q.x, q.y, q.z, t[0], t[1], t[2]).

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
        ```
    """
    if not isinstance(argnums, int):
        raise NotImplementedError("hessian takes one argument position (an int) for now")
    return JacobianFunction(grad(f, argnums), argnums, "forward")


def hvp(f: Callable[..., Any], primals: tuple, vector: tuple) -> tuple[Any, ...]:
    """The Hessian of scalar-valued f at `primals` applied to `vector`, without forming the Hessian: one pass of
    forward mode over the generated gradient code (forward-over-reverse).

    `primals` and `vector` are tuples matching f's arguments (vector entries of int arguments are ignored); the
    result is a tuple matching f's arguments, None for int arguments. A registered-type argument's vector entry,
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
    wrt = _differentiable_positions(primals)
    if not wrt:
        raise TypeError("hvp needs at least one float or float-array argument")
    gradient = grad(f, wrt).as_function()
    _, _, tangents = _run_forward(gradient, primals, wrt, tuple(vector[k] for k in wrt))
    by_position = dict(zip(wrt, tangents))
    return tuple(by_position.get(k) for k in range(len(primals)))


def source(f: Callable[..., Any], mode: str = "reverse", *, args: tuple | None = None,
           argnums: int | tuple[int, ...] = 0, after: str | None = None) -> str:
    """The exact Python source diffprog generated (and runs) for `f`.

    `mode` is "reverse" (the adjoint), "forward" (the tangent code), "forward_batched" (the tangent code
    dp.jacobian runs: tangents with a trailing lane axis, several directions per pass) or "primal" (the
    normalized primal). With `args`, for those argument types; otherwise the most recent specialization, or
    floats for every parameter if `f` has not run yet.

    The text starts with a comment naming the function, its file and the argument types it was specialized
    for; each group of statements is headed by a comment quoting the user's line it came from.

    With `after`, the code as it stands after that pass of the pipeline instead (docs/design.md lists them:
    "lower", "nested", "cleanup", "infer", "initialize", "check", "reverse", "in_place", "forward", ...), printed
    as Python; `DIFFPROG_DUMP=pass` prints the same on stderr during every compilation.

    Example:
        ```python
        import math
        import diffprog as dp

        @dp.differentiable
        def g(x):
            return x * dp.no_derivative(math.exp(x))

        print(dp.source(g, mode="primal"))
        # # diffprog 0.1.0: primal code for g (/path/to/your_file.py:5)
        # # specialized for (x: float64)
        # ...
        # def g(x):
        #     # your_file.py:6: return x * dp.no_derivative(math.exp(x))
        #     exp_1 = math.exp(x)
        #     no_derivative_2 = exp_1
        #     mul_3 = x * no_derivative_2
        #     return mul_3
        print(dp.source(g, mode="reverse", args=(1.0,)))   # the adjoint: g_reverse(x, seed)
        ```
    """
    if mode not in ("reverse", "forward", "forward_batched", "primal"):
        raise ValueError(f"mode must be 'reverse', 'forward', 'forward_batched' or 'primal', not {mode!r}")
    df = as_differentiable(f)
    compiler = df.compiler
    with _lock:
        last = compiler.last.get(mode) if args is None else None
        if after is None or after in ("codegen", "jit"):
            if last is not None:
                return last.source
            return compiler.specialize(mode, _source_wrt(mode, argnums), _source_args(compiler, args)).source
        if last is not None:
            signature, wrt = last.signature, last.wrt
        else:
            signature, wrt = compiler.signature(_source_args(compiler, args)), _source_wrt(mode, argnums)
        return render(compiler.compile(mode, wrt, signature, until=after))


def _source_args(compiler, args) -> tuple:
    """The arguments whose types dp.source specializes for: floats for every parameter unless given."""
    return tuple(args) if args is not None else (1.0,) * len(compiler.params)


def _source_wrt(mode, argnums) -> tuple:
    return () if mode == "primal" else ((argnums,) if isinstance(argnums, int) else tuple(argnums))


# The compiler recognises the public functions by this mark (compiler/registry.py), not by importing this module:
# a transform called in differentiated code (`dp.grad(g)(x)`), and those it reports as callable outside only.
for _name in API_FUNCTIONS:
    globals()[_name].__diffprog_api__ = _name
del _name
