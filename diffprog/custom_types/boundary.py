"""The compiled boundary for functions over registered types.

Compiled code takes and returns only numbers, arrays and flat tuples of them. For a call with registered-type
arguments (or a function returning one), a `Boundary` records the layouts (`layout.Node`) of the parameters and
results, and `wrap` turns a compiled specialization into one that speaks the user's values: it flattens arguments,
cotangents and tangents into fields, and rebuilds results, gradients (values of the tangent type) and output
tangents from them. Reverse and forward mode never see a registered type.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import DifferentiabilityError, Diagnostic
from . import layout as L
from . import protocol as P
from .. import codes

_PLAIN = (float, int, bool, complex, str, bytes, type(None), np.ndarray, np.number, np.bool_)


def param_layouts(args, parsed):
    """The layout of each argument (None for numbers and arrays), or None when no argument has a registered
    type. An instance of an unregistered class is DP105: compiled code cannot hold it."""
    found = None
    for k, value in enumerate(args):
        if isinstance(value, _PLAIN):
            continue
        if P.is_registered(value):
            try:
                node = L.layout_of(value)
            except TypeError as error:
                raise TypeError(f"argument {k} of {parsed.name}(): {error}") from None
            found = found or [None] * len(args)
            found[k] = node
    return tuple(found) if found is not None else None


def unregistered_problems(args, parsed) -> list:
    """DP105 for every argument that is an instance of an unregistered class: compiled code cannot hold it.
    Reported together with what lowering found (an attribute read or write on it, say)."""
    return [_unregistered(value, k, parsed) for k, value in enumerate(args)
            if not isinstance(value, _PLAIN) and not P.is_registered(value) and _user_object(value)]


def _user_object(value) -> bool:
    """An instance of a user's class (not a function, a tuple, or a library object the compiler may handle)."""
    if isinstance(value, tuple) or callable(value):
        return False
    module = (type(value).__module__ or "").split(".")[0]
    return module not in ("builtins", "numpy", "numba", "diffprog")


def _unregistered(value, k, parsed):
    cls = type(value).__name__
    params = parsed.node.args.args
    name = params[k].id if k < len(params) else str(k)
    origin = parsed.origin(params[k]) if k < len(params) else parsed.origin(parsed.node)
    return Diagnostic(
        codes.NO_TANGENT, f"argument '{name}' is a {cls}, a class with no tangent protocol, so it cannot be used in "
        "differentiated code", origin,
        f"register it: @diffprog.differentiable_type on class {cls} (a dataclass), or "
        f"diffprog.register_tangent({cls}, fields=(...), build=...) for a class you cannot decorate")


@dataclasses.dataclass(frozen=True)
class Boundary:
    params: tuple | None  # per parameter: a Node, or None; None when no parameter has a registered type
    results: tuple  # per returned value: a Node, or None
    user_tuple: bool  # the function returns a tuple (of values, some of which may be registered types)
    name: str = "f"

    @property
    def trivial(self) -> bool:
        return self.params is None and all(r is None for r in self.results)

    # ---- arguments --------------------------------------------------------------------------------------------
    def flat_args(self, args) -> tuple:
        return L.flatten_args(args, self.params) if self.params is not None else tuple(args)

    def _offsets(self):
        """Per parameter: (first flat position, number of flat positions)."""
        spans, at = [], 0
        for node in self.params or ():
            size = 1 if node is None else node.size
            spans.append((at, size))
            at += size
        return spans

    def flat_wrt(self, wrt, flat_args, parsed) -> tuple:
        """Flat positions differentiated for the user's `wrt`: every derivative-carrying field of a
        registered-type argument."""
        if self.params is None:
            return tuple(wrt)
        spans, out = self._offsets(), []
        for k in wrt:
            start, size = spans[k]
            node = self.params[k]
            if node is None:
                out.append(start)
                continue
            leaves = [start + j for j, (_, in_tangent) in enumerate(node.leaves()) if in_tangent]
            if not leaves:
                param = parsed.node.args.args[k]
                raise DifferentiabilityError([Diagnostic(
                    codes.NOT_DIFFERENTIABLE,
                    f"cannot differentiate with respect to '{param.id}': {node.cls.__name__} has no "
                    "derivative-carrying fields (all are ints, bools or NoDerivative)", parsed.origin(param),
                    "choose other arguments with argnums")])
            out.extend(leaves)
        return tuple(out)

    # ---- results ----------------------------------------------------------------------------------------------
    def rebuild_results(self, flat) -> tuple:
        """The user's results (one entry per returned value) from the compiled code's flat results."""
        leaves = iter(flat)
        return tuple(next(leaves) if node is None else L.rebuild(node, leaves) for node in self.results)

    def _shaped(self, results):
        return tuple(results) if self.user_tuple else results[0]

    @property
    def flat_result_count(self) -> int:
        return sum(1 if node is None else node.size for node in self.results)

    # ---- wrapping a compiled specialization -------------------------------------------------------------------
    def wrap(self, spec, mode, wrt, flat_wrt, returns_flat_tuple):
        """A specialization whose `run` takes and returns the user's values (see the module docstring)."""
        compiled, n_params, n_flat = spec.run, len(self.params or ()) or None, self.flat_result_count
        flat_wrt_set = set(flat_wrt)
        spans = self._offsets()

        def results_of(out):
            flat = out if returns_flat_tuple else (out,)
            return self.rebuild_results(flat[:n_flat]), flat[n_flat:]

        def flat_call_args(args, n):
            if self.params is None:
                return tuple(args[:n])
            return L.flatten_args(args[:n], self.params)

        n = len(spans) if self.params is not None else None

        if mode == "primal":
            def run(*args):
                results, _ = results_of(compiled(*flat_call_args(args, len(args))))
                return self._shaped(results)
        elif mode == "reverse":
            result_types = spec.result_types

            def run(*args):
                count = n if n is not None else len(args) - len(self.results)
                seeds = self._flat_seeds(args[count:], result_types)
                out = compiled(*flat_call_args(args, count), *seeds)
                results, adjoints = results_of(out)
                return results + self._regroup(wrt, adjoints, flat_wrt, flat_wrt_set, spans, tangent=False)
        else:  # forward: (*primals, *tangents of the wrt arguments)
            def run(*args):
                count = n if n is not None else len(args) - len(wrt)
                tangents = self._flat_tangents(args[:count], args[count:], wrt, spans, flat_wrt_set)
                out = compiled(*flat_call_args(args, count), *tangents)
                flat = out if returns_flat_tuple else (out,)
                results = self.rebuild_results(flat[:n_flat])
                leaves = iter(flat[n_flat:])
                tangents_out = tuple(next(leaves) if node is None else L.tangent_from(node, leaves)
                                     for node in self.results)
                return results + tangents_out

        user_types = tuple(node if node is not None else None for node in self.results)
        return dataclasses.replace(spec, run=run, results=len(self.results), returns_tuple=self.user_tuple,
                                   result_types=self._user_result_types(spec.result_types) if mode == "reverse"
                                   else user_types)

    def _user_result_types(self, flat_types):
        """Per user result: its flat type (a number or array result) or its Node (a registered type)."""
        flat = iter(flat_types)
        out = []
        for node in self.results:
            if node is None:
                out.append(next(flat, None))
            else:
                for _ in range(node.size):
                    next(flat, None)
                out.append(node)
        return tuple(out)

    def _flat_seeds(self, seeds, flat_types) -> list:
        """One cotangent per flat result: a registered result's cotangent (a tangent-type value) field by field,
        zero for fields outside the tangent."""
        flat, types = [], iter(flat_types)
        for seed, node in zip(seeds, self.results):
            if node is None:
                next(types, None)
                flat.append(seed)
                continue
            if not P.is_registered(seed):
                raise DifferentiabilityError([Diagnostic(
                    codes.NOT_SCALAR, f"'{self.name}' returns a {node.cls.__name__}, so its cotangent must be a "
                    f"{P.info(node.cls).tangent_cls.__name__}, not {type(seed).__name__}", None,
                    "use diffprog.vjp(f, *args) and pass a value of the tangent type (grad needs a function "
                    "returning one number)")])
            for value in L.tangent_leaves(node, seed, "cotangent"):
                t = next(types, None)
                flat.append(_as_seed(value, t))
        return flat

    def _regroup(self, wrt, adjoints, flat_wrt, flat_wrt_set, spans, tangent):
        """The compiled adjoints (one per flat wrt position) regrouped per user wrt argument: a registered-type
        argument's gradient is a value of its tangent type."""
        by_position = dict(zip(flat_wrt, adjoints))
        out = []
        for k in wrt:
            node = self.params[k] if self.params is not None else None
            if node is None:
                start = spans[k][0] if self.params is not None else k
                out.append(by_position[start])
                continue
            start, size = spans[k]
            out.append(L.tangent_from(node, iter(by_position.get(start + j) for j in range(size))))
        return tuple(out)

    def _flat_tangents(self, primals, tangents, wrt, spans, flat_wrt_set) -> list:
        flat = []
        for k, t in zip(wrt, tangents):
            node = self.params[k] if self.params is not None else None
            if node is None:
                flat.append(t)
                continue
            start = spans[k][0]
            values = L.tangent_leaves(node, t)
            flat_primals = L.flatten_args((primals[k],), (node,))
            for j, (value, primal) in enumerate(zip(values, flat_primals)):
                if start + j in flat_wrt_set:
                    flat.append(_as_tangent(value, primal))
        return flat


def _as_seed(value, t):
    from ..ir import types as T

    if isinstance(t, T.Array):
        return np.zeros((1,) * t.ndim) if value is None else np.asarray(value, dtype=np.float64)
    return 0.0 if value is None else float(value)


def _as_tangent(value, primal):
    if isinstance(primal, np.ndarray):
        array = np.zeros(primal.shape) if value is None else np.ascontiguousarray(value, dtype=np.float64)
        if array.shape != primal.shape:
            raise ValueError(f"a tangent of shape {array.shape} was given for a field of shape {primal.shape}")
        return array
    return 0.0 if value is None else float(value)
