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


@register_jitable
def cholesky_vjp(lower, g):
    """Adjoint of A = L L^T factorization (Murray 2016): sym(L^-T Phi(L^T g) L^-1), Phi = lower part, half
    diagonal."""
    inner = np.tril(lower.T @ g)
    for k in range(inner.shape[0]):
        inner[k, k] *= 0.5
    inverse = np.linalg.inv(lower)
    s = inverse.T @ inner @ inverse
    return 0.5 * (s + s.T)


@register_jitable
def cholesky_jvp(lower, t):
    """Tangent of L = cholesky(A): L Phi(L^-1 t L^-T)."""
    inverse = np.linalg.inv(lower)
    inner = np.tril(inverse @ t @ inverse.T)
    for k in range(inner.shape[0]):
        inner[k, k] *= 0.5
    return lower @ inner


@register_jitable
def max_along(x, axis):
    """np.max(x, axis) for matrices (numba's np.max takes no axis)."""
    if axis == 0:
        out = x[0].copy()
        for i in range(1, x.shape[0]):
            out = np.maximum(out, x[i])
        return out
    out = np.empty(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = np.max(x[i])
    return out


@register_jitable
def min_along(x, axis):
    """np.min(x, axis) for matrices."""
    return -max_along(-x, axis)


@register_jitable
def prod_others(x):
    """For each element, the product of all the others: d prod(x) / d x, also where elements are zero."""
    flat = np.ascontiguousarray(x).ravel()
    n = flat.shape[0]
    out = np.ones(n)
    left = 1.0
    for k in range(n):
        out[k] = left
        left *= flat[k]
    right = 1.0
    for k in range(n - 1, -1, -1):
        out[k] *= right
        right *= flat[k]
    return out.reshape(x.shape)
