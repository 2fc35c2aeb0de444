"""The diagnostics catalogue is the single source of the docs, of `diffprog explain` and of SARIF rules, and its
examples are executable: every failing example produces its code and every fixed one produces nothing — through
`diffprog check` for the problems it can see, and through the decorator (when the example runs) for all of them.
"""
import importlib.util
import itertools
import re
import warnings
from pathlib import Path

import pytest

import diffprog as dp
from diffprog.cli import main
from diffprog.cli.catalogue import CATALOGUE, ENTRIES, explain, markdown
from diffprog.cli.runner import check_paths

REPO = Path(__file__).resolve().parent.parent
DESIGN_CODES = set(re.findall(r"^\| (DP\d{3}) \|", (REPO / "docs" / "design.md").read_text(), re.M))
_counter = itertools.count()


def static_codes(path):
    return {(d.code, d.line) for d in check_paths([str(path)]).diagnostics}


def runtime_codes(path):
    """(code, line) of every diagnostic the decorator's engine reports when the module is imported and its main()
    runs: DifferentiabilityError for errors, DifferentiabilityWarning for warnings."""
    spec = importlib.util.spec_from_file_location(f"catalogue_example_{next(_counter)}", path)
    module = importlib.util.module_from_spec(spec)
    found = set()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            spec.loader.exec_module(module)
            if hasattr(module, "main"):
                module.main()
        except dp.DifferentiabilityError as error:
            found |= {(d.code, d.line) for d in error.diagnostics}
    for warning in caught:
        if issubclass(warning.category, dp.DifferentiabilityWarning):
            match = re.match(r".*?:(\d+):\d+: warning (DP\d{3}):", str(warning.message))
            found.add((match.group(2), int(match.group(1))))
    return found


def write(tmp_path, name, text):
    path = tmp_path / f"{name}.py"
    path.write_text(text)
    return path


def test_docs_are_generated_from_the_catalogue():
    committed = (REPO / "docs" / "diagnostics.md").read_text(encoding="utf-8")
    assert committed == markdown(), "docs/diagnostics.md is stale: run python -m diffprog.cli.docs"


def test_catalogue_covers_every_documented_code():
    assert DESIGN_CODES <= set(CATALOGUE), DESIGN_CODES - set(CATALOGUE)
    for entry in ENTRIES:
        assert re.fullmatch(r"DP\d{3}", entry.code)
        assert entry.severity == ("warning" if entry.code.startswith("DP2") else "error")
        assert entry.title and entry.explanation and entry.fix
        assert entry.checked_by in ("check", "run", "retired")
        if entry.code != "DP002" and entry.checked_by != "retired":  # an internal error has no example by nature
            assert entry.example and entry.fixed, entry.code


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_explain_prints_the_doc_section(code, capsys):
    assert main(["explain", code.lower()]) == 0
    out = capsys.readouterr().out
    assert out == explain(code)
    assert code in out and CATALOGUE[code].title in out and "Fix:" in out


def test_explain_unknown_code_is_a_usage_error(capsys):
    assert main(["explain", "DP999"]) == 2
    assert "unknown diagnostic code" in capsys.readouterr().err
    assert main(["explain", "--list"]) == 0
    listing = capsys.readouterr().out
    assert all(code in listing for code in CATALOGUE)


STATIC = [e for e in ENTRIES if e.checked_by == "check" and e.example]
RUNTIME = [e for e in ENTRIES if e.example and e.code not in ("DP001",)]


@pytest.mark.parametrize("entry", STATIC, ids=lambda e: e.code)
def test_checker_finds_the_failing_example_and_accepts_the_fix(entry, tmp_path):
    bad = static_codes(write(tmp_path, "bad", entry.example))
    assert entry.code in {code for code, _ in bad}, bad
    assert static_codes(write(tmp_path, "good", entry.fixed)) == set()


@pytest.mark.parametrize("entry", RUNTIME, ids=lambda e: e.code)
def test_decorator_finds_the_failing_example_and_accepts_the_fix(entry, tmp_path):
    bad = runtime_codes(write(tmp_path, "bad", entry.example))
    assert entry.code in {code for code, _ in bad}, bad
    assert runtime_codes(write(tmp_path, "good", entry.fixed)) == set()


@pytest.mark.parametrize("entry", [e for e in STATIC if e.code != "DP001"], ids=lambda e: e.code)
def test_decorator_and_checker_agree_on_the_examples(entry, tmp_path):
    for name, text in (("bad", entry.example), ("good", entry.fixed)):
        path = write(tmp_path, name, text)
        assert static_codes(path) == runtime_codes(path), name


def test_checker_only_codes_are_invisible_to_the_static_checker(tmp_path):
    """The 'run' entries say honestly that `diffprog check` does not find them."""
    for entry in ENTRIES:
        if entry.checked_by == "run":
            found = static_codes(write(tmp_path, entry.code, entry.example))
            assert entry.code not in {code for code, _ in found}


def test_every_code_is_named_once_and_catalogued():
    from diffprog import codes
    from diffprog.cli.catalogue import ENTRIES

    assert [entry.code for entry in ENTRIES] == list(codes.ALL)
    assert len(set(codes.ALL)) == len(codes.ALL)


def test_stages_report_codes_by_name_never_by_literal():
    """A code is spelled once, in diffprog/codes.py; stages take it from there (a typo cannot invent a code)."""
    import ast
    import pathlib
    import re

    package = pathlib.Path(dp.__file__).parent
    literals = [f"{path.relative_to(package)}:{node.lineno}"
                for path in package.rglob("*.py") if path.name != "codes.py"
                for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Constant) and isinstance(node.value, str)
                and re.fullmatch(r"DP\d{3}", node.value)]
    assert literals == []
