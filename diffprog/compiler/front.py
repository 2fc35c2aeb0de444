"""The checking half of the engine: lowering and the derivative checks, shared by the decorator and the command
line checker (`diffprog check`). Nothing here imports the backend (numba)."""
from __future__ import annotations

from ..analysis.activity import analyze_activity
from ..analysis.check import check_active_uses, check_array_aliasing, check_result_depends_on_inputs
from ..errors import Diagnostic, Reporter
from ..ir import types as T
from ..normalize.cleanup import hoist_loop_invariants, remove_dead_code
from ..normalize.lower import Lowerer
from ..transforms.forward import forward_activity


def lower_to_core(parsed, reporter: Reporter):
    """(core function, name allocator) for a parsed function; problems go to `reporter`."""
    from .nested import HOST  # nested.py imports this module

    lowerer = Lowerer(reporter, HOST)
    function = lowerer.lower_function(parsed)
    return hoist_loop_invariants(remove_dead_code(function)), lowerer.names


def wrt_problems(core, wrt_names, types) -> list:
    """DP106 for every differentiated parameter whose type cannot have a derivative."""
    return [
        Diagnostic("DP106", f"cannot differentiate with respect to '{p}', which is {describe(types[p])}",
                   core.param_origins.get(p),
                   hint="pass a float (e.g. 2.0 instead of 2) or a float array, or choose other "
                        "arguments with argnums")
        for p in wrt_names if not getattr(types.get(p), "differentiable", False)
    ]


def check_derivative(core, types, wrt_names, reporter: Reporter, forward_mode=False):
    """Activity, then the checks it drives (misuse of active values, a result independent of the inputs)."""
    if forward_mode:  # follows values through array writes (tapes of an adjoint being differentiated)
        activity = forward_activity(core, set(wrt_names), types)
    else:
        activity = analyze_activity(core, set(wrt_names), types)
    check_active_uses(core, activity, reporter)
    if not forward_mode:  # tangents follow writes through views; adjoints of writes assume no aliasing
        check_array_aliasing(core, types, activity, reporter)
    check_result_depends_on_inputs(core, activity, wrt_names, reporter)
    return activity


def describe(t) -> str:
    if isinstance(t, T.Scalar):
        return {"int": "an int", "bool": "a bool", "float": "a float"}[t.kind]
    if isinstance(t, T.Array):
        return f"an array of {t.dtype}"
    return f"a {t}"

