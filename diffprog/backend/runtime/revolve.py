"""Binomial checkpointing (Griewank's revolve) for loops under `diffprog.checkpoint`. The generated adjoint asks
`revolve_next` for one action at a time and carries it out on the loop's state; the schedule lives in a small
int64 array, so a loop of 10^7 steps needs no per-step memory beyond its snapshots."""
import numba.typed
import numpy as np
from numba.extending import register_jitable

from ...rules.runtime_calls import REVOLVE_ACTIONS

REVOLVE_DONE, REVOLVE_ADVANCE, REVOLVE_TAKESHOT, REVOLVE_RESTORE, REVOLVE_YOUTURN = (
    REVOLVE_ACTIONS[name] for name in ("done", "advance", "takeshot", "restore", "youturn"))
# The schedule array: the action's arguments, the schedule's position, then the checkpointed step of each slot.
_FROM, _TO, _SLOT, _TOP, _UNDONE, _SLOTS, _PHASE, _LIVE, _POSITIONS = range(9)


@register_jitable
def revolve_slots(steps, snapshots):
    """How many states to keep (one of them the loop's entry state): `snapshots` when given, else the fewest
    with which no step runs more than twice before it is reversed (C(s + 2, 2) >= steps: O(sqrt(steps)))."""
    if snapshots > 0:
        return snapshots
    slots = 1
    while (slots + 1) * (slots + 2) // 2 < steps:
        slots += 1
    return slots


@register_jitable
def revolve_split(steps, slots):
    """How far to advance before keeping the next snapshot, when `steps` steps are to be reversed from a kept
    state with `slots` slots (that state's included). With r the fewest repetitions for which
    beta(slots, r) = C(slots + r, slots) >= steps, any split in [steps - beta(slots - 1, r), beta(slots, r - 1)]
    repeats no step more than r times (Griewank & Walther, revolve); beta(slots, r - 2) clamped to that range
    also minimizes the total number of steps advanced (checked against exhaustive search in the tests)."""
    repetitions = 0
    beta = 1  # beta(slots, r), then beta(slots, r - 1) and beta(slots, r - 2) (zero for negative r)
    beta_1 = 0
    beta_2 = 0
    while beta < steps:
        repetitions += 1
        beta_2 = beta_1
        beta_1 = beta
        beta = beta * (slots + repetitions) // repetitions
    lower = max(1, steps - (beta - beta_1))
    upper = min(beta_1, steps - 1)
    return min(max(lower, beta_2), upper)


@register_jitable
def revolve_new(steps, slots):
    schedule = np.zeros(_POSITIONS + slots, np.int64)
    schedule[_TOP] = -1
    schedule[_UNDONE] = steps  # steps at and after this one are reversed already
    schedule[_SLOTS] = slots
    return schedule


@register_jitable
def revolve_next(s):
    """The next action: ADVANCE steps s[0]..s[1]-1 without recording, TAKESHOT / RESTORE slot s[2], YOUTURN
    (record and reverse) step s[0], or DONE. The state starts at step 0 and ends undefined (restore slot 0)."""
    while True:
        phase = s[_PHASE]
        if phase == 0:  # keep the entry state (slot 0), even for a loop that runs no step
            s[_PHASE] = 1
            s[_TOP] = 0 if s[_UNDONE] > 0 else -1
            s[_SLOT] = 0
            return REVOLVE_TAKESHOT
        top = s[_TOP]
        if top < 0:
            return REVOLVE_DONE
        start = s[_POSITIONS + top]
        undone = s[_UNDONE]
        if phase == 1:  # bring the state to the newest snapshot
            s[_PHASE] = 2
            if s[_LIVE] != start:
                s[_SLOT] = top
                s[_LIVE] = start
                return REVOLVE_RESTORE
        elif phase == 2:
            if undone - start == 1:  # the snapshot's own step: reverse it, and free the snapshot
                s[_FROM] = start
                s[_UNDONE] = start
                s[_TOP] = top - 1
                s[_LIVE] = -1
                s[_PHASE] = 1
                return REVOLVE_YOUTURN
            free = s[_SLOTS] - 1 - top
            s[_FROM] = start
            if free > 0:  # advance to the binomial split point and keep a snapshot there
                s[_TO] = start + revolve_split(undone - start, free + 1)
                s[_PHASE] = 3
            else:  # no slot left: advance to the last undone step and reverse it
                s[_TO] = undone - 1
                s[_PHASE] = 4
            s[_LIVE] = s[_TO]
            return REVOLVE_ADVANCE
        elif phase == 3:
            s[_TOP] = top + 1
            s[_POSITIONS + top + 1] = s[_TO]
            s[_SLOT] = top + 1
            s[_PHASE] = 1
            return REVOLVE_TAKESHOT
        else:  # phase 4
            s[_FROM] = undone - 1
            s[_UNDONE] = undone - 1
            s[_LIVE] = -1
            s[_PHASE] = 1
            return REVOLVE_YOUTURN


@register_jitable
def snapshot_list(value, slots):
    """Snapshot slots for an array carried by a checkpointed loop (a typed list holds one layout)."""
    snapshots = numba.typed.List()
    for _ in range(slots):
        snapshots.append(np.ascontiguousarray(value))
    return snapshots
