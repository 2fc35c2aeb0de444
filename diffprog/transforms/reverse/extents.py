"""Arrays the backward sweep reads only for their shape (to restart an adjoint at zero, to undo broadcasting)
keep their extents in int variables instead of their elements."""
from __future__ import annotations

from ...ir import core as C
from .statements import P

MAX_EXTENTS = 4  # ranks with extents primitives (rules/structural.py)


def _reads_shape(value) -> bool:
    """A call reading one argument only for its shape, with a form computing the same from saved extents."""
    return isinstance(value, C.Call) and bool(value.prim.traits.shape_only) and \
        value.prim.traits.extents_form is not None


def value_and_shape_reads(stmt) -> tuple:
    """(names stmt reads the value of, names it reads only the shape of)."""
    value = getattr(stmt, "value", None)
    if isinstance(stmt, C.Assign) and _reads_shape(value):
        traits = value.prim.traits
        position = traits.shape_only[0]
        axis = value.args[1] if traits.extents_form == "extent" else C.Const(0)
        if isinstance(axis, C.Const) and isinstance(axis.value, int) and axis.value >= 0:
            others = value.args[:position] + value.args[position + 1:]
            return C.atom_vars(others), C.atom_vars(value.args[position:position + 1])
    return C.reads(stmt), []


def with_extents(call, extents):
    """`call` (reading one argument only for its shape) reading the shape from the variables `extents`."""
    atoms = tuple(C.Var(e) for e in extents)
    traits = call.prim.traits
    if traits.extents_form == "extent":  # x.shape[k] itself
        return atoms[call.args[1].value]
    position = traits.shape_only[0]
    others = call.args[:position] + call.args[position + 1:]
    return C.Call(P(f"{traits.extents_form}{len(atoms)}"), others + atoms)


def read_extents(stmt, extents):
    """Rewrites stmt's read of an array's shape into a read of its saved extents."""
    for name in value_and_shape_reads(stmt)[1]:
        if name in extents:
            stmt.value = with_extents(stmt.value, extents[name])


def keeping_extents(stmt, extents) -> list:
    """The statements assigning an array's extents to their variables right after `stmt` assigns the array."""
    if not (isinstance(stmt, C.Assign) and stmt.target in extents):
        return []
    return [C.Assign(e, C.Call(P("shape"), (C.Var(stmt.target), C.Const(k))), stmt.origin)
            for k, e in enumerate(extents[stmt.target])]
