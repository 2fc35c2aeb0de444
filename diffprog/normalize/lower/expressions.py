"""Expressions and operators on numbers, arrays and tuples: each operation one primitive call assigned to a fresh,
readable name (A-normal form); `and`/`or`, chained comparisons and conditional expressions become plain `if`s.
Operators on registered-type values go to records.py, calls to calls.py.
"""
from __future__ import annotations

import inspect

import gast

from ...frontend.resolve import MISSING, record_attribute
from ...frontend.syntax import report_unsupported
from ...ir import core as C
from ...rules import REGISTRY
from .context import LoweringContext
from .records import _DUNDERS
from .values import (Denotation, ShapeValue, TupleValue, Value, _describe_value, _is_typed, _layout_of_value,
                     _tuple_shape, constant_value)
from ... import codes


class ExpressionLowering(LoweringContext):
    """`expr_<Node>` per gast expression node; each returns a Value."""

    def expr(self, node, hint=None) -> Value:
        if report_unsupported(node, self.scope.parsed, self.reporter):
            return C.Const(0.0)
        method = getattr(self, "expr_" + type(node).__name__, None)
        if method is None:
            self.reporter.error(codes.UNSUPPORTED, f"'{type(node).__name__}' expressions cannot be differentiated",
                                self.origin(node), "rewrite it with arithmetic, calls and if/else")
            return C.Const(0.0)
        return method(node, hint)

    def expr_Constant(self, node, hint):
        if node.value is Ellipsis or isinstance(node.value, (bytes, complex)):
            self.reporter.error(codes.UNSUPPORTED,
                                f"constant {node.value!r} cannot be differentiated", self.origin(node),
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
            self.reporter.error(codes.UNSUPPORTED, f"operator '{type(node.op).__name__}' is not supported on numbers",
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
            self.reporter.error(codes.UNSUPPORTED, "bitwise '~' is not supported", self.origin(node), "use arithmetic")
            return C.Const(0)
        return self._call(prim, (operand,), node, hint)

    def expr_Compare(self, node, hint):
        if len(node.ops) == 1 and isinstance(node.ops[0], (gast.In, gast.NotIn)) and \
                isinstance(node.comparators[0], gast.Tuple):
            return self._membership(node, hint)
        operands = [node.left] + list(node.comparators)
        for op in node.ops:
            if REGISTRY.lookup(type(op).__name__) is None:
                self.reporter.error(codes.UNSUPPORTED, f"comparison '{type(op).__name__}' is not supported",
                                    self.origin(node), "compare numbers with < <= > >= == !=")
                return C.Const(False)
        left, right = self.expr(operands[0]), self.expr(operands[1])
        if _is_typed(left) or _is_typed(right):
            if len(node.ops) > 1:
                self.reporter.error(codes.UNSUPPORTED,
                                    "chained comparisons of registered-type values are not supported",
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

    def _membership(self, node, hint):
        """`mode in ("sum", "total")` (a tuple written out): `mode == "sum" or mode == "total"`; `not in`: the
        `and` of `!=`."""
        negated = isinstance(node.ops[0], gast.NotIn)
        items = node.comparators[0].elts
        if not items:
            return C.Const(negated)
        op = gast.NotEq if negated else gast.Eq
        tests = [gast.copy_location(gast.Compare(left=node.left, ops=[op()], comparators=[item]), node)
                 for item in items]
        if len(tests) == 1:
            return self.expr(tests[0], hint)
        joined = gast.BoolOp(op=gast.And() if negated else gast.Or(), values=tests)
        return self.expr(gast.copy_location(joined, node), hint)

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
            self.reporter.error(codes.UNSUPPORTED,
                                f"the branches of this conditional expression give {_describe_value(values[0])}"
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

    def expr_Attribute(self, node, hint):
        return self._attribute_of(self.expr(node.value), node, hint)

    def _attribute_of(self, base: Value, node, hint=None) -> Value:
        if _is_typed(base):
            return self._typed_attribute(base, node)
        if isinstance(base, Denotation):
            obj = getattr(base.obj, node.attr, MISSING)
            record_attribute(base.obj, node.attr)
            if obj is MISSING:
                self.reporter.error(codes.UNRESOLVED, f"'{node.attr}' is not an attribute of {base.obj!r}",
                                    self.origin(node), "check the name")
                return C.Const(0.0)
            return constant_value(obj)
        if isinstance(base, C.Var) and node.attr == "shape":
            return ShapeValue(base)
        prim = REGISTRY.lookup(f"attr:{node.attr}")
        if isinstance(base, C.Var) and prim is not None:
            return self._call(prim, (base,), node, hint)
        self.reporter.error(codes.NO_TANGENT, f"attribute '.{node.attr}' of a value whose type has no tangent protocol",
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
            self.reporter.error(codes.UNSUPPORTED, f"{base.cls.__name__} values cannot be indexed", self.origin(node),
                                "read its fields by name")
            return C.Const(0.0)
        if isinstance(base, TupleValue):
            if isinstance(index_node, gast.Constant) and isinstance(index_node.value, int) \
                    and -len(base.items) <= index_node.value < len(base.items):
                return base.items[index_node.value]
            self.reporter.error(codes.UNSUPPORTED, "tuples can only be indexed by a constant integer in range",
                                self.origin(node), "unpack the tuple into variables")
            return C.Const(0.0)
        if isinstance(base, ShapeValue):
            return self._call(REGISTRY.named("shape"), (base.array, self._atom(index_node)), node, hint)
        if not isinstance(base, C.Var):
            self.reporter.error(codes.UNSUPPORTED, "only arrays and tuples can be indexed", self.origin(node),
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
