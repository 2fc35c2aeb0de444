"""Benchmark: gradient with respect to a custom type (a Quaternion dataclass) of a loop over 10^5 points.

    python benchmarks/quaternion_rotation.py [--points N] [--repeats R]

Loss: rotate every point by q (q p q* / |q|^2, written with the Quaternion's methods) and sum the squared distances
to the targets. Measured in one process, interleaved, minimum over repeats:
  - diffprog primal and diffprog gradient w.r.t. q (a Quaternion-shaped tangent);
  - a hand-written numba gradient on plain floats of the same algorithm (the sandwich product per point and
    its adjoint derived by hand): the like-for-like comparison the target is about;
  - a hand-written numba gradient on plain floats with a cheaper algorithm (rotation matrix built once, the
    loop accumulates sum 2 (R p - y) p^T, then the chain rule through R(q)/|q|^2);
  - JAX (jit of grad of the same loss written with arrays), when installed.
Targets (issue 4): gradient / primal <= 3, diffprog gradient / hand-written <= 1.5 (same algorithm).
"""
from __future__ import annotations

import argparse
import math
import timeit
from dataclasses import dataclass

import numba
import numpy as np

import diffprog as dp
from plots import save_bar_chart


@dp.differentiable_type
@dataclass(frozen=True)
class Quaternion:
    w: float
    x: float
    y: float
    z: float

    def __mul__(self, o):
        return Quaternion(self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
                          self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
                          self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
                          self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w)

    def conj(self):
        return Quaternion(self.w, -self.x, -self.y, -self.z)

    @property
    def norm2(self):
        return self.w * self.w + self.x * self.x + self.y * self.y + self.z * self.z

    def rotate(self, px, py, pz):
        r = self * Quaternion(0.0, px, py, pz) * self.conj()
        n = self.norm2
        return r.x / n, r.y / n, r.z / n


def loss(q, pts, target):
    total = 0.0
    for i in range(pts.shape[0]):
        rx, ry, rz = q.rotate(pts[i, 0], pts[i, 1], pts[i, 2])
        dx, dy, dz = rx - target[i, 0], ry - target[i, 1], rz - target[i, 2]
        total += dx * dx + dy * dy + dz * dz
    return total


@numba.njit(cache=True, fastmath=False)
def hand_gradient(w, x, y, z, pts, target):
    """d loss / d (w, x, y, z) by hand, on plain floats."""
    n = w * w + x * x + y * y + z * z
    R = np.empty((3, 3))
    R[0, 0], R[0, 1], R[0, 2] = w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)
    R[1, 0], R[1, 1], R[1, 2] = 2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)
    R[2, 0], R[2, 1], R[2, 2] = 2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z
    M = np.zeros((3, 3))  # sum over points of 2 (S p - y) p^T, S = R / n
    total = 0.0
    for i in range(pts.shape[0]):
        p0, p1, p2 = pts[i, 0], pts[i, 1], pts[i, 2]
        for a in range(3):
            d = (R[a, 0] * p0 + R[a, 1] * p1 + R[a, 2] * p2) / n - target[i, a]
            total += d * d
            M[a, 0] += 2 * d * p0
            M[a, 1] += 2 * d * p1
            M[a, 2] += 2 * d * p2
    # dR/dq for q = (w, x, y, z)
    dR = np.empty((4, 3, 3))
    dR[0] = np.array([[w, -z, y], [z, w, -x], [-y, x, w]]) * 2
    dR[1] = np.array([[x, y, z], [y, -x, -w], [z, w, -x]]) * 2
    dR[2] = np.array([[-y, x, w], [x, y, z], [-w, z, -y]]) * 2
    dR[3] = np.array([[-z, -w, x], [w, -z, y], [x, y, z]]) * 2
    q = (w, x, y, z)
    g = np.empty(4)
    for k in range(4):
        s = 0.0
        for a in range(3):
            for b in range(3):
                s += M[a, b] * (dR[k, a, b] / n - R[a, b] * 2 * q[k] / (n * n))
        g[k] = s
    return total, g


@numba.njit(cache=True, fastmath=False)
def hand_gradient_sandwich(w, x, y, z, pts, target):
    """The same algorithm as the loss (the sandwich product q p q* / |q|^2 per point) on plain floats, with its
    adjoint written by hand: what a person porting the loss's own formula to numba would write."""
    n = w * w + x * x + y * y + z * z
    inv_n = 1.0 / n
    total = 0.0
    gw = gx = gy = gz = gn = 0.0
    for i in range(pts.shape[0]):
        px, py, pz = pts[i, 0], pts[i, 1], pts[i, 2]
        aw = -x * px - y * py - z * pz  # a = q (0, p)
        ax = w * px + y * pz - z * py
        ay = w * py - x * pz + z * px
        az = w * pz + x * py - y * px
        rx = -aw * x + ax * w - ay * z + az * y  # r = a q*
        ry = -aw * y + ax * z + ay * w - az * x
        rz = -aw * z - ax * y + ay * x + az * w
        dx, dy, dz = rx * inv_n - target[i, 0], ry * inv_n - target[i, 1], rz * inv_n - target[i, 2]
        total += dx * dx + dy * dy + dz * dz
        grx, gry, grz = 2.0 * inv_n * dx, 2.0 * inv_n * dy, 2.0 * inv_n * dz
        gn += grx * rx + gry * ry + grz * rz  # times -1/n, once at the end
        gaw = -x * grx - y * gry - z * grz
        gax = w * grx + z * gry - y * grz
        gay = -z * grx + w * gry + x * grz
        gaz = y * grx - x * gry + w * grz
        gw += ax * grx + ay * gry + az * grz + px * gax + py * gay + pz * gaz
        gx += -aw * grx - az * gry + ay * grz - px * gaw - pz * gay + py * gaz
        gy += az * grx - aw * gry - ax * grz - py * gaw + pz * gax - px * gaz
        gz += -ay * grx + ax * gry - aw * grz - pz * gaw - py * gax + px * gay
    gn *= -inv_n
    g = np.empty(4)
    g[0], g[1], g[2], g[3] = gw + 2 * w * gn, gx + 2 * x * gn, gy + 2 * y * gn, gz + 2 * z * gn
    return total, g


def jax_timer(pts, target, q):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def jloss(qv, p, t):
        w, x, y, z = qv[0], qv[1], qv[2], qv[3]
        n = w * w + x * x + y * y + z * z
        # q p q*: the same sandwich product, vectorized over the points
        px, py, pz = p[:, 0], p[:, 1], p[:, 2]
        aw = -x * px - y * py - z * pz
        ax = w * px + y * pz - z * py
        ay = w * py - x * pz + z * px
        az = w * pz + x * py - y * px
        rx = -aw * x + ax * w - ay * z + az * y
        ry = -aw * y + ax * z + ay * w - az * x
        rz = -aw * z - ax * y + ay * x + az * w
        return jnp.sum((rx / n - t[:, 0]) ** 2 + (ry / n - t[:, 1]) ** 2 + (rz / n - t[:, 2]) ** 2)

    g = jax.jit(jax.grad(jloss))
    jp, jt, jq = jnp.asarray(pts), jnp.asarray(target), jnp.asarray([q.w, q.x, q.y, q.z])
    reference = np.asarray(g(jq, jp, jt))
    return (lambda: g(jq, jp, jt).block_until_ready()), reference


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    pts, target = rng.normal(size=(args.points, 3)), rng.normal(size=(args.points, 3))
    q = Quaternion(0.8, 0.3, -0.4, 0.25)

    primal = dp.differentiable(loss)
    gradient = dp.grad(loss)
    value = primal(q, pts, target)
    g = gradient(q, pts, target)
    hand_value, hand = hand_gradient(q.w, q.x, q.y, q.z, pts, target)
    ours = np.array([g.w, g.x, g.y, g.z])
    assert abs(value - hand_value) <= 1e-9 * abs(value), (value, hand_value)
    assert np.allclose(ours, hand, rtol=1e-9, atol=1e-9), (ours, hand)
    sandwich_value, sandwich = hand_gradient_sandwich(q.w, q.x, q.y, q.z, pts, target)
    assert abs(value - sandwich_value) <= 1e-9 * abs(value), (value, sandwich_value)
    assert np.allclose(ours, sandwich, rtol=1e-9, atol=1e-9), (ours, sandwich)

    timers = {
        "diffprog primal": lambda: primal(q, pts, target),
        "diffprog gradient": lambda: gradient(q, pts, target),
        "hand-written numba gradient": lambda: hand_gradient(q.w, q.x, q.y, q.z, pts, target),
        "hand-written, same algorithm": lambda: hand_gradient_sandwich(q.w, q.x, q.y, q.z, pts, target),
    }
    jax_entry = jax_timer(pts, target, q)
    if jax_entry is not None:
        timers["JAX jit(grad) (arrays)"] = jax_entry[0]
        assert np.allclose(jax_entry[1], hand, rtol=1e-8), (jax_entry[1], hand)
    best = {name: math.inf for name in timers}
    for _ in range(args.repeats):
        for name, run in timers.items():
            best[name] = min(best[name], min(timeit.repeat(run, number=1, repeat=3)))
    print(f"{args.points} points, minimum of {args.repeats} interleaved repeats")
    for name, seconds in best.items():
        print(f"  {name:30s} {seconds * 1e3:8.3f} ms")
    over_primal = best["diffprog gradient"] / best["diffprog primal"]
    over_hand = best["diffprog gradient"] / best["hand-written numba gradient"]
    over_same = best["diffprog gradient"] / best["hand-written, same algorithm"]
    print(f"gradient / primal                          {over_primal:.2f}  (target <= 3)")
    print(f"diffprog / hand-written, same algorithm    {over_same:.2f}  (target <= 1.5)")
    print(f"diffprog / hand-written, rotation matrix   {over_hand:.2f}  (a different, cheaper algorithm)")
    save_bar_chart("quaternion_rotation", f"rotating {args.points} points by a quaternion",
                   {name: seconds * 1e3 for name, seconds in best.items()})
    return best


if __name__ == "__main__":
    main()
