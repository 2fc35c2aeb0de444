"""The compiler driver: runs the stages in order for one function and one call signature.

frontend (parse, syntax check) -> normalize (lower to core, inline, structure) -> analysis (types, activity,
checks) -> transforms (reverse) -> backend (print, cache, numba). Each specialization is keyed by the mode, the
differentiated parameters and the argument types, as numba specializes on argument types.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from . import __version__
from .analysis.activity import analyze_activity
from .analysis.check import check_active_uses, check_result_depends_on_inputs
from .analysis.types import infer_types
from .backend import cache, codegen
from .backend.jit import compile_nopython
from .errors import DifferentiabilityError, Diagnostic, Reporter
from .frontend.syntax import check_function_syntax
from .ir import types as T
from .normalize.cleanup import remove_dead_code
from .normalize.lower import Lowerer, parsed_function
from .transforms.reverse import reverse

RUNTIME_MODULE = "diffprog.backend.runtime"


@dataclass
class Specialization:
    ir: object  # the core function that runs
    source: str
    run: object  # the compiled (or, with jit=False, plain Python) function
    results: int  # how many values the differentiated function returns
    returns_tuple: bool
    param_types: tuple


class FunctionCompiler:
    """Everything diffprog knows about one user function; compiles it lazily per signature."""

    def __init__(self, fn, jit=True):
        self.fn = fn
        self.jit = jit
        self.parsed = parsed_function(fn)
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

    def core(self):
        """The normalized primal, lowered once: lowering does not depend on argument types."""
        if self._core is None:
            reporter = Reporter()
            lowerer = Lowerer(reporter)
            function = lowerer.lower_function(self.parsed)
            reporter.raise_if_errors()
            self._core = remove_dead_code(function)
            self._names = lowerer.names
        return self._core

    def specialize(self, mode: str, wrt: tuple, args) -> Specialization:
        core = self.core()
        param_types = tuple(T.type_of_value(a) for a in args)
        if len(args) != len(core.params):
            raise TypeError(f"{self.parsed.name}() takes {len(core.params)} arguments but {len(args)} were given")
        reporter = Reporter()
        types = infer_types(core, dict(zip(core.params, param_types)), reporter)
        reporter.raise_if_errors()
        names = copy.deepcopy(self._names)
        if mode == "primal":
            ir, extra = core, ()
        else:
            wrt_names = [core.params[k] for k in wrt]
            self._check_wrt(core, wrt_names, types)
            activity = analyze_activity(core, set(wrt_names), types)
            check_active_uses(core, activity, reporter)
            check_result_depends_on_inputs(core, activity, wrt_names, reporter)
            reporter.raise_if_errors()
            reporter.emit_warnings()
            ir = reverse(core, types, activity, wrt_names, names)
            extra = (0.0,) * len(core.results)
        header = (f"diffprog {__version__}: {mode} code for {self.parsed.name} "
                  f"({self.parsed.file}:{self.parsed.node.lineno + self.parsed.line_offset})\n"
                  f"specialized for ({', '.join(f'{p}: {t}' for p, t in zip(core.params, param_types))})")
        source, origins = codegen.module_source([ir], header, RUNTIME_MODULE)
        module = cache.load_module(source)
        run = getattr(module, ir.name)
        if self.jit:
            run = compile_nopython(run, tuple(args) + extra, origins, module.__file__)
        spec = Specialization(ir, source, run, len(core.results), core.returns_tuple, param_types)
        self.last[mode] = spec
        return spec

    def _check_wrt(self, core, wrt_names, types):
        bad = [p for p in wrt_names if not getattr(types.get(p), "differentiable", False)]
        if bad:
            raise DifferentiabilityError([
                Diagnostic("DP106", f"cannot differentiate with respect to '{p}', which is {_describe(types[p])}",
                           core.param_origins.get(p),
                           hint="pass a float (e.g. 2.0 instead of 2) or a float array, or choose other "
                                "arguments with argnums")
                for p in bad
            ])


def _describe(t) -> str:
    if isinstance(t, T.Scalar):
        return {"int": "an int", "bool": "a bool", "float": "a float"}[t.kind]
    if isinstance(t, T.Array):
        return f"an array of {t.dtype}"
    return f"a {t}"


def arg_key(value):
    """The part of an argument's type that selects a specialization (cheap: runs on every call)."""
    if type(value) is np.ndarray:
        return (value.dtype.char, value.ndim)
    return type(value)
