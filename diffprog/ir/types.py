"""Value types of the core language, as far as derivatives care: which values carry a derivative, and what a
tape for them stores. Types come from the argument types of a call (specialization, as numba does)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Scalar:
    kind: str  # "bool" < "int" < "float"

    @property
    def differentiable(self) -> bool:
        return self.kind == "float"

    def __str__(self):
        return {"float": "float64", "int": "int64", "bool": "bool"}[self.kind]


@dataclass(frozen=True)
class Array:
    dtype: str  # numpy dtype name
    ndim: int

    @property
    def differentiable(self) -> bool:
        return np.dtype(self.dtype).kind == "f"

    def __str__(self):
        return f"{self.dtype}[{', '.join(':' * self.ndim)}]"


@dataclass(frozen=True)
class Opaque:
    """A value diffprog passes through but cannot differentiate (a string, an unregistered object)."""

    pytype: str

    differentiable = False

    def __str__(self):
        return self.pytype


FLOAT = Scalar("float")
INT = Scalar("int")
BOOL = Scalar("bool")
_RANK = {"bool": 0, "int": 1, "float": 2}


def join(a, b):
    """The type a variable has when assigned values of types a and b (numba's unification rules)."""
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, Scalar) and isinstance(b, Scalar):
        return a if _RANK[a.kind] >= _RANK[b.kind] else b
    raise TypeError(f"cannot unify {a} and {b}")


def numeric_join(*types):
    """Result type of arithmetic: bools count as ints, as in Python."""
    result = INT
    for t in types:
        if not isinstance(t, Scalar):
            raise TypeError(f"arithmetic on {t}")
        result = join(result, t)
    return result


def type_of_value(value):
    """The core type of a runtime argument."""
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, (int, np.integer)):
        return INT
    if isinstance(value, (float, np.floating)):
        return FLOAT
    if isinstance(value, np.ndarray):
        return Array(value.dtype.name, value.ndim)
    return Opaque(type(value).__name__)


def zero_literal(t) -> str:
    return {"float": "0.0", "int": "0", "bool": "False"}[t.kind]


_SCALAR_DTYPES = {"float": "float64", "int": "int64", "bool": "bool"}


def dtype_of(t) -> str:
    if isinstance(t, Array):
        return t.dtype
    if isinstance(t, Scalar):
        return _SCALAR_DTYPES[t.kind]
    raise TypeError(f"{t} is not a number or an array")


def broadcast(types, result_kind=None):
    """Result type of an elementwise operation, as numba computes it: scalars stay scalars; otherwise an array
    of the promoted dtype (Python floats count as float64) and the largest rank. `result_kind` forces "float"
    (true division, transcendental functions) or "bool" (comparisons)."""
    arrays = [t for t in types if isinstance(t, Array) and t.ndim > 0]
    if not arrays:  # numba computes with a 0-d array (np.array(x)) as with the number it holds
        scalar = numeric_join(*(_scalar_of(t) for t in types))
        if result_kind == "bool":
            return BOOL
        return FLOAT if result_kind == "float" else scalar
    dtype = np.dtype(dtype_of(types[0]))
    for t in types[1:]:
        dtype = np.promote_types(dtype, dtype_of(t))
    if result_kind == "bool":
        dtype = np.dtype(bool)
    elif result_kind == "float" and dtype.kind != "f":
        dtype = np.dtype("float64")
    return Array(dtype.name, max(a.ndim for a in arrays))


def _scalar_of(t):
    if isinstance(t, Array) and t.ndim == 0:
        return {"f": FLOAT, "b": BOOL}.get(np.dtype(t.dtype).kind, INT)
    return t


def is_array(t) -> bool:
    return isinstance(t, Array)
