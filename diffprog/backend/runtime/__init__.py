"""Helpers the generated code calls. Plain Python functions that numba compiles inline into the caller
(`register_jitable`), so the same generated module runs with and without numba.

Generated modules import them from here (`from diffprog.backend.runtime import NAME`, see
rules/runtime_calls.py), whichever module of the package defines them: one module per family.
"""
from ...rules.runtime_calls import REVOLVE_ACTIONS
from ..tapes import tape_reserve
from .accumulate import (add_at, add_matmul, add_outer, add_outer_at, add_product, move_at, scatter_add,
                         spread_like, sum_product, unbroadcast, unbroadcast_to)
from .lanes import (lanes_cholesky_jvp, lanes_cumsum, lanes_dot, lanes_embed, lanes_fit, lanes_matmat,
                    lanes_matmat_right, lanes_matvec, lanes_prod_others_along_tangent, lanes_prod_others_tangent,
                    lanes_ravel, lanes_reshape, lanes_scale, lanes_scatter, lanes_solve, lanes_split, lanes_sum,
                    lanes_tape, lanes_tape_reserve, lanes_trace, lanes_transpose, lanes_unbroadcast, lanes_vecmat,
                    lanes_zeros)
from .revolve import revolve_new, revolve_next, revolve_slots, revolve_split, snapshot_list
from .rule_helpers import (array_of, cholesky_jvp, cholesky_vjp, concatenate_of, cumsum_reversed, embed_along,
                           hstack_of, inner_product, keep_axis, max_along, min_along, prod_along, prod_others, prod_others_along,
                           prod_others_along_tangent, prod_others_tangent, split_along, stack_of, vstack_of)

__all__ = [
    "REVOLVE_ACTIONS", "tape_reserve",
    "add_at", "add_matmul", "add_outer", "add_outer_at", "add_product", "move_at", "scatter_add", "spread_like",
    "sum_product", "unbroadcast", "unbroadcast_to",
    "lanes_cholesky_jvp", "lanes_cumsum", "lanes_dot", "lanes_embed", "lanes_fit", "lanes_matmat",
    "lanes_matmat_right", "lanes_matvec", "lanes_prod_others_along_tangent", "lanes_prod_others_tangent",
    "lanes_ravel", "lanes_reshape", "lanes_scale", "lanes_scatter", "lanes_solve", "lanes_split", "lanes_sum",
    "lanes_tape", "lanes_tape_reserve", "lanes_trace", "lanes_transpose", "lanes_unbroadcast", "lanes_vecmat",
    "lanes_zeros",
    "revolve_new", "revolve_next", "revolve_slots", "revolve_split", "snapshot_list",
    "array_of", "cholesky_jvp", "cholesky_vjp", "cumsum_reversed", "embed_along", "keep_axis", "max_along", "min_along",
    "prod_along", "prod_others", "prod_others_along", "prod_others_along_tangent", "prod_others_tangent",
    "split_along", "inner_product", "concatenate_of", "hstack_of", "stack_of", "vstack_of",
]
