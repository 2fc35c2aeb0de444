"""Pushes on and pops from the forward sweep's tapes, and their reservation at loop entry.

The plan names the tapes of the variables it saves inside loops; trip counts of nested loops and elements kept
before writes get theirs here, as their variables are made. Tapes of numbers are reserved once per loop entry
(or per iteration of a `while`), for as many pushes as the body makes; a variable the bodies of several loops
push is reserved at each push instead.
"""
from __future__ import annotations

from collections import Counter

from ...ir import core as C
from ...ir import types as T
from ...rules.structural import empty_array
from .plan import Tape
from .statements import P, temp_call


class TapeEmitter:
    def __init__(self, planned: dict, types: dict, names):
        self.tapes = dict(planned)  # variable -> Tape
        self.types = types
        self.names = names
        self.loop_pushes: list = []  # per loop being emitted: pushes per iteration of each variable
        self.recording = 0  # > 0 while emitting the code recording one step of a checkpointed loop
        self.copied_on_pop: set = set()  # arrays pushed by such a recording: the next recording reuses the space

    def tape(self, variable) -> Tape:
        if variable not in self.tapes:
            tape = Tape(variable, self.names.claim("tape_" + variable), self.names.claim(f"tape_{variable}_len"))
            if self._is_array(variable):
                tape.index = self.names.claim(f"tape_{variable}_index")
            self.tapes[variable] = tape
        return self.tapes[variable]

    def _is_array(self, variable) -> bool:
        return isinstance(self.types.get(variable), T.Array)

    def enter_loop(self) -> Counter:
        self.loop_pushes.append(Counter())
        return self.loop_pushes[-1]

    def leave_loop(self):
        self.loop_pushes.pop()

    def push(self, variable, origin) -> list:
        tape = self.tape(variable)
        length = C.Var(tape.length)
        grown = C.Assign(tape.length, C.Call(P("add"), (length, C.Const(1))), origin)
        if self._is_array(variable):  # the tape grows itself: array sizes are not known at loop entry
            if self.recording:
                self.copied_on_pop.add(variable)
            index = C.Var(tape.index)
            return [C.Assign(tape.index, C.Call(P("array_tape_note"), (index, length, C.Var(variable))), origin),
                    C.Assign(tape.name, C.Call(P("array_tape_store"), (C.Var(tape.name), index, length,
                                                                      C.Var(variable))), origin),
                    grown]
        reserve = []
        if tape.reserved_at_each_push:
            reserve = [C.Assign(tape.name, C.Call(P("tape_reserve"), (C.Var(tape.name), length, C.Const(1))), origin)]
        else:
            self.loop_pushes[-1][variable] += 1
        return reserve + [C.Store(tape.name, (length,), C.Var(variable), origin), grown]

    def pop(self, variable, origin) -> list:
        tape = self.tape(variable)
        length = C.Var(tape.length)
        out = [C.Assign(tape.length, C.Call(P("sub"), (length, C.Const(1))), origin)]
        if not self._is_array(variable):
            return out + [C.Assign(variable, C.Call(P("getitem"), (C.Var(tape.name), length)), origin)]
        load = (C.Var(tape.name), C.Var(tape.index), length, C.Var(variable))
        out.append(C.Assign(variable, C.Call(P("array_tape_load"), load), origin))
        if variable in self.copied_on_pop:  # the step's next recording reuses the tape's space
            out.append(C.Assign(variable, C.Call(P("copy"), (C.Var(variable),)), origin))
        return out

    def reserve(self, pushes: Counter, count: C.Var | None, origin) -> list:
        """Reserves the tapes a loop body pushes: `count` iterations' worth, or one iteration's (None)."""
        out = []
        for variable, per_iteration in sorted(pushes.items()):
            tape = self.tape(variable)
            need = C.Const(per_iteration)
            if count is not None:
                need = count if per_iteration == 1 else temp_call(self.names, out, "need", P("mul"),
                                                                  (count, need), origin)
            out.append(C.Assign(tape.name, C.Call(P("tape_reserve"), (C.Var(tape.name), C.Var(tape.length), need)),
                                origin))
        return out

    def make(self, origin) -> list:
        """Empty tapes, for the start of the function."""
        out = []
        for v, tape in sorted(self.tapes.items()):
            if self._is_array(v):
                t = self.types[v]
                out.append(C.Assign(tape.name, C.Call(empty_array(T.Array(t.dtype, 1)), ()), origin))
                index = empty_array(T.Array("int64", 2), shape=f"(0, {t.ndim + 1})")
                out.append(C.Assign(tape.index, C.Call(index, ()), origin))
            else:
                kind = self.types[v].kind if v in self.types else "int"
                out.append(C.Assign(tape.name, C.Call(P(f"tape_empty_{kind}"), (C.Const(0),)), origin))
            out.append(C.Assign(tape.length, C.Const(0), origin))
        return out
