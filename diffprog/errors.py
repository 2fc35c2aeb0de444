"""Diagnostics: every problem the compiler finds is reported against the user's own source line.

A `Diagnostic` is plain data (code, place, message, fix) so that the same finding can be raised as a
`DifferentiabilityError`, printed by the command line checker, or serialized, without re-deriving text.
"""
from __future__ import annotations

import functools
import os
import sys
import types
import warnings
from dataclasses import dataclass, field
from typing import Callable, TypeVar

_F = TypeVar("_F", bound=Callable)


@dataclass(frozen=True)
class Origin:
    """Where a piece of core code came from in the user's source (1-based line, 0-based column)."""

    file: str
    line: int
    col: int
    text: str = ""  # the full source line, for excerpts and generated-code comments
    function: str = ""
    end_line: int | None = None
    end_col: int | None = None
    # The call sites (outermost first) through which lowering reached this place inside an inlined callee; not
    # part of equality, so the same line inlined twice is still the same place.
    chain: tuple = field(default=(), compare=False)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col + 1}"

    def shown(self) -> str:
        """The place as the user knows it: `file:line:col`, or in IPython/Jupyter, for code typed in a cell
        (compiled under a temporary file name), the cell as IPython's tracebacks name it: `Cell In[8], line 4,
        column 11`."""
        cell = _cell_name(self.file)
        return f"{cell}, line {self.line}, column {self.col + 1}" if cell else str(self)


def _cell_name(file: str) -> str | None:
    """`Cell In[8]` for the file name IPython compiled a cell under (its compiler keeps the map: what IPython's
    own tracebacks use, `CachingCompiler.format_code_name`), else None. Never imports IPython: a session that runs
    cells has imported it."""
    ipython = sys.modules.get("IPython")
    if ipython is None or not file:
        return None
    try:
        shell = ipython.get_ipython()
        named = shell.compile.format_code_name(file) if shell is not None else None
    except Exception:  # an IPython without the map: the file name
        return None
    return f"{named[0]} {named[1]}" if named else None


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    origin: Origin | None
    hint: str = ""
    severity: str = "error"
    notes: tuple[str, ...] = field(default=())  # e.g. the call chain that led here

    @property
    def file(self) -> str | None:
        return self.origin.file if self.origin else None

    @property
    def line(self) -> int | None:
        return self.origin.line if self.origin else None

    @property
    def col(self) -> int | None:
        return self.origin.col if self.origin else None

    def call_chain(self) -> list:
        """(text, call-site Origin) for each call from the differentiated function down to the problem, innermost
        first, so a problem inside a helper also says how the differentiated function reached it."""
        chain = self.origin.chain if self.origin else ()
        callees = [site.function for site in chain[1:]] + [self.origin.function if self.origin else ""]
        return [(f"'{callee}' is called from '{site.function}'", site)
                for site, callee in reversed(list(zip(chain, callees)))]

    def render(self) -> str:
        where = self.origin.shown() if self.origin else "<unknown>"
        lines = [f"{where}: {self.severity} {self.code}: {self.message}"]
        if self.origin and self.origin.text:
            excerpt = self.origin.text.rstrip("\n")
            lines.append(f"    {excerpt}")
            lines.append("    " + " " * self.origin.col + "^")
        lines.extend(f"    note: {note}" for note in self.notes)
        lines.extend(f"    note: {text} at {site.shown()}" for text, site in self.call_chain())
        if self.hint:
            lines.append(f"    fix: {self.hint}")
        return "\n".join(lines)


class DifferentiabilityError(Exception):
    """The compiler cannot differentiate (or compile) the code; lists every problem found."""

    def __init__(self, diagnostics):
        self.diagnostics = tuple(diagnostics)
        count = len(self.diagnostics)
        header = f"cannot differentiate: {count} problem{'s' if count != 1 else ''} found"
        super().__init__(header + "\n" + "\n".join(d.render() for d in self.diagnostics))

    def _render_traceback_(self) -> list:
        """What IPython/Jupyter shows instead of a traceback: the diagnostics (each at the user's own line, with
        its notes and fix), none of diffprog's internal frames."""
        return [f"{type(self).__name__}: {self}"]


class CompilationError(DifferentiabilityError):
    """numba rejected generated code; raised instead of silently running interpreted Python."""


class DifferentiabilityWarning(UserWarning):
    """The derivative will be silently zero or cut; the code still compiles."""


# ---- the traceback of an error that reaches the user ------------------------------------------------------------------
# A DifferentiabilityError is a compiler's report on the user's code: its diagnostics point at the user's lines, and
# the frames of diffprog that found the problem (passes, lowering, the pipeline) say nothing to the user. So every
# public entry point (the decorator, dp.grad and the other transforms, the functions they return) catches it and
# re-raises it without diffprog's frames: the traceback then holds the user's own frames only (the line that
# decorated or called), as Python's own SyntaxError does. Other exceptions (a bug in diffprog) keep their full
# traceback, and DIFFPROG_VERBOSE=1 keeps it for these too.
_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _internal(frame) -> bool:
    return os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE)


def hide_internal_frames(error: BaseException) -> None:
    """Drops diffprog's frames from the traceback of `error`, in place. Called in an `except` clause of a public
    entry point that then re-raises with a bare `raise` (which, unlike `raise error`, adds no frame: the entry
    point's own frame is dropped too). An earlier DifferentiabilityError it was raised while handling (a first
    attempt the compiler recovered from, e.g. dp.jacobian trying batched forward mode) is not shown; any other
    exception it was raised from or while handling keeps its traceback."""
    if isinstance(error.__cause__, DifferentiabilityError):
        hide_internal_frames(error.__cause__)
    elif isinstance(error.__context__, DifferentiabilityError):
        error.__suppress_context__ = True
    if os.environ.get("DIFFPROG_VERBOSE", "").strip().lower() not in ("", "0", "false", "no", "off"):
        return
    kept = []
    tb = error.__traceback__
    while tb is not None:
        if not _internal(tb.tb_frame):
            kept.append(tb)
        tb = tb.tb_next
    trimmed = None
    for entry in reversed(kept):
        trimmed = types.TracebackType(trimmed, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    error.__traceback__ = trimmed


def user_facing(function: _F) -> _F:
    """Decorator for a public entry point: a DifferentiabilityError leaves it without diffprog's frames
    (hide_internal_frames). The hottest entry points (the `__call__` of a compiled function or gradient) do the
    same inline instead, saving the wrapper's call."""

    @functools.wraps(function)
    def entry(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        except DifferentiabilityError as error:
            hide_internal_frames(error)
            raise

    return entry  # type: ignore[return-value]


class Reporter:
    """Collects diagnostics during a pass so that one error lists every problem, not just the first."""

    def __init__(self):
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, origin: Origin | None, hint: str = "", notes=()):
        self.diagnostics.append(Diagnostic(code, message, origin, hint, "error", tuple(notes)))

    def warning(self, code: str, message: str, origin: Origin | None, hint: str = "", notes=()):
        self.diagnostics.append(Diagnostic(code, message, origin, hint, "warning", tuple(notes)))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    def raise_if_errors(self, error_class=DifferentiabilityError) -> None:
        if self.errors:
            raise error_class(self.errors)

    def emit_warnings(self) -> None:
        """Warnings are attributed to the user's line (not to diffprog's frames), so filters on them work."""
        for diagnostic in self.diagnostics:
            if diagnostic.severity == "warning":
                origin = diagnostic.origin
                warnings.warn_explicit(diagnostic.render(), DifferentiabilityWarning,
                                       origin.file if origin else "<diffprog>", origin.line if origin else 0)
