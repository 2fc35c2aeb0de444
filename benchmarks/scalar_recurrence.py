"""Benchmark: a long scalar recurrence, differentiated by diffprog vs. a hand-written numba adjoint.

    python benchmarks/scalar_recurrence.py [--steps N] [--repeats R]

Every figure that is compared is measured in the same process, with the compared functions interleaved inside
each repeat and the minimum over repeats reported, so the *ratios* stay stable on noisy machines even when the
absolute times move.

Sections:
  1. runtime     x = sin(x) * a[i] + cos(x) * 0.5 over N steps: primal, diffprog gradient (wrt x and a),
                 hand-written numba adjoint; ratios gradient/primal (target <= 2.5) and
                 diffprog/hand-written (target <= 1.2). The two gradients are checked to agree first.
  2. compile     first dp.grad(f)(x, a) call in a fresh process with an empty DIFFPROG_CACHE_DIR (cold), then in
                 a second fresh process reusing that cache dir (cached); numba's import time reported separately.
  3. overhead    per-call cost of dp.grad(tiny)(x), g(x) with g = dp.grad(tiny), and the decorated primal,
                 against calling equivalent @numba.njit functions directly from Python.
  4. tape        bytes of tape per loop iteration of the generated adjoint (wrt x and a): counted from its own
                 pushes, measured on the uncompiled generated code (tracemalloc) and on the compiled gradient
                 (peak resident memory), each from two trip counts (benchmarks/tape_memory.py); against the
                 8 bytes per step (x) the hand-written adjoint stores.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import timeit

import numba
import numpy as np

import diffprog as dp
import tape_memory
from plots import save_bar_chart

TARGET_GRAD_OVER_PRIMAL = 2.5
TARGET_DIFFPROG_OVER_HAND = 1.2


# ----------------------------------------------------------------------------------------------------------
# The recurrence: diffprog version and hand-written numba adjoint
# ----------------------------------------------------------------------------------------------------------


@dp.differentiable
def recurrence(x, a):
    for i in range(a.shape[0]):
        x = math.sin(x) * a[i] + math.cos(x) * 0.5
    return x


@numba.njit(cache=False)
def hand_primal(x, a):
    for i in range(a.shape[0]):
        x = math.sin(x) * a[i] + math.cos(x) * 0.5
    return x


@numba.njit(cache=False)
def hand_gradient(x, a):
    """Forward pass storing x per step in a preallocated array, then the backward loop. Returns (dx0, da)."""
    n = a.shape[0]
    xs = np.empty(n)
    for i in range(n):
        xs[i] = x
        x = math.sin(x) * a[i] + math.cos(x) * 0.5
    x_adj = 1.0
    a_adj = np.empty(n)
    for i in range(n - 1, -1, -1):
        s = math.sin(xs[i])
        c = math.cos(xs[i])
        a_adj[i] = s * x_adj
        x_adj = x_adj * (c * a[i] - 0.5 * s)
    return x_adj, a_adj


def interleaved_min(functions: dict, repeats: int, number: int = 1) -> dict:
    """Seconds per call: min over `repeats`, each repeat timing every function once, in rotating order."""
    timers = {name: timeit.Timer(fn) for name, fn in functions.items()}
    best = {name: math.inf for name in functions}
    names = list(functions)
    for r in range(repeats):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            best[name] = min(best[name], timers[name].timeit(number) / number)
    return best


def runtime_section(steps: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    a = rng.random(steps)
    x0 = 0.3
    grad_both = dp.grad(recurrence, (0, 1))

    # Warm up (compiles) and check agreement before timing anything.
    primal_dp = recurrence(x0, a)
    primal_hand = hand_primal(x0, a)
    gx, ga = grad_both(x0, a)
    hx, ha = hand_gradient(x0, a)
    if not (math.isclose(primal_dp, primal_hand, rel_tol=1e-12, abs_tol=1e-15)
            and np.allclose(gx, hx, rtol=1e-10, atol=1e-14) and np.allclose(ga, ha, rtol=1e-10, atol=1e-14)):
        raise SystemExit(f"gradients disagree: dx {gx} vs {hx}, max |da diff| {np.abs(ga - ha).max()}")
    max_diff = max(abs(gx - hx), float(np.abs(ga - ha).max()))

    # A short run as well, where d x_N / d x_0 has not decayed to ~0 (each step scales it by ~0.2), checked
    # against finite differences.
    short = a[:5]
    sx, sa = grad_both(x0, short)
    hsx, hsa = hand_gradient(x0, short)
    h = 1e-6
    fd_x = (recurrence(x0 + h, short) - recurrence(x0 - h, short)) / (2 * h)
    short_ok = np.allclose(sx, hsx, rtol=1e-12) and np.allclose(sa, hsa, rtol=1e-12) and math.isclose(
        sx, fd_x, rel_tol=1e-6)
    if not short_ok:
        raise SystemExit(f"short-run gradients disagree: {sx} vs hand {hsx} vs finite difference {fd_x}")

    times = interleaved_min({
        "primal (diffprog)": lambda: recurrence(x0, a),
        "primal (numba)": lambda: hand_primal(x0, a),
        "gradient (diffprog)": lambda: grad_both(x0, a),
        "gradient (hand numba)": lambda: hand_gradient(x0, a),
    }, repeats)
    return {
        "steps": steps,
        "times": times,
        "max_diff": max_diff,
        "short_dx": (sx, hsx, fd_x),
        "grad_over_primal": times["gradient (diffprog)"] / times["primal (diffprog)"],
        "grad_over_numba_primal": times["gradient (diffprog)"] / times["primal (numba)"],
        "diffprog_over_hand": times["gradient (diffprog)"] / times["gradient (hand numba)"],
        "hand_over_primal": times["gradient (hand numba)"] / times["primal (numba)"],
    }


# ----------------------------------------------------------------------------------------------------------
# Compile time: cold vs cached, in fresh processes
# ----------------------------------------------------------------------------------------------------------

MODULE = '''\
import math
import diffprog as dp


@dp.differentiable
def recurrence(x, a):
    for i in range(a.shape[0]):
        x = math.sin(x) * a[i] + math.cos(x) * 0.5
    return x
'''

PROBE = '''\
import json, sys, time
t0 = time.perf_counter()
import numpy as np
tn = time.perf_counter()
import numba
t1 = time.perf_counter()
import diffprog as dp
t2 = time.perf_counter()
sys.path.insert(0, {module_dir!r})
import bench_recurrence_module as m
t3 = time.perf_counter()
a = np.random.default_rng(0).random(1000)
g = dp.grad(m.recurrence)(0.3, a)
t4 = time.perf_counter()
print(json.dumps(dict(numpy_import=tn - t0, numba_import=t1 - tn, diffprog_import=t2 - t1, decorate=t3 - t2,
                      first_grad=t4 - t3, process_total=t4 - t0, gradient=g)))
'''


HAND_MODULE = '''\
import math
import numba
import numpy as np


@numba.njit(cache=True)
def hand_gradient(x, a):
    n = a.shape[0]
    xs = np.empty(n)
    for i in range(n):
        xs[i] = x
        x = math.sin(x) * a[i] + math.cos(x) * 0.5
    x_adj = 1.0
    for i in range(n - 1, -1, -1):
        x_adj = x_adj * (math.cos(xs[i]) * a[i] - 0.5 * math.sin(xs[i]))
    return x_adj
'''

HAND_PROBE = '''\
import json, sys, time
t0 = time.perf_counter()
import numpy as np
tn = time.perf_counter()
import numba
t1 = time.perf_counter()
sys.path.insert(0, {module_dir!r})
import bench_hand_module as m
t3 = time.perf_counter()
a = np.random.default_rng(0).random(1000)
g = m.hand_gradient(0.3, a)
t4 = time.perf_counter()
print(json.dumps(dict(numpy_import=tn - t0, numba_import=t1 - tn, diffprog_import=0.0, decorate=t3 - t1,
                      first_grad=t4 - t3, process_total=t4 - t0, gradient=g)))
'''


def compile_section() -> dict:
    with tempfile.TemporaryDirectory(prefix="diffprog-bench-") as tmp:
        module_dir = os.path.join(tmp, "src")
        cache = os.path.join(tmp, "cache")
        os.makedirs(module_dir)
        for name, text in (("bench_recurrence_module.py", MODULE), ("bench_hand_module.py", HAND_MODULE)):
            with open(os.path.join(module_dir, name), "w") as f:
                f.write(text)
        env = dict(os.environ, DIFFPROG_CACHE_DIR=cache, PYTHONDONTWRITEBYTECODE="1")
        # Without NUMBA_CACHE_DIR, numba caches beside each source file: in DIFFPROG_CACHE_DIR/__pycache__ for
        # diffprog's generated modules and in the temporary source dir for the hand-written baseline, so both
        # start empty.
        env.pop("NUMBA_CACHE_DIR", None)
        runs = {}
        for kind, probe in (("diffprog", PROBE), ("numba", HAND_PROBE)):
            code = probe.format(module_dir=module_dir)
            for label in ("cold", "cached"):
                out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    raise SystemExit(f"{kind} {label} compile subprocess failed:\n{out.stderr}")
                runs[kind, label] = json.loads(out.stdout.strip().splitlines()[-1])
            if runs[kind, "cold"]["gradient"] != runs[kind, "cached"]["gradient"]:
                raise SystemExit(f"cold and cached runs disagree: {runs}")
        if not math.isclose(runs["diffprog", "cold"]["gradient"], runs["numba", "cold"]["gradient"],
                            rel_tol=1e-12, abs_tol=1e-300):
            raise SystemExit(f"diffprog and hand-written gradients disagree: {runs}")
        return runs


# ----------------------------------------------------------------------------------------------------------
# Per-call overhead on a tiny function
# ----------------------------------------------------------------------------------------------------------


def tiny(x):
    return x * x


tiny_dp = dp.differentiable(tiny)
tiny_numba = numba.njit(tiny)


@numba.njit
def tiny_grad_numba(x):
    return 2.0 * x


def overhead_section(repeats: int, number: int) -> dict:
    x = 1.5
    g = dp.grad(tiny)
    assert g(x) == tiny_grad_numba(x) == dp.grad(tiny)(x) == 3.0
    assert tiny_dp(x) == tiny_numba(x) == 2.25
    per_call = interleaved_min({
        "dp.grad(tiny)(x)": lambda: dp.grad(tiny)(x),
        "g(x), g = dp.grad(tiny)": lambda: g(x),
        "tiny(x), @dp.differentiable": lambda: tiny_dp(x),
        "@numba.njit gradient 2*x": lambda: tiny_grad_numba(x),
        "@numba.njit tiny(x)": lambda: tiny_numba(x),
    }, repeats, number)
    return {name: seconds * 1e6 for name, seconds in per_call.items()}


# ----------------------------------------------------------------------------------------------------------
# Tape memory per loop iteration
# ----------------------------------------------------------------------------------------------------------

HAND_TAPE_BYTES = 8  # hand_gradient stores x once per step (xs[i]); sin and cos are recomputed from it


def tape_section(steps: int) -> dict:
    rng = np.random.default_rng(0)
    big = max(steps, 10**6)  # large enough that page granularity and lazy RSS accounting do not matter
    return tape_memory.per_iteration(recurrence, (0, 1), lambda n: (0.3, rng.random(n)), (2000, 6000),
                                     (big, 3 * big))


# ----------------------------------------------------------------------------------------------------------


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:9.2f} ms"


def verdict(value: float, target: float) -> str:
    return "ok" if value <= target else "MISSED"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10**6, help="recurrence length (default 10**6)")
    parser.add_argument("--repeats", type=int, default=15, help="timing repeats; the minimum is reported")
    parser.add_argument("--calls", type=int, default=100_000, help="calls per repeat in the overhead section")
    args = parser.parse_args(argv)

    print(f"diffprog {dp.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")

    print(f"\n== 1. runtime: x = sin(x) * a[i] + cos(x) * 0.5, {args.steps} steps, "
          f"min of {args.repeats} interleaved repeats")
    rt = runtime_section(args.steps, args.repeats)
    for name, seconds in rt["times"].items():
        print(f"  {name:<28}{ms(seconds)}")
    sx, hsx, fd = rt["short_dx"]
    print(f"  gradients agree: max |diffprog - hand| = {rt['max_diff']:.3g} (over dx0 and all of da)")
    print(f"  5-step check: dx0 diffprog {sx:.12g}, hand {hsx:.12g}, finite difference {fd:.12g}")
    print(f"  gradient / primal (diffprog)        {rt['grad_over_primal']:6.2f}  "
          f"target <= {TARGET_GRAD_OVER_PRIMAL}: {verdict(rt['grad_over_primal'], TARGET_GRAD_OVER_PRIMAL)}")
    print(f"  gradient (diffprog) / primal (numba) {rt['grad_over_numba_primal']:5.2f}")
    print(f"  hand-written gradient / primal       {rt['hand_over_primal']:5.2f}")
    print(f"  diffprog gradient / hand-written      {rt['diffprog_over_hand']:5.2f}  "
          f"target <= {TARGET_DIFFPROG_OVER_HAND}: {verdict(rt['diffprog_over_hand'], TARGET_DIFFPROG_OVER_HAND)}")

    print("\n== 2. compile time: first gradient call in a fresh process (1000-element a), empty cache dir then "
          "the same cache dir again")
    cp = compile_section()
    for (kind, label), run in cp.items():
        what = "dp.grad(f)(x, a)" if kind == "diffprog" else "njit(cache=True) hand adjoint"
        print(f"  {what:<30} {label:<7} first call {ms(run['first_grad'])}   imports: numpy "
              f"{ms(run['numpy_import'])}, numba {ms(run['numba_import'])}, diffprog {ms(run['diffprog_import'])}"
              f"   process total {ms(run['process_total'])}")

    print(f"\n== 3. per-call overhead: def tiny(x): return x * x, min of {args.repeats} x {args.calls} calls")
    oh = overhead_section(args.repeats, args.calls)
    for name, us in oh.items():
        print(f"  {name:<30}{us:7.3f} us/call")
    base = oh["@numba.njit gradient 2*x"]
    lookup = oh["dp.grad(tiny)(x)"] - base
    held = oh["g(x), g = dp.grad(tiny)"] - base
    primal = oh["tiny(x), @dp.differentiable"] - oh["@numba.njit tiny(x)"]
    print(f"  overhead beyond numba dispatch: dp.grad(tiny)(x) +{lookup:.3f} us, g(x) +{held:.3f} us, "
          f"decorated primal +{primal:.3f} us")

    print("\n== 4. tape: bytes stored for the backward sweep per loop iteration (gradient wrt x and a)")
    tp = tape_section(args.steps)
    print("\n".join(tape_memory.report(tp)))
    print(f"  hand-written adjoint: {HAND_TAPE_BYTES} bytes per step (x); diffprog / hand-written "
          f"{tp['counted'] / HAND_TAPE_BYTES:.2f}x")

    print("\n== summary")
    rows = [
        ("primal, diffprog", ms(rt["times"]["primal (diffprog)"]), ""),
        ("primal, plain numba", ms(rt["times"]["primal (numba)"]), ""),
        ("gradient, diffprog (x and a)", ms(rt["times"]["gradient (diffprog)"]), ""),
        ("gradient, hand-written numba", ms(rt["times"]["gradient (hand numba)"]), ""),
        ("gradient / primal, diffprog", f"{rt['grad_over_primal']:9.2f}x",
         f"<= {TARGET_GRAD_OVER_PRIMAL}  {verdict(rt['grad_over_primal'], TARGET_GRAD_OVER_PRIMAL)}"),
        ("diffprog / hand-written gradient", f"{rt['diffprog_over_hand']:9.2f}x",
         f"<= {TARGET_DIFFPROG_OVER_HAND}  {verdict(rt['diffprog_over_hand'], TARGET_DIFFPROG_OVER_HAND)}"),
        ("max |gradient difference|", f"{rt['max_diff']:12.3g}", ""),
        ("first dp.grad call, cold cache", ms(cp["diffprog", "cold"]["first_grad"]), ""),
        ("first dp.grad call, cached", ms(cp["diffprog", "cached"]["first_grad"]), ""),
        ("  plain numba adjoint, cold / cached", f"{cp['numba', 'cold']['first_grad'] * 1e3:.0f} / "
         f"{cp['numba', 'cached']['first_grad'] * 1e3:.0f} ms", ""),
        ("  numba import (cold / cached run)", f"{cp['diffprog', 'cold']['numba_import'] * 1e3:.0f} / "
         f"{cp['diffprog', 'cached']['numba_import'] * 1e3:.0f} ms", ""),
        ("dp.grad(tiny)(x) per call", f"{oh['dp.grad(tiny)(x)']:9.3f} us", ""),
        ("g(x) per call", f"{oh['g(x), g = dp.grad(tiny)']:9.3f} us", ""),
        ("@numba.njit call per call", f"{base:9.3f} us", ""),
        ("overhead beyond numba (g(x))", f"{held:9.3f} us", ""),
        ("tape bytes per step, counted", f"{tp['counted']:9.1f} B", f"hand-written: {HAND_TAPE_BYTES} B"),
        ("  measured uncompiled / compiled", f"{tp['uncompiled']:.1f} / "
         + ("n/a" if tp["compiled"] is None else f"{tp['compiled']:.1f}") + " B", ""),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"  {'measure':<{width}}  {'value':>14}  target")
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:>14}  {target}")
    steps_note = "" if args.steps == 10**6 else f" (--steps {args.steps})"
    print(f"  recurrence length {args.steps}{steps_note}")
    save_bar_chart("scalar_recurrence", f"x = sin(x) a[i] + cos(x) / 2 over {args.steps} steps", {
        "primal, diffprog": rt["times"]["primal (diffprog)"] * 1e3,
        "primal, plain numba": rt["times"]["primal (numba)"] * 1e3,
        "gradient, diffprog": rt["times"]["gradient (diffprog)"] * 1e3,
        "gradient, hand-written numba": rt["times"]["gradient (hand numba)"] * 1e3,
    })


if __name__ == "__main__":
    main()
