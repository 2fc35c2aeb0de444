"""The static front door of the checker: Python files read as syntax trees, never imported or run.

The decorator hands the engine a live function whose free names Python has already resolved. A lint hook must
not execute what it checks, so here every module is parsed with gast and its module-level names are resolved
lazily from the source itself:

- `math`, `numpy` and `diffprog` (the libraries the derivative rules know) are imported for real: they are not
  user code, and the rules table is keyed by their function objects;
- functions defined in the checked files, or in project files reached by imports (`from .helpers import f`,
  `import mypkg.mod`), become `StaticFunction`s, which the lowering inlines from source through the
  `__diffprog_parsed__` hook;
- literal constants (and arithmetic on them) are evaluated without running anything else;
- everything else is an `Unknown` stand-in: called with an active argument it is reported (DP102, or DP103
  when it is a value computed at import time), used as a number it is an inactive constant.
"""
from __future__ import annotations

import ast
import builtins
import copy
import importlib
import math
import operator
import os
from collections.abc import Mapping
from pathlib import Path

import gast

from ..frontend.source import ParsedFunction
from ..normalize import control

# Libraries imported for real: the derivative rules are keyed by their objects. Never user code.
ALLOWED_MODULES = ("math", "numpy", "diffprog")

_NOT_FOUND = object()
_UNCHECKED = object()  # a @differentiable_type class the checker cannot represent


# ---- stand-ins ----------------------------------------------------------------------------------------------
class Unknown:
    """Something the checker cannot see: a third-party function, a value computed when the module is imported.

    Lowering treats it as an opaque function (reachable under `__diffprog_import_path__`, so a call with an
    active argument is DP102, and with inactive ones is fine) and, used as a number, as an inactive constant
    (`__diffprog_number__`). Stand-ins are interned by name and never freed: lowering caches primitives by id.
    """

    __diffprog_number__ = 1.0

    def __init__(self, qualified: str, computed_at: str | None = None):
        module, _, name = qualified.rpartition(".")
        self.__dict__.update(qualified=qualified, __name__=name, __qualname__=qualified,
                             __diffprog_import_path__=(module or "<unknown>", name),
                             computed_at=computed_at)  # "file:line" of a module-level value not evaluated

    def __call__(self, *args, **kwargs):
        raise TypeError(f"{self.qualified} is a static stand-in and cannot be called")

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return unknown(f"{self.qualified}.{attr}")

    def __setattr__(self, attr, value):
        raise AttributeError("static stand-ins are read-only")

    def __repr__(self):
        return f"<unknown {self.qualified}>"


_UNKNOWN: dict = {}


def unknown(qualified: str, computed_at: str | None = None) -> Unknown:
    """The one stand-in for `qualified` (interned, see Unknown)."""
    found = _UNKNOWN.get(qualified)
    if found is None:
        found = _UNKNOWN[qualified] = Unknown(qualified, computed_at)
    return found


def dynamic_value_site(qualified: str) -> str | None:
    """Where a module-level value the checker did not evaluate was computed, if `qualified` names one."""
    found = _UNKNOWN.get(qualified)
    return found.computed_at if found is not None else None


class StaticFunction:
    """A function known only from source. Exposes what the engine reads from a live function: its ParsedFunction
    (`__diffprog_parsed__`), `__defaults__` (evaluated statically), and names."""

    def __init__(self, module: "Module", node, qualname: str, closure=None):
        self.module = module
        self.node = node
        self.__name__ = node.name
        self.__qualname__ = qualname
        self.__module__ = module.name
        self._closure = closure if closure is not None else {}
        self._parsed = None

    @property
    def __diffprog_parsed__(self) -> ParsedFunction:
        if self._parsed is None:
            node = copy.copy(self.node)
            node.decorator_list = []
            self._parsed = ParsedFunction(fn=self, node=node, file=str(self.module.path), line_offset=0,
                                          col_offset=0, globals=self.module.namespace, closure=self._closure)
        return self._parsed

    @property
    def __defaults__(self):
        values = tuple(self.module.evaluate(d, self._closure) for d in self.node.args.defaults)
        return values or None

    @property
    def __diffprog_import_path__(self):
        """For a function under a decorator other than diffprog's (`@numba.njit`): what the module binds is not
        this Python function, so a derivative rule for it calls it by name, as at run time, instead of inlining
        its source. Undecorated functions have no import path (AttributeError): they are inlined."""
        if not self.wrapped:
            raise AttributeError("__diffprog_import_path__")
        return self.module.name, self.__name__

    @property
    def wrapped(self) -> bool:
        """Decorated with something other than diffprog.differentiable (resolved statically)."""
        from .engine import _DECORATOR, _static_value

        for decorator in self.node.decorator_list:
            expr = decorator.func if isinstance(decorator, gast.Call) else decorator
            if _static_value(self.module, expr) is not _DECORATOR:
                return True
        return False

    @property
    def is_async(self) -> bool:
        return isinstance(self.node, gast.AsyncFunctionDef)

    def __repr__(self):
        return f"<static function {self.__qualname__} at {self.module.path}:{self.node.lineno}>"


class ModuleStandIn:
    """A project module bound by `import mypkg.mod`: attribute access reads its static namespace."""

    def __init__(self, module: "Module"):
        self.__dict__["_module"] = module

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        value = self._module.attribute(attr)
        if value is _NOT_FOUND:
            raise AttributeError(attr)
        return value

    def __repr__(self):
        return f"<module {self._module.name} from {self._module.path}>"


def _static_class(name: str, module_name: str, attrs: dict) -> type:
    """A class defined in a checked file: a real (empty) type, so lowering reports it as having no tangent
    protocol exactly as for a live class, with its literal class attributes."""
    cls = type(name, (), dict(attrs))
    cls.__module__ = module_name
    return cls


# ---- modules and their namespaces ---------------------------------------------------------------------------
class Module:
    """One parsed file: its tree, its module-level bindings, and a lazily resolving namespace."""

    def __init__(self, project: "Project", path: Path, name: str, tree):
        self.project = project
        self.path = path
        self.name = name
        self.tree = tree
        self.bindings, self.star_imports = _module_bindings(tree)
        self.namespace = Namespace(self)
        self._stand_in = None

    @property
    def is_package(self) -> bool:
        return self.path.name == "__init__.py"

    def stand_in(self) -> ModuleStandIn:
        if self._stand_in is None:
            self._stand_in = ModuleStandIn(self)
        return self._stand_in

    def attribute(self, name: str):
        """`module.name` as an import would see it: a module-level name, else a submodule of a package."""
        if name in self.namespace:
            return self.namespace[name]
        if self.is_package:
            sub = self.project.module_named(f"{self.name}.{name}", self.path.parent / name)
            if sub is not None:
                return sub.stand_in()
        return _NOT_FOUND

    # -- resolving one binding --
    def resolve(self, name: str):
        binding = self.bindings.get(name)
        if binding is not None:
            return self._resolve_binding(name, binding)
        for level, target in self.star_imports:
            source = self.project.import_module(target, self, level)
            if isinstance(source, Module) and name in source.namespace:
                return source.namespace[name]
        return _NOT_FOUND

    def _resolve_binding(self, name, binding):
        kind, node = binding[0], binding[1]
        if kind == "def":
            return StaticFunction(self, node, node.name)
        if kind == "class":
            registered = self._registered_class(node)
            if isinstance(registered, type):
                return registered
            attrs = self._class_attributes(node)
            if registered is _UNCHECKED:  # registered at run time, but not representable here
                attrs["__diffprog_unchecked_type__"] = True
            return _static_class(node.name, self.name, attrs)
        if kind == "import":  # import a.b.c [as x]
            dotted, bound_whole = binding[2], binding[3]
            return self.project.import_value(dotted if bound_whole else dotted.split(".")[0], self)
        if kind == "from":  # from [.]a.b import c [as x]
            module_name, level, attr = binding[2], binding[3], binding[4]
            return self.project.from_import(module_name, level, attr, self)
        if kind == "assign":
            return self.evaluate(node, {}, name=name)
        return unknown(f"{self.name}.{name}", f"{self.path}:{getattr(node, 'lineno', 0)}")

    def _registered_class(self, node):
        """A `@diffprog.differentiable_type` dataclass of fields only: a real dataclass with the same fields,
        registered as the decorator would register it, so its values lower as they do at run time (fields, a
        constructor). Field annotations are kept as text ("float", "np.ndarray"), as under `from __future__ import
        annotations`, except for registered classes. None when the class is not such a class, or has methods
        (which would need their source inlined: not done statically); _UNCHECKED for a registered class that is
        not such a class: functions taking one are not checked further."""
        import dataclasses
        import warnings

        import diffprog

        decorators = [self.evaluate_quietly(d) for d in node.decorator_list]
        if not any(d is diffprog.differentiable_type for d in decorators):
            return None
        annotations, defaults = {}, {}
        if any(d is None for d in decorators[:-1]):  # decorators applied after it: their effect is unknown
            return _UNCHECKED
        for stmt in node.body:
            if isinstance(stmt, gast.AnnAssign) and isinstance(stmt.target, gast.Name):
                hint = self.evaluate_quietly(stmt.annotation)
                annotations[stmt.target.id] = hint if isinstance(hint, type) and hint not in (float, int, bool) \
                    else gast.unparse(stmt.annotation).strip().strip("'\"")
                if stmt.value is not None:
                    value = literal(stmt.value)
                    if value is _NOT_FOUND:
                        return _UNCHECKED
                    defaults[stmt.target.id] = value
            elif isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef, gast.ClassDef)):
                return _UNCHECKED
        if not annotations:
            return _UNCHECKED
        # made in this module (dataclass reads string annotations in sys.modules[cls.__module__]), then renamed
        cls = type(node.name, (), {**self._class_attributes(node), **defaults, "__annotations__": annotations})
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls = dataclasses.dataclass(cls)
                cls.__module__ = self.name
                return diffprog.differentiable_type(cls)
        except Exception:  # noqa: BLE001 - not a class the decorator accepts here
            return _UNCHECKED

    def evaluate_quietly(self, node):
        """The value of a module-level expression when it is known statically (no stand-in), else None."""
        try:
            value = _evaluate(node, lambda n: _lookup(n, {}, self.namespace), depth=0)
        except Exception:  # noqa: BLE001 - not known statically
            return None
        return None if value is _NOT_FOUND or isinstance(value, Unknown) else value

    def _class_attributes(self, node) -> dict:
        attrs = {}
        for stmt in node.body:
            if isinstance(stmt, gast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], gast.Name):
                value = literal(stmt.value)
                if value is not _NOT_FOUND:
                    attrs[stmt.targets[0].id] = value
        return attrs

    def evaluate(self, node, local: Mapping, name: str | None = None):
        """The value of a module-level expression, when it can be known without running user code; else an
        Unknown stand-in recording where it was computed."""
        try:
            value = _evaluate(node, lambda n: _lookup(n, local, self.namespace), depth=0)
        except _CannotEvaluate:
            value = _NOT_FOUND
        if value is _NOT_FOUND:
            label = name or (gast.unparse(node).strip() if node is not None else "?")
            return unknown(f"{self.name}.{label}", f"{self.path}:{getattr(node, 'lineno', 0)}")
        return value


def _lookup(name, local, namespace):
    if name in local:
        return local[name]
    if name in namespace:
        return namespace[name]
    value = getattr(builtins, name, _NOT_FOUND)
    if value is _NOT_FOUND:
        raise _CannotEvaluate(name)
    return value


class Namespace(Mapping):
    """A module's globals for ParsedFunction.globals: resolved one name at a time, on first use, with cycles
    (`from a import x` in b and `from b import x` in a) resolved to Unknown instead of recursing forever."""

    def __init__(self, module: Module):
        self._module = module
        self._values: dict = {}
        self._resolving: set = set()

    def __contains__(self, name) -> bool:
        return self._get(name) is not _NOT_FOUND

    def __getitem__(self, name):
        value = self._get(name)
        if value is _NOT_FOUND:
            raise KeyError(name)
        return value

    def _get(self, name):
        if name in self._values:
            return self._values[name]
        if name in self._resolving:
            return unknown(f"{self._module.name}.{name}", f"{self._module.path}:0")
        self._resolving.add(name)
        try:
            value = self._module.resolve(name)
        finally:
            self._resolving.discard(name)
        self._values[name] = value
        return value

    def __iter__(self):
        return iter(self._module.bindings)

    def __len__(self):
        return len(self._module.bindings)


def _module_bindings(tree):
    """name -> binding for every module-level name, and the `from x import *` sources. A plain top-level statement
    overrides earlier ones (as when the module runs); inside `if`/`try` the first binding is kept, so
    `try: import numpy as np / except ImportError: np = None` means numpy."""
    bindings, stars = {}, []

    def bind(name, binding, override):
        if override or name not in bindings:
            bindings[name] = binding

    def visit(stmts, top):
        for stmt in stmts:
            if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef)):
                bind(stmt.name, ("def", stmt), top)
            elif isinstance(stmt, gast.ClassDef):
                bind(stmt.name, ("class", stmt), top)
            elif isinstance(stmt, gast.Import):
                for alias in stmt.names:
                    if alias.asname:
                        bind(alias.asname, ("import", stmt, alias.name, True), top)
                    else:
                        bind(alias.name.split(".")[0], ("import", stmt, alias.name, False), top)
            elif isinstance(stmt, gast.ImportFrom):
                for alias in stmt.names:
                    if alias.name == "*":
                        stars.append((stmt.level or 0, stmt.module or ""))
                    else:
                        bind(alias.asname or alias.name,
                             ("from", stmt, stmt.module or "", stmt.level or 0, alias.name), top)
            elif isinstance(stmt, (gast.Assign, gast.AnnAssign)):
                targets = stmt.targets if isinstance(stmt, gast.Assign) else [stmt.target]
                for target in targets:
                    if isinstance(target, gast.Name) and stmt.value is not None:
                        bind(target.id, ("assign", stmt.value), top)
                    else:
                        for name in _stored_names(target):
                            bind(name, ("other", stmt), top)
            elif isinstance(stmt, gast.If):
                visit(stmt.body, False)
                visit(stmt.orelse, False)
            elif isinstance(stmt, gast.Try):
                visit(stmt.body, False)
                for handler in stmt.handlers:
                    visit(handler.body, False)
                visit(stmt.orelse, False)
                visit(stmt.finalbody, False)
            elif isinstance(stmt, (gast.For, gast.While, gast.With, gast.AugAssign)):
                for name in _stored_names(stmt):  # values only known by running the module
                    bind(name, ("other", stmt), False)

    visit(tree.body, True)
    return bindings, stars


def _stored_names(node):
    return [n.id for n in gast.walk(node) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Store)]


# ---- static evaluation of constants -------------------------------------------------------------------------
class _CannotEvaluate(Exception):
    pass


_BINARY = {gast.Add: operator.add, gast.Sub: operator.sub, gast.Mult: operator.mul, gast.Div: operator.truediv,
           gast.FloorDiv: operator.floordiv, gast.Mod: operator.mod, gast.Pow: operator.pow}
_UNARY = {gast.USub: operator.neg, gast.UAdd: operator.pos, gast.Not: operator.not_}
# Pure functions of the allowed libraries that may run on literal arguments (math.sqrt(2.0), float("inf")).
_PURE_CALLS = {id(f) for f in (float, int, bool, abs, min, max, round)} | {
    id(getattr(math, n)) for n in dir(math) if callable(getattr(math, n))}


def literal(node):
    """A Python literal (number, string, tuple of them) written in the source, or _NOT_FOUND."""
    try:
        return ast.literal_eval(gast.gast_to_ast(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NOT_FOUND


def _evaluate(node, lookup, depth):
    """Constant folding over literals, names of constants, attributes of allowed modules and pure math calls."""
    if depth > 50:
        raise _CannotEvaluate("too deep")
    if isinstance(node, gast.Constant):
        return node.value
    if isinstance(node, gast.Name):
        return lookup(node.id)
    if isinstance(node, gast.Tuple):
        return tuple(_evaluate(e, lookup, depth + 1) for e in node.elts)
    if isinstance(node, gast.Attribute):
        base = _evaluate(node.value, lookup, depth + 1)
        if isinstance(base, (Unknown, ModuleStandIn)) or type(base).__name__ == "module":
            value = getattr(base, node.attr, _NOT_FOUND)
            if value is _NOT_FOUND:
                raise _CannotEvaluate(node.attr)
            return value
        raise _CannotEvaluate("attribute of a value")
    if isinstance(node, gast.UnaryOp) and type(node.op) in _UNARY:
        return _number_op(_UNARY[type(node.op)], _evaluate(node.operand, lookup, depth + 1))
    if isinstance(node, gast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left, lookup, depth + 1), _evaluate(node.right, lookup, depth + 1)
        if isinstance(node.op, gast.Pow) and isinstance(right, (int, float)) and abs(right) > 64:
            raise _CannotEvaluate("large power")
        return _number_op(_BINARY[type(node.op)], left, right)
    if isinstance(node, gast.Call) and not node.keywords:
        func = _evaluate(node.func, lookup, depth + 1)
        args = [_evaluate(a, lookup, depth + 1) for a in node.args]
        if id(func) in _PURE_CALLS and all(isinstance(a, (int, float, str)) for a in args):
            try:
                return func(*args)
            except (ValueError, TypeError, OverflowError, ZeroDivisionError):
                raise _CannotEvaluate("call failed") from None
    raise _CannotEvaluate(type(node).__name__)


def _number_op(op, *values):
    if not all(isinstance(v, (int, float, bool)) for v in values):
        raise _CannotEvaluate("not numbers")
    try:
        return op(*values)
    except (ArithmeticError, ValueError, TypeError):
        raise _CannotEvaluate("arithmetic failed") from None


# ---- the project: files, module names, imports --------------------------------------------------------------
class Project:
    """Every file the checker may read: the checked files and the project files their imports reach. Each file
    is parsed once; import resolution follows Python's rules over the project's own directories."""

    def __init__(self, extra_roots=()):
        self.extra_roots = [Path(r).resolve() for r in extra_roots]
        self._by_path: dict = {}
        self._by_name: dict = {}
        self.parse_errors: dict = {}  # path -> SyntaxError/OSError, for files reached by imports

    def load(self, path: Path) -> Module:
        """The module in `path`; raises SyntaxError/OSError/ValueError for a file that cannot be read or parsed."""
        path = Path(path).resolve()
        module = self._by_path.get(path)
        if module is None:
            text = read_source(path)
            tree = gast.ast_to_gast(ast.parse(text, filename=str(path)))
            module = Module(self, path, module_name_of(path), tree)
            self._by_path[path] = module
            self._by_name.setdefault(module.name, module)
        return module

    def _try_load(self, path: Path):
        try:
            return self.load(path)
        except (SyntaxError, OSError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as error:
            self.parse_errors[Path(path).resolve()] = error
            return None

    def roots_for(self, importer: Module) -> list:
        """Directories an absolute import from `importer` searches: the top of its package, its own directory,
        and the directories given on the command line (with `src/` layouts)."""
        roots = [package_root(importer.path), importer.path.parent] + self.extra_roots
        seen, unique = set(), []
        for root in roots:
            if root not in seen:
                seen.add(root)
                unique.append(root)
        return unique

    def find_file(self, dotted: str, importer: Module, level: int) -> Path | None:
        parts = [p for p in dotted.split(".") if p]
        if level:
            base = importer.path.parent
            for _ in range(level - 1):
                base = base.parent
            bases = [base]
        else:
            bases = self.roots_for(importer)
        for base in bases:
            candidate = base.joinpath(*parts) if parts else base
            for path in (candidate.with_suffix(".py") if parts else None, candidate / "__init__.py"):
                if path is not None and path.is_file():
                    return path
        return None

    def module_named(self, dotted: str, directory: Path):
        """A submodule `dotted` expected at `directory` (a .py file or a package)."""
        for path in (directory.with_suffix(".py"), directory / "__init__.py"):
            if path.is_file():
                return self._try_load(path)
        return None

    def import_module(self, dotted: str, importer: Module, level: int = 0):
        """The Module (project file) for an import, or None when it is not a project file."""
        if not level and dotted.split(".")[0] in ALLOWED_MODULES:
            return None
        path = self.find_file(dotted, importer, level)
        return self._try_load(path) if path is not None else None

    def import_value(self, dotted: str, importer: Module):
        """What `import dotted` binds (the top package when not aliased; the caller chose `dotted`)."""
        if dotted.split(".")[0] in ALLOWED_MODULES:
            return _real_module(dotted)
        module = self.import_module(dotted, importer)
        return module.stand_in() if module is not None else unknown(dotted)

    def from_import(self, module_name: str, level: int, attr: str, importer: Module):
        if not level and module_name.split(".")[0] in ALLOWED_MODULES:
            module = _real_module(module_name)
            value = getattr(module, attr, _NOT_FOUND) if not isinstance(module, Unknown) else _NOT_FOUND
            return value if value is not _NOT_FOUND else _real_module(f"{module_name}.{attr}")
        module = self.import_module(module_name, importer, level)
        if module is None:
            return unknown(f"{'.' * level}{module_name}.{attr}".lstrip("."))
        value = module.attribute(attr)
        return value if value is not _NOT_FOUND else unknown(f"{module.name}.{attr}")


def _real_module(dotted: str):
    """An allowed library module, imported for real (never user code); Unknown if it does not exist."""
    try:
        return importlib.import_module(dotted)
    except ImportError:
        return unknown(dotted)


def package_root(path: Path) -> Path:
    """The directory that must be on sys.path for `path` to be importable under its package name."""
    directory = path.parent
    while (directory / "__init__.py").is_file() and directory.parent != directory:
        directory = directory.parent
    return directory


def module_name_of(path: Path) -> str:
    root = package_root(path)
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts) or path.stem


def read_source(path: Path) -> str:
    """A file's text, decoded as Python does (PEP 263 coding cookies, BOMs)."""
    import tokenize

    with tokenize.open(path) as handle:
        return handle.read()


def display_path(path: str) -> str:
    """Paths as the user would type them: relative to the working directory when inside it."""
    try:
        relative = os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)
    return str(path) if relative.startswith("..") else relative
