"""The Lowerer: one lowering of a function into the core language, assembled from its parts (statements, loops,
expressions, calls, registered-type records, transform calls), which share one emission context (context.py).
"""
from __future__ import annotations

from ...errors import Reporter
from ...frontend.source import ParsedFunction
from ...ir import core as C
from ...rules import REGISTRY
from .. import control
from .calls import CallLowering
from .context import Scope
from .expressions import ExpressionLowering
from .host import TransformHost
from .loops import LoopLowering
from .records import RecordLowering
from .statements import StatementLowering
from .transform_calls import PointTransformLowering
from .values import Fields, TupleValue, _layout_of_value, _leaf_names
from ... import codes


class Lowerer(StatementLowering, LoopLowering, ExpressionLowering, CallLowering, RecordLowering,
              PointTransformLowering):
    """Lowers one function (and everything inlined into it). Construct it with the reporter problems go to and
    the TransformHost that transforms called in the code are made with; then call `lower_function`."""

    # ---- entry point -------------------------------------------------------------------------------------------
    def lower_function(self, parsed: ParsedFunction, param_layouts=None) -> C.Function:
        """The core function. `param_layouts` gives, per parameter, the layout (types.layout.Node) of a value of a
        registered type, or None: such a parameter becomes one core parameter per field. What the function
        returns is described by `self.result_layouts` (a Node or None per returned value) afterwards."""
        node = parsed.node
        scope = Scope(parsed, node, prefix="", locals=control.local_names(node))
        self.inline_stack.append((parsed.file, node.lineno + parsed.line_offset, node.col_offset))
        layouts = param_layouts or (None,) * len(node.args.args)
        params, origins = [], {}
        for a, layout in zip(node.args.args, layouts):
            if layout is None:
                params.append(self._bind_name(scope, a.id))
            else:
                scope.bindings[a.id] = self._names_for_layout(a.id, layout)
                params.extend(_leaf_names(scope.bindings[a.id]))
            origins.update({p: parsed.origin(a) for p in params if p not in origins})
        reassigned = control.assigned_names(node)
        self._argument_arrays = {scope.bindings[a.id] for a in node.args.args
                                 if a.id not in reassigned and isinstance(scope.bindings.get(a.id), str)}
        rule = REGISTRY.lookup(parsed.fn, len(params)) if parsed.fn is not None and param_layouts is None else None
        if rule is not None:  # the function has a user derivative rule: differentiate through the rule
            body, results = self._through_rule(rule, scope, node, [C.Var(p) for p in params])
        else:
            body, results = self._lower_body(scope, node, top_level=True)
        self.inline_stack.pop()
        user_tuple = isinstance(results, TupleValue) and results.cls is None
        results = results if user_tuple else TupleValue((results,))
        self.scope = scope  # problems with the returned values are reported in the function itself
        self.result_layouts = tuple(_layout_of_value(item) for item in results.items)
        self.returns_user_tuple = len(node.body) > 0 and user_tuple
        atoms = tuple(self._flat_atoms(results, node))
        returns_tuple = len(node.body) > 0 and (self._returns_tuple or len(atoms) != len(results.items))
        return C.Function(parsed.name, params, body, atoms, returns_tuple, parsed.origin(node), origins)

    def _names_for_layout(self, base, layout):
        """Core parameter names for a registered-type argument: `q_w`, `q_x`, ..., `pose_q_w` when nested."""
        names = []
        for name, child in zip(layout.names, layout.children):
            wanted = f"{base}_{name}"
            names.append(self.names.claim(wanted) if child is None else self._names_for_layout(wanted, child))
        for leaf in _leaf_names(names):
            self._assigned.add(leaf)
        return Fields(names, layout.cls)

    def _flat_atoms(self, value: TupleValue, node, nested=False):
        for item in value.items:
            if isinstance(item, TupleValue) and (item.cls is not None):
                yield from self._flat_atoms(item, node, nested=True)
            elif isinstance(item, TupleValue):
                self.reporter.error(codes.UNSUPPORTED, "nested tuples cannot be returned yet", self.origin(node),
                                    "return a flat tuple")
            elif isinstance(item, (C.Var, C.Const)):
                yield item
            else:
                yield self._not_a_number(item, node)


def lower(parsed: ParsedFunction, reporter: Reporter, host: TransformHost) -> C.Function:
    return Lowerer(reporter, host).lower_function(parsed)
