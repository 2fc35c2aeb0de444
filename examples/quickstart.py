"""diffprog quick start: differentiate a small physics simulation written as ordinary Python.

    python examples/quickstart.py

A ball is thrown with some speed and angle through air with quadratic drag and bounces off the ground. We ask
how far from a target it is after 2 seconds, and how that miss distance changes with the launch parameters.
"""
import math

import diffprog as dp

GRAVITY = 9.81


def drag(velocity, speed, coefficient):
    """Quadratic air drag on one velocity component (a plain helper; diffprog inlines it)."""
    return -coefficient * speed * velocity


@dp.differentiable
def miss(speed, angle, drag_coefficient, target, steps):
    """Squared horizontal distance between the ball and `target` after `steps` time steps of 0.01 s."""
    dt = 0.01
    x = 0.0
    y = 0.0
    vx = speed * math.cos(angle)
    vy = speed * math.sin(angle)
    for _ in range(steps):
        v = math.sqrt(vx * vx + vy * vy)
        vx += dt * drag(vx, v, drag_coefficient)
        vy += dt * (drag(vy, v, drag_coefficient) - GRAVITY)
        x += dt * vx
        y += dt * vy
        if y < 0.0:  # a branch on an active value: bounce, losing 30% of the vertical speed
            y = -y
            vy = -0.7 * vy
    return (x - target) ** 2


EXCERPT_LINES = 15


def main():
    speed, angle, drag_coefficient, target, steps = 12.0, 0.6, 0.05, 10.0, 200

    value = miss(speed, angle, drag_coefficient, target, steps)
    d_speed, d_angle, d_drag = dp.grad(miss, (0, 1, 2))(speed, angle, drag_coefficient, target, steps)
    print(f"miss = {value:.6f}")
    print(f"d miss / d speed = {d_speed:.6f}, d miss / d angle = {d_angle:.6f}, d miss / d drag = {d_drag:.6f}")

    # Check against central finite differences.
    h = 1e-6
    for name, index, derivative in (("speed", 0, d_speed), ("angle", 1, d_angle), ("drag", 2, d_drag)):
        up = [speed, angle, drag_coefficient, target, steps]
        down = list(up)
        up[index] += h
        down[index] -= h
        fd = (miss(*up) - miss(*down)) / (2 * h)
        print(f"finite difference {name:<5}: {fd:.6f}   (|diffprog - fd| = {abs(derivative - fd):.1e})")
        assert math.isclose(derivative, fd, rel_tol=1e-5, abs_tol=1e-6)

    # The exact Python diffprog generated for the gradient above (then compiled with numba). Comments point back to
    # the user's source lines; values the backward pass needs are pushed onto tapes. It is a few hundred lines:
    # print the start of the backward pass over the loop (the loop run in reverse).
    adjoint = dp.source(miss, mode="reverse").splitlines()
    reversed_loop = [i for i, line in enumerate(adjoint) if line.lstrip().startswith("for ") and "(-1)" in line]
    start = reversed_loop[0] if reversed_loop else 0
    while start > 0 and not adjoint[start].lstrip().startswith("#"):  # from the comment naming the user's `for`
        start -= 1
    excerpt = adjoint[start:start + EXCERPT_LINES]
    print(f"\nGenerated adjoint, lines {start + 1}-{start + len(excerpt)} of {len(adjoint)} "
          f"(the backward pass over the loop):\n")
    print("\n".join(adjoint[:2] + ["..."] + excerpt + ["..."]))
    print(f"\n({len(adjoint) - len(excerpt) - 2} lines omitted.)\n")
    print("To see all of it: print(dp.source(miss, mode=\"reverse\")) after the call to dp.grad, or from a shell:")
    print('    diffprog show examples/quickstart.py::miss --args "12.0, 0.6, 0.05, 10.0, 200" --argnums 0,1,2')


if __name__ == "__main__":
    main()
