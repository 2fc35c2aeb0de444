"""`[tool.diffprog]` in pyproject.toml: settings that mirror the command line flags.

Found by walking up from the checked paths, like other linters; flags given on the command line override the
file. A malformed file or an unknown key is a usage error (exit 2), never silently ignored.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is the same parser (a dependency there, see pyproject.toml)
    import tomli as tomllib

CODE_PATTERN = re.compile(r"DP\d{0,3}")
KEYS = {"select", "ignore", "warnings-as-errors"}


class UsageError(Exception):
    """Bad flags or configuration: reported in one line, exit status 2."""


@dataclass
class Settings:
    select: list = field(default_factory=list)  # codes or prefixes ("DP2"); empty: everything
    ignore: list = field(default_factory=list)
    warnings_as_errors: bool = False
    config_path: Path | None = None  # the pyproject.toml the settings came from
    project_root: Path | None = None  # its directory: a root for resolving imports

    def wants(self, code: str) -> bool:
        selected = not self.select or any(code.startswith(prefix) for prefix in self.select)
        return selected and not any(code.startswith(prefix) for prefix in self.ignore)


def find_pyproject(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start` that has a [tool.diffprog] table; failing that, the nearest
    pyproject.toml (it still marks the project root)."""
    start = start.resolve()
    directory = start if start.is_dir() else start.parent
    nearest = None
    for candidate in [directory, *directory.parents]:
        path = candidate / "pyproject.toml"
        if path.is_file():
            nearest = nearest or path
            if "[tool.diffprog]" in path.read_text(errors="replace"):
                return path
    return nearest


def load_settings(paths) -> Settings:
    start = Path(paths[0]) if paths else Path.cwd()
    path = find_pyproject(start)
    if path is None:
        return Settings()
    table = _read_table(path)
    unknown = set(table) - KEYS
    if unknown:
        raise UsageError(f"{path}: unknown key(s) in [tool.diffprog]: {', '.join(sorted(unknown))} "
                         f"(known: {', '.join(sorted(KEYS))})")
    settings = Settings(config_path=path, project_root=path.parent)
    settings.select = check_codes(table.get("select", []), f"{path}: select")
    settings.ignore = check_codes(table.get("ignore", []), f"{path}: ignore")
    value = table.get("warnings-as-errors", False)
    if not isinstance(value, bool):
        raise UsageError(f"{path}: warnings-as-errors must be true or false, not {value!r}")
    settings.warnings_as_errors = value
    return settings


def _read_table(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"{path}: cannot read it: {error}") from None
    table = data.get("tool", {}).get("diffprog", {})
    if not isinstance(table, dict):
        raise UsageError(f"{path}: [tool.diffprog] must be a table")
    return table


def check_codes(values, where: str) -> list:
    """Validated codes or code prefixes ("DP201", "DP2"), upper-cased."""
    if isinstance(values, str):
        values = [v for v in re.split(r"[,\s]+", values) if v]
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise UsageError(f"{where} must be a list of diagnostic codes, like [\"DP201\"]")
    from .catalogue import CATALOGUE

    codes = []
    for value in values:
        code = value.strip().upper()
        if not CODE_PATTERN.fullmatch(code) or not any(known.startswith(code) for known in CATALOGUE):
            raise UsageError(f"{where}: unknown diagnostic code {value!r} (see `diffprog explain --list`)")
        codes.append(code)
    return codes
