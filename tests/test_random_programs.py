"""Randomized differential testing (issue 7): random differentiable programs from tests/program_generator.py,
each differentiated and checked four ways against each other:

1. reverse mode: dp.vjp with a random cotangent v (and dp.grad for scalar results) gives <v^T J, u>;
2. forward mode: dp.jvp along a random tangent u gives <v, J u> -- the dot-product test, to ~1e-9 relative;
3. central finite differences (Richardson-extrapolated, along u) -- only where the program's branch trace
   (every condition, abs/max/min/np.max outcome) is the same at x, x +- h and x +- h/2, i.e. away from branch
   switches;
4. the generated code run as plain Python (`jit=False`) vs numba-compiled (a subset of programs, since every
   numba compile costs ~1 s).

The primal is also compared with the undecorated Python function.

Profiles:
* fast (default, CI): DIFFPROG_FUZZ_PROGRAMS (default 250) programs with jit=False, DIFFPROG_FUZZ_COMPILED
  (default 10) compiled ones; derandomized, so CI is deterministic. Set DIFFPROG_FUZZ_RANDOM=1 to explore.
* long (`pytest -m long tests/test_random_programs.py`): DIFFPROG_FUZZ_LONG_PROGRAMS (default 3000) uncompiled
  and a tenth as many compiled programs, randomized.

A failing example prints the whole program source (GeneratedProgram.__repr__); hypothesis shrinks it first.
Every failure found this way is minimized by hand and kept in tests/test_regressions.py.
"""
from __future__ import annotations

import itertools
import math
import os
import re
import sys
import types
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings

import diffprog as dp
from program_generator import programs
from reference import write_module

FAST_PROGRAMS = int(os.environ.get("DIFFPROG_FUZZ_PROGRAMS", "250"))
FAST_COMPILED = int(os.environ.get("DIFFPROG_FUZZ_COMPILED", "10"))
LONG_PROGRAMS = int(os.environ.get("DIFFPROG_FUZZ_LONG_PROGRAMS", "3000"))
RANDOM = os.environ.get("DIFFPROG_FUZZ_RANDOM", "") not in ("", "0")
# Constructs hitting known compiler bugs (each has a strict-xfail test in tests/test_regressions.py) are not
# generated, so that the fuzz tests keep hunting for new bugs; DIFFPROG_FUZZ_KNOWN_BUGS=1 generates them again
# (e.g. to check a fix).
KNOWN_BUGS: frozenset = frozenset()
AVOID = frozenset() if os.environ.get("DIFFPROG_FUZZ_KNOWN_BUGS", "") not in ("", "0") else KNOWN_BUGS

_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.large_base_example]


def fast(n):
    return settings(max_examples=n, deadline=None, derandomize=not RANDOM, suppress_health_check=_HEALTH,
                    print_blob=True)


def long(n):
    return settings(max_examples=n, deadline=None, derandomize=False, suppress_health_check=_HEALTH,
                    print_blob=True)


# ---------------------------------------------------------------------------------------------------------------
# Loading a generated program: the real module (for diffprog) and the traced plain-Python namespace (for FD)
# ---------------------------------------------------------------------------------------------------------------
_UNIQUE = itertools.count()


def unique_docstrings(source):
    """Gives every function a docstring naming a process-wide unique number: functions with equal bytecode in
    two generated modules otherwise share one parse (a known bug, tests/test_regressions.py)."""
    token = next(_UNIQUE)
    return re.sub(r"^( *)(def \w+\(.*\):)$", lambda m: f'{m.group(1)}{m.group(2)}\n{m.group(1)}    """fuzz {token}"""',
                  source, flags=re.M)


class Loaded:
    def __init__(self, program):
        self.program = program
        source = unique_docstrings(program.source) if "same_bytecode" in AVOID else program.source
        self.module, self.path = write_module(source, "fuzz")
        name = f"{self.module.__name__}_traced"
        traced = types.ModuleType(name)
        sys.modules[name] = traced  # dataclasses looks the defining module up
        exec(compile(program.traced_source, self.path + "[traced]", "exec"), vars(traced))
        self.traced = vars(traced)

    def args_for(self, namespace, values):
        """Arguments as `namespace` (module dict) takes them: 4-tuples become its Quat."""
        out = []
        for spec, value in zip(self.program.arg_specs, values):
            if spec.kind == "quat":
                out.append(namespace["Quat"](*value))
            else:
                out.append(value)
        return tuple(out)

    def module_args(self, values=None):
        return self.args_for(vars(self.module), self.program.args if values is None else values)

    def tangents(self):
        return self.args_for(vars(self.module), self.program.u)

    def run_traced(self, values):
        trace = self.traced["_TRACE"]
        trace.clear()
        out = self.traced["f"](*self.args_for(self.traced, values))
        return flat_output(out), list(trace)


def flat_output(out):
    if isinstance(out, tuple):
        return np.array([float(o) for o in out], dtype=np.float64)
    return np.atleast_1d(np.asarray(out, dtype=np.float64)).ravel().copy()


def flat_cotangent(v):
    return flat_output(v)


def flat_value(value):
    """A differentiable argument (or its gradient) as a flat float vector."""
    if isinstance(value, np.ndarray):
        return value.astype(np.float64).ravel()
    if isinstance(value, tuple):
        return np.array(value, dtype=np.float64)
    if hasattr(value, "__dataclass_fields__"):
        return np.array([value.w, value.x, value.y, value.z], dtype=np.float64)
    return np.array([float(value)])


def moved(program, step):
    """The raw argument values x + step * u."""
    out = []
    for spec, x, t in zip(program.arg_specs, program.args, program.u):
        if spec.kind == "int":
            out.append(x)
        elif spec.kind == "quat":
            out.append(tuple(a + step * b for a, b in zip(x, t)))
        elif spec.kind == "array":
            out.append(x + step * t)
        else:
            out.append(x + step * t)
    return tuple(out)


def pairing(program, adjoints):
    """<adjoints, u> over the differentiable arguments."""
    total = 0.0
    scale = 0.0
    for k in program.diff_argnums:
        a, t = flat_value(adjoints[k]), flat_value(program.u[k])
        assert a.shape == t.shape, f"adjoint of argument {k} has {a.size} entries, expected {t.size}"
        total += float(np.dot(a, t))
        scale += float(np.dot(np.abs(a), np.abs(t)))
    return total, scale


def check_adjoint_types(loaded, adjoints, where):
    for k in loaded.program.diff_argnums:
        arg, adj = loaded.module_args()[k], adjoints[k]
        kind = loaded.program.arg_specs[k].kind
        if kind == "array":
            assert isinstance(adj, np.ndarray) and adj.shape == arg.shape, f"{where}: adjoint {k} is {adj!r}"
        elif kind == "quat":
            assert type(adj).__name__ == "Quat", f"{where}: adjoint {k} of a Quat is {adj!r}"
        else:
            assert np.ndim(adj) == 0, f"{where}: adjoint {k} of a float is {adj!r}"


def close(a, b, rtol, atol, msg):
    np.testing.assert_allclose(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64), rtol=rtol,
                               atol=atol, err_msg=msg)


# ---------------------------------------------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------------------------------------------
MAX_MAGNITUDE = 1e4


def precheck(loaded):
    """Plain Python first: skip programs whose values are huge (their FD is meaningless)."""
    program = loaded.program
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.seterr(all="ignore")
        try:
            value, trace = loaded.run_traced(program.args)
        except (OverflowError, ZeroDivisionError, ValueError):
            assume(False)
    assume(np.all(np.isfinite(value)) and np.max(np.abs(value), initial=0.0) < MAX_MAGNITUDE)
    return value, trace


def directional_fd(loaded, trace0):
    """Richardson-extrapolated central difference of the flattened output along u, or None where the branch
    trace changes within +-h (a branch switch or kink nearby), or where the differences have not converged at this
    step (the extrapolation moves the estimate far more than any tolerance: a function oscillating faster than h,
    such as sin(x**2) at large x, whose differences only approach the derivative at much smaller steps)."""
    program = loaded.program
    h = 1e-3
    values = {}
    for step in (h, -h, h / 2, -h / 2):
        try:
            out, trace = loaded.run_traced(moved(program, step))
        except (OverflowError, ZeroDivisionError, ValueError):
            return None
        if trace != trace0 or not np.all(np.isfinite(out)):
            return None
        values[step] = out
    d1 = (values[h] - values[-h]) / (2 * h)
    d2 = (values[h / 2] - values[-h / 2]) / h
    extrapolated = (4 * d2 - d1) / 3
    if np.any(np.abs(extrapolated - d2) > 1e-3 * (1.0 + np.abs(extrapolated))):
        return None
    return extrapolated


def differentiate(loaded, target):
    """(value, <v, J u> by forward mode, adjoints by reverse mode, grad-or-None) for one diffprog target."""
    program = loaded.program
    args, u = loaded.module_args(), loaded.tangents()
    value = target(*args)
    _, pullback = dp.vjp(target, *args)
    cot = program.v
    adjoints = pullback(cot)
    value_f, tangent = dp.jvp(target, args, tuple(u))
    grads = None
    if program.out_kind == "scalar":
        g = dp.grad(target, program.diff_argnums)(*args)
        grads = dict(zip(program.diff_argnums, g))
    return value, value_f, tangent, adjoints, grads


def known_bug(error):
    """The name of the known bug (tests/test_regressions.py) `error` is a symptom of, or None."""
    import traceback

    frames = traceback.extract_tb(error.__traceback__)
    last = frames[-1] if frames else None
    in_generated = last is not None and "diffprog_generated_" in last.filename
    if isinstance(error, UnboundLocalError) and in_generated and "np.zeros(" in (last.line or ""):
        # test_array_adjoint_of_unassigned_temporary_*: `x_adj = np.zeros(x.shape)` for an x never assigned
        return "unbound_array_adjoint"
    if isinstance(error, IndexError) and in_generated and "tape_" in (last.line or ""):
        # test_tape_overflow_while_inside_for: a tape written past its reserved length
        return "tape_overflow"
    return None


def check_program(program, jit=False):
    note(repr(program))
    loaded = Loaded(program)
    plain_value, trace0 = precheck(loaded)
    # the four ways
    target = dp.differentiable(loaded.module.f, jit=False)
    try:
        value, value_f, tangent, adjoints, grads = differentiate(loaded, target)
    except Exception as error:
        bug = known_bug(error)
        if bug is None or bug not in AVOID:
            raise
        note(f"known bug {bug}: {type(error).__name__}: {error}")
        assume(False)
    v = flat_cotangent(program.v)
    scale_value = 1.0 + float(np.max(np.abs(plain_value), initial=0.0))

    close(flat_output(value), plain_value, 1e-12, 1e-12 * scale_value, "primal (jit=False) vs plain Python")
    close(flat_output(value_f), plain_value, 1e-12, 1e-12 * scale_value, "jvp value vs plain Python")
    check_adjoint_types(loaded, adjoints, "vjp (jit=False)")
    for k, a in enumerate(adjoints):
        if k not in program.diff_argnums:
            assert a is None, f"vjp gives {a!r} for the int argument {k}"

    forward = float(np.dot(v, flat_output(tangent)))
    reverse, scale = pairing(program, adjoints)
    scale = scale + float(np.dot(np.abs(v), np.abs(flat_output(tangent))))
    assert abs(forward - reverse) <= 1e-9 * (1.0 + scale), (
        f"dot-product test: <v, J u> by jvp = {forward!r} but <v^T J, u> by vjp = {reverse!r}")

    if grads is not None:
        check_adjoint_types(loaded, grads, "grad (jit=False)")
        for k in program.diff_argnums:
            close(flat_value(grads[k]) * float(program.v), flat_value(adjoints[k]), 1e-12, 1e-12 * (1 + scale),
                  f"grad vs vjp, argument {k}")

    fd = directional_fd(loaded, trace0)
    if fd is not None:
        fd_dot = float(np.dot(v, fd))
        tol = 1e-6 * (1.0 + scale + abs(fd_dot)) + 1e-9 * scale_value
        assert abs(fd_dot - forward) <= tol, (
            f"finite differences: <v, dF/du> = {fd_dot!r} but jvp/vjp give {forward!r} / {reverse!r}")

    if jit:
        check_compiled(loaded, value, tangent, adjoints, grads, scale, scale_value)
    return fd is not None


def check_compiled(loaded, value, tangent, adjoints, grads, scale, scale_value):
    program = loaded.program
    cvalue, cvalue_f, ctangent, cadjoints, cgrads = differentiate(loaded, loaded.module.f)
    atol = 1e-10 * (1.0 + scale)
    close(flat_output(cvalue), flat_output(value), 1e-10, 1e-10 * scale_value, "primal: compiled vs jit=False")
    close(flat_output(cvalue_f), flat_output(value), 1e-10, 1e-10 * scale_value, "jvp value: compiled vs jit=False")
    close(flat_output(ctangent), flat_output(tangent), 1e-9, atol, "jvp tangent: compiled vs jit=False")
    check_adjoint_types(loaded, cadjoints, "vjp (compiled)")
    for k in program.diff_argnums:
        close(flat_value(cadjoints[k]), flat_value(adjoints[k]), 1e-9, atol,
              f"vjp adjoint of argument {k}: compiled vs jit=False")
        if grads is not None:
            close(flat_value(cgrads[k]), flat_value(grads[k]), 1e-9, atol,
                  f"grad of argument {k}: compiled vs jit=False")


# ---------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------
@fast(FAST_PROGRAMS)
@given(programs(avoid=AVOID))
def test_random_programs_uncompiled(program):
    check_program(program, jit=False)


@fast(FAST_COMPILED)
@given(programs(max_stmts=4, avoid=AVOID))
def test_random_programs_compiled(program):
    check_program(program, jit=True)


@pytest.mark.long
@long(LONG_PROGRAMS)
@given(programs(max_stmts=8, avoid=AVOID))
def test_random_programs_uncompiled_long(program):
    check_program(program, jit=False)


@pytest.mark.long
@long(max(1, LONG_PROGRAMS // 10))
@given(programs(max_stmts=6, avoid=AVOID))
def test_random_programs_compiled_long(program):
    check_program(program, jit=True)


def test_generator_covers_every_feature():
    """The fast profile's generator reaches every construct the issue lists (a sanity check on the generator,
    not on diffprog)."""
    from hypothesis import find, strategies as st  # noqa: F401

    seen = set()
    wanted = {"math", "np_elementwise", "np_reduce", "branch", "elif", "for", "while", "active_while",
              "early_return", "return_in_loop", "helper", "augassign", "tuple_assign", "local_array_write",
              "quat", "array_index", "kink", "negative_step"}

    @settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=_HEALTH, database=None)
    @given(programs())
    def collect(program):
        seen.update(program.features)
        compile(program.source, "<generated>", "exec")
        compile(program.traced_source, "<generated>", "exec")

    collect()
    assert wanted <= seen, f"never generated: {sorted(wanted - seen)}"
