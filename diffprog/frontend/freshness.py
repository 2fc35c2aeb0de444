"""What compiled code depends on besides its own source, and a cheap per-call test that none of it changed.

diffprog inlines every Python function a differentiated function calls and every module-level constant it reads,
and consults the rule registry and the registered types while compiling. In a notebook or REPL any of these can
change after the first call (a helper redefined, a constant reassigned, a rule registered). So while a function is
lowered and compiled, a `Recorder` notes what was read:

- globals: (the module's dict, the name, the object found there), including names that were *absent* from the
  module's dict (they resolved to builtins: a later `def max(...)` in the module shadows them);
- module and class attributes read through a name (`config.SCALE`), as (the module's or class's dict, name, object);
- closure cells: (cell, object);
- inlined functions: (function, its `__code__`), which catches code patched in place (IPython's autoreload);
- rule and type lookups: (a function re-running the lookup, its result). These are re-checked only when the
  process-wide `WORLD` version moves (bumped by every change of the rule registry and of registered types), so the
  per-call test reads one counter for them.

`Dependencies.fresh` is a small function generated per dependency set (one comparison per entry, no hashing, no
source read): the API calls it before running a cached specialization, and on False drops the specialization and
compiles again (the generated module is cached by its text, so unchanged code is not recompiled by numba).
"""
from __future__ import annotations

import threading

MISSING = object()  # "the name was not in that dict" (the global resolved to a builtin)

WORLD = [0]
"""The version of everything process-wide compiled code may depend on besides globals: the rule registry and the
registered types. Bumped by every change; a specialization compiled at another version re-checks its lookups."""


def bump_world() -> None:
    WORLD[0] += 1


_active = threading.local()  # the recorders of the compilations under way on this thread, outermost first
RECORDING = [0]  # recorders active in any thread: the registries' hooks test this first (lookups run per call too)


def _recorders() -> list:
    stack = getattr(_active, "stack", None)
    if stack is None:
        stack = _active.stack = []
    return stack


class Recorder:
    """Collects dependencies while active (`with Recorder() as r:`); an inner recorder's entries reach every
    recorder active around it, so a specialization's dependencies include those of everything it inlined."""

    def __init__(self):
        self.globals: dict = {}  # (id(dict), name) -> (dict, name, object or MISSING)
        self.functions: dict = {}  # id(fn) -> (fn, code)
        self.cells: dict = {}  # id(cell) -> (cell, object)
        self.lookups: dict = {}  # key -> (key, recompute, result)

    def __enter__(self):
        _recorders().append(self)
        RECORDING[0] += 1
        return self

    def __exit__(self, *exc):
        RECORDING[0] -= 1
        _recorders().pop()

    def dependencies(self) -> "Dependencies":
        """What was recorded, less what would never compare equal again (an entry no longer as recorded at the
        end of its own compilation: a lookup answering with a new object each time), which would otherwise make
        every call compile again."""
        globals_ = tuple(e for e in self.globals.values() if e[0].get(e[1], MISSING) is e[2])
        lookups = tuple(e for e in self.lookups.values() if e[1]() is e[2])
        return Dependencies(globals_, tuple(self.functions.values()), tuple(self.cells.values()), lookups)


def recording() -> bool:
    return bool(getattr(_active, "stack", None))


def record_global(namespace, name: str, obj) -> None:
    """`name` was looked up in `namespace` (a module's dict, a class's mappingproxy) and gave `obj` (MISSING: not
    there)."""
    for r in _recorders():
        r.globals[(id(namespace), name)] = (namespace, name, obj)


def record_function(fn) -> None:
    """`fn`'s source was inlined (its code as it is now)."""
    code = getattr(fn, "__code__", None)
    if code is not None:
        for r in _recorders():
            r.functions[id(fn)] = (fn, code)


def record_cell(cell, obj) -> None:
    for r in _recorders():
        r.cells[id(cell)] = (cell, obj)


def record_lookup(key, recompute, result) -> None:
    """A lookup in a process-wide registry: `recompute()` gives its answer again (compared by identity)."""
    for r in _recorders():
        r.lookups[key] = (key, recompute, result)


def merge(deps: "Dependencies") -> None:
    """A cached result with these dependencies was used by the compilations under way."""
    stack = _recorders()
    if not stack or deps is None:
        return
    for r in stack:
        for entry in deps.globals:
            r.globals[(id(entry[0]), entry[1])] = entry
        for entry in deps.functions:
            r.functions[id(entry[0])] = entry
        for entry in deps.cells:
            r.cells[id(entry[0])] = entry
        r.lookups.update((entry[0], entry) for entry in deps.lookups)


class Dependencies:
    """One compilation's dependencies, and `fresh()`: whether all are as they were (cheap: runs on every call)."""

    __slots__ = ("globals", "functions", "cells", "lookups", "stamp", "fresh")

    def __init__(self, globals_=(), functions=(), cells=(), lookups=()):
        self.globals, self.functions, self.cells, self.lookups = globals_, functions, cells, lookups
        self.stamp = [WORLD[0]]
        self.fresh = self._checker()

    def _checker(self):
        """`fresh` as one generated function: `W[0] == S[0] and G0['helper'] is V0 and 'max' not in G0 ...`,
        whose slow branch (the world moved) re-checks the registry lookups."""
        env = {"W": WORLD, "S": self.stamp, "slow": self._world_moved}
        terms, dicts = [], {}
        for namespace, name, obj in self.globals:
            d = dicts.setdefault(id(namespace), f"G{len(dicts)}")
            env[d] = namespace
            if obj is MISSING:
                terms.append(f"{name!r} not in {d}")
            else:
                v = f"V{len(env)}"
                env[v] = obj
                terms.append(f"{d}[{name!r}] is {v}")
        for k, (fn, code) in enumerate(self.functions):
            env[f"F{k}"], env[f"C{k}"] = fn, code
            terms.append(f"F{k}.__code__ is C{k}")
        for k, (cell, obj) in enumerate(self.cells):
            env[f"L{k}"], env[f"O{k}"] = cell, obj
            terms.append(f"L{k}.cell_contents is O{k}")
        test = " and ".join(["(W[0] == S[0] or slow())"] + terms)
        text = (f"def make({', '.join(env)}):\n"
                f"    def fresh():\n"
                f"        try:\n"
                f"            return {test}\n"
                f"        except (KeyError, ValueError):\n"  # a name deleted, a cell emptied
                f"            return False\n"
                f"    return fresh\n")
        scope: dict = {}
        exec(text, scope)  # noqa: S102 - the names and objects are ours; nothing user-written is executed
        return scope["make"](**env)

    def _world_moved(self) -> bool:
        """The rules or registered types changed since these dependencies were recorded: fresh if every lookup
        recorded still gives the same answer (then the new version is noted, so this runs once per change)."""
        version = WORLD[0]
        if all(recompute() is result for _, recompute, result in self.lookups):
            self.stamp[0] = version
            return True
        return False

    def changed(self) -> str | None:
        """What changed, in words (None: nothing)."""
        for namespace, name, obj in self.globals:
            now = namespace.get(name, MISSING)
            if now is not obj:
                return f"'{name}' was {'defined' if obj is MISSING else 'deleted' if now is MISSING else 'reassigned'}"
        for fn, code in self.functions:
            if fn.__code__ is not code:
                return f"the code of '{fn.__qualname__}' was replaced"
        for cell, obj in self.cells:
            try:
                if cell.cell_contents is not obj:
                    return "a variable captured by a closure was reassigned"
            except ValueError:
                return "a variable captured by a closure was deleted"
        if not self._world_moved():
            return "a derivative rule or a registered type changed"
        return None
