"""Diagnostics: every problem the compiler finds is reported against the user's own source line.

A `Diagnostic` is plain data (code, place, message, fix) so that the same finding can be raised as a
`DifferentiabilityError`, printed by the command line checker, or serialized, without re-deriving text.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field


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
        where = str(self.origin) if self.origin else "<unknown>"
        lines = [f"{where}: {self.severity} {self.code}: {self.message}"]
        if self.origin and self.origin.text:
            excerpt = self.origin.text.rstrip("\n")
            lines.append(f"    {excerpt}")
            lines.append("    " + " " * self.origin.col + "^")
        lines.extend(f"    note: {note}" for note in self.notes)
        lines.extend(f"    note: {text} at {where}" for text, where in self.call_chain())
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
