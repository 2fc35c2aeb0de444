# diffprog <version>: reverse code for matmul_and_reduction (tests/snapshot_programs.py:24)
# specialized for (A: float64[:, :], x: float64[:])
import math
import numpy as np
from diffprog.backend.runtime import add_outer, add_product, unbroadcast


def matmul_and_reduction_reverse(A, x, seed):
    # snapshot_programs.py:24: def matmul_and_reduction(A, x):
    mul_2 = np.zeros((0, ), np.float64)
    mul_2_extent0 = 0
    tanh_1 = np.zeros((0, ), np.float64)
    y = np.zeros((0, ), np.float64)
    # snapshot_programs.py:25: y = A @ x
    y = A @ x
    # snapshot_programs.py:26: return np.sum(np.tanh(y) * y)
    tanh_1 = np.tanh(y)
    mul_2 = tanh_1 * y
    mul_2_extent0 = mul_2.shape[0]
    sum_3 = np.sum(mul_2)
    # snapshot_programs.py:24: def matmul_and_reduction(A, x):
    value = sum_3
    A_adj = np.zeros(A.shape)
    mul_2_adj = np.zeros((mul_2_extent0, ))
    sum_3_adj = 0.0
    tanh_1_adj = np.zeros(tanh_1.shape)
    y_adj = np.zeros(y.shape)
    sum_3_adj = sum_3_adj + seed
    # snapshot_programs.py:26: return np.sum(np.tanh(y) * y)
    mul_2_adj += sum_3_adj
    sum_3_adj = 0.0
    mul_8 = y * mul_2_adj
    unbroadcast_9 = unbroadcast(mul_8, tanh_1)
    add_product(y_adj, tanh_1, mul_2_adj)
    same_shape_12 = mul_2_adj.shape == (mul_2_extent0, )
    if same_shape_12:
        mul_2_adj.fill(0.0)
    else:
        mul_2_adj = np.zeros((mul_2_extent0, ))
    mul_5 = tanh_1 * tanh_1
    sub_6 = 1.0 - mul_5
    add_product(y_adj, sub_6, unbroadcast_9)
    reshaped_13 = tanh_1_adj.shape != tanh_1.shape
    if reshaped_13:
        tanh_1_adj = np.zeros(tanh_1.shape)
    # snapshot_programs.py:25: y = A @ x
    add_outer(A_adj, y_adj, x)
    same_shape_14 = y_adj.shape == y.shape
    if same_shape_14:
        y_adj.fill(0.0)
    else:
        y_adj = np.zeros(y.shape)
    return (value, A_adj)
