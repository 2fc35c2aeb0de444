"""Adjoint updates: adding a contribution into an adjoint in place, undoing broadcasting, scattering into
indexed elements (transforms/reverse and backend/in_place.py emit these), without an array for the term where
numba would otherwise make one."""
import numba
import numpy as np
from numba.extending import overload, register_jitable


def unbroadcast(contribution, like):
    """Sums an adjoint contribution over the axes where `like` (same rank) was broadcast from size 1.

    Leading axes that broadcasting added are summed away by the generated code itself (their number is known
    statically); this handles the size-1 axes, known only at run time.
    """
    return unbroadcast_to(contribution, like.shape)


@overload(unbroadcast)
def _unbroadcast_compiled(contribution, like):
    return lambda contribution, like: unbroadcast_to(contribution, like.shape)


def unbroadcast_to(contribution, shape):
    """unbroadcast to an array of this shape: where the backward sweep saved an array's extents, not the array."""
    result = contribution
    for axis, extent in enumerate(shape):
        if extent == 1 and result.shape[axis] != 1:
            result = np.sum(result, axis=axis, keepdims=True)
    return result


@overload(unbroadcast_to)
def _unbroadcast_to_compiled(contribution, shape):
    if len(shape) == 1:
        def vector(contribution, shape):
            if shape[0] == 1 and contribution.shape[0] != 1:
                return np.full(1, np.sum(contribution))
            return np.ascontiguousarray(contribution)
        return vector

    def array(contribution, shape):
        result = np.ascontiguousarray(contribution)
        for axis in range(len(shape)):
            if shape[axis] == 1 and result.shape[axis] != 1:
                result = np.ascontiguousarray(np.expand_dims(np.sum(result, axis=axis), axis))
        return result
    return array


def add_outer(target, a, b):
    """target += np.outer(a, b), in place: an adjoint update that needs no array for the term."""
    target += np.outer(a, b)
    return target


@overload(add_outer)
def _add_outer_compiled(target, a, b):
    def update(target, a, b):
        for i in range(a.shape[0]):
            for j in range(b.shape[0]):
                target[i, j] += a[i] * b[j]
        return target
    return update


def add_product(target, a, b):
    """target += a * b in place, the product unbroadcast to target's shape: an adjoint update without an array
    for the term (backend/in_place.py)."""
    term = a * b
    if np.ndim(term) == target.ndim:
        term = unbroadcast_to(term, target.shape)
    target += term


def spread_like(term, like):
    """term broadcast to like's shape as a read-only view (size-1 axes get stride 0): an adjoint that is a
    single term, read where it is instead of added into a zeroed buffer (backend/in_place.py)."""
    return np.broadcast_to(term, like.shape)


@overload(spread_like)
def _spread_like_compiled(term, like):
    if isinstance(term, numba.types.Array):
        return lambda term, like: np.broadcast_to(term, like.shape)
    return lambda term, like: np.full(like.shape, term)


def sum_product(a, b):
    """np.sum(a * b) without an array for the product."""
    return np.sum(a * b)


def _flat(x):
    """A 1-D view of a vector or C-contiguous array, or the number x (only compiled: add_product's and
    sum_product's loops)."""
    raise NotImplementedError


@overload(_flat)
def _flat_compiled(x):
    if not isinstance(x, numba.types.Array) or x.ndim == 1:
        return lambda x: x
    return lambda x: x.reshape(x.size)


def _at(x, k):
    """x[k] of a vector, or the number x (only compiled)."""
    raise NotImplementedError


@overload(_at)
def _at_compiled(x, k):
    if isinstance(x, numba.types.Array):
        return lambda x, k: x[k]
    return lambda x, k: x


def _same_shape(x, target):
    """Whether x is a number or an array of target's shape (only compiled)."""
    raise NotImplementedError


@overload(_same_shape)
def _same_shape_compiled(x, target):
    if not isinstance(x, numba.types.Array):
        return lambda x, target: True
    return lambda x, target: x.shape == target.shape


def _flattens(*types_) -> bool:
    """Whether _flat and _at apply to values of these numba types: numbers, vectors and C-contiguous arrays."""
    return all(not isinstance(t, numba.types.Array) or t.ndim == 1 or t.layout == "C" for t in types_)


@overload(add_product)
def _add_product_compiled(target, a, b):
    ranks = [x.ndim for x in (a, b) if isinstance(x, numba.types.Array)]
    if max(ranks, default=0) < target.ndim or target.ndim == 0:
        def broadcast_in(target, a, b):  # the term broadcasts into target (or both are numbers, 0-d arrays)
            target += a * b
        return broadcast_in

    if not all(r == target.ndim for r in ranks):
        def unbroadcast_in(target, a, b):
            target += unbroadcast_to(a * b, target.shape)
        return unbroadcast_in
    if not _flattens(target, a, b):
        return lambda target, a, b: _add_broadcast_product(target, a, b)

    def update(target, a, b):
        if not (_same_shape(a, target) and _same_shape(b, target)):
            _add_broadcast_product(target, a, b)
            return
        flat, flat_a, flat_b = _flat(target), _flat(a), _flat(b)
        for k in range(flat.shape[0]):
            flat[k] += _at(flat_a, k) * _at(flat_b, k)
    return update


def _add_broadcast_product(target, a, b):
    """add_product for operands whose shapes differ in size-1 axes: a loop over the shape they broadcast to,
    adding into target's size-1 axes, so that no array holds the term (only compiled)."""
    raise NotImplementedError


@overload(_add_broadcast_product)
def _add_broadcast_product_compiled(target, a, b):
    if target.ndim == 2:  # as a stack of one matrix
        return lambda target, a, b: _add_broadcast_product(np.expand_dims(target, 0), _stacked(a), _stacked(b))
    if target.ndim == 3:
        def array3(target, a, b):
            n0 = _joint_extent(target, a, b, 0)
            n1 = _joint_extent(target, a, b, 1)
            n2 = _joint_extent(target, a, b, 2)
            a_, b_ = _spread(a, (n0, n1, n2)), _spread(b, (n0, n1, n2))
            t0, t1 = int(target.shape[0] != 1), int(target.shape[1] != 1)
            summed, steady_a, steady_b = target.shape[2] == 1, _steady(a_), _steady(b_)
            for i in range(n0):
                for j in range(n1):
                    if summed:  # target's last axis has extent 1: the row's products summed into it
                        total = 0.0
                        for k in range(n2):
                            total += _at3(a_, i, j, k) * _at3(b_, i, j, k)
                        target[i * t0, j * t1, 0] += total
                    elif steady_b:  # b constant along the row (stride 0, or a number): read once
                        factor = _at3(b_, i, j, 0)
                        for k in range(n2):
                            target[i * t0, j * t1, k] += _at3(a_, i, j, k) * factor
                    elif steady_a:
                        factor = _at3(a_, i, j, 0)
                        for k in range(n2):
                            target[i * t0, j * t1, k] += factor * _at3(b_, i, j, k)
                    else:
                        for k in range(n2):
                            target[i * t0, j * t1, k] += _at3(a_, i, j, k) * _at3(b_, i, j, k)
        return array3

    def any_rank(target, a, b):
        target += unbroadcast_to(a * b, target.shape)
    return any_rank


def _stacked(x):
    """x with a leading axis of extent 1, or the number x (only compiled)."""
    raise NotImplementedError


@overload(_stacked)
def _stacked_compiled(x):
    if isinstance(x, numba.types.Array):
        return lambda x: np.expand_dims(x, 0)
    return lambda x: x


def _at3(x, i, j, k):
    """x[i, j, k], or the number x (only compiled)."""
    raise NotImplementedError


@overload(_at3)
def _at3_compiled(x, i, j, k):
    if isinstance(x, numba.types.Array):
        return lambda x, i, j, k: x[i, j, k]
    return lambda x, i, j, k: x


def _steady(x):
    """Whether x is the same all along its last axis: a number, or an array whose last stride is 0 (a
    broadcast) (only compiled)."""
    raise NotImplementedError


@overload(_steady)
def _steady_compiled(x):
    if isinstance(x, numba.types.Array):
        return lambda x: x.strides[-1] == 0
    return lambda x: True


@register_jitable
def _broadcast_extent(extents):
    joint = max(extents)
    for n in extents:
        if n != joint and n != 1:
            raise ValueError("operands could not be broadcast together")
    return joint


def _joint_extent(target, a, b, axis):
    """The extent along `axis` that target, a and b (numbers: extent 1) broadcast to (only compiled)."""
    raise NotImplementedError


@overload(_joint_extent)
def _joint_extent_compiled(target, a, b, axis):
    def joint(target, a, b, axis):
        return _broadcast_extent((target.shape[axis], _extent(a, axis), _extent(b, axis)))
    return joint


def _extent(x, axis):
    """x.shape[axis], or 1 for a number (only compiled)."""
    raise NotImplementedError


@overload(_extent)
def _extent_compiled(x, axis):
    if isinstance(x, numba.types.Array):
        return lambda x, axis: x.shape[axis]
    return lambda x, axis: 1


def _spread(x, shape):
    """x broadcast to `shape` as a view (size-1 axes get stride 0), or the number x (only compiled)."""
    raise NotImplementedError


@overload(_spread)
def _spread_compiled(x, shape):
    if isinstance(x, numba.types.Array):
        return lambda x, shape: np.broadcast_to(x, shape)
    return lambda x, shape: x


@overload(sum_product)
def _sum_product_compiled(a, b):
    arrays = [x for x in (a, b) if isinstance(x, numba.types.Array)]
    if not arrays:
        return lambda a, b: a * b
    if not (_flattens(a, b) and all(x.ndim == arrays[0].ndim for x in arrays)):
        return lambda a, b: np.sum(a * b)
    like_is_a = isinstance(a, numba.types.Array)

    def dot(a, b):
        like = a if like_is_a else b
        if not (_same_shape(a, like) and _same_shape(b, like)):
            return np.sum(a * b)
        flat_a, flat_b = _flat(a), _flat(b)
        total = 0.0
        for k in range(like.size):
            total += _at(flat_a, k) * _at(flat_b, k)
        return total
    return dot


def add_matmul(target, a, b):
    """target += a @ b in place: an adjoint update without an array for the term (backend/in_place.py)."""
    target += a @ b


_LOOPED_MATMUL = 4096  # elements of the matrix up to which a plain loop beats a BLAS call and its result array


@overload(add_matmul)
def _add_matmul_compiled(target, a, b):
    if a.ndim == 2 and b.ndim == 1:
        def matrix_vector(target, a, b):
            if a.size > _LOOPED_MATMUL:
                target += a @ b
                return
            if a.strides[0] <= a.strides[1]:  # columns contiguous (a transposed matrix: the adjoint's A.T)
                for j in range(a.shape[1]):
                    for i in range(a.shape[0]):
                        target[i] += a[i, j] * b[j]
                return
            for i in range(a.shape[0]):
                total = 0.0
                for j in range(a.shape[1]):
                    total += a[i, j] * b[j]
                target[i] += total
        return matrix_vector
    if a.ndim == 1 and b.ndim == 2:
        def vector_matrix(target, a, b):
            if b.size > _LOOPED_MATMUL:
                target += a @ b
                return
            for i in range(b.shape[0]):
                for j in range(b.shape[1]):
                    target[j] += a[i] * b[i, j]
        return vector_matrix

    def general(target, a, b):
        target += a @ b
    return general


def add_at(target, term, index):
    """target[index] += term in place, for an int or a tuple of ints (a row, a plane) or a boolean mask: the
    adjoint of a read of part of an array, without a view of that part (backend/in_place.py)."""
    target[index] += term


@overload(add_at)
def _add_at_compiled(target, term, index):
    if isinstance(index, numba.types.Integer) and term.ndim == 1 and target.ndim == 2:
        def row(target, term, index):
            for j in range(term.shape[0]):
                target[index, j] += term[j]
        return row
    if isinstance(index, numba.types.UniTuple) and len(index) == 2 and term.ndim == 1 and target.ndim == 3:
        def row_of_plane(target, term, index):
            for k in range(term.shape[0]):
                target[index[0], index[1], k] += term[k]
        return row_of_plane
    if isinstance(index, numba.types.Integer) and term.ndim == 2 and target.ndim == 3:
        def plane(target, term, index):
            for j in range(term.shape[0]):
                for k in range(term.shape[1]):
                    target[index, j, k] += term[j, k]
        return plane

    def general(target, term, index):  # a mask, or other ranks: the read's elements, added and written back
        part = target[index] + term
        target[index] = part
    return general


def add_outer_at(target, a, b, index):
    """target[index] += np.outer(a, b) in place: an outer product added into a plane of an adjoint without a
    matrix for it (backend/in_place.py)."""
    target[index] += np.outer(a, b)


@overload(add_outer_at)
def _add_outer_at_compiled(target, a, b, index):
    def update(target, a, b, index):
        if target.shape[1:] != (a.shape[0], b.shape[0]):
            raise ValueError("add_outer_at: the outer product's shape differs from the plane's")
        for i in range(a.shape[0]):
            for j in range(b.shape[0]):
                target[index, i, j] += a[i] * b[j]
    return update


def move_at(target, source, index):
    """target += source[index], then source[index] = 0: the adjoint of a write into part of an array, without a
    view of that part (backend/in_place.py)."""
    target += source[index]
    source[index] = 0.0


@overload(move_at)
def _move_at_compiled(target, source, index):
    if isinstance(index, numba.types.Integer) and target.ndim == 1 and source.ndim == 2:
        def row(target, source, index):
            for j in range(target.shape[0]):
                target[j] += source[index, j]
                source[index, j] = 0.0
        return row
    if isinstance(index, numba.types.UniTuple) and len(index) == 2 and target.ndim == 1 and source.ndim == 3:
        def row_of_plane(target, source, index):
            for k in range(target.shape[0]):
                target[k] += source[index[0], index[1], k]
                source[index[0], index[1], k] = 0.0
        return row_of_plane

    def general(target, source, index):
        target += source[index]
        source[index] = 0.0
    return general


def scatter_add(target, index, values):
    """target[index] += values for an integer index array, adding repeated indices (numpy's np.add.at)."""
    for k in range(index.shape[0]):
        target[index[k]] += values[k]
    return target


scatter_add = register_jitable(scatter_add)
