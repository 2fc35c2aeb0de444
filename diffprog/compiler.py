"""The compiler driver: runs the stages in order for one function and one call signature.

frontend (parse, syntax check) -> normalize (lower to core, inline, structure) -> analysis (types, activity,
checks) -> transforms (reverse) -> backend (print, cache, numba). Each specialization is keyed by the mode, the
differentiated parameters and the argument types, as numba specializes on argument types.
"""
from __future__ import annotations

import copy
import threading
import types
import warnings
import weakref
from dataclasses import dataclass, replace

import numpy as np

from . import __version__
from .progress import reported as _progress_reported  # DIFFPROG_VERBOSE=1
from .analysis.activity import analyze_activity
from .analysis.check import check_active_uses, check_array_aliasing, check_result_depends_on_inputs
from .analysis.types import atom_type, infer_types
from .backend import cache, codegen
from .backend.in_place import update_adjoints_in_place
from .backend.jit import compile_nopython
from .errors import DifferentiabilityError, Diagnostic, Reporter
from .frontend.syntax import check_function_syntax
from .ir import core as C
from .ir import types as T
from .normalize.cleanup import hoist_loop_invariants, initialize_unassigned, remove_dead_code, split_self_updates
from .normalize.lower import Lowerer, parsed_function
from .normalize.nested import Derived, first_nested, has_nested, splice
from .transforms.batched import forward_batched
from .transforms.forward import forward, forward_activity
from .transforms.reverse import reverse
from .types import protocol as P
from .types.boundary import Boundary, param_layouts, unregistered_problems
from .types import layout as L
from .types.layout import signature as layout_signature



@dataclass
class Specialization:
    ir: object  # the core function that runs
    source: str
    run: object  # the compiled (or, with jit=False, plain Python) function
    results: int  # how many values the differentiated function returns
    returns_tuple: bool
    param_types: tuple
    result_types: tuple = ()  # reverse mode: the type of each result (so of each cotangent)


class FunctionCompiler:
    """Everything diffprog knows about one user function; compiles it lazily per signature."""

    derives = False  # the code is a generated derivative (DerivativeCompiler, TangentCompiler)

    checkpoint = None  # snapshots for the outermost loops' reverse mode (`differentiable(checkpoint=...)`)

    def __init__(self, fn, jit=True, parsed=None, checkpoint=None):
        self.fn = fn
        self.jit = jit
        self.checkpoint = checkpoint
        self.parsed = parsed if parsed is not None else parsed_function(fn)
        reporter = Reporter()
        check_function_syntax(self.parsed, reporter)
        reporter.raise_if_errors()
        self._core = None
        self._names = None
        self.specializations: dict = {}
        self.last: dict = {}  # mode -> most recent specialization, for diffprog.source

    @property
    def params(self) -> list:
        return [a.id for a in self.parsed.node.args.args]

    def core_for(self, args):
        """The normalized primal and its name allocator. Lowering does not depend on argument types, so plain
        functions are lowered once (once per layout of registered-type arguments: types/boundary.py). Transforms
        called in the body (`dp.grad(g)(x)`) are expanded per argument types (normalize/nested.py)."""
        layouts = param_layouts(args, self.parsed)
        unregistered = unregistered_problems(args, self.parsed)
        try:
            core, names, _ = self._lowered(layouts)
        except DifferentiabilityError as error:
            raise DifferentiabilityError(list(error.diagnostics) + unregistered) from None
        if unregistered:
            raise DifferentiabilityError(unregistered)
        if has_nested(core.body):
            flat = self._flat_call(args, ())[0]
            param_types = tuple(T.type_of_value(a) for a in flat)
            expanded = self.__dict__.setdefault("_expanded", {})
            key = (layouts, param_types)
            if key not in expanded:
                core, names = expand_nested(core, names, param_types)
                expanded[key] = hoist_loop_invariants(remove_dead_code(core)), names
            core, names = expanded[key]
        return core, names

    def _lowered(self, layouts):
        """(core, names, Boundary) for arguments laid out as `layouts` (None: no registered-type argument). The
        core still holds the placeholders of nested transforms, if any (cleaned up once they are expanded)."""
        cache_ = self.__dict__.setdefault("_lowered_by_layout", {})
        if layouts not in cache_:
            lowering = self.__dict__.setdefault("_lowering", set())
            if layouts in lowering:  # g's body takes a derivative of g itself
                raise DifferentiabilityError([Diagnostic(
                    "DP110", f"'{self.parsed.name}' takes a derivative of itself (recursion)",
                    self.parsed.origin(self.parsed.node), "diffprog inlines derivatives; rewrite the recursion as "
                    "a loop")])
            lowering.add(layouts)
            try:
                reporter = Reporter()
                lowerer = Lowerer(reporter)
                function = lowerer.lower_function(self.parsed, layouts)
            finally:
                lowering.discard(layouts)
            reporter.raise_if_errors()
            boundary = Boundary(layouts, lowerer.result_layouts, lowerer.returns_user_tuple, self.parsed.name)
            if not has_nested(function.body):
                function = hoist_loop_invariants(remove_dead_code(function))
            cache_[layouts] = (function, lowerer.names, boundary)
        return cache_[layouts]

    def layouts_of(self, args):
        """The layout of each argument (types/layout.py: a Node for a registered-type value, None for a number or
        an array), or None when no argument has a registered type."""
        return param_layouts(args, self.parsed)

    def boundary(self, layouts) -> Boundary:
        """How the compiled code's flat parameters and results map to the user's values, for arguments laid out
        as `layouts`. Derived compilers build theirs from their inner function's (see DerivativeCompiler)."""
        return self._lowered(layouts)[2]

    def arity(self, layouts=None) -> tuple:
        """(per returned value its layout (a Node for a registered type, None for a number or an array), whether
        the values are returned as a tuple), for arguments laid out as `layouts`: known before argument types are,
        it is what a transform of this function called inside differentiated code gives back."""
        boundary = self.boundary(layouts)
        return boundary.results, boundary.user_tuple

    def _flat_call(self, args, wrt):
        """(arguments, differentiated positions, Boundary or None) as the compiled code takes them: registered-
        type arguments split into their fields (the tangent-type arguments and results of derived compilers
        too). The Boundary is None for plain numbers and arrays."""
        layouts = self.layouts_of(args)
        boundary = self.boundary(layouts)
        if boundary.trivial:
            return args, wrt, None
        if type(self) is FunctionCompiler and len(args) != len(self.params):
            raise TypeError(f"{self.parsed.name}() takes {len(self.params)} arguments but {len(args)} were given")
        flat = boundary.flat_args(args)
        return flat, boundary.flat_wrt(wrt, flat, self.parsed), boundary

    def build(self, mode: str, wrt: tuple, args):
        """(code to run, the primal core, names) for `mode` ("primal", "reverse" or "forward") at these argument
        types."""
        core, names = self.core_for(args)
        args, wrt, _ = self._flat_call(args, wrt)
        if len(args) != len(core.params):
            raise TypeError(f"{self.parsed.name}() takes {len(core.params)} arguments but {len(args)} were given")
        param_types = tuple(T.type_of_value(a) for a in args)
        reporter = Reporter()
        types = infer_types(core, dict(zip(core.params, param_types)), reporter)
        reporter.raise_if_errors()
        core = initialize_unassigned(core, types)
        names = copy.deepcopy(names)
        if mode == "primal":
            return core, core, names
        wrt_names = [core.params[k] for k in wrt]
        self._check_wrt(core, wrt_names, types)
        activity = check_derivative(core, types, wrt_names, reporter,
                                    forward_mode=mode in ("forward", "forward_batched"))
        if self.derives and any("a view of" in e.message for e in reporter.errors):
            raise DifferentiabilityError([Diagnostic(
                "DP101", "this derivative of a derivative cannot be differentiated again: the code it runs saves "
                "and restores the contents of its tapes as shared arrays",
                core.origin, "differentiate one time fewer and take finite differences of that")])
        reporter.raise_if_errors()
        reporter.emit_warnings()
        if mode == "forward":
            return forward(core, types, activity, wrt_names, names), core, names
        if mode == "forward_batched":  # tangents with a leading lane axis: several directions per pass
            return forward_batched(core, types, activity, wrt_names, names), core, names
        return reverse(core, types, activity, wrt_names, names, self.checkpoint), core, names

    @_progress_reported
    def specialize(self, mode: str, wrt: tuple, args) -> Specialization:
        ir, core, names = self.build(mode, wrt, args)
        if mode == "reverse":  # this code runs and is not differentiated again
            ir = update_adjoints_in_place(ir, names)
        user_wrt = wrt
        args, wrt, boundary = self._flat_call(args, wrt)
        param_types = tuple(T.type_of_value(a) for a in args)
        extra = tuple(map(_example_cotangent, ir.seed_types)) if mode == "reverse" else ()
        if mode == "forward":  # one tangent per differentiated argument, of the argument's type
            extra = tuple(np.zeros_like(args[k], dtype=np.float64) if isinstance(args[k], np.ndarray) else 0.0
                          for k in wrt)
        if mode == "forward_batched":  # one lane
            extra = tuple(np.zeros(np.shape(args[k]) + (1,)) for k in wrt)
        header = (f"diffprog {__version__}: {mode} code for {self.parsed.name} "
                  f"({self.parsed.file}:{self.parsed.node.lineno + self.parsed.line_offset})\n"
                  f"specialized for ({', '.join(f'{p}: {t}' for p, t in zip(core.params, param_types))})")
        source, origins = codegen.module_source([ir], header)
        module = cache.load_module(source)
        run = getattr(module, ir.name)
        if self.jit:
            run = compile_nopython(run, tuple(args) + extra, origins, module.__file__)
        spec = Specialization(ir, source, run, len(core.results), core.returns_tuple, param_types, ir.seed_types)
        if boundary is not None:  # takes and returns the user's registered-type values
            spec = boundary.wrap(spec, mode, user_wrt, wrt, ir.returns_tuple)
        self.last[mode] = spec
        return spec

    def _check_wrt(self, core, wrt_names, types):
        bad = wrt_problems(core, wrt_names, types)
        if bad:
            raise DifferentiabilityError(bad)


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


def carries_derivative(value) -> bool:
    """A float, a float array, or a registered-type value with derivative-carrying fields."""
    if P.is_registered(value):
        return any(in_tangent for _, in_tangent in L.layout_of(value).leaves())
    return T.type_of_value(value).differentiable


# ---- transforms called inside differentiated code (normalize/nested.py) ---------------------------------------
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
    found = call.derived.get(arg_types)
    if found is None:
        active = _deriving.__dict__.setdefault("calls", [])
        if call in active:
            raise DifferentiabilityError([Diagnostic(
                "DP110", f"{call.title} is called while differentiating the same function (recursion)",
                call.origin, "diffprog inlines derivatives; rewrite the recursion as a loop")])
        active.append(call)
        try:
            with warnings.catch_warnings(record=True) as caught:  # shown when the call is expanded, not guessed
                warnings.simplefilter("always")
                found = _derive(call, arg_types)
            found.warnings = tuple(caught)
        except DifferentiabilityError as error:
            found = _at_call_site(error, call)
        except (TypeError, ValueError) as error:
            found = DifferentiabilityError([Diagnostic("DP101", f"{call.title}: {error}", call.origin,
                                                       "check the arguments of the call")])
        finally:
            active.pop()
        call.derived[arg_types] = found
    if isinstance(found, DifferentiabilityError):
        raise found
    return found


def _derive(call, arg_types) -> Derived:
    for k, t in enumerate(arg_types):
        if t is None or (isinstance(t, T.Opaque) and t.pytype != "NoneType"):
            raise DifferentiabilityError([Diagnostic(
                "DP105", f"argument {k + 1} of {call.title} is {'of unknown type' if t is None else f'a {t}'}",
                call.origin, "pass floats, ints or numpy arrays")])
    values = tuple(_example_value(t) for t in arg_types)
    n = call.primals
    if call.kind == "call":
        function, _ = call.compiler.core_for(_user_values(values, call.layouts))
        arguments, results = tuple(range(len(values))), tuple(range(call.outputs))
    else:
        # jvp/hvp: the primals (registered-type values as their fields, per call.layouts), then a tangent aligned
        # with each flat primal (a registered value's tangent-type fields where its derivative-carrying fields are)
        args = _PointArguments(call, arg_types, values)
        if call.kind == "jvp":
            with_tangent = tuple(k for k in range(len(args.layouts)) if args.carries(k))
            args.check(with_tangent, "tangent")
            compiler = TangentCompiler(call.compiler, jit=False, with_value=True)
            function, _ = compiler.core_for(args.primals + tuple(args.tangent(k) for k in with_tangent))
            arguments = tuple(range(n)) + tuple(p for k in with_tangent for p in args.tangent_positions(k))
            results = tuple(range(call.outputs))
        else:  # hvp: forward mode over the gradient code, as diffprog.hvp
            wrt = tuple(k for k in range(call.user) if args.carries(k))
            if not wrt:
                raise DifferentiabilityError([Diagnostic(
                    "DP106", f"{call.title} needs at least one float or float-array argument", call.origin,
                    "pass a float (e.g. 2.0 instead of 2) or a float array")])
            with_tangent = tuple(k for k in range(len(args.layouts)) if args.carries(k))
            args.check(with_tangent, "vector entry")
            gradient = DerivativeCompiler(call.compiler, wrt, tuple(range(1, 1 + len(wrt))), jit=False)
            function, _ = TangentCompiler(gradient, jit=False).core_for(
                args.primals + tuple(args.tangent(k) for k in with_tangent))
            arguments = tuple(range(n)) + tuple(p for k in with_tangent for p in args.tangent_positions(k))
            counts = [L.tangent_count(args.layouts[k]) for k in wrt]
            flat = []  # per argument of g: its gradient's tangent, field by field; None for an int
            for k in range(call.user):
                if k in wrt:
                    start = sum(counts[:wrt.index(k)])
                    flat.extend(range(start, start + counts[wrt.index(k)]))
                else:
                    flat.extend([None] * L.tangent_count(args.layouts[k]))
            results = tuple(flat)
    if len(function.params) != len(arguments) or max((r for r in results if r is not None), default=-1) >= \
            len(function.results):  # pragma: no cover - the lowering and the compilers disagree
        raise AssertionError(f"{call.title}: derived code does not match the call")
    types = infer_types(function, {p: arg_types[a] for p, a in zip(function.params, arguments)}, Reporter())
    result_types = tuple(T.Opaque("NoneType") if r is None else atom_type(function.results[r], types)
                         for r in results)
    return Derived(function, arguments, results, result_types)


def _user_values(values, layouts) -> tuple:
    """Flat example values regrouped as the user passes them: a registered-type value rebuilt from its fields."""
    if layouts is None:
        return tuple(values)
    leaves = iter(values)
    return tuple(next(leaves) if node is None else _example_instance(node, leaves) for node in layouts)


def _example_instance(node, leaves):
    """A value of node.cls holding example fields (zeros). Only its class and fields matter, so a constructor
    that rejects zeros (a `__post_init__` that normalizes, say) is bypassed."""
    values = [next(leaves) if child is None else _example_instance(child, leaves) for child in node.children]
    try:
        return P.info(node.cls).build(*values)
    except Exception:  # noqa: BLE001 - the user's constructor; the fields are set directly instead
        value = object.__new__(node.cls)
        for name, field_value in zip(node.names, values):
            object.__setattr__(value, name, field_value)
        return value


class _PointArguments:
    """The arguments of a jvp/hvp call inside differentiated code, per primal of g: (flat primals, then flat
    tangents aligned with them), with the layouts of the registered-type primals."""

    def __init__(self, call, arg_types, values):
        n = call.primals
        self.call, self.arg_types, self.values, self.n = call, arg_types, values, n
        self.layouts = call.layouts if call.layouts is not None else (None,) * n
        self.spans, at = [], 0
        for node in self.layouts:
            size = 1 if node is None else node.size
            self.spans.append((at, size))
            at += size
        self.primals = _user_values(values[:n], call.layouts)

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

    def tangent(self, k):
        node, start = self.layouts[k], self.spans[k][0]
        if node is None:
            return self.values[self.n + start]
        leaves = (self.values[self.n + start + j] if carried else None for j, carried in enumerate(self._leaves(k)))
        return L.tangent_from(node, leaves)

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
            "DP101", f"the {what} for argument {k + 1} of {call.title} is {_describe(tangent)}, but the argument "
            f"is {_describe(primal)}", call.origin,
            f"pass a {what} of the argument's type (0.0 or np.zeros_like(x) for none)")])


def _example_value(t):
    """A value of core type t: the compilers specialize on argument values, and only their types matter."""
    if isinstance(t, T.Array):
        return np.zeros((1,) * t.ndim, dtype=t.dtype)
    if isinstance(t, T.Scalar):
        return {"float": 0.0, "int": 0, "bool": False}[t.kind]
    return None


def _at_call_site(error, call):
    """Problems found deriving g, as the user sees them: about the call itself (an int differentiated, g not
    returning one number) at the call; inside g at their own line, reached through the call."""
    site = call.origin
    found = []
    for d in error.diagnostics:
        origin = d.origin
        if origin == site:  # already about the call
            found.append(d)
        elif origin is None or d.code in ("DP106", "DP111"):
            notes = d.notes + ((f"in {call.title}: '{origin.function}' is defined at {origin}",) if origin else ())
            found.append(replace(d, origin=site, notes=notes))
        else:
            found.append(replace(d, origin=replace(origin, chain=tuple(site.chain) + (site,) + tuple(origin.chain))))
    return type(error)(found)


def transform_compiler(obj):
    """The compiler of a function object a transform is applied to inside differentiated code (a plain function,
    a @differentiable one, a gradient or tangent map made by the API, a function `diffprog check` knows from
    source only), or None."""
    from . import api

    if isinstance(obj, api.DifferentiableFunction):
        return obj.compiler
    if isinstance(obj, api.GradientFunction):
        return obj.as_function().compiler
    static = getattr(obj, "__diffprog_parsed__", None)
    if static is not None:
        if obj not in _static_compilers:
            _static_compilers[obj] = FunctionCompiler(obj, jit=False, parsed=static)
        return _static_compilers[obj]
    if isinstance(obj, types.FunctionType):
        return api.as_differentiable(obj).compiler
    return None


_static_compilers = weakref.WeakKeyDictionary()


# ---- the checking half of the engine, shared with the command line checker (`diffprog check`) ----------------
def lower_to_core(parsed, reporter: Reporter):
    """(core function, name allocator) for a parsed function; problems go to `reporter`."""
    lowerer = Lowerer(reporter)
    function = lowerer.lower_function(parsed)
    return hoist_loop_invariants(remove_dead_code(function)), lowerer.names


def wrt_problems(core, wrt_names, types) -> list:
    """DP106 for every differentiated parameter whose type cannot have a derivative."""
    return [
        Diagnostic("DP106", f"cannot differentiate with respect to '{p}', which is {_describe(types[p])}",
                   core.param_origins.get(p),
                   hint="pass a float (e.g. 2.0 instead of 2) or a float array, or choose other "
                        "arguments with argnums")
        for p in wrt_names if not getattr(types.get(p), "differentiable", False)
    ]


def check_derivative(core, types, wrt_names, reporter: Reporter, forward_mode=False):
    """Activity, then the checks it drives (misuse of active values, a result independent of the inputs)."""
    if forward_mode:  # follows values through array writes (tapes of an adjoint being differentiated)
        activity = forward_activity(core, set(wrt_names), types)
    else:
        activity = analyze_activity(core, set(wrt_names), types)
    check_active_uses(core, activity, reporter)
    if not forward_mode:  # tangents follow writes through views; adjoints of writes assume no aliasing
        check_array_aliasing(core, types, activity, reporter)
    check_result_depends_on_inputs(core, activity, wrt_names, reporter)
    return activity


def _example_cotangent(t):
    """A value of type t, to give numba the seed parameters' types when compiling ahead of the first call."""
    return np.zeros((1,) * t.ndim) if isinstance(t, T.Array) else 0.0


def _describe(t) -> str:
    if isinstance(t, T.Scalar):
        return {"int": "an int", "bool": "a bool", "float": "a float"}[t.kind]
    if isinstance(t, T.Array):
        return f"an array of {t.dtype}"
    return f"a {t}"


def arg_key(value):
    """The part of an argument's type that selects a specialization (cheap: runs on every call)."""
    if type(value) is np.ndarray:
        return (value.dtype.char, value.ndim)
    if P.is_registered(value):  # a registered type: its classes and its array fields' kinds
        return layout_signature(value)
    return type(value)
