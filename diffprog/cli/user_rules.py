"""User derivative rules read from source: `@dp.derivative(of=g)` in the checked files and the project files they
import, registered for the duration of a check exactly as the decorator registers them at run time.

The decorator's own registration (`diffprog.rules.user.register_rule`: the signature check, then the primitive
put in the rule set) runs on the checker's stand-ins: the rule is a `StaticFunction`, `g` whatever its name
denotes statically (a `StaticFunction` of a project file, an `Unknown` third-party function, or a function of
math/numpy). So a call to `g` with an active argument is no longer DP102, and a rule whose parameters do not match
`g`'s is the same DP101, at the rule's file and line, as when the module is imported. Everything registered is
removed when the check ends (`isolated_rules`), so a long-lived process (the language server, the test suite)
never keeps rules it read from source.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import gast

import diffprog

from ..errors import DifferentiabilityError, Diagnostic, Origin
from ..frontend.source import PARSED
from ..rules import user as _rules
from .static import Module, Project, StaticFunction, literal
from .. import codes

_DERIVATIVE = diffprog.derivative
_MODES = ("reverse", "forward")


@dataclass
class RuleSite:
    """One `@derivative(of=X, mode=...)` found in source (X already resolved, or None when it cannot be)."""

    module: Module
    rule: object  # the decorated StaticFunction, or the rule named in `derivative(of=X)(rule)`
    target: object
    mode: object
    origin: Origin  # the decorator (or the registering call)


def project_modules(project: Project, modules) -> list:
    """`modules` and every project module their module-level imports reach, transitively (each once): the files
    that have run, and so registered their rules, by the time the checked code runs."""
    seen, order, queue = set(), [], list(modules)
    while queue:
        module = queue.pop(0)
        if module is None or module.path in seen:
            continue
        seen.add(module.path)
        order.append(module)
        for dotted, level in _imports(module):
            queue.append(project.import_module(dotted, module, level))
    return order


def _imports(module: Module):
    """(dotted name, level) of every module a module-level import runs, parents and imported submodules included."""
    for stmt in _top_level(module.tree.body):
        if isinstance(stmt, gast.Import):
            for alias in stmt.names:
                parts = alias.name.split(".")
                for k in range(1, len(parts) + 1):
                    yield ".".join(parts[:k]), 0
        elif isinstance(stmt, gast.ImportFrom):
            base = stmt.module or ""
            level = stmt.level or 0
            parts = [p for p in base.split(".") if p]
            for k in range(1, len(parts) + 1):
                yield ".".join(parts[:k]), level
            if not parts:
                yield "", level  # from . import x: the package itself
            for alias in stmt.names:  # `from pkg import sub` may import a submodule
                if alias.name != "*":
                    yield ".".join(parts + [alias.name]), level


def _top_level(stmts):
    """Module-level statements, including those inside if/try blocks (not inside functions or classes)."""
    for stmt in stmts:
        yield stmt
        if isinstance(stmt, gast.If):
            yield from _top_level(stmt.body)
            yield from _top_level(stmt.orelse)
        elif isinstance(stmt, gast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *[h.body for h in stmt.handlers]):
                yield from _top_level(block)


def find_rules(module: Module) -> list:
    """Every derivative rule a module registers when it runs: `@derivative(of=X)` on a module-level function, and
    the call form `derivative(of=X)(rule)` as a module-level statement."""
    found = []
    for stmt in _top_level(module.tree.body):
        if isinstance(stmt, (gast.FunctionDef, gast.AsyncFunctionDef)):
            for decorator in stmt.decorator_list:
                if _maybe_derivative(module, decorator):
                    site = _rule_site(module, decorator, lambda: module.namespace.get(stmt.name))
                    if site is not None:
                        found.append(site)
        elif isinstance(stmt, gast.Expr) and isinstance(stmt.value, gast.Call) and \
                isinstance(stmt.value.func, gast.Call) and len(stmt.value.args) == 1 and \
                _maybe_derivative(module, stmt.value.func):
            rule_node = stmt.value.args[0]
            site = _rule_site(module, stmt.value.func, lambda n=rule_node: _value(module, n))
            if site is not None:
                found.append(site)
    return found


def _maybe_derivative(module, node) -> bool:
    """Cheap syntactic filter before resolving names: a call of `x.derivative`, `derivative` or a name imported
    from diffprog under another name."""
    if not isinstance(node, gast.Call):
        return False
    func = node.func
    if isinstance(func, gast.Attribute):
        return func.attr == "derivative"
    if isinstance(func, gast.Name):
        binding = module.bindings.get(func.id)
        return func.id == "derivative" or (binding is not None and binding[0] == "from" and
                                           binding[4] == "derivative")
    return False


def _value(module, node):
    from .engine import _static_value

    return _static_value(module, node)


def _rule_site(module, call, rule_of) -> RuleSite | None:
    if _value(module, call.func) is not _DERIVATIVE:
        return None
    of = [k.value for k in call.keywords if k.arg == "of"] or call.args[:1]
    mode = [k.value for k in call.keywords if k.arg == "mode"] or call.args[1:2]
    origin = Origin(str(module.path), call.lineno, call.col_offset, "", "",
                    getattr(call, "end_lineno", None), getattr(call, "end_col_offset", None))
    target = _value(module, of[0]) if of else None
    return RuleSite(module, rule_of(), target, literal(mode[0]) if mode else "reverse", origin)


@contextlib.contextmanager
def registered(sites):
    """Registers the rules of `sites` for the duration of the block; yields the diagnostics of rules that the
    decorator would reject (DP101 at the rule, as at import time)."""
    problems: list = []
    seeded = []
    with _rules.isolated_rules():
        try:
            for site in sites:
                problems.extend(_register(site, seeded))
            yield problems
        finally:
            for key in seeded:
                PARSED.forget(key)


def _register(site: RuleSite, seeded: list) -> list:
    if site.mode not in _MODES:
        return [Diagnostic(codes.UNSUPPORTED, f"derivative(mode=...) must be 'reverse' or 'forward', not {site.mode!r}",
                           site.origin, "pass mode=\"reverse\" or mode=\"forward\"")]
    if site.target is None or not isinstance(site.rule, StaticFunction):
        return []  # not known statically (computed when the module runs): calls to it are reported as before
    target = getattr(site.target, "__diffprog_function__", site.target)
    for fn in (target, site.rule):
        # A function known only from source enters the compiler's parse cache as its ParsedFunction, so that
        # the lowering inlines a rule's target for its value as it does for a live function.
        if isinstance(fn, StaticFunction) and fn not in PARSED:
            PARSED.seed(fn, fn.__diffprog_parsed__)
            seeded.append(fn)
    try:
        _rules.register_rule(target, site.rule, site.mode)
    except DifferentiabilityError as error:
        return list(error.diagnostics)
    return []


__all__ = ["RuleSite", "find_rules", "project_modules", "registered"]
