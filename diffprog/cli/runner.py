"""Checking a set of paths: find the files, parse them, find what is differentiated, check it, filter.

Every failure is data: a file that cannot be parsed is a DP001 diagnostic, a crash while checking one function
is a DP002 diagnostic for that function, and the other functions are still checked.
"""
from __future__ import annotations

import ast
import linecache
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Diagnostic, Origin
from .config import Settings, UsageError
from .engine import GradSite, Target, check_target, discover
from .static import Project, display_path, read_source
from .user_rules import find_rules, project_modules, registered
from .. import codes

# Directories never searched when a directory is given (virtual environments, build output, VCS metadata).
SKIPPED_DIRS = {".git", ".hg", ".svn", ".venv", "venv", ".tox", ".nox", "__pycache__", "node_modules", "build",
                "dist", ".eggs", "site-packages", ".mypy_cache", ".pytest_cache"}
CHECKER_CODES = (codes.UNPARSABLE_FILE, codes.INTERNAL_ERROR)  # about the checker itself: never filtered out
_MENTIONS = ("diffprog", "differentiable", "grad", "vjp")
_SUPPRESSION = re.compile(r"#\s*diffprog:\s*ignore(?:\[([A-Za-z0-9_,\s]*)\])?")


@dataclass
class Report:
    diagnostics: list = field(default_factory=list)
    files: int = 0
    lines: int = 0
    functions: int = 0
    suppressed: int = 0

    @property
    def errors(self) -> list:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list:
        return [d for d in self.diagnostics if d.severity == "warning"]

    @property
    def internal_errors(self) -> list:
        return [d for d in self.diagnostics if d.code == codes.INTERNAL_ERROR]

    def exit_code(self, warnings_as_errors: bool = False) -> int:
        if any(d.code in CHECKER_CODES for d in self.diagnostics):
            return 2
        if self.errors or (warnings_as_errors and self.warnings):
            return 1
        return 0


def collect_files(paths) -> list:
    """The .py files under `paths` (a file given by name is checked whatever its suffix), in a stable order."""
    files = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS and not d.startswith("."))
                files += [Path(root) / n for n in sorted(names) if n.endswith(".py")]
        elif path.is_file():
            files.append(path)
        else:
            raise UsageError(f"{given}: no such file or directory")
    unique, seen = [], set()
    for path in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def check_paths(paths, settings: Settings | None = None, all_functions: bool = False) -> Report:
    """Checks every differentiated function under `paths`; returns the (filtered) report."""
    settings = settings or Settings()
    files = collect_files(paths)
    roots = [settings.project_root, settings.project_root / "src"] if settings.project_root else []
    roots += [Path(p) for p in paths if Path(p).is_dir()]
    project = Project([r for r in roots if r and r.is_dir()])
    report = Report(files=len(files))
    targets: dict = {}
    modules = []
    for path in files:
        module = _load(project, path, report, all_functions)
        if module is None:
            continue
        modules.append(module)
        found, sites = discover(module, all_functions)
        for key, target in found.items():
            targets.setdefault(key, target)
        for fn, site in sites:
            target = targets.setdefault(Target(fn).key, Target(fn))
            target.sites.append(site)
    report.functions = len(targets)
    # Derivative rules registered by the checked files and the project files they import: the rules table as it
    # is when the checked code runs (and only for this check).
    rules = [site for module in project_modules(project, modules) for site in find_rules(module)]
    with registered(rules) as rule_problems:
        report.diagnostics.extend(rule_problems)
        for target in targets.values():
            report.diagnostics.extend(check_target(target))
    report.diagnostics = _filter(_unique(report.diagnostics), settings, report)
    return report


def _load(project, path, report, all_functions):
    """The parsed module, or None. A file that mentions none of _MENTIONS can hold neither a decorated function
    nor a grad call (not even through a re-export): it is only checked to be valid Python (ast, in C) and parsed
    for the engine (gast, slow) only if a checked function imports from it."""
    try:
        if not all_functions:
            text = read_source(Path(path))
            if not any(word in text for word in _MENTIONS):
                ast.parse(text, filename=str(path))
                report.lines += text.count("\n")
                return None
        module = project.load(path)
    except SyntaxError as error:
        report.diagnostics.append(_parse_error(path, error))
        return None
    except (OSError, ValueError, UnicodeDecodeError, RecursionError, MemoryError) as error:
        origin = Origin(str(Path(path).resolve()), 1, 0)
        report.diagnostics.append(Diagnostic(codes.UNPARSABLE_FILE,
                                             f"cannot read this file: {type(error).__name__}: {error}",
                                             origin, "make it a readable UTF-8 (or PEP 263 encoded) Python file"))
        return None
    report.lines += len(module_text_lines(module.path))
    return module


def module_text_lines(path) -> list:
    return linecache.getlines(str(path))


def _parse_error(path, error: SyntaxError) -> Diagnostic:
    line = error.lineno or 1
    col = max((error.offset or 1) - 1, 0)
    end_line = getattr(error, "end_lineno", None)
    end_col = getattr(error, "end_offset", None)
    origin = Origin(str(Path(path).resolve()), line, col, (error.text or "").rstrip("\n"), "",
                    end_line, end_col - 1 if end_col else None)
    return Diagnostic(codes.UNPARSABLE_FILE, f"this file is not valid Python: {error.msg}", origin,
                      "fix the syntax error (python -m py_compile shows the same message)")


def _unique(diagnostics) -> list:
    """One diagnostic per problem: a helper inlined into several functions is reported once (the first chain)."""
    seen, unique = set(), []
    for d in diagnostics:
        o = d.origin
        key = (d.code, d.message, o.file if o else None, o.line if o else None, o.col if o else None)
        if key not in seen:
            seen.add(key)
            unique.append(d)
    return sorted(unique, key=_position)


def _position(d):
    o = d.origin
    return (o.file if o else "", o.line if o else 0, o.col if o else 0, d.code)


def _filter(diagnostics, settings: Settings, report: Report) -> list:
    kept = []
    for d in diagnostics:
        if d.code not in CHECKER_CODES and not settings.wants(d.code):
            continue
        if suppressed(d):
            report.suppressed += 1
            continue
        kept.append(d)
    return kept


def suppressed(d: Diagnostic) -> bool:
    """`# diffprog: ignore[DP201]` (or a bare `# diffprog: ignore`) on the reported line."""
    if d.origin is None or d.code == codes.UNPARSABLE_FILE:
        return False
    text = linecache.getline(d.origin.file, d.origin.line)
    match = _SUPPRESSION.search(text)
    if match is None:
        return False
    if match.group(1) is None:
        return True
    listed = {c.strip().upper() for c in match.group(1).split(",") if c.strip()}
    return d.code in listed


__all__ = ["GradSite", "Report", "check_paths", "collect_files", "display_path", "suppressed"]
