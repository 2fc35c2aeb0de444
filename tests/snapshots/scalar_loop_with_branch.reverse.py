# diffprog <version>: reverse code for scalar_loop_with_branch (tests/snapshot_programs.py:14)
# specialized for (x: float64, n: int64)
import math
import numpy as np
from diffprog.backend.runtime import tape_reserve


def scalar_loop_with_branch_reverse(x, n, seed):
    # snapshot_programs.py:14: def scalar_loop_with_branch(x, n):
    cond_2 = False
    mul_4 = 0.0
    tape_cond_2 = np.empty(0, np.bool_)
    tape_cond_2_len = 0
    tape_mul_4 = np.empty(0, np.float64)
    tape_mul_4_len = 0
    # snapshot_programs.py:15: s = 0.0
    s = 0.0
    # snapshot_programs.py:16: for i in range(n):
    bound_1 = n
    trip_13 = len(range(0, bound_1, 1))
    tape_cond_2 = tape_reserve(tape_cond_2, tape_cond_2_len, trip_13)
    tape_mul_4 = tape_reserve(tape_mul_4, tape_mul_4_len, trip_13)
    for i in range(bound_1):
        # snapshot_programs.py:17: if x * i > 1.0:
        mul_3 = x * i
        tape_cond_2[tape_cond_2_len] = cond_2
        tape_cond_2_len = tape_cond_2_len + 1
        cond_2 = mul_3 > 1.0
        if cond_2:
            # snapshot_programs.py:18: s = s + math.sin(x * i)
            tape_mul_4[tape_mul_4_len] = mul_4
            tape_mul_4_len = tape_mul_4_len + 1
            mul_4 = x * i
            sin_5 = math.sin(mul_4)
            add_6 = s + sin_5
            s = add_6
        else:
            # snapshot_programs.py:20: s = s - x * x
            mul_7 = x * x
            sub_8 = s - mul_7
            s = sub_8
    # snapshot_programs.py:14: def scalar_loop_with_branch(x, n):
    value = s
    add_6_adj = 0.0
    mul_4_adj = 0.0
    mul_7_adj = 0.0
    s_adj = 0.0
    sin_5_adj = 0.0
    sub_8_adj = 0.0
    x_adj = 0.0
    s_adj = s_adj + seed
    # snapshot_programs.py:16: for i in range(n):
    last_14 = trip_13 - 1
    for k_15 in range(last_14, (-1), (-1)):
        i = k_15
        # snapshot_programs.py:17: if x * i > 1.0:
        if cond_2:
            # snapshot_programs.py:18: s = s + math.sin(x * i)
            add_6_adj += s_adj
            s_adj = 0.0
            s_adj += add_6_adj
            sin_5_adj += add_6_adj
            add_6_adj = 0.0
            cos_10 = math.cos(mul_4)
            mul_11 = cos_10 * sin_5_adj
            mul_4_adj += mul_11
            sin_5_adj = 0.0
            mul_9 = i * mul_4_adj
            x_adj += mul_9
            mul_4_adj = 0.0
            tape_mul_4_len = tape_mul_4_len - 1
            mul_4 = tape_mul_4[tape_mul_4_len]
        else:
            # snapshot_programs.py:20: s = s - x * x
            sub_8_adj += s_adj
            s_adj = 0.0
            s_adj += sub_8_adj
            mul_7_adj -= sub_8_adj
            sub_8_adj = 0.0
            mul_12 = x * mul_7_adj
            x_adj += mul_12
            x_adj += mul_12
            mul_7_adj = 0.0
        # snapshot_programs.py:17: if x * i > 1.0:
        tape_cond_2_len = tape_cond_2_len - 1
        cond_2 = tape_cond_2[tape_cond_2_len]
    # snapshot_programs.py:15: s = 0.0
    s_adj = 0.0
    return (value, x_adj)
