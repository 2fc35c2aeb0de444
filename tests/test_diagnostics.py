"""Bad input is reported as a DifferentiabilityError pointing at the user's own source line.

Every offending line below carries a trailing ``# MARK:<tag>`` comment; the expected line numbers are found
by searching this file (or the temporary file written for a case), so edits to the file cannot silently
break the line checks. Where the contract admits more than one sensible place for a diagnostic (e.g. the
``global`` statement or the assignment it enables), every acceptable line carries the same tag.

The second half checks that legitimate code (print of an active value, integer counters, branches on active
values, cut builtins wrapped in no_derivative) does NOT raise and is differentiated correctly.
"""
import contextlib
import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

import diffprog as dp
from reference import write_module

THIS_FILE = os.path.realpath(__file__)


# --------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------


def _source_lines(path):
    return Path(path).read_text().splitlines()


def marked_lines(tag, path=THIS_FILE):
    suffix = f"# MARK:{tag}"
    lines = {i + 1 for i, text in enumerate(_source_lines(path)) if text.rstrip().endswith(suffix)}
    assert lines, f"test bug: no line marked {suffix!r} in {path}"
    return lines


def _same_file(reported, expected):
    if not reported:
        return False
    try:
        return os.path.realpath(reported) == os.path.realpath(expected)
    except (TypeError, ValueError):
        return False


def _describe(err):
    return "\n".join(
        f"  {d.code} {d.file}:{d.line}:{d.col} {d.message!r} hint={d.hint!r}" for d in err.diagnostics
    )


def check_well_formed(err):
    assert isinstance(err, dp.DifferentiabilityError)
    diagnostics = err.diagnostics
    assert isinstance(diagnostics, tuple) and len(diagnostics) >= 1
    for d in diagnostics:
        assert isinstance(d.code, str) and re.fullmatch(r"DP\d{3}", d.code), d.code
        assert isinstance(d.message, str) and d.message.strip(), f"empty message: {d!r}"
        assert isinstance(d.hint, str) and d.hint.strip(), f"empty hint (fix suggestion): {d!r}"
    assert "fix:" in str(err)


def expect_diagnostic(err, tag, codes=None, path=THIS_FILE):
    """Assert `err` has a diagnostic at a line marked `tag` in `path` (with a code in `codes`)."""
    check_well_formed(err)
    lines = marked_lines(tag, path)
    matches = [
        d
        for d in err.diagnostics
        if _same_file(d.file, path) and d.line in lines and (codes is None or d.code in codes)
    ]
    assert matches, (
        f"expected a diagnostic{' with code in ' + str(sorted(codes)) if codes else ''} at "
        f"{path}:{sorted(lines)}; got:\n{_describe(err)}"
    )
    d = matches[0]
    assert isinstance(d.line, int) and d.line >= 1
    assert isinstance(d.col, int) and d.col >= 0
    text = str(err)
    assert re.search(re.escape(f"{d.file}:{d.line}:") + r"\d+", text), (
        f"str(err) lacks {d.file}:{d.line}:<col>:\n{text}"
    )
    excerpt = _source_lines(path)[d.line - 1].split("# MARK:")[0].strip()
    assert excerpt in text, f"str(err) lacks the source excerpt {excerpt!r}:\n{text}"
    assert "fix:" in text
    return d


def grad_call(fn, *args, argnums=0):
    """Create the gradient and call it: errors may surface at either point."""
    return dp.grad(fn, argnums=argnums)(*args)


# --------------------------------------------------------------------------------------------------------
# Offending programs (undecorated, so that module import never raises)
# --------------------------------------------------------------------------------------------------------


def bad_try(x):
    try:  # MARK:try
        y = 1.0 / x
    except ZeroDivisionError:
        y = 0.0
    return y


def bad_with(x):
    with contextlib.nullcontext():  # MARK:with
        y = x * 2.0
    return y


def bad_yield(x):
    yield x * 2.0  # MARK:yield


def bad_del(x):
    y = x * 2.0
    del y  # MARK:del
    return x


def bad_import(x):
    import cmath  # MARK:import

    return x * 2.0 + cmath.pi


def bad_star_args(*xs):  # MARK:star_args
    return xs[0] * 2.0


def bad_class_def(x):
    class Local:  # MARK:class_def
        scale = 2.0

    return x * Local.scale


async def bad_async(x):  # MARK:async
    return x * 2.0


def bad_fstring(x):
    s = f"{x}"  # MARK:fstring
    return x * len(s)


def bad_lambda(x):
    sq = lambda t: t * t  # MARK:lambda
    return sq(x)


_G = 0.0


def bad_global(x):
    global _G  # MARK:global
    _G = x * 2.0  # MARK:global
    return x * 3.0


def _make_nonlocal():
    acc = 0.0

    def bad_nonlocal(x):
        nonlocal acc  # MARK:nonlocal
        acc = x * 2.0  # MARK:nonlocal
        return x * 3.0

    return bad_nonlocal


bad_nonlocal = _make_nonlocal()


class Box:
    def __init__(self, v):
        self.v = v


def bad_box(x):
    b = Box(x)  # MARK:box
    return b.v * 2.0  # MARK:box


def box_arg(b):  # MARK:box_arg
    return b.v * 2.0  # MARK:box_arg


def bad_str(x):
    s = str(x)  # MARK:str_active
    return x * len(s)


def bad_nextafter(x):
    return math.nextafter(x, 1.0) * 2.0  # MARK:nextafter


def bad_gamma(x):
    y = math.gamma(x)  # MARK:gamma
    return y + x


def str_arg(x, s):  # MARK:str_arg
    return x * len(s)


def int_arg(x, n):  # MARK:int_arg
    return x * n


def bool_arg(x, flag):  # MARK:bool_arg
    if flag:
        return x * 2.0
    return x


_EXEC_NS = {"math": math}
exec(compile("def exec_defined(x):\n    return x * x + 1.0\n", "<generated>", "exec"), _EXEC_NS)
exec_defined = _EXEC_NS["exec_defined"]


def calls_exec_defined(x):
    return exec_defined(x) * 2.0  # MARK:exec_call


def _square(t):
    return t * t


def _cube(t):
    return t * t * t


def calls_param(x, fn):
    return fn(x) * 2.0  # MARK:call_param


def calls_variable(x):
    h = _square
    if x > 0.0:
        h = _cube
    return h(x)  # MARK:call_variable


def recursive_power(x, n):  # MARK:recursion
    if n <= 0:
        return 1.0
    return x * recursive_power(x, n - 1)  # MARK:recursion


def even_power(x, n):  # MARK:mutual
    if n == 0:
        return 1.0
    return x * odd_power(x, n - 1)  # MARK:mutual


def odd_power(x, n):  # MARK:mutual
    if n == 0:
        return 1.0
    return x * even_power(x, n - 1)  # MARK:mutual


def missing_return(x):  # MARK:no_return
    if x > 0.0:  # MARK:no_return
        return x * 2.0  # MARK:no_return


def missing_return_after_loop(x, n):  # MARK:no_return_loop
    for i in range(n):  # MARK:no_return_loop
        if i == 2:  # MARK:no_return_loop
            return x * i  # MARK:no_return_loop


class Holder:
    def __init__(self):
        self.v = 0.0


def writes_attribute(x, h):
    h.v = x * 2.0  # MARK:attr_write
    return x * 3.0


def writes_array(a, x):
    a[0] = x  # MARK:inplace
    return a[0] * a[1]


def augments_array(a, x):
    a[1] += x  # MARK:inplace_aug
    return a[0] * a[1]


def tuple_valued(x, y):  # MARK:tuple_result
    return x * y, x + y  # MARK:tuple_result


def _helper_with_try(t):
    try:  # MARK:nested_try
        return t * 2.0
    except Exception:
        return 0.0


def calls_helper_with_try(x):
    return _helper_with_try(x) + 1.0


def uses_comprehension(x):
    terms = [x * i for i in range(4)]  # MARK:comprehension
    return terms[0] + terms[3]


def expand_dims_of_number(x):
    return np.sum(np.expand_dims(x[0], 0) * 2.0)  # MARK:expand_number


# --------------------------------------------------------------------------------------------------------
# The bad cases: (function, args, argnums, marker tag, acceptable codes or None)
# --------------------------------------------------------------------------------------------------------

CASES = [
    pytest.param(bad_try, (1.0,), 0, "try", {"DP101"}, id="try_except"),
    pytest.param(bad_with, (1.0,), 0, "with", {"DP101"}, id="with"),
    pytest.param(bad_yield, (1.0,), 0, "yield", {"DP101"}, id="yield"),
    pytest.param(bad_del, (1.0,), 0, "del", {"DP101"}, id="del"),
    pytest.param(bad_import, (1.0,), 0, "import", {"DP101"}, id="import_inside"),
    pytest.param(bad_star_args, (1.0,), 0, "star_args", {"DP101"}, id="star_args"),
    pytest.param(bad_class_def, (1.0,), 0, "class_def", {"DP101"}, id="class_def_inside"),
    pytest.param(bad_async, (1.0,), 0, "async", {"DP101"}, id="async_def"),
    pytest.param(bad_fstring, (1.0,), 0, "fstring", {"DP101"}, id="fstring_of_active"),
    pytest.param(bad_lambda, (1.0,), 0, "lambda", None, id="lambda_assigned"),
    pytest.param(bad_global, (1.0,), 0, "global", {"DP104"}, id="global_write"),
    pytest.param(bad_nonlocal, (1.0,), 0, "nonlocal", {"DP104"}, id="nonlocal_write"),
    pytest.param(bad_box, (1.0,), 0, "box", {"DP105"}, id="class_instance_on_active_path"),
    pytest.param(box_arg, (Box(1.0),), 0, "box_arg", {"DP105"}, id="class_instance_argument"),
    pytest.param(bad_str, (1.0,), 0, "str_active", {"DP105"}, id="str_of_active"),
    pytest.param(bad_nextafter, (0.5,), 0, "nextafter", {"DP102"}, id="math_nextafter"),
    pytest.param(bad_gamma, (1.5,), 0, "gamma", {"DP102"}, id="math_gamma"),
    pytest.param(str_arg, (1.0, "abc"), 1, "str_arg", {"DP106"}, id="grad_wrt_str"),
    pytest.param(int_arg, (1.0, 3), 1, "int_arg", {"DP106"}, id="grad_wrt_int"),
    pytest.param(int_arg, (2, 3.0), 0, "int_arg", {"DP106"}, id="grad_wrt_int_first_arg"),
    pytest.param(bool_arg, (1.0, True), 1, "bool_arg", {"DP106"}, id="grad_wrt_bool"),
    pytest.param(calls_exec_defined, (1.0,), 0, "exec_call", {"DP109", "DP102"}, id="calls_exec_defined"),
    pytest.param(calls_param, (1.0, _square), 0, "call_param", {"DP103"}, id="calls_parameter"),
    pytest.param(calls_variable, (1.0,), 0, "call_variable", {"DP103"}, id="calls_variable"),
    pytest.param(missing_return, (1.0,), 0, "no_return", {"DP108"}, id="missing_return"),
    pytest.param(
        missing_return_after_loop, (1.0, 5), 0, "no_return_loop", {"DP108"}, id="missing_return_after_loop"
    ),
    pytest.param(writes_attribute, (1.0, Holder()), 0, "attr_write", {"DP104"}, id="attribute_write"),
    pytest.param(tuple_valued, (1.0, 2.0), 0, "tuple_result", {"DP111"}, id="grad_of_tuple_result"),
    pytest.param(calls_helper_with_try, (1.0,), 0, "nested_try", {"DP101"}, id="problem_in_callee"),
    pytest.param(expand_dims_of_number, (np.arange(3.0),), 0, "expand_number", {"DP101"},
                 id="expand_dims_of_a_number"),
]


@pytest.mark.parametrize("fn,args,argnums,tag,codes", CASES)
def test_bad_input_is_diagnosed_at_the_offending_line(fn, args, argnums, tag, codes):
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(fn, *args, argnums=argnums)
    expect_diagnostic(info.value, tag, codes)


@pytest.mark.parametrize(
    "fn,tag",
    [
        (bad_try, "try"),
        (bad_with, "with"),
        (bad_yield, "yield"),
        (bad_async, "async"),
        (bad_del, "del"),
        (bad_class_def, "class_def"),
        (bad_import, "import"),
    ],
    ids=lambda v: v if isinstance(v, str) else v.__name__,
)
def test_syntax_problems_raise_at_decoration_time(fn, tag):
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.differentiable(fn)
    expect_diagnostic(info.value, tag, {"DP101"})
    with pytest.raises(dp.DifferentiabilityError):
        dp.differentiable(jit=False)(fn)


def test_in_place_write_to_differentiated_array():
    a = np.array([1.0, 2.0, 3.0])
    before = a.copy()
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(writes_array, a, 3.0, argnums=0)
    expect_diagnostic(info.value, "inplace", {"DP107"})
    np.testing.assert_array_equal(a, before)  # raised at specialization, before running anything


def test_augmented_in_place_write_to_differentiated_array():
    a = np.array([1.0, 2.0, 3.0])
    before = a.copy()
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(augments_array, a, 3.0, argnums=(0, 1))
    expect_diagnostic(info.value, "inplace_aug", {"DP107"})
    np.testing.assert_array_equal(a, before)


def test_grad_of_tuple_result_message_says_use_vjp():
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(tuple_valued, 1.0, 2.0, argnums=(0, 1))
    d = expect_diagnostic(info.value, "tuple_result", {"DP111"})
    assert "vjp" in d.message or "vjp" in d.hint
    assert "vjp" in str(info.value)
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.value_and_grad(tuple_valued)(1.0, 2.0)
    expect_diagnostic(info.value, "tuple_result", {"DP111"})


def test_exec_defined_function_has_no_source():
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(exec_defined, 1.0)
    check_well_formed(info.value)
    assert any(d.code == "DP109" for d in info.value.diagnostics), _describe(info.value)


def test_exec_defined_helper_in_a_user_file_is_reported_in_that_file():
    module, path = write_module(
        """
import math

exec("def generated(x):\\n    return x * 3.0\\n")


def f(x):
    y = x * x
    return generated(y) + 1.0  # MARK:tmp_exec
""",
        "exec_helper",
    )
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(module.f, 2.0)
    expect_diagnostic(info.value, "tmp_exec", {"DP109", "DP102"}, path=path)


def test_problem_in_a_temporary_user_file_is_reported_in_that_file():
    module, path = write_module(
        """
import math


def helper(t):
    return math.sin(t) * t


def f(x):
    s = helper(x)
    with open("/dev/null"):  # MARK:tmp_with
        s = s * 2.0
    return s
""",
        "with_in_temp",
    )
    with pytest.raises(dp.DifferentiabilityError) as info:
        grad_call(module.f, 2.0)
    expect_diagnostic(info.value, "tmp_with", {"DP101"}, path=path)


def test_recursion_either_works_or_is_diagnosed():
    try:
        got = grad_call(recursive_power, 1.5, 3)
    except dp.DifferentiabilityError as err:
        expect_diagnostic(err, "recursion", {"DP110"})
    else:
        assert got == pytest.approx(3 * 1.5**2)


def test_mutual_recursion_either_works_or_is_diagnosed():
    try:
        got = grad_call(even_power, 1.5, 4)
    except dp.DifferentiabilityError as err:
        expect_diagnostic(err, "mutual", {"DP110"})
    else:
        assert got == pytest.approx(4 * 1.5**3)


def test_comprehension_either_works_or_is_diagnosed():
    try:
        got = grad_call(uses_comprehension, 1.5)
    except dp.DifferentiabilityError as err:
        expect_diagnostic(err, "comprehension")
    else:
        assert got == pytest.approx(3.0)


def test_builtin_without_python_source_works_or_is_diagnosed():
    try:
        got = grad_call(math.sin, 0.5)
    except dp.DifferentiabilityError as err:
        check_well_formed(err)
    else:
        assert got == pytest.approx(math.cos(0.5))


def test_error_is_reported_on_every_call_not_only_the_first():
    g = None
    with pytest.raises(dp.DifferentiabilityError):
        g = dp.grad(bad_gamma)
        g(1.5)
    if g is not None:
        with pytest.raises(dp.DifferentiabilityError):
            g(2.5)


# --------------------------------------------------------------------------------------------------------
# Legitimate code that must NOT raise, with correct gradients
# --------------------------------------------------------------------------------------------------------


def prints_active(x):
    y = x * x
    print(y)
    print("value", y, x)
    return y * 3.0


def int_loop_counter(x, n):
    count = 0
    s = x
    for i in range(n):
        count += 1
        s = s * x
    j = 0
    while j < count:
        j = j + 1
    return s + count + j


def branch_on_active(x):
    if x > 1.0:
        return x * x
    elif x < -1.0 or x == 0.5:
        return -x
    return 3.0 * x


def wrapped_int(x):
    n = dp.no_derivative(int(x))
    return x * n + dp.stop_gradient(round(x * 2.0))


def bare_int_and_round(x):
    return int(x) + round(x) + x


def test_print_of_active_value_does_not_raise(capfd):
    g = dp.grad(prints_active)
    assert g(1.5) == pytest.approx(9.0)
    assert g(-2.0) == pytest.approx(-12.0)
    nojit = dp.grad(dp.differentiable(jit=False)(prints_active))
    assert nojit(1.5) == pytest.approx(9.0)


def test_integer_loop_counter_does_not_raise():
    g = dp.grad(int_loop_counter)
    for x, n in [(1.3, 0), (1.3, 1), (0.7, 5), (-1.1, 4)]:
        assert g(x, n) == pytest.approx((n + 1) * x**n)


def test_branch_on_active_value_does_not_raise():
    g = dp.grad(branch_on_active)
    assert g(2.0) == pytest.approx(4.0)
    assert g(-3.0) == pytest.approx(-1.0)
    assert g(0.5) == pytest.approx(-1.0)
    assert g(0.25) == pytest.approx(3.0)


def test_no_derivative_wrapped_int_does_not_raise():
    g = dp.grad(wrapped_int)
    for x in (0.3, 2.7, -3.2):
        assert g(x) == pytest.approx(float(int(x)))


def test_bare_int_and_round_have_zero_derivative_and_do_not_raise():
    g = dp.grad(bare_int_and_round)
    for x in (0.3, 2.7, -3.2):
        assert g(x) == pytest.approx(1.0)


# --------------------------------------------------------------------------------------------------------
# What a script shows: the diagnostics and the user's own frames, none of diffprog's
# --------------------------------------------------------------------------------------------------------
USER_SCRIPT = '''
import math, sys, traceback
import numpy as np
import diffprog as dp

def bad(x):
    return math.lgamma(x) * x

def helper(x):
    return dp.grad(bad)(x)  # CALL:helper

def case(name, thunk):
    print("==== " + name, file=sys.stderr)
    try:
        thunk()
    except Exception:
        traceback.print_exc()  # what the interpreter prints for an uncaught exception

case("grad", lambda: dp.grad(bad)(1.5))  # CALL:grad
case("helper", lambda: helper(1.5))  # CALL:outer
case("jacobian", lambda: dp.jacobian(bad)(1.5))  # CALL:jacobian
case("hessian", lambda: dp.hessian(bad)(1.5))  # CALL:hessian
case("jvp", lambda: dp.jvp(bad, (1.5,), (1.0,)))  # CALL:jvp
case("source", lambda: dp.source(bad))  # CALL:source
case("value_and_grad", lambda: dp.value_and_grad(bad)(1.5))  # CALL:value_and_grad
def unknown(x):
    return missing_helper(x)

compiled = dp.differentiable(jit=False)(unknown)
case("first call", lambda: compiled(1.5))  # CALL:first call
def pair(x):
    return x, x

case("tuple result", lambda: dp.grad(pair)(1.5))  # CALL:tuple result

import diffprog.compiler.pipeline as pipeline
real_run = pipeline.run
def internal_bug(*args, **kwargs):
    raise RuntimeError("an internal bug")
pipeline.run = internal_bug
def square(x):
    return x * x

case("internal bug", lambda: dp.grad(square)(1.5))
pipeline.run = real_run

print("==== decorator", file=sys.stderr)
@dp.differentiable  # CALL:decorator
def broken(x):
    try:
        return x
    except ValueError:
        return 0.0
'''


def test_a_script_shows_no_internal_frames(tmp_path):
    import subprocess
    import sys

    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)
    env = dict(os.environ, DIFFPROG_PROGRESS="0")
    env.pop("DIFFPROG_VERBOSE", None)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=600)
    assert done.returncode == 1, done.stderr
    package = os.path.dirname(os.path.abspath(dp.__file__))
    lines = USER_SCRIPT.splitlines()
    sections = dict(part.split("\n", 1) for part in done.stderr.split("==== ")[1:])
    for name, text in sections.items():
        if name == "internal bug":  # not a DifferentiabilityError: the full traceback, diffprog's frames too
            assert "RuntimeError: an internal bug" in text and f"{package}{os.sep}compiler" in text, text
            continue
        assert text.startswith("Traceback (most recent call last):"), (name, text)
        assert "DifferentiabilityError: cannot differentiate" in text, (name, text)
        assert package not in text and "diffprog/" not in text, (name, text)  # no frame of diffprog's
        number = 1 + lines.index(next(line for line in lines if line.endswith(f"# CALL:{name}")))
        assert f'File "{script}", line {number}' in text, (name, text)  # the user's line stays
        if name == "helper":  # and every user frame on the way
            called = 1 + lines.index(next(line for line in lines if line.endswith("# CALL:helper")))
            assert f'File "{script}", line {called}, in helper' in text, text
        if name not in ("decorator", "tuple result", "first call"):
            assert f"{script}:7:12: error DP102" in text, (name, text)


def lgamma_times(x):
    return math.lgamma(x) * x


def test_internal_frames_are_kept_with_diffprog_verbose(monkeypatch):
    import traceback

    package = os.path.dirname(os.path.abspath(dp.__file__))

    def frames():
        with pytest.raises(dp.DifferentiabilityError) as info:
            dp.grad(lgamma_times)(1.5)
        return [f.filename for f in traceback.extract_tb(info.value.__traceback__)]

    monkeypatch.delenv("DIFFPROG_VERBOSE", raising=False)
    assert frames() and not any(name.startswith(package) for name in frames())
    monkeypatch.setenv("DIFFPROG_VERBOSE", "1")  # for diffprog's developers: where the error was raised
    assert any(name.startswith(os.path.join(package, "compiler")) for name in frames())
