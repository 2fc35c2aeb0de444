"""What a primitive is: how to print it, what type it returns, and its partial derivatives.

A derivative rule is data: one partial derivative per argument, written as a Python expression over the
argument names and `out` (the primitive's result). The reverse transform multiplies each partial by the
result's adjoint; the forward transform multiplies it by the argument's tangent. Partials are lowered into the
core language by the same normalizer as user code, so rules compose with every transform.
"""
from __future__ import annotations

import contextlib
import itertools
import types
from dataclasses import dataclass, field

import gast

from ..frontend.freshness import RECORDING, bump_world, record_lookup
from ..ir import types as T
from .. import codes


@dataclass(frozen=True)
class Traits:
    """What a primitive is, beyond its derivative: the facts later stages rely on, declared with the primitive.

    A trait is a promise: a stage may transform code more freely where a primitive declares one, and must assume
    the worst where it does not (the defaults claim nothing). So a trait is declared only where it is true for
    every argument the primitive may get; leaving one out is always safe, and at worst misses an optimization.
    """

    view_of: int | None = None
    """The argument the result may share memory with (a slice, a transpose, a reshape of a contiguous array, the
    argument itself), or None. "May": getitem with a number index gives a number, unbroadcast gives a new array
    when it sums. backend/in_place.py follows views to the buffer they show (a buffer zeroed in place must not be
    shown by a view still read); analysis/check.py asks `aliases_differentiably` (below)."""

    fresh: bool = False
    """The result never shares memory with an argument: a new array, or a number. backend/in_place.py: a reader
    that makes a fresh result keeps no reference to the buffer it reads, which may then be zeroed in place.
    Exclusive with view_of and with writes."""

    writes: tuple = ()
    """Positions of the array arguments the primitive changes in place (adjoint updates: `x_adj += t`,
    add_product, add_at, fill_zeros; move_at also zeroes the part of its second argument it moved). It reads
    its other arguments' elements only and keeps no reference to them. A primitive that writes returns nothing,
    or (accumulate, deduct, add_outer: `x = accumulate(x, t)`) the argument it updated. backend/in_place.py:
    whether a statement updates a buffer rather than rebinding it."""

    accumulates: int = 0
    """+1 (accumulate: `x_adj += t`) or -1 (deduct: `x_adj -= t`) for the adjoint updates that add (subtract)
    argument 1 into argument 0, else 0. backend/in_place.py fuses a product term and its addition into one
    update; transforms/reverse/adjoints.py recognises the addition of an outer product."""

    added_into: str | None = None
    """The updater (a primitive name) adding this primitive's result into an array, the updater's first argument,
    without making an array for the result: `update(target, *args)` is `target += prim(*args)`. mul -> add_product,
    matmul -> add_matmul (effects: only in code that runs, backend/in_place.py), np.outer -> add_outer (an
    expression, differentiable again: transforms/reverse/adjoints.py rewrites with it)."""

    sums_to_shape: bool = False
    """Sums argument 0 over the axes the shape given by the other arguments broadcast (unbroadcast, and its
    extents forms); the result is argument 0 itself where nothing is summed. backend/in_place.py: such a term is
    added into an adjoint of that shape as one in-place update."""

    shape_only: tuple = ()
    """Positions of arguments read only for their shape, never for their elements (np.zeros_shape(x), len(x),
    unbroadcast(t, like)). analysis/check.py: a statement reading an array only for its shape cannot see a
    write it missed; transforms/reverse/extents.py: the backward sweep may keep only such an array's extents."""

    extents_form: str | None = None
    """With shape_only: the family of primitives computing the same from the extents of the shape-only argument
    (saved as one int per axis), named `extents_form + str(rank)` and taking the other arguments, then the
    extents; "extent" for `shape`, whose result is the extent itself. transforms/reverse/extents.py."""

    reusable_zeros: tuple | None = None
    """For the zeros an adjoint restarts at (np.zeros_shape(x), zeros_extents{rank}): the names of the two
    primitives testing a buffer's shape against the shape these arguments give, (equal, different).
    backend/in_place.py recognises adjoint buffers by these, and zeroes a buffer in place instead of allocating
    a new one when the test says the shape is unchanged."""

    takes_any_layout: bool = False
    """Reads its array arguments through any strides, a stride-0 broadcast view included, without writing them
    (but for `writes`) or keeping a reference to them. backend/in_place.py: an adjoint that only ever receives one
    term may be read as that term, a read-only broadcast view, by such readers only."""

    hoistable: bool = False
    """Pure and cannot raise for the arguments it is typed for, so computing it before a loop, even one that runs
    zero times, is safe. normalize/cleanup.py (loop-invariant code motion). Division, indexing and powers can
    raise in compiled code and are not."""

    cheap_for: frozenset = frozenset()
    """The kinds of result ("int", "array", or "any") for which the backward sweep recomputes the value rather
    than taping it: memory reads are cheap for any result, index arithmetic on ints, elementwise arithmetic on
    arrays (one pass over the elements, as copying it onto a tape would be). transforms/reverse/plan.py."""

    new_buffer: bool = False
    """Makes a new array whose elements do not depend on the arguments' values: a tape, or an adjoint or tangent
    buffer that generated code then writes into (zeros_like, tape_empty_*). transforms/forward.py: its tangent is
    a new buffer made the same way (batched: by the primitive `lane_alike` names), and no derivative flows in."""

    regrows: bool = False
    """The result holds argument 0's elements, in the same buffer or a larger copy (tape_reserve): forward modes
    regrow the tangent alongside (batched: by the primitive `lane_alike` names); only argument 0 flows in."""

    @property
    def is_view(self) -> bool:
        return self.view_of is not None


FRESH = Traits(fresh=True)


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
    inline_primal: object = None  # user rules (rules/user.py) on a function with source: that function, inlined
    #                               for the value, whose result is the primitive's last argument
    scalar_partials: bool = False  # partials valid for number arguments only (user rules' tangent rules)
    traits: Traits = field(default_factory=Traits)  # what the primitive is, for later stages (see Traits)
    lane_jvps: object = None  # batched forward mode (transforms/batched.py): tangent contributions with a
    #                           trailing lane axis, as `jvps` (rules/lane_rules.py explains the templates)
    lane_joins: dict | None = None  # batched: a tangent joining the arguments' tangents as the primal joins the
    #                                 arguments: argument rank -> the joining primitive's name
    lane_alike: str | None = None  # batched: the primitive making the tangent of a new_buffer or regrows primitive
    positional_options: tuple = ()  # static options also given by position after the data arguments, in order
    #                                 (np.sum(x, 1), np.linalg.norm(x, 'fro')): normalize/lower/calls.py
    shape_form: str | None = None  # the variant taking a shape as an array whose shape it is (np.zeros(x.shape)
    #                                -> np.zeros_shape(x)), for the tuple argument: normalize/lower/calls.py
    single_form: str | None = None  # the primitive for one value given where the tuple argument goes, not a tuple:
    #                                 np.array(x) (0-d), np.vstack(A) (A's rows): normalize/lower/calls.py
    variants: dict = field(default_factory=dict)  # the keyword variants (np.sum(x, axis=1, keepdims=True)) by the
    #                                               options they take (`options`, `variant`), declared with them
    label: str | None = None  # the function's name in diagnostics, where the primitive's name is not it (user rules)
    _parsed: dict = field(default_factory=dict, repr=False)

    @property
    def differentiable(self) -> bool:
        return self.adjoint is not None or self.vjps is not None or (
            self.partials is not None and any(p is not None for p in self.partials)
        )

    def aliases_differentiably(self) -> bool:
        """Whether the result may share memory with an argument through which derivatives flow: a write to the
        one is then a write to the other that the adjoint of the other does not see (analysis/check.py).
        no_derivative is a view of its argument but passes no derivative, spread_like passes none either."""
        return self.traits.view_of is not None and self.depends_on(self.traits.view_of)

    def variant(self, given: dict):
        """The variant taking the static keyword options `given` (defaults already dropped), or None: the one whose
        key (see `options`) names every given option, by name where the variant takes its value, by name and
        value where the value selects the variant (keepdims=True, ord='fro'; 2.0 and 2 are the same order)."""
        try:
            key = frozenset(name if name in self.takes else (name, value) for name, value in given.items())
            return self.variants.get(key)
        except TypeError:  # an unhashable value selects no variant
            return None

    @property
    def takes(self) -> frozenset:
        """The options whose value a variant takes (its templates' `{axis}`), as opposed to those selecting it."""
        return frozenset(name for key in self.variants for name in key if isinstance(name, str))

    def declare_variant(self, key: frozenset, variant: "Primitive") -> "Primitive":
        if key in self.variants:
            raise ValueError(f"{self.name} already has a variant for {describe_options(key)}")
        self.variants[key] = variant
        return variant

    def lane_jvp(self, k: int, ranks: tuple):
        """Batched forward mode: the template (text) of argument k's tangent contribution with lanes last, None
        when the result does not depend on argument k; KeyError when there is no batched rule at these ranks."""
        rules = self.lane_jvps
        table = rules.get(ranks) if isinstance(rules, dict) else rules(ranks) if callable(rules) else rules
        if table is None:
            raise KeyError(self.name)
        return table[k]

    @property
    def has_lane_rule(self) -> bool:
        return self.lane_jvps is not None or self.lane_joins is not None

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
                codes.NO_RULE, f"forward mode has no tangent rule for {self.name} on array arguments: its derivative "
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
        """The result type for these argument types; TypeError when they do not fit. A rule written for arrays
        that is given a number (`np.sum(x, axis=1)` with x a float) fails on a missing `.ndim` or `.dtype`: that
        is the same type error, not a bug to report as one."""
        rule = RESULT_TYPES[self.result] if isinstance(self.result, str) else self.result
        try:
            return rule(arg_types)
        except (AttributeError, IndexError) as error:
            kinds = ", ".join(map(str, arg_types))
            raise TypeError(f"an operand is not an array of the rank it needs ({kinds})") from error

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
    "bool": lambda ts: T.BOOL if ts and all(t == T.Opaque("str") for t in ts) else T.broadcast(ts, "bool"),
    "numeric": lambda ts: T.broadcast(ts),
    "same": lambda ts: ts[0],
    "element": _element_type,
    "none": lambda ts: T.Opaque("NoneType"),
}


class Registry:
    """The rule set: maps Python objects (math.sin, builtins.abs) and operator names ("Add") to primitives, and
    holds the template namespace, the functions rule templates may call besides math, np and rt (user rule
    functions, under unique names: rules/user.py; transforms/partials.py lowers templates in it).

    A key is an operator name, a Python object, or an (object, number of arguments) pair; an object alone
    stands for the object with any number of arguments. Code outside this module changes the rule set through
    `register`, `unregister`/`restore` and `expose` only, and undoes a batch of changes with `overlay()`."""

    def __init__(self):
        self._by_object: dict = {}
        self._by_name: dict = {}
        self._namespace: dict = {}
        self.template_namespace = types.MappingProxyType(self._namespace)  # read-only, always current
        self._counter = itertools.count()

    def register(self, prim: Primitive, *keys) -> Primitive:
        """Makes `prim` what `named(prim.name)` and each of `keys` find, replacing what they found before."""
        self._by_name[prim.name] = prim
        for key in keys:
            self._by_object[_key(*_split(key))] = prim
        bump_world()
        return prim

    def lookup(self, obj, nargs=None, exact: bool = False):
        """The primitive for calling `obj` with `nargs` arguments: registered for that number, else for any
        number (unless `exact`); None when there is none."""
        found = self._lookup(obj, nargs, exact)
        if RECORDING[0]:  # a compilation depends on this answer (frontend/freshness.py)
            record_lookup(("rule", _key(obj, nargs), exact), lambda: self._lookup(obj, nargs, exact), found)
        return found

    def _lookup(self, obj, nargs, exact):
        by_arity = self._by_object.get(_key(obj, nargs))
        if by_arity is not None or exact:
            return by_arity
        return self._by_object.get(_key(obj, None))

    def unregister(self, key):
        """Removes the primitive registered under `key` (as `register` takes keys) and returns it, or None."""
        bump_world()
        return self._by_object.pop(_key(*_split(key)), None)

    def restore(self, key, prim) -> None:
        """Puts back what `unregister(key)` or `lookup(..., exact=True)` returned: `prim`, or no entry for None."""
        if prim is None:
            self.unregister(key)
        else:
            self._by_object[_key(*_split(key))] = prim
            bump_world()

    def expose(self, fn, label: str) -> str:
        """Adds `fn` to the template namespace under a new unique name (`{label}_{n}_{fn.__name__}`), which rule
        templates then call it by; returns that name."""
        name = f"{label}_{next(self._counter)}_{getattr(fn, '__name__', 'fn')}"
        self._namespace[name] = fn
        return name

    def snapshot(self) -> tuple:
        """Every table as it is now (equal snapshots: the same rules)."""
        return dict(self._by_object), dict(self._by_name), dict(self._namespace)

    @contextlib.contextmanager
    def overlay(self):
        """Whatever is registered, unregistered or exposed inside the block is undone at its end: every table
        is restored as it was on entry."""
        saved = self.snapshot()
        try:
            yield self
        finally:
            for table, before in zip((self._by_object, self._by_name, self._namespace), saved):
                table.clear()
                table.update(before)
            bump_world()

    def named(self, name: str) -> Primitive:
        return self._by_name[name]

    def names(self):
        return sorted(self._by_name)

    def has(self, name: str) -> bool:
        return name in self._by_name

    def variant(self, base: Primitive, given: dict):
        """The variant of `base` taking the static keyword options `given`, or None (Primitive.variant)."""
        return base.variant(given)


def _split(key):
    return key if isinstance(key, tuple) else (key, None)


def _key(obj, nargs):
    # Functions are keyed by identity (they need not be hashable); strings name operators.
    return (obj if isinstance(obj, str) else id(obj)), nargs


REGISTRY = Registry()


def options(*taken, **selecting) -> frozenset:
    """The key of a keyword variant: the options whose value it takes (a static option of its templates,
    `axis`), and those whose value selects it (`keepdims=True`, `ord="fro"`): `options("axis", keepdims=True)`."""
    return frozenset(taken) | frozenset(selecting.items())


def describe_options(key: frozenset) -> str:
    """A variant's options as a call writes them, for diagnostics: "axis=k, keepdims=True"."""
    return ", ".join(sorted(f"{entry}=k" if isinstance(entry, str) else f"{entry[0]}={entry[1]!r}" for entry in key))


def primitive(name, template, params, *partials, keys=(), variant_of=None, **fields) -> Primitive:
    """Declares a primitive in one line: `primitive("math.sin", "math.sin({0})", "x", "math.cos(x)")`.
    `variant_of=(base, key)`: the primitive is the variant of `base` (a primitive or its name) for the keyword
    options `key` (`options(...)`)."""
    params = tuple(p.strip() for p in params.split(",")) if params else ()
    if partials and len(partials) != len(params):
        raise ValueError(f"{name}: {len(params)} parameters but {len(partials)} partials")
    prim = Primitive(name, template, params, tuple(partials) if partials else None, **fields)
    if variant_of is not None:
        base, key = variant_of
        (REGISTRY.named(base) if isinstance(base, str) else base).declare_variant(key, prim)
    return REGISTRY.register(prim, *keys)
