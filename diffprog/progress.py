"""`DIFFPROG_VERBOSE=1`: progress of long compilations on stderr; silent otherwise.

A compilation (one specialization: lowering, analysis, transformation, code generation and numba) that takes more
than about a second says so while it runs (`diffprog: compiling reverse code for f (model.py:12) ...`) and when it
ends, with its time. Quick compilations, and everything when the variable is unset (or 0), print nothing.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import time

THRESHOLD = 1.0  # seconds


def enabled() -> bool:
    return os.environ.get("DIFFPROG_VERBOSE", "").strip().lower() not in ("", "0", "false", "no", "off")


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed: progress is best effort
        pass


def _label(compiler, mode, wrt) -> str:
    parsed = compiler.parsed
    kind = type(compiler).__name__
    what = {"DerivativeCompiler": "a derivative of ", "TangentCompiler": "the tangent map of "}.get(kind, "")
    where = f"{os.path.basename(parsed.file)}:{parsed.node.lineno + parsed.line_offset}"
    wrt_text = f", wrt {tuple(wrt)}" if wrt else ""
    return f"{mode} code for {what}{parsed.name} ({where}{wrt_text})"


def reported(specialize):
    """Wraps FunctionCompiler.specialize: with DIFFPROG_VERBOSE set, compilations longer than THRESHOLD report
    their progress (when they pass it, and when they end) on stderr."""

    @functools.wraps(specialize)
    def wrapper(compiler, mode, wrt, args):
        if not enabled():
            return specialize(compiler, mode, wrt, args)
        label = _label(compiler, mode, wrt)
        start = time.perf_counter()
        timer = threading.Timer(THRESHOLD, _say, (f"diffprog: compiling {label} ...",))
        timer.daemon = True
        timer.start()
        try:
            result = specialize(compiler, mode, wrt, args)
        except BaseException:
            timer.cancel()
            elapsed = time.perf_counter() - start
            if elapsed >= THRESHOLD:
                _say(f"diffprog: compiling {label} failed after {elapsed:.1f} s")
            raise
        timer.cancel()
        elapsed = time.perf_counter() - start
        if elapsed >= THRESHOLD:
            _say(f"diffprog: compiled {label} in {elapsed:.1f} s")
        return result

    return wrapper
