"""Benchmark: the Hessian of a 100-variable extended Rosenbrock function written as a loop over a 1-D array.

    python benchmarks/hessian.py [--n N] [--repeats R]

All figures come from one process; compared functions are interleaved inside each repeat and the minimum over
repeats is reported, so the ratios are stable even when absolute times move.

Rows:
  gradient x N     N calls of dp.grad(f) (reverse mode), the unit every other row is divided by
  hessian          dp.hessian(f): batched forward mode over the generated gradient code, each pass carrying up to
                   64 columns (2 passes for n = 100)
  hessian k passes the same Hessian from one single-direction forward-over-reverse pass per column (what
                   dp.hessian did before batched forward mode; compiled code called directly)
  hvp x N          N calls of dp.hvp(f): one forward-over-reverse pass each (what hessian costs minus stacking)
  jvp x N          N calls of dp.jvp(f): forward mode alone (directional derivatives)
  jax hessian      jax.jit(jax.hessian(f)) on the same loop (lax.fori_loop), only when jax is importable
                   (the optional `bench` extra); never part of the test path.
The Hessian is checked against the closed form first.
"""
from __future__ import annotations

import argparse
import math
import timeit

import numpy as np

import diffprog as dp


@dp.differentiable
def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def closed_form_hessian(x):
    n = x.shape[0]
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i, i + 1] -= 400.0 * x[i]
        h[i + 1, i] -= 400.0 * x[i]
        h[i + 1, i + 1] += 200.0
    return h


def _best(fn, repeats, number=1) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeats)) / number


def _jax_hessian(n):
    """jax.jit(jax.hessian) of the same loop, or None without jax."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def f(x):
        def body(i, s):
            return s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
        return jax.lax.fori_loop(0, x.shape[0] - 1, body, jnp.float64(0.0))

    hessian = jax.jit(jax.hessian(f))
    return lambda x: hessian(x).block_until_ready()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args()
    n = options.n

    x = np.cos(np.arange(n) * 0.7) * 1.2
    v = np.sin(np.arange(n) * 0.3)
    gradient = dp.grad(rosenbrock)
    hessian = dp.hessian(rosenbrock)

    assert np.allclose(hessian(x), closed_form_hessian(x), rtol=1e-12, atol=1e-9), "wrong Hessian"
    assert np.allclose(hessian._forward_passes((x,)), hessian(x), rtol=1e-12, atol=1e-9), "wrong Hessian (k passes)"
    np.testing.assert_allclose(dp.hvp(rosenbrock, (x,), (v,))[0], closed_form_hessian(x) @ v, rtol=1e-12,
                               atol=1e-9)
    directions = [np.eye(n)[j] for j in range(n)]
    jax_hessian = _jax_hessian(n)
    if jax_hessian is not None:
        np.testing.assert_allclose(np.asarray(jax_hessian(x)), hessian(x), rtol=1e-12, atol=1e-9)

    rows = {"gradient x N": [], "hessian": [], "hessian k passes": [], "hvp x N": [], "jvp x N": [],
            "jax hessian": []}
    for _ in range(options.repeats):  # interleaved, best of each
        rows["gradient x N"].append(_best(lambda: [gradient(x) for _ in range(n)], 1))
        rows["hessian"].append(_best(lambda: hessian(x), 1))
        rows["hessian k passes"].append(_best(lambda: hessian._forward_passes((x,)), 1))
        rows["hvp x N"].append(_best(lambda: [dp.hvp(rosenbrock, (x,), (d,)) for d in directions], 1))
        rows["jvp x N"].append(_best(lambda: [dp.jvp(rosenbrock, (x,), (d,)) for d in directions], 1))
        if jax_hessian is not None:
            rows["jax hessian"].append(_best(lambda: jax_hessian(x), 1))

    unit = min(rows["gradient x N"])
    primal = _best(lambda: rosenbrock(x), options.repeats, number=100)
    print(f"extended Rosenbrock, n = {n}; one primal call {primal * 1e6:.2f} us; "
          f"{n} gradients {unit * 1e3:.3f} ms (= 1.00)")
    print(f"{'':16s} {'time':>12s} {'/ N gradients':>14s}")
    for name, times in rows.items():
        if not times:
            print(f"{name:16s} {'(jax not installed)':>27s}")
            continue
        best = min(times)
        print(f"{name:16s} {best * 1e3:9.3f} ms {best / unit:14.2f}")


if __name__ == "__main__":
    main()
