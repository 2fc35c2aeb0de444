"""Compiling generated functions with numba in nopython mode; failures become diagnostics, never a silent
fallback to interpreted Python.

Bounds checking: `@differentiable(boundscheck=True)`, `DIFFPROG_BOUNDSCHECK=1|0` or `set_boundscheck()` compile
with numba's `boundscheck=True`, so an index out of bounds raises IndexError instead of reading (or, in a reverse
sweep, writing) outside an array. numba's IndexError says nothing of where; `checked` finds the user's line.
"""
from __future__ import annotations

import glob
import os
import pickle
import re

from ..errors import CompilationError, Diagnostic
from .. import codes


DEFAULT_BOUNDSCHECK = True  # costs 0-2% (primal), 1-10% (gradients): measured: docs/performance.md#bounds-checking
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")
_setting: bool | None = None  # set_boundscheck(): overrides DIFFPROG_BOUNDSCHECK


def set_boundscheck(on: bool | None = True) -> None:
    """Turns bounds checking on or off for the code compiled from now on in this process, for every function
    that does not choose with `@differentiable(boundscheck=...)`; it is on by default. `None` goes back to the
    environment's setting (`DIFFPROG_BOUNDSCHECK=1` or `0`; unset: on).

    With bounds checking, an index out of bounds in the compiled primal or in any derivative raises IndexError
    naming your file and line, instead of reading (and, in a gradient, writing) outside the array. Code already
    compiled keeps the setting it was compiled with: set this before the first call.

    Example:
        ```python
        dp.set_boundscheck(False)  # like DIFFPROG_BOUNDSCHECK=0: unchecked, a few percent faster
        dp.set_boundscheck(None)   # back to the environment's setting (checked unless DIFFPROG_BOUNDSCHECK=0)
        ```
    """
    global _setting
    _setting = None if on is None else bool(on)


def boundscheck_enabled(explicit: bool | None = None) -> bool:
    """Whether code compiled now checks bounds: the function's own choice, else set_boundscheck(), else
    DIFFPROG_BOUNDSCHECK, else DEFAULT_BOUNDSCHECK; numba's NUMBA_BOUNDSCHECK=0|1 overrides them all (numba
    applies it to everything it compiles)."""
    try:
        from numba.core import config
        forced = config.BOUNDSCHECK
    except ImportError:  # pragma: no cover
        forced = None
    if forced is not None:
        return bool(forced)
    if explicit is not None:
        return bool(explicit)
    if _setting is not None:
        return _setting
    env = os.environ.get("DIFFPROG_BOUNDSCHECK", "").strip().lower()
    if env in _ON:
        return True
    if env in _OFF:
        return False
    return DEFAULT_BOUNDSCHECK


# numba settings (read by numba from NUMBA_* variables) that change the machine code or its behaviour; numba's own
# cache index ignores most of them, so they are part of the generated module's name (settings_key)
_NUMBA_CONFIG = ("BOUNDSCHECK", "OPT", "CPU_NAME", "CPU_FEATURES", "LOOP_VECTORIZE", "SLP_VECTORIZE", "ENABLE_AVX",
                 "DISABLE_INTEL_SVML", "DISABLE_JIT", "FASTMATH", "ERROR_MODEL")


def jit_options(boundscheck: bool) -> dict:
    """The options diffprog passes to numba.njit (besides cache=True)."""
    return {"boundscheck": bool(boundscheck)}


def settings_key(options: dict) -> str:
    """Every compilation setting that changes what compiled code does: the njit options and numba's
    configuration. Part of the disk-cache key (backend/cache.py): numba's per-file index does not know them."""
    from numba.core import config

    parts = [f"{name}={options[name]!r}" for name in sorted(options)]
    parts += [f"NUMBA_{name}={getattr(config, name, None)!s}" for name in _NUMBA_CONFIG]
    return ";".join(parts)


def compile_nopython(py_function, arg_values, origins: dict, path: str, options: dict | None = None):
    """A numba dispatcher compiled (or loaded from the disk cache) for the types of `arg_values`, with the njit
    `options` (jit_options)."""
    import numba
    from numba.core.errors import NumbaError

    options = dict(options or {})
    dispatcher = numba.njit(cache=True, **options)(py_function)
    signature = tuple(numba.typeof(value) for value in arg_values)
    try:
        try:
            dispatcher.compile(signature)
        except (EOFError, pickle.UnpicklingError, ValueError, OSError) if _has_cache(path) else ():
            # a corrupted or truncated numba cache file: drop this module's cache and compile afresh
            _drop_cache(path)
            dispatcher = numba.njit(cache=True, **options)(py_function)
            dispatcher.compile(signature)
    except NumbaError as error:
        raise CompilationError([_diagnostic(error, origins, path)]) from None
    except (AssertionError, NotImplementedError, LookupError, TypeError) as error:  # numba failing internally
        raise CompilationError([Diagnostic(
            codes.NUMBA_REJECTED,
            f"numba failed internally while compiling the generated code ({type(error).__name__}: "
            f"{error})", origins.get(min(origins)) if origins else None,
            hint="report this with the generated code; meanwhile, run with @diffprog.differentiable(jit=False)",
            notes=(f"generated code: {path}",))]) from error
    return dispatcher


def _cache_files(path: str) -> list:
    folder = os.path.join(os.path.dirname(path), "__pycache__")
    stem = os.path.splitext(os.path.basename(path))[0]
    return glob.glob(os.path.join(folder, glob.escape(stem) + ".*.nb[ic]"))


def _has_cache(path: str) -> bool:
    return bool(_cache_files(path))


def _drop_cache(path: str) -> None:
    for file in _cache_files(path):
        try:
            os.remove(file)
        except OSError:
            pass


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _diagnostic(error, origins, path) -> Diagnostic:
    text = _ANSI.sub("", str(error))
    module = re.escape(os.path.basename(path))
    lines = [int(n) for n in re.findall(rf'{module}", line (\d+)|{module} \((\d+)\)', text) for n in n if n]
    origin = None
    if lines and origins:
        known = [n for n in origins if n <= lines[0]]
        origin = origins[max(known)] if known else None
    body = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    informative = [line for line in body if not line.startswith(("During:", "File ", "<source"))]
    summary = " ".join(informative[:3]) if informative else text.strip()
    return Diagnostic(
        codes.NUMBA_REJECTED,
        f"numba cannot compile this in nopython mode: {summary}",
        origin,
        hint="use only numbers, numpy arrays and tuples of them on this line (see numba's message below)",
        notes=(f"generated code: {path}", "numba said: " + " | ".join(body[:12])),
    )


# ---- bounds checking: where an IndexError came from ------------------------------------------------------------
def checked(dispatcher, origins: dict, path: str, what: str):
    """`dispatcher` (compiled with boundscheck=True) as a function whose IndexError names the user's line.

    numba's bounds-check error carries no location, so on an IndexError the generated Python function runs
    again, on copies of the arrays, until it fails the same way: its traceback's innermost frame in the
    generated module, mapped through `origins`, is the user's line. Only the failing call pays for that."""
    module = os.path.basename(path)

    def run(*args):
        try:
            return dispatcher(*args)
        except IndexError as error:
            raise IndexError(_located(dispatcher.py_func, args, origins, module, what, error)) from None

    run.dispatcher = dispatcher
    return run


def _located(py_function, args, origins, module, what, error) -> str:
    line, python_message = _failing_line(py_function, args, module)
    origin = None
    if line is not None and origins:
        known = [n for n in origins if n <= line]
        origin = origins[max(known)] if known else None
    detail = python_message or str(error) or "index out of bounds"
    if "out of bounds" not in detail:
        detail = f"index out of bounds ({detail})"
    where = f"{origin.file}:{origin.line}: " if origin is not None else ""
    text = f": {origin.text.strip()}" if origin is not None and origin.text else ""
    return f"{where}{detail} (in {what}){text}"


def _failing_line(py_function, args, module) -> tuple:
    """(the generated line at which the plain Python version of the code raises IndexError, numpy's message),
    or (None, None) if it does not."""
    copies = tuple(_copy(a) for a in args)
    try:
        py_function(*copies)
    except IndexError as error:
        tb, line = error.__traceback__, None
        while tb is not None:
            if os.path.basename(tb.tb_frame.f_code.co_filename) == module:
                line = tb.tb_lineno
            tb = tb.tb_next
        return line, str(error)
    except Exception:  # the Python version fails otherwise: no line rather than a wrong one
        return None, None
    return None, None


def _copy(value):
    if hasattr(value, "copy") and hasattr(value, "shape"):  # numpy arrays
        return value.copy()
    if isinstance(value, tuple):
        return tuple(_copy(v) for v in value)
    return value
