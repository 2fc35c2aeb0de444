"""Where generated modules live, and how they are loaded so that numba's disk cache works on them.

numba refuses to cache functions compiled from strings and does not notice changes in what cached code calls.
So each generated module is written to a real file named by a hash of everything that went into it (the
generated text, which inlines every user function and constant involved, plus the versions of diffprog, numba,
numpy and Python, plus the compilation settings: backend/jit.py's settings_key, bounds checking and numba's
NUMBA_* configuration), registered in sys.modules, then executed. numba's own cache index, one per module file,
ignores numba's settings; so code compiled with other settings lives in another module, under another name.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import warnings
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=None)
def toolchain_fingerprint() -> str:
    """Changes whenever the compiler itself or the libraries under it change."""
    import numba
    import numpy

    digest = hashlib.sha256()
    package = Path(__file__).resolve().parent.parent
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update(f"{numba.__version__} {numpy.__version__} {sys.version}".encode())
    return digest.hexdigest()


@lru_cache(maxsize=None)
def cache_dir() -> Path:
    configured = os.environ.get("DIFFPROG_CACHE_DIR")
    base = Path(configured) if configured else Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "diffprog"
    try:
        base.mkdir(parents=True, exist_ok=True)
        probe = base / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return base
    except OSError as error:
        fallback = Path(tempfile.mkdtemp(prefix="diffprog-cache-"))
        warnings.warn(f"diffprog: cache directory {base} is not writable ({error}); compiled code is cached in "
                      f"{fallback} for this process only", RuntimeWarning, stacklevel=2)
        return fallback


def module_name(source: str, settings: str = "") -> str:
    """The name of the generated module for `source` compiled with `settings` (backend/jit.py: settings_key)."""
    key = hashlib.sha256((toolchain_fingerprint() + "\0" + settings + "\0" + source).encode()).hexdigest()[:24]
    return f"diffprog_generated_{key}"


def load_module(source: str, settings: str = ""):
    """Writes `source` under a hash of it and of the compilation `settings` (once) and imports it as a real
    module."""
    name = module_name(source, settings)
    if name in sys.modules:
        return sys.modules[name]
    path = cache_dir() / f"{name}.py"
    if not path.exists() or path.read_bytes() != source.encode():  # also rewrites a corrupted file
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(source)
        os.replace(tmp, path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
