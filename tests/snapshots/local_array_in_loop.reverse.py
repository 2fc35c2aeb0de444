# diffprog <version>: reverse code for local_array_in_loop (tests/snapshot_programs.py:29)
# specialized for (a: float64[:])
import math
import numpy as np


def local_array_in_loop_reverse(a, seed):
    # snapshot_programs.py:29: def local_array_in_loop(a):
    out = np.zeros((0, ), np.float64)
    out_extent0 = 0
    # snapshot_programs.py:30: n = a.shape[0]
    n = a.shape[0]
    # snapshot_programs.py:31: out = np.zeros(n)
    out = np.zeros((n,))
    out_extent0 = out.shape[0]
    # snapshot_programs.py:32: for i in range(1, n):
    bound_1 = n
    trip_18 = len(range(1, bound_1, 1))
    for i in range(1, bound_1):
        # snapshot_programs.py:33: out[i] = out[i - 1] * 0.5 + a[i] * a[i - 1]
        sub_2 = i - 1
        getitem_3 = out[sub_2]
        mul_4 = getitem_3 * 0.5
        getitem_5 = a[i]
        sub_6 = i - 1
        getitem_7 = a[sub_6]
        mul_8 = getitem_5 * getitem_7
        add_9 = mul_4 + mul_8
        out[i] = add_9
    # snapshot_programs.py:34: return np.sum(out)
    sum_10 = np.sum(out)
    # snapshot_programs.py:29: def local_array_in_loop(a):
    value = sum_10
    a_adj = np.zeros(a.shape)
    add_9_adj = 0.0
    getitem_3_adj = 0.0
    getitem_5_adj = 0.0
    getitem_7_adj = 0.0
    mul_4_adj = 0.0
    mul_8_adj = 0.0
    out_adj = np.zeros((out_extent0, ))
    sum_10_adj = 0.0
    sum_10_adj = sum_10_adj + seed
    # snapshot_programs.py:34: return np.sum(out)
    out_adj += sum_10_adj
    sum_10_adj = 0.0
    # snapshot_programs.py:32: for i in range(1, n):
    last_19 = trip_18 - 1
    for k_20 in range(last_19, (-1), (-1)):
        i = 1 + k_20
        # snapshot_programs.py:33: out[i] = out[i - 1] * 0.5 + a[i] * a[i - 1]
        sub_2 = i - 1
        getitem_5 = a[i]
        sub_6 = i - 1
        getitem_7 = a[sub_6]
        out_adj_at_17 = out_adj[i]
        add_9_adj += out_adj_at_17
        out_adj[i] = 0.0
        mul_4_adj += add_9_adj
        mul_8_adj += add_9_adj
        add_9_adj = 0.0
        mul_15 = getitem_7 * mul_8_adj
        getitem_5_adj += mul_15
        mul_16 = getitem_5 * mul_8_adj
        getitem_7_adj += mul_16
        mul_8_adj = 0.0
        a_adj_at_14 = a_adj[sub_6]
        getitem_7_adj += a_adj_at_14
        a_adj[sub_6] = getitem_7_adj
        getitem_7_adj = 0.0
        a_adj_at_13 = a_adj[i]
        getitem_5_adj += a_adj_at_13
        a_adj[i] = getitem_5_adj
        getitem_5_adj = 0.0
        mul_12 = 0.5 * mul_4_adj
        getitem_3_adj += mul_12
        mul_4_adj = 0.0
        out_adj_at_11 = out_adj[sub_2]
        getitem_3_adj += out_adj_at_11
        out_adj[sub_2] = getitem_3_adj
        getitem_3_adj = 0.0
    # snapshot_programs.py:31: out = np.zeros(n)
    same_shape_21 = out_adj.shape == (out_extent0, )
    if same_shape_21:
        out_adj.fill(0.0)
    else:
        out_adj = np.zeros((out_extent0, ))
    return (value, a_adj)
