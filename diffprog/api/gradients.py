"""Reverse mode for users: `grad`, `value_and_grad` and `vjp` run the compiled adjoint."""
from __future__ import annotations

import functools
import inspect
import types
import weakref
from typing import Any, Callable, overload

import numpy as np

from ..compiler.derived import DerivativeCompiler
from ..compiler.function import arg_key
from ..compiler.registry import LOCK, function_compiler
from ..errors import DifferentiabilityError, Diagnostic, hide_internal_frames, user_facing
from ..ir import types as T
from ..custom_types import layout as L
from ..custom_types import protocol as P
from .functions import DifferentiableFunction, Gradient, Params, Result, _is_differentiable, bound
from .. import codes


_wrapped = weakref.WeakKeyDictionary()


def as_differentiable(f) -> DifferentiableFunction:
    if isinstance(f, DifferentiableFunction):
        return f
    if isinstance(f, GradientFunction):
        return f.as_function()
    if _is_library_callable(f):
        return _library_function(f)
    wrapped = _wrapped.get(f)
    if wrapped is None:
        with LOCK:
            wrapped = _wrapped.get(f)
            if wrapped is None:  # the function's compiler is shared with differentiated code calling dp.grad(f)
                wrapped = _wrapped[f] = DifferentiableFunction(f, compiler=function_compiler(f))
    return wrapped


# ---- numpy ufuncs and math functions as the function differentiated: dp.grad(np.sin) -----------------------------

def _is_library_callable(f) -> bool:
    """A numpy ufunc or a builtin function of math/numpy (no Python source; not weakly referenceable)."""
    if isinstance(f, np.ufunc):
        return True
    return isinstance(f, types.BuiltinFunctionType) and \
        (getattr(f, "__module__", None) or "").split(".")[0] in ("math", "numpy")


_library_wrapped: dict = {}


def _library_function(f) -> DifferentiableFunction:
    """`f` (np.sin, math.atan2, ...) as a differentiable function: a tiny Python function calling it, whose
    derivative is f's derivative rule (a primitive without one reports DP-errors at the first call, as usual)."""
    wrapped = _library_wrapped.get(f)
    if wrapped is None:
        with LOCK:
            wrapped = _library_wrapped.get(f)
            if wrapped is None:
                wrapped = _library_wrapped[f] = DifferentiableFunction(_library_caller(f))
    return wrapped


def _library_caller(f):
    arity = f.nin if isinstance(f, np.ufunc) else _positional_arity(f)
    name = getattr(f, "__name__", "function")
    if arity == 1:
        def call(x):
            return f(x)
    elif arity == 2:
        def call(x, y):
            return f(x, y)
    elif arity == 3:
        def call(x, y, z):
            return f(x, y, z)
    else:
        raise TypeError(f"cannot differentiate {name!r} directly (diffprog cannot tell its number of arguments); "
                        f"wrap the call in a Python function, e.g. `def g(x): return {name}(x)`")
    return call  # named `call` (the source lookup finds it by name), the library function is its closure's


def _positional_arity(f):
    try:
        parameters = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.default is not p.empty
           for p in parameters):
        return None
    return len(parameters)


class _ReverseRunner:
    """Calls the compiled adjoint for one choice of differentiated arguments, specializing on first use."""

    def __init__(self, f, wrt):
        self.df = as_differentiable(f)
        self.wrt = wrt
        self._compiled: dict = {}

    def specialization(self, args):
        key = tuple(map(arg_key, args))
        spec = self._compiled.get(key)
        if spec is None or not spec.deps.fresh():
            with LOCK:
                spec = self._compiled.get(key)
                if spec is None or not spec.deps.fresh():  # new types, or a helper or global redefined since
                    spec = self._compiled[key] = self.df.compiler.specialize("reverse", self.wrt, args)
        return spec


class GradientFunction(_ReverseRunner):
    def __init__(self, f, argnums, with_value, has_aux=False):
        self.single = isinstance(argnums, int)
        wrt = (argnums,) if self.single else tuple(argnums)
        super().__init__(f, wrt)
        self.with_value = with_value
        self.has_aux = has_aux
        self._as_function = None
        self.arity, self.bind = self.df.arity, self.df.bind
        functools.update_wrapper(self, self.df.__diffprog_function__, updated=())

    def as_function(self) -> DifferentiableFunction:
        """This gradient as a differentiable function of its own (for grad of grad)."""
        if self.has_aux:
            raise NotImplementedError("a gradient with has_aux=True cannot be differentiated again (nor called in "
                                      "differentiated code) yet; use has_aux=False")
        if self._as_function is None:
            with LOCK:
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

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != self.arity:
            args = bound(self.bind, self.arity, args, kwargs)
        try:
            spec = self.specialization(args)
            if spec.results != 1 or spec.returns_tuple or isinstance(spec.result_types[0], (T.Array, L.Node)):
                raise _not_scalar(self.df, spec)
        except DifferentiabilityError as error:
            hide_internal_frames(error)  # the user's frames only (errors.py)
            raise
        out = spec.run(*args, 1.0)
        grads = tuple(_like(g, args[k]) for g, k in zip(out[1:], self.wrt))
        grads = grads[0] if self.single else grads
        return (out[0], grads) if self.with_value else grads


class AuxGradientFunction(GradientFunction):
    """grad(f, has_aux=True): f returns (value, aux); one adjoint pass seeded with 1 for the value, 0 for aux."""

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != self.arity:
            args = bound(self.bind, self.arity, args, kwargs)
        try:
            spec = self.specialization(args)
            if spec.results != 2 or not spec.returns_tuple or \
                    isinstance(spec.result_types[0], (T.Array, L.Node)):
                raise _not_pair(self.df, spec)
        except DifferentiabilityError as error:
            hide_internal_frames(error)
            raise
        aux_type = spec.result_types[1]
        if isinstance(aux_type, (T.Array, L.Node)):  # its zero cotangent needs aux's shape: one primal pass
            aux = self.df(*args)[1]
            zero = P.zero_tangent(aux) if P.is_registered(aux) else _cotangent(np.zeros(np.shape(aux)), aux_type)
        else:
            zero = 0.0
        out = spec.run(*args, 1.0, zero)
        grads = tuple(_like(g, args[k]) for g, k in zip(out[2:], self.wrt))
        grads = grads[0] if self.single else grads
        return ((out[0], out[1]), grads) if self.with_value else (grads, out[1])


def _like(gradient, argument):
    """Adjoints accumulate in float64; a float32 argument gets a float32 gradient, as in numpy and JAX."""
    if type(argument) is np.ndarray and argument.dtype != gradient.dtype:
        return gradient.astype(argument.dtype)
    return gradient


def _cotangent(value, t):
    if P.is_registered(value):  # the cotangent of a registered-type result: its tangent type (custom_types/boundary.py)
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
        codes.NOT_SCALAR, f"grad needs a function returning one number, but '{parsed.name}' returns {what}",
        parsed.origin(parsed.node), "use diffprog.vjp(f, *args) with a cotangent shaped like the result, or "
        "diffprog.jacobian(f)")])


def _not_pair(df, spec):
    parsed = df.compiler.parsed
    return DifferentiabilityError([Diagnostic(
        codes.NOT_SCALAR, f"has_aux=True needs a function returning a pair (value, aux) with a number as value, "
        f"but '{parsed.name}' does not", parsed.origin(parsed.node),
        "return `value, aux` (several auxiliary values: return them as one array), or use has_aux=False")])


_grad_cache = weakref.WeakKeyDictionary()
_library_cache: dict = {}  # numpy ufuncs and math functions: not weakly referenceable, and never freed


def _cached(f, kind, argnums, has_aux=False):
    """grad(f) is cheap to call repeatedly (users write grad(f)(x) inside optimizer loops)."""
    key = (kind, argnums, has_aux)
    cache = _library_cache if _is_library_callable(f) else _grad_cache
    try:
        cached = cache.get(f, {}).get(key)
    except TypeError:  # f cannot be weakly referenced
        return (AuxGradientFunction if has_aux else GradientFunction)(f, argnums, kind == "value_and_grad", has_aux)
    if cached is None:
        with LOCK:
            per_function = cache.setdefault(f, {})
            cached = per_function.get(key)
            if cached is None:
                cached = per_function[key] = (AuxGradientFunction if has_aux else GradientFunction)(
                    f, argnums, kind == "value_and_grad", has_aux)
    return cached


@overload
def grad(f: Callable[Params, Any], argnums: int = 0, *, has_aux: bool = False) -> Callable[Params, Gradient]: ...
@overload
def grad(f: Callable[Params, Any], argnums: tuple[int, ...], *, has_aux: bool = False
         ) -> Callable[Params, tuple[Gradient, ...]]: ...
def grad(f, argnums=0, *, has_aux=False):
    """The gradient of scalar-valued `f` with respect to argument `argnums` (an int), or a tuple of gradients
    (a tuple of ints, even of length one).

    Returns a function taking the same arguments as `f`. A float argument gets a float gradient, a float array
    an array of its shape, a registered type (`differentiable_type`) a value of its tangent type. Integer
    arguments (counts, indices) may be passed but not differentiated (DP106). `grad(f)` is cached, so writing
    `dp.grad(f)(x)` inside an optimizer loop is cheap. Composable: `grad(grad(f))` is the second derivative.

    The gradient function takes the calls `f` takes: keyword arguments, and defaulted parameters left out;
    `argnums` are positions in f's full parameter list (as in JAX). `f` may also be a numpy ufunc or a `math`
    function with a derivative rule: `dp.grad(np.sin)(1.0)` is `cos(1.0)`.

    With `has_aux=True`, `f` returns a pair `(value, aux)`: `value` is differentiated and `aux` (a number or an
    array: anything computed on the way, such as a residual) is returned alongside, as `(gradient, aux)`.

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

        def loss(w, scale=2.0):
            r = w * scale - 1.0
            return r * r, r                             # (value, aux)

        dp.grad(loss, has_aux=True)(1.0)                # (4.0, 1.0): the gradient and the residual
        dp.grad(loss, has_aux=True)(w=1.0, scale=3.0)   # (12.0, 2.0): keywords as in a call of loss
        ```
    """
    try:
        return _cached(f, "grad", argnums, has_aux)
    except DifferentiabilityError as error:
        hide_internal_frames(error)  # the user's frames only (errors.py); inline, as grad(f) is called in loops
        raise


@overload
def value_and_grad(f: Callable[Params, Result], argnums: int = 0, *, has_aux: bool = False
                   ) -> Callable[Params, tuple[Result, Gradient]]: ...
@overload
def value_and_grad(f: Callable[Params, Result], argnums: tuple[int, ...], *, has_aux: bool = False
                   ) -> Callable[Params, tuple[Result, tuple[Gradient, ...]]]: ...
def value_and_grad(f, argnums=0, *, has_aux=False):
    """Like `grad`, but returns `(value, gradient)` from one run of the generated adjoint; with `has_aux=True`
    (f returns `(value, aux)`), `((value, aux), gradient)`, as in JAX.

    Example:
        ```python
        import math
        import diffprog as dp

        def f(x, y):
            return math.sin(x) * y + x ** 2

        dp.value_and_grad(f, (0, 1))(1.0, 2.0)
        # (2.682941969615793, (3.0806046117362795, 0.8414709848078965))

        def loss(w):
            r = 2.0 * w - 1.0
            return r * r, r

        dp.value_and_grad(loss, has_aux=True)(1.0)   # ((1.0, 1.0), 4.0)
        ```
    """
    try:
        return _cached(f, "value_and_grad", argnums, has_aux)
    except DifferentiabilityError as error:
        hide_internal_frames(error)
        raise


@user_facing
def vjp(f: Callable[..., Result], *args: Any, argnums: int | tuple[int, ...] | None = None,
        **kwargs: Any) -> tuple[Result, Callable[[Any], Any]]:
    """`(value, pullback)`: `pullback(cotangent)` gives one cotangent per argument (None for integers).

    The value is `f(*args, **kwargs)`; `pullback` runs the compiled adjoint seeded with `cotangent`, which has
    the structure of the result: a number, an array of the result's shape, or a tuple of those for a function
    returning a tuple. One `vjp` can be pulled back many times (e.g. once per output to build a Jacobian).

    Keyword arguments and defaulted parameters are bound as in a call of `f`; the cotangents then follow f's
    full parameter list. With `argnums` (an int or a tuple of positions in that list), only those arguments are
    differentiated and `pullback` returns their cotangents only: one value for an int, a tuple for a tuple (so
    data arrays passed alongside cost nothing).

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

        value, pullback = dp.vjp(pick, 1.5, np.array([1.0, 2.0, 3.0]), 2, argnums=0)
        pullback(1.0)                               # 3.0: the data array gets no cotangent
        ```
    """
    df = as_differentiable(f)
    args = bound(df.bind, df.arity, args, kwargs)
    if argnums is None:
        differentiable = tuple(k for k, a in enumerate(args) if _is_differentiable(a))
    else:
        differentiable = _positions(argnums, len(args), "vjp")
    spec = _reverse_runner(df, differentiable).specialization(args)  # cached: vjp is called in loops
    value = df(*args)

    def pullback(cotangent):
        seeds = tuple(cotangent) if spec.returns_tuple else (cotangent,)
        if len(seeds) != spec.results:
            raise ValueError(f"pullback expects {spec.results} cotangents, got {len(seeds)}")
        adjoints = spec.run(*args, *map(_cotangent, seeds, spec.result_types))[spec.results:]
        if argnums is not None:
            return adjoints[0] if isinstance(argnums, int) else tuple(adjoints)
        by_position = dict(zip(differentiable, adjoints))
        return tuple(by_position.get(k) for k in range(len(args)))

    return value, pullback


def _positions(argnums, n, who) -> tuple:
    """argnums (an int or a tuple of ints, negative counting from the end) as a tuple of positions < n."""
    items = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    positions = []
    for k in items:
        if not isinstance(k, int) or isinstance(k, bool) or not -n <= k < n:
            raise ValueError(f"{who}: argnums {argnums!r} is not a position among the {n} arguments")
        positions.append(k % n)
    if len(set(positions)) != len(positions):
        raise ValueError(f"{who}: argnums {argnums!r} names an argument twice")
    return tuple(positions)


_reverse_runners = weakref.WeakKeyDictionary()


def _reverse_runner(df, wrt):
    runner = _reverse_runners.get(df, {}).get(wrt)
    if runner is None:
        with LOCK:
            per_function = _reverse_runners.setdefault(df, {})
            runner = per_function.get(wrt)
            if runner is None:
                runner = per_function[wrt] = _ReverseRunner(df, wrt)
    return runner
