"""Helpers that rule templates call (rt.NAME in rules/numpy_rules.py and rules/structural.py): derivatives of
factorizations and products, and reductions, prefix sums and joins along one axis where numba's numpy takes no
axis argument."""
import numba
import numpy as np
from numba.extending import overload, register_jitable


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


def max_along(x, axis):
    """np.max(x, axis) for vectors and matrices (numba's np.max takes no axis)."""
    return np.max(x, axis=axis)


@overload(max_along)
def _max_along_compiled(x, axis):
    if x.ndim == 1:
        return lambda x, axis: np.max(x)  # a vector's only axis: its maximum, a number

    def matrix(x, axis):
        if axis == 0:
            out = x[0].copy()
            for i in range(1, x.shape[0]):
                out = np.maximum(out, x[i])
            return out
        out = np.empty(x.shape[0])
        for i in range(x.shape[0]):
            out[i] = np.max(x[i])
        return out
    return matrix


@register_jitable
def min_along(x, axis):
    """np.min(x, axis) for vectors and matrices."""
    return -max_along(-x, axis)


def keep_axis(value, axis):
    """A reduction along `axis` given its axis back (keepdims=True): np.expand_dims, also of a number (the
    reduction of a vector), which becomes a 1-element array."""
    return np.expand_dims(value, axis)


@overload(keep_axis)
def _keep_axis_compiled(value, axis):
    if isinstance(value, numba.types.Number):
        return lambda value, axis: np.full(1, value)
    return lambda value, axis: np.expand_dims(value, axis)


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


# Reductions, prefix sums and joins along one axis of an array of any rank, for what numba's numpy lacks
# (np.prod(x, axis=k)) and for their derivatives. The array is viewed, in C order, as a (before, along, after)
# block: the product of the extents before the axis, the axis' extent, the product of those after it.
@register_jitable
def _around(shape, axis):
    """(before, along, after) of an array of shape `shape` around `axis` (negative counts from the end)."""
    axis = axis + len(shape) if axis < 0 else axis
    before, after = 1, 1
    for k in range(axis):
        before *= shape[k]
    for k in range(axis + 1, len(shape)):
        after *= shape[k]
    return before, shape[axis], after


@register_jitable
def _blocks(x, axis):
    """x as its contiguous (before, along, after) block around `axis`."""
    return np.ascontiguousarray(x).reshape(_around(x.shape, axis))


@register_jitable
def _axis(axis, like):
    """`axis` of an array of like's rank as a non-negative number."""
    return axis + like.ndim if axis < 0 else axis


def prod_along(x, axis):
    """np.prod(x, axis=axis) (numba's np.prod takes no axis)."""
    return np.prod(x, axis=axis)


@overload(prod_along)
def _prod_along_compiled(x, axis):
    if x.ndim == 1:
        return lambda x, axis: np.prod(x)

    def array(x, axis):
        blocks = _blocks(x, axis)
        before, along, after = blocks.shape
        out = np.sum(x, axis=axis)  # the result's shape and dtype; overwritten below
        products = out.reshape((before, after))
        for i in range(before):
            for j in range(after):
                product = blocks[i, 0, j] if along > 0 else 1
                for k in range(1, along):
                    product *= blocks[i, k, j]
                products[i, j] = product
        return products.reshape(out.shape)
    return array


@register_jitable
def prod_others_along(x, axis):
    """For each element, the product of the others along `axis`: d np.prod(x, axis) / d x, float64 and shaped
    like x, also where elements are zero (prefix times suffix products, no division)."""
    blocks = _blocks(x, axis)
    before, along, after = blocks.shape
    out = np.empty(blocks.shape)
    for i in range(before):
        for j in range(after):
            left = 1.0
            for k in range(along):
                out[i, k, j] = left
                left *= blocks[i, k, j]
            right = 1.0
            for k in range(along - 1, -1, -1):
                out[i, k, j] *= right
                right *= blocks[i, k, j]
    return out.reshape(x.shape)


@register_jitable
def cumsum_reversed(g, axis):
    """Sums from each element to the end along `axis` (the adjoint of np.cumsum(x, axis)), float64."""
    blocks = _blocks(g, axis)
    before, along, after = blocks.shape
    out = np.empty(blocks.shape)
    for i in range(before):
        for j in range(after):
            total = 0.0
            for k in range(along - 1, -1, -1):
                total += blocks[i, k, j]
                out[i, k, j] = total
    return out.reshape(g.shape)


@register_jitable
def _block_of(blocks, start, along):
    """blocks[:, start:start + along, :] as a new float64 array."""
    out = np.empty((blocks.shape[0], along, blocks.shape[2]))
    for i in range(blocks.shape[0]):
        for k in range(along):
            for j in range(blocks.shape[2]):
                out[i, k, j] = blocks[i, start + k, j]
    return out


@register_jitable
def _in_block(blocks, start, along):
    """Zeros of `along` extent in the middle axis holding `blocks` from `start` (the other block's inverse)."""
    out = np.zeros((blocks.shape[0], along, blocks.shape[2]))
    for i in range(blocks.shape[0]):
        for k in range(blocks.shape[1]):
            for j in range(blocks.shape[2]):
                out[i, start + k, j] = blocks[i, k, j]
    return out


@register_jitable
def split_along(g, axis, start, like):
    """The part of g, along `axis` from `start`, that an argument shaped like `like` contributed to a
    concatenation (the adjoint of np.concatenate(..., axis)), float64."""
    return _block_of(_blocks(g, axis), start, like.shape[_axis(axis, like)]).reshape(like.shape)


@register_jitable
def embed_along(t, like, axis, start):
    """Zeros shaped like `like` holding t along `axis` from `start` (the tangent of a concatenation with respect
    to one argument), float64."""
    return _in_block(_blocks(t, axis), start, like.shape[_axis(axis, like)]).reshape(like.shape)


# The derivative of the product of the others (the Hessian of a product), for second derivatives: for each
# element i, sum over j != i of w_j times the product of the elements other than i and j. Symmetric in i and j, so
# it is both the tangent (w = t) and the adjoint (w = g) of prod_others. Exact at zeros: running sums of partial
# products from both ends, no division.
@register_jitable
def _prod_pairs(blocks, weights):
    """blocks (before, along, after), weights (before, along, after, lanes) -> (before, along, after, lanes)."""
    before, along, after = blocks.shape
    out = np.zeros(weights.shape)
    prefix = np.empty(along)  # prefix[k]: the product of the elements before k
    for i in range(before):
        for j in range(after):
            product = 1.0
            for k in range(along):
                prefix[k] = product
                product *= blocks[i, k, j]
            for lane in range(weights.shape[3]):
                left = 0.0  # sum over m < k of w_m times the product of the elements before k but m
                for k in range(along):
                    out[i, k, j, lane] = left
                    left = left * blocks[i, k, j] + weights[i, k, j, lane] * prefix[k]
                suffix, right = 1.0, 0.0  # the same from the end
                for k in range(along - 1, -1, -1):
                    out[i, k, j, lane] = out[i, k, j, lane] * suffix + right * prefix[k]
                    right = right * blocks[i, k, j] + weights[i, k, j, lane] * suffix
                    suffix *= blocks[i, k, j]
    return out


@register_jitable
def prod_others_along_tangent(x, t, axis):
    """The tangent of prod_others_along(x, axis) in direction t (also its adjoint for g = t), shaped like x."""
    blocks = _blocks(x, axis)
    weights = np.ascontiguousarray(t).reshape(blocks.shape + (1,))  # one lane
    return _prod_pairs(blocks, weights).reshape(x.shape)


@register_jitable
def prod_others_tangent(x, t):
    """The tangent of prod_others(x) in direction t (also its adjoint for g = t), shaped like x."""
    flat = np.ascontiguousarray(x).ravel()
    return prod_others_along_tangent(flat, np.ascontiguousarray(t).ravel(), 0).reshape(x.shape)


def array_of(x):
    """np.array(x) of one value: a number becomes a 0-d array, an array is copied."""
    return np.array(x)


@overload(array_of)
def _array_of_compiled(x):
    if isinstance(x, numba.types.Number) or isinstance(x, numba.types.Boolean):
        return lambda x: np.full((), x)  # numba's np.array takes sequences, not a number
    return lambda x: np.copy(x)


# np.vstack, np.hstack, np.concatenate and np.stack of one array (not a tuple of them) join the array's items
# along its first axis: each a copy reshaped in C order (rules/numpy_rules.py gives the shapes by rank).
def vstack_of(a):
    return np.vstack(a)


def hstack_of(a):
    return np.hstack(a)


def concatenate_of(a):
    return np.concatenate(a)


def stack_of(a):
    return np.stack(a)


def _merged_leading(a):
    """(k, m, ...) -> (k * m, ...): the items of a, joined along their first axis."""
    if a.ndim == 2:
        return lambda a: np.copy(a).reshape(a.shape[0] * a.shape[1])
    if a.ndim == 3:
        return lambda a: np.copy(a).reshape((a.shape[0] * a.shape[1], a.shape[2]))
    if a.ndim == 4:
        return lambda a: np.copy(a).reshape((a.shape[0] * a.shape[1], a.shape[2], a.shape[3]))
    return None


@overload(vstack_of)
def _vstack_of_compiled(a):
    if a.ndim == 1:  # each element a row of one
        return lambda a: np.copy(a).reshape((a.shape[0], 1))
    if a.ndim == 2:
        return lambda a: np.copy(a)
    return _merged_leading(a)


@overload(hstack_of)
def _hstack_of_compiled(a):
    if a.ndim == 1:
        return lambda a: np.copy(a)
    if a.ndim == 2:
        return _merged_leading(a)
    return None


@overload(concatenate_of)
def _concatenate_of_compiled(a):
    return _merged_leading(a)


@overload(stack_of)
def _stack_of_compiled(a):
    return lambda a: np.copy(a)


def inner_product(a, b):
    """np.inner of vectors and matrices: the sum over the last axes of both (numba has no np.inner)."""
    return np.inner(a, b)


@overload(inner_product)
def _inner_product_compiled(a, b):
    ranks = (a.ndim, b.ndim)
    if ranks == (1, 1):
        return lambda a, b: np.dot(a, b)
    if ranks == (1, 2):
        return lambda a, b: b @ a
    if ranks == (2, 1):
        return lambda a, b: a @ b
    if ranks == (2, 2):
        return lambda a, b: a @ b.T
    return None
