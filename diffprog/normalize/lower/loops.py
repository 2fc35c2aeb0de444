"""Loops: `for` over a range (a while loop over a counter when it may exit early), `while` (its test recomputed
at the end of each iteration, guarded by the break/return flags), and `with diffprog.checkpoint()` blocks.
"""
from __future__ import annotations

import gast

from ...frontend.markers import checkpoint
from ...ir import core as C
from ...rules import REGISTRY
from .. import control
from .context import Loop, LoweringContext
from .values import Denotation, TupleValue
from ... import codes


class LoopLowering(LoweringContext):
    """`for`, `while` and checkpointed blocks. Early exits become flags and plain `if`s (statements.py guards)."""

    def stmt_For(self, node):
        if node.orelse:
            self.reporter.error(codes.UNSUPPORTED, "'for ... else' cannot be differentiated", self.origin(node),
                                "use a flag variable instead of the else clause")
        if not self._is_range(node.iter):
            rewritten = self._iteration_as_range(node)
            if rewritten is not None:
                if rewritten is not node:
                    self.statement(rewritten)
                return
        bounds = self._range_bounds(node)
        if bounds is None:
            return
        if not isinstance(node.target, gast.Name):
            self.reporter.error(codes.UNSUPPORTED, "the loop variable must be a plain name", self.origin(node.target),
                                "write `for i in range(...)` and unpack inside the loop")
            return
        start, stop, step = bounds
        jumps = control.block_exits(node.body)
        loop = self._open_loop(jumps, node)
        var = self._bind_name(self.scope, node.target.id)
        if not ({"break", "return"} & jumps):
            body = self._loop_body(node, loop, prologue=[])
            self._emit(C.ForRange(var, start, stop, step, body, self.origin(node)))
        else:
            self._early_exit_for(node, loop, var, start, stop, step)
        self.scope.loops.pop()

    def _early_exit_for(self, node, loop, var, start, stop, step):
        """`for` that may break or return: a while loop over an explicit counter."""
        counter = self.names.temp(var + "_next")
        origin = self.origin(node)
        self._emit(C.Assign(counter, start, origin))
        cond = self.names.temp("cond")
        self._emit(C.Assign(cond, C.Call(REGISTRY.named("range_continues"), (C.Var(counter), stop, step)), origin))
        prologue = [C.Assign(var, C.Var(counter), origin)]
        body = self._loop_body(node, loop, prologue)
        with self._emitting() as tail:
            self._emit(C.Assign(counter, C.Call(REGISTRY.named("add"), (C.Var(counter), step)), origin))
            self._recompute_cond(cond, loop, node, lambda: self._emit(C.Assign(
                cond, C.Call(REGISTRY.named("range_continues"), (C.Var(counter), stop, step)), origin)))
        self._emit(C.While(cond, body + tail, origin))

    def stmt_With(self, node):
        """`with diffprog.checkpoint(snapshots=...):` marks the `for` loops of its block for binomial
        checkpointing (transforms/reverse/checkpoint.py); everything else about the block is ordinary code."""
        call = node.items[0].context_expr
        callee = self.expr(call.func)
        if not isinstance(callee, Denotation) or callee.obj is not checkpoint:
            self.reporter.error(codes.UNSUPPORTED, "a 'with' block cannot be differentiated", self.origin(node),
                                "move the context manager outside the differentiated function "
                                "(only `with diffprog.checkpoint():` is understood)")
            return
        snapshots = self._checkpoint_snapshots(call)
        block = self._lower_block(node.body)
        loops = [stmt for stmt in block if isinstance(stmt, C.ForRange)]
        if not loops:
            self.reporter.error(codes.UNSUPPORTED,
                                "diffprog.checkpoint needs a `for` loop over a range directly in its "
                                "block (a loop that may break or return early cannot be checkpointed)",
                                self.origin(node), "put the `for i in range(...)` loop itself under the `with`, "
                                "and exit it through its range instead of break/return")
        for loop in loops:
            loop.checkpoint = snapshots
        self.block.extend(block)

    def _checkpoint_snapshots(self, call) -> int:
        """The `snapshots` argument as a number known at compile time (0: chosen at run time)."""
        given = list(call.args) + [k.value for k in call.keywords]
        if len(given) > 1 or any(k.arg != "snapshots" for k in call.keywords):
            self.reporter.error(codes.UNSUPPORTED,
                                "diffprog.checkpoint takes one argument, snapshots", self.origin(call),
                                "write diffprog.checkpoint() or diffprog.checkpoint(snapshots=N)")
            return 0
        value = self._atom(given[0]) if given else C.Const(None)
        if value == C.Const(None):
            return 0
        if not (isinstance(value, C.Const) and type(value.value) is int and value.value >= 1):
            self.reporter.error(codes.UNSUPPORTED,
                                "diffprog.checkpoint(snapshots=...) must be a positive integer known when "
                                "the function is compiled", self.origin(given[0]),
                                "write a number, a module-level constant, or leave it out")
            return 0
        return value.value

    def stmt_While(self, node):
        if node.orelse:
            self.reporter.error(codes.UNSUPPORTED, "'while ... else' cannot be differentiated", self.origin(node),
                                "use a flag variable instead of the else clause")
        jumps = control.block_exits(node.body)
        loop = self._open_loop(jumps, node)
        cond = self._fresh_cond(node.test)
        body = self._loop_body(node, loop, prologue=[])
        with self._emitting() as tail:
            self._recompute_cond(cond.name, loop, node, lambda: self._recompute_test(node.test, cond.name))
        self._emit(C.While(cond.name, body + tail, self.origin(node)))
        self.scope.loops.pop()

    def _recompute_test(self, test, name):
        value = self._atom(test, hint=name)
        if value != C.Var(name):
            self._emit(C.Assign(name, value, self.origin(test)))

    def _recompute_cond(self, cond, loop, node, recompute):
        """At the end of an iteration: the loop goes on if nothing broke out and its test still holds."""
        flags = [f for f in (loop.brk, self.scope.returned if self._loop_may_return(node) else None) if f]
        if not flags:
            recompute()
            return
        stop = C.Var(flags[0])
        for other in flags[1:]:
            stop = self._call(REGISTRY.named("or"), (stop, C.Var(other)), node)
        self._emit(C.Assign(cond, C.Call(REGISTRY.named("not"), (stop,)), self.origin(node)))
        again = self.names.temp("cond")
        self._emit(C.Assign(again, C.Var(cond), self.origin(node)))
        with self._emitting() as block:
            recompute()
        self._emit(C.If(C.Var(again), block, [], self.origin(node)))

    def _loop_may_return(self, node):
        return "return" in control.block_exits(node.body)

    def _open_loop(self, jumps, node) -> Loop:
        loop = Loop()
        if "break" in jumps:
            loop.brk = self.names.temp("brk")
            self._emit(C.Assign(loop.brk, C.Const(False), self.origin(node)))
        if "continue" in jumps:
            loop.cont = self.names.temp("cont")
        self.scope.loops.append(loop)
        return loop

    def _loop_body(self, node, loop, prologue):
        with self._emitting() as block:
            block.extend(prologue)
            if loop.cont:
                self._emit(C.Assign(loop.cont, C.Const(False), self.origin(node)))
            block.extend(self._lower_block(node.body))
        return block

    # ---- iteration over arrays, enumerate, zip and tuples --------------------------------------------------------
    def _is_range(self, iterator) -> bool:
        return isinstance(iterator, gast.Call) and self._static_callee(iterator.func) is range

    def _static_callee(self, func):
        """The function a call's name denotes at compile time, or None (a method of a value, say); emits and
        reports nothing."""
        if not isinstance(func, (gast.Name, gast.Attribute)):
            return None
        reported = len(self.reporter.diagnostics)
        with self._emitting() as emitted:
            callee = self.expr(func)
        if emitted or len(self.reporter.diagnostics) != reported:
            del self.reporter.diagnostics[reported:]
            return None
        return callee.obj if isinstance(callee, Denotation) else None

    def _iteration_as_range(self, node):
        """`for v in arr` (rows of a 2-D array), `for i, v in enumerate(arr)`, `for a, b in zip(xs, ys)` become
        `for k in range(len(...)): v = arr[k] ...` (a ForRange, nothing new for the derivative passes); `for c in
        (1.0, 2.0)` over a tuple is unrolled. Returns the rewritten `for` (lowered by the caller), `node` itself when
        it was lowered here (unrolled), or None to fall through to the range path (which reports)."""
        iterator = node.iter
        callee = self._static_callee(iterator.func) if isinstance(iterator, gast.Call) else None
        if callee is enumerate and len(iterator.args) == 1 and not iterator.keywords:
            target = node.target
            if not (isinstance(target, gast.Tuple) and len(target.elts) == 2 and isinstance(target.elts[0], gast.Name)):
                self.reporter.error(codes.UNSUPPORTED, "unpack enumerate into two names", self.origin(target),
                                    "write `for i, v in enumerate(values)`")
                return node
            sequences, index, targets = [iterator.args[0]], target.elts[0], [target.elts[1]]
        elif callee is zip and len(iterator.args) >= 1 and not iterator.keywords:
            target = node.target
            if not (isinstance(target, gast.Tuple) and len(target.elts) == len(iterator.args)):
                self.reporter.error(codes.UNSUPPORTED, f"unpack zip into {len(iterator.args)} names",
                                    self.origin(target), "write `for a, b in zip(xs, ys)`")
                return node
            sequences, index, targets = list(iterator.args), None, list(target.elts)
        elif isinstance(iterator, gast.Call) and not isinstance(callee, type(lambda: 0)) and callee is not None \
                and getattr(callee, "__diffprog_function__", None) is None and not _returns_sequence(callee):
            return None  # range(...) with odd arguments, or a builtin diffprog does not iterate: reported there
        elif not isinstance(iterator, (gast.Name, gast.Tuple)):
            # `for v in helper(x)`, `for v in x[1:]`, `for row in m.T`: evaluated once, then iterated
            held = f"__dp_{self.names.temp('seq')}"
            here = lambda made: gast.copy_location(made, iterator)  # noqa: E731
            self.statement(here(gast.Assign(targets=[here(gast.Name(id=held, ctx=gast.Store(), annotation=None,
                                                                         type_comment=None))], value=iterator)))
            return gast.copy_location(gast.For(target=node.target, iter=here(gast.Name(
                id=held, ctx=gast.Load(), annotation=None, type_comment=None)), body=node.body, orelse=[],
                type_comment=None), node)
        else:
            if isinstance(iterator, gast.Tuple) or (isinstance(iterator, gast.Name) and
                                                    isinstance(self.expr(iterator), TupleValue)):
                self._unrolled_for(node)
                return node
            sequences, index, targets = [iterator], None, [node.target]
        return self._indexed_for(node, sequences, index, targets)

    def _indexed_for(self, node, sequences, index, targets):
        serial = self.names.temp("it")
        here = lambda made: gast.copy_location(made, node)  # noqa: E731
        name = lambda ident, ctx=gast.Load: here(gast.Name(id=ident, ctx=ctx(), annotation=None,  # noqa: E731
                                                            type_comment=None))
        prologue, reads, lengths = [], [], []
        if index is None:
            index = name(f"__dp_{serial}_k", gast.Store)
        k = name(index.id)
        for n, seq in enumerate(sequences):
            ranged = self._range_args(seq)
            if ranged is not None:  # zip(range(a, b), xs): the element is start + k * step
                start, stop, step = ranged
                bounds = []
                for label, part in (("start", start), ("stop", stop), ("step", step)):
                    held = f"__dp_{serial}_{n}_{label}"
                    prologue.append(here(gast.Assign(targets=[name(held, gast.Store)], value=part)))
                    bounds.append(name(held))
                start, stop, step = bounds
                reads.append(here(gast.BinOp(left=start, op=gast.Add(),
                                             right=here(gast.BinOp(left=k, op=gast.Mult(), right=step)))))
                count = here(gast.BinOp(left=here(gast.BinOp(
                    left=here(gast.BinOp(left=stop, op=gast.Sub(), right=start)), op=gast.Add(),
                    right=here(gast.BinOp(left=step, op=gast.Sub(), right=here(gast.Constant(value=1, kind=None)))))),
                    op=gast.FloorDiv(), right=step))
                lengths.append(count)
                continue
            held = f"__dp_{serial}_{n}"
            prologue.append(here(gast.Assign(targets=[name(held, gast.Store)], value=seq)))
            reads.append(here(gast.Subscript(value=name(held), slice=k, ctx=gast.Load())))
            lengths.append(here(gast.Call(func=name("len"), args=[name(held)], keywords=[])))
        length = lengths[0]
        for other in lengths[1:]:
            length = here(gast.Call(func=name("min"), args=[length, other], keywords=[]))
        body = [here(gast.Assign(targets=[t], value=r)) for t, r in zip(targets, reads)] + list(node.body)
        loop = here(gast.For(target=index, iter=here(gast.Call(func=name("range"), args=[length], keywords=[])),
                             body=body, orelse=[], type_comment=None))
        for stmt in prologue:
            self.statement(stmt)
        return loop

    def _range_args(self, seq):
        if not (isinstance(seq, gast.Call) and not seq.keywords and 1 <= len(seq.args) <= 3 and self._is_range(seq)):
            return None
        one = gast.copy_location(gast.Constant(value=1, kind=None), seq)
        zero = gast.copy_location(gast.Constant(value=0, kind=None), seq)
        args = list(seq.args)
        if len(args) == 3:
            step = args[2]
            if not (isinstance(step, gast.Constant) and isinstance(step.value, int) and step.value > 0):
                self.reporter.error(codes.UNSUPPORTED, "a range zipped with other sequences needs a positive constant "
                                    "step", self.origin(seq), "index the sequences with the counter instead")
        return (zero, args[0], one) if len(args) == 1 else (args[0], args[1], one) if len(args) == 2 else tuple(args)

    def _unrolled_for(self, node):
        """`for c in (a, b, c)`: the tuple is split into variables, so the body is repeated for each element."""
        if control.block_exits(node.body):
            self.reporter.error(codes.UNSUPPORTED, "break, continue or return in a loop over a tuple",
                                self.origin(node), "loop over range(len(...)) of an array instead")
            return
        value = self.expr(node.iter)
        if not isinstance(value, TupleValue):
            return
        for item in value.items:
            self._assign_value(node.target, item, node)
            self.block.extend(self._lower_block(node.body))

    def _range_bounds(self, node):
        iterator = node.iter
        callee = self.expr(iterator.func) if isinstance(iterator, gast.Call) else None
        if not (isinstance(callee, Denotation) and callee.obj is range and not iterator.keywords
                and 1 <= len(iterator.args) <= 3):
            self.reporter.error(codes.UNSUPPORTED, "only loops over range(...), arrays, enumerate(...), zip(...) "
                                "and tuples can be differentiated",
                                self.origin(iterator), "loop over indices: for i in range(len(values))")
            return None
        args = [self._stable_atom(a) for a in iterator.args]
        if len(args) == 1:
            return C.Const(0), args[0], C.Const(1)
        if len(args) == 2:
            return args[0], args[1], C.Const(1)
        return tuple(args)

    def _stable_atom(self, node):
        """An atom the loop body cannot reassign: the reverse sweep rebuilds the loop from it."""
        atom = self._atom(node)
        if isinstance(atom, C.Var):
            copy = self.names.temp("bound")
            self._emit(C.Assign(copy, atom, self.origin(node)))
            return C.Var(copy)
        return atom


def _returns_sequence(callee) -> bool:
    """numpy functions and methods give arrays that can be iterated (np.linspace, np.diff, ...)."""
    return getattr(callee, "__module__", None) is not None and callee.__module__.startswith("numpy")
