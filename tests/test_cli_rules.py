"""`diffprog check` and user derivative rules (`@dp.derivative(of=g)`): rules registered in the checked files or
in project files they import are found statically, so calls to `g` with active arguments are not DP102; a rule
whose signature does not match is the decorator's DP101 at the rule's file and line; and nothing registered while
checking stays registered (the checker runs inside long-lived processes: the language server, this test suite).
"""
import importlib.util
import itertools
import math
import sys
import textwrap
from pathlib import Path

import pytest

import diffprog as dp
from diffprog.cli import main
from diffprog.cli.runner import check_paths
from diffprog.rules.registry import REGISTRY
from diffprog.rules.user import isolated_rules

_counter = itertools.count()


def write(directory, name, text):
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def diagnostics(*paths):
    return check_paths([str(p) for p in paths]).diagnostics


def codes(*paths):
    return sorted((d.code, Path(d.file).name, d.line) for d in diagnostics(*paths))


def line_of(path, marker):
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if marker in text:
            return number
    raise AssertionError(f"no {marker!r} in {path}")


def runtime(path, extra_path=None):
    """(code, file name, line) of what the decorator reports when the module is imported and main() runs, with
    every rule it registers removed afterwards."""
    found = set()
    name = f"rules_example_{next(_counter)}"
    if extra_path:
        sys.path.insert(0, str(extra_path))
    try:
        with isolated_rules():
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
                module.main()
            except dp.DifferentiabilityError as error:
                found |= {(d.code, Path(d.file).name if d.file else None, d.line) for d in error.diagnostics}
    finally:
        if extra_path:
            sys.path.remove(str(extra_path))
    return sorted(found)


# ---- rules in the checked file -------------------------------------------------------------------------------
ALIASES = {
    "import_as": ("import diffprog as dp\n", "@dp.derivative(of={of})"),
    "plain_import": ("import diffprog\n", "@diffprog.derivative(of={of})"),
    "from_import": ("from diffprog import derivative\n", "@derivative(of={of})"),
    "from_import_as": ("from diffprog import derivative as rule\n", "@rule(of={of})"),
    "submodule": ("import diffprog.rules.user as r\n", "@r.derivative({of}, mode='reverse')"),
}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_rule_for_a_third_party_function_removes_dp102(alias, tmp_path):
    imports, decorator = ALIASES[alias]
    text = (f"import math\nimport scipy.special as sc\nimport diffprog as dp\n{imports}\n\n"
            f"{decorator.format(of='sc.erf')}\n"
            "def erf_rule(x, out, g):\n    return (g * 2.0 / math.sqrt(math.pi) * math.exp(-x * x),)\n\n\n"
            "@dp.differentiable\ndef f(x):\n    return sc.erf(x) * x + sc.gammaln(x)  # MARK\n")
    path = write(tmp_path, "m.py", text)
    found = diagnostics(path)
    assert [(d.code, d.line) for d in found] == [("DP102", line_of(path, "MARK"))]
    assert "gammaln" in found[0].message and found[0].origin.col == text.splitlines()[-1].index("sc.gammaln")


def test_without_the_rule_the_call_is_dp102(tmp_path):
    path = write(tmp_path, "m.py", """
        import scipy.special as sc
        import diffprog as dp


        @dp.differentiable
        def f(x):
            return sc.erf(x) * x
        """)
    assert codes(path) == [("DP102", "m.py", 7)]


def test_forward_rule_and_call_form_and_c_function(tmp_path):
    path = write(tmp_path, "m.py", """
        import math
        from thirdparty import fancy
        from diffprog import derivative, differentiable


        @derivative(of=fancy, mode="forward")
        def fancy_tangent(x, y, tx, ty):
            return tx + ty


        def gamma_rule(x, out, g):
            return (g * out,)


        derivative(of=math.gamma)(gamma_rule)


        @differentiable
        def f(x):
            return fancy(x, 2.0) + math.gamma(x) + math.lgamma(x)  # MARK
        """)
    found = diagnostics(path)
    assert [(d.code, d.line) for d in found] == [("DP102", line_of(path, "MARK"))]
    assert "lgamma" in found[0].message


def test_rule_overriding_a_function_with_source(tmp_path):
    # The function's own body has a cut (math.floor) that the rule replaces: the checker, like the decorator,
    # differentiates by the rule and reports nothing.
    path = write(tmp_path, "m.py", """
        import math
        import diffprog as dp


        def stepped(x):
            return math.floor(x) + (x - math.floor(x))


        @dp.derivative(of=stepped)
        def stepped_rule(x, out, g):
            return (g,)


        @dp.differentiable
        def f(x):
            return stepped(x) * x


        def main():
            return dp.grad(f)(1.5)
        """)
    assert codes(path) == []
    assert runtime(path) == []


# ---- rules in imported project files --------------------------------------------------------------------------
def test_rules_in_imported_project_files_are_found(tmp_path):
    write(tmp_path, "proj/__init__.py", "")
    write(tmp_path, "proj/rules.py", """
        import math
        import scipy.special as sc
        import diffprog as dp


        @dp.derivative(of=sc.erf)
        def erf_rule(x, out, g):
            return (g * 2.0 / math.sqrt(math.pi) * math.exp(-x * x),)
        """)
    write(tmp_path, "proj/other.py", """
        import scipy.special as sc
        import diffprog as dp


        @dp.derivative(of=sc.erfc)  # never imported by the checked file: not registered
        def erfc_rule(x, out, g):
            return (-g,)
        """)
    model = write(tmp_path, "proj/model.py", """
        import scipy.special as sc
        import diffprog as dp
        from . import rules  # registers the rule when this module runs


        @dp.differentiable
        def f(x):
            return sc.erf(x) + sc.erfc(x)  # MARK
        """)
    found = diagnostics(model)
    assert [(d.code, d.line) for d in found] == [("DP102", line_of(model, "MARK"))]
    assert "erfc" in found[0].message


def test_rule_next_to_the_helper_it_covers(tmp_path):
    write(tmp_path, "helpers.py", """
        import numba
        from diffprog import derivative


        @numba.njit
        def softplus(x):
            return numba_only_thing(x)


        @derivative(of=softplus)
        def softplus_rule(x, out, g):
            return (g / (1.0 + 2.718281828 ** (-x)),)
        """)
    model = write(tmp_path, "model.py", """
        import diffprog as dp
        from helpers import softplus


        @dp.differentiable
        def f(x):
            return softplus(x) * x
        """)
    assert codes(model) == []


# ---- signatures are checked as the decorator checks them ------------------------------------------------------
SIGNATURES = {
    "too_few": """
        import diffprog as dp


        def g(a, b):
            return a * b


        @dp.derivative(of=g)
        def g_rule(a, out, cot):  # MARK
            return (cot,)


        @dp.differentiable
        def f(x):
            return g(x, 2.0)


        def main():
            return dp.grad(f)(1.0)
        """,
    "returns_too_few": """
        import diffprog as dp


        def g(a, b):
            return a * b


        @dp.derivative(of=g)
        def g_rule(a, b, out, cot):
            return (cot * b,)  # MARK


        @dp.differentiable
        def f(x):
            return g(x, 2.0)


        def main():
            return dp.grad(f)(1.0)
        """,
    "forward_too_many": """
        import diffprog as dp


        def g(a):
            return a * a


        @dp.derivative(of=g, mode="forward")
        def g_tangent(a, ta, extra):  # MARK
            return 2.0 * a * ta


        @dp.differentiable
        def f(x):
            return g(x)


        def main():
            return dp.grad(f)(1.0)
        """,
    "rule_with_unsupported_syntax": """
        import diffprog as dp


        def g(a):
            return a * a


        @dp.derivative(of=g)
        def g_rule(a, out, cot):
            with open("/dev/null"):  # MARK
                pass
            return 2.0 * a * cot


        @dp.differentiable
        def f(x):
            return g(x)


        def main():
            return dp.grad(f)(1.0)
        """,
}


@pytest.mark.parametrize("name", sorted(SIGNATURES))
def test_signature_mismatch_is_reported_like_the_decorator(name, tmp_path):
    path = write(tmp_path, f"{name}.py", SIGNATURES[name])
    found = diagnostics(path)
    assert [(d.code, d.line) for d in found] == [("DP101", line_of(path, "MARK"))]
    assert found[0].file == str(path.resolve())
    assert codes(path) == runtime(path)
    with isolated_rules():  # the same message as at import time
        with pytest.raises(dp.DifferentiabilityError) as info:
            spec = importlib.util.spec_from_file_location(f"sig_{next(_counter)}", path)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert info.value.diagnostics[0].message == found[0].message


def test_signature_mismatch_in_text_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "m.py", SIGNATURES["too_few"])
    status = main(["check", "m.py"])
    out = capsys.readouterr().out
    assert status == 1
    assert "m.py:9:1: DP101 error: the reverse rule for 'g' takes 3 parameters, but 'g' takes 2 arguments" in out


def test_bad_mode_is_reported(tmp_path):
    path = write(tmp_path, "m.py", """
        import diffprog as dp


        def g(a):
            return a


        @dp.derivative(of=g, mode="sideways")  # MARK
        def g_rule(a, out, cot):
            return (cot,)
        """)
    found = diagnostics(path)
    assert [(d.code, d.line) for d in found] == [("DP101", line_of(path, "MARK"))]


# ---- one engine, no leaks -----------------------------------------------------------------------------------
AGREEMENT = {
    "rule_on_c_function": """
        import math
        import diffprog as dp


        @dp.derivative(of=math.gamma)
        def gamma_rule(x, out, g):
            return (g * out,)


        @dp.differentiable
        def f(x):
            return math.gamma(x) + math.nextafter(x, 3.0)


        def main():
            return dp.grad(f)(1.5)
        """,
    "rule_fixes_everything": """
        import math
        import diffprog as dp


        @dp.derivative(of=math.nextafter)
        def nextafter_rule(x, y, out, g):
            return g, None


        @dp.differentiable
        def f(x):
            return math.nextafter(x, 3.0) * x


        def main():
            return dp.grad(f)(1.5)
        """,
}


@pytest.mark.parametrize("name", sorted(AGREEMENT))
def test_checker_and_decorator_agree_with_rules(name, tmp_path):
    path = write(tmp_path, f"{name}.py", AGREEMENT[name])
    assert codes(path) == runtime(path)


def test_rules_do_not_outlive_the_check(tmp_path):
    path = write(tmp_path, "m.py", AGREEMENT["rule_on_c_function"])
    before = REGISTRY.snapshot()
    assert codes(path) == [("DP102", "m.py", 12)]
    assert REGISTRY.lookup(math.gamma, 1) is None and REGISTRY.snapshot() == before
    # math.gamma has no rule outside the check: the decorator reports it
    with pytest.raises(dp.DifferentiabilityError, match="DP102"):
        dp.grad(lambda_gamma)(1.5)


def lambda_gamma(x):
    return math.gamma(x)
