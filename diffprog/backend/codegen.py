"""Printing core code as readable Python: one statement per line, each group of statements headed by a comment
naming the user's source line it came from. The printed module is exactly what runs (and what numba compiles).
"""
from __future__ import annotations

import math
import os

from ..ir import core as C

INDENT = "    "


def render_atom(atom) -> str:
    if isinstance(atom, C.Var):
        return atom.name
    if isinstance(atom, C.Slice):
        parts = [render_atom(p) if p is not None else "" for p in (atom.lower, atom.upper, atom.step)]
        return ":".join(parts[:2]) + (f":{parts[2]}" if atom.step is not None else "")
    value = atom.value
    if isinstance(value, float):
        if math.isnan(value):
            return "math.nan"
        if math.isinf(value):
            return "math.inf" if value > 0 else "(-math.inf)"
        return f"({value!r})" if value < 0 or (value == 0 and math.copysign(1, value) < 0) else repr(value)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return f"({value!r})"
    return repr(value)


def render_expr(value) -> str:
    if isinstance(value, C.Call):
        return value.prim.render([render_atom(a) for a in value.args])
    return render_atom(value)


class Printer:
    def __init__(self):
        self.lines: list = []
        self.origins: dict = {}  # generated line number (1-based) -> Origin
        self._last_origin = None

    def line(self, depth, text, origin=None):
        self.lines.append(INDENT * depth + text)
        if origin is not None:
            self.origins[len(self.lines)] = origin

    def comment_for(self, depth, origin):
        if origin is None or origin == self._last_origin:
            return
        key = (origin.file, origin.line)
        last = (self._last_origin.file, self._last_origin.line) if self._last_origin else None
        self._last_origin = origin
        if key != last:
            text = origin.text.strip()
            self.line(depth, f"# {os.path.basename(origin.file)}:{origin.line}: {text}")

    def _after_block(self, stmt):
        """The next statement names its source line again, unless the whole statement came from one line."""
        if any(s.origin != stmt.origin for s, _ in C.walk(C.children(stmt)[0] + C.children(stmt)[1])):
            self._last_origin = None

    def function(self, fn: C.Function):
        self.line(0, f"def {fn.name}({', '.join(fn.params)}):", fn.origin)
        self.block(1, fn.body)
        results = ", ".join(render_atom(a) for a in fn.results)
        if fn.returns_tuple:
            results = f"({results},)" if len(fn.results) == 1 else f"({results})"
        self.line(1, f"return {results}", fn.origin)

    def block(self, depth, block):
        if not block:
            self.line(depth, "pass")
        for stmt in block:
            self.statement(depth, stmt)

    def statement(self, depth, stmt):
        self.comment_for(depth, stmt.origin)
        origin = stmt.origin
        if isinstance(stmt, C.Assign) and _updates_in_place(stmt):
            operator = "+=" if stmt.value.prim.name == "accumulate" else "-="
            self.line(depth, f"{stmt.target} {operator} {render_atom(stmt.value.args[1])}", origin)
        elif isinstance(stmt, C.Assign):
            self.line(depth, f"{stmt.target} = {render_expr(stmt.value)}", origin)
        elif isinstance(stmt, C.Store):
            index = ", ".join(render_atom(i) for i in stmt.index)
            self.line(depth, f"{stmt.base}[{index}] = {render_atom(stmt.value)}", origin)
        elif isinstance(stmt, C.Effect):
            self.line(depth, render_expr(stmt.call), origin)
        elif isinstance(stmt, C.If):
            self.line(depth, f"if {render_atom(stmt.cond)}:", origin)
            self.block(depth + 1, stmt.body)
            self._after_block(stmt)
            if stmt.orelse:
                self.line(depth, "else:", origin)
                self.block(depth + 1, stmt.orelse)
                self._after_block(stmt)
        elif isinstance(stmt, C.ForRange):
            self.line(depth, f"for {stmt.var} in {_range(stmt)}:", origin)
            self.block(depth + 1, stmt.body)
            self._last_origin = None
        elif isinstance(stmt, C.While):
            self.line(depth, f"while {stmt.cond}:", origin)
            self.block(depth + 1, stmt.body)
            self._last_origin = None
        else:
            raise TypeError(stmt)


def _updates_in_place(stmt) -> bool:
    value = stmt.value
    return (isinstance(value, C.Call) and value.prim.name in ("accumulate", "deduct")
            and value.args[0] == C.Var(stmt.target))


def _range(stmt) -> str:
    start, stop, step = (render_atom(a) for a in (stmt.start, stmt.stop, stmt.step))
    if stmt.step == C.Const(1):
        return f"range({stop})" if stmt.start == C.Const(0) else f"range({start}, {stop})"
    return f"range({start}, {stop}, {step})"


def imports_of(functions) -> list:
    """Import lines for what the functions call: "module" entries import a module, "module:name" one name."""
    entries = {"math", "numpy as np"}
    for fn in functions:
        for stmt, _ in C.walk(fn.body):
            value = getattr(stmt, "value", None) or getattr(stmt, "call", None)
            if isinstance(value, C.Call):
                entries.update(value.prim.imports)
    modules = sorted(e for e in entries if ":" not in e)
    names = {}
    for entry in entries - set(modules):
        module, name = entry.split(":")
        names.setdefault(module, set()).add(name)
    return [f"import {m}" for m in modules] + [f"from {m} import {', '.join(sorted(n))}" for m, n in sorted(
        names.items())]


def module_source(functions, header: str):
    """The full generated module and a map from its line numbers to user source origins."""
    printer = Printer()
    for text in header.splitlines():
        printer.line(0, f"# {text}")
    for line in imports_of(functions):
        printer.line(0, line)
    for fn in functions:
        printer.line(0, "")
        printer.line(0, "")
        printer._last_origin = None
        printer.function(fn)
    return "\n".join(printer.lines) + "\n", printer.origins
