"""Binomial checkpointing of loops under `diffprog.checkpoint`.

Such a loop records nothing in the forward sweep: it saves the state it carries at entry and runs. Its backward
sweep re-runs steps from a few snapshots of that state, recording and reversing one step at a time in the order
revolve (backend/runtime/revolve.py) gives, one action at a time.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...errors import DifferentiabilityError, Diagnostic
from ...ir import core as C
from ...ir import types as T
from ...rules.runtime_calls import REVOLVE_ACTIONS
from .statements import P, assigned_outside, step_value, temp_call
from ... import codes


@dataclass(eq=False)
class Checkpointed:
    """The state a checkpointed loop carries from step to step; snapshots copy the arrays it writes into."""

    snapshots: int  # 0: as many as the square root of the trip count
    state: list
    copied: list


def checkpoint_state(loop, snapshots, function, needed, types) -> Checkpointed:
    """The loop's state: what an iteration reads before assigning it, and what the backward sweep before the
    loop reads (restored to its value at loop entry when the loop's reversal ends)."""
    elsewhere = set(function.params) | assigned_outside(function.body, loop)
    state = sorted((C.exposed(loop.body, {loop.var})[0] | needed & elsewhere) & (C.assigned(loop.body) | {loop.var}))
    for v in state:
        if not isinstance(types.get(v), (T.Scalar, T.Array)):
            raise DifferentiabilityError([Diagnostic(
                codes.UNSUPPORTED, f"a checkpointed loop can carry numbers and arrays only; '{v}' is a "
                f"{types.get(v)}", loop.origin, "compute this value inside the loop or outside it")])
    stored = {s.base for s, _ in C.walk(loop.body) if isinstance(s, C.Store)}
    return Checkpointed(snapshots, state, sorted(stored & set(state)))


def forward_checkpointed(sweeps, step) -> list:
    """Saves the loop's entry state and runs it without recording. The code recording one step is built here
    too, so its saves are emitted with the forward sweep's; the backward sweep places it. A single step runs once
    per reversal, so it records into plain variables (tapes only for loops inside it)."""
    stmt, plan = step.stmt, step.loop.checkpoint
    out = sweeps.save(step, step.saved)
    for v in plan.copied:  # the loop writes into a copy: the saved entry value stays intact
        out.append(C.Assign(v, C.Call(P("copy"), (C.Var(v),)), stmt.origin))
    sweeps.record_trip(step, out)
    out.append(C.ForRange(stmt.var, stmt.start, stmt.stop, stmt.step, C.clone(stmt.body), stmt.origin))
    sweeps.tapes.recording += 1
    sweeps.recorded_steps[step.loop] = sweeps.forward_block(step.body)
    sweeps.tapes.recording -= 1
    return out


def backward_checkpointed(sweeps, step) -> list:
    """Reverses a checkpointed loop from its entry state: a loop over the actions of the revolve schedule
    (advance without recording, keep or restore a snapshot, record and reverse one step)."""
    return _Reversal(sweeps, step).emit()


class _Reversal:
    def __init__(self, sweeps, step):
        self.sweeps = sweeps
        self.names = sweeps.names
        self.step = step
        self.loop = step.stmt
        self.plan = step.loop.checkpoint
        self.origin = step.stmt.origin

    def emit(self) -> list:
        out = []
        trip = self.sweeps.trip_count(self.step, out)
        out += self.sweeps.restore(self.step, self.plan.state)
        slots = self._temp(out, "slots", P("revolve_slots"), (trip, C.Const(self.plan.snapshots)))
        self.schedule = self._temp(out, "schedule", P("revolve_new"), (trip, slots))
        self.snapshots = {v: self._snapshot_slots(out, v, slots) for v in self.plan.state}
        self.action, self.going = self.names.temp("action"), self.names.temp("going")
        advance, take, bring_back = self._advance(), self._take(), self._bring_back()
        actions = self._reverse_step()
        for name, block in (("restore", bring_back), ("takeshot", take), ("advance", advance)):
            is_action = self.names.temp("is_" + name)
            test = C.Call(P("eq"), (C.Var(self.action), C.Const(REVOLVE_ACTIONS[name])))
            actions = [C.Assign(is_action, test, self.origin), C.If(C.Var(is_action), block, actions, self.origin)]
        out += self._next_action() + [C.While(self.going, actions + self._next_action(), self.origin)]
        for v in self.plan.state:  # the schedule ends anywhere: back to the entry state
            out += self._restore_snapshot(v, C.Const(0), False)
        return out

    def _advance(self) -> list:
        """Runs steps schedule[0] to schedule[1] - 1 without recording."""
        out = []
        first, last = self._argument(out, 0, "first"), self._argument(out, 1, "last")
        out.append(C.ForRange(self.loop.var, self._bound(out, first), self._bound(out, last), self.loop.step,
                              C.clone(self.loop.body), self.origin))
        return out

    def _take(self) -> list:
        out = []
        slot = self._argument(out, 2, "slot")
        for v in self.plan.state:
            out += self._keep_snapshot(v, slot, v in self.plan.copied)
        return out

    def _bring_back(self) -> list:
        out = []
        slot = self._argument(out, 2, "slot")
        for v in self.plan.state:
            out += self._restore_snapshot(v, slot, v in self.plan.copied)
        return out

    def _reverse_step(self) -> list:
        """Records step schedule[0] and reverses it."""
        out = []
        step = self._argument(out, 0, "step")
        out.append(C.Assign(self.loop.var, step_value(self.names, out, self.loop, step), self.origin))
        return out + self.sweeps.recorded_steps[self.step.loop] + self.sweeps.backward_block(self.step.body)

    def _next_action(self) -> list:
        done = C.Const(REVOLVE_ACTIONS["done"])
        return [C.Assign(self.action, C.Call(P("revolve_next"), (self.schedule,)), self.origin),
                C.Assign(self.going, C.Call(P("noteq"), (C.Var(self.action), done)), self.origin)]

    def _argument(self, block, position, hint) -> C.Var:
        return self._temp(block, hint, P("getitem"), (self.schedule, C.Const(position)))

    def _bound(self, block, count) -> C.Var:
        """The loop variable's value at step `count`, in a variable (as a range bound must be)."""
        value = step_value(self.names, block, self.loop, count)
        if isinstance(value, C.Var):
            return value
        return self._temp(block, "index", value.prim, value.args)

    def _temp(self, out, hint, prim, args) -> C.Var:
        return temp_call(self.names, out, hint, prim, args, self.origin)

    def _snapshot_slots(self, out, v, slots) -> C.Var:
        if isinstance(self.sweeps.types.get(v), T.Array):
            return self._temp(out, "snapshots_" + v, P("snapshot_list"), (C.Var(v), slots))
        return self._temp(out, "snapshots_" + v, P(f"tape_empty_{self.sweeps.types[v].kind}"), (slots,))

    def _keep_snapshot(self, v, slot, copy) -> list:
        snapshots = self.snapshots[v]
        if not isinstance(self.sweeps.types.get(v), T.Array):
            return [C.Store(snapshots.name, (slot,), C.Var(v), self.origin)]
        value = C.Var(v)
        out = []
        if copy:  # the loop writes into it later
            value = self._temp(out, v + "_kept", P("copy"), (value,))
        return out + [C.Effect(C.Call(P("list_set"), (snapshots, slot, value)), self.origin)]

    def _restore_snapshot(self, v, slot, copy) -> list:
        out = [C.Assign(v, C.Call(P("getitem"), (self.snapshots[v], slot)), self.origin)]
        if copy:  # the snapshot outlives the writes the loop makes next
            out.append(C.Assign(v, C.Call(P("copy"), (C.Var(v),)), self.origin))
        return out
