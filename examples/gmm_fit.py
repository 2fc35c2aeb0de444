"""Fitting a Gaussian mixture model by maximum likelihood: scipy's L-BFGS minimizes diffprog's compiled
negative log-likelihood using diffprog's gradient.

    python examples/gmm_fit.py [--points 1500] [--components 3] [--small]

The parametrization is the one of the GMM benchmark of Srajer, Kukelova & Fitzgibbon (2018) (see
benchmarks/gmm.py): unconstrained mixture logits `alphas` (K), `means` (K x D), and `icf` (K x D(D+1)/2), the
log-diagonal and the strict lower triangle of each component's inverse-covariance Cholesky factor Q, so that every
parameter vector is a valid mixture. The objective is written as a numpy user writes it: a loop over points and
components, matrix-vector products, a logsumexp helper, and a local buffer filled by a loop. A small Wishart-style
prior keeps the covariances away from degenerate ones.

    log p(x_i) = logsumexp_k( log softmax(alphas)_k + sum(log diag Q_k) - 0.5 |Q_k (x_i - mu_k)|^2 )
                 - D/2 log(2 pi)

The data are drawn from a known mixture; the script reports the recovered weights and means, and compares the
fitted log-likelihood with that of the true parameters.
"""
from __future__ import annotations

import argparse
import math
import time
from itertools import permutations

import numpy as np
from scipy.optimize import minimize

import diffprog as dp


def logsumexp(v):
    m = np.max(v)
    return m + np.log(np.sum(np.exp(v - m)))


def lower_factors(icf, k, d):
    """The K strictly lower-triangular parts of Q, unpacked from icf[:, d:] column by column."""
    Ls = np.zeros((k, d, d))
    for ik in range(k):
        idx = d
        for col in range(d):
            for row in range(col + 1, d):
                Ls[ik, row, col] = icf[ik, idx]
                idx += 1
    return Ls


@dp.differentiable
def negative_log_likelihood(alphas, means, icf, x, prior_strength):
    """Mean negative log-likelihood of the points `x` (N x D) under the mixture, plus the prior."""
    n = x.shape[0]
    d = x.shape[1]
    k = alphas.shape[0]
    Qdiags = np.exp(icf[:, :d])
    sum_qs = np.sum(icf[:, :d], axis=1)
    Ls = lower_factors(icf, k, d)
    log_weights = alphas - logsumexp(alphas)
    terms = np.zeros(k)
    total = 0.0
    for i in range(n):
        for ik in range(k):
            xc = x[i] - means[ik]
            Lxc = Qdiags[ik] * xc + Ls[ik] @ xc
            terms[ik] = log_weights[ik] + sum_qs[ik] - 0.5 * np.sum(Lxc * Lxc)
        total += logsumexp(terms)
    log_likelihood = total / n - 0.5 * d * math.log(2.0 * math.pi)
    # Wishart-style prior (as in the benchmark): penalizes very large precisions and very small ones.
    prior = 0.5 * (np.sum(Qdiags * Qdiags) + np.sum(icf[:, d:] * icf[:, d:])) - np.sum(sum_qs)
    return -log_likelihood + prior_strength * prior


def pack(alphas, means, icf):
    return np.concatenate([alphas, means.ravel(), icf.ravel()])


def unpack(theta, k, d):
    alphas = theta[:k]
    means = theta[k:k + k * d].reshape(k, d)
    icf = theta[k + k * d:].reshape(k, d * (d + 1) // 2)
    return alphas, means, icf


def sample_mixture(n, rng):
    """N points from a fixed 2-D mixture of three Gaussians, and its parameters in the model's form."""
    weights = np.array([0.5, 0.3, 0.2])
    means = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, 3.0]])
    covariances = np.array([[[0.6, 0.3], [0.3, 0.5]], [[0.3, -0.1], [-0.1, 0.8]], [[0.4, 0.0], [0.0, 0.2]]])
    labels = rng.choice(3, size=n, p=weights)
    x = np.array([rng.multivariate_normal(means[c], covariances[c]) for c in labels])
    icf = np.zeros((3, 3))
    for c in range(3):
        # The model needs a lower-triangular Q with Q^T Q = Sigma^-1 = P. With J the exchange matrix, the Cholesky
        # factor C of J P J gives P = U U^T for the upper-triangular U = J C J, so Q = U^T.
        P = np.linalg.inv(covariances[c])
        J = np.eye(2)[::-1]
        U = J @ np.linalg.cholesky(J @ P @ J) @ J
        Q = U.T
        icf[c] = [math.log(Q[0, 0]), math.log(Q[1, 1]), Q[1, 0]]
    return x, (np.log(weights), means, icf)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1500)
    parser.add_argument("--small", action="store_true", help="a quick run (smoke test): 300 points")
    args = parser.parse_args(argv)
    n = 300 if args.small else args.points
    k, d = 3, 2
    rng = np.random.default_rng(1)
    x, truth = sample_mixture(n, rng)
    prior_strength = 1e-3
    print(f"fitting a {k}-component Gaussian mixture to {n} points in {d} dimensions")

    def objective(theta):
        return negative_log_likelihood(*unpack(theta, k, d), x, prior_strength)

    value_and_grad = dp.value_and_grad(negative_log_likelihood, (0, 1, 2))

    def objective_and_gradient(theta):
        value, grads = value_and_grad(*unpack(theta, k, d), x, prior_strength)
        return value, pack(*grads)

    # Start: equal weights, unit covariances, means at k spread-out data points (farthest-point traversal from a
    # random one; the usual remedy for the local optima of mixture likelihoods).
    centers = [x[rng.integers(n)]]
    for _ in range(k - 1):
        distance = np.min([np.sum((x - c) ** 2, axis=1) for c in centers], axis=0)
        centers.append(x[np.argmax(distance)])
    start = pack(np.zeros(k), np.array(centers), np.zeros((k, d * (d + 1) // 2)))

    # Check the gradient against central differences before using it.
    _, g = objective_and_gradient(start)
    h = 1e-6
    fd = np.array([(objective(start + h * e) - objective(start - h * e)) / (2 * h) for e in np.eye(start.size)])
    error = float(np.abs(fd - g).max() / max(1.0, np.abs(fd).max()))
    print(f"gradient check against central differences: max relative error {error:.1e}")
    assert error < 1e-6, error

    t0 = time.perf_counter()
    result = minimize(objective_and_gradient, start, jac=True, method="L-BFGS-B")
    elapsed = time.perf_counter() - t0
    alphas, means, icf = unpack(result.x, k, d)
    weights = np.exp(alphas - alphas.max())
    weights /= weights.sum()
    true_value = negative_log_likelihood(*truth, x, prior_strength)
    print(f"L-BFGS: {result.nit} iterations, {result.nfev} objective+gradient evaluations, {elapsed:.2f} s "
          f"({result.message})")
    print(f"mean negative log-likelihood (with prior): start {objective(start):.4f}, fitted {result.fun:.4f}, "
          f"true parameters {true_value:.4f}")
    true_weights = np.exp(truth[0])
    order = min(permutations(range(k)), key=lambda p: np.abs(means[list(p)] - truth[1]).sum())
    print("component   true weight  fitted   true mean         fitted mean")
    for c, j in enumerate(order):
        print(f"  {c}          {true_weights[c]:.3f}       {weights[j]:.3f}    "
              f"({truth[1][c][0]:+.2f}, {truth[1][c][1]:+.2f})    ({means[j][0]:+.3f}, {means[j][1]:+.3f})")
    error = float(np.abs(means[list(order)] - truth[1]).max())
    print(f"largest error in a mean coordinate: {error:.3f}")
    assert result.fun <= true_value + 1e-6, "the fit is worse than the true parameters"
    return result


if __name__ == "__main__":
    main()
