"""`diffprog.differentiable` and `grad` are safe to call from several threads at once (issue 7).

Every test writes its user code to a fresh module whose constants are new for each run, so the generated modules
have never been seen by this process or by the on-disk cache: compilations really happen, concurrently. Threads
meet at a barrier right before the call under test. Each test checks that no thread raised, that every gradient
matches a hand-written formula, and that it is bit-for-bit the value a sequential call gives afterwards.

One test runs in a fresh process, because the first compilation of a process also creates and probes the cache
directory.
"""
from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import subprocess
import sys
import textwrap
import threading
import uuid
from pathlib import Path

import numpy as np
import pytest

import diffprog as dp

THREADS = 8


def load_module(tmp_path, text):
    """Imports `text` as a new module from a real file (diffprog reads functions' source)."""
    name = f"threads_user_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def run_together(jobs):
    """Runs each job (a no-argument callable) in its own thread, all released at once by a barrier; returns the
    results in order and re-raises the first exception any thread raised."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)
    errors: list = []

    def work(k, job):
        try:
            barrier.wait(timeout=60)
            results[k] = job()
        except BaseException as error:  # noqa: BLE001 - reported to the main thread
            errors.append((k, error))

    threads = [threading.Thread(target=work, args=(k, job)) for k, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not any(t.is_alive() for t in threads), "a thread did not finish (deadlock?)"
    if errors:
        k, error = errors[0]
        raise AssertionError(f"thread {k} raised {type(error).__name__}: {error} "
                             f"({len(errors)} of {len(jobs)} threads failed)") from error
    return results


def fresh_constant() -> float:
    return round(random.uniform(0.5, 1.5), 6) + 1e-7 * random.randrange(1, 10**6)


# ---- one function, many threads --------------------------------------------------------------------------------
def test_many_threads_differentiate_the_same_plain_function(tmp_path):
    """A plain (undecorated) function: grad, value_and_grad, vjp, jvp and the primal all asked for in the same
    instant, two threads each; all of them go through the same lazily created wrapper and caches."""
    c = fresh_constant()
    user = load_module(tmp_path, f"""
        import math

        C = {c!r}

        def f(x, y, n):
            s = 0.0
            for i in range(n):
                s += math.sin(x * (i + 1)) * y + C * x
            return s
        """)
    x, y, n = 0.7, 1.3, 5
    dfdx = sum(math.cos(x * (i + 1)) * (i + 1) * y + c for i in range(n))
    dfdy = sum(math.sin(x * (i + 1)) for i in range(n))
    value = sum(math.sin(x * (i + 1)) * y + c * x for i in range(n))

    jobs = [
        lambda: dp.grad(user.f, (0, 1))(x, y, n),
        lambda: dp.grad(user.f, (0, 1))(x, y, n),
        lambda: dp.value_and_grad(user.f)(x, y, n),
        lambda: dp.value_and_grad(user.f)(x, y, n),
        lambda: dp.vjp(user.f, x, y, n)[1](1.0),
        lambda: dp.vjp(user.f, x, y, n)[1](1.0),
        lambda: dp.jvp(user.f, (x, y, n), (1.0, 0.0, None)),
        lambda: dp.jvp(user.f, (x, y, n), (1.0, 0.0, None)),
    ]
    out = run_together(jobs)

    for g in out[0:2]:
        assert g == pytest.approx((dfdx, dfdy), rel=1e-13)
    for v, g in out[2:4]:
        assert v == pytest.approx(value, rel=1e-13) and g == pytest.approx(dfdx, rel=1e-13)
    for cotangents in out[4:6]:
        assert cotangents[:2] == pytest.approx((dfdx, dfdy), rel=1e-13) and cotangents[2] is None
    for v, t in out[6:8]:
        assert v == pytest.approx(value, rel=1e-13) and t == pytest.approx(dfdx, rel=1e-13)
    # the same compiled code as a sequential call afterwards, to the last bit
    assert out[0] == out[1] == dp.grad(user.f, (0, 1))(x, y, n)
    assert out[2] == out[3] == dp.value_and_grad(user.f)(x, y, n)
    assert out[4] == out[5] == dp.vjp(user.f, x, y, n)[1](1.0)
    assert out[6] == out[7] == dp.jvp(user.f, (x, y, n), (1.0, 0.0, None))


# ---- many functions, many threads ------------------------------------------------------------------------------
def test_many_threads_decorate_and_differentiate_different_functions(tmp_path):
    """Each thread decorates its own function (parsing and checking it) and asks for its gradient, all at once;
    the functions share helpers and a module constant."""
    c = fresh_constant()
    functions = "\n".join(f"""
        def f{k}(x, y):
            return scaled(x, {k + 1}) * y + C * x ** {k % 3 + 2}
        """ for k in range(THREADS))
    user = load_module(tmp_path, f"""
        import math

        C = {c!r}

        def scaled(x, k):
            return math.sin(k * x) + math.exp(-x * x)
        """ + functions)
    x, y = 0.4, 1.7

    def hand(k):
        p = k % 3 + 2
        dx = (k + 1) * math.cos((k + 1) * x) * y - 2 * x * math.exp(-x * x) * y + c * p * x ** (p - 1)
        dy = math.sin((k + 1) * x) + math.exp(-x * x)
        return dx, dy

    def job(k):
        def go():
            f = dp.differentiable(getattr(user, f"f{k}"))
            return f, dp.grad(f, (0, 1))(x, y), f(x, y)
        return go

    out = run_together([job(k) for k in range(THREADS)])
    for k, (f, g, v) in enumerate(out):
        assert g == pytest.approx(hand(k), rel=1e-13), k
        assert v == pytest.approx(hand(k)[1] * y + c * x ** (k % 3 + 2), rel=1e-13), k
        assert g == dp.grad(f, (0, 1))(x, y) and v == f(x, y)


# ---- one function, many argument types at once -----------------------------------------------------------------
def test_first_calls_with_different_argument_types_at_once(tmp_path):
    """One decorated function called for the first time with four argument types at once, each both for its
    value and its gradient (eight specializations compiled concurrently, into the same function's caches)."""
    c = fresh_constant()
    user = load_module(tmp_path, f"""
        import numpy as np
        import diffprog as dp

        C = {c!r}

        @dp.differentiable
        def g(a, x):
            return np.sum(a * a) * x + C * x * x
        """)
    x = 0.9
    arrays = [np.linspace(-1.0, 1.0, 5), np.linspace(-1.0, 1.0, 6).reshape(2, 3),
              np.linspace(-1.0, 1.0, 5).astype(np.float32), np.linspace(-1.0, 1.0, 6).reshape(3, 2).astype(np.float32)]
    jobs = [(lambda a=a: dp.grad(user.g, (0, 1))(a, x)) for a in arrays] + \
           [(lambda a=a: user.g(a, x)) for a in arrays]
    out = run_together(jobs)

    for a, (ga, gx), v in zip(arrays, out[:4], out[4:]):
        tol = 1e-6 if a.dtype == np.float32 else 1e-13
        assert ga.dtype == a.dtype and ga.shape == a.shape
        np.testing.assert_allclose(ga, 2.0 * a.astype(np.float64) * x, rtol=tol)
        squares = float(np.sum(a.astype(np.float64) ** 2))
        assert gx == pytest.approx(squares + 2.0 * c * x, rel=tol)
        assert v == pytest.approx(squares * x + c * x * x, rel=tol)
        ga_again, gx_again = dp.grad(user.g, (0, 1))(a, x)
        assert np.array_equal(ga, ga_again) and gx == gx_again and v == user.g(a, x)


# ---- the first compilations of a process -----------------------------------------------------------------------
CHILD = """
import json, math, sys, threading, warnings
warnings.simplefilter("error")  # a warning (e.g. "cache directory is not writable") fails the run
import diffprog as dp
sys.path.insert(0, {userdir!r})
import {module} as user

barrier = threading.Barrier({threads})
out, errors = [None] * {threads}, []

def work(k):
    try:
        f = getattr(user, "f%d" % k)
        barrier.wait(timeout=60)
        out[k] = dp.grad(f, (0, 1))(0.3, 1.1)
    except BaseException as error:
        errors.append("%d: %s: %s" % (k, type(error).__name__, error))

threads = [threading.Thread(target=work, args=(k,)) for k in range({threads})]
[t.start() for t in threads]
[t.join() for t in threads]
print("RESULT" + json.dumps({{"out": out, "errors": errors}}))
"""


@pytest.mark.slow
def test_the_first_compilations_of_a_process_from_several_threads(tmp_path):
    """In a fresh process whose cache directory does not exist yet, four threads compile four gradients at once
    as the very first thing: the cache directory is created and probed once, no warning, right values."""
    threads = 4
    c = fresh_constant()
    module = f"threads_child_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("import math\n\nC = %r\n" % c + "".join(
        f"\n\ndef f{k}(x, y):\n    return math.sin(x * {k + 1}) * y + C * x * x\n" for k in range(threads)))
    env = dict(os.environ, DIFFPROG_CACHE_DIR=str(tmp_path / "cache" / "not-yet-created"))
    env.pop("NUMBA_DISABLE_JIT", None)
    code = CHILD.format(userdir=str(tmp_path), module=module, threads=threads)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                          cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    result = json.loads([line for line in proc.stdout.splitlines() if line.startswith("RESULT")][-1][6:])
    assert result["errors"] == []
    x, y = 0.3, 1.1
    for k, g in enumerate(result["out"]):
        assert g == pytest.approx(((k + 1) * math.cos(x * (k + 1)) * y + 2 * c * x, math.sin(x * (k + 1))),
                                  rel=1e-13), k
