"""Adjoint statements of single assignments and stores, and the names of adjoints.

Planning builds them first, because what they read decides what the forward sweep must keep; the backward sweep
then places them as they are.
"""
from __future__ import annotations

from collections import Counter

from ...analysis.activity import Activity, differentiable_args
from ...errors import DifferentiabilityError, Diagnostic
from ...ir import core as C
from ...ir import types as T
from .extents import with_extents
from ..partials import PartialEmitter
from .statements import P, temp_call
from ... import codes

# Adjoint terms added into an adjoint as one in-place update, without an array for the term: term -> update.


class Adjoints:
    """Names adjoints and writes the statements pushing a statement's adjoint to its operands. `extents` (array
    -> variables holding its extents) is filled by planning: an adjoint restarting at zero takes its shape there
    when the array itself is not kept."""

    def __init__(self, types: dict, activity: Activity, names):
        self.types = types
        self.activity = activity
        self.active = activity.active
        self.names = names
        self.names_of: dict = {}
        self.extents: dict = {}

    def adj(self, name: str) -> str:
        if name not in self.names_of:
            self.names_of[name] = self.names.claim(name + "_adj")
        return self.names_of[name]

    def is_array(self, variable) -> bool:
        return isinstance(self.types.get(variable), T.Array)

    def rank(self, atom) -> int:
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        return t.ndim if isinstance(t, T.Array) else 0

    def sliced(self, index) -> bool:
        return any(isinstance(i, C.Slice) or self.rank(i) > 0 for i in index)

    def zero(self, name, origin) -> C.Assign:
        """`name_adj = 0`, shaped like `name` for arrays (float64 whatever the dtype: adjoints accumulate)."""
        if self.is_array(name):
            zeros = C.Call(P("np.zeros_shape"), (C.Var(name),))
            if name in self.extents:
                zeros = with_extents(zeros, self.extents[name])
            return C.Assign(self.adj(name), zeros, origin)
        return C.Assign(self.adj(name), C.Const(0.0), origin)

    # ---- assignments -------------------------------------------------------------------------------------------
    def of_assign(self, stmt) -> list:
        """Adjoint statements for `target = value`: push target's adjoint to the operands, then clear it."""
        out = []
        emitter = PartialEmitter(self.names, out.append, stmt.origin)
        target_adj = C.Var(self.adj(stmt.target))
        value = stmt.value
        if isinstance(value, C.Var):
            if value.name in self.active:
                out += self._accumulate(value.name, target_adj, stmt.origin)
        elif isinstance(value, C.Call):
            if value.prim.adjoint == "index":
                out += self._index_adjoint(stmt, target_adj)
            else:
                for k in differentiable_args(value):
                    if self.activity.is_active(value.args[k]):
                        out += self._contribute(emitter, value, k, stmt, target_adj)
        if not self.is_array(stmt.target):  # arrays: after the restore, shaped like the restored value
            out.append(self.zero(stmt.target, stmt.origin))
        return _added_in_place(out)

    def _contribute(self, emitter, call, k, stmt, g) -> list:
        """`arg_adj += (d target / d arg) applied to g`, reduced to the argument's shape."""
        arg, out = call.args[k], C.Var(stmt.target)
        if call.prim.vjps is not None:
            ranks = tuple(self.rank(a) for a in call.args)
            # adjoints are float64: numba's linear algebra wants float32 operands converted to match
            call = C.Call(call.prim, tuple(self._as_float64(emitter, a) for a in call.args))
            out = self._as_float64(emitter, out)
            try:
                contribution = emitter.vjp(call, k, out, g, ranks)
            except TypeError as error:
                raise DifferentiabilityError([Diagnostic(codes.UNSUPPORTED, str(error), stmt.origin,
                                                         "use vectors or matrices here")]) from None
            return self._accumulate(arg.name, contribution, stmt.origin)
        partial = emitter.partial(call, k, out, arrays=any(self.rank(a) for a in call.args))
        if partial == C.Const(-1.0):  # x_adj -= y_adj reads better than multiplying by -1
            return self._accumulate(arg.name, self._fit(emitter, g, call, k, out), stmt.origin, prim="deduct")
        contribution = emitter.apply(P("mul"), partial, g)
        return self._accumulate(arg.name, self._fit(emitter, contribution, call, k, out), stmt.origin)

    def _fit(self, emitter, contribution, call, k, out):
        """Undoes broadcasting: sums the contribution over the axes the argument was broadcast along."""
        arg_rank, out_rank = self.rank(call.args[k]), self.rank(out)
        if out_rank == 0:
            return contribution
        if arg_rank == 0:
            return emitter.apply(P("np.sum"), contribution)
        for _ in range(out_rank - arg_rank):
            contribution = emitter.apply(P("sum_leading"), contribution)
        others = [a for j, a in enumerate(call.args) if j != k and self.rank(a) > 0]
        if others:  # same rank but possibly size-1 axes: only known at run time
            contribution = emitter.apply(P("unbroadcast"), contribution, call.args[k])
        return contribution

    def _as_float64(self, emitter, atom):
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        if isinstance(t, T.Array) and t.dtype != "float64" and t.differentiable:
            return emitter.apply(P("as_float64"), atom)
        return atom

    def _accumulate(self, name, contribution, origin, prim="accumulate") -> list:
        adj = self.adj(name)
        return [C.Assign(adj, C.Call(P(prim), (C.Var(adj), contribution)), origin)]

    def _index_adjoint(self, stmt, target_adj) -> list:
        """`a[index]` scatters its adjoint back into a's adjoint; integer-array indices may repeat."""
        array, *index = stmt.value.args
        if not self.activity.is_active(array):
            return []
        adj = self.adj(array.name)
        if any(self._is_index_array(i) for i in index):
            if len(index) != 1:
                raise DifferentiabilityError([Diagnostic(
                    codes.UNSUPPORTED,
                    "indexing with an integer array together with other indices cannot be differentiated",
                    stmt.origin, "index one axis at a time")])
            return [C.Assign(adj, C.Call(P("scatter_add"), (C.Var(adj), index[0], target_adj)), stmt.origin)]
        # the read's adjoint restarts at zero right after: it can hold the sum (no new array for it)
        current = self.names.temp(adj + "_at")
        return [
            C.Assign(current, C.Call(P("getitem"), (C.Var(adj), *index)), stmt.origin),
            C.Assign(target_adj.name, C.Call(P("accumulate"), (target_adj, C.Var(current))), stmt.origin),
            C.Store(adj, tuple(index), target_adj, stmt.origin),
        ]

    def _is_index_array(self, atom) -> bool:
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        return isinstance(t, T.Array) and t.dtype != "bool"

    # ---- stores ------------------------------------------------------------------------------------------------
    def of_store(self, stmt) -> list:
        """`base[index] = value`: the value receives what the overwritten elements' adjoint held, which then
        restarts at zero (the elements before the write did not reach the result through this slot)."""
        out = []
        adj = self.adj(stmt.base)
        element_adj = self.names.temp(adj + "_at")
        out.append(C.Assign(element_adj, C.Call(P("getitem"), (C.Var(adj), *stmt.index)), stmt.origin))
        sliced = self.sliced(stmt.index)
        if sliced:  # a view of the adjoint, zeroed below: copy it first
            element_adj = temp_call(self.names, out, adj + "_at", P("copy"), (C.Var(element_adj),), stmt.origin).name
        if self.activity.is_active(stmt.value):
            contribution = C.Var(element_adj)
            if sliced and self.rank(stmt.value) == 0:  # one value written to many elements
                contribution = temp_call(self.names, out, "sum", P("np.sum"), (contribution,), stmt.origin)
            out += self._accumulate(stmt.value.name, contribution, stmt.origin)
        out.append(C.Store(adj, stmt.index, C.Const(0.0), stmt.origin))
        return out


def _added_in_place(statements) -> list:
    """`term = np.outer(a, b)` then `x_adj += term` (the term read nowhere else) -> `x_adj = add_outer(x_adj, a, b)`:
    a term whose primitive has an updater that is an expression (not an effect, so the code can be differentiated
    again) is added into the adjoint without being made."""
    reads = Counter(n for s, _ in C.walk(statements) for n in C.reads(s))
    out = []
    for stmt in statements:
        term = out[-1] if out else None
        updater = _expression_updater(term)
        if (updater is not None and isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call)
                and stmt.value.prim.traits.accumulates == 1
                and stmt.value.args == (C.Var(stmt.target), C.Var(term.target)) and reads[term.target] == 1):
            out[-1] = C.Assign(stmt.target, C.Call(updater, (C.Var(stmt.target),) + term.value.args), stmt.origin)
        else:
            out.append(stmt)
    return out


def _expression_updater(stmt):
    """The primitive adding stmt's value into an array without making it, if stmt assigns a call that has one
    and the updater is an expression (add_outer), not an effect (add_product, add_matmul: code that runs only)."""
    if not (isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call)):
        return None
    into = stmt.value.prim.traits.added_into
    return None if into is None or P(into).effect else P(into)
