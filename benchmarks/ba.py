"""Benchmark: the bundle-adjustment Jacobian of Srajer, Kukelova & Fitzgibbon (2018), computed with diffprog.

    python benchmarks/ba.py [--repeats R] [--no-jax] [--per-observation-limit M]

Definition (as in the paper and ADBench): n cameras of 11 parameters (Rodrigues rotation 3, center 3, focal
length 1, principal point 2, radial distortion 2), m points of 3 coordinates, p observations each with a weight
w and a 2-D feature. Observation i sees camera i mod n and point i mod m. Residuals:
    reprojection error  w_i * (project(cam, X) - feature_i)     (2 rows per observation)
    weight error        1 - w_i^2                               (1 row per observation)
project: rotate X - center by the Rodrigues formula (a first-order formula when the angle is 0), divide by
depth, radial distortion 1 + k1 r^2 + k2 r^4, scale by the focal length, add the principal point.

The Jacobian is sparse: each reprojection row has 15 nonzeros (11 camera + 3 point + 1 weight), each weight-error
row one. "Jacobian" here means those nonzero values: a (p, 2, 15) block array plus a (p,) diagonal, in the
fixed column order (camera, point, weight); the sparsity pattern itself depends only on the observation indices
and is not timed.

Instance: the smallest standard one, n=49, m=7776, p=31843, random data (fixed seed).

Compared in the same process (min over interleaved repeats):
  - objective: diffprog primal of the residual function (`ba_objective`), and plain numba of the same code;
  - Jacobian, diffprog "rows of a differentiated loop": the residual loop over observations is written on
    per-observation copies of the camera and point (cams[cam_idx], X[pt_idx], a gather), so one reverse pass
    seeded with the x-residuals and one seeded with the y-residuals give every observation's two rows at once
    (dp.vjp, two pullbacks); the weight-error diagonal by dp.grad of sum(1 - w^2);
  - the same rows from dp.grad of sum(seed * residuals) with the two seeds (no dp.vjp call overhead);
  - Jacobian, diffprog batched forward mode: the same loop, one pass of dp.jvp(..., lanes=True) carrying 15
    tangent directions, direction j being parameter j of every observation (a compressed Jacobian: each
    residual row depends only on its own observation), as JAX's vmap(jacfwd) does;
  - Jacobian, diffprog per observation: dp.jacobian of the 15-parameter residual function called from Python
    for each observation (what a user tries first; timed once, on the first --per-observation-limit
    observations, and scaled);
  - JAX: jax.jit(jax.vmap(jax.jacfwd(...))) of the same per-observation function, when jax imports.
Checks before timing: the diffprog rows against JAX (all observations), against autograd on the first 200, and
against central finite differences on a few.

Target (issue 3): Jacobian time / objective time <= 8.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import timeit
from importlib.metadata import version

import numba
import numpy as np

import diffprog as dp

TARGET = 8.0
N_CAMS, N_POINTS, N_OBS = 49, 7776, 31843


# ----------------------------------------------------------------------------------------------------------
# The model, written as a numpy user writes it
# ----------------------------------------------------------------------------------------------------------


def cross(a, b):
    out = np.zeros(3)
    out[0] = a[1] * b[2] - a[2] * b[1]
    out[1] = a[2] * b[0] - a[0] * b[2]
    out[2] = a[0] * b[1] - a[1] * b[0]
    return out


def rodrigues_rotate_point(rot, X):
    sqtheta = np.sum(rot * rot)
    if sqtheta != 0.0:
        theta = np.sqrt(sqtheta)
        costheta = np.cos(theta)
        sintheta = np.sin(theta)
        w = rot / theta
        return X * costheta + cross(w, X) * sintheta + w * (np.dot(w, X) * (1.0 - costheta))
    return X + cross(rot, X)


def radial_distort(rad, proj):
    rsq = np.sum(proj * proj)
    return proj * (1.0 + rad[0] * rsq + rad[1] * rsq * rsq)


def project(cam, X):
    Xcam = rodrigues_rotate_point(cam[0:3], X - cam[3:6])
    distorted = radial_distort(cam[9:11], Xcam[0:2] / Xcam[2])
    return distorted * cam[6] + cam[7:9]


def reprojection_errors(cams, X, w, feats, cam_idx, pt_idx):
    p = w.shape[0]
    err = np.zeros((p, 2))
    for i in range(p):
        err[i] = w[i] * (project(cams[cam_idx[i]], X[pt_idx[i]]) - feats[i])
    return err


@dp.differentiable
def ba_objective(cams, X, w, feats, cam_idx, pt_idx):
    """The benchmark's objective: reprojection errors (p x 2) and weight errors (p)."""
    return reprojection_errors(cams, X, w, feats, cam_idx, pt_idx), 1.0 - w * w


@dp.differentiable
def residuals_per_observation(cam_obs, X_obs, w, feats):
    """The same loop on per-observation copies (cam_obs[i] = cams[cam_idx[i]], X_obs[i] = X[pt_idx[i]])."""
    p = w.shape[0]
    err = np.zeros((p, 2))
    for i in range(p):
        err[i] = w[i] * (project(cam_obs[i], X_obs[i]) - feats[i])
    return err


@dp.differentiable
def seeded_residual_sum(cam_obs, X_obs, w, feats, seed):
    """sum(seed * residuals): its gradient is the pullback of `seed`, without dp.vjp's per-call cost."""
    return np.sum(seed * residuals_per_observation(cam_obs, X_obs, w, feats))


@dp.differentiable
def weight_error_sum(w):
    return np.sum(1.0 - w * w)


@dp.differentiable
def residual15(params, feat):
    """One observation's two residuals as a function of its 15 parameters (camera, point, weight)."""
    return params[14] * (project(params[0:11], params[11:14]) - feat)




def diffprog_jacobian(cams, X, w, feats, cam_idx, pt_idx):
    """The nonzeros: (p, 2, 15) reprojection blocks and the (p,) weight-error diagonal."""
    cam_obs = cams[cam_idx]
    X_obs = X[pt_idx]
    p = w.shape[0]
    _, pullback = dp.vjp(residuals_per_observation, cam_obs, X_obs, w, feats)
    J = np.empty((p, 2, 15))
    seed = np.zeros((p, 2))
    for row in range(2):
        seed[:, row] = 1.0
        seed[:, 1 - row] = 0.0
        g_cam, g_X, g_w, _ = pullback(seed)
        J[:, row, 0:11] = g_cam
        J[:, row, 11:14] = g_X
        J[:, row, 14] = g_w
    return J, dp.grad(weight_error_sum)(w)


def diffprog_jacobian_grad(cams, X, w, feats, cam_idx, pt_idx):
    """Same rows, from dp.grad of sum(seed * residuals) with the two seeds (avoids dp.vjp's overhead)."""
    cam_obs = cams[cam_idx]
    X_obs = X[pt_idx]
    p = w.shape[0]
    gradient = dp.grad(seeded_residual_sum, (0, 1, 2))
    J = np.empty((p, 2, 15))
    seed = np.zeros((p, 2))
    for row in range(2):
        seed[:, row] = 1.0
        seed[:, 1 - row] = 0.0
        g_cam, g_X, g_w = gradient(cam_obs, X_obs, w, feats, seed)
        J[:, row, 0:11] = g_cam
        J[:, row, 11:14] = g_X
        J[:, row, 14] = g_w
    return J, dp.grad(weight_error_sum)(w)


def forward_seeds(p):
    """The 15 tangent directions of dp.jvp(lanes=True), one per parameter column of every observation (a
    residual row depends only on its own observation's 15 parameters, so one pass yields all the blocks: a
    compressed Jacobian). They depend only on the number of observations: built once, like the sparsity pattern,
    and not timed."""
    cam_seed = np.zeros((p, 11, 15))
    cam_seed[:, np.arange(11), np.arange(11)] = 1.0
    point_seed = np.zeros((p, 3, 15))
    point_seed[:, np.arange(3), np.arange(11, 14)] = 1.0
    weight_seed = np.zeros((p, 15))
    weight_seed[:, 14] = 1.0
    return cam_seed, point_seed, weight_seed, np.zeros((p, 2, 15))  # features: held fixed


def diffprog_jacobian_forward(cams, X, w, feats, cam_idx, pt_idx, seeds):
    """The blocks from one pass of batched forward mode carrying the 15 directions of `forward_seeds`."""
    _, J = dp.jvp(residuals_per_observation, (cams[cam_idx], X[pt_idx], w, feats), seeds, lanes=True)
    return J, dp.grad(weight_error_sum)(w)


def diffprog_jacobian_per_observation(cams, X, w, feats, cam_idx, pt_idx, limit):
    jac = dp.jacobian(residual15, 0)
    count = min(limit, w.shape[0])
    J = np.empty((count, 2, 15))
    for i in range(count):
        params = np.concatenate((cams[cam_idx[i]], X[pt_idx[i]], w[i:i + 1]))
        J[i] = jac(params, feats[i])
    return J


# ----------------------------------------------------------------------------------------------------------
# References: JAX (vmap of jacfwd), autograd (per observation), finite differences
# ----------------------------------------------------------------------------------------------------------


def reference_project(xp, cam, X):
    rot = cam[0:3]
    Y = X - cam[3:6]
    sqtheta = xp.sum(rot * rot)
    theta = xp.sqrt(sqtheta)
    w = rot / theta
    cr = xp.stack([w[1] * Y[2] - w[2] * Y[1], w[2] * Y[0] - w[0] * Y[2], w[0] * Y[1] - w[1] * Y[0]])
    Xcam = Y * xp.cos(theta) + cr * xp.sin(theta) + w * (xp.dot(w, Y) * (1.0 - xp.cos(theta)))
    proj = Xcam[0:2] / Xcam[2]
    rsq = xp.sum(proj * proj)
    return proj * (1.0 + cam[9] * rsq + cam[10] * rsq * rsq) * cam[6] + cam[7:9]


def make_jax():
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)

    def residual(params, feat):
        return params[14] * (reference_project(jnp, params[0:11], params[11:14]) - feat)

    def objective(cams, X, w, feats, cam_idx, pt_idx):
        params = jnp.concatenate((cams[cam_idx], X[pt_idx], w[:, None]), axis=1)
        return jax.vmap(residual)(params, feats), 1.0 - w * w

    def jacobian(cams, X, w, feats, cam_idx, pt_idx):
        params = jnp.concatenate((cams[cam_idx], X[pt_idx], w[:, None]), axis=1)
        return jax.vmap(jax.jacfwd(residual))(params, feats), -2.0 * w

    obj, jac = jax.jit(objective), jax.jit(jacobian)

    def run_objective(*args):
        return jax.block_until_ready(obj(*args))

    def run_jacobian(*args):
        return [np.asarray(a) for a in jax.block_until_ready(jac(*args))]

    return run_objective, run_jacobian, jax.__version__


def instance(seed=0):
    rng = np.random.default_rng(seed)
    cams = np.empty((N_CAMS, 11))
    cams[:, 0:3] = rng.normal(scale=0.3, size=(N_CAMS, 3))       # rotation
    cams[:, 3:6] = rng.normal(scale=0.5, size=(N_CAMS, 3))       # center
    cams[:, 6] = 1.0 + rng.random(N_CAMS)                        # focal length
    cams[:, 7:9] = rng.normal(scale=0.1, size=(N_CAMS, 2))       # principal point
    cams[:, 9:11] = rng.normal(scale=0.01, size=(N_CAMS, 2))     # radial distortion
    X = rng.normal(size=(N_POINTS, 3))
    X[:, 2] += 10.0                                              # in front of the cameras
    w = 0.5 + rng.random(N_OBS)
    feats = rng.normal(size=(N_OBS, 2))
    obs = np.arange(N_OBS)
    return cams, X, w, feats, obs % N_CAMS, obs % N_POINTS


def interleaved_min(functions: dict, repeats: int) -> dict:
    best = {name: math.inf for name in functions}
    names = list(functions)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            best[name] = min(best[name], timeit.Timer(functions[name]).timeit(1))
    return best


def check(J, Jw, args, jax_fns):
    cams, X, w, feats, cam_idx, pt_idx = args
    if not np.allclose(Jw, -2.0 * w, rtol=1e-14, atol=0):
        raise SystemExit("weight-error derivatives wrong")
    report = {}
    # autograd on the first 200 observations, one jacobian per observation
    import autograd
    import autograd.numpy as anp
    ag = autograd.jacobian(lambda q, f: q[14] * (reference_project(anp, q[0:11], q[11:14]) - f))
    worst = 0.0
    for i in range(200):
        q = np.concatenate((cams[cam_idx[i]], X[pt_idx[i]], w[i:i + 1]))
        worst = max(worst, float(np.abs(ag(q, feats[i]) - J[i]).max()))
    report["autograd (first 200 observations)"] = worst
    # central finite differences on 5 observations
    worst = 0.0
    for i in (0, 1, 17, 1000, N_OBS - 1):
        q = np.concatenate((cams[cam_idx[i]], X[pt_idx[i]], w[i:i + 1]))
        for j in range(15):
            h = 1e-6 * max(1.0, abs(q[j]))
            qp, qm = q.copy(), q.copy()
            qp[j] += h
            qm[j] -= h
            fd = (residual15(qp, feats[i]) - residual15(qm, feats[i])) / (2 * h)
            worst = max(worst, float(np.abs(fd - J[i, :, j]).max()))
    report["central differences (5 observations)"] = worst
    if jax_fns is not None:
        Jj, Jwj = jax_fns[1](*args)
        report["jax (all observations)"] = float(max(np.abs(Jj - J).max(), np.abs(Jwj - Jw).max()))
    scale = float(np.abs(J).max())
    for name, err in report.items():
        limit = 1e-5 * scale if name.startswith("central") else 1e-10 * scale
        if err > limit:
            raise SystemExit(f"diffprog's Jacobian disagrees with {name}: max |difference| {err}")
    return report, scale


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats; the minimum is reported")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX even if it imports")
    parser.add_argument("--per-observation-limit", type=int, default=2000,
                        help="observations timed for the per-observation dp.jacobian loop (scaled to all)")
    args_ns = parser.parse_args(argv)
    print(f"diffprog {dp.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"autograd {version('autograd')}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    args = instance()
    cams, X, w, feats, cam_idx, pt_idx = args
    print(f"\n== bundle adjustment: {N_CAMS} cameras, {N_POINTS} points, {N_OBS} observations; "
          f"min of {args_ns.repeats} interleaved repeats")

    jax_fns = None if args_ns.no_jax else make_jax()
    err, werr = ba_objective(*args)
    J, Jw = diffprog_jacobian(*args)
    report, scale = check(J, Jw, args, jax_fns)
    print("  Jacobian checks, max |difference| (largest entry " + f"{scale:.3g}): "
          + ", ".join(f"{name} {v:.2g}" for name, v in report.items()))
    if jax_fns is not None:
        e_j, w_j = jax_fns[0](*args)
        assert np.allclose(np.asarray(e_j), err, rtol=1e-12, atol=1e-12) and np.allclose(np.asarray(w_j), werr)

    J2, Jw2 = diffprog_jacobian_grad(*args)
    if not (np.array_equal(J2, J) and np.array_equal(Jw2, Jw)):
        raise SystemExit("the dp.grad-of-seeded-sum Jacobian differs from the dp.vjp one")

    seeds = forward_seeds(N_OBS)
    J3, Jw3 = diffprog_jacobian_forward(*args, seeds)
    if not (np.allclose(J3, J, rtol=1e-12, atol=1e-12 * scale) and np.array_equal(Jw3, Jw)):
        raise SystemExit("the batched forward-mode Jacobian disagrees with the reverse-mode one")

    limit = args_ns.per_observation_limit
    J_obs = diffprog_jacobian_per_observation(*args, limit)        # compiles
    if not np.allclose(J_obs, J[:limit], rtol=1e-12, atol=1e-12 * scale):
        raise SystemExit("per-observation dp.jacobian disagrees with the differentiated loop")

    functions = {
        "objective, diffprog": lambda: ba_objective(*args),
        "Jacobian, diffprog (2 vjp rows of the loop)": lambda: diffprog_jacobian(*args),
        "Jacobian, diffprog (2 grads of seeded sum)": lambda: diffprog_jacobian_grad(*args),
        "Jacobian, diffprog (batched forward, 15 lanes)": lambda: diffprog_jacobian_forward(*args, seeds),
    }
    if jax_fns is not None:
        functions["objective, jax"] = lambda: jax_fns[0](*args)
        functions["Jacobian, jax (vmap jacfwd)"] = lambda: jax_fns[1](*args)
    times = interleaved_min(functions, args_ns.repeats)
    t_obs = timeit.Timer(lambda: diffprog_jacobian_per_observation(*args, limit)).timeit(1)
    times[f"Jacobian, diffprog per observation (dp.jacobian, {limit} obs, scaled)"] = t_obs * N_OBS / min(limit, N_OBS)

    # where the differentiated-loop Jacobian spends its time
    cam_obs, X_obs = cams[cam_idx], X[pt_idx]
    _, pullback = dp.vjp(residuals_per_observation, cam_obs, X_obs, w, feats)
    seed = np.zeros((N_OBS, 2))
    seed[:, 0] = 1.0
    parts = interleaved_min({
        "  part: dp.vjp(...) (runs the primal)": lambda: dp.vjp(residuals_per_observation, cam_obs, X_obs, w, feats),
        "  part: one pullback(seed)": lambda: pullback(seed),
        "  part: primal of the per-observation loop": lambda: residuals_per_observation(cam_obs, X_obs, w, feats),
    }, args_ns.repeats)

    for name, seconds in {**times, **parts}.items():
        print(f"  {name:<66}{seconds * 1e3:10.2f} ms")
    obj = times["objective, diffprog"]
    print(f"\n== summary")
    forward = times["Jacobian, diffprog (batched forward, 15 lanes)"] / obj
    print(f"  Jacobian (batched forward, 15 lanes) / objective   {forward:8.2f}  target <= {TARGET}: "
          f"{'ok' if forward <= TARGET else 'MISSED'}")
    ratio = times["Jacobian, diffprog (2 vjp rows of the loop)"] / obj
    print(f"  Jacobian (2 vjp rows) / objective, diffprog        {ratio:8.2f}  target <= {TARGET}: "
          f"{'ok' if ratio <= TARGET else 'MISSED'}")
    ratio2 = times["Jacobian, diffprog (2 grads of seeded sum)"] / obj
    print(f"  Jacobian (2 grads of seeded sum) / objective       {ratio2:8.2f}  target <= {TARGET}: "
          f"{'ok' if ratio2 <= TARGET else 'MISSED'}")
    name = [k for k in times if "per observation" in k][0]
    print(f"  Jacobian (per-observation dp.jacobian) / objective {times[name] / obj:8.2f}")
    if jax_fns is not None:
        print(f"  jax {jax_fns[2]}: Jacobian / objective             "
              f"{times['Jacobian, jax (vmap jacfwd)'] / times['objective, jax']:8.2f}")
        print(f"  diffprog Jacobian (batched forward) / jax Jacobian "
              f"{times['Jacobian, diffprog (batched forward, 15 lanes)'] / times['Jacobian, jax (vmap jacfwd)']:8.2f}")


if __name__ == "__main__":
    main()
