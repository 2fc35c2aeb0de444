# diffprog <version>: reverse code for while_loop (tests/snapshot_programs.py:37)
# specialized for (x: float64)
import math
import numpy as np


def while_loop_reverse(x, seed):
    # snapshot_programs.py:38: y = x
    y = x
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
    trip_11 = 0
    while cond_1:
        trip_11 = trip_11 + 1
        # snapshot_programs.py:41: y = y * 1.5 + 0.1
        mul_5 = y * 1.5
        y = mul_5 + 0.1
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
    # snapshot_programs.py:37: def while_loop(x):
    value = y
    mul_5_adj = 0.0
    x_adj = 0.0
    y_adj = 0.0
    y_adj = y_adj + seed
    # snapshot_programs.py:40: while y < 10.0 and k < 50:
    for k_12 in range(trip_11):
        # snapshot_programs.py:41: y = y * 1.5 + 0.1
        mul_5_adj += y_adj
        y_adj = 0.0
        mul_10 = 1.5 * mul_5_adj
        y_adj += mul_10
        mul_5_adj = 0.0
    # snapshot_programs.py:38: y = x
    x_adj += y_adj
    y_adj = 0.0
    return (value, x_adj)
