"""Compiling generated functions with numba in nopython mode; failures become diagnostics, never a silent
fallback to interpreted Python."""
from __future__ import annotations

import glob
import os
import pickle
import re

from ..errors import CompilationError, Diagnostic
from .. import codes


def compile_nopython(py_function, arg_values, origins: dict, path: str):
    """A numba dispatcher compiled (or loaded from the disk cache) for the types of `arg_values`."""
    import numba
    from numba.core.errors import NumbaError

    dispatcher = numba.njit(cache=True)(py_function)
    signature = tuple(numba.typeof(value) for value in arg_values)
    try:
        try:
            dispatcher.compile(signature)
        except (EOFError, pickle.UnpicklingError, ValueError, OSError) if _has_cache(path) else ():
            # a corrupted or truncated numba cache file: drop this module's cache and compile afresh
            _drop_cache(path)
            dispatcher = numba.njit(cache=True)(py_function)
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
