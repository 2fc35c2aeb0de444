"""Helpers the generated code calls. Plain Python functions that numba compiles inline into the caller
(`register_jitable`), so the same generated module runs with and without numba."""
import numpy as np
from numba.extending import register_jitable


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
