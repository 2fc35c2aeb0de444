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
    array_partials: tuple | None = None  # elementwise partials for array arguments, where `partials` branch
    vjps: object = None  # non-elementwise array primitives: per-argument adjoint contributions over the params,
    #                      `out` and `g` (the result's adjoint); a tuple, or a dict keyed by argument ranks
    jvps: object = None  # their tangent contributions, over the params, `out` and `t` (the argument's tangent)
    options: dict = field(default_factory=dict)  # static keyword arguments (axis=1), usable in rule templates
    tuple_arg: int | None = None  # position of an argument given as a tuple (a shape, arrays to concatenate):
    #                               normalize passes the tuple's elements as separate arguments
    default_options: dict = field(default_factory=dict)  # keyword arguments that change nothing (axis=0)
    components: tuple = ()  # a tuple-valued function (slogdet): the primitives computing each element
    inline_primal: object = None  # user rules (types/rules.py) on a function with source: that function, inlined
    #                               for the value, whose result is the primitive's last argument
    scalar_partials: bool = False  # partials valid for number arguments only (user rules' tangent rules)
    _parsed: dict = field(default_factory=dict, repr=False)

    @property
    def differentiable(self) -> bool:
        return self.adjoint is not None or self.vjps is not None or (
            self.partials is not None and any(p is not None for p in self.partials)
        )

    @property
    def elementwise(self) -> bool:
        """Elementwise primitives differentiate through per-element partials (and broadcasting)."""
        return self.partials is not None

    def partial(self, k: int, arrays: bool = False):
        """The k-th partial as a gast expression, or None when the result does not depend on argument k.
        With `arrays`, the form valid elementwise on arrays (no Python conditionals)."""
        if arrays and self.scalar_partials:
            from ..errors import DifferentiabilityError, Diagnostic

            raise DifferentiabilityError([Diagnostic(
                "DP102", f"forward mode has no tangent rule for {self.name} on array arguments: its derivative "
                "rule was given for numbers", None, "use reverse mode (grad, vjp) for this function")])
        table = self.array_partials if arrays and self.array_partials is not None else self.partials
        if table is None or table[k] is None:
            return None
        return self._parse(table[k])

    def vjp(self, k: int, ranks: tuple):
        """The adjoint contribution to argument k (a gast expression over params, out, g), or None."""
        return self._by_ranks(self.vjps, k, ranks)

    def jvp(self, k: int, ranks: tuple):
        """The tangent contribution of argument k (a gast expression over params, out, t), or None."""
        return self._by_ranks(self.jvps, k, ranks)

    def _by_ranks(self, rules, k, ranks):
        table = rules.get(ranks) if isinstance(rules, dict) else rules(ranks) if callable(rules) else rules
        if table is None:
            raise TypeError(f"{self.name} has no derivative rule for arguments of rank {ranks}")
        return None if table[k] is None else self._parse(table[k])

    def depends_on(self, k: int) -> bool:
        if self.adjoint == "index":
            return k == 0
        if callable(self.vjps):  # variadic (concatenate): every argument flows into the result
            return True
        if self.vjps is not None:
            tables = self.vjps.values() if isinstance(self.vjps, dict) else [self.vjps]
            return any(k < len(t) and t[k] is not None for t in tables)
        return self.partials is not None and k < len(self.partials) and self.partials[k] is not None

    def _parse(self, text):
        if text not in self._parsed:
            self._parsed[text] = gast.parse(text, mode="eval").body
        return self._parsed[text]

    def with_options(self, **options) -> "Primitive":
        """A variant with static keyword arguments (np.sum(x, axis=1)), created once per distinct options;
        its template and rules refer to them by name ("np.sum({0}, axis={axis})")."""
        if not options:
            return self
        key = tuple(sorted(options.items()))
        variants = self._parsed.setdefault("__variants__", {})
        if key not in variants:
            variants[key] = Primitive(**{**self.__dict__, "options": dict(options), "_parsed": {}})
        return variants[key]

    def result_type(self, arg_types):
        rule = RESULT_TYPES[self.result] if isinstance(self.result, str) else self.result
        return rule(arg_types)

    def render(self, args) -> str:
        if callable(self.template):
            return self.template(args)
        return self.template.format(*args, **self.options)

    def __repr__(self):
        return f"<primitive {self.name}>"

    def __deepcopy__(self, memo):
        return self  # primitives are shared, immutable definitions


def _element_type(arg_types):
    """Indexing: integers drop an axis, slices keep one, None adds one, index arrays and masks select along
    the axes they cover."""
    array, index = arg_types[0], arg_types[1:]
    if not isinstance(array, T.Array):
        raise TypeError(f"cannot index a value of type {array}")
    consumed = produced = 0
    for t in index:
        if isinstance(t, T.Scalar):
            consumed += 1
        elif isinstance(t, T.Array):
            consumed, produced = consumed + t.ndim, produced + 1
        elif t == T.Opaque("slice"):
            consumed, produced = consumed + 1, produced + 1
        elif t == T.Opaque("NoneType"):
            produced += 1
        else:
            raise TypeError(f"cannot index an array with a {t}")
    if consumed > array.ndim:
        raise TypeError(f"too many indices for an array of rank {array.ndim}")
    rank = produced + array.ndim - consumed
    if rank == 0:
        return T.FLOAT if T.np.dtype(array.dtype).kind == "f" else T.INT
    return T.Array(array.dtype, rank)


RESULT_TYPES = {
    "float": lambda ts: T.broadcast(ts, "float"),
    "int": lambda ts: T.INT,
    "bool": lambda ts: T.broadcast(ts, "bool"),
    "numeric": lambda ts: T.broadcast(ts),
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

    def has(self, name: str) -> bool:
        return name in self._by_name


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
