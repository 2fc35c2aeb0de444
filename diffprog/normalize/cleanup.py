"""Dead-code removal on core code: lowering emits flags and copies eagerly and lets this pass drop the unused."""
from __future__ import annotations

from ..ir import core as C


def remove_dead_code(function: C.Function) -> C.Function:
    keep = set(function.params) | set(C.atom_vars(function.results))
    while True:
        before = _count(function.body)
        function.body = _prune(function.body, keep | _reads(function.body))
        if _count(function.body) == before:
            return function


def _reads(block) -> set:
    names = set()
    for stmt, _ in C.walk(block):
        names.update(C.reads(stmt))
    return names


def _prune(block, used) -> list:
    kept = []
    for stmt in block:
        if isinstance(stmt, C.Assign) and stmt.target not in used:
            continue
        if isinstance(stmt, C.If):
            stmt.body, stmt.orelse = _prune(stmt.body, used), _prune(stmt.orelse, used)
            if not stmt.body and not stmt.orelse:
                continue
        elif isinstance(stmt, (C.ForRange, C.While)):
            stmt.body = _prune(stmt.body, used)
        kept.append(stmt)
    return kept


def _count(block) -> int:
    return sum(1 for _ in C.walk(block))


def split_self_updates(function: C.Function, names) -> C.Function:
    """Rewrites `v = f(v, ...)` as `t = f(v, ...); v = t`, restoring the core invariant that an assignment never
    reads its own target. Generated adjoints accumulate in place (`x_adj = x_adj + d`); differentiating them
    again needs the invariant."""
    function.body = _split_block(function.body, names)
    return function


def _split_block(block, names) -> list:
    out = []
    for stmt in block:
        if isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and stmt.target in C.reads(stmt):
            temp = names.temp(stmt.target)
            out.append(C.Assign(temp, stmt.value, stmt.origin))
            out.append(C.Assign(stmt.target, C.Var(temp), stmt.origin))
            continue
        for child in C.children(stmt):
            child[:] = _split_block(child, names)
        out.append(stmt)
    return out
