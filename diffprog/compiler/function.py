"""One user function and its compiled specializations: runs the stages in order for one call signature.

frontend (parse, syntax check) -> normalize (lower to core, inline, structure) -> analysis (types, activity,
checks) -> transforms (reverse) -> backend (print, cache, numba). Each specialization is keyed by the mode, the
differentiated parameters and the argument types, as numba specializes on argument types.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .. import __version__
from ..progress import reported as _progress_reported  # DIFFPROG_VERBOSE=1
from ..analysis.types import infer_types
from ..backend import cache, codegen
from ..backend.in_place import update_adjoints_in_place
from ..backend.jit import compile_nopython
from ..errors import DifferentiabilityError, Diagnostic, Reporter
from ..frontend.syntax import check_function_syntax
from ..ir import types as T
from ..normalize.cleanup import hoist_loop_invariants, initialize_unassigned, remove_dead_code
from ..normalize.lower import Lowerer, parsed_function
from ..normalize.nested import has_nested
from ..transforms.batched import forward_batched
from ..transforms.forward import forward
from ..transforms.reverse import reverse
from ..types import protocol as P
from ..types.boundary import Boundary, param_layouts, unregistered_problems
from ..types import layout as L
from ..types.layout import signature as layout_signature
from .front import check_derivative, wrt_problems


@dataclass
class Specialization:
    ir: object  # the core function that runs
    source: str
    run: object  # the compiled (or, with jit=False, plain Python) function
    results: int  # how many values the differentiated function returns
    returns_tuple: bool
    param_types: tuple
    result_types: tuple = ()  # reverse mode: the type of each result (so of each cotangent)


class FunctionCompiler:
    """Everything diffprog knows about one user function; compiles it lazily per signature."""

    derives = False  # the code is a generated derivative (DerivativeCompiler, TangentCompiler)

    checkpoint = None  # snapshots for the outermost loops' reverse mode (`differentiable(checkpoint=...)`)

    def __init__(self, fn, jit=True, parsed=None, checkpoint=None):
        self.fn = fn
        self.jit = jit
        self.checkpoint = checkpoint
        self.parsed = parsed if parsed is not None else parsed_function(fn)
        reporter = Reporter()
        check_function_syntax(self.parsed, reporter)
        reporter.raise_if_errors()
        self._core = None
        self._names = None
        self.specializations: dict = {}
        self.last: dict = {}  # mode -> most recent specialization, for diffprog.source

    @property
    def params(self) -> list:
        return [a.id for a in self.parsed.node.args.args]

    def core_for(self, args):
        """The normalized primal and its name allocator. Lowering does not depend on argument types, so plain
        functions are lowered once (once per layout of registered-type arguments: types/boundary.py). Transforms
        called in the body (`dp.grad(g)(x)`) are expanded per argument types (normalize/nested.py)."""
        layouts = param_layouts(args, self.parsed)
        unregistered = unregistered_problems(args, self.parsed)
        try:
            core, names, _ = self._lowered(layouts)
        except DifferentiabilityError as error:
            raise DifferentiabilityError(list(error.diagnostics) + unregistered) from None
        if unregistered:
            raise DifferentiabilityError(unregistered)
        if has_nested(core.body):
            flat = self._flat_call(args, ())[0]
            param_types = tuple(T.type_of_value(a) for a in flat)
            expanded = self.__dict__.setdefault("_expanded", {})
            key = (layouts, param_types)
            if key not in expanded:
                from .nested import expand_nested  # nested.py derives through this module's compilers
                core, names = expand_nested(core, names, param_types)
                expanded[key] = hoist_loop_invariants(remove_dead_code(core)), names
            core, names = expanded[key]
        return core, names

    def _lowered(self, layouts):
        """(core, names, Boundary) for arguments laid out as `layouts` (None: no registered-type argument). The
        core still holds the placeholders of nested transforms, if any (cleaned up once they are expanded)."""
        cache_ = self.__dict__.setdefault("_lowered_by_layout", {})
        if layouts not in cache_:
            lowering = self.__dict__.setdefault("_lowering", set())
            if layouts in lowering:  # g's body takes a derivative of g itself
                raise DifferentiabilityError([Diagnostic(
                    "DP110", f"'{self.parsed.name}' takes a derivative of itself (recursion)",
                    self.parsed.origin(self.parsed.node), "diffprog inlines derivatives; rewrite the recursion as "
                    "a loop")])
            lowering.add(layouts)
            try:
                reporter = Reporter()
                from .nested import HOST  # nested.py derives through this module's compilers

                lowerer = Lowerer(reporter, HOST)
                function = lowerer.lower_function(self.parsed, layouts)
            finally:
                lowering.discard(layouts)
            reporter.raise_if_errors()
            boundary = Boundary(layouts, lowerer.result_layouts, lowerer.returns_user_tuple, self.parsed.name)
            if not has_nested(function.body):
                function = hoist_loop_invariants(remove_dead_code(function))
            cache_[layouts] = (function, lowerer.names, boundary)
        return cache_[layouts]

    def layouts_of(self, args):
        """The layout of each argument (types/layout.py: a Node for a registered-type value, None for a number or
        an array), or None when no argument has a registered type."""
        return param_layouts(args, self.parsed)

    def boundary(self, layouts) -> Boundary:
        """How the compiled code's flat parameters and results map to the user's values, for arguments laid out
        as `layouts`. Derived compilers build theirs from their inner function's (see DerivativeCompiler)."""
        return self._lowered(layouts)[2]

    def arity(self, layouts=None) -> tuple:
        """(per returned value its layout (a Node for a registered type, None for a number or an array), whether
        the values are returned as a tuple), for arguments laid out as `layouts`: known before argument types are,
        it is what a transform of this function called inside differentiated code gives back."""
        boundary = self.boundary(layouts)
        return boundary.results, boundary.user_tuple

    def _flat_call(self, args, wrt):
        """(arguments, differentiated positions, Boundary or None) as the compiled code takes them: registered-
        type arguments split into their fields (the tangent-type arguments and results of derived compilers
        too). The Boundary is None for plain numbers and arrays."""
        layouts = self.layouts_of(args)
        boundary = self.boundary(layouts)
        if boundary.trivial:
            return args, wrt, None
        if type(self) is FunctionCompiler and len(args) != len(self.params):
            raise TypeError(f"{self.parsed.name}() takes {len(self.params)} arguments but {len(args)} were given")
        flat = boundary.flat_args(args)
        return flat, boundary.flat_wrt(wrt, flat, self.parsed), boundary

    def build(self, mode: str, wrt: tuple, args):
        """(code to run, the primal core, names) for `mode` ("primal", "reverse" or "forward") at these argument
        types."""
        core, names = self.core_for(args)
        args, wrt, _ = self._flat_call(args, wrt)
        if len(args) != len(core.params):
            raise TypeError(f"{self.parsed.name}() takes {len(core.params)} arguments but {len(args)} were given")
        param_types = tuple(T.type_of_value(a) for a in args)
        reporter = Reporter()
        types = infer_types(core, dict(zip(core.params, param_types)), reporter)
        reporter.raise_if_errors()
        core = initialize_unassigned(core, types)
        names = copy.deepcopy(names)
        if mode == "primal":
            return core, core, names
        wrt_names = [core.params[k] for k in wrt]
        self._check_wrt(core, wrt_names, types)
        activity = check_derivative(core, types, wrt_names, reporter,
                                    forward_mode=mode in ("forward", "forward_batched"))
        if self.derives and any("a view of" in e.message for e in reporter.errors):
            raise DifferentiabilityError([Diagnostic(
                "DP101", "this derivative of a derivative cannot be differentiated again: the code it runs saves "
                "and restores the contents of its tapes as shared arrays",
                core.origin, "differentiate one time fewer and take finite differences of that")])
        reporter.raise_if_errors()
        reporter.emit_warnings()
        if mode == "forward":
            return forward(core, types, activity, wrt_names, names), core, names
        if mode == "forward_batched":  # tangents with a leading lane axis: several directions per pass
            return forward_batched(core, types, activity, wrt_names, names), core, names
        return reverse(core, types, activity, wrt_names, names, self.checkpoint), core, names

    @_progress_reported
    def specialize(self, mode: str, wrt: tuple, args) -> Specialization:
        ir, core, names = self.build(mode, wrt, args)
        if mode == "reverse":  # this code runs and is not differentiated again
            ir = update_adjoints_in_place(ir, names)
        user_wrt = wrt
        args, wrt, boundary = self._flat_call(args, wrt)
        param_types = tuple(T.type_of_value(a) for a in args)
        extra = tuple(map(_example_cotangent, ir.seed_types)) if mode == "reverse" else ()
        if mode == "forward":  # one tangent per differentiated argument, of the argument's type
            extra = tuple(np.zeros_like(args[k], dtype=np.float64) if isinstance(args[k], np.ndarray) else 0.0
                          for k in wrt)
        if mode == "forward_batched":  # one lane
            extra = tuple(np.zeros(np.shape(args[k]) + (1,)) for k in wrt)
        header = (f"diffprog {__version__}: {mode} code for {self.parsed.name} "
                  f"({self.parsed.file}:{self.parsed.node.lineno + self.parsed.line_offset})\n"
                  f"specialized for ({', '.join(f'{p}: {t}' for p, t in zip(core.params, param_types))})")
        source, origins = codegen.module_source([ir], header)
        module = cache.load_module(source)
        run = getattr(module, ir.name)
        if self.jit:
            run = compile_nopython(run, tuple(args) + extra, origins, module.__file__)
        spec = Specialization(ir, source, run, len(core.results), core.returns_tuple, param_types, ir.seed_types)
        if boundary is not None:  # takes and returns the user's registered-type values
            spec = boundary.wrap(spec, mode, user_wrt, wrt, ir.returns_tuple)
        self.last[mode] = spec
        return spec

    def _check_wrt(self, core, wrt_names, types):
        bad = wrt_problems(core, wrt_names, types)
        if bad:
            raise DifferentiabilityError(bad)


def carries_derivative(value) -> bool:
    """A float, a float array, or a registered-type value with derivative-carrying fields."""
    if P.is_registered(value):
        return any(in_tangent for _, in_tangent in L.layout_of(value).leaves())
    return T.type_of_value(value).differentiable



def _example_cotangent(t):
    """A value of type t, to give numba the seed parameters' types when compiling ahead of the first call."""
    return np.zeros((1,) * t.ndim) if isinstance(t, T.Array) else 0.0



def arg_key(value):
    """The part of an argument's type that selects a specialization (cheap: runs on every call)."""
    if type(value) is np.ndarray:
        return (value.dtype.char, value.ndim)
    if P.is_registered(value):  # a registered type: its classes and its array fields' kinds
        return layout_signature(value)
    return type(value)
