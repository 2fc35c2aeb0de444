"""Tapes for the generated adjoints.

A tape of numbers is a numba array with a length beside it, grown by `tape_reserve` before pushes.

A loop that overwrites an array the backward sweep reads pushes the old array on a tape. Each such tape is one
flat buffer per variable, holding the pushed arrays' elements one after another, and an index with one row per
push: where its elements start, then its shape. A typed list of arrays would cost a reference-counted
allocation per push and another per pop (about 300 ns each, more than computing a small array); here a push
copies the elements and a pop is a view. Buffer and index grow geometrically, so pushes stay amortized O(1).

Each helper is a plain Python function for the uncompiled generated code, and numba compiles an equivalent
(`overload`) where numpy's general forms (reshape to a shape from an array) have no numba counterpart.
"""
import numpy as np
from numba.extending import overload, register_jitable
from numba.np.unsafe.ndarray import to_fixed_tuple


@register_jitable
def tape_reserve(tape, length, count):
    """Makes room for `count` more pushes; grows geometrically so pushes stay amortized O(1)."""
    needed = length + count
    if needed <= tape.shape[0]:
        return tape
    capacity = max(needed, 2 * tape.shape[0], 16)
    grown = np.empty(capacity, tape.dtype)
    for k in range(length):
        grown[k] = tape[k]
    return grown


@register_jitable(inline="always")
def array_tape_note(index, length, x):
    """Adds row `length` to the index: where push `length` (of x) starts in the buffer, then x's shape."""
    index = _index_room(index, length)
    previous = max(length - 1, 0)
    start = (index[previous, 0] + _size(index[previous, 1:])) * min(length, 1)  # 0 for the first push
    index[length, 0] = start
    for axis in range(x.ndim):
        index[length, axis + 1] = x.shape[axis]
    return index


@register_jitable
def _index_room(index, length):
    """`index`, or a copy twice as long when row `length` does not fit."""
    if length < index.shape[0]:
        return index
    grown = np.zeros((max(16, 2 * length), index.shape[1]), np.int64)
    grown[:length] = index[:length]
    return grown


@register_jitable(inline="always")
def _size(shape):
    size = 1
    for extent in shape:
        size *= extent
    return size


def array_tape_store(data, index, length, x):
    """Copies x's elements (any layout) to where index row `length` says, growing the buffer if needed."""
    start = index[length, 0]
    data = _room(data, start, start + x.size)
    data[start:start + x.size] = x.reshape(-1)
    return data


@register_jitable(inline="always")
def _room(data, start, end):
    """`data`, or a larger copy of its first `start` elements when `end` elements do not fit."""
    if end <= data.shape[0]:
        return data
    grown = np.empty(max(end, 2 * data.shape[0], 64), data.dtype)
    grown[:start] = data[:start]
    return grown


@overload(array_tape_store, inline="always")
def _array_tape_store_compiled(data, index, length, x):
    def store_vector(data, index, length, x):
        start = index[length, 0]
        data = _room(data, start, start + x.size)
        for k in range(x.shape[0]):
            data[start + k] = x[k]
        return data

    def store(data, index, length, x):
        start = index[length, 0]
        data = _room(data, start, start + x.size)
        _copy_elements(data, start, x)
        return data
    return store_vector if x.ndim == 1 else store


@register_jitable
def _copy_elements(data, start, x):
    """data[start:start + x.size] = x's elements in C order (numba reshapes only contiguous arrays)."""
    position = start
    for value in x.flat:
        data[position] = value
        position += 1


def array_tape_load(data, index, length, like):
    """Push `length` as an array shaped as it was pushed: a view of the buffer (`like` gives the rank)."""
    shape = tuple(int(extent) for extent in index[length, 1:])
    start = index[length, 0]
    return data[start:start + _size(shape)].reshape(shape)


@overload(array_tape_load, inline="always")
def _array_tape_load_compiled(data, index, length, like):
    ndim = like.ndim

    def load(data, index, length, like):
        shape = to_fixed_tuple(index[length, 1:], ndim)
        start = index[length, 0]
        return data[start:start + _size(shape)].reshape(shape)
    return load
