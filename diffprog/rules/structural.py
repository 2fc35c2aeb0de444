"""Primitives that move values rather than compute them: indexing, sizes, and the identity with no derivative.

Indexing has no scalar partial: its adjoint scatters into the indexed array, which the reverse transform
emits from the `adjoint="index"` tag. The linear maps of generated adjoints carry tangent rules (`jvps`, and
`lane_jvps` for batched forward mode, rules/lane_rules.py) for derivatives of derivatives.
"""
import builtins

from ..ir import core as C
from ..ir import types as T
from .runtime_calls import TAPES_MODULE, rt, runtime_import

from .numpy_rules import OUTER_LANE_JVPS
from .registry import FRESH, Primitive, Traits
from .registry import primitive as p

_READ = frozenset({"any"})  # cheap to recompute, whatever the result (Traits.cheap_for)

p("getitem", lambda args: f"{args[0]}[{', '.join(map(str, args[1:]))}]", "", adjoint="index",
  result="element", traits=Traits(view_of=0, cheap_for=_READ))
p("len", "len({0})", "x", None, keys=[builtins.len], result="int",
  traits=Traits(fresh=True, shape_only=(0,), cheap_for=_READ))
p("shape", "{0}.shape[{1}]", "x, k", None, None, result="int",
  traits=Traits(fresh=True, shape_only=(0,), extents_form="extent", cheap_for=_READ))
p("range_len", "len(range({0}, {1}, {2}))", "start, stop, step", None, None, None, result="int")
p("range_continues", "({0} < {1}) if {2} > 0 else ({0} > {1})", "i, stop, step", None, None, None,
  result="bool")


def no_derivative(x):
    """Returns `x` unchanged, with derivative zero: states that no derivative should flow through here.

    >>> diffprog.grad(lambda x: x * diffprog.no_derivative(x))(3.0)
    3.0
    """
    return x


p("no_derivative", "{0}", "x", None, keys=[no_derivative], result="same", traits=Traits(view_of=0))  # prints as x
p("print", lambda args: f"print({', '.join(map(str, args))})", "", effect=True, keys=[builtins.print],
  result="none")
# `assert cond, "message"`: checked where the primal runs, no derivative (lowering: statements.stmt_Assert)
p("assert", lambda args: f"assert {args[0]}" + (f", {args[1]}" if len(args) > 1 else ""), "", effect=True,
  result="none")

# The machinery of the generated code itself: tapes and adjoint buffers.
_TAPE_DTYPES = {"float": "np.float64", "int": "np.int64", "bool": "np.bool_"}
for _kind, _dtype in _TAPE_DTYPES.items():
    p(f"tape_empty_{_kind}", "np.empty({0}, %s)" % _dtype, "n", None,
      result=lambda ts, k=_kind: T.Array(T.np.dtype(_TAPE_DTYPES[k][3:]).name, 1),
      traits=Traits(fresh=True, new_buffer=True),
      lane_alike="lanes.tape" if _kind == "float" else None)  # int and bool tapes carry no derivative
p("tape_reserve", "tape_reserve({0}, {1}, {2})", "tape, length, count", result="same",
  imports=runtime_import("tape_reserve"),
  vjps=("g[:tape.shape[0]]", None, None),  # grows a tape: its contents pass through unchanged
  traits=Traits(regrows=True), lane_alike="lanes.tape_reserve")
p("zeros_like", "np.zeros_like({0})", "x", None, result="same", traits=Traits(new_buffer=True, shape_only=(0,)),
  lane_alike="lanes.zeros")
# Linear maps in generated adjoints: differentiating an adjoint again (grad of grad, hessian, a gradient taken
# inside differentiated code) needs their derivatives too.
p("unbroadcast", "unbroadcast({0}, {1})", "contribution, like", keys=[rt.unbroadcast],
  result=lambda ts: ts[1] if T.is_array(ts[1]) else ts[0], imports=runtime_import("unbroadcast"),
  vjps=("g + np.zeros_like(contribution)", None), jvps=("rt.unbroadcast(t, like)", None),
  lane_jvps=lambda ranks: ("lanes.unbroadcast(t, like)" if ranks[1] > 0 else "t", None),
  traits=Traits(view_of=0, shape_only=(1,), extents_form="unbroadcast_extents", takes_any_layout=True,
                sums_to_shape=True))
p("scatter_add", "scatter_add({0}, {1}, {2})", "target, index, values", keys=[rt.scatter_add], result="same",
  imports=runtime_import("scatter_add"), vjps=("g", None, "g[index]"),
  jvps=("t", None, "rt.scatter_add(np.zeros_like(target), index, t)"),
  lane_jvps=("t", None, "lanes.scatter(target, index, t)"))
p("sum_leading", "np.sum({0}, axis=0)", "x", keys=[rt.sum_leading], result=lambda ts: T.Array(ts[0].dtype,
  ts[0].ndim - 1) if ts[0].ndim > 1 else T.FLOAT, vjps=("g + np.zeros_like(x)",), jvps=("rt.sum_leading(t)",),
  lane_jvps=("np.sum(t, axis=0)",), traits=FRESH)
p("add_outer", "add_outer({0}, {1}, {2})", "target, a, b", result="same", imports=runtime_import("add_outer"),
  vjps=("g", "g @ b", "g.T @ a"), jvps=("t", "np.outer(t, b)", "np.outer(a, t)"),  # target += np.outer(a, b)
  lane_jvps=("t",) + OUTER_LANE_JVPS,
  traits=Traits(writes=(0,), takes_any_layout=True))
# An array the backward sweep reads only for its shape is saved as its extents (transforms/reverse/extents.py), one int
# per axis; these take the shape from them. unbroadcast's result has exactly that shape: its tangent rules use it.
for _rank in range(1, 5):
    _extents = ", ".join(f"n{k}" for k in range(_rank))
    p(f"zeros_extents{_rank}", "np.zeros((" + "".join(f"{{{k}}}, " for k in range(_rank)) + "))", _extents,
      *([None] * _rank), result=lambda ts, r=_rank: T.Array("float64", r),
      traits=Traits(fresh=True, reusable_zeros=(f"has_shape_extents{_rank}", f"lacks_shape_extents{_rank}")))
    p(f"unbroadcast_extents{_rank}", "unbroadcast_to({0}, (" + "".join(f"{{{k + 1}}}, " for k in range(_rank)) + "))",
      "contribution, " + _extents, result=lambda ts: ts[0], imports=runtime_import("unbroadcast_to"),
      vjps=("g + np.zeros_like(contribution)",) + (None,) * _rank, jvps=("rt.unbroadcast(t, out)",) + (None,) * _rank,
      lane_jvps=("lanes.unbroadcast(t, out)",) + (None,) * _rank,
      traits=Traits(view_of=0, takes_any_layout=True, sums_to_shape=True))
# Adjoint buffers updated in place (backend/in_place.py), only in code that runs: never differentiated again.
_UPDATES = Traits(writes=(0,))  # target updated in place
p("add_product", "add_product({0}, {1}, {2})", "target, a, b", effect=True, result="none",
  imports=runtime_import("add_product"), traits=_UPDATES)
p("add_matmul", "add_matmul({0}, {1}, {2})", "target, a, b", effect=True, result="none",
  imports=runtime_import("add_matmul"), traits=_UPDATES)
for _name, _operands in (("add_at", "target, term"), ("move_at", "target, source")):  # a row: one or two indices
    _writes = Traits(writes=(0, 1) if _name == "move_at" else (0,))  # move_at zeroes the part it moved
    p(f"{_name}1", _name + "({0}, {1}, {2})", _operands + ", i", effect=True, result="none",
      imports=runtime_import(_name), traits=_writes)
    p(f"{_name}2", _name + "({0}, {1}, ({2}, {3}))", _operands + ", i, j", effect=True, result="none",
      imports=runtime_import(_name), traits=_writes)
p("add_outer_at1", "add_outer_at({0}, {1}, {2}, {3})", "target, a, b, i", effect=True, result="none",
  imports=runtime_import("add_outer_at"), traits=_UPDATES)
p("sum_product", "sum_product({0}, {1})", "a, b", result="float", imports=runtime_import("sum_product"),
  traits=FRESH)
p("fill_zeros", "{0}.fill(0.0)", "buffer", effect=True, result="none", traits=_UPDATES)
for _test, _compare in (("has", "=="), ("lacks", "!=")):
    p(f"{_test}_shape_like", "{0}.shape " + _compare + " {1}.shape", "buffer, like", result="bool")
    for _rank in range(1, 5):
        p(f"{_test}_shape_extents{_rank}",
          "{0}.shape " + _compare + " (" + "".join(f"{{{k + 1}}}, " for k in range(_rank)) + ")",
          "buffer, " + ", ".join(f"n{k}" for k in range(_rank)), result="bool")
# A single term read where it is, as a view shaped like the adjoint it would have been added into.
p("spread_like", "spread_like({0}, {1})", "term, like", result=lambda ts: ts[1], imports=runtime_import("spread_like"),
  traits=Traits(view_of=0, shape_only=(1,)))
# Tapes of arrays (backend/tapes.py): a flat buffer of the pushed elements and an index of (start, shape) rows.
# A restored array is typed "element": its derivative is not followed (second derivatives through such loops
# are reported, analysis/inference.py).
p("array_tape_note", "array_tape_note({0}, {1}, {2})", "index, length, x", result="same",
  imports=runtime_import("array_tape_note", TAPES_MODULE))
p("array_tape_store", "array_tape_store({0}, {1}, {2}, {3})", "tape, index, length, x", result="same",
  imports=runtime_import("array_tape_store", TAPES_MODULE))
p("array_tape_load", "array_tape_load({0}, {1}, {2}, {3})", "tape, index, length, like",
  result=lambda ts: T.Opaque("element"), imports=runtime_import("array_tape_load", TAPES_MODULE))
# Binomial checkpointing (transforms/reverse/checkpoint.py, backend/runtime/revolve.py): the schedule and the loop state's snapshots.
p("revolve_slots", "revolve_slots({0}, {1})", "steps, snapshots", result="int", imports=runtime_import("revolve_slots"))
p("revolve_new", "revolve_new({0}, {1})", "steps, slots", result=lambda ts: T.Array("int64", 1),
  imports=runtime_import("revolve_new"))
p("revolve_next", "revolve_next({0})", "schedule", result="int", imports=runtime_import("revolve_next"))
p("snapshot_list", "snapshot_list({0}, {1})", "x, slots", result=lambda ts: T.Opaque("list"),
  imports=runtime_import("snapshot_list"))
p("list_set", "{0}[{1}] = np.ascontiguousarray({2})", "snapshots, slot, x", effect=True, result="none")
# astype copies (numpy's and numba's alike): a fresh array, not a view (backend/in_place.py listed it among views)
p("as_float64", "{0}.astype(np.float64)", "x", keys=[rt.as_float64], result=lambda ts: T.Array("float64", ts[0].ndim),
  vjps=("rt.as_float64(g)",), jvps=("rt.as_float64(t)",), lane_jvps=("rt.as_float64(t)",), traits=FRESH)


def empty_array(t, shape=None) -> Primitive:
    """An empty array of type t: a value (and a numba type) for an array variable, or a tape, before its first
    assignment."""
    shape = shape or "(" + "0, " * t.ndim + ")"
    return Primitive(f"empty_{t}", f"np.zeros({shape}, np.{t.dtype})", (), result=lambda ts: t)


def initial_value(t):
    """A value of type t to give a variable before its first assignment (zero, or an empty array), or None for
    other types."""
    if isinstance(t, T.Scalar):
        return C.Const({"float": 0.0, "int": 0, "bool": False}[t.kind])
    if isinstance(t, T.Array):
        return C.Call(empty_array(t), ())
    return None

