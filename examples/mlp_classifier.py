"""A small neural network (one hidden tanh layer) trained with plain gradient descent to separate two interleaved
spirals that numpy generates.

    python examples/mlp_classifier.py [--points 400] [--hidden 16] [--epochs 2000] [--small]

The model and its loss are ordinary numpy code (matrix products, broadcasting, np.tanh, a numerically stable
logistic loss, np.mean) decorated with @diffprog.differentiable. dp.value_and_grad gives the loss and the
gradients with respect to all four parameter arrays from one compiled adjoint pass per step. The gradient is
checked against central finite differences before training, and the script reports training and test accuracy.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import diffprog as dp


def two_spirals(points, noise, rng):
    """`points` 2-D points on two interleaved spirals, labels +1 and -1."""
    half = points // 2
    t = np.sqrt(rng.random(half)) * 3.0 * np.pi
    arm = np.stack([t * np.cos(t), t * np.sin(t)], axis=1) / (3.0 * np.pi)
    X = np.concatenate([arm, -arm]) + noise * rng.normal(size=(2 * half, 2))
    y = np.concatenate([np.ones(half), -np.ones(half)])
    return X, y


def forward(W1, b1, w2, b2, X):
    """The network's score for each row of X (a helper: diffprog inlines it)."""
    hidden = np.tanh(X @ W1 + b1)
    return hidden @ w2 + b2


@dp.differentiable
def loss(W1, b1, w2, b2, X, y, weight_decay):
    """Mean logistic loss log(1 + exp(-y * score)), written stably, plus L2 weight decay."""
    margin = y * forward(W1, b1, w2, b2, X)
    data = np.mean(np.maximum(-margin, 0.0) + np.log1p(np.exp(-np.abs(margin))))
    return data + weight_decay * (np.sum(W1 * W1) + np.sum(w2 * w2))


def accuracy(params, X, y):
    return float(np.mean(np.sign(forward(*params, X)) == y))


def check_gradient(params, X, y, decay, rng):
    """Directional derivatives of the loss along random directions: diffprog vs central differences."""
    grads = dp.grad(loss, (0, 1, 2, 3))(*params, X, y, decay)
    worst = 0.0
    for _ in range(3):
        directions = [rng.normal(size=np.shape(p)) for p in params]
        exact = sum(float(np.sum(g * d)) for g, d in zip(grads, directions))
        h = 1e-6
        up = [p + h * d for p, d in zip(params, directions)]
        down = [p - h * d for p, d in zip(params, directions)]
        fd = (loss(*up, X, y, decay) - loss(*down, X, y, decay)) / (2 * h)
        worst = max(worst, abs(exact - fd) / max(1.0, abs(fd)))
    return worst


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=400, help="training points (as many test points)")
    parser.add_argument("--hidden", type=int, default=16, help="hidden units")
    parser.add_argument("--epochs", type=int, default=3000, help="full-batch gradient-descent steps")
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--small", action="store_true", help="a quick run (smoke test): 100 points, 300 steps")
    args = parser.parse_args(argv)
    points, epochs = (100, 300) if args.small else (args.points, args.epochs)

    rng = np.random.default_rng(0)
    X, y = two_spirals(points, 0.02, rng)
    X_test, y_test = two_spirals(points, 0.02, rng)
    h = args.hidden
    params = [rng.normal(size=(2, h)) * 2.0, rng.normal(size=h), rng.normal(size=h) / np.sqrt(h), 0.0]
    decay = 1e-4
    print(f"two spirals: {len(y)} training points, a 2-{h}-1 tanh network, {epochs} gradient-descent steps")

    error = check_gradient(params, X, y, decay, rng)
    print(f"gradient check against central differences: max relative error {error:.1e}")
    assert error < 1e-6, error

    step = dp.value_and_grad(loss, (0, 1, 2, 3))
    start = time.perf_counter()
    first = None
    for epoch in range(epochs):
        value, grads = step(*params, X, y, decay)
        first = value if first is None else first
        if epoch % max(1, epochs // 10) == 0:
            print(f"  step {epoch:5d}  loss {value:.4f}  training accuracy {accuracy(params, X, y):.3f}")
        params = [p - args.rate * g for p, g in zip(params, grads)]
    elapsed = time.perf_counter() - start
    final = loss(*params, X, y, decay)
    train, test = accuracy(params, X, y), accuracy(params, X_test, y_test)
    print(f"loss {first:.4f} -> {final:.4f}; training accuracy {train:.3f}, test accuracy {test:.3f}")
    print(f"{epochs} steps in {elapsed:.2f} s ({1e3 * elapsed / epochs:.3f} ms per step, including compilation)")
    assert final < first
    return train, test


if __name__ == "__main__":
    main()
