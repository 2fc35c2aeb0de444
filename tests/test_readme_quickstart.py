"""The README's quick start, verbatim, on a fresh clone: its first command (create and activate a virtual
environment, install with the test extra from the package index, run the example) is read out of README.md, so
the README and this test cannot drift apart. Needs git and access to the package index; installs numba & co. into
a new venv, so it is slow."""
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def quick_start_commands():
    """The lines of the first ```bash block under '## Quick start' in README.md."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README.md: no ```bash block under '## Quick start'"
    return [line for line in block.group(1).splitlines() if line.strip()]


def test_quick_start_is_two_commands_example_then_tests():
    first, second = quick_start_commands()
    assert "python3 -m venv" in first and "activate" in first and "examples/quickstart.py" in first
    assert "pytest" in second


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_readme_first_command_in_a_fresh_clone(tmp_path):
    clone = tmp_path / "diffprog"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True, timeout=120)
    first = quick_start_commands()[0]
    env = {key: value for key, value in os.environ.items()
           if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}
    env["DIFFPROG_CACHE_DIR"] = str(tmp_path / "cache")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not (Path(p) / "activate").exists())  # not the venv running this test
    done = subprocess.run(["bash", "-c", first], cwd=clone, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, f"{first}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert (clone / ".venv" / "bin" / "diffprog").exists()  # installed into the new venv, console script included
    assert "finite difference speed" in done.stdout and "Generated adjoint" in done.stdout
    assert "diffprog show examples/quickstart.py::miss" in done.stdout
