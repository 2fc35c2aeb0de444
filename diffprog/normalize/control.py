"""Syntactic facts about control flow that lowering needs before it emits anything."""
from __future__ import annotations

import gast

_LOOPS = (gast.For, gast.While)


def exits(stmt) -> set:
    """The jumps ('break', 'continue', 'return') that can leave `stmt` to the enclosing block."""
    if isinstance(stmt, gast.Break):
        return {"break"}
    if isinstance(stmt, gast.Continue):
        return {"continue"}
    if isinstance(stmt, gast.Return):
        return {"return"}
    if isinstance(stmt, gast.If):
        return block_exits(stmt.body) | block_exits(stmt.orelse)
    if isinstance(stmt, _LOOPS):
        return block_exits(stmt.body) & {"return"}
    if isinstance(stmt, gast.With):
        return block_exits(stmt.body)
    return set()


def block_exits(block) -> set:
    found = set()
    for stmt in block:
        found |= exits(stmt)
    return found


def always_returns(block) -> bool:
    """True when every path through `block` ends in a return (conservatively)."""
    for stmt in block:
        if isinstance(stmt, gast.Return):
            return True
        if isinstance(stmt, gast.If) and always_returns(stmt.body) and always_returns(stmt.orelse):
            return True
        if (isinstance(stmt, gast.While) and isinstance(stmt.test, gast.Constant) and stmt.test.value is True
                and "break" not in block_exits(stmt.body)):
            return True
    return False


def has_return(block) -> bool:
    return any(isinstance(n, gast.Return) and n.value is not None
               for stmt in block for n in _walk_same_function(stmt))


def _walk_same_function(node):
    yield node
    for child in gast.iter_child_nodes(node):
        if not isinstance(child, (gast.FunctionDef, gast.Lambda)):
            yield from _walk_same_function(child)


def local_names(fdef) -> set:
    """Names Python treats as local to `fdef`: its parameters and everything it assigns."""
    return {a.id for a in fdef.args.args + fdef.args.posonlyargs} | assigned_names(fdef)


def assigned_names(fdef) -> set:
    """Names `fdef`'s body assigns (parameters only if reassigned)."""
    names = set()
    for stmt in fdef.body:
        for node in _walk_same_function(stmt):
            if isinstance(node, gast.Name) and isinstance(node.ctx, gast.Store):
                names.add(node.id)
            elif isinstance(node, gast.FunctionDef) and node is not fdef:
                names.add(node.name)
    return names
