# diffprog <version>: forward code for matmul_and_reduction (tests/snapshot_programs.py:24)
# specialized for (A: float64[:, :], x: float64[:])
import math
import numpy as np


def matmul_and_reduction_forward(A, x, A_dot):
    # snapshot_programs.py:25: y = A @ x
    y = A @ x
    matmul_4 = A_dot @ x
    zeros_like_5 = np.zeros_like(y)
    y_dot = zeros_like_5 + matmul_4
    # snapshot_programs.py:26: return np.sum(np.tanh(y) * y)
    tanh_1 = np.tanh(y)
    mul_6 = tanh_1 * tanh_1
    sub_7 = 1.0 - mul_6
    zeros_like_8 = np.zeros_like(tanh_1)
    mul_9 = sub_7 * y_dot
    tanh_1_dot = zeros_like_8 + mul_9
    mul_2 = tanh_1 * y
    mul_10 = y * tanh_1_dot
    mul_11 = tanh_1 * y_dot
    mul_2_dot = mul_10 + mul_11
    sum_3 = np.sum(mul_2)
    sum_12 = np.sum(mul_2_dot)
    sum_3_dot = sum_12
    return (sum_3, sum_3_dot)
