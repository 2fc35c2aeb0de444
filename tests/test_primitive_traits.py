"""Primitives carry their traits (rules/registry.py: Traits): every registered primitive's traits are consistent,
and the stages that used to keep name sets of their own get the same answers from the traits for every name
those sets held (the sets are copied here as they were)."""
import pytest

import diffprog  # noqa: F401  (registers the primitives)
from diffprog.analysis import check
from diffprog.backend import in_place
from diffprog.ir import core as C
from diffprog.normalize import cleanup
from diffprog.rules import REGISTRY, lane_rules
from diffprog.rules.registry import Traits

ALL = [REGISTRY.named(name) for name in REGISTRY.names()]
_EXTENTS = range(1, 5)

# ---- the name sets the consumers kept before the traits ---------------------------------------------------------
OLD_FORWARD_FRESH_ARRAYS = {"zeros_like", "tape_empty_float", "tape_empty_int", "tape_empty_bool"}
OLD_FORWARD_SAME_ARRAY = {"tape_reserve"}
OLD_IN_PLACE_ZEROS = {"np.zeros_shape", *(f"zeros_extents{r}" for r in _EXTENTS)}
OLD_IN_PLACE_UNBROADCASTS = {"unbroadcast", *(f"unbroadcast_extents{r}" for r in _EXTENTS)}
OLD_IN_PLACE_SELF_UPDATES = {"accumulate", "deduct", "add_outer", "add_product", "add_matmul", "add_at1", "add_at2",
                             "move_at1", "move_at2", "add_outer_at1"}
OLD_IN_PLACE_ADDITIONS = {"accumulate", "deduct"}
OLD_IN_PLACE_VIEWS = {"getitem", "transpose", "reshape", "ravel", "np.expand_dims", "as_float64", "no_derivative",
                      "spread_like", *OLD_IN_PLACE_UNBROADCASTS}
OLD_IN_PLACE_FRESH = {"add", "sub", "mul", "div", "pow", "neg", "mod", "floordiv", "abs", "max", "min", "float",
                      "eq", "noteq", "gt", "gte", "lt", "lte", "matmul", "copy", "sum_leading", "sum_product",
                      "shape", "len", "size", "ndim", "rt.cumsum_reversed", "rt.prod_others", "rt.prod_others_along"}
OLD_IN_PLACE_TERM_READERS = {"add", "sub", "mul", "div", "neg", "np.sum", "accumulate", "deduct", "add_outer",
                             *OLD_IN_PLACE_UNBROADCASTS}
OLD_CHECK_VIEWS = {"getitem", "transpose", "reshape", "ravel", "np.expand_dims"}
OLD_CHECK_SHAPE_READS = {"shape", "len", "size", "np.zeros_shape", "np.ones_shape", "np.empty_shape",
                         "np.full_shape", "np.zeros_like", "np.ones_like", "np.empty_like", "zeros_like"}
OLD_CLEANUP_HOISTABLE = {"add", "sub", "mul", "neg", "math.sin", "math.cos", "math.exp", "math.tanh", "math.atan",
                         "math.sinh", "math.cosh", "math.hypot", "abs", "min", "max", "float", "np.sin", "np.cos",
                         "np.exp", "np.tanh", "transpose", "matmul", "np.outer", "np.sum", "np.square"}
# transforms/reverse/ (plan.py, extents.py, adjoints.py ask the queries below instead)
OLD_REVERSE_READS = {"getitem", "shape", "len", "size", "transpose"}
OLD_REVERSE_INDEX_ARITHMETIC = {"add", "sub", "mul", "neg", "floordiv", "mod"}
OLD_REVERSE_ARRAY_ARITHMETIC = {"add", "sub", "mul", "neg"}
OLD_REVERSE_SHAPE_ARGUMENT = {"np.zeros_shape": 0, "unbroadcast": 1, "shape": 0}
OLD_REVERSE_ADDED_INTO = {"np.outer": "add_outer"}


def _old_in_place_fresh(name):
    return name in OLD_IN_PLACE_FRESH or (
        (name.startswith("np.") or name.startswith("math.")) and name not in OLD_IN_PLACE_VIEWS)


# ---- consistency of every primitive's traits --------------------------------------------------------------------
@pytest.mark.parametrize("prim", ALL, ids=lambda p: p.name)
def test_traits_are_consistent(prim):
    t = prim.traits
    assert isinstance(t, Traits)
    arity = len(prim.params) if prim.params else None  # None: variadic
    positions = [p for p in (t.view_of,) if p is not None] + list(t.writes) + list(t.shape_only)
    assert arity is None or all(0 <= p < arity for p in positions), "a trait names an argument that does not exist"
    assert not (t.fresh and t.view_of is not None), "fresh and view are exclusive"
    assert not (t.fresh and t.writes), "an in-place updater returns the array it updated, not a fresh one"
    assert not (t.view_of is not None and t.writes), "updaters are not views"
    assert not (t.writes and t.hoistable), "an in-place updater is not pure"
    assert not (prim.effect and t.hoistable), "an effect is not pure"
    assert not (t.accumulates and 0 not in t.writes), "an accumulation updates its first argument"
    assert t.accumulates in (-1, 0, 1)
    assert not (t.extents_form and not t.shape_only), "an extents form replaces a shape-only argument"
    assert not (t.view_of is not None and t.view_of in t.shape_only), "a view reads its array's elements"
    assert not (t.new_buffer and t.regrows)
    assert not (t.new_buffer and t.view_of is not None)
    assert t.cheap_for <= {"int", "array", "any"}
    if t.added_into is not None:
        assert 0 in REGISTRY.named(t.added_into).traits.writes
    if t.reusable_zeros is not None:
        assert t.fresh
        for test in t.reusable_zeros:
            assert REGISTRY.named(test).params[0] == "buffer"
    if t.extents_form not in (None, "extent"):
        for rank in _EXTENTS:
            assert REGISTRY.has(f"{t.extents_form}{rank}")
    if t.new_buffer or t.regrows:
        alike = prim.lane_alike
        assert alike is None or REGISTRY.named(alike).name.startswith("lanes.")
    if t.sums_to_shape:
        assert t.view_of == 0  # may be the term itself
    if prim.lane_joins is not None:
        assert all(REGISTRY.has(joined) for joined in prim.lane_joins.values())


def test_writes_zeroing_a_second_argument_is_move_at_only():
    assert {p.name for p in ALL if len(p.traits.writes) > 1} == {"move_at1", "move_at2"}


def test_views_decision():
    """Which results may alias an argument (Traits.view_of), and which of those pass derivatives (the checker's
    question): no_derivative prints as its argument but passes no derivative; as_float64 (astype) copies."""
    may_alias = {p.name for p in ALL if p.traits.view_of is not None}
    assert may_alias == OLD_IN_PLACE_VIEWS - {"as_float64"}
    assert REGISTRY.named("as_float64").traits.fresh
    checked = {p.name for p in may_alias_prims() if p.aliases_differentiably()}
    assert checked == OLD_CHECK_VIEWS | OLD_IN_PLACE_UNBROADCASTS  # unbroadcast: generated code only


def may_alias_prims():
    return [p for p in ALL if p.traits.view_of is not None]


# ---- the consumers' queries give the old answers -----------------------------------------------------------------
def _names(predicate):
    return {p.name for p in ALL if predicate(p)}


def test_forward_queries():
    assert _names(lambda p: p.traits.new_buffer) == OLD_FORWARD_FRESH_ARRAYS
    assert _names(lambda p: p.traits.regrows) == OLD_FORWARD_SAME_ARRAY
    # batched forward mode's tangent buffers (was a dict in transforms/batched.py)
    assert {p.name: p.lane_alike for p in ALL if p.traits.new_buffer or p.traits.regrows} == {
        "zeros_like": "lanes.zeros", "tape_empty_float": "lanes.tape", "tape_empty_int": None,
        "tape_empty_bool": None, "tape_reserve": "lanes.tape_reserve"}


def test_in_place_queries():
    assert _names(in_place._buffer_zeros) == OLD_IN_PLACE_ZEROS
    assert _names(in_place._sums_to_shape) == OLD_IN_PLACE_UNBROADCASTS
    assert _names(in_place._updates_first) == OLD_IN_PLACE_SELF_UPDATES | {"fill_zeros"}  # inserted last
    assert _names(in_place._adds_term) == OLD_IN_PLACE_ADDITIONS
    assert _names(in_place._may_alias) == OLD_IN_PLACE_VIEWS - {"as_float64"}
    assert _names(in_place._takes_any_layout) == OLD_IN_PLACE_TERM_READERS
    assert _names(in_place._product_term) == {"mul", "matmul"} | OLD_IN_PLACE_UNBROADCASTS
    # fresh: the old answer for every name that was fresh; new fresh ones read numbers only (or are as_float64,
    # or tape and zeros allocations of ints), never an adjoint buffer
    fresh = _names(lambda p: p.traits.fresh)
    old_fresh = {p.name for p in ALL if _old_in_place_fresh(p.name)}
    assert old_fresh <= fresh
    assert fresh - old_fresh == {"as_float64", "not", "or", "and", "int", "bool", "str", "round", "round_digits",
                                 "tape_empty_float", "tape_empty_int", "tape_empty_bool",
                                 *(f"zeros_extents{r}" for r in _EXTENTS)}
    assert {p.name: p.traits.reusable_zeros for p in ALL if in_place._buffer_zeros(p)} == {
        "np.zeros_shape": ("has_shape_like", "lacks_shape_like"),
        **{f"zeros_extents{r}": (f"has_shape_extents{r}", f"lacks_shape_extents{r}") for r in _EXTENTS}}


def test_in_place_reads_elements_only_of_shape_arguments():
    buf, term = C.Var("buf"), C.Var("term")
    spread = C.Assign("v", C.Call(REGISTRY.named("spread_like"), (term, buf)), None)
    assert in_place._reads_elements_only(spread, "buf")
    spread_itself = C.Assign("v", C.Call(REGISTRY.named("spread_like"), (buf, term)), None)
    assert not in_place._reads_elements_only(spread_itself, "buf")


def test_check_queries():
    assert _names(lambda p: 0 in p.traits.shape_only) == OLD_CHECK_SHAPE_READS
    call = C.Call(REGISTRY.named("np.zeros_shape"), (C.Var("x"),))
    assert check._reads_shape_only(call)
    assert _names(lambda p: p.aliases_differentiably()) == OLD_CHECK_VIEWS | OLD_IN_PLACE_UNBROADCASTS


def test_cleanup_query():
    assert _names(lambda p: p.traits.hoistable) == OLD_CLEANUP_HOISTABLE
    assert cleanup._hoistable(C.Call(REGISTRY.named("np.outer"), (C.Var("a"), C.Var("b"))))


def test_reverse_replacement_queries():
    """The trait queries transforms/reverse/ asks give what its name sets gave."""
    assert _names(lambda p: "any" in p.traits.cheap_for) == OLD_REVERSE_READS
    assert _names(lambda p: "int" in p.traits.cheap_for) == OLD_REVERSE_INDEX_ARITHMETIC
    assert _names(lambda p: "array" in p.traits.cheap_for) == OLD_REVERSE_ARRAY_ARITHMETIC
    assert {p.name: p.traits.shape_only[0] for p in ALL if p.traits.shape_only and p.traits.extents_form} \
        == OLD_REVERSE_SHAPE_ARGUMENT
    assert {p.name: p.traits.added_into for p in ALL if p.traits.added_into
            and not REGISTRY.named(p.traits.added_into).effect} == OLD_REVERSE_ADDED_INTO
    assert _names(lambda p: p.traits.accumulates == 1) == {"accumulate"}


# ---- lane rules are declared with the primitive ------------------------------------------------------------------
def test_lane_rules_live_on_the_primitive():
    with_rules = {p.name for p in ALL if p.lane_jvps is not None}
    joins = {p.name for p in ALL if p.lane_joins is not None}
    assert joins == {"np.array", "np.concatenate", "np.hstack", "np.stack", "np.vstack"}
    assert not with_rules & joins
    assert "np.trace" in with_rules and "matmul" in with_rules
    for p in ALL:
        assert p.has_lane_rule == (p.lane_jvps is not None or p.lane_joins is not None)
    assert not hasattr(lane_rules, "LANE_JVPS") and not hasattr(lane_rules, "lane_jvp")  # no name-keyed view left
    assert REGISTRY.named("np.sum").lane_jvp(0, (2,)) == "lanes.sum(t)"
    with pytest.raises(KeyError):
        REGISTRY.named("np.linalg.solve").lane_jvp(0, (1, 1))  # solve has rules for a matrix and a vector or matrix


# ---- normalize/lower/calls.py asks the traits, not names ----------------------------------------------------------
def test_lower_queries():
    """positional_options and shape_form replaced `_POSITIONAL_OPTIONS.get(name) or (("axis",) if
    REGISTRY.has(name + "_axis") or "axis" in default_options else ())` and `REGISTRY.named(name + "_shape")`:
    a function taking an axis takes it by position too, and a shape form is a registered primitive taking an array
    for the shape."""
    for p in ALL:
        old = {"np.linalg.norm": ("ord", "axis", "keepdims")}.get(p.name) or (
            ("axis",) if "axis" in p.takes or "axis" in p.default_options else ())
        assert p.positional_options == old, p.name
        if p.shape_form is not None:
            assert p.tuple_arg is not None, p.name
            shaped = REGISTRY.named(p.shape_form)
            assert shaped.tuple_arg is None and shaped.params[0] in ("x", "like"), p.name
    assert {p.name for p in ALL if p.shape_form} == {"reshape", "np.zeros", "np.ones", "np.empty", "np.full"}
