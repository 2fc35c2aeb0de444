"""The front half of the pipeline: a function's core code, its types, and the checks on what is differentiated.

These passes import nothing from the backend (numba, code generation), and their checking functions are shared
with the command line checker (`diffprog check`), which runs the same stages on source it does not import.
"""
from __future__ import annotations

import copy

from ..analysis.activity import analyze_activity, forward_activity
from ..analysis.check import check_active_uses, check_array_aliasing, check_result_depends_on_inputs
from ..analysis.inference import infer_types
from ..errors import DifferentiabilityError, Diagnostic, Reporter
from ..ir import types as T
from ..normalize.cleanup import hoist_loop_invariants, initialize_unassigned, remove_dead_code
from ..normalize.lower import Lowerer
from ..normalize.nested import has_nested
from .unit import Pass, Unit
from .. import codes


def lower_to_core(parsed, reporter: Reporter, param_layouts=None):
    """(core function, name allocator) for a parsed function; problems go to `reporter`. `param_layouts`: see
    Lowerer.lower_function (the static checker passes those of registered-type annotations)."""
    from .nested import HOST  # nested.py imports this module

    lowerer = Lowerer(reporter, HOST)
    function = lowerer.lower_function(parsed, param_layouts)
    return hoist_loop_invariants(remove_dead_code(function)), lowerer.names


def wrt_problems(core, wrt_names, types) -> list:
    """DP106 for every differentiated parameter whose type cannot have a derivative."""
    return [
        Diagnostic(codes.NOT_DIFFERENTIABLE,
                   f"cannot differentiate with respect to '{p}', which is {describe(types[p])}",
                   core.param_origins.get(p),
                   hint="pass a float (e.g. 2.0 instead of 2) or a float array, or choose other "
                        "arguments with argnums")
        for p in wrt_names if not getattr(types.get(p), "differentiable", False)
    ]


def check_derivative(core, types, wrt_names, reporter: Reporter, forward_mode=False) -> tuple:
    """(activity, whether an array is read or written through a view): activity, then the checks it drives
    (misuse of active values, aliasing of written arrays, a result independent of the inputs)."""
    if forward_mode:  # follows values through array writes (tapes of an adjoint being differentiated)
        activity = forward_activity(core, set(wrt_names), types)
    else:
        activity = analyze_activity(core, set(wrt_names), types)
    check_active_uses(core, activity, reporter)
    # tangents follow writes through views; adjoints of writes assume no aliasing
    through_views = not forward_mode and check_array_aliasing(core, types, activity, reporter)
    check_result_depends_on_inputs(core, activity, wrt_names, reporter)
    return activity, through_views


def describe(t) -> str:
    if isinstance(t, T.Scalar):
        return {"int": "an int", "bool": "a bool", "float": "a float"}[t.kind]
    if isinstance(t, T.Array):
        return f"an array of {t.dtype}"
    return f"a {t}"


# ---- passes: the core code of a user function -------------------------------------------------------------------
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


# ---- passes: analysis -------------------------------------------------------------------------------------------------
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
    unit.activity, through_views = check_derivative(function, unit.types, wrt_names, reporter,
                                                    forward_mode=unit.mode in ("forward", "forward_batched"))
    if unit.compiler.derives and through_views:
        raise DifferentiabilityError([Diagnostic(
            codes.UNSUPPORTED, "this derivative of a derivative cannot be differentiated again: the code it runs saves "
            "and restores the contents of its tapes as shared arrays",
            function.origin, "differentiate one time fewer and take finite differences of that")])
    reporter.raise_if_errors()
    reporter.emit_warnings()


FUNCTION_FRONT = (Pass("lower", _lower), Pass("nested", _expand_nested), Pass("cleanup", _cleanup))
DERIVED_FRONT = (Pass("derive", _derive),)
ANALYSIS = (Pass("infer", _infer), Pass("initialize", _initialize))
CHECK = (Pass("check", _check),)
