"""Bytes of tape per loop iteration of a generated adjoint, measured three ways (used by scalar_recurrence.py and
gmm.py).

The tape is what the forward sweep of the generated adjoint stores for the backward sweep: per-variable arrays
(`tape_x`, grown by `tape_reserve`) for numbers; for arrays, a flat buffer of the pushed elements (`tape_xc`) and
an index of (start, shape) rows (`tape_xc_index`), see diffprog/backend/tapes.py. Each figure
below is a difference between two runs at trip counts n1 < n2 of the loop, divided by n2 - n1, so everything
that does not grow with the loop (inputs, constants, compiled code, interpreter state) cancels; what grows with
the loop and is returned to the caller (an array gradient as long as the loop, as in the recurrence) is
subtracted explicitly.

1. `by_tape`: the generated module's own source is executed as plain Python with its tape helpers replaced by
   counting ones (`tape_reserve` records the bytes each number tape holds; the array tape helpers the bytes of
   the elements and index rows pushed and not yet popped). Gives the peak tape bytes, tape by tape: the payload,
   not the capacity the tapes grew to. Nothing else in the generated code changes.
2. `uncompiled`: the same generated code run through diffprog with `jit=False`, under tracemalloc: peak
   Python-heap bytes of the gradient call, which includes the capacity tapes grew to (up to twice their payload)
   and the temporaries of the backward sweep.
3. `compiled`: the numba-compiled gradient itself, as peak resident memory (Linux: VmHWM, reset through
   /proc/self/clear_refs just before the call). Includes grown capacity and the allocator's overhead, so it varies
   by some percent between runs (the median of three is reported). None where /proc is not available.
"""
from __future__ import annotations

import ctypes
import gc
import re
import sys
import tracemalloc

import numpy as np

import diffprog as dp
from diffprog.backend import runtime, tapes


# ---- 1. the generated source, run with counting tape containers ----------------------------------------------
class _Meter:
    def __init__(self):
        self.held: dict = {}  # tape name -> bytes held now
        self.peak_by_tape: dict = {}
        self.total = 0
        self.peak = 0

    def set(self, name, nbytes):
        self.total += nbytes - self.held.get(name, 0)
        self.held[name] = nbytes
        self.peak = max(self.peak, self.total)
        self.peak_by_tape[name] = max(self.peak_by_tape.get(name, 0), nbytes)


def _nbytes(value) -> int:
    return value.nbytes if isinstance(value, np.ndarray) else np.asarray(value).nbytes


def _caller_name(value) -> str:
    """The name the generated function (two frames up) binds `value` to: tapes are locals named tape_*."""
    frame = sys._getframe(2)
    for name, bound in frame.f_locals.items():
        if bound is value and name.startswith("tape_"):
            return name
    return "tape_?"


def _counting_namespace(meter) -> dict:
    """Stand-ins for the tape helpers the generated code calls, counting what each tape holds."""
    def tape_reserve(tape, length, count):
        grown = runtime.tape_reserve(tape, length, count)
        meter.set(_caller_name(tape), grown.nbytes)
        return grown

    def array_tape_note(index, length, x):
        grown = tapes.array_tape_note(index, length, x)
        meter.set(_caller_name(index), (length + 1) * grown.shape[1] * grown.itemsize)
        return grown

    def array_tape_store(data, index, length, x):
        grown = tapes.array_tape_store(data, index, length, x)
        meter.set(_caller_name(data), (index[length, 0] + x.size) * grown.itemsize)
        return grown

    def array_tape_load(data, index, length, like):
        meter.set(_caller_name(data), index[length, 0] * data.itemsize)
        meter.set(_caller_name(index), length * index.shape[1] * index.itemsize)
        return tapes.array_tape_load(data, index, length, like)

    return {"tape_reserve": tape_reserve, "array_tape_note": array_tape_note, "array_tape_store": array_tape_store,
            "array_tape_load": array_tape_load}


def counted_tape(f, argnums, args) -> tuple[int, dict]:
    """(peak tape bytes, peak bytes per tape) of one run of f's generated adjoint, run as plain Python."""
    source = dp.source(f, mode="reverse", args=args, argnums=argnums)
    name = re.search(r"^def (\w+)\(", source, re.M).group(1)
    meter = _Meter()
    namespace: dict = {"__name__": "diffprog_tape_count"}
    exec(compile(source, f"<reverse code of {name}>", "exec"), namespace)
    namespace.update(_counting_namespace(meter))
    seeds = (1.0,)  # the benchmarks' objectives return one number
    namespace[name](*args, *seeds)
    return meter.peak, dict(meter.peak_by_tape)


# ---- 2. the uncompiled adjoint under tracemalloc ---------------------------------------------------------------
def _output_bytes(result) -> int:
    items = result if isinstance(result, tuple) else (result,)
    return sum(r.nbytes for r in items if isinstance(r, np.ndarray))


def uncompiled_peak(gradient, args) -> int:
    """Peak traced bytes during gradient(*args) above what was allocated before, less the returned arrays."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        result = gradient(*args)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before - _output_bytes(result)


# ---- 3. the compiled adjoint, by peak resident memory ------------------------------------------------------------
def _status(field) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise OSError(field)


def _release_free_memory():
    """Gives memory malloc holds but does not use back to the system (glibc), so that the resident size before a
    run does not include free heap pages the run would reuse unseen."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def compiled_peak(gradient, args) -> int | None:
    """Peak resident bytes during gradient(*args) above the resident size before it, less the returned arrays."""
    gc.collect()
    _release_free_memory()
    try:
        before = _status("VmRSS")
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # resets VmHWM (the peak) to the current resident size
    except OSError:
        return None
    result = gradient(*args)
    return _status("VmHWM") - before - _output_bytes(result)


# ---- per iteration ---------------------------------------------------------------------------------------------
def _median(values):
    return None if None in values else sorted(values)[len(values) // 2]


def per_iteration(f, argnums, make_args, counts, compiled_counts, repeats=3) -> dict:
    """Bytes of tape per loop iteration, each way, from runs at the trip counts `counts` (uncompiled, two small
    ones) and `compiled_counts` (large enough that page granularity does not matter). `make_args(n)` gives f's
    arguments for n loop iterations; f must be decorated with @dp.differentiable (compiled). The resident-memory
    figures are medians of `repeats` runs (the allocator does not behave the same way every time)."""
    n1, n2 = counts
    plain = dp.differentiable(f.__diffprog_function__, jit=False)
    slow = dp.grad(plain, argnums)
    fast = dp.grad(f, argnums)
    a1, a2 = make_args(n1), make_args(n2)
    (p1, tapes1), (p2, tapes2) = counted_tape(f, argnums, a1), counted_tape(f, argnums, a2)
    slow(*a1)  # warm up (code generation) before measuring
    u1, u2 = uncompiled_peak(slow, a1), uncompiled_peak(slow, a2)
    c1, c2 = compiled_counts
    b1, b2 = make_args(c1), make_args(c2)
    fast(*make_args(1))  # compile before measuring
    r1, r2 = (_median([compiled_peak(fast, b) for _ in range(repeats)]) for b in (b1, b2))
    by_tape = {name: (tapes2.get(name, 0) - tapes1.get(name, 0)) / (n2 - n1) for name in sorted(tapes2)}
    return {
        "counted": (p2 - p1) / (n2 - n1),
        "by_tape": {name: b for name, b in by_tape.items() if b},
        "uncompiled": (u2 - u1) / (n2 - n1),
        "compiled": None if r1 is None or r2 is None else (r2 - r1) / (c2 - c1),
        "counts": counts,
        "compiled_counts": compiled_counts,
    }


def report(figures, indent="  ") -> list:
    """Lines describing `per_iteration`'s figures."""
    n1, n2 = figures["counts"]
    c1, c2 = figures["compiled_counts"]
    tapes = ", ".join(f"{name} {b:g}" for name, b in figures["by_tape"].items()) or "none"
    compiled = "n/a (no /proc)" if figures["compiled"] is None else f"{figures['compiled']:,.1f}"
    return [
        f"{indent}tape bytes per iteration, counted from the generated code's own pushes: {figures['counted']:,.1f}"
        f"  (n = {n1} vs {n2})",
        f"{indent}  by tape: {tapes}",
        f"{indent}measured, uncompiled generated code under tracemalloc: {figures['uncompiled']:,.1f}"
        f"  (n = {n1} vs {n2})",
        f"{indent}measured, compiled gradient, peak resident memory:     {compiled}  (n = {c1} vs {c2})",
    ]
