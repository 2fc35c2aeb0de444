"""`DIFFPROG_VERBOSE=1`: progress of long compilations on stderr; silent otherwise.

A compilation (one specialization: lowering, analysis, transformation, code generation and numba) that takes more
than about a second says so while it runs (`diffprog: compiling reverse code for f (model.py:12) ...`) and when it
ends, with its time and the time of each pass of the pipeline (compiler/pipeline.py) that took a measurable
part of it. Quick compilations, and everything when the variable is unset (or 0), print nothing.
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


_current = threading.local()  # the pass times of the compilation being reported on this thread


def record(pass_name: str, seconds: float) -> None:
    """Adds a pass's time to the compilation being reported (passes of derived code it compiles included)."""
    times = getattr(_current, "times", None)
    if times is not None:
        times[pass_name] = times.get(pass_name, 0.0) + seconds


def _breakdown(times: dict, total: float) -> str:
    shown = [f"{name} {seconds:.2f} s" for name, seconds in times.items() if seconds >= 0.01 * total]
    return f" ({', '.join(shown)})" if shown else ""


def reported(specialize):
    """Wraps FunctionCompiler.specialize: with DIFFPROG_VERBOSE set, compilations longer than THRESHOLD report
    their progress (when they pass it, and when they end) on stderr."""

    @functools.wraps(specialize)
    def wrapper(compiler, mode, wrt, args, *rest, **options):
        if not enabled() or getattr(_current, "times", None) is not None:  # off, or inside a reported compilation
            return specialize(compiler, mode, wrt, args, *rest, **options)
        label = _label(compiler, mode, wrt)
        start = time.perf_counter()
        timer = threading.Timer(THRESHOLD, _say, (f"diffprog: compiling {label} ...",))
        timer.daemon = True
        timer.start()
        _current.times = {}
        try:
            result = specialize(compiler, mode, wrt, args, *rest, **options)
        except BaseException:
            timer.cancel()
            elapsed = time.perf_counter() - start
            if elapsed >= THRESHOLD:
                _say(f"diffprog: compiling {label} failed after {elapsed:.1f} s")
            raise
        finally:
            times, _current.times = _current.times, None
        timer.cancel()
        elapsed = time.perf_counter() - start
        if elapsed >= THRESHOLD:
            _say(f"diffprog: compiled {label} in {elapsed:.1f} s{_breakdown(times, elapsed)}")
        return result

    return wrapper
