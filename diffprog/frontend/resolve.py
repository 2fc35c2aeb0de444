"""What a free name in user code denotes: looked up where Python would look it up at call time."""
from __future__ import annotations

import builtins
import types

from .freshness import MISSING, RECORDING, record_cell, record_global


def lookup_free_name(parsed, name: str):
    """The object `name` refers to from inside `parsed`'s function (closure, then globals, then builtins); what
    was found is recorded as a dependency of the compilation under way (freshness.py)."""
    if name in parsed.closure:
        value = parsed.closure[name]
        if RECORDING[0]:
            cell = _cell(parsed.fn, name)
            if cell is not None:
                record_cell(cell, value)
        return value
    namespace = parsed.globals
    if name in namespace:
        value = namespace[name]
        if RECORDING[0] and type(namespace) is dict:
            record_global(namespace, name, value)
        return value
    if RECORDING[0] and type(namespace) is dict:
        record_global(namespace, name, MISSING)  # a builtin, until the module defines the name
    return getattr(builtins, name, MISSING)


def record_attribute(owner, name: str) -> None:
    """`owner.name` (owner a user's module, or a class defining `name` itself) was read while compiling."""
    if not RECORDING[0]:
        return
    if isinstance(owner, types.ModuleType):
        if (owner.__name__ or "").split(".")[0] not in _FROZEN_MODULES:
            record_global(vars(owner), name, vars(owner).get(name, MISSING))
    elif isinstance(owner, type) and name in vars(owner):  # the descriptor itself (a classmethod, a property)
        record_global(vars(owner), name, vars(owner)[name])


_FROZEN_MODULES = ("numpy", "math", "scipy", "numba", "builtins", "diffprog", "cmath", "operator")
"""Modules whose attributes are taken as fixed (np.pi, math.sin): not checked on every call."""


def _cell(fn, name):
    code = getattr(fn, "__code__", None)
    if code is None or not fn.__closure__ or name not in code.co_freevars:
        return None
    return fn.__closure__[code.co_freevars.index(name)]


def import_path(obj) -> tuple[str, str] | None:
    """(module, attribute) under which generated code can reach `obj`, e.g. ("math", "nextafter")."""
    static = getattr(obj, "__diffprog_import_path__", None)
    if static is not None:  # a stand-in of `diffprog check` for a function it cannot see (never run)
        return static
    module = getattr(obj, "__module__", None)
    name = getattr(obj, "__name__", None)
    if module is None or name is None:
        return None
    import sys

    owner = sys.modules.get(module)
    if owner is not None and getattr(owner, name, None) is obj:
        return module, name
    return None
