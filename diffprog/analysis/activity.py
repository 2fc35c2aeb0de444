"""Activity analysis: which values carry derivatives.

varied: depends on a differentiated input through differentiable operations.
useful: the result depends on it through differentiable operations.
active = varied and useful. Only active values get adjoints (and tape slots only when the backward sweep reads
them), and only active misuse is reported: printing a value, counting loops or branching on it is fine.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import core as C


@dataclass
class Activity:
    varied: set
    useful: set

    @property
    def active(self) -> set:
        return self.varied & self.useful

    def is_active(self, atom) -> bool:
        return isinstance(atom, C.Var) and atom.name in self.varied and atom.name in self.useful


def differentiable_args(call: C.Call) -> list:
    """Positions of the arguments a primitive's result depends on differentiably."""
    prim = call.prim
    if prim.adjoint == "index":
        return [0]
    if prim.partials is None:
        return []
    return [k for k in range(len(call.args)) if prim.partial(k) is not None]


def _dependencies(stmt) -> list:
    """The variables an assignment's target depends on differentiably."""
    value = stmt.value
    if isinstance(value, C.Var):
        return [value.name]
    if isinstance(value, C.Call):
        return [value.args[k].name for k in differentiable_args(value) if isinstance(value.args[k], C.Var)]
    return []


def analyze_activity(function: C.Function, wrt: set, types: dict) -> Activity:
    assigns = [s for s, _ in C.walk(function.body) if isinstance(s, C.Assign)]
    carries = {name for name, t in types.items() if getattr(t, "differentiable", False)}

    varied = set(wrt) & carries
    changed = True
    while changed:
        changed = False
        for stmt in assigns:
            if stmt.target not in varied and stmt.target in carries and any(d in varied for d in _dependencies(stmt)):
                varied.add(stmt.target)
                changed = True

    useful = set(C.atom_vars(function.results))
    changed = True
    while changed:
        changed = False
        for stmt in reversed(assigns):
            if stmt.target in useful:
                new = set(_dependencies(stmt)) - useful
                if new:
                    useful |= new
                    changed = True
    return Activity(varied, useful)
