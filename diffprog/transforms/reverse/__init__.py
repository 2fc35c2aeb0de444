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
sweep re-runs steps from a few snapshots of the state the loop carries (checkpoint.py).

The pass plans first (plan.py: what is saved, where, what is recomputed, what keeps only its extents), then
writes both sweeps out from the plan (sweeps.py).
"""
from __future__ import annotations

from dataclasses import replace

from ...analysis.activity import Activity
from ...ir import core as C
from ...ir import types as T
from .adjoints import Adjoints
from .plan import Keep, ReversePlan, plan_reverse
from .statements import P
from .sweeps import Sweeps

__all__ = ["Keep", "ReversePlan", "emit", "plan", "reverse"]


def plan(function: C.Function, types: dict, activity: Activity, names, checkpoint=None) -> tuple:
    """(the plan, the adjoints it names) for reversing `function`; the plan works on a copy of the function."""
    adjoints = Adjoints(types, activity, names)
    copy = replace(function, body=C.clone(function.body))  # the plan adds statements keeping extents to it
    return plan_reverse(copy, types, activity, adjoints, names, checkpoint), adjoints


def reverse(function, types, activity, wrt, names, checkpoint=None) -> C.Function:
    """`checkpoint`: snapshots for every loop outside other loops (None: only loops marked in the code)."""
    planned, adjoints = plan(function, types, activity, names, checkpoint)
    return emit(planned, adjoints, types, activity, wrt, names)


def emit(planned: ReversePlan, adjoints: Adjoints, types, activity, wrt, names) -> C.Function:
    """The reverse function written out from the plan: prologue, forward sweep, values, seeds, backward sweep."""
    fn = planned.function
    sweeps = Sweeps(planned, adjoints, types, names)
    forward = sweeps.forward_block(planned.steps)
    prologue = sweeps.prologue(fn, activity.active)
    single = len(fn.results) == 1
    values = [C.Assign(names.claim("value" if single else f"value_{k}"), atom, fn.origin)
              for k, atom in enumerate(fn.results)]
    seeds = [names.claim("seed" if single else f"seed_{k}") for k in range(len(fn.results))]
    adjoint_inits = [adjoints.zero(name, fn.origin) for name in sorted(activity.active | set(wrt))]
    backward = adjoint_inits + _seed(fn, seeds, adjoints, activity) + sweeps.backward_block(planned.steps)
    body = prologue + forward + values + backward
    results = tuple(C.Var(v.target) for v in values) + tuple(C.Var(adjoints.adj(p)) for p in wrt)
    seed_types = tuple(types.get(a.name, T.FLOAT) if isinstance(a, C.Var) else T.FLOAT for a in fn.results)
    return C.Function(fn.name + "_reverse", list(fn.params) + seeds, body, results, True, fn.origin,
                      dict(fn.param_origins), seed_types)


def _seed(fn, seeds, adjoints, activity) -> list:
    """Adds each seed into the adjoint of the result it seeds."""
    out = []
    for atom, seed in zip(fn.results, seeds):
        if activity.is_active(atom):
            adj = adjoints.adj(atom.name)
            out.append(C.Assign(adj, C.Call(P("add"), (C.Var(adj), C.Var(seed))), fn.origin))
    return out
