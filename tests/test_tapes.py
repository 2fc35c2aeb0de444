"""The array tapes of generated adjoints (backend/tapes.py): what is pushed comes back, in reverse order, with its
shape and values, whatever its layout, size or dtype; compiled with numba and as plain Python."""
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba.extending import register_jitable

from diffprog.backend.tapes import array_tape_load, array_tape_note, array_tape_store


@register_jitable
def push(tape, index, length, x):
    index = array_tape_note(index, length, x)
    return array_tape_store(tape, index, length, x), index, length + 1


@register_jitable
def pop_all(tape, index, length, like):
    popped = []
    while length > 0:
        length -= 1
        popped.append(array_tape_load(tape, index, length, like).copy())
    return popped


def round_trip(arrays, like):
    """Pushes every array, then pops them all: the popped arrays, last pushed first."""
    tape, index, length = np.zeros(0, like.dtype), np.zeros((0, like.ndim + 1), np.int64), 0
    for x in arrays:
        tape, index, length = push(tape, index, length, x)
    return pop_all(tape, index, length, like)


def round_trip_views(arrays):
    """Pushes each matrix, its transpose and every other column (three layouts: C, F, neither)."""
    tape, index, length = np.zeros(0), np.zeros((0, 3), np.int64), 0
    for a in arrays:
        tape, index, length = push(tape, index, length, a)
        tape, index, length = push(tape, index, length, a.T)
        tape, index, length = push(tape, index, length, a[:, ::2])
    return pop_all(tape, index, length, arrays[0])


def views(a):
    return [a, a.T, a[:, ::2]]


round_trip_compiled = numba.njit(round_trip)
round_trip_views_compiled = numba.njit(round_trip_views)


@pytest.mark.parametrize("run", [round_trip_views, round_trip_views_compiled], ids=["python", "compiled"])
@settings(max_examples=20, deadline=None)
@given(shapes=st.lists(st.tuples(st.integers(0, 4), st.integers(0, 5)), min_size=1, max_size=30),
       seed=st.integers(0, 2 ** 16))
def test_matrices_of_any_shape_and_layout_come_back(run, shapes, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.normal(size=shape) * 10 for shape in shapes]
    popped = run(numba.typed.List(arrays) if run is round_trip_views_compiled else arrays)
    pushed = [view for a in arrays for view in views(a)]
    assert len(popped) == len(pushed)
    for got, want in zip(popped, reversed(pushed)):
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
def test_vectors_of_other_dtypes_come_back(dtype):
    rng = np.random.default_rng(1)
    arrays = [(rng.normal(size=n) * 5).astype(dtype) for n in (3, 0, 1, 70, 2, 200)]
    for run in (round_trip, round_trip_compiled):
        popped = run(numba.typed.List(arrays) if run is round_trip_compiled else arrays, arrays[0])
        for got, want in zip(popped, reversed(arrays)):
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)


def test_a_pushed_array_changed_afterwards_comes_back_as_pushed():
    x = np.arange(4.0)
    tape, index = np.zeros(0), np.zeros((0, 2), np.int64)
    index = array_tape_note(index, 0, x)
    tape = array_tape_store(tape, index, 0, x)
    x[:] = -1.0
    np.testing.assert_array_equal(array_tape_load(tape, index, 0, x), np.arange(4.0))
