"""Benchmark: the GMM objective of Srajer, Kukelova & Fitzgibbon (2018), differentiated by diffprog.

    python benchmarks/gmm.py [--small] [--repeats R] [--no-jax]

The objective is the Gaussian mixture log-likelihood with a Wishart prior, as defined in the paper (and in
ADBench's reference implementations): parameters alphas (K), means (K x D) and icf (K x D(D+1)/2: the log of
the diagonal of each inverse-covariance factor, then its strict lower triangle packed column by column); N
data points; constants wishart_gamma and wishart_m. The gradient is taken with respect to (alphas, means, icf).

Instances: D=10, K=25, N=1000 and D=64, K=100, N=1000 (the paper's instances with N=1000); `--small` runs only
D=10, K=25 with N=200. Random data with a fixed seed.

Compared in the same process, min over interleaved repeats:
  - diffprog, two ways a numpy user might write the objective, each decorated with @dp.differentiable and
    differentiated with dp.grad(f, (0, 1, 2)):
      "loops":    a loop over points and a loop over components, vector math per (point, component)
                  (x[i] - means[k], Qdiag * xc + L @ xc, np.sum), a local buffer of K log-terms, logsumexp;
      "rowwise":  a loop over points only, vectorized over components with broadcasting and np.sum(axis=...);
  - a hand-written numba objective and gradient;
  - autograd (fully vectorized numpy, as in ADBench's Python version);
  - jax.jit(jax.grad(...)) of the same vectorized code, when jax imports (an optional `bench` dependency).
Before timing, every gradient is checked against diffprog's, and diffprog's against central finite differences
on a tiny instance.

Target (issue 3): gradient time / objective time <= 3.

Tape memory: for each size, the bytes the generated adjoint stores for the backward sweep per point (per
iteration of the loop over points), counted from its own pushes, measured on the uncompiled generated code
(tracemalloc) and on the compiled gradient (peak resident memory), each from two numbers of points
(benchmarks/tape_memory.py). The hand-written gradient stores nothing per point.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import timeit

import numba
import numpy as np
from scipy.special import multigammaln

import diffprog as dp
import tape_memory

TARGET = 3.0


# ----------------------------------------------------------------------------------------------------------
# diffprog: the objective as a numpy user writes it
# ----------------------------------------------------------------------------------------------------------


def logsumexp(v):
    m = np.max(v)
    return m + np.log(np.sum(np.exp(v - m)))


def log_gamma_distrib(a, p):
    """log of the multivariate gamma function Gamma_p(a) (scipy.special.multigammaln)."""
    out = 0.25 * p * (p - 1) * math.log(math.pi)
    for j in range(1, p + 1):
        out += math.lgamma(a + 0.5 * (1 - j))
    return out


def log_wishart_constant(d, k, wishart_gamma, wishart_m):
    n = d + wishart_m + 1.0
    C = n * d * (math.log(wishart_gamma) - 0.5 * math.log(2.0)) - log_gamma_distrib(0.5 * n, d)
    return k * C


def lower_factors(icf, k, d):
    """The K lower-triangular factors L (zero diagonal), unpacked from icf[:, d:] column by column."""
    Ls = np.zeros((k, d, d))
    for ik in range(k):
        idx = d
        for col in range(d):
            for row in range(col + 1, d):
                Ls[ik, row, col] = icf[ik, idx]
                idx += 1
    return Ls


@dp.differentiable
def gmm_objective(alphas, means, icf, x, wishart_gamma, wishart_m):
    n = x.shape[0]
    d = x.shape[1]
    k = alphas.shape[0]
    Qdiags = np.exp(icf[:, :d])
    sum_qs = np.sum(icf[:, :d], axis=1)
    Ls = lower_factors(icf, k, d)
    main_term = np.zeros(k)
    slse = 0.0
    for i in range(n):
        for ik in range(k):
            xc = x[i] - means[ik]
            Lxc = Qdiags[ik] * xc + Ls[ik] @ xc
            main_term[ik] = alphas[ik] + sum_qs[ik] - 0.5 * np.sum(Lxc * Lxc)
        slse += logsumexp(main_term)
    frobenius = np.sum(Qdiags * Qdiags) + np.sum(icf[:, d:] * icf[:, d:])
    prior = 0.5 * wishart_gamma * wishart_gamma * frobenius - wishart_m * np.sum(sum_qs)
    const = -n * d * 0.5 * math.log(2.0 * math.pi)
    return (const + slse - n * logsumexp(alphas) + prior
            - log_wishart_constant(d, k, wishart_gamma, wishart_m))


@dp.differentiable
def gmm_objective_rowwise(alphas, means, icf, x, wishart_gamma, wishart_m):
    n = x.shape[0]
    d = x.shape[1]
    k = alphas.shape[0]
    Qdiags = np.exp(icf[:, :d])
    sum_qs = np.sum(icf[:, :d], axis=1)
    Ls = lower_factors(icf, k, d)
    slse = 0.0
    for i in range(n):
        xc = x[i] - means                                         # K x D
        Lxc = Qdiags * xc + np.sum(Ls * xc[:, None, :], axis=2)   # K x D   (np.newaxis: see docs)
        slse += logsumexp(alphas + sum_qs - 0.5 * np.sum(Lxc * Lxc, axis=1))
    frobenius = np.sum(Qdiags * Qdiags) + np.sum(icf[:, d:] * icf[:, d:])
    prior = 0.5 * wishart_gamma * wishart_gamma * frobenius - wishart_m * np.sum(sum_qs)
    const = -n * d * 0.5 * math.log(2.0 * math.pi)
    return (const + slse - n * logsumexp(alphas) + prior
            - log_wishart_constant(d, k, wishart_gamma, wishart_m))


# ----------------------------------------------------------------------------------------------------------
# Hand-written numba objective and gradient
# ----------------------------------------------------------------------------------------------------------


@numba.njit(cache=False)
def _unpack(icf, k, d):
    Qdiags = np.exp(icf[:, :d])
    Ls = np.zeros((k, d, d))
    for ik in range(k):
        idx = d
        for col in range(d):
            for row in range(col + 1, d):
                Ls[ik, row, col] = icf[ik, idx]
                idx += 1
    return Qdiags, Ls


@numba.njit(cache=False)
def _main_terms(alphas, means, icf, Qdiags, Ls, xi, main, Lxc, xc):
    """main[k] = alphas[k] + sum(icf[k, :d]) - 0.5 |Q_k (x_i - mu_k)|^2, keeping xc and Lxc per component."""
    k, d = means.shape
    for ik in range(k):
        sq = 0.0
        sum_q = 0.0
        for r in range(d):
            xc[ik, r] = xi[r] - means[ik, r]
        for r in range(d):
            v = Qdiags[ik, r] * xc[ik, r]
            for c in range(r):
                v += Ls[ik, r, c] * xc[ik, c]
            Lxc[ik, r] = v
            sq += v * v
            sum_q += icf[ik, r]
        main[ik] = alphas[ik] + sum_q - 0.5 * sq


@numba.njit(cache=False)
def _lse(v):
    m = v.max()
    s = 0.0
    for j in range(v.shape[0]):
        s += math.exp(v[j] - m)
    return m + math.log(s)


@numba.njit(cache=False)
def hand_objective(alphas, means, icf, x, wishart_gamma, wishart_m, constant):
    n, d = x.shape
    k = alphas.shape[0]
    Qdiags, Ls = _unpack(icf, k, d)
    main = np.empty(k)
    Lxc = np.empty((k, d))
    xc = np.empty((k, d))
    slse = 0.0
    for i in range(n):
        _main_terms(alphas, means, icf, Qdiags, Ls, x[i], main, Lxc, xc)
        slse += _lse(main)
    frob = 0.0
    sum_qs = 0.0
    for ik in range(k):
        for j in range(d):
            frob += Qdiags[ik, j] * Qdiags[ik, j]
            sum_qs += icf[ik, j]
        for j in range(d, icf.shape[1]):
            frob += icf[ik, j] * icf[ik, j]
    return (-n * d * 0.5 * math.log(2.0 * math.pi) + slse - n * _lse(alphas)
            + 0.5 * wishart_gamma * wishart_gamma * frob - wishart_m * sum_qs - constant)


@numba.njit(cache=False)
def hand_gradient(alphas, means, icf, x, wishart_gamma, wishart_m, constant):
    """One pass over the points: the K log-terms of point i (keeping x_i - mu_k and Q_k (x_i - mu_k)), their
    softmax, then the backward step for each component; the prior in closed form."""
    n, d = x.shape
    k = alphas.shape[0]
    Qdiags, Ls = _unpack(icf, k, d)
    main = np.empty(k)
    Lxc = np.empty((k, d))
    xc = np.empty((k, d))
    g_alphas = np.zeros(k)
    g_means = np.zeros((k, d))
    g_icf = np.zeros(icf.shape)
    g_L = np.zeros((k, d, d))
    dxc = np.empty(d)
    for i in range(n):
        _main_terms(alphas, means, icf, Qdiags, Ls, x[i], main, Lxc, xc)
        m = main.max()
        s = 0.0
        for ik in range(k):
            main[ik] = math.exp(main[ik] - m)
            s += main[ik]
        for ik in range(k):
            p = main[ik] / s                     # d lse / d main[ik]
            g_alphas[ik] += p
            for r in range(d):
                dl = -p * Lxc[ik, r]             # d / d Lxc[ik, r]
                g_icf[ik, r] += p + dl * xc[ik, r] * Qdiags[ik, r]
                dxc[r] = Qdiags[ik, r] * dl
            for r in range(d):
                dl = -p * Lxc[ik, r]
                for c in range(r):
                    g_L[ik, r, c] += dl * xc[ik, c]
                    dxc[c] += Ls[ik, r, c] * dl
            for r in range(d):
                g_means[ik, r] -= dxc[r]
    # - n * logsumexp(alphas)
    ma = alphas.max()
    sa = 0.0
    for ik in range(k):
        sa += math.exp(alphas[ik] - ma)
    g2 = wishart_gamma * wishart_gamma
    for ik in range(k):
        g_alphas[ik] -= n * math.exp(alphas[ik] - ma) / sa
        for j in range(d):
            g_icf[ik, j] += g2 * Qdiags[ik, j] * Qdiags[ik, j] - wishart_m
        idx = d
        for col in range(d):
            for row in range(col + 1, d):
                g_icf[ik, idx] += g_L[ik, row, col] + g2 * icf[ik, idx]
                idx += 1
    return g_alphas, g_means, g_icf


# ----------------------------------------------------------------------------------------------------------
# autograd and JAX: the vectorized formulation (ADBench's Python style)
# ----------------------------------------------------------------------------------------------------------


def vectorized_objective(xp, einsum, alphas, means, icf, x, wishart_gamma, wishart_m, scatter, constant):
    """xp is autograd.numpy or jax.numpy. scatter (P x D x D) maps the packed lower triangle to L."""
    n, d = x.shape
    Qdiags = xp.exp(icf[:, :d])
    sum_qs = xp.sum(icf[:, :d], 1)
    Ls = einsum("kp,prc->krc", icf[:, d:], scatter)
    xc = x[:, None, :] - means[None, :, :]                              # N x K x D
    Lxc = Qdiags[None] * xc + einsum("krc,nkc->nkr", Ls, xc)
    inner = alphas[None] + sum_qs[None] - 0.5 * xp.sum(Lxc * Lxc, 2)    # N x K
    m = xp.max(inner, 1)
    lse = xp.log(xp.sum(xp.exp(inner - m[:, None]), 1)) + m
    ma = xp.max(alphas)
    lse_alphas = xp.log(xp.sum(xp.exp(alphas - ma))) + ma
    frobenius = xp.sum(Qdiags * Qdiags) + xp.sum(icf[:, d:] * icf[:, d:])
    prior = 0.5 * wishart_gamma * wishart_gamma * frobenius - wishart_m * xp.sum(sum_qs)
    return -n * d * 0.5 * math.log(2 * math.pi) + xp.sum(lse) - n * lse_alphas + prior - constant


def scatter_matrix(d):
    pairs = [(row, col) for col in range(d) for row in range(col + 1, d)]
    E = np.zeros((len(pairs), d, d))
    for j, (row, col) in enumerate(pairs):
        E[j, row, col] = 1.0
    return E


def make_autograd(d):
    import autograd
    import autograd.numpy as anp
    E = scatter_matrix(d)

    def objective(alphas, means, icf, x, wishart_gamma, wishart_m, constant):
        return vectorized_objective(anp, anp.einsum, alphas, means, icf, x, wishart_gamma, wishart_m, E, constant)

    return objective, autograd.grad(objective, (0, 1, 2))


def make_jax(d):
    """(objective, gradient) jitted, or None when jax does not import."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return None
    jax.config.update("jax_enable_x64", True)
    E = jnp.asarray(scatter_matrix(d))

    def objective(alphas, means, icf, x, wishart_gamma, wishart_m, constant):
        return vectorized_objective(jnp, jnp.einsum, alphas, means, icf, x, wishart_gamma, wishart_m, E, constant)

    value = jax.jit(objective)
    gradient = jax.jit(jax.grad(objective, (0, 1, 2)))

    def run_value(*args):
        return value(*args).block_until_ready()

    def run_gradient(*args):
        return [np.asarray(g) for g in jax.block_until_ready(gradient(*args))]

    return run_value, run_gradient, jax.__version__


# ----------------------------------------------------------------------------------------------------------


def instance(d, k, n, seed=0):
    rng = np.random.default_rng(seed)
    alphas = rng.normal(size=k)
    means = rng.random((k, d))
    icf = rng.normal(size=(k, d * (d + 1) // 2)) * 0.1
    x = rng.random((n, d))
    return alphas, means, icf, x, 1.0, 0.0


def interleaved_min(functions: dict, repeats: int) -> dict:
    """Seconds per call: min over `repeats`, each repeat timing every function once, in rotating order."""
    best = {name: math.inf for name in functions}
    names = list(functions)
    for r in range(repeats):
        for name in names[r % len(names):] + names[:r % len(names)]:
            best[name] = min(best[name], timeit.Timer(functions[name]).timeit(1))
    return best


def max_rel_diff(a, b):
    return max(float(np.abs(u - v).max() / max(np.abs(v).max(), 1e-300)) for u, v in zip(a, b))


def finite_difference_check():
    """diffprog's gradient (both formulations) against central differences on every parameter (D=3, K=2, N=4),
    with wishart_m != 0 so that every term of the prior is exercised."""
    alphas, means, icf, x, gamma, _ = instance(3, 2, 4, seed=1)
    wm = 0.5
    args = [alphas, means, icf]
    worst = 0.0
    for f in (gmm_objective, gmm_objective_rowwise):
        grads = dp.grad(f, (0, 1, 2))(alphas, means, icf, x, gamma, wm)
        for a, g in zip(range(3), grads):
            fd = np.zeros(args[a].shape)
            for index in np.ndindex(*args[a].shape):
                h = 1e-6
                plus = [p.copy() for p in args]
                minus = [p.copy() for p in args]
                plus[a][index] += h
                minus[a][index] -= h
                fd[index] = (f(*plus, x, gamma, wm) - f(*minus, x, gamma, wm)) / (2 * h)
            err = float(np.abs(fd - g).max())
            if err > 1e-6:
                raise SystemExit(f"{f.__name__}: gradient of argument {a} disagrees with finite differences: "
                                 f"max error {err}\n{g}\n{fd}")
            worst = max(worst, err)
    value = gmm_objective(alphas, means, icf, x, gamma, wm)
    hand = hand_gradient(alphas, means, icf, x, gamma, wm, log_wishart_constant(3, 2, gamma, wm))
    if max_rel_diff(hand, grads) > 1e-10:
        raise SystemExit("hand-written gradient disagrees on the tiny instance")
    return worst, value


def run_size(d, k, n, repeats, use_jax):
    alphas, means, icf, x, gamma, wm = args = instance(d, k, n)
    constant = log_wishart_constant(d, k, gamma, wm)
    # the constant term written with math.lgamma agrees with scipy's multigammaln
    nn = d + wm + 1.0
    scipy_constant = k * (nn * d * (math.log(gamma) - 0.5 * math.log(2.0)) - multigammaln(0.5 * nn, d))
    assert math.isclose(constant, scipy_constant, rel_tol=1e-12), (constant, scipy_constant)
    hargs = args + (constant,)
    ag_objective, ag_gradient = make_autograd(d)
    jx = make_jax(d) if use_jax else None

    grad_loops = dp.grad(gmm_objective, (0, 1, 2))
    grad_rows = dp.grad(gmm_objective_rowwise, (0, 1, 2))

    # warm up (compile) and check everything agrees before timing
    values = {
        "diffprog loops": gmm_objective(*args),
        "diffprog rowwise": gmm_objective_rowwise(*args),
        "hand numba": hand_objective(*hargs),
        "autograd": float(ag_objective(*hargs)),
    }
    reference = grad_loops(*args)
    grads = {
        "diffprog rowwise": grad_rows(*args),
        "hand numba": hand_gradient(*hargs),
        "autograd": ag_gradient(*hargs),
    }
    if jx is not None:
        values["jax"] = float(jx[0](*hargs))
        grads["jax"] = jx[1](*hargs)
    for name, v in values.items():
        if not math.isclose(v, values["diffprog loops"], rel_tol=1e-10):
            raise SystemExit(f"objective of {name} disagrees: {v} vs {values['diffprog loops']}")
    diffs = {}
    for name, g in grads.items():
        diffs[name] = max_rel_diff(g, reference)
        if diffs[name] > 1e-9:
            raise SystemExit(f"gradient of {name} disagrees with diffprog's: max relative difference {diffs[name]}")

    functions = {
        "objective, diffprog loops": lambda: gmm_objective(*args),
        "gradient, diffprog loops": lambda: grad_loops(*args),
        "objective, diffprog rowwise": lambda: gmm_objective_rowwise(*args),
        "gradient, diffprog rowwise": lambda: grad_rows(*args),
        "objective, hand numba": lambda: hand_objective(*hargs),
        "gradient, hand numba": lambda: hand_gradient(*hargs),
        "objective, autograd": lambda: ag_objective(*hargs),
        "gradient, autograd": lambda: ag_gradient(*hargs),
    }
    if jx is not None:
        functions["objective, jax"] = lambda: jx[0](*hargs)
        functions["gradient, jax"] = lambda: jx[1](*hargs)
    times = interleaved_min(functions, repeats)
    return values["diffprog loops"], diffs, times, jx[2] if jx else None


def tape_section(d, k):
    """Tape bytes per point for both formulations (D=10: compiled runs at N=1000 and 3000; larger D: fewer
    points, since the rowwise tape holds a K x D x D array per point)."""
    compiled_counts = (1000, 3000) if d * d * k <= 10**4 else (50, 150)
    return {f.__name__: tape_memory.per_iteration(f, (0, 1, 2), lambda n: instance(d, k, n), (16, 32),
                                                  compiled_counts)
            for f in (gmm_objective, gmm_objective_rowwise)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="only D=10, K=25, N=200 (a quick run)")
    parser.add_argument("--repeats", type=int, default=5, help="timing repeats; the minimum is reported")
    parser.add_argument("--no-jax", action="store_true", help="skip JAX even if it imports")
    args = parser.parse_args(argv)
    sizes = [(10, 25, 200)] if args.small else [(10, 25, 1000), (64, 100, 1000)]

    from importlib.metadata import version
    print(f"diffprog {dp.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"autograd {version('autograd')}, Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs")

    worst, value = finite_difference_check()
    print(f"\nfinite-difference check (D=3, K=2, N=4, wishart_m=0.5; both diffprog formulations, every parameter): "
          f"max |diffprog - central difference| = {worst:.2g}; hand-written gradient agrees")

    summary, tape_summary = [], []
    for d, k, n in sizes:
        print(f"\n== D={d}, K={k}, N={n}: min of {args.repeats} interleaved repeats")
        value, diffs, times, jax_version = run_size(d, k, n, args.repeats, not args.no_jax)
        print(f"  objective {value:.12g}; max relative gradient difference vs diffprog loops: "
              + ", ".join(f"{name} {diff:.1e}" for name, diff in diffs.items()))
        if jax_version:
            print(f"  jax {jax_version} (x64, cpu)")
        for name, seconds in times.items():
            print(f"  {name:<30}{seconds * 1e3:10.2f} ms")
        tools = ["diffprog loops", "diffprog rowwise", "hand numba", "autograd"] + (["jax"] if jax_version else [])
        print(f"  {'tool':<18}{'gradient/objective':>20}{'gradient/hand-gradient':>24}{'gradient/hand-objective':>25}")
        for tool in tools:
            g = times[f"gradient, {tool}"]
            ratio = g / times[f"objective, {tool}"]
            mark = f"  target <= {TARGET}: {'ok' if ratio <= TARGET else 'MISSED'}" if tool.startswith("diffprog") else ""
            print(f"  {tool:<18}{ratio:20.2f}{g / times['gradient, hand numba']:24.2f}"
                  f"{g / times['objective, hand numba']:25.2f}{mark}")
            summary.append((d, k, n, tool, times[f"objective, {tool}"], g, ratio))
        print(f"  tape bytes per point (iteration of the loop over points); hand-written gradient: 0")
        tapes = tape_section(d, k)
        for name, figures in tapes.items():
            print(f"  {name}:")
            print("\n".join(tape_memory.report(figures, indent="    ")))
        tape_summary.append((d, k, tapes))

    print("\n== summary (gradient / objective of the same tool)")
    for d, k, n, tool, obj, g, ratio in summary:
        print(f"  D={d:<3} K={k:<4} N={n:<5} {tool:<18} objective {obj * 1e3:9.2f} ms  gradient {g * 1e3:9.2f} ms"
              f"  ratio {ratio:6.2f}")
    print("\n== tape bytes per point: counted (payload) / uncompiled (tracemalloc) / compiled (peak RSS)")
    for d, k, tapes in tape_summary:
        for name, t in tapes.items():
            compiled = "n/a" if t["compiled"] is None else f"{t['compiled']:,.0f}"
            print(f"  D={d:<3} K={k:<4} {name:<24} {t['counted']:>11,.0f} / {t['uncompiled']:>11,.0f} / "
                  f"{compiled:>11}")


if __name__ == "__main__":
    main()
