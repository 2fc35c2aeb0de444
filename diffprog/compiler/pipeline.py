"""The pass pipeline: what runs, in which order, for each kind of code, declared as data.

A specialization (one function, one mode, one set of differentiated parameters, one `Signature`) is a `Unit`
that flows through a list of named passes. Each pass is a small function that reads the unit and updates it
(usually: core code in, core code out). The lists of passes (front.py, back.py) are the whole compiler:

    front       lower -> nested -> cleanup             (a user function's core code; `derive` for a derivative)
    analysis    infer -> initialize [-> check]          (types; first values; activity and diagnostics)
    transform   reverse -> in_place | forward | forward_batched
    back        codegen -> jit

`DIFFPROG_DUMP=pass[,pass...]` (or `all`) prints the code after those passes on stderr, and
`diffprog.source(f, mode, after="pass")` returns it; `DIFFPROG_VERBOSE=1` adds each pass's time to the line
reporting a long compilation (progress.py). The front and analysis passes import nothing from the backend: the
command line checker runs the same stages (compiler/front.py) without numba.
"""
from __future__ import annotations

import os
import sys
import time

from .. import progress
from .back import BACK, TRANSFORMS, render
from .front import ANALYSIS, DERIVED_FRONT, FUNCTION_FRONT
from .unit import Unit


PASS_NAMES = tuple(dict.fromkeys(p.name for group in (FUNCTION_FRONT, DERIVED_FRONT, ANALYSIS,
                                                      *TRANSFORMS.values(), BACK) for p in group))


def passes(front: tuple, mode: str) -> tuple:
    """The pipeline for `mode`, after the given front passes."""
    return front + ANALYSIS + TRANSFORMS[mode] + BACK


def run(pipeline: tuple, unit: Unit, until: str | None = None) -> Unit:
    """Runs the passes in order (up to and including `until`), dumping and timing each as asked."""
    if until is not None and until not in (p.name for p in pipeline):
        raise ValueError(f"no pass {until!r} in {unit.mode} code for {unit.compiler.parsed.name}; its passes: "
                         f"{', '.join(p.name for p in pipeline)}")
    dumped = _dumped_passes()
    for step in pipeline:
        start = time.perf_counter()
        step.run(unit)
        progress.record(step.name, time.perf_counter() - start)
        if step.name in dumped or "all" in dumped:
            print(f"# ==== after {step.name}: {unit.describe()} ====\n{render(unit)}", file=sys.stderr)
        if step.name == until:
            break
    return unit


def _dumped_passes() -> set:
    names = {name.strip() for name in os.environ.get("DIFFPROG_DUMP", "").split(",") if name.strip()}
    unknown = names - set(PASS_NAMES) - {"all"}
    if unknown:
        raise ValueError(f"DIFFPROG_DUMP names no pass {', '.join(sorted(unknown))}; the passes are "
                         f"{', '.join(PASS_NAMES)} (or all)")
    return names
