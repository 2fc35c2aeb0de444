"""`diffprog check`: finding differentiated functions statically, output formats, filtering, configuration,
exit codes, robustness, and agreement with the decorator (one engine).

Per-code failing/fixed examples live in the catalogue and are run by test_catalogue.py; this file covers what
the command line adds around the engine.
"""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from diffprog.cli import main
from diffprog.cli import engine
from diffprog.cli.runner import check_paths
from test_catalogue import runtime_codes

REPO = Path(__file__).resolve().parent.parent


def write(directory, name, text):
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def codes(path, **options):
    return sorted((d.code, d.line) for d in check_paths([str(path)], **options).diagnostics)


def run_json(args, capsys):
    status = main(["check", "--format", "json", *map(str, args)])
    return status, json.loads(capsys.readouterr().out)


def line_of(path, marker):
    for number, text in enumerate(Path(path).read_text().splitlines(), 1):
        if marker in text:
            return number
    raise AssertionError(f"no {marker!r} in {path}")


# ---- which functions are checked ------------------------------------------------------------------------------
ALIASES = {
    "import_as": ("import diffprog as dp\n", "@dp.differentiable"),
    "plain_import": ("import diffprog\n", "@diffprog.differentiable"),
    "from_import_as": ("from diffprog import differentiable as d\n", "@d"),
    "from_import": ("from diffprog import differentiable\n", "@differentiable"),
    "with_options": ("import diffprog as dp\n", "@dp.differentiable(jit=False)"),
    "from_options": ("from diffprog import differentiable as d\n", "@d(jit=False)"),
}


@pytest.mark.parametrize("alias", sorted(ALIASES))
def test_decorator_is_found_under_any_alias(alias, tmp_path):
    imports, decorator = ALIASES[alias]
    path = write(tmp_path, "m.py", imports + f"\n\n{decorator}\ndef f(x):\n    global g\n    return x\n")
    assert codes(path) == [("DP104", 6)]


def test_undecorated_functions_are_not_checked_unless_differentiated(tmp_path):
    path = write(tmp_path, "m.py", """
        import diffprog as dp


        def plain(x):
            try:
                return x
            except ValueError:
                return 0.0


        def used(x):
            try:  # MARK
                return x
            except ValueError:
                return 0.0


        def main():
            return dp.value_and_grad(used)(1.0)
        """)
    assert codes(path) == [("DP101", line_of(path, "# MARK"))]
    everything = check_paths([str(path)], all_functions=True).diagnostics
    assert {(d.code, d.line) for d in everything if d.file == str(path)} >= {("DP101", 5), ("DP101", 12)}


def test_other_decorators_do_not_count(tmp_path):
    path = write(tmp_path, "m.py", """
        import functools


        @functools.lru_cache
        def f(x):
            global g
            return x
        """)
    assert codes(path) == []


# ---- tricky non-findings: activity decides, not syntax ---------------------------------------------------------
def test_inactive_uses_raise_no_false_alarms(tmp_path):
    path = write(tmp_path, "clean.py", """
        import math
        import diffprog as dp

        TAU = 2.0 * math.pi
        N_TERMS = 4


        @dp.differentiable
        def prints_active(x):
            y = x * x
            print(y)
            print("value", y, x)
            return y * 3.0


        @dp.differentiable
        def int_loop_counter(x, n: int):
            count = 0
            s = x
            for i in range(n):
                count += 1
                s = s * x
            j = 0
            while j < count:
                j = j + 1
            return s + count + j


        @dp.differentiable
        def branch_on_active(x):
            if x > 1.0:
                return x * x
            elif x < -1.0 or x == 0.5:
                return -x
            return 3.0 * x


        @dp.differentiable
        def wrapped_cuts(x):
            n = dp.no_derivative(int(x))
            m = math.floor(dp.no_derivative(x))
            return x * n + dp.stop_gradient(round(x * 2.0)) + m * x


        @dp.differentiable
        def inactive_cut_and_opaque(x, k: int):
            steps = k // 2
            label = str(k)
            stamp = math.gamma(3.0)
            return x * steps + stamp * x


        @dp.differentiable
        def modulo_is_not_a_cut(x):
            return (x % 1.0) * TAU


        @dp.differentiable
        def unannotated_range_bound(x, n):
            s = 0.0
            for i in range(n):
                s = s + x * i
            return s


        @dp.differentiable
        def indexed_parameter_is_an_array(a, x):
            s = x
            for i in range(len(a)):
                s = s + a[i] * x
            return s


        def helper(t):
            return math.sin(t) * t


        @dp.differentiable
        def calls_helper(x):
            total = 0.0
            for k in range(N_TERMS):
                total = total + helper(x * k)
            return total
        """)
    report = check_paths([str(path)])
    assert report.diagnostics == [], "\n".join(d.render() for d in report.diagnostics)
    assert report.functions == 9


def test_the_same_clean_code_is_clean_for_the_decorator(tmp_path):
    path = write(tmp_path, "clean_runtime.py", """
        import math
        import diffprog as dp


        @dp.differentiable
        def f(x, n: int):
            print(x)
            count = 0
            s = x
            for i in range(n):
                count += 1
                if s > 2.0:
                    s = s * 0.5
                s = s * x + dp.no_derivative(int(x))
            return s + count


        def main():
            return dp.grad(f)(1.5, 3)
        """)
    assert codes(path) == []
    assert runtime_codes(path) == set()


# ---- decorator and checker agree (one engine) ------------------------------------------------------------------
AGREEMENT = {
    "problem_in_callee": """
        import diffprog as dp


        def helper(t):
            with open("/dev/null"):
                t = t * 2.0
            return t


        @dp.differentiable
        def f(x):
            return helper(x) + 1.0


        def main():
            return dp.grad(f)(1.0)
        """,
    "cut_in_callee": """
        import math
        import diffprog as dp


        def rounded(t):
            return math.floor(t) * t


        @dp.differentiable
        def f(x):
            return rounded(x) + rounded(2.0)


        def main():
            return dp.grad(f)(1.5)
        """,
    "missing_return_in_callee_and_cut": """
        import diffprog as dp


        def partial(t):
            if t > 0.0:
                return t


        @dp.differentiable
        def f(x, y):
            return partial(x) * int(y)


        def main():
            return dp.grad(f, argnums=(0, 1))(1.5, 2.0)
        """,
    "argnums_int_and_independent": """
        import diffprog as dp


        @dp.differentiable
        def f(x: float, k: int):
            return 2.0 * k


        def main():
            return dp.grad(f)(1.5, 2)
        """,
    "opaque_and_recursion": """
        import math
        import diffprog as dp


        def countdown(x, n: int):
            if n == 0:
                return x
            return countdown(x, n - 1)


        @dp.differentiable
        def f(x):
            return math.nextafter(x, 2.0) + countdown(x, 2)


        def main():
            return dp.grad(f)(1.5)
        """,
}


@pytest.mark.parametrize("name", sorted(AGREEMENT))
def test_decorator_and_checker_report_the_same_diagnostics(name, tmp_path):
    path = write(tmp_path, f"{name}.py", AGREEMENT[name])
    static = set(codes(path))
    assert static, "the case should have findings"
    assert static == runtime_codes(path)


# ---- the project: imports between files, things it cannot see ------------------------------------------------
def test_imports_between_project_files_are_followed(tmp_path, capsys):
    write(tmp_path, "pkg/__init__.py", "")
    helpers = write(tmp_path, "pkg/helpers.py", """
        import math


        def scaled(t):
            return math.floor(t) * t  # MARK
        """)
    write(tmp_path, "pkg/sub/__init__.py", "")
    write(tmp_path, "pkg/sub/deep.py", """
        def square(t):
            try:
                return t * t
            except ValueError:
                return 0.0
        """)
    model = write(tmp_path, "pkg/model.py", """
        import diffprog as dp
        import pkg.sub.deep
        from .helpers import scaled


        @dp.differentiable
        def loss(x):
            return scaled(x) + pkg.sub.deep.square(x)  # CALL
        """)
    status, found = run_json([model], capsys)
    assert status == 1
    by_code = {d["code"]: d for d in found}
    assert set(by_code) == {"DP101", "DP108"}  # errors in deep.py stop the analysis, as in the decorator
    assert all(d["path"].endswith(os.path.join("pkg", "sub", "deep.py")) for d in found)
    chain = by_code["DP101"]["notes"]
    assert chain and chain[0]["path"].endswith("model.py") and chain[0]["line"] == line_of(model, "# CALL")
    # Without the broken helper the cut in helpers.py is reported there, with the chain back to loss.
    write(tmp_path, "pkg/sub/deep.py", "def square(t):\n    return t * t\n")
    status, found = run_json([model], capsys)
    assert status == 0 and [d["code"] for d in found] == ["DP201"]
    assert found[0]["path"].endswith("helpers.py") and found[0]["line"] == line_of(helpers, "# MARK")
    assert found[0]["notes"][0]["line"] == line_of(model, "# CALL")
    assert "'scaled' is called from 'loss'" in found[0]["notes"][0]["message"]


def test_call_chain_of_nested_helpers_is_listed_innermost_first(tmp_path, capsys):
    path = write(tmp_path, "chain.py", """
        import diffprog as dp


        def inner(t):
            return int(t) * t


        def middle(t):
            return inner(t) + 1.0  # INNER_CALL


        @dp.differentiable
        def outer(x):
            return middle(x) * 2.0  # MIDDLE_CALL
        """)
    _, found = run_json([path], capsys)
    assert [d["code"] for d in found] == ["DP201"]
    notes = found[0]["notes"]
    assert [n["line"] for n in notes] == [line_of(path, "# INNER_CALL"), line_of(path, "# MIDDLE_CALL")]
    assert "'inner' is called from 'middle'" in notes[0]["message"]
    assert "'middle' is called from 'outer'" in notes[1]["message"]
    assert all(n["column"] and n["end_line"] and n["end_column"] for n in notes)
    main(["check", str(path)])
    text = capsys.readouterr().out
    assert "note: " in text and "INNER_CALL" in text  # the call site's source line is shown too


def test_third_party_functions_are_opaque_and_module_values_are_inactive(tmp_path):
    path = write(tmp_path, "third.py", """
        import diffprog as dp
        import scipy.special as sp
        from thirdparty import transform
        from thirdparty import CONSTANT

        SCALE = sp.compute_scale()
        make = sp.factory()


        @dp.differentiable
        def inactive(x):
            return x * SCALE + sp.gamma(3.0) * CONSTANT


        @dp.differentiable
        def active_third_party(x):
            return sp.gamma(x)  # MARK_GAMMA


        @dp.differentiable
        def active_imported(x):
            return transform(x)  # MARK_TRANSFORM


        @dp.differentiable
        def dynamic(x):
            return make(x)  # MARK_DYNAMIC
        """)
    found = check_paths([str(path)]).diagnostics
    assert sorted((d.code, d.line) for d in found) == sorted([
        ("DP102", line_of(path, "# MARK_GAMMA")), ("DP102", line_of(path, "# MARK_TRANSFORM")),
        ("DP103", line_of(path, "# MARK_DYNAMIC"))])
    assert any("scipy.special.gamma" in d.message for d in found)
    assert any("computed when the module runs" in d.message for d in found if d.code == "DP103")


def test_the_checker_never_imports_or_runs_user_code(tmp_path):
    marker = tmp_path / "ran"
    path = write(tmp_path, "evil.py", f"""
        import diffprog as dp
        import helper_module

        open({str(marker)!r}, "w").write("ran")
        VALUE = helper_module.side_effect()


        @dp.differentiable
        def f(x):
            return x * VALUE
        """)
    write(tmp_path, "helper_module.py", f"open({str(marker)!r}, 'w').write('ran')\n"
                                        "def side_effect():\n    return 2.0\n")
    assert codes(path) == []
    assert not marker.exists()
    assert "helper_module" not in sys.modules and "evil" not in sys.modules


# ---- output formats ------------------------------------------------------------------------------------------
BAD = """
import math
import diffprog as dp


def helper(t):
    return math.floor(t) * t


@dp.differentiable
def f(x):
    try:
        y = x
    except ValueError:
        y = 0.0
    return y


@dp.differentiable
def g(x):
    return helper(x)
"""


def test_text_format_looks_like_a_compiler(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.py", BAD)
    assert main(["check", "bad.py"]) == 1
    out = capsys.readouterr().out
    assert "bad.py:11:5: DP101 error: try/except cannot be differentiated" in out
    assert "   11 |     try:" in out
    assert "      |     ^^^^" in out  # the caret underline, under the construct
    assert "bad.py:6:12: DP201 warning:" in out
    assert "note: bad.py:20:12: 'helper' is called from 'g'" in out
    assert "fix: " in out
    assert out.rstrip().endswith("1 error, 1 warning in 2 differentiated functions, 1 file")


def test_json_format(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.py", BAD)
    status, found = run_json(["bad.py"], capsys)
    assert status == 1
    keys = {"path", "line", "column", "end_line", "end_column", "code", "severity", "message", "notes", "fix"}
    assert all(set(d) == keys for d in found)
    first = found[0]
    assert (first["path"], first["line"], first["column"], first["code"], first["severity"]) == \
        ("bad.py", 6, 12, "DP201", "warning")
    assert (first["end_line"], first["end_column"]) == (6, 25)  # `math.floor(t)`, end exclusive
    assert first["notes"][0]["path"] == "bad.py" and first["notes"][0]["line"] == 20
    assert found[1]["code"] == "DP101" and found[1]["end_line"] == 14


def test_sarif_format(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "bad.py", BAD)
    assert main(["check", "--format", "sarif", "bad.py"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["version"] == "2.1.0" and "sarif" in document["$schema"]
    run = document["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {r["id"] for r in rules} >= {"DP101", "DP201", "DP301"}
    assert all(r["shortDescription"]["text"] and r["help"]["text"] for r in rules)
    results = run["results"]
    assert [r["ruleId"] for r in results] == ["DP201", "DP101"]
    assert [r["level"] for r in results] == ["warning", "error"]
    assert all(rules[r["ruleIndex"]]["id"] == r["ruleId"] for r in results)
    location = results[0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "bad.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 6, "startColumn": 12, "endLine": 6, "endColumn": 25}
    related = results[0]["relatedLocations"][0]
    assert related["physicalLocation"]["region"]["startLine"] == 20 and related["message"]["text"]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"].startswith("file://")


def test_every_diagnostic_carries_end_positions(tmp_path, capsys):
    write(tmp_path, "bad.py", BAD)
    for text in __import__("test_catalogue").CATALOGUE.values():
        if text.example and text.checked_by == "check":
            write(tmp_path, f"{text.code}.py", text.example)
    _, found = run_json([tmp_path], capsys)
    assert len(found) >= 15
    for d in found:
        assert d["end_line"] >= d["line"] and d["end_column"] is not None, d


# ---- filtering, suppression, configuration, exit codes -----------------------------------------------------------
def test_select_and_ignore(tmp_path, capsys):
    path = write(tmp_path, "bad.py", BAD)
    assert [d["code"] for d in run_json(["--select", "DP2", path], capsys)[1]] == ["DP201"]
    assert [d["code"] for d in run_json(["--ignore", "DP201", path], capsys)[1]] == ["DP101"]
    assert run_json(["--select", "DP101,DP201", "--ignore", "DP1", path], capsys)[1][0]["code"] == "DP201"
    assert main(["check", "--select", "DP201", str(path)]) == 0  # warnings only: success
    capsys.readouterr()


def test_warnings_as_errors(tmp_path, capsys):
    path = write(tmp_path, "w.py", "import diffprog as dp\n\n\n@dp.differentiable\ndef f(x):\n    return int(x) * x\n")
    assert main(["check", str(path)]) == 0
    assert main(["check", "--warnings-as-errors", str(path)]) == 1
    capsys.readouterr()


def test_inline_suppression(tmp_path):
    path = write(tmp_path, "s.py", """
        import diffprog as dp


        @dp.differentiable
        def f(x):
            a = int(x) * x  # diffprog: ignore[DP201]
            b = round(x) * x  # diffprog: ignore[DP101, DP202]
            c = int(x) * x  # diffprog: ignore
            return a + b + c
        """)
    report = check_paths([str(path)])
    assert [(d.code, d.line) for d in report.diagnostics] == [("DP201", 7)]
    assert report.suppressed == 2


def test_configuration_in_pyproject_is_found_by_walking_up(tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.diffprog]\nignore = ["DP201"]\n'
                                             'warnings-as-errors = true\n')
    path = write(tmp_path, "src/pkg/m.py", BAD)
    status, found = run_json([path], capsys)
    assert [d["code"] for d in found] == ["DP101"] and status == 1
    assert [d["code"] for d in run_json(["--ignore", "DP101", path], capsys)[1]] == ["DP201"]  # flag wins
    clean = write(tmp_path, "src/pkg/w.py", "import diffprog as dp\n\n\n@dp.differentiable\ndef f(x):\n"
                                            "    return x * (x > 0.0)\n")
    assert main(["check", "--select", "DP2", "--ignore", "DP101", str(clean)]) == 1  # warnings-as-errors
    capsys.readouterr()


@pytest.mark.parametrize("config,message", [
    ('[tool.diffprog]\nselect = ["DP999"]\n', "unknown diagnostic code"),
    ('[tool.diffprog]\nignored = ["DP201"]\n', "unknown key"),
    ('[tool.diffprog]\nwarnings-as-errors = "yes"\n', "true or false"),
    ('[tool.diffprog\n', "cannot read"),
])
def test_bad_configuration_is_a_usage_error(config, message, tmp_path, capsys):
    (tmp_path / "pyproject.toml").write_text(config)
    path = write(tmp_path, "m.py", "x = 1\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_check_without_a_path_checks_the_current_directory(tmp_path, capsys, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.diffprog]\nignore = ["DP201"]\n')
    write(tmp_path, "pkg/bad.py", BAD)
    monkeypatch.chdir(tmp_path)
    status, found = run_json([], capsys)  # `diffprog check --format json`, as `ruff check` checks "."
    assert status == 1
    assert [(Path(d["path"]).name, d["code"]) for d in found] == [("bad.py", "DP101")]  # DP201: the config


def test_configuration_is_read_with_tomli_where_there_is_no_tomllib(tmp_path):
    # Python 3.10 has no tomllib: the config module falls back to tomli (a dependency there). On 3.11+, simulate it
    # by hiding tomllib and offering its own code under the name tomli.
    (tmp_path / "pyproject.toml").write_text('[tool.diffprog]\nignore = ["DP201"]\n')
    code = ("import sys\ntry:\n    import tomllib\nexcept ModuleNotFoundError:\n    pass\nelse:\n"
            "    sys.modules['tomli'], sys.modules['tomllib'] = tomllib, None\n"
            "from diffprog.cli.config import load_settings, tomllib as used\n"
            "assert used is sys.modules['tomli']\nprint(load_settings(['.']).ignore)\n")
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['DP201']"


def test_usage_errors_exit_2(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.py")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["check", "--select", "XY1", str(tmp_path)]) == 2
    assert main(["check", "--format", "xml", str(tmp_path)]) == 2
    assert main([]) == 2
    capsys.readouterr()


def test_a_file_that_cannot_be_parsed_is_a_diagnostic_and_the_others_are_checked(tmp_path, capsys):
    write(tmp_path, "broken.py", "def f(x)\n    return x\n")
    (tmp_path / "latin.py").write_bytes(b"x = '\xff'\n")
    write(tmp_path, "bad.py", BAD)
    status, found = run_json([tmp_path], capsys)
    assert status == 2
    by_path = {(Path(d["path"]).name, d["code"]) for d in found}
    assert ("broken.py", "DP001") in by_path and ("latin.py", "DP001") in by_path
    assert ("bad.py", "DP101") in by_path
    broken = next(d for d in found if d["path"].endswith("broken.py"))
    assert (broken["line"], broken["column"]) == (1, 9) and "expected ':'" in broken["message"]


def test_an_internal_failure_on_one_function_does_not_stop_the_others(tmp_path, capsys, monkeypatch):
    real = engine._check

    def flaky(target):
        if target.function.__name__ == "f":
            raise RuntimeError("boom")
        return real(target)

    monkeypatch.setattr(engine, "_check", flaky)
    path = write(tmp_path, "bad.py", BAD)
    status, found = run_json([path], capsys)
    assert status == 2
    assert [(d["code"], d["line"]) for d in found] == [("DP201", 6), ("DP002", 10)]
    crash = found[1]
    assert "internal error while checking 'f': RuntimeError: boom" in crash["message"]
    assert "raised at" in crash["notes"][0]["message"]


# ---- the command line as a process ---------------------------------------------------------------------------
def _run(args, cwd, extra_env=None):
    env = {**os.environ, **(extra_env or {})}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def test_python_dash_m_and_no_numba_import(tmp_path):
    write(tmp_path, "bad.py", BAD)
    done = _run(["-X", "importtime", "-m", "diffprog", "check", "bad.py"], tmp_path)
    assert done.returncode == 1, done.stderr
    assert "bad.py:11:5: DP101 error" in done.stdout
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "diffprog.cli.engine" in imported  # the trace is real
    assert not any(name == "numba" or name.startswith("numba.") for name in imported)
    assert not any(name.startswith("llvmlite") for name in imported)


def test_in_process_run_leaves_numba_unimported(tmp_path):
    write(tmp_path, "bad.py", BAD)
    code = ("import sys\nfrom diffprog.cli import main\nstatus = main(['check', '--format', 'json', 'bad.py'])\n"
            "assert 'numba' not in sys.modules, 'numba was imported'\nsys.exit(status)\n")
    done = _run(["-c", code], tmp_path)
    assert done.returncode == 1, done.stderr
    assert json.loads(done.stdout)[0]["code"] == "DP201"


def test_version(tmp_path):
    from diffprog.version import __version__

    done = _run(["-m", "diffprog", "--version"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"diffprog {__version__}"


def test_console_script_is_declared():
    text = (REPO / "pyproject.toml").read_text()
    assert 'diffprog = "diffprog.cli:main"' in text


def test_decorator_re_exported_by_a_project_module_is_found(tmp_path):
    write(tmp_path, "mylib.py", "from diffprog import differentiable\n")
    path = write(tmp_path, "user.py", "from mylib import differentiable as d\n\n\n@d\ndef f(x):\n    global g\n"
                                      "    return x\n")
    assert codes(path) == [("DP104", 6)]


def test_the_examples_check_clean():
    """The examples run and differentiate: the checker, which guesses unannotated parameter types, must not
    report problems in them (type errors under a guess, and objects of unknown class, are not reported)."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    report = check_paths([str(examples)])
    assert report.diagnostics == [], [str(d) for d in report.diagnostics]
    assert report.functions >= 5


def test_guessed_types_do_not_make_errors_but_annotations_do(tmp_path):
    path = tmp_path / "guess.py"
    path.write_text(
        "import numpy as np\nimport diffprog as dp\n\n\n"
        "@dp.differentiable\ndef f(W, x):\n    return np.sum(W @ x)\n\n\n"
        "@dp.differentiable\ndef g(W: float, x: float):\n    return np.sum(W @ x)\n")
    assert codes(path) == [("DP101", 12)]


# ---- false positives and crashes on correct code (each one a reason to drop the pre-commit hook) -------------
def _check_clean(tmp_path, text):
    """`python -m diffprog check` on a correct file: exit 0 and no diagnostic."""
    write(tmp_path, "ok.py", text)
    done = _run(["-m", "diffprog", "check", "--format", "json", "ok.py"], tmp_path,
                {"PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")})
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout) == []


def test_a_number_reaching_an_array_rule_is_not_an_internal_error(tmp_path):
    """kmeans with an unannotated centers matrix: guessed a float, `np.sum(..., axis=1)` of it crashed the rule
    (DP002 "'Scalar' object has no attribute 'ndim'"); it is a type error under a guess, not reported."""
    _check_clean(tmp_path, """
        import numpy as np
        import diffprog as dp


        @dp.differentiable
        def kmeans_cost(points, centers):
            cost = 0.0
            for i in range(points.shape[0]):
                d = np.sum((centers - points[i]) ** 2, axis=1)
                cost = cost + np.min(d)
            return cost
        """)


def test_an_ndarray_annotation_is_not_taken_for_a_vector(tmp_path):
    """`A: np.ndarray` says no rank: A @ x with A a matrix was checked with A a vector (DP101 "matmul cannot be
    applied to float64, float64"). The ranks the code admits are tried; an error is reported when all fail."""
    _check_clean(tmp_path, """
        import numpy as np
        import diffprog as dp


        @dp.differentiable
        def f(A: np.ndarray, x: np.ndarray) -> float:
            y = A @ x
            return np.dot(y, y)


        @dp.differentiable
        def gmm_objective(alphas: np.ndarray, means: np.ndarray, icf: np.ndarray, x: np.ndarray) -> float:
            total = 0.0
            for i in range(x.shape[0]):
                terms = np.zeros(alphas.shape[0])
                for j in range(alphas.shape[0]):
                    scaled = np.exp(icf[j]) * (x[i] - means[j])
                    terms[j] = alphas[j] + np.sum(icf[j]) - 0.5 * np.dot(scaled, scaled)
                top = np.max(terms)
                total = total + top + np.log(np.sum(np.exp(terms - top)))
            return total
        """)


def test_an_ndarray_annotation_wrong_at_every_rank_is_reported(tmp_path):
    path = write(tmp_path, "bad.py", """
        import numpy as np
        import diffprog as dp


        @dp.differentiable
        def f(a: np.ndarray, x: float) -> float:
            return np.sum(a @ x)
        """)
    assert codes(path) == [("DP101", 7)]


def test_loops_of_array_code_and_nested_optimization_check_clean(tmp_path):
    """Functions that compile and run: a GMM objective over rows, row norms of an unannotated matrix (DP002
    "'Scalar' object has no attribute 'dtype'" when X was guessed a float), nested optimization through
    dp.grad of an inner objective."""
    _check_clean(tmp_path, """
        import numpy as np
        import diffprog as dp


        @dp.differentiable
        def gmm_objective(alphas, means, icf, x):
            total = 0.0
            for i in range(x.shape[0]):
                terms = np.zeros(alphas.shape[0])
                for j in range(alphas.shape[0]):
                    scaled = np.exp(icf[j]) * (x[i] - means[j])
                    terms[j] = alphas[j] + np.sum(icf[j]) - 0.5 * np.dot(scaled, scaled)
                top = np.max(terms)
                total = total + top + np.log(np.sum(np.exp(terms - top)))
            return total


        @dp.differentiable
        def row_norms(X):
            return np.sum(np.linalg.norm(X, axis=1))


        def inner(w, X, y):
            r = X @ w - y
            return np.dot(r, r) + 0.1 * np.dot(w, w)


        @dp.differentiable
        def outer(X, y):
            w = np.zeros(X.shape[1])
            for _ in range(10):
                w = w - 0.01 * dp.grad(inner)(w, X, y)
            return np.sum(w * w)


        def inner_s(x, y):
            return (x - y) ** 2 + 0.1 * x * x


        @dp.differentiable
        def outer_s(y):
            x = 0.0
            for _ in range(20):
                x = x - 0.1 * dp.grad(inner_s)(x, y)
            return x * x + y
        """)


@pytest.mark.parametrize("future", ["from __future__ import annotations\n", ""])
def test_a_parameter_annotated_with_a_registered_class_is_checked_as_one(future, tmp_path):
    """`p: Quat`, Quat a @differentiable_type dataclass of the same file: `p.w` was DP105 (no tangent protocol),
    with or without string annotations. Its fields are checked as the decorator checks them; a class with
    methods (not inlined statically) leaves the function unchecked rather than wrongly reported."""
    _check_clean(tmp_path, future + textwrap.dedent("""
        import math
        from dataclasses import dataclass
        import diffprog as dp


        @dp.differentiable_type
        @dataclass
        class Quat:
            w: float
            x: float


        @dp.differentiable_type
        @dataclass(frozen=True)
        class Vec2:
            x: float
            y: float

            def norm(self):
                return math.sqrt(self.x * self.x + self.y * self.y)


        @dp.differentiable
        def norm2(p: Quat) -> float:
            return p.w * p.w + p.x * p.x


        @dp.differentiable
        def scaled(p: "Quat", s: float) -> float:
            q = Quat(p.w * s, p.x)
            return q.w + q.x


        @dp.differentiable
        def length(v: Vec2) -> float:
            return v.norm()
        """))
    path = write(tmp_path, "bad.py", future + textwrap.dedent("""
        from dataclasses import dataclass
        import diffprog as dp


        @dp.differentiable_type
        @dataclass
        class Quat:
            w: float
            x: float


        @dp.differentiable
        def bad(p: Quat) -> float:
            return p.w * p.y
        """))
    assert [c for c, _ in codes(path)] == ["DP105"]
