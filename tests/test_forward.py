"""Forward mode: dp.jvp, dp.jacobian, dp.jvp_function and dp.source(mode="forward").

- The dot-product test on every program of the gradient corpora (and tuple-valued programs here):
  <v, J u> from jvp equals <v^T J, u> from vjp to 1e-10 relative. Reverse mode is checked against autograd and
  finite differences by the other test files, so this ties forward mode to two independent methods. It runs
  the generated code without numba (jit=False: same code, no compile cost); a numba-compiled subset below is
  checked directly against autograd and finite differences.
- jvp through loops with runtime trip counts (including empty and long ones), branches on active values, while
  loops with active conditions, early returns, arrays, int arguments.
- Jacobians by forward and reverse mode vs autograd; grad of jvp (reverse-over-forward).
"""
import math

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
import test_arrays_1d
import test_calls
import test_control_flow
import test_higher_order
import test_scalar_rules
from reference import A, F, I, Program, draw_args, finite_difference, load

HEADER = "import math\nimport diffprog as dp\n\n"


def P(name, body, args, **kw):
    return Program(name, HEADER + body, tuple(args), **kw)


# Tuple-valued programs: the dot-product test needs outputs with more than one component.
TUPLE_PROGRAMS = [
    P(
        "polar_to_cartesian",
        """
def f(r, theta):
    return r * math.cos(theta), r * math.sin(theta)
""",
        [F(0.1, 3), F(-3, 3)],
    ),
    P(
        "loop_with_two_accumulators",
        """
def f(x, y, n):
    s = 0.0
    p = 1.0
    for i in range(n):
        s = s + math.sin(x * i + y)
        if s > p:
            p = p * x
        else:
            p = p + y * s
    return s, p, s * p
""",
        [F(-1.5, 1.5), F(-1.5, 1.5), I(0, 7)],
    ),
    P(
        "while_and_early_return",
        """
def f(x, a):
    y = x
    k = 0
    while y < 5.0 and k < 50:
        y = y * 1.5 + a[k % a.shape[0]] * 0.1
        k += 1
    if y > 7.0:
        return y, math.exp(-y)
    return y * k, a[0] * y
""",
        [F(0.2, 3), A(-2, 2)],
    ),
]

CORPUS = (test_scalar_rules.PROGRAMS + test_control_flow.PROGRAMS + test_calls.PROGRAMS
          + test_arrays_1d.PROGRAMS + test_higher_order.PROGRAMS + TUPLE_PROGRAMS)


def _interpreted(program):
    """The program's entry point run as generated Python (no numba), cached per program."""
    plain = load(program).plain
    plain = getattr(plain, "__diffprog_function__", plain)  # an entry point decorated in the program itself
    return load(program).cached("interpreted", lambda: dp.differentiable(jit=False)(plain))


def _random_like(data, value, label):
    """A tangent (or cotangent) of the same shape as `value`, drawn by hypothesis."""
    if isinstance(value, np.ndarray):
        entries = data.draw(st.lists(st.floats(-2, 2), min_size=value.size, max_size=value.size), label=label)
        return np.array(entries, dtype=np.float64).reshape(value.shape)
    return data.draw(st.floats(-2, 2), label=label)


def _inner(a, b) -> float:
    return float(np.sum(np.asarray(a, dtype=np.float64) * np.asarray(b, dtype=np.float64)))


@pytest.mark.parametrize("program", CORPUS, ids=lambda p: p.name)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_dot_product_jvp_against_vjp(program, data):
    args = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(*args))
    f = _interpreted(program)
    diff = [k for k, a in enumerate(args) if not isinstance(a, int)]
    tangents = tuple(_random_like(data, a, f"u{k}") if k in diff else None for k, a in enumerate(args))
    try:
        value, tangent_out = dp.jvp(f, args, tangents)
    except dp.DifferentiabilityError as error:
        if all(d.code == "DP102" for d in error.diagnostics):  # reported, not hidden: shows as a skip
            pytest.skip(f"forward mode has no tangent rule for a primitive of {program.name}: {error}")
        raise
    np.testing.assert_allclose(value, load(program).plain(*args), rtol=1e-12, atol=1e-12)

    outputs = value if isinstance(value, tuple) else (value,)
    tangent_outputs = tangent_out if isinstance(tangent_out, tuple) else (tangent_out,)
    cotangents = tuple(_random_like(data, o, f"v{k}") for k, o in enumerate(outputs))
    _, pullback = dp.vjp(f, *args)
    adjoints = pullback(cotangents if isinstance(value, tuple) else cotangents[0])

    forward = sum(_inner(v, t) for v, t in zip(cotangents, tangent_outputs))
    reverse = sum(_inner(adjoints[k], tangents[k]) for k in diff)
    scale = sum(abs(_inner(v, t)) for v, t in zip(cotangents, tangent_outputs)) + 1e-300
    assert abs(forward - reverse) <= 1e-10 * max(scale, abs(forward), abs(reverse), 1.0), (
        f"{program.name}: <v, J u> = {forward!r} but <v^T J, u> = {reverse!r} at args={args!r}")


# ---- numba-compiled jvp against autograd and finite differences ---------------------------------------------
COMPILED_NAMES = {"while_condition_on_active_value", "for_range_runtime_start_stop_step",
                  "early_return_inside_nested_loop", "break_inner_continue_outer",
                  "branch_inside_loop_on_active_value", "nested_while_in_for", "horner_len_with_scalar",
                  "computed_indices"}
COMPILED = [p for p in test_control_flow.PROGRAMS + test_arrays_1d.PROGRAMS if p.name in COMPILED_NAMES] + [
    TUPLE_PROGRAMS[1], TUPLE_PROGRAMS[2]]


def _directional_reference(program, args, tangents):
    """d/dt f(args + t * tangents) at t = 0 by autograd, one output at a time (an independent method)."""
    reference = load(program).reference
    diff = [k for k, a in enumerate(args) if not isinstance(a, int)]

    def moved(t):
        return reference(*(a + t * tangents[k] if k in diff else a for k, a in enumerate(args)))

    value = reference(*args)
    if isinstance(value, tuple):
        return tuple(autograd.grad(lambda t, j=j: moved(t)[j])(0.0) for j in range(len(value)))
    return autograd.grad(moved)(0.0)


def _directional_fd(program, args, tangents):
    plain = load(program).plain
    diff = [k for k, a in enumerate(args) if not isinstance(a, int)]

    def moved(t):
        return plain(*(a + t * tangents[k] if k in diff else a for k, a in enumerate(args)))

    value = plain(*args)
    if isinstance(value, tuple):
        results = [finite_difference(lambda t, j=j: moved(t)[j], (0.0,), 0) for j in range(len(value))]
        return tuple(r[0] for r in results), all(r[1] for r in results)
    return finite_difference(moved, (0.0,), 0)


def test_compiled_subset_is_not_empty():
    assert len(COMPILED) == len(COMPILED_NAMES) + 2, [p.name for p in COMPILED]


@pytest.mark.parametrize("program", COMPILED, ids=lambda p: p.name)
@settings(max_examples=5, deadline=None)
@given(data=st.data())
def test_compiled_jvp_matches_autograd_and_finite_differences(program, data):
    args = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(*args))
    tangents = tuple(None if isinstance(a, int) else _random_like(data, a, f"u{k}") for k, a in enumerate(args))
    expected_fd, smooth = _directional_fd(program, args, tangents)
    assume(smooth)
    value, tangent_out = dp.jvp(load(program).plain, args, tangents)
    expected = _directional_reference(program, args, tangents)
    np.testing.assert_allclose(np.array(tangent_out, dtype=float), np.array(expected, dtype=float),
                               rtol=1e-9, atol=1e-10, err_msg=f"{program.name} vs autograd")
    np.testing.assert_allclose(np.array(tangent_out, dtype=float), np.array(expected_fd, dtype=float),
                               rtol=1e-4, atol=1e-5 * (1 + np.max(np.abs(np.array(value, dtype=float)))),
                               err_msg=f"{program.name} vs finite differences")


# ---- specific shapes -------------------------------------------------------------------------------------------
def runtime_trips(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.5 + math.sin(x * (i + 1))
    return s


@pytest.mark.parametrize("n", [0, 1, 2, 7, 10_000])
def test_jvp_loop_with_runtime_trip_count(n):
    x = 0.37
    value, tangent = dp.jvp(runtime_trips, (x, n), (1.0, None))
    s, ds = 0.0, 0.0
    for i in range(n):
        s, ds = s * 0.5 + math.sin(x * (i + 1)), ds * 0.5 + (i + 1) * math.cos(x * (i + 1))
    assert value == pytest.approx(s, rel=1e-12, abs=1e-12)
    assert tangent == pytest.approx(ds, rel=1e-10, abs=1e-12)


def active_branches_and_while(x):
    y = x
    steps = 0
    while y * y < 50.0:  # trip count depends on the active value
        y = y * 1.7 + 0.3
        steps += 1
    if y > 0.0:
        return math.log(y) * steps
    return -y * y


@pytest.mark.parametrize("x", [0.5, 1.3, -0.4, -6.0, 3.0])
def test_jvp_branches_and_while_on_active_values(x):
    _, tangent = dp.jvp(active_branches_and_while, (x,), (1.0,))
    expected, smooth = finite_difference(active_branches_and_while, (x,), 0)
    assert smooth
    assert tangent == pytest.approx(expected, rel=1e-6, abs=1e-8)
    assert tangent == pytest.approx(dp.grad(active_branches_and_while)(x), rel=1e-12, abs=1e-14)


def early_returns(x, y):
    for i in range(10):
        if x * i > 3.0:
            return x * y * i
        if y < -1.0:
            return math.sin(x)
        x = x + 0.1 * y
    return x * x + y


@pytest.mark.parametrize("x, y", [(0.7, 0.2), (0.1, 0.1), (0.5, -2.0), (-0.5, 0.3)])
def test_jvp_early_returns_matches_grad(x, y):
    u = (0.3, -1.1)
    _, tangent = dp.jvp(early_returns, (x, y), u)
    gx, gy = dp.grad(early_returns, argnums=(0, 1))(x, y)
    assert tangent == pytest.approx(gx * u[0] + gy * u[1], rel=1e-12, abs=1e-14)


def array_weighted(a, w, n):
    s = 0.0
    for i in range(n):
        s = s + w[i % w.shape[0]] * a[i % a.shape[0]] ** 2
    return s, s * a[0]


def test_jvp_array_arguments_and_tuple_result():
    a, w = np.array([0.5, -1.2, 2.0]), np.array([1.0, 3.0])
    ua, uw = np.array([1.0, 0.5, -0.25]), np.array([-2.0, 0.75])
    (s, t), (ds, dt) = dp.jvp(array_weighted, (a, w, 5), (ua, uw, None))
    ref = lambda a, w: array_weighted(a, w, 5)  # noqa: E731
    jac_a = autograd.jacobian(lambda a: anp.array(ref(a, w)))(a)
    jac_w = autograd.jacobian(lambda w: anp.array(ref(a, w)))(w)
    np.testing.assert_allclose([s, t], ref(a, w), rtol=1e-12)
    np.testing.assert_allclose([ds, dt], jac_a @ ua + jac_w @ uw, rtol=1e-12)


def test_jvp_value_and_int_arguments():
    value, tangent = dp.jvp(runtime_trips, (0.2, 3), (0.0, None))
    assert value == pytest.approx(runtime_trips(0.2, 3))
    assert tangent == 0.0
    with pytest.raises(TypeError, match="tangent is needed"):
        dp.jvp(runtime_trips, (0.2, 3), (None, None))
    with pytest.raises(ValueError, match="one tangent per primal"):
        dp.jvp(runtime_trips, (0.2, 3), (1.0,))


def test_forward_source_is_readable_and_compiled():
    text = dp.source(runtime_trips, mode="forward", args=(0.5, 3))
    body = text[text.index("def runtime_trips_forward(x, n, x_dot):"):]
    assert "s_dot = mul_2_dot + sin_5_dot" in body or "s_dot = " in body
    assert "tape_" not in body, "forward mode needs no tapes"
    assert "test_forward.py" in text  # comments name the user's lines
    spec = dp.api.as_differentiable(runtime_trips).forward_specialization((0,), (0.5, 3))
    assert hasattr(getattr(spec.run, "dispatcher", spec.run), "signatures"), "forward code runs under numba"


def taped(x, n):
    s = x
    for i in range(n):
        s = math.sin(s) * x
    return s


def test_forward_over_reverse_writes_tangent_tapes():
    text = dp.source(dp.grad(taped), mode="forward", args=(0.5, 3))
    assert "tape_s_dot[tape_s_len] = s_dot" in text, text
    assert "s_dot = tape_s_dot[tape_s_len]" in text, text
    x, n = 0.4, 6
    fd, smooth = finite_difference(lambda t: dp.grad(taped)(t, n), (x,), 0)
    assert smooth
    assert dp.jvp(dp.grad(taped), (x, n), (1.0, None))[1] == pytest.approx(fd, rel=1e-6)


# ---- arrays: elementwise operations, local buffers, views ------------------------------------------------------
def elementwise(x, c):
    y = np.sin(x) * c + x ** 2
    z = y * 2.0 - c
    w = np.ones(3) + c  # only the scalar varies: the tangent still has the array's shape
    return z[0] * z[1] + np.exp(x)[2] * w[1]


def test_jvp_elementwise_array_operations():
    x, u = np.array([0.3, -0.5, 1.2]), np.array([1.0, 2.0, -0.5])
    value, tangent = dp.jvp(elementwise, (x, 0.7), (u, 0.3))
    reference = autograd.grad(lambda t: elementwise_reference(x + t * u, 0.7 + t * 0.3))(0.0)
    assert value == pytest.approx(elementwise(x, 0.7), rel=1e-14)
    assert tangent == pytest.approx(reference, rel=1e-12)


def elementwise_reference(x, c):
    y = anp.sin(x) * c + x ** 2
    z = y * 2.0 - c
    w = anp.ones(3) + c
    return z[0] * z[1] + anp.exp(x)[2] * w[1]


def buffer_written_through_view(x, n):
    b = np.zeros(n)
    for i in range(n):
        b[i] = math.sin(x * i)
    v = b[1:]
    v[0] = x * x  # writes b[1]
    s = 0.0
    for i in range(n):
        s = s + b[i] * b[i]
    return s


def buffer_written_directly(x, n):
    b = np.zeros(n)
    for i in range(n):
        b[i] = math.sin(x * i)
    b[1] = x * x
    s = 0.0
    for i in range(n):
        s = s + b[i] * b[i]
    return s


def _buffer_closed_form(x, n):
    return sum(2 * math.sin(x * i) * math.cos(x * i) * i for i in range(n) if i != 1) + 4 * x ** 3


@pytest.mark.parametrize("x", [0.4, -1.1])
def test_jvp_local_buffer_and_writes_through_a_view(x):
    n = 5
    fd, smooth = finite_difference(lambda t: buffer_written_through_view(t, n), (x,), 0)
    assert smooth
    for f in (buffer_written_through_view, buffer_written_directly):
        tangent = dp.jvp(f, (x, n), (1.0, None))[1]
        assert tangent == pytest.approx(_buffer_closed_form(x, n), rel=1e-12)
        assert tangent == pytest.approx(fd, rel=1e-6)


def test_reverse_mode_rejects_writes_through_views():
    """Forward mode follows a write through a view; reverse mode refuses it (DP101) rather than miss it."""
    with pytest.raises(dp.DifferentiabilityError, match="DP101.*view"):
        dp.grad(buffer_written_through_view)(0.4, 5)


def test_reductions_have_tangent_rules():
    x, u = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.3, -0.7])
    value, tangent = dp.jvp(sum_of_squares_np, (x,), (u,))
    assert value == pytest.approx(np.sum(x * x), rel=1e-14)
    assert tangent == pytest.approx(2.0 * np.dot(x, u), rel=1e-12)


def sum_of_squares_np(x):
    return np.sum(x * x)


def reductions_along_the_axis_of_a_vector(x):
    return np.sum(x, axis=0) * np.max(x, axis=0) + np.mean(x, axis=-1) + np.sum(np.min(x, axis=0, keepdims=True) * x)


def test_reductions_along_the_axis_of_a_vector_have_tangent_rules():
    """Along a vector's only axis, reductions are numbers (1-element arrays with keepdims): compiled tangents."""
    x, u = np.array([1.0, 3.0, 2.0]), np.array([0.5, -1.0, 0.25])
    value, tangent = dp.jvp(reductions_along_the_axis_of_a_vector, (x,), (u,))
    assert value == pytest.approx(6.0 * 3.0 + 2.0 + 6.0, rel=1e-14)
    assert tangent == pytest.approx(np.sum(u) * 3.0 + 6.0 * u[1] + np.mean(u) + u[0] * 6.0 + np.sum(u), rel=1e-12)


# ---- Jacobians ---------------------------------------------------------------------------------------------------
def vector_field(x):
    return x[0] * x[1], math.sin(x[0]) + x[2] ** 2, math.exp(x[1] - x[2]), x[0] / (1.0 + x[2] ** 2)


def scalar_to_tuple(t, c):
    return math.cos(t) * c, t ** 3, math.atan(t * c)


def vector_field_reference(x):
    return anp.array([x[0] * x[1], anp.sin(x[0]) + x[2] ** 2, anp.exp(x[1] - x[2]), x[0] / (1.0 + x[2] ** 2)])


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_jacobian_of_vector_field(mode):
    x = np.array([0.3, -0.8, 1.1])
    jac = dp.jacobian(vector_field, mode=mode)(x)
    assert jac.shape == (4, 3)
    np.testing.assert_allclose(jac, autograd.jacobian(vector_field_reference)(x), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("mode", ["auto", "forward", "reverse"])
def test_jacobian_scalar_input_tuple_output(mode):
    jac = dp.jacobian(scalar_to_tuple, argnums=0, mode=mode)(0.7, 1.9)
    t, c = 0.7, 1.9
    expected = [-math.sin(t) * c, 3 * t * t, c / (1 + (t * c) ** 2)]
    assert jac.shape == (3,)
    np.testing.assert_allclose(jac, expected, rtol=1e-12)
    jac_c = dp.jacobian(scalar_to_tuple, argnums=1, mode=mode)(0.7, 1.9)
    np.testing.assert_allclose(jac_c, [math.cos(t), 0.0, t / (1 + (t * c) ** 2)], rtol=1e-12, atol=1e-15)


def test_jacobian_of_scalar_function_is_the_gradient():
    x = np.array([0.5, -1.0, 2.0, 0.1])
    f = rosen_loop
    np.testing.assert_allclose(dp.jacobian(f, mode="forward")(x), dp.grad(f)(x), rtol=1e-12)
    np.testing.assert_allclose(dp.jacobian(f)(x), dp.grad(f)(x), rtol=1e-12)


def rosen_loop(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def test_jacobian_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        dp.jacobian(vector_field, mode="sideways")
    with pytest.raises(TypeError, match="float"):
        dp.jacobian(runtime_trips, argnums=1)(0.3, 4)


# ---- grad of jvp ---------------------------------------------------------------------------------------------
def test_grad_of_jvp_function_is_hessian_vector_product():
    tangent_map = dp.jvp_function(runtime_trips)
    x, u = 0.37, 0.8
    assert tangent_map(x, 5, u) == pytest.approx(dp.jvp(runtime_trips, (x, 5), (u, None))[1], rel=1e-14)
    # d/dx [f'(x) u] = f''(x) u; the tangent map's loop has no tapes, so reverse mode differentiates it.
    second = dp.grad(tangent_map, argnums=0)(x, 5, u)
    fd, smooth = finite_difference(lambda t: dp.grad(runtime_trips)(t, 5), (x,), 0)
    assert smooth
    assert second == pytest.approx(fd * u, rel=1e-6)
    assert second == pytest.approx(dp.hessian(runtime_trips)(x, 5) * u, rel=1e-12)
    # ... and with respect to the tangent it is f'(x) itself.
    assert dp.grad(tangent_map, argnums=2)(x, 5, u) == pytest.approx(dp.grad(runtime_trips)(x, 5), rel=1e-14)
