"""Reviewed snapshots of generated code: `dp.source(f, mode, args=...)` of a few representative functions
(tests/snapshot_programs.py: a scalar loop with a branch, matmul and a reduction, a local array written in a loop,
a while loop, a registered type's methods, dp.grad called in a loop), in reverse and forward mode, compared with
the files checked in under tests/snapshots/<name>.<mode>.py.

A change in the *shape* of the generated code (a new temporary, a tape that appears, a loop no longer hoisted)
fails here, so that it shows up in review as a diff of these files. When the change is intended, regenerate them
and commit the new files with the change:

    DIFFPROG_UPDATE_SNAPSHOTS=1 pytest tests/test_snapshots.py

The header is normalized so that the files do not depend on the checkout: the path of snapshot_programs.py
becomes `tests/snapshot_programs.py`, and diffprog's version `<version>`. Runs without numba (jit=False).
"""
from __future__ import annotations

import difflib
import os
import re
from pathlib import Path

import pytest

import diffprog as dp
from snapshot_programs import MODES, PROGRAMS

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = os.environ.get("DIFFPROG_UPDATE_SNAPSHOTS", "") not in ("", "0")
CASES = [(name, mode) for name in PROGRAMS for mode in MODES]


def normalized(text: str) -> str:
    """Generated source without what depends on the checkout or the release."""
    text = re.sub(r"[^\s(]*[/\\]snapshot_programs\.py", "tests/snapshot_programs.py", text)
    return re.sub(r"^# diffprog \S+:", "# diffprog <version>:", text, count=1)


def generated(name: str, mode: str) -> str:
    function, args = PROGRAMS[name]
    return normalized(dp.source(dp.differentiable(function, jit=False), mode, args=args))


@pytest.mark.parametrize("name,mode", CASES, ids=[f"{name}.{mode}" for name, mode in CASES])
def test_generated_code_matches_the_snapshot(name, mode):
    path = SNAPSHOTS / f"{name}.{mode}.py"
    text = generated(name, mode)
    if UPDATE:
        SNAPSHOTS.mkdir(exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
        return
    assert path.exists(), f"no snapshot {path.name}: run DIFFPROG_UPDATE_SNAPSHOTS=1 pytest {Path(__file__).name}"
    expected = path.read_text()
    if text != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True),
                                            f"snapshots/{path.name}", "generated now"))
        pytest.fail(f"the generated {mode} code of {name} changed (if intended: DIFFPROG_UPDATE_SNAPSHOTS=1 "
                    f"pytest {Path(__file__).name}, and review the diff):\n{diff}", pytrace=False)


def test_every_snapshot_belongs_to_a_case():
    """A snapshot whose program was removed or renamed is deleted with it (regenerating removes it)."""
    expected = {f"{name}.{mode}.py" for name, mode in CASES}
    stale = sorted(p.name for p in SNAPSHOTS.glob("*.py") if p.name not in expected)
    if UPDATE:
        for name in stale:
            (SNAPSHOTS / name).unlink()
        return
    assert stale == []


def test_normalized_headers_do_not_depend_on_the_checkout():
    header = generated("while_loop", "forward").splitlines()[0]
    assert re.fullmatch(r"# diffprog <version>: forward code for while_loop \(tests/snapshot_programs\.py:\d+\)",
                        header)
    for path in ("/home/someone/repo/tests/snapshot_programs.py", r"C:\\work\\repo\\tests\\snapshot_programs.py"):
        assert normalized(f"# test (for f ({path}:12)\n") == "# test (for f (tests/snapshot_programs.py:12)\n"
