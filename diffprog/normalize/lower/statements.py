"""Statements and structured control flow: assignments (unpacking, tuples and registered-type values split into
one variable per element), `if`, `return`, `break`/`continue` as flags, and the branches decided at compile time
(isinstance on a registered type) pruned. Loops are in loops.py.
"""
from __future__ import annotations

import gast

from ...frontend.syntax import report_unsupported
from ...ir import core as C
from ...rules import REGISTRY
from ...custom_types import protocol as P
from .. import control
from .context import LoweringContext, Scope
from .values import (AMBIGUOUS, Denotation, Fields, LocalDef, ShapeValue, TupleValue, Value, _class_name, _is_typed,
                     _isinstance_of, _leaf_names, _same_shape)
from ... import codes


class StatementLowering(LoweringContext):
    """Blocks, assignments, `if` and `return`: each user statement becomes core assignments into this block."""

    def _lower_body(self, scope: Scope, node, top_level=False, constructor=False):
        """Lowers a function body; returns (core statements, the value it returns). A `constructor` (an inlined
        `__init__`) returns nothing: its value is the object it fills in."""
        outer_scope, self.scope = self.scope, scope
        self._returns_tuple = False
        body_stmts = self._prune(node.body)
        if not constructor and not control.always_returns(body_stmts):
            what = "does not return a value on every path" if control.has_return(node.body) else "returns nothing"
            self.reporter.error(codes.MISSING_RETURN, f"function '{node.name}' {what}", scope.parsed.origin(node),
                                "add a return statement at the end of every path")
        tail = None
        if body_stmts and isinstance(body_stmts[-1], gast.Return) and not control.block_exits(body_stmts[:-1]):
            body_stmts, tail = body_stmts[:-1], body_stmts[-1]
        with self._emitting() as block:
            if control.block_exits(body_stmts):
                scope.returned = self.names.temp("returned")
                self._emit(C.Assign(scope.returned, C.Const(False), scope.parsed.origin(node)))
            block.extend(self._lower_block(body_stmts))
            if tail is not None:
                result = self._return_value(tail)
                if scope.result is not None:  # earlier returns exist: join them in the result variables
                    self._assign_result(scope, result, tail)
                    result = self._result_value(scope)
            else:
                result = self._result_value(scope) if scope.result is not None else C.Const(0.0)
        self.scope = outer_scope
        return block, result

    def _lower_block(self, stmts) -> list:
        stmts = self._prune(stmts)
        with self._emitting() as block:
            for k, stmt in enumerate(stmts):
                self.statement(stmt)
                jumps = control.exits(stmt)
                rest = stmts[k + 1:]
                if jumps and rest:
                    guard = self._guard(jumps, stmt)
                    self._emit(C.If(guard, self._lower_block(rest), [], self.origin(stmt)))
                    break
        return block

    # ---- static decisions: isinstance on registered types ------------------------------------------------------
    def _prune(self, stmts) -> list:
        """An `if` decided at compile time (isinstance on a value whose type is known statically, a constant)
        keeps only the branch taken, and statements after one that always leaves the block are dropped. The
        branch not taken may not even lower: `__mul__` written for both a Quaternion and a number."""
        out = []
        for stmt in stmts:
            if isinstance(stmt, gast.If):
                decided = self._static_test(stmt.test)
                if decided is not None:
                    out.extend(self._prune(stmt.body if decided else stmt.orelse))
                    if out and _leaves_block(out[-1]):
                        break
                    continue
            out.append(stmt)
            if _leaves_block(stmt):
                break
        return out

    def _static_test(self, test):
        """True/False when the condition is decided at compile time, else None. Emits nothing."""
        if isinstance(test, gast.Constant) and isinstance(test.value, bool):
            return test.value
        if isinstance(test, gast.UnaryOp) and isinstance(test.op, gast.Not):
            inner = self._static_test(test.operand)
            return None if inner is None else not inner
        if isinstance(test, gast.BoolOp):
            values = [self._static_test(v) for v in test.values]
            decisive = isinstance(test.op, gast.Or)
            if decisive in values:
                return decisive
            return None if None in values else not decisive
        if isinstance(test, gast.Call) and len(test.args) == 2 and not test.keywords and \
                all(self._stable(n) for n in [test.func] + list(test.args)):
            reported = len(self.reporter.diagnostics)
            with self._emitting() as emitted:
                func, value, classes = (self.expr(n) for n in [test.func] + list(test.args))
            if emitted or len(self.reporter.diagnostics) != reported:
                del self.reporter.diagnostics[reported:]
                return None
            if isinstance(func, Denotation) and func.obj is isinstance and isinstance(classes, Denotation):
                return _isinstance_of(value, classes.obj)
        return None

    def _stable(self, node) -> bool:
        """A name (or attribute of one) whose value cannot change while this function runs: a parameter it
        never reassigns, or a global."""
        while isinstance(node, gast.Attribute):
            node = node.value
        if not isinstance(node, gast.Name):
            return False
        scope = self.scope
        if node.id in scope.locals:
            return node.id in {a.id for a in scope.node.args.args} and \
                node.id not in control.assigned_names(scope.node)
        while scope is not None:
            if node.id in scope.locals or node.id in scope.bindings:
                return False
            scope = scope.parent
        return True

    def _guard(self, jumps, node) -> C.Var:
        """`not (flag or ...)` for the flags the jumps in `jumps` set."""
        loop = self.scope.loops[-1] if self.scope.loops else None
        flags = []
        if "break" in jumps:
            flags.append(loop.brk)
        if "continue" in jumps:
            flags.append(loop.cont)
        if "return" in jumps:
            flags.append(self.scope.returned)
        flag = C.Var(flags[0])
        for other in flags[1:]:
            flag = self._call(REGISTRY.named("or"), (flag, C.Var(other)), node)
        return self._call(REGISTRY.named("not"), (flag,), node, hint=self.names.temp("go_on"))

    # ---- statements --------------------------------------------------------------------------------------------
    def statement(self, node):
        if report_unsupported(node, self.scope.parsed, self.reporter):
            return
        method = getattr(self, "stmt_" + type(node).__name__, None)
        if method is None:
            self.reporter.error(codes.UNSUPPORTED, f"'{type(node).__name__}' statements cannot be differentiated",
                                self.origin(node), "rewrite it with assignments, if/else and loops")
            return
        method(node)

    def stmt_Pass(self, node):
        pass

    def stmt_Assert(self, node):
        """`assert cond, "message"`: checked in the primal (numba raises AssertionError in nopython mode too); a
        check has no derivative. The message must be a constant: it is compiled into the code."""
        cond = self._fresh_cond(node.test)
        args = (cond,)
        if node.msg is not None:
            if not (isinstance(node.msg, gast.Constant) and isinstance(node.msg.value, str)):
                self.reporter.error(codes.UNSUPPORTED, "an assert message must be a constant string",
                                    self.origin(node.msg), 'write assert cond, "what went wrong"')
                return
            args = (cond, C.Const(node.msg.value))
        self._emit(C.Effect(C.Call(REGISTRY.named("assert"), args), self.origin(node)))

    def stmt_Expr(self, node):
        if isinstance(node.value, gast.Constant):  # docstrings
            return
        self.expr(node.value)

    def stmt_Assign(self, node):
        if len(node.targets) == 1:
            self.assign(node.targets[0], node.value, node)
            return
        value = self.expr(node.value)
        for target in node.targets:
            self._assign_value(target, value, node)

    def stmt_AnnAssign(self, node):
        if node.value is not None:
            self.assign(node.target, node.value, node)

    def stmt_AugAssign(self, node):
        target = node.target
        if isinstance(target, gast.Subscript):
            self._augmented_store(node)
            return
        if not isinstance(target, gast.Name):
            self._assign_value(target, C.Const(0.0), node)  # reports the unsupported target
            return
        load = gast.Name(id=target.id, ctx=gast.Load(), annotation=None, type_comment=None)
        binop = gast.BinOp(left=gast.copy_location(load, target), op=node.op, right=node.value)
        self.assign(target, gast.copy_location(binop, node), node)

    def _augmented_store(self, node):
        """`out[i] += v`: read the element once, combine, write it back."""
        array = self._store_target(node.target)
        if array is None:
            return
        index = self._indices(node.target.slice)
        value = self._atom(node.value)
        current = self._call(REGISTRY.named("getitem"), (array, *index), node)
        combined = self._call(REGISTRY.lookup(type(node.op).__name__), (current, value), node)
        self._emit(C.Store(array.name, tuple(index), combined, self.origin(node)))

    def assign(self, target, value_node, node):
        if isinstance(target, gast.Name) and target.id not in self.scope.local_defs:
            core = self._bind_name(self.scope, target.id)
            if not isinstance(self.scope.bindings[target.id], tuple):
                value = self.expr(value_node, hint=core)
                self._assign_value(target, value, node)
                return
        self._assign_value(target, self.expr(value_node), node)

    def _assign_value(self, target, value: Value, node):
        if isinstance(target, gast.Name):
            self._assign_name(self.scope, target.id, value, node)
        elif isinstance(target, (gast.Tuple, gast.List)):
            self._unpack(target, value, node)
        elif isinstance(target, gast.Subscript):
            array = self._store_target(target)
            if array is not None:
                index = self._indices(target.slice)
                atom = value if isinstance(value, (C.Var, C.Const)) else self._not_a_number(value, node)
                self._emit(C.Store(array.name, tuple(index), atom, self.origin(node)))
        elif isinstance(target, gast.Attribute):
            self._store_field(target, value, node)
        else:
            self.reporter.error(codes.UNSUPPORTED, "unsupported assignment target", self.origin(target),
                                "assign to plain variable names")

    def _store_target(self, target):
        """The local array a subscript assignment writes into, or None (reported) when it cannot. A helper may
        fill a buffer its caller made; nothing may write into the differentiated function's own arguments."""
        name = target.value.id if isinstance(target.value, gast.Name) else None
        base = self.expr(target.value) if name is not None else None
        if isinstance(base, C.Var) and base.name in self._argument_arrays:
            self.reporter.error(codes.WRITES_ARGUMENT,
                                f"in-place write to the argument array '{name}'", self.origin(target),
                                f"write into a local copy instead: {name} = {name}.copy()")
            return None
        if not isinstance(base, C.Var):
            self.reporter.error(codes.UNSUPPORTED, "only local arrays can be written into", self.origin(target),
                                "assign to an element of a local array: out[i] = value")
            return None
        return base

    def _assign_name(self, scope: Scope, user_name: str, value: Value, node, origin=None):
        origin = origin or self.origin(node)
        existing = scope.bindings.get(user_name)
        if isinstance(value, TupleValue):
            if isinstance(existing, tuple) and getattr(existing, "cls", None) is not value.cls and \
                    any(self._ever_assigned(n) for n in _leaf_names(existing)):
                self.reporter.error(codes.UNSUPPORTED, f"'{user_name}' holds {_class_name(value.cls)} here but "
                                    f"{_class_name(existing.cls if hasattr(existing, 'cls') else None)} elsewhere",
                                    origin, "use a different variable name for each kind of value")
                return
            if existing is None or not isinstance(existing, tuple) or not _same_shape(existing, value):
                if existing is not None and not isinstance(existing, tuple) and self._ever_assigned(existing):
                    self.reporter.error(codes.UNSUPPORTED,
                                        f"'{user_name}' holds {_class_name(value.cls)} here but a number "
                                        "elsewhere", origin, "use a different variable name for the tuple")
                    return
                base = existing if isinstance(existing, str) else self.names.claim(
                    f"{scope.prefix}_{user_name}" if scope.prefix else user_name)
                existing = self._names_like(value, base)
                scope.bindings[user_name] = existing
            self._assign_components(existing, value, node, origin)
            return
        if isinstance(value, Denotation) and (existing in (None, value) or (
                isinstance(existing, str) and not self._ever_assigned(existing))):
            scope.bindings[user_name] = value  # a function bound to a name, known statically
            return
        if isinstance(value, Denotation) and isinstance(existing, Denotation):
            scope.bindings[user_name] = Denotation(AMBIGUOUS)  # which function depends on the path taken
            return
        if isinstance(value, (ShapeValue, Denotation)) or isinstance(existing, Denotation):
            self._not_a_number(value, node)
            return
        if isinstance(existing, tuple):
            self.reporter.error(codes.UNSUPPORTED, f"'{user_name}' holds a number here but a tuple elsewhere",
                                origin, "use a different variable name")
            return
        core = self._bind_name(scope, user_name)
        self._assigned.add(core)
        if value != C.Var(core):
            self._emit(C.Assign(core, value, origin))

    def _names_like(self, value, base):
        """Fresh core names shaped like a tuple value: `t_0`, `t_1` for a tuple, `q_w`, `q_x` for a Quaternion."""
        labels = P.info(value.cls).field_names if value.cls is not None else range(len(value.items))
        names = [self._names_like(item, f"{base}_{label}") if isinstance(item, TupleValue)
                 else self.names.claim(f"{base}_{label}") for label, item in zip(labels, value.items)]
        return Fields(names, value.cls) if value.cls is not None else tuple(names)

    def _assign_components(self, names, value, node, origin=None):
        origin = origin or self.origin(node)
        for name, item in zip(names, value.items):
            if isinstance(name, tuple):
                if not isinstance(item, TupleValue) or len(item.items) != len(name):
                    self.reporter.error(codes.UNSUPPORTED, "nested tuple shapes do not match", origin,
                                        "unpack into the same shape as the value")
                    continue
                self._assign_components(name, item, node, origin)
            elif isinstance(item, (C.Var, C.Const)):
                self._assigned.add(name)
                if item != C.Var(name):
                    self._emit(C.Assign(name, item, origin))
            else:
                self._not_a_number(item, node)

    def _unpack(self, target, value, node):
        if isinstance(value, ShapeValue):
            value = TupleValue(tuple(self._call(REGISTRY.named("shape"), (value.array, C.Const(k)), node)
                                     for k in range(len(target.elts))))
        if _is_typed(value) and not issubclass(value.cls, tuple):
            self.reporter.error(codes.UNSUPPORTED,
                                f"a {value.cls.__name__} value cannot be unpacked", self.origin(node),
                                "read its fields by name")
            return
        if not isinstance(value, TupleValue) or len(value.items) != len(target.elts):
            self.reporter.error(codes.UNSUPPORTED, f"cannot unpack this value into {len(target.elts)} variables",
                                self.origin(node), "unpack a tuple with the same number of elements")
            return
        # Snapshot variables the targets overwrite, so `a, b = b, a` swaps (and only those: `x, y, z =
        # q.rotate(...)` copies nothing).
        overwritten = set(_leaf_names(tuple(self.scope.bindings.get(t.id) for t in _target_names(target))))
        items = tuple(self._snapshot(item, node, overwritten) for item in value.items)
        for element, item in zip(target.elts, items):
            self._assign_value(element, item, node)

    def _snapshot(self, item, node, overwritten):
        if isinstance(item, TupleValue):
            return TupleValue(tuple(self._snapshot(i, node, overwritten) for i in item.items), item.cls)
        if isinstance(item, C.Var) and item.name in overwritten:
            copy = self.names.temp(item.name)
            self._emit(C.Assign(copy, item, self.origin(node)))
            return C.Var(copy)
        return item

    def stmt_If(self, node):
        cond = self._fresh_cond(node.test)
        body = self._lower_block(node.body)
        orelse = self._lower_block(node.orelse)
        self._emit(C.If(cond, body, orelse, self.origin(node)))

    def stmt_Return(self, node):
        scope = self.scope
        self._assign_result(scope, self._return_value(node), node)
        if scope.returned is not None:
            self._emit(C.Assign(scope.returned, C.Const(True), self.origin(node)))

    def _return_value(self, node) -> Value:
        if node.value is None:
            self.reporter.error(codes.MISSING_RETURN, "'return' without a value", self.origin(node),
                                "return the function's result")
            return C.Const(0.0)
        value = self.expr(node.value)
        if isinstance(value, TupleValue) and value.cls is None:
            self._returns_tuple = True
        return value

    def _assign_result(self, scope, value, node):
        if scope.result is None:
            scope.result = self._result_names(value, scope)
        shape_ok = _same_shape(scope.result, value) and \
            getattr(scope.result, "cls", None) is (value.cls if isinstance(value, TupleValue) else None)
        if not shape_ok:
            self.reporter.error(codes.UNSUPPORTED, "this return gives a different number of values than another return",
                                self.origin(node), "return the same kind of value on every path")
            return
        if isinstance(value, TupleValue):
            self._assign_components(scope.result, value, node)
        elif isinstance(value, (C.Var, C.Const)):
            self._emit(C.Assign(scope.result, value, self.origin(node)))
        else:
            self._not_a_number(value, node)

    def _result_names(self, value, scope):
        base = f"{scope.prefix}_result" if scope.prefix else "result"
        if isinstance(value, TupleValue) and value.cls is not None:
            return self._names_like(value, base)
        if isinstance(value, TupleValue):
            return tuple(self._result_names(item, scope) if isinstance(item, TupleValue)
                         else self.names.claim(base) for item in value.items)
        return self.names.claim(base)

    def _result_value(self, scope):
        return self._binding_value(scope.result)

    def stmt_Break(self, node):
        loop = self.scope.loops[-1]
        self._emit(C.Assign(loop.brk, C.Const(True), self.origin(node)))

    def stmt_Continue(self, node):
        loop = self.scope.loops[-1]
        self._emit(C.Assign(loop.cont, C.Const(True), self.origin(node)))

    def stmt_FunctionDef(self, node):
        self.scope.local_defs[node.name] = LocalDef(node, self.scope)


def _target_names(target) -> list:
    """The plain names an unpacking target assigns, nested ones included."""
    if isinstance(target, gast.Name):
        return [target]
    if isinstance(target, (gast.Tuple, gast.List)):
        return [n for element in target.elts for n in _target_names(element)]
    return []


def _leaves_block(stmt) -> bool:
    """The statements after `stmt` in its block never run."""
    return isinstance(stmt, (gast.Return, gast.Break, gast.Continue)) or control.always_returns([stmt])

