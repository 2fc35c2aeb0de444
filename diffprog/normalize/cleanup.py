"""Dead-code removal on core code: lowering emits flags and copies eagerly and lets this pass drop the unused."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ..ir import core as C
from ..rules.structural import initial_value


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


def hoist_loop_invariants(function: C.Function) -> C.Function:
    """Moves computations that do not change inside a loop to just before it (loop-invariant code motion): the
    primal does them once, and the adjoint neither repeats nor tapes them per iteration."""
    counts = Counter(s.target for s, _ in C.walk(function.body) if isinstance(s, C.Assign))
    counts.update(s.var for s, _ in C.walk(function.body) if isinstance(s, C.ForRange))
    counts.update(function.params)
    function.body = _hoist_block(function.body, counts)
    return function


def _hoist_block(block, counts) -> list:
    out = []
    for stmt in block:
        for child in C.children(stmt):
            child[:] = _hoist_block(child, counts)
        if isinstance(stmt, (C.ForRange, C.While)):
            out.extend(_invariants(stmt, counts))
        out.append(stmt)
    return out


def _invariants(loop, counts) -> list:
    """Removes and returns the loop body's leading-level invariant assignments, in order."""
    changing = C.assigned(loop.body) | ({loop.var} if isinstance(loop, C.ForRange) else set())
    hoisted, kept = [], []
    for stmt in loop.body:
        if (isinstance(stmt, C.Assign) and counts[stmt.target] == 1 and _hoistable(stmt.value)
                and not set(_operands(stmt.value)) & (changing - {h.target for h in hoisted})):
            hoisted.append(stmt)
        else:
            kept.append(stmt)
    loop.body[:] = kept
    return hoisted


def _hoistable(value) -> bool:
    """Pure operations that cannot raise (Traits.hoistable), so computing them once before a loop (even one that
    runs zero times) is safe. Division, indexing and powers can raise in compiled code: they stay where they are."""
    return isinstance(value, C.Var) or isinstance(value, C.Call) and value.prim.traits.hoistable


def _operands(value) -> list:
    return [value.name] if isinstance(value, C.Var) else C.atom_vars(value.args)


def initialize_unassigned(function: C.Function, types: dict) -> C.Function:
    """The function with a first value for each number or array a path may read before assigning it (a return
    inside a loop that may not run): numba types every variable on every path, and rejects one left undefined
    on a path it sees as possible even where that path never runs."""
    unassigned, assigned = C.exposed(function.body, function.params)
    unassigned |= set(C.atom_vars(function.results)) - assigned
    inits = []
    for name in sorted(unassigned):
        value = initial_value(types.get(name))
        if value is not None:
            inits.append(C.Assign(name, value, function.origin))
    return replace(function, body=inits + function.body) if inits else function
