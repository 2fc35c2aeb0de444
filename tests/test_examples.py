"""Smoke test of the examples gallery: every examples/NAME.py runs with its small size and reports success.

Each example runs in its own subprocess, as a user runs it (`python examples/NAME.py ...`), from a temporary
working directory (so nothing is written into the checkout). DIFFPROG_CACHE_DIR is inherited, so a warm cache makes
this fast; cold, the compilation of the examples' gradients dominates (about a minute on 2 cores).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

# name -> (arguments for a small, quick run, a line the example prints when it achieved its goal)
SMALL_RUNS = {
    "quickstart": ([], "Generated adjoint"),
    "quaternion_pose": (["--points", "200", "--steps", "40", "--plot", ""], "rotation error"),
    "pendulum_shooting": (["--small"], "target hit"),
    "mlp_classifier": (["--small"], "test accuracy"),
    "gmm_fit": (["--small"], "largest error in a mean coordinate"),
    "bundle_adjustment": (["--small"], "RMS reprojection error"),
}


def test_every_example_is_smoke_tested():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(SMALL_RUNS)


# The array examples compile gradients for tens of seconds each: they run in the slow tier (CI runs both tiers).
SLOW = {"gmm_fit", "bundle_adjustment", "mlp_classifier"}


@pytest.mark.parametrize("name", [pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [])
                                  for name in sorted(SMALL_RUNS)])
def test_example_runs(name, tmp_path):
    args, expected = SMALL_RUNS[name]
    env = dict(os.environ, MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    assert expected in result.stdout, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
