"""Binomial checkpointing (`with diffprog.checkpoint(...)`, `differentiable(checkpoint=...)`).

Every program is differentiated three ways: checkpointed, with snapshot counts from one (each step re-run from
the loop's entry) to plenty; the same source without the checkpoint (the taped adjoint); and autograd plus
central differences (reference.check_gradient). The checkpointed gradient must equal the taped one to rounding,
and the revolve schedule itself is checked against exhaustive search for the fewest re-run steps.
"""
import math
from functools import lru_cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import diffprog as dp
from diffprog.backend import runtime
from reference import A, F, I, Program, check_gradient, draw_args, load, write_module

HEADER = "import math\nimport numpy as np\nimport diffprog as dp\n\n"
MARK = "with dp.checkpoint(snapshots=SNAPSHOTS):"
SNAPSHOTS = ["1", "2", "3", "None"]

SOURCES = {
    "coupled_recurrence": ("""
def f(x, y, n):
    WITH
        for i in range(n):
            x = x + 0.01 * math.sin(y * x)
            y = y - 0.01 * x * math.cos(i * 0.1)
    return x * y
""", [F(-2, 2), F(-2, 2), I(0, 40)]),
    "branch_on_active_value": ("""
def f(x, y, n):
    WITH
        for i in range(n):
            if x > 0.3:
                x = 0.9 * x + 0.1 * math.sin(y)
            else:
                x = x + 0.2 * y * y
    return x
""", [F(-1, 1), F(-1, 1), I(0, 25)]),
    "inner_for_and_while": ("""
def f(x, y, n):
    total = 0.0
    WITH
        for i in range(n):
            for j in range(3):
                x = x + 0.05 * math.sin(x * j + y)
            k = 0
            while k < 2:
                x = x * 0.99 + 0.01 * y
                k += 1
            total += x * x
    return total + x
""", [F(-2, 2), F(-2, 2), I(0, 15)]),
    "helper_call_and_parameter_not_carried": ("""
def step(x, v, theta, dt):
    return x + dt * v, v - dt * theta * math.sin(x)

def f(x, v, theta, n):
    WITH
        for i in range(n):
            x, v = step(x, v, theta, 0.05)
    return x * x + v
""", [F(-2, 2), F(-1, 1), F(0.5, 2), I(0, 30)]),
    "strided_and_backwards_ranges": ("""
def f(x, y, n):
    WITH
        for i in range(2, n, 3):
            x = x + 0.1 * math.tanh(x * y + i)
    WITH
        for i in range(n, 0, -2):
            y = y * math.cos(0.01 * i * x)
    return x + y
""", [F(-2, 2), F(-2, 2), I(0, 30)]),
    "integer_state_and_value_from_last_iteration": ("""
def f(x, n):
    count = 0
    last = 0.0
    WITH
        for i in range(n):
            count = count + 2
            last = x * count
            x = x + 0.001 * last
    return x + last
""", [F(-2, 2), I(0, 30)]),
    "inside_an_outer_loop": ("""
def f(x, y, m, n):
    for e in range(m):
        WITH
            for i in range(n):
                x = x + 0.05 * math.sin(x + y * e)
        y = y * 0.9 + 0.1 * x
    return x * y
""", [F(-2, 2), F(-2, 2), I(0, 4), I(0, 12)]),
    "array_state": ("""
def f(v, w, n):
    WITH
        for i in range(n):
            v = v + 0.1 * np.tanh(w * v + 0.1 * i)
    return np.sum(v * v)
""", [A(-1, 1, group="n"), A(-1, 1, group="n"), I(0, 20)]),
}


def programs(snapshots):
    out = []
    for name, (body, args) in SOURCES.items():
        text = HEADER + body.replace("WITH", MARK.replace("SNAPSHOTS", snapshots))
        out.append(Program(f"{name}_{snapshots}", text, tuple(args)))
    return out


CHECKPOINTED = [p for s in SNAPSHOTS for p in programs(s)]


@lru_cache(maxsize=None)
def taped_gradient(program_name):
    """The same program without the checkpoint, differentiated with tapes."""
    program = next(p for p in CHECKPOINTED if p.name == program_name)
    source = program.source.replace(MARK.replace("SNAPSHOTS", program.name.rsplit("_", 1)[1]), "if True:")
    assert "checkpoint" not in source
    module, _ = write_module(source, "taped")
    return dp.grad(dp.differentiable(jit=False)(module.f), argnums=program.diff_argnums)


@pytest.mark.parametrize("program", CHECKPOINTED, ids=repr)
@given(data=st.data())
@settings(max_examples=12)
def test_checkpointed_gradient_matches_tapes_autograd_and_finite_differences(program, data):
    args = draw_args(data, program.args)
    check_gradient(program, args, jit=False)
    got = load(program).dp_grad(jit=False)(*args)
    taped = taped_gradient(program.name)(*args)
    for a, b in zip(np.atleast_1d(got) if len(program.diff_argnums) == 1 else got,
                    np.atleast_1d(taped) if len(program.diff_argnums) == 1 else taped):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def _recurrence(x, y, n):
    for i in range(n):
        x = x + 0.01 * math.sin(y * x)
        y = y - 0.01 * x * math.cos(i * 0.1)
    return x * y


def test_decorator_argument_checkpoints_outermost_loops_and_compiles():
    plain = dp.differentiable(_recurrence)
    checkpointed = dp.differentiable(checkpoint=True)(_recurrence)
    few = dp.differentiable(checkpoint=2)(_recurrence)
    assert "revolve_next" in dp.source(checkpointed, mode="reverse", args=(1.0, 2.0, 3))
    assert "revolve_next" not in dp.source(plain, mode="reverse", args=(1.0, 2.0, 3))
    for n in (0, 1, 2, 7, 1000):
        expected = dp.grad(plain, (0, 1))(0.7, 1.3, n)
        assert dp.grad(checkpointed, (0, 1))(0.7, 1.3, n) == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert dp.grad(few, (0, 1))(0.7, 1.3, n) == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert checkpointed(0.7, 1.3, 50) == plain(0.7, 1.3, 50)


def test_checkpointed_array_buffer_written_in_place(tmp_path):
    """A local buffer the loop writes into is state: snapshots copy it, and the taped adjoint agrees."""
    source = HEADER + """
def f(x, w, n):
    buf = np.zeros(3)
    WITH
        for i in range(n):
            buf[i % 3] = buf[i % 3] * 0.5 + x * w[i % 3]
            x = x + 0.1 * math.sin(buf[(i + 1) % 3])
    return x + np.sum(buf * buf)
"""
    results = []
    for mark in ("if True:", MARK.replace("SNAPSHOTS", "2"), MARK.replace("SNAPSHOTS", "None")):
        module, _ = write_module(source.replace("WITH", mark), "buffer")
        results.append(dp.grad(dp.differentiable(jit=False)(module.f), (0, 1)))
    w = np.array([0.3, -0.7, 1.1])
    for n in (0, 1, 4, 17):
        expected = results[0](0.4, w, n)
        for other in results[1:]:
            got = other(0.4, w, n)
            assert got[0] == pytest.approx(expected[0], rel=1e-12)
            np.testing.assert_allclose(got[1], expected[1], rtol=1e-12)
    module, _ = write_module(source.replace("WITH", MARK.replace("SNAPSHOTS", "2")), "buffer_fd")
    h = 1e-6
    fd = (module.f(0.4 + h, w, 17) - module.f(0.4 - h, w, 17)) / (2 * h)
    assert results[1](0.4, w, 17)[0] == pytest.approx(fd, rel=1e-6)


def test_forward_mode_and_hessian_see_through_checkpoint():
    checkpointed = dp.differentiable(checkpoint=3)(_recurrence)
    plain = dp.differentiable(_recurrence)
    value, tangent = dp.jvp(checkpointed, (0.7, 1.3, 40), (1.0, -0.5, 0))
    expected = dp.jvp(plain, (0.7, 1.3, 40), (1.0, -0.5, 0))
    assert (value, tangent) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(dp.hessian(checkpointed)(0.7, 1.3, 40), dp.hessian(plain)(0.7, 1.3, 40),
                               rtol=1e-10)


def _diagnostics(source):
    module, path = write_module(HEADER + source, "bad_checkpoint")
    with pytest.raises(dp.DifferentiabilityError) as info:
        dp.grad(module.f)(1.0, 3)
    return info.value, path


@pytest.mark.parametrize("body, message", [
    ("""
def f(x, n):
    with dp.checkpoint():
        k = 0
        while k < n:
            x = x * 1.1
            k += 1
    return x
""", "needs a `for` loop"),
    ("""
def f(x, n):
    with dp.checkpoint():
        for i in range(n):
            if x > 10.0:
                break
            x = x * 1.1
    return x
""", "needs a `for` loop"),
    ("""
def f(x, n):
    with dp.checkpoint(n):
        for i in range(n):
            x = x * 1.1
    return x
""", "positive integer known when the function is compiled"),
    ("""
def f(x, n):
    with dp.checkpoint(snapshots=2, extra=1):
        for i in range(n):
            x = x * 1.1
    return x
""", "takes one argument"),
    ("""
def f(x, n):
    with open("data.txt"):
        x = x * 2.0
    return x
""", "a 'with' block cannot be differentiated"),
])
def test_bad_checkpoints_are_diagnosed_at_the_users_line(body, message):
    error, path = _diagnostics(body)
    assert any(message in d.message for d in error.diagnostics), str(error)
    assert all(d.origin.file == path and d.origin.line == 7 for d in error.diagnostics
               if message in d.message), str(error)


def test_checkpoint_runs_as_plain_python_too():
    with dp.checkpoint(snapshots=4) as marker:
        assert marker.snapshots == 4
    with pytest.raises(ValueError):
        dp.checkpoint(snapshots=0)
    with pytest.raises(ValueError):
        dp.differentiable(checkpoint=-1)(_recurrence)


# ---- the schedule ----------------------------------------------------------------------------------------------
def _run_schedule(steps, snapshots):
    """Plays revolve_next's actions on a model state (the step number) and checks each precondition."""
    slots = runtime.revolve_slots(steps, snapshots)
    schedule = runtime.revolve_new(steps, slots)
    state, kept, reversed_steps, advanced = 0, {}, [], 0
    actions = {code: name for name, code in runtime.REVOLVE_ACTIONS.items()}
    while True:
        action = actions[runtime.revolve_next(schedule)]
        if action == "done":
            break
        if action == "advance":
            assert state == schedule[0] < schedule[1] <= steps
            advanced += schedule[1] - schedule[0]
            state = schedule[1]
        elif action == "takeshot":
            assert 0 <= schedule[2] < slots
            kept[schedule[2]] = state
        elif action == "restore":
            state = kept[schedule[2]]
        else:
            assert state == schedule[0], "a step is reversed from the state before it"
            reversed_steps.append(state)
            state = None
    assert kept.get(0) == 0, "slot 0 keeps the entry state"
    assert reversed_steps == list(range(steps - 1, -1, -1))
    return advanced, slots


@lru_cache(maxsize=None)
def _fewest_advances(steps, slots):
    """Exhaustive search over where to keep the next snapshot."""
    if steps <= 1:
        return 0
    if slots == 1:
        return steps * (steps - 1) // 2
    return min(m + _fewest_advances(steps - m, slots - 1) + _fewest_advances(m, slots)
               for m in range(1, steps))


@given(steps=st.integers(0, 120), snapshots=st.integers(1, 12))
@settings(max_examples=200)
def test_schedule_reverses_every_step_once_with_fewest_advances(steps, snapshots):
    advanced, slots = _run_schedule(steps, snapshots)
    assert slots == snapshots
    assert advanced == _fewest_advances(steps, slots)


@pytest.mark.parametrize("steps", [10, 1000, 10 ** 5, 10 ** 7])
def test_default_snapshots_grow_as_square_root_and_run_each_step_at_most_twice(steps):
    slots = runtime.revolve_slots(steps, 0)
    assert (slots + 1) * (slots + 2) // 2 >= steps > slots * (slots + 1) // 2
    if steps <= 10 ** 5:
        advanced, _ = _run_schedule(steps, 0)
        assert advanced <= 2 * steps
