"""Every diagnostic code, by name: the one place a code is spelled.

Stages report problems through these names (`Diagnostic(codes.UNSUPPORTED, ...)`), never through string
literals, so a code cannot be mistyped and a reader sees what a report means. A `Code` is the string itself
("DP101": it compares, hashes, prints and serializes as one) with its severity and title; the catalogue
(cli/catalogue.py) adds each code's explanation, fix and examples for `diffprog explain` and the docs.
"""
from __future__ import annotations


class Code(str):
    severity: str  # "error" or "warning"
    title: str

    def __new__(cls, text: str, severity: str, title: str) -> "Code":
        code = super().__new__(cls, text)
        code.severity, code.title = severity, title
        return code


UNPARSABLE_FILE = Code("DP001", "error", "file cannot be parsed")
INTERNAL_ERROR = Code("DP002", "error", "internal error of the checker")
UNSUPPORTED = Code("DP101", "error", "unsupported construct on a differentiated path")
NO_RULE = Code("DP102", "error", "call to a function with no source and no derivative rule")
UNRESOLVED = Code("DP103", "error", "call that cannot be resolved statically")
SIDE_EFFECT = Code("DP104", "error", "side effect that cannot be differentiated")
NO_TANGENT = Code("DP105", "error", "active value of a type without a tangent protocol")
NOT_DIFFERENTIABLE = Code("DP106", "error", "differentiating with respect to an int, bool or str argument")
WRITES_ARGUMENT = Code("DP107", "error", "in-place write to an argument array")
MISSING_RETURN = Code("DP108", "error", "a path that does not return a value")
NO_SOURCE = Code("DP109", "error", "the function's source is unavailable")
RECURSION = Code("DP110", "error", "recursion")
NOT_SCALAR = Code("DP111", "error", "grad of a function returning a tuple")
WRITES_IN_DERIVATIVE = Code("DP112", "error", "reverse mode over a derivative that writes into arrays (retired)")
DERIVATIVE_CUT = Code("DP201", "warning", "derivative cut")
INDEPENDENT_RESULT = Code("DP202", "warning", "the result does not depend on the differentiated inputs")
NUMBA_REJECTED = Code("DP301", "error", "numba cannot compile the generated code")

ALL = (UNPARSABLE_FILE, INTERNAL_ERROR, UNSUPPORTED, NO_RULE, UNRESOLVED, SIDE_EFFECT, NO_TANGENT,
       NOT_DIFFERENTIABLE, WRITES_ARGUMENT, MISSING_RETURN, NO_SOURCE, RECURSION, NOT_SCALAR, WRITES_IN_DERIVATIVE,
       DERIVATIVE_CUT, INDEPENDENT_RESULT, NUMBA_REJECTED)
