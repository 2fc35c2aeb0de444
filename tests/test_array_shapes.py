"""Reverse mode through loops whose arrays change shape from one iteration to the next (growing and shrinking
slices, blocks of a matrix, branches giving different lengths, size-1 slices broadcast against longer ones).

The backward sweep restarts each array's adjoint at zero shaped like the value the array had before, and undoes
broadcasting by the shapes of that iteration: arrays it reads only for their shape have their extents saved
(transforms/reverse/plan.py), arrays it recomputes keep theirs too. Each program is checked against
autograd (the same source) and central differences, as plain Python and compiled (the harness of test_arrays.py).
"""
import numpy as np
import pytest

from reference import Arr, check_gradient_nd
from test_arrays import P, distinct, nojit, params, run_examples, slow

SHAPES = [
    P("growing_prefix_squared", """
def f(x):
    acc = 0.0
    for i in range(1, x.shape[0]):
        s = x[:i]
        t = s * s
        acc += np.sum(t) * i
    return acc
""", [Arr(("n",))], dims={"n": (2, 7)}),
    P("shrinking_suffix_times_its_head", """
def f(x, y):
    acc = 0.0
    n = x.shape[0]
    for i in range(n):
        u = x[i:] * x[i:i + 1]
        v = u * y[:n - i]
        acc += np.sum(np.sin(v))
    return acc
""", [Arr(("n",)), Arr(("n",))], dims={"n": (1, 6)}),
    P("growing_blocks_of_a_matrix", """
def f(A, b):
    acc = 0.0
    for i in range(A.shape[0]):
        B = A[:i + 1, :i + 1]
        c = B @ b[:i + 1]
        acc += np.sum(c * c) + np.sum(B.T * B)
    return acc
""", [Arr(("n", "n")), Arr(("n",))], dims={"n": (1, 5)}),
    P("last_slice_used_after_the_loop", """
def f(x):
    s = x[:1] * 1.0
    for i in range(x.shape[0] - 1):
        s = np.tanh(x[:i + 2] * 0.5) + np.sum(s) * s[0]
    return np.sum(s * s)
""", [Arr(("n",))], dims={"n": (2, 6)}),
    P("branches_give_different_lengths", """
def f(x, y):
    acc = 0.0
    for i in range(4):
        if i % 2 == 0:
            t = x[:2] * y[1]
        else:
            t = x * y[0]
        acc += np.sum(t * t) + np.max(t)
    return acc
""", [Arr((3,)), Arr((2,))], ok=lambda x, y: distinct(1e-2)(x) and bool(np.all(np.abs(y) > 1e-2))),
    P("rows_broadcast_against_size_one_columns", """
def f(A, w):
    acc = 0.0
    for i in range(A.shape[0]):
        r = A[i:i + 1, :] * w[i:, None]
        acc += np.sum(np.exp(-r * r))
    return acc
""", [Arr(("n", "m")), Arr(("n",))], dims={"n": (1, 4), "m": (1, 3)}),
]


@pytest.mark.parametrize("program", params(SHAPES))
def test_shapes_changing_in_loops(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(SHAPES, jit=True))
def test_shapes_changing_in_loops_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)
