"""The kinds of value lowering passes around, and what is known about them statically.

Lowering evaluates an expression to one of a few kinds of value (see `Value`): a core atom (a variable or a
constant), a tuple of values (tagged with its class when it is a value of a registered differentiable type), an
array's shape, or a compile-time object (a module, a function, a class, a nested def, a transform such as
`dp.grad(g)`). Names are bound to `Binding`s: the core name(s) that hold a value, or the compile-time object.
The helpers here look at values only; they emit nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Union

import gast
import numpy as np

from ...ir import core as C
from ...custom_types import layout as L
from ...custom_types import protocol as P

if TYPE_CHECKING:
    from .context import Scope


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


Value = Union[C.Var, C.Const, TupleValue, ShapeValue, Denotation]
"""What lowering an expression gives. A Denotation's object may be a LocalDef (a nested def), a Transform
(`dp.grad(g)`), AMBIGUOUS, or any Python object known at compile time (a module, a function, a class)."""

Binding = Union[str, tuple, Fields, Denotation, C.Const]
"""What a scope binds a user name to: a core name, a (nested) tuple of bindings (Fields for a registered-type
value), a compile-time object, or a constant."""


def _is_typed(value) -> bool:
    return isinstance(value, TupleValue) and value.cls is not None


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


def _describe_value(value) -> str:
    if _is_typed(value):
        return f"a {value.cls.__name__}"
    if isinstance(value, TupleValue):
        return "a tuple"
    return "a number or array" if isinstance(value, (C.Var, C.Const)) else "a function or module"


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
    if not isinstance(value, TupleValue) or value.cls is None:
        return None
    entry = P.info(value.cls)
    return L.Node(value.cls, entry.field_names, tuple(_layout_of_value(item) for item in value.items),
                  tuple(f.tangent for f in entry.fields))


def _same_shape(binding, value) -> bool:
    """Whether core names bound to a tuple can hold `value` (same nesting and lengths)."""
    if isinstance(value, TupleValue):
        return isinstance(binding, tuple) and len(binding) == len(value.items) and all(
            _same_shape(b, v) for b, v in zip(binding, value.items))
    return not isinstance(binding, tuple)


def _class_name(cls) -> str:
    return "a tuple" if cls is None else f"a {cls.__name__}"


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
    if isinstance(obj, str):  # compared with == / != (a mode switch); no derivative
        return C.Const(obj)
    if isinstance(obj, tuple) and all(isinstance(v, (bool, int, float, np.number)) for v in obj):
        return TupleValue(tuple(constant_value(v) for v in obj))
    return Denotation(obj)

