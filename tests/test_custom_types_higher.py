"""Higher derivatives through registered types, and choosing/comparing registered values.

grad of grad, hessian, jacobian, hvp and jvp_function of functions taking (and returning) registered types, and
transforms called inside differentiated code with registered-type arguments and results. A Hessian or Jacobian
with respect to a registered type is a dense array over its flattened tangent fields (declaration order, nested
types depth first, array fields raveled).

Every derivative is checked twice: against central finite differences taken through the protocol (perturb each
tangent field with dp.move, on the derivative one order lower) and against the same computation written on plain
floats and arrays, differentiated by autograd.
"""
from __future__ import annotations

import math
from collections import namedtuple
from dataclasses import dataclass
from typing import Annotated

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
from diffprog import DifferentiabilityError
from diffprog.custom_types import layout as L

pytestmark = pytest.mark.filterwarnings("ignore:Output seems independent of input")  # autograd, unused arguments


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

    def conj(self):
        return Quaternion(self.w, -self.x, -self.y, -self.z)

    @property
    def norm2(self):
        return self.w * self.w + self.x * self.x + self.y * self.y + self.z * self.z

    def rotate(self, px, py, pz):
        """The point rotated by this quaternion (normalized on the fly): q p q* / |q|^2."""
        r = self * Quaternion(0.0, px, py, pz) * self.conj()
        n = self.norm2
        return r.x / n, r.y / n, r.z / n


@dp.differentiable_type
@dataclass(frozen=True)
class Pose:
    q: Quaternion
    t: np.ndarray


@dp.differentiable_type
@dataclass(frozen=True)
class Body:
    """A NoDerivative field: not part of the tangent (BodyTangent has pos and vel only)."""
    pos: np.ndarray
    mass: Annotated[float, dp.NoDerivative]
    vel: float


@dp.differentiable_type
@dataclass(frozen=True)
class Ranked:
    """A type with its own ordering and equality, inlined from source."""
    a: float
    b: float

    def __lt__(self, o):
        return self.a * self.a + self.b * self.b < o.a * o.a + o.b * o.b

    def __eq__(self, o):
        return abs(self.a - o.a) + abs(self.b - o.b) < 1e-3


@dp.differentiable_type
@dataclass(frozen=True)
class UnitVec:
    """A constructor that validates: its tangents (not unit vectors) are a generated UnitVecTangent."""
    a: float
    b: float

    def __post_init__(self):
        if abs(math.hypot(self.a, self.b) - 1.0) > 1e-9:
            raise ValueError("not a unit vector")


Vec2 = namedtuple("Vec2", ["x", "y"])
dp.register_tangent(Vec2, fields=("x", "y"), build=lambda x, y: Vec2(x, y))


class Spring:
    def __init__(self, k, rest):
        self.k = k
        self.rest = rest


dp.register_tangent(Spring, fields=("k", "rest"), build=lambda k, rest: Spring(k, rest))


# ---- helpers --------------------------------------------------------------------------------------------------
def close(a, b, rtol=1e-6, atol=1e-8):
    np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rtol, atol=atol)


def dense(x, t=None):
    """A value (or a tangent at x) as the dense vector of its tangent fields; numbers and arrays raveled."""
    return L.tangent_vector(x, x if t is None else t)


def moved(x, step):
    """x moved along a dense tangent vector, through the protocol (dp.move); plain x + step for numbers."""
    if L.P.is_registered(x):
        return dp.move(x, L.tangent_from_vector(x, step))
    if isinstance(x, np.ndarray):
        return x + step.reshape(x.shape)
    return x + float(step[0])


def fd_jacobian(fun, args, k, h=1e-6):
    """Central differences of fun(*args) (as a dense vector) along each tangent field of args[k], perturbed
    through the protocol: a (outputs, inputs) array."""
    x = args[k]
    n = L.tangent_dim(x)
    columns = []
    for j in range(n):
        e = np.zeros(n)
        e[j] = h
        up = fun(*args[:k], moved(x, e), *args[k + 1:])
        dn = fun(*args[:k], moved(x, -e), *args[k + 1:])
        columns.append((value_vector(up) - value_vector(dn)) / (2 * h))
    return np.stack(columns, axis=-1)


def value_vector(v):
    """A result as a vector: a registered value's derivative-carrying fields (a difference of two of them is a
    tangent), a tuple's entries concatenated."""
    if isinstance(v, tuple) and not L.P.is_registered(v):
        return np.concatenate([value_vector(item) for item in v])
    if L.P.is_registered(v):
        return np.concatenate([np.ravel(np.asarray(p, dtype=float)) for p in L.tangent_parts(v)])
    return np.ravel(np.asarray(v, dtype=float))


def qvec(q):
    return np.array([q.w, q.x, q.y, q.z])


def pvec(p):
    return np.concatenate([qvec(p.q), p.t])


def quaternions(lo=-1.2, hi=1.2):
    c = st.floats(lo, hi, allow_nan=False)
    return st.builds(Quaternion, c, c, c, c).filter(lambda q: q.norm2 > 0.2)


scalars = st.floats(0.2, 1.5, allow_nan=False)
vectors3 = st.lists(st.floats(-1.5, 1.5, allow_nan=False), min_size=3, max_size=3).map(np.array)


# ---- functions differentiated (and their plain-float twins for autograd) --------------------------------------
def energy(q, s):
    p = q * q
    return math.sin(s * p.w) + p.norm2 * s * s + q.x * q.y * s


def qmul_plain(a, b):
    return anp.array([a[0] * b[0] - a[1] * b[1] - a[2] * b[2] - a[3] * b[3],
                      a[0] * b[1] + a[1] * b[0] + a[2] * b[3] - a[3] * b[2],
                      a[0] * b[2] - a[1] * b[3] + a[2] * b[0] + a[3] * b[1],
                      a[0] * b[3] + a[1] * b[2] - a[2] * b[1] + a[3] * b[0]])


def energy_plain(qv, s):
    p = qmul_plain(qv, qv)
    return anp.sin(s * p[0]) + anp.sum(p * p) * s * s + qv[1] * qv[2] * s


def pose_loss(p, pts, target):
    total = 0.0
    for i in range(pts.shape[0]):
        rx, ry, rz = p.q.rotate(pts[i, 0], pts[i, 1], pts[i, 2])
        dx = rx + p.t[0] - target[i, 0]
        dy = ry + p.t[1] - target[i, 1]
        dz = rz + p.t[2] - target[i, 2]
        total += dx * dx + dy * dy + dz * dz
    return total


def pose_loss_plain(v, pts, target):
    """The same loss through the rotation matrix (an independent formula)."""
    w, x, y, z = v[0], v[1], v[2], v[3]
    n = w * w + x * x + y * y + z * z
    R = anp.array([[w * w + x * x - y * y - z * z, 2 * (x * y - w * z), 2 * (x * z + w * y)],
                   [2 * (x * y + w * z), w * w - x * x + y * y - z * z, 2 * (y * z - w * x)],
                   [2 * (x * z - w * y), 2 * (y * z + w * x), w * w - x * x - y * y + z * z]]) / n
    r = anp.dot(pts, R.T) + v[4:7]
    return anp.sum((r - target) ** 2)


def spin(q, s):
    """A Quaternion-valued function: q times a rotation about x by s, plus s q."""
    r = Quaternion(math.cos(s), math.sin(s), 0.0, 0.0)
    return q * r + q * (s * s)


def spin_plain(qv, s):
    return qmul_plain(qv, anp.array([anp.cos(s), anp.sin(s), 0.0, 0.0])) + qv * (s * s)


def shift_pose(p, s):
    """A Pose-valued function of a Pose."""
    return Pose(p.q * p.q, p.t * s + p.q.w * p.t)


def shift_pose_plain(v, s):
    qv, t = v[:4], v[4:]
    return anp.concatenate([qmul_plain(qv, qv), t * s + qv[0] * t])


def body_energy(b, s):
    return b.mass * np.sum(b.pos * b.pos) * b.vel * b.vel + s * math.exp(0.3 * b.vel) * np.sum(b.pos)


def body_energy_plain(v, mass, s):
    pos, vel = v[:3], v[3]
    return mass * anp.sum(pos * pos) * vel * vel + s * anp.exp(0.3 * vel) * anp.sum(pos)


@pytest.fixture(scope="module")
def cloud():
    rng = np.random.default_rng(7)
    return rng.normal(size=(6, 3)), rng.normal(size=(6, 3))


# ---- grad of grad -------------------------------------------------------------------------------------------------
@given(quaternions(), scalars)
@settings(max_examples=15)
def test_second_derivative_wrt_a_float_while_a_quaternion_passes_through(q, s):
    f = dp.differentiable(energy, jit=False)
    d2 = dp.grad(dp.grad(f, 1), 1)(q, s)
    reference = autograd.grad(autograd.grad(energy_plain, 1), 1)(qvec(q), s)
    close(d2, reference, rtol=1e-9)
    fd = fd_jacobian(dp.grad(f, 1), (q, s), 1)
    close(d2, fd[0, 0], rtol=1e-5, atol=1e-6)


@given(quaternions(), scalars)
@settings(max_examples=15)
def test_mixed_second_derivatives(q, s):
    f = dp.differentiable(energy, jit=False)
    d_q_of_ds = dp.grad(dp.grad(f, 1), 0)(q, s)       # d/dq (df/ds): a Quaternion (the tangent type)
    assert isinstance(d_q_of_ds, Quaternion)
    both = dp.grad(dp.grad(f, 1), (0, 1))(q, s)
    reference = autograd.jacobian(autograd.grad(energy_plain, 1), 0)(qvec(q), s)
    close(qvec(d_q_of_ds), reference, rtol=1e-9)
    close(qvec(both[0]), reference, rtol=1e-9)
    close(both[1], autograd.grad(autograd.grad(energy_plain, 1), 1)(qvec(q), s), rtol=1e-9)
    close(qvec(d_q_of_ds), fd_jacobian(dp.grad(f, 1), (q, s), 0)[0], rtol=1e-5, atol=1e-6)


def test_grad_of_a_quaternion_valued_gradient_is_dp111():
    f = dp.differentiable(energy, jit=False)
    with pytest.raises(DifferentiabilityError) as info:
        dp.grad(dp.grad(f, 0), 1)(Quaternion(0.8, 0.3, -0.4, 0.25), 0.7)
    assert "DP111" in str(info.value) and "returns a Quaternion" in str(info.value)


# ---- hessian ------------------------------------------------------------------------------------------------------
@given(quaternions(), scalars)
@settings(max_examples=15)
def test_hessian_wrt_a_quaternion(q, s):
    f = dp.differentiable(energy, jit=False)
    H = dp.hessian(f, 0)(q, s)
    assert H.shape == (4, 4)
    close(H, H.T, rtol=0, atol=1e-10)
    close(H, autograd.hessian(energy_plain, 0)(qvec(q), s), rtol=1e-9, atol=1e-12)
    close(H, fd_jacobian(dp.grad(f, 0), (q, s), 0), rtol=1e-5, atol=1e-6)
    assert dp.hessian(f, 1)(q, s) == pytest.approx(autograd.hessian(energy_plain, 1)(qvec(q), s), rel=1e-9)


@given(quaternions(), vectors3)
@settings(max_examples=8)
def test_hessian_wrt_a_nested_pose_with_an_array_field(cloud, q, t):
    pts, target = cloud
    pose = Pose(q, t)
    f = dp.differentiable(pose_loss, jit=False)
    H = dp.hessian(f, 0)(pose, pts, target)
    assert H.shape == (7, 7)  # q.w, q.x, q.y, q.z, t[0], t[1], t[2]
    close(H, H.T, rtol=0, atol=1e-10)
    close(H, autograd.hessian(pose_loss_plain)(pvec(pose), pts, target), rtol=1e-8, atol=1e-10)
    close(H, fd_jacobian(dp.grad(f), (pose, pts, target), 0), rtol=1e-5, atol=1e-5)


def test_hessian_with_no_derivative_fields_covers_the_tangent_only():
    b = Body(np.array([0.3, -0.7, 1.1]), 2.5, 0.8)
    f = dp.differentiable(body_energy, jit=False)
    H = dp.hessian(f, 0)(b, 0.6)
    assert H.shape == (4, 4)  # pos (3) and vel; mass is NoDerivative
    close(H, H.T, rtol=0, atol=1e-10)
    v = np.concatenate([b.pos, [b.vel]])
    close(H, autograd.hessian(body_energy_plain)(v, b.mass, 0.6), rtol=1e-9)
    close(H, fd_jacobian(dp.grad(f), (b, 0.6), 0), rtol=1e-5, atol=1e-6)
    g = dp.grad(f)(b, 0.6)
    assert type(g).__name__ == "BodyTangent"


def spring_energy(p, sp):
    d = math.sqrt(p.x * p.x + p.y * p.y) - sp.rest
    return 0.5 * sp.k * d * d


def test_hessian_wrt_a_registered_namedtuple_and_plain_class():
    p, sp = Vec2(0.6, -1.3), Spring(3.0, 0.9)
    f = dp.differentiable(spring_energy, jit=False)
    H = dp.hessian(f, 0)(p, sp)
    Hs = dp.hessian(f, 1)(p, sp)

    def plain(v, w):
        d = anp.sqrt(v[0] ** 2 + v[1] ** 2) - w[1]
        return 0.5 * w[0] * d * d

    close(H, autograd.hessian(plain, 0)(np.array(p), np.array([3.0, 0.9])), rtol=1e-9)
    close(Hs, autograd.hessian(plain, 1)(np.array(p), np.array([3.0, 0.9])), rtol=1e-9)
    close(H, H.T, rtol=0, atol=1e-10)


# ---- jacobian -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["forward", "reverse", "auto"])
def test_jacobian_of_a_scalar_wrt_a_quaternion_is_the_dense_gradient(mode):
    q, s = Quaternion(0.8, 0.3, -0.4, 0.25), 0.7
    f = dp.differentiable(energy, jit=False)
    J = dp.jacobian(f, 0, mode=mode)(q, s)
    assert J.shape == (4,)
    close(J, qvec(dp.grad(f)(q, s)), rtol=1e-12)
    close(J, autograd.grad(energy_plain)(qvec(q), s), rtol=1e-9)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
@given(q=quaternions(), s=scalars)
@settings(max_examples=8)
def test_jacobian_of_a_quaternion_valued_function(mode, q, s):
    f = dp.differentiable(spin, jit=False)
    Jq = dp.jacobian(f, 0, mode=mode)(q, s)
    Js = dp.jacobian(f, 1, mode=mode)(q, s)
    assert Jq.shape == (4, 4) and Js.shape == (4,)
    close(Jq, autograd.jacobian(spin_plain, 0)(qvec(q), s), rtol=1e-9, atol=1e-12)
    close(Js, autograd.jacobian(spin_plain, 1)(qvec(q), s), rtol=1e-9, atol=1e-12)
    close(Jq, fd_jacobian(spin, (q, s), 0), rtol=1e-6, atol=1e-7)
    close(Js, fd_jacobian(spin, (q, s), 1)[:, 0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_jacobian_of_a_pose_valued_function_of_a_pose(mode):
    pose = Pose(Quaternion(0.8, 0.3, -0.4, 0.25), np.array([0.5, -1.0, 2.0]))
    f = dp.differentiable(shift_pose, jit=False)
    J = dp.jacobian(f, 0, mode=mode)(pose, 0.4)
    assert J.shape == (7, 7)
    close(J, autograd.jacobian(shift_pose_plain)(pvec(pose), 0.4), rtol=1e-9, atol=1e-12)
    close(J, fd_jacobian(shift_pose, (pose, 0.4), 0), rtol=1e-6, atol=1e-7)


def test_jacobian_rejects_a_type_without_tangent_fields():
    @dp.differentiable_type
    @dataclass(frozen=True)
    class Tag:
        n: Annotated[int, dp.NoDerivative]

    def f(t, x):
        return x * t.n

    with pytest.raises(TypeError, match="derivative-carrying"):
        dp.jacobian(f, 0)(Tag(3), 1.0)


# ---- hvp and jvp_function -------------------------------------------------------------------------------------------
@given(quaternions(), scalars, quaternions(-1.0, 1.0), st.floats(-1.0, 1.0))
@settings(max_examples=10)
def test_hvp_with_a_tangent_typed_vector(q, s, v, vs):
    f = dp.differentiable(energy, jit=False)
    hq, hs = dp.hvp(f, (q, s), (v, vs))
    assert isinstance(hq, Quaternion)
    full = autograd.hessian(lambda z: energy_plain(z[:4], z[4]))(np.concatenate([qvec(q), [s]]))
    expected = full @ np.concatenate([qvec(v), [vs]])
    close(np.concatenate([qvec(hq), [hs]]), expected, rtol=1e-9, atol=1e-12)


def test_hvp_of_a_pose_loss(cloud):
    pts, target = cloud
    pose = Pose(Quaternion(0.8, 0.3, -0.4, 0.25), np.array([0.5, -1.0, 2.0]))
    v = Pose(Quaternion(0.1, -0.2, 0.3, 0.05), np.array([1.0, 0.5, -0.25]))
    f = dp.differentiable(pose_loss, jit=False)
    hp, h_pts, h_target = dp.hvp(f, (pose, pts, target), (v, np.zeros_like(pts), np.zeros_like(target)))
    assert isinstance(hp, Pose)
    H = autograd.hessian(pose_loss_plain)(pvec(pose), pts, target)
    close(pvec(hp), H @ pvec(v), rtol=1e-8, atol=1e-10)
    close(pvec(hp), dp.hessian(f, 0)(pose, pts, target) @ pvec(v), rtol=1e-10, atol=1e-12)


def test_jvp_function_and_reverse_over_forward():
    q, s = Quaternion(0.8, 0.3, -0.4, 0.25), 0.7
    dq, ds = Quaternion(0.2, -0.1, 0.4, 0.3), -0.5
    f = dp.differentiable(energy, jit=False)
    t = dp.jvp_function(f)
    grads = autograd.grad(lambda z: energy_plain(z[:4], z[4]))(np.concatenate([qvec(q), [s]]))
    direction = np.concatenate([qvec(dq), [ds]])
    assert t(q, s, dq, ds) == pytest.approx(grads @ direction, rel=1e-12)
    assert t(q, s, dq, ds) == pytest.approx(dp.jvp(f, (q, s), (dq, ds))[1], rel=1e-12)
    g_q, g_dq, g_s = dp.grad(t, (0, 2, 1))(q, s, dq, ds)   # reverse over forward
    H = autograd.hessian(lambda z: energy_plain(z[:4], z[4]))(np.concatenate([qvec(q), [s]]))
    close(qvec(g_dq), grads[:4], rtol=1e-9)
    close(np.concatenate([qvec(g_q), [g_s]]), H @ direction, rtol=1e-9, atol=1e-12)


def test_jvp_function_of_a_quaternion_valued_function():
    q, s = Quaternion(0.8, 0.3, -0.4, 0.25), 0.7
    dq = Quaternion(0.2, -0.1, 0.4, 0.3)
    t = dp.jvp_function(dp.differentiable(spin, jit=False))
    out = t(q, s, dq, 0.5)
    assert isinstance(out, Quaternion)
    J = autograd.jacobian(lambda z: spin_plain(z[:4], z[4]))(np.concatenate([qvec(q), [s]]))
    close(qvec(out), J @ np.concatenate([qvec(dq), [0.5]]), rtol=1e-9)


def test_jvp_function_checks_the_tangent_type():
    t = dp.jvp_function(dp.differentiable(body_energy, jit=False))
    b = Body(np.array([0.3, -0.7, 1.1]), 2.5, 0.8)
    with pytest.raises(TypeError, match="BodyTangent"):
        t(b, 0.6, b, 1.0)   # a Body given where its tangent (BodyTangent) belongs
    tangent = dp.zero_tangent(b)
    assert t(b, 0.6, tangent, 1.0) == pytest.approx(
        autograd.grad(body_energy_plain, 2)(np.concatenate([b.pos, [b.vel]]), b.mass, 0.6), rel=1e-9)


# ---- transforms called inside differentiated code, with registered values ---------------------------------------
def outer_grad(q, s):
    gq = dp.grad(energy)(q, s)
    return gq.w * gq.x + s * gq.norm2


def outer_grad_plain(qv, s):
    gq = autograd.grad(energy_plain)(qv, s)
    return gq[0] * gq[1] + s * anp.sum(gq * gq)


def outer_value_and_grad(q, s):
    v, (gq, gs) = dp.value_and_grad(energy, (0, 1))(q, s)
    return v + gq.w * gs


def outer_value_and_grad_plain(qv, s):
    gq, gs = autograd.grad(energy_plain, 0)(qv, s), autograd.grad(energy_plain, 1)(qv, s)
    return energy_plain(qv, s) + gq[0] * gs


def outer_jvp(q, s):
    v, t = dp.jvp(spin, (q, s), (Quaternion(0.1, 0.2, 0.3, 0.4), 0.5))
    return v.w * t.x + t.norm2


def outer_jvp_plain(qv, s):
    v = spin_plain(qv, s)
    t = autograd.jacobian(spin_plain, 0)(qv, s) @ anp.array([0.1, 0.2, 0.3, 0.4]) + \
        autograd.jacobian(spin_plain, 1)(qv, s) * 0.5
    return v[0] * t[1] + anp.sum(t * t)


def outer_hvp(q, s):
    hq, hs = dp.hvp(energy, (q, s), (Quaternion(0.1, 0.2, 0.3, 0.4), 0.5))
    return hq.w + hq.z * hs


def outer_hvp_plain(qv, s):
    def whole(z):
        return energy_plain(z[:4], z[4])

    h = autograd.hessian(whole)(anp.concatenate([qv, anp.array([s])])) @ np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    return h[0] + h[3] * h[4]


def outer_tangent_map(q, s):
    t = dp.jvp_function(spin)(q, s, Quaternion(0.1, 0.2, 0.3, 0.4), 0.5)
    return t.norm2 * s


def outer_tangent_map_plain(qv, s):
    t = autograd.jacobian(spin_plain, 0)(qv, s) @ anp.array([0.1, 0.2, 0.3, 0.4]) + \
        autograd.jacobian(spin_plain, 1)(qv, s) * 0.5
    return anp.sum(t * t) * s


def outer_of_outer(q, s):
    return dp.grad(outer_grad, 1)(q, s) * q.y


def outer_of_outer_plain(qv, s):
    return autograd.grad(outer_grad_plain, 1)(qv, s) * qv[2]


NESTED = [(outer_grad, outer_grad_plain), (outer_value_and_grad, outer_value_and_grad_plain),
          (outer_jvp, outer_jvp_plain), (outer_hvp, outer_hvp_plain), (outer_tangent_map, outer_tangent_map_plain),
          (outer_of_outer, outer_of_outer_plain)]


@pytest.mark.parametrize("outer, plain", NESTED, ids=[o.__name__ for o, _ in NESTED])
@given(q=quaternions(), s=scalars)
@settings(max_examples=6)
def test_transforms_inside_differentiated_code_take_registered_values(outer, plain, q, s):
    f = dp.differentiable(outer, jit=False)
    assert f(q, s) == pytest.approx(plain(qvec(q), s), rel=1e-9, abs=1e-12)
    gq, gs = dp.grad(f, (0, 1))(q, s)
    close(qvec(gq), autograd.grad(plain, 0)(qvec(q), s), rtol=1e-8, atol=1e-10)
    close(gs, autograd.grad(plain, 1)(qvec(q), s), rtol=1e-8, atol=1e-10)
    close(qvec(gq), fd_jacobian(f, (q, s), 0)[0], rtol=1e-5, atol=1e-6)


def outer_pose(p, pts, target):
    g = dp.grad(pose_loss)(p, pts, target)
    return g.q.w * g.q.x + np.sum(g.t * g.t) * p.q.norm2


def outer_pose_plain(v, pts, target):
    g = autograd.grad(pose_loss_plain)(v, pts, target)
    return g[0] * g[1] + anp.sum(g[4:] * g[4:]) * anp.sum(v[:4] * v[:4])


def test_nested_gradient_of_a_pose_and_its_hessian(cloud):
    pts, target = cloud
    pose = Pose(Quaternion(0.8, 0.3, -0.4, 0.25), np.array([0.5, -1.0, 2.0]))
    f = dp.differentiable(outer_pose, jit=False)
    assert f(pose, pts, target) == pytest.approx(outer_pose_plain(pvec(pose), pts, target), rel=1e-10)
    g = dp.grad(f)(pose, pts, target)
    assert isinstance(g, Pose)
    close(pvec(g), autograd.grad(outer_pose_plain)(pvec(pose), pts, target), rtol=1e-8)
    close(pvec(g), fd_jacobian(f, (pose, pts, target), 0)[0], rtol=1e-5, atol=1e-5)


def outer_body(b, s):
    gb = dp.grad(body_energy)(b, s)
    return np.sum(gb.pos) * gb.vel + b.mass * s


def test_nested_gradient_of_a_type_with_no_derivative_fields():
    b = Body(np.array([0.3, -0.7, 1.1]), 2.5, 0.8)
    f = dp.differentiable(outer_body, jit=False)

    def plain(v, mass, s):
        g = autograd.grad(body_energy_plain)(v, mass, s)
        return anp.sum(g[:3]) * g[3] + mass * s

    v = np.concatenate([b.pos, [b.vel]])
    assert f(b, 0.6) == pytest.approx(plain(v, b.mass, 0.6), rel=1e-10)
    g = dp.grad(f)(b, 0.6)
    close(np.concatenate([g.pos, [g.vel]]), autograd.grad(plain)(v, b.mass, 0.6), rtol=1e-8)


def captures_a_quaternion(q, s):
    def inner(t):
        return q.norm2 * t * t * q.w
    v, d = dp.jvp(inner, (s,), (1.0,))
    h = dp.hvp(inner, (s,), (1.0,))[0]
    return v + d * h + dp.grad(inner)(s)


def captures_a_quaternion_plain(qv, s):
    n2, w = anp.sum(qv * qv), qv[0]
    return n2 * w * s * s + 2 * n2 * w * s * 2 * n2 * w + 2 * n2 * w * s


module_gradient = dp.grad(energy)
module_tangent_map = dp.jvp_function(spin)


def calls_module_level_derivatives(q, s):
    gq = module_gradient(q, s)
    t = module_tangent_map(q, s, gq, 1.0)
    return gq.norm2 + t.w * s


def calls_module_level_derivatives_plain(qv, s):
    gq = autograd.grad(energy_plain)(qv, s)
    t = autograd.jacobian(spin_plain, 0)(qv, s) @ gq + autograd.jacobian(spin_plain, 1)(qv, s)
    return anp.sum(gq * gq) + t[0] * s


@pytest.mark.parametrize("outer, plain", [(captures_a_quaternion, captures_a_quaternion_plain),
                                          (calls_module_level_derivatives, calls_module_level_derivatives_plain)],
                         ids=["captured", "module-level"])
def test_nested_defs_capturing_registered_values_and_module_level_derivatives(outer, plain):
    q, s = Quaternion(0.8, 0.3, -0.4, 0.25), 0.7
    f = dp.differentiable(outer, jit=False)
    assert f(q, s) == pytest.approx(plain(qvec(q), s), rel=1e-10)
    gq, gs = dp.grad(f, (0, 1))(q, s)
    close(qvec(gq), autograd.grad(plain, 0)(qvec(q), s), rtol=1e-8)
    close(gs, autograd.grad(plain, 1)(qvec(q), s), rtol=1e-8)
    close(qvec(gq), fd_jacobian(f, (q, s), 0)[0], rtol=1e-5, atol=1e-6)


def unit_energy(u, s):
    return u.a * s * s + u.b * u.a


def outer_unit(u, s):
    return dp.grad(unit_energy)(u, s).a * s


def test_types_whose_constructor_validates():
    u = UnitVec(0.6, 0.8)
    assert dp.tangent_type(UnitVec).__name__ == "UnitVecTangent"
    f = dp.differentiable(outer_unit, jit=False)
    assert f(u, 0.5) == pytest.approx((0.25 + 0.8) * 0.5)
    gu, gs = dp.grad(f, (0, 1))(u, 0.5)
    assert (gu.a, gu.b) == pytest.approx((0.0, 0.5)) and gs == pytest.approx(3 * 0.25 + 0.8)
    close(dp.hessian(unit_energy)(u, 0.5), [[0.0, 1.0], [1.0, 0.0]], rtol=1e-12)


def returns_double(q):
    return q * 2.0


def nested_grad_of_quaternion_valued(q):
    return dp.grad(returns_double)(q).w


def nested_jvp_wrong_tangent(q, s):
    return dp.jvp(energy, (q, s), (1.0, 0.5))[1]


def test_nested_problems_are_reported_at_the_call():
    with pytest.raises(DifferentiabilityError) as info:
        dp.differentiable(nested_grad_of_quaternion_valued, jit=False)(Quaternion(1.0, 0.0, 0.0, 0.0))
    assert "DP111" in str(info.value) and "returns a Quaternion" in str(info.value)
    with pytest.raises(DifferentiabilityError) as info:
        dp.differentiable(nested_jvp_wrong_tangent, jit=False)(Quaternion(1.0, 0.0, 0.0, 0.0), 0.5)
    assert "must be a Quaternion" in str(info.value)


# ---- compiled -----------------------------------------------------------------------------------------------------
def test_compiled_hessian_and_nested_gradient(cloud):
    pts, target = cloud
    pose = Pose(Quaternion(0.8, 0.3, -0.4, 0.25), np.array([0.5, -1.0, 2.0]))
    H = dp.hessian(pose_loss)(pose, pts, target)
    close(H, autograd.hessian(pose_loss_plain)(pvec(pose), pts, target), rtol=1e-8, atol=1e-10)
    close(H, H.T, rtol=0, atol=1e-10)
    q, s = Quaternion(0.8, 0.3, -0.4, 0.25), 0.7
    gq, gs = dp.grad(outer_grad, (0, 1))(q, s)
    close(qvec(gq), autograd.grad(outer_grad_plain, 0)(qvec(q), s), rtol=1e-8)
    close(gs, autograd.grad(outer_grad_plain, 1)(qvec(q), s), rtol=1e-8)
    assert dp.grad(dp.grad(energy, 1), 1)(q, s) == pytest.approx(
        autograd.grad(autograd.grad(energy_plain, 1), 1)(qvec(q), s), rel=1e-9)
    # w.r.t. the float while the Quaternion passes through: batched forward mode behind the boundary
    assert dp.hessian(energy, 1)(q, s) == pytest.approx(
        autograd.hessian(energy_plain, 1)(qvec(q), s), rel=1e-9)


# ---- choosing between registered values -----------------------------------------------------------------------------
def choose_expr(q1, q2, s):
    r = q1 if s > 0.5 else q2 * s
    return r.norm2 * s + r.x


def choose_expr_active(q1, q2, s):
    r = q1 if q1.w * s > q2.w else q2 * s     # the condition depends on the differentiated values
    return r.norm2 * s + r.x


def choose_stmt_active(q1, q2, s):
    if q1.x * s > q2.y:
        r = q1 * s
    else:
        r = q2
    return r.norm2 + r.w * s


def choose_pose(p1, p2, s):
    p = p1 if p1.t[0] > s else p2
    return p.q.norm2 * np.sum(p.t * p.t) * s


def choose_tuple(a, b, s):
    x, y = (a, b) if s > 0.0 else (b, a)
    return x * 2.0 + y * y


def _plain_choice(fun):
    """The same choice on plain vectors: q as its 4 components."""
    def choose(v1, v2, s):
        return fun(Quaternion(*v1), Quaternion(*v2), s)
    return choose


def choose_expr_plain(v1, v2, s):
    r = v1 if s > 0.5 else v2 * s
    return anp.sum(r * r) * s + r[1]


def choose_expr_active_plain(v1, v2, s):
    r = v1 if v1[0] * s > v2[0] else v2 * s
    return anp.sum(r * r) * s + r[1]


def choose_stmt_active_plain(v1, v2, s):
    r = v1 * s if v1[1] * s > v2[2] else v2
    return anp.sum(r * r) + r[0] * s


CHOICES = [(choose_expr, choose_expr_plain), (choose_expr_active, choose_expr_active_plain),
           (choose_stmt_active, choose_stmt_active_plain)]


@pytest.mark.parametrize("fun, plain", CHOICES, ids=[f.__name__ for f, _ in CHOICES])
@given(q1=quaternions(), q2=quaternions(), s=scalars)
@settings(max_examples=12)
def test_choosing_between_quaternions(fun, plain, q1, q2, s):
    v1, v2 = qvec(q1), qvec(q2)
    # stay away from the branch boundary, where finite differences straddle it
    assume(abs(q1.w * s - q2.w) > 1e-3 and abs(q1.x * s - q2.y) > 1e-3 and abs(s - 0.5) > 1e-3)
    f = dp.differentiable(fun, jit=False)
    assert f(q1, q2, s) == pytest.approx(plain(v1, v2, s), rel=1e-12)
    g1, g2, gs = dp.grad(f, (0, 1, 2))(q1, q2, s)
    for k, g in enumerate((g1, g2)):
        close(qvec(g), autograd.grad(plain, k)(v1, v2, s), rtol=1e-9, atol=1e-12)
        close(qvec(g), fd_jacobian(f, (q1, q2, s), k)[0], rtol=1e-5, atol=1e-6)
    close(gs, autograd.grad(plain, 2)(v1, v2, s), rtol=1e-9, atol=1e-12)
    H = dp.hessian(f, 0)(q1, q2, s)   # second derivatives through the choice
    close(H, autograd.hessian(plain, 0)(v1, v2, s), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("s", [0.2, 0.9])
def test_choosing_between_poses(s):
    p1 = Pose(Quaternion(0.8, 0.3, -0.4, 0.25), np.array([0.5, -1.0, 2.0]))
    p2 = Pose(Quaternion(0.1, 0.5, 0.2, -0.3), np.array([0.3, 0.7, -0.2]))
    f = dp.differentiable(choose_pose, jit=False)
    assert f(p1, p2, s) == pytest.approx(choose_pose(p1, p2, s), rel=1e-12)
    g1, g2 = dp.grad(f, (0, 1))(p1, p2, s)
    chosen, other = (g1, g2) if p1.t[0] > s else (g2, g1)
    assert not np.any(pvec(other))

    def plain(v, s):
        return anp.sum(v[:4] * v[:4]) * anp.sum(v[4:] * v[4:]) * s

    close(pvec(chosen), autograd.grad(plain)(pvec(p1 if p1.t[0] > s else p2), s), rtol=1e-10)
    close(pvec(g1), fd_jacobian(f, (p1, p2, s), 0)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("s", [-0.5, 0.5])
def test_choosing_between_tuples(s):
    f = dp.differentiable(choose_tuple, jit=False)
    assert f(1.5, -2.0, s) == choose_tuple(1.5, -2.0, s)
    expected = (2.0, -4.0) if s > 0 else (3.0, 2.0)
    assert dp.grad(f, (0, 1))(1.5, -2.0, s) == pytest.approx(expected)


def compiled_choice(q1, q2, s):
    r = q1 if q1.w * s > q2.w else q2
    if r.x > 0.0:
        r = r * s
    return r.norm2


def test_compiled_choice():
    q1, q2 = Quaternion(0.8, 0.3, -0.4, 0.25), Quaternion(0.1, 0.5, 0.2, -0.3)
    for s in (0.1, 0.9):
        g1, g2 = dp.grad(compiled_choice, (0, 1))(q1, q2, s)

        def plain(v1, v2):
            r = v1 if v1[0] * s > v2[0] else v2
            r = r * s if r[1] > 0.0 else r
            return anp.sum(r * r)

        close(qvec(g1), autograd.grad(plain, 0)(qvec(q1), qvec(q2)), rtol=1e-12)
        close(qvec(g2), autograd.grad(plain, 1)(qvec(q1), qvec(q2)), rtol=1e-12)


def loop_of_choices_and_gradients(q, s, n):
    r = Quaternion(1.0, 0.0, 0.0, 0.0)
    for i in range(n):
        c = q if r.w * s > 0.3 else q * s
        r = r * c + Quaternion(0.0, 0.1 * i, 0.0, 0.0)
        r = r + dp.grad(energy)(r, s) * 0.01
    return r.norm2 + r.x


@pytest.mark.slow
def test_choices_and_nested_gradients_in_a_loop_then_a_hessian():
    q, s = Quaternion(0.8, 0.3, -0.4, 0.25), 0.7
    f = dp.differentiable(loop_of_choices_and_gradients, jit=False)
    assert f(q, s, 4) == pytest.approx(loop_of_choices_and_gradients(q, s, 4), rel=1e-13)
    g = dp.grad(f)(q, s, 4)
    close(qvec(g), fd_jacobian(loop_of_choices_and_gradients, (q, s, 4), 0)[0], rtol=1e-6, atol=1e-8)
    H = dp.hessian(f)(q, s, 4)
    close(H, H.T, rtol=0, atol=1e-10)
    close(H, fd_jacobian(dp.grad(f), (q, s, 4), 0), rtol=1e-5, atol=1e-6)
    close(dp.hessian(loop_of_choices_and_gradients)(q, s, 4), H, rtol=1e-12, atol=1e-12)   # compiled


def mixed_choice(q, s):
    r = q if s > 0.0 else s
    return r.w


def test_choice_between_different_kinds_is_dp101():
    with pytest.raises(DifferentiabilityError) as info:
        dp.differentiable(mixed_choice, jit=False)(Quaternion(1.0, 0.0, 0.0, 0.0), 0.5)
    assert "DP101" in str(info.value) and "a Quaternion and a number" in str(info.value)


# ---- comparing registered values ------------------------------------------------------------------------------------
def compare_eq(q1, q2, s):
    if q1 == q2:
        return s * q1.norm2
    return s * q2.norm2 * 2.0


def compare_ne(q1, q2, s):
    k = 1.0 if q1 != q2 else 3.0
    return k * s * q1.w


def compare_own(a, b, s):
    if a < b:
        return a.a * s
    if a == b:
        return 10.0 * s
    return b.b * s


def compare_tuples(u, v, s):
    return s * (2.0 if u == v else 1.0)


@pytest.mark.parametrize("same", [True, False])
def test_equality_of_dataclass_values_is_field_by_field(same):
    q1 = Quaternion(0.8, 0.3, -0.4, 0.25)
    q2 = Quaternion(0.8, 0.3, -0.4, 0.25) if same else Quaternion(0.8, 0.3, -0.4, 0.26)
    s = 0.7
    expected = {  # the branch taken, differentiated by hand
        compare_eq: ((2 * s * qvec(q1), np.zeros(4), q1.norm2) if same else
                     (np.zeros(4), 4 * s * qvec(q2), 2 * q2.norm2)),
        compare_ne: ((np.array([3 * s, 0, 0, 0]), np.zeros(4), 3 * q1.w) if same else
                     (np.array([s, 0, 0, 0]), np.zeros(4), q1.w)),
    }
    for fun, (e1, e2, es) in expected.items():
        f = dp.differentiable(fun, jit=False)
        assert f(q1, q2, s) == fun(q1, q2, s)
        g1, g2, gs = dp.grad(f, (0, 1, 2))(q1, q2, s)
        close(qvec(g1), e1, rtol=1e-12)
        close(qvec(g2), e2, rtol=1e-12)
        assert gs == pytest.approx(es, rel=1e-12)
        if not same:  # away from equality, finite differences stay on one branch
            close(qvec(g1), fd_jacobian(fun, (q1, q2, s), 0)[0], rtol=1e-6, atol=1e-8)


def test_equality_of_namedtuples_and_own_comparison_methods():
    f = dp.differentiable(compare_tuples, jit=False)
    assert f(Vec2(1.0, 2.0), Vec2(1.0, 2.0), 0.5) == 1.0
    assert f(Vec2(1.0, 2.0), Vec2(1.0, 2.5), 0.5) == 0.5
    g = dp.differentiable(compare_own, jit=False)
    for a, b in [(Ranked(0.1, 0.2), Ranked(1.0, 1.0)), (Ranked(1.0, 1.0), Ranked(1.0, 1.0002)),
                 (Ranked(2.0, 1.0), Ranked(1.0, 1.0))]:
        assert g(a, b, 0.5) == compare_own(a, b, 0.5)
        ga, gb, gs = dp.grad(g, (0, 1, 2))(a, b, 0.5)
        assert gs == pytest.approx(compare_own(a, b, 1.0))


def compare_order(q1, q2):
    return 1.0 if q1 < q2 else 0.0


def compare_arrays(p1, p2):
    return 1.0 if p1 == p2 else 0.0


def compare_plain_class(a, b):
    return 1.0 if a == b else a.k


def compare_number(q, s):
    return s if q == s else 2.0 * s


@pytest.mark.parametrize("fun, args, expected", [
    (compare_order, (Quaternion(1.0, 0.0, 0.0, 0.0),) * 2, "'<' is not defined for a Quaternion"),
    (compare_arrays, (Pose(Quaternion(1.0, 0.0, 0.0, 0.0), np.zeros(3)),) * 2, "field 't' is an array"),
    (compare_plain_class, (Spring(1.0, 2.0), Spring(1.0, 2.0)), "== compares identity"),
    (compare_number, (Quaternion(1.0, 0.0, 0.0, 0.0), 1.0), "always False"),
], ids=["order", "array-field", "identity", "number"])
def test_comparisons_that_cannot_be_compiled_are_dp101_with_a_fix(fun, args, expected):
    with pytest.raises(DifferentiabilityError) as info:
        dp.differentiable(fun, jit=False)(*args)
    text = str(info.value)
    assert "DP101" in text and expected in text and "fix:" in text
