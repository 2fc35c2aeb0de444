"""Helpers the generated code calls. Plain Python functions that numba compiles inline into the caller
(`register_jitable`), so the same generated module runs with and without numba."""
import numpy as np
from numba.extending import overload, register_jitable


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


def unbroadcast(contribution, like):
    """Sums an adjoint contribution over the axes where `like` (same rank) was broadcast from size 1.

    Leading axes that broadcasting added are summed away by the generated code itself (their number is known
    statically); this handles the size-1 axes, known only at run time.
    """
    result = contribution
    for axis in range(like.ndim):
        if like.shape[axis] == 1 and result.shape[axis] != 1:
            result = np.sum(result, axis=axis, keepdims=True)
    return result


@overload(unbroadcast)
def _unbroadcast_compiled(contribution, like):
    if like.ndim == 1:
        def vector(contribution, like):
            if like.shape[0] == 1 and contribution.shape[0] != 1:
                return np.full(1, np.sum(contribution))
            return np.ascontiguousarray(contribution)
        return vector

    def array(contribution, like):
        result = np.ascontiguousarray(contribution)
        for axis in range(like.ndim):
            if like.shape[axis] == 1 and result.shape[axis] != 1:
                result = np.ascontiguousarray(np.expand_dims(np.sum(result, axis=axis), axis))
        return result
    return array


def scatter_add(target, index, values):
    """target[index] += values for an integer index array, adding repeated indices (numpy's np.add.at)."""
    for k in range(index.shape[0]):
        target[index[k]] += values[k]
    return target


scatter_add = register_jitable(scatter_add)
