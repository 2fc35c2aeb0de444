# diffprog <version>: forward code for grad_in_loop (tests/snapshot_programs.py:73)
# specialized for (x: float64, n: int64)
import math
import numpy as np


def grad_in_loop_forward(x, n, x_dot):
    # snapshot_programs.py:74: s = 0.0
    s = 0.0
    s_dot = 0.0
    # snapshot_programs.py:75: for i in range(n):
    bound_1 = n
    # snapshot_programs.py:70: return c * y * y + math.exp(y)
    grad__inner_exp_3 = math.exp(x)
    grad__inner_exp_3_dot = grad__inner_exp_3 * x_dot
    # snapshot_programs.py:75: for i in range(n):
    for i in range(bound_1):
        # snapshot_programs.py:76: s = s + dp.grad(_inner)(x, float(i))
        float_2 = (i * 1.0)
        # snapshot_programs.py:69: def _inner(y, c):
        grad__inner_seed = 1.0
        # snapshot_programs.py:70: return c * y * y + math.exp(y)
        grad__inner_mul_1 = float_2 * x
        grad__inner_mul_1_dot = float_2 * x_dot
        # snapshot_programs.py:69: def _inner(y, c):
        grad__inner_add_4_adj = 0.0
        grad__inner_exp_3_adj = 0.0
        grad__inner_mul_1_adj = 0.0
        grad__inner_mul_1_adj_dot = 0.0
        grad__inner_mul_2_adj = 0.0
        grad__inner_y_adj = 0.0
        grad__inner_y_adj_dot = 0.0
        grad__inner_add_4_adj_9 = grad__inner_add_4_adj + grad__inner_seed
        grad__inner_add_4_adj = grad__inner_add_4_adj_9
        # snapshot_programs.py:70: return c * y * y + math.exp(y)
        grad__inner_mul_2_adj_10 = grad__inner_mul_2_adj + grad__inner_add_4_adj
        grad__inner_mul_2_adj = grad__inner_mul_2_adj_10
        grad__inner_exp_3_adj_11 = grad__inner_exp_3_adj + grad__inner_add_4_adj
        grad__inner_exp_3_adj = grad__inner_exp_3_adj_11
        grad__inner_add_4_adj = 0.0
        grad__inner_mul_8 = grad__inner_exp_3 * grad__inner_exp_3_adj
        grad__inner_mul_8_dot = grad__inner_exp_3_adj * grad__inner_exp_3_dot
        grad__inner_y_adj_12 = grad__inner_y_adj + grad__inner_mul_8
        grad__inner_y_adj_12_dot = grad__inner_y_adj_dot + grad__inner_mul_8_dot
        grad__inner_y_adj = grad__inner_y_adj_12
        grad__inner_y_adj_dot = grad__inner_y_adj_12_dot
        grad__inner_exp_3_adj = 0.0
        grad__inner_mul_6 = x * grad__inner_mul_2_adj
        grad__inner_mul_6_dot = grad__inner_mul_2_adj * x_dot
        grad__inner_mul_1_adj_13 = grad__inner_mul_1_adj + grad__inner_mul_6
        grad__inner_mul_1_adj_13_dot = grad__inner_mul_1_adj_dot + grad__inner_mul_6_dot
        grad__inner_mul_1_adj = grad__inner_mul_1_adj_13
        grad__inner_mul_1_adj_dot = grad__inner_mul_1_adj_13_dot
        grad__inner_mul_7 = grad__inner_mul_1 * grad__inner_mul_2_adj
        grad__inner_mul_7_dot = grad__inner_mul_2_adj * grad__inner_mul_1_dot
        grad__inner_y_adj_14 = grad__inner_y_adj + grad__inner_mul_7
        grad__inner_y_adj_14_dot = grad__inner_y_adj_dot + grad__inner_mul_7_dot
        grad__inner_y_adj = grad__inner_y_adj_14
        grad__inner_y_adj_dot = grad__inner_y_adj_14_dot
        grad__inner_mul_2_adj = 0.0
        grad__inner_mul_5 = float_2 * grad__inner_mul_1_adj
        grad__inner_mul_5_dot = float_2 * grad__inner_mul_1_adj_dot
        grad__inner_y_adj_15 = grad__inner_y_adj + grad__inner_mul_5
        grad__inner_y_adj_15_dot = grad__inner_y_adj_dot + grad__inner_mul_5_dot
        grad__inner_y_adj = grad__inner_y_adj_15
        grad__inner_y_adj_dot = grad__inner_y_adj_15_dot
        grad__inner_mul_1_adj = 0.0
        grad__inner_mul_1_adj_dot = 0.0
        # snapshot_programs.py:76: s = s + dp.grad(_inner)(x, float(i))
        grad__inner_3 = grad__inner_y_adj
        grad__inner_3_dot = grad__inner_y_adj_dot
        add_4 = s + grad__inner_3
        add_4_dot = s_dot + grad__inner_3_dot
        s = add_4
        s_dot = add_4_dot
    return (s, s_dot)
