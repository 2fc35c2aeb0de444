"""User derivative rules: `@diffprog.derivative(of=g)` for functions the compiler cannot (or should not) see into.

A rule is data, like every built-in rule (rules/registry.py): registering one makes `g` a `Primitive` whose rule
templates call the user's rule function (exposed in the rule set's template namespace under a unique name). The rule function is ordinary Python source, inlined and compiled with
numba like user code (so rules compose with every transform, including higher derivatives).

- Reverse rule `rule(*args, result, cotangent)` returns one cotangent per argument of g (None: no derivative).
  It becomes the primitive's vector-Jacobian products (`vjps`), valid for numbers and arrays.
- Forward rule `rule(*args, *tangents)` returns the result's tangent. It becomes the primitive's partial
  derivatives (the tangent rule with unit tangents), so forward mode with a user rule takes numbers.
  With only a reverse rule, forward mode uses the reverse rule with cotangent 1.0 (numbers only, too).
- How g's value is computed: a function without Python source (a numba-compiled function, a C function such as
  math.gamma) is called from the generated code through its import path; a Python function with source is
  inlined for its value (its own code gets no derivative: the rule replaces it), e.g. to give a numerically
  stable derivative.
"""
from __future__ import annotations

import contextlib
import inspect
import types

import gast

from ..errors import DifferentiabilityError, Diagnostic, Reporter, user_facing
from ..frontend.resolve import import_path
from ..frontend.syntax import check_function_syntax
from ..frontend.source import is_library, parsed_function
from .registry import REGISTRY, Primitive
from .. import codes

_RULES: dict = {}  # id(g) -> {"reverse": ..., "forward": ..., "target": g}
_PREVIOUS: dict = {}  # id(g) -> (g, {registry key: the primitive registered there before the first user rule})


def derivative(of, mode="reverse"):
    """Decorator registering a derivative rule for the function `of`.

    mode="reverse": `rule(*args, result, cotangent)` returns a tuple with one cotangent per argument of `of`
    (None for an argument without a derivative). mode="forward": `rule(*args, *tangents)` returns the result's
    tangent. The rule's signature is checked here; mismatches are reported with the rule's file and line.

    Use it for a function diffprog cannot read (a numba function, a C extension, `math.gamma`), or to replace
    the derivative of one it can read by a numerically better one. The rule's source is inlined and compiled
    like user code. `diffprog.rules.user.remove_derivative(of)` undoes the registration.

    Example:
        ```python
        import math
        import diffprog as dp

        def softplus(x):
            return math.log1p(math.exp(-abs(x))) + max(x, 0.0)

        @dp.derivative(of=softplus)
        def softplus_reverse(x, result, cotangent):
            return (cotangent / (1.0 + math.exp(-x)),)    # one cotangent per argument of softplus

        @dp.derivative(of=softplus, mode="forward")
        def softplus_forward(x, x_dot):
            return x_dot / (1.0 + math.exp(-x))

        def model(x):
            return softplus(3.0 * x)

        dp.grad(model)(0.0)   # 1.5 = 3 * 0.5, from the rule (max and abs alone would give a subgradient)
        ```
    """
    if mode not in ("reverse", "forward"):
        raise ValueError(f"mode must be 'reverse' or 'forward', not {mode!r}")
    target = getattr(of, "__diffprog_function__", of)
    if not callable(target):
        raise TypeError(f"derivative(of=...) takes a function, not {type(of).__name__}")

    @user_facing  # a rule rejected at the user's decorator, without diffprog's frames (errors.py)
    def register(rule):
        register_rule(target, rule, mode)
        return rule

    return register


def register_rule(target, rule, mode="reverse"):
    """What `@derivative(of=target, mode=mode)` does to `rule`. The command line checker registers the rules it
    finds in source this way (target and rule may be its static stand-ins), inside `isolated_rules()`."""
    entry = _RULES.setdefault(id(target), {"target": target})
    entry[mode] = _checked(rule, target, mode)
    _install(entry)


@contextlib.contextmanager
def isolated_rules():
    """Rules registered (or removed) inside the block are undone at its end: the rule set is restored by
    `REGISTRY.overlay()`, and so is this module's record of the rules registered per function."""
    saved = dict(_RULES), dict(_PREVIOUS)
    try:
        with REGISTRY.overlay():
            yield
    finally:
        for table, before in zip((_RULES, _PREVIOUS), saved):
            table.clear()
            table.update(before)


def _nargs(target):
    static = getattr(target, "__diffprog_parsed__", None)
    if static is not None:  # a function the command line checker knows from source only
        args = static.node.args
        return None if args.vararg or args.kwarg else len(getattr(args, "posonlyargs", ()) or ()) + len(args.args)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params):
        return None
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def _checked(rule, target, mode):
    """(rule, number of g's arguments, per-argument None markers): the rule's source parses, passes the syntax
    check, and its parameters match g's."""
    parsed = getattr(rule, "__diffprog_parsed__", None) or parsed_function(rule)  # DP109 when it has no source
    reporter = Reporter()
    check_function_syntax(parsed, reporter)
    reporter.raise_if_errors()
    count = len(parsed.node.args.args)
    n = _nargs(target)
    if n is None:
        n = count - 2 if mode == "reverse" else count // 2
    expected = n + 2 if mode == "reverse" else 2 * n
    name = getattr(target, "__name__", "g")
    if count != expected or n < 1:
        shape = (f"{rule.__name__}(*args, result, cotangent)" if mode == "reverse"
                 else f"{rule.__name__}(*args, *tangents)")
        raise DifferentiabilityError([Diagnostic(
            codes.UNSUPPORTED, f"the {mode} rule for '{name}' takes {count} parameters, but '{name}' takes {n} "
            f"argument{'s' if n != 1 else ''}, so it must take {expected}: {shape}", parsed.origin(parsed.node),
            "fix the rule's parameters")])
    if mode == "forward":
        return rule, n, None
    return rule, n, _none_positions(parsed, n, name)


def _none_positions(parsed, n, name):
    """Which cotangents the reverse rule always returns as None; None when it returns a single value (n == 1)."""
    returns = [node.value for node in gast.walk(parsed.node) if isinstance(node, gast.Return)]
    tuples = [r for r in returns if isinstance(r, gast.Tuple)]
    if not tuples:
        if n == 1:
            return None  # one argument, one cotangent returned as it is
        return (False,) * n  # a tuple built elsewhere: every entry is a cotangent
    for r in tuples:
        if len(r.elts) != n:
            raise DifferentiabilityError([Diagnostic(
                codes.UNSUPPORTED,
                f"the reverse rule for '{name}' returns {len(r.elts)} cotangents, but '{name}' takes {n} "
                "arguments", parsed.origin(r), "return one cotangent per argument (None for no derivative)")])
    return tuple(all(isinstance(r.elts[k], gast.Constant) and r.elts[k].value is None for r in tuples)
                 for k in range(n))


def _global_name(rule) -> str:
    """The rule function under a unique name the rule templates can call (the rule set's template namespace)."""
    return REGISTRY.expose(rule, "user_rule")


def _install(entry):
    """(Re)builds the primitive for g from its rules and puts it in the registry, replacing any earlier one."""
    target = entry["target"]
    reverse, forward = entry.get("reverse"), entry.get("forward")
    n = (reverse or forward)[1]
    params = tuple(f"a{k}" for k in range(n))
    inline = (getattr(target, "__diffprog_parsed__", None) is not None and  # the checker's stand-in
              getattr(target, "__diffprog_import_path__", None) is None) or (
        isinstance(target, types.FunctionType) and not is_library(target) and _has_source(target))
    extra = ("v",) if inline else ()
    args = ", ".join(params)
    vjps = None
    if reverse is not None:
        name = _global_name(reverse[0])
        nones = reverse[2]
        call = f"{name}({args}, out, g)"
        vjps = tuple(None if nones is not None and nones[k] else (call if nones is None else f"{call}[{k}]")
                     for k in range(n)) + (None,) * len(extra)
    if forward is not None:
        name = _global_name(forward[0])
        units = [", ".join("1.0" if j == k else "0.0" for j in range(n)) for k in range(n)]
        partial = tuple(f"{name}({args}, {units[k]})" for k in range(n))
    else:
        call = f"{_global_name(reverse[0])}({args}, out, 1.0)"
        nones = reverse[2]
        partial = tuple(None if nones is not None and nones[k] else (call if nones is None else f"{call}[{k}]")
                        for k in range(n))
    partial = partial + (None,) * len(extra)
    label = getattr(target, "__qualname__", getattr(target, "__name__", "g"))
    if inline:
        prim = Primitive(f"rule:{label}", lambda a: a[-1], params + extra, partial, result=lambda ts: ts[-1],
                         vjps=vjps, inline_primal=target, scalar_partials=True, label=label)
    else:
        path = import_path(target)
        if path is None:
            raise DifferentiabilityError([Diagnostic(
                codes.UNRESOLVED, f"'{label}' has no Python source and cannot be imported by name, so compiled code "
                "cannot call it", None, "define it at module level (a numba @njit function or a C function "
                "reachable as module.name)")])
        qualified = f"{path[0]}.{path[1]}"
        prim = Primitive(f"rule:{qualified}", lambda a, q=qualified: f"{q}({', '.join(a)})", params, partial, vjps=vjps,
                         imports=(path[0],), scalar_partials=True, label=qualified)
    keys = [(target, None), (target, n)]
    if id(target) not in _PREVIOUS:  # what lookups found before any user rule, for remove_derivative
        _PREVIOUS[id(target)] = (target, {k: REGISTRY.lookup(*k, exact=True) for k in keys})
    REGISTRY.register(prim, *keys)


def remove_derivative(of):
    """Removes the user rules registered for `of`, restoring what was there before (a built-in rule or none)."""
    target = getattr(of, "__diffprog_function__", of)
    _RULES.pop(id(target), None)
    saved = _PREVIOUS.pop(id(target), None)
    if saved is None:
        return
    for key, previous in saved[1].items():
        REGISTRY.restore(key, previous)


def _has_source(fn) -> bool:
    try:
        parsed_function(fn)
        return True
    except DifferentiabilityError:
        return False
