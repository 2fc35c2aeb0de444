"""The reverse plan: what the backward sweep reads, and how the forward sweep keeps each of those values.

Planning runs before any code is emitted and records its decisions in a `ReversePlan`: a tree of `Step`s that
mirrors the primal's statements (each with its adjoint statements, the variables saved before it and whether on
a tape), a `LoopPlan` per loop (values recomputed per iteration, trip count taped or not, checkpointing), the
tapes, and a `Keep` decision per variable. Emission (sweeps.py) only reads the plan, so an optimizer choosing
between storing and recomputing changes these decisions, not the code that writes them out.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import Enum

from ...analysis.activity import Activity
from ...ir import core as C
from ...ir import types as T
from .adjoints import Adjoints
from .checkpoint import Checkpointed, checkpoint_state
from .extents import MAX_EXTENTS, keeping_extents, read_extents, value_and_shape_reads
from .statements import all_targets, targets


class Keep(Enum):
    """How the backward sweep gets back the value a variable had at each point of the forward sweep."""

    NOT_NEEDED = "not needed"  # the backward sweep never reads it
    AS_IS = "as is"  # assigned once outside loops (or a parameter): it still holds its value
    SAVED = "saved"  # saved before each assignment (in a variable outside loops, on a tape inside) and restored
    RECOMPUTED = "recomputed"  # recomputed at the start of each backward iteration of its loop
    EXTENTS = "extents"  # read only for its shape: its extents are kept in int variables instead


@dataclass(eq=False)
class Tape:
    """The tape a variable is pushed on inside loops. `index` (arrays only) says where each pushed array starts
    in the tape and its shape (backend/tapes.py)."""

    variable: str
    name: str
    length: str
    index: str | None = None
    reserved_at_each_push: bool = False  # pushed in the bodies of several loops: no loop entry can reserve it


@dataclass(eq=False)
class LoopPlan:
    """A loop's reversal. `snapshots` is None for a loop reversed from tapes, else the snapshots of binomial
    checkpointing (0: as many as the square root of the trip count), with the state it carries in
    `checkpoint`."""

    snapshots: int | None = None
    checkpoint: Checkpointed | None = None
    trip_taped: bool = False  # inside another loop: each entry's trip count goes on a tape
    recompute: list = field(default_factory=list)  # assignments of the body redone at each backward iteration


@dataclass(eq=False)
class Step:
    """One primal statement and what reversing it takes. `blocks` mirrors the statement's nested blocks."""

    stmt: object
    active: bool
    blocks: list = field(default_factory=list)
    loop: LoopPlan | None = None
    adjoint: list | None = None  # active assignments and stores: their adjoint statements
    saved: list = field(default_factory=list)  # variables saved before it, restored after its adjoint
    on_tape: bool = False  # saves go on tapes (inside a loop), else in variables
    keeps_elements: bool = False  # a store into an array the backward sweep reads: the old elements are kept

    @property
    def body(self) -> list:
        return self.blocks[0]

    @property
    def orelse(self) -> list:
        return self.blocks[1]


@dataclass
class ReversePlan:
    function: C.Function  # the primal as the forward sweep runs it (with the statements keeping extents)
    steps: list
    variables: dict  # name -> Keep, for every variable of the primal
    extents: dict  # array -> the int variables keeping its extents
    tapes: dict  # variable -> Tape, for the variables saved inside loops

    @property
    def saved(self) -> set:
        return {v for v, keep in self.variables.items() if keep is Keep.SAVED}

    def loops(self) -> list:
        return [step.loop for step in walk_steps(self.steps) if step.loop is not None]


def walk_steps(steps):
    """Every step, nested ones included, in the order of the statements."""
    for step in steps:
        yield step
        for block in step.blocks:
            yield from walk_steps(block)


def plan_reverse(function: C.Function, types: dict, activity: Activity, adjoints: Adjoints, names,
                 checkpoint=None) -> ReversePlan:
    """Plans the reversal of `function` (a copy the plan may add statements to). `checkpoint`: snapshots for
    every loop outside other loops (None: only loops marked in the code)."""
    return _Planner(function, types, activity, adjoints, names, checkpoint).run()


class _Planner:
    def __init__(self, function, types, activity, adjoints, names, checkpoint):
        self.fn = function
        self.types = types
        self.active = activity.active
        self.adjoints = adjoints
        self.names = names
        self.checkpoint_outermost = checkpoint
        self.needed: set = set()  # variables whose values the backward sweep reads
        self.shape_needed: set = set()  # arrays the backward sweep reads the shape of
        self.extents = adjoints.extents
        self.tape_loops: dict = {}  # variable -> the loops (LoopPlan, None outside loops) whose bodies push it

    def run(self) -> ReversePlan:
        steps = self._steps(self.fn.body, depth=0)
        self._plan_backward(steps)
        self._plan_extents(steps, self.shape_needed - self.needed - set(self.fn.params))
        recomputed = self._plan_recomputation(steps)
        # a recomputed array holds this iteration's value, but its adjoint restarts shaped like the value before
        self._plan_extents(steps, {v for v in recomputed if v in self.shape_needed} - set(self.extents))
        sites, in_loop = self._assignment_sites()
        saved = {v for v in self.needed if (sites[v] > 1 or v in in_loop) and v not in recomputed}
        self._place_saves(steps, saved, depth=0, loop=None)
        return ReversePlan(self.fn, steps, self._decisions(saved, recomputed), self.extents, self._tapes())

    # ---- the statements, and which loops are checkpointed ------------------------------------------------------
    def _steps(self, block, depth) -> list:
        steps = []
        for stmt in block:
            inner = depth + 1 if isinstance(stmt, (C.ForRange, C.While)) else depth
            step = Step(stmt, self._is_active(stmt), [self._steps(child, inner) for child in C.children(stmt)])
            if isinstance(stmt, (C.ForRange, C.While)):
                step.loop = LoopPlan(self._snapshots(stmt, step.active, depth))
            steps.append(step)
        return steps

    def _snapshots(self, loop, active, depth):
        """Snapshots for the active loops reversed by checkpointing: those marked in the code, and with
        `checkpoint_outermost` those outside others. None for the loops reversed from tapes."""
        if not (isinstance(loop, C.ForRange) and active):
            return None
        return loop.checkpoint if loop.checkpoint is not None or depth > 0 else self.checkpoint_outermost

    def _is_active(self, stmt) -> bool:
        if isinstance(stmt, C.Assign):
            return stmt.target in self.active
        if isinstance(stmt, C.Store):
            return stmt.base in self.active
        return any(self._is_active(s) for child in C.children(stmt) for s in child)

    # ---- what the backward sweep reads -------------------------------------------------------------------------
    def _plan_backward(self, steps):
        for step in steps:
            if not step.active:
                continue
            stmt = step.stmt
            if isinstance(stmt, C.Assign):
                step.adjoint = self.adjoints.of_assign(stmt)
                self._note_reads(step.adjoint)
                if self.adjoints.is_array(stmt.target):  # its adjoint restarts at zero, shaped like the value before
                    self.shape_needed.add(stmt.target)
            elif isinstance(stmt, C.Store):
                step.adjoint = self.adjoints.of_store(stmt)
                self._note_reads(step.adjoint)
            elif isinstance(stmt, C.If):
                self.needed.update(C.atom_vars([stmt.cond]))
            elif isinstance(stmt, C.ForRange):
                self.needed.update(C.atom_vars([stmt.start, stmt.step]))
                if step.loop.snapshots is not None:  # its backward sweep re-runs the body on these
                    inputs = {n for s, _ in C.walk(stmt.body) for n in C.reads(s) if n in self.types}
                    self.needed.update(inputs - C.assigned(stmt.body))
            for block in step.blocks:
                self._plan_backward(block)

    def _note_reads(self, statements):
        for s, _ in C.walk(statements):
            values, shapes = value_and_shape_reads(s)
            self.needed.update(n for n in values if n in self.types)  # primal values, not adjoints
            self.shape_needed.update(n for n in shapes if n in self.types)

    # ---- arrays read only for their shape ----------------------------------------------------------------------
    def _plan_extents(self, steps, arrays):
        """Arrays the backward sweep reads only for their shape (to restart an adjoint at zero, to undo
        broadcasting) have their extents saved instead of their elements: after each assignment of such an array
        the forward sweep keeps its extents in int variables, which are saved and restored like any other."""
        planned = {}
        for v in sorted(arrays):
            rank = self.types[v].ndim if self.adjoints.is_array(v) else 0
            if not 0 < rank <= MAX_EXTENTS:
                self.needed.add(v)
                continue
            planned[v] = [self.names.claim(f"{v}_extent{k}") for k in range(rank)]
            self.types.update((e, T.INT) for e in planned[v])
            self.needed.update(planned[v])
        self.extents.update(planned)
        if planned:
            self._keep_extents(steps, self.fn.body, planned)
            for step in walk_steps(steps):
                for s, _ in C.walk(step.adjoint or []):
                    read_extents(s, self.extents)

    def _keep_extents(self, steps, block, extents):
        """After each assignment of an array in `extents` (in `block` and the steps mirroring it), assigns its
        extents to their variables."""
        kept = []
        for step in steps:
            for inner, child in zip(step.blocks, C.children(step.stmt)):
                self._keep_extents(inner, child, extents)
            kept.append(step)
            kept += [Step(s, self._is_active(s)) for s in keeping_extents(step.stmt, extents)]
        steps[:] = kept
        block[:] = [step.stmt for step in kept]

    def _extent_variables(self) -> set:
        return {e for names in self.extents.values() for e in names}

    # ---- recomputed rather than saved --------------------------------------------------------------------------
    def _plan_recomputation(self, steps) -> set:
        """Per `for` loop, cheap values of the body computed from the loop index and from values the loop does
        not change (array reads `a[i]`, index and small arithmetic): the backward sweep recomputes them at the
        start of each iteration instead of taping them. Values the loop does not assign hold still during its
        backward sweep (every variable is restored to its value at that point), so they may be read. Returns the
        names recomputed."""
        sites, _ = self._assignment_sites()
        stored = {s.base for s, _ in C.walk(self.fn.body) if isinstance(s, C.Store)}
        loops = [step for step in walk_steps(steps) if isinstance(step.stmt, C.ForRange)]
        for step in reversed(loops):  # inner loops first: what they recompute from, outer loops must provide
            loop = step.stmt
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
            step.loop.recompute = kept
        return {s.target for step in loops for s in step.loop.recompute}

    def _recomputable(self, stmt) -> bool:
        """Reads, index arithmetic and elementwise array arithmetic are cheaper to redo than to tape; float
        arithmetic is not. Extents are saved: they give the shape of the value an array had in the iteration
        before."""
        if stmt.target in self._extent_variables():
            return False
        cheap, result = stmt.value.prim.traits.cheap_for, self.types.get(stmt.target)
        return "any" in cheap or ("array" in cheap and isinstance(result, T.Array)) or \
            ("int" in cheap and result == T.INT)

    def _assignment_sites(self) -> tuple:
        """(how many statements assign each name (parameters count once), the names assigned in loops)."""
        sites = Counter(self.fn.params)
        in_loop = set()
        for stmt, depth in C.walk(self.fn.body):
            for name in targets(stmt):
                sites[name] += 1
                if depth > 0:
                    in_loop.add(name)
        return sites, in_loop

    # ---- where saved values go ---------------------------------------------------------------------------------
    def _place_saves(self, steps, saved, depth, loop):
        """Decides, statement by statement as the forward sweep runs them, which variables are saved before each
        and where: in variables outside loops, on tapes inside (`loop`: the loop whose body pushes them). The
        body of a checkpointed loop is recorded one step at a time at the loop's own depth."""
        for step in steps:
            stmt, plan = step.stmt, step.loop
            step.on_tape = depth > 0
            if plan is not None and plan.snapshots is not None:
                plan.checkpoint = checkpoint_state(stmt, plan.snapshots, self.fn, self.needed, self.types)
                self._save(step, plan.checkpoint.state, loop)
                plan.trip_taped = depth > 0
                self._place_saves(step.body, saved, depth, loop)
            elif step.active and isinstance(stmt, (C.ForRange, C.While)):
                if isinstance(stmt, C.ForRange):
                    self._save(step, sorted({stmt.var} & saved), loop)
                plan.trip_taped = depth > 0
                self._place_saves(step.body, saved, depth + 1, plan)
            elif step.active and isinstance(stmt, C.If):
                self._place_saves(step.body, saved, depth, loop)
                self._place_saves(step.orelse, saved, depth, loop)
            elif isinstance(stmt, C.Store) and stmt.base in self.needed:
                step.keeps_elements = True
            else:
                self._save(step, sorted(all_targets(stmt) & saved), loop)

    def _save(self, step, variables, loop):
        step.saved = list(variables)
        if step.on_tape:
            for v in variables:
                loops = self.tape_loops.setdefault(v, [])
                if loop not in loops:
                    loops.append(loop)

    def _tapes(self) -> dict:
        tapes = {}
        for v, loops in self.tape_loops.items():
            array = self.adjoints.is_array(v)
            tape = Tape(v, self.names.claim("tape_" + v), self.names.claim(f"tape_{v}_len"))
            if array:
                tape.index = self.names.claim(f"tape_{v}_index")
            tape.reserved_at_each_push = not array and len(loops) > 1
            tapes[v] = tape
        return tapes

    def _decisions(self, saved, recomputed) -> dict:
        decisions = {}
        for v in sorted(set(self.types) | self.needed | self.shape_needed | recomputed):
            if v not in self.needed | self.shape_needed | recomputed:
                decisions[v] = Keep.NOT_NEEDED
            elif v in recomputed:
                decisions[v] = Keep.RECOMPUTED
            elif v in saved:
                decisions[v] = Keep.SAVED
            elif v in self.extents and v not in self.needed:
                decisions[v] = Keep.EXTENTS
            else:
                decisions[v] = Keep.AS_IS
        return decisions
