"""The differentiability checker: turns misuse of *active* values into diagnostics.

Runs after activity analysis, so inactive uses (printing, loop counters, branch conditions) never raise.
"""
from __future__ import annotations

from collections import Counter

from ..errors import Reporter
from ..ir import core as C
from ..ir import types as T
from .activity import Activity
from .. import codes


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
        reporter.warning(codes.DERIVATIVE_CUT,
                         f"the derivative is cut here: {prim.name} has zero derivative, so nothing "
                         "flows back to its argument", stmt.origin,
                         "wrap the argument in diffprog.no_derivative(...) to state that this is intended")


def check_result_depends_on_inputs(function: C.Function, activity: Activity, wrt, reporter: Reporter) -> None:
    if wrt and not any(activity.is_active(r) for r in function.results):
        reporter.warning(codes.INDEPENDENT_RESULT, f"the result of '{function.name}' does not depend on "
                         f"{', '.join(sorted(wrt))}: the derivative is always zero", function.origin,
                         "check which argument you differentiate with respect to (argnums)")


def _reads_shape_only(call: C.Call) -> bool:
    """Reads its array argument only for its shape (adjoint buffers of generated code): it sees no element, so no
    write is missed (Traits.shape_only)."""
    return 0 in call.prim.traits.shape_only


def check_array_aliasing(function: C.Function, types: dict, activity: Activity, reporter: Reporter) -> bool:
    """A view of an array (a slice, `.T`, a second name) must not be read after a write to the array, nor be
    written through, when derivatives flow through the array: the adjoint of a write assumes nothing else sees
    that memory. Views read before the write (`out[i, :] += row` reads its row first), copies, and views taken
    after the writes are fine. Returns whether a view was reported (a generated derivative that restores its
    tapes through shared arrays cannot be differentiated again: compiler/front.py says so instead)."""
    order = list(C.walk(function.body))
    position = {id(stmt): k for k, (stmt, _) in enumerate(order)}
    loops = _enclosing_loops(function.body)
    readers = {}
    for stmt, _ in order:
        if isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and _reads_shape_only(stmt.value):
            continue
        for name in C.reads(stmt):
            readers.setdefault(name, []).append(stmt)
    views = _views(order, types, readers)
    reported = set()
    through_views = False

    def report(message, origin, fix, view=False):
        nonlocal through_views
        through_views |= view
        if (message, origin) not in reported:
            reported.add((message, origin))
            reporter.error(codes.UNSUPPORTED, message, origin, fix)

    for store, _ in order:
        if not isinstance(store, C.Store) or store.base not in activity.varied:
            continue
        if any(isinstance(types.get(i.name), T.Array) and types[i.name].dtype != "bool"
               for i in store.index if isinstance(i, C.Var)):
            report("writing through an index array cannot be differentiated: if an index repeats, numpy keeps "
                   "only one of the writes", store.origin, "write the elements one by one in a loop")
            continue
        if store.base in views:
            base = views[store.base][0]
            report(f"writing through '{store.base}', a view of '{base}', cannot be differentiated", store.origin,
                   f"write into '{base}' directly, or make '{store.base}' a copy (.copy())", view=True)
            continue
        for view, (base, definition) in views.items():
            if base == store.base and any(_reads_across(definition, store, reader, position, loops)
                                          for reader in readers.get(view, []) if reader is not store):
                report(f"'{view}' is a view of '{base}' read after a write to '{base}'; its adjoint would miss the "
                       "write", definition.origin, "take a copy (.copy()), or take the view after the writes", view=True)
    return through_views


def _views(order, types, readers) -> dict:
    """view name -> (array it shares memory with, defining statement)."""
    views = {}
    for stmt, _ in order:
        value = getattr(stmt, "value", None)
        if not isinstance(stmt, C.Assign) or not isinstance(types.get(stmt.target), T.Array):
            continue
        if isinstance(value, C.Var) and len(readers.get(value.name, [])) > 1:  # a second name still in use
            views[stmt.target] = value.name, stmt
        elif isinstance(value, C.Call) and value.prim.aliases_differentiably() \
                and isinstance(value.args[value.prim.traits.view_of], C.Var):
            # a view passing derivatives: its adjoint would miss a write to the array it shows
            views[stmt.target] = value.args[value.prim.traits.view_of].name, stmt
    return views


def _reads_across(definition, store, reader, position, loops) -> bool:
    """Does `reader` read the view after `store` wrote its array, the view having been taken before?"""
    taken, written, read = position[id(definition)], position[id(store)], position[id(reader)]
    if taken < written < read:
        return True
    # a loop that writes and reads, around a view taken outside it: later iterations read after earlier writes
    return bool((loops[id(store)] & loops[id(reader)]) - loops[id(definition)])


def _enclosing_loops(block, enclosing=frozenset()) -> dict:
    found = {}
    for stmt in block:
        found[id(stmt)] = enclosing
        inner = enclosing | {id(stmt)} if isinstance(stmt, (C.ForRange, C.While)) else enclosing
        for child in C.children(stmt):
            found.update(_enclosing_loops(child, inner))
    return found
