"""One user function and its compiled specializations.

A `FunctionCompiler` parses and checks the function once (at decoration), lowers it once per layout of its
registered-type arguments, and compiles it lazily per `Signature` and mode through the pass pipeline
(pipeline.py), as numba specializes on argument types.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import DifferentiabilityError, Diagnostic, Reporter
from ..frontend import freshness
from ..frontend.source import is_current as parse_is_current, parsed_function as _reparsed
from ..frontend.syntax import check_function_syntax
from ..ir import core as C
from ..normalize.lower import Lowerer, parsed_function
from ..progress import reported as _progress_reported  # DIFFPROG_VERBOSE=1
from ..custom_types import protocol as P
from ..custom_types.boundary import Boundary, param_layouts, unregistered_problems
from ..custom_types.layout import signature as layout_signature
from . import pipeline
from .signature import Signature
from .. import codes


@dataclass
class Specialization:
    ir: object  # the core function that runs
    source: str
    run: object  # the compiled (or, with jit=False, plain Python) function
    results: int  # how many values the differentiated function returns
    returns_tuple: bool
    param_types: tuple
    result_types: tuple = ()  # reverse mode: the type of each result (so of each cotangent)
    signature: Signature | None = None  # what it was compiled for
    wrt: tuple = ()  # the differentiated user parameters
    # what the code depends on besides its own source (inlined functions, globals, rules); `deps.fresh()` is the
    # cheap per-call test the API runs before using a cached specialization (frontend/freshness.py)
    deps: freshness.Dependencies | None = None


class FunctionCompiler:
    """Everything diffprog knows about one user function; compiles it lazily per signature through the pass
    pipeline (pipeline.py)."""

    derives = False  # the code is a generated derivative (DerivativeCompiler, TangentCompiler)
    front_passes = pipeline.FUNCTION_FRONT

    def __init__(self, fn, jit=True, parsed=None, checkpoint=None, boundscheck=None):
        self.fn = fn
        self.jit = jit
        self.boundscheck = boundscheck  # numba bounds checks: True, False, None (the global setting: backend/jit.py)
        self.checkpoint = checkpoint  # snapshots for the outermost loops' reverse mode (`differentiable(checkpoint=)`)
        self.parsed = parsed if parsed is not None else parsed_function(fn)
        reporter = Reporter()
        check_function_syntax(self.parsed, reporter)
        reporter.raise_if_errors()
        self.last: dict = {}  # mode -> most recent specialization, for diffprog.source
        self._lowered: dict = {}  # argument layouts -> Lowered
        self._lowering: set = set()  # the layouts being lowered on this thread's stack: a body deriving itself

    @property
    def params(self) -> list:
        return [a.id for a in self.parsed.node.args.args]

    # ---- what the pipeline asks of a compiler ---------------------------------------------------------------
    def signature(self, args) -> Signature:
        """The signature of a call with these arguments (the only place the call's values are inspected)."""
        return Signature.of(args, self.layouts_of(args), unregistered_problems(args, self.parsed))

    def lowered(self, signature: Signature) -> "Lowered":
        """The function lowered to core code for arguments laid out as in `signature` (lowering does not depend on
        argument types, so once per layout of registered-type arguments: custom_types/boundary.py). The code still holds
        the placeholders of transforms called in the body, if any."""
        layouts = signature.layouts
        try:
            lowered = self._lower(layouts)
        except DifferentiabilityError as error:
            raise DifferentiabilityError(list(error.diagnostics) + list(signature.problems)) from None
        if signature.problems:
            raise DifferentiabilityError(list(signature.problems))
        return lowered

    def _lower(self, layouts) -> "Lowered":
        found = self._lowered.get(layouts)
        if found is not None and not found.deps.fresh():  # a callee or a global it read was redefined
            self._lowered.clear()
            found = None
        if found is not None:
            freshness.merge(found.deps)  # the compilation under way depends on what this lowering read
        elif self.fn is not None and self.parsed.fn is self.fn and not parse_is_current(self.parsed, self.fn):
            self._reparse()  # its code was replaced in place (IPython's autoreload), or a captured value reassigned
        if layouts not in self._lowered:
            if layouts in self._lowering:  # g's body takes a derivative of g itself
                raise DifferentiabilityError([Diagnostic(
                    codes.RECURSION, f"'{self.parsed.name}' takes a derivative of itself (recursion)",
                    self.parsed.origin(self.parsed.node), "diffprog inlines derivatives; rewrite the recursion as "
                    "a loop")])
            self._lowering.add(layouts)
            try:
                reporter = Reporter()
                from .nested import HOST  # nested.py derives through this module's compilers

                lowerer = Lowerer(reporter, HOST)
                with freshness.Recorder() as recorder:
                    freshness.record_function(self.fn)
                    function = lowerer.lower_function(self.parsed, layouts)
            finally:
                self._lowering.discard(layouts)
            reporter.raise_if_errors()
            boundary = Boundary(layouts, lowerer.result_layouts, lowerer.returns_user_tuple, self.parsed.name)
            self._lowered[layouts] = Lowered(function, lowerer.names, boundary, recorder.dependencies())
        return self._lowered[layouts]

    def _reparse(self):
        """The function's parse is out of date: parse and check it again."""
        parsed = _reparsed(self.fn)
        reporter = Reporter()
        check_function_syntax(parsed, reporter)
        reporter.raise_if_errors()
        self.parsed = parsed
        self._lowered.clear()

    def layouts_of(self, args):
        """The layout of each argument (custom_types/layout.py: a Node for a registered-type value, None for a number or
        an array), or None when no argument has a registered type."""
        return param_layouts(args, self.parsed)

    def boundary(self, layouts) -> Boundary:
        """How the compiled code's flat parameters and results map to the user's values, for arguments laid out
        as `layouts`. Derived compilers build theirs from their inner function's (see DerivativeCompiler)."""
        return self._lower(layouts).boundary

    def boundary_of(self, signature: Signature) -> Boundary:
        """The boundary for a call of this signature (reporting what lowering finds, and the arguments compiled
        code cannot hold, together)."""
        return self.lowered(signature).boundary

    def arity(self, layouts=None) -> tuple:
        """(per returned value its layout (a Node for a registered type, None for a number or an array), whether
        the values are returned as a tuple), for arguments laid out as `layouts`: known before argument types are,
        it is what a transform of this function called inside differentiated code gives back."""
        boundary = self.boundary(layouts)
        return boundary.results, boundary.user_tuple

    # ---- running the pipeline -------------------------------------------------------------------------------
    def compile(self, mode: str, wrt: tuple, signature: Signature, values=(), until=None) -> pipeline.Unit:
        """The pipeline for `mode` run on this function at `signature`, differentiated with respect to the user
        parameters `wrt` (up to the pass `until`, if given)."""
        wrt = self.boundary_of(signature).flat_wrt(wrt, (), self.parsed)
        unit = pipeline.Unit(self, mode, wrt, signature, tuple(values))
        return pipeline.run(pipeline.passes(self.front_passes, mode), unit, until)

    def front(self, signature: Signature) -> tuple:
        """(core code, name allocator) after the front passes: what a transform of this function called inside
        differentiated code splices in."""
        unit = pipeline.run(self.front_passes, pipeline.Unit(self, "primal", (), signature))
        return unit.function, unit.names

    @_progress_reported
    def specialize(self, mode: str, wrt: tuple, args, until=None):
        """The compiled code for `mode` at these arguments' types, as a Specialization that takes and returns the
        user's values; with `until`, the pipeline's Unit after that pass instead (diffprog.source(after=))."""
        with freshness.Recorder() as recorder:  # everything this specialization depends on
            signature = self.signature(args)
            boundary = self.boundary_of(signature)
            values = boundary.flat_args(args) if not boundary.trivial else tuple(args)
            if type(self) is FunctionCompiler and not boundary.trivial and len(args) != len(self.params):
                raise TypeError(f"{self.parsed.name}() takes {len(self.params)} arguments but {len(args)} were "
                                "given")
            unit = self.compile(mode, wrt, signature, values, until)
        if until is not None:
            return unit
        primal = unit.primal or unit.function
        spec = Specialization(unit.function, unit.source, unit.run, len(primal.results), primal.returns_tuple,
                              signature.types, unit.function.seed_types, signature, tuple(wrt),
                              recorder.dependencies())
        if not boundary.trivial:  # takes and returns the user's registered-type values
            spec = boundary.wrap(spec, mode, wrt, unit.wrt, unit.function.returns_tuple)
        self.last[mode] = spec
        return spec


@dataclass(frozen=True)
class Lowered:
    function: C.Function  # the core code, with placeholders for transforms called in the body
    names: object  # the name allocator that made its names
    boundary: Boundary  # how its flat parameters and results map to the user's values
    deps: freshness.Dependencies  # what lowering read besides the function's source (frontend/freshness.py)


def arg_key(value):
    """The part of an argument's type that selects a specialization (cheap: runs on every call)."""
    if type(value) is np.ndarray:
        return (value.dtype.char, value.ndim)
    if P.is_registered(value):  # a registered type: its classes and its array fields' kinds
        return layout_signature(value)
    return type(value)
