"""The user-facing functions: decorate, differentiate, inspect."""
from __future__ import annotations

import functools
import weakref

from .compiler import DerivativeCompiler, FunctionCompiler, arg_key
from .errors import DifferentiabilityError, Diagnostic
from .ir import types as T


class DifferentiableFunction:
    """A function diffprog has parsed and checked; calling it runs the numba-compiled primal."""

    def __init__(self, fn, jit=True, compiler=None):
        self.compiler = compiler or FunctionCompiler(fn, jit=jit)
        self.__diffprog_function__ = fn
        self._primal: dict = {}
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args):
        key = tuple(map(arg_key, args))
        run = self._primal.get(key)
        if run is None:
            run = self._primal[key] = self.compiler.specialize("primal", (), args).run
        return run(*args)

    def __repr__(self):
        return f"<diffprog.differentiable {self.compiler.parsed.name}>"


def differentiable(fn=None, *, jit=True):
    """Decorator: parse, check and (lazily, per argument types) compile `fn` with numba.

    `@differentiable(jit=False)` runs the generated Python without numba, for debugging.
    """
    if fn is None:
        return lambda f: DifferentiableFunction(f, jit=jit)
    return DifferentiableFunction(fn, jit=jit)


_wrapped = weakref.WeakKeyDictionary()


def as_differentiable(f) -> DifferentiableFunction:
    if isinstance(f, DifferentiableFunction):
        return f
    if isinstance(f, GradientFunction):
        return f.as_function()
    if f not in _wrapped:
        _wrapped[f] = DifferentiableFunction(f)
    return _wrapped[f]


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
            outputs = tuple(range(1, 1 + len(self.wrt)))
            if self.with_value:
                outputs = (0,) + outputs
            compiler = DerivativeCompiler(self.df.compiler, self.wrt, outputs, jit=self.df.compiler.jit)
            self._as_function = DifferentiableFunction(self, compiler=compiler)
        return self._as_function

    def __call__(self, *args):
        spec = self.specialization(args)
        if spec.results != 1 or spec.returns_tuple:
            raise _not_scalar(self.df)
        out = spec.run(*args, 1.0)
        grads = out[1] if self.single else out[1:]
        return (out[0], grads) if self.with_value else grads


def _not_scalar(df):
    parsed = df.compiler.parsed
    return DifferentiabilityError([Diagnostic(
        "DP111", f"grad needs a function returning one number, but '{parsed.name}' returns a tuple",
        parsed.origin(parsed.node), "use diffprog.vjp(f, *args) and pass one cotangent per returned value")])


_grad_cache = weakref.WeakKeyDictionary()


def _cached(f, kind, argnums):
    """grad(f) is cheap to call repeatedly (users write grad(f)(x) inside optimizer loops)."""
    try:
        per_function = _grad_cache.setdefault(f, {})
    except TypeError:
        return GradientFunction(f, argnums, kind == "value_and_grad")
    key = (kind, argnums)
    if key not in per_function:
        per_function[key] = GradientFunction(f, argnums, kind == "value_and_grad")
    return per_function[key]


def grad(f, argnums=0):
    """The gradient of scalar-valued `f` with respect to argument `argnums` (an int), or a tuple of gradients
    (a tuple of ints, even of length one)."""
    return _cached(f, "grad", argnums)


def value_and_grad(f, argnums=0):
    """Like `grad`, but returns `(value, gradient)` from one run."""
    return _cached(f, "value_and_grad", argnums)


def vjp(f, *args):
    """`(value, pullback)`: `pullback(cotangent)` gives one cotangent per argument (None for integers)."""
    df = as_differentiable(f)
    differentiable = tuple(k for k, a in enumerate(args) if T.type_of_value(a).differentiable)
    runner = _ReverseRunner(df, differentiable)
    spec = runner.specialization(args)
    value = df(*args)

    def pullback(cotangent):
        seeds = tuple(cotangent) if spec.returns_tuple else (cotangent,)
        if len(seeds) != spec.results:
            raise ValueError(f"pullback expects {spec.results} cotangents, got {len(seeds)}")
        adjoints = spec.run(*args, *map(float, seeds))[spec.results:]
        by_position = dict(zip(differentiable, adjoints))
        return tuple(by_position.get(k) for k in range(len(args)))

    return value, pullback


def source(f, mode="reverse", *, args=None, argnums=0):
    """The exact Python source diffprog generated (and runs) for `f`.

    `mode` is "reverse" (the adjoint) or "primal" (the normalized primal). With `args`, for those argument types;
    otherwise the most recent specialization, or floats for every parameter if `f` has not run yet.
    """
    if mode not in ("reverse", "primal"):
        raise ValueError(f"mode must be 'reverse' or 'primal', not {mode!r}")
    df = as_differentiable(f)
    compiler = df.compiler
    if args is None and mode in compiler.last:
        return compiler.last[mode].source
    if args is None:
        args = (1.0,) * len(compiler.params)
    wrt = () if mode == "primal" else ((argnums,) if isinstance(argnums, int) else tuple(argnums))
    return compiler.specialize(mode, wrt, tuple(args)).source
