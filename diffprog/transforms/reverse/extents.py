"""Arrays the backward sweep reads only for their shape (to restart an adjoint at zero, to undo broadcasting)
keep their extents in int variables instead of their elements."""
from __future__ import annotations

from ...ir import core as C
from .statements import P

# Primitives that read one argument only for its shape (primitive -> position).
SHAPE_ARGUMENT = {"np.zeros_shape": 0, "unbroadcast": 1, "shape": 0}
MAX_EXTENTS = 4  # ranks with extents primitives (rules/structural.py)


def value_and_shape_reads(stmt) -> tuple:
    """(names stmt reads the value of, names it reads only the shape of)."""
    value = getattr(stmt, "value", None)
    if isinstance(stmt, C.Assign) and isinstance(value, C.Call) and value.prim.name in SHAPE_ARGUMENT:
        position = SHAPE_ARGUMENT[value.prim.name]
        axis = value.args[1] if value.prim.name == "shape" else C.Const(0)
        if isinstance(axis, C.Const) and isinstance(axis.value, int) and axis.value >= 0:
            others = value.args[:position] + value.args[position + 1:]
            return C.atom_vars(others), C.atom_vars(value.args[position:position + 1])
    return C.reads(stmt), []


def with_extents(call, extents):
    """`call` (one of SHAPE_ARGUMENT) reading the shape from the variables `extents`."""
    atoms = tuple(C.Var(e) for e in extents)
    if call.prim.name == "shape":
        return atoms[call.args[1].value]
    if call.prim.name == "unbroadcast":
        return C.Call(P(f"unbroadcast_extents{len(atoms)}"), (call.args[0],) + atoms)
    return C.Call(P(f"zeros_extents{len(atoms)}"), atoms)


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
