"""Each pass of the pipeline (diffprog/compiler/pipeline.py), tested on its own: the code just before a pass and
just after it, through `FunctionCompiler.compile(mode, wrt, signature, until=pass)` and
`dp.source(f, mode, args=..., after=pass)`, and `DIFFPROG_DUMP=pass`.

Everything here runs without numba (`jit=False`): the passes are the point, not the machine code.
"""
from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest

import diffprog as dp
from diffprog import DifferentiabilityError, DifferentiabilityWarning
from diffprog.compiler.pipeline import PASS_NAMES
from diffprog.ir import core as C


# ---- functions under test ---------------------------------------------------------------------------------------
@dp.differentiable(jit=False)
def dead_and_invariant(x, n):
    s = 0.0
    unused = x * 3.0
    for i in range(n):
        c = math.sin(x)
        s = s + c * i
    return s


def cube(y):
    return y * y * y


@dp.differentiable(jit=False)
def calls_grad(x):
    return dp.grad(cube)(x) + x


@dp.differentiable(jit=False)
def assigned_in_loop(x, n):
    s = x
    for i in range(n):
        t = x * i
        s = s + t
    if n > 0:
        s = s + t
    return s


@dp.differentiable(jit=False)
def scaled(x, k):
    return x * k


@dp.differentiable(jit=False)
def floored(x):
    return math.floor(x) * x


@dp.differentiable(jit=False)
def constant(x):
    return 2.0


@dp.differentiable(jit=False)
def dot(a, b):
    return np.sum(a * b)


@dp.differentiable(jit=False)
def dumped(x):
    return x * math.exp(x)


VECTORS = (np.ones(3), np.ones(3))


def _lines(text) -> list:
    """The code lines of generated source (comments and blank lines left out), stripped."""
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _index(lines, pattern) -> int:
    """The position of the first line matching `pattern` (a regex), failing the test when none does."""
    for k, line in enumerate(lines):
        if re.fullmatch(pattern, line):
            return k
    raise AssertionError(f"no line matches {pattern!r} in:\n" + "\n".join(lines))


# ---- front -------------------------------------------------------------------------------------------------------
def test_cleanup_removes_a_dead_assignment_and_hoists_a_loop_invariant():
    compiler = dead_and_invariant.compiler
    signature = compiler.signature((1.0, 3))
    lowered = compiler.compile("primal", (), signature, until="lower").function
    cleaned = compiler.compile("primal", (), signature, until="cleanup").function

    def top_level_targets(function):
        return [s.target for s in function.body if isinstance(s, C.Assign)]

    def loop(function):
        return next(s for s in function.body if isinstance(s, C.ForRange))

    # lowered as written: the dead assignment is there, sin(x) is computed in the loop
    assert "unused" in top_level_targets(lowered)
    assert "c" in [s.target for s in loop(lowered).body if isinstance(s, C.Assign)]
    # cleaned: the dead assignment is gone, sin(x) is computed once, before the loop
    assert "unused" not in [s.target for s, _ in C.walk(cleaned.body) if isinstance(s, C.Assign)]
    assert "c" in top_level_targets(cleaned)
    assert "c" not in [s.target for s in loop(cleaned).body if isinstance(s, C.Assign)]
    assert cleaned.body.index(next(s for s in cleaned.body if getattr(s, "target", None) == "c")) < \
        cleaned.body.index(loop(cleaned))
    # the same, as Python
    lines = _lines(dp.source(dead_and_invariant, "primal", args=(1.0, 3), after="cleanup"))
    assert _index(lines, r"c = math\.sin\(x\)") < _index(lines, r"for i in range\(bound_\d+\):")
    assert not any(line.startswith("unused") for line in lines)


def test_nested_replaces_the_placeholder_of_a_transform_by_the_functions_derived_code():
    before = dp.source(calls_grad, "primal", args=(2.0,), after="lower")
    after = dp.source(calls_grad, "primal", args=(2.0,), after="nested")
    assert re.search(r"grad_cube_\d+ = nested:grad_cube:0\(x\)", before)  # the placeholder, not Python
    assert "nested:" not in after
    # cube's adjoint, inlined with its variables renamed apart, reads the outer x
    assert re.search(r"grad_cube_mul_\d+ = x \* x", after)
    assert re.search(r"grad_cube_\d+ = grad_cube_y_adj\b", after)
    unit = calls_grad.compiler.compile("primal", (), calls_grad.compiler.signature((2.0,)), until="nested")
    assert not any(s.value.prim.name.startswith("nested:") for s, _ in C.walk(unit.function.body)
                   if isinstance(s, C.Assign) and isinstance(s.value, C.Call))
    assert calls_grad(2.0) == 3 * 2.0 ** 2 + 2.0  # and the expanded code computes d/dy y^3 + x


# ---- analysis ----------------------------------------------------------------------------------------------------
def test_initialize_gives_a_first_value_to_a_variable_assigned_only_in_a_loop_that_may_not_run():
    before = _lines(dp.source(assigned_in_loop, "primal", args=(1.0, 3), after="infer"))
    after = _lines(dp.source(assigned_in_loop, "primal", args=(1.0, 3), after="initialize"))
    assert "t = 0.0" not in before
    assert after.index("t = 0.0") < _index(after, r"for i in range\(bound_\d+\):")
    assert [line for line in after if line != "t = 0.0"] == before  # nothing else changes


def test_infer_types_every_variable():
    compiler = assigned_in_loop.compiler
    unit = compiler.compile("primal", (), compiler.signature((1.0, 3)), until="infer")
    assert str(unit.types["t"]) == "float64"
    assert str(unit.types["i"]) == "int64"
    assert unit.source == "" and unit.run is None  # nothing after `infer` ran


def test_check_rejects_differentiating_an_int():
    with pytest.raises(DifferentiabilityError) as raised:
        dp.source(scaled, "reverse", args=(1.0, 2), argnums=1, after="check")
    assert [d.code for d in raised.value.diagnostics] == ["DP106"]
    assert "'k', which is an int" in str(raised.value)
    # the passes before it know nothing of what is differentiated
    assert "def scaled(x, k):" in dp.source(scaled, "reverse", args=(1.0, 2), argnums=1, after="initialize")


def test_check_warns_of_a_cut_derivative_and_of_a_result_that_does_not_depend_on_the_input():
    with pytest.warns(DifferentiabilityWarning, match=r"DP201: the derivative is cut here: math\.floor"):
        text = dp.source(floored, "reverse", args=(1.5,), after="check")
    assert "floor_1 = math.floor(x)" in text and "_adj" not in text  # checked, not yet differentiated
    with pytest.warns(DifferentiabilityWarning, match=r"DP202: the result of 'constant' does not depend on x"):
        dp.source(constant, "reverse", args=(1.5,), after="check")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the passes before `check` warn of nothing
        dp.source(floored, "reverse", args=(1.5,), after="initialize")


def test_check_records_the_activity_the_transforms_read():
    compiler = dot.compiler
    unit = compiler.compile("reverse", (0,), compiler.signature(VECTORS), until="check")
    assert unit.activity.is_active(C.Var("a")) and unit.activity.is_active(C.Var("mul_1"))
    assert not unit.activity.is_active(C.Var("b"))  # not differentiated: varied by nothing
    assert unit.wrt == (0,)


# ---- transforms --------------------------------------------------------------------------------------------------
def test_reverse_makes_the_adjoint_and_in_place_updates_array_adjoints_in_place():
    reverse = _lines(dp.source(dot, "reverse", args=VECTORS, after="reverse"))
    in_place = _lines(dp.source(dot, "reverse", args=VECTORS, after="in_place"))
    assert "def dot_reverse(a, b, seed):" in reverse
    assert _index(reverse, r"unbroadcast_(\d+) = unbroadcast\(mul_\d+, a\)")
    assert _index(reverse, r"a_adj \+= unbroadcast_\d+")  # a new array for the term, then added
    # in place: the product is added into a_adj with no array made for it
    assert _index(in_place, r"add_product\(a_adj, b, mul_\d+_adj\)")
    assert not any("unbroadcast" in line or line.startswith("a_adj +=") for line in in_place)
    # and the accumulator restarts by zeroing its own buffer when its shape is unchanged
    assert _index(in_place, r"mul_\d+_adj\.fill\(0\.0\)")
    assert dp.source(dot, "reverse", args=VECTORS, after="codegen") == dp.source(dot, "reverse", args=VECTORS)


def test_forward_mode_has_no_in_place_pass():
    with pytest.raises(ValueError, match="its passes: lower, nested, cleanup, infer, initialize, check, forward, "
                                         "codegen, jit"):
        dp.source(dot, "forward", args=VECTORS, after="in_place")
    text = dp.source(dot, "forward", args=VECTORS, after="forward")
    assert "def dot_forward(a, b, a_dot):" in text and re.search(r"sum_\d+ = np\.sum\(mul_1_dot\)", text)


def test_a_derived_compiler_starts_with_derive():
    gradient = dp.grad(scaled).as_function()
    with pytest.raises(ValueError, match="its passes: derive, infer, initialize, check, forward, codegen, jit"):
        dp.source(gradient, "forward", args=(1.0, 2.0), after="lower")
    derived = _lines(dp.source(gradient, "primal", args=(1.0, 2.0), after="derive"))
    # the core code of scaled's adjoint, made a function of its own: the seed is a constant, x_adj the result
    assert derived[2] == "def scaled_reverse(x, k):" and "seed = 1.0" in derived
    assert derived[-1] == "return x_adj"


def test_an_unknown_pass_is_a_value_error_listing_the_passes():
    with pytest.raises(ValueError) as raised:
        dp.source(scaled, "reverse", args=(1.0, 2.0), after="nonexistent")
    message = str(raised.value)
    assert "'nonexistent'" in message
    assert "lower, nested, cleanup, infer, initialize, check, reverse, in_place, codegen, jit" in message
    assert set(PASS_NAMES) >= {"lower", "nested", "cleanup", "derive", "in_place", "forward_batched"}


def test_dump_prints_the_code_after_a_pass_on_stderr(monkeypatch, capsys):
    monkeypatch.setenv("DIFFPROG_PROGRESS", "0")  # stderr holds the dumps only, however long a compilation takes
    monkeypatch.setenv("DIFFPROG_DUMP", "reverse")
    final = dp.source(dot, "reverse", args=VECTORS)
    err = capsys.readouterr().err
    headers = re.findall(r"# ==== after (\w+): (\w+) code for (\w+) \((.*)\) ====", err)
    assert headers == [("reverse", "reverse", "dot", "float64[:], float64[:]")]
    dump = err.split(" ====\n", 1)[1]
    assert "def dot_reverse(a, b, seed):" in dump
    assert re.search(r"a_adj \+= unbroadcast_\d+", dump)  # as `reverse` made it: `in_place` ran after the dump
    assert "add_product(a_adj" in final and "add_product(a_adj" not in dump
    monkeypatch.setenv("DIFFPROG_DUMP", "lower,cleanup")
    dp.source(dumped, "forward", args=(0.5,))
    assert re.findall(r"# ==== after (\w+):", capsys.readouterr().err) == ["lower", "cleanup"]
    monkeypatch.delenv("DIFFPROG_DUMP")
    dp.source(dumped, "forward", args=(0.5,))
    assert capsys.readouterr().err == ""
