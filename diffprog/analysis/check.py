"""The differentiability checker: turns misuse of *active* values into diagnostics.

Runs after activity analysis, so inactive uses (printing, loop counters, branch conditions) never raise.
"""
from __future__ import annotations

from collections import Counter

from ..errors import Reporter
from ..ir import core as C
from ..ir import types as T
from .activity import Activity


def check_active_uses(function: C.Function, activity: Activity, reporter: Reporter) -> None:
    intended = _only_under_no_derivative(function)
    for stmt, _ in C.walk(function.body):
        if isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and stmt.target in activity.dependent \
                and stmt.target not in intended:
            _check_call(stmt, activity, reporter)


def _only_under_no_derivative(function: C.Function) -> set:
    """Values used only as the argument of no_derivative: `no_derivative(int(x))` states that the cut (or the
    missing rule) is intended, just like `int(no_derivative(x))`, so neither is reported."""
    wrapped, elsewhere = set(), set(C.atom_vars(function.results))
    for stmt, _ in C.walk(function.body):
        if isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and stmt.value.prim.name == "no_derivative":
            wrapped.update(C.atom_vars(stmt.value.args))
        else:
            elsewhere.update(C.reads(stmt))
    return wrapped - elsewhere


def _check_call(stmt, activity, reporter):
    prim = stmt.value.prim
    varied_args = [a for a in stmt.value.args if isinstance(a, C.Var) and a.name in activity.varied]
    if not varied_args or prim.differentiable and not prim.cut and prim.no_rule is None:
        return
    if prim.no_rule is not None:
        code, message, fix = prim.no_rule
        reporter.error(code, message, stmt.origin, fix)
    elif prim.cut and stmt.target in activity.useful:  # a mask or an index is not a cut derivative
        reporter.warning("DP201", f"the derivative is cut here: {prim.name} has zero derivative, so nothing "
                         "flows back to its argument", stmt.origin,
                         "wrap the argument in diffprog.no_derivative(...) to state that this is intended")


def check_result_depends_on_inputs(function: C.Function, activity: Activity, wrt, reporter: Reporter) -> None:
    if wrt and not any(activity.is_active(r) for r in function.results):
        reporter.warning("DP202", f"the result of '{function.name}' does not depend on "
                         f"{', '.join(sorted(wrt))}: the derivative is always zero", function.origin,
                         "check which argument you differentiate with respect to (argnums)")


# Primitives whose array result may share memory with their first argument.
_VIEWS = {"getitem", "transpose", "reshape", "ravel", "np.expand_dims"}


def check_array_aliasing(function: C.Function, types: dict, activity: Activity, reporter: Reporter) -> None:
    """Writes and views of the same active array must not interleave: the adjoint of a write assumes nothing
    else sees the written memory. A view taken after the last write (and outside the loops that write) is fine,
    as is writing into a fresh array; writing through a view, or reading a view across a write, is rejected."""
    order = list(C.walk(function.body))
    position = {id(stmt): k for k, (stmt, _) in enumerate(order)}
    loops = _enclosing_loops(function.body)
    reads = Counter(name for stmt, _ in order for name in C.reads(stmt))
    views = {}
    for stmt, _ in order:
        value = getattr(stmt, "value", None)
        if not isinstance(stmt, C.Assign) or not isinstance(types.get(stmt.target), T.Array):
            continue
        if isinstance(value, C.Var) and reads[value.name] > 1:  # a second name for an array still in use
            views[stmt.target] = value.name, stmt
        elif isinstance(value, C.Call) and value.prim.name in _VIEWS and isinstance(value.args[0], C.Var):
            views[stmt.target] = value.args[0].name, stmt
    for stmt, _ in order:
        if not isinstance(stmt, C.Store) or stmt.base not in activity.active:
            continue
        if stmt.base in views:
            reporter.error("DP101", f"writing through '{stmt.base}', a view of '{views[stmt.base][0]}', cannot be "
                           "differentiated", stmt.origin,
                           f"write into '{views[stmt.base][0]}' directly, or make '{stmt.base}' a copy (.copy())")
            continue
        for view, (base, definition) in views.items():
            if base == stmt.base and (position[id(definition)] < position[id(stmt)]
                                      or loops[id(definition)] & loops[id(stmt)]):
                reporter.error("DP101", f"'{view}' is a view of '{base}' taken before this write to '{base}'; "
                               "its adjoint would miss the write", definition.origin,
                               f"take a copy instead ({view} = ... .copy()), or take the view after the writes")


def _enclosing_loops(block, enclosing=frozenset()) -> dict:
    found = {}
    for stmt in block:
        found[id(stmt)] = enclosing
        inner = enclosing | {id(stmt)} if isinstance(stmt, (C.ForRange, C.While)) else enclosing
        for child in C.children(stmt):
            found.update(_enclosing_loops(child, inner))
    return found
