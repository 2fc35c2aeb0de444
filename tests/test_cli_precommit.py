"""The pre-commit hook, for real: `pre-commit try-repo <this checkout> diffprog-check` in a temporary git repository
with a good and a bad file. pre-commit builds the hook's own virtual environment from this checkout (with its
uncommitted changes), so this also tests that the package installs and that its console script works.
Slow (it installs diffprog and its dependencies into a fresh environment) but part of CI.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("git") is None, reason="needs git"),
]

GOOD = "import diffprog as dp\n\n\n@dp.differentiable\ndef f(x):\n    print(x)\n    return x * x\n"
BAD = "import diffprog as dp\n\n\n@dp.differentiable\ndef f(x):\n    global total\n    return x * x\n"


def _git(args, cwd):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _pre_commit(args, cwd, home):
    env = {**os.environ, "PRE_COMMIT_HOME": str(home), "PRE_COMMIT_COLOR": "never"}
    return subprocess.run([sys.executable, "-m", "pre_commit", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1200)


def test_hook_rejects_the_bad_file_and_shows_the_diagnostic(tmp_path):
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extra: pip install -e .[test]")
    repo = tmp_path / "user-repo"
    repo.mkdir()
    _git(["init", "-q"], repo)
    _git(["config", "user.email", "dev@example.com"], repo)
    _git(["config", "user.name", "dev"], repo)
    (repo / "good.py").write_text(GOOD)
    (repo / "bad.py").write_text(BAD)
    _git(["add", "good.py", "bad.py"], repo)
    home = tmp_path / "pre-commit-home"

    done = _pre_commit(["try-repo", str(REPO), "diffprog-check", "--all-files"], repo, home)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "diffprog check" in output and "Failed" in output
    assert "bad.py:6:5: DP104 error: a write to a global variable ('global') cannot be differentiated" in output
    assert "good.py:" not in output  # only the bad file is reported
    assert "Traceback" not in output

    done = _pre_commit(["try-repo", str(REPO), "diffprog-check", "--files", "good.py"], repo, home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Passed" in done.stdout


def test_the_local_hook_documented_in_cli_md(tmp_path):
    """docs/cli.md's `repo: local` configuration, verbatim: valid, and it runs the installed `diffprog check`."""
    pytest.importorskip("pre_commit", reason="pre-commit is in the test extra: pip install -e .[test]")
    scripts = Path(sys.executable).parent
    if shutil.which("diffprog", path=str(scripts)) is None:
        pytest.skip("the diffprog console script is not installed next to this Python")
    section = (REPO / "docs" / "cli.md").read_text().split("## Pre-commit hook", 1)[1]
    config = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "repo: local" in config and "language: system" in config
    repo = tmp_path / "user-repo"
    repo.mkdir()
    _git(["init", "-q"], repo)
    (repo / ".pre-commit-config.yaml").write_text(config)
    (repo / "good.py").write_text(GOOD)
    (repo / "bad.py").write_text(BAD)
    _git(["add", "."], repo)
    home = tmp_path / "pre-commit-home"
    done = _pre_commit(["validate-config", ".pre-commit-config.yaml"], repo, home)
    assert done.returncode == 0, done.stdout + done.stderr

    env_path = f"{scripts}{os.pathsep}{os.environ.get('PATH', '')}"  # `language: system`: diffprog from PATH
    done = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PATH": env_path, "PRE_COMMIT_HOME": str(home),
                                                       "PRE_COMMIT_COLOR": "never"})
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "bad.py:6:5: DP104 error" in output and "good.py:" not in output
