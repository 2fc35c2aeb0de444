"""Batched forward mode: one pass of the code pushes `lanes` tangent directions at once (dp.jacobian).

Every tangent carries a trailing lane axis: the tangent of a number is a vector of `lanes` values, the tangent of
an array of shape S an array of shape (*S, lanes). The generated function takes, for each differentiated
argument, such a tangent (the seeds: columns of the identity for Jacobian columns) and returns the tangents of
the results the same way, so a Jacobian with k columns costs one pass over the code rather than k.

Tangents of numbers are computed lane by lane. Each run of consecutive tangent statements on numbers becomes one
loop over the lanes, placed after the primal statements it comes from:

    s = mul_2 + sin_8
    cond_9 = s > 0.3
    for lane in range(lanes):
        getitem_5_dot = x_dot[mod_4, lane]
        mul_7_dot = add_6 * getitem_5_dot
        sin_8_dot = cos_18 * mul_7_dot
        s_dot[lane] = 0.5 * s_dot[lane] + sin_8_dot

Inside the loop a tangent used only there (most temporaries) is a plain float; one that lives longer (`s_dot`,
carried by the user's loop) is a vector allocated once, read and written at `[lane]`. A run is cut where a
primal statement overwrites a value it reads, at control flow, and before array statements, so moving it after
the primal statements changes nothing. With the lanes last, the lanes of an element are adjacent in memory.

Tangents of arrays use whole-array operations: tangents broadcast against each other from the right as their
primals do, array partials get a trailing axis (`lanes_scale(partial, t)`), and the other primitives use the
lane rules declared with each primitive (`lane_jvps`, `lane_joins`; rules/lane_rules.py explains them), and
the primitives making tapes and buffers the one their `lane_alike` names. Indexing a tangent with the primal's
index selects the same elements in every
lane. Control flow is copied and array writes get twin writes, as in forward mode (forward.py), whose activity
analysis this shares. A primitive without a lane rule is reported (DP102).
"""
from __future__ import annotations

import itertools

from ..analysis.activity import differentiable_args
from ..analysis.inference import atom_type, expr_type
from ..errors import DifferentiabilityError, Diagnostic
from ..ir import core as C
from ..ir import types as T
from ..rules import REGISTRY
from .forward import ForwardTransform
from .partials import PartialEmitter
from .. import codes

_P = REGISTRY.named
_OUTSIDE = None  # a definition or use of a tangent outside every lane loop


class _Block:
    """The generated statements of one block, with the pending run of lane statements."""

    def __init__(self, transform: "BatchedForwardTransform"):
        self.t = transform
        self.out: list = []
        self.pending: list = []
        self.reads: set = set()  # what the pending lane statements read
        self.group = None

    def primal(self, stmt):
        """A primal statement (the user's, or a partial derivative): runs before the pending lane statements
        unless it overwrites a value they read."""
        if self.pending and C.assigned([stmt]) & self.reads:
            self.flush()
        self.out.append(stmt)

    def lane(self, stmt):
        """A tangent statement on numbers, run once per lane."""
        if self.group is None:
            self.group = next(self.t.groups)
        self.t.record_lane(stmt, self.group)
        self.pending.append(stmt)
        self.reads.update(C.reads(stmt))

    def array(self, stmt):
        """A tangent statement on whole tangents (lane axis included)."""
        self.flush()
        self.t.record_outside(stmt)
        self.out.append(stmt)

    def compound(self, stmt):
        self.flush()
        self.out.append(stmt)

    def flush(self):
        if self.pending:
            loop = C.ForRange(self.t.lane, C.Const(0), C.Var(self.t.lanes), C.Const(1), self.pending,
                              self.pending[0].origin)
            self.t.lane_loops.add(id(loop))
            self.out.append(loop)
        self.pending, self.reads, self.group = [], set(), None

    def close(self) -> list:
        self.flush()
        return self.out


class BatchedForwardTransform(ForwardTransform):
    def __init__(self, function, types, activity, wrt, names):
        super().__init__(function, types, activity, wrt, names)
        self.scalar_tangents: set = set()  # tangents of numbers: a float per lane
        self.defs: dict = {}  # scalar tangent -> [(lane loop group, position) or _OUTSIDE]
        self.uses: dict = {}
        self.lane_loops: set = set()
        self.groups = itertools.count()
        self.positions = itertools.count()
        self.lanes = self.lane = None

    def run(self) -> C.Function:
        self.lanes, self.lane = self.names.claim("lanes"), self.names.claim("lane")
        origin = self.fn.origin
        tangent_params = [self.dot(p) for p in self.wrt]
        start = _Block(self)
        for name in tangent_params:
            self.defs.setdefault(name, []).append(_OUTSIDE)
        count = C.Const(1)
        if tangent_params:  # lanes = x_dot.shape[x.ndim]
            count = C.Call(_P("shape"), (C.Var(tangent_params[0]), C.Const(self._rank(C.Var(self.wrt[0])))))
        start.array(C.Assign(self.lanes, count, origin))
        for p in self.fn.params:
            if p in self.active and p not in self.wrt:
                start.array(C.Assign(self.dot(p), self._zeros(p), origin))
        body = start.close() + self._block(self.fn.body)
        end = _Block(self)
        tangents = [self._result_tangent(atom, end) for atom in self.fn.results]
        body += end.close()
        for atom in tangents:
            if isinstance(atom, C.Var):
                self.uses.setdefault(atom.name, []).append(_OUTSIDE)
        body = self._localize(body, set(tangent_params))
        return C.Function(self.fn.name + "_forward_batched", list(self.fn.params) + tangent_params, body,
                          tuple(self.fn.results) + tuple(tangents), True, self.fn.origin,
                          dict(self.fn.param_origins))

    def _is_array(self, name) -> bool:
        """A 0-d array (np.array(x) of a number) computes as the number it holds, in numba too: its tangent is
        a vector of lanes, computed lane by lane like a number's."""
        t = self.types.get(name)
        return isinstance(t, T.Array) and t.ndim > 0

    def dot(self, name: str) -> str:
        tangent = super().dot(name)
        if not self._is_array(name):
            self.scalar_tangents.add(tangent)
        return tangent

    # ---- bookkeeping: which scalar tangents are plain floats inside one lane loop ---------------------------
    def record_lane(self, stmt, group):
        position = next(self.positions)
        for name in C.reads(stmt):
            if name in self.scalar_tangents:
                self.uses.setdefault(name, []).append((group, position))
        if isinstance(stmt, C.Assign):  # lane statements assign tangents of numbers only
            self.scalar_tangents.add(stmt.target)
            self.defs.setdefault(stmt.target, []).append((group, position))

    def record_outside(self, stmt):
        for inner, _ in C.walk([stmt]):
            for name in C.reads(inner):
                if name in self.scalar_tangents:
                    self.uses.setdefault(name, []).append(_OUTSIDE)
        for name in C.assigned([stmt]):
            if name in self.scalar_tangents:
                self.defs.setdefault(name, []).append(_OUTSIDE)

    def _is_local(self, name) -> bool:
        """Assigned once, in a lane loop, and used only after that in the same loop."""
        defs = self.defs.get(name, [])
        if len(defs) != 1 or defs[0] is _OUTSIDE:
            return False
        group, position = defs[0]
        return all(u is not _OUTSIDE and u[0] == group and u[1] > position for u in self.uses.get(name, []))

    def _localize(self, body, params) -> list:
        """Lane loops read and write the longer-lived scalar tangents at [lane]; those a lane loop writes are
        allocated once at the start (a differentiated number's seed is copied, not written into)."""
        vectors = {name for name in self.scalar_tangents if not self._is_local(name)}
        lane = self.lane

        def element(atom):
            if isinstance(atom, C.Var) and atom.name in vectors:
                return C.Var(f"{atom.name}[{lane}]")  # printed as is: an element of the lane vector
            return atom

        def rewrite(block, in_lanes):
            out = []
            for stmt in block:
                if in_lanes and isinstance(stmt, C.Assign):
                    value = stmt.value
                    value = C.Call(value.prim, tuple(map(element, value.args))) if isinstance(value, C.Call) \
                        else element(value)
                    target = f"{stmt.target}[{lane}]" if stmt.target in vectors else stmt.target
                    out.append(C.Assign(target, value, stmt.origin))
                elif in_lanes and isinstance(stmt, C.Store):
                    out.append(C.Store(stmt.base, stmt.index, element(stmt.value), stmt.origin))
                elif isinstance(stmt, C.If):
                    out.append(C.If(stmt.cond, rewrite(stmt.body, False), rewrite(stmt.orelse, False), stmt.origin))
                elif isinstance(stmt, (C.ForRange, C.While)):
                    out.append(C.replace(stmt, body=rewrite(stmt.body, id(stmt) in self.lane_loops)))
                else:
                    out.append(stmt)
            return out

        written = sorted(name for name in vectors if any(d is not _OUTSIDE for d in self.defs.get(name, [])))
        origin = self.fn.origin
        allocations = [C.Assign(name, C.Call(_P("copy"), (C.Var(name),)) if name in params else
                                C.Call(_P("np.zeros"), (C.Var(self.lanes),)), origin) for name in written]
        return body[:1] + allocations + rewrite(body[1:], False)

    # ---- statements --------------------------------------------------------------------------------------------
    def _block(self, block) -> list:
        out = _Block(self)
        for stmt in block:
            self._emit(stmt, out)
        return out.close()

    def _emit(self, stmt, b: _Block):
        if isinstance(stmt, C.Assign) and not isinstance(stmt.value, C.Call):
            if stmt.target in self.active:  # a copy's tangent reads no primal value: it may go first, joining
                self._tangent_of_assign(stmt, b)  # the lane loop the copy (`s = mul_11`) would otherwise cut
            b.primal(stmt)
        elif isinstance(stmt, C.Assign):
            b.primal(stmt)
            if stmt.target in self.active:
                self._tangent_of_assign(stmt, b)
        elif isinstance(stmt, C.Store):
            b.primal(stmt)
            if stmt.base in self.active:
                self._tangent_of_store(stmt, b)
        elif isinstance(stmt, C.Effect):
            b.primal(stmt)
        elif isinstance(stmt, C.If):
            b.compound(C.If(stmt.cond, self._block(stmt.body), self._block(stmt.orelse), stmt.origin))
        elif isinstance(stmt, (C.ForRange, C.While)):
            b.compound(C.replace(stmt, body=self._block(stmt.body)))  # a checkpoint mark carries over
        else:
            raise TypeError(stmt)

    def _set(self, b: _Block, name: str, value, origin, whole=False):
        """`name_dot = value`, lane by lane for a number unless the value is `whole` (a vector of lanes)."""
        stmt = C.Assign(self.dot(name), value, origin)
        b.array(stmt) if whole or self._is_array(name) else b.lane(stmt)

    def _zeros(self, name) -> C.Call:
        if self._is_array(name):
            return C.Call(_P("lanes.zeros"), (C.Var(self.lanes), C.Var(name)))
        return C.Call(_P("np.zeros"), (C.Var(self.lanes),))

    def _zero(self, name, origin, b: _Block):
        self._set(b, name, self._zeros(name) if self._is_array(name) else C.Const(0.0), origin)

    def _result_tangent(self, atom, b: _Block) -> C.Atom:
        if self.activity.is_active(atom):
            return C.Var(self.dot(atom.name))
        name = self.names.temp("zero_dot")
        zeros = self._zeros(atom.name) if isinstance(atom, C.Var) else C.Call(_P("np.zeros"), (C.Var(self.lanes),))
        b.array(C.Assign(name, zeros, self.fn.origin))
        return C.Var(name)

    def _tangent_of_store(self, stmt, b: _Block):
        """`base[index] = value` -> `base_dot[index, lane] = value_dot` for a number (lane by lane), else
        `base_dot[index] = value_dot`: the tangent region's lanes line up with the value tangent's."""
        base, origin = self.dot(stmt.base), stmt.origin
        tangent = self._tangent_atom(stmt.value)
        if tangent is None:
            b.array(C.Store(base, tuple(stmt.index), C.Const(0.0), origin))
        elif self._rank(stmt.value) == 0:
            b.lane(C.Store(base, self._lane_index(stmt.base, stmt.index), tangent, origin))
        else:
            b.array(C.Store(base, tuple(stmt.index), tangent, origin))

    def _lane_index(self, base, index) -> tuple:
        """`index` completed with `:` for the axes it leaves out, then the lane: one lane of the region."""
        consumed = 0
        for atom in index:
            t = atom_type(atom, self.types)
            consumed += t.ndim if isinstance(t, T.Array) else 0 if t == T.Opaque("NoneType") else 1
        return tuple(index) + (C.Slice(),) * (self.types[base].ndim - consumed) + (C.Var(self.lane),)

    def _tangent_of_assign(self, stmt, b: _Block):
        value, origin, target = stmt.value, stmt.origin, stmt.target
        if isinstance(value, C.Var):
            tangent = self._tangent_atom(value)
            return self._set(b, target, tangent, origin) if tangent is not None else self._zero(target, origin, b)
        if not isinstance(value, C.Call):
            return self._zero(target, origin, b)
        prim, args = value.prim, value.args
        if prim.traits.new_buffer:  # a new tape or adjoint buffer: its tangent is a new one alike
            if prim.lane_alike is None:  # int and bool tapes carry no derivative
                raise AssertionError(f"batched forward mode: {prim.name} made active at {stmt}")
            return self._set(b, target, C.Call(_P(prim.lane_alike), (C.Var(self.lanes), args[0])), origin)
        if prim.traits.regrows:  # a tape grown: grow its tangent tape alongside
            grown = C.Call(_P(prim.lane_alike), (self._require(args[0], stmt), *args[1:]))
            return self._set(b, target, grown, origin)
        if prim.adjoint == "index":  # v = a[i]  ->  v_dot = a_dot[i, lane] (a number) or a_dot[i] (lanes last)
            tangent = self._tangent_atom(args[0])
            if tangent is None:
                return self._zero(target, origin, b)
            index = tuple(args[1:]) if self._is_array(target) else self._lane_index(args[0].name, args[1:])
            return self._set(b, target, C.Call(prim, (tangent, *index)), origin)
        if prim.lane_joins is not None:
            return self._join(stmt, b)
        if prim.jvps is not None:
            return self._linear(stmt, b)
        return self._elementwise(stmt, b)

    def _elementwise(self, stmt, b: _Block):
        """`target_dot = sum_k partial_k * arg_k_dot`: lane by lane for numbers; for arrays the partials
        (computed once, of shape S or less) get a trailing axis to broadcast against the tangents (*S, lanes)."""
        value, origin = stmt.value, stmt.origin
        rank = self._rank(C.Var(stmt.target))
        partials = PartialEmitter(self.names, lambda s: (self._typed(s), b.primal(s)), origin)
        tangents = PartialEmitter(self.names, b.array if rank else b.lane, origin)
        terms, covered = [], set()
        for k in differentiable_args(value):
            tangent = self._tangent_atom(value.args[k])
            if tangent is None:
                continue
            self._check_rule(stmt, k)
            partial = partials.partial(value, k, C.Var(stmt.target), arrays=self._has_arrays(value))
            if partial in (C.Const(0.0), C.Const(0)):
                continue
            negated = partial in (C.Const(-1.0), C.Const(-1))
            terms.append((None if negated or partial in (C.Const(1.0), C.Const(1)) else partial, tangent, negated))
            covered.add(k)
        if not terms:
            return self._zero(stmt.target, origin, b)
        total = self._sum(tangents, terms)
        arrays = {k for k, a in enumerate(value.args) if self._rank(a) > 0}
        if rank and (isinstance(total, C.Var) or not arrays <= covered):
            # a bare tangent (`y = x + c`) must not alias x_dot, and terms missing an array argument may miss
            # axes that argument gave the result: a new tangent of the result's shape
            atom = total if isinstance(total, C.Var) else tangents.apply(total.prim, *total.args)
            total = C.Call(_P("lanes.fit"), (atom, C.Var(stmt.target)))
        self._set(b, stmt.target, total, origin)

    def _times(self, partial):
        """An array partial (weights per element) is applied in every lane: `lanes_scale(partial, t)`."""
        return _P("lanes.scale" if self._rank(partial) > 0 else "mul")

    def _typed(self, stmt):
        """Records the types of the partials' temporaries (whether a partial is an array decides its form)."""
        for inner, _ in C.walk([stmt]):
            if isinstance(inner, C.Assign):
                found = expr_type(inner.value, self.types)
                if found is not None:
                    self.types[inner.target] = T.join(self.types.get(inner.target), found)

    def _linear(self, stmt, b: _Block):
        """Non-elementwise primitives: the sum of each active argument's lane rule contribution."""
        value, origin = stmt.value, stmt.origin
        emitter = PartialEmitter(self.names, b.array, origin)
        ranks = tuple(self._rank(a) for a in value.args)
        contributions = []
        for k in differentiable_args(value):
            tangent = self._tangent_atom(value.args[k])
            if tangent is None:
                continue
            try:
                contribution = emitter.lane_jvp(value, k, C.Var(stmt.target), tangent, ranks)
            except KeyError:
                raise self._no_rule(stmt) from None
            if contribution is not None:
                contributions.append(contribution)
        if not contributions:
            return self._zero(stmt.target, origin, b)
        total = contributions[0]
        for n, contribution in enumerate(contributions[1:]):
            last = n == len(contributions) - 2
            total = C.Call(_P("add"), (total, contribution)) if last else emitter.apply(_P("add"), total,
                                                                                         contribution)
        self._set(b, stmt.target, total, origin, whole=True)

    def _join(self, stmt, b: _Block):
        """np.array of numbers, concatenate, stack: the tangents joined as the primals are (lanes last)."""
        value, origin = stmt.value, stmt.origin
        ranks = {self._rank(a) for a in value.args}
        joined = value.prim.lane_joins.get(ranks.pop()) if len(ranks) == 1 else None
        if joined is None:
            raise self._no_rule(stmt)
        parts = []
        for atom in value.args:
            tangent = self._tangent_atom(atom)
            if tangent is None:
                zeros = self._zeros(atom.name) if isinstance(atom, C.Var) else C.Call(_P("np.zeros"),
                                                                                       (C.Var(self.lanes),))
                tangent = PartialEmitter(self.names, b.array, origin).apply(zeros.prim, *zeros.args)
            parts.append(tangent)
        self._set(b, stmt.target, C.Call(_P(joined), tuple(parts)), origin, whole=True)

    def _no_rule(self, stmt):
        return DifferentiabilityError([Diagnostic(
            codes.NO_RULE, f"batched forward mode has no lane rule for {stmt.value.prim.name} on these arguments yet",
            stmt.origin, "dp.jacobian computes this Jacobian with one forward pass per column instead, or use "
            "mode='reverse'")])


def forward_batched(function, types, activity, wrt, names) -> C.Function:
    return BatchedForwardTransform(function, types, activity, wrt, names).run()
