"""Batched forward mode (transforms/batched.py): tangents with a trailing lane axis.

A tangent of a number is a vector of `lanes` values, a tangent of an array of shape S an array of shape
(*S, lanes): one directional derivative per lane, the lanes of an element side by side in memory. These
helpers are the lane-aware forms of what numba's numpy lacks for arrays of one more axis.
"""
import numpy as np
from numba.extending import overload, register_jitable

# the (before, along, after) block views of arrays along one axis, shared with the helpers' single-lane forms
from .rule_helpers import _around, _axis, _block_of, _blocks, _in_block, _prod_pairs


@register_jitable
def lanes_zeros(lanes, like):
    """The zero tangent of the array `like`: shape (*like.shape, lanes)."""
    return np.zeros(like.shape + (lanes,))


@register_jitable
def lanes_fit(tangent, like):
    """A new tangent of the array `like`, holding `tangent` broadcast to (*like.shape, lanes): a sum of terms
    can lack axes broadcasting gave the primal (`y = x + c`, c a constant array)."""
    return np.zeros(like.shape + (tangent.shape[-1],)) + tangent


@register_jitable
def lanes_scale(weights, tangent):
    """weights[..., None] * tangent: an array of weights (a partial derivative) applied in every lane."""
    return np.expand_dims(weights, weights.ndim) * tangent


@register_jitable
def lanes_tape(lanes, capacity):
    """The tangent of a new float tape (tape_empty_float)."""
    return np.zeros((capacity, lanes))


@register_jitable
def lanes_tape_reserve(tape, length, count):
    """tape_reserve for a tangent tape (capacity, lanes): grows along the tape's axis, keeping the lanes."""
    needed = length + count
    if needed <= tape.shape[0]:
        return tape
    capacity = max(needed, 2 * tape.shape[0], 16)
    grown = np.zeros((capacity, tape.shape[1]))
    for k in range(length):
        for lane in range(tape.shape[1]):
            grown[k, lane] = tape[k, lane]
    return grown


@register_jitable
def _lanes_flat(t):
    """t as a (size / lanes, lanes) matrix."""
    lanes = t.shape[-1]
    rows = t.size // lanes if lanes > 0 else 0
    return np.ascontiguousarray(t).reshape((rows, lanes))


@register_jitable
def lanes_sum(t):
    """The sum over every axis but the lanes: the tangent of np.sum(x) in each lane."""
    flat = _lanes_flat(t)
    out = np.zeros(flat.shape[1])
    for k in range(flat.shape[0]):
        for lane in range(flat.shape[1]):
            out[lane] += flat[k, lane]
    return out


@register_jitable
def lanes_dot(weights, t):
    """np.sum(weights * t) in each lane (weights shaped like one lane of t): the tangent of a reduction whose
    partial derivatives are `weights`."""
    flat = _lanes_flat(t)
    w = np.ascontiguousarray(weights).ravel()
    out = np.zeros(flat.shape[1])
    for k in range(flat.shape[0]):
        for lane in range(flat.shape[1]):
            out[lane] += w[k] * flat[k, lane]
    return out


@register_jitable
def lanes_cumsum(t):
    """np.cumsum (flattening) in each lane."""
    flat = _lanes_flat(t)
    out = np.empty(flat.shape)
    for lane in range(flat.shape[1]):
        total = 0.0
        for k in range(flat.shape[0]):
            total += flat[k, lane]
            out[k, lane] = total
    return out


@register_jitable
def lanes_ravel(t):
    """np.ravel in each lane."""
    return _lanes_flat(t)


@register_jitable
def lanes_reshape(t, like):
    """The tangent `t` of a value reshaped to like.shape, in each lane."""
    return np.ascontiguousarray(t).reshape(like.shape + (t.shape[-1],))


@register_jitable
def lanes_matvec(t, b):
    """t[:, :, lane] @ b for the tangent t (n, m, lanes) of a matrix and a vector b: (n, lanes)."""
    n, m, lanes = t.shape
    out = np.empty((n, lanes))
    contiguous = np.ascontiguousarray(b)
    for i in range(n):
        out[i] = contiguous @ np.ascontiguousarray(t[i])
    return out


@register_jitable
def lanes_vecmat(a, t):
    """a @ t[:, :, lane] for a vector a (n,) and the tangent t (n, m, lanes) of a matrix: (m, lanes), one
    product."""
    n, m, lanes = t.shape
    return (np.ascontiguousarray(a) @ np.ascontiguousarray(t).reshape((n, m * lanes))).reshape((m, lanes))


@register_jitable
def lanes_matmat(t, b):
    """t[:, :, lane] @ b for the tangent t (n, m, lanes) of a matrix and a matrix b (m, p): (n, p, lanes)."""
    n, m, lanes = t.shape
    out = np.empty((n, b.shape[1], lanes))
    transposed = np.ascontiguousarray(b.T)
    for i in range(n):
        out[i] = transposed @ np.ascontiguousarray(t[i])
    return out


@register_jitable
def lanes_matmat_right(a, t):
    """a @ t[:, :, lane] for a matrix a (n, m) and the tangent t (m, p, lanes) of a matrix: (n, p, lanes), one
    product."""
    m, p, lanes = t.shape
    product = np.ascontiguousarray(a) @ np.ascontiguousarray(t).reshape((m, p * lanes))
    return np.ascontiguousarray(product).reshape((a.shape[0], p, lanes))


@register_jitable
def lanes_transpose(t):
    """t[:, :, lane].T in every lane, contiguous."""
    n, m, lanes = t.shape
    out = np.empty((m, n, lanes))
    for i in range(n):
        for j in range(m):
            for lane in range(lanes):
                out[j, i, lane] = t[i, j, lane]
    return out


@register_jitable
def lanes_trace(t):
    """np.trace(t[:, :, lane]) in every lane."""
    out = np.zeros(t.shape[2])
    for i in range(min(t.shape[0], t.shape[1])):
        for lane in range(t.shape[2]):
            out[lane] += t[i, i, lane]
    return out


@register_jitable
def lanes_solve(a, t):
    """np.linalg.solve(a, t[..., lane]) for every lane from one factorization of a: t is (n, lanes) or
    (n, m, lanes)."""
    n = t.shape[0]
    columns = np.ascontiguousarray(t).reshape((n, t.size // n))
    return np.ascontiguousarray(np.linalg.solve(a, columns)).reshape(t.shape)  # numba's solve gives F order


@register_jitable
def lanes_cholesky_jvp(lower, t):
    """cholesky_jvp in every lane, inverting the factor once."""
    inverse = np.linalg.inv(lower)
    out = np.empty(t.shape)
    for lane in range(t.shape[2]):
        inner = np.tril(inverse @ np.ascontiguousarray(t[:, :, lane]) @ inverse.T)
        for k in range(inner.shape[0]):
            inner[k, k] *= 0.5
        out[:, :, lane] = lower @ inner
    return out


def lanes_unbroadcast(t, like):
    """unbroadcast in every lane: sums t (*S, lanes) over the axes where `like` has size 1 and S does not."""
    result = t
    for axis in range(like.ndim):
        if like.shape[axis] == 1 and result.shape[axis] != 1:
            result = np.sum(result, axis=axis, keepdims=True)
    return result


@overload(lanes_unbroadcast)
def _lanes_unbroadcast_compiled(t, like):
    def array(t, like):
        result = np.ascontiguousarray(t)
        for axis in range(like.ndim):
            if like.shape[axis] == 1 and result.shape[axis] != 1:
                result = np.ascontiguousarray(np.expand_dims(np.sum(result, axis=axis), axis))
        return result
    return array


@register_jitable
def lanes_scatter(target, index, t):
    """The tangent of scatter_add(target, index, values) with respect to the values: t (len(index), ..., lanes)
    added into zeros shaped (*target.shape, lanes) at the indexed rows, repeated indices adding up."""
    out = np.zeros(target.shape + (t.shape[-1],))
    for k in range(index.shape[0]):
        out[index[k]] += t[k]
    return out


@register_jitable
def _lane_blocks(t, like, axis):
    """A tangent t (*S, lanes), S like's shape but along `axis`, as (before, S[axis], after * lanes) blocks; and
    like's extent along the axis."""
    before, along, after = _around(like.shape, axis)
    blocks = np.ascontiguousarray(t).reshape((before, t.shape[_axis(axis, like)], after * t.shape[-1]))
    return blocks, along


@register_jitable
def lanes_split(t, axis, start, like):
    """split_along in every lane: t (*S, lanes) -> (*like.shape, lanes); `axis` counts in like's axes."""
    blocks, along = _lane_blocks(t, like, axis)
    return _block_of(blocks, start, along).reshape(like.shape + (t.shape[-1],))


@register_jitable
def lanes_embed(t, like, axis, start):
    """embed_along in every lane: t (*S_k, lanes) -> (*like.shape, lanes); `axis` counts in like's axes."""
    blocks, along = _lane_blocks(t, like, axis)
    return _in_block(blocks, start, along).reshape(like.shape + (t.shape[-1],))


@register_jitable
def lanes_prod_others_along_tangent(x, t, axis):
    """prod_others_along_tangent in every lane: t (*x.shape, lanes)."""
    blocks = _blocks(x, axis)
    weights = np.ascontiguousarray(t).reshape(blocks.shape + (t.shape[-1],))
    return _prod_pairs(blocks, weights).reshape(t.shape)


@register_jitable
def lanes_prod_others_tangent(x, t):
    """prod_others_tangent in every lane: t (*x.shape, lanes)."""
    flat, lanes = np.ascontiguousarray(x).ravel(), t.shape[-1]
    weights = np.ascontiguousarray(t).reshape((x.size, lanes))
    return lanes_prod_others_along_tangent(flat, weights, 0).reshape(t.shape)
