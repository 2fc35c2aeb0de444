"""The on-disk cache across processes (issue 7): never stale, safe under concurrency and corruption.

Every test runs diffprog in fresh Python processes (subprocess) against its own empty DIFFPROG_CACHE_DIR, with
user code in real files under a temporary directory:

* editing a function's source file, a helper it calls in another module, or a module constant between two
  processes gives the new gradient (never stale code); so does calling with other argument types;
* several processes compiling the same function at the same moment all get the right answer;
* a truncated, emptied or garbage generated module, or numba cache file (index or data), still gives the right
  answer;
* an unwritable cache directory still gives the right answer, with exactly one warning.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each test starts a few Python processes that import numba (~1-3 s each)

REPO = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time, warnings
from pathlib import Path
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import numpy as np
    import diffprog as dp
    sys.path.insert(0, {userdir!r})
    import {module} as user
    go = {go!r}
    if go:
        Path({ready!r}).touch()
        while not Path(go).exists():
            time.sleep(0.005)
    out = {{}}
{body}
out["warnings"] = [f"{{w.category.__name__}}: {{w.message}}" for w in caught]
print("RESULT" + json.dumps(out))
"""


def child_env(cache_dir):
    env = dict(os.environ)
    env["DIFFPROG_CACHE_DIR"] = str(cache_dir)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # Python's own .pyc cache must not be what makes an edit visible or not
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def script(userdir, module, body, go=None, ready=None):
    return CHILD.format(userdir=str(userdir), module=module, go=str(go) if go else None,
                        ready=str(ready) if ready else None,
                        body=textwrap.indent(textwrap.dedent(body), "    "))


def parse(proc):
    assert proc.returncode == 0, f"child failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT")]
    assert lines, f"no result from the child:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(lines[-1][len("RESULT"):])


def run_child(cache_dir, userdir, module, body, timeout=300):
    proc = subprocess.run([sys.executable, "-c", script(userdir, module, body)], env=child_env(cache_dir),
                          capture_output=True, text=True, timeout=timeout, cwd=str(userdir))
    return parse(proc)


def write(path, text):
    path = Path(path)
    path.write_text(textwrap.dedent(text))
    # make sure the edit is visible to anything keyed on mtime (numba's cache index is), even on coarse clocks
    stamp = time.time() + 2.0 * (len(list(path.parent.glob("*"))) + 1)
    os.utime(path, (stamp, stamp))


GRAD = """
out["value"] = float(dp.differentiable(user.f)(1.3))
out["grad"] = float(dp.grad(user.f)(1.3))
out["grad_py"] = float(dp.grad(dp.differentiable(user.f, jit=False))(1.3))
"""


@pytest.fixture
def dirs(tmp_path):
    cache = tmp_path / "cache"
    user = tmp_path / "user"
    user.mkdir()
    return cache, user


def generated(cache):
    return sorted(Path(cache).glob("diffprog_generated_*.py"))


# ---- never stale -----------------------------------------------------------------------------------------------
def test_editing_the_function_between_processes_gives_the_new_gradient(dirs):
    cache, user = dirs
    write(user / "prog_edit.py", """
        import math

        def f(x):
            return x ** 3 + math.sin(x)
        """)
    first = run_child(cache, user, "prog_edit", GRAD)
    assert first["grad"] == pytest.approx(3 * 1.3 ** 2 + __import__("math").cos(1.3), rel=1e-12)
    n_generated = len(generated(cache))
    assert n_generated > 0, "nothing was written to the cache directory"
    # the same process twice: the cache is reused and gives the same answer
    assert run_child(cache, user, "prog_edit", GRAD) == first
    write(user / "prog_edit.py", """
        import math

        def f(x):
            return x ** 4 + math.sin(x)
        """)
    second = run_child(cache, user, "prog_edit", GRAD)
    assert second["value"] == pytest.approx(1.3 ** 4 + __import__("math").sin(1.3), rel=1e-12)
    assert second["grad"] == pytest.approx(4 * 1.3 ** 3 + __import__("math").cos(1.3), rel=1e-12)
    assert second["grad_py"] == pytest.approx(second["grad"], rel=1e-12)


def test_editing_a_helper_in_another_module_gives_the_new_gradient(dirs):
    cache, user = dirs
    write(user / "helpers_edit.py", """
        import math

        def g(x):
            return math.sin(x)
        """)
    write(user / "main_edit.py", """
        from helpers_edit import g

        def f(x):
            return g(x) * x
        """)
    import math
    first = run_child(cache, user, "main_edit", GRAD)
    assert first["grad"] == pytest.approx(math.cos(1.3) * 1.3 + math.sin(1.3), rel=1e-12)
    write(user / "helpers_edit.py", """
        import math

        def g(x):
            return math.exp(x)
        """)
    second = run_child(cache, user, "main_edit", GRAD)
    assert second["value"] == pytest.approx(math.exp(1.3) * 1.3, rel=1e-12)
    assert second["grad"] == pytest.approx(math.exp(1.3) * (1.3 + 1.0), rel=1e-12)
    assert second["grad_py"] == pytest.approx(second["grad"], rel=1e-12)


def test_editing_a_module_constant_gives_the_new_gradient(dirs):
    cache, user = dirs
    write(user / "const_edit.py", """
        SCALE = 2.0

        def f(x):
            return SCALE * x * x
        """)
    assert run_child(cache, user, "const_edit", GRAD)["grad"] == pytest.approx(4 * 1.3, rel=1e-12)
    write(user / "const_edit.py", """
        SCALE = 5.0

        def f(x):
            return SCALE * x * x
        """)
    assert run_child(cache, user, "const_edit", GRAD)["grad"] == pytest.approx(10 * 1.3, rel=1e-12)


def test_other_argument_types_in_a_later_process(dirs):
    cache, user = dirs
    write(user / "types_edit.py", """
        import numpy as np

        def f(a):
            return np.sum(a * a)
        """)
    body = """
    a = np.array([1.0, 2.0, 3.0], dtype={dtype})
    g = dp.grad(user.f)(a)
    out["dtype"] = str(g.dtype)
    out["grad"] = [float(v) for v in g]
    """
    first = run_child(cache, user, "types_edit", body.format(dtype="np.float64"))
    second = run_child(cache, user, "types_edit", body.format(dtype="np.float32"))
    assert first["grad"] == [2.0, 4.0, 6.0] and first["dtype"] == "float64"
    assert second["grad"] == [2.0, 4.0, 6.0] and second["dtype"] == "float32"


# ---- concurrency -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("processes", [2, 4])
def test_processes_compiling_the_same_function_at_once(dirs, processes):
    cache, user = dirs
    write(user / "prog_race.py", """
        import math

        def f(x):
            s = 0.0
            for i in range(5):
                s = s + math.sin(x * i) / (i + 1)
            return s * x
        """)
    go = user / "go"
    readies = [user / f"ready{k}" for k in range(processes)]
    procs = [subprocess.Popen([sys.executable, "-c", script(user, "prog_race", GRAD, go=go, ready=r)],
                              env=child_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=str(user)) for r in readies]
    try:
        deadline = time.time() + 240
        while not all(r.exists() for r in readies):  # every child has imported diffprog and numba
            assert time.time() < deadline, "children did not start"
            assert all(p.poll() is None for p in procs), "a child exited early"
            time.sleep(0.01)
        go.touch()  # ...and they all compile at the same moment
        results = []
        for p in procs:
            stdout, stderr = p.communicate(timeout=300)
            results.append(parse(subprocess.CompletedProcess(p.args, p.returncode, stdout, stderr)))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    import math

    def expected(x):
        return sum(math.cos(x * i) * i / (i + 1) for i in range(5)) * x + sum(
            math.sin(x * i) / (i + 1) for i in range(5))

    for r in results:
        assert r["grad"] == pytest.approx(expected(1.3), rel=1e-12)
        assert r["grad_py"] == pytest.approx(expected(1.3), rel=1e-12)
    # and a later process reuses what they wrote
    assert run_child(cache, user, "prog_race", GRAD)["grad"] == pytest.approx(expected(1.3), rel=1e-12)
    assert not list(Path(cache).glob("*.tmp")), "temporary files left in the cache directory"


# ---- corruption ------------------------------------------------------------------------------------------------
def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _empty(path):
    path.write_bytes(b"")


def _garbage(path):
    path.write_bytes(b"\x00\xffnot a cache file\n" * 7)


def _syntax_error(path):
    path.write_text("def broken(:\n")


CORRUPTIONS = {"truncated": _truncate, "emptied": _empty, "garbage": _garbage, "syntax_error": _syntax_error}


def _numba_files(cache, suffix):
    return sorted(Path(cache).rglob(f"*{suffix}"))


def _corruption_cases():
    for what in ("generated_module", "numba_index", "numba_data"):
        for how in CORRUPTIONS:
            yield pytest.param(what, how, id=f"{what}-{how}")


@pytest.mark.parametrize("what, how", list(_corruption_cases()))
def test_corrupted_cache_files_still_give_the_right_answer(dirs, what, how):
    cache, user = dirs
    write(user / "prog_corrupt.py", """
        import math

        def f(x):
            return math.exp(math.sin(x)) * x
        """)
    first = run_child(cache, user, "prog_corrupt", GRAD)
    if what == "generated_module":
        files = generated(cache)
    else:
        files = _numba_files(cache, ".nbi" if what == "numba_index" else ".nbc")
    assert files, f"no {what} files in the cache directory: {sorted(p.name for p in Path(cache).rglob('*'))}"
    for path in files:
        CORRUPTIONS[how](path)
    second = run_child(cache, user, "prog_corrupt", GRAD)
    assert second["value"] == pytest.approx(first["value"], rel=1e-15)
    assert second["grad"] == pytest.approx(first["grad"], rel=1e-15)
    assert second["grad_py"] == pytest.approx(first["grad"], rel=1e-15)
    # the cache heals: a third process still gives the right answer
    third = run_child(cache, user, "prog_corrupt", GRAD)
    assert third["grad"] == pytest.approx(first["grad"], rel=1e-15)


# ---- unwritable cache directory -------------------------------------------------------------------------------
UNWRITABLE_BODY = """
out["grad"] = float(dp.grad(user.f)(1.3))
out["grad2"] = float(dp.grad(user.g)(1.3))
out["value"] = float(dp.differentiable(user.f)(1.3))
out["again"] = float(dp.grad(user.f)(0.7))
"""


def _unwritable_under_a_file(tmp_path):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the cache directory's parent should be")
    return blocker / "cache"


def _unwritable_by_mode(tmp_path):
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        pytest.skip("root ignores directory permissions")
    path = tmp_path / "readonly"
    path.mkdir()
    path.chmod(0o500)
    return path


@pytest.mark.parametrize("make", [_unwritable_under_a_file, _unwritable_by_mode], ids=["under_a_file", "mode_500"])
def test_unwritable_cache_directory_warns_once_and_still_works(tmp_path, make):
    user = tmp_path / "user"
    user.mkdir()
    cache = make(tmp_path)
    try:
        write(user / "prog_ro.py", """
            import math

            def f(x):
                return math.sin(x) * x

            def g(x):
                return x ** 3
            """)
        result = run_child(cache, user, "prog_ro", UNWRITABLE_BODY)
    finally:
        if cache.exists() and cache.is_dir():
            cache.chmod(0o700)
    import math
    assert result["grad"] == pytest.approx(math.cos(1.3) * 1.3 + math.sin(1.3), rel=1e-12)
    assert result["grad2"] == pytest.approx(3 * 1.3 ** 2, rel=1e-12)
    assert result["again"] == pytest.approx(math.cos(0.7) * 0.7 + math.sin(0.7), rel=1e-12)
    cache_warnings = [w for w in result["warnings"] if "cache" in w.lower()]
    assert len(cache_warnings) == 1, f"expected exactly one warning about the cache, got {result['warnings']}"
