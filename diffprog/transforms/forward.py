"""Forward (tangent) mode: core function -> core function computing the values and their tangents.

For each active assignment `v = prim(args)` the generated code runs the primal statement and right after it
`v_dot = sum_k partial_k * args[k]_dot`, with the partials instantiated from the same rules reverse mode uses
(`PartialEmitter`). Control flow is copied as is: the tangent of a branch is the branch of the tangents, the
tangent of a loop is the loop of the tangents, so forward mode needs no tapes and no trip counts.

Forward mode also runs on code reverse mode generated (forward-over-reverse: Hessian-vector products). That
code writes into local arrays: tapes (`tape_x[n] = x`, `x = tape_x[n]`) and adjoints of array arguments
(`x_adj[i] = ...`). A write `base[i] = value` gets the twin write `base_dot[i] = value_dot`, and the array
primitives that create or grow those arrays (`tape_empty_*`, `tape_reserve`, `zeros_like`) create or grow the
tangent array alongside. Activity therefore has to follow data through array writes, which the reverse-mode
analysis does not need to; `analysis.activity.forward_activity` adds those edges.
"""
from __future__ import annotations

from ..analysis.activity import Activity, differentiable_args
from ..errors import DifferentiabilityError, Diagnostic
from ..ir import core as C
from ..ir import types as T
from ..rules import REGISTRY
from .partials import PartialEmitter
from .. import codes

_P = REGISTRY.named


# ---- the transform ---------------------------------------------------------------------------------------------
class ForwardTransform:
    def __init__(self, function: C.Function, types: dict, activity: Activity, wrt: list, names):
        self.fn = function
        self.types = types
        self.activity = activity
        self.active = activity.active
        self.wrt = list(wrt)
        self.names = names
        self.tangent_names: dict = {}

    def run(self) -> C.Function:
        tangent_params = [self.dot(p) for p in self.wrt]
        body = self._initial_tangents() + self._block(self.fn.body)
        tangents = [self._result_tangent(atom, body) for atom in self.fn.results]
        return C.Function(self.fn.name + "_forward", list(self.fn.params) + tangent_params, body,
                          tuple(self.fn.results) + tuple(tangents), True, self.fn.origin,
                          dict(self.fn.param_origins))

    def dot(self, name: str) -> str:
        """The tangent variable of `name` (`x` -> `x_dot`)."""
        if name not in self.tangent_names:
            self.tangent_names[name] = self.names.claim(name + "_dot")
        return self.tangent_names[name]

    def _initial_tangents(self) -> list:
        """Active parameters that are not differentiated (reassigned from active values later) start at zero."""
        return [self._zero(p, self.fn.origin) for p in self.fn.params if p in self.active and p not in self.wrt]

    def _result_tangent(self, atom, body) -> C.Atom:
        if self.activity.is_active(atom):
            return C.Var(self.dot(atom.name))
        if isinstance(atom, C.Var) and isinstance(self.types.get(atom.name), T.Array):
            name = self.names.temp("zero_dot")
            body.append(C.Assign(name, C.Call(_P("zeros_like"), (atom,)), self.fn.origin))
            return C.Var(name)
        return C.Const(0.0)

    # ---- statements --------------------------------------------------------------------------------------------
    def _block(self, block) -> list:
        out = []
        for stmt in block:
            out += self._statement(stmt)
        return out

    def _statement(self, stmt) -> list:
        if isinstance(stmt, C.Assign):
            return [stmt] + (self._tangent_of_assign(stmt) if stmt.target in self.active else [])
        if isinstance(stmt, C.Store):
            return [stmt] + (self._tangent_of_store(stmt) if stmt.base in self.active else [])
        if isinstance(stmt, C.Effect):
            return [stmt]
        if isinstance(stmt, C.If):
            return [C.If(stmt.cond, self._block(stmt.body), self._block(stmt.orelse), stmt.origin)]
        if isinstance(stmt, C.ForRange):
            return [C.replace(stmt, body=self._block(stmt.body))]  # a checkpoint mark carries over to reverse
        if isinstance(stmt, C.While):
            return [C.While(stmt.cond, self._block(stmt.body), stmt.origin)]
        raise TypeError(stmt)

    def _tangent_atom(self, atom) -> C.Atom | None:
        """The tangent of an operand, or None when it is zero (constants, inactive values)."""
        return C.Var(self.dot(atom.name)) if self.activity.is_active(atom) else None

    def _tangent_of_store(self, stmt) -> list:
        tangent = self._tangent_atom(stmt.value)
        return [C.Store(self.dot(stmt.base), stmt.index, tangent if tangent is not None else C.Const(0.0),
                        stmt.origin)]

    def _tangent_of_assign(self, stmt) -> list:
        """Statements setting `target_dot` after `target = value` ran (partials may read `out`, the target)."""
        value, origin, target = stmt.value, stmt.origin, self.dot(stmt.target)
        if isinstance(value, C.Var):
            tangent = self._tangent_atom(value)
            return [C.Assign(target, tangent, origin)] if tangent is not None else [self._zero(stmt.target, origin)]
        if not isinstance(value, C.Call):
            return [self._zero(stmt.target, origin)]
        prim, args = value.prim, value.args
        if prim.traits.new_buffer:  # a new tape or adjoint buffer: its tangent is a new one alike
            return [C.Assign(target, value, origin)]
        if prim.traits.regrows:  # a tape grown: grow its tangent tape alongside
            grown = C.Call(prim, (self._require(args[0], stmt), *args[1:]))
            return [C.Assign(target, grown, origin)]
        if prim.adjoint == "index":  # v = a[i]  ->  v_dot = a_dot[i]
            tangent = self._tangent_atom(args[0])
            if tangent is None:
                return [self._zero(stmt.target, origin)]
            return [C.Assign(target, C.Call(prim, (tangent, *args[1:])), origin)]
        return self._chain_rule(stmt, target)

    def _chain_rule(self, stmt, target) -> list:
        """`target_dot = sum_k partial_k * arg_k_dot` over the active arguments; the last operation of the sum
        assigns `target_dot` directly."""
        out = []
        emitter = PartialEmitter(self.names, out.append, stmt.origin)
        terms = []  # (partial or None for 1, tangent, negated)
        for k in differentiable_args(stmt.value):
            tangent = self._tangent_atom(stmt.value.args[k])
            if tangent is None:
                continue
            if stmt.value.prim.jvps is not None:  # a non-elementwise rule gives the whole contribution
                ranks = tuple(self._rank(a) for a in stmt.value.args)
                terms.append((None, emitter.jvp(stmt.value, k, C.Var(stmt.target), tangent, ranks), False))
                continue
            self._check_rule(stmt, k)
            partial = emitter.partial(stmt.value, k, C.Var(stmt.target), arrays=self._has_arrays(stmt.value))
            if partial in (C.Const(0.0), C.Const(0)):
                continue
            negated = partial in (C.Const(-1.0), C.Const(-1))
            terms.append((None if negated or partial in (C.Const(1.0), C.Const(1)) else partial, tangent, negated))
        if not terms:
            return out + [self._zero(stmt.target, stmt.origin)]
        if self._is_array(stmt.target) and not any(self._is_array(t.name) or self._is_array(getattr(p, "name", ""))
                                                   for p, t, _ in terms):
            # only scalar operands vary (`y = a * x`, a an array): broadcasting must still give y_dot y's shape
            zero = emitter.apply(_P("zeros_like"), C.Var(stmt.target))
            terms.insert(0, (None, zero, False))
        return out + [C.Assign(target, self._sum(emitter, terms), stmt.origin)]

    def _is_array(self, name) -> bool:
        return isinstance(self.types.get(name), T.Array)

    def _rank(self, atom) -> int:
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        return t.ndim if isinstance(t, T.Array) else 0

    def _has_arrays(self, call) -> bool:
        return any(isinstance(a, C.Var) and self._is_array(a.name) for a in call.args)

    def _times(self, partial):
        """The primitive multiplying a partial and a tangent."""
        return _P("mul")

    def _sum(self, emitter, terms) -> C.Expr:
        """The expression of the sum of the terms, emitting every operation but the last."""
        def product(term, last):
            partial, tangent, _ = term
            if partial is None:
                return tangent
            times = self._times(partial)
            return C.Call(times, (partial, tangent)) if last else emitter.apply(times, partial, tangent)

        if len(terms) == 1:
            value = product(terms[0], last=True)
            return C.Call(_P("neg"), (value,)) if terms[0][2] else value
        positive = [t for t in terms if not t[2]]
        negative = [t for t in terms if t[2]]
        if not positive:  # -a - b - ...: negate the first, subtract the rest
            first = emitter.apply(_P("neg"), product(negative[0], last=False))
            ordered = negative[1:]
        else:
            first, ordered = product(positive[0], last=False), positive[1:] + negative
        total = first
        for n, term in enumerate(ordered):
            last = n == len(ordered) - 1
            prim = _P("sub" if term[2] else "add")
            args = (total, product(term, last=False))
            total = C.Call(prim, args) if last else emitter.apply(prim, *args)
        return total

    def _check_rule(self, stmt, k):
        """Forward mode instantiates elementwise partials (broadcasting needs nothing more in forward mode);
        non-elementwise array primitives (reductions, linear algebra) have adjoint rules only, no tangent rule."""
        prim = stmt.value.prim
        if prim.partial(k) is None:
            raise DifferentiabilityError([Diagnostic(
                codes.NO_RULE, f"forward mode has no tangent rule for {prim.name} on these arguments yet",
                stmt.origin, "use reverse mode (grad, vjp, jacobian(mode='reverse')) for this function")])

    def _require(self, atom, stmt) -> C.Var:
        tangent = self._tangent_atom(atom)
        if tangent is None:  # activity makes the grown array active whenever the result is: a compiler bug
            raise AssertionError(f"forward mode: {atom} has no tangent at {stmt}")
        return tangent

    def _zero(self, name, origin) -> C.Assign:
        if isinstance(self.types.get(name), T.Array):
            return C.Assign(self.dot(name), C.Call(_P("zeros_like"), (C.Var(name),)), origin)
        return C.Assign(self.dot(name), C.Const(0.0), origin)


def forward(function, types, activity, wrt, names) -> C.Function:
    return ForwardTransform(function, types, activity, wrt, names).run()
