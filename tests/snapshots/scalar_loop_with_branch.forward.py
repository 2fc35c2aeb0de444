# diffprog <version>: forward code for scalar_loop_with_branch (tests/snapshot_programs.py:14)
# specialized for (x: float64, n: int64)
import math
import numpy as np


def scalar_loop_with_branch_forward(x, n, x_dot):
    # snapshot_programs.py:15: s = 0.0
    s = 0.0
    s_dot = 0.0
    # snapshot_programs.py:16: for i in range(n):
    bound_1 = n
    for i in range(bound_1):
        # snapshot_programs.py:17: if x * i > 1.0:
        mul_3 = x * i
        cond_2 = mul_3 > 1.0
        if cond_2:
            # snapshot_programs.py:18: s = s + math.sin(x * i)
            mul_4 = x * i
            mul_4_dot = i * x_dot
            sin_5 = math.sin(mul_4)
            cos_9 = math.cos(mul_4)
            sin_5_dot = cos_9 * mul_4_dot
            add_6 = s + sin_5
            add_6_dot = s_dot + sin_5_dot
            s = add_6
            s_dot = add_6_dot
        else:
            # snapshot_programs.py:20: s = s - x * x
            mul_7 = x * x
            mul_10 = x * x_dot
            mul_7_dot = mul_10 + mul_10
            sub_8 = s - mul_7
            sub_8_dot = s_dot - mul_7_dot
            s = sub_8
            s_dot = sub_8_dot
    return (s, s_dot)
