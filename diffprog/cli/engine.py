"""The checker's engine run statically: which functions are differentiated, and the same stages the decorator runs.

For each differentiated function: the decoration-time syntax check, lowering to core (inlining every callee from
source), then, for each set of differentiated parameters, type inference, DP106, activity and the active-use
checks. These are the compiler's own functions (`compiler.lower_to_core`, `wrt_problems`, `check_derivative`):
only the argument types differ, taken from annotations and usage instead of run-time values.
"""
from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import gast
import numpy as np

import diffprog

from ..analysis.inference import infer_types
from ..compiler.front import check_derivative, lower_to_core, wrt_problems
from ..errors import Diagnostic, Origin, Reporter
from ..frontend.syntax import check_function_syntax
from ..ir import types as T
from .static import (Module, StaticFunction, Unknown, _evaluate, _lookup, display_path, dynamic_value_site, literal,
                     unknown)
from .. import codes

_GRAD_KINDS = {id(diffprog.grad): "grad", id(diffprog.value_and_grad): "value_and_grad", id(diffprog.vjp): "vjp"}
_DECORATOR = diffprog.differentiable


@dataclass
class GradSite:
    """A `grad(f, argnums)`-like call found in the checked files: it says which parameters are differentiated."""

    kind: str
    argnums: tuple | None  # None: every float-like parameter
    origin: Origin


@dataclass
class Target:
    function: StaticFunction
    decorated: bool = False
    sites: list = field(default_factory=list)

    @property
    def key(self):
        fn = self.function
        return (str(fn.module.path), fn.node.lineno, fn.node.col_offset)


# ---- discovery ------------------------------------------------------------------------------------------------
class _Scope:
    """An enclosing function's local names, as seen from a nested function (ParsedFunction.closure)."""

    def __init__(self, module, node, qualname, parent):
        self.module, self.node, self.qualname, self.parent = module, node, qualname, parent
        self.values: dict = {}
        self._names = None

    @property
    def names(self) -> set:
        if self._names is None:  # computed only for functions whose nested functions are looked at
            from ..normalize import control

            self._names = control.local_names(self.node)
        return self._names

    def closure(self) -> "_Closure":
        return _Closure(self)


class _Closure(Mapping):
    """Names of every enclosing function, innermost first: nested defs are static functions, other locals are
    values the checker cannot know (inactive numbers). Built on first use: most functions have no free names."""

    def __init__(self, scope):
        self._scope = scope
        self._found = None

    def _values(self) -> dict:
        if self._found is None:
            found, scope = {}, self._scope
            while scope is not None:
                for name in scope.names:
                    if name not in found:
                        found[name] = scope.values.get(name) or unknown(f"{scope.qualname}.<locals>.{name}")
                scope = scope.parent
            self._found = found
        return self._found

    def __getitem__(self, name):
        return self._values()[name]

    def __contains__(self, name):
        return name in self._values()

    def __iter__(self):
        return iter(self._values())

    def __len__(self):
        return len(self._values())


def discover(module: Module, all_functions: bool = False) -> tuple[dict, list]:
    """(targets by key, functions by name) in one module: decorated functions (every function with
    `all_functions`), and the functions passed to grad/value_and_grad/vjp with the argnums they use."""
    targets, by_name = {}, {}

    def visit(stmts, scope, prefix):
        for stmt in stmts:
            if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef)):
                qualname = f"{prefix}{stmt.name}"
                fn = StaticFunction(module, stmt, qualname, scope.closure() if scope else {})
                if scope is not None and not isinstance(scope.node, gast.ClassDef):
                    scope.values[stmt.name] = fn
                by_name.setdefault(stmt.name, fn)
                decorated = _is_decorated(module, stmt)
                if decorated or all_functions:
                    target = Target(fn, decorated)
                    targets[target.key] = target
                inner = _Scope(module, stmt, qualname, scope)
                visit(stmt.body, inner, f"{qualname}.<locals>.")
            elif isinstance(stmt, gast.ClassDef):
                # A class body is not an enclosing scope for its methods' free names.
                visit(stmt.body, scope, f"{prefix}{stmt.name}.")
            else:  # if/for/while/with/try/match: functions defined inside them
                for block in _nested_blocks(stmt):
                    visit(block, scope, prefix)

    visit(module.tree.body, None, "")
    return targets, _grad_sites(module, by_name)


def _nested_blocks(stmt) -> list:
    blocks = [getattr(stmt, name) for name in ("body", "orelse", "finalbody") if hasattr(stmt, name)]
    blocks += [handler.body for handler in getattr(stmt, "handlers", [])]
    blocks += [case.body for case in getattr(stmt, "cases", [])]
    return blocks


def _is_decorated(module, node) -> bool:
    for decorator in node.decorator_list:
        expr = decorator.func if isinstance(decorator, gast.Call) else decorator
        if _static_value(module, expr) is _DECORATOR:
            return True
    return False


def _static_value(module, node, local=None):
    """The object an expression denotes without running anything, or None."""
    try:
        return _evaluate(node, lambda n: _lookup(n, local or {}, module.namespace), depth=0)
    except Exception:  # noqa: BLE001 - any failure means "not known statically"
        return None


def _grad_sites(module, by_name) -> list:
    """(function, GradSite) for every grad/value_and_grad/vjp call in the module whose function is static."""
    sites = []
    for node in gast.walk(module.tree):
        if not isinstance(node, gast.Call) or not node.args or not _may_be_grad(module, node.func):
            continue
        kind = _GRAD_KINDS.get(id(_static_value(module, node.func)))
        if kind is None:
            continue
        fn = _static_value(module, node.args[0])
        if not isinstance(fn, StaticFunction) and isinstance(node.args[0], gast.Name):
            fn = by_name.get(node.args[0].id)
        if not isinstance(fn, StaticFunction):
            continue
        argnums = None
        if kind != "vjp":
            given = [k.value for k in node.keywords if k.arg == "argnums"] or node.args[1:2]
            argnums = _argnums(given[0]) if given else (0,)
        origin = Origin(str(module.path), node.lineno, node.col_offset, "", "",
                        getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
        sites.append((fn, GradSite(kind, argnums, origin)))
    return sites


_GRAD_NAMES = {"grad", "value_and_grad", "vjp"}


def _may_be_grad(module, func) -> bool:
    """Cheap syntactic filter before resolving names (which may parse imported modules): `x.grad`, `grad`, or
    a name imported under another name (`from diffprog import grad as g`)."""
    if isinstance(func, gast.Attribute):
        return func.attr in _GRAD_NAMES
    if isinstance(func, gast.Name):
        binding = module.bindings.get(func.id)
        return func.id in _GRAD_NAMES or (binding is not None and binding[0] == "from" and binding[4] in _GRAD_NAMES)
    return False


def _argnums(node):
    value = literal(node)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, tuple) and all(isinstance(v, int) for v in value):
        return value
    return None  # not a literal: assume every float-like parameter


# ---- parameter types without run-time values ------------------------------------------------------------------
def parameter_types(fn: StaticFunction, usage: dict | None = None) -> tuple[list, set]:
    """(type per parameter, names assumed int only from usage). Annotations decide (int, bool, str, float,
    np.ndarray); unannotated parameters are floats, or float arrays when indexed, or ints when they bound a
    range() — a guess that never overrides an explicit argnums."""
    usage = _usage(fn.node) if usage is None else usage
    types, guessed_int = [], set()
    for arg in fn.node.args.args:
        annotated = _annotation_type(fn, arg.annotation, usage.get(arg.id, {}))
        if annotated is not None:
            types.append(annotated)
            continue
        use = usage.get(arg.id, {})
        if use.get("ndim"):
            types.append(T.Array("float64", use["ndim"]))
        elif use.get("int"):
            types.append(T.INT)
            guessed_int.add(arg.id)
        else:
            types.append(T.FLOAT)
    return types, guessed_int


def _annotation_type(fn, node, use):
    if node is None:
        return None
    if isinstance(node, gast.Constant) and isinstance(node.value, str):  # "float", from __future__ annotations
        try:
            node = gast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    if isinstance(node, gast.Subscript):  # NDArray[np.float64], np.ndarray[...]
        node = node.value
    value = _static_value(fn.module, node, fn.__diffprog_parsed__.closure)
    simple = {float: T.FLOAT, int: T.INT, bool: T.BOOL, str: T.Opaque("str"), complex: T.Opaque("complex")}
    for pytype, core_type in simple.items():
        if value is pytype:
            return core_type
    if _is_ndarray(value):
        return T.Array("float64", use.get("ndim") or 1)
    return None


def _is_ndarray(value) -> bool:
    return value is np.ndarray or getattr(value, "__name__", None) == "NDArray" and \
        getattr(value, "__module__", "").startswith("numpy")


# Ranks tried for an array whose rank neither its annotation nor its use says: `A: np.ndarray` used in `A @ x` may
# be a matrix, an unannotated `centers` in `np.sum(centers - p, axis=1)` is one.
_MAX_RANK = 3
_MAX_CANDIDATES = 64


def rank_alternatives(fn: StaticFunction, types: list, usage: dict) -> list:
    """Per parameter, the types it may have, the guess of parameter_types first: other ranks for arrays whose
    rank is a guess (np.ndarray annotations, unannotated parameters), and arrays for unannotated floats."""
    choices = []
    for arg, guess in zip(fn.node.args.args, types):
        if arg.annotation is None and guess == T.FLOAT:
            choices.append([guess] + [T.Array("float64", r) for r in range(1, _MAX_RANK)])
        elif isinstance(guess, T.Array) and (arg.annotation is None or _annotation_is_bare_array(fn, arg.annotation)):
            choices.append([guess] + [T.Array(guess.dtype, r) for r in range(guess.ndim + 1, _MAX_RANK + 1)])
        else:
            choices.append([guess])
    return choices


def _annotation_is_bare_array(fn, node) -> bool:
    """np.ndarray, NDArray[np.float64], "np.ndarray": an array of no stated rank."""
    if isinstance(node, gast.Constant) and isinstance(node.value, str):
        try:
            node = gast.parse(node.value, mode="eval").body
        except SyntaxError:
            return False
    if isinstance(node, gast.Subscript):
        node = node.value
    return _is_ndarray(_static_value(fn.module, node, fn.__diffprog_parsed__.closure))


def _candidates(choices: list) -> list:
    """Combinations of the choices, fewest departures from the first guess first, at most _MAX_CANDIDATES."""
    combos = [[]]
    for options in choices:
        combos = [c + [(k, t)] for c in combos for k, t in enumerate(options)]
        combos.sort(key=lambda c: sum(k for k, _ in c))
        del combos[_MAX_CANDIDATES:]
    return [[t for _, t in c] for c in combos]


_ARRAY_ATTRIBUTES = {"shape", "size", "ndim", "dtype", "T", "copy", "sum", "mean", "max", "min", "prod", "std", "var",
                     "cumsum", "reshape", "ravel", "flatten", "transpose", "dot", "astype", "item", "real", "imag"}


def _usage(fdef) -> dict:
    """How each name is used in the function body: indexed (ndim), sized, or bounding a range()."""
    usage: dict = {}
    for node in gast.walk(fdef):
        if isinstance(node, gast.Subscript) and isinstance(node.value, gast.Name):
            index = node.slice
            ndim = len(index.elts) if isinstance(index, gast.Tuple) else 1
            entry = usage.setdefault(node.value.id, {})
            entry["ndim"] = max(entry.get("ndim", 0), ndim)
        elif isinstance(node, gast.Attribute) and isinstance(node.value, gast.Name) and \
                node.attr in ("shape", "size", "ndim", "dtype", "copy", "sum"):
            entry = usage.setdefault(node.value.id, {})
            entry["ndim"] = max(entry.get("ndim", 0), 1)
        elif isinstance(node, gast.Attribute) and isinstance(node.value, gast.Name) and \
                node.attr not in _ARRAY_ATTRIBUTES:  # q.w, pose.apply(...): an object of some class
            usage.setdefault(node.value.id, {})["object"] = True
        elif isinstance(node, gast.Call) and isinstance(node.func, gast.Name):
            if node.func.id == "len" and node.args and isinstance(node.args[0], gast.Name):
                entry = usage.setdefault(node.args[0].id, {})
                entry["ndim"] = max(entry.get("ndim", 0), 1)
            elif node.func.id == "range":
                for arg in node.args:
                    if isinstance(arg, gast.Name):
                        usage.setdefault(arg.id, {})["int"] = True
    return usage


# ---- checking one function ----------------------------------------------------------------------------------
def check_target(target: Target) -> list:
    """Every diagnostic for one differentiated function. Never raises: an internal failure is a DP002."""
    try:
        found = _check(target)
    except Exception as error:  # noqa: BLE001 - reported as its own diagnostic, the others go on
        found = [internal_error(target.function, error)]
    return [_reclassify(d) for d in found]


def _check(target: Target) -> list:
    fn = target.function
    parsed = fn.__diffprog_parsed__
    reporter = Reporter()
    if fn.is_async:  # as frontend.source.parse_function reports it for a live function
        reporter.error(codes.UNSUPPORTED, f"'{fn.__name__}' is an async function, which cannot be differentiated",
                       parsed.origin(parsed.node), "differentiate a synchronous function")
        return reporter.diagnostics
    check_function_syntax(parsed, reporter)  # decoration time
    usage = _usage(fn.node)
    if reporter.errors or _objects_of_unknown_class(fn, usage):
        return reporter.diagnostics
    layouts = param_layouts(fn)
    core, _ = lower_to_core(parsed, reporter, layouts)  # first call: lowering and inlining
    if reporter.errors:
        return reporter.diagnostics
    found = list(reporter.diagnostics)
    types, guessed_int = parameter_types(fn, usage)
    params = [a.id for a in parsed.node.args.args]
    guessed = any(arg.annotation is None for arg in parsed.node.args.args)
    choices = rank_alternatives(fn, types, usage)
    leaves = _core_leaves(params, layouts, core.params)  # per parameter: its core parameters, types, tangency
    for k, node in enumerate(layouts or ()):
        if node is not None:  # differentiated by default (vjp) when a leaf is in the tangent
            types[k] = T.FLOAT if any(tangent for _, _, tangent in leaves[k]) else T.INT
            choices[k] = [tuple(t for _, t, _ in leaves[k])]
    for wrt in _wrt_sets(target, params, types, guessed_int):
        per_param = [[T.FLOAT] if p in guessed_int and p in wrt else c for p, c in zip(params, choices)]
        candidates = [[t for k, c in enumerate(combo) for t in (c if layouts and layouts[k] else (c,))]
                      for combo in _candidates(per_param)]
        wrt_core = [name for p in wrt for name, _, tangent in leaves[params.index(p)] if tangent]
        found.extend(_check_specialization(core, candidates, wrt_core, guessed))
    found.extend(_grad_of_tuple(target, parsed, core))
    return found


def param_layouts(fn: StaticFunction):
    """Per parameter, the layout of a value of the registered class it is annotated with (or None), as the
    decorator takes it from the argument at run time; None when no parameter has one."""
    from ..custom_types import protocol as P

    found = [_layout_of_class(_annotation_class(fn, arg.annotation), P) for arg in fn.node.args.args]
    return tuple(found) if any(node is not None for node in found) else None


def _annotation_class(fn, node):
    if node is None:
        return None
    if isinstance(node, gast.Constant) and isinstance(node.value, str):  # "Quat", from __future__ annotations
        try:
            node = gast.parse(node.value, mode="eval").body
        except SyntaxError:
            return None
    value = _static_value(fn.module, node, fn.__diffprog_parsed__.closure)
    return value if isinstance(value, type) else None


def _layout_of_class(cls, P):
    from ..custom_types.layout import Node

    entry = P.info(cls) if cls is not None else None
    if entry is None:
        return None
    children = [_layout_of_class(f.cls, P) if f.kind == "type" else None for f in entry.fields]
    return Node(cls, entry.field_names, tuple(children), tuple(f.tangent for f in entry.fields))


_FIELD_TYPES = {"float": T.FLOAT, "int": T.INT, "bool": T.BOOL, "array": T.Array("float64", 1), "leaf": T.FLOAT}


def _core_leaves(params, layouts, core_params) -> list:
    """Per parameter, [(core parameter, type, in the tangent)]: one for a number or an array (its type is the
    caller's), one per leaf field of a registered value (depth first, as Lowerer lays them out), typed from the
    field's kind."""
    from ..custom_types import protocol as P

    found, position = [], 0
    for node in layouts or (None,) * len(params):
        if node is None:
            found.append([(core_params[position], None, True)])
            position += 1
            continue
        leaves = []
        for path, tangent in node.leaves():
            owner = node
            for part in path[:-1]:  # the registered class holding the leaf field
                owner = owner.children[owner.names.index(part)]
            kind = P.info(owner.cls).field(path[-1]).kind
            leaves.append((core_params[position], _FIELD_TYPES.get(kind, T.FLOAT), tangent))
            position += 1
        found.append(leaves)
    return found


def _wrt_sets(target, params, types, guessed_int) -> list:
    """The parameter sets differentiated: from the grad call sites when there are any, else every float-like
    parameter (what vjp differentiates)."""
    default = tuple(p for p, t in zip(params, types) if t.differentiable)
    sets = []
    for site in target.sites:
        if site.argnums is None:
            chosen = default
        else:
            chosen = tuple(params[k] for k in site.argnums if -len(params) <= k < len(params))
        if chosen not in sets:
            sets.append(chosen)
    return sets or [default]


def _objects_of_unknown_class(fn, usage) -> bool:
    """Unannotated parameters used as objects (`pose.apply(p)`, `q.w`): what they are (a registered type, and
    which) is known only at run time, so lowering them here would report problems the real call does not have."""
    return any(arg.annotation is None and usage.get(arg.id, {}).get("object") or
               getattr(_annotation_class(fn, arg.annotation), "__diffprog_unchecked_type__", False)
               for arg in fn.node.args.args)


def _check_specialization(core, candidates, wrt_names, guessed=False) -> list:
    """Diagnostics for the first of the guesses of the parameter types (`candidates`, each a type per parameter)
    under which the function is well typed. A type error is reported only when every guess has one (the first
    guess's), and not at all where a type was guessed from no annotation: it says more about the guess than
    about the code."""
    first = None
    for param_types in candidates:
        reporter = Reporter()
        types = infer_types(core, dict(zip(core.params, param_types)), reporter)
        if not reporter.errors:
            break
        first = first or reporter
    else:
        return [] if guessed else first.diagnostics
    problems = wrt_problems(core, wrt_names, types)
    if problems:
        return problems
    if wrt_names:
        check_derivative(core, types, wrt_names, reporter)
    # As at run time, where errors are raised before warnings are emitted: a warning next to an error is mostly
    # its consequence (an opaque call also makes the result independent of the input).
    return reporter.errors or reporter.diagnostics


def _grad_of_tuple(target, parsed, core) -> list:
    """DP111, as GradientFunction reports it at run time, for every grad/value_and_grad call site."""
    if not (core.returns_tuple or len(core.results) != 1):
        return []
    return [Diagnostic(codes.NOT_SCALAR,
                       f"grad needs a function returning one number, but '{parsed.name}' returns a tuple",
                       parsed.origin(parsed.node),
                       "use diffprog.vjp(f, *args) and pass one cotangent per returned value",
                       notes=(f"{site.kind} is taken at {display_path(site.origin.file)}:{site.origin.line}:"
                              f"{site.origin.col + 1}",))
            for site in target.sites if site.kind in ("grad", "value_and_grad")][:1]


def _reclassify(diagnostic: Diagnostic) -> Diagnostic:
    """A call to a value computed at import time (which the checker did not run) cannot be resolved statically:
    DP103, not DP102 (which says the function has no source)."""
    if diagnostic.code != codes.NO_RULE or not diagnostic.message.startswith("'"):
        return diagnostic
    qualified = diagnostic.message[1:].split("'", 1)[0]
    site = dynamic_value_site(qualified)
    if site is None:
        return diagnostic
    name = qualified.rpartition(".")[2]
    return replace(diagnostic, code=codes.UNRESOLVED,
                   message=f"cannot tell statically which function '{name}' is: it is computed when the module "
                           f"runs ({site})",
                   hint="call a function defined with def (at module level or nested here) by its name")


def internal_error(fn: StaticFunction, error: BaseException) -> Diagnostic:
    frames = traceback.extract_tb(error.__traceback__)
    where = next((f"{f.filename}:{f.lineno} in {f.name}" for f in reversed(frames)), "?")
    node = fn.node
    origin = Origin(str(fn.module.path), node.lineno, node.col_offset, "", fn.__name__,
                    getattr(node, "end_lineno", None), getattr(node, "end_col_offset", None))
    return Diagnostic(codes.INTERNAL_ERROR, f"internal error while checking '{fn.__qualname__}': "
                               f"{type(error).__name__}: {error}", origin,
                      "this is a bug in diffprog: please report it with this function; the other functions were "
                      "checked", "error", (f"raised at {where}",))


__all__ = ["GradSite", "Target", "Unknown", "check_target", "discover", "parameter_types"]
