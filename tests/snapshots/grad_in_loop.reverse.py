# diffprog <version>: reverse code for grad_in_loop (tests/snapshot_programs.py:73)
# specialized for (x: float64, n: int64)
import math
import numpy as np
from diffprog.backend.runtime import tape_reserve


def grad_in_loop_reverse(x, n, seed):
    # snapshot_programs.py:73: def grad_in_loop(x, n):
    float_2 = 0.0
    grad__inner_exp_3_adj = 0.0
    grad__inner_mul_2_adj = 0.0
    tape_float_2 = np.empty(0, np.float64)
    tape_float_2_len = 0
    tape_grad__inner_exp_3_adj = np.empty(0, np.float64)
    tape_grad__inner_exp_3_adj_len = 0
    tape_grad__inner_mul_2_adj = np.empty(0, np.float64)
    tape_grad__inner_mul_2_adj_len = 0
    # snapshot_programs.py:74: s = 0.0
    s = 0.0
    # snapshot_programs.py:75: for i in range(n):
    bound_1 = n
    # snapshot_programs.py:70: return c * y * y + math.exp(y)
    grad__inner_exp_3 = math.exp(x)
    # snapshot_programs.py:75: for i in range(n):
    trip_11 = len(range(0, bound_1, 1))
    tape_float_2 = tape_reserve(tape_float_2, tape_float_2_len, trip_11)
    need_12 = trip_11 * 3
    tape_grad__inner_exp_3_adj = tape_reserve(tape_grad__inner_exp_3_adj, tape_grad__inner_exp_3_adj_len, need_12)
    need_13 = trip_11 * 3
    tape_grad__inner_mul_2_adj = tape_reserve(tape_grad__inner_mul_2_adj, tape_grad__inner_mul_2_adj_len, need_13)
    for i in range(bound_1):
        # snapshot_programs.py:76: s = s + dp.grad(_inner)(x, float(i))
        tape_float_2[tape_float_2_len] = float_2
        tape_float_2_len = tape_float_2_len + 1
        float_2 = (i * 1.0)
        # snapshot_programs.py:69: def _inner(y, c):
        grad__inner_seed = 1.0
        # snapshot_programs.py:70: return c * y * y + math.exp(y)
        grad__inner_mul_1 = float_2 * x
        # snapshot_programs.py:69: def _inner(y, c):
        grad__inner_add_4_adj = 0.0
        tape_grad__inner_exp_3_adj[tape_grad__inner_exp_3_adj_len] = grad__inner_exp_3_adj
        tape_grad__inner_exp_3_adj_len = tape_grad__inner_exp_3_adj_len + 1
        grad__inner_exp_3_adj = 0.0
        grad__inner_mul_1_adj = 0.0
        tape_grad__inner_mul_2_adj[tape_grad__inner_mul_2_adj_len] = grad__inner_mul_2_adj
        tape_grad__inner_mul_2_adj_len = tape_grad__inner_mul_2_adj_len + 1
        grad__inner_mul_2_adj = 0.0
        grad__inner_y_adj = 0.0
        grad__inner_add_4_adj_9 = grad__inner_add_4_adj + grad__inner_seed
        grad__inner_add_4_adj = grad__inner_add_4_adj_9
        # snapshot_programs.py:70: return c * y * y + math.exp(y)
        grad__inner_mul_2_adj_10 = grad__inner_mul_2_adj + grad__inner_add_4_adj
        tape_grad__inner_mul_2_adj[tape_grad__inner_mul_2_adj_len] = grad__inner_mul_2_adj
        tape_grad__inner_mul_2_adj_len = tape_grad__inner_mul_2_adj_len + 1
        grad__inner_mul_2_adj = grad__inner_mul_2_adj_10
        grad__inner_exp_3_adj_11 = grad__inner_exp_3_adj + grad__inner_add_4_adj
        tape_grad__inner_exp_3_adj[tape_grad__inner_exp_3_adj_len] = grad__inner_exp_3_adj
        tape_grad__inner_exp_3_adj_len = tape_grad__inner_exp_3_adj_len + 1
        grad__inner_exp_3_adj = grad__inner_exp_3_adj_11
        grad__inner_add_4_adj = 0.0
        grad__inner_mul_8 = grad__inner_exp_3 * grad__inner_exp_3_adj
        grad__inner_y_adj_12 = grad__inner_y_adj + grad__inner_mul_8
        grad__inner_y_adj = grad__inner_y_adj_12
        tape_grad__inner_exp_3_adj[tape_grad__inner_exp_3_adj_len] = grad__inner_exp_3_adj
        tape_grad__inner_exp_3_adj_len = tape_grad__inner_exp_3_adj_len + 1
        grad__inner_exp_3_adj = 0.0
        grad__inner_mul_6 = x * grad__inner_mul_2_adj
        grad__inner_mul_1_adj_13 = grad__inner_mul_1_adj + grad__inner_mul_6
        grad__inner_mul_1_adj = grad__inner_mul_1_adj_13
        grad__inner_mul_7 = grad__inner_mul_1 * grad__inner_mul_2_adj
        grad__inner_y_adj_14 = grad__inner_y_adj + grad__inner_mul_7
        grad__inner_y_adj = grad__inner_y_adj_14
        tape_grad__inner_mul_2_adj[tape_grad__inner_mul_2_adj_len] = grad__inner_mul_2_adj
        tape_grad__inner_mul_2_adj_len = tape_grad__inner_mul_2_adj_len + 1
        grad__inner_mul_2_adj = 0.0
        grad__inner_mul_5 = float_2 * grad__inner_mul_1_adj
        grad__inner_y_adj_15 = grad__inner_y_adj + grad__inner_mul_5
        grad__inner_y_adj = grad__inner_y_adj_15
        grad__inner_mul_1_adj = 0.0
        # snapshot_programs.py:76: s = s + dp.grad(_inner)(x, float(i))
        grad__inner_3 = grad__inner_y_adj
        add_4 = s + grad__inner_3
        s = add_4
    # snapshot_programs.py:73: def grad_in_loop(x, n):
    value = s
    add_4_adj = 0.0
    grad__inner_3_adj = 0.0
    grad__inner_exp_3_adj_2 = 0.0
    grad__inner_mul_1_adj_2 = 0.0
    grad__inner_mul_1_adj_adj = 0.0
    grad__inner_mul_1_adj_13_adj = 0.0
    grad__inner_mul_5_adj = 0.0
    grad__inner_mul_6_adj = 0.0
    grad__inner_mul_7_adj = 0.0
    grad__inner_mul_8_adj = 0.0
    grad__inner_y_adj_adj = 0.0
    grad__inner_y_adj_12_adj = 0.0
    grad__inner_y_adj_14_adj = 0.0
    grad__inner_y_adj_15_adj = 0.0
    s_adj = 0.0
    x_adj = 0.0
    s_adj = s_adj + seed
    # snapshot_programs.py:75: for i in range(n):
    last_14 = trip_11 - 1
    for k_15 in range(last_14, (-1), (-1)):
        i = k_15
        # snapshot_programs.py:76: s = s + dp.grad(_inner)(x, float(i))
        add_4_adj += s_adj
        s_adj = 0.0
        s_adj += add_4_adj
        grad__inner_3_adj += add_4_adj
        add_4_adj = 0.0
        grad__inner_y_adj_adj += grad__inner_3_adj
        grad__inner_3_adj = 0.0
        # snapshot_programs.py:70: return c * y * y + math.exp(y)
        grad__inner_mul_1_adj_adj = 0.0
        grad__inner_y_adj_15_adj += grad__inner_y_adj_adj
        grad__inner_y_adj_adj = 0.0
        grad__inner_y_adj_adj += grad__inner_y_adj_15_adj
        grad__inner_mul_5_adj += grad__inner_y_adj_15_adj
        grad__inner_y_adj_15_adj = 0.0
        mul_10 = float_2 * grad__inner_mul_5_adj
        grad__inner_mul_1_adj_adj += mul_10
        grad__inner_mul_5_adj = 0.0
        tape_grad__inner_mul_2_adj_len = tape_grad__inner_mul_2_adj_len - 1
        grad__inner_mul_2_adj = tape_grad__inner_mul_2_adj[tape_grad__inner_mul_2_adj_len]
        grad__inner_y_adj_14_adj += grad__inner_y_adj_adj
        grad__inner_y_adj_adj = 0.0
        grad__inner_y_adj_adj += grad__inner_y_adj_14_adj
        grad__inner_mul_7_adj += grad__inner_y_adj_14_adj
        grad__inner_y_adj_14_adj = 0.0
        mul_9 = grad__inner_mul_2_adj * grad__inner_mul_7_adj
        grad__inner_mul_1_adj_2 += mul_9
        grad__inner_mul_7_adj = 0.0
        grad__inner_mul_1_adj_13_adj += grad__inner_mul_1_adj_adj
        grad__inner_mul_1_adj_adj = 0.0
        grad__inner_mul_1_adj_adj += grad__inner_mul_1_adj_13_adj
        grad__inner_mul_6_adj += grad__inner_mul_1_adj_13_adj
        grad__inner_mul_1_adj_13_adj = 0.0
        mul_8 = grad__inner_mul_2_adj * grad__inner_mul_6_adj
        x_adj += mul_8
        grad__inner_mul_6_adj = 0.0
        tape_grad__inner_exp_3_adj_len = tape_grad__inner_exp_3_adj_len - 1
        grad__inner_exp_3_adj = tape_grad__inner_exp_3_adj[tape_grad__inner_exp_3_adj_len]
        grad__inner_y_adj_12_adj += grad__inner_y_adj_adj
        grad__inner_y_adj_adj = 0.0
        grad__inner_y_adj_adj += grad__inner_y_adj_12_adj
        grad__inner_mul_8_adj += grad__inner_y_adj_12_adj
        grad__inner_y_adj_12_adj = 0.0
        mul_7 = grad__inner_exp_3_adj * grad__inner_mul_8_adj
        grad__inner_exp_3_adj_2 += mul_7
        grad__inner_mul_8_adj = 0.0
        tape_grad__inner_exp_3_adj_len = tape_grad__inner_exp_3_adj_len - 1
        grad__inner_exp_3_adj = tape_grad__inner_exp_3_adj[tape_grad__inner_exp_3_adj_len]
        tape_grad__inner_mul_2_adj_len = tape_grad__inner_mul_2_adj_len - 1
        grad__inner_mul_2_adj = tape_grad__inner_mul_2_adj[tape_grad__inner_mul_2_adj_len]
        # snapshot_programs.py:69: def _inner(y, c):
        grad__inner_y_adj_adj = 0.0
        tape_grad__inner_mul_2_adj_len = tape_grad__inner_mul_2_adj_len - 1
        grad__inner_mul_2_adj = tape_grad__inner_mul_2_adj[tape_grad__inner_mul_2_adj_len]
        grad__inner_mul_1_adj_adj = 0.0
        tape_grad__inner_exp_3_adj_len = tape_grad__inner_exp_3_adj_len - 1
        grad__inner_exp_3_adj = tape_grad__inner_exp_3_adj[tape_grad__inner_exp_3_adj_len]
        # snapshot_programs.py:70: return c * y * y + math.exp(y)
        mul_6 = float_2 * grad__inner_mul_1_adj_2
        x_adj += mul_6
        grad__inner_mul_1_adj_2 = 0.0
        # snapshot_programs.py:76: s = s + dp.grad(_inner)(x, float(i))
        tape_float_2_len = tape_float_2_len - 1
        float_2 = tape_float_2[tape_float_2_len]
    # snapshot_programs.py:70: return c * y * y + math.exp(y)
    mul_5 = grad__inner_exp_3 * grad__inner_exp_3_adj_2
    x_adj += mul_5
    grad__inner_exp_3_adj_2 = 0.0
    # snapshot_programs.py:74: s = 0.0
    s_adj = 0.0
    return (value, x_adj)
