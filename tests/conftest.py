"""Test configuration for diffprog.

The on-disk compilation cache is pointed at a fresh directory for this run *before* diffprog is imported anywhere,
so the suite never reads or pollutes a user's cache and stale entries from another run cannot mask bugs. Within
the run it is shared: pytest-xdist's workers inherit the directory the controlling process made, so a function
one worker compiled is loaded, not compiled again, by the others (numba's cache is safe across processes). A
caller may still override it by exporting DIFFPROG_CACHE_DIR, as the CI script does.

Compile-progress lines (diffprog/progress.py) are off unless a test turns them on: tests compare stderr.
"""
import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parent.parent
if "DIFFPROG_CACHE_DIR" not in os.environ:  # the controlling process (or a run without workers)
    _CACHE_PARENT = _REPO / ".pytest_cache"
    _CACHE_PARENT.mkdir(parents=True, exist_ok=True)
    _RUN_CACHE = tempfile.mkdtemp(prefix="diffprog-cache-", dir=str(_CACHE_PARENT))
    atexit.register(shutil.rmtree, _RUN_CACHE, True)
    os.environ["DIFFPROG_CACHE_DIR"] = _RUN_CACHE
os.environ.setdefault("DIFFPROG_PROGRESS", "0")

# Make `import reference` work from every test module regardless of pytest's import mode.
_TESTS = str(Path(__file__).resolve().parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)
# And make the in-repo package importable without installation (an installed/earlier one wins).
import importlib.util  # noqa: E402

if importlib.util.find_spec("diffprog") is None:
    sys.path.append(str(_REPO))

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile(
    "diffprog",
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("DIFFPROG_HYPOTHESIS_PROFILE", "diffprog"))
