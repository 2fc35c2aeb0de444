"""Transforms called in differentiated code: `dp.grad(g)(x)`, `dp.value_and_grad(g, argnums)(x)`,
`dp.jvp_function(g)(x, dx)` and what the API made at module level, called here. Lowering does not know argument
types, so it emits placeholders (normalize/nested.py) that the compiler expands at specialization.

What the API's objects are, and the compilers that derive `g`, belong to the compiler: lowering reaches them
only through the `TransformHost` it is given (host.py), so that normalize does not depend on the API or the
compiler.
"""
from __future__ import annotations

import copy
from dataclasses import replace

import gast

from ...errors import DifferentiabilityError
from ...ir import core as C
from ...custom_types import layout as L
from ..nested import NestedCall
from .. import control
from .context import LoweringContext
from .values import (_REPORTED, AMBIGUOUS, Denotation, LocalDef, ShapeValue, Transform, TupleValue, Value,
                     _describe_value, _flat_count, _is_typed, _layout_of_value, _plain_if_untyped, _rebuild_value,
                     _typed_leaves)
from ... import codes


_LABELS = {"grad": "grad", "value_and_grad": "grad", "jvp_function": "tangent", "derived": "d"}
# diffprog functions that give no value compiled code can hold, and what to use instead
_OUTSIDE_ONLY = {"vjp": "use diffprog.grad(g, argnums)(...) or diffprog.value_and_grad for a scalar g",
                 "jacobian": "use diffprog.jvp along each direction (or diffprog.grad for one output)",
                 "hessian": "use diffprog.hvp(g, primals, vector) along each direction",
                 "source": "call it outside the differentiated function",
                 "differentiable": "decorate the function at module level"}


class TransformCallLowering(LoweringContext):
    """`dp.grad(g)` is a compile-time value (a Transform); calling it emits the placeholders of g's derivative."""

    def _transform_call(self, obj, node, hint) -> Value | None:
        """The value of `obj(...)` when obj is a diffprog transform or what one made, else None."""
        if isinstance(obj, Transform):
            return self._apply_transform(obj, node, hint)
        made = self.host.as_transform(obj)  # `dg = dp.grad(g)` at module level, called here
        if made is not None:
            return self._apply_transform(made, node, hint)
        name = self.host.api_function(obj)
        if name in ("grad", "value_and_grad", "jvp_function"):
            return self._make_transform(name, node)
        if name in ("jvp", "hvp"):
            return self._apply_at_point(name, node, hint)
        if name is not None:
            self.reporter.error(codes.UNSUPPORTED, f"diffprog.{name} cannot be called inside differentiated code yet",
                                self.origin(node), _OUTSIDE_ONLY.get(name, "use diffprog.jvp or diffprog.grad "
                                                                      "in a loop over directions"))
            return TupleValue((C.Const(0.0), Denotation(_REPORTED))) if name == "vjp" else C.Const(0.0)
        return None

    def _title(self, node) -> str:
        text = gast.unparse(node).strip()
        return text if len(text) <= 60 else text[:57] + "..."

    def _make_transform(self, kind, node):
        """`dp.grad(g, argnums)`: a compile-time function value (nothing is emitted until it is called)."""
        title = self._title(node)
        keywords = {k.arg: k.value for k in node.keywords}
        takes = 1 if kind == "jvp_function" else 2
        if not node.args or len(node.args) > takes or set(keywords) - ({"argnums"} if takes == 2 else set()) or \
                (len(node.args) == 2 and keywords):
            usage = "diffprog.jvp_function(g)" if takes == 1 else f"diffprog.{kind}(g) or diffprog.{kind}(g, argnums)"
            self.reporter.error(codes.UNSUPPORTED,
                                f"unexpected arguments in {title}", self.origin(node), f"write {usage}")
            return Denotation(_REPORTED)
        function = self._transform_target(node.args[0], title)
        argnums_node = node.args[1] if len(node.args) == 2 else keywords.get("argnums")
        argnums = self._static_argnums(argnums_node, title) if argnums_node is not None else 0
        if function is None or argnums is None:
            return Denotation(_REPORTED)
        single = isinstance(argnums, int)
        wrt = (argnums,) if single else argnums
        count = self._param_count(function)
        if count is not None and kind != "jvp_function":
            bad = [k for k in wrt if not -count <= k < count]
            if bad or not wrt:
                what = f"argnums {bad[0]} is out of range" if bad else "argnums is empty"
                self.reporter.error(codes.UNSUPPORTED, f"{what} in {title}: '{_function_name(function)}' takes {count} "
                                    f"argument{'s' if count != 1 else ''}", self.origin(node),
                                    f"argnums counts the arguments of '{_function_name(function)}' from 0: use 0 to "
                                    f"{count - 1}, or a tuple of those")
                return Denotation(_REPORTED)
            wrt = tuple(k % count for k in wrt)
            if len(set(wrt)) != len(wrt):
                self.reporter.error(codes.UNSUPPORTED, f"argnums repeats an argument in {title}", self.origin(node),
                                    "list each argument once")
                return Denotation(_REPORTED)
        return Denotation(Transform(kind, function, wrt, single, title))

    def _static_argnums(self, argnums_node, title):
        value = self.expr(argnums_node)
        if isinstance(value, C.Const) and type(value.value) is int:
            return value.value
        if isinstance(value, TupleValue) and value.cls is None and \
                all(isinstance(v, C.Const) and type(v.value) is int for v in value.items):
            return tuple(v.value for v in value.items)
        self.reporter.error(codes.UNSUPPORTED, f"argnums of {title} must be a constant int or tuple of ints",
                            self.origin(argnums_node), "write the argument positions literally, e.g. argnums=(0, 1)")
        return None

    def _transform_target(self, function_node, title):
        """The function a transform is applied to, when it is known statically; else reported (None)."""
        value = self.expr(function_node)
        obj = value.obj if isinstance(value, Denotation) else None
        if isinstance(obj, (Transform, LocalDef)) or getattr(obj, "__diffprog_parsed__", None) is not None or \
                self.host.accepts(obj):
            return obj
        if obj is _REPORTED:
            return None
        what = gast.unparse(function_node).strip()
        self.reporter.error(codes.UNRESOLVED, f"cannot tell statically which function '{what}' in {title} is",
                            self.origin(function_node),
                            "pass a function defined with def (at module level, or nested in this one) by its name")
        return None

    def _param_count(self, function):
        """How many arguments `function` takes, when known before argument types are (None otherwise)."""
        if isinstance(function, Transform):
            return None if function.kind in ("jvp_function", "derived") else self._param_count(function.function)
        if isinstance(function, LocalDef):
            return len(function.node.args.args)
        return self.host.param_count(function)

    def _transform_compiler(self, function, node, title):
        """(compiler, captured values) for the function a transform is applied to; None when reported. A nested
        def's free variables of the enclosing function become extra parameters, after its own."""
        if isinstance(function, Transform):
            if function.kind == "derived":
                return self.host.compiler_for(function.function), []
            inner = self._transform_compiler(function.function, node, title)
            if inner is None:
                return None
            compiler, captured = inner
            if function.kind == "jvp_function":
                if captured:
                    self.reporter.error(codes.UNSUPPORTED, f"{title}: the tangent map of a nested function that reads "
                                        "variables of the enclosing function is not supported",
                                        self.origin(node), "pass those variables as arguments, or use diffprog.jvp")
                    return None
                return self.host.tangent_compiler(compiler), []
            outputs = tuple(range(1, 1 + len(function.argnums)))
            if function.kind == "value_and_grad":
                outputs = (0,) + outputs
            return self.host.gradient_compiler(compiler, function.argnums, outputs), captured
        if isinstance(function, LocalDef):
            return self._local_compiler(function, node, title)
        try:
            compiler = self.host.compiler_for(function)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return None
        return compiler, []

    def _local_compiler(self, local, node, title):
        """A nested def as a function of its own: variables of the enclosing function it reads are passed as
        extra parameters (their current values, as Python's closures read them)."""
        fdef = local.node
        free = sorted({n.id for n in gast.walk(fdef) if isinstance(n, gast.Name) and isinstance(n.ctx, gast.Load)}
                      - control.local_names(fdef))
        parsed = local.scope.parsed
        closure, captured, values = dict(parsed.closure), [], []
        for name in free:
            scope = local.scope
            while scope is not None and name not in scope.bindings and name not in scope.locals:
                scope = scope.parent
            if scope is None:
                continue  # a global or a builtin, looked up as for any function
            if name in scope.local_defs:
                if scope.local_defs[name].node is fdef:
                    continue
                self.reporter.error(codes.UNSUPPORTED,
                                    f"{title}: '{fdef.name}' calls '{name}', a function nested in the "
                                    "enclosing one", self.origin(node), f"define '{name}' at module level")
                return None
            binding = scope.bindings[name] if name in scope.bindings else self._bind_name(scope, name)
            if isinstance(binding, str) or (isinstance(binding, tuple) and getattr(binding, "cls", None) is not None):
                captured.append(name)  # a number, an array or a registered-type value (passed field by field)
                values.append(self._binding_value(binding))
            elif isinstance(binding, C.Const):
                closure[name] = binding.value
            elif isinstance(binding, Denotation) and binding.obj is not AMBIGUOUS and \
                    not isinstance(binding.obj, LocalDef):
                closure[name] = binding.obj
            else:
                self.reporter.error(codes.UNSUPPORTED,
                                    f"{title}: '{fdef.name}' reads '{name}' of the enclosing function, "
                                    "which is not a number or an array", self.origin(node),
                                    f"pass '{name}' (or its elements) to '{fdef.name}' as arguments")
                return None
        copied = copy.copy(fdef)
        copied.args = copy.copy(fdef.args)
        copied.args.args = list(fdef.args.args) + [
            gast.Name(id=name, ctx=gast.Param(), annotation=None, type_comment=None) for name in captured]
        copied.args.defaults = []
        copied.decorator_list = []
        standalone = replace(parsed, fn=None, node=copied, closure=closure)
        try:
            compiler = self.host.standalone_compiler(standalone)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return None
        return compiler, values

    def _transform_args(self, function, node, title, count):
        """The call's arguments as atoms (positional, by keyword, or defaults), or None when reported."""
        fdef = None
        if isinstance(function, LocalDef):
            fdef, parsed, parent = function.node, function.scope.parsed, function.scope
        else:
            parsed = self.host.source_of(function)
            if parsed is not None:
                fdef, parent = parsed.node, None
        values = [self.expr(a) for a in node.args]
        if node.keywords or (fdef is not None and len(values) < len(fdef.args.args)):
            if fdef is None:
                self.reporter.error(codes.UNSUPPORTED, f"pass the arguments of {title} by position", self.origin(node),
                                    "write every argument, in order")
                return None
            params = [a.id for a in fdef.args.args]
            keywords = {k.arg: k for k in node.keywords}
            defaults = self._defaults(fdef, parsed, parent)
            for param in params[len(values):]:
                if param in keywords:
                    values.append(self.expr(keywords.pop(param).value))
                elif param in defaults:
                    values.append(defaults[param])
                else:
                    self.reporter.error(codes.UNSUPPORTED, f"missing argument '{param}' in the call of {title}",
                                        self.origin(node), "pass every argument")
                    return None
            if keywords:
                self.reporter.error(codes.UNSUPPORTED,
                                    f"unknown argument '{next(iter(keywords))}' in the call of {title}",
                                    self.origin(node), f"its arguments are {', '.join(params)}")
                return None
        if count is not None and len(values) != count:
            self.reporter.error(codes.UNSUPPORTED, f"{title} takes {count} argument{'s' if count != 1 else ''}, not "
                                f"{len(values)}", self.origin(node), "pass one value per argument of the function")
            return None
        return self._transform_atoms(values, node, title)

    def _transform_atoms(self, values, node, title):
        """(flat atoms, layouts) for the arguments of a transform call: a registered-type value is passed as its
        fields (one atom per leaf, as the derived code takes it), its layout (types.layout.Node) recorded so the
        call's expansion can rebuild it; None for numbers and arrays. None when reported."""
        atoms, layouts = [], []
        for value in values:
            if isinstance(value, (C.Var, C.Const)):
                atoms.append(value)
                layouts.append(None)
                continue
            if _is_typed(value):
                leaves = list(_typed_leaves(value))
                if all(isinstance(leaf, (C.Var, C.Const)) for leaf in leaves):
                    atoms.extend(leaves)
                    layouts.append(_layout_of_value(value))
                    continue
            what = _describe_value(value) if not isinstance(value, ShapeValue) else "an array's shape"
            self.reporter.error(codes.UNSUPPORTED, f"{what} cannot be passed to {title} inside differentiated code yet",
                                self.origin(node), "pass floats, ints, arrays or values of registered types (the "
                                "elements of a tuple one by one)")
            return None
        return atoms, tuple(layouts)

    def _nested_values(self, values, layouts):
        """The placeholders' flat values regrouped per returned value: a registered-type result (or gradient, or
        tangent, of a tangent type) rebuilt as a tagged tuple from its fields."""
        leaves = iter(values)
        return [_rebuild_value(node, leaves) for node in layouts]

    def _emit_nested(self, kind, compiler, args, outputs, node, hint, title, label, primals=0, user=0, layouts=None):
        """The placeholders for one transform call (one per flat value it gives back: a registered-type value
        gives one per field), expanded at specialization."""
        call = NestedCall(kind, compiler, len(args), outputs, self.origin(node), label, title, primals, user,
                          layouts=layouts, host=self.host)
        results = []
        for k, prim in enumerate(call.prims):
            target = hint if outputs == 1 and hint is not None and C.Var(hint) not in args else \
                self.names.temp(label)
            self._emit(C.Assign(target, C.Call(prim, tuple(args)), self.origin(node)))
            results.append(C.Var(target))
        return results

    def _apply_transform(self, transform: Transform, node, hint) -> Value:
        """`dp.grad(g)(x, y)`: the gradient's placeholders; the value has the structure diffprog.grad gives."""
        title = f"{transform.title}(...)" if transform.kind != "derived" else transform.title
        found = self._transform_compiler(transform, node, title)
        if found is None:
            return C.Const(0.0)
        compiler, captured = found
        count = self._param_count(transform) if transform.kind != "jvp_function" else None
        found = self._transform_args(_innermost(transform), node, title, count)
        if found is None:
            return C.Const(0.0)
        args, layouts = found
        found = self._transform_atoms(captured, node, title)
        if found is None:
            return C.Const(0.0)
        captured, captured_layouts = found
        layouts = _plain_if_untyped(layouts + captured_layouts)
        try:
            outputs, returns_tuple = compiler.arity(layouts)
            if transform.kind in ("grad", "value_and_grad"):
                returned, of_tuple = compiler.inner.arity(layouts)
                if len(returned) != 1 or of_tuple or returned[0] is not None:
                    what = f"a {returned[0].cls.__name__}" if len(returned) == 1 and returned[0] is not None \
                        else "a tuple"
                    self.reporter.error(codes.NOT_SCALAR, f"{title}: grad needs a function returning one number, but "
                                        f"'{_function_name(transform.function)}' returns {what}", self.origin(node),
                                        "use diffprog.jvp, or differentiate one element of the result")
                    return C.Const(0.0)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return C.Const(0.0)
        label = f"{_LABELS[transform.kind]}_{_function_name(_innermost(transform))}"
        flat = self._emit_nested("call", compiler, args + captured, _flat_count(outputs), node,
                                 hint if all(o is None for o in outputs) else None, title, label, layouts=layouts)
        values = self._nested_values(flat, outputs)
        if transform.kind == "grad":
            return values[0] if transform.single else TupleValue(tuple(values))
        if transform.kind == "value_and_grad":
            grads = values[1] if transform.single else TupleValue(tuple(values[1:]))
            return TupleValue((values[0], grads))
        return TupleValue(tuple(values)) if returns_tuple else values[0]

    def _report_nested(self, error, node):
        """Problems found in the function a transform is applied to: at their own lines, reached through the call
        (those without a place, at the call)."""
        site = self.origin(node)
        for d in error.diagnostics:
            if d.origin is None:
                origin = site
            elif tuple(d.origin.chain[:1]) == (site,):  # reported through this call already
                origin = d.origin
            else:
                origin = replace(d.origin, chain=tuple(site.chain) + (site,) + tuple(d.origin.chain))
            self.reporter.diagnostics.append(replace(d, origin=origin))


class PointTransformLowering(TransformCallLowering):
    """`dp.jvp(g, primals, tangents)` and `dp.hvp(g, primals, vector)`: transforms applied at a point."""

    def _apply_at_point(self, kind, node, hint):
        """`dp.jvp(g, primals, tangents)` -> (value, tangent); `dp.hvp(g, primals, vector)` -> a tuple with one
        entry per argument of g."""
        title = self._title(node)
        failed = TupleValue((C.Const(0.0), C.Const(0.0))) if kind == "jvp" else C.Const(0.0)
        if len(node.args) != 3 or node.keywords:
            self.reporter.error(codes.UNSUPPORTED, f"{title}: diffprog.{kind} takes the function, the primals and the "
                                f"{'tangents' if kind == 'jvp' else 'vector'}", self.origin(node),
                                f"write diffprog.{kind}(g, (x, y), ({'dx, dy' if kind == 'jvp' else 'vx, vy'}))")
            return failed
        function = self._transform_target(node.args[0], title)
        if function is None:
            return failed
        found = self._transform_compiler(function, node, title)
        if found is None:
            return failed
        compiler, captured = found
        primals, tangents = (self._argument(a, True) for a in node.args[1:])
        if not all(isinstance(v, TupleValue) and v.cls is None for v in (primals, tangents)):
            self.reporter.error(codes.UNSUPPORTED,
                                f"{title}: the primals and the {'tangents' if kind == 'jvp' else 'vector'}"
                                " must be tuples", self.origin(node), "write them as tuples: (x,) for one argument")
            return failed
        count = self._param_count(function)
        n = len(primals.items)
        if len(tangents.items) != n or (count is not None and n != count):
            expected = f"'{_function_name(function)}' takes {count}" if count is not None else f"{n} primals"
            self.reporter.error(codes.UNSUPPORTED, f"{title}: {n} primals and {len(tangents.items)} "
                                f"{'tangents' if kind == 'jvp' else 'vector entries'}, but {expected}",
                                self.origin(node), "pass one primal and one tangent per argument (None for ints)")
            return failed
        # captured variables of a nested def are primals after the user's, with no tangent along them
        found = self._transform_atoms(list(primals.items) + list(captured), node, title)
        if found is None:
            return failed
        primal_atoms, primal_layouts = found
        zero = [self._zero_tangent(v, node) for v in captured]
        tangent_atoms = self._aligned_tangents(primal_layouts, list(tangents.items) + zero, node, title, kind)
        if tangent_atoms is None:
            return failed
        tangent_atoms = [C.Const(float(t.value)) if isinstance(t, C.Const) and type(t.value) is int else t
                         for t in tangent_atoms]
        args = primal_atoms + tangent_atoms
        layouts = _plain_if_untyped(primal_layouts)
        primal_count = len(primal_atoms)
        label = f"{kind}_{_function_name(function)}"
        if kind == "hvp":  # per argument of g: a number, an array, a tangent-type value, or None for an int
            outputs = tuple(None if node is None else L.tangent_node(node) for node in primal_layouts[:n])
            values = self._emit_nested("hvp", compiler, args, _flat_count(outputs), node, None, title, label,
                                       primal_count, n, layouts=layouts)
            return TupleValue(tuple(self._nested_values(values, outputs)))
        try:
            returned, returns_tuple = compiler.arity(layouts)
        except DifferentiabilityError as error:
            self._report_nested(error, node)
            return failed
        outputs = tuple(returned) + tuple(None if r is None else L.tangent_node(r) for r in returned)
        values = self._emit_nested("jvp", compiler, args, _flat_count(outputs), node, None, title, label,
                                   primal_count, layouts=layouts)
        values = self._nested_values(values, outputs)
        count = len(returned)
        if returns_tuple:
            return TupleValue((TupleValue(tuple(values[:count])), TupleValue(tuple(values[count:]))))
        return TupleValue((values[0], values[1]))

    def _aligned_tangents(self, layouts, tangents, node, title, kind):
        """The tangents (or hvp's vector) as flat atoms aligned with the primals' flat atoms: a registered-type
        primal's tangent is a value of its tangent type, whose fields go where the primal's derivative-carrying
        fields are (0.0 where it has none). None when reported."""
        what = "tangent" if kind == "jvp" else "vector entry"
        atoms = []
        for k, (layout, tangent) in enumerate(zip(layouts, tangents)):
            if layout is None:
                found = self._transform_atoms([tangent], node, title)
                if found is None:
                    return None
                if found[1][0] is not None:
                    self.reporter.error(codes.UNSUPPORTED, f"{title}: the {what} for argument {k + 1} is a "
                                        f"{tangent.cls.__name__}, but the argument is a number or an array",
                                        self.origin(node), f"pass a {what} of the argument's type")
                    return None
                atoms.extend(found[0])
                continue
            wanted = L.tangent_node(layout)
            if not (_is_typed(tangent) and _layout_of_value(tangent) == wanted):
                self.reporter.error(codes.UNSUPPORTED,
                                    f"{title}: the {what} for argument {k + 1} (a {layout.cls.__name__}) "
                                    f"must be a {wanted.cls.__name__}, not {_describe_value(tangent)}",
                                    self.origin(node), f"pass a value of the tangent type: diffprog.zero_tangent(x) "
                                    f"for none, or {wanted.cls.__name__}(...)")
                return None
            leaves = iter(_typed_leaves(tangent))
            atoms.extend(next(leaves) if in_tangent else C.Const(0.0) for _, in_tangent in layout.leaves())
        return atoms


def _innermost(transform):
    """The function under a chain of transforms (grad of grad of g: g)."""
    while isinstance(transform, Transform) and transform.kind != "derived":
        transform = transform.function
    return transform.function if isinstance(transform, Transform) else transform


def _function_name(function) -> str:
    if isinstance(function, Transform):
        return _function_name(_innermost(function))
    if isinstance(function, LocalDef):
        return function.node.name
    return getattr(function, "__name__", None) or getattr(function, "name", None) or "function"

