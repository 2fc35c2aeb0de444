"""Derivatives as functions of their own: the generated adjoint or tangent code is ordinary core code, so it can
be compiled, or differentiated again (grad of grad, forward-over-reverse)."""
from __future__ import annotations

from ..errors import DifferentiabilityError, Diagnostic
from ..ir import core as C
from ..ir import types as T
from ..normalize.cleanup import remove_dead_code, split_self_updates
from ..custom_types import protocol as P
from ..custom_types.boundary import Boundary, unregistered_problems
from ..custom_types import layout as L
from . import pipeline
from .function import FunctionCompiler
from .signature import Signature
from .. import codes


class _Derived(FunctionCompiler):
    """What derived compilers share: their code is another compiler's generated code (the `derive` pass), and
    only their Boundary speaks the user's values."""

    derives = True
    front_passes = pipeline.DERIVED_FRONT
    checkpoint = None

    def __init__(self, inner: FunctionCompiler, jit: bool):
        self.inner = inner
        self.fn = None
        self.jit = jit
        self.parsed = inner.parsed
        self.last = {}
        self._boundaries = {}  # argument layouts -> (the inner function's Boundary, Boundary)

    def boundary_of(self, signature: Signature) -> Boundary:
        return self.boundary(signature.layouts)

    @property
    def boundscheck(self):
        """A derivative checks bounds as the function it derives does."""
        return self.inner.boundscheck


class DerivativeCompiler(_Derived):
    """A derivative of another function, treated as a function of its own: its core code is the generated
    adjoint, which is ordinary core code, so it can be differentiated again (grad of grad).

    It works on the inner function's flattened core: a registered-type argument is one parameter per field,
    and a gradient with respect to one is one result per derivative-carrying field, so derivatives of it are
    derivatives of float and array code. Only its Boundary (the same as the inner function's for the
    arguments; the tangent types' layouts for the gradients) speaks the user's values."""

    def __init__(self, inner: FunctionCompiler, wrt: tuple, outputs: tuple, jit=True):
        super().__init__(inner, jit)
        self.wrt, self.outputs = wrt, outputs

    def layouts_of(self, args):
        return self.inner.layouts_of(args)

    def boundary(self, layouts) -> Boundary:
        cache_ = self._boundaries
        inner = self.inner.boundary(layouts)
        if cache_.get(layouts, (None,))[0] is not inner:  # new, or the inner function was lowered again
            results = []
            for k in self.outputs:
                if k == 0:  # the value (grad needs one number: checked in core_for)
                    results.append(inner.results[0] if inner.results else None)
                    continue
                position = self.wrt[k - 1]
                node = layouts[position] if layouts is not None and position < len(layouts) else None
                results.append(None if node is None else L.tangent_node(node))
            cache_[layouts] = inner, Boundary(layouts, tuple(results), len(self.outputs) > 1, self.parsed.name)
        return cache_[layouts][1]

    def derived_core(self, signature) -> tuple:
        """(core code, names): the inner function's adjoint with its seed set to 1.0, returning the results
        asked for (the value, the gradients)."""
        unit = self.inner.compile("reverse", self.wrt, signature, until="reverse")
        ir, core, names = unit.function, unit.primal, unit.names
        inner_results = self.inner.boundary(signature.layouts).results
        if len(ir.seed_types) != 1 or isinstance(ir.seed_types[0], T.Array) or \
                any(r is not None for r in inner_results):
            returns = inner_results
            what = f"a {returns[0].cls.__name__}" if len(returns) == 1 and returns[0] is not None else \
                "a tuple" if len(ir.seed_types) != 1 else "an array"
            raise DifferentiabilityError([Diagnostic(
                codes.NOT_SCALAR,
                f"grad needs a function returning one number, but '{self.parsed.name}' returns {what}",
                self.parsed.origin(self.parsed.node), "use diffprog.jvp or diffprog.jacobian, or return a sum")])
        n = len(ir.params) - len(ir.seed_types)  # the flat arguments (registered types split into fields)
        seeds = [C.Assign(seed, C.Const(1.0), ir.origin) for seed in ir.params[n:]]
        layouts = signature.layouts
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


class TangentCompiler(_Derived):
    """The tangent map of another function as a function of its own, `(*primals, *tangents) -> tangents out`:
    its core code is the generated forward code (one tangent per float, float-array or registered-type primal
    with derivative-carrying fields, a value of its tangent type for the latter), so it can be differentiated
    again (grad of jvp). Like DerivativeCompiler, it works on the inner function's flattened core."""

    def __init__(self, inner: FunctionCompiler, jit=True, with_value=False):
        super().__init__(inner, jit)
        self.with_value = with_value  # the values first, then the tangents (jvp called in differentiated code)

    @property
    def params(self) -> list:
        return list(self.inner.params) + [p + "_dot" for p in self.inner.params]

    def tangent_positions(self, primals: Signature) -> tuple:
        """Which primals get a tangent: the floats, float arrays and registered-type values with
        derivative-carrying fields."""
        return tuple(k for k in range(len(primals)) if primals.carries_derivative(k))

    def signature(self, args) -> Signature:
        n = len(self.inner.params)
        primals = self.inner.signature(args[:n])
        wrt = self.tangent_positions(primals)
        if len(args) != n + len(wrt):
            raise TypeError(f"the tangent map of {self.parsed.name}() takes {n} primals and {len(wrt)} tangents "
                            f"(one per float, float-array or registered-type primal), but {len(args)} arguments "
                            "were given")
        layouts = self._layouts(primals.layouts or (None,) * n, wrt, args[n:])
        return Signature.of(args, layouts, unregistered_problems(args, self.parsed))

    def _layouts(self, primals: tuple, wrt: tuple, tangents: tuple):
        """The primals' layouts, then the tangents': a registered primal's tangent is a value of its tangent
        type (checked here: the flat code takes its fields in the primal's order)."""
        found = []
        for k, value in zip(wrt, tangents):
            node = primals[k]
            if node is None:
                if P.is_registered(value):
                    raise TypeError(f"the tangent of argument {k} of {self.parsed.name}() is a "
                                    f"{type(value).__name__}, but the argument is a number or an array")
                found.append(None)
                continue
            wanted = L.tangent_node(node)
            if (L.layout_of(value) if P.is_registered(value) else None) != wanted:
                raise TypeError(f"the tangent of argument {k} of {self.parsed.name}() (a {node.cls.__name__}) must "
                                f"be a {wanted.cls.__name__} with the argument's nested types, not "
                                f"{type(value).__name__}")
            found.append(wanted)
        layouts = tuple(primals) + tuple(found)
        return layouts if any(node is not None for node in layouts) else None

    def _primal_layouts(self, layouts):
        if layouts is None:
            return None
        primals = tuple(layouts[:len(self.inner.params)])
        return primals if any(node is not None for node in primals) else None

    def boundary(self, layouts) -> Boundary:
        cache_ = self._boundaries
        inner = self.inner.boundary(self._primal_layouts(layouts))
        if cache_.get(layouts, (None,))[0] is not inner:  # new, or the inner function was lowered again
            tangents = tuple(None if node is None else L.tangent_node(node) for node in inner.results)
            results = inner.results + tangents if self.with_value else tangents
            user_tuple = True if self.with_value else inner.user_tuple
            cache_[layouts] = inner, Boundary(layouts, results, user_tuple, self.parsed.name)
        return cache_[layouts][1]

    def derived_core(self, signature) -> tuple:
        """(core code, names): the inner function's forward code, returning the tangents (after the values, with
        `with_value`) as the tangent types' fields."""
        primals = signature.take(len(self.inner.params))
        unit = self.inner.compile("forward", self.tangent_positions(primals), primals, until="forward")
        ir, core, names = unit.function, unit.primal, unit.names
        layouts = signature.layouts
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

