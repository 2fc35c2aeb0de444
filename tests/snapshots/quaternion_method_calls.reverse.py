# diffprog <version>: reverse code for quaternion_method_calls (tests/snapshot_programs.py:64)
# specialized for (q_w: float64, q_x: float64, q_y: float64, q_z: float64, s: float64)
import math
import numpy as np


def quaternion_method_calls_reverse(q_w, q_x, q_y, q_z, s, seed):
    # snapshot_programs.py:55: return Quaternion(self.w * s, self.x * s, self.y * s, self.z * s)
    mul_1 = q_w * s
    mul_2 = q_x * s
    mul_3 = q_y * s
    # snapshot_programs.py:61: return Quaternion(self.w, -self.x, -self.y, -self.z)
    neg_5 = -q_x
    neg_6 = -q_y
    # snapshot_programs.py:58: return Quaternion(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)
    add_8 = mul_1 + q_w
    add_9 = mul_2 + neg_5
    add_10 = mul_3 + neg_6
    # snapshot_programs.py:65: r = q.scaled(s) + q.conj()
    r_w = add_8
    r_x = add_9
    r_y = add_10
    # snapshot_programs.py:66: return r.w * r.w + r.x * r.y
    mul_12 = r_w * r_w
    mul_13 = r_x * r_y
    add_14 = mul_12 + mul_13
    # snapshot_programs.py:64: def quaternion_method_calls(q, s):
    value = add_14
    add_10_adj = 0.0
    add_14_adj = 0.0
    add_8_adj = 0.0
    add_9_adj = 0.0
    mul_1_adj = 0.0
    mul_12_adj = 0.0
    mul_13_adj = 0.0
    mul_2_adj = 0.0
    mul_3_adj = 0.0
    neg_5_adj = 0.0
    neg_6_adj = 0.0
    q_w_adj = 0.0
    q_x_adj = 0.0
    q_y_adj = 0.0
    q_z_adj = 0.0
    r_w_adj = 0.0
    r_x_adj = 0.0
    r_y_adj = 0.0
    add_14_adj = add_14_adj + seed
    # snapshot_programs.py:66: return r.w * r.w + r.x * r.y
    mul_12_adj += add_14_adj
    mul_13_adj += add_14_adj
    add_14_adj = 0.0
    mul_19 = r_y * mul_13_adj
    r_x_adj += mul_19
    mul_20 = r_x * mul_13_adj
    r_y_adj += mul_20
    mul_13_adj = 0.0
    mul_18 = r_w * mul_12_adj
    r_w_adj += mul_18
    r_w_adj += mul_18
    mul_12_adj = 0.0
    # snapshot_programs.py:65: r = q.scaled(s) + q.conj()
    add_10_adj += r_y_adj
    r_y_adj = 0.0
    add_9_adj += r_x_adj
    r_x_adj = 0.0
    add_8_adj += r_w_adj
    r_w_adj = 0.0
    # snapshot_programs.py:58: return Quaternion(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)
    mul_3_adj += add_10_adj
    neg_6_adj += add_10_adj
    add_10_adj = 0.0
    mul_2_adj += add_9_adj
    neg_5_adj += add_9_adj
    add_9_adj = 0.0
    mul_1_adj += add_8_adj
    q_w_adj += add_8_adj
    add_8_adj = 0.0
    # snapshot_programs.py:61: return Quaternion(self.w, -self.x, -self.y, -self.z)
    q_y_adj -= neg_6_adj
    neg_6_adj = 0.0
    q_x_adj -= neg_5_adj
    neg_5_adj = 0.0
    # snapshot_programs.py:55: return Quaternion(self.w * s, self.x * s, self.y * s, self.z * s)
    mul_17 = s * mul_3_adj
    q_y_adj += mul_17
    mul_3_adj = 0.0
    mul_16 = s * mul_2_adj
    q_x_adj += mul_16
    mul_2_adj = 0.0
    mul_15 = s * mul_1_adj
    q_w_adj += mul_15
    mul_1_adj = 0.0
    return (value, q_w_adj, q_x_adj, q_y_adj, q_z_adj)
