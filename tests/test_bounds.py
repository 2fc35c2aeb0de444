"""Out-of-bounds indexing is never a silent wrong answer.

- With bounds checks (`@differentiable(boundscheck=True)`, on by default; `DIFFPROG_BOUNDSCHECK=0|1`,
  `dp.set_boundscheck`), an index out of bounds in the primal or in any derivative raises IndexError naming the
  user's file and line, not the generated code's.
- The setting is part of the disk-cache key: a build with checks is never reused without them, nor the other way
  round, in one process or across processes.
- The adjoint of an in-bounds read never writes outside the adjoint array, checks or not: negative indices,
  slices past the end, index arrays (gradients against central differences).
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import diffprog as dp
from diffprog.backend import jit as backend_jit

THIS_FILE = os.path.abspath(__file__)
ROOT = Path(__file__).resolve().parent.parent


def line_of(tag: str) -> int:
    for number, text in enumerate(Path(THIS_FILE).read_text().splitlines(), 1):
        if text.rstrip().endswith(f"# <{tag}>"):
            return number
    raise LookupError(tag)


def pick(a, i):
    s = 0.0
    s = s + a[i] * 2.0  # <pick>
    return s


def pick_row(A, i):
    return np.sum(A[i] ** 2)  # <row>


def central(f, x, *rest, h=1e-6):
    g = np.zeros_like(x)
    for k in range(x.size):
        e = np.zeros_like(x)
        e.flat[k] = h
        g.flat[k] = (f(x + e, *rest) - f(x - e, *rest)) / (2 * h)
    return g


# ---- 1. bounds checks: IndexError at the user's line ---------------------------------------------------------
def test_checked_primal_and_every_derivative_raise_at_the_user_line():
    f = dp.differentiable(pick, boundscheck=True)
    a = np.array([1.0, 2.0, 3.0])
    assert f(a, 2) == 6.0 and f(a, -1) == 6.0  # in bounds (negative indices wrap, as in numpy)
    assert np.array_equal(dp.grad(f)(a, -1), [0.0, 0.0, 2.0])
    where = f"{THIS_FILE}:{line_of('pick')}:"
    calls = {
        "the primal of pick": lambda: f(a, 5),
        "the gradient of pick": lambda: dp.grad(f)(a, 5),
        "the tangent code of pick": lambda: dp.jvp(f, (a, 5), (np.ones(3), None)),
        "": lambda: dp.jacobian(f)(a, -4),  # runs the primal first (to choose the mode), which raises
    }
    for what, call in calls.items():
        with pytest.raises(IndexError) as info:
            call()
        message = str(info.value)
        assert message.startswith(where), message
        assert "out of bounds" in message and f"(in {what}" in message, message
        assert "diffprog_generated" not in message


def test_checked_row_read_and_hessian():
    f = dp.differentiable(pick_row, boundscheck=True)
    A = np.arange(6.0).reshape(3, 2)
    assert np.allclose(dp.grad(f)(A, -1), [[0, 0], [0, 0], [8, 10]])
    for call in (lambda: f(A, 3), lambda: dp.grad(f)(A, -4)):
        with pytest.raises(IndexError, match=f"^{THIS_FILE}:{line_of('row')}: .*out of bounds"):
            call()


def test_hessian_inherits_the_setting():
    def quad(a, i):
        return a[i] * a[i] * a[0]  # <quad>

    f = dp.differentiable(quad, boundscheck=True)
    a = np.array([1.0, 2.0, 3.0])
    assert np.allclose(dp.hessian(f)(a, -1), [[0, 0, 6], [0, 0, 0], [6, 0, 2]])
    with pytest.raises(IndexError, match=f"^{THIS_FILE}:{line_of('quad')}: "):
        dp.hessian(f)(a, 3)


def test_the_same_function_with_and_without_checks_in_one_process():
    checked = dp.differentiable(pick, boundscheck=True)
    unchecked = dp.differentiable(pick, boundscheck=False)
    a = np.array([1.0, 2.0, 3.0])
    # unchecked first: a cached unchecked build must not be taken for the checked one (and vice versa below)
    unchecked(a, 3)  # reads past the end without a check: some number, no exception (one element past a tiny array)
    with pytest.raises(IndexError):
        checked(a, 3)
    unchecked(a, 3)
    assert checked(a, 1) == unchecked(a, 1) == 4.0
    assert backend_jit.settings_key(backend_jit.jit_options(True)) != \
        backend_jit.settings_key(backend_jit.jit_options(False))


def test_set_boundscheck_and_the_environment(monkeypatch):
    assert backend_jit.DEFAULT_BOUNDSCHECK is True
    a = np.array([1.0, 2.0, 3.0])
    monkeypatch.setenv("DIFFPROG_BOUNDSCHECK", "0")
    assert not backend_jit.boundscheck_enabled()
    assert backend_jit.boundscheck_enabled(True)  # the function's own choice wins
    try:
        dp.set_boundscheck(True)
        assert backend_jit.boundscheck_enabled()
        f = dp.differentiable(lambda_free_pick())
        with pytest.raises(IndexError):
            f(a, 3)
        dp.set_boundscheck(False)
        assert not backend_jit.boundscheck_enabled() and backend_jit.boundscheck_enabled(True)
    finally:
        dp.set_boundscheck(None)
    monkeypatch.setenv("DIFFPROG_BOUNDSCHECK", "1")
    assert backend_jit.boundscheck_enabled() and not backend_jit.boundscheck_enabled(False)
    monkeypatch.delenv("DIFFPROG_BOUNDSCHECK")
    assert backend_jit.boundscheck_enabled()  # the default


def lambda_free_pick():
    def pick2(a, i):
        return a[i] + 0.0
    return pick2


# ---- 2. across processes: the disk cache keeps checked and unchecked builds apart -----------------------------
_SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    import diffprog as dp

    def pick(a, i):
        return a[i] * 2.0

    f = dp.differentiable(pick)
    a = np.array([1.0, 2.0, 3.0])
    try:
        f(a, 3)
        raised = False
    except IndexError:
        raised = True
    print(json.dumps({"raised": raised, "value": f(a, 1)}))
""")


def _run(cache: Path, script: Path, **env) -> dict:
    environment = dict(os.environ, DIFFPROG_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT), **env)
    environment.pop("NUMBA_BOUNDSCHECK", None)
    environment.update(env)
    out = subprocess.run([sys.executable, str(script)], env=environment, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def _modules(cache: Path) -> set:
    return {p.name for p in cache.glob("diffprog_generated_*.py")}


@pytest.mark.parametrize("first", ["1", "0"])
def test_processes_do_not_reuse_a_build_with_other_checks(tmp_path, first):
    script = tmp_path / "user.py"
    script.write_text(_SCRIPT)
    cache = tmp_path / "cache"
    second = "0" if first == "1" else "1"
    one = _run(cache, script, DIFFPROG_BOUNDSCHECK=first)
    after_one = _modules(cache)
    two = _run(cache, script, DIFFPROG_BOUNDSCHECK=second)
    after_two = _modules(cache)
    three = _run(cache, script, DIFFPROG_BOUNDSCHECK=first)  # from the cache, with its own setting
    assert one["raised"] is (first == "1") and three["raised"] is (first == "1")
    assert two["raised"] is (second == "1")
    assert one["value"] == two["value"] == three["value"] == 4.0
    assert len(after_one) == 1 and len(after_two) == 2 and _modules(cache) == after_two  # another module file
    # numba's own setting is part of the key too
    four = _run(cache, script, DIFFPROG_BOUNDSCHECK="1", NUMBA_BOUNDSCHECK="0")
    assert four["raised"] is False and len(_modules(cache)) == 3


# ---- 4. adjoints of in-bounds reads stay inside the adjoint, with or without checks --------------------------
def neg_constant(a):
    return a[-1] * 3.0 + a[-3] ** 2


def neg_variable(a, i):
    return np.sin(a[i]) * a[i]


def wrap_in_loop(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i - 1] * a[i]
    return s


def slice_past_end(a):
    return np.sum(np.sin(a[1:10]))


def slice_head(a):
    return np.sum(a[:10] ** 2)


def slice_negative(a):
    return np.sum(a[-2:] * 2.0) + np.sum(a[-10:2] ** 2)


def slice_empty(a):
    return np.sum(a[5:]) + a[0]


def slice_step(a):
    return np.sum(a[::2] ** 2) + np.sum(a[1:10:2] * 3.0)


def sliding_window(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += np.sum(a[i - 1:i + 1] ** 2) + np.sum(a[i:i + 5] * 0.5)
    return s


def index_array(a, idx):
    return np.sum(a[idx] ** 2)


def rows(A):
    return np.sum(A[-1] ** 2) + np.sum(A[-3, 1:10] * 2.0) + A[-2, -1]


def planes(T):
    return np.sum(T[-1] ** 2) + np.sum(T[-2, -1] * 3.0)


_VECTOR = np.array([0.3, 1.2, -0.7])
ADJOINT_CASES = [
    (neg_constant, _VECTOR, ()),
    (neg_variable, _VECTOR, (-2,)),
    (wrap_in_loop, _VECTOR, ()),
    (slice_past_end, _VECTOR, ()),
    (slice_head, _VECTOR, ()),
    (slice_negative, _VECTOR, ()),
    (slice_empty, _VECTOR, ()),
    (slice_step, _VECTOR, ()),
    (sliding_window, _VECTOR, ()),
    (index_array, _VECTOR, (np.array([2, 0, 2, -1, -3]),)),
    (rows, np.arange(12.0).reshape(3, 4) * 0.1, ()),
    (planes, np.arange(24.0).reshape(2, 3, 4) * 0.1, ()),
]


@pytest.mark.parametrize("boundscheck", [True, False], ids=["checked", "unchecked"])
@pytest.mark.parametrize("fn, x, rest", ADJOINT_CASES, ids=[c[0].__name__ for c in ADJOINT_CASES])
def test_adjoint_of_in_bounds_reads(fn, x, rest, boundscheck):
    """Gradients of numpy-semantics reads against central differences; with checks, any write of the adjoint
    outside its array would raise."""
    f = dp.differentiable(fn, boundscheck=boundscheck)
    assert np.isclose(f(x, *rest), fn(x, *rest))
    guard = x.copy()
    gradient = dp.grad(f)(x, *rest)
    assert np.array_equal(x, guard)
    assert gradient.shape == x.shape
    assert np.allclose(gradient, central(fn, x, *rest), atol=1e-6)
    tangent = dp.jvp(f, (x, *rest), (np.ones_like(x), *(None for _ in rest)))[1]
    assert np.isclose(tangent, np.sum(central(fn, x, *rest)), atol=1e-5)
