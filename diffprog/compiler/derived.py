"""Derivatives as functions of their own: the generated adjoint or tangent code is ordinary core code, so it can
be compiled, or differentiated again (grad of grad, forward-over-reverse)."""
from __future__ import annotations

import copy

from ..errors import DifferentiabilityError, Diagnostic
from ..ir import core as C
from ..ir import types as T
from ..normalize.cleanup import remove_dead_code, split_self_updates
from ..types import protocol as P
from ..types.boundary import Boundary
from ..types import layout as L
from .function import FunctionCompiler, carries_derivative


class DerivativeCompiler(FunctionCompiler):
    """A derivative of another function, treated as a function of its own: its core code is the generated
    adjoint, which is ordinary core code, so it can be differentiated again (grad of grad).

    It works on the inner function's flattened core: a registered-type argument is one parameter per field,
    and a gradient with respect to one is one result per derivative-carrying field, so derivatives of it are
    derivatives of float and array code. Only its Boundary (the same as the inner function's for the
    arguments; the tangent types' layouts for the gradients) speaks the user's values."""

    derives = True

    def __init__(self, inner: FunctionCompiler, wrt: tuple, outputs: tuple, jit=True):
        self.inner, self.wrt, self.outputs = inner, wrt, outputs
        self.fn = None
        self.jit = jit
        self.parsed = inner.parsed
        self.specializations = {}
        self.last = {}

    def layouts_of(self, args):
        return self.inner.layouts_of(args)

    def boundary(self, layouts) -> Boundary:
        cache_ = self.__dict__.setdefault("_boundaries", {})
        if layouts not in cache_:
            inner = self.inner.boundary(layouts)
            results = []
            for k in self.outputs:
                if k == 0:  # the value (grad needs one number: checked in core_for)
                    results.append(inner.results[0] if inner.results else None)
                    continue
                position = self.wrt[k - 1]
                node = layouts[position] if layouts is not None and position < len(layouts) else None
                results.append(None if node is None else L.tangent_node(node))
            cache_[layouts] = Boundary(layouts, tuple(results), len(self.outputs) > 1, self.parsed.name)
        return cache_[layouts]

    def core_for(self, args):
        ir, core, names = self.inner.build("reverse", self.wrt, args)
        if len(ir.seed_types) != 1 or isinstance(ir.seed_types[0], T.Array) or \
                any(r is not None for r in self.inner.boundary(self.layouts_of(args)).results):
            returns = self.inner.boundary(self.layouts_of(args)).results
            what = f"a {returns[0].cls.__name__}" if len(returns) == 1 and returns[0] is not None else \
                "a tuple" if len(ir.seed_types) != 1 else "an array"
            raise DifferentiabilityError([Diagnostic(
                "DP111", f"grad needs a function returning one number, but '{self.parsed.name}' returns {what}",
                self.parsed.origin(self.parsed.node), "use diffprog.jvp or diffprog.jacobian, or return a sum")])
        ir = copy.deepcopy(ir)
        n = len(ir.params) - len(ir.seed_types)  # the flat arguments (registered types split into fields)
        seeds = [C.Assign(seed, C.Const(1.0), ir.origin) for seed in ir.params[n:]]
        layouts = self.layouts_of(args)
        counts = [L.tangent_count(layouts[k] if layouts is not None else None) for k in self.wrt]
        values = len(core.results)
        flat = []  # ir.results: the values, then one adjoint per derivative-carrying field of each wrt argument
        for k in self.outputs:
            if k == 0:
                flat.extend(range(values))
            else:
                start = values + sum(counts[:k - 1])
                flat.extend(range(start, start + counts[k - 1]))
        results = tuple(ir.results[k] for k in flat)
        derived = C.Function(ir.name, ir.params[:n], seeds + ir.body, results, len(results) > 1, ir.origin,
                             ir.param_origins)
        return remove_dead_code(split_self_updates(derived, names)), names


class TangentCompiler(FunctionCompiler):
    """The tangent map of another function as a function of its own, `(*primals, *tangents) -> tangents out`:
    its core code is the generated forward code (one tangent per float, float-array or registered-type primal
    with derivative-carrying fields, a value of its tangent type for the latter), so it can be differentiated
    again (grad of jvp). Like DerivativeCompiler, it works on the inner function's flattened core."""

    derives = True

    def __init__(self, inner: FunctionCompiler, jit=True, with_value=False):
        self.inner = inner
        self.with_value = with_value  # the values first, then the tangents (jvp called in differentiated code)
        self.fn = None
        self.jit = jit
        self.parsed = inner.parsed
        self.specializations = {}
        self.last = {}

    @property
    def params(self) -> list:
        return list(self.inner.params) + [p + "_dot" for p in self.inner.params]

    def tangent_positions(self, args) -> tuple:
        """Which primals get a tangent, from the types of the primals at the front of `args`."""
        primals = args[:len(self.inner.params)]
        return tuple(k for k, a in enumerate(primals) if carries_derivative(a))

    def layouts_of(self, args):
        """The primals' layouts, then the tangents': a registered primal's tangent is a value of its tangent
        type (checked here: the flat code takes its fields in the primal's order)."""
        n = len(self.inner.params)
        primals = self.inner.layouts_of(args[:n])
        tangents = []
        for j, k in enumerate(self.tangent_positions(args)):
            node = primals[k] if primals is not None else None
            value = args[n + j] if n + j < len(args) else None
            if node is None:
                if P.is_registered(value):
                    raise TypeError(f"the tangent of argument {k} of {self.parsed.name}() is a "
                                    f"{type(value).__name__}, but the argument is a number or an array")
                tangents.append(None)
                continue
            wanted = L.tangent_node(node)
            found = L.layout_of(value) if P.is_registered(value) else None
            if found != wanted:
                raise TypeError(f"the tangent of argument {k} of {self.parsed.name}() (a {node.cls.__name__}) must "
                                f"be a {wanted.cls.__name__} with the argument's nested types, not "
                                f"{type(value).__name__}")
            tangents.append(wanted)
        layouts = (tuple(primals) if primals is not None else (None,) * n) + tuple(tangents)
        extra = len(args) - len(layouts)
        layouts += (None,) * max(extra, 0)
        return layouts if any(node is not None for node in layouts) else None

    def _primal_layouts(self, layouts):
        if layouts is None:
            return None
        primals = tuple(layouts[:len(self.inner.params)])
        return primals if any(node is not None for node in primals) else None

    def boundary(self, layouts) -> Boundary:
        cache_ = self.__dict__.setdefault("_boundaries", {})
        if layouts not in cache_:
            inner = self.inner.boundary(self._primal_layouts(layouts))
            tangents = tuple(None if node is None else L.tangent_node(node) for node in inner.results)
            results = inner.results + tangents if self.with_value else tangents
            user_tuple = True if self.with_value else inner.user_tuple
            cache_[layouts] = Boundary(layouts, results, user_tuple, self.parsed.name)
        return cache_[layouts]

    def core_for(self, args):
        n = len(self.inner.params)
        wrt = self.tangent_positions(args)
        if len(args) != n + len(wrt):
            raise TypeError(f"the tangent map of {self.parsed.name}() takes {n} primals and {len(wrt)} tangents "
                            f"(one per float, float-array or registered-type primal), but {len(args)} arguments "
                            "were given")
        layouts = self.layouts_of(args)  # checks the tangents' types
        ir, core, names = self.inner.build("forward", wrt, args[:n])
        ir = copy.deepcopy(ir)
        values = len(core.results)
        selected, at = [], values  # forward code gives a tangent per flat result; keep the tangent types' fields
        for node in self.inner.boundary(self._primal_layouts(layouts)).results:
            if node is None:
                selected.append(at)
                at += 1
                continue
            selected.extend(at + j for j, (_, in_tangent) in enumerate(node.leaves()) if in_tangent)
            at += node.size
        results = (tuple(ir.results[:values]) if self.with_value else ()) + tuple(ir.results[k] for k in selected)
        derived = C.Function(ir.name, ir.params, ir.body, results, len(results) > 1, ir.origin, ir.param_origins)
        return remove_dead_code(split_self_updates(derived, names)), names

