"""Activity analysis: which values carry derivatives.

varied: depends on a differentiated input through differentiable operations.
useful: the result depends on it through differentiable operations.
active = varied and useful. Only active values get adjoints (and tape slots only when the backward sweep reads
them), and only active misuse is reported: printing a value, counting loops or branching on it is fine.

Forward mode runs on generated code too (forward over reverse), which writes into local arrays (tapes, adjoints):
`forward_activity` follows data through those writes as well.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..ir import core as C
from ..ir import types as T
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


# ---- forward mode: activity through array writes -----------------------------------------------------------------------------
def _edges(function: C.Function, types: dict, differentiable_only: bool) -> list:
    """(target, sources) pairs: the value of `target` depends on each source. Array writes and array aliases
    (`b = a` shares the buffer, so a write through either changes both) add edges the plain analysis lacks."""
    edges = []
    for stmt, _ in C.walk(function.body):
        if isinstance(stmt, C.Assign):
            edges.append((stmt.target, _sources(stmt, differentiable_only)))
            if _is_view(stmt, types):
                edges.append((_viewed(stmt), [stmt.target]))
        elif isinstance(stmt, C.Store):
            sources = C.atom_vars([stmt.value])
            if not differentiable_only:
                sources += C.atom_vars(stmt.index)
            edges.append((stmt.base, sources))
    return edges


def _is_view(stmt: C.Assign, types) -> bool:
    """`b = a` and `b = a[i:j]` (arrays) share a's buffer: a write through b changes a."""
    if not isinstance(types.get(stmt.target), T.Array):
        return False
    value = stmt.value
    return isinstance(value, C.Var) or (isinstance(value, C.Call) and value.prim.adjoint == "index"
                                        and isinstance(value.args[0], C.Var))


def _viewed(stmt: C.Assign) -> str:
    return stmt.value.name if isinstance(stmt.value, C.Var) else stmt.value.args[0].name


def _sources(stmt: C.Assign, differentiable_only: bool) -> list:
    value = stmt.value
    if isinstance(value, C.Var):
        return [value.name]
    if not isinstance(value, C.Call):
        return []
    if differentiable_only:
        if value.prim.traits.new_buffer:  # no value flows in
            return []
        if value.prim.traits.regrows:  # argument 0's elements, in a possibly larger buffer
            return C.atom_vars(value.args[:1])
        return [value.args[k].name for k in differentiable_args(value) if isinstance(value.args[k], C.Var)]
    return C.atom_vars(value.args)


def forward_activity(function: C.Function, wrt, types: dict) -> Activity:
    """Activity (varied and useful) of every variable, following data through array writes as well."""
    carries = {name for name, t in types.items() if getattr(t, "differentiable", False)}
    differentiable = _edges(function, types, True)
    varied = _closure({name for name in wrt if name in carries},
                      [(src, [dst]) for dst, sources in differentiable for src in sources], carries)
    results = set(C.atom_vars(function.results))
    useful = _closure(results, differentiable, None)
    dependent = _closure(results, _edges(function, types, False), None)
    return Activity(varied, useful, dependent)


def _closure(start: set, edges: list, allowed) -> set:
    """Every name reachable from `start` along edges (node, successors), restricted to `allowed` if given."""
    successors: dict = {}
    for node, targets in edges:
        successors.setdefault(node, []).extend(targets)
    reached, work = set(start), list(start)
    while work:
        for nxt in successors.get(work.pop(), ()):
            if nxt not in reached and (allowed is None or nxt in allowed):
                reached.add(nxt)
                work.append(nxt)
    return reached
