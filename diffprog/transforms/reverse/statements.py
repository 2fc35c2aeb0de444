"""Small helpers on core statements that planning and emission of the reverse pass share."""
from __future__ import annotations

from ...ir import core as C
from ...rules import REGISTRY

P = REGISTRY.named


def temp_call(names, out, hint, prim, args, origin) -> C.Var:
    """Appends `temp = prim(*args)` to `out`, for a fresh temporary named after `hint`, and returns it."""
    name = names.temp(hint)
    out.append(C.Assign(name, C.Call(prim, tuple(args)), origin))
    return C.Var(name)


def targets(stmt) -> list:
    """The names a simple statement or a loop header assigns (not those of nested blocks)."""
    if isinstance(stmt, C.Assign):
        return [stmt.target]
    if isinstance(stmt, C.ForRange):
        return [stmt.var]
    return []


def all_targets(stmt) -> set:
    """Every name a statement assigns, nested blocks included, but arrays it only stores into."""
    names = set(targets(stmt))
    for child in C.children(stmt):
        names |= C.assigned(child)
    return names - {s.base for s, _ in C.walk([stmt]) if isinstance(s, C.Store)}


def assigned_outside(block, loop) -> set:
    """Names the statements of `block` assign, other than those inside `loop`."""
    names = set()
    for stmt in block:
        if stmt is not loop:
            names.update(targets(stmt))
            for child in C.children(stmt):
                names |= assigned_outside(child, loop)
    return names


def step_value(names, out, loop, count):
    """The loop variable's value at step `count`, start + count * step: a variable, or the `add` to assign."""
    offset = count if loop.step == C.Const(1) else temp_call(names, out, "offset", P("mul"), (count, loop.step),
                                                             loop.origin)
    return offset if loop.start == C.Const(0) else C.Call(P("add"), (loop.start, offset))
