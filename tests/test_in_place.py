"""Reverse code that runs updates its array adjoints in place (backend/in_place.py): the runtime helpers against
numpy, the rewrite's safety rules on hand-built code, and whole gradients with the rewrite against finite
differences and autograd."""
import autograd
import numpy as np
import numba
import pytest
from hypothesis import given, settings, strategies as st

import diffprog as dp
from diffprog.backend import runtime as rt
from diffprog.backend.in_place import update_adjoints_in_place
from diffprog.ir import core as C
from diffprog.normalize.names import NameAllocator
from diffprog.rules import REGISTRY


_P = REGISTRY.named


@numba.njit(cache=False)
def _add_product_compiled(target, a, b):
    rt.add_product(target, a, b)
    return target


@numba.njit(cache=False)
def _sum_product_compiled(a, b):
    return rt.sum_product(a, b)


@numba.njit(cache=False)
def _add_matmul_compiled(target, a, b):
    rt.add_matmul(target, a, b)
    return target


def _numbers(rng, shape, layout="C"):
    if shape == ():
        return float(rng.normal())
    x = rng.normal(size=shape)
    if layout == "F":
        return np.asfortranarray(x)
    if layout == "strided":
        return rng.normal(size=shape[:-1] + (2 * shape[-1],))[..., ::2]
    return x


# (target, a, b) shapes: equal shapes, numbers, size-1 axes of the target (the product is unbroadcast into it),
# lower-rank terms broadcast into the target
PRODUCT_SHAPES = [((3,), (3,), (3,)), ((3,), (), (3,)), ((3,), (3,), ()), ((3,), (), ()), ((1,), (4,), (4,)),
                  ((2, 3), (2, 3), (2, 3)), ((1, 3), (2, 3), (2, 3)), ((2, 1), (2, 3), ()), ((2, 3), (3,), (2, 3)),
                  ((2, 3), (3,), ()), ((2, 3), (3,), (3,)), ((2, 3, 4), (2, 3, 4), (2, 3, 4)),
                  ((2, 1, 4), (2, 3, 4), (1, 3, 4)), ((2, 3), (2, 1), (1, 3)), ((1, 3), (2, 1), (2, 3)),
                  ((2, 3, 4), (2, 1, 4), (2, 3, 1))]


def _with_layouts(shapes_list):
    """Each case in C order, and vectors and matrices also Fortran-ordered and strided (3-D compiles slowly)."""
    return [pytest.param(shapes, layout, id=f"{shapes}-{layout}") for shapes in shapes_list
            for layout in (["C", "F", "strided"] if max(len(s) for s in shapes) < 3 else ["C"])]


@pytest.mark.parametrize("shapes, layout", _with_layouts(PRODUCT_SHAPES))
def test_add_product_is_numpys_sum_unbroadcast(shapes, layout):
    rng = np.random.default_rng(len(str(shapes)))
    target_shape, a_shape, b_shape = shapes
    target, a, b = rng.normal(size=target_shape), _numbers(rng, a_shape, layout), _numbers(rng, b_shape)
    term = np.multiply(a, b)
    while np.ndim(term) > target.ndim:
        term = term.sum(axis=0)
    axes = tuple(k for k in range(target.ndim) if target.shape[k] == 1 and np.shape(term)[k] != 1) \
        if np.ndim(term) == target.ndim else ()
    expected = target + (term.sum(axis=axes, keepdims=True) if axes else term)
    uncompiled = target.copy()
    rt.add_product(uncompiled, a, b)
    np.testing.assert_allclose(uncompiled, expected, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(_add_product_compiled(target.copy(), a, b), expected, rtol=1e-14, atol=1e-14)


@settings(max_examples=30, deadline=None, database=None)
@given(seed=st.integers(0, 2 ** 31 - 1), rank=st.sampled_from([2, 3]), number=st.booleans())
def test_add_product_loops_over_any_broadcast_shapes(seed, rank, number):
    """Target and operands of one rank, each axis of each either the joint extent or 1 (the loop that adds
    the term without an array for it), against numpy."""
    rng = np.random.default_rng(seed)
    joint = tuple(int(n) for n in rng.integers(1, 5, size=rank))
    target, a, b = (rng.normal(size=tuple(n if rng.random() < 0.6 else 1 for n in joint)) for _ in range(3))
    b = float(rng.normal()) if number else b
    term = a * b
    axes = tuple(k for k in range(rank) if target.shape[k] == 1 and term.shape[k] != 1)
    term = term.sum(axis=axes, keepdims=True)
    np.testing.assert_allclose(_add_product_compiled(target.copy(), a, b), target + term, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("shapes, layout", _with_layouts([((5,), (5,)), ((), (5,)), ((5,), ()), ((), ()), ((2, 3), (2, 3)),
                                                          ((2, 3), (3,)), ((1, 3), (2, 3)), ((2, 3, 2), (2, 3, 2))]))
def test_sum_product_is_the_sum_of_the_product(shapes, layout):
    rng = np.random.default_rng(len(str(shapes)))
    a, b = _numbers(rng, shapes[0], layout), _numbers(rng, shapes[1])
    expected = np.sum(np.multiply(a, b))
    assert rt.sum_product(a, b) == pytest.approx(expected, rel=1e-13, abs=1e-13)
    assert _sum_product_compiled(a, b) == pytest.approx(expected, rel=1e-13, abs=1e-13)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("shapes", [((3,), (3, 4), (4,)), ((4,), (3,), (3, 4)), ((3, 5), (3, 4), (4, 5)),
                                    ((80,), (80, 70), (70,)), ((70,), (80,), (80, 70))], ids=str)
def test_add_matmul_is_numpys(shapes, transposed):
    rng = np.random.default_rng(len(str(shapes)))
    target, a, b = (rng.normal(size=s) for s in shapes)
    if transposed and a.ndim == 2:  # the adjoint of A @ x reads A.T: a strided view
        a = np.ascontiguousarray(a.T).T
    expected = target + a @ b
    uncompiled = target.copy()
    rt.add_matmul(uncompiled, a, b)
    np.testing.assert_allclose(uncompiled, expected, rtol=1e-13)
    np.testing.assert_allclose(_add_matmul_compiled(target.copy(), a, b), expected, rtol=1e-13)


# ---- the rewrite's safety rules, on hand-built reverse code ------------------------------------------------------
def _function(body, results=("y_adj",)):
    return C.Function("f_reverse", ["n", "g"], body, tuple(C.Var(r) for r in results))


def _zeros(name):
    return C.Assign(name, C.Call(_P("zeros_extents1"), (C.Var("n"),)))


def _accumulate(target, term):
    return C.Assign(target, C.Call(_P("accumulate"), (C.Var(target), C.Var(term))))


def _rewritten(body, results=("y_adj",)):
    names = NameAllocator()
    return update_adjoints_in_place(_function(body, results), names).body


def _zeroings(body):
    return [s for s, _ in C.walk(body) if isinstance(s, C.Effect) and s.call.prim.name == "fill_zeros"]


def _loop(body):
    return C.ForRange("i", C.Const(0), C.Var("n"), C.Const(1), body)


def test_an_accumulator_restarts_in_its_own_buffer():
    body = [_zeros("x_adj"), _zeros("y_adj"),
            _loop([_accumulate("x_adj", "g"), _accumulate("x_adj", "g"), _accumulate("y_adj", "x_adj"),
                   _zeros("x_adj")])]
    rewritten = _rewritten(body)
    assert len(_zeroings(rewritten)) == 1
    assert isinstance(rewritten[0], C.Assign) and rewritten[0].value.prim.name == "zeros_extents1"


def _prims(body):
    return [s.value.prim.name if isinstance(s, C.Assign) and isinstance(s.value, C.Call) else
            s.call.prim.name if isinstance(s, C.Effect) else type(s).__name__ for s, _ in C.walk(body)]


def _expanded(name, source):
    return C.Assign(name, C.Call(_P("np.expand_dims"), (C.Var(source), C.Const(0))))


def test_a_single_term_is_read_where_it_is():
    """x_adj only ever receives e (the adjoint of a sum along an axis): its reader reads e as a view broadcast
    like x_adj, and x_adj, never written, is only reallocated if its shape changes."""
    body = [_zeros("x_adj"), _zeros("y_adj"),
            _loop([_expanded("e", "g"), _accumulate("x_adj", "e"), _accumulate("y_adj", "x_adj"), _zeros("x_adj")])]
    rewritten = _rewritten(body)
    spread = [s for s, _ in C.walk(rewritten) if isinstance(s, C.Assign) and s.value.prim.name == "spread_like"]
    assert [s.value.args for s in spread] == [(C.Var("e"), C.Var("x_adj"))]
    assert C.Var(spread[0].target) in [a for s, _ in C.walk(rewritten) if _prims([s]) == ["accumulate"]
                                       for a in s.value.args]
    assert "lacks_shape_extents1" in _prims(rewritten) and _zeroings(rewritten) == []


def test_a_term_shaped_like_the_adjoint_replaces_it():
    """u is an unbroadcast to x_adj's own shape (the extents its restart uses): x_adj's reader reads u, and
    then adds it into y_adj in place."""
    unbroadcast = C.Assign("u", C.Call(_P("unbroadcast_extents1"), (C.Var("g"), C.Var("n"))))
    body = [_zeros("x_adj"), _zeros("y_adj"),
            _loop([unbroadcast, _accumulate("x_adj", "u"), _accumulate("y_adj", "x_adj"), _zeros("x_adj")])]
    loop = _rewritten(body)[2]
    assert _prims(loop.body)[:1] == ["add_product"] and loop.body[0].call.args == (C.Var("y_adj"), C.Var("g"),
                                                                                    C.Const(1.0))
    assert "spread_like" not in _prims(loop.body) and _zeroings(loop.body) == []


def test_a_restart_moves_below_the_readers_of_a_term_taken_from_it():
    """w_adj restarts right after its term goes to x_adj; the restart moves below x_adj's reader, so that x_adj
    can read the term where it is and w_adj still restarts in its own buffer."""
    body = [_zeros("w_adj"), _zeros("x_adj"), _zeros("y_adj"),
            _loop([_accumulate("w_adj", "g"), _accumulate("w_adj", "g"), _expanded("e", "w_adj"),
                   _accumulate("x_adj", "e"), _zeros("w_adj"), _accumulate("y_adj", "x_adj"), _zeros("x_adj")])]
    loop = _rewritten(body)[3]
    assert _prims(loop.body)[:5] == ["accumulate", "accumulate", "np.expand_dims", "spread_like", "accumulate"]
    assert len(_zeroings(loop.body)) == 1


@pytest.mark.parametrize("between", ["term_changes", "copy_needed"])
def test_a_term_is_not_forwarded_when_it_changes_or_a_reader_copies_it(between):
    change = _accumulate("w_adj", "g") if between == "term_changes" else \
        C.Assign("v", C.Call(_P("getitem"), (C.Var("x_adj"), C.Slice(C.Const(0), C.Const(2)))))
    body = [_zeros("w_adj"), _zeros("x_adj"), _zeros("y_adj"),
            _loop([_accumulate("w_adj", "g"), _accumulate("w_adj", "g"), _expanded("e", "w_adj"),
                   _accumulate("x_adj", "e"), change, _accumulate("y_adj", "x_adj"), _zeros("x_adj"),
                   _zeros("w_adj")])]
    assert "spread_like" not in _prims(_rewritten(body, ("y_adj", "w_adj", "v")))


def test_a_view_read_after_the_restart_keeps_the_allocation():
    """v = x_adj[0:2] is read after x_adj restarts (by a statement that reads x_adj too, so the restart cannot
    move below it): zeroing x_adj in place would change what v shows."""
    view = C.Assign("v", C.Call(_P("getitem"), (C.Var("x_adj"), C.Slice(C.Const(0), C.Const(2)))))
    body = [_zeros("x_adj"), _zeros("y_adj"),
            _loop([_accumulate("x_adj", "g"), view, _zeros("x_adj"),
                   C.Assign("z", C.Call(_P("add"), (C.Var("v"), C.Var("x_adj"))))])]
    assert _zeroings(_rewritten(body, ("y_adj", "z"))) == []


def test_a_view_used_up_before_the_restart_allows_it():
    view = C.Assign("v", C.Call(_P("getitem"), (C.Var("x_adj"), C.Slice(C.Const(0), C.Const(2)))))
    body = [_zeros("x_adj"), _zeros("y_adj"),
            _loop([_accumulate("x_adj", "g"), view, _accumulate("y_adj", "v"), _zeros("x_adj")])]
    assert len(_zeroings(_rewritten(body))) == 1


@pytest.mark.parametrize("escape", ["assigned", "returned_view"])
def test_an_adjoint_another_name_holds_is_never_zeroed_in_place(escape):
    kept = C.Assign("kept", C.Var("x_adj")) if escape == "assigned" else \
        C.Assign("kept", C.Call(_P("transpose"), (C.Var("x_adj"),)))
    body = [_zeros("x_adj"), _zeros("y_adj"), _loop([_accumulate("x_adj", "g"), kept, _zeros("x_adj")])]
    assert _zeroings(_rewritten(body, ("y_adj", "kept"))) == []


def test_a_product_read_elsewhere_is_not_fused():
    product = C.Assign("t", C.Call(_P("mul"), (C.Var("g"), C.Var("g"))))
    body = [_zeros("x_adj"), _zeros("y_adj"), product, _accumulate("x_adj", "t"), _accumulate("y_adj", "t"),
            C.Assign("z", C.Call(_P("add"), (C.Var("t"), C.Var("g"))))]
    rewritten = _rewritten(body, ("y_adj", "z"))
    assert [s.value.prim.name for s in rewritten if isinstance(s, C.Assign) and s.target == "t"] == ["mul"]
    assert [s for s in rewritten if isinstance(s, C.Effect)] == []


def test_a_product_and_its_sum_and_additions_fuse():
    product = C.Assign("t", C.Call(_P("mul"), (C.Var("g"), C.Var("h"))))
    body = [_zeros("x_adj"), _zeros("y_adj"), product, _accumulate("x_adj", "t"), _accumulate("y_adj", "t"),
            C.Assign("z", C.Call(_P("np.sum"), (C.Var("t"),)))]
    rewritten = _rewritten(body, ("y_adj", "z"))
    calls = [(s.call if isinstance(s, C.Effect) else s.value) for s in rewritten[2:]]
    assert [(c.prim.name, c.args) for c in calls] == [
        ("add_product", (C.Var("x_adj"), C.Var("g"), C.Var("h"))),
        ("add_product", (C.Var("y_adj"), C.Var("g"), C.Var("h"))),
        ("sum_product", (C.Var("g"), C.Var("h")))]


# ---- whole gradients -----------------------------------------------------------------------------------------
def rows_through_a_matrix(W, X, b):
    total = 0.0
    for i in range(X.shape[0]):
        h = np.tanh(W @ X[i] + b)
        r = h * X[i, 0] - b
        total += np.sum(r * r) + 0.5 * np.sum(np.exp(-h) * X[i])
    return total


def planes_and_axis_sums(P, X, c):
    """Matrices read from a stack (the outer product of P[k] @ x's adjoint goes straight into P's adjoint),
    sums along an axis (the adjoint of each is a single term, read as a broadcast view) and a product
    broadcast along two axes (added into its operands' adjoints by a loop)."""
    total = 0.0
    for i in range(X.shape[0]):
        for k in range(P.shape[0]):
            y = P[k] @ X[i] + c[k]
            total += np.sum(y * y)
        s = np.sum(P * X[i][None, None, :], axis=2)
        total += np.sum(np.tanh(s) * c)
    return total


# each: the function, its arguments from (rng, n, rows), what the rewritten reverse code must contain
WHOLE = {
    "rows_through_a_matrix": (rows_through_a_matrix, lambda rng, n, rows: (
        rng.normal(size=(n, n)), rng.normal(size=(rows, n)), rng.normal(size=n)),
        ("add_product(", "add_matmul(", "add_at(", ".fill(0.0)")),
    "planes_and_axis_sums": (planes_and_axis_sums, lambda rng, n, rows: (
        rng.normal(size=(n + 1, n, n)), rng.normal(size=(rows, n)), rng.normal(size=(n + 1, n))),
        ("add_outer_at(", "spread_like(", "add_product(")),
}
REWRITTEN = {name: dp.differentiable(f) for name, (f, _, _) in WHOLE.items()}


@pytest.mark.parametrize("name", WHOLE)
@settings(max_examples=5, deadline=None, database=None)
@given(seed=st.integers(0, 2 ** 31 - 1), n=st.integers(1, 4), rows=st.integers(0, 6))
def test_gradients_match_finite_differences_and_autograd(name, seed, n, rows):
    f, make_args, forms = WHOLE[name]
    args = make_args(np.random.default_rng(seed), n, rows)
    text = dp.source(REWRITTEN[name], mode="reverse", args=args, argnums=(0, 1, 2))
    assert all(form in text for form in forms)
    grads = dp.grad(REWRITTEN[name], (0, 1, 2))(*args)
    for k, g in enumerate(grads):
        np.testing.assert_allclose(g, finite_difference(f, args, k), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(g, autograd.grad(f, k)(*args), rtol=1e-12, atol=1e-12)


def finite_difference(f, args, k):
    """Central differences of f with respect to the array args[k], element by element."""
    x = args[k]
    out = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        h = 1e-6 * max(1.0, abs(x[index]))
        values = []
        for step in (h, -h):
            moved = x.copy()
            moved[index] += step
            values.append(f(*(moved if j == k else a for j, a in enumerate(args))))
        out[index] = (values[0] - values[1]) / (2 * h)
    return out


@numba.njit(cache=False)
def _add_at_compiled(target, term, index):
    rt.add_at(target, term, index)
    return target


@pytest.mark.parametrize("target_shape, index, term_shape", [
    ((4, 3), 2, (3,)), ((4, 3), -1, (3,)), ((2, 4, 3), (1, 2), (3,)), ((2, 4, 3), (1, -1), (3,)),
    ((3, 4, 2), 0, (4, 2)), ((5,), "mask", (2,)), ((2, 3, 4, 5), 1, (3, 4, 5))], ids=str)
def test_add_at_adds_into_the_part_a_read_took(target_shape, index, term_shape):
    rng = np.random.default_rng(3)
    target, term = rng.normal(size=target_shape), rng.normal(size=term_shape)
    if index == "mask":
        index = np.array([True, False, False, True, False])
    expected = target.copy()
    expected[index] += term
    uncompiled = target.copy()
    rt.add_at(uncompiled, term, index)
    np.testing.assert_array_equal(uncompiled, expected)
    np.testing.assert_array_equal(_add_at_compiled(target.copy(), term, index), expected)


def _row_read_adjoint(then):
    """reverse.py's adjoint of `v = a[i]`: v_adj += a_adj[i]; a_adj[i] = v_adj; then `then`."""
    return [_zeros("v_adj"), _zeros("a_adj"), _accumulate("v_adj", "g"),
            C.Assign("r", C.Call(_P("getitem"), (C.Var("a_adj"), C.Var("i")))),
            _accumulate("v_adj", "r"), C.Store("a_adj", (C.Var("i"),), C.Var("v_adj"))] + then


def test_a_row_read_adds_into_the_row():
    rewritten = _rewritten(_row_read_adjoint([_zeros("v_adj")]), ("a_adj",))
    calls = [s.call for s in rewritten if isinstance(s, C.Effect) and s.call.prim.name == "add_at1"]
    assert [c.args for c in calls] == [(C.Var("a_adj"), C.Var("v_adj"), C.Var("i"))]


def test_a_row_read_whose_adjoint_is_read_again_keeps_the_sum():
    """v_adj (which the original code leaves holding v_adj + a_adj[i]) is read before it restarts."""
    later = [C.Assign("z", C.Call(_P("np.sum"), (C.Var("v_adj"),))), _zeros("v_adj")]
    rewritten = _rewritten(_row_read_adjoint(later), ("a_adj", "z"))
    assert not any(isinstance(s, C.Effect) and s.call.prim.name == "add_at1" for s in rewritten)


@numba.njit(cache=False)
def _add_outer_at_compiled(target, a, b, index):
    rt.add_outer_at(target, a, b, index)
    return target


@pytest.mark.parametrize("shape, index", [((3, 2, 4), 1), ((3, 2, 4), -1), ((1, 1, 1), 0)])
def test_add_outer_at_adds_the_outer_product_into_the_plane(shape, index):
    rng = np.random.default_rng(len(shape) + index)
    target, a, b = rng.normal(size=shape), rng.normal(size=shape[1]), rng.normal(size=shape[2])
    expected = target.copy()
    expected[index] += np.outer(a, b)
    uncompiled = target.copy()
    rt.add_outer_at(uncompiled, a, b, index)
    np.testing.assert_allclose(uncompiled, expected, rtol=1e-14)
    np.testing.assert_allclose(_add_outer_at_compiled(target, a, b, index), expected, rtol=1e-14)


def test_add_outer_at_refuses_a_product_shaped_unlike_the_plane():
    with pytest.raises(ValueError, match="shape"):
        _add_outer_at_compiled(np.zeros((2, 3, 3)), np.ones(3), np.ones(2), 0)


@numba.njit(cache=False)
def _move_at_compiled(target, source, index):
    rt.move_at(target, source, index)
    return target, source


@pytest.mark.parametrize("source_shape, index, target_shape", [
    ((4, 3), 2, (3,)), ((4, 3), -1, (3,)), ((2, 4, 3), (1, 2), (3,)), ((3, 4, 2), 0, (4, 2)),
    ((5,), "mask", (2,))], ids=str)
def test_move_at_takes_the_part_a_write_wrote(source_shape, index, target_shape):
    rng = np.random.default_rng(4)
    source, target = rng.normal(size=source_shape), rng.normal(size=target_shape)
    if index == "mask":
        index = np.array([True, False, False, True, False])
    expected_target, expected_source = target + source[index], source.copy()
    expected_source[index] = 0.0
    for run in (lambda t, s: (rt.move_at(t, s, index), (t, s))[1], lambda t, s: _move_at_compiled(t, s, index)):
        got_target, got_source = run(target.copy(), source.copy())
        np.testing.assert_array_equal(got_target, expected_target)
        np.testing.assert_array_equal(got_source, expected_source)


def test_a_row_write_moves_the_rows_adjoint():
    body = [_zeros("v_adj"), _zeros("a_adj"),
            C.Assign("r", C.Call(_P("getitem"), (C.Var("a_adj"), C.Var("i")))),
            _accumulate("v_adj", "r"), C.Store("a_adj", (C.Var("i"),), C.Const(0.0))]
    rewritten = _rewritten(body, ("a_adj", "v_adj"))
    assert [(s.call.prim.name, s.call.args) for s in rewritten if isinstance(s, C.Effect)] == [
        ("move_at1", (C.Var("v_adj"), C.Var("a_adj"), C.Var("i")))]


def _effect(prim, *names):
    return C.Effect(C.Call(_P(prim), tuple(C.Var(n) if isinstance(n, str) else n for n in names)))


@pytest.mark.parametrize("between", ["nothing", "plane_read_and_factor_zeroed"])
def test_an_outer_product_goes_into_the_plane_only_when_nothing_between_forbids_it(between):
    """add_outer(g_adj, a, b) then add_at(m_adj, g_adj, i) becomes add_outer_at(m_adj, a, b, i) at one of the two
    places; not when m_adj is read in between (it cannot move up) and a row of a is moved out in between
    (move_at zeroes it: it cannot move down)."""
    middle = [] if between == "nothing" else [
        C.Assign("z", C.Call(_P("add"), (C.Var("m_adj"), C.Var("h")))), _effect("move_at1", "v_adj", "a", "i")]
    body = [_zeros("g_adj"), _zeros("m_adj"), _zeros("v_adj"),
            _loop([_effect("add_outer", "g_adj", "a", "b"), *middle, _effect("add_at1", "m_adj", "g_adj", "i"),
                   _zeros("g_adj")])]
    prims = _prims(_rewritten(body, ("m_adj", "z", "v_adj")))
    assert ("add_outer_at1" in prims) == (between == "nothing")
    assert ("add_at1" in prims) == (between != "nothing")
