"""Benchmark: the cost of bounds checking (`@differentiable(boundscheck=True)`), primal and gradient.

    python benchmarks/boundscheck.py [--steps N] [--d D --k K --n N] [--repeats R]

The same functions are compiled twice in one process, with and without numba's bounds checks, and timed
interleaved (minimum over repeats, and the median of the ratios of back-to-back pairs): the 10^6-step scalar recurrence of benchmarks/scalar_recurrence.py (reads
`a[i]` in its loop) and the GMM objective of benchmarks/gmm.py in both formulations (loops over small vectors, and
rowwise), at a small size by default. The checked and unchecked results are checked to agree first. The ratio
checked/unchecked decides diffprog's default (docs/performance.md#bounds-checking).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import diffprog as dp  # noqa: E402
import gmm  # noqa: E402
import scalar_recurrence  # noqa: E402


def both(function):
    """(unchecked, checked) copies of a @differentiable function."""
    fn = function.__diffprog_function__
    return dp.differentiable(fn, boundscheck=False), dp.differentiable(fn, boundscheck=True)


def interleaved_min(functions: dict, repeats: int) -> dict:
    best = {name: math.inf for name in functions}
    names = list(functions)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            best[name] = min(best[name], timeit.Timer(functions[name]).timeit(1))
    return best


def paired_median_ratio(base, checked, repeats: int) -> float:
    """The median over repeats of checked/unchecked, the two timed back to back (order alternating): robust to
    bursts of load from other processes, which the minimum alone is not on a shared machine."""
    ratios = []
    for r in range(repeats):
        first, second = (base, checked) if r % 2 == 0 else (checked, base)
        t1, t2 = timeit.Timer(first).timeit(1), timeit.Timer(second).timeit(1)
        tb, tc = (t1, t2) if r % 2 == 0 else (t2, t1)
        ratios.append(tc / tb)
    return float(np.median(ratios))


def case(label, function, args, wrt, repeats):
    plain, checked = both(function)
    g_plain, g_checked = dp.grad(plain, wrt), dp.grad(checked, wrt)
    assert plain(*args) == checked(*args)
    for u, v in zip(g_plain(*args), g_checked(*args)):
        assert np.array_equal(u, v)
    times = interleaved_min({
        "primal": lambda: plain(*args), "primal checked": lambda: checked(*args),
        "gradient": lambda: g_plain(*args), "gradient checked": lambda: g_checked(*args)}, repeats)
    calls = {"primal": (lambda: plain(*args), lambda: checked(*args)),
             "gradient": (lambda: g_plain(*args), lambda: g_checked(*args))}
    for what in ("primal", "gradient"):
        base, with_checks = times[what], times[what + " checked"]
        median = paired_median_ratio(*calls[what], repeats)
        print(f"{label:30s} {what:8s} {base * 1e3:8.3f} ms  checked {with_checks * 1e3:8.3f} ms  "
              f"ratio of minima {with_checks / base:5.3f}  median paired ratio {median:5.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=25)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=20)
    options = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    a = rng.uniform(0.5, 1.5, options.steps)
    case(f"recurrence, {options.steps} steps", scalar_recurrence.recurrence, (0.3, a), (0, 1), options.repeats)
    args = gmm.instance(options.d, options.k, options.n)
    size = f"D={options.d} K={options.k} N={options.n}"
    case(f"GMM loops, {size}", gmm.gmm_objective, args, (0, 1, 2), options.repeats)
    case(f"GMM rowwise, {size}", gmm.gmm_objective_rowwise, args, (0, 1, 2), options.repeats)


if __name__ == "__main__":
    main()
