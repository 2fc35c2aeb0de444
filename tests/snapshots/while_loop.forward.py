# diffprog <version>: forward code for while_loop (tests/snapshot_programs.py:37)
# specialized for (x: float64)
import math
import numpy as np


def while_loop_forward(x, x_dot):
    # snapshot_programs.py:38: y = x
    y = x
    y_dot = x_dot
    # snapshot_programs.py:39: k = 0
    k = 0
    # snapshot_programs.py:40: while y < 10.0 and k < 50:
    lt_3 = y < 10.0
    and_2 = lt_3
    cond_4 = and_2
    if cond_4:
        and_2 = k < 50
    # snapshot_programs.py:40: while y < 10.0 and k < 50:
    cond_1 = and_2
    while cond_1:
        # snapshot_programs.py:41: y = y * 1.5 + 0.1
        mul_5 = y * 1.5
        mul_5_dot = 1.5 * y_dot
        y = mul_5 + 0.1
        y_dot = mul_5_dot
        # snapshot_programs.py:42: k = k + 1
        add_6 = k + 1
        k = add_6
        # snapshot_programs.py:40: while y < 10.0 and k < 50:
        lt_8 = y < 10.0
        and_7 = lt_8
        cond_9 = and_7
        if cond_9:
            and_7 = k < 50
        # snapshot_programs.py:40: while y < 10.0 and k < 50:
        cond_1 = and_7
    return (y, y_dot)
