"""Pose estimation with custom differentiable types: recover the rotation (a unit quaternion) and translation that
align two noisy 3-D point clouds, by gradient descent.

    python examples/quaternion_pose.py [--points 2000] [--steps 100] [--plot loss.png]

The types are plain dataclasses registered with @diffprog.differentiable_type; the loss loops over the points
calling their methods, and diffprog compiles it (and its gradient) with numba to plain float code. Each step moves
the pose with diffprog.move, which calls UnitQuaternion.move: a retraction that renormalizes, so the estimate
stays a rotation.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass

import numpy as np

import diffprog as dp


@dp.differentiable_type
@dataclass(frozen=True)
class UnitQuaternion:
    w: float
    x: float
    y: float
    z: float

    def __mul__(self, o):
        return UnitQuaternion(self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
                              self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
                              self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
                              self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w)

    def conj(self):
        return UnitQuaternion(self.w, -self.x, -self.y, -self.z)

    def rotate(self, px, py, pz):
        """q p q*, for a unit q."""
        r = self * UnitQuaternion(0.0, px, py, pz) * self.conj()
        return r.x, r.y, r.z

    def move(self, t):
        """The retraction: step in the embedding space, then back onto the unit sphere."""
        w, x, y, z = self.w + t.w, self.x + t.x, self.y + t.y, self.z + t.z
        n = math.sqrt(w * w + x * x + y * y + z * z)
        return UnitQuaternion(w / n, x / n, y / n, z / n)

    @staticmethod
    def from_axis_angle(axis, degrees):
        axis = np.asarray(axis, dtype=float) / np.linalg.norm(axis)
        half = math.radians(degrees) / 2
        return UnitQuaternion(math.cos(half), *(math.sin(half) * axis))


@dp.differentiable_type
@dataclass(frozen=True)
class Pose:
    rotation: UnitQuaternion
    translation: np.ndarray

    def apply(self, px, py, pz):
        rx, ry, rz = self.rotation.rotate(px, py, pz)
        return rx + self.translation[0], ry + self.translation[1], rz + self.translation[2]


def alignment_loss(pose, source, target):
    """Mean squared distance between the moved source points and the target points."""
    total = 0.0
    for i in range(source.shape[0]):
        x, y, z = pose.apply(source[i, 0], source[i, 1], source[i, 2])
        dx, dy, dz = x - target[i, 0], y - target[i, 1], z - target[i, 2]
        total += dx * dx + dy * dy + dz * dz
    return total / source.shape[0]


def rotation_error_degrees(a: UnitQuaternion, b: UnitQuaternion) -> float:
    dot = abs(a.w * b.w + a.x * b.x + a.y * b.y + a.z * b.z)
    return math.degrees(2 * math.acos(min(1.0, dot)))


def make_problem(points, noise, seed=0):
    rng = np.random.default_rng(seed)
    truth = Pose(UnitQuaternion.from_axis_angle([0.3, -0.5, 0.8], 50.0), np.array([0.4, -0.2, 1.0]))
    source = rng.normal(size=(points, 3))
    target = np.array([truth.apply(*p) for p in source]) + noise * rng.normal(size=(points, 3))
    return truth, source, target


def estimate(source, target, steps, rate, report=10):
    value_and_grad = dp.value_and_grad(alignment_loss)
    pose = Pose(UnitQuaternion(1.0, 0.0, 0.0, 0.0), np.zeros(3))
    losses = []
    for step in range(steps):
        loss, g = value_and_grad(pose, source, target)  # g is a Pose-shaped tangent
        losses.append(loss)
        if step % report == 0:
            print(f"  step {step:4d}  loss {loss:.6f}")
        pose = dp.move(pose, dp.scale(g, -rate))
    losses.append(alignment_loss(pose, source, target))
    return pose, losses


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--plot", default="quaternion_pose_loss.png", help="where to save the loss plot ('' for none)")
    args = parser.parse_args(argv)

    truth, source, target = make_problem(args.points, args.noise)
    print(f"aligning {args.points} noisy points (noise {args.noise}); true rotation 50 degrees")
    start = time.perf_counter()
    pose, losses = estimate(source, target, args.steps, args.rate)
    elapsed = time.perf_counter() - start
    error = rotation_error_degrees(pose.rotation, truth.rotation)
    print(f"final loss {losses[-1]:.6f} (noise floor {3 * args.noise ** 2:.6f})")
    print(f"rotation error {error:.3f} degrees; translation error "
          f"{np.linalg.norm(pose.translation - truth.translation):.4f}")
    print(f"{args.steps} gradient steps in {elapsed:.2f} s (including compilation)")
    if args.plot:
        try:
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            print("matplotlib is not installed: no plot")
        else:
            plt.semilogy(losses)
            plt.xlabel("gradient step")
            plt.ylabel("mean squared distance")
            plt.title("pose estimation by gradient descent (diffprog)")
            plt.savefig(args.plot, dpi=100)
            print(f"loss plot saved to {args.plot}")
    return pose, truth, error


if __name__ == "__main__":
    main()
