"""What a free name in user code denotes: looked up where Python would look it up at call time."""
from __future__ import annotations

import builtins

MISSING = object()


def lookup_free_name(parsed, name: str):
    """The object `name` refers to from inside `parsed`'s function (closure, then globals, then builtins)."""
    if name in parsed.closure:
        return parsed.closure[name]
    if name in parsed.globals:
        return parsed.globals[name]
    return getattr(builtins, name, MISSING)


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
