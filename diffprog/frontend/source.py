"""Reading a Python function back as a syntax tree, with every node traceable to the user's file and line."""
from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
from dataclasses import dataclass, field

import gast

from ..errors import DifferentiabilityError, Diagnostic, Origin
from .freshness import record_function
from .. import codes


@dataclass(eq=False)
class ParsedFunction:
    """A function's syntax tree together with what its free names can refer to."""

    fn: object
    node: gast.FunctionDef
    file: str
    line_offset: int  # add to a node's lineno to get the line in `file`
    col_offset: int  # indentation removed before parsing
    globals: dict
    closure: dict = field(default_factory=dict)
    code: object = None  # fn.__code__ when parsed (a replaced code object means a new parse)

    @property
    def name(self) -> str:
        return self.node.name

    def origin(self, node) -> Origin:
        line = getattr(node, "lineno", None) or self.node.lineno
        col = getattr(node, "col_offset", 0) or 0
        end_line = getattr(node, "end_lineno", None)
        end_col = getattr(node, "end_col_offset", None)
        file_line = line + self.line_offset
        return Origin(
            file=self.file,
            line=file_line,
            col=col + self.col_offset,
            text=linecache.getline(self.file, file_line).rstrip("\n"),
            function=self.name,
            end_line=end_line + self.line_offset if end_line else None,
            end_col=end_col + self.col_offset if end_col is not None else None,
        )


def parse_function(fn) -> ParsedFunction:
    """Parses `fn`'s own source. Raises DifferentiabilityError (DP109) when Python kept no source for it."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise DifferentiabilityError([_no_source(fn, None)])
    try:
        lines, first_line = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        raise DifferentiabilityError([_no_source(fn, code)]) from None
    text = "".join(lines)
    dedented = textwrap.dedent(text)
    indent = len(lines[0]) - len(lines[0].lstrip()) if dedented != text else 0
    node = _function_node(fn, dedented, code.co_firstlineno - first_line + 1)
    if node is None:
        raise DifferentiabilityError([_no_source(fn, code)])
    parsed = ParsedFunction(
        fn=fn,
        node=node,
        file=code.co_filename,
        line_offset=first_line - 1,
        col_offset=indent,
        globals=fn.__globals__,
        closure=_closure_values(fn),
        code=code,
    )
    if isinstance(node, gast.AsyncFunctionDef):
        raise DifferentiabilityError([Diagnostic(codes.UNSUPPORTED,
                                                 f"'{node.name}' is an async function, which cannot be "
                                                 "differentiated", parsed.origin(node),
                                                 "differentiate a synchronous function")])
    return parsed


def _function_node(fn, text: str, def_line: int):
    """The FunctionDef (or lambda, made into one) in `text` that defines `fn`."""
    tree = _parse_fragment(text)
    if tree is None:
        return None
    candidates = [
        n for n in gast.walk(tree)
        if isinstance(n, (gast.FunctionDef, gast.AsyncFunctionDef, gast.Lambda))
        and (isinstance(n, gast.Lambda) or n.name == fn.__name__)
    ]
    if fn.__name__ != "<lambda>":
        candidates = [n for n in candidates if not isinstance(n, gast.Lambda)]
    else:
        candidates = [n for n in candidates if isinstance(n, gast.Lambda) and n.lineno == def_line]
    if len(candidates) != 1 and fn.__name__ == "<lambda>":
        return None
    if not candidates:
        return None
    node = candidates[0]
    if isinstance(node, gast.Lambda):
        ret = gast.Return(value=node.body)
        gast.copy_location(ret, node.body)
        node = gast.FunctionDef(name="lambda_fn", args=node.args, body=[ret], decorator_list=[], returns=None,
                                type_comment=None, type_params=[])
        gast.copy_location(node, ret)
    node.decorator_list = []
    return node


def _parse_fragment(text: str):
    """Parses source that may be a fragment of a larger statement (a lambda inside a call)."""
    candidate = text
    for _ in range(len(text)):
        try:
            return gast.ast_to_gast(ast.parse(candidate))
        except SyntaxError:
            candidate = candidate[: candidate.rfind("\n", 0, len(candidate) - 1) + 1] if "\n" in candidate else ""
            if not candidate.strip():
                return None
    return None


def _closure_values(fn) -> dict:
    code = fn.__code__
    cells = fn.__closure__ or ()
    values = {}
    for name, cell in zip(code.co_freevars, cells):
        try:
            values[name] = cell.cell_contents
        except ValueError:  # an empty cell: the enclosing function has not assigned it yet
            pass
    return values


def _no_source(fn, code) -> Diagnostic:
    name = getattr(fn, "__qualname__", repr(fn))
    origin = None
    if code is not None:
        origin = Origin(code.co_filename, code.co_firstlineno, 0,
                        linecache.getline(code.co_filename, code.co_firstlineno).rstrip("\n"), name)
    return Diagnostic(
        codes.NO_SOURCE,
        f"the source of '{name}' is not available, so it cannot be differentiated "
        "(defined with exec/eval, in an interactive session without source, or compiled code)",
        origin,
        hint="define the function in a .py file, or register a derivative for it with "
        "@diffprog.derivative(of=...)",
    )


class ParseCache:
    """Each function object parsed once per process. Keyed by the function itself, not its code: equal code
    objects in two modules (or a reloaded module) resolve their free names in different globals."""

    def __init__(self):
        self._parsed: dict = {}

    def get(self, fn) -> ParsedFunction:
        parsed = self._parsed.get(fn)
        if parsed is None or not is_current(parsed, fn):  # new, or its code or captured values replaced since
            parsed = self._parsed[fn] = parse_function(fn)
        return parsed

    def __contains__(self, fn) -> bool:
        return fn in self._parsed

    def seed(self, fn, parsed: ParsedFunction) -> None:
        """Makes `fn` parse as `parsed` (a function the command line checker knows from source only)."""
        self._parsed[fn] = parsed

    def forget(self, fn) -> None:
        """Drops what is cached for `fn` (nothing if nothing is)."""
        self._parsed.pop(fn, None)


PARSED = ParseCache()


def parsed_function(fn) -> ParsedFunction:
    """`fn` parsed, once per process (PARSED) and again when its code is replaced in place (IPython's autoreload)
    or what it captures is reassigned; the compilation under way depends on it (frontend/freshness.py)."""
    record_function(fn)
    return PARSED.get(fn)


def is_current(parsed: ParsedFunction, fn) -> bool:
    """Whether `parsed` still describes `fn`: the same code object, the same captured values."""
    if parsed.fn is not fn or getattr(fn, "__code__", None) is None:
        return True  # seeded (the command line checker's stand-ins), or nothing to compare
    if parsed.code is not fn.__code__:
        return False
    cells = fn.__closure__ or ()
    if not cells:
        return True
    now = _closure_values(fn)
    return now.keys() == parsed.closure.keys() and all(now[k] is parsed.closure[k] for k in now)


_LIBRARIES = ("numpy", "scipy", "math", "numba")


def is_library(fn) -> bool:
    """Library functions are primitives with rules, or opaque: never inlined from their (Python) source."""
    module = getattr(fn, "__module__", None) or ""
    return module.split(".")[0] in _LIBRARIES
