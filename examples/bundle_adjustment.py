"""Bundle adjustment with scipy.optimize.least_squares, using diffprog's sparse Jacobian as `jac=`.

    python examples/bundle_adjustment.py [--cameras 8] [--points 300] [--small]

Several cameras photograph a cloud of 3-D points; we observe every point's 2-D image in every camera (with pixel
noise) and recover the camera poses and the points from a perturbed start by minimizing the reprojection error.
The camera model is the one of the bundle-adjustment benchmark of Srajer, Kukelova & Fitzgibbon (2018) (see
benchmarks/ba.py): Rodrigues rotation (with a branch for the zero angle), perspective division, radial
distortion, focal length and principal point, written as ordinary numpy code.

The residual vector has two rows per observation, and each row depends on only 6 camera parameters (rotation and
center; the intrinsics are known here) and 3 point coordinates, so the Jacobian is sparse. diffprog differentiates
the loop over observations written on per-observation copies of the cameras and points
(`cams[cam_idx]`, `X[pt_idx]`): since observation i's residuals depend only on copy i, one reverse pass seeded with
the x-residuals and one seeded with the y-residuals give every observation's two Jacobian rows at once (two
`pullback` calls of one `dp.vjp`). The rows are then placed into a `scipy.sparse.csr_matrix` with the
observation's camera and point columns, which is what least_squares calls through `jac=`. Camera 0 is held fixed
(it defines the coordinate frame). The Jacobian is checked against central finite differences first.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.optimize import least_squares
from scipy.sparse import csr_matrix

import diffprog as dp

CAM_FREE = 6  # rotation (3) and center (3) are estimated; focal length, principal point, distortion are known


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


def project(cam, X):
    """cam: rotation (3), center (3), focal length, principal point (2), radial distortion (2)."""
    Xcam = rodrigues_rotate_point(cam[0:3], X - cam[3:6])
    proj = Xcam[0:2] / Xcam[2]
    rsq = np.sum(proj * proj)
    distorted = proj * (1.0 + cam[9] * rsq + cam[10] * rsq * rsq)
    return distorted * cam[6] + cam[7:9]


@dp.differentiable
def reprojection_errors(cam_obs, X_obs, feats):
    """Residuals (p x 2) of p observations; row i uses camera cam_obs[i] and point X_obs[i]."""
    p = feats.shape[0]
    err = np.zeros((p, 2))
    for i in range(p):
        err[i] = project(cam_obs[i], X_obs[i]) - feats[i]
    return err


class Problem:
    """The unknowns are packed as [cameras 1..n-1 (6 each), points (3 each)]; camera 0 is fixed."""

    def __init__(self, cams, feats, cam_idx, pt_idx, n_points):
        self.cams, self.feats, self.cam_idx, self.pt_idx = cams, feats, cam_idx, pt_idx
        self.n_cams, self.n_points = cams.shape[0], n_points
        self.camera_offset = (self.n_cams - 1) * CAM_FREE
        self.sparsity = self._pattern()

    def pack(self, cams, X):
        return np.concatenate([cams[1:, :CAM_FREE].ravel(), X.ravel()])

    def unpack(self, z):
        cams = self.cams.copy()
        cams[1:, :CAM_FREE] = z[:self.camera_offset].reshape(self.n_cams - 1, CAM_FREE)
        return cams, z[self.camera_offset:].reshape(self.n_points, 3)

    def residuals(self, z):
        cams, X = self.unpack(z)
        return reprojection_errors(cams[self.cam_idx], X[self.pt_idx], self.feats).ravel()

    def _pattern(self):
        """For observation i: the column of every nonzero of its two rows (camera entries, then point entries)."""
        p = self.feats.shape[0]
        cam_cols = (self.cam_idx[:, None] - 1) * CAM_FREE + np.arange(CAM_FREE)      # p x 6 (< 0: camera 0)
        pt_cols = self.camera_offset + 3 * self.pt_idx[:, None] + np.arange(3)        # p x 3
        cols = np.concatenate([cam_cols, pt_cols], axis=1)                             # p x 9
        keep = np.concatenate([np.repeat(self.cam_idx[:, None] != 0, CAM_FREE, axis=1),
                               np.ones((p, 3), dtype=bool)], axis=1)
        rows = np.repeat(np.arange(2 * p).reshape(p, 2, 1), cols.shape[1], axis=2)    # p x 2 x 9
        cols2 = np.broadcast_to(cols[:, None, :], rows.shape)
        keep2 = np.broadcast_to(keep[:, None, :], rows.shape)
        return rows[keep2], cols2[keep2], keep2

    def jacobian(self, z):
        """The sparse Jacobian of `residuals`: two reverse passes of diffprog's adjoint, scattered into CSR."""
        cams, X = self.unpack(z)
        _, pullback = dp.vjp(reprojection_errors, cams[self.cam_idx], X[self.pt_idx], self.feats)
        p = self.feats.shape[0]
        blocks = np.empty((p, 2, CAM_FREE + 3))
        for c in range(2):
            seed = np.zeros((p, 2))
            seed[:, c] = 1.0
            d_cam, d_X, _ = pullback(seed)            # row i: d err[i, c] / d (camera copy i, point copy i)
            blocks[:, c, :CAM_FREE] = d_cam[:, :CAM_FREE]
            blocks[:, c, CAM_FREE:] = d_X
        rows, cols, keep = self.sparsity
        return csr_matrix((blocks[keep], (rows, cols)), shape=(2 * p, self.camera_offset + 3 * self.n_points))


def make_scene(n_cams, n_points, noise, rng):
    """Cameras on a circle looking at a point cloud near the origin; every camera sees every point."""
    X = rng.normal(size=(n_points, 3))
    cams = np.zeros((n_cams, 11))
    for j in range(n_cams):
        angle = 2.0 * np.pi * j / n_cams * 0.25  # spread over a quarter circle
        center = np.array([8.0 * np.sin(angle), 0.3 * rng.normal(), -8.0 * np.cos(angle)])
        cams[j, 0:3] = [0.0, angle, 0.0]        # rotation about the vertical axis: look at the origin
        cams[j, 3:6] = center
        cams[j, 6] = 500.0                       # focal length in pixels
        cams[j, 9] = 0.01                        # a little radial distortion
    cam_idx = np.repeat(np.arange(n_cams), n_points)
    pt_idx = np.tile(np.arange(n_points), n_cams)
    feats = reprojection_errors(cams[cam_idx], X[pt_idx], np.zeros((cam_idx.size, 2)))
    feats = feats + noise * rng.normal(size=feats.shape)
    return cams, X, feats, cam_idx, pt_idx


def check_jacobian(problem, z, rng):
    J = problem.jacobian(z)
    worst = 0.0
    for j in rng.choice(z.size, 12, replace=False):
        h = 1e-6 * max(1.0, abs(z[j]))
        e = np.zeros(z.size)
        e[j] = h
        fd = (problem.residuals(z + e) - problem.residuals(z - e)) / (2 * h)
        column = J[:, j].toarray().ravel()
        worst = max(worst, float(np.abs(fd - column).max() / max(1.0, np.abs(fd).max())))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cameras", type=int, default=8)
    parser.add_argument("--points", type=int, default=300)
    parser.add_argument("--noise", type=float, default=0.5, help="pixel noise")
    parser.add_argument("--small", action="store_true", help="a quick run (smoke test): 4 cameras, 40 points")
    args = parser.parse_args(argv)
    n_cams, n_points = (4, 40) if args.small else (args.cameras, args.points)
    rng = np.random.default_rng(0)
    cams, X, feats, cam_idx, pt_idx = make_scene(n_cams, n_points, args.noise, rng)
    problem = Problem(cams, feats, cam_idx, pt_idx, n_points)

    # Start from perturbed poses and points.
    start_cams = cams.copy()
    start_cams[1:, 0:3] += 0.05 * rng.normal(size=(n_cams - 1, 3))
    start_cams[1:, 3:6] += 0.3 * rng.normal(size=(n_cams - 1, 3))
    z0 = problem.pack(start_cams, X + 0.2 * rng.normal(size=X.shape))
    J = problem.jacobian(z0)
    print(f"bundle adjustment: {n_cams} cameras, {n_points} points, {feats.shape[0]} observations; "
          f"{z0.size} unknowns, Jacobian {J.shape[0]} x {J.shape[1]} with {J.nnz} nonzeros "
          f"({100 * J.nnz / (J.shape[0] * J.shape[1]):.1f}% dense)")
    error = check_jacobian(problem, z0, rng)
    print(f"Jacobian check against central differences (12 columns): max relative error {error:.1e}")
    assert error < 1e-6, error

    def rms(z):
        return float(np.sqrt(np.mean(problem.residuals(z) ** 2)))

    t0 = time.perf_counter()
    result = least_squares(problem.residuals, z0, jac=problem.jacobian, method="trf", tr_solver="lsmr",
                           x_scale="jac")
    elapsed = time.perf_counter() - t0
    print(f"least_squares: {result.nfev} residual and {result.njev} Jacobian evaluations, {elapsed:.2f} s "
          f"({result.message})")
    print(f"RMS reprojection error: start {rms(z0):.2f} px, solution {rms(result.x):.3f} px "
          f"(pixel noise {args.noise} px; at the true scene {rms(problem.pack(cams, X)):.3f} px)")
    assert rms(result.x) <= rms(problem.pack(cams, X)) + 1e-6, "did not reach the noise level"
    return result


if __name__ == "__main__":
    main()
