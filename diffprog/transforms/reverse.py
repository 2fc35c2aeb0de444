"""Reverse mode: core function -> core function computing the value and the adjoints of chosen parameters.

The generated function runs a forward sweep (the primal, plus the recording the backward sweep needs) and then
a backward sweep over the statements in reverse order. The backward sweep *restores* every variable it reads to
the value it had at that point of the forward sweep: before a statement overwrites a value the backward sweep
will read, the forward sweep saves the old value (on a per-variable tape inside loops, in a plain variable
elsewhere), and the backward sweep puts it back when it passes that statement. So adjoint code can read primal
variables by name, and only values the backward sweep reads are ever saved (activity analysis decides).

Loops: a `for` over a range records its trip count and replays indices backwards; a `while` counts its
iterations. Tapes are numba arrays, reserved once per loop entry when the trip count is known, and once per
iteration otherwise. A loop under `diffprog.checkpoint` records nothing in the forward sweep: its backward
sweep re-runs steps from a few snapshots of the state the loop carries, recording and reversing one step at a
time in the order binomial checkpointing (revolve, in backend/runtime.py) gives.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from ..analysis.activity import Activity, differentiable_args
from ..errors import DifferentiabilityError, Diagnostic
from ..ir import core as C
from ..ir import types as T
from ..rules import REGISTRY
from ..rules.structural import empty_array, initial_value
from ..rules.runtime_calls import REVOLVE_ACTIONS
from .partials import PartialEmitter

_P = REGISTRY.named
# Cheap enough to recompute in the backward sweep rather than tape: memory reads and index arithmetic.
_READS = {"getitem", "shape", "len", "size", "transpose"}
_INDEX_ARITHMETIC = {"add", "sub", "mul", "neg", "floordiv", "mod"}
# Array arithmetic cheap enough to redo rather than tape: the tape would copy the elements in and view them out.
_ARRAY_ARITHMETIC = {"add", "sub", "mul", "neg"}
# Primitives that read one argument only for its shape (primitive -> position): the backward sweep needs an
# array read only there to have its extents, not its elements (see _plan_extents).
_SHAPE_ARGUMENT = {"np.zeros_shape": 0, "unbroadcast": 1, "shape": 0}
_MAX_EXTENTS = 4  # ranks with extents primitives (rules/structural.py)
# Adjoint terms added into an adjoint as one in-place update, without an array for the term: term -> update.
_ADDED_INTO = {"np.outer": "add_outer"}


@dataclass
class Checkpointed:
    """A loop under `diffprog.checkpoint`: the state it carries from step to step, and the code recording one
    step, which the forward sweep builds and the backward sweep runs."""

    snapshots: int  # 0: as many as the square root of the trip count
    state: list
    copied: list  # arrays the loop writes into: snapshots copy them
    record_step: list = field(default_factory=list)


@dataclass
class Sites:
    """Per-loop bookkeeping of tape pushes, for reserving tape space at loop entry."""

    pushes: Counter = field(default_factory=Counter)
    loop: int = 0  # id of the loop statement (statements outlive the bookkeeping)


class ReverseTransform:
    def __init__(self, function: C.Function, types: dict, activity: Activity, wrt: list, names, checkpoint=None):
        self.fn = replace(function, body=C.clone(function.body))  # _plan_extents adds statements to it
        self.types = types
        self.activity = activity
        self.active = activity.active
        self.wrt = wrt
        self.names = names
        self.adjoint_names: dict = {}
        self.backward_of: dict = {}  # id(assign) -> adjoint statements (without restores)
        self.tapes: dict = {}  # variable -> (tape, length)
        self.saves: dict = {}  # id(statement) -> {variable: save variable} outside loops
        self.needed: set = set()
        self.shape_needed: set = set()  # arrays the backward sweep reads the shape of
        self.extents: dict = {}  # array read only for its shape -> the variables saving its extents
        self.extent_variables: set = set()  # every variable in self.extents' lists
        self.pushed: set = set()
        self.loop_stack: list = []
        self.trips: dict = {}  # id(loop) -> trip count variable
        self.tape_sites: dict = {}  # variable -> the loops whose bodies push it directly
        self.shared_tapes: set = set()  # pushed at several loop levels: reserved at each push instead
        self.tape_names: dict = {}  # names the dry run gave tapes, reused by the real run
        self.tape_indexes: dict = {}  # array variable -> its tape's index (see backend/tapes.py)
        self.recording_step = 0  # > 0 while building the code that records one step of a checkpointed loop
        self.copied_from_tape: set = set()  # arrays popped from tapes a later recording overwrites
        self.element_saves: dict = {}  # id(store) -> variable holding the elements it overwrote
        self.recompute: dict = {}  # id(loop) -> assignments the backward sweep recomputes each iteration
        self.trip_pushed: set = set()
        self.checkpoint_outermost = checkpoint  # snapshots for loops outside any other (None: only marked ones)
        self.checkpoint_snapshots: dict = {}  # id(loop) -> snapshots, for the loops reversed by checkpointing
        self.checkpointed: dict = {}  # id(loop) -> Checkpointed

    # ---- entry -------------------------------------------------------------------------------------------------
    def run(self) -> C.Function:
        self.checkpoint_snapshots = self._checkpointed_loops(self.fn.body, depth=0)
        self._plan_backward(self.fn.body)
        self._plan_extents(self.shape_needed - self.needed - set(self.fn.params))
        self._decide_saves()
        self._forward_block(self.fn.body, depth=0)  # a dry run finds tapes pushed at several loop levels
        self.shared_tapes = {v for v, loops in self.tape_sites.items() if len(loops) > 1}
        self.saves, self.element_saves, self.trips, self.trip_pushed = {}, {}, {}, set()
        self.tape_names, self.tapes = self.tapes, {}  # only tapes the real run pushes get made
        forward = self._forward_block(self.fn.body, depth=0)
        prologue = self._prologue()
        values = [self._capture_value(k, atom) for k, atom in enumerate(self.fn.results)]
        seeds = [self.names.claim("seed" if len(self.fn.results) == 1 else f"seed_{k}")
                 for k in range(len(self.fn.results))]
        backward = self._adjoint_inits() + self._seed(seeds) + self._backward_block(self.fn.body)
        body = prologue + forward + [v for v, _ in values] + backward
        results = tuple(C.Var(v.target) for v, _ in values) + tuple(C.Var(self.adj(p)) for p in self.wrt)
        seed_types = tuple(self.types.get(a.name, T.FLOAT) if isinstance(a, C.Var) else T.FLOAT
                           for a in self.fn.results)
        return C.Function(self.fn.name + "_reverse", list(self.fn.params) + seeds, body, results, True,
                          self.fn.origin, dict(self.fn.param_origins), seed_types)

    def adj(self, name: str) -> str:
        if name not in self.adjoint_names:
            self.adjoint_names[name] = self.names.claim(name + "_adj")
        return self.adjoint_names[name]

    # ---- planning: what the backward sweep reads --------------------------------------------------------------
    def _plan_backward(self, block):
        for stmt in block:
            if not self._is_active(stmt):
                continue
            if isinstance(stmt, C.Assign):
                self.backward_of[id(stmt)] = self._adjoint_of_assign(stmt)
                if self._is_array(stmt.target):  # its adjoint restarts at zero, shaped like the value before
                    self.shape_needed.add(stmt.target)
            elif isinstance(stmt, C.Store):
                self.backward_of[id(stmt)] = self._adjoint_of_store(stmt)
            elif isinstance(stmt, C.If):
                self.needed.update(C.atom_vars([stmt.cond]))
            elif isinstance(stmt, C.ForRange):
                self.needed.update(C.atom_vars([stmt.start, stmt.step]))
                if id(stmt) in self.checkpoint_snapshots:  # its backward sweep re-runs the body on these
                    inputs = {n for s, _ in C.walk(stmt.body) for n in C.reads(s) if n in self.types}
                    self.needed.update(inputs - C.assigned(stmt.body))
            for child in C.children(stmt):
                self._plan_backward(child)

    def _is_active(self, stmt) -> bool:
        if isinstance(stmt, C.Assign):
            return stmt.target in self.active
        if isinstance(stmt, C.Store):
            return stmt.base in self.active
        return any(self._is_active(s) for child in C.children(stmt) for s in child)

    def _adjoint_of_assign(self, stmt) -> list:
        """Adjoint statements for `target = value`: push target's adjoint to the operands, then clear it."""
        out = []
        emitter = PartialEmitter(self.names, out.append, stmt.origin)
        target_adj = C.Var(self.adj(stmt.target))
        value = stmt.value
        if isinstance(value, C.Var):
            if value.name in self.active:
                out += self._accumulate(value.name, target_adj, stmt.origin)
        elif isinstance(value, C.Call):
            if value.prim.adjoint == "index":
                out += self._index_adjoint(stmt, target_adj)
            else:
                for k in differentiable_args(value):
                    arg = value.args[k]
                    if self.activity.is_active(arg):
                        out += self._contribute(emitter, value, k, stmt, target_adj)
        if not self._is_array(stmt.target):  # arrays: after the restore, shaped like the restored value
            out.append(self._zero_adjoint(stmt.target, stmt.origin))
        out = _added_in_place(out)
        self._note_reads(out)
        return out

    def _note_reads(self, statements):
        for s, _ in C.walk(statements):
            values, shapes = _value_and_shape_reads(s)
            self.needed.update(n for n in values if n in self.types)  # primal values, not adjoints
            self.shape_needed.update(n for n in shapes if n in self.types)

    def _plan_extents(self, arrays):
        """Arrays the backward sweep reads only for their shape (to restart an adjoint at zero, to undo
        broadcasting) have their extents saved instead of their elements: after each assignment of such an array
        the forward sweep keeps its extents in int variables, which are saved and restored like any other."""
        planned = {}
        for v in sorted(arrays):
            rank = self.types[v].ndim if self._is_array(v) else 0
            if not 0 < rank <= _MAX_EXTENTS:
                self.needed.add(v)
                continue
            planned[v] = [self.names.claim(f"{v}_extent{k}") for k in range(rank)]
            self.types.update((e, T.INT) for e in planned[v])
            self.needed.update(planned[v])
        self.extents.update(planned)
        self.extent_variables.update(e for names in planned.values() for e in names)
        if planned:
            _keep_extents(self.fn.body, planned)
            for statements in self.backward_of.values():
                for s, _ in C.walk(statements):
                    self._read_extents(s)

    def _read_extents(self, stmt):
        """Rewrites a read of an array's shape into a read of its saved extents."""
        for name in _value_and_shape_reads(stmt)[1]:
            if name in self.extents:
                stmt.value = self._with_extents(stmt.value, self.extents[name])

    def _with_extents(self, call, extents):
        """`call` (one of _SHAPE_ARGUMENT) reading the shape from the variables `extents`."""
        atoms = tuple(C.Var(e) for e in extents)
        if call.prim.name == "shape":
            return atoms[call.args[1].value]
        if call.prim.name == "unbroadcast":
            return C.Call(_P(f"unbroadcast_extents{len(atoms)}"), (call.args[0],) + atoms)
        return C.Call(_P(f"zeros_extents{len(atoms)}"), atoms)

    def _contribute(self, emitter, call, k, stmt, g) -> list:
        """`arg_adj += (d target / d arg) applied to g`, reduced to the argument's shape."""
        arg, out = call.args[k], C.Var(stmt.target)
        if call.prim.vjps is not None:
            ranks = tuple(self.rank(a) for a in call.args)
            # adjoints are float64: numba's linear algebra wants float32 operands converted to match
            call = C.Call(call.prim, tuple(self._as_float64(emitter, a) for a in call.args))
            out = self._as_float64(emitter, out)
            try:
                contribution = emitter.vjp(call, k, out, g, ranks)
            except TypeError as error:
                raise DifferentiabilityError([Diagnostic("DP101", str(error), stmt.origin,
                                                         "use vectors or matrices here")]) from None
            return self._accumulate(arg.name, contribution, stmt.origin)
        partial = emitter.partial(call, k, out, arrays=any(self.rank(a) for a in call.args))
        if partial == C.Const(-1.0):  # x_adj -= y_adj reads better than multiplying by -1
            return self._accumulate(arg.name, self._fit(emitter, g, call, k, out), stmt.origin, prim="deduct")
        contribution = emitter.apply(_P("mul"), partial, g)
        return self._accumulate(arg.name, self._fit(emitter, contribution, call, k, out), stmt.origin)

    def _fit(self, emitter, contribution, call, k, out):
        """Undoes broadcasting: sums the contribution over the axes the argument was broadcast along."""
        arg_rank, out_rank = self.rank(call.args[k]), self.rank(out)
        if out_rank == 0:
            return contribution
        if arg_rank == 0:
            return emitter.apply(_P("np.sum"), contribution)
        for _ in range(out_rank - arg_rank):
            contribution = emitter.apply(_P("sum_leading"), contribution)
        others = [a for j, a in enumerate(call.args) if j != k and self.rank(a) > 0]
        if others:  # same rank but possibly size-1 axes: only known at run time
            contribution = emitter.apply(_P("unbroadcast"), contribution, call.args[k])
        return contribution

    def _as_float64(self, emitter, atom):
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        if isinstance(t, T.Array) and t.dtype != "float64" and t.differentiable:
            return emitter.apply(_P("as_float64"), atom)
        return atom

    def rank(self, atom) -> int:
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        return t.ndim if isinstance(t, T.Array) else 0

    def _accumulate(self, name, contribution, origin, prim="accumulate") -> list:
        adj = self.adj(name)
        return [C.Assign(adj, C.Call(_P(prim), (C.Var(adj), contribution)), origin)]

    def _index_adjoint(self, stmt, target_adj) -> list:
        """`a[index]` scatters its adjoint back into a's adjoint; integer-array indices may repeat."""
        array, *index = stmt.value.args
        if not self.activity.is_active(array):
            return []
        adj = self.adj(array.name)
        if any(self._is_index_array(i) for i in index):
            if len(index) != 1:
                raise DifferentiabilityError([Diagnostic(
                    "DP101", "indexing with an integer array together with other indices cannot be differentiated",
                    stmt.origin, "index one axis at a time")])
            return [C.Assign(adj, C.Call(_P("scatter_add"), (C.Var(adj), index[0], target_adj)), stmt.origin)]
        # the read's adjoint restarts at zero right after: it can hold the sum (no new array for it)
        current = self.names.temp(adj + "_at")
        return [
            C.Assign(current, C.Call(_P("getitem"), (C.Var(adj), *index)), stmt.origin),
            C.Assign(target_adj.name, C.Call(_P("accumulate"), (target_adj, C.Var(current))), stmt.origin),
            C.Store(adj, tuple(index), target_adj, stmt.origin),
        ]

    def _sliced(self, index) -> bool:
        return any(isinstance(i, C.Slice) or self.rank(i) > 0 for i in index)

    def _is_index_array(self, atom) -> bool:
        t = self.types.get(atom.name) if isinstance(atom, C.Var) else None
        return isinstance(t, T.Array) and t.dtype != "bool"

    def _adjoint_of_store(self, stmt) -> list:
        """`base[index] = value`: the value receives what the overwritten elements' adjoint held, which then
        restarts at zero (the elements before the write did not reach the result through this slot)."""
        out = []
        adj = self.adj(stmt.base)
        element_adj = self.names.temp(adj + "_at")
        out.append(C.Assign(element_adj, C.Call(_P("getitem"), (C.Var(adj), *stmt.index)), stmt.origin))
        sliced = self._sliced(stmt.index)
        if sliced:  # a view of the adjoint, zeroed below: copy it first
            element_adj = self._temp_call(out, adj + "_at", _P("copy"), (C.Var(element_adj),), stmt.origin).name
        if self.activity.is_active(stmt.value):
            contribution = C.Var(element_adj)
            if sliced and self.rank(stmt.value) == 0:  # one value written to many elements
                contribution = self._temp_call(out, "sum", _P("np.sum"), (contribution,), stmt.origin)
            out += self._accumulate(stmt.value.name, contribution, stmt.origin)
        out.append(C.Store(adj, stmt.index, C.Const(0.0), stmt.origin))
        self._note_reads(out)
        return out

    # ---- which values must be saved ----------------------------------------------------------------------------
    def _decide_saves(self):
        """A needed variable is saved before each assignment when it is assigned more than once or in a loop,
        unless the backward sweep can cheaply recompute it at the start of each loop iteration."""
        sites, _ = self._assignment_sites()
        self._plan_recomputation(sites)
        recomputed = {s.target for stmts in self.recompute.values() for s in stmts}
        # a recomputed array holds this iteration's value, but its adjoint restarts shaped like the value before
        self._plan_extents({v for v in recomputed if v in self.shape_needed} - set(self.extents))
        sites, in_loop = self._assignment_sites()
        self.pushed = {v for v in self.needed if (sites[v] > 1 or v in in_loop) and v not in recomputed}

    def _assignment_sites(self) -> tuple:
        """(how many statements assign each name (parameters count once), the names assigned in loops)."""
        sites = Counter(self.fn.params)
        in_loop = set()
        for stmt, depth in C.walk(self.fn.body):
            for name in _targets(stmt):
                sites[name] += 1
                if depth > 0:
                    in_loop.add(name)
        return sites, in_loop

    def _recomputable(self, stmt) -> bool:
        """Reads, index arithmetic and elementwise array arithmetic are cheaper to redo than to tape; float
        arithmetic is not. Extents are saved: they give the shape of the value an array had in the iteration
        before."""
        if stmt.target in self.extent_variables:
            return False
        name = stmt.value.prim.name
        if name in _ARRAY_ARITHMETIC and isinstance(self.types.get(stmt.target), T.Array):
            return True  # one pass over the elements, as the tape's copy would be, without the tape
        return name in _READS or name in _INDEX_ARITHMETIC and self.types.get(stmt.target) == T.INT

    def _plan_recomputation(self, sites):
        """Per `for` loop, cheap values of the body computed from the loop index and from values the loop does
        not change (array reads `a[i]`, index and small arithmetic): the backward sweep recomputes them at the
        start of each iteration instead of taping them. Values the loop does not assign hold still during its
        backward sweep (every variable is restored to its value at that point), so they may be read."""
        stored = {s.base for s, _ in C.walk(self.fn.body) if isinstance(s, C.Store)}
        loops = [loop for loop, _ in C.walk(self.fn.body) if isinstance(loop, C.ForRange)]
        for loop in reversed(loops):  # inner loops first: what they recompute from, outer loops must provide
            changing = C.assigned(loop.body) | stored
            available = {loop.var}
            chosen = []
            for stmt in loop.body:
                if (isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and sites[stmt.target] == 1
                        and self._recomputable(stmt)
                        and all(v in available or v not in changing for v in C.atom_vars(stmt.value.args))):
                    chosen.append(stmt)
                    available.add(stmt.target)
            kept = []
            for stmt in reversed(chosen):  # keep what is needed, and what that is recomputed from
                if stmt.target in self.needed:
                    kept.insert(0, stmt)
                    self.needed.update(C.atom_vars(stmt.value.args))
            self.recompute[id(loop)] = kept

    # ---- forward sweep -----------------------------------------------------------------------------------------
    def _forward_block(self, block, depth) -> list:
        out = []
        for stmt in block:
            if id(stmt) in self.checkpoint_snapshots:
                out += self._forward_checkpointed(stmt, depth)
            elif isinstance(stmt, C.ForRange) and self._is_active(stmt):
                out += self._forward_for(stmt, depth)
            elif isinstance(stmt, C.While) and self._is_active(stmt):
                out += self._forward_while(stmt, depth)
            elif isinstance(stmt, C.If) and self._is_active(stmt):
                out += self._save(stmt, depth, [])
                out.append(C.If(stmt.cond, self._forward_block(stmt.body, depth),
                                self._forward_block(stmt.orelse, depth), stmt.origin))
            elif isinstance(stmt, C.Store) and stmt.base in self.needed:
                out += self._save_elements(stmt, depth)
                out.append(stmt)
            else:
                variables = sorted(_all_targets(stmt) & self.pushed)
                out += self._save(stmt, depth, variables)
                out.append(stmt)
        return out

    def _save_elements(self, stmt, depth) -> list:
        """Before a write into an array the backward sweep reads, keep the elements it overwrites."""
        old = self.names.temp(stmt.base + "_old")
        read = C.Call(_P("getitem"), (C.Var(stmt.base), *stmt.index))
        self.types[old] = _P("getitem").result_type([self.types[stmt.base]] + [self._index_type(i)
                                                                                for i in stmt.index])
        out = [C.Assign(old, read, stmt.origin)]
        if self._sliced(stmt.index):
            out.append(C.Assign(old, C.Call(_P("copy"), (C.Var(old),)), stmt.origin))
        self.element_saves[id(stmt)] = old
        return out + self._save(stmt, depth, [old])

    def _index_type(self, atom):
        if isinstance(atom, C.Slice):
            return T.Opaque("slice")
        if isinstance(atom, C.Var):
            return self.types[atom.name]
        return T.Opaque("NoneType") if atom.value is None else T.INT

    def _save(self, stmt, depth, variables) -> list:
        """Statements saving the old values of `variables` before `stmt` overwrites them."""
        out = []
        if depth == 0:
            saves = self.saves.setdefault(id(stmt), {})
            for v in variables:
                saves[v] = self.names.temp(v + "_saved")
                out.append(C.Assign(saves[v], C.Var(v), stmt.origin))
            return out
        for v in variables:
            out += self._push(v, stmt.origin)
        return out

    def _push(self, variable, origin) -> list:
        tape, length = self._tape(variable)
        if self._is_array(variable):  # the tape grows itself: array sizes are not known at loop entry
            if self.recording_step:
                self.copied_from_tape.add(variable)
            index = self._tape_index(variable)
            return [C.Assign(index, C.Call(_P("array_tape_note"), (C.Var(index), C.Var(length), C.Var(variable))),
                             origin),
                    C.Assign(tape, C.Call(_P("array_tape_store"), (C.Var(tape), C.Var(index), C.Var(length),
                                                                   C.Var(variable))), origin),
                    C.Assign(length, C.Call(_P("add"), (C.Var(length), C.Const(1))), origin)]
        self.tape_sites.setdefault(variable, set()).add(self.loop_stack[-1].loop)
        reserve = []
        if variable in self.shared_tapes:  # a nested loop pushes it too: a reservation at loop entry won't hold
            reserve = [C.Assign(tape, C.Call(_P("tape_reserve"), (C.Var(tape), C.Var(length), C.Const(1))), origin)]
        else:
            self.loop_stack[-1].pushes[variable] += 1
        return reserve + [C.Store(tape, (C.Var(length),), C.Var(variable), origin),
                          C.Assign(length, C.Call(_P("add"), (C.Var(length), C.Const(1))), origin)]

    def _pop(self, variable, origin) -> list:
        tape, length = self._tape(variable)
        out = [C.Assign(length, C.Call(_P("sub"), (C.Var(length), C.Const(1))), origin)]
        if not self._is_array(variable):
            return out + [C.Assign(variable, C.Call(_P("getitem"), (C.Var(tape), C.Var(length))), origin)]
        load = (C.Var(tape), C.Var(self._tape_index(variable)), C.Var(length), C.Var(variable))
        out.append(C.Assign(variable, C.Call(_P("array_tape_load"), load), origin))
        if variable in self.copied_from_tape:  # the step's next recording reuses the tape's space
            out.append(C.Assign(variable, C.Call(_P("copy"), (C.Var(variable),)), origin))
        return out

    def _is_array(self, variable) -> bool:
        return isinstance(self.types.get(variable), T.Array)

    def _tape(self, variable):
        if variable not in self.tapes:
            self.tapes[variable] = self.tape_names.get(variable) or (
                self.names.claim("tape_" + variable), self.names.claim(f"tape_{variable}_len"))
        return self.tapes[variable]

    def _tape_index(self, variable) -> str:
        """An array tape's index: where each pushed array starts in the tape, and its shape."""
        if variable not in self.tape_indexes:
            self.tape_indexes[variable] = self.names.claim(f"tape_{variable}_index")
        return self.tape_indexes[variable]

    def _reserve(self, sites: Sites, count: C.Var | None, origin) -> list:
        out = []
        for variable, per_iteration in sorted(sites.pushes.items()):
            tape, length = self._tape(variable)
            need = C.Const(per_iteration)
            if count is not None:
                need = count if per_iteration == 1 else self._temp_call(out, "need", _P("mul"),
                                                                        (count, need), origin)
            out.append(C.Assign(tape, C.Call(_P("tape_reserve"), (C.Var(tape), C.Var(length), need)), origin))
        return out

    def _temp_call(self, out, hint, prim, args, origin) -> C.Var:
        name = self.names.temp(hint)
        out.append(C.Assign(name, C.Call(prim, tuple(args)), origin))
        return C.Var(name)

    def _record_trip(self, stmt, depth, out) -> C.Var:
        trip = self._temp_call(out, "trip", _P("range_len"), (stmt.start, stmt.stop, stmt.step), stmt.origin)
        self.trips[id(stmt)] = trip
        if depth > 0:
            out += self._push(trip.name, stmt.origin)
            self.trip_pushed.add(trip.name)
        return trip

    def _forward_for(self, stmt, depth) -> list:
        out = self._save(stmt, depth, sorted({stmt.var} & self.pushed))
        trip = self._record_trip(stmt, depth, out)
        sites = Sites(loop=id(stmt))
        self.loop_stack.append(sites)
        body = self._forward_block(stmt.body, depth + 1)
        self.loop_stack.pop()
        out += self._reserve(sites, trip, stmt.origin)
        out.append(C.ForRange(stmt.var, stmt.start, stmt.stop, stmt.step, body, stmt.origin))
        return out

    def _checkpointed_loops(self, block, depth) -> dict:
        """id(loop) -> snapshots (0: as many as the square root of its trip count), for the active loops
        reversed by checkpointing: those marked in the code, and with `checkpoint_outermost` those outside others."""
        found = {}
        for stmt in block:
            if isinstance(stmt, C.ForRange) and self._is_active(stmt):
                snapshots = stmt.checkpoint if stmt.checkpoint is not None or depth > 0 else self.checkpoint_outermost
                if snapshots is not None:
                    found[id(stmt)] = snapshots
            inner = depth + 1 if isinstance(stmt, (C.ForRange, C.While)) else depth
            for child in C.children(stmt):
                found.update(self._checkpointed_loops(child, inner))
        return found

    def _forward_checkpointed(self, stmt, depth) -> list:
        """Saves the loop's entry state and runs it without recording. The code recording one step is built
        here too, so its saves are planned with the forward sweep's; the backward sweep places it. A single
        step runs once per reversal, so it records into plain variables (tapes only for loops inside it)."""
        plan = self._checkpoint_plan(stmt, self.checkpoint_snapshots[id(stmt)])
        out = self._save(stmt, depth, plan.state)
        for v in plan.copied:  # the loop writes into a copy: the saved entry value stays intact
            out.append(C.Assign(v, C.Call(_P("copy"), (C.Var(v),)), stmt.origin))
        self._record_trip(stmt, depth, out)
        out.append(C.ForRange(stmt.var, stmt.start, stmt.stop, stmt.step, C.clone(stmt.body), stmt.origin))
        self.recording_step += 1
        plan.record_step = self._forward_block(stmt.body, depth)
        self.recording_step -= 1
        return out

    def _checkpoint_plan(self, stmt, snapshots) -> Checkpointed:
        """The loop's state: what an iteration reads before assigning it, and what the backward sweep before the
        loop reads (restored to its value at loop entry when the loop's reversal ends)."""
        if id(stmt) in self.checkpointed:
            return self.checkpointed[id(stmt)]
        elsewhere = set(self.fn.params) | _assigned_outside(self.fn.body, stmt)
        state = sorted((C.exposed(stmt.body, {stmt.var})[0] | self.needed & elsewhere)
                       & (C.assigned(stmt.body) | {stmt.var}))
        for v in state:
            if not isinstance(self.types.get(v), (T.Scalar, T.Array)):
                raise DifferentiabilityError([Diagnostic(
                    "DP101", f"a checkpointed loop can carry numbers and arrays only; '{v}' is a "
                    f"{self.types.get(v)}", stmt.origin, "compute this value inside the loop or outside it")])
        stored = {s.base for s, _ in C.walk(stmt.body) if isinstance(s, C.Store)}
        plan = Checkpointed(snapshots, state, sorted(stored & set(state)))
        self.checkpointed[id(stmt)] = plan
        return plan

    def _forward_while(self, stmt, depth) -> list:
        trip = self.names.temp("trip")
        self.trips[id(stmt)] = C.Var(trip)
        out = [C.Assign(trip, C.Const(0), stmt.origin)]
        sites = Sites(loop=id(stmt))
        self.loop_stack.append(sites)
        body = self._forward_block(stmt.body, depth + 1)
        self.loop_stack.pop()
        count = [C.Assign(trip, C.Call(_P("add"), (C.Var(trip), C.Const(1))), stmt.origin)]
        out.append(C.While(stmt.cond, count + self._reserve(sites, None, stmt.origin) + body, stmt.origin))
        if depth > 0:
            out += self._push(trip, stmt.origin)
            self.trip_pushed.add(trip)
        return out

    # ---- backward sweep ----------------------------------------------------------------------------------------
    def _backward_block(self, block) -> list:
        out = []
        for stmt in reversed(block):
            out += self._backward(stmt)
        return out

    def _restore_elements(self, stmt) -> list:
        old = self.element_saves.get(id(stmt))
        if old is None:
            return []
        return self._restore(stmt, [old]) + [C.Store(stmt.base, stmt.index, C.Var(old), stmt.origin)]

    def _backward(self, stmt) -> list:
        if isinstance(stmt, C.Store) and not self._is_active(stmt):
            return self._restore_elements(stmt)
        if not self._is_active(stmt):
            return self._restore(stmt, sorted(_all_targets(stmt) & self.pushed))
        if isinstance(stmt, C.Assign):
            restore = self._restore(stmt, [stmt.target] if stmt.target in self.pushed else [])
            zero = [self._zero_adjoint(stmt.target, stmt.origin)] if self._is_array(stmt.target) else []
            return self.backward_of[id(stmt)] + restore + zero
        if isinstance(stmt, C.Store):
            return self.backward_of[id(stmt)] + self._restore_elements(stmt)
        if isinstance(stmt, C.If):
            return [C.If(stmt.cond, self._backward_block(stmt.body), self._backward_block(stmt.orelse),
                         stmt.origin)]
        if id(stmt) in self.checkpoint_snapshots:
            return self._backward_checkpointed(stmt)
        if isinstance(stmt, C.ForRange):
            return self._backward_for(stmt)
        return self._backward_while(stmt)

    def _restore(self, stmt, variables) -> list:
        saves = self.saves.get(id(stmt))
        out = []
        for v in reversed(variables):
            if saves is not None:
                out.append(C.Assign(v, C.Var(saves[v]), stmt.origin))
            else:
                out += self._pop(v, stmt.origin)
        return out

    def _trip_count(self, stmt, out) -> C.Var:
        trip = self.trips[id(stmt)]
        if trip.name in self.trip_pushed:
            out += self._pop(trip.name, stmt.origin)
        return trip

    def _backward_for(self, stmt) -> list:
        out = []
        trip = self._trip_count(stmt, out)
        last = self._temp_call(out, "last", _P("sub"), (trip, C.Const(1)), stmt.origin)
        k = self.names.temp("k")
        body = []
        body.append(C.Assign(stmt.var, self._step_value(body, stmt, C.Var(k)), stmt.origin))
        body += [C.Assign(s.target, s.value, s.origin) for s in self.recompute.get(id(stmt), [])]
        body += self._backward_block(stmt.body)
        out.append(C.ForRange(k, last, C.Const(-1), C.Const(-1), body, stmt.origin))
        return out + self._restore(stmt, [stmt.var] if stmt.var in self.pushed else [])

    def _backward_checkpointed(self, stmt) -> list:
        """Reverses a checkpointed loop from its entry state: a loop over the actions of the revolve schedule
        (advance without recording, keep or restore a snapshot, record and reverse one step)."""
        plan, origin = self.checkpointed[id(stmt)], stmt.origin
        out = []
        trip = self._trip_count(stmt, out)
        out += self._restore(stmt, plan.state)
        slots = self._temp_call(out, "slots", _P("revolve_slots"), (trip, C.Const(plan.snapshots)), origin)
        schedule = self._temp_call(out, "schedule", _P("revolve_new"), (trip, slots), origin)
        snapshots = {v: self._snapshot_slots(out, v, slots, origin) for v in plan.state}
        action, going = self.names.temp("action"), self.names.temp("going")

        def next_action():
            return [C.Assign(action, C.Call(_P("revolve_next"), (schedule,)), origin),
                    C.Assign(going, C.Call(_P("noteq"), (C.Var(action), C.Const(REVOLVE_ACTIONS["done"]))), origin)]

        def argument(block, position, hint):
            return self._temp_call(block, hint, _P("getitem"), (schedule, C.Const(position)), origin)

        def bound(block, count):  # a range bound must be a variable
            value = self._step_value(block, stmt, count)
            if isinstance(value, C.Var):
                return value
            return self._temp_call(block, "index", value.prim, value.args, origin)

        advance = []
        first, last = argument(advance, 0, "first"), argument(advance, 1, "last")
        advance.append(C.ForRange(stmt.var, bound(advance, first), bound(advance, last), stmt.step,
                                  C.clone(stmt.body), origin))
        take, bring_back = [], []
        slot = argument(take, 2, "slot")
        for v in plan.state:
            take += self._keep_snapshot(v, snapshots[v], slot, v in plan.copied, origin)
        slot = argument(bring_back, 2, "slot")
        for v in plan.state:
            bring_back += self._restore_snapshot(v, snapshots[v], slot, v in plan.copied, origin)
        reverse_step = []
        step = argument(reverse_step, 0, "step")
        reverse_step.append(C.Assign(stmt.var, self._step_value(reverse_step, stmt, step), origin))
        reverse_step += plan.record_step + self._backward_block(stmt.body)
        actions = reverse_step
        for name, block in (("restore", bring_back), ("takeshot", take), ("advance", advance)):
            is_action = self.names.temp("is_" + name)
            actions = [C.Assign(is_action, C.Call(_P("eq"), (C.Var(action), C.Const(REVOLVE_ACTIONS[name]))), origin),
                       C.If(C.Var(is_action), block, actions, origin)]
        out += next_action() + [C.While(going, actions + next_action(), origin)]
        for v in plan.state:  # the schedule ends anywhere: back to the entry state
            out += self._restore_snapshot(v, snapshots[v], C.Const(0), False, origin)
        return out

    def _step_value(self, out, stmt, count):
        """The loop variable's value at step `count`, start + count * step: a variable, or the `add` to assign."""
        offset = count if stmt.step == C.Const(1) else self._temp_call(out, "offset", _P("mul"), (count, stmt.step),
                                                                        stmt.origin)
        return offset if stmt.start == C.Const(0) else C.Call(_P("add"), (stmt.start, offset))

    def _snapshot_slots(self, out, v, slots, origin) -> C.Var:
        if self._is_array(v):
            return self._temp_call(out, "snapshots_" + v, _P("snapshot_list"), (C.Var(v), slots), origin)
        return self._temp_call(out, "snapshots_" + v, _P(f"tape_empty_{self.types[v].kind}"), (slots,), origin)

    def _keep_snapshot(self, v, snapshots, slot, copy, origin) -> list:
        if not self._is_array(v):
            return [C.Store(snapshots.name, (slot,), C.Var(v), origin)]
        value = C.Var(v)
        out = []
        if copy:  # the loop writes into it later
            value = self._temp_call(out, v + "_kept", _P("copy"), (value,), origin)
        return out + [C.Effect(C.Call(_P("list_set"), (snapshots, slot, value)), origin)]

    def _restore_snapshot(self, v, snapshots, slot, copy, origin) -> list:
        out = [C.Assign(v, C.Call(_P("getitem"), (snapshots, slot)), origin)]
        if copy:  # the snapshot outlives the writes the loop makes next
            out.append(C.Assign(v, C.Call(_P("copy"), (C.Var(v),)), origin))
        return out

    def _backward_while(self, stmt) -> list:
        out = []
        trip = self._trip_count(stmt, out)
        k = self.names.temp("k")
        out.append(C.ForRange(k, C.Const(0), trip, C.Const(1), self._backward_block(stmt.body),
                              stmt.origin))
        return out

    # ---- function boundary -------------------------------------------------------------------------------------
    def _prologue(self) -> list:
        """Zero-initialize saved variables (a loop saves them before their first assignment) and active arrays
        (their adjoints are shaped like them, even on paths that never assign them), and make tapes."""
        out = []
        params = set(self.fn.params)
        active_arrays = {v for v in self.active if isinstance(self.types.get(v), T.Array)}
        carried = {v for plan in self.checkpointed.values() for v in plan.state}
        # extents are read even on paths that never assign them
        for v in sorted((self.pushed | active_arrays | carried | self.extent_variables) - params):
            value = initial_value(self.types.get(v))
            if value is not None:
                out.append(C.Assign(v, value, self.fn.origin))
        for v, (tape, length) in sorted(self.tapes.items()):
            if self._is_array(v):
                t = self.types[v]
                out.append(C.Assign(tape, C.Call(empty_array(T.Array(t.dtype, 1)), ()), self.fn.origin))
                index = empty_array(T.Array("int64", 2), shape=f"(0, {t.ndim + 1})")
                out.append(C.Assign(self._tape_index(v), C.Call(index, ()), self.fn.origin))
            else:
                kind = self.types[v].kind if v in self.types else "int"
                out.append(C.Assign(tape, C.Call(_P(f"tape_empty_{kind}"), (C.Const(0),)), self.fn.origin))
            out.append(C.Assign(length, C.Const(0), self.fn.origin))
        return out

    def _capture_value(self, k, atom):
        name = self.names.claim("value" if len(self.fn.results) == 1 else f"value_{k}")
        return C.Assign(name, atom, self.fn.origin), name

    def _adjoint_inits(self) -> list:
        return [self._zero_adjoint(name, self.fn.origin) for name in sorted(self.active | set(self.wrt))]

    def _zero_adjoint(self, name, origin) -> C.Assign:
        if isinstance(self.types.get(name), T.Array):  # adjoints accumulate in float64 whatever the dtype
            zeros = C.Call(_P("np.zeros_shape"), (C.Var(name),))
            if name in self.extents:
                zeros = self._with_extents(zeros, self.extents[name])
            return C.Assign(self.adj(name), zeros, origin)
        return C.Assign(self.adj(name), C.Const(0.0), origin)

    def _seed(self, seeds) -> list:
        out = []
        for atom, seed in zip(self.fn.results, seeds):
            if self.activity.is_active(atom):
                adj = self.adj(atom.name)
                out.append(C.Assign(adj, C.Call(_P("add"), (C.Var(adj), C.Var(seed))), self.fn.origin))
        return out


def _added_in_place(statements) -> list:
    """`term = np.outer(a, b)` then `x_adj += term` (the term read nowhere else) -> `x_adj = add_outer(x_adj, a, b)`."""
    reads = Counter(n for s, _ in C.walk(statements) for n in C.reads(s))
    out = []
    for stmt in statements:
        term = out[-1] if out else None
        if (isinstance(term, C.Assign) and isinstance(term.value, C.Call) and term.value.prim.name in _ADDED_INTO
                and isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call)
                and stmt.value.prim.name == "accumulate" and stmt.value.args == (C.Var(stmt.target), C.Var(term.target))
                and reads[term.target] == 1):
            update = C.Call(_P(_ADDED_INTO[term.value.prim.name]), (C.Var(stmt.target),) + term.value.args)
            out[-1] = C.Assign(stmt.target, update, stmt.origin)
        else:
            out.append(stmt)
    return out


def _value_and_shape_reads(stmt) -> tuple:
    """(names stmt reads the value of, names it reads only the shape of)."""
    value = getattr(stmt, "value", None)
    if isinstance(stmt, C.Assign) and isinstance(value, C.Call) and value.prim.name in _SHAPE_ARGUMENT:
        position = _SHAPE_ARGUMENT[value.prim.name]
        axis = value.args[1] if value.prim.name == "shape" else C.Const(0)
        if isinstance(axis, C.Const) and isinstance(axis.value, int) and axis.value >= 0:
            others = value.args[:position] + value.args[position + 1:]
            return C.atom_vars(others), C.atom_vars(value.args[position:position + 1])
    return C.reads(stmt), []


def _keep_extents(block, extents):
    """After each assignment of an array in `extents`, assigns its extents to their variables."""
    for position in range(len(block) - 1, -1, -1):
        stmt = block[position]
        for child in C.children(stmt):
            _keep_extents(child, extents)
        if isinstance(stmt, C.Assign) and stmt.target in extents:
            block[position + 1:position + 1] = [
                C.Assign(e, C.Call(_P("shape"), (C.Var(stmt.target), C.Const(k))), stmt.origin)
                for k, e in enumerate(extents[stmt.target])]


def _assigned_outside(block, loop) -> set:
    """Names the statements of `block` assign, other than those inside `loop`."""
    names = set()
    for stmt in block:
        if stmt is not loop:
            names.update(_targets(stmt))
            for child in C.children(stmt):
                names |= _assigned_outside(child, loop)
    return names


def _targets(stmt) -> list:
    if isinstance(stmt, C.Assign):
        return [stmt.target]
    if isinstance(stmt, C.ForRange):
        return [stmt.var]
    return []


def _all_targets(stmt) -> set:
    names = set(_targets(stmt))
    for child in C.children(stmt):
        names |= C.assigned(child)
    return names - {s.base for s, _ in C.walk([stmt]) if isinstance(s, C.Store)}


def reverse(function, types, activity, wrt, names, checkpoint=None) -> C.Function:
    """`checkpoint`: snapshots for every loop outside other loops (None: only loops marked in the code)."""
    return ReverseTransform(function, types, activity, wrt, names, checkpoint).run()
