"""Derivative rules for scalar primitives: Python's operators, the `math` module and numeric builtins.

One line per primitive: name, how it prints, its parameter names, then the partial derivative with respect to
each parameter (`out` is the primitive's result). `None` means the result does not depend on that argument;
`cut=True` marks derivatives that are zero by construction (rounding), which the checker reports on active
values.
"""
import builtins
import math
from dataclasses import replace
from functools import partial

from ..ir import types as T
from .registry import FRESH, Traits
from .registry import primitive as p
from .. import codes

# Traits (registry.Traits): every primitive here gives a number or a new array (fresh). Arithmetic is cheap to
# recompute on ints and arrays, and reads any layout; the ones that cannot raise may be hoisted out of loops.
_ARITHMETIC = Traits(fresh=True, hoistable=True, takes_any_layout=True, cheap_for=frozenset({"int", "array"}))
_PURE = Traits(fresh=True, hoistable=True)
n = partial(p, traits=FRESH)  # a number (or a new array) from numbers
pure = partial(p, traits=_PURE)  # the same, and cannot raise: hoistable

# Arithmetic operators, keyed by the gast operator class name.
p("add", "{0} + {1}", "a, b", "1.0", "1.0", keys=["Add"], result="numeric", traits=_ARITHMETIC)
p("sub", "{0} - {1}", "a, b", "1.0", "-1.0", keys=["Sub"], result="numeric", traits=_ARITHMETIC)
p("mul", "{0} * {1}", "a, b", "b", "a", keys=["Mult"], result="numeric",
  traits=replace(_ARITHMETIC, added_into="add_product"))
p("div", "{0} / {1}", "a, b", "1.0 / b", "-out / b", keys=["Div"], traits=Traits(fresh=True, takes_any_layout=True))
# d(a**b)/da, written so that a == 0 neither divides by zero (b < 1) nor loses higher derivatives (b >= 1).
POW_DA = "b * a ** (b - 1) if a != 0 or b >= 1 else (0.0 if b == 0 else math.inf)"
# elementwise: a ** 0 is 1 for every a, slope 0 also at a == 0 (where b * a ** (b - 1) is 0 * inf = NaN)
POW_DA_ARRAYS = "np.where(b == 0, 0.0, b * np.power(a, b - 1.0))"
n("pow", "{0} ** {1}", "a, b", POW_DA, "out * math.log(a) if a > 0 else (0.0 if a == a else a)", keys=["Pow"], result="numeric",
  array_partials=(POW_DA_ARRAYS, "out * np.log(np.where(a > 0, a, 1.0))"))
p("mod", "{0} % {1}", "a, b", "1.0", "-math.floor(a / b)", keys=["Mod"], result="numeric",
  traits=Traits(fresh=True, cheap_for=frozenset({"int"})),
  array_partials=("1.0", "-np.floor(a / b)"))
p("floordiv", "{0} // {1}", "a, b", None, None, keys=["FloorDiv"], result="numeric", cut=True,
  traits=Traits(fresh=True, cheap_for=frozenset({"int"})))
p("neg", "-{0}", "a", "-1.0", keys=["USub"], result="numeric", traits=_ARITHMETIC)
# Adjoint accumulation `x_adj = x_adj + c`, printed `x_adj += c`: in place for arrays (adjoint arrays are never
# shared, so updating one in place is safe and saves an allocation per contribution).
p("accumulate", "{0} + {1}", "a, b", "1.0", "1.0", result="numeric",
  traits=Traits(writes=(0,), accumulates=1, takes_any_layout=True))
p("deduct", "{0} - {1}", "a, b", "1.0", "-1.0", result="numeric",
  traits=Traits(writes=(0,), accumulates=-1, takes_any_layout=True))

# Comparisons and logic: boolean results carry no derivative.
for _op, _sym in [("Lt", "<"), ("LtE", "<="), ("Gt", ">"), ("GtE", ">="), ("Eq", "=="), ("NotEq", "!=")]:
    n(_op.lower(), "{0} %s {1}" % _sym, "a, b", None, None, keys=[_op], result="bool", cut=True)
n("not", "not {0}", "a", None, keys=["Not"], result="bool", cut=True)
n("or", "{0} or {1}", "a, b", None, None, result="bool")
n("and", "{0} and {1}", "a, b", None, None, result="bool")

# Builtins.
# Conventions (docs/numerics.md): a NaN argument gives a NaN partial, never a finite one; the partial at a kink
# is 0; an infinite slope is inf where Python's float division would raise.
_SIGN = "1.0 if x > 0 else (-1.0 if x < 0 else (0.0 if x == 0 else x))"  # NaN at NaN
pure("abs", "abs({0})", "x", _SIGN, keys=[builtins.abs], result="same",
  array_partials=("np.sign(x)",))
# Python's min(a, b) and max(a, b) return a unless b is strictly smaller (greater): also with a NaN.
pure("min", "min({0}, {1})", "a, b", "0.0 if b < a else 1.0", "1.0 if b < a else 0.0", keys=[builtins.min], result="numeric")
pure("max", "max({0}, {1})", "a, b", "0.0 if b > a else 1.0", "1.0 if b > a else 0.0", keys=[builtins.max], result="numeric")
pure("float", "({0} * 1.0)", "x", "1.0", keys=[builtins.float])  # numba has no float(bool)
n("int", "int({0})", "x", None, keys=[builtins.int], result="int", cut=True)
n("bool", "bool({0})", "x", None, keys=[builtins.bool], result="bool", cut=True)
n("str", "str({0})", "x", None, keys=[builtins.str], result=lambda ts: T.Opaque("str"),
  no_rule=(codes.NO_TANGENT, "an active value is turned into a string, which has no derivative",
           "compute with the number itself; convert to a string outside the differentiated function"))
n("round", "round({0})", "x", None, keys=[(builtins.round, 1)], result="int", cut=True)
n("round_digits", "round({0}, {1})", "x, n", None, None, keys=[(builtins.round, 2)], cut=True)

# The math module.
pure("math.sin", "math.sin({0})", "x", "math.cos(x)", keys=[math.sin])
pure("math.cos", "math.cos({0})", "x", "-math.sin(x)", keys=[math.cos])
n("math.tan", "math.tan({0})", "x", "1.0 + out * out", keys=[math.tan])
n("math.asin", "math.asin({0})", "x", "1.0 / math.sqrt(1.0 - x * x) if x * x != 1 else math.inf", keys=[math.asin])
n("math.acos", "math.acos({0})", "x", "-1.0 / math.sqrt(1.0 - x * x) if x * x != 1 else -math.inf",
  keys=[math.acos])
pure("math.atan", "math.atan({0})", "x", "1.0 / (1.0 + x * x)", keys=[math.atan])
_ORIGIN = " if x != 0 or y != 0 else math.nan"  # atan2 has no derivative at the origin
n("math.atan2", "math.atan2({0}, {1})", "y, x", "x / (x * x + y * y)" + _ORIGIN, "-y / (x * x + y * y)" + _ORIGIN,
  keys=[math.atan2])
pure("math.sinh", "math.sinh({0})", "x", "math.cosh(x)", keys=[math.sinh])
pure("math.cosh", "math.cosh({0})", "x", "math.sinh(x)", keys=[math.cosh])
pure("math.tanh", "math.tanh({0})", "x", "1.0 - out * out", keys=[math.tanh])
n("math.asinh", "math.asinh({0})", "x", "1.0 / math.sqrt(x * x + 1.0)", keys=[math.asinh])
n("math.acosh", "math.acosh({0})", "x", "1.0 / math.sqrt(x * x - 1.0) if x != 1 else math.inf",
  keys=[math.acosh])
n("math.atanh", "math.atanh({0})", "x", "1.0 / (1.0 - x * x) if x * x != 1 else math.inf", keys=[math.atanh])
pure("math.exp", "math.exp({0})", "x", "out", keys=[math.exp])
n("math.expm1", "math.expm1({0})", "x", "out + 1.0", keys=[math.expm1])
n("math.log", "math.log({0})", "x", "1.0 / x if x != 0 else math.inf", keys=[(math.log, 1)])
n("math.log_base", "math.log({0}, {1})", "x, base", "1.0 / (x * math.log(base))",
  "-out / (base * math.log(base))", keys=[(math.log, 2)])
n("math.log1p", "math.log1p({0})", "x", "1.0 / (1.0 + x) if x != -1 else math.inf", keys=[math.log1p])
n("math.log2", "math.log2({0})", "x", "1.0 / (x * math.log(2.0)) if x != 0 else math.inf",
  keys=[math.log2])
n("math.log10", "math.log10({0})", "x", "1.0 / (x * math.log(10.0)) if x != 0 else math.inf",
  keys=[math.log10])
n("math.sqrt", "math.sqrt({0})", "x", "0.5 / out if out != 0 else math.inf", keys=[math.sqrt])
n("math.pow", "math.pow({0}, {1})", "a, b", POW_DA, "out * math.log(a) if a > 0 else (0.0 if a == a else a)",
  keys=[math.pow])
pure("math.hypot", "math.hypot({0}, {1})", "x, y", "x / out if out != 0 else math.nan", "y / out if out != 0 else math.nan", keys=[(math.hypot, 2)])
n("math.fabs", "math.fabs({0})", "x", _SIGN, keys=[math.fabs])
n("math.erf", "math.erf({0})", "x", "1.1283791670955126 * math.exp(-x * x)", keys=[math.erf])
n("math.erfc", "math.erfc({0})", "x", "-1.1283791670955126 * math.exp(-x * x)", keys=[math.erfc])
n("math.copysign", "math.copysign({0}, {1})", "x, y", "1.0 if x * y >= 0 else -1.0", None,
  keys=[math.copysign])
n("math.degrees", "math.degrees({0})", "x", "57.29577951308232", keys=[math.degrees])
n("math.radians", "math.radians({0})", "x", "0.017453292519943295", keys=[math.radians])
n("math.floor", "math.floor({0})", "x", None, keys=[math.floor], result="int", cut=True)
n("math.ceil", "math.ceil({0})", "x", None, keys=[math.ceil], result="int", cut=True)
n("math.trunc", "math.trunc({0})", "x", None, keys=[math.trunc], result="int", cut=True)
n("math.isnan", "math.isnan({0})", "x", None, keys=[math.isnan], result="bool")
n("math.isinf", "math.isinf({0})", "x", None, keys=[math.isinf], result="bool")
n("math.isfinite", "math.isfinite({0})", "x", None, keys=[math.isfinite], result="bool")
