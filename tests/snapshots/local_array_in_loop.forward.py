# diffprog <version>: forward code for local_array_in_loop (tests/snapshot_programs.py:29)
# specialized for (a: float64[:])
import math
import numpy as np


def local_array_in_loop_forward(a, a_dot):
    # snapshot_programs.py:30: n = a.shape[0]
    n = a.shape[0]
    # snapshot_programs.py:31: out = np.zeros(n)
    out = np.zeros((n,))
    out_dot = np.zeros_like(out)
    # snapshot_programs.py:32: for i in range(1, n):
    bound_1 = n
    for i in range(1, bound_1):
        # snapshot_programs.py:33: out[i] = out[i - 1] * 0.5 + a[i] * a[i - 1]
        sub_2 = i - 1
        getitem_3 = out[sub_2]
        getitem_3_dot = out_dot[sub_2]
        mul_4 = getitem_3 * 0.5
        mul_4_dot = 0.5 * getitem_3_dot
        getitem_5 = a[i]
        getitem_5_dot = a_dot[i]
        sub_6 = i - 1
        getitem_7 = a[sub_6]
        getitem_7_dot = a_dot[sub_6]
        mul_8 = getitem_5 * getitem_7
        mul_11 = getitem_7 * getitem_5_dot
        mul_12 = getitem_5 * getitem_7_dot
        mul_8_dot = mul_11 + mul_12
        add_9 = mul_4 + mul_8
        add_9_dot = mul_4_dot + mul_8_dot
        out[i] = add_9
        out_dot[i] = add_9_dot
    # snapshot_programs.py:34: return np.sum(out)
    sum_10 = np.sum(out)
    sum_13 = np.sum(out_dot)
    sum_10_dot = sum_13
    return (sum_10, sum_10_dot)
