"""Instantiating a rule's partial-derivative expression at one call site, as core statements.

Rules are written in a closed expression language (arithmetic, comparisons, conditional expressions and calls
to registered primitives over the rule's parameter names and `out`), so this is a small evaluator that emits
A-normal form and folds constants, rather than the full normalizer.
"""
from __future__ import annotations

import builtins
import math

import gast

from ..ir import core as C
from ..rules import REGISTRY

_MODULES = {"math": math}


class PartialEmitter:
    def __init__(self, names, emit, origin):
        self.names = names
        self.emit = emit
        self.origin = origin

    def partial(self, call: C.Call, k: int, out: C.Var):
        """The atom holding d out / d args[k] at this call."""
        bindings = dict(zip(call.prim.params, call.args))
        bindings["out"] = out
        return self._lower(call.prim.partial(k), bindings)

    def _lower(self, node, env):
        method = getattr(self, "_" + type(node).__name__)
        return method(node, env)

    def _Constant(self, node, env):
        return C.Const(node.value)

    def _Name(self, node, env):
        return env[node.id]

    def _BinOp(self, node, env):
        return self.apply(REGISTRY.lookup(type(node.op).__name__), self._lower(node.left, env),
                          self._lower(node.right, env))

    def _UnaryOp(self, node, env):
        return self.apply(REGISTRY.lookup(type(node.op).__name__), self._lower(node.operand, env))

    def _Compare(self, node, env):
        (op,), (right,) = node.ops, node.comparators
        return self.apply(REGISTRY.lookup(type(op).__name__), self._lower(node.left, env), self._lower(right, env))

    def _Attribute(self, node, env):
        return C.Const(getattr(_MODULES[node.value.id], node.attr))  # math.inf, math.pi

    def _BoolOp(self, node, env):
        """Rules combine comparisons only, so both sides can be evaluated eagerly."""
        prim = REGISTRY.named("or" if isinstance(node.op, gast.Or) else "and")
        result = self._lower(node.values[0], env)
        for value in node.values[1:]:
            result = self.apply(prim, result, self._lower(value, env))
        return result

    def _Call(self, node, env):
        func = node.func
        obj = getattr(_MODULES[func.value.id], func.attr) if isinstance(func, gast.Attribute) \
            else getattr(builtins, func.id)
        prim = REGISTRY.lookup(obj, len(node.args))
        return self.apply(prim, *(self._lower(a, env) for a in node.args))

    def _IfExp(self, node, env):
        cond = self._lower(node.test, env)
        result = self.names.temp("choice")
        branches = []
        for branch in (node.body, node.orelse):
            outer, block = self.emit, []
            self.emit = block.append
            block.append(C.Assign(result, self._lower(branch, env), self.origin))
            self.emit = outer
            branches.append(block)
        self.emit(C.If(cond, branches[0], branches[1], self.origin))
        return C.Var(result)

    def apply(self, prim, *args):
        """Emits prim(args), folding the cases rules produce all the time (x * 1, 0 + x, -const)."""
        folded = _fold(prim.name, args)
        if folded is not None:
            return folded
        name = self.names.temp(prim.name)
        self.emit(C.Assign(name, C.Call(prim, tuple(args)), self.origin))
        return C.Var(name)


def _fold(name, args):
    consts = [a.value for a in args if isinstance(a, C.Const)]
    if len(consts) == len(args) and name in ("neg", "add", "sub", "mul", "div") and \
            all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in consts):
        if name == "div" and consts[1] == 0:
            return None
        return C.Const({"neg": lambda a: -a, "add": lambda a, b: a + b, "sub": lambda a, b: a - b,
                        "mul": lambda a, b: a * b, "div": lambda a, b: a / b}[name](*consts))
    if name == "mul":
        a, b = args
        if a == C.Const(1.0) or a == C.Const(1):
            return b
        if b == C.Const(1.0) or b == C.Const(1):
            return a
    return None
