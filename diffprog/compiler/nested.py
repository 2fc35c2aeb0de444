"""Transforms called inside differentiated code (normalize/nested.py): each placeholder is replaced by the derived
code of the function the transform is applied to, from the same compilers the top-level composition uses."""
from __future__ import annotations

import copy
import threading
import types
import warnings
from dataclasses import replace

from ..analysis.inference import atom_type, infer_types
from ..errors import DifferentiabilityError, Diagnostic, Reporter
from ..ir import types as T
from ..frontend import freshness
from ..frontend.source import is_library, parsed_function
from ..normalize.lower import API_FUNCTIONS, Transform
from ..normalize.nested import Derived, first_nested, splice
from ..custom_types import layout as L
from .derived import DerivativeCompiler, TangentCompiler
from .front import describe
from . import registry
from .function import FunctionCompiler
from .signature import Signature
from .. import codes


def expand_nested(core, names, param_types) -> tuple:
    """(core, names) with each placeholder of a transform called in the body (`dp.grad(g)(x)`) replaced by g's
    derived code for the argument types at that call, in program order (an expansion settles the types the next
    call sees). `core` and `names` are copied, not changed."""
    core, names = copy.deepcopy(core), copy.deepcopy(names)
    while True:
        found = first_nested(core.body)
        if found is None:
            return core, names
        block, index, call = found
        types = infer_types(core, dict(zip(core.params, param_types)), Reporter())
        arg_types = tuple(atom_type(a, types) for a in block[index].value.args)
        derived = derive_nested(call, arg_types)
        for caught in derived.warnings:
            warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
        splice(block, index, call, derived, names)


_deriving = threading.local()  # the nested calls being derived on this thread: g calling dp.grad(g) recurses


def derive_nested(call, arg_types: tuple) -> Derived:
    """g's derived core function for a transform called inside differentiated code, at these argument types,
    from the pipeline the top-level composition uses (DerivativeCompiler for grad, TangentCompiler for jvp,
    both for hvp). Cached per argument types; problems are reported at the user's call."""
    found, deps = call.derived.get(arg_types, (None, None))
    if found is not None and not deps.fresh():  # g, or something g's code read, was redefined since
        found = None
    if found is not None:
        freshness.merge(deps)
    else:
        active = _deriving.__dict__.setdefault("calls", [])
        if call in active:
            raise DifferentiabilityError([Diagnostic(
                codes.RECURSION, f"{call.title} is called while differentiating the same function (recursion)",
                call.origin, "diffprog inlines derivatives; rewrite the recursion as a loop")])
        active.append(call)
        try:
            with warnings.catch_warnings(record=True) as caught, freshness.Recorder() as recorder:
                warnings.simplefilter("always")  # the warnings are shown when the call is expanded, not guessed
                found = _derive(call, arg_types)
            found.warnings = tuple(caught)
        except DifferentiabilityError as error:
            found = _at_call_site(error, call)
        except (TypeError, ValueError) as error:
            found = DifferentiabilityError([Diagnostic(codes.UNSUPPORTED, f"{call.title}: {error}", call.origin,
                                                       "check the arguments of the call")])
        finally:
            active.pop()
        call.derived[arg_types] = found, recorder.dependencies()
    if isinstance(found, DifferentiabilityError):
        raise found
    return found


def _derive(call, arg_types) -> Derived:
    for k, t in enumerate(arg_types):
        if t is None or (isinstance(t, T.Opaque) and t.pytype != "NoneType"):
            raise DifferentiabilityError([Diagnostic(
                codes.NO_TANGENT, f"argument {k + 1} of {call.title} is {'of unknown type' if t is None else f'a {t}'}",
                call.origin, "pass floats, ints or numpy arrays")])
    n = call.primals
    if call.kind == "call":
        function, _ = call.compiler.front(Signature(call.layouts, tuple(arg_types)))
        arguments, results = tuple(range(len(arg_types))), tuple(range(call.outputs))
    else:
        # jvp/hvp: the primals (registered-type values as their fields, per call.layouts), then a tangent aligned
        # with each flat primal (a registered value's tangent-type fields where its derivative-carrying fields are)
        args = _PointArguments(call, arg_types)
        with_tangent = tuple(k for k in range(len(args.layouts)) if args.carries(k))
        if call.kind == "jvp":
            args.check(with_tangent, "tangent")
            compiler = TangentCompiler(call.compiler, jit=False, with_value=True)
            results = tuple(range(call.outputs))
        else:  # hvp: forward mode over the gradient code, as diffprog.hvp
            wrt = tuple(k for k in range(call.user) if args.carries(k))
            if not wrt:
                raise DifferentiabilityError([Diagnostic(
                    codes.NOT_DIFFERENTIABLE,
                    f"{call.title} needs at least one float or float-array argument", call.origin,
                    "pass a float (e.g. 2.0 instead of 2) or a float array")])
            args.check(with_tangent, "vector entry")
            gradient = DerivativeCompiler(call.compiler, wrt, tuple(range(1, 1 + len(wrt))), jit=False)
            compiler = TangentCompiler(gradient, jit=False)
            counts = [L.tangent_count(args.layouts[k]) for k in wrt]
            flat = []  # per argument of g: its gradient's tangent, field by field; None for an int
            for k in range(call.user):
                if k in wrt:
                    start = sum(counts[:wrt.index(k)])
                    flat.extend(range(start, start + counts[wrt.index(k)]))
                else:
                    flat.extend([None] * L.tangent_count(args.layouts[k]))
            results = tuple(flat)
        function, _ = compiler.front(args.signature(with_tangent))
        arguments = tuple(range(n)) + tuple(p for k in with_tangent for p in args.tangent_positions(k))
    if len(function.params) != len(arguments) or max((r for r in results if r is not None), default=-1) >= \
            len(function.results):  # pragma: no cover - the lowering and the compilers disagree
        raise AssertionError(f"{call.title}: derived code does not match the call")
    types = infer_types(function, {p: arg_types[a] for p, a in zip(function.params, arguments)}, Reporter())
    result_types = tuple(T.Opaque("NoneType") if r is None else atom_type(function.results[r], types)
                         for r in results)
    return Derived(function, arguments, results, result_types)


class _PointArguments:
    """The arguments of a jvp/hvp call inside differentiated code, per primal of g: (flat primals, then flat
    tangents aligned with them), with the layouts of the registered-type primals."""

    def __init__(self, call, arg_types):
        self.call, self.arg_types, self.n = call, arg_types, call.primals
        self.layouts = call.layouts if call.layouts is not None else (None,) * call.primals
        self.spans, at = [], 0
        for node in self.layouts:
            size = 1 if node is None else node.size
            self.spans.append((at, size))
            at += size

    def _leaves(self, k):
        """Per flat position of primal k: whether it carries a derivative."""
        node = self.layouts[k]
        if node is None:
            return [self.arg_types[self.spans[k][0]].differentiable]
        return [in_tangent for _, in_tangent in node.leaves()]

    def carries(self, k) -> bool:
        return any(self._leaves(k))

    def tangent_positions(self, k) -> list:
        """The positions, among the call's arguments, of primal k's tangent as the derived code takes it."""
        start = self.spans[k][0]
        return [self.n + start + j for j, carried in enumerate(self._leaves(k)) if carried]

    def signature(self, with_tangent) -> Signature:
        """The signature of g's tangent map called with the primals and the tangents of `with_tangent`."""
        layouts = self.layouts + tuple(None if self.layouts[k] is None else L.tangent_node(self.layouts[k])
                                       for k in with_tangent)
        types = self.arg_types[:self.n] + tuple(self.arg_types[p] for k in with_tangent
                                                for p in self.tangent_positions(k))
        return Signature(layouts if any(node is not None for node in layouts) else None, types)

    def check(self, positions, what):
        for k in positions:
            start = self.spans[k][0]
            for j, carried in enumerate(self._leaves(k)):
                if carried:
                    _check_tangent(self.call, k, self.arg_types[start + j], self.arg_types[self.n + start + j], what)


def _check_tangent(call, k, primal, tangent, what):
    same = (isinstance(primal, T.Array) and isinstance(tangent, T.Array) and primal.ndim == tangent.ndim) or \
        (isinstance(primal, T.Scalar) and isinstance(tangent, T.Scalar) and tangent.kind != "bool")
    if not same:
        raise DifferentiabilityError([Diagnostic(
            codes.UNSUPPORTED,
            f"the {what} for argument {k + 1} of {call.title} is {describe(tangent)}, but the argument "
            f"is {describe(primal)}", call.origin,
            f"pass a {what} of the argument's type (0.0 or np.zeros_like(x) for none)")])


def _at_call_site(error, call):
    """Problems found deriving g, as the user sees them: about the call itself (an int differentiated, g not
    returning one number) at the call; inside g at their own line, reached through the call."""
    site = call.origin
    found = []
    for d in error.diagnostics:
        origin = d.origin
        if origin == site:  # already about the call
            found.append(d)
        elif origin is None or d.code in (codes.NOT_DIFFERENTIABLE, codes.NOT_SCALAR):
            notes = d.notes + ((f"in {call.title}: '{origin.function}' is defined at {origin}",) if origin else ())
            found.append(replace(d, origin=site, notes=notes))
        else:
            found.append(replace(d, origin=replace(origin, chain=tuple(site.chain) + (site,) + tuple(origin.chain))))
    return type(error)(found)


def transform_compiler(obj):
    """The compiler of a function object a transform is applied to inside differentiated code (a plain function,
    a @differentiable one, a gradient or tangent map made by the API, a function `diffprog check` knows from
    source only), or None."""
    found = registry.compiler_of(obj)
    if found is not None:
        return found
    if getattr(obj, "__diffprog_parsed__", None) is not None:
        return registry.static_compiler(obj)
    if isinstance(obj, types.FunctionType):
        return registry.function_compiler(obj)
    return None


# what lowering recognises besides API_FUNCTIONS: a function diffprog.jacobian made
_API_NAMES = API_FUNCTIONS + ("jacobian",)


class CompilerTransformHost:
    """The TransformHost (normalize/lower/host.py) every Lowerer the compiler makes is given: what the API's
    objects are, and the compilers that derive the functions transforms are applied to in differentiated code.
    The API's objects are recognised by the protocol of registry.py (the compiler does not import the API).
    Stateless, so one instance serves every lowering (and copies of lowered code share it)."""

    def api_function(self, obj):
        return registry.api_name(obj, _API_NAMES)

    def as_transform(self, obj):
        gradient = registry.gradient_of(obj)
        if gradient is not None:
            kind, function, wrt, single = gradient
            return Transform(kind, function, wrt, single, f"{function.__name__} (a {kind})")
        if registry.is_api_object(obj) and registry.compiler_of(obj).derives:
            return Transform("derived", obj, (), False, f"{obj.__name__} (a derivative)")
        return None

    def accepts(self, obj) -> bool:
        return registry.is_api_object(obj) or (
            isinstance(obj, types.FunctionType) and not is_library(obj) and self.api_function(obj) is None)

    def param_count(self, obj):
        gradient = registry.gradient_of(obj)
        if gradient is not None:
            obj = gradient[1]
        if registry.is_api_object(obj):
            compiler = registry.compiler_of(obj)
            return len(compiler.params) if type(compiler) is not TangentCompiler else None
        parsed = getattr(obj, "__diffprog_parsed__", None)
        if parsed is None:
            try:
                parsed = parsed_function(obj)
            except DifferentiabilityError:
                return None  # reported when its compiler is made
        return len(parsed.node.args.args)

    def source_of(self, obj):
        function = isinstance(obj, types.FunctionType) or (
            registry.is_api_object(obj) and registry.gradient_of(obj) is None)  # not a gradient map
        if not function and getattr(obj, "__diffprog_parsed__", None) is None:
            return None
        try:
            return getattr(obj, "__diffprog_parsed__", None) or \
                parsed_function(getattr(obj, "__diffprog_function__", obj))
        except DifferentiabilityError:
            return None

    def compiler_for(self, obj):
        return transform_compiler(obj)

    def standalone_compiler(self, parsed):
        return FunctionCompiler(None, jit=False, parsed=parsed)

    def gradient_compiler(self, compiler, wrt, outputs):
        return DerivativeCompiler(compiler, wrt, outputs, jit=False)

    def tangent_compiler(self, compiler):
        return TangentCompiler(compiler, jit=False)

    def derive_nested(self, call, arg_types):
        return derive_nested(call, arg_types)

    def __deepcopy__(self, memo):
        return self


HOST = CompilerTransformHost()
