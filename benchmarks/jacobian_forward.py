"""Benchmark: batched forward mode (one pass carries up to 64 tangent directions) against one forward pass per
Jacobian column, for functions of 100 inputs.

    python benchmarks/jacobian_forward.py [--n N] [--repeats R]

All figures come from one process; the compared functions are interleaved inside each repeat and the minimum
over repeats is reported, so the ratios are stable even when absolute times move.

Functions (n inputs each):
  chain      a loop over the entries, each output mixing three inputs through sin and products (scalar code:
             the tangents of numbers are computed in loops over the lanes); Jacobian n x n
  layers     three tanh layers of an n x n matrix-vector product (array code: tangents with a lane axis through
             matmul and elementwise rules); Jacobian n x n
  hessian    dp.hessian of the extended Rosenbrock function written as a loop: batched forward over the
             generated gradient (tapes and their tangent tapes); n x n
Columns:
  batched    dp.jacobian(f, mode="forward") / dp.hessian(f): ceil(n / 64) passes of the batched tangent code
  k passes   the same Jacobian from n single-direction passes (what dp.jacobian did before batching, and what it
             falls back to, announced, when an operation has no batched rule); compiled code called directly
  ratio      batched / k passes
  reverse    dp.jacobian(f, mode="reverse"): one adjoint pass per output row (for reference)
Every Jacobian is checked against the other methods first. BLAS runs on one thread (set OPENBLAS_NUM_THREADS
to override).
"""
from __future__ import annotations

import argparse
import math
import os
import timeit

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # before numpy loads BLAS:
    os.environ.setdefault(_variable, "1")  # threaded BLAS oversubscribes a loaded machine and times are noise

import numpy as np  # noqa: E402

import diffprog as dp  # noqa: E402
from diffprog.api import jacobians  # noqa: E402


def chain(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        a = x[i]
        b = x[(i + 1) % n]
        c = x[(i + 7) % n]
        out[i] = math.sin(a) * b + c * c * 0.5 - math.exp(-a * a) * c
    return out


def layers(x, w):
    h = np.tanh(w @ x)
    h = np.tanh(w @ h + x)
    return np.tanh(w @ h) * x


def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def _best(fn, repeats, number) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args()
    n = options.n
    x = np.cos(np.arange(n) * 0.7) * 1.2
    w = np.sin(np.arange(n * n).reshape(n, n) * 0.37) / math.sqrt(n)

    cases = {
        "chain": (dp.jacobian(chain, mode="forward"), dp.jacobian(chain, mode="reverse"), (x,)),
        "layers": (dp.jacobian(layers, mode="forward"), dp.jacobian(layers, mode="reverse"), (x, w)),
        "hessian": (dp.hessian(rosenbrock), dp.jacobian(dp.grad(rosenbrock), mode="reverse"), (x,)),
    }
    for name, (batched, reverse, args) in cases.items():  # compile, and check against each other
        assert batched._batched(args) is not None, f"{name}: no batched code"
        expected = reverse(*args)
        np.testing.assert_allclose(batched(*args), expected, rtol=1e-12, atol=1e-12 * np.max(np.abs(expected)))
        np.testing.assert_allclose(batched._forward_passes(args), expected, rtol=1e-12,
                                   atol=1e-12 * np.max(np.abs(expected)))

    number = max(1, 2000 // n)
    rows = {name: {"batched": [], "k passes": [], "reverse": []} for name in cases}
    for _ in range(options.repeats):  # interleaved, best of each
        for name, (batched, reverse, args) in cases.items():
            rows[name]["batched"].append(_best(lambda: batched(*args), 1, number))
            rows[name]["k passes"].append(_best(lambda: batched._forward_passes(args), 1, number))
            rows[name]["reverse"].append(_best(lambda: reverse(*args), 1, number))

    passes = -(-n // jacobians.JACOBIAN_LANES)
    print(f"n = {n} inputs; batched: {passes} pass(es) of at most {jacobians.JACOBIAN_LANES} lanes; k passes: {n} passes")
    print(f"{'':10s} {'batched':>12s} {'k passes':>12s} {'ratio':>7s} {'reverse':>12s}")
    for name, times in rows.items():
        b, k, r = (min(times[c]) for c in ("batched", "k passes", "reverse"))
        print(f"{name:10s} {b * 1e3:9.3f} ms {k * 1e3:9.3f} ms {b / k:7.3f} {r * 1e3:9.3f} ms")


if __name__ == "__main__":
    main()
