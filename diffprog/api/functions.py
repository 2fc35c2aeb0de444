"""`diffprog.differentiable`: a function parsed and checked once, its primal compiled per argument types."""
from __future__ import annotations

import functools
import inspect
from typing import Any, Callable, ParamSpec, TypeVar, overload

import numpy as np

from ..compiler.function import FunctionCompiler, arg_key
from ..compiler.registry import LOCK
from ..errors import DifferentiabilityError, hide_internal_frames, user_facing
from ..ir import types as T
from ..custom_types import protocol as P

# ---- types for mypy/pyright (diffprog ships py.typed) ------------------------------------------------------------
Params = ParamSpec("Params")
Result = TypeVar("Result")
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

class DifferentiableFunction:
    """A function diffprog has parsed and checked; calling it runs the numba-compiled primal."""

    @user_facing  # decorating reports the problems it finds at the user's decorator, without diffprog's frames
    def __init__(self, fn, jit=True, compiler=None, checkpoint=None, boundscheck=None, signature=True):
        if compiler is None:
            with LOCK:  # parses and checks fn (process-wide parse cache)
                compiler = FunctionCompiler(fn, jit=jit, checkpoint=_snapshots(checkpoint),
                                            boundscheck=None if boundscheck is None else bool(boundscheck))
        self.compiler = compiler
        self.__diffprog_function__ = fn
        self._primal: dict = {}
        functools.update_wrapper(self, fn, updated=())
        # Calls with keywords, or leaving defaulted parameters out, are bound to fn's parameters (a slow path);
        # signature=False for compiled code whose parameters are not fn's (dp.jvp_function's primals + tangents).
        self.arity, self.bind = binder(fn) if signature else (None, None)

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != self.arity:
            args = self.bind(args, kwargs) if self.bind is not None else args
        key = tuple(map(arg_key, args))
        entry = self._primal.get(key)  # (the compiled primal, the test that nothing it depends on changed)
        if entry is None or not entry[1]():
            try:
                entry = self._specialize(key, args)
            except DifferentiabilityError as error:
                hide_internal_frames(error)  # the user's frames only (errors.py)
                raise
        return entry[0](*args)

    def _specialize(self, key, args):
        with LOCK:
            entry = self._primal.get(key)
            if entry is None or not entry[1]():  # new types, or a helper or global redefined since
                spec = self.compiler.specialize("primal", (), args)
                entry = self._primal[key] = spec.run, spec.deps.fresh
        return entry

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
        if spec is None or not spec.deps.fresh():
            with LOCK:
                spec = specs.get(key)
                if spec is None or not spec.deps.fresh():  # new types, or a helper or global redefined since
                    spec = specs[key] = self.compiler.specialize(mode, wrt, args)
        return spec


@overload
def differentiable(fn: Callable[Params, Result], *, jit: bool = True, checkpoint: bool | int = False,
                   boundscheck: bool | None = None) -> Callable[Params, Result]: ...
@overload
def differentiable(fn: None = None, *, jit: bool = True, checkpoint: bool | int = False,
                   boundscheck: bool | None = None) -> Callable[[Callable[Params, Result]], Callable[Params, Result]]: ...
@user_facing
def differentiable(fn=None, *, jit=True, checkpoint=False, boundscheck=None):
    """Decorator: parse, check and (lazily, per argument types) compile `fn` with numba.

    The function's source is read and checked when it is decorated (problems raise `DifferentiabilityError`
    listing every one, at your source lines); the numba-compiled primal is built at the first call for each
    combination of argument types. `@differentiable(jit=False)` runs the generated Python without numba, for
    debugging. Decorating is optional for `grad` and friends, which accept plain functions too.

    `checkpoint=True` (or a number of snapshots) differentiates every outermost `for` loop of the function
    with binomial checkpointing, as if each were wrapped in `with diffprog.checkpoint(...)`: reverse mode
    then keeps a few snapshots of the loops' state instead of a tape per iteration.

    `boundscheck=True` compiles the primal and every derivative (grad, jvp, jacobian, hessian...) with numba's
    bounds checks: an index out of bounds raises IndexError naming your line instead of reading (or, in a
    gradient, writing) outside the array. `None` (the default) follows `diffprog.set_boundscheck` and the
    environment variable `DIFFPROG_BOUNDSCHECK=1|0` (on unless set to 0).

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
        return user_facing(lambda f: DifferentiableFunction(f, jit=jit, checkpoint=checkpoint,
                                                            boundscheck=boundscheck))
    return DifferentiableFunction(fn, jit=jit, checkpoint=checkpoint, boundscheck=boundscheck)


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


# ---- binding calls to the function's parameters -----------------------------------------------------------------
# Decorated functions and the callables the transforms return take exactly the calls the undecorated function
# takes: keywords, defaults left out, and the same TypeError for a wrong call. The common call, every parameter
# passed by position, costs one comparison; any other call is bound once to the parameters, in order, and then
# runs as that positional call (so `argnums` are positions in the full signature, as in JAX).

def binder(fn) -> tuple:
    """(arity, bind) for the Python function `fn`: `bind(args, kwargs)` gives the arguments of the call
    `fn(*args, **kwargs)` as a tuple with one value per parameter (defaults filled in), or raises the TypeError
    Python raises for that call. (None, None) when fn's parameters are unknown."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None, None
    parameters = list(signature.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.KEYWORD_ONLY) for p in parameters) or \
            not all(p.name.isidentifier() for p in parameters):
        return None, None  # diffprog rejects these at decoration (DP101)
    names = [p.name for p in parameters]
    # A stand-in with fn's parameters that returns them in order: the interpreter binds the call (so wrong calls
    # raise exactly Python's TypeError, naming fn), with fn's defaults.
    slash = ", /" if any(p.kind is p.POSITIONAL_ONLY for p in parameters) else ""
    positional_only = sum(p.kind is p.POSITIONAL_ONLY for p in parameters)
    listed = names[:positional_only] + (["/"] if slash else []) + names[positional_only:]
    code = f"def stand_in({', '.join(listed)}):\n    return ({''.join(n + ', ' for n in names)})\n"
    namespace: dict = {}
    exec(compile(code, "<diffprog binding>", "exec"), namespace)  # noqa: S102 (the names are identifiers)
    stand_in = namespace["stand_in"]
    stand_in.__defaults__ = tuple(p.default for p in parameters if p.default is not p.empty) or None
    stand_in.__name__ = getattr(fn, "__name__", "function")
    stand_in.__qualname__ = getattr(fn, "__qualname__", stand_in.__name__)

    def bind(args, kwargs):
        try:
            return stand_in(*args, **kwargs)
        except TypeError as error:  # raised here, not in diffprog: the user's call is wrong
            raise TypeError(*error.args) from None
    return len(names), bind


def bound(bind, arity, args, kwargs) -> tuple:
    """`args` and `kwargs` as one positional tuple (the fast path: already one)."""
    if kwargs or len(args) != arity:
        return bind(args, kwargs) if bind is not None else args
    return args


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
