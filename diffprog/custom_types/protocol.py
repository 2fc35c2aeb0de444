"""The tangent protocol: which user classes are differentiable, what their fields are, and their tangent types.

A registered type never reaches numba as an object. The normalizer lowers a value of a registered type to a tuple
of its fields (one core variable per field, recursively), and the API boundary flattens arguments into those
fields and rebuilds results and gradients from them. So what this module records is exactly what both need:
the ordered fields, which of them carry a derivative (the tangent), how to rebuild a value from its fields, and
the tangent type a gradient is returned as.

Kept free of numba (the static checker imports the normalizer, which imports this).
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
import typing
import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import DifferentiabilityWarning
from ..frontend.freshness import RECORDING, bump_world, record_lookup


class NoDerivative:
    """Marker for fields that are not part of a type's tangent: `n: Annotated[int, diffprog.NoDerivative]`.

    Such a field is carried through compiled code as data; no derivative flows into or out of it.

    Example:
        ```python
        from dataclasses import dataclass
        from typing import Annotated
        import numpy as np
        import diffprog as dp

        @dp.differentiable_type
        @dataclass
        class Particles:
            positions: np.ndarray
            count: Annotated[int, dp.NoDerivative]   # data, not differentiated, no warning

        dp.tangent_type(Particles)   # a generated dataclass ParticlesTangent with the field `positions` only
        ```
    """

    def __init__(self):
        raise TypeError("NoDerivative is a marker: write Annotated[T, diffprog.NoDerivative]")


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "float", "int", "bool", "array", "type" (a registered type), "leaf" (a number or array)
    tangent: bool  # part of the tangent: carries a derivative
    cls: type | None = None  # kind == "type": the registered class


@dataclass(eq=False)
class TypeInfo:
    """What diffprog knows about one registered class."""

    cls: type
    fields: tuple  # of Field, in flattening order
    build: object  # callable: the field values (positionally, in order) -> an instance
    tangent_cls: type | None = None  # None until resolved (a type may be its own tangent)
    move: object = None  # register_tangent(move=...): callable (x, t) -> moved x
    constructor: str = "none"  # how compiled code calls cls(...): "dataclass", "namedtuple", "init", "none"

    @property
    def field_names(self) -> tuple:
        return tuple(f.name for f in self.fields)

    def field(self, name):
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def tangent_fields(self) -> tuple:
        return tuple(f for f in self.fields if f.tangent)


_REGISTRY: dict = {}


def info(cls) -> TypeInfo | None:
    """The TypeInfo of a registered class (exact class, then its bases), or None."""
    found = _info(cls)
    if RECORDING[0]:  # a compilation depends on this answer (frontend/freshness.py)
        record_lookup(("type", id(cls)), lambda: _info(cls), found)
    return found


def _info(cls) -> TypeInfo | None:
    found = _REGISTRY.get(cls)
    if found is not None or not isinstance(cls, type):
        return found
    for base in cls.__mro__[1:]:
        if base in _REGISTRY and _REGISTRY[base].constructor != "dataclass":
            return _REGISTRY[base]  # a subclass of a registered plain class keeps its attributes
    return None


def is_registered(value) -> bool:
    """True for an instance of a registered type (fast: runs on every call at the API boundary)."""
    return type(value) in _REGISTRY or (not isinstance(value, (float, int, np.ndarray)) and
                                        info(type(value)) is not None)


# ---- registration ----------------------------------------------------------------------------------------------
def differentiable_type(cls):
    """Class decorator: makes a dataclass differentiable, with its tangent protocol synthesized from its fields.

    Fields may be floats, ints, bools, numpy arrays and other differentiable types (nested to any depth). Float
    and array fields (and nested types) form the tangent; ints and bools do not (with a warning, once per class,
    unless annotated `Annotated[int, diffprog.NoDerivative]` or, for an int, visibly a count: the class's methods
    use it only in `range(...)`, as an index or in a comparison), nor do fields annotated NoDerivative. Methods, properties and
    operators are differentiated from their Python source. The tangent type is the class itself when every field
    is part of the tangent (and it has no `__post_init__`, which could reject a tangent's values), otherwise a
    generated dataclass `<Name>Tangent` with just the tangent fields.

    Example:
        ```python
        import math
        from dataclasses import dataclass
        import diffprog as dp

        @dp.differentiable_type
        @dataclass(frozen=True)
        class Vec2:
            x: float
            y: float

            def norm(self):
                return math.sqrt(self.x * self.x + self.y * self.y)

        def length(v):
            return v.norm()

        dp.grad(length)(Vec2(3.0, 4.0))   # Vec2(x=0.6, y=0.8): a gradient is a value of the tangent type
        ```
    """
    if not isinstance(cls, type):
        raise TypeError("@diffprog.differentiable_type decorates a class")
    if not dataclasses.is_dataclass(cls):
        cls = dataclass(cls)
    hints = _type_hints(cls)
    fields = []
    for f in dataclasses.fields(cls):
        if not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: fields with init=False are not supported in a "
                            "differentiable type")
        fields.append(_field_of(cls, f.name, hints.get(f.name, typing.Any)))
    _register(TypeInfo(cls, tuple(fields), _dataclass_builder(cls), constructor="dataclass"))
    return cls


def register_tangent(cls, fields=(), build=None, move=None):
    """Registers a class you cannot decorate (from another library, a namedtuple, a plain class).

    `fields` names its differentiable attributes; `build(*values)` rebuilds an instance from their values (by
    default `cls(*values)`); `move(x, t)` optionally overrides the step `diffprog.move` takes. Attributes not
    listed are invisible to differentiated code. The tangent type is a generated dataclass with these fields.

    Example:
        ```python
        from collections import namedtuple
        import diffprog as dp

        Point = namedtuple("Point", ["x", "y"])
        dp.register_tangent(Point, fields=("x", "y"))

        def dist2(p):
            return p.x * p.x + p.y * p.y

        dp.grad(dist2)(Point(1.0, 2.0))   # PointTangent(x=2.0, y=4.0)
        ```
    """
    if not isinstance(cls, type):
        raise TypeError("register_tangent takes a class")
    fields = tuple(fields) or tuple(getattr(cls, "_fields", ()))
    if not fields:
        raise TypeError(f"register_tangent({cls.__name__}, fields=(...)): name its differentiable attributes")
    if isinstance(fields, str):
        fields = (fields,)
    entries = []
    for name in fields:
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"register_tangent: field names must be attribute names, not {name!r}")
        entries.append(Field(name, "leaf", True))
    _register(TypeInfo(cls, tuple(entries), build or cls, move=move, constructor=_constructor_kind(cls, fields)))
    return cls


def _constructor_kind(cls, fields) -> str:
    """How compiled code can run `cls(...)`: a namedtuple's fields are its arguments; a plain __init__ with
    source is inlined, its `self.a = ...` writes giving the fields."""
    if issubclass(cls, tuple) and getattr(cls, "_fields", None) == tuple(fields):
        return "namedtuple"
    init = cls.__dict__.get("__init__")
    if inspect.isfunction(init):
        return "init"
    return "none"


def _register(entry: TypeInfo):
    _REGISTRY[entry.cls] = entry
    bump_world()
    entry.tangent_cls = _make_tangent_cls(entry)


def _dataclass_builder(cls):
    return lambda *values: cls(*values)


def _type_hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception:  # unresolvable forward references: fall back to the raw annotations
        return dict(getattr(cls, "__annotations__", {}))


def _field_of(cls, name, hint) -> Field:
    """A field's kind from its annotation."""
    no_derivative = False
    if typing.get_origin(hint) is typing.Annotated:
        args = typing.get_args(hint)
        hint = args[0]
        no_derivative = any(m is NoDerivative or isinstance(m, NoDerivative) for m in args[1:])
    origin = typing.get_origin(hint) or hint
    if isinstance(hint, str):
        kind = {"float": "float", "int": "int", "bool": "bool", "np.ndarray": "array"}.get(hint, "leaf")
        return Field(name, kind, not no_derivative and kind in ("float", "array", "leaf"))
    if hint is bool:
        if not no_derivative:
            _warn_not_differentiable(cls, name, "bool")
        return Field(name, "bool", False)
    if hint is int:
        if not no_derivative and not _used_as_count(cls, name):
            _warn_not_differentiable(cls, name, "int")
        return Field(name, "int", False)
    if hint is float:
        return Field(name, "float", not no_derivative)
    if origin is np.ndarray:
        return Field(name, "array", not no_derivative)
    if isinstance(hint, type) and info(hint) is not None:
        return Field(name, "type", not no_derivative and bool(info(hint).tangent_fields), hint)
    if hint is typing.Any or hint is object:
        return Field(name, "leaf", not no_derivative)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        raise TypeError(f"{cls.__name__}.{name} has type {hint.__name__}, which is not differentiable: decorate "
                        f"{hint.__name__} with @diffprog.differentiable_type (before {cls.__name__})")
    raise TypeError(f"{cls.__name__}.{name}: fields of type {getattr(hint, '__name__', hint)} are not supported "
                    "in a differentiable type (use float, int, bool, np.ndarray or a differentiable type)")


_warned: set = set()  # (file, line, class, field) already warned about: once per class, even when redefined


def _warn_not_differentiable(cls, name, kind):
    """Warns that an int or bool field is not in the tangent (a float field written `int` would silently get no
    derivative), once per class: a class defined again (in a function, a re-run notebook cell, a reloaded
    module) is the same class to its author."""
    try:
        file, line = inspect.getsourcefile(cls), inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        file, line = "<unknown>", 0
    key = (file, line, cls.__qualname__, name)
    if key in _warned:
        return
    warnings.warn_explicit(
        f"field '{name}' of {cls.__name__} is {'an' if kind == 'int' else 'a'} {kind}, so it carries no derivative "
        f"and is not part of the tangent; annotate it Annotated[{kind}, diffprog.NoDerivative] to say so",
        DifferentiabilityWarning, file or "<unknown>", line)
    _warned.add(key)  # after: a warning turned into an error by a filter stays one


def _used_as_count(cls, name) -> bool:
    """Whether the int field `name` is visibly a count or an index, so no float was meant: the class's own methods
    read `self.<name>` and only as one, in `range(...)`, a subscript (`a[self.n]`, `a[:self.n]`) or a comparison
    (`i < self.n`), arithmetic on it included (`range(self.n - 1)`). From the class's source, read only for an int
    field not annotated NoDerivative; without source (or uses), False."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    uses = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == name
            and isinstance(node.value, ast.Name) and node.value.id == "self" and isinstance(node.ctx, ast.Load)]
    return bool(uses) and all(_counts(use, parents) for use in uses)


def _counts(node, parents) -> bool:
    """Whether `node` (a read of an int field, in arithmetic or not) bounds a range, indexes or is compared."""
    parent = parents.get(node)
    while isinstance(parent, (ast.BinOp, ast.UnaryOp)):
        node, parent = parent, parents.get(parent)
    if isinstance(parent, ast.Call):
        return isinstance(parent.func, ast.Name) and parent.func.id == "range" and node in parent.args
    while isinstance(parent, (ast.Slice, ast.Tuple)) and isinstance(parents.get(parent), (ast.Subscript, ast.Slice,
                                                                                          ast.Tuple)):
        node, parent = parent, parents.get(parent)
    if isinstance(parent, ast.Subscript):
        return node is parent.slice
    return isinstance(parent, ast.Compare)


def _make_tangent_cls(entry: TypeInfo):
    """The class itself when every field is in the tangent (and nested types are their own tangents) and its
    constructor takes any field values (no `__post_init__`, which may validate or normalize: a tangent of a unit
    vector is not a unit vector); otherwise a generated dataclass holding the tangent fields, registered in turn."""
    cls = entry.cls
    own = entry.constructor == "dataclass" and not hasattr(cls, "__post_init__") and all(
        f.tangent and (f.kind != "type" or info(f.cls).tangent_cls is f.cls) for f in entry.fields)
    if own:
        return cls
    spec = []
    for f in entry.tangent_fields:
        kind = info(f.cls).tangent_cls if f.kind == "type" else {"float": float, "array": np.ndarray}.get(
            f.kind, typing.Any)
        spec.append((f.name, kind))
    tangent = dataclasses.make_dataclass(f"{cls.__name__}Tangent", spec, frozen=True)
    tangent.__module__ = cls.__module__
    tangent.__qualname__ = f"{cls.__qualname__}Tangent"
    tangent.__doc__ = f"The tangent type of {cls.__name__}: the derivative-carrying fields."
    fields = tuple(Field(name, "type" if isinstance(kind, type) and info(kind) is not None else (
        "float" if kind is float else "array" if kind is np.ndarray else "leaf"), True,
        kind if isinstance(kind, type) and info(kind) is not None else None) for name, kind in spec)
    tangent_entry = TypeInfo(tangent, fields, _dataclass_builder(tangent), constructor="dataclass")
    _REGISTRY[tangent] = tangent_entry
    bump_world()
    tangent_entry.tangent_cls = tangent
    return tangent


def tangent_type(cls):
    """The class gradients with respect to values of `cls` are returned as.

    Example:
        ```python
        dp.tangent_type(Vec2)        # Vec2 itself: every field is a float
        dp.tangent_type(Particles)   # ParticlesTangent: the NoDerivative field is left out
        ```
    """
    entry = info(cls)
    if entry is None:
        raise TypeError(f"{getattr(cls, '__name__', cls)} is not a differentiable type")
    return entry.tangent_cls


# ---- the protocol's operations (Python level; usable by optimizers) --------------------------------------------
def _fields_of(value):
    entry = info(type(value))
    return entry, [getattr(value, f.name) for f in entry.fields]


def zero_tangent(x):
    """The zero tangent at `x`: 0.0 for a float, zeros for an array, the tangent type with zero fields.

    Example:
        ```python
        dp.zero_tangent(2.5)                  # 0.0
        dp.zero_tangent(np.ones(3))           # array([0., 0., 0.])
        dp.zero_tangent(Vec2(3.0, 4.0))       # Vec2(x=0.0, y=0.0)
        ```
    """
    if isinstance(x, np.ndarray):
        return np.zeros_like(x, dtype=np.float64)
    if isinstance(x, (float, int, np.number)):
        return 0.0
    entry = _require(x, "zero_tangent")
    return entry.tangent_cls(*(zero_tangent(getattr(x, f.name)) for f in entry.tangent_fields))


def add(t1, t2):
    """The sum of two tangents (field by field; plain + for floats and arrays).

    Example:
        ```python
        dp.add(Vec2(1.0, 2.0), Vec2(0.5, 0.5))   # Vec2(x=1.5, y=2.5)
        dp.add(1.0, 2.0)                        # 3.0
        ```
    """
    if not is_registered(t1):
        return t1 + t2
    entry = _require(t1, "add")
    values = [add(getattr(t1, f.name), getattr(t2, f.name)) if f.tangent else getattr(t1, f.name)
              for f in entry.fields]
    return entry.build(*values)


def scale(t, s):
    """A tangent times a number (field by field).

    Example:
        ```python
        dp.scale(Vec2(1.0, 2.0), -0.1)   # Vec2(x=-0.1, y=-0.2): e.g. a gradient-descent step
        ```
    """
    if not is_registered(t):
        return t * s
    entry = _require(t, "scale")
    values = [scale(getattr(t, f.name), s) if f.tangent else getattr(t, f.name) for f in entry.fields]
    return entry.build(*values)


def move(x, t):
    """`x` moved by the tangent step `t` (Swift's move(by:)): the type's own `move(self, t)` method when it has
    one (e.g. a unit quaternion that renormalizes), the `move` given to register_tangent, else field-wise x + t.
    This is what optimizers call.

    Example:
        ```python
        v = Vec2(3.0, 4.0)
        for _ in range(100):                       # gradient descent on a registered type
            v = dp.move(v, dp.scale(dp.grad(length)(v), -0.1))

        # A type with its own `move` (a retraction) stays on its manifold, e.g. a unit quaternion that
        # renormalizes after each step: see examples/quaternion_pose.py.
        ```
    """
    if not is_registered(x):
        return x + t
    entry = _require(x, "move")
    own = getattr(type(x), "move", None)
    if callable(own):
        return own(x, t)
    if entry.move is not None:
        return entry.move(x, t)
    values = [move(getattr(x, f.name), getattr(t, f.name)) if f.tangent else getattr(x, f.name)
              for f in entry.fields]
    return entry.build(*values)


def _require(value, what) -> TypeInfo:
    entry = info(type(value))
    if entry is None:
        raise TypeError(f"diffprog.{what}: {type(value).__name__} is not a differentiable type; register it with "
                        "@diffprog.differentiable_type or diffprog.register_tangent")
    return entry
