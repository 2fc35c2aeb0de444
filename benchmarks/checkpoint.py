"""Benchmark: binomial checkpointing (`diffprog.checkpoint`) on a long scalar recurrence.

    python benchmarks/checkpoint.py [--steps N] [--repeats R]

A two-variable recurrence (two coupled pendulums, semi-implicit Euler) over N steps (default 10^7), differentiated with respect
to both initial values, three ways: the taped adjoint, `differentiable(checkpoint=True)` (snapshots chosen as
about sqrt(2N), so no step runs more than twice before it is reversed) and `checkpoint=64`.

  time     primal, taped gradient and checkpointed gradients, measured interleaved in this process (minimum
           over repeats); ratios checkpointed / taped (target <= 3) and gradient / primal.
  memory   each gradient in a fresh process: the peak resident set size during the gradient call beyond the
           resident size before it, after a warm-up call on 10 steps that compiles everything (Linux
           /proc/self/status high-water mark, reset after the warm-up); and the tape the taped adjoint
           allocates, counted from its generated code (values pushed per iteration x 8 bytes).
The gradients are checked to be identical (to rounding) before timing.
"""
from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import timeit

import diffprog as dp


def pendulums(x, v, n):
    """Two coupled pendulums, one driven, the other lightly damped (semi-implicit Euler, dt = 0.001)."""
    y = 0.0
    w = 0.0
    for i in range(n):
        coupling = 0.1 * math.sin(y - x)
        v = v + 0.001 * (-math.sin(x) + coupling + 0.01 * math.cos(0.001 * i))
        w = w + 0.001 * (-math.sin(y) - coupling - 0.0001 * w)
        x = x + 0.001 * v
        y = y + 0.001 * w
    return x * x + v * v + y * y


VARIANTS = {
    "taped": dp.differentiable(pendulums),
    "checkpoint=True": dp.differentiable(checkpoint=True)(pendulums),
    "checkpoint=64": dp.differentiable(checkpoint=64)(pendulums),
}


def gradient(name):
    return dp.grad(VARIANTS[name], (0, 1))


def _status_kib(field) -> int:
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith(field + ":")).split()[1])


def peak_memory_child(name, steps):
    """Run in a fresh process: prints the extra peak RSS (bytes) of one gradient call after a warm-up. The
    high-water mark is reset after the warm-up (Linux: writing 5 to /proc/self/clear_refs); getrusage's would
    not do, since it is inherited from the parent process across fork and exec."""
    g = gradient(name)
    g(0.3, -0.2, 10)
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    before = _status_kib("VmRSS")
    g(0.3, -0.2, steps)
    print((_status_kib("VmHWM") - before) * 1024)


def peak_memory(name, steps) -> int:
    out = subprocess.run([sys.executable, __file__, "--child", name, "--steps", str(steps)], check=True,
                         capture_output=True, text=True, env=dict(os.environ)).stdout
    return int(out.split()[-1])


def tape_bytes_per_step() -> int:
    """Values the taped adjoint pushes per iteration (one `tape_NAME[...] = NAME` store each), 8 bytes each."""
    source = dp.source(VARIANTS["taped"], mode="reverse", args=(0.3, -0.2, 10))
    loop = source.split("for i in range(", 1)[1].split("\n    # ", 1)[0]
    return 8 * sum(1 for line in loop.splitlines() if line.strip().startswith("tape_") and "] = " in line)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=10 ** 7)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        return peak_memory_child(args.child, args.steps)

    n = args.steps
    grads = {name: gradient(name) for name in VARIANTS}
    results = {name: g(0.3, -0.2, n) for name, g in grads.items()}
    reference = results["taped"]
    for name, value in results.items():
        assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(value, reference)), (name, value, reference)
    primal = VARIANTS["taped"]
    primal(0.3, -0.2, n)

    times = {"primal": math.inf, **{name: math.inf for name in grads}}
    for _ in range(args.repeats):
        times["primal"] = min(times["primal"], timeit.timeit(lambda: primal(0.3, -0.2, n), number=1))
        for name, g in grads.items():
            times[name] = min(times[name], timeit.timeit(lambda: g(0.3, -0.2, n), number=1))

    slots = dp.backend.runtime.revolve_slots(n, 0)
    tape = tape_bytes_per_step()
    print(f"coupled-pendulums recurrence, {n:,} steps; gradient wrt (x0, v0) = {reference}")
    print(f"taped adjoint: {tape} bytes of tape per step -> {tape * n / 2**20:,.0f} MiB; "
          f"checkpoint=True keeps {slots:,} snapshots of 4 floats ({slots * 32 / 2**10:,.0f} KiB)")
    print(f"{'':22}{'time':>10}{'/ primal':>10}{'/ taped':>10}{'peak extra RSS':>18}")
    print(f"{'primal':22}{times['primal'] * 1e3:>8.0f}ms{1:>10.2f}")
    for name in grads:
        memory = peak_memory(name, n)
        print(f"{name:22}{times[name] * 1e3:>8.0f}ms{times[name] / times['primal']:>10.2f}"
              f"{times[name] / times['taped']:>10.2f}{memory / 2**20:>15.1f}MiB")


if __name__ == "__main__":
    main()
