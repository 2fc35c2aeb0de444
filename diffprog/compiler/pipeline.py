"""The pass pipeline: what runs, in which order, for each kind of code, declared as data.

A specialization (one function, one mode, one set of differentiated parameters, one `Signature`) is a `Unit`
that flows through a list of named passes. Each pass is a small function that reads the unit and updates it
(usually: core code in, core code out). The lists below are the whole compiler:

    front       lower -> nested -> cleanup             (a user function's core code; `derive` for a derivative)
    analysis    infer -> initialize [-> check]          (types; first values; activity and diagnostics)
    transform   reverse -> in_place | forward | forward_batched
    back        codegen -> jit

`DIFFPROG_DUMP=pass[,pass...]` (or `all`) prints the code after those passes on stderr, and
`diffprog.source(f, mode, after="pass")` returns it; `DIFFPROG_VERBOSE=1` adds each pass's time to the line
reporting a long compilation (progress.py). The front and analysis passes import nothing from the backend: the
command line checker runs the same stages (compiler/front.py) without numba.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .. import progress
from ..analysis.types import infer_types
from ..backend import cache, codegen
from ..backend.in_place import update_adjoints_in_place
from ..backend.jit import compile_nopython
from ..errors import DifferentiabilityError, Diagnostic, Reporter
from ..ir import core as C
from ..ir import types as T
from ..normalize.cleanup import hoist_loop_invariants, initialize_unassigned, remove_dead_code
from ..normalize.nested import has_nested
from ..transforms.batched import forward_batched
from ..transforms.forward import forward
from ..transforms.reverse import reverse
from ..version import __version__
from .front import check_derivative, wrt_problems
from .signature import Signature


@dataclass
class Unit:
    """One specialization being compiled: what the passes read and write."""

    compiler: object  # the FunctionCompiler (or derived compiler) whose code this is
    mode: str  # "primal", "reverse", "forward" or "forward_batched"
    wrt: tuple  # the differentiated flat parameters
    signature: Signature
    values: tuple = ()  # the call's flat arguments, if any: numba compiles for their exact types (array layouts)
    function: C.Function | None = None  # the core code so far
    names: object = None  # the name allocator that made `function`'s names
    primal: C.Function | None = None  # the core code the transform started from
    types: dict = field(default_factory=dict)  # variable -> core type, once inferred
    activity: object = None
    source: str = ""  # the generated module's text, once printed
    origins: dict = field(default_factory=dict)  # generated line -> the user's source position
    run: object = None  # the compiled (or, with jit=False, plain Python) function

    def describe(self) -> str:
        return f"{self.mode} code for {self.compiler.parsed.name} ({self.signature})"


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Unit], None]

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip().split("\n")[0]


# ---- front: the core code of a user function -------------------------------------------------------------------
def _lower(unit: Unit) -> None:
    """Lowers the function to core code for these argument layouts (cached per layouts: lowering does not depend
    on argument types). Transforms called in the body stay placeholders."""
    lowered = unit.compiler.lowered(unit.signature)
    unit.function, unit.names = copy.deepcopy((lowered.function, lowered.names))


def _expand_nested(unit: Unit) -> None:
    """Replaces each placeholder of a transform called in the body (`dp.grad(g)(x)`) by g's derived code for the
    argument types at that call."""
    if has_nested(unit.function.body):
        from .nested import expand_nested  # nested.py derives through the compilers that run this pipeline

        unit.function, unit.names = expand_nested(unit.function, unit.names, unit.signature.types)


def _cleanup(unit: Unit) -> None:
    """Removes dead code and moves loop-invariant computations out of loops."""
    unit.function = hoist_loop_invariants(remove_dead_code(unit.function))


def _derive(unit: Unit) -> None:
    """A derivative compiler's core code: its inner function's derivative, made a function of its own."""
    unit.function, unit.names = unit.compiler.derived_core(unit.signature)


# ---- analysis -------------------------------------------------------------------------------------------------
def _infer(unit: Unit) -> None:
    """Infers the type of every variable from the parameter types."""
    function = unit.function
    if len(unit.signature.types) != len(function.params):
        name = unit.compiler.parsed.name
        raise TypeError(f"{name}() takes {len(function.params)} arguments but {len(unit.signature.types)} were given")
    reporter = Reporter()
    unit.types = infer_types(function, dict(zip(function.params, unit.signature.types)), reporter)
    reporter.raise_if_errors()


def _initialize(unit: Unit) -> None:
    """Gives a first value to every variable a path may read before assigning it (numba types every path)."""
    unit.function = initialize_unassigned(unit.function, unit.types)


def _check(unit: Unit) -> None:
    """Activity analysis and the checks it drives: misuse of active values, results independent of the inputs."""
    function, reporter = unit.function, Reporter()
    wrt_names = [function.params[k] for k in unit.wrt]
    bad = wrt_problems(function, wrt_names, unit.types)
    if bad:
        raise DifferentiabilityError(bad)
    unit.activity = check_derivative(function, unit.types, wrt_names, reporter,
                                     forward_mode=unit.mode in ("forward", "forward_batched"))
    if unit.compiler.derives and any("a view of" in e.message for e in reporter.errors):
        raise DifferentiabilityError([Diagnostic(
            "DP101", "this derivative of a derivative cannot be differentiated again: the code it runs saves "
            "and restores the contents of its tapes as shared arrays",
            function.origin, "differentiate one time fewer and take finite differences of that")])
    reporter.raise_if_errors()
    reporter.emit_warnings()


# ---- transforms -----------------------------------------------------------------------------------------------
def _wrt_names(unit: Unit) -> list:
    return [unit.function.params[k] for k in unit.wrt]


def _reverse(unit: Unit) -> None:
    """Reverse mode: a forward sweep that records what the backward sweep reads, then the backward sweep."""
    unit.primal = unit.function
    unit.function = reverse(unit.function, unit.types, unit.activity, _wrt_names(unit), unit.names,
                            unit.compiler.checkpoint)


def _forward(unit: Unit) -> None:
    """Forward mode: each active assignment followed by its tangent."""
    unit.primal = unit.function
    unit.function = forward(unit.function, unit.types, unit.activity, _wrt_names(unit), unit.names)


def _forward_batched(unit: Unit) -> None:
    """Forward mode with a trailing lane axis on every tangent: several directions per pass."""
    unit.primal = unit.function
    unit.function = forward_batched(unit.function, unit.types, unit.activity, _wrt_names(unit), unit.names)


def _in_place(unit: Unit) -> None:
    """Updates array adjoints in place (reverse code that runs, never differentiated again)."""
    unit.function = update_adjoints_in_place(unit.function, unit.names)


# ---- back: Python source, then machine code ---------------------------------------------------------------------
def _codegen(unit: Unit) -> None:
    """Prints the core code as a Python module, each statement group headed by the user line it came from."""
    unit.source, unit.origins = codegen.module_source([unit.function], _header(unit))


def _jit(unit: Unit) -> None:
    """Writes the module to the disk cache, imports it and compiles it with numba in nopython mode."""
    module = cache.load_module(unit.source)
    unit.run = getattr(module, unit.function.name)
    if unit.compiler.jit:
        unit.run = compile_nopython(unit.run, unit.values + _example_extra(unit), unit.origins, module.__file__)


def _example_extra(unit: Unit) -> tuple:
    """Values of the types of the arguments the generated code takes beyond the call's own, so that numba can
    compile it before its first call: one cotangent per result (reverse) or one tangent per differentiated
    parameter (forward; with a lane axis of one direction, batched)."""
    if unit.mode == "reverse":
        return tuple(np.zeros((1,) * t.ndim) if isinstance(t, T.Array) else 0.0 for t in unit.function.seed_types)
    values = [unit.values[k] for k in unit.wrt]
    if unit.mode == "forward":
        return tuple(np.zeros_like(v, dtype=np.float64) if isinstance(v, np.ndarray) else 0.0 for v in values)
    if unit.mode == "forward_batched":
        return tuple(np.zeros(np.shape(v) + (1,)) for v in values)
    return ()


def _header(unit: Unit) -> str:
    parsed, primal = unit.compiler.parsed, unit.primal or unit.function
    params = ", ".join(f"{p}: {t}" for p, t in zip(primal.params, unit.signature.types))
    return (f"diffprog {__version__}: {unit.mode} code for {parsed.name} "
            f"({parsed.file}:{parsed.node.lineno + parsed.line_offset})\nspecialized for ({params})")


FUNCTION_FRONT = (Pass("lower", _lower), Pass("nested", _expand_nested), Pass("cleanup", _cleanup))
DERIVED_FRONT = (Pass("derive", _derive),)
ANALYSIS = (Pass("infer", _infer), Pass("initialize", _initialize))
CHECK = (Pass("check", _check),)
TRANSFORMS = {
    "primal": (),
    "reverse": CHECK + (Pass("reverse", _reverse), Pass("in_place", _in_place)),
    "forward": CHECK + (Pass("forward", _forward),),
    "forward_batched": CHECK + (Pass("forward_batched", _forward_batched),),
}
BACK = (Pass("codegen", _codegen), Pass("jit", _jit))
PASS_NAMES = tuple(dict.fromkeys(p.name for group in (FUNCTION_FRONT, DERIVED_FRONT, ANALYSIS,
                                                      *TRANSFORMS.values(), BACK) for p in group))


def passes(front: tuple, mode: str) -> tuple:
    """The pipeline for `mode`, after the given front passes."""
    return front + ANALYSIS + TRANSFORMS[mode] + BACK


def run(pipeline: tuple, unit: Unit, until: str | None = None) -> Unit:
    """Runs the passes in order (up to and including `until`), dumping and timing each as asked."""
    if until is not None and until not in (p.name for p in pipeline):
        raise ValueError(f"no pass {until!r} in {unit.mode} code for {unit.compiler.parsed.name}; its passes: "
                         f"{', '.join(p.name for p in pipeline)}")
    dumped = _dumped_passes()
    for step in pipeline:
        start = time.perf_counter()
        step.run(unit)
        progress.record(step.name, time.perf_counter() - start)
        if step.name in dumped or "all" in dumped:
            print(f"# ==== after {step.name}: {unit.describe()} ====\n{render(unit)}", file=sys.stderr)
        if step.name == until:
            break
    return unit


def render(unit: Unit) -> str:
    """The unit's code as Python source: the generated module once printed, else the core code so far."""
    if unit.source:
        return unit.source
    return codegen.module_source([unit.function], _header(unit))[0]


def _dumped_passes() -> set:
    return {name.strip() for name in os.environ.get("DIFFPROG_DUMP", "").split(",") if name.strip()}
