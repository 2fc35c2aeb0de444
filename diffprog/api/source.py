"""`diffprog.source`: the code diffprog generated (and runs) for a function, or the code after any pass."""
from __future__ import annotations

from typing import Any, Callable

from ..compiler.pipeline import render
from ..compiler.registry import LOCK
from ..errors import user_facing
from .gradients import as_differentiable


@user_facing
def source(f: Callable[..., Any], mode: str = "reverse", *, args: tuple | None = None,
           argnums: int | tuple[int, ...] = 0, after: str | None = None) -> str:
    """The exact Python source diffprog generated (and runs) for `f`.

    `mode` is "reverse" (the adjoint), "forward" (the tangent code), "forward_batched" (the tangent code
    dp.jacobian runs: tangents with a trailing lane axis, several directions per pass) or "primal" (the
    normalized primal). With `args`, for those argument types; otherwise the most recent specialization, or
    floats for every parameter if `f` has not run yet.

    The text starts with a comment naming the function, its file and the argument types it was specialized
    for; each group of statements is headed by a comment quoting the user's line it came from.

    With `after`, the code as it stands after that pass of the pipeline instead (docs/design.md lists them:
    "lower", "nested", "cleanup", "infer", "initialize", "check", "reverse", "in_place", "forward", ...), printed
    as Python; `DIFFPROG_DUMP=pass` prints the same on stderr during every compilation.

    Example:
        ```python
        import math
        import diffprog as dp

        @dp.differentiable
        def g(x):
            return x * dp.no_derivative(math.exp(x))

        print(dp.source(g, mode="primal"))
        # # diffprog 0.1.0: primal code for g (/path/to/your_file.py:5)
        # # specialized for (x: float64)
        # ...
        # def g(x):
        #     # your_file.py:6: return x * dp.no_derivative(math.exp(x))
        #     exp_1 = math.exp(x)
        #     no_derivative_2 = exp_1
        #     mul_3 = x * no_derivative_2
        #     return mul_3
        print(dp.source(g, mode="reverse", args=(1.0,)))   # the adjoint: g_reverse(x, seed)
        ```
    """
    if mode not in ("reverse", "forward", "forward_batched", "primal"):
        raise ValueError(f"mode must be 'reverse', 'forward', 'forward_batched' or 'primal', not {mode!r}")
    df = as_differentiable(f)
    compiler = df.compiler
    with LOCK:
        last = compiler.last.get(mode) if args is None else None
        if last is not None and last.deps is not None and not last.deps.fresh():
            last = None  # compiled before a helper or global it reads was redefined
        if after is None or after in ("codegen", "jit"):
            if last is not None:
                return last.source
            return compiler.specialize(mode, _source_wrt(mode, argnums), _source_args(compiler, args)).source
        if last is not None:
            signature, wrt = last.signature, last.wrt
        else:
            signature, wrt = compiler.signature(_source_args(compiler, args)), _source_wrt(mode, argnums)
        return render(compiler.compile(mode, wrt, signature, until=after))


def _source_args(compiler, args) -> tuple:
    """The arguments whose types dp.source specializes for: floats for every parameter unless given."""
    return tuple(args) if args is not None else (1.0,) * len(compiler.params)


def _source_wrt(mode, argnums) -> tuple:
    return () if mode == "primal" else ((argnums,) if isinstance(argnums, int) else tuple(argnums))
