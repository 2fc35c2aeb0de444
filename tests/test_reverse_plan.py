"""The reverse pass's plan: what it decides to save, recompute, keep the extents of or tape, for small programs,
and that the code written out from the plan carries those decisions out.

Each program runs through the compiler's pipeline up to the reverse pass (`until="check"`), and its input is
planned here (planning and emission are deterministic, so the plan is the one the emitted code comes from).
"""
import numpy as np
import pytest

import diffprog as dp
from diffprog.ir import core as C
from diffprog.transforms.reverse import Keep, emit, plan


@pytest.fixture
def planned():
    """planned(f, args, argnums) -> (the plan, the emitted reverse function)."""
    def run(f, args, argnums=0):
        compiler = dp.api.as_differentiable(f).compiler
        wrt = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        unit = compiler.compile("reverse", wrt, compiler.signature(args), until="check")  # the reverse pass's input
        wrt_names = [unit.function.params[k] for k in unit.wrt]
        result, adjoints = plan(unit.function, unit.types, unit.activity, unit.names, compiler.checkpoint)
        emitted = emit(result, adjoints, unit.types, unit.activity, wrt_names, unit.names)
        return result, emitted
    return run


def _statements(function):
    return [s for s, _ in C.walk(function.body)]


def _stores_into(function, base):
    return [s for s in _statements(function) if isinstance(s, C.Store) and s.base == base]


def _assigns(function, target):
    return [s for s in _statements(function) if isinstance(s, C.Assign) and s.target == target]


def test_loop_carried_scalar_read_nonlinearly_is_taped(planned):
    def f(x, n):
        for i in range(n):
            x = np.sin(x) * x
        return x

    result, emitted = planned(f, (0.5, 3))
    assert result.variables["x"] is Keep.SAVED
    tape = result.tapes["x"]
    assert not tape.reserved_at_each_push  # pushed in one loop body only: reserved at loop entry
    (loop,) = result.loops()
    assert not loop.trip_taped and loop.snapshots is None
    assert _stores_into(emitted, tape.name)  # pushed in the forward sweep
    assert any(isinstance(s.value, C.Call) and s.value.prim.name == "getitem" and s.value.args[0] == C.Var(tape.name)
               for s in _assigns(emitted, "x"))  # popped in the backward sweep


def test_value_read_only_for_its_shape_keeps_its_extents(planned):
    def f(x, n):
        y = x * 1.0
        for i in range(n):
            y = y + x
        return np.sum(y)

    result, emitted = planned(f, (np.ones(3), 2))
    extents = result.extents["y"]
    assert result.variables["y"] is Keep.EXTENTS and "y" not in result.tapes
    assert all(result.variables[e] in (Keep.SAVED, Keep.AS_IS) for e in extents)
    assert all(_assigns(emitted, e) for e in extents)  # the forward sweep keeps them after each assignment


def test_array_never_written_is_read_as_is_and_its_elements_recomputed(planned):
    def f(a, x, n):
        s = 0.0
        for i in range(n):
            s = s + np.sin(a[i]) * x
        return s

    result, emitted = planned(f, (np.linspace(0.1, 0.9, 4), 0.3, 4), argnums=(0, 1))
    assert result.variables["a"] is Keep.AS_IS and not result.tapes.get("a")
    (loop,) = result.loops()
    recomputed = [s.target for s in loop.recompute]
    assert recomputed and all(result.variables[v] is Keep.RECOMPUTED for v in recomputed)
    (read,) = [s for s in loop.recompute if s.value.prim.name == "getitem"]
    assert read.value.args[0] == C.Var("a")
    # recomputed in the backward loop, not taped in the forward one
    assert read.target not in result.tapes and len(_assigns(emitted, read.target)) == 2


def test_value_the_backward_sweep_never_reads_is_not_needed(planned):
    def f(x):
        y = x + 1.0
        return y * 2.0

    result, _ = planned(f, (0.5,))
    assert result.variables["y"] is Keep.NOT_NEEDED
    assert not result.tapes and not result.saved


def test_inner_loop_trip_count_is_taped(planned):
    def f(x, n):
        for i in range(n):
            for j in range(i):
                x = x * x
        return x

    result, emitted = planned(f, (0.9, 3))
    outer, inner = result.loops()
    assert not outer.trip_taped and inner.trip_taped
    assert result.variables["x"] is Keep.SAVED


def test_checkpointed_loop_carries_its_state_and_saves_nothing_per_step(planned):
    def f(x, n):
        with dp.checkpoint(snapshots=2):
            for i in range(n):
                x = np.sin(x) * x
        return x

    result, emitted = planned(f, (0.5, 5))
    (loop,) = result.loops()
    assert loop.snapshots == 2 and loop.checkpoint.state == ["x"]
    assert "x" not in result.tapes  # one step at a time: its recording saves in variables
    assert any(isinstance(s.value, C.Call) and s.value.prim.name == "revolve_next"
               for s in _statements(emitted) if isinstance(s, C.Assign))


def test_plan_and_emission_are_what_reverse_runs(planned):
    def f(x, n):
        s = 0.0
        while s < 3.0 and n > 0:
            s = s + np.exp(x) * s + 0.5
            n = n - 1
        return s

    result, emitted = planned(f, (0.2, 6))
    assert emitted.name == "f_reverse"
    (loop,) = result.loops()
    assert loop.snapshots is None and not loop.trip_taped
    assert result.variables["s"] is Keep.SAVED and _stores_into(emitted, result.tapes["s"].name)
