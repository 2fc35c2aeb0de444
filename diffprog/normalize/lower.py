"""Lowering Python (gast) into the core language.

One pass does four things, because each needs the others' context:
- A-normal form: every operation becomes one assignment of a primitive call to a fresh, readable name.
- Inlining: calls to Python functions (module-level, closures, nested defs, decorated or not) are lowered in
  place with their variables renamed, so the caller's transforms see through them.
- Structuring: `break`, `continue`, early `return`, `elif`, `and`/`or` and conditional expressions become flags
  and plain `if`s; `for` loops that can exit early become `while` loops.
- Scalarization: tuples are split into one variable per element.
Problems are reported (not raised) so that one error lists all of them.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import inspect
import re
import types
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import gast
import numpy as np

from ..errors import DifferentiabilityError, Reporter
from ..frontend.resolve import MISSING, import_path, lookup_free_name
from ..frontend.source import ParsedFunction, parse_function
from ..frontend.markers import checkpoint
from ..frontend.syntax import check_function_syntax, report_unsupported
from ..ir import core as C
from ..rules import REGISTRY, Primitive
from ..types import layout as L
from ..types import protocol as P
from . import control
from .names import NameAllocator
from .nested import NestedCall


@dataclass(frozen=True)
class TupleValue:
    items: tuple
    cls: type | None = None  # a value of a registered differentiable type: its fields, in order


class Fields(tuple):
    """The core names bound to a value of a registered type: a tuple of bindings that remembers the class."""

    cls = None

    def __new__(cls_, names, cls):
        fields = tuple.__new__(cls_, names)
        fields.cls = cls
        return fields


@dataclass(frozen=True)
class ShapeValue:
    array: C.Var


@dataclass(frozen=True)
class Denotation:
    """A compile-time object: a module, a function, a class."""

    obj: object


@dataclass(frozen=True)
class LocalDef:
    node: gast.FunctionDef
    scope: "Scope"


AMBIGUOUS = object()  # a name bound to different functions on different paths
_REPORTED = object()  # a transform whose problems have been reported: calling it gives a stand-in value


@dataclass(frozen=True)
class Transform:
    """`dp.grad(g, argnums)`, `dp.value_and_grad(...)` or `dp.jvp_function(g)` written in differentiated code: a
    compile-time function; calling it emits the derivative (normalize/nested.py). "derived": a derivative the
    API made (`dp.jvp_function(g)` or `dp.grad(g).as_function()` at module level), called here."""

    kind: str
    function: object  # a function object, a LocalDef, another Transform
    argnums: tuple
    single: bool  # argnums was an int: the gradient itself rather than a tuple
    title: str  # as the user wrote it, for diagnostics


_LABELS = {"grad": "grad", "value_and_grad": "grad", "jvp_function": "tangent", "derived": "d"}
# diffprog functions that give no value compiled code can hold, and what to use instead
_OUTSIDE_ONLY = {"vjp": "use diffprog.grad(g, argnums)(...) or diffprog.value_and_grad for a scalar g",
                 "jacobian": "use diffprog.jvp along each direction (or diffprog.grad for one output)",
                 "hessian": "use diffprog.hvp(g, primals, vector) along each direction",
                 "source": "call it outside the differentiated function",
                 "differentiable": "decorate the function at module level"}


@dataclass
class Loop:
    brk: str | None = None
    cont: str | None = None


@dataclass(eq=False)
class Scope:
    """One function being lowered (the decorated one, or an inlined instance of a callee)."""

    parsed: ParsedFunction
    node: gast.FunctionDef
    prefix: str
    parent: "Scope | None" = None
    bindings: dict = field(default_factory=dict)  # user name -> core name, or tuple of bindings
    local_defs: dict = field(default_factory=dict)
    locals: set = field(default_factory=set)
    result: object = None  # core name(s) the returns assign
    returned: str | None = None
    loops: list = field(default_factory=list)


_parsed_cache: dict = {}


def parsed_function(fn) -> ParsedFunction:
    """Parses each function object once per process. Keyed by the function itself, not its code: equal code
    objects in two modules (or a reloaded module) resolve their free names in different globals."""
    if fn not in _parsed_cache:
        _parsed_cache[fn] = parse_function(fn)
    return _parsed_cache[fn]


class Lowerer:
    def __init__(self, reporter: Reporter):
        self.reporter = reporter
        self.names = NameAllocator()
        self.block: list = []
        self.inline_stack: list = []
        self.call_sites: list = []  # Origins of the calls being inlined, outermost first (for diagnostics)
        self.scope: Scope | None = None
        self._assigned: set = set()
        self._argument_arrays: set = set()  # core names of the differentiated function's own arguments  # core names given a number (to catch tuple/number mix-ups)
        self._returns_tuple = False
        self._under_construction: set = set()  # field names of registered values whose __init__ is inlined
        self.result_layouts: tuple = ()
        self.returns_user_tuple = False

    # ---- entry point -------------------------------------------------------------------------------------------
    def lower_function(self, parsed: ParsedFunction, param_layouts=None) -> C.Function:
        """The core function. `param_layouts` gives, per parameter, the layout (types.layout.Node) of a value of a
        registered type, or None: such a parameter becomes one core parameter per field. What the function
        returns is described by `self.result_layouts` (a Node or None per returned value) afterwards."""
        node = parsed.node
        scope = Scope(parsed, node, prefix="", locals=control.local_names(node))
        self.inline_stack.append((parsed.file, node.lineno + parsed.line_offset, node.col_offset))
        layouts = param_layouts or (None,) * len(node.args.args)
        params, origins = [], {}
        for a, layout in zip(node.args.args, layouts):
            if layout is None:
                params.append(self._bind_name(scope, a.id))
            else:
                scope.bindings[a.id] = self._names_for_layout(a.id, layout)
                params.extend(_leaf_names(scope.bindings[a.id]))
            origins.update({p: parsed.origin(a) for p in params if p not in origins})
        reassigned = control.assigned_names(node)
        self._argument_arrays = {scope.bindings[a.id] for a in node.args.args
                                 if a.id not in reassigned and isinstance(scope.bindings.get(a.id), str)}
        rule = REGISTRY.lookup(parsed.fn, len(params)) if parsed.fn is not None and param_layouts is None else None
        if rule is not None:  # the function has a user derivative rule: differentiate through the rule
            body, results = self._through_rule(rule, scope, node, [C.Var(p) for p in params])
        else:
            body, results = self._lower_body(scope, node, top_level=True)
        self.inline_stack.pop()
        user_tuple = isinstance(results, TupleValue) and results.cls is None
        results = results if user_tuple else TupleValue((results,))
        self.scope = scope  # problems with the returned values are reported in the function itself
        self.result_layouts = tuple(_layout_of_value(item) for item in results.items)
        self.returns_user_tuple = len(node.body) > 0 and user_tuple
        atoms = tuple(self._flat_atoms(results, node))
        returns_tuple = len(node.body) > 0 and (self._returns_tuple or len(atoms) != len(results.items))
        return C.Function(parsed.name, params, body, atoms, returns_tuple, parsed.origin(node), origins)

    def _names_for_layout(self, base, layout):
        """Core parameter names for a registered-type argument: `q_w`, `q_x`, ..., `pose_q_w` when nested."""
        names = []
        for name, child in zip(layout.names, layout.children):
            wanted = f"{base}_{name}"
            names.append(self.names.claim(wanted) if child is None else self._names_for_layout(wanted, child))
        for leaf in _leaf_names(names):
            self._assigned.add(leaf)
        return Fields(names, layout.cls)

    def _lower_body(self, scope: Scope, node, top_level=False, constructor=False):
        """Lowers a function body; returns (core statements, the value it returns). A `constructor` (an inlined
        `__init__`) returns nothing: its value is the object it fills in."""
        outer_scope, self.scope = self.scope, scope
        self._returns_tuple = False
        body_stmts = self._prune(node.body)
        if not constructor and not control.always_returns(body_stmts):
            what = "does not return a value on every path" if control.has_return(node.body) else "returns nothing"
            self.reporter.error("DP108", f"function '{node.name}' {what}", scope.parsed.origin(node),
                                "add a return statement at the end of every path")
        tail = None
        if body_stmts and isinstance(body_stmts[-1], gast.Return) and not control.block_exits(body_stmts[:-1]):
            body_stmts, tail = body_stmts[:-1], body_stmts[-1]
        with self._emitting() as block:
            if control.block_exits(body_stmts):
                scope.returned = self.names.temp("returned")
                self._emit(C.Assign(scope.returned, C.Const(False), scope.parsed.origin(node)))
            block.extend(self._lower_block(body_stmts))
            if tail is not None:
                result = self._return_value(tail)
                if scope.result is not None:  # earlier returns exist: join them in the result variables
                    self._assign_result(scope, result, tail)
                    result = self._result_value(scope)
            else:
                result = self._result_value(scope) if scope.result is not None else C.Const(0.0)
        self.scope = outer_scope
        return block, result

    # ---- emission helpers --------------------------------------------------------------------------------------
    @contextmanager
    def _emitting(self):
        outer, self.block = self.block, []
        try:
            yield self.block
        finally:
            self.block = outer

    def _emit(self, stmt):
        self.block.append(stmt)

    def origin(self, node):
        origin = self.scope.parsed.origin(node)
        return replace(origin, chain=tuple(self.call_sites)) if self.call_sites else origin

    @contextmanager
    def _called_from(self, call):
        """Inside an inlined callee: places, and so diagnostics, carry the call sites that led there (also those
        reported from the callee's ParsedFunction directly, such as its syntax check)."""
        self.call_sites.append(self.origin(call))
        first = len(self.reporter.diagnostics)
        try:
            yield
        finally:
            chain = tuple(self.call_sites)
            self.call_sites.pop()
            found = self.reporter.diagnostics
            for k in range(first, len(found)):
                if found[k].origin is not None and not found[k].origin.chain:
                    found[k] = replace(found[k], origin=replace(found[k].origin, chain=chain))

    def _call(self, prim: Primitive, args, node, hint=None) -> C.Var:
        """Emits `hint = prim(args)`; a temporary instead when `hint` is one of the operands."""
        args = tuple(args)
        if hint is None or any(isinstance(a, C.Var) and a.name == hint for a in args):
            hint = self.names.temp(prim.name)
        self._emit(C.Assign(hint, C.Call(prim, args), self.origin(node)))
        return C.Var(hint)

    def _atom(self, node, hint=None) -> C.Var | C.Const:
        value = self.expr(node, hint)
        if isinstance(value, (C.Var, C.Const)):
            return value
        return self._not_a_number(value, node)

    def _not_a_number(self, value, node):
        stand_in = getattr(getattr(value, "obj", None), "__diffprog_number__", None)
        if stand_in is not None:  # a value `diffprog check` cannot see statically: an inactive number
            return C.Const(stand_in)
        if isinstance(value, TupleValue) and value.cls is not None:
            self.reporter.error("DP105", f"a {value.cls.__name__} value cannot be used as a number here",
                                self.origin(node), f"use one of its fields ({', '.join(P.info(value.cls).field_names)})"
                                f", or define the operator on {value.cls.__name__}")
            return C.Const(0.0)
        if isinstance(value, TupleValue):
            what = "a tuple"
        elif isinstance(value, ShapeValue):
            what = "an array's shape"
        elif not isinstance(value, Denotation):  # a number, assigned to a name that denotes a function elsewhere
            self.reporter.error("DP101", "a name that refers to a function elsewhere is assigned a number here",
                                self.origin(node), "use a different variable name for the number")
            return C.Const(0.0)
        else:
            obj = value.obj.node if isinstance(value.obj, LocalDef) else value.obj
            what = f"'{getattr(obj, '__name__', None) or getattr(obj, 'name', obj)}'"
        self.reporter.error("DP101", f"{what} cannot be used as a number here", self.origin(node),
                            "index it, or unpack it into variables first")
        return C.Const(0.0)

    def _fresh_cond(self, node) -> C.Var:
        """A condition variable assigned exactly once before its `if`: the reverse sweep reads it back."""
        name = self.names.temp("cond")
        value = self._atom(node, hint=name)
        if value != C.Var(name):
            self._emit(C.Assign(name, value, self.origin(node)))
        return C.Var(name)

    # ---- names -------------------------------------------------------------------------------------------------
    def _bind_name(self, scope: Scope, user_name: str) -> str:
        if user_name not in scope.bindings:
            wanted = f"{scope.prefix}_{user_name}" if scope.prefix else user_name
            scope.bindings[user_name] = self.names.claim(wanted)
        return scope.bindings[user_name]

    def _read_name(self, node):
        name = node.id
        scope = self.scope
        while scope is not None:
            if name in scope.bindings or name in scope.locals:
                if name in scope.local_defs:
                    return Denotation(scope.local_defs[name])
                return self._binding_value(self._bind_name(scope, name) if name not in scope.bindings
                                           else scope.bindings[name])
            scope = scope.parent
        obj = lookup_free_name(self.scope.parsed, name)
        if obj is MISSING:
            self.reporter.error("DP103", f"name '{name}' is not defined", self.origin(node),
                                "define it, or import it at module level")
            return C.Const(0.0)
        return constant_value(obj)

    def _binding_value(self, binding):
        if isinstance(binding, (Denotation, C.Const)):
            return binding
        if isinstance(binding, tuple):
            return TupleValue(tuple(self._binding_value(b) for b in binding), getattr(binding, "cls", None))
        return C.Var(binding)

    # ---- statements --------------------------------------------------------------------------------------------
    def _lower_block(self, stmts) -> list:
        stmts = self._prune(stmts)
        with self._emitting() as block:
            for k, stmt in enumerate(stmts):
                self.statement(stmt)
                jumps = control.exits(stmt)
                rest = stmts[k + 1:]
                if jumps and rest:
                    guard = self._guard(jumps, stmt)
                    self._emit(C.If(guard, self._lower_block(rest), [], self.origin(stmt)))
                    break
        return block

    # ---- static decisions: isinstance on registered types ------------------------------------------------------
    def _prune(self, stmts) -> list:
        """An `if` decided at compile time (isinstance on a value whose type is known statically, a constant)
        keeps only the branch taken, and statements after one that always leaves the block are dropped. The
        branch not taken may not even lower: `__mul__` written for both a Quaternion and a number."""
        out = []
        for stmt in stmts:
            if isinstance(stmt, gast.If):
                decided = self._static_test(stmt.test)
                if decided is not None:
                    out.extend(self._prune(stmt.body if decided else stmt.orelse))
                    if out and _leaves_block(out[-1]):
                        break
                    continue
            out.append(stmt)
            if _leaves_block(stmt):
                break
        return out

    def _static_test(self, test):
        """True/False when the condition is decided at compile time, else None. Emits nothing."""
        if isinstance(test, gast.Constant) and isinstance(test.value, bool):
            return test.value
        if isinstance(test, gast.UnaryOp) and isinstance(test.op, gast.Not):
            inner = self._static_test(test.operand)
            return None if inner is None else not inner
        if isinstance(test, gast.BoolOp):
            values = [self._static_test(v) for v in test.values]
            decisive = isinstance(test.op, gast.Or)
            if decisive in values:
                return decisive
            return None if None in values else not decisive
        if isinstance(test, gast.Call) and len(test.args) == 2 and not test.keywords and \
                all(self._stable(n) for n in [test.func] + list(test.args)):
            reported = len(self.reporter.diagnostics)
            with self._emitting() as emitted:
                func, value, classes = (self.expr(n) for n in [test.func] + list(test.args))
            if emitted or len(self.reporter.diagnostics) != reported:
                del self.reporter.diagnostics[reported:]
                return None
            if isinstance(func, Denotation) and func.obj is isinstance and isinstance(classes, Denotation):
                return _isinstance_of(value, classes.obj)
        return None

    def _stable(self, node) -> bool:
        """A name (or attribute of one) whose value cannot change while this function runs: a parameter it
        never reassigns, or a global."""
        while isinstance(node, gast.Attribute):
            node = node.value
        if not isinstance(node, gast.Name):
            return False
        scope = self.scope
        if node.id in scope.locals:
            return node.id in {a.id for a in scope.node.args.args} and \
                node.id not in control.assigned_names(scope.node)
        while scope is not None:
            if node.id in scope.locals or node.id in scope.bindings:
                return False
            scope = scope.parent
        return True

    def _guard(self, jumps, node) -> C.Var:
        """`not (flag or ...)` for the flags the jumps in `jumps` set."""
        loop = self.scope.loops[-1] if self.scope.loops else None
        flags = []
        if "break" in jumps:
            flags.append(loop.brk)
        if "continue" in jumps:
            flags.append(loop.cont)
        if "return" in jumps:
            flags.append(self.scope.returned)
        flag = C.Var(flags[0])
        for other in flags[1:]:
            flag = self._call(REGISTRY.named("or"), (flag, C.Var(other)), node)
        return self._call(REGISTRY.named("not"), (flag,), node, hint=self.names.temp("go_on"))

    def statement(self, node):
        if report_unsupported(node, self.scope.parsed, self.reporter):
            return
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is None:
            self.reporter.error("DP101", f"'{type(node).__name__}' statements cannot be differentiated",
                                self.origin(node), "rewrite it with assignments, if/else and loops")
            return
        method(node)

    def stmt_Pass(self, node):
        pass

    def stmt_Expr(self, node):
        if isinstance(node.value, gast.Constant):  # docstrings
            return
        self.expr(node.value)

    def stmt_Assign(self, node):
        if len(node.targets) == 1:
            self.assign(node.targets[0], node.value, node)
            return
        value = self.expr(node.value)
        for target in node.targets:
            self._assign_value(target, value, node)

    def stmt_AnnAssign(self, node):
        if node.value is not None:
            self.assign(node.target, node.value, node)

    def stmt_AugAssign(self, node):
        target = node.target
        if isinstance(target, gast.Subscript):
            self._augmented_store(node)
            return
        if not isinstance(target, gast.Name):
            self._assign_value(target, C.Const(0.0), node)  # reports the unsupported target
            return
        load = gast.Name(id=target.id, ctx=gast.Load(), annotation=None, type_comment=None)
        binop = gast.BinOp(left=gast.copy_location(load, target), op=node.op, right=node.value)
        self.assign(target, gast.copy_location(binop, node), node)

    def _augmented_store(self, node):
        """`out[i] += v`: read the element once, combine, write it back."""
        array = self._store_target(node.target)
        if array is None:
            return
        index = self._indices(node.target.slice)
        value = self._atom(node.value)
        current = self._call(REGISTRY.named("getitem"), (array, *index), node)
        combined = self._call(REGISTRY.lookup(type(node.op).__name__), (current, value), node)
        self._emit(C.Store(array.name, tuple(index), combined, self.origin(node)))

    def assign(self, target, value_node, node):
        if isinstance(target, gast.Name) and target.id not in self.scope.local_defs:
            core = self._bind_name(self.scope, target.id)
            if not isinstance(self.scope.bindings[target.id], tuple):
                value = self.expr(value_node, hint=core)
                self._assign_value(target, value, node)
                return
        self._assign_value(target, self.expr(value_node), node)

    def _assign_value(self, target, value, node):
        if isinstance(target, gast.Name):
            self._assign_name(self.scope, target.id, value, node)
        elif isinstance(target, (gast.Tuple, gast.List)):
            self._unpack(target, value, node)
        elif isinstance(target, gast.Subscript):
            array = self._store_target(target)
            if array is not None:
                index = self._indices(target.slice)
                atom = value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, node)
                self._emit(C.Store(array.name, tuple(index), atom, self.origin(node)))
        elif isinstance(target, gast.Attribute):
            self._store_field(target, value, node)
        else:
            self.reporter.error("DP101", "unsupported assignment target", self.origin(target),
                                "assign to plain variable names")

    def _store_target(self, target):
        """The local array a subscript assignment writes into, or None (reported) when it cannot. A helper may
        fill a buffer its caller made; nothing may write into the differentiated function's own arguments."""
        name = target.value.id if isinstance(target.value, gast.Name) else None
        base = self.expr(target.value) if name is not None else None
        if isinstance(base, C.Var) and base.name in self._argument_arrays:
            self.reporter.error("DP107", f"in-place write to the argument array '{name}'", self.origin(target),
                                f"write into a local copy instead: {name} = {name}.copy()")
            return None
        if not isinstance(base, C.Var):
            self.reporter.error("DP101", "only local arrays can be written into", self.origin(target),
                                "assign to an element of a local array: out[i] = value")
            return None
        return base

    def _assign_name(self, scope, user_name, value, node, origin=None):
        origin = origin or self.origin(node)
        existing = scope.bindings.get(user_name)
        if isinstance(value, TupleValue):
            if isinstance(existing, tuple) and getattr(existing, "cls", None) is not value.cls and \
                    any(self._ever_assigned(n) for n in _leaf_names(existing)):
                self.reporter.error("DP101", f"'{user_name}' holds {_class_name(value.cls)} here but "
                                    f"{_class_name(existing.cls if hasattr(existing, 'cls') else None)} elsewhere",
                                    origin, "use a different variable name for each kind of value")
                return
            if existing is None or not isinstance(existing, tuple) or not _same_shape(existing, value):
                if existing is not None and not isinstance(existing, tuple) and self._ever_assigned(existing):
                    self.reporter.error("DP101", f"'{user_name}' holds {_class_name(value.cls)} here but a number "
                                        "elsewhere", origin, "use a different variable name for the tuple")
                    return
                base = existing if isinstance(existing, str) else self.names.claim(
                    f"{scope.prefix}_{user_name}" if scope.prefix else user_name)
                existing = self._names_like(value, base)
                scope.bindings[user_name] = existing
            self._assign_components(existing, value, node, origin)
            return
        if isinstance(value, Denotation) and (existing in (None, value) or (
                isinstance(existing, str) and not self._ever_assigned(existing))):
            scope.bindings[user_name] = value  # a function bound to a name, known statically
            return
        if isinstance(value, Denotation) and isinstance(existing, Denotation):
            scope.bindings[user_name] = Denotation(AMBIGUOUS)  # which function depends on the path taken
            return
        if isinstance(value, (ShapeValue, Denotation)) or isinstance(existing, Denotation):
            self._not_a_number(value, node)
            return
        if isinstance(existing, tuple):
            self.reporter.error("DP101", f"'{user_name}' holds a number here but a tuple elsewhere",
                                origin, "use a different variable name")
            return
        core = self._bind_name(scope, user_name)
        self._assigned.add(core)
        if value != C.Var(core):
            self._emit(C.Assign(core, value, origin))

    def _ever_assigned(self, core):
        return core in self._assigned

    def _names_like(self, value, base):
        """Fresh core names shaped like a tuple value: `t_0`, `t_1` for a tuple, `q_w`, `q_x` for a Quaternion."""
        labels = P.info(value.cls).field_names if value.cls is not None else range(len(value.items))
        names = [self._names_like(item, f"{base}_{label}") if isinstance(item, TupleValue)
                 else self.names.claim(f"{base}_{label}") for label, item in zip(labels, value.items)]
        return Fields(names, value.cls) if value.cls is not None else tuple(names)

    def _assign_components(self, names, value, node, origin=None):
        origin = origin or self.origin(node)
        for name, item in zip(names, value.items):
            if isinstance(name, tuple):
                if not isinstance(item, TupleValue) or len(item.items) != len(name):
                    self.reporter.error("DP101", "nested tuple shapes do not match", origin,
                                        "unpack into the same shape as the value")
                    continue
                self._assign_components(name, item, node, origin)
            elif isinstance(item, (C.Var, C.Const)):
                self._assigned.add(name)
                if item != C.Var(name):
                    self._emit(C.Assign(name, item, origin))
            else:
                self._not_a_number(item, node)

    def _unpack(self, target, value, node):
        if isinstance(value, ShapeValue):
            value = TupleValue(tuple(self._call(REGISTRY.named("shape"), (value.array, C.Const(k)), node)
                                     for k in range(len(target.elts))))
        if _is_typed(value) and not issubclass(value.cls, tuple):
            self.reporter.error("DP101", f"a {value.cls.__name__} value cannot be unpacked", self.origin(node),
                                "read its fields by name")
            return
        if not isinstance(value, TupleValue) or len(value.items) != len(target.elts):
            self.reporter.error("DP101", f"cannot unpack this value into {len(target.elts)} variables",
                                self.origin(node), "unpack a tuple with the same number of elements")
            return
        # Snapshot variables the targets overwrite, so `a, b = b, a` swaps (and only those: `x, y, z =
        # q.rotate(...)` copies nothing).
        overwritten = set(_leaf_names(tuple(self.scope.bindings.get(t.id) for t in _target_names(target))))
        items = tuple(self._snapshot(item, node, overwritten) for item in value.items)
        for element, item in zip(target.elts, items):
            self._assign_value(element, item, node)

    def _snapshot(self, item, node, overwritten):
        if isinstance(item, TupleValue):
            return TupleValue(tuple(self._snapshot(i, node, overwritten) for i in item.items), item.cls)
        if isinstance(item, C.Var) and item.name in overwritten:
            copy = self.names.temp(item.name)
            self._emit(C.Assign(copy, item, self.origin(node)))
            return C.Var(copy)
        return item

    def stmt_If(self, node):
        cond = self._fresh_cond(node.test)
        body = self._lower_block(node.body)
        orelse = self._lower_block(node.orelse)
        self._emit(C.If(cond, body, orelse, self.origin(node)))

    def stmt_Return(self, node):
        scope = self.scope
        self._assign_result(scope, self._return_value(node), node)
        if scope.returned is not None:
            self._emit(C.Assign(scope.returned, C.Const(True), self.origin(node)))

    def _return_value(self, node):
        if node.value is None:
            self.reporter.error("DP108", "'return' without a value", self.origin(node),
                                "return the function's result")
            return C.Const(0.0)
        value = self.expr(node.value)
        if isinstance(value, TupleValue) and value.cls is None:
            self._returns_tuple = True
        return value

    def _assign_result(self, scope, value, node):
        if scope.result is None:
            scope.result = self._result_names(value, scope)
        shape_ok = _same_shape(scope.result, value) and \
            getattr(scope.result, "cls", None) is (value.cls if isinstance(value, TupleValue) else None)
        if not shape_ok:
            self.reporter.error("DP101", "this return gives a different number of values than another return",
                                self.origin(node), "return the same kind of value on every path")
            return
        if isinstance(value, TupleValue):
            self._assign_components(scope.result, value, node)
        elif isinstance(value, (C.Var, C.Const)):
            self._emit(C.Assign(scope.result, value, self.origin(node)))
        else:
            self._not_a_number(value, node)

    def _result_names(self, value, scope):
        base = f"{scope.prefix}_result" if scope.prefix else "result"
        if isinstance(value, TupleValue) and value.cls is not None:
            return self._names_like(value, base)
        if isinstance(value, TupleValue):
            return tuple(self._result_names(item, scope) if isinstance(item, TupleValue)
                         else self.names.claim(base) for item in value.items)
        return self.names.claim(base)

    def _result_value(self, scope):
        return self._binding_value(scope.result)

    def stmt_Break(self, node):
        loop = self.scope.loops[-1]
        self._emit(C.Assign(loop.brk, C.Const(True), self.origin(node)))

    def stmt_Continue(self, node):
        loop = self.scope.loops[-1]
        self._emit(C.Assign(loop.cont, C.Const(True), self.origin(node)))

    def stmt_FunctionDef(self, node):
        self.scope.local_defs[node.name] = LocalDef(node, self.scope)

    def stmt_For(self, node):
        if node.orelse:
            self.reporter.error("DP101", "'for ... else' cannot be differentiated", self.origin(node),
                                "use a flag variable instead of the else clause")
        bounds = self._range_bounds(node)
        if bounds is None:
            return
        if not isinstance(node.target, gast.Name):
            self.reporter.error("DP101", "the loop variable must be a plain name", self.origin(node.target),
                                "write `for i in range(...)` and unpack inside the loop")
            return
        start, stop, step = bounds
        jumps = control.block_exits(node.body)
        loop = self._open_loop(jumps, node)
        var = self._bind_name(self.scope, node.target.id)
        if not ({"break", "return"} & jumps):
            body = self._loop_body(node, loop, prologue=[])
            self._emit(C.ForRange(var, start, stop, step, body, self.origin(node)))
        else:
            self._early_exit_for(node, loop, var, start, stop, step)
        self.scope.loops.pop()

    def _early_exit_for(self, node, loop, var, start, stop, step):
        """`for` that may break or return: a while loop over an explicit counter."""
        counter = self.names.temp(var + "_next")
        origin = self.origin(node)
        self._emit(C.Assign(counter, start, origin))
        cond = self.names.temp("cond")
        self._emit(C.Assign(cond, C.Call(REGISTRY.named("range_continues"), (C.Var(counter), stop, step)), origin))
        prologue = [C.Assign(var, C.Var(counter), origin)]
        body = self._loop_body(node, loop, prologue)
        with self._emitting() as tail:
            self._emit(C.Assign(counter, C.Call(REGISTRY.named("add"), (C.Var(counter), step)), origin))
            self._recompute_cond(cond, loop, node, lambda: self._emit(C.Assign(
                cond, C.Call(REGISTRY.named("range_continues"), (C.Var(counter), stop, step)), origin)))
        self._emit(C.While(cond, body + tail, origin))

    def stmt_With(self, node):
        """`with diffprog.checkpoint(snapshots=...):` marks the `for` loops of its block for binomial
        checkpointing (transforms/reverse.py); everything else about the block is ordinary code."""
        call = node.items[0].context_expr
        callee = self.expr(call.func)
        if not isinstance(callee, Denotation) or callee.obj is not checkpoint:
            self.reporter.error("DP101", "a 'with' block cannot be differentiated", self.origin(node),
                                "move the context manager outside the differentiated function "
                                "(only `with diffprog.checkpoint():` is understood)")
            return
        snapshots = self._checkpoint_snapshots(call)
        block = self._lower_block(node.body)
        loops = [stmt for stmt in block if isinstance(stmt, C.ForRange)]
        if not loops:
            self.reporter.error("DP101", "diffprog.checkpoint needs a `for` loop over a range directly in its "
                                "block (a loop that may break or return early cannot be checkpointed)",
                                self.origin(node), "put the `for i in range(...)` loop itself under the `with`, "
                                "and exit it through its range instead of break/return")
        for loop in loops:
            loop.checkpoint = snapshots
        self.block.extend(block)

    def _checkpoint_snapshots(self, call) -> int:
        """The `snapshots` argument as a number known at compile time (0: chosen at run time)."""
        given = list(call.args) + [k.value for k in call.keywords]
        if len(given) > 1 or any(k.arg != "snapshots" for k in call.keywords):
            self.reporter.error("DP101", "diffprog.checkpoint takes one argument, snapshots", self.origin(call),
                                "write diffprog.checkpoint() or diffprog.checkpoint(snapshots=N)")
            return 0
        value = self._atom(given[0]) if given else C.Const(None)
        if value == C.Const(None):
            return 0
        if not (isinstance(value, C.Const) and type(value.value) is int and value.value >= 1):
            self.reporter.error("DP101", "diffprog.checkpoint(snapshots=...) must be a positive integer known when "
                                "the function is compiled", self.origin(given[0]),
                                "write a number, a module-level constant, or leave it out")
            return 0
        return value.value

    def stmt_While(self, node):
        if node.orelse:
            self.reporter.error("DP101", "'while ... else' cannot be differentiated", self.origin(node),
                                "use a flag variable instead of the else clause")
        jumps = control.block_exits(node.body)
        loop = self._open_loop(jumps, node)
        cond = self._fresh_cond(node.test)
        body = self._loop_body(node, loop, prologue=[])
        with self._emitting() as tail:
            self._recompute_cond(cond.name, loop, node, lambda: self._recompute_test(node.test, cond.name))
        self._emit(C.While(cond.name, body + tail, self.origin(node)))
        self.scope.loops.pop()

    def _recompute_test(self, test, name):
        value = self._atom(test, hint=name)
        if value != C.Var(name):
            self._emit(C.Assign(name, value, self.origin(test)))

    def _recompute_cond(self, cond, loop, node, recompute):
        """At the end of an iteration: the loop goes on if nothing broke out and its test still holds."""
        flags = [f for f in (loop.brk, self.scope.returned if self._loop_may_return(node) else None) if f]
        if not flags:
            recompute()
            return
        stop = C.Var(flags[0])
        for other in flags[1:]:
            stop = self._call(REGISTRY.named("or"), (stop, C.Var(other)), node)
        self._emit(C.Assign(cond, C.Call(REGISTRY.named("not"), (stop,)), self.origin(node)))
        again = self.names.temp("cond")
        self._emit(C.Assign(again, C.Var(cond), self.origin(node)))
        with self._emitting() as block:
            recompute()
        self._emit(C.If(C.Var(again), block, [], self.origin(node)))

    def _loop_may_return(self, node):
        return "return" in control.block_exits(node.body)

    def _open_loop(self, jumps, node) -> Loop:
        loop = Loop()
        if "break" in jumps:
            loop.brk = self.names.temp("brk")
            self._emit(C.Assign(loop.brk, C.Const(False), self.origin(node)))
        if "continue" in jumps:
            loop.cont = self.names.temp("cont")
        self.scope.loops.append(loop)
        return loop

    def _loop_body(self, node, loop, prologue):
        with self._emitting() as block:
            block.extend(prologue)
            if loop.cont:
                self._emit(C.Assign(loop.cont, C.Const(False), self.origin(node)))
            block.extend(self._lower_block(node.body))
        return block

    def _range_bounds(self, node):
        iterator = node.iter
        callee = self.expr(iterator.func) if isinstance(iterator, gast.Call) else None
        if not (isinstance(callee, Denotation) and callee.obj is range and not iterator.keywords
                and 1 <= len(iterator.args) <= 3):
            self.reporter.error("DP101", "only loops over range(...) can be differentiated",
                                self.origin(iterator), "loop over indices: for i in range(len(values))")
            return None
        args = [self._stable_atom(a) for a in iterator.args]
        if len(args) == 1:
            return C.Const(0), args[0], C.Const(1)
        if len(args) == 2:
            return args[0], args[1], C.Const(1)
        return tuple(args)

    def _stable_atom(self, node):
        """An atom the loop body cannot reassign: the reverse sweep rebuilds the loop from it."""
        atom = self._atom(node)
        if isinstance(atom, C.Var):
            copy = self.names.temp("bound")
            self._emit(C.Assign(copy, atom, self.origin(node)))
            return C.Var(copy)
        return atom

    # ---- expressions -------------------------------------------------------------------------------------------
    def expr(self, node, hint=None):
        if report_unsupported(node, self.scope.parsed, self.reporter):
            return C.Const(0.0)
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.reporter.error("DP101", f"'{type(node).__name__}' expressions cannot be differentiated",
                                self.origin(node), "rewrite it with arithmetic, calls and if/else")
            return C.Const(0.0)
        return method(node, hint)

    def expr_Constant(self, node, hint):
        if node.value is Ellipsis or isinstance(node.value, (bytes, complex)):
            self.reporter.error("DP101", f"constant {node.value!r} cannot be differentiated", self.origin(node),
                                "use real numbers")
            return C.Const(0.0)
        return C.Const(node.value)

    def expr_Name(self, node, hint):
        return self._read_name(node)

    def expr_Tuple(self, node, hint):
        return TupleValue(tuple(self.expr(e) for e in node.elts))

    def expr_BinOp(self, node, hint):
        left, right = self.expr(node.left), self.expr(node.right)
        if _is_typed(left) or _is_typed(right):
            return self._typed_operator(type(node.op).__name__, (left, right), node)
        left = left if isinstance(left, (C.Var, C.Const)) else self._not_a_number(left, node.left)
        right = right if isinstance(right, (C.Var, C.Const)) else self._not_a_number(right, node.right)
        prim = REGISTRY.lookup(type(node.op).__name__)
        if prim is None:
            self.reporter.error("DP101", f"operator '{type(node.op).__name__}' is not supported on numbers",
                                self.origin(node), "use arithmetic operators + - * / ** // %")
            return C.Const(0.0)
        return self._call(prim, (left, right), node, hint)

    def expr_UnaryOp(self, node, hint):
        operand = self.expr(node.operand)
        if _is_typed(operand) and type(node.op).__name__ in _DUNDERS:
            return self._typed_operator(type(node.op).__name__, (operand,), node)
        if not isinstance(operand, (C.Var, C.Const)):
            operand = self._not_a_number(operand, node.operand)
        if isinstance(node.op, gast.UAdd):
            return operand
        if isinstance(node.op, gast.USub) and isinstance(operand, C.Const) and type(operand.value) in (int, float):
            return C.Const(-operand.value)
        prim = REGISTRY.lookup(type(node.op).__name__)
        if prim is None:
            self.reporter.error("DP101", "bitwise '~' is not supported", self.origin(node), "use arithmetic")
            return C.Const(0)
        return self._call(prim, (operand,), node, hint)

    def expr_Compare(self, node, hint):
        operands = [node.left] + list(node.comparators)
        for op in node.ops:
            if REGISTRY.lookup(type(op).__name__) is None:
                self.reporter.error("DP101", f"comparison '{type(op).__name__}' is not supported",
                                    self.origin(node), "compare numbers with < <= > >= == !=")
                return C.Const(False)
        left, right = self.expr(operands[0]), self.expr(operands[1])
        if _is_typed(left) or _is_typed(right):
            if len(node.ops) > 1:
                self.reporter.error("DP101", "chained comparisons of registered-type values are not supported",
                                    self.origin(node), "compare two values at a time, joined with 'and'")
                return C.Const(False)
            return self._typed_compare(type(node.ops[0]).__name__, left, right, node, hint)
        left = left if isinstance(left, (C.Var, C.Const)) else self._not_a_number(left, operands[0])
        right = right if isinstance(right, (C.Var, C.Const)) else self._not_a_number(right, operands[1])
        result = self.names.temp("cmp") if len(node.ops) > 1 else hint
        first = self._call(REGISTRY.lookup(type(node.ops[0]).__name__), (left, right), node, result)
        if len(node.ops) == 1:
            return first
        # a < b < c: later comparisons run only while the earlier ones hold, each operand evaluated once.
        result = first.name
        for op, operand in zip(node.ops[1:], operands[2:]):
            with self._emitting() as block:
                left, right = right, self._atom(operand)
                self._call(REGISTRY.lookup(type(op).__name__), (left, right), node, result)
            self._emit(C.If(self._copy_cond(result, node), block, [], self.origin(node)))
        return C.Var(result)

    def _typed_compare(self, op, left, right, node, hint):
        """A comparison with a registered-type operand: the class's own comparison method (`__eq__`, `__lt__`,
        ... or the reflected one of the right operand), inlined from its source; else, for `==` and `!=` between
        two values of one dataclass or namedtuple, the generated equality: every field equal. Anything else (an
        ordering the class does not define, identity equality of a plain class, a value compared with a number or
        another class, array fields) is DP101."""
        forward, reflected, symbol = _COMPARISONS[op]
        for owner, dunder, args in ((left, forward, (left, right)), (right, reflected, (right, left))):
            if not _is_typed(owner):
                continue
            method = inspect.getattr_static(owner.cls, dunder, None)
            if inspect.isfunction(method) and not _generated(method):
                result = self._inline_python(method, node, args, label=f"{owner.cls.__name__}.{dunder}")
                if not (isinstance(result, Denotation) and result.obj is NotImplemented):
                    return result if isinstance(result, (C.Var, C.Const)) else self._not_a_number(result, node)
        if op == "NotEq":  # Python's default __ne__ negates __eq__
            equal = self._typed_compare("Eq", left, right, node, None)
            if isinstance(equal, C.Const):
                return C.Const(not equal.value)
            return self._call(REGISTRY.named("not"), (equal,), node, hint)
        cls = (left if _is_typed(left) else right).cls
        fix = (f"compare fields or properties (a.{P.info(cls).field_names[0]} {symbol} "
               f"b.{P.info(cls).field_names[0]}), or define {forward} on {cls.__name__} as a Python method")
        if op != "Eq":
            self.reporter.error("DP101", f"'{symbol}' is not defined for {_describe_value(left)} and "
                                f"{_describe_value(right)}", self.origin(node), fix)
            return C.Const(False)
        if not (_is_typed(left) and _is_typed(right) and left.cls is right.cls):
            self.reporter.error("DP101", f"'==' between {_describe_value(left)} and {_describe_value(right)} is "
                                "always False in Python", self.origin(node),
                                f"compare two {cls.__name__} values, or compare their fields")
            return C.Const(False)
        params = getattr(cls, "__dataclass_params__", None)
        structural = issubclass(cls, tuple) or (params is not None and params.eq)
        arrays = [f.name for f in _all_fields(cls) if f.kind == "array"]
        if not structural or arrays:
            why = (f"its field '{arrays[0]}' is an array (== of arrays is elementwise)" if structural else
                   f"{cls.__name__} has no __eq__, so == compares identity")
            self.reporter.error("DP101", f"'==' between {cls.__name__} values cannot be compiled: {why}",
                                self.origin(node), f"compare the fields you mean (np.all(a.{arrays[0]} == b."
                                f"{arrays[0]}) for an array), or define __eq__ on {cls.__name__}" if arrays else
                                f"compare the fields you mean, or define __eq__ on {cls.__name__}")
            return C.Const(False)
        pairs = list(zip(_typed_leaves(left), _typed_leaves(right)))
        result = None
        for a, b in pairs:
            equal = self._call(REGISTRY.named("eq"), (a, b), node)
            result = equal if result is None else self._call(REGISTRY.named("and"), (result, equal), node)
        if result is None:
            return C.Const(True)
        if hint is not None and result != C.Var(hint):
            self._emit(C.Assign(hint, result, self.origin(node)))
            return C.Var(hint)
        return result

    def _copy_cond(self, name, node):
        cond = self.names.temp("cond")
        self._emit(C.Assign(cond, C.Var(name), self.origin(node)))
        return C.Var(cond)

    def expr_BoolOp(self, node, hint):
        result = self.names.temp("and" if isinstance(node.op, gast.And) else "or")
        first = self._atom(node.values[0])
        self._emit(C.Assign(result, first, self.origin(node)))
        for value in node.values[1:]:
            cond = self._copy_cond(result, node)
            if isinstance(node.op, gast.Or):
                cond = self._call(REGISTRY.named("not"), (cond,), node, self.names.temp("cond"))
            with self._emitting() as block:
                atom = self._atom(value, hint=result)
                if atom != C.Var(result):
                    self._emit(C.Assign(result, atom, self.origin(value)))
            self._emit(C.If(cond, block, [], self.origin(node)))
        return C.Var(result)

    def expr_IfExp(self, node, hint):
        """`a if c else b`: an `if` assigning one result. Registered-type values and tuples choose field by field
        (both branches must give the same kind of value)."""
        decided = self._static_test(node.test)
        if decided is not None:  # `a if isinstance(o, Quaternion) else b`: only the branch taken is lowered
            return self.expr(node.body if decided else node.orelse, hint)
        cond = self._fresh_cond(node.test)
        result = hint or self.names.temp("choice")
        branches, values = [], []
        for branch in (node.body, node.orelse):
            with self._emitting() as block:
                values.append(self.expr(branch, hint=result))
            branches.append(block)
        if any(isinstance(v, TupleValue) for v in values):
            return self._choose_tuples(cond, branches, values, node)
        for block, value, branch in zip(branches, values, (node.body, node.orelse)):
            with self._emitting() as tail:
                atom = value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, branch)
                if atom != C.Var(result):
                    self._emit(C.Assign(result, atom, self.origin(branch)))
            block.extend(tail)
        self._emit(C.If(cond, branches[0], branches[1], self.origin(node)))
        return C.Var(result)

    def _choose_tuples(self, cond, branches, values, node):
        """`q1 if c else q2` for registered-type values (or tuples): fresh variables shaped like the value,
        assigned field by field in each branch."""
        kinds = [_layout_of_value(v) if _is_typed(v) else _tuple_shape(v) for v in values]
        if kinds[0] != kinds[1] or any(k is None for k in kinds):
            self.reporter.error("DP101", f"the branches of this conditional expression give {_describe_value(values[0])}"
                                f" and {_describe_value(values[1])}", self.origin(node),
                                "give the same kind of value in both branches (the same class, or tuples of the "
                                "same length)")
            return values[0] if isinstance(values[0], TupleValue) else C.Const(0.0)
        names = self._names_like(values[0], self.names.temp("choice"))
        for block, value in zip(branches, values):
            with self._emitting() as tail:
                self._assign_components(names, value, node)
            block.extend(tail)
        self._emit(C.If(cond, branches[0], branches[1], self.origin(node)))
        return self._binding_value(names)

    # ---- registered differentiable types: values are tuples of their fields, tagged with the class -----------
    def _inline_python(self, fn, node, leading=(), arg_nodes=(), keywords=(), label=None, constructor=False):
        """Inlines a Python function (a method, an operator, a property, a constructor) at `node`."""
        label = label or getattr(fn, "__qualname__", "function")
        try:
            parsed = parsed_function(fn)
        except DifferentiabilityError as error:  # reported where the user's code uses it
            for d in error.diagnostics:
                self.reporter.error(d.code, d.message, self.origin(node), d.hint,
                                    notes=(f"'{label}' is defined at {d.origin}",))
            return C.Const(0.0)
        check_function_syntax(parsed, self.reporter)
        prefix = re.sub(r"_+", "_", re.sub(r"\W", "_", label)).strip("_") or "method"
        return self._inline(parsed.node, parsed, node, None, label, leading=leading, arg_nodes=list(arg_nodes),
                            keywords=list(keywords), prefix=prefix, constructor=constructor)

    def _typed_attribute(self, base, node):
        """`q.w` reads a field; `q.norm` runs a property's getter; class constants are constants."""
        cls, entry = base.cls, P.info(base.cls)
        if node.attr in entry.field_names:
            return base.items[entry.field_names.index(node.attr)]
        found = inspect.getattr_static(cls, node.attr, MISSING)
        if isinstance(found, property) and found.fget is not None:
            return self._inline_python(found.fget, node, leading=(base,), label=f"{cls.__name__}.{node.attr}")
        if isinstance(found, functools.cached_property):
            return self._inline_python(found.func, node, leading=(base,), label=f"{cls.__name__}.{node.attr}")
        if isinstance(found, (bool, int, float, np.number)):
            return constant_value(found)
        hint = (f"add it to register_tangent({cls.__name__}, fields=...)" if entry.constructor != "dataclass"
                else "read one of its fields, properties or methods")
        self.reporter.error("DP105", f"'{node.attr}' is not a field or property of {cls.__name__} "
                            f"(fields: {', '.join(entry.field_names)})", self.origin(node), hint)
        return C.Const(0.0)

    def _typed_method_call(self, owner, node):
        """`q.conj()`: the method inlined from its source with `self` bound to q's fields."""
        cls, name = owner.cls, node.func.attr
        found = inspect.getattr_static(cls, name, MISSING)
        label = f"{cls.__name__}.{name}"
        if isinstance(found, staticmethod) and inspect.isfunction(found.__func__):
            return self._inline_python(found.__func__, node, (), node.args, node.keywords, label)
        if isinstance(found, classmethod) and inspect.isfunction(found.__func__):
            return self._inline_python(found.__func__, node, (Denotation(cls),), node.args, node.keywords, label)
        if inspect.isfunction(found):
            return self._inline_python(found, node, (owner,), node.args, node.keywords, label)
        what = "has no method" if found is MISSING else "has no differentiable method"
        self.reporter.error("DP105", f"{cls.__name__} {what} '{name}'", self.origin(node),
                            f"define '{name}' as a plain Python method of {cls.__name__}")
        return C.Const(0.0)

    def _typed_operator(self, op, operands, node):
        """An operator with a registered-type operand: its dunder method (`__mul__`, then the reflected
        `__rmul__` of the right operand), inlined. NotImplemented falls through to the reflected method."""
        forward, reflected, symbol = _DUNDERS[op]
        left = operands[0]
        attempts = [(left, forward, operands)]
        if len(operands) == 2:
            attempts.append((operands[1], reflected, operands[::-1]))
        for owner, dunder, args in attempts:
            if not (isinstance(owner, TupleValue) and owner.cls is not None):
                continue
            method = inspect.getattr_static(owner.cls, dunder, None)
            if inspect.isfunction(method):
                result = self._inline_python(method, node, args, label=f"{owner.cls.__name__}.{dunder}")
                if not (isinstance(result, Denotation) and result.obj is NotImplemented):
                    return result
        kinds = " and ".join(_describe_value(v) for v in operands)
        owner = next(v for v in operands if isinstance(v, TupleValue) and v.cls is not None)
        self.reporter.error("DP101", f"operator '{symbol}' is not defined for {kinds}", self.origin(node),
                            f"define {forward} on {owner.cls.__name__} as a Python method")
        return C.Const(0.0)

    def _construct(self, cls, node):
        """`Quaternion(w, x, y, z)`: the tuple of the field values, tagged with the class."""
        entry = P.info(cls)
        if entry.constructor == "init":
            return self._construct_by_init(cls, entry, node)
        if entry.constructor == "none" or (entry.constructor == "dataclass" and hasattr(cls, "__post_init__")):
            why = "it has a __post_init__" if entry.constructor == "dataclass" else "its constructor has no source"
            self.reporter.error("DP101", f"{cls.__name__}(...) cannot be called in differentiated code: {why}",
                                self.origin(node), f"build the {cls.__name__} outside and pass it in")
            return C.Const(0.0)
        names = entry.field_names
        if len(node.args) > len(names):
            self.reporter.error("DP101", f"{cls.__name__} takes {len(names)} fields, not {len(node.args)}",
                                self.origin(node), f"pass {', '.join(names)}")
            return C.Const(0.0)
        given = dict(zip(names, (self.expr(a) for a in node.args)))
        for keyword in node.keywords:
            if keyword.arg not in names or keyword.arg in given:
                self.reporter.error("DP101", f"unexpected or repeated argument '{keyword.arg}' for {cls.__name__}",
                                    self.origin(keyword.value), f"its fields are {', '.join(names)}")
                return C.Const(0.0)
            given[keyword.arg] = self.expr(keyword.value)
        defaults = _field_defaults(cls, entry)
        items = []
        for f in entry.fields:
            if f.name not in given and f.name not in defaults:
                self.reporter.error("DP101", f"missing field '{f.name}' in {cls.__name__}(...)", self.origin(node),
                                    f"pass every field: {', '.join(names)}")
                return C.Const(0.0)
            value = given[f.name] if f.name in given else defaults[f.name]
            items.append(self._field_value(cls, f, value, node))
        return TupleValue(tuple(items), cls)

    def _field_value(self, cls, f, value, node):
        """A constructor argument as the field holds it: ints given to float fields become floats, and fields
        that carry no derivative (NoDerivative) are cut from what flows in."""
        if f.kind == "type":
            if not (isinstance(value, TupleValue) and value.cls is not None and issubclass(value.cls, f.cls)):
                self.reporter.error("DP101", f"field '{f.name}' of {cls.__name__} takes a {f.cls.__name__}, not "
                                    f"{_describe_value(value)}", self.origin(node), f"pass a {f.cls.__name__}")
                return value
            return value if f.tangent else self._cut(value, node)
        if isinstance(value, TupleValue) and value.cls is not None and f.kind == "leaf":
            return value if f.tangent else self._cut(value, node)
        if not isinstance(value, (C.Var, C.Const)):
            return self._not_a_number(value, node)
        if f.kind == "float" and isinstance(value, C.Const) and type(value.value) in (int, bool):
            return C.Const(float(value.value))
        if not f.tangent and f.kind not in ("int", "bool"):
            return self._cut(value, node)
        return value

    def _cut(self, value, node):
        if isinstance(value, TupleValue):
            return TupleValue(tuple(self._cut(item, node) for item in value.items), value.cls)
        if isinstance(value, C.Var):
            return self._call(REGISTRY.named("no_derivative"), (value,), node)
        return value

    def _construct_by_init(self, cls, entry, node):
        """A registered plain class: its `__init__` inlined, `self.a = ...` writes filling in the fields."""
        names = Fields([self.names.claim(f"{cls.__name__}_{f.name}") for f in entry.fields], cls)
        value = TupleValue(tuple(C.Var(n) for n in names), cls)
        self._under_construction.add(tuple(names))
        try:
            self._inline_python(cls.__dict__["__init__"], node, (value,), node.args, node.keywords,
                                f"{cls.__name__}.__init__", constructor=True)
        finally:
            self._under_construction.discard(tuple(names))
        unset = [f.name for f, n in zip(entry.fields, names) if n not in self._assigned]
        if unset:
            self.reporter.error("DP101", f"{cls.__name__}.__init__ does not set {', '.join(unset)}",
                                self.origin(node), f"assign self.{unset[0]} in __init__")
        return value

    def _store_field(self, target, value, node):
        """`self.a = v` inside an inlined constructor; any other attribute write is a side effect (DP104)."""
        base = self.expr(target.value) if isinstance(target.value, gast.Name) else None
        if isinstance(base, TupleValue) and base.cls is not None and \
                tuple(_leaf_names(_as_binding(base) or ())) in self._under_construction:
            fields = P.info(base.cls).field_names
            if target.attr not in fields:
                self.reporter.error("DP101", f"'{target.attr}' is not a registered field of {base.cls.__name__}",
                                    self.origin(target), f"its fields are {', '.join(fields)}")
                return
            name = base.items[fields.index(target.attr)].name
            atom = value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, node)
            self._assigned.add(name)
            if atom != C.Var(name):
                self._emit(C.Assign(name, atom, self.origin(node)))
            return
        self.reporter.error("DP104", f"write to attribute '{target.attr}' of an object", self.origin(target),
                            "return the new value instead of storing it on an object")

    def _protocol_call(self, op, node):
        """diffprog.add / scale / move / zero_tangent inside differentiated code: field by field over the
        tangent fields (move calls the type's own `move` method when it has one)."""
        values = [self.expr(a) for a in node.args]
        if len(values) != (1 if op == "zero_tangent" else 2) or node.keywords:
            self.reporter.error("DP101", f"diffprog.{op} takes {1 if op == 'zero_tangent' else 2} arguments",
                                self.origin(node), "check the call")
            return C.Const(0.0)
        if op == "zero_tangent":
            return self._zero_tangent(values[0], node)
        if op == "move" and _is_typed(values[0]):
            cls = values[0].cls
            own = inspect.getattr_static(cls, "move", None)
            if inspect.isfunction(own):
                return self._inline_python(own, node, tuple(values), label=f"{cls.__name__}.move")
            custom = P.info(cls).move
            if custom is not None:
                return self._inline_python(custom, node, tuple(values), label=f"move of {cls.__name__}")
        return self._fieldwise(op, values[0], values[1], node)

    def _fieldwise(self, op, a, b, node):
        if _is_typed(a):
            entry = P.info(a.cls)
            items = []
            for f, item in zip(entry.fields, a.items):
                other = b if op == "scale" else self._field_named(b, f.name, node) if f.tangent else None
                items.append(self._fieldwise(op, item, other, node) if f.tangent else item)
            return TupleValue(tuple(items), a.cls)
        operands = [v if isinstance(v, (C.Var, C.Const)) else self._not_a_number(v, node) for v in (a, b)]
        return self._call(REGISTRY.named("mul" if op == "scale" else "add"), operands, node)

    def _field_named(self, value, name, node):
        if _is_typed(value) and name in P.info(value.cls).field_names:
            return value.items[P.info(value.cls).field_names.index(name)]
        self.reporter.error("DP101", f"this tangent has no field '{name}'", self.origin(node),
                            "pass a value of the tangent type")
        return C.Const(0.0)

    def _zero_tangent(self, value, node):
        if _is_typed(value):
            entry = P.info(value.cls)
            items = [self._zero_tangent(item, node) for f, item in zip(entry.fields, value.items) if f.tangent]
            return TupleValue(tuple(items), entry.tangent_cls)
        if isinstance(value, C.Var):  # a float or an array: shaped like it, without a derivative
            cut = self._call(REGISTRY.named("no_derivative"), (value,), node)
            return self._call(REGISTRY.named("mul"), (cut, C.Const(0.0)), node)
        return C.Const(0.0)

    def _isinstance_call(self, node):
        if len(node.args) != 2 or node.keywords:
            self.reporter.error("DP101", "isinstance takes two arguments", self.origin(node), "check the call")
            return C.Const(False)
        value, classes = self.expr(node.args[0]), self.expr(node.args[1])
        decided = _isinstance_of(value, classes.obj) if isinstance(classes, Denotation) else None
        if decided is None:
            self.reporter.error("DP101", "isinstance can only be decided at compile time for registered types",
                                self.origin(node), "test for the registered class, e.g. isinstance(other, "
                                "Quaternion), and treat everything else as a number")
            return C.Const(False)
        return C.Const(decided)

    def _method_call(self, owner, node, hint):
        """`x.sum()`, `x.copy()`, `x.reshape(...)`: the numpy function with the array as first argument."""
        prim = REGISTRY.lookup(f"method:{node.func.attr}")
        if prim is None:
            self.reporter.error("DP105", f"method '.{node.func.attr}()' is not supported on this value",
                                self.origin(node), "call the numpy function instead, e.g. np.sum(x)")
            return C.Const(0.0)
        return self._primitive_call(prim, node, hint, leading=[owner])

    def expr_Attribute(self, node, hint):
        return self._attribute_of(self.expr(node.value), node, hint)

    def _attribute_of(self, base, node, hint=None):
        if _is_typed(base):
            return self._typed_attribute(base, node)
        if isinstance(base, Denotation):
            obj = getattr(base.obj, node.attr, MISSING)
            if obj is MISSING:
                self.reporter.error("DP103", f"'{node.attr}' is not an attribute of {base.obj!r}",
                                    self.origin(node), "check the name")
                return C.Const(0.0)
            return constant_value(obj)
        if isinstance(base, C.Var) and node.attr == "shape":
            return ShapeValue(base)
        prim = REGISTRY.lookup(f"attr:{node.attr}")
        if isinstance(base, C.Var) and prim is not None:
            return self._call(prim, (base,), node, hint)
        self.reporter.error("DP105", f"attribute '.{node.attr}' of a value whose type has no tangent protocol",
                            self.origin(node),
                            "register the class with @diffprog.differentiable_type, or pass numbers instead")
        return C.Const(0.0)

    def expr_Subscript(self, node, hint):
        base = self.expr(node.value)
        index_node = node.slice
        if _is_typed(base) and not issubclass(base.cls, tuple):
            method = inspect.getattr_static(base.cls, "__getitem__", None)
            if inspect.isfunction(method):
                return self._inline_python(method, node, (base,), [index_node], (), f"{base.cls.__name__}.__getitem__")
            self.reporter.error("DP101", f"{base.cls.__name__} values cannot be indexed", self.origin(node),
                                "read its fields by name")
            return C.Const(0.0)
        if isinstance(base, TupleValue):
            if isinstance(index_node, gast.Constant) and isinstance(index_node.value, int) \
                    and -len(base.items) <= index_node.value < len(base.items):
                return base.items[index_node.value]
            self.reporter.error("DP101", "tuples can only be indexed by a constant integer in range",
                                self.origin(node), "unpack the tuple into variables")
            return C.Const(0.0)
        if isinstance(base, ShapeValue):
            return self._call(REGISTRY.named("shape"), (base.array, self._atom(index_node)), node, hint)
        if not isinstance(base, C.Var):
            self.reporter.error("DP101", "only arrays and tuples can be indexed", self.origin(node),
                                "index an array argument")
            return C.Const(0.0)
        return self._call(REGISTRY.named("getitem"), (base, *self._indices(index_node)), node, hint)

    def _indices(self, index_node) -> list:
        """Index atoms: integers and arrays as atoms, `a:b:c` as C.Slice, np.newaxis as None."""
        elements = index_node.elts if isinstance(index_node, gast.Tuple) else [index_node]
        indices = []
        for element in elements:
            if isinstance(element, gast.Slice):
                parts = [None if part is None else self._atom(part)
                         for part in (element.lower, element.upper, element.step)]
                indices.append(C.Slice(*parts))
            else:
                indices.append(self._atom(element))
        return indices

    def expr_Call(self, node, hint):
        if isinstance(node.func, gast.Attribute):
            owner = self.expr(node.func.value)
            if isinstance(owner, C.Var):
                return self._method_call(owner, node, hint)
            if _is_typed(owner):
                return self._typed_method_call(owner, node)
            callee = self._attribute_of(owner, node.func)
        else:
            callee = self.expr(node.func)
        if not isinstance(callee, Denotation):
            what = node.func.id if isinstance(node.func, gast.Name) else gast.unparse(node.func).strip()
            self.reporter.error("DP103", f"cannot tell statically which function '{what}' is",
                                self.origin(node),
                                "call a function defined at module level (or nested in this one) by its name")
            return C.Const(0.0)
        obj = callee.obj
        if obj is AMBIGUOUS:
            self.reporter.error("DP103", f"'{gast.unparse(node.func).strip()}' refers to different functions on "
                                "different paths, so the call cannot be resolved statically", self.origin(node),
                                "call each function by its own name inside if/else")
            return C.Const(0.0)
        if obj is _REPORTED:  # a transform whose problems were reported where it was made
            return C.Const(0.0)
        transformed = self._transform_call(obj, node, hint)
        if transformed is not None:
            return transformed
        if isinstance(obj, LocalDef):
            return self._inline(obj.node, self.scope.parsed, node, obj.scope, obj.node.name)
        target = getattr(obj, "__diffprog_function__", obj)
        if target is isinstance:
            return self._isinstance_call(node)
        if isinstance(target, type) and P.info(target) is not None and target not in _BUILTIN_TYPES:
            return self._construct(target, node)
        if isinstance(target, types.MethodType) and isinstance(target.__self__, type) and \
                inspect.isfunction(target.__func__):  # a classmethod called on its class: Quaternion.identity()
            return self._inline_python(target.__func__, node, (Denotation(target.__self__),), node.args,
                                       node.keywords, target.__qualname__)
        protocol = _PROTOCOL.get(id(target))
        if protocol is not None:
            return self._protocol_call(protocol, node)
        prim = REGISTRY.lookup(target, len(node.args))
        if prim is not None and prim.inline_primal is not None:
            return self._overridden_call(prim, node, hint)
        if prim is not None:
            return self._primitive_call(prim, node, hint)
        static = getattr(target, "__diffprog_parsed__", None)
        if static is not None:  # a function known from source only (the command line checker)
            with self._called_from(node):
                check_function_syntax(static, self.reporter)
            return self._inline(static.node, static, node, None, static.name)
        if isinstance(target, types.FunctionType) and not _is_library(target):
            try:
                parsed = parsed_function(target)
            except DifferentiabilityError as error:  # reported where the user's code calls it
                for d in error.diagnostics:
                    self.reporter.error(d.code, d.message, self.origin(node), d.hint,
                                        notes=(f"'{target.__qualname__}' is defined at {d.origin}",))
                return C.Const(0.0)
            check_function_syntax(parsed, self.reporter)
            return self._inline(parsed.node, parsed, node, None, parsed.name)
        if isinstance(target, type):
            self.reporter.error("DP105", f"class '{target.__name__}' has no tangent protocol", self.origin(node),
                                f"register it with @diffprog.differentiable_type on class {target.__name__}")
            return C.Const(0.0)
        return self._opaque_call(target, node, hint)

    def _primitive_call(self, prim, node, hint, leading=()):
        positional = list(node.args)
        prim = self._with_keywords(prim, node, positional, len(leading))
        if prim is None:
            return C.Const(0.0)
        values = list(leading) + [self._argument(a, k + len(leading) == prim.tuple_arg)
                                  for k, a in enumerate(positional)]
        if prim.tuple_arg is not None:
            prim, values = self._shape_arguments(prim, values)
        args = [v if isinstance(v, (C.Var, C.Const)) else self._not_a_number(v, node) for v in values]
        if prim.effect:
            self._emit(C.Effect(C.Call(prim, tuple(args)), self.origin(node)))
            return C.Const(None)
        if prim.components:  # a tuple-valued function: one primitive per element
            return TupleValue(tuple(self._call(REGISTRY.named(c), args, node) for c in prim.components))
        if prim.params and len(args) != len(prim.params):
            self.reporter.error("DP101", f"{prim.name} takes {len(prim.params)} arguments here, not {len(args)}",
                                self.origin(node), "check the call")
            return C.Const(0.0)
        return self._call(prim, args, node, hint)

    def _overridden_call(self, prim, node, hint):
        """A function with source and a user derivative rule: its value from its inlined source, its derivative
        from the rule (the primitive passes the value through and differentiates by the rule alone)."""
        n = len(prim.params) - 1
        if len(node.args) != n or node.keywords:
            self.reporter.error("DP101", f"{prim.name[5:]} takes {n} arguments here (passed by position)",
                                self.origin(node), "check the call")
            return C.Const(0.0)
        args = [self._atom(a) for a in node.args]
        value = self._inline_python(prim.inline_primal, node, tuple(args), label=prim.name[5:])
        if not isinstance(value, (C.Var, C.Const)):
            value = self._not_a_number(value, node)
        return self._call(prim, (*args, value), node, hint)

    def _through_rule(self, rule, scope, node, args):
        """The body of a function that has its own derivative rule: the rule's primitive applied to the
        parameters (a rule overriding a function with source passes the function's own value through)."""
        with self._emitting() as block:
            if rule.inline_primal is not None:
                body, value = self._lower_body(scope, node, top_level=True)
                block.extend(body)
                args = [*args, value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, node)]
            self.scope = scope
            result = self._call(rule, args, node)
            self.scope = None
        return block, result

    def _argument(self, node, tuple_wanted):
        """A list literal where a primitive takes a tuple (`np.array([a, b])`) is read as a tuple."""
        if tuple_wanted and isinstance(node, gast.List):
            return TupleValue(tuple(self.expr(e) for e in node.elts))
        return self.expr(node)

    def _with_keywords(self, prim, node, positional, leading=0):
        """Static keyword arguments (axis=1, keepdims=True) select a variant of the primitive; so do options passed
        by position after the data arguments (np.sum(x, 1), np.concatenate((a, b), 1), np.linalg.norm(x, 'fro')).
        Options equal to the primitive's defaults are dropped; an `ord` names its variant by value too."""
        named = [(k.arg, k.value) for k in node.keywords]
        data = (len(prim.params) if prim.params else 1) - leading  # a variadic primitive takes one tuple
        by_position = _POSITIONAL_OPTIONS.get(prim.name) or (
            ("axis",) if REGISTRY.has(f"{prim.name}_axis") or "axis" in prim.default_options else ())
        if data >= 0 and 0 < len(positional) - data <= len(by_position):
            named = list(zip(by_position, positional[data:])) + named
            del positional[data:]
        if not named:
            return prim
        options = {}
        for name, value_node in named:
            value = self.expr(value_node)
            if name is None or not isinstance(value, C.Const):
                self.reporter.error("DP101", f"keyword argument '{name}' of {prim.name} must be a constant",
                                    self.origin(value_node), "write the value literally, e.g. axis=0")
                return None
            options[name] = value.value
        defaults = {"keepdims": False, **prim.default_options}
        options = {k: v for k, v in options.items() if k not in defaults or defaults[k] is not v and (
            type(defaults[k]) is not type(v) or defaults[k] != v)}
        if not options:
            return prim
        suffix = "".join(f"_{name}" + (f"_{_option_value(options[name])}" if name in _VALUE_OPTIONS else "")
                         for name in sorted(options))
        try:
            variant = REGISTRY.named(prim.name + suffix)
        except KeyError:
            given = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items()))
            forms = [f"{prim.name}(..., {form})" for form in _keyword_forms(prim.name)]
            self.reporter.error("DP101", f"{prim.name} with {given} is not supported", self.origin(node),
                                f"the supported forms are {', '.join(forms)}" if forms else
                                f"call {prim.name} without these arguments, or use another function")
            return None
        return variant.with_options(**{k: v for k, v in options.items() if k != "keepdims" and
                                       k not in _VALUE_OPTIONS})

    def _shape_arguments(self, prim, values):
        """A shape given as a tuple becomes separate arguments; `x.shape` selects the `_shape` variant."""
        at = prim.tuple_arg
        before, shape, after = values[:at], values[at] if at < len(values) else None, values[at + 1:]
        if isinstance(shape, ShapeValue):
            return REGISTRY.named(prim.name + "_shape"), before + [shape.array] + after
        if isinstance(shape, TupleValue):
            return prim, before + list(shape.items) + after
        return prim, values

    def _opaque_call(self, obj, node, hint):
        """A function with no source and no rule: callable from compiled code only on inactive values."""
        path = import_path(obj)
        name = getattr(obj, "__qualname__", None) or repr(obj)
        if path is None or not callable(obj):
            self.reporter.error("DP103", f"cannot call '{name}' from differentiated code", self.origin(node),
                                "call a plain Python function, or register a derivative with "
                                "@diffprog.derivative(of=...)")
            return C.Const(0.0)
        return self._call(opaque_primitive(obj, path), [self._atom(a) for a in node.args], node, hint)

    # ---- transforms called in differentiated code: dp.grad(g)(x), dp.jvp(g, ...) (normalize/nested.py) ---------
    def _transform_call(self, obj, node, hint):
        """The value of `obj(...)` when obj is a diffprog transform or what one made, else None."""
        from .. import api

        if isinstance(obj, Transform):
            return self._apply_transform(obj, node, hint)
        if isinstance(obj, api.GradientFunction):  # `dg = dp.grad(g)` at module level, called here
            function, wrt = obj.df, obj.wrt
            transform = Transform("value_and_grad" if obj.with_value else "grad", function, wrt, obj.single,
                                  f"{obj.df.__name__} (a {'value_and_grad' if obj.with_value else 'grad'})")
            return self._apply_transform(transform, node, hint)
        if isinstance(obj, api.DifferentiableFunction) and type(obj.compiler).__name__ != "FunctionCompiler":
            return self._apply_transform(Transform("derived", obj, (), False, f"{obj.__name__} (a derivative)"),
                                         node, hint)
        kind = next((k for k in ("grad", "value_and_grad", "jvp_function", "jvp", "hvp")
                     if obj is getattr(api, k)), None)
        if kind in ("grad", "value_and_grad", "jvp_function"):
            return self._make_transform(kind, node)
        if kind is not None:
            return self._apply_at_point(kind, node, hint)
        if isinstance(obj, api.JacobianFunction) or any(obj is getattr(api, k) for k in _OUTSIDE_ONLY):
            name = next((k for k in _OUTSIDE_ONLY if obj is getattr(api, k)), "jacobian")
            self.reporter.error("DP101", f"diffprog.{name} cannot be called inside differentiated code yet",
                                self.origin(node), _OUTSIDE_ONLY.get(name, "use diffprog.jvp or diffprog.grad "
                                                                      "in a loop over directions"))
            return TupleValue((C.Const(0.0), Denotation(_REPORTED))) if name == "vjp" else C.Const(0.0)
        return None

    def _title(self, node) -> str:
        text = gast.unparse(node).strip()
        return text if len(text) <= 60 else text[:57] + "..."

    def _make_transform(self, kind, node):
        """`dp.grad(g, argnums)`: a compile-time function value (nothing is emitted until it is called)."""
        title = self._title(node)
        keywords = {k.arg: k.value for k in node.keywords}
        takes = 1 if kind == "jvp_function" else 2
        if not node.args or len(node.args) > takes or set(keywords) - ({"argnums"} if takes == 2 else set()) or \
                (len(node.args) == 2 and keywords):
            usage = "diffprog.jvp_function(g)" if takes == 1 else f"diffprog.{kind}(g) or diffprog.{kind}(g, argnums)"
            self.reporter.error("DP101", f"unexpected arguments in {title}", self.origin(node), f"write {usage}")
            return Denotation(_REPORTED)
        function = self._transform_target(node.args[0], title)
        argnums_node = node.args[1] if len(node.args) == 2 else keywords.get("argnums")
        argnums = self._static_argnums(argnums_node, title) if argnums_node is not None else 0
        if function is None or argnums is None:
            return Denotation(_REPORTED)
        single = isinstance(argnums, int)
        wrt = (argnums,) if single else argnums
        count = self._param_count(function)
        if count is not None and kind != "jvp_function":
            bad = [k for k in wrt if not -count <= k < count]
            if bad or not wrt:
                what = f"argnums {bad[0]} is out of range" if bad else "argnums is empty"
                self.reporter.error("DP101", f"{what} in {title}: '{_function_name(function)}' takes {count} "
                                    f"argument{'s' if count != 1 else ''}", self.origin(node),
                                    f"argnums counts the arguments of '{_function_name(function)}' from 0: use 0 to "
                                    f"{count - 1}, or a tuple of those")
                return Denotation(_REPORTED)
            wrt = tuple(k % count for k in wrt)
            if len(set(wrt)) != len(wrt):
                self.reporter.error("DP101", f"argnums repeats an argument in {title}", self.origin(node),
                                    "list each argument once")
                return Denotation(_REPORTED)
        return Denotation(Transform(kind, function, wrt, single, title))

    def _static_argnums(self, argnums_node, title):
        value = self.expr(argnums_node)
        if isinstance(value, C.Const) and type(value.value) is int:
            return value.value
        if isinstance(value, TupleValue) and value.cls is None and \
                all(isinstance(v, C.Const) and type(v.value) is int for v in value.items):
            return tuple(v.value for v in value.items)
        self.reporter.error("DP101", f"argnums of {title} must be a constant int or tuple of ints",
                            self.origin(argnums_node), "write the argument positions literally, e.g. argnums=(0, 1)")
        return None

    def _transform_target(self, function_node, title):
        """The function a transform is applied to, when it is known statically; else reported (None)."""
        from .. import api

        value = self.expr(function_node)
        obj = value.obj if isinstance(value, Denotation) else None
        if isinstance(obj, (Transform, LocalDef, api.DifferentiableFunction, api.GradientFunction)) or (
                getattr(obj, "__diffprog_parsed__", None) is not None) or (
                isinstance(obj, types.FunctionType) and not _is_library(obj) and obj.__module__ != api.__name__):
            return obj
        if obj is _REPORTED:
            return None
        what = gast.unparse(function_node).strip()
        self.reporter.error("DP103", f"cannot tell statically which function '{what}' in {title} is",
                            self.origin(function_node),
                            "pass a function defined with def (at module level, or nested in this one) by its name")
        return None

    def _param_count(self, function):
        """How many arguments `function` takes, when known before argument types are (None otherwise)."""
        from .. import api

        if isinstance(function, Transform):
            return None if function.kind in ("jvp_function", "derived") else self._param_count(function.function)
        if isinstance(function, LocalDef):
            return len(function.node.args.args)
        if isinstance(function, api.GradientFunction):
            function = function.df
        if isinstance(function, api.DifferentiableFunction):
            return len(function.compiler.params) if type(function.compiler).__name__ != "TangentCompiler" else None
        parsed = getattr(function, "__diffprog_parsed__", None)
        if parsed is None:
            try:
                parsed = parsed_function(function)
            except DifferentiabilityError:
                return None  # reported when its compiler is made
        return len(parsed.node.args.args)

    def _transform_compiler(self, function, node, title):
        """(compiler, captured values) for the function a transform is applied to; None when reported. A nested
        def's free variables of the enclosing function become extra parameters, after its own."""
        from ..compiler.derived import DerivativeCompiler, TangentCompiler
        from ..compiler.nested import transform_compiler

        if isinstance(function, Transform):
            if function.kind == "derived":
                return function.function.compiler, []
            inner = self._transform_compiler(function.function, node, title)
            if inner is None:
                return None
            compiler, captured = inner
            if function.kind == "jvp_function":
                if captured:
                    self.reporter.error("DP101", f"{title}: the tangent map of a nested function that reads "
                                        "variables of the enclosing function is not supported",
                                        self.origin(node), "pass those variables as arguments, or use diffprog.jvp")
                    return None
                return TangentCompiler(compiler, jit=False), []
            outputs = tuple(range(1, 1 + len(function.argnums)))
            if function.kind == "value_and_grad":
                outputs = (0,) + outputs
            return DerivativeCompiler(compiler, function.argnums, outputs, jit=False), captured
        if isinstance(function, LocalDef):
            return self._local_compiler(function, node, title)
        try:
            compiler = transform_compiler(function)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return None
        return compiler, []

    def _local_compiler(self, local, node, title):
        """A nested def as a function of its own: variables of the enclosing function it reads are passed as
        extra parameters (their current values, as Python's closures read them)."""
        from ..compiler.function import FunctionCompiler

        fdef = local.node
        free = sorted({n.id for n in gast.walk(fdef) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}
                      - control.local_names(fdef))
        parsed = local.scope.parsed
        closure, captured, values = dict(parsed.closure), [], []
        for name in free:
            scope = local.scope
            while scope is not None and name not in scope.bindings and name not in scope.locals:
                scope = scope.parent
            if scope is None:
                continue  # a global or a builtin, looked up as for any function
            if name in scope.local_defs:
                if scope.local_defs[name].node is fdef:
                    continue
                self.reporter.error("DP101", f"{title}: '{fdef.name}' calls '{name}', a function nested in the "
                                    "enclosing one", self.origin(node), f"define '{name}' at module level")
                return None
            binding = scope.bindings[name] if name in scope.bindings else self._bind_name(scope, name)
            if isinstance(binding, str) or (isinstance(binding, tuple) and getattr(binding, "cls", None) is not None):
                captured.append(name)  # a number, an array or a registered-type value (passed field by field)
                values.append(self._binding_value(binding))
            elif isinstance(binding, C.Const):
                closure[name] = binding.value
            elif isinstance(binding, Denotation) and binding.obj is not AMBIGUOUS and \
                    not isinstance(binding.obj, LocalDef):
                closure[name] = binding.obj
            else:
                self.reporter.error("DP101", f"{title}: '{fdef.name}' reads '{name}' of the enclosing function, "
                                    "which is not a number or an array", self.origin(node),
                                    f"pass '{name}' (or its elements) to '{fdef.name}' as arguments")
                return None
        copied = copy.copy(fdef)
        copied.args = copy.copy(fdef.args)
        copied.args.args = list(fdef.args.args) + [
            gast.Name(id=name, ctx=gast.Param(), annotation=None, type_comment=None) for name in captured]
        copied.args.defaults = []
        copied.decorator_list = []
        standalone = replace(parsed, fn=None, node=copied, closure=closure)
        try:
            compiler = FunctionCompiler(None, jit=False, parsed=standalone)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return None
        return compiler, values

    def _transform_args(self, function, node, title, count):
        """The call's arguments as atoms (positional, by keyword, or defaults), or None when reported."""
        from .. import api

        fdef = None
        if isinstance(function, LocalDef):
            fdef, parsed, parent = function.node, function.scope.parsed, function.scope
        elif isinstance(function, (types.FunctionType, api.DifferentiableFunction)) or \
                getattr(function, "__diffprog_parsed__", None) is not None:
            try:
                parsed = getattr(function, "__diffprog_parsed__", None) or \
                    parsed_function(getattr(function, "__diffprog_function__", function))
                fdef, parent = parsed.node, None
            except DifferentiabilityError:
                fdef = None
        values = [self.expr(a) for a in node.args]
        if node.keywords or (fdef is not None and len(values) < len(fdef.args.args)):
            if fdef is None:
                self.reporter.error("DP101", f"pass the arguments of {title} by position", self.origin(node),
                                    "write every argument, in order")
                return None
            params = [a.id for a in fdef.args.args]
            keywords = {k.arg: k for k in node.keywords}
            defaults = self._defaults(fdef, parsed, parent)
            for param in params[len(values):]:
                if param in keywords:
                    values.append(self.expr(keywords.pop(param).value))
                elif param in defaults:
                    values.append(defaults[param])
                else:
                    self.reporter.error("DP101", f"missing argument '{param}' in the call of {title}",
                                        self.origin(node), "pass every argument")
                    return None
            if keywords:
                self.reporter.error("DP101", f"unknown argument '{next(iter(keywords))}' in the call of {title}",
                                    self.origin(node), f"its arguments are {', '.join(params)}")
                return None
        if count is not None and len(values) != count:
            self.reporter.error("DP101", f"{title} takes {count} argument{'s' if count != 1 else ''}, not "
                                f"{len(values)}", self.origin(node), "pass one value per argument of the function")
            return None
        return self._transform_atoms(values, node, title)

    def _transform_atoms(self, values, node, title):
        """(flat atoms, layouts) for the arguments of a transform call: a registered-type value is passed as its
        fields (one atom per leaf, as the derived code takes it), its layout (types.layout.Node) recorded so the
        call's expansion can rebuild it; None for numbers and arrays. None when reported."""
        atoms, layouts = [], []
        for value in values:
            if isinstance(value, (C.Var, C.Const)):
                atoms.append(value)
                layouts.append(None)
                continue
            if _is_typed(value):
                leaves = list(_typed_leaves(value))
                if all(isinstance(leaf, (C.Var, C.Const)) for leaf in leaves):
                    atoms.extend(leaves)
                    layouts.append(_layout_of_value(value))
                    continue
            what = _describe_value(value) if not isinstance(value, ShapeValue) else "an array's shape"
            self.reporter.error("DP101", f"{what} cannot be passed to {title} inside differentiated code yet",
                                self.origin(node), "pass floats, ints, arrays or values of registered types (the "
                                "elements of a tuple one by one)")
            return None
        return atoms, tuple(layouts)

    def _nested_values(self, values, layouts):
        """The placeholders' flat values regrouped per returned value: a registered-type result (or gradient, or
        tangent, of a tangent type) rebuilt as a tagged tuple from its fields."""
        leaves = iter(values)
        return [_rebuild_value(node, leaves) for node in layouts]

    def _emit_nested(self, kind, compiler, args, outputs, node, hint, title, label, primals=0, user=0, layouts=None):
        """The placeholders for one transform call (one per flat value it gives back: a registered-type value
        gives one per field), expanded at specialization."""
        call = NestedCall(kind, compiler, len(args), outputs, self.origin(node), label, title, primals, user,
                          layouts=layouts)
        results = []
        for k, prim in enumerate(call.prims):
            target = hint if outputs == 1 and hint is not None and C.Var(hint) not in args else \
                self.names.temp(label)
            self._emit(C.Assign(target, C.Call(prim, tuple(args)), self.origin(node)))
            results.append(C.Var(target))
        return results

    def _apply_transform(self, transform, node, hint):
        """`dp.grad(g)(x, y)`: the gradient's placeholders; the value has the structure diffprog.grad gives."""
        title = f"{transform.title}(...)" if transform.kind != "derived" else transform.title
        found = self._transform_compiler(transform, node, title)
        if found is None:
            return C.Const(0.0)
        compiler, captured = found
        count = self._param_count(transform) if transform.kind != "jvp_function" else None
        found = self._transform_args(_innermost(transform), node, title, count)
        if found is None:
            return C.Const(0.0)
        args, layouts = found
        found = self._transform_atoms(captured, node, title)
        if found is None:
            return C.Const(0.0)
        captured, captured_layouts = found
        layouts = _plain_if_untyped(layouts + captured_layouts)
        try:
            outputs, returns_tuple = compiler.arity(layouts)
            if transform.kind in ("grad", "value_and_grad"):
                returned, of_tuple = compiler.inner.arity(layouts)
                if len(returned) != 1 or of_tuple or returned[0] is not None:
                    what = f"a {returned[0].cls.__name__}" if len(returned) == 1 and returned[0] is not None \
                        else "a tuple"
                    self.reporter.error("DP111", f"{title}: grad needs a function returning one number, but "
                                        f"'{_function_name(transform.function)}' returns {what}", self.origin(node),
                                        "use diffprog.jvp, or differentiate one element of the result")
                    return C.Const(0.0)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return C.Const(0.0)
        label = f"{_LABELS[transform.kind]}_{_function_name(_innermost(transform))}"
        flat = self._emit_nested("call", compiler, args + captured, _flat_count(outputs), node,
                                 hint if all(o is None for o in outputs) else None, title, label, layouts=layouts)
        values = self._nested_values(flat, outputs)
        if transform.kind == "grad":
            return values[0] if transform.single else TupleValue(tuple(values))
        if transform.kind == "value_and_grad":
            grads = values[1] if transform.single else TupleValue(tuple(values[1:]))
            return TupleValue((values[0], grads))
        return TupleValue(tuple(values)) if returns_tuple else values[0]

    def _report_nested(self, error, node):
        """Problems found in the function a transform is applied to: at their own lines, reached through the call
        (those without a place, at the call)."""
        site = self.origin(node)
        for d in error.diagnostics:
            if d.origin is None:
                origin = site
            elif tuple(d.origin.chain[:1]) == (site,):  # reported through this call already
                origin = d.origin
            else:
                origin = replace(d.origin, chain=tuple(site.chain) + (site,) + tuple(d.origin.chain))
            self.reporter.diagnostics.append(replace(d, origin=origin))

    def _apply_at_point(self, kind, node, hint):
        """`dp.jvp(g, primals, tangents)` -> (value, tangent); `dp.hvp(g, primals, vector)` -> a tuple with one
        entry per argument of g."""
        title = self._title(node)
        failed = TupleValue((C.Const(0.0), C.Const(0.0))) if kind == "jvp" else C.Const(0.0)
        if len(node.args) != 3 or node.keywords:
            self.reporter.error("DP101", f"{title}: diffprog.{kind} takes the function, the primals and the "
                                f"{'tangents' if kind == 'jvp' else 'vector'}", self.origin(node),
                                f"write diffprog.{kind}(g, (x, y), ({'dx, dy' if kind == 'jvp' else 'vx, vy'}))")
            return failed
        function = self._transform_target(node.args[0], title)
        if function is None:
            return failed
        found = self._transform_compiler(function, node, title)
        if found is None:
            return failed
        compiler, captured = found
        primals, tangents = (self._argument(a, True) for a in node.args[1:])
        if not all(isinstance(v, TupleValue) and v.cls is None for v in (primals, tangents)):
            self.reporter.error("DP101", f"{title}: the primals and the {'tangents' if kind == 'jvp' else 'vector'}"
                                " must be tuples", self.origin(node), "write them as tuples: (x,) for one argument")
            return failed
        count = self._param_count(function)
        n = len(primals.items)
        if len(tangents.items) != n or (count is not None and n != count):
            expected = f"'{_function_name(function)}' takes {count}" if count is not None else f"{n} primals"
            self.reporter.error("DP101", f"{title}: {n} primals and {len(tangents.items)} "
                                f"{'tangents' if kind == 'jvp' else 'vector entries'}, but {expected}",
                                self.origin(node), "pass one primal and one tangent per argument (None for ints)")
            return failed
        # captured variables of a nested def are primals after the user's, with no tangent along them
        found = self._transform_atoms(list(primals.items) + list(captured), node, title)
        if found is None:
            return failed
        primal_atoms, primal_layouts = found
        zero = [self._zero_tangent(v, node) for v in captured]
        tangent_atoms = self._aligned_tangents(primal_layouts, list(tangents.items) + zero, node, title, kind)
        if tangent_atoms is None:
            return failed
        tangent_atoms = [C.Const(float(t.value)) if isinstance(t, C.Const) and type(t.value) is int else t
                         for t in tangent_atoms]
        args = primal_atoms + tangent_atoms
        layouts = _plain_if_untyped(primal_layouts)
        primal_count = len(primal_atoms)
        label = f"{kind}_{_function_name(function)}"
        if kind == "hvp":  # per argument of g: a number, an array, a tangent-type value, or None for an int
            outputs = tuple(None if node is None else L.tangent_node(node) for node in primal_layouts[:n])
            values = self._emit_nested("hvp", compiler, args, _flat_count(outputs), node, None, title, label,
                                       primal_count, n, layouts=layouts)
            return TupleValue(tuple(self._nested_values(values, outputs)))
        try:
            returned, returns_tuple = compiler.arity(layouts)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return failed
        outputs = tuple(returned) + tuple(None if r is None else L.tangent_node(r) for r in returned)
        values = self._emit_nested("jvp", compiler, args, _flat_count(outputs), node, None, title, label,
                                   primal_count, layouts=layouts)
        values = self._nested_values(values, outputs)
        count = len(returned)
        if returns_tuple:
            return TupleValue((TupleValue(tuple(values[:count])), TupleValue(tuple(values[count:]))))
        return TupleValue((values[0], values[1]))

    def _aligned_tangents(self, layouts, tangents, node, title, kind):
        """The tangents (or hvp's vector) as flat atoms aligned with the primals' flat atoms: a registered-type
        primal's tangent is a value of its tangent type, whose fields go where the primal's derivative-carrying
        fields are (0.0 where it has none). None when reported."""
        what = "tangent" if kind == "jvp" else "vector entry"
        atoms = []
        for k, (layout, tangent) in enumerate(zip(layouts, tangents)):
            if layout is None:
                found = self._transform_atoms([tangent], node, title)
                if found is None:
                    return None
                if found[1][0] is not None:
                    self.reporter.error("DP101", f"{title}: the {what} for argument {k + 1} is a "
                                        f"{tangent.cls.__name__}, but the argument is a number or an array",
                                        self.origin(node), f"pass a {what} of the argument's type")
                    return None
                atoms.extend(found[0])
                continue
            wanted = L.tangent_node(layout)
            if not (_is_typed(tangent) and _layout_of_value(tangent) == wanted):
                self.reporter.error("DP101", f"{title}: the {what} for argument {k + 1} (a {layout.cls.__name__}) "
                                    f"must be a {wanted.cls.__name__}, not {_describe_value(tangent)}",
                                    self.origin(node), f"pass a value of the tangent type: diffprog.zero_tangent(x) "
                                    f"for none, or {wanted.cls.__name__}(...)")
                return None
            leaves = iter(_typed_leaves(tangent))
            atoms.extend(next(leaves) if in_tangent else C.Const(0.0) for _, in_tangent in layout.leaves())
        return atoms

    # ---- inlining ----------------------------------------------------------------------------------------------
    def _inline(self, fdef, parsed, call, parent, name, leading=(), arg_nodes=None, keywords=None, prefix=None,
                constructor=False):
        """Lowers a call in place. `leading` are argument values already lowered (`self` of a method, the
        operands of an operator), followed by `arg_nodes` (the call's own arguments by default)."""
        code_key = (parsed.file, fdef.lineno + parsed.line_offset, fdef.col_offset)
        if code_key in self.inline_stack:
            self.reporter.error("DP110", f"recursive call to '{name}'", self.origin(call),
                                "diffprog inlines calls; rewrite the recursion as a loop")
            return C.Const(0.0)
        args = list(leading) + [self.expr(a) for a in (call.args if arg_nodes is None else arg_nodes)]
        params = fdef.args.args
        defaults = self._defaults(fdef, parsed, parent)
        keywords = {k.arg: k.value for k in (call.keywords if keywords is None else keywords)}
        scope = Scope(parsed, fdef, prefix=self.names.claim(prefix or name), parent=parent,
                      locals=control.local_names(fdef))
        values = []
        for k, param in enumerate(params):
            if k < len(args):
                values.append(args[k])
            elif param.id in keywords:
                values.append(self.expr(keywords.pop(param.id)))
            elif param.id in defaults:
                values.append(defaults[param.id])
            else:
                self.reporter.error("DP101", f"missing argument '{param.id}' in call to '{name}'",
                                    self.origin(call), "pass every argument")
                return C.Const(0.0)
        if keywords or len(args) > len(params):
            self.reporter.error("DP101", f"too many or unknown arguments in call to '{name}'", self.origin(call),
                                "check the call's arguments")
            return C.Const(0.0)
        reassigned = control.assigned_names(fdef)
        for param, value in zip(params, values):
            if isinstance(value, C.Var) and param.id not in reassigned:
                scope.bindings[param.id] = value.name  # the callee only reads it: no copy needed
            elif isinstance(value, TupleValue) and param.id not in reassigned and _as_binding(value) is not None:
                scope.bindings[param.id] = _as_binding(value)  # a method's `self`: its fields, not copies
            else:
                self._bind_param(scope, param.id, value, call)
        self.inline_stack.append(code_key)
        outer_tuple = self._returns_tuple
        with self._called_from(call):
            body, result = self._lower_body(scope, fdef, constructor=constructor)
        self._returns_tuple = outer_tuple
        self.inline_stack.pop()
        self.block.extend(body)
        return result

    def _bind_param(self, scope, user_name, value, call):
        origin = self.origin(call)  # the call's line, in the caller's file
        outer, self.scope = self.scope, scope
        try:
            self._assign_name(scope, user_name, value, call, origin)
        finally:
            self.scope = outer

    def _defaults(self, fdef, parsed, parent):
        params = [a.id for a in fdef.args.args]
        if parent is None and parsed.node is fdef:
            values = parsed.fn.__defaults__ or ()
            return {p: constant_value(v) for p, v in zip(params[len(params) - len(values):], values)}
        nodes = fdef.args.defaults
        return {p: self.expr(d) for p, d in zip(params[len(params) - len(nodes):], nodes)}

    def _flat_atoms(self, value, node, nested=False):
        for item in value.items:
            if isinstance(item, TupleValue) and (item.cls is not None):
                yield from self._flat_atoms(item, node, nested=True)
            elif isinstance(item, TupleValue):
                self.reporter.error("DP101", "nested tuples cannot be returned yet", self.origin(node),
                                    "return a flat tuple")
            elif isinstance(item, (C.Var, C.Const)):
                yield item
            else:
                yield self._not_a_number(item, node)


# Keyword options of primitives (rules/numpy_rules.py names a variant per set of options: np.sum_axis_keepdims):
# the options a function takes by position after its data arguments, where that is not just `axis`, and the
# options whose value selects the variant (np.linalg.norm_ord_fro).
_POSITIONAL_OPTIONS = {"np.linalg.norm": ("ord", "axis", "keepdims")}
_VALUE_OPTIONS = ("ord",)


def _option_value(value) -> str:
    """An option value as part of a variant's name: 2.0 and 2 are the same order."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _keyword_forms(name) -> list:
    """The keyword forms the variants of primitive `name` support, for a diagnostic: ["axis=k", "ord='fro'"]."""
    forms = []
    for variant in REGISTRY.names():
        if not variant.startswith(name + "_"):
            continue
        words, parts = variant[len(name) + 1:].split("_"), []
        while words:
            word = words.pop(0)
            if word in _VALUE_OPTIONS and words:
                value = words.pop(0)
                parts.append(f"{word}={value!r}" if not value.lstrip("-").isdigit() else f"{word}={value}")
            elif word in ("axis", "keepdims"):
                parts.append("axis=k" if word == "axis" else "keepdims=True")
            else:
                break
        else:
            forms.append(", ".join(parts))
    return forms


_LIBRARIES = ("numpy", "scipy", "math", "numba")


def _is_library(fn) -> bool:
    """Library functions are primitives with rules, or opaque: never inlined from their (Python) source."""
    module = getattr(fn, "__module__", None) or ""
    return module.split(".")[0] in _LIBRARIES


_DUNDERS = {
    "Add": ("__add__", "__radd__", "+"), "Sub": ("__sub__", "__rsub__", "-"), "Mult": ("__mul__", "__rmul__", "*"),
    "Div": ("__truediv__", "__rtruediv__", "/"), "FloorDiv": ("__floordiv__", "__rfloordiv__", "//"),
    "Mod": ("__mod__", "__rmod__", "%"), "Pow": ("__pow__", "__rpow__", "**"),
    "MatMult": ("__matmul__", "__rmatmul__", "@"), "USub": ("__neg__", None, "-"), "UAdd": ("__pos__", None, "+"),
}


def _typed_leaves(value):
    """The leaves of a registered-type value, depth first (ints given to derivative-carrying fields as floats)."""
    entry = P.info(value.cls)
    for f, item in zip(entry.fields, value.items):
        if _is_typed(item):
            yield from _typed_leaves(item)
        elif f.tangent and isinstance(item, C.Const) and type(item.value) is int:
            yield C.Const(float(item.value))
        else:
            yield item


def _rebuild_value(node, leaves):
    if node is None:
        return next(leaves)
    return TupleValue(tuple(_rebuild_value(child, leaves) for child in node.children), node.cls)


def _tuple_shape(value):
    """The nesting of a value as a comparable key (registered-type items by their layout), None for a value that
    is neither a number nor a tuple of numbers and registered values."""
    if _is_typed(value):
        return _layout_of_value(value)
    if isinstance(value, TupleValue):
        items = tuple(_tuple_shape(item) for item in value.items)
        return None if any(item is None for item in items) else ("tuple",) + items
    return "leaf" if isinstance(value, (C.Var, C.Const)) else None


def _flat_count(layouts) -> int:
    return sum(1 if node is None else node.size for node in layouts)


def _plain_if_untyped(layouts):
    """Layouts as the compilers take them: None when no value has a registered type."""
    return tuple(layouts) if any(node is not None for node in layouts) else None


_COMPARISONS = {
    "Eq": ("__eq__", "__eq__", "=="), "NotEq": ("__ne__", "__ne__", "!="), "Lt": ("__lt__", "__gt__", "<"),
    "LtE": ("__le__", "__ge__", "<="), "Gt": ("__gt__", "__lt__", ">"), "GtE": ("__ge__", "__le__", ">="),
}


def _generated(method) -> bool:
    """A method written by the dataclass machinery (`__eq__`, `order=True` comparisons), not by the user."""
    return method.__code__.co_filename == "<string>"


def _all_fields(cls):
    """Every field of a registered class, nested registered types' fields included."""
    for f in P.info(cls).fields:
        yield f
        if f.kind == "type":
            yield from _all_fields(f.cls)


def _innermost(transform):
    """The function under a chain of transforms (grad of grad of g: g)."""
    while isinstance(transform, Transform) and transform.kind != "derived":
        transform = transform.function
    return transform.function if isinstance(transform, Transform) else transform


def _function_name(function) -> str:
    if isinstance(function, Transform):
        return _function_name(_innermost(function))
    if isinstance(function, LocalDef):
        return function.node.name
    return getattr(function, "__name__", None) or getattr(function, "name", None) or "function"


def _is_typed(value) -> bool:
    return isinstance(value, TupleValue) and value.cls is not None


def _describe_value(value) -> str:
    if _is_typed(value):
        return f"a {value.cls.__name__}"
    if isinstance(value, TupleValue):
        return "a tuple"
    return "a number or array" if isinstance(value, (C.Var, C.Const)) else "a function or module"


def _field_defaults(cls, entry) -> dict:
    """Constant defaults of a dataclass's or namedtuple's fields, as core values."""
    if entry.constructor == "namedtuple":
        return {k: constant_value(v) for k, v in getattr(cls, "_field_defaults", {}).items()}
    found = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = constant_value(f.default)
    return found


def _as_binding(value):
    """What a scope binds to a tuple value read but never reassigned by the callee (None: copy it instead)."""
    if isinstance(value, C.Var):
        return value.name
    if isinstance(value, (C.Const, Denotation)):
        return value
    if isinstance(value, TupleValue):
        items = [_as_binding(item) for item in value.items]
        if any(item is None for item in items):
            return None
        return Fields(items, value.cls) if value.cls is not None else tuple(items)
    return None


def _target_names(target) -> list:
    """The plain names an unpacking target assigns, nested ones included."""
    if isinstance(target, gast.Name):
        return [target]
    if isinstance(target, (gast.Tuple, gast.List)):
        return [n for element in target.elts for n in _target_names(element)]
    return []


def _leaves_block(stmt) -> bool:
    """The statements after `stmt` in its block never run."""
    return isinstance(stmt, (gast.Return, gast.Break, gast.Continue)) or control.always_returns([stmt])


_NUMBER_TYPES = (float, int, bool, np.ndarray, np.floating, np.integer, np.bool_)


def _isinstance_of(value, classes):
    """isinstance(value, classes) decided from what is known statically, or None when only the run-time type
    (number or array) would tell."""
    classes = classes if isinstance(classes, tuple) else (classes,)
    if not all(isinstance(c, type) for c in classes):
        return None
    if isinstance(value, TupleValue):
        return issubclass(value.cls or tuple, classes)
    if isinstance(value, C.Const):
        return isinstance(value.value, classes)
    if isinstance(value, Denotation):
        return isinstance(value.obj, classes)
    if not any(issubclass(n, c) for n in _NUMBER_TYPES for c in classes):
        return False  # a number or an array is never an instance of a user class
    return None


def _leaf_names(binding) -> list:
    """The core names of a (possibly nested) tuple binding, depth first: the flattening order everywhere."""
    if isinstance(binding, tuple):
        return [leaf for item in binding for leaf in _leaf_names(item)]
    return [binding] if isinstance(binding, str) else []


def _layout_of_value(value):
    """The layout (types.layout.Node) of a returned value of a registered type, None for a number or array."""
    from ..types.layout import Node

    if not isinstance(value, TupleValue) or value.cls is None:
        return None
    entry = P.info(value.cls)
    return Node(value.cls, entry.field_names, tuple(_layout_of_value(item) for item in value.items),
                tuple(f.tangent for f in entry.fields))


def _same_shape(binding, value) -> bool:
    """Whether core names bound to a tuple can hold `value` (same nesting and lengths)."""
    if isinstance(value, TupleValue):
        return isinstance(binding, tuple) and len(binding) == len(value.items) and all(
            _same_shape(b, v) for b, v in zip(binding, value.items))
    return not isinstance(binding, tuple)


def _class_name(cls) -> str:
    return "a tuple" if cls is None else f"a {cls.__name__}"


_BUILTIN_TYPES = (float, int, bool)
_PROTOCOL = {id(P.add): "add", id(P.scale): "scale", id(P.move): "move", id(P.zero_tangent): "zero_tangent"}


def constant_value(obj):
    """What a global or captured object becomes in core code: numbers are inlined, the rest is compile-time;
    a value of a registered type is the tuple of its (constant) fields."""
    if P.is_registered(obj) and not isinstance(obj, type):
        entry = P.info(type(obj))
        return TupleValue(tuple(constant_value(getattr(obj, f.name)) for f in entry.fields), type(obj))
    if obj is None:  # np.newaxis in an index
        return C.Const(None)
    if isinstance(obj, (bool, np.bool_)):
        return C.Const(bool(obj))
    if isinstance(obj, (int, np.integer)):
        return C.Const(int(obj))
    if isinstance(obj, (float, np.floating)):
        return C.Const(float(obj))
    if isinstance(obj, tuple) and all(isinstance(v, (bool, int, float, np.number)) for v in obj):
        return TupleValue(tuple(constant_value(v) for v in obj))
    return Denotation(obj)


_opaque: dict = {}


def opaque_primitive(obj, path) -> Primitive:
    module, name = path
    key = id(obj)
    if key not in _opaque:
        qualified = f"{module}.{name}"
        _opaque[key] = Primitive(
            qualified,
            lambda args, q=qualified: f"{q}({', '.join(map(str, args))})",
            (),
            None,
            result="float",
            no_rule=("DP102", f"'{qualified}' has no source to differentiate and no derivative rule",
                     f"register one with @diffprog.derivative(of={qualified}), or wrap the argument in "
                     "diffprog.no_derivative(...) if no derivative is wanted"),
            imports=(module,),
        )
    return _opaque[key]


def lower(parsed: ParsedFunction, reporter: Reporter) -> C.Function:
    return Lowerer(reporter).lower_function(parsed)
