"""Values of registered differentiable types ("records"): tuples of their fields tagged with the class. Their
construction (dataclass, namedtuple, an inlined `__init__`), field reads and writes, properties, methods,
operators and comparisons (the class's dunders inlined from source), and the tangent protocol called in
differentiated code (diffprog.add / scale / move / zero_tangent).
"""
from __future__ import annotations

import dataclasses
import functools
import inspect

import gast
import numpy as np

from ...frontend.resolve import MISSING
from ...ir import core as C
from ...rules import REGISTRY
from ...custom_types import protocol as P
from .context import LoweringContext
from .values import (Denotation, Fields, TupleValue, Value, _as_binding, _describe_value, _is_typed,
                     _isinstance_of, _leaf_names, _typed_leaves, constant_value)
from ... import codes


class RecordLowering(LoweringContext):
    """Registered-type values: everything about them is decided statically, so each use inlines Python source."""

    def _typed_attribute(self, base: TupleValue, node) -> Value:
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
        self.reporter.error(codes.NO_TANGENT, f"'{node.attr}' is not a field or property of {cls.__name__} "
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
        self.reporter.error(codes.NO_TANGENT, f"{cls.__name__} {what} '{name}'", self.origin(node),
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
        self.reporter.error(codes.UNSUPPORTED, f"operator '{symbol}' is not defined for {kinds}", self.origin(node),
                            f"define {forward} on {owner.cls.__name__} as a Python method")
        return C.Const(0.0)

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
            self.reporter.error(codes.UNSUPPORTED, f"'{symbol}' is not defined for {_describe_value(left)} and "
                                f"{_describe_value(right)}", self.origin(node), fix)
            return C.Const(False)
        if not (_is_typed(left) and _is_typed(right) and left.cls is right.cls):
            self.reporter.error(codes.UNSUPPORTED,
                                f"'==' between {_describe_value(left)} and {_describe_value(right)} is "
                                "always False in Python", self.origin(node),
                                f"compare two {cls.__name__} values, or compare their fields")
            return C.Const(False)
        params = getattr(cls, "__dataclass_params__", None)
        structural = issubclass(cls, tuple) or (params is not None and params.eq)
        arrays = [f.name for f in _all_fields(cls) if f.kind == "array"]
        if not structural or arrays:
            why = (f"its field '{arrays[0]}' is an array (== of arrays is elementwise)" if structural else
                   f"{cls.__name__} has no __eq__, so == compares identity")
            self.reporter.error(codes.UNSUPPORTED, f"'==' between {cls.__name__} values cannot be compiled: {why}",
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

    def _construct(self, cls, node) -> Value:
        """`Quaternion(w, x, y, z)`: the tuple of the field values, tagged with the class."""
        entry = P.info(cls)
        if entry.constructor == "init":
            return self._construct_by_init(cls, entry, node)
        if entry.constructor == "none" or (entry.constructor == "dataclass" and hasattr(cls, "__post_init__")):
            why = "it has a __post_init__" if entry.constructor == "dataclass" else "its constructor has no source"
            self.reporter.error(codes.UNSUPPORTED,
                                f"{cls.__name__}(...) cannot be called in differentiated code: {why}",
                                self.origin(node), f"build the {cls.__name__} outside and pass it in")
            return C.Const(0.0)
        names = entry.field_names
        if len(node.args) > len(names):
            self.reporter.error(codes.UNSUPPORTED, f"{cls.__name__} takes {len(names)} fields, not {len(node.args)}",
                                self.origin(node), f"pass {', '.join(names)}")
            return C.Const(0.0)
        given = dict(zip(names, (self.expr(a) for a in node.args)))
        for keyword in node.keywords:
            if keyword.arg not in names or keyword.arg in given:
                self.reporter.error(codes.UNSUPPORTED,
                                    f"unexpected or repeated argument '{keyword.arg}' for {cls.__name__}",
                                    self.origin(keyword.value), f"its fields are {', '.join(names)}")
                return C.Const(0.0)
            given[keyword.arg] = self.expr(keyword.value)
        defaults = _field_defaults(cls, entry)
        items = []
        for f in entry.fields:
            if f.name not in given and f.name not in defaults:
                self.reporter.error(codes.UNSUPPORTED,
                                    f"missing field '{f.name}' in {cls.__name__}(...)", self.origin(node),
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
                self.reporter.error(codes.UNSUPPORTED,
                                    f"field '{f.name}' of {cls.__name__} takes a {f.cls.__name__}, not "
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

    def _cut(self, value: Value, node) -> Value:
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
            self.reporter.error(codes.UNSUPPORTED, f"{cls.__name__}.__init__ does not set {', '.join(unset)}",
                                self.origin(node), f"assign self.{unset[0]} in __init__")
        return value

    def _store_field(self, target, value, node):
        """`self.a = v` inside an inlined constructor; any other attribute write is a side effect (DP104)."""
        base = self.expr(target.value) if isinstance(target.value, gast.Name) else None
        if isinstance(base, TupleValue) and base.cls is not None and \
                tuple(_leaf_names(_as_binding(base) or ())) in self._under_construction:
            fields = P.info(base.cls).field_names
            if target.attr not in fields:
                self.reporter.error(codes.UNSUPPORTED,
                                    f"'{target.attr}' is not a registered field of {base.cls.__name__}",
                                    self.origin(target), f"its fields are {', '.join(fields)}")
                return
            name = base.items[fields.index(target.attr)].name
            atom = value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, node)
            self._assigned.add(name)
            if atom != C.Var(name):
                self._emit(C.Assign(name, atom, self.origin(node)))
            return
        self.reporter.error(codes.SIDE_EFFECT, f"write to attribute '{target.attr}' of an object", self.origin(target),
                            "return the new value instead of storing it on an object")

    def _protocol_call(self, op, node):
        """diffprog.add / scale / move / zero_tangent inside differentiated code: field by field over the
        tangent fields (move calls the type's own `move` method when it has one)."""
        values = [self.expr(a) for a in node.args]
        if len(values) != (1 if op == "zero_tangent" else 2) or node.keywords:
            self.reporter.error(codes.UNSUPPORTED, f"diffprog.{op} takes {1 if op == 'zero_tangent' else 2} arguments",
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

    def _fieldwise(self, op, a: Value, b: Value, node) -> Value:
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
        self.reporter.error(codes.UNSUPPORTED, f"this tangent has no field '{name}'", self.origin(node),
                            "pass a value of the tangent type")
        return C.Const(0.0)

    def _zero_tangent(self, value: Value, node) -> Value:
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
            self.reporter.error(codes.UNSUPPORTED,
                                "isinstance takes two arguments", self.origin(node), "check the call")
            return C.Const(False)
        value, classes = self.expr(node.args[0]), self.expr(node.args[1])
        decided = _isinstance_of(value, classes.obj) if isinstance(classes, Denotation) else None
        if decided is None:
            self.reporter.error(codes.UNSUPPORTED,
                                "isinstance can only be decided at compile time for registered types",
                                self.origin(node), "test for the registered class, e.g. isinstance(other, "
                                "Quaternion), and treat everything else as a number")
            return C.Const(False)
        return C.Const(decided)


_DUNDERS = {
    "Add": ("__add__", "__radd__", "+"), "Sub": ("__sub__", "__rsub__", "-"), "Mult": ("__mul__", "__rmul__", "*"),
    "Div": ("__truediv__", "__rtruediv__", "/"), "FloorDiv": ("__floordiv__", "__rfloordiv__", "//"),
    "Mod": ("__mod__", "__rmod__", "%"), "Pow": ("__pow__", "__rpow__", "**"),
    "MatMult": ("__matmul__", "__rmatmul__", "@"), "USub": ("__neg__", None, "-"), "UAdd": ("__pos__", None, "+"),
}


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


def _field_defaults(cls, entry) -> dict:
    """Constant defaults of a dataclass's or namedtuple's fields, as core values."""
    if entry.constructor == "namedtuple":
        return {k: constant_value(v) for k, v in getattr(cls, "_field_defaults", {}).items()}
    found = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            found[f.name] = constant_value(f.default)
    return found

