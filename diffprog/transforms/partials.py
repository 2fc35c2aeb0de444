"""Instantiating a rule's derivative expression at one call site, as core statements.

Rule templates are Python expressions over the primitive's parameter names, `out` (its result), `g` (the result's
adjoint, for vector-Jacobian products) and its static options (`axis`). They are lowered by the same normalizer as
user code, with those names bound to the call site's atoms, so templates may use anything user code may
(conditional expressions, numpy calls, indexing, `.T`) and rules compose with every transform.
"""
from __future__ import annotations

import math
from collections import ChainMap

import gast
import numpy as np

from ..errors import Reporter
from ..frontend.source import ParsedFunction
from ..ir import core as C
from ..normalize.lower import NO_TRANSFORMS, Lowerer
from ..rules.lane_rules import lanes
from ..rules.registry import REGISTRY
from ..rules.runtime_calls import rt

_RULES = ParsedFunction(
    fn=None,
    node=gast.FunctionDef(name="rule", args=None, body=[], decorator_list=[], returns=None, type_comment=None,
                          type_params=[], lineno=1, col_offset=0),
    file="<derivative rules>",
    line_offset=0,
    col_offset=0,
    # What rule templates may call: math, np, rt, lanes (batched forward mode), then the rule set's template
    # namespace (user rule functions: rules/user.py), read live, never written here.
    globals=ChainMap({"math": math, "np": np, "rt": rt, "lanes": lanes}, REGISTRY.template_namespace),
)


_PARSED: dict = {}  # lane rule templates (text) -> gast


class PartialEmitter:
    """Emits derivative code for one statement: every emitted statement carries that statement's origin."""

    def __init__(self, names, emit, origin):
        self.names = names
        self.emit = emit
        self.origin = origin
        self.applied: dict = {}  # (primitive, atoms) -> the variable already holding it

    def partial(self, call: C.Call, k: int, out: C.Var, arrays: bool = False):
        """The atom holding d out / d args[k] at this call (elementwise primitives)."""
        return self._instantiate(call.prim.partial(k, arrays), call, out)

    def vjp(self, call: C.Call, k: int, out: C.Var, g, ranks: tuple):
        """The atom holding argument k's adjoint contribution (non-elementwise primitives)."""
        return self._instantiate(call.prim.vjp(k, ranks), call, out, g=g)

    def jvp(self, call: C.Call, k: int, out: C.Var, t, ranks: tuple):
        """The atom holding argument k's tangent contribution (non-elementwise primitives)."""
        return self._instantiate(call.prim.jvp(k, ranks), call, out, t=t)

    def lane_jvp(self, call: C.Call, k: int, out: C.Var, t, ranks: tuple):
        """Batched forward mode: the atom holding argument k's tangent contribution, lane axis last
        (rules/lane_rules.py), or None when the result does not depend on argument k. KeyError: no rule."""
        text = call.prim.lane_jvp(k, ranks)
        if text is None:
            return None
        if text not in _PARSED:
            _PARSED[text] = gast.parse(text, mode="eval").body
        axis = call.prim.options.get("axis")
        if axis is None and "axis" in call.prim.params:  # np.expand_dims(x, axis): a constant argument
            atom = call.args[call.prim.params.index("axis")]
            if not isinstance(atom, C.Const):
                raise KeyError(f"{call.prim.name} with an axis computed at run time")
            axis = atom.value
        extra = {"t": t} if axis is None else {"t": t, "laxis": C.Const(axis if axis >= 0 else axis - 1)}
        return self._instantiate(_PARSED[text], call, out, **extra)

    def _instantiate(self, template, call, out, **extra):
        params = call.prim.params or tuple(f"a{k}" for k in range(len(call.args)))  # variadic: a0, a1, ...
        bindings = {name: _binding(atom) for name, atom in zip(params, call.args)}
        bindings.update({name: C.Const(value) for name, value in call.prim.options.items()})
        bindings["out"] = out.name
        bindings.update({name: _binding(atom) for name, atom in extra.items()})
        return self.lower(template, bindings)

    def lower(self, template, bindings):
        reporter = Reporter()
        block, value = Lowerer(reporter, NO_TRANSFORMS, self.names).lower_expression(template, _RULES, bindings)
        if reporter.diagnostics:  # a malformed rule is a bug in diffprog, not in the user's code
            raise AssertionError("derivative rule failed to lower: " + "; ".join(d.message for d in
                                                                                 reporter.diagnostics))
        for stmt, _ in C.walk(block):
            stmt.origin = self.origin
        block, value = _without_repeats(block, value)
        for stmt in block:
            self.emit(stmt)
        return value

    def apply(self, prim, *args):
        """Emits prim(args), folding the cases rules produce all the time (x * 1, -const), and reusing what this
        statement's derivative code computed already (both contributions of x * x are x * g)."""
        folded = _fold(prim.name, args)
        if folded is not None:
            return folded
        key = (prim, tuple(args))
        if key not in self.applied:
            name = self.names.temp(prim.name)
            self.emit(C.Assign(name, C.Call(prim, tuple(args)), self.origin))
            self.applied[key] = C.Var(name)
        return self.applied[key]


def _without_repeats(block, value):
    """A rule's lowered statements with each repeated computation done once (the tie mask of np.max's vjp
    appears twice in its text): rules are expressions, so equal calls of equal operands are equal values."""
    if any(not isinstance(stmt, C.Assign) or not isinstance(stmt.value, C.Call) for stmt in block):
        return block, value
    first, renamed, kept = {}, {}, []
    for stmt in block:
        call = C.rename_call(stmt.value, renamed)
        key = (call.prim.name, repr(call.args))
        if key in first:
            renamed[stmt.target] = first[key]
            continue
        first[key] = stmt.target
        kept.append(C.Assign(stmt.target, call, stmt.origin))
    return kept, C.rename_atom(value, renamed)


def _binding(atom):
    return atom.name if isinstance(atom, C.Var) else atom


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
