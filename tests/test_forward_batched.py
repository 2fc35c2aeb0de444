"""Batched forward mode (issue 5): dp.jacobian(mode="forward") pushes up to JACOBIAN_LANES tangent directions
through one pass of the generated code (diffprog/transforms/batched.py), so a Jacobian with k columns costs one
pass rather than k.

- On every program of the gradient corpora (scalar rules, control flow, calls, 1-D arrays, higher-order, tuple
  results) and of the N-D array corpora (elementwise, reductions, linear algebra, shapes, indexing, array-valued
  results, writes into local arrays): the batched Jacobian equals the Jacobian from k single-direction passes and
  the reverse-mode Jacobian to 1e-12, and central finite differences, with no fallback warning. The generated
  code runs without numba (jit=False: the same source) there; a compiled subset checks the same under numba.
- Control flow with active branches, loops with run-time trip counts (including zero), while loops on active
  values, writes into local arrays (also through a view, which reverse mode rejects), N-D arguments, a number
  argument, chunking into passes of at most JACOBIAN_LANES lanes, Hessians (batched forward over reverse).
- The fallback to k passes is announced (JacobianFallbackWarning naming the operation), never silent; the
  generated code is readable (`dp.source(f, mode="forward_batched")`).
"""
import math
import re
import warnings

import autograd
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import diffprog as dp
import test_arrays
import test_arrays_writes
import test_forward
from diffprog.api import jacobians
from diffprog.api import JacobianFallbackWarning
from reference import ArrayProgram, draw_args, draw_nd_args, load, load_nd, write_module

HEADER = "import math\nimport numpy as np\n\n"

CORPUS = test_forward.CORPUS
ARRAY_CORPUS = (test_arrays.ELEMENTWISE + test_arrays.REDUCTIONS + test_arrays.LINALG + test_arrays.SHAPES
                + test_arrays.INDEXING + test_arrays.VJP_PROGRAMS + test_arrays_writes.WRITES)


# ---- helpers -----------------------------------------------------------------------------------------------------
def _flat_output(value) -> np.ndarray:
    parts = value if isinstance(value, tuple) else (value,)
    return np.concatenate([np.ravel(np.asarray(p, dtype=np.float64)) for p in parts])


def _as_matrix(jac, x) -> np.ndarray:
    """A Jacobian (an array, a float, or a tuple of blocks) as a (outputs, inputs) matrix."""
    n = int(np.size(x))
    blocks = jac if isinstance(jac, tuple) else (jac,)
    return np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, n) for b in blocks])


def _shapes(jac):
    return tuple(np.shape(b) for b in jac) if isinstance(jac, tuple) else np.shape(jac)


def fd_jacobian(fun, args, k):
    """Central differences of every output wrt every entry of args[k] as an (outputs, inputs) matrix, and whether
    the function looks smooth there (one-sided differences agree)."""
    x = args[k]
    base = _flat_output(fun(*args))
    columns, smooth = [], True
    for j in range(int(np.size(x))):
        def at(delta):
            new = list(args)
            if isinstance(x, np.ndarray):
                moved = x.astype(np.float64).copy()
                moved.flat[j] += delta
                new[k] = moved
            else:
                new[k] = x + delta
            return _flat_output(fun(*new))

        value = float(np.ravel(x)[j]) if isinstance(x, np.ndarray) else float(x)
        h = 1e-6 * max(1.0, abs(value))
        plus, minus = at(h), at(-h)
        forward, backward = (plus - base) / h, (base - minus) / h
        smooth = smooth and bool(np.all(np.abs(forward - backward) <= 1e-2 * (1 + np.abs(forward) + np.abs(backward))
                                        + 1e-14 * np.abs(base) / h))
        columns.append((plus - minus) / (2 * h))
    return np.stack(columns, axis=-1), smooth


def assert_close(got, expected, what, rtol=1e-12):
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape, f"{what}: shape {got.shape} vs {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=rtol * scale, err_msg=what)


def _jacobians(loaded, fn, k):
    """The three Jacobian functions of fn wrt argument k, cached per program."""
    return loaded.cached(("jacobians", id(fn), k), lambda: (dp.jacobian(fn, k, mode="forward"),
                                                           dp.jacobian(fn, k, mode="reverse")))


def check_jacobians(name, loaded, fn, args, argnums, use_fd=True):
    """Batched == k single passes == reverse mode to 1e-12, and == central differences, for each argument."""
    for k in argnums:
        forward, reverse = _jacobians(loaded, fn, k)
        with warnings.catch_warnings():
            warnings.simplefilter("error", JacobianFallbackWarning)  # the corpus needs no fallback
            try:
                batched = forward(*args)
            except dp.DifferentiabilityError as error:
                if all(d.code == "DP102" for d in error.diagnostics):  # forward mode lacks a rule (as test_forward)
                    pytest.skip(f"forward mode has no tangent rule for a primitive of {name}: {error}")
                raise
        passes = forward._forward_passes(args)
        saved, jacobians.JACOBIAN_LANES = jacobians.JACOBIAN_LANES, 2  # several passes of at most two columns
        try:
            assert_close(_as_matrix(forward(*args), args[k]), _as_matrix(batched, args[k]), f"{name}: in chunks")
        finally:
            jacobians.JACOBIAN_LANES = saved
        x = args[k]
        assert _shapes(batched) == _shapes(passes), f"{name}: {_shapes(batched)} vs {_shapes(passes)}"
        assert_close(_as_matrix(batched, x), _as_matrix(passes, x), f"{name}: batched vs k passes, argument {k}")
        try:
            by_reverse = reverse(*args)
        except dp.DifferentiabilityError as error:  # writes reverse mode rejects (index arrays, views)
            assert all(d.code == "DP101" for d in error.diagnostics), error
        else:
            assert _shapes(batched) == _shapes(by_reverse), f"{name}: {_shapes(batched)} vs {_shapes(by_reverse)}"
            assert_close(_as_matrix(batched, x), _as_matrix(by_reverse, x), f"{name}: batched vs reverse, argument {k}")
        if use_fd:
            fd, smooth = fd_jacobian(loaded.plain, args, k)
            if smooth:
                scale = 1.0 + float(np.max(np.abs(_flat_output(loaded.plain(*args)))))
                np.testing.assert_allclose(_as_matrix(batched, x), fd, rtol=1e-4, atol=1e-5 * scale,
                                           err_msg=f"{name}: batched vs finite differences, argument {k}")


def _interpreted(loaded):
    plain = getattr(loaded.plain, "__diffprog_function__", loaded.plain)
    return loaded.cached("interpreted", lambda: dp.differentiable(jit=False)(plain))


# ---- the corpora -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("program", CORPUS, ids=lambda p: p.name)
@settings(max_examples=5, deadline=None, database=None)
@given(data=st.data())
def test_corpus_batched_jacobian(program, data):
    args = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(*args))
    loaded = load(program)
    check_jacobians(program.name, loaded, _interpreted(loaded), args, program.diff_argnums, use_fd=program.fd)


def _unsupported(program) -> bool:
    return program.name in test_arrays.BUGS and program.name not in test_arrays_writes.BUGS_WRITES


@pytest.mark.parametrize("program", [p for p in ARRAY_CORPUS if not _unsupported(p)], ids=lambda p: p.name)
@settings(max_examples=5, deadline=None, database=None)
@given(data=st.data())
def test_array_corpus_batched_jacobian(program, data):
    args = draw_nd_args(data, program)
    if program.ok is not None:
        assume(program.ok(*args))
    loaded = load_nd(program)
    check_jacobians(program.name, loaded, _interpreted(loaded), args, program.diff_argnums, use_fd=program.fd)


# numba-compiled: the same checks on a subset (each program costs seconds of compilation: three Jacobian codes);
# a larger subset is `slow` (runs in CI), the rest of the compiled array programs `long` (pytest -m long).
COMPILED_NAMES = {"branch_inside_loop_on_active_value", "loop_with_two_accumulators"}
COMPILED_ARRAY_NAMES = {"linalg_chain", "stencil"}
SLOW_COMPILED_NAMES = {"while_condition_on_active_value", "early_return_inside_nested_loop", "nested_while_in_for",
                       "computed_indices", "while_and_early_return"}
SLOW_COMPILED_ARRAY_NAMES = {"slogdet_cholesky", "integer_array_index_repeated", "max_min_axis",
                             "axis_reductions_1d", "linalg_chain", test_arrays_writes.WRITES[0].name}
LONG_COMPILED_ARRAY_NAMES = {"concatenate_stack", "vjp_matmat_broadcast", "sum_mean_axis_keepdims", "solve_matrix_rhs", "newaxis",
                             "prod_axis_keepdims_methods_positional", "cumsum_axis_variants", "norm_axis_keepdims_ord",
                             "concatenate_axis_variants", "axis_reductions_1d_keepdims",
                             "axis_forms_1d_methods_norm_cumsum"}
LONG_COMPILED_ARRAY_NAMES |= {p.name for p in test_arrays_writes.WRITES[1:6]}


def _compiled(programs, names, slow_names, long_names=frozenset()):
    def marks(name):
        return [pytest.mark.slow] if name in slow_names else [pytest.mark.long] if name in long_names else []
    return [pytest.param(p, id=p.name, marks=marks(p.name)) for p in programs
            if p.name in names | slow_names | long_names]


@pytest.mark.parametrize("program", _compiled(CORPUS, COMPILED_NAMES, SLOW_COMPILED_NAMES))
@settings(max_examples=2, deadline=None, database=None)
@given(data=st.data())
def test_corpus_batched_jacobian_compiled(program, data):
    args = draw_args(data, program.args)
    if program.ok is not None:
        assume(program.ok(*args))
    loaded = load(program)
    check_jacobians(program.name, loaded, loaded.plain, args, program.diff_argnums, use_fd=program.fd)


@pytest.mark.parametrize("program", _compiled(ARRAY_CORPUS, COMPILED_ARRAY_NAMES, SLOW_COMPILED_ARRAY_NAMES,
                                              LONG_COMPILED_ARRAY_NAMES))
@settings(max_examples=2, deadline=None, database=None)
@given(data=st.data())
def test_array_corpus_batched_jacobian_compiled(program, data):
    args = draw_nd_args(data, program)
    if program.ok is not None:
        assume(program.ok(*args))
    loaded = load_nd(program)
    check_jacobians(program.name, loaded, loaded.plain, args, program.diff_argnums, use_fd=program.fd)


def test_compiled_subsets_are_not_empty():
    assert len(_compiled(CORPUS, COMPILED_NAMES, SLOW_COMPILED_NAMES)) == len(COMPILED_NAMES | SLOW_COMPILED_NAMES)
    names = COMPILED_ARRAY_NAMES | SLOW_COMPILED_ARRAY_NAMES | LONG_COMPILED_ARRAY_NAMES
    assert len(_compiled(ARRAY_CORPUS, COMPILED_ARRAY_NAMES, SLOW_COMPILED_ARRAY_NAMES,
                         LONG_COMPILED_ARRAY_NAMES)) == len(names)


# ---- control flow, loops, writes -----------------------------------------------------------------------------------
def trips(x, n):
    s = 0.0
    out = np.zeros(3)
    for i in range(n):
        s = s * 0.5 + math.sin(x[i % x.shape[0]] * (i + 1))
        out[i % 3] = out[i % 3] + s * x[(i + 1) % x.shape[0]]
    return s, out


def trips_reference_jacobian(x, n):
    """Hand-written tangent recurrence, one column at a time."""
    cols_s, cols_out = [], []
    for j in range(x.shape[0]):
        e = np.zeros(x.shape[0])
        e[j] = 1.0
        s, ds, out, dout = 0.0, 0.0, np.zeros(3), np.zeros(3)
        for i in range(n):
            a, b = i % x.shape[0], (i + 1) % x.shape[0]
            s, ds = s * 0.5 + math.sin(x[a] * (i + 1)), ds * 0.5 + math.cos(x[a] * (i + 1)) * (i + 1) * e[a]
            out[i % 3], dout[i % 3] = out[i % 3] + s * x[b], dout[i % 3] + ds * x[b] + s * e[b]
        cols_s.append(ds)
        cols_out.append(dout)
    return np.array(cols_s), np.stack(cols_out, axis=-1)


@pytest.mark.parametrize("n", [0, 1, 2, 7, 300])
def test_loop_with_runtime_trip_count(n):
    x = np.array([0.3, -0.7, 1.1, 0.25, 2.0])
    jac_s, jac_out = dp.jacobian(trips, mode="forward")(x, n)
    ref_s, ref_out = trips_reference_jacobian(x, n)
    assert jac_s.shape == (5,) and jac_out.shape == (3, 5)
    assert_close(jac_s, ref_s, "d s / d x")
    assert_close(jac_out, ref_out, "d out / d x")


def branches(x):
    y = x[0]
    steps = 0
    while y * y < 50.0:  # trip count depends on an active value
        y = y * 1.7 + 0.3 * x[1]
        steps += 1
    if y > x[2]:
        return math.log(y) * steps, y * x[2]
    return -y * y, x[1] * x[2]


@pytest.mark.parametrize("x", [[0.5, 1.0, 0.1], [1.3, -2.0, 20.0], [-0.4, 0.7, -1.0], [-6.0, 0.2, 0.0]])
def test_active_branches_and_while(x):
    x = np.array(x)
    jac = dp.jacobian(branches, mode="forward")(x)
    assert jac.shape == (2, 3)
    assert_close(jac, dp.jacobian(branches, mode="reverse")(x), "batched vs reverse")
    fd, smooth = fd_jacobian(branches, (x,), 0)
    assert smooth
    np.testing.assert_allclose(jac, fd, rtol=1e-6, atol=1e-7)


def scalar_argument(t, c, n):
    s = 0.0
    for i in range(n):
        if s < 1.0:
            s = s + math.sin(t * i) * c
        else:
            s = s * 0.5
    return s, t * s, np.array([s, c * t])


def test_number_argument_tuple_of_numbers_and_arrays():
    jac = dp.jacobian(scalar_argument, 0, mode="forward")(0.7, 1.9, 9)
    by_reverse = dp.jacobian(scalar_argument, 0, mode="reverse")(0.7, 1.9, 9)
    assert isinstance(jac, tuple) and len(jac) == 3
    for got, expected in zip(jac, by_reverse):
        assert np.shape(got) == np.shape(expected)
        assert_close(got, expected, "number argument")
    assert isinstance(dp.jacobian(lambda_free, 0, mode="forward")(0.3), float)


def lambda_free(t):
    return math.sin(t) * t


def buffer_through_view(x, n):
    b = np.zeros(n)
    for i in range(n):
        b[i] = math.sin(x[0] * i) * x[1]
    v = b[1:]
    v[0] = x[0] * x[1]  # writes b[1]
    c = np.zeros((2, n))
    c[0, :] = b
    c[1] = b * x[1]
    s = 0.0
    for i in range(n):
        s = s + b[i] * b[i] + c[1, i]
    return s, c


def buffer_through_view_reference(x, n):
    b = np.array([math.sin(x[0] * i) * x[1] for i in range(n)])
    b[1] = x[0] * x[1]
    return float(np.sum(b * b) + np.sum(b * x[1])), np.stack([b, b * x[1]])


def test_writes_into_local_arrays_and_through_views():
    """Tangent arrays mirror writes (`b_dot[lane, i] = ...`, `c_dot[:, 0, :] = b_dot`), also through a view,
    which reverse mode rejects."""
    x, n = np.array([0.4, -1.3]), 6
    jac_s, jac_c = dp.jacobian(buffer_through_view, mode="forward")(x, n)
    fd, smooth = fd_jacobian(lambda x: buffer_through_view_reference(x, n), (x,), 0)
    assert smooth and jac_s.shape == (2,) and jac_c.shape == (2, n, 2)
    np.testing.assert_allclose(np.concatenate([jac_s[None], jac_c.reshape(-1, 2)]), fd, rtol=1e-6, atol=1e-8)
    assert_close(jac_c, dp.jacobian(buffer_through_view, mode="forward")._forward_passes((x, n))[1], "vs k passes")


def fresh_copy_written(x, c):
    y = x + c  # y_dot would be x_dot itself without a copy
    y[0] = y[1] * y[2]
    z = np.sum(x) + np.zeros(3)  # only a number varies: the tangent still needs the array's axes
    return y * 2.0 + z, x


def test_tangent_of_a_fresh_array_is_not_an_alias():
    x, c = np.array([0.5, 1.5, -2.0]), np.array([1.0, 2.0, 3.0])
    jac_y, jac_x = dp.jacobian(fresh_copy_written, mode="forward")(x, c)
    assert_close(jac_x, np.eye(3), "the argument's own tangent is untouched")
    assert_close(jac_y, dp.jacobian(fresh_copy_written, mode="reverse")(x, c)[0], "vs reverse")


def matrix_argument(A, v):
    w = np.tanh(A @ v)
    return np.outer(w, v) + A @ A.T @ A, np.sum(A * A, axis=1)


@pytest.mark.slow
def test_matrix_argument():
    A = np.array([[0.3, -1.2, 0.5], [2.0, 0.1, -0.4]])
    v = np.array([0.7, -0.2, 1.1])
    jac = dp.jacobian(matrix_argument, 0, mode="forward")(A, v)
    by_reverse = dp.jacobian(matrix_argument, 0, mode="reverse")(A, v)
    assert jac[0].shape == (2, 3, 2, 3) and jac[1].shape == (2, 2, 3)
    for got, expected in zip(jac, by_reverse):
        assert_close(got, expected, "matrix argument")
    jac_v = dp.jacobian(matrix_argument, 1, mode="forward")(A, v)
    for got, expected in zip(jac_v, dp.jacobian(matrix_argument, 1, mode="reverse")(A, v)):
        assert_close(got, expected, "vector argument next to a matrix")


# ---- passes and chunks ---------------------------------------------------------------------------------------------
def chained(x):
    n = x.shape[0]
    out = np.zeros(n)
    for i in range(n):
        out[i] = math.sin(x[i]) * x[(i + 1) % n] + x[(i + 7) % n] ** 2
    return out


def _count_passes(jac, args, monkeypatch):
    spec = jac._batched(args)
    calls = []
    run = spec.run
    monkeypatch.setattr(spec, "run", lambda *a: calls.append(a[-1].shape[-1]) or run(*a))
    return spec, calls


@pytest.mark.parametrize("n, lanes, passes", [(40, 64, [40]), (64, 64, [64]), (150, 64, [50, 50, 50]),
                                              (10, 3, [3, 3, 3, 1]), (1, 64, [1])])
def test_passes_carry_up_to_jacobian_lanes_columns(n, lanes, passes, monkeypatch):
    monkeypatch.setattr(jacobians, "JACOBIAN_LANES", lanes)
    x = np.cos(np.arange(n) * 0.7)
    jac = dp.jacobian(chained, mode="forward")
    _, calls = _count_passes(jac, (x,), monkeypatch)
    got = jac(x)
    assert calls == passes
    assert_close(got, dp.jacobian(chained, mode="reverse")(x), "chunked")


def test_auto_mode_uses_batched_forward_mode():
    x = np.cos(np.arange(12) * 0.7)
    jac = dp.jacobian(chained)  # as many outputs as inputs: forward mode
    got = jac(x)
    assert jac._batched((x,)) is not None
    assert_close(got, dp.jacobian(chained, mode="reverse")(x), "auto")
    assert "def chained_forward_batched(x, x_dot):" in dp.source(chained, mode="forward_batched")


def test_empty_argument():
    jac = dp.jacobian(chained, mode="forward")(np.zeros(0))
    assert jac.shape == (0, 0)


def rosenbrock(x):
    s = 0.0
    for i in range(x.shape[0] - 1):
        s = s + 100.0 * (x[i + 1] - x[i] ** 2) ** 2 + (1.0 - x[i]) ** 2
    return s


def rosenbrock_hessian(x):
    n = x.shape[0]
    h = np.zeros((n, n))
    for i in range(n - 1):
        h[i, i] += 1200.0 * x[i] ** 2 - 400.0 * x[i + 1] + 2.0
        h[i, i + 1] -= 400.0 * x[i]
        h[i + 1, i] -= 400.0 * x[i]
        h[i + 1, i + 1] += 200.0
    return h


def test_hessian_is_batched_forward_over_reverse():
    x = np.cos(np.arange(100) * 0.7) * 1.2
    hessian = dp.hessian(rosenbrock)
    h = hessian(x)
    assert hessian._batched((x,)) is not None
    np.testing.assert_allclose(h, rosenbrock_hessian(x), rtol=1e-12, atol=1e-9)
    assert_close(h, hessian._forward_passes((x,)), "batched vs k passes")
    text = dp.source(dp.grad(rosenbrock), mode="forward_batched", args=(x,))
    assert "lanes_tape_reserve(" in text and "for lane in range(lanes):" in text


VECTOR_AXIS_PROGRAMS = [pytest.param(p, id=p.name, marks=[pytest.mark.slow if p.name == "axis_reductions_1d" else
                                                          pytest.mark.long])
                        for p in test_arrays.REDUCTIONS if p.name in (
                            "axis_reductions_1d", "axis_reductions_1d_keepdims", "axis_forms_1d_methods_norm_cumsum")]


@pytest.mark.filterwarnings("ignore:.*DP202", "ignore:Output seems independent")  # linear in some arguments
@pytest.mark.parametrize("program", VECTOR_AXIS_PROGRAMS)
@settings(max_examples=2, deadline=None, database=None)
@given(data=st.data())
def test_hessian_of_reductions_along_the_axis_of_a_vector(program, data):
    """Reductions along the only axis of a vector (the whole reductions' rules, numpy_rules.VECTOR_REDUCTIONS)
    compile in forward over reverse too, and their Hessians are autograd's."""
    args = draw_nd_args(data, program)
    assume(program.ok is None or program.ok(*args))
    loaded = load_nd(program)
    for k in program.diff_argnums:
        h = loaded.cached(("hessian", k), lambda k=k: dp.hessian(loaded.plain, k))(*args)
        assert_close(h, autograd.hessian(loaded.reference, k)(*args), f"{program.name}: Hessian, argument {k}",
                     rtol=1e-9)


# ---- fallbacks are announced ---------------------------------------------------------------------------------------
def runtime_axis(x, k):
    return np.sum(np.sin(np.expand_dims(x, k)) * 2.0, axis=0)


def test_missing_lane_rule_warns_and_takes_k_passes():
    x = np.array([0.3, -0.5, 1.2])
    with pytest.warns(JacobianFallbackWarning, match="np.expand_dims.*one forward pass per column|one forward pass "
                      "per column.*np.expand_dims"):
        jac = dp.jacobian(runtime_axis, mode="forward")(x, 0)
    assert_close(jac, np.diag(2.0 * np.cos(x)), "fallback result")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dp.jacobian(runtime_axis, mode="reverse")(x, 0)  # nothing to announce in reverse mode


def traced(A):
    return np.sin(np.trace(A @ A)) * A


def test_removed_lane_rule_is_reported_by_name(monkeypatch):
    from diffprog.rules import REGISTRY

    monkeypatch.setattr(REGISTRY.named("np.trace"), "lane_jvps", None)
    A = np.array([[0.3, 0.1], [-0.2, 0.5]])
    f = dp.differentiable(jit=False)(traced)
    with pytest.warns(JacobianFallbackWarning, match="np.trace"):
        jac = dp.jacobian(f, mode="forward")(A)
    assert_close(jac, dp.jacobian(f, mode="reverse")(A), "k passes")
    with pytest.raises(dp.DifferentiabilityError, match="DP102.*batched forward mode has no lane rule for np.trace"):
        dp.source(f, mode="forward_batched", args=(A,))


def reshaped_like(x, y):
    return np.sum(np.sin(x.reshape(y.shape)) * y)


def test_no_rule_in_either_forward_mode_is_an_error_and_auto_uses_reverse():
    x, y = np.array([0.1, 0.2, 0.3, 0.4]), np.ones((2, 2))
    with pytest.raises(dp.DifferentiabilityError, match="DP102"):
        dp.jacobian(reshaped_like, mode="forward")(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", JacobianFallbackWarning)
        jac = dp.jacobian(reshaped_like, mode="auto")(x, y)
    np.testing.assert_allclose(jac, np.cos(x), rtol=1e-14)


# ---- the generated code --------------------------------------------------------------------------------------------
def loop_and_array(x, n):
    s = 0.0
    for i in range(n):
        s = s * 0.5 + math.sin(x[i % x.shape[0]] * (i + 1))
    y = np.sin(x) * s
    return np.sum(y * y), y


def test_source_is_readable_and_compiled():
    x = np.array([0.3, 0.5, 0.7])
    text = dp.source(loop_and_array, mode="forward_batched", args=(x, 4))
    body = text[text.index("def loop_and_array_forward_batched(x, n, x_dot):"):]
    assert "lanes = x_dot.shape[1]" in body, "lanes last"
    assert "for lane in range(lanes):" in body
    assert re.search(r"= x_dot\[\w+, lane\]", body), "number tangents read their lane of an array tangent"
    assert "s_dot[lane] = " in body, "a tangent carried by the user's loop is a vector written per lane"
    assert re.search(r"lanes_scale\(sin_\d+, s_dot\)", body), "an array partial applied in every lane"
    assert "lanes_sum(" in body and "tape_" not in body
    assert "test_forward_batched.py" in text  # comments name the user's lines
    spec = dp.api.as_differentiable(loop_and_array).forward_specialization((0,), (x, 4), mode="forward_batched")
    assert hasattr(getattr(spec.run, "dispatcher", spec.run), "signatures"), "batched forward code runs under numba"
    with pytest.raises(ValueError, match="forward_batched"):
        dp.source(loop_and_array, mode="batched")


def test_float32_arguments():
    module, _ = write_module(HEADER + "def f(x, w):\n    return np.tanh(x * w) * np.sum(x), x @ w\n", "f32")
    x = np.array([0.3, -0.4, 0.9], dtype=np.float32)
    w = np.array([1.5, 0.5, -2.0])
    f = dp.differentiable(jit=False)(module.f)
    for got, expected in zip(dp.jacobian(f, mode="forward")(x, w), dp.jacobian(f, mode="reverse")(x, w)):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_array_corpus_is_not_empty():
    assert len(ARRAY_CORPUS) > 90 and all(isinstance(p, ArrayProgram) for p in ARRAY_CORPUS)


# ---- dp.jvp(lanes=True): the caller's own directions, several per pass ---------------------------------------------
def per_row_residuals(P, Y, s):
    """Each row's residuals depend on that row's parameters (and the number s): one pass with a direction per
    parameter column gives every row's Jacobian block (a compressed Jacobian)."""
    out = np.zeros((P.shape[0], 2))
    for i in range(P.shape[0]):
        out[i] = s * np.sin(P[i, 0:2] * P[i, 2]) + Y[i] * P[i, 1]
    return out, np.sum(P * P) * s


PER_ROW = dp.differentiable(per_row_residuals)


@settings(max_examples=5, deadline=None, database=None)
@given(seed=st.integers(0, 2 ** 31 - 1), rows=st.integers(1, 5), lanes=st.integers(1, 4))
def test_jvp_with_lanes_is_one_jvp_per_direction(seed, rows, lanes):
    rng = np.random.default_rng(seed)
    primals = (rng.normal(size=(rows, 3)), rng.normal(size=(rows, 2)), float(rng.normal()))
    tangents = (rng.normal(size=(rows, 3, lanes)), rng.normal(size=(rows, 2, lanes)), rng.normal(size=lanes))
    value, tangent = dp.jvp(PER_ROW, primals, tangents, lanes=True)
    expected = per_row_residuals(*primals)
    assert_close(value[0], expected[0], "value")
    assert_close(value[1], expected[1], "value")
    assert tangent[0].shape == (rows, 2, lanes) and tangent[1].shape == (lanes,)
    for lane in range(lanes):
        direction = tuple(t[..., lane] for t in tangents)
        _, single = dp.jvp(PER_ROW, primals, direction)
        h = 1e-6
        ahead = per_row_residuals(*(p + h * d for p, d in zip(primals, direction)))
        behind = per_row_residuals(*(p - h * d for p, d in zip(primals, direction)))
        for k in range(2):
            np.testing.assert_allclose(tangent[k][..., lane], single[k], rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(tangent[k][..., lane], (ahead[k] - behind[k]) / (2 * h), rtol=1e-5, atol=1e-6)


def test_jvp_with_lanes_gives_the_blocks_of_a_compressed_jacobian():
    rng = np.random.default_rng(3)
    P, Y, s = rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), 0.7
    seeds = np.broadcast_to(np.eye(3), (4, 3, 3))  # direction j: column j of every row
    _, (blocks, _) = dp.jvp(PER_ROW, (P, Y, s), (seeds, np.zeros((4, 2, 3)), np.zeros(3)), lanes=True)
    full = dp.jacobian(PER_ROW, 0, mode="reverse")(P, Y, s)[0]  # (4, 2, 4, 3)
    for i in range(4):
        np.testing.assert_allclose(blocks[i], full[i, :, i, :], rtol=1e-13, atol=1e-13)
        assert np.all(np.delete(full[i], i, axis=1) == 0.0)  # the compression is exact: other rows' blocks are 0


@pytest.mark.parametrize("tangents, message", [
    ((np.zeros((4, 3, 2)), np.zeros((4, 2, 3)), np.zeros(2)), "same number of directions"),
    ((np.zeros((4, 3)), np.zeros((4, 2, 1)), np.zeros(1)), r"shape \(4, 3\) .* L directions"),
])
def test_jvp_with_lanes_refuses_tangents_without_a_common_lane_axis(tangents, message):
    with pytest.raises(ValueError, match=message):
        dp.jvp(PER_ROW, (np.ones((4, 3)), np.ones((4, 2)), 0.5), tangents, lanes=True)
