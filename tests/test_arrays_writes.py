"""Reverse mode through writes into local arrays (issue 3): `out[i] = expr`, `out[i, :] += row`, `buf[:] = 0.0`
inside loops, later reads seeing earlier writes (recurrences stored in a buffer), elements written twice (the
adjoint must restore overwritten values), array-valued loop state (tapes of arrays), and per-point loops over
rows filling a preallocated residual array.

autograd cannot run in-place writes, so each program gives `ref_source`: the same function written without
writes, which autograd differentiates; central differences run the original program. See test_arrays.py for
the harness and the jit=False / slow split.
"""
import numpy as np
import pytest

import diffprog as dp
from reference import Arr, F, I, check_gradient_nd, check_gradient_nd_f32, load_nd
import test_arrays
from test_arrays import HEADER, NM, P, nojit, params, pushed, run_examples, slow

_INDEX_WRITE = ("writes through an index array are rejected (DP101): with a repeated index numpy keeps one write, "
                "which an adjoint cannot tell apart")
BUGS_WRITES: dict = {
    "index_array_write_repeated": _INDEX_WRITE,
    "index_array_write_unique": _INDEX_WRITE,
    "index_array_plus_equals": _INDEX_WRITE,
}


def W(name, body, args, ref, **kw):
    return P(name, body, args, ref_source=HEADER + ref.strip() + "\n", **kw)


WRITES = [
    W("elementwise_into_zeros", """
def f(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = np.sin(x[i]) * x[i]
    return np.sum(out * out)
""", [Arr(("n",))], """
def f(x):
    out = np.sin(x) * x
    return np.sum(out * out)
"""),
    W("negative_index_write", """
def f(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[-1 - i] = x[i] * x[i] * (i + 1)
    return np.sum(np.sin(out) * np.arange(n))
""", [Arr(("n",))], """
def f(x):
    n = x.shape[0]
    out = (x * x * np.arange(1, n + 1))[::-1]
    return np.sum(np.sin(out) * np.arange(n))
"""),
    W("row_plus_equals", """
def f(A, b):
    n = A.shape[0]
    out = np.zeros((n, b.shape[0]))
    for i in range(n):
        out[i, :] += A[i] * b
        out[i, :] += np.sin(A[i])
    return np.sum(out ** 2)
""", [Arr(NM), Arr(("m",))], """
def f(A, b):
    out = A * b + np.sin(A)
    return np.sum(out ** 2)
"""),
    W("row_plus_equals_without_colon", """
def f(A, b):
    out = np.zeros((A.shape[0], b.shape[0]))
    for i in range(A.shape[0]):
        out[i] += A[i] * b
    return np.sum(out ** 2)
""", [Arr(NM), Arr(("m",))], """
def f(A, b):
    return np.sum((A * b) ** 2)
"""),
    W("row_from_own_row", """
def f(A, b):
    n = A.shape[0]
    out = np.zeros((n, b.shape[0]))
    for i in range(n):
        out[i, :] = out[i, :] + A[i] * b
    return np.sum(out ** 2)
""", [Arr(NM), Arr(("m",))], """
def f(A, b):
    return np.sum((A * b) ** 2)
"""),
    W("row_from_previous_row", """
def f(x):
    U = np.zeros((3, x.shape[0]))
    U[0] = x
    for t in range(1, 3):
        U[t] = np.sin(U[t - 1])
    return np.sum(U * U)
""", [Arr(("n",))], """
def f(x):
    u1 = np.sin(x)
    u2 = np.sin(u1)
    return np.sum(x * x) + np.sum(u1 * u1) + np.sum(u2 * u2)
"""),
    W("row_assign_without_colon", """
def f(A, b):
    n = A.shape[0]
    out = np.zeros((n, b.shape[0]))
    for i in range(n):
        out[i] = np.tanh(A[i] + b)
    return np.sum(out * A)
""", [Arr(NM), Arr(("m",))], """
def f(A, b):
    return np.sum(np.tanh(A + b) * A)
"""),
    W("scalar_element_plus_equals_2d", """
def f(A):
    n = A.shape[0]
    m = A.shape[1]
    acc = np.zeros((n, m))
    for i in range(n):
        for j in range(m):
            acc[i, j] += A[i, j] * A[i, j]
            acc[i, j] *= np.cos(A[i, j])
    return np.sum(np.sin(acc))
""", [Arr(NM)], """
def f(A):
    return np.sum(np.sin(A * A * np.cos(A)))
"""),
    W("buffer_reset_each_pass", """
def f(x, w):
    n = x.shape[0]
    buf = np.zeros(n)
    s = 0.0
    for k in range(3):
        buf[:] = 0.0
        for i in range(n):
            buf[i] = buf[i] + x[i] * w ** k
        s = s + np.sum(np.sin(buf))
    return s
""", [Arr(("n",)), F(0.5, 1.5)], """
def f(x, w):
    s = 0.0
    for k in range(3):
        s = s + np.sum(np.sin(x * w ** k))
    return s
"""),
    W("buffer_accumulated_then_reset", """
def f(x, w):
    n = x.shape[0]
    buf = np.zeros(n)
    s = 0.0
    for k in range(3):
        for i in range(n):
            buf[i] += x[i] * w
        s = s + np.sum(buf * buf)
        buf[:] = 0.5 * buf
    return s
""", [Arr(("n",)), F(0.5, 1.5)], """
def f(x, w):
    buf = x * 0.0
    s = 0.0
    for k in range(3):
        buf = buf + x * w
        s = s + np.sum(buf * buf)
        buf = 0.5 * buf
    return s
"""),
    W("recurrence_in_buffer", """
def f(x, w):
    n = x.shape[0]
    h = np.zeros(n)
    h[0] = np.tanh(x[0])
    for i in range(1, n):
        h[i] = np.tanh(h[i - 1] * w + x[i])
    return np.sum(h * h)
""", [Arr(("n",)), F(-1.5, 1.5)], """
def f(x, w):
    h = np.tanh(x[0])
    s = h * h
    for i in range(1, x.shape[0]):
        h = np.tanh(h * w + x[i])
        s = s + h * h
    return s
""", dims=dict(n=(1, 6))),
    W("recurrence_math_tanh", """
import math

def f(x, w):
    n = x.shape[0]
    h = np.zeros(n + 1)
    for i in range(n):
        h[i + 1] = math.tanh(h[i] * w + x[i])
    return h[n] + np.sum(h)
""", [Arr(("n",)), F(-1.5, 1.5)], """
def f(x, w):
    h = 0.0
    s = 0.0
    for i in range(x.shape[0]):
        h = np.tanh(h * w + x[i])
        s = s + h
    return h + s
"""),
    W("same_element_written_twice", """
def f(x):
    n = x.shape[0]
    b = np.zeros(n)
    s = 0.0
    for i in range(n):
        b[0] = x[i] * x[i]
        s = s + np.sin(b[0]) * b[0]
        b[0] = np.exp(b[0] * 0.5)
        s = s + b[0]
    return s + np.sum(b * b)
""", [Arr(("n",))], """
def f(x):
    n = x.shape[0]
    s = 0.0
    last = 0.0
    for i in range(n):
        b0 = x[i] * x[i]
        s = s + np.sin(b0) * b0
        b0 = np.exp(b0 * 0.5)
        s = s + b0
        last = b0
    return s + last * last
"""),
    W("overwrite_from_old_value", """
def f(x, a):
    n = x.shape[0]
    b = np.zeros(n)
    for i in range(n):
        b[i] = x[i]
    for k in range(3):
        for i in range(n):
            b[i] = np.sin(b[i]) * a + b[i] * b[i]
    return np.sum(b)
""", [Arr(("n",), lo=-1, hi=1), F(0.2, 1.2)], """
def f(x, a):
    b = x
    for k in range(3):
        b = np.sin(b) * a + b * b
    return np.sum(b)
"""),
    W("overwrite_local_copy_of_argument", """
def f(x, a):
    b = x.copy()
    n = b.shape[0]
    for i in range(1, n):
        b[i] = b[i - 1] * a + np.sin(b[i])
    b[0] = b[n - 1] * 2.0
    return np.sum(b * b)
""", [Arr(("n",)), F(-1, 1)], """
def f(x, a):
    vals = [x[0]]
    for i in range(1, x.shape[0]):
        vals.append(vals[-1] * a + np.sin(x[i]))
    first = vals[-1] * 2.0
    s = first * first
    for v in vals[1:]:
        s = s + v * v
    return s
"""),
    W("read_write_read_same_iteration", """
def f(x, y):
    n = x.shape[0]
    buf = np.zeros(n)
    s = 0.0
    for i in range(n):
        buf[i] = x[i] * y[i]
        s = s + buf[i] * buf[i]
        buf[i] = np.sin(buf[i]) + y[i]
        s = s + buf[i] * x[i]
    return s + np.sum(buf)
""", [Arr(("n",)), Arr(("n",))], """
def f(x, y):
    p = x * y
    q = np.sin(p) + y
    return np.sum(p * p) + np.sum(q * x) + np.sum(q)
"""),
    W("conditional_write", """
def f(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        if x[i] > 0.0:
            out[i] = x[i] * x[i]
        else:
            out[i] = np.sin(x[i])
    return np.sum(out * np.arange(1, n + 1))
""", [Arr(("n",))], """
def f(x):
    n = x.shape[0]
    out = np.where(x > 0.0, x * x, np.sin(x))
    return np.sum(out * np.arange(1, n + 1))
""", prep=pushed(0.0)),
    W("heat_equation_rows", """
def f(u0, c):
    T = 4
    n = u0.shape[0]
    U = np.zeros((T, n))
    U[0, :] = u0
    for t in range(1, T):
        U[t, 1:-1] = U[t - 1, 1:-1] + c * (U[t - 1, 2:] - 2.0 * U[t - 1, 1:-1] + U[t - 1, :-2])
        U[t, 0] = U[t - 1, 0]
        U[t, -1] = U[t - 1, -1]
    return np.sum(U[-1] ** 2) + np.sum(np.sin(U))
""", [Arr(("n",)), F(0.05, 0.4)], """
def f(u0, c):
    u = u0
    s = np.sum(np.sin(u))
    for t in range(1, 4):
        inner = u[1:-1] + c * (u[2:] - 2.0 * u[1:-1] + u[:-2])
        u = np.concatenate([u[:1], inner, u[-1:]])
        s = s + np.sum(np.sin(u))
    return np.sum(u ** 2) + s
""", dims=dict(n=(3, 6))),
    W("heat_equation_rows_copy", """
def f(u0, c):
    T = 4
    n = u0.shape[0]
    U = np.zeros((T, n))
    U[0, :] = u0
    for t in range(1, T):
        prev = U[t - 1].copy()
        U[t, 1:-1] = prev[1:-1] + c * (prev[2:] - 2.0 * prev[1:-1] + prev[:-2])
        U[t, 0] = prev[0]
        U[t, -1] = prev[-1]
    return np.sum(U[-1] ** 2) + np.sum(np.sin(U))
""", [Arr(("n",)), F(0.05, 0.4)], """
def f(u0, c):
    u = u0
    s = np.sum(np.sin(u))
    for t in range(1, 4):
        inner = u[1:-1] + c * (u[2:] - 2.0 * u[1:-1] + u[:-2])
        u = np.concatenate([u[:1], inner, u[-1:]])
        s = s + np.sum(np.sin(u))
    return np.sum(u ** 2) + s
""", dims=dict(n=(3, 6))),
    W("heat_equation_elements", """
def f(u0, c):
    T = 4
    n = u0.shape[0]
    U = np.zeros((T, n))
    for j in range(n):
        U[0, j] = u0[j]
    for t in range(1, T):
        for j in range(1, n - 1):
            U[t, j] = U[t - 1, j] + c * (U[t - 1, j + 1] - 2.0 * U[t - 1, j] + U[t - 1, j - 1])
        U[t, 0] = U[t - 1, 0]
        U[t, n - 1] = U[t - 1, n - 1]
    return np.sum(U[T - 1] ** 2) + np.sum(np.sin(U))
""", [Arr(("n",)), F(0.05, 0.4)], """
def f(u0, c):
    u = u0
    s = np.sum(np.sin(u))
    for t in range(1, 4):
        inner = u[1:-1] + c * (u[2:] - 2.0 * u[1:-1] + u[:-2])
        u = np.concatenate([u[:1], inner, u[-1:]])
        s = s + np.sum(np.sin(u))
    return np.sum(u ** 2) + s
""", dims=dict(n=(3, 6))),
    W("while_loop_writes", """
def f(x):
    n = x.shape[0]
    out = np.zeros(n)
    i = 0
    while i < n:
        out[i] = np.exp(x[i]) - x[i]
        i = i + 1
    return np.sum(out ** 2)
""", [Arr(("n",))], """
def f(x):
    return np.sum((np.exp(x) - x) ** 2)
"""),
    W("colliding_element_writes", """
def f(x):
    out = np.zeros(2)
    for i in range(x.shape[0]):
        out[i % 2] = out[i % 2] * x[i] + np.sin(x[i])
    return np.sum(out * out)
""", [Arr(("n",))], """
def f(x):
    o = [0.0, 0.0]
    for i in range(x.shape[0]):
        o[i % 2] = o[i % 2] * x[i] + np.sin(x[i])
    return o[0] * o[0] + o[1] * o[1]
""", dims=dict(n=(1, 6))),
    W("write_then_conditional_overwrite", """
def f(x):
    out = np.zeros(x.shape[0])
    for i in range(x.shape[0]):
        out[i] = x[i]
        if x[i] > 0.0:
            out[i] = out[i] * out[i]
    return np.sum(np.sin(out))
""", [Arr(("n",))], """
def f(x):
    return np.sum(np.sin(np.where(x > 0.0, x * x, x)))
""", prep=pushed(0.0)),
    W("array_tape_and_element_write", """
def f(x):
    v = np.zeros(x.shape[0])
    s = 0.0
    for k in range(3):
        v = v * 0.5 + x
        v[0] = np.sin(v[0]) * x[-1]
        s = s + np.sum(v * v)
    return s
""", [Arr(("n",))], """
def f(x):
    v = x * 0.0
    s = 0.0
    for k in range(3):
        v = v * 0.5 + x
        v = np.concatenate([np.sin(v[0:1]) * x[-1], v[1:]])
        s = s + np.sum(v * v)
    return s
"""),
    W("mask_write_into_copy", """
def f(x):
    out = x.copy()
    out[x < 0.0] = 0.0
    return np.sum(out * out * np.arange(1, x.shape[0] + 1))
""", [Arr(("n",))], """
def f(x):
    out = np.where(x < 0.0, 0.0, x)
    return np.sum(out * out * np.arange(1, x.shape[0] + 1))
""", prep=pushed(0.0)),
    W("strided_slice_write", """
def f(x):
    out = np.zeros(x.shape[0])
    out[::2] = np.sin(x[::2])
    out[1::2] = x[1::2] * x[1::2]
    return np.sum(out * x)
""", [Arr(("n",))], """
def f(x):
    return np.sum(np.sin(x[::2]) * x[::2]) + np.sum(x[1::2] ** 3)
"""),
    W("index_array_write_unique", """
def f(x, idx):
    out = np.zeros(x.shape[0])
    out[idx] = x[idx] * 2.0
    return np.sum(np.sin(out) * np.arange(1, x.shape[0] + 1))
""", [Arr(("n",)), I(0, 10_000)], """
def f(x, idx):
    w = np.arange(1, x.shape[0] + 1)
    s = 0.0
    for i in idx:
        s = s + np.sin(2.0 * x[i]) * w[i]
    return s
""", prep=lambda x, seed: (x, np.random.default_rng(seed).permutation(x.shape[0])[:3].astype(np.int64))),
    W("index_array_write_repeated", """
def f(x, idx):
    out = np.zeros(x.shape[0])
    out[idx] = x[idx] * 2.0
    return np.sum(np.sin(out) * np.arange(1, x.shape[0] + 1))
""", [Arr(("n",)), I(0, 10_000)], """
def f(x, idx):
    w = np.arange(1, x.shape[0] + 1)
    s = 0.0
    for i in sorted(set(int(j) for j in idx)):
        s = s + np.sin(2.0 * x[i]) * w[i]
    return s
""", prep=lambda x, seed: (x, np.append(np.random.default_rng(seed).integers(0, x.shape[0], 3), 0).astype(np.int64)
                          [[0, 1, 2, 3, 3]])),
    W("index_array_plus_equals", """
def f(x, idx):
    out = np.zeros(x.shape[0])
    out[idx] += x[idx]
    return np.sum(out * out)
""", [Arr(("n",)), I(0, 10_000)], """
def f(x, idx):
    s = 0.0
    for i in sorted(set(int(j) for j in idx)):
        s = s + x[i] * x[i]
    return s
""", prep=lambda x, seed: (x, np.random.default_rng(seed).integers(0, x.shape[0], 4).astype(np.int64))),
    W("helper_fills_local_buffer", """
def fill(buf, x):
    for i in range(buf.shape[0]):
        buf[i] = x[i] * x[i]
    return 0.0

def f(x):
    buf = np.zeros(x.shape[0])
    z = fill(buf, x)
    return np.sum(np.sin(buf)) + z
""", [Arr(("n",))], """
def f(x):
    return np.sum(np.sin(x * x))
"""),
    # array-valued loop state: a tape of arrays (no writes, autograd runs the same source)
    P("array_state_rnn", """
def f(W, v0, xs):
    v = v0
    for t in range(xs.shape[0]):
        v = np.tanh(W @ v + xs[t])
    return np.sum(v * v)
""", [Arr(("n", "n")), Arr(("n",)), Arr(("t", "n"))], dims=dict(t=(1, 4))),
    P("array_state_reassigned_in_while", """
def f(x, a):
    v = x
    k = 0
    while k < 3:
        v = np.sin(v) * a + v
        k = k + 1
    return np.sum(v ** 2)
""", [Arr(NM), F(-1, 1)]),
    # loops over rows mixing everything: per-point residuals into a preallocated array, then a sum of squares
    W("residuals_per_point", """
def f(p, X, Y):
    n = X.shape[0]
    r = np.zeros(n)
    for i in range(n):
        pred = p[0] * np.exp(-p[1] * X[i, 0]) + p[2] * X[i, 1]
        r[i] = pred - Y[i]
    return np.sum(r ** 2)
""", [Arr((3,), lo=-1, hi=1), Arr(("n", 2)), Arr(("n",))], """
def f(p, X, Y):
    r = p[0] * np.exp(-p[1] * X[:, 0]) + p[2] * X[:, 1] - Y
    return np.sum(r ** 2)
"""),
    W("residuals_rows_linear_model", """
def f(w, b, X, Y):
    n = X.shape[0]
    R = np.zeros((n, Y.shape[1]))
    for i in range(n):
        xi = X[i]
        h = np.tanh(w @ xi + b)
        R[i, :] = h - Y[i]
    return 0.5 * np.sum(R * R) + 0.01 * np.sum(w * w)
""", [Arr(("k", "m")), Arr(("k",)), Arr(("n", "m")), Arr(("n", "k"))], """
def f(w, b, X, Y):
    R = np.tanh(X @ w.T + b) - Y
    return 0.5 * np.sum(R * R) + 0.01 * np.sum(w * w)
"""),
    W("residuals_mixed_everything", """
def f(A, c, X):
    n = X.shape[0]
    r = np.zeros(n)
    g = np.zeros((n, 2))
    for i in range(n):
        d = X[i] - c
        q = d @ A @ d
        g[i, :] = A @ d
        r[i] = np.log(1.0 + q) - np.max(np.abs(d[::-1]))
    return np.sum(r ** 2) + np.sum(g[:, 0] * g[:, 1]) + np.linalg.norm(g)
""", [Arr((2, 2)), Arr((2,)), Arr(("n", 2))], """
def f(A, c, X):
    D = X - c
    G = D @ A.T
    q = np.sum(G * D, axis=1)
    r = np.log(1.0 + q) - np.max(np.abs(D), axis=1)
    return np.sum(r ** 2) + np.sum(G[:, 0] * G[:, 1]) + np.linalg.norm(G)
""", prep=lambda A, c, X: (A @ A.T + 2.0 * np.eye(2), c, X),
       ok=lambda A, c, X: bool(np.all(np.abs(np.abs(X[:, 0] - c[0]) - np.abs(X[:, 1] - c[1])) > 1e-2))),
]


test_arrays.BUGS.update(BUGS_WRITES)  # params() and run_examples() look bugs up there


@pytest.mark.parametrize("program", params(WRITES))
def test_writes(program):
    run_examples(program, nojit)


@slow
@pytest.mark.parametrize("program", params(WRITES, jit=True))
def test_writes_compiled(program):
    run_examples(program, check_gradient_nd, max_examples=5)
