"""Objects user code names inside a differentiated function that the compiler reads as instructions rather
than calls. They do nothing when the function runs as plain Python."""
from __future__ import annotations


class checkpoint:  # noqa: N801 - used like a function: `with diffprog.checkpoint():`
    """Differentiate the `for` loop in this block with binomial checkpointing: trade recomputation for memory.

    The backward sweep of a loop normally reads values the forward sweep recorded for every iteration, so its
    tape grows with the trip count. Under `checkpoint`, the forward sweep records nothing in the loop; the
    backward sweep keeps at most `snapshots` copies of the state the loop carries from one iteration to the
    next (the variables an iteration reads before assigning them), re-runs iterations from them, and records
    and reverses one iteration at a time in the order of Griewank's revolve schedule, which minimizes the
    number of re-run iterations. The gradient is the same as without it.

    With `snapshots=None` (the default) the number of snapshots grows as the square root of the trip count,
    so that no iteration runs more than twice before it is reversed: a loop of 10^7 iterations keeps about
    4,500 states instead of 10^7 iterations of tape, and its gradient takes about twice as long as the taped one
    (docs/benchmarks-checkpoint.md). A fixed `snapshots` bounds memory whatever the trip count; fewer
    snapshots mean more re-runs. `@diffprog.differentiable(checkpoint=True)` (or `=N`) does the same for every
    loop of the function that is not inside another loop. Forward mode ignores the mark (it keeps no tape).

    The block must contain the `for i in range(...)` loop itself; a loop that may `break` or `return` early
    cannot be checkpointed (exit through the range instead). What the loop carries must be numbers or arrays.

    Example:
        ```python
        @dp.differentiable
        def simulate(x, v, steps):
            with dp.checkpoint():
                for i in range(steps):
                    v = v - 0.001 * math.sin(x)
                    x = x + 0.001 * v
            return x

        dp.grad(simulate, (0, 1))(1.0, 0.0, 10_000_000)   # a few hundred KB instead of ~150 MB of tape
        ```
    """

    def __init__(self, snapshots: int | None = None):
        if snapshots is not None and (not isinstance(snapshots, int) or snapshots < 1):
            raise ValueError(f"checkpoint(snapshots=...) takes a positive int or None, not {snapshots!r}")
        self.snapshots = snapshots

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
