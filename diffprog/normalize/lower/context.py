"""What every part of the lowering shares: the block being emitted into, the scope being lowered, names, places
for diagnostics, and reading names. The statement, expression, call and record parts (mixins of `Lowerer`) all
emit through this one context, because inlining interleaves them: a call inside an expression lowers a callee's
statements into the caller's block.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import gast

from ...errors import Reporter
from ...frontend.resolve import MISSING, lookup_free_name
from ...frontend.source import ParsedFunction
from ...ir import core as C
from ...rules import Primitive
from ...custom_types import protocol as P
from ..names import NameAllocator
from .host import TransformHost
from .values import Binding, Denotation, LocalDef, ShapeValue, TupleValue, Value, constant_value
from ... import codes


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


class LoweringContext:
    """The emission state of one lowering, and the operations on it every part of the lowering uses."""

    def __init__(self, reporter: Reporter, host: TransformHost, names: NameAllocator | None = None):
        self.reporter = reporter
        self.host = host  # what transforms called in the lowered code (`dp.grad(g)(x)`) are made with
        self.names = names if names is not None else NameAllocator()
        self.block: list = []
        self.inline_stack: list = []
        self.call_sites: list = []  # Origins of the calls being inlined, outermost first (for diagnostics)
        self.scope: Scope | None = None
        self._assigned: set = set()  # core names given a number (to catch tuple/number mix-ups)
        self._argument_arrays: set = set()  # core names of the differentiated function's own arguments
        self._returns_tuple = False
        self._under_construction: set = set()  # field names of registered values whose __init__ is inlined
        self.result_layouts: tuple = ()
        self.returns_user_tuple = False

    def lower_expression(self, node, parsed: ParsedFunction, bindings: dict) -> tuple[list, Value]:
        """(core statements, value) of one expression lowered in a scope of its own, whose names are bound to
        `bindings` (user name -> core name, or a constant): how derivative rule templates are instantiated at a
        call site (transforms/partials.py). Problems go to the reporter, as for a function."""
        outer = self.scope
        self.scope = Scope(parsed, parsed.node, prefix="", bindings=dict(bindings), locals=set(bindings))
        try:
            with self._emitting() as block:
                value = self.expr(node)
        finally:
            self.scope = outer
        return block, value

    # ---- emission ----------------------------------------------------------------------------------------------
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

    def _not_a_number(self, value: Value, node) -> C.Const:
        stand_in = getattr(getattr(value, "obj", None), "__diffprog_number__", None)
        if stand_in is not None:  # a value `diffprog check` cannot see statically: an inactive number
            return C.Const(stand_in)
        if isinstance(value, TupleValue) and value.cls is not None:
            self.reporter.error(codes.NO_TANGENT, f"a {value.cls.__name__} value cannot be used as a number here",
                                self.origin(node), f"use one of its fields ({', '.join(P.info(value.cls).field_names)})"
                                f", or define the operator on {value.cls.__name__}")
            return C.Const(0.0)
        if isinstance(value, TupleValue):
            what = "a tuple"
        elif isinstance(value, ShapeValue):
            what = "an array's shape"
        elif not isinstance(value, Denotation):  # a number, assigned to a name that denotes a function elsewhere
            self.reporter.error(codes.UNSUPPORTED,
                                "a name that refers to a function elsewhere is assigned a number here",
                                self.origin(node), "use a different variable name for the number")
            return C.Const(0.0)
        else:
            obj = value.obj.node if isinstance(value.obj, LocalDef) else value.obj
            what = f"'{getattr(obj, '__name__', None) or getattr(obj, 'name', obj)}'"
        self.reporter.error(codes.UNSUPPORTED, f"{what} cannot be used as a number here", self.origin(node),
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

    def _read_name(self, node) -> Value:
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
            self.reporter.error(codes.UNRESOLVED, f"name '{name}' is not defined", self.origin(node),
                                "define it, or import it at module level")
            return C.Const(0.0)
        return constant_value(obj)

    def _binding_value(self, binding: Binding) -> Value:
        if isinstance(binding, (Denotation, C.Const)):
            return binding
        if isinstance(binding, tuple):
            return TupleValue(tuple(self._binding_value(b) for b in binding), getattr(binding, "cls", None))
        return C.Var(binding)

    def _ever_assigned(self, core):
        return core in self._assigned
