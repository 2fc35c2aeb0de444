"""Helpers the generated code calls. Plain Python functions that numba compiles inline into the caller
(`register_jitable`), so the same generated module runs with and without numba."""
import numba.typed
import numpy as np
from numba.extending import overload, register_jitable

from ..rules.runtime_calls import REVOLVE_ACTIONS


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
    if max(ranks, default=0) < target.ndim:
        def broadcast_in(target, a, b):  # the term broadcasts into target
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


# Binomial checkpointing (Griewank's revolve) for loops under `diffprog.checkpoint`. The generated adjoint asks
# `revolve_next` for one action at a time and carries it out on the loop's state; the schedule lives in a small
# int64 array, so a loop of 10^7 steps needs no per-step memory beyond its snapshots.
REVOLVE_DONE, REVOLVE_ADVANCE, REVOLVE_TAKESHOT, REVOLVE_RESTORE, REVOLVE_YOUTURN = (
    REVOLVE_ACTIONS[name] for name in ("done", "advance", "takeshot", "restore", "youturn"))
# The schedule array: the action's arguments, the schedule's position, then the checkpointed step of each slot.
_FROM, _TO, _SLOT, _TOP, _UNDONE, _SLOTS, _PHASE, _LIVE, _POSITIONS = range(9)


@register_jitable
def revolve_slots(steps, snapshots):
    """How many states to keep (one of them the loop's entry state): `snapshots` when given, else the fewest
    with which no step runs more than twice before it is reversed (C(s + 2, 2) >= steps: O(sqrt(steps)))."""
    if snapshots > 0:
        return snapshots
    slots = 1
    while (slots + 1) * (slots + 2) // 2 < steps:
        slots += 1
    return slots


@register_jitable
def revolve_split(steps, slots):
    """How far to advance before keeping the next snapshot, when `steps` steps are to be reversed from a kept
    state with `slots` slots (that state's included). With r the fewest repetitions for which
    beta(slots, r) = C(slots + r, slots) >= steps, any split in [steps - beta(slots - 1, r), beta(slots, r - 1)]
    repeats no step more than r times (Griewank & Walther, revolve); beta(slots, r - 2) clamped to that range
    also minimizes the total number of steps advanced (checked against exhaustive search in the tests)."""
    repetitions = 0
    beta = 1  # beta(slots, r), then beta(slots, r - 1) and beta(slots, r - 2) (zero for negative r)
    beta_1 = 0
    beta_2 = 0
    while beta < steps:
        repetitions += 1
        beta_2 = beta_1
        beta_1 = beta
        beta = beta * (slots + repetitions) // repetitions
    lower = max(1, steps - (beta - beta_1))
    upper = min(beta_1, steps - 1)
    return min(max(lower, beta_2), upper)


@register_jitable
def revolve_new(steps, slots):
    schedule = np.zeros(_POSITIONS + slots, np.int64)
    schedule[_TOP] = -1
    schedule[_UNDONE] = steps  # steps at and after this one are reversed already
    schedule[_SLOTS] = slots
    return schedule


@register_jitable
def revolve_next(s):
    """The next action: ADVANCE steps s[0]..s[1]-1 without recording, TAKESHOT / RESTORE slot s[2], YOUTURN
    (record and reverse) step s[0], or DONE. The state starts at step 0 and ends undefined (restore slot 0)."""
    while True:
        phase = s[_PHASE]
        if phase == 0:  # keep the entry state (slot 0), even for a loop that runs no step
            s[_PHASE] = 1
            s[_TOP] = 0 if s[_UNDONE] > 0 else -1
            s[_SLOT] = 0
            return REVOLVE_TAKESHOT
        top = s[_TOP]
        if top < 0:
            return REVOLVE_DONE
        start = s[_POSITIONS + top]
        undone = s[_UNDONE]
        if phase == 1:  # bring the state to the newest snapshot
            s[_PHASE] = 2
            if s[_LIVE] != start:
                s[_SLOT] = top
                s[_LIVE] = start
                return REVOLVE_RESTORE
        elif phase == 2:
            if undone - start == 1:  # the snapshot's own step: reverse it, and free the snapshot
                s[_FROM] = start
                s[_UNDONE] = start
                s[_TOP] = top - 1
                s[_LIVE] = -1
                s[_PHASE] = 1
                return REVOLVE_YOUTURN
            free = s[_SLOTS] - 1 - top
            s[_FROM] = start
            if free > 0:  # advance to the binomial split point and keep a snapshot there
                s[_TO] = start + revolve_split(undone - start, free + 1)
                s[_PHASE] = 3
            else:  # no slot left: advance to the last undone step and reverse it
                s[_TO] = undone - 1
                s[_PHASE] = 4
            s[_LIVE] = s[_TO]
            return REVOLVE_ADVANCE
        elif phase == 3:
            s[_TOP] = top + 1
            s[_POSITIONS + top + 1] = s[_TO]
            s[_SLOT] = top + 1
            s[_PHASE] = 1
            return REVOLVE_TAKESHOT
        else:  # phase 4
            s[_FROM] = undone - 1
            s[_UNDONE] = undone - 1
            s[_LIVE] = -1
            s[_PHASE] = 1
            return REVOLVE_YOUTURN


@register_jitable
def snapshot_list(value, slots):
    """Snapshot slots for an array carried by a checkpointed loop (a typed list holds one layout)."""
    snapshots = numba.typed.List()
    for _ in range(slots):
        snapshots.append(np.ascontiguousarray(value))
    return snapshots


# ---- batched forward mode (transforms/batched.py): tangents with a trailing lane axis ----------------------------
# A tangent of a number is a vector of `lanes` values, a tangent of an array of shape S an array of shape
# (*S, lanes): one directional derivative per lane, the lanes of an element side by side in memory. These
# helpers are the lane-aware forms of what numba's numpy lacks for arrays of one more axis.
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
def lanes_prod_others_along_tangent(x, t, axis):
    """prod_others_along_tangent in every lane: t (*x.shape, lanes)."""
    blocks = _blocks(x, axis)
    weights = np.ascontiguousarray(t).reshape(blocks.shape + (t.shape[-1],))
    return _prod_pairs(blocks, weights).reshape(t.shape)


@register_jitable
def prod_others_along_tangent(x, t, axis):
    """The tangent of prod_others_along(x, axis) in direction t (also its adjoint for g = t), shaped like x."""
    return lanes_prod_others_along_tangent(x, np.expand_dims(t, t.ndim), axis).reshape(x.shape)


@register_jitable
def prod_others_tangent(x, t):
    """The tangent of prod_others(x) in direction t (also its adjoint for g = t), shaped like x."""
    flat = np.ascontiguousarray(x).ravel()
    return prod_others_along_tangent(flat, np.ascontiguousarray(t).ravel(), 0).reshape(x.shape)


@register_jitable
def lanes_prod_others_tangent(x, t):
    """prod_others_tangent in every lane: t (*x.shape, lanes)."""
    flat, lanes = np.ascontiguousarray(x).ravel(), t.shape[-1]
    weights = np.ascontiguousarray(t).reshape((x.size, lanes))
    return lanes_prod_others_along_tangent(flat, weights, 0).reshape(t.shape)
