"""Transforms called inside differentiated code: `dp.grad(g)(x)`, `dp.value_and_grad(g)(x)`, `dp.jvp(g, ...)`,
`dp.hvp(g, ...)` in the body of a function that is itself compiled or differentiated.

Lowering does not know argument types, and the derivative of `g` depends on them (which arguments carry
tangents, the types of adjoints), so lowering emits a *placeholder* per result of the transform: an assignment
of a `NestedPrimitive` applied to the call's arguments. At specialization, once the outer function's parameter
types are known, `compiler.expand_nested` replaces each group of placeholders with the derived core code of `g`
(the same `DerivativeCompiler`/`TangentCompiler` pipeline the top-level `grad(grad(f))` and `hvp` use), its
variables renamed apart, like any inlined helper. From then on it is ordinary core code, so the outer function's
own transforms differentiate through it (a gradient of a gradient, a tangent of an adjoint).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import DifferentiabilityError
from ..ir import core as C
from ..ir import types as T
from ..rules.registry import Primitive

if TYPE_CHECKING:
    from .lower.host import TransformHost


@dataclass(eq=False)
class NestedCall:
    """One transform call site in the lowered code.

    kind: "call" (a derived compiler called with the arguments as they are: grad, value_and_grad, jvp_function),
    "jvp" (arguments: primals, then one tangent per primal) or "hvp" (primals, then the vector).
    compiler: the derived compiler for "call", else the compiler of the function the transform is applied to.
    """

    kind: str
    compiler: object
    nargs: int
    outputs: int
    origin: object  # errors.Origin of the user's call
    label: str  # a readable prefix for the spliced variables: grad_inner, jvp_inner
    title: str  # how the user wrote it, for diagnostics: "diffprog.grad(inner)"
    primals: int = 0  # jvp/hvp: how many of the arguments are primals (the tangents follow)
    user: int = 0  # hvp: primals the user passed (captured variables of a nested def follow them)
    # per argument ("call") or per primal (jvp, hvp): the layout (types.layout.Node) of a registered-type value,
    # passed as one argument per field; None for numbers and arrays. None when no value has a registered type.
    layouts: tuple | None = None
    host: TransformHost | None = None  # of the lowering that made the call: derives it at argument types
    prims: list = field(default_factory=list)
    derived: dict = field(default_factory=dict)  # argument types -> Derived, or the error deriving raised

    def __post_init__(self):
        self.prims = [NestedPrimitive(f"nested:{self.label}:{k}", _placeholder(f"nested:{self.label}:{k}"), (), None,
                                      result=lambda ts, k=k: self.result_type(k, ts), vjps=_all_arguments,
                                      call=self, index=k)
                      for k in range(self.outputs)]

    def result_type(self, k, arg_types):
        """The type of result k for these argument types: exact once `g` can be derived for them; a float
        while the type inference has not settled (the placeholder is expanded with the final types)."""
        try:
            derived = self.host.derive_nested(self, tuple(arg_types))
        except DifferentiabilityError:  # not derivable (yet): reported when the placeholder is expanded
            return T.FLOAT
        return derived.result_types[k]


@dataclass(eq=False)
class NestedPrimitive(Primitive):
    call: NestedCall | None = None
    index: int = 0


def _placeholder(name):
    """How a placeholder prints when the code is shown before the `nested` pass expands it (dp.source(after=
    "lower"), DIFFPROG_DUMP=lower): `nested:grad_g:0(x)`, which is not Python, so that code still holding one
    can never be imported and run."""
    return lambda args: f"{name}({', '.join(args)})"


def _all_arguments(ranks):
    return (None,) * len(ranks)  # not a rule: every argument flows into the result (activity, checker)


@dataclass
class Derived:
    """g's derived core function, and how it connects to the placeholders: `arguments[j]` is the position among
    the call's arguments that parameter j takes; `results[k]` is the index of the function's result placeholder
    k receives, or None for a None result (hvp's entry for an int argument)."""

    function: C.Function
    arguments: tuple
    results: tuple
    result_types: tuple
    warnings: tuple = ()  # what deriving g warned about (DP201 in g), shown when the call is expanded


def has_nested(block) -> bool:
    return any(_nested_call(stmt) is not None for stmt, _ in C.walk(block))


def _nested_call(stmt):
    if isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and isinstance(stmt.value.prim, NestedPrimitive):
        return stmt.value.prim.call
    return None


def first_nested(block):
    """(block, index, NestedCall) of the first placeholder in program order, or None."""
    for k, stmt in enumerate(block):
        call = _nested_call(stmt)
        if call is not None:
            return block, k, call
        for child in C.children(stmt):
            found = first_nested(child)
            if found is not None:
                return found
    return None


def splice(block, index, call, derived: Derived, names):
    """Replaces the placeholders of `call` starting at block[index] with `derived`'s code, its variables renamed
    apart (`grad_inner_x_adj`), its parameters bound to the call's arguments and its results to the placeholders'
    targets."""
    group = []
    k = index
    while k < len(block) and _nested_call(block[k]) is call:
        group.append(block[k])
        k += 1
    args = group[0].value.args
    targets = {stmt.value.prim.index: stmt.target for stmt in group}
    function = copy.deepcopy(derived.function)
    assigned = C.assigned(function.body)
    mapping, prologue = {}, []
    for param, position in zip(function.params, derived.arguments):
        arg = args[position]
        if isinstance(arg, C.Var) and param not in assigned:
            mapping[param] = arg.name  # read only: the caller's variable itself
        else:
            mapping[param] = names.claim(f"{call.label}_{param}")
            prologue.append(C.Assign(mapping[param], arg, call.origin))
    for name in sorted(_all_names(function) - set(mapping)):
        mapping[name] = names.claim(f"{call.label}_{name}")
    body = _rename_block(function.body, mapping, call.origin)
    epilogue = []
    for k, target in sorted(targets.items()):
        source = derived.results[k]
        value = C.Const(None) if source is None else C.rename_atom(function.results[source], mapping)
        epilogue.append(C.Assign(target, value, call.origin))
    block[index:index + len(group)] = prologue + body + epilogue


def _all_names(function) -> set:
    found = set(function.params) | set(C.atom_vars(function.results)) | C.assigned(function.body)
    for stmt, _ in C.walk(function.body):
        found.update(C.reads(stmt))
    return found


def _within(origin, site):
    """A spliced statement's origin: in g's source, reached through the call site (for diagnostics)."""
    if origin is None:
        return site
    return replace(origin, chain=tuple(site.chain) + (site,) + tuple(origin.chain))


def _rename_block(block, mapping, site) -> list:
    out = []
    for stmt in block:
        origin = _within(stmt.origin, site)
        if isinstance(stmt, C.Assign):
            value = stmt.value
            value = C.rename_call(value, mapping) if isinstance(value, C.Call) else C.rename_atom(value, mapping)
            out.append(C.Assign(mapping[stmt.target], value, origin))
        elif isinstance(stmt, C.Store):
            out.append(C.Store(mapping[stmt.base], tuple(C.rename_atom(i, mapping) for i in stmt.index),
                               C.rename_atom(stmt.value, mapping), origin))
        elif isinstance(stmt, C.Effect):
            out.append(C.Effect(C.rename_call(stmt.call, mapping), origin))
        elif isinstance(stmt, C.If):
            out.append(C.If(C.rename_atom(stmt.cond, mapping), _rename_block(stmt.body, mapping, site),
                            _rename_block(stmt.orelse, mapping, site), origin))
        elif isinstance(stmt, C.ForRange):
            out.append(C.ForRange(mapping[stmt.var], C.rename_atom(stmt.start, mapping),
                                  C.rename_atom(stmt.stop, mapping), C.rename_atom(stmt.step, mapping),
                                  _rename_block(stmt.body, mapping, site), origin))
        elif isinstance(stmt, C.While):
            out.append(C.While(mapping[stmt.cond], _rename_block(stmt.body, mapping, site), origin))
        else:  # pragma: no cover - a statement kind added to the core language
            raise TypeError(f"cannot splice {type(stmt).__name__}")
    return out
