"""Call resolution and inlining. A call is resolved statically to what its callee is: a nested def, a
registered class (construction), a primitive with a derivative rule (keyword options selecting its variant), a
Python function (inlined in place, variables renamed), a transform (transform_calls.py), or an opaque function
called on inactive values only.
"""
from __future__ import annotations

import copy
import inspect
import re
import types

import gast

from ...errors import DifferentiabilityError
from ...frontend.resolve import import_path
from ...frontend.source import is_library, parsed_function
from ...frontend.syntax import check_function_syntax
from ...ir import core as C
from ...rules import REGISTRY, Primitive
from ... import codes
from ...custom_types import protocol as P
from ...rules.registry import describe_options
from .. import control
from .context import LoweringContext, Scope
from .values import _REPORTED, AMBIGUOUS, Denotation, LocalDef, ShapeValue, TupleValue, Value, _as_binding, \
    _is_typed, constant_value


class CallLowering(LoweringContext):
    """`f(...)` and `x.method(...)`: what the callee is decides how the call is lowered."""

    def expr_Call(self, node, hint) -> Value:
        if isinstance(node.func, gast.Attribute):
            owner = self.expr(node.func.value)
            if isinstance(owner, C.Var):
                return self._method_call(owner, node, hint)
            if _is_typed(owner):
                return self._typed_method_call(owner, node)
            callee = self._attribute_of(owner, node.func)
        else:
            callee = self.expr(node.func)
        if not isinstance(callee, Denotation):
            what = node.func.id if isinstance(node.func, gast.Name) else gast.unparse(node.func).strip()
            self.reporter.error(codes.UNRESOLVED, f"cannot tell statically which function '{what}' is",
                                self.origin(node),
                                "call a function defined at module level (or nested in this one) by its name")
            return C.Const(0.0)
        obj = callee.obj
        if obj is AMBIGUOUS:
            self.reporter.error(codes.UNRESOLVED,
                                f"'{gast.unparse(node.func).strip()}' refers to different functions on "
                                "different paths, so the call cannot be resolved statically", self.origin(node),
                                "call each function by its own name inside if/else")
            return C.Const(0.0)
        if obj is _REPORTED:  # a transform whose problems were reported where it was made
            return C.Const(0.0)
        transformed = self._transform_call(obj, node, hint)
        if transformed is not None:
            return transformed
        if isinstance(obj, LocalDef):
            return self._inline(obj.node, self.scope.parsed, node, obj.scope, obj.node.name)
        target = getattr(obj, "__diffprog_function__", obj)
        if target is sum and node.args and isinstance(node.args[0], gast.GeneratorExp):
            return self._sum_of_generator(node)
        if target is isinstance:
            return self._isinstance_call(node)
        if isinstance(target, type) and P.info(target) is not None and target not in _BUILTIN_TYPES:
            return self._construct(target, node)
        if isinstance(target, types.MethodType) and isinstance(target.__self__, type) and \
                inspect.isfunction(target.__func__):  # a classmethod called on its class: Quaternion.identity()
            return self._inline_python(target.__func__, node, (Denotation(target.__self__),), node.args,
                                       node.keywords, target.__qualname__)
        protocol = _PROTOCOL.get(id(target))
        if protocol is not None:
            return self._protocol_call(protocol, node)
        prim = REGISTRY.lookup(target, len(node.args))
        if prim is not None and prim.inline_primal is not None:
            return self._overridden_call(prim, node, hint)
        if prim is not None:
            return self._primitive_call(prim, node, hint)
        static = getattr(target, "__diffprog_parsed__", None)
        if static is not None:  # a function known from source only (the command line checker)
            with self._called_from(node):
                check_function_syntax(static, self.reporter)
            return self._inline(static.node, static, node, None, static.name)
        if isinstance(target, types.FunctionType) and not is_library(target):
            parsed = self._parsed_at(target, node, target.__qualname__)
            if parsed is None:
                return C.Const(0.0)
            return self._inline(parsed.node, parsed, node, None, parsed.name)
        if isinstance(target, type):
            self.reporter.error(codes.NO_TANGENT,
                                f"class '{target.__name__}' has no tangent protocol", self.origin(node),
                                f"register it with @diffprog.differentiable_type on class {target.__name__}")
            return C.Const(0.0)
        return self._opaque_call(target, node, hint)

    def _method_call(self, owner, node, hint):
        """`x.sum()`, `x.copy()`, `x.reshape(...)`: the numpy function with the array as first argument."""
        prim = REGISTRY.lookup(f"method:{node.func.attr}")
        if prim is None:
            self.reporter.error(codes.NO_TANGENT, f"method '.{node.func.attr}()' is not supported on this value",
                                self.origin(node), "call the numpy function instead, e.g. np.sum(x)")
            return C.Const(0.0)
        return self._primitive_call(prim, node, hint, leading=[owner])

    def _primitive_call(self, prim, node, hint, leading=()):
        positional = list(node.args)
        prim = self._with_keywords(prim, node, positional, len(leading))
        if prim is None:
            return C.Const(0.0)
        values = list(leading) + [self._argument(a, k + len(leading) == prim.tuple_arg)
                                  for k, a in enumerate(positional)]
        if prim.tuple_arg is not None:
            prim, values = self._shape_arguments(prim, values)
        args = [v if isinstance(v, (C.Var, C.Const)) else self._not_a_number(v, node) for v in values]
        if prim.effect:
            self._emit(C.Effect(C.Call(prim, tuple(args)), self.origin(node)))
            return C.Const(None)
        if prim.components:  # a tuple-valued function: one primitive per element
            return TupleValue(tuple(self._call(REGISTRY.named(c), args, node) for c in prim.components))
        if prim.params and len(args) != len(prim.params):
            self.reporter.error(codes.UNSUPPORTED,
                                f"{prim.name} takes {len(prim.params)} arguments here, not {len(args)}",
                                self.origin(node), "check the call")
            return C.Const(0.0)
        return self._call(prim, args, node, hint)

    def _overridden_call(self, prim, node, hint):
        """A function with source and a user derivative rule: its value from its inlined source, its derivative
        from the rule (the primitive passes the value through and differentiates by the rule alone)."""
        n = len(prim.params) - 1
        if len(node.args) != n or node.keywords:
            self.reporter.error(codes.UNSUPPORTED, f"{prim.label} takes {n} arguments here (passed by position)",
                                self.origin(node), "check the call")
            return C.Const(0.0)
        args = [self._atom(a) for a in node.args]
        value = self._inline_python(prim.inline_primal, node, tuple(args), label=prim.label)
        if not isinstance(value, (C.Var, C.Const)):
            value = self._not_a_number(value, node)
        return self._call(prim, (*args, value), node, hint)

    def _through_rule(self, rule, scope, node, args):
        """The body of a function that has its own derivative rule: the rule's primitive applied to the
        parameters (a rule overriding a function with source passes the function's own value through)."""
        with self._emitting() as block:
            if rule.inline_primal is not None:
                body, value = self._lower_body(scope, node, top_level=True)
                block.extend(body)
                args = [*args, value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, node)]
            self.scope = scope
            result = self._call(rule, args, node)
            self.scope = None
        return block, result

    def _argument(self, node, tuple_wanted):
        """A list literal where a primitive takes a tuple (`np.array([a, b])`) is read as a tuple."""
        if tuple_wanted and isinstance(node, gast.List):
            return TupleValue(tuple(self.expr(e) for e in node.elts))
        return self.expr(node)

    def _with_keywords(self, prim, node, positional, leading=0):
        """Static keyword arguments (axis=1, keepdims=True) select a variant of the primitive; so do options passed
        by position after the data arguments (np.sum(x, 1), np.concatenate((a, b), 1), np.linalg.norm(x, 'fro')).
        Options equal to the primitive's defaults are dropped; the primitive's declared variants are keyed by the
        rest (Primitive.variant: keepdims=True and an `ord` select a variant by their value)."""
        named = [(k.arg, k.value) for k in node.keywords]
        data = (len(prim.params) if prim.params else 1) - leading  # a variadic primitive takes one tuple
        by_position = prim.positional_options
        if data >= 0 and 0 < len(positional) - data <= len(by_position):
            named = list(zip(by_position, positional[data:])) + named
            del positional[data:]
        if not named:
            return prim
        options = {}
        for name, value_node in named:
            value = self.expr(value_node)
            if name is None or not isinstance(value, C.Const):
                self.reporter.error(codes.UNSUPPORTED, f"keyword argument '{name}' of {prim.name} must be a constant",
                                    self.origin(value_node), "write the value literally, e.g. axis=0")
                return None
            options[name] = value.value
        defaults = {"keepdims": False, **prim.default_options}
        options = {k: v for k, v in options.items() if k not in defaults or defaults[k] is not v and (
            type(defaults[k]) is not type(v) or defaults[k] != v)}
        if not options:
            return prim
        variant = REGISTRY.variant(prim, options)
        if variant is None:
            given = ", ".join(f"{k}={v!r}" for k, v in sorted(options.items()))
            forms = [f"{prim.name}(..., {describe_options(key)})" for key in prim.variants]
            self.reporter.error(codes.UNSUPPORTED, f"{prim.name} with {given} is not supported", self.origin(node),
                                f"the supported forms are {', '.join(forms)}" if forms else
                                f"call {prim.name} without these arguments, or use another function")
            return None
        return variant.with_options(**{k: v for k, v in options.items() if k in prim.takes})

    def _shape_arguments(self, prim, values):
        """A shape given as a tuple becomes separate arguments; `x.shape` selects the `_shape` variant, a single
        value the `single_form` primitive."""
        at = prim.tuple_arg
        before, shape, after = values[:at], values[at] if at < len(values) else None, values[at + 1:]
        if isinstance(shape, ShapeValue):
            return REGISTRY.named(prim.shape_form), before + [shape.array] + after
        if isinstance(shape, TupleValue):
            return prim, before + list(shape.items) + after
        if prim.single_form is not None and isinstance(shape, (C.Var, C.Const)):
            # one value, not a tuple of them: numpy reads it as the sequence of its items (np.vstack(A) joins
            # A's rows, np.array(x) of a number is a 0-d array), which its own primitive computes
            return REGISTRY.named(prim.single_form).with_options(**prim.options), values
        return prim, values

    def _opaque_call(self, obj, node, hint):
        """A function with no source and no rule: callable from compiled code only on inactive values."""
        path = import_path(obj)
        name = getattr(obj, "__qualname__", None) or repr(obj)
        if path is None or not callable(obj):
            self.reporter.error(codes.UNRESOLVED, f"cannot call '{name}' from differentiated code", self.origin(node),
                                "call a plain Python function, or register a derivative with "
                                "@diffprog.derivative(of=...)")
            return C.Const(0.0)
        return self._call(opaque_primitive(obj, path), [self._atom(a) for a in node.args], node, hint)

    # ---- inlining ----------------------------------------------------------------------------------------------
    def _parsed_at(self, fn, node, label):
        """fn's parse, syntax-checked, or None when it cannot be read: its problems are reported where the user's
        code calls or uses it (at `node`), noting where `label` is defined."""
        try:
            parsed = parsed_function(fn)
        except DifferentiabilityError as error:
            for d in error.diagnostics:
                self.reporter.error(d.code, d.message, self.origin(node), d.hint,
                                    notes=(f"'{label}' is defined at {d.origin}",))
            return None
        check_function_syntax(parsed, self.reporter)
        return parsed

    def _inline_python(self, fn, node, leading: tuple = (), arg_nodes=(), keywords=(), label=None,
                       constructor=False) -> Value:
        """Inlines a Python function (a method, an operator, a property, a constructor) at `node`."""
        label = label or getattr(fn, "__qualname__", "function")
        parsed = self._parsed_at(fn, node, label)
        if parsed is None:
            return C.Const(0.0)
        prefix = re.sub(r"_+", "_", re.sub(r"\W", "_", label)).strip("_") or "method"
        return self._inline(parsed.node, parsed, node, None, label, leading=leading, arg_nodes=list(arg_nodes),
                            keywords=list(keywords), prefix=prefix, constructor=constructor)

    def _inline(self, fdef, parsed, call, parent: Scope | None, name, leading: tuple = (), arg_nodes=None,
                keywords=None, prefix=None, constructor=False) -> Value:
        """Lowers a call in place. `leading` are argument values already lowered (`self` of a method, the
        operands of an operator), followed by `arg_nodes` (the call's own arguments by default)."""
        code_key = (parsed.file, fdef.lineno + parsed.line_offset, fdef.col_offset)
        if code_key in self.inline_stack:
            self.reporter.error(codes.RECURSION, f"recursive call to '{name}'", self.origin(call),
                                "diffprog inlines calls; rewrite the recursion as a loop")
            return C.Const(0.0)
        args = list(leading) + [self.expr(a) for a in (call.args if arg_nodes is None else arg_nodes)]
        params = fdef.args.args
        defaults = self._defaults(fdef, parsed, parent)
        keywords = {k.arg: k.value for k in (call.keywords if keywords is None else keywords)}
        scope = Scope(parsed, fdef, prefix=self.names.claim(prefix or name), parent=parent,
                      locals=control.local_names(fdef))
        values = []
        for k, param in enumerate(params):
            if k < len(args):
                values.append(args[k])
            elif param.id in keywords:
                values.append(self.expr(keywords.pop(param.id)))
            elif param.id in defaults:
                values.append(defaults[param.id])
            else:
                self.reporter.error(codes.UNSUPPORTED, f"missing argument '{param.id}' in call to '{name}'",
                                    self.origin(call), "pass every argument")
                return C.Const(0.0)
        if keywords or len(args) > len(params):
            self.reporter.error(codes.UNSUPPORTED,
                                f"too many or unknown arguments in call to '{name}'", self.origin(call),
                                "check the call's arguments")
            return C.Const(0.0)
        reassigned = control.assigned_names(fdef)
        for param, value in zip(params, values):
            if isinstance(value, C.Var) and param.id not in reassigned:
                scope.bindings[param.id] = value.name  # the callee only reads it: no copy needed
            elif isinstance(value, TupleValue) and param.id not in reassigned and _as_binding(value) is not None:
                scope.bindings[param.id] = _as_binding(value)  # a method's `self`: its fields, not copies
            else:
                self._bind_param(scope, param.id, value, call)
        self.inline_stack.append(code_key)
        outer_tuple = self._returns_tuple
        with self._called_from(call):
            body, result = self._lower_body(scope, fdef, constructor=constructor)
        self._returns_tuple = outer_tuple
        self.inline_stack.pop()
        self.block.extend(body)
        return result

    def _bind_param(self, scope, user_name, value, call):
        origin = self.origin(call)  # the call's line, in the caller's file
        outer, self.scope = self.scope, scope
        try:
            self._assign_name(scope, user_name, value, call, origin)
        finally:
            self.scope = outer

    def _sum_of_generator(self, node):
        """`sum(elt for i in ... if cond, start)`: an accumulation loop (the `for` lowering takes ranges, arrays,
        enumerate and zip). The generator's names are renamed apart: they do not leak into the function."""
        gen = node.args[0]
        if len(node.args) > 2 or node.keywords:
            self.reporter.error(codes.UNSUPPORTED, "sum of a generator takes at most a start value",
                                self.origin(node), "write sum(... for i in range(n)) or sum(..., start)")
            return C.Const(0.0)
        serial = self.names.temp("gen")
        renames = {}
        for comp in gen.generators:
            for target in gast.walk(comp.target):
                if isinstance(target, gast.Name):
                    renames[target.id] = f"__dp_{serial}_{target.id}"
        renamed = copy.deepcopy(gen)
        first_iter = renamed.generators[0].iter  # evaluated in the enclosing scope, as in Python
        renamed.generators[0].iter = None
        renamed = _Rename(renames).visit(renamed)
        renamed.generators[0].iter = first_iter
        here = lambda made: gast.copy_location(made, node)  # noqa: E731
        total = f"__dp_{serial}_sum"
        load = lambda: here(gast.Name(id=total, ctx=gast.Load(), annotation=None, type_comment=None))  # noqa: E731
        store = here(gast.Name(id=total, ctx=gast.Store(), annotation=None, type_comment=None))
        start = node.args[1] if len(node.args) == 2 else here(gast.Constant(value=0, kind=None))
        body = [here(gast.Assign(targets=[store], value=here(gast.BinOp(left=load(), op=gast.Add(),
                                                                         right=renamed.elt))))]
        for comp in reversed(renamed.generators):
            for cond in reversed(comp.ifs):
                body = [here(gast.If(test=cond, body=body, orelse=[]))]
            if comp.is_async:
                self.reporter.error(codes.UNSUPPORTED, "'async for'", self.origin(node), "use a plain for loop")
            body = [here(gast.For(target=comp.target, iter=comp.iter, body=body, orelse=[], type_comment=None))]
        store0 = here(gast.Name(id=total, ctx=gast.Store(), annotation=None, type_comment=None))
        self.statement(here(gast.Assign(targets=[store0], value=start)))
        self.statement(body[0])
        return self.expr(load())

    def _defaults(self, fdef, parsed, parent):
        params = [a.id for a in fdef.args.args]
        if parent is None and parsed.node is fdef:
            values = parsed.fn.__defaults__ or ()
            return {p: constant_value(v) for p, v in zip(params[len(params) - len(values):], values)}
        nodes = fdef.args.defaults
        return {p: self.expr(d) for p, d in zip(params[len(params) - len(nodes):], nodes)}


class _Rename(gast.NodeTransformer):
    """Renames the names a generator expression binds (its loop variables), in all of it."""

    def __init__(self, renames):
        self.renames = renames

    def visit_Name(self, node):
        if node.id in self.renames:
            node.id = self.renames[node.id]
        return node


_BUILTIN_TYPES = (float, int, bool)
_PROTOCOL = {id(P.add): "add", id(P.scale): "scale", id(P.move): "move", id(P.zero_tangent): "zero_tangent"}


_opaque: dict = {}


def opaque_primitive(obj, path) -> Primitive:
    module, name = path
    key = id(obj)
    if key not in _opaque:
        qualified = f"{module}.{name}"
        _opaque[key] = Primitive(
            qualified,
            lambda args, q=qualified: f"{q}({', '.join(map(str, args))})",
            (),
            None,
            result="float",
            no_rule=(codes.NO_RULE, f"'{qualified}' has no source to differentiate and no derivative rule",
                     f"register one with @diffprog.derivative(of={qualified}), or wrap the argument in "
                     "diffprog.no_derivative(...) if no derivative is wanted"),
            imports=(module,),
        )
    return _opaque[key]

