"""Activity analysis: which values carry derivatives.

varied: depends on a differentiated input through differentiable operations.
useful: the result depends on it through differentiable operations.
active = varied and useful. Only active values get adjoints (and tape slots only when the backward sweep reads
them), and only active misuse is reported: printing a value, counting loops or branching on it is fine.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import core as C
from ..rules.registry import Primitive

_STORE = Primitive("store", "", ("array", "value"), ("1.0", "1.0"))  # activity only: never printed


@dataclass
class Activity:
    varied: set
    useful: set
    dependent: set  # the result depends on it through any data flow, differentiable or not (for the checker)

    @property
    def active(self) -> set:
        return self.varied & self.useful

    def is_active(self, atom) -> bool:
        return isinstance(atom, C.Var) and atom.name in self.varied and atom.name in self.useful


def differentiable_args(call: C.Call) -> list:
    """Positions of the arguments a primitive's result depends on differentiably."""
    return [k for k in range(len(call.args)) if call.prim.depends_on(k)]


def _dependencies(stmt, differentiable_only=True) -> list:
    """The variables an assignment's target depends on (differentiably, or at all)."""
    value = stmt.value
    if isinstance(value, C.Var):
        return [value.name]
    if isinstance(value, C.Call):
        positions = differentiable_args(value) if differentiable_only else range(len(value.args))
        return [value.args[k].name for k in positions if isinstance(value.args[k], C.Var)]
    return []


def _backward_closure(assigns, results, differentiable_only) -> set:
    reached = set(results)
    changed = True
    while changed:
        changed = False
        for stmt in reversed(assigns):
            if stmt.target in reached:
                new = set(_dependencies(stmt, differentiable_only)) - reached
                if new:
                    reached |= new
                    changed = True
    return reached


def _as_assignment(stmt):
    """A write into an array makes the array depend on the written value (and on itself)."""
    if isinstance(stmt, C.Store):
        return C.Assign(stmt.base, C.Call(_STORE, (C.Var(stmt.base), stmt.value)), stmt.origin)
    return stmt


def analyze_activity(function: C.Function, wrt: set, types: dict) -> Activity:
    assigns = [_as_assignment(s) for s, _ in C.walk(function.body) if isinstance(s, (C.Assign, C.Store))]
    carries = {name for name, t in types.items() if getattr(t, "differentiable", False)}

    varied = set(wrt) & carries
    changed = True
    while changed:
        changed = False
        for stmt in assigns:
            if stmt.target not in varied and stmt.target in carries and any(d in varied for d in _dependencies(stmt)):
                varied.add(stmt.target)
                changed = True

    results = C.atom_vars(function.results)
    return Activity(varied, _backward_closure(assigns, results, True), _backward_closure(assigns, results, False))
