"""Custom differentiable types (the tangent protocol) and user derivative rules.

Every gradient is checked twice: against central finite differences taken *through the protocol* (perturb each
tangent field with dp.move) and against an independent computation (the same maths on plain floats, differentiated
by autograd, or a hand-derived formula).
"""
from __future__ import annotations

import math
import warnings
from collections import namedtuple
from dataclasses import dataclass
from typing import Annotated

import autograd
import autograd.numpy as anp
import numba
import numpy as np
import pytest

import diffprog as dp
from diffprog import DifferentiabilityError, DifferentiabilityWarning


# ---- types under test -----------------------------------------------------------------------------------------
@dp.differentiable_type
@dataclass(frozen=True)
class Quaternion:
    w: float
    x: float
    y: float
    z: float

    def __mul__(self, o):
        if isinstance(o, Quaternion):
            return Quaternion(self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
                              self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
                              self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
                              self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w)
        return Quaternion(self.w * o, self.x * o, self.y * o, self.z * o)

    def __rmul__(self, s):
        return self * s

    def __add__(self, o):
        return Quaternion(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)

    def __neg__(self):
        return Quaternion(-self.w, -self.x, -self.y, -self.z)

    def conj(self):
        return Quaternion(self.w, -self.x, -self.y, -self.z)

    @property
    def norm2(self):
        return self.w * self.w + self.x * self.x + self.y * self.y + self.z * self.z

    @classmethod
    def identity(cls):
        return cls(1.0, 0.0, 0.0, 0.0)

    @staticmethod
    def from_axis_angle(ax, ay, az, angle):
        s = math.sin(0.5 * angle)
        return Quaternion(math.cos(0.5 * angle), ax * s, ay * s, az * s)

    def rotate(self, px, py, pz):
        """The point rotated by this quaternion (normalized on the fly): q p q* / |q|^2."""
        r = self * Quaternion(0.0, px, py, pz) * self.conj()
        n = self.norm2
        return r.x / n, r.y / n, r.z / n


@dp.differentiable_type
@dataclass(frozen=True)
class UnitQuaternion:
    """A unit quaternion whose `move` renormalizes (a retraction onto the sphere)."""
    w: float
    x: float
    y: float
    z: float

    def move(self, t):
        w, x, y, z = self.w + t.w, self.x + t.x, self.y + t.y, self.z + t.z
        n = math.sqrt(w * w + x * x + y * y + z * z)
        return UnitQuaternion(w / n, x / n, y / n, z / n)


@dp.differentiable_type
@dataclass(frozen=True)
class Pose:
    q: Quaternion
    t: np.ndarray


@dp.differentiable_type
@dataclass(frozen=True)
class Particles:
    pos: np.ndarray
    vel: np.ndarray
    mass: Annotated[float, dp.NoDerivative]
    steps: Annotated[int, dp.NoDerivative]


@dp.differentiable_type
@dataclass(frozen=True)
class Mat2:
    a: float
    b: float
    c: float
    d: float

    def __matmul__(self, o):
        return Mat2(self.a * o.a + self.b * o.c, self.a * o.b + self.b * o.d,
                    self.c * o.a + self.d * o.c, self.c * o.b + self.d * o.d)

    @property
    def det(self):
        return self.a * self.d - self.b * self.c


Vec2 = namedtuple("Vec2", ["x", "y"])
dp.register_tangent(Vec2, fields=("x", "y"), build=lambda x, y: Vec2(x, y))


class Spring:
    """A plain class from 'another library': registered, not decorated."""

    def __init__(self, k, rest):
        self.k = k
        self.rest = rest


dp.register_tangent(Spring, fields=("k", "rest"), build=lambda k, rest: Spring(k, rest))


class Unregistered:
    def __init__(self, v):
        self.v = v


# ---- helpers --------------------------------------------------------------------------------------------------
def fd_through_protocol(f, x, args=(), h=1e-6):
    """Central differences of f(x, *args) along each tangent field: perturb with dp.move."""
    zero = dp.zero_tangent(x)
    out = {}
    for name in [f.name for f in __import__("dataclasses").fields(zero)]:
        base = getattr(zero, name)
        if isinstance(base, np.ndarray):
            grad = np.zeros_like(base)
            for idx in np.ndindex(base.shape):
                e = np.zeros_like(base)
                e[idx] = h
                up = dp.move(x, _replace(zero, name, e))
                dn = dp.move(x, _replace(zero, name, -e))
                grad[idx] = (f(up, *args) - f(dn, *args)) / (2 * h)
            out[name] = grad
        elif hasattr(base, "__dataclass_fields__"):
            inner = fd_through_protocol(lambda v, *a: f(dp.move(x, _replace(zero, name, v)), *a), base, args, h)
            out[name] = inner
        else:
            up = dp.move(x, _replace(zero, name, h))
            dn = dp.move(x, _replace(zero, name, -h))
            out[name] = (f(up, *args) - f(dn, *args)) / (2 * h)
    return out


def _replace(t, name, value):
    import dataclasses
    return dataclasses.replace(t, **{name: value})


def close(a, b, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=atol)


def as_array(q):
    return np.array([q.w, q.x, q.y, q.z])


# ---- the functions differentiated ------------------------------------------------------------------------------
def rotation_loss(q, pts, target):
    total = 0.0
    for i in range(pts.shape[0]):
        rx, ry, rz = q.rotate(pts[i, 0], pts[i, 1], pts[i, 2])
        dx, dy, dz = rx - target[i, 0], ry - target[i, 1], rz - target[i, 2]
        total += dx * dx + dy * dy + dz * dz
    return total


def rotation_loss_plain(qv, pts, target):
    """The same loss on plain floats, through the rotation matrix (an independent formula), for autograd."""
    w, x, y, z = qv[0], qv[1], qv[2], qv[3]
    n = w * w + x * x + y * y + z * z
    R = anp.array([[w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
                   [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
                   [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z]]) / n
    r = anp.dot(pts, R.T)
    return anp.sum((r - target) ** 2)


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(40, 3))
    target = rng.normal(size=(40, 3))
    return pts, target


def test_quaternion_rotation_gradient(cloud):
    pts, target = cloud
    q = Quaternion(0.8, 0.3, -0.4, 0.25)
    value = dp.differentiable(rotation_loss)(q, pts, target)
    close(value, rotation_loss(q, pts, target))
    g = dp.grad(rotation_loss)(q, pts, target)
    assert isinstance(g, Quaternion)  # an all-float dataclass is its own tangent type
    reference = autograd.grad(rotation_loss_plain)(as_array(q), pts, target)
    close(as_array(g), reference)
    fd = fd_through_protocol(rotation_loss, q, (pts, target))
    close(as_array(g), [fd[k] for k in "wxyz"], rtol=1e-5)
    # the loss is scale invariant in q: the gradient is orthogonal to q
    assert abs(np.dot(as_array(g), as_array(q))) < 1e-8


def test_tangent_is_printable_with_field_names(cloud):
    pts, target = cloud
    g = dp.grad(rotation_loss)(Quaternion(1.0, 0.0, 0.0, 0.0), pts, target)
    text = repr(g)
    assert text.startswith("Quaternion(w=") and "z=" in text


def test_int_fields_given_to_float_fields_are_differentiable(cloud):
    pts, target = cloud
    g = dp.grad(rotation_loss)(Quaternion(1, 0, 0, 0), pts, target)
    reference = autograd.grad(rotation_loss_plain)(np.array([1.0, 0.0, 0.0, 0.0]), pts, target)
    close(as_array(g), reference)


def compose(a, b, c, d):
    q = Quaternion(a, b, c, d)
    p = Quaternion.identity()
    for i in range(3):
        p = p * q + Quaternion.from_axis_angle(0.0, 0.0, 1.0, 0.1 * i) * 0.5
    r = -p
    return r.w * r.x + r.y * r.z + 2.0 * p.norm2


def compose_plain(v):
    def mul(p, q):
        return (p[0] * q[0] - p[1] * q[1] - p[2] * q[2] - p[3] * q[3],
                p[0] * q[1] + p[1] * q[0] + p[2] * q[3] - p[3] * q[2],
                p[0] * q[2] - p[1] * q[3] + p[2] * q[0] + p[3] * q[1],
                p[0] * q[3] + p[1] * q[2] - p[2] * q[1] + p[3] * q[0])
    q = (v[0], v[1], v[2], v[3])
    p = (1.0, 0.0, 0.0, 0.0)
    for i in range(3):
        pq = mul(p, q)
        h = 0.05 * i
        p = tuple(a + 0.5 * b for a, b in zip(pq, (math.cos(h), 0.0, 0.0, math.sin(h))))
    r = tuple(-a for a in p)
    return r[0] * r[1] + r[2] * r[3] + 2.0 * sum(a * a for a in p)


def test_operators_methods_classmethods_staticmethods():
    v = (0.7, -0.2, 0.4, 1.1)
    close(dp.differentiable(compose)(*v), compose(*v))
    g = dp.grad(compose, (0, 1, 2, 3))(*v)
    close(g, autograd.grad(compose_plain)(np.array(v)))


def matrix_chain(m, n):
    p = m @ n @ m
    return p.det + p.a * p.d


def test_matmul_and_property():
    m, n = Mat2(1.0, 2.0, -0.5, 0.3), Mat2(0.2, -1.0, 0.7, 1.5)
    g = dp.grad(matrix_chain, (0, 1))(m, n)

    def plain(v):
        M = anp.reshape(v[:4], (2, 2))
        N = anp.reshape(v[4:], (2, 2))
        P = anp.dot(anp.dot(M, N), M)
        return P[0, 0] * P[1, 1] - P[0, 1] * P[1, 0] + P[0, 0] * P[1, 1]

    reference = autograd.grad(plain)(np.array([1.0, 2.0, -0.5, 0.3, 0.2, -1.0, 0.7, 1.5]))
    close([g[0].a, g[0].b, g[0].c, g[0].d, g[1].a, g[1].b, g[1].c, g[1].d], reference)


# ---- nested types and arrays as fields ------------------------------------------------------------------------
def pose_loss(pose, pts, target):
    total = 0.0
    for i in range(pts.shape[0]):
        rx, ry, rz = pose.q.rotate(pts[i, 0], pts[i, 1], pts[i, 2])
        dx = rx + pose.t[0] - target[i, 0]
        dy = ry + pose.t[1] - target[i, 1]
        dz = rz + pose.t[2] - target[i, 2]
        total += dx * dx + dy * dy + dz * dz
    return total


def pose_loss_plain(v, pts, target):
    return rotation_loss_plain(v[:4], pts, target - v[4:])


def test_nested_type_with_array_field(cloud):
    pts, target = cloud
    pose = Pose(Quaternion(0.9, -0.1, 0.3, 0.2), np.array([0.5, -1.0, 0.25]))
    g = dp.grad(pose_loss)(pose, pts, target)
    assert isinstance(g, Pose) and isinstance(g.q, Quaternion) and g.t.shape == (3,)
    reference = autograd.grad(pose_loss_plain)(np.concatenate([as_array(pose.q), pose.t]), pts, target)
    close(np.concatenate([as_array(g.q), g.t]), reference)
    fd = fd_through_protocol(pose_loss, pose, (pts, target))
    close(as_array(g.q), [fd["q"][k] for k in "wxyz"], rtol=1e-5)
    close(g.t, fd["t"], rtol=1e-5)


def simulate(p, force):
    pos, vel = p.pos, p.vel
    dt = 0.1
    for s in range(p.steps):
        acc = force / p.mass - 0.5 * vel
        vel = vel + dt * acc
        pos = pos + dt * vel
    return np.sum(pos * pos) + 0.5 * p.mass * np.sum(vel * vel)


def simulate_plain(v, mass, steps, force):
    n = v.shape[0] // 2
    pos, vel = v[:n], v[n:]
    for s in range(steps):
        acc = force / mass - 0.5 * vel
        vel = vel + 0.1 * acc
        pos = pos + 0.1 * vel
    return anp.sum(pos * pos) + 0.5 * mass * anp.sum(vel * vel)


def test_struct_of_arrays_with_no_derivative_fields():
    p = Particles(np.array([1.0, -2.0, 0.5]), np.array([0.1, 0.2, -0.3]), 2.0, 5)
    force = np.array([0.3, -0.1, 0.2])
    g = dp.grad(simulate)(p, force)
    T = dp.tangent_type(Particles)
    assert isinstance(g, T) and T is not Particles
    assert [f for f in T.__dataclass_fields__] == ["pos", "vel"]  # mass and steps carry no derivative
    reference = autograd.grad(simulate_plain)(np.concatenate([p.pos, p.vel]), 2.0, 5, force)
    close(np.concatenate([g.pos, g.vel]), reference)
    fd = fd_through_protocol(simulate, p, (force,))
    close(g.pos, fd["pos"], rtol=1e-5)
    close(g.vel, fd["vel"], rtol=1e-5)


def scaled_mass(x, base):
    p = Particles(base * x, base * 0.0, x * x, 1)
    return p.mass * np.sum(p.pos)


def test_no_derivative_field_cuts_derivative():
    # mass = x*x is stored in a NoDerivative field: only the pos path differentiates, d/dx = mass * sum(base)
    x, base = 1.5, np.array([1.0, 2.0])
    close(dp.grad(scaled_mass)(x, base), x * x * 3.0)


def test_int_field_without_annotation_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        @dp.differentiable_type
        @dataclass(frozen=True)
        class Counted:
            value: float
            count: int

    assert any(issubclass(w.category, DifferentiabilityWarning) and "count" in str(w.message) for w in caught)
    assert list(dp.tangent_type(Counted).__dataclass_fields__) == ["value"]


def _int_field_warnings(define, times=1):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(times):
            define()
    return [str(w.message) for w in caught if issubclass(w.category, DifferentiabilityWarning)]


def test_int_field_warning_is_given_once_per_class():
    def define():  # the same class defined again: in a function, a notebook cell run again, a reloaded module
        @dp.differentiable_type
        @dataclass
        class Redefined:
            value: float
            label: int
            flag: bool
        return Redefined

    messages = _int_field_warnings(define, times=3)
    assert len(messages) == 2 and "'label'" in messages[0] and "'flag'" in messages[1], messages


def test_an_int_field_used_as_a_count_needs_no_annotation():
    def define():
        @dp.differentiable_type
        @dataclass
        class Chain:
            x: np.ndarray
            n: int  # a loop bound
            first: int  # an index
            window: int  # a slice bound, in arithmetic

            def energy(self):
                s = 0.0
                for i in range(self.n - 1):
                    if i < self.n:
                        s = s + self.x[i] * self.x[i + 1]
                return s + self.x[self.first] + np.sum(self.x[:self.window + 1])
        return Chain

    assert _int_field_warnings(define) == []
    Chain = define()
    assert list(dp.tangent_type(Chain).__dataclass_fields__) == ["x"]

    def energy(c):
        return c.energy()

    x = np.array([1.0, 2.0, 3.0])
    g = dp.grad(energy)(Chain(x, 3, 0, 1))
    close(g.x, [2.0 + 1.0 + 1.0, 1.0 + 3.0 + 1.0, 2.0])


def test_an_int_field_used_as_a_number_still_warns():
    def define():
        @dp.differentiable_type
        @dataclass
        class Scaled:
            x: float
            factor: int  # multiplies a float: maybe a float was meant

            def value(self):
                total = 0.0
                for i in range(self.factor):
                    total = total + self.x
                return total * self.factor
        return Scaled

    [message] = _int_field_warnings(define)
    assert "'factor'" in message and "NoDerivative" in message


# ---- protocol operations ----------------------------------------------------------------------------------------
def test_protocol_operations():
    q = Quaternion(1.0, 2.0, 3.0, 4.0)
    assert dp.zero_tangent(q) == Quaternion(0.0, 0.0, 0.0, 0.0)
    assert dp.add(q, q) == Quaternion(2.0, 4.0, 6.0, 8.0)
    assert dp.scale(q, 0.5) == Quaternion(0.5, 1.0, 1.5, 2.0)
    assert dp.move(q, Quaternion(1.0, 0.0, 0.0, -1.0)) == Quaternion(2.0, 2.0, 3.0, 3.0)
    assert dp.add(1.0, 2.0) == 3.0 and dp.scale(2.0, 3.0) == 6.0
    p = Particles(np.ones(2), np.zeros(2), 3.0, 4)
    t = dp.zero_tangent(p)
    assert type(t) is dp.tangent_type(Particles)
    moved = dp.move(p, dp.scale(dp.add(t, type(t)(np.ones(2), np.full(2, 2.0))), 0.5))
    assert moved.mass == 3.0 and moved.steps == 4
    close(moved.pos, [1.5, 1.5])
    close(moved.vel, [1.0, 1.0])
    pose = Pose(q, np.zeros(3))
    zero = dp.zero_tangent(pose)
    assert zero.q == Quaternion(0.0, 0.0, 0.0, 0.0) and np.all(zero.t == 0)


def test_move_calls_the_types_own_retraction():
    u = UnitQuaternion(1.0, 0.0, 0.0, 0.0)
    moved = dp.move(u, UnitQuaternion(0.0, 1.0, 0.0, 0.0))
    close([moved.w, moved.x], [1 / math.sqrt(2), 1 / math.sqrt(2)])
    close(moved.w ** 2 + moved.x ** 2 + moved.y ** 2 + moved.z ** 2, 1.0)


def unit_loss(u):
    return u.w * u.x + 3.0 * u.y - u.z * u.z


def descend(u, steps, rate):
    for k in range(steps):
        step = UnitQuaternion(-rate * u.x, -rate * u.w, -3.0 * rate, 2.0 * rate * u.z)
        u = dp.move(u, step)
    return u


def test_gradient_descent_with_renormalizing_move():
    u = UnitQuaternion(0.5, 0.5, 0.5, 0.5)
    for _ in range(200):
        g = dp.grad(unit_loss)(u)
        u = dp.move(u, dp.scale(g, -0.05))
        close(u.w ** 2 + u.x ** 2 + u.y ** 2 + u.z ** 2, 1.0)
    assert unit_loss(u) < -2.9  # the minimum of the loss on the unit sphere is about -3.04
    # the same loop compiled: dp.move inlines UnitQuaternion.move
    compiled = dp.differentiable(descend)(UnitQuaternion(0.5, 0.5, 0.5, 0.5), 200, 0.05)
    python = descend(UnitQuaternion(0.5, 0.5, 0.5, 0.5), 200, 0.05)
    close(as_array(compiled), as_array(python))


def protocol_in_compiled_code(q, s):
    t = dp.add(dp.scale(q, s), dp.zero_tangent(q))
    r = dp.move(q, t)
    return r.w + 2.0 * r.x * r.y + r.z * s


def test_protocol_operations_inside_compiled_code():
    q, s = Quaternion(0.5, -1.0, 2.0, 0.25), 0.3
    close(dp.differentiable(protocol_in_compiled_code)(q, s), protocol_in_compiled_code(q, s))
    g = dp.grad(protocol_in_compiled_code, (0, 1))(q, s)

    def plain(v):
        w, x, y, z, s_ = v
        k = 1.0 + s_
        return w * k + 2.0 * (x * k) * (y * k) + z * k * s_

    close(np.append(as_array(g[0]), g[1]), autograd.grad(plain)(np.array([*as_array(q), s])))


# ---- register_tangent: classes you cannot decorate -------------------------------------------------------------
def spring_energy(v, s):
    w = Vec2(v.x * 2.0, v.y + 1.0)
    length = math.sqrt(w.x * w.x + w.y * w.y)
    stretched = Spring(s.k * 1.0, s.rest)
    return 0.5 * stretched.k * (length - stretched.rest) ** 2


def spring_plain(a):
    x, y, k, rest = a
    length = anp.sqrt((2 * x) ** 2 + (y + 1) ** 2)
    return 0.5 * k * (length - rest) ** 2


def test_register_tangent_namedtuple_and_plain_class():
    v, s = Vec2(0.3, 0.4), Spring(2.0, 0.5)
    close(dp.differentiable(spring_energy)(v, s), spring_energy(v, s))
    gv, gs = dp.grad(spring_energy, (0, 1))(v, s)
    assert type(gv).__name__ == "Vec2Tangent" and type(gs).__name__ == "SpringTangent"
    assert "k=" in repr(gs)
    close([gv.x, gv.y, gs.k, gs.rest], autograd.grad(spring_plain)(np.array([0.3, 0.4, 2.0, 0.5])))
    h = 1e-6
    up = spring_energy(v, dp.move(s, type(gs)(h, 0.0)))
    dn = spring_energy(v, dp.move(s, type(gs)(-h, 0.0)))
    close(gs.k, (up - dn) / (2 * h), rtol=1e-5)


def make_vec(a):
    return Vec2(a, a * a)


def test_register_tangent_returning_namedtuple():
    v = dp.differentiable(make_vec)(3.0)
    assert type(v) is Vec2 and v == (3.0, 9.0)


# ---- results of registered types, vjp and jvp ------------------------------------------------------------------
def quat_from_angles(a, b):
    qa = Quaternion.from_axis_angle(1.0, 0.0, 0.0, a)
    qb = Quaternion.from_axis_angle(0.0, 1.0, 0.0, b)
    return qa * qb


def quat_from_angles_plain(v):
    a, b = v[0] / 2, v[1] / 2
    ca, sa, cb, sb = anp.cos(a), anp.sin(a), anp.cos(b), anp.sin(b)
    return anp.array([ca * cb, sa * cb, ca * sb, sa * sb])


def test_returning_a_custom_type():
    q = dp.differentiable(quat_from_angles)(0.4, -1.2)
    assert isinstance(q, Quaternion)
    close(as_array(q), quat_from_angles_plain(np.array([0.4, -1.2])))


def test_vjp_with_tangent_cotangent():
    value, pullback = dp.vjp(quat_from_angles, 0.4, -1.2)
    assert isinstance(value, Quaternion)
    cot = Quaternion(0.3, -1.0, 2.0, 0.5)
    ga, gb = pullback(cot)
    J = autograd.jacobian(quat_from_angles_plain)(np.array([0.4, -1.2]))
    close([ga, gb], as_array(cot) @ J)
    with pytest.raises(DifferentiabilityError, match="DP111"):
        dp.grad(quat_from_angles)(0.4, -1.2)


def rotate_pose(pose, scale):
    q = pose.q * scale
    return Pose(q, pose.t * scale)


def test_vjp_custom_argument_and_result():
    pose = Pose(Quaternion(1.0, 2.0, 3.0, 4.0), np.array([1.0, 2.0]))
    value, pullback = dp.vjp(rotate_pose, pose, 2.0)
    assert isinstance(value, Pose) and value.q == Quaternion(2.0, 4.0, 6.0, 8.0)
    close(value.t, [2.0, 4.0])
    cot = Pose(Quaternion(1.0, 0.0, 0.0, 1.0), np.array([1.0, -1.0]))
    g_pose, g_scale = pullback(cot)
    assert g_pose.q == Quaternion(2.0, 0.0, 0.0, 2.0)
    close(g_pose.t, [2.0, -2.0])
    close(g_scale, 1.0 + 4.0 + 1.0 - 2.0)


def test_jvp_with_custom_tangents(cloud):
    pts, target = cloud
    q = Quaternion(0.8, 0.3, -0.4, 0.25)
    tq = Quaternion(0.1, -0.2, 0.3, 0.4)
    value, tangent = dp.jvp(rotation_loss, (q, pts, target), (tq, np.zeros_like(pts), np.zeros_like(target)))
    close(value, rotation_loss(q, pts, target))
    g = dp.grad(rotation_loss)(q, pts, target)
    close(tangent, np.dot(as_array(g), as_array(tq)))  # the dot-product test: jvp . t == grad . t
    # a custom-typed result has a custom-typed tangent
    value, tangent = dp.jvp(quat_from_angles, (0.4, -1.2), (1.0, 0.5))
    assert isinstance(tangent, Quaternion)
    J = autograd.jacobian(quat_from_angles_plain)(np.array([0.4, -1.2]))
    close(as_array(tangent), J @ np.array([1.0, 0.5]))


# ---- diagnostics ----------------------------------------------------------------------------------------------
def uses_unregistered(u, x):
    return u.v * x


def builds_unregistered(x):
    u = Unregistered(x)
    return x


def test_unregistered_class_argument_is_dp105():
    with pytest.raises(DifferentiabilityError) as info:
        dp.grad(uses_unregistered, 1)(Unregistered(2.0), 3.0)
    text = str(info.value)
    assert "DP105" in text and "Unregistered" in text and "differentiable_type" in text
    assert "test_custom_types.py" in text


def test_unregistered_class_constructor_is_dp105():
    with pytest.raises(DifferentiabilityError) as info:
        dp.grad(builds_unregistered)(3.0)
    text = str(info.value)
    assert "DP105" in text and "Unregistered" in text and "differentiable_type" in text


def bad_attribute(q):
    return q.nope


def mixed_types(q, flag):
    v = q
    if flag > 0:
        v = Mat2(1.0, 2.0, 3.0, 4.0)
    return v.w


def test_misuse_is_reported_with_lines():
    with pytest.raises(DifferentiabilityError, match=r"DP105.*'nope' is not a field or property of Quaternion"):
        dp.grad(bad_attribute)(Quaternion(1.0, 0.0, 0.0, 0.0))
    with pytest.raises(DifferentiabilityError, match=r"holds a Mat2 here but a Quaternion elsewhere"):
        dp.grad(mixed_types)(Quaternion(1.0, 0.0, 0.0, 0.0), 1)


def no_tangent_fields(c, x):
    return c.n * x


@dp.differentiable_type
@dataclass(frozen=True)
class OnlyCount:
    n: Annotated[int, dp.NoDerivative]


def test_differentiating_a_type_without_tangent_fields_is_dp106():
    with pytest.raises(DifferentiabilityError, match="DP106"):
        dp.grad(no_tangent_fields, 0)(OnlyCount(3), 2.0)
    close(dp.grad(no_tangent_fields, 1)(OnlyCount(3), 2.0), 3.0)


# ---- speed: many quaternions in a loop compile to plain float code ---------------------------------------------
def build_many(angles, pts):
    total = 0.0
    q = Quaternion(1.0, 0.0, 0.0, 0.0)
    for i in range(angles.shape[0]):
        q = q * Quaternion.from_axis_angle(0.0, 0.6, 0.8, angles[i])
        rx, ry, rz = q.rotate(pts[i, 0], pts[i, 1], pts[i, 2])
        total += rx * ry + rz
    return total


def test_loops_over_many_quaternions_are_fast():
    import time
    rng = np.random.default_rng(0)
    n = 20000
    angles, pts = rng.normal(size=n) * 0.01, rng.normal(size=(n, 3))
    g = dp.grad(build_many)
    g(angles[:10], pts[:10])  # compile
    start = time.perf_counter()
    out = g(angles, pts)
    elapsed = time.perf_counter() - start
    assert elapsed < 0.05, elapsed  # interpreted Python would take seconds
    assert out.shape == (n,)
    h = 1e-6
    small_a, small_p = angles[:30].copy(), pts[:30]
    gs = g(small_a, small_p)
    for k in (0, 7, 29):
        e = np.zeros(30)
        e[k] = h
        close(gs[k], (build_many(small_a + e, small_p) - build_many(small_a - e, small_p)) / (2 * h), rtol=1e-5,
              atol=1e-7)


# ---- user derivative rules -----------------------------------------------------------------------------------
@numba.njit(cache=False)
def softplus_nb(x):
    return math.log1p(math.exp(x))


@dp.derivative(of=softplus_nb)
def softplus_nb_rule(x, out, g):
    return (g / (1.0 + math.exp(-x)),)


def naive_log_add_exp(a, b):
    return math.log(math.exp(a) + math.exp(b))


@dp.derivative(of=naive_log_add_exp)
def log_add_exp_rule(a, b, out, g):
    return g * math.exp(a - out), g * math.exp(b - out)


@dp.derivative(of=naive_log_add_exp, mode="forward")
def log_add_exp_tangent(a, b, ta, tb):
    m = max(a, b)
    ea, eb = math.exp(a - m), math.exp(b - m)
    return (ea * ta + eb * tb) / (ea + eb)


def clipped_identity(x, lo):
    return x


@dp.derivative(of=clipped_identity)
def clipped_rule(x, lo, out, g):
    return (g * 2.0, None)  # a deliberately different derivative: proves the rule (not the source) is used


def uses_rules(x, y):
    return softplus_nb(x * y) + naive_log_add_exp(x, 2.0 * y) + clipped_identity(y, 0.0)


def uses_rules_plain(v):
    x, y = v
    return anp.log1p(anp.exp(x * y)) + anp.logaddexp(x, 2.0 * y) + 2.0 * y


def test_user_rules_reverse():
    x, y = 0.7, -0.4
    g = dp.grad(uses_rules, (0, 1))(x, y)
    close(g, autograd.grad(uses_rules_plain)(np.array([x, y])))
    close(dp.differentiable(uses_rules)(x, y), uses_rules(x, y))


def test_user_rules_forward_and_second_order():
    x, y = 0.7, -0.4
    _, tangent = dp.jvp(uses_rules, (x, y), (1.0, 0.0))
    close(tangent, autograd.grad(uses_rules_plain)(np.array([x, y]))[0])
    H = dp.hessian(lambda_free_rules)(np.array([x, y]))
    close(H, autograd.hessian(lambda v: anp.logaddexp(v[0], 2.0 * v[1]))(np.array([x, y])), rtol=1e-6)


def lambda_free_rules(v):
    return naive_log_add_exp(v[0], 2.0 * v[1])


def test_numerically_stable_override():
    # the naive formula overflows at 1000; the rule's derivative does not
    g = dp.grad(naive_log_add_exp, (0, 1))(1.0, 2.0)
    close(g, [1 / (1 + math.e), math.e / (1 + math.e)])


def gamma_rule(x, out, g):
    return (g * out * digamma(x),)


def digamma(x):
    r = 0.0
    while x < 6.0:
        r -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    return r + math.log(x) - 0.5 / x - f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))))


def log_gamma_sum(x):
    return math.gamma(x) * x


@pytest.fixture
def gamma_with_rule():
    """math.gamma with a user rule for one test (rules are global: other tests expect DP102 for math.gamma)."""
    from diffprog.rules.user import remove_derivative
    dp.derivative(of=math.gamma)(gamma_rule)
    yield
    remove_derivative(math.gamma)


def test_rule_set_public_api():
    """What user rules (rules/user.py) and the checker change the rule set with: register, lookup, unregister and
    restore a key, expose a function to rule templates, and overlay() undoing all of it."""
    from diffprog.rules.registry import Primitive, Registry

    rules = Registry()
    sin = rules.register(Primitive("sin", "math.sin({0})", ("x",), ("math.cos(x)",)), math.sin, "Sin")
    with rules.overlay():
        mine = rules.register(Primitive("rule:sin", "math.sin({0})", ("x",), ("1.0",)), (math.sin, 1))
        assert rules.lookup(math.sin, 1) is mine and rules.lookup(math.sin, 2) is sin
        assert rules.lookup(math.sin, 2, exact=True) is None
        assert rules.unregister(math.sin) is sin and rules.lookup(math.sin) is None
        rules.restore(math.sin, sin)
        name = rules.expose(gamma_rule, "user_rule")
        assert name.startswith("user_rule_") and rules.template_namespace[name] is gamma_rule
    assert rules.lookup(math.sin, 1) is sin and rules.lookup("Sin") is sin and not rules.has("rule:sin")
    assert name not in rules.template_namespace


def test_rule_for_a_c_function(gamma_with_rule):
    x = 2.5
    h = 1e-6
    fd = (log_gamma_sum(x + h) - log_gamma_sum(x - h)) / (2 * h)
    hand = math.gamma(x) * (1.0 + x * 0.7031566406452432)  # digamma(2.5) = 0.70315664...
    g = dp.grad(log_gamma_sum)(x)
    close(g, fd, rtol=1e-6)
    close(g, hand, rtol=1e-8)


def rule_on_arrays(a):
    return np.sum(softplus_vec(a) * a)


def softplus_vec(a):
    return np.log1p(np.exp(a))


@dp.derivative(of=softplus_vec)
def softplus_vec_rule(a, out, g):
    return (g / (1.0 + np.exp(-a)),)


def test_reverse_rule_on_arrays_and_forward_refusal():
    a = np.array([0.5, -1.0, 2.0])
    g = dp.grad(rule_on_arrays)(a)
    close(g, autograd.grad(lambda v: anp.sum(anp.log1p(anp.exp(v)) * v))(a))
    with pytest.raises(DifferentiabilityError, match="DP102"):
        dp.jvp(rule_on_arrays, (a,), (np.ones(3),))


def test_rule_signature_is_checked_at_registration():
    with pytest.raises(DifferentiabilityError) as info:
        @dp.derivative(of=naive_log_add_exp)
        def wrong(a, out, g):
            return (g,)
    text = str(info.value)
    assert "takes 3 parameters" in text and "must take 4" in text and "test_custom_types.py" in text
    with pytest.raises(DifferentiabilityError, match="returns 1 cotangents"):
        @dp.derivative(of=naive_log_add_exp)
        def short(a, b, out, g):
            return (g,)


def test_pose_example_recovers_the_rotation():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "examples" / "quaternion_pose.py"
    spec = importlib.util.spec_from_file_location("quaternion_pose_example", path)
    module = importlib.util.module_from_spec(spec)
    import sys
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    pose, truth, error = module.main(["--points", "1000", "--steps", "100", "--plot", ""])
    assert error < 0.5
    close(pose.rotation.w ** 2 + pose.rotation.x ** 2 + pose.rotation.y ** 2 + pose.rotation.z ** 2, 1.0)
