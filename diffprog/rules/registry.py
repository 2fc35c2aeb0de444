"""What a primitive is: how to print it, what type it returns, and its partial derivatives.

A derivative rule is data: one partial derivative per argument, written as a Python expression over the
argument names and `out` (the primitive's result). The reverse transform multiplies each partial by the
result's adjoint; the forward transform multiplies it by the argument's tangent. Partials are lowered into the
core language by the same normalizer as user code, so rules compose with every transform.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import gast

from ..ir import types as T


@dataclass(eq=False)
class Primitive:
    name: str
    template: object  # str.format pattern over the arguments ("math.sin({0})"), or a function of them
    params: tuple  # the names partials use for the arguments
    partials: tuple | None = None  # one expression (or None: no derivative) per argument
    result: object = "float"  # a type-rule name from RESULT_TYPES, or a function of the argument types
    cut: bool = False  # derivative deliberately zero (int, round, //, floor): the checker warns on active use
    effect: bool = False  # kept for its side effect (print)
    adjoint: object = None  # structural rule for primitives without scalar partials (indexing)
    no_rule: tuple | None = None  # (code, message, fix) reported when an active value flows into it
    imports: tuple = ()  # modules the generated code must import to call it
    _parsed: dict = field(default_factory=dict, repr=False)

    @property
    def differentiable(self) -> bool:
        return self.adjoint is not None or (
            self.partials is not None and any(p is not None for p in self.partials)
        )

    def partial(self, k: int):
        """The k-th partial as a gast expression, or None when the result does not depend on argument k."""
        if self.partials is None or self.partials[k] is None:
            return None
        if k not in self._parsed:
            self._parsed[k] = gast.parse(self.partials[k], mode="eval").body
        return self._parsed[k]

    def result_type(self, arg_types):
        rule = RESULT_TYPES[self.result] if isinstance(self.result, str) else self.result
        return rule(arg_types)

    def render(self, args) -> str:
        return self.template(args) if callable(self.template) else self.template.format(*args)

    def __repr__(self):
        return f"<primitive {self.name}>"

    def __deepcopy__(self, memo):
        return self  # primitives are shared, immutable definitions


def _element_type(arg_types):
    array = arg_types[0]
    if not isinstance(array, T.Array):
        raise TypeError(f"cannot index a value of type {array}")
    kind = T.FLOAT if T.np.dtype(array.dtype).kind == "f" else T.INT
    return kind if array.ndim == len(arg_types) - 1 else T.Array(array.dtype, array.ndim - len(arg_types) + 1)


RESULT_TYPES = {
    "float": lambda ts: T.FLOAT,
    "int": lambda ts: T.INT,
    "bool": lambda ts: T.BOOL,
    "numeric": lambda ts: T.numeric_join(*ts),
    "same": lambda ts: ts[0],
    "element": _element_type,
    "none": lambda ts: T.Opaque("NoneType"),
}


class Registry:
    """Maps Python objects (math.sin, builtins.abs) and operator names ("Add") to primitives."""

    def __init__(self):
        self._by_object: dict = {}
        self._by_name: dict = {}

    def add(self, prim: Primitive, *keys) -> Primitive:
        """Keys are operator names, Python objects, or (object, number of arguments) pairs."""
        self._by_name[prim.name] = prim
        for key in keys:
            obj, nargs = key if isinstance(key, tuple) else (key, None)
            self._by_object[_key(obj, nargs)] = prim
        return prim

    def lookup(self, obj, nargs=None):
        by_arity = self._by_object.get(_key(obj, nargs))
        return by_arity if by_arity is not None else self._by_object.get(_key(obj, None))

    def named(self, name: str) -> Primitive:
        return self._by_name[name]

    def names(self):
        return sorted(self._by_name)


def _key(obj, nargs):
    # Functions are keyed by identity (they need not be hashable); strings name operators.
    return (obj if isinstance(obj, str) else id(obj)), nargs


REGISTRY = Registry()


def primitive(name, template, params, *partials, keys=(), **options) -> Primitive:
    """Declares a primitive in one line: `primitive("math.sin", "math.sin({0})", "x", "math.cos(x)")`."""
    params = tuple(p.strip() for p in params.split(",")) if params else ()
    if partials and len(partials) != len(params):
        raise ValueError(f"{name}: {len(params)} parameters but {len(partials)} partials")
    prim = Primitive(name, template, params, tuple(partials) if partials else None, **options)
    return REGISTRY.add(prim, *keys)
