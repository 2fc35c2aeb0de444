"""The functions whose generated code tests/test_snapshots.py keeps under review (tests/snapshots/): one of each
shape of code the compiler makes. Kept apart from the test so that editing it does not move their line numbers
(the generated code quotes them)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import diffprog as dp


def scalar_loop_with_branch(x, n):
    s = 0.0
    for i in range(n):
        if x * i > 1.0:
            s = s + math.sin(x * i)
        else:
            s = s - x * x
    return s


def matmul_and_reduction(A, x):
    y = A @ x
    return np.sum(np.tanh(y) * y)


def local_array_in_loop(a):
    n = a.shape[0]
    out = np.zeros(n)
    for i in range(1, n):
        out[i] = out[i - 1] * 0.5 + a[i] * a[i - 1]
    return np.sum(out)


def while_loop(x):
    y = x
    k = 0
    while y < 10.0 and k < 50:
        y = y * 1.5 + 0.1
        k = k + 1
    return y


@dp.differentiable_type
@dataclass(frozen=True)
class Quaternion:
    w: float
    x: float
    y: float
    z: float

    def scaled(self, s):
        return Quaternion(self.w * s, self.x * s, self.y * s, self.z * s)

    def __add__(self, o):
        return Quaternion(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)

    def conj(self):
        return Quaternion(self.w, -self.x, -self.y, -self.z)


def quaternion_method_calls(q, s):
    r = q.scaled(s) + q.conj()
    return r.w * r.w + r.x * r.y


def _inner(y, c):
    return c * y * y + math.exp(y)


def grad_in_loop(x, n):
    s = 0.0
    for i in range(n):
        s = s + dp.grad(_inner)(x, float(i))
    return s


# name -> (function, example arguments): the snapshots tests/snapshots/<name>.<mode>.py, for each of MODES
PROGRAMS = {
    "scalar_loop_with_branch": (scalar_loop_with_branch, (0.7, 4)),
    "matmul_and_reduction": (matmul_and_reduction, (np.ones((2, 3)), np.ones(3))),
    "local_array_in_loop": (local_array_in_loop, (np.ones(4),)),
    "while_loop": (while_loop, (1.0,)),
    "quaternion_method_calls": (quaternion_method_calls, (Quaternion(1.0, 0.5, 0.25, 0.0), 2.0)),
    "grad_in_loop": (grad_in_loop, (0.3, 3)),
}
MODES = ("reverse", "forward")
