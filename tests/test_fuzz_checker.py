"""Fuzzing the static checker (issue 7): on any valid Python, `diffprog check` reports diagnostics or nothing, and
never fails internally -- no exception escapes, and no DP002 ("internal error while checking") is reported.

Programs come from hypothesmith (random valid Python from the language's grammar, `from_grammar`, and from
libcst's syntax trees, `from_node`), three ways:

* as whole modules;
* as the body of a decorated function `def f(x, y, n)` (so that every statement the generator makes goes through
  the checker's lowering, inlining, type inference and activity analysis, not only module-level code, which the
  checker merely parses);
* and, for a fixed sample of the standard library's own modules, as they are.

Every function is treated as decorated (`diffprog check --all-functions`), through the same in-process entry
point the command line uses (`diffprog.cli.runner.check_paths`).

Profiles:
* fast (default, CI): DIFFPROG_CHECKER_FUZZ (default 100) grammar modules, as many grammar function bodies, and
  a third as many libcst programs; derandomized so CI is deterministic (DIFFPROG_FUZZ_RANDOM=1 to explore).
* long (`pytest -m long tests/test_fuzz_checker.py`): DIFFPROG_CHECKER_FUZZ_LONG (default 2000) of each kind,
  randomized, and the whole standard library (a few minutes; benchmarks/checker_speed.py times the same run).

A failure prints the generated program (hypothesis shrinks it first).
"""
from __future__ import annotations

import ast
import itertools
import os
import sysconfig
import textwrap
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st

hypothesmith = pytest.importorskip("hypothesmith")  # the `test` extra installs it

from diffprog.cli.catalogue import CATALOGUE  # noqa: E402
from diffprog.cli.runner import check_paths  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::SyntaxWarning")  # hypothesmith compiles what it makes

FAST = int(os.environ.get("DIFFPROG_CHECKER_FUZZ", "100"))
LONG = int(os.environ.get("DIFFPROG_CHECKER_FUZZ_LONG", "2000"))
RANDOM = os.environ.get("DIFFPROG_FUZZ_RANDOM", "") not in ("", "0")

_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.large_base_example]


def fast(n):
    return settings(max_examples=max(n, 1), deadline=None, derandomize=not RANDOM, suppress_health_check=_HEALTH,
                    print_blob=True)


def long(n):
    return settings(max_examples=max(n, 1), deadline=None, derandomize=False, suppress_health_check=_HEALTH,
                    print_blob=True)


# ---- programs ---------------------------------------------------------------------------------------------------
HEADER = "import math\nimport numpy as np\nimport diffprog as dp\n\n\n"


def as_function_body(source: str) -> str:
    """`source` as the body of a decorated function of two floats and an int (which it may use or not)."""
    body = textwrap.indent(source, "    ") if source.strip() else "    pass\n"
    return HEADER + "@dp.differentiable\ndef f(x, y, n):\n" + body.rstrip("\n") + "\n    return x * y\n"


modules = hypothesmith.from_grammar()
function_bodies = hypothesmith.from_grammar().map(as_function_body)
syntax_trees = st.one_of(hypothesmith.from_node(), hypothesmith.from_node().map(as_function_body))


# ---- checking one program ---------------------------------------------------------------------------------------
_UNIQUE = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_checker")


def valid_python(source: str | bytes) -> bool:
    """Whether Python compiles `source` (bytes: decoded as Python decodes a file, by its coding cookie)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SyntaxWarning for e.g. `1[2]`: still valid Python
        try:
            compile(source, "<fuzz>", "exec", ast.PyCF_ONLY_AST)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            return False
    return True


def check_file(path: Path):
    """The report of `diffprog check --all-functions path`; fails on an escaping exception or a DP002."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        report = check_paths([str(path)], all_functions=True)
    crashes = [f"{d.message} ({'; '.join(d.notes)})" for d in report.diagnostics if d.code == "DP002"]
    assert not crashes, "internal errors in the checker:\n" + "\n".join(crashes)
    for d in report.diagnostics:
        assert d.code in CATALOGUE, d
        assert d.severity in ("error", "warning"), d
        assert d.message, d
    return report


def check_source(folder: Path, source: str):
    # Source the generator makes that Python itself rejects (hypothesmith is nearly always right), or that has
    # no UTF-8 encoding (lone surrogates), is not what this test is about.
    assume(valid_python(source))
    try:
        data = source.encode("utf-8")
    except UnicodeEncodeError:
        assume(False)
    note(source)
    path = folder / f"fuzz_{next(_UNIQUE)}.py"  # a new name each time: the checker reads lines through linecache
    path.write_bytes(data)
    try:
        report = check_file(path)
        # a file Python compiles is never reported as unparsable
        assert not [d for d in report.diagnostics if d.code == "DP001"], report.diagnostics
    finally:
        path.unlink()
    return report


# ---- fast profile (CI) ------------------------------------------------------------------------------------------
@fast(FAST)
@given(source=modules)
def test_checker_on_random_modules(folder, source):
    check_source(folder, source)


@fast(FAST)
@given(source=function_bodies)
def test_checker_on_random_function_bodies(folder, source):
    check_source(folder, source)


@fast(FAST // 3)
@given(source=syntax_trees)
def test_checker_on_random_syntax_trees(folder, source):
    check_source(folder, source)


STDLIB = Path(sysconfig.get_paths()["stdlib"])
STDLIB_SAMPLE = ["colorsys.py", "statistics.py", "fractions.py", "heapq.py", "bisect.py", "json", "random.py"]


def test_checker_on_a_sample_of_the_standard_library():
    paths = [str(STDLIB / name) for name in STDLIB_SAMPLE if (STDLIB / name).exists()]
    assert paths, f"no standard library at {STDLIB}"
    report = check_paths(paths, all_functions=True)
    assert report.functions > 100
    assert not [d for d in report.diagnostics if d.code in ("DP001", "DP002")], report.internal_errors


# ---- long profile (-m long) -------------------------------------------------------------------------------------
@pytest.mark.long
@long(LONG)
@given(source=modules)
def test_checker_on_random_modules_long(folder, source):
    check_source(folder, source)


@pytest.mark.long
@long(LONG)
@given(source=function_bodies)
def test_checker_on_random_function_bodies_long(folder, source):
    check_source(folder, source)


@pytest.mark.long
@long(LONG // 4)
@given(source=syntax_trees)
def test_checker_on_random_syntax_trees_long(folder, source):
    check_source(folder, source)


@pytest.mark.long
def test_checker_on_the_whole_standard_library():
    """Every function of the standard library checked as if decorated: no internal error; DP001 only for files
    Python itself cannot compile (the stdlib ships a few on purpose, as test data)."""
    report = check_paths([str(STDLIB)], all_functions=True)
    assert report.functions > 10000
    crashes = [f"{d.origin}: {d.message} ({'; '.join(d.notes)})" for d in report.internal_errors]
    assert not crashes, f"{len(crashes)} internal errors, e.g.:\n" + "\n".join(crashes[:20])
    for d in report.diagnostics:
        if d.code == "DP001":
            assert not valid_python(Path(d.origin.file).read_bytes()), d
