# diffprog <version>: forward code for quaternion_method_calls (tests/snapshot_programs.py:64)
# specialized for (q_w: float64, q_x: float64, q_y: float64, q_z: float64, s: float64)
import math
import numpy as np


def quaternion_method_calls_forward(q_w, q_x, q_y, q_z, s, q_w_dot, q_x_dot, q_y_dot, q_z_dot):
    # snapshot_programs.py:55: return Quaternion(self.w * s, self.x * s, self.y * s, self.z * s)
    mul_1 = q_w * s
    mul_1_dot = s * q_w_dot
    mul_2 = q_x * s
    mul_2_dot = s * q_x_dot
    mul_3 = q_y * s
    mul_3_dot = s * q_y_dot
    # snapshot_programs.py:61: return Quaternion(self.w, -self.x, -self.y, -self.z)
    neg_5 = -q_x
    neg_5_dot = -q_x_dot
    neg_6 = -q_y
    neg_6_dot = -q_y_dot
    # snapshot_programs.py:58: return Quaternion(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)
    add_8 = mul_1 + q_w
    add_8_dot = mul_1_dot + q_w_dot
    add_9 = mul_2 + neg_5
    add_9_dot = mul_2_dot + neg_5_dot
    add_10 = mul_3 + neg_6
    add_10_dot = mul_3_dot + neg_6_dot
    # snapshot_programs.py:65: r = q.scaled(s) + q.conj()
    r_w = add_8
    r_w_dot = add_8_dot
    r_x = add_9
    r_x_dot = add_9_dot
    r_y = add_10
    r_y_dot = add_10_dot
    # snapshot_programs.py:66: return r.w * r.w + r.x * r.y
    mul_12 = r_w * r_w
    mul_15 = r_w * r_w_dot
    mul_12_dot = mul_15 + mul_15
    mul_13 = r_x * r_y
    mul_16 = r_y * r_x_dot
    mul_17 = r_x * r_y_dot
    mul_13_dot = mul_16 + mul_17
    add_14 = mul_12 + mul_13
    add_14_dot = mul_12_dot + mul_13_dot
    return (add_14, add_14_dot)
