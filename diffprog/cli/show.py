"""`diffprog show FILE::FUNCTION --mode reverse|forward|primal`: the code diffprog generates, without a script.

Unlike `diffprog check`, this imports FILE (running its module-level code, as `import` would): the generated code
depends on the argument types, which only the decorator's own compiler, run on the live function, knows. The code
printed is exactly `diffprog.source(f, mode=..., args=...)`: what runs, before numba compiles it (numba is not
run here, so problems numba alone finds, DP301, do not show).
"""
from __future__ import annotations

import contextlib
import importlib.util
import itertools
import math
import os
import sys
import traceback
from pathlib import Path

import numpy as np

from ..errors import DifferentiabilityError
from .config import UsageError

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
_counter = itertools.count()


def show(args) -> int:
    path, _, name = args.target.rpartition("::")
    if not path or not name:
        raise UsageError(f"expected FILE::FUNCTION, not {args.target!r}")
    if not Path(path).is_file():
        raise UsageError(f"{path}: no such file")
    module = _import(Path(path))
    if module is None:
        return EXIT_USAGE
    fn = _function(module, name, path)
    call_args = evaluate_args(args.args, fn)
    argnums = _argnums(args.argnums)
    try:
        text = generated_source(fn, args.mode, call_args, argnums)
    except DifferentiabilityError as error:
        print(str(error), file=sys.stderr)
        return EXIT_PROBLEMS
    sys.stdout.write(highlight(text, args.color))
    return EXIT_OK


def generated_source(fn, mode, call_args, argnums) -> str:
    """diffprog.source for a fresh, uncompiled (jit=False) copy of `fn`: the same generated module, without
    running numba."""
    import diffprog
    from ..api import DifferentiableFunction

    target = getattr(fn, "__diffprog_function__", fn)
    df = DifferentiableFunction(target, jit=False)
    return diffprog.source(df, mode, args=call_args, argnums=argnums)


def _import(path: Path):
    """Runs the file as a module (its directory importable, as `python FILE` would make it); what it prints goes
    to stderr."""
    directory = str(path.resolve().parent)
    added = directory not in sys.path
    if added:
        sys.path.insert(0, directory)
    name = f"diffprog_show_{path.stem}_{next(_counter)}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout is for the generated code (pipe it, diff it)
            spec.loader.exec_module(module)
    except DifferentiabilityError as error:  # a decorator rejected a function at import time
        print(str(error), file=sys.stderr)
        return None
    except BaseException:  # noqa: BLE001 - the user's module failed: show where, as Python would
        print(f"diffprog: error: importing {path} failed:", file=sys.stderr)
        traceback.print_exc()
        return None
    return module


def _function(module, name, path):
    value = module
    for part in name.split("."):
        value = getattr(value, part, None)
        if value is None:
            raise UsageError(f"{path} has no function {name!r}")
    if not callable(value):
        raise UsageError(f"{path}::{name} is not a function")
    return value


def evaluate_args(text, fn) -> tuple:
    """`--args "1.0, np.ones(3)"` as a tuple (numpy as np and numpy, math available); default a float per
    parameter."""
    if text is None or not text.strip():
        target = getattr(fn, "__diffprog_function__", fn)
        code = getattr(target, "__code__", None)
        count = code.co_argcount if code is not None else 1
        return (1.0,) * count
    try:
        value = eval(f"({text},)", {"np": np, "numpy": np, "math": math, "__builtins__": __builtins__})  # noqa: S307
    except Exception as error:  # noqa: BLE001 - a usage error, reported in one line
        raise UsageError(f"--args {text!r}: {type(error).__name__}: {error}") from None
    return tuple(value)


def _argnums(text):
    if text is None:
        return 0
    try:
        numbers = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"--argnums {text!r}: expected integers separated by commas") from None
    return numbers[0] if len(numbers) == 1 else numbers


def wants_color(choice: str, stream=None) -> bool:
    if choice == "never":
        return False
    if choice == "auto":
        stream = stream or sys.stdout
        if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
            return False
        if not (hasattr(stream, "isatty") and stream.isatty()):
            return False
    return importlib.util.find_spec("pygments") is not None


def highlight(text: str, choice: str = "auto") -> str:
    """Python syntax highlighting for a terminal when it supports it and pygments is installed; plain otherwise."""
    if not wants_color(choice):
        return text
    try:
        from pygments import highlight as render
        from pygments.formatters import Terminal256Formatter, TerminalFormatter
        from pygments.lexers import PythonLexer
    except ImportError:
        return text
    term = os.environ.get("TERM", "")
    formatter = Terminal256Formatter() if "256" in term or os.environ.get("COLORTERM") else TerminalFormatter()
    return render(text, PythonLexer(), formatter)


__all__ = ["evaluate_args", "generated_source", "highlight", "show"]
