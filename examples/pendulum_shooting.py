"""Shooting with a pendulum: find the initial angle and angular velocity that put the bob on a target point after
T seconds, by gradient descent through hundreds of simulator steps.

    python examples/pendulum_shooting.py [--steps 600] [--iterations 200] [--small]

The simulator is ordinary Python: a damped pendulum integrated with semi-implicit Euler, with a wall the bob
bounces off (a Hertz-like contact force that acts only while the bob presses into the wall: an `if` on a
differentiated value inside the time loop; it grows smoothly from zero, so the loss is smooth too). The loss is the squared distance between the bob's final position and the target. diffprog compiles the loss and its
gradient (one reverse sweep over the whole trajectory) with numba; plain gradient descent with a backtracking
step size drives the loss down. The gradient is checked against central finite differences first.
"""
from __future__ import annotations

import argparse
import math
import time

import diffprog as dp

GRAVITY = 9.81
WALL_STIFFNESS = 1e4  # Hertz-like contact: the wall pushes back with k * penetration ** 1.5


def acceleration(theta, omega, length, damping):
    """Angular acceleration of a damped pendulum (a plain helper: diffprog inlines it)."""
    return -GRAVITY / length * math.sin(theta) - damping * omega


@dp.differentiable
def final_position(theta0, omega0, length, damping, wall, duration, steps):
    """Where the bob is after `duration` seconds, simulated in `steps` steps."""
    dt = duration / steps
    theta = theta0
    omega = omega0
    for _ in range(steps):
        alpha = acceleration(theta, omega, length, damping)
        if theta > wall:  # the bob is pressing into the (stiff, springy) wall: it pushes back
            alpha -= WALL_STIFFNESS * (theta - wall) ** 1.5
        omega += dt * alpha
        theta += dt * omega
    return length * math.sin(theta), -length * math.cos(theta)


@dp.differentiable
def miss(theta0, omega0, length, damping, wall, duration, steps, target_x, target_y):
    """Squared distance between the bob's final position and the target."""
    x, y = final_position(theta0, omega0, length, damping, wall, duration, steps)
    return (x - target_x) ** 2 + (y - target_y) ** 2


def count_bounces(theta0, omega0, length, damping, wall, duration, steps):
    """The same simulation in plain Python, counting the bounces (for the report only)."""
    dt = duration / steps
    theta, omega, bounces, touching = theta0, omega0, 0, False
    for _ in range(steps):
        alpha = acceleration(theta, omega, length, damping)
        if theta > wall:
            alpha -= WALL_STIFFNESS * (theta - wall) ** 1.5
            if not touching:
                bounces += 1
        touching = theta > wall
        omega += dt * alpha
        theta += dt * omega
    return bounces


def check_gradient(params, constants):
    """diffprog's gradient against central finite differences."""
    g = dp.grad(miss, (0, 1))(*params, *constants)
    h = 1e-6
    worst = 0.0
    for k in range(2):
        up, down = list(params), list(params)
        up[k] += h
        down[k] -= h
        fd = (miss(*up, *constants) - miss(*down, *constants)) / (2 * h)
        worst = max(worst, abs(fd - g[k]) / max(1.0, abs(fd)))
    return worst


def descend(params, constants, iterations, report):
    """Gradient descent with a backtracking (Armijo) step size."""
    value_and_grad = dp.value_and_grad(miss, (0, 1))
    rate = 1.0
    loss = None
    for it in range(iterations):
        loss, (g0, g1) = value_and_grad(*params, *constants)
        if it % report == 0:
            print(f"  iteration {it:4d}  miss {loss:.3e}  theta0 {params[0]:+.4f}  omega0 {params[1]:+.4f}")
        norm2 = g0 * g0 + g1 * g1
        if loss < 1e-14 or norm2 == 0.0:
            return params, loss, it
        rate *= 2.0
        while True:
            trial = (params[0] - rate * g0, params[1] - rate * g1)
            if miss(*trial, *constants) <= loss - 0.5 * rate * norm2:
                break
            rate *= 0.5
            if rate < 1e-14:
                return params, loss, it
        params = trial
    return params, miss(*params, *constants), iterations


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="simulator time steps")
    parser.add_argument("--iterations", type=int, default=200, help="gradient-descent iterations")
    parser.add_argument("--small", action="store_true", help="a quick run (smoke test): 200 steps, 60 iterations")
    args = parser.parse_args(argv)
    steps, iterations = (200, 60) if args.small else (args.steps, args.iterations)

    length, damping, wall, duration = 1.0, 0.3, 0.5, 3.0
    # The target is where a throw from (theta0, omega0) = (0.3, 2.5) ends up: reachable, bouncing off the wall.
    target = final_position(0.3, 2.5, length, damping, wall, duration, steps)
    constants = (length, damping, wall, duration, steps, *target)
    start = (0.1, 2.0)
    print(f"pendulum: {steps} steps over {duration} s, wall at {wall} rad; target ({target[0]:+.4f}, {target[1]:+.4f})")
    print(f"start: theta0 = {start[0]}, omega0 = {start[1]} "
          f"({count_bounces(*start, length, damping, wall, duration, steps)} bounces)")

    t0 = time.perf_counter()
    error = check_gradient(start, constants)
    print(f"gradient check against central differences: max relative error {error:.1e}")
    assert error < 1e-4, error

    params, loss, used = descend(start, constants, iterations, report=max(1, iterations // 10))
    elapsed = time.perf_counter() - t0
    bounces = count_bounces(*params, length, damping, wall, duration, steps)
    print(f"found: theta0 = {params[0]:+.6f}, omega0 = {params[1]:+.6f} ({bounces} bounces)")
    print(f"final miss distance {math.sqrt(loss):.2e} m (started at "
          f"{math.sqrt(miss(*start, *constants)):.2e} m) after {used} gradient steps, {elapsed:.2f} s "
          "including compilation")
    assert math.sqrt(loss) < 1e-3, "did not hit the target"
    print("target hit")
    return params, loss


if __name__ == "__main__":
    main()
