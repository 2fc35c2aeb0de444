"""Emission: the forward and backward sweeps written out from a ReversePlan.

The forward sweep runs the primal, saving before each statement the values the plan says it overwrites and the
backward sweep reads (in variables outside loops, on tapes inside) and recording loop trip counts. The backward
sweep visits the statements in reverse order: each one's adjoint statements, then the restores of what the
forward sweep saved before it, so that adjoint code reads primal variables by name.
"""
from __future__ import annotations

from ...ir import core as C
from ...ir import types as T
from ...rules.structural import initial_value
from .checkpoint import backward_checkpointed, forward_checkpointed
from .plan import ReversePlan
from .statements import P, step_value, temp_call
from .taping import TapeEmitter


class Sweeps:
    def __init__(self, plan: ReversePlan, adjoints, types: dict, names):
        self.plan = plan
        self.adjoints = adjoints
        self.types = types
        self.names = names
        self.tapes = TapeEmitter(plan.tapes, types, names)
        self.saves: dict = {}  # Step -> {variable: the variable saving it}, outside loops
        self.kept_elements: dict = {}  # Step (a store) -> the variable holding the elements it overwrote
        self.trips: dict = {}  # LoopPlan -> its trip count
        self.recorded_steps: dict = {}  # LoopPlan (checkpointed) -> the code recording one step

    # ---- forward sweep -----------------------------------------------------------------------------------------
    def forward_block(self, steps) -> list:
        out = []
        for step in steps:
            stmt = step.stmt
            if step.loop is not None and step.loop.checkpoint is not None:
                out += forward_checkpointed(self, step)
            elif step.active and isinstance(stmt, C.ForRange):
                out += self._forward_for(step)
            elif step.active and isinstance(stmt, C.While):
                out += self._forward_while(step)
            elif step.active and isinstance(stmt, C.If):
                out.append(C.If(stmt.cond, self.forward_block(step.body), self.forward_block(step.orelse),
                                stmt.origin))
            elif step.keeps_elements:
                out += self._keep_elements(step)
                out.append(stmt)
            else:
                out += self.save(step, step.saved)
                out.append(stmt)
        return out

    def save(self, step, variables) -> list:
        """Statements saving the old values of `variables` before `step` overwrites them."""
        stmt = step.stmt
        out = []
        if not step.on_tape:
            saves = self.saves.setdefault(step, {})
            for v in variables:
                saves[v] = self.names.temp(v + "_saved")
                out.append(C.Assign(saves[v], C.Var(v), stmt.origin))
            return out
        for v in variables:
            out += self.tapes.push(v, stmt.origin)
        return out

    def _keep_elements(self, step) -> list:
        """Before a write into an array the backward sweep reads, keep the elements it overwrites."""
        stmt = step.stmt
        old = self.names.temp(stmt.base + "_old")
        read = C.Call(P("getitem"), (C.Var(stmt.base), *stmt.index))
        self.types[old] = P("getitem").result_type([self.types[stmt.base]] + [self._index_type(i)
                                                                               for i in stmt.index])
        out = [C.Assign(old, read, stmt.origin)]
        if self.adjoints.sliced(stmt.index):
            out.append(C.Assign(old, C.Call(P("copy"), (C.Var(old),)), stmt.origin))
        self.kept_elements[step] = old
        return out + self.save(step, [old])

    def _index_type(self, atom):
        if isinstance(atom, C.Slice):
            return T.Opaque("slice")
        if isinstance(atom, C.Var):
            return self.types[atom.name]
        return T.Opaque("NoneType") if atom.value is None else T.INT

    def record_trip(self, step, out) -> C.Var:
        stmt = step.stmt
        trip = temp_call(self.names, out, "trip", P("range_len"), (stmt.start, stmt.stop, stmt.step), stmt.origin)
        self.trips[step.loop] = trip
        if step.loop.trip_taped:
            out += self.tapes.push(trip.name, stmt.origin)
        return trip

    def _forward_for(self, step) -> list:
        stmt = step.stmt
        out = self.save(step, step.saved)
        trip = self.record_trip(step, out)
        pushes = self.tapes.enter_loop()
        body = self.forward_block(step.body)
        self.tapes.leave_loop()
        out += self.tapes.reserve(pushes, trip, stmt.origin)
        out.append(C.ForRange(stmt.var, stmt.start, stmt.stop, stmt.step, body, stmt.origin))
        return out

    def _forward_while(self, step) -> list:
        stmt = step.stmt
        trip = self.names.temp("trip")
        self.trips[step.loop] = C.Var(trip)
        out = [C.Assign(trip, C.Const(0), stmt.origin)]
        pushes = self.tapes.enter_loop()
        body = self.forward_block(step.body)
        self.tapes.leave_loop()
        count = [C.Assign(trip, C.Call(P("add"), (C.Var(trip), C.Const(1))), stmt.origin)]
        out.append(C.While(stmt.cond, count + self.tapes.reserve(pushes, None, stmt.origin) + body, stmt.origin))
        if step.loop.trip_taped:
            out += self.tapes.push(trip, stmt.origin)
        return out

    # ---- backward sweep ----------------------------------------------------------------------------------------
    def backward_block(self, steps) -> list:
        out = []
        for step in reversed(steps):
            out += self._backward(step)
        return out

    def _backward(self, step) -> list:
        stmt = step.stmt
        if isinstance(stmt, C.Store) and not step.active:
            return self._restore_elements(step)
        if not step.active:
            return self.restore(step, step.saved)
        if isinstance(stmt, C.Assign):
            restore = self.restore(step, step.saved)
            zero = [self.adjoints.zero(stmt.target, stmt.origin)] if self.adjoints.is_array(stmt.target) else []
            return step.adjoint + restore + zero
        if isinstance(stmt, C.Store):
            return step.adjoint + self._restore_elements(step)
        if isinstance(stmt, C.If):
            return [C.If(stmt.cond, self.backward_block(step.body), self.backward_block(step.orelse), stmt.origin)]
        if step.loop.checkpoint is not None:
            return backward_checkpointed(self, step)
        if isinstance(stmt, C.ForRange):
            return self._backward_for(step)
        return self._backward_while(step)

    def restore(self, step, variables) -> list:
        """Puts back, in reverse order, the values of `variables` saved before `step`."""
        out = []
        for v in reversed(variables):
            if step.on_tape:
                out += self.tapes.pop(v, step.stmt.origin)
            else:
                out.append(C.Assign(v, C.Var(self.saves[step][v]), step.stmt.origin))
        return out

    def _restore_elements(self, step) -> list:
        old = self.kept_elements.get(step)
        if old is None:
            return []
        stmt = step.stmt
        return self.restore(step, [old]) + [C.Store(stmt.base, stmt.index, C.Var(old), stmt.origin)]

    def trip_count(self, step, out) -> C.Var:
        """The loop's trip count, popped first when it is on a tape."""
        trip = self.trips[step.loop]
        if step.loop.trip_taped:
            out += self.tapes.pop(trip.name, step.stmt.origin)
        return trip

    def _backward_for(self, step) -> list:
        stmt = step.stmt
        out = []
        trip = self.trip_count(step, out)
        last = temp_call(self.names, out, "last", P("sub"), (trip, C.Const(1)), stmt.origin)
        k = self.names.temp("k")
        body = []
        body.append(C.Assign(stmt.var, step_value(self.names, body, stmt, C.Var(k)), stmt.origin))
        body += [C.Assign(s.target, s.value, s.origin) for s in step.loop.recompute]
        body += self.backward_block(step.body)
        out.append(C.ForRange(k, last, C.Const(-1), C.Const(-1), body, stmt.origin))
        return out + self.restore(step, step.saved)

    def _backward_while(self, step) -> list:
        stmt = step.stmt
        out = []
        trip = self.trip_count(step, out)
        k = self.names.temp("k")
        out.append(C.ForRange(k, C.Const(0), trip, C.Const(1), self.backward_block(step.body), stmt.origin))
        return out

    # ---- function boundary -------------------------------------------------------------------------------------
    def prologue(self, function, active) -> list:
        """Zero-initialize saved variables (a loop saves them before their first assignment) and active arrays
        (their adjoints are shaped like them, even on paths that never assign them), and make tapes."""
        out = []
        active_arrays = {v for v in active if isinstance(self.types.get(v), T.Array)}
        carried = {v for loop in self.plan.loops() if loop.checkpoint is not None for v in loop.checkpoint.state}
        extent_variables = {e for names in self.plan.extents.values() for e in names}
        # extents are read even on paths that never assign them
        for v in sorted((self.plan.saved | active_arrays | carried | extent_variables) - set(function.params)):
            value = initial_value(self.types.get(v))
            if value is not None:
                out.append(C.Assign(v, value, function.origin))
        return out + self.tapes.make(function.origin)

