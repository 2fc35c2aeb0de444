"""The public entry points other layers use of the lowering (rule templates, the parse cache, nested-transform
placeholders) work. (That normalize imports nothing above it and its modules stay small is checked for every
stage by tests/test_architecture.py.)"""
from __future__ import annotations

import gast
import pytest

from diffprog.errors import DifferentiabilityError, Diagnostic, Reporter
from diffprog.frontend.source import PARSED, ParsedFunction, parsed_function
from diffprog.ir import core as C
from diffprog.ir import types as T
from diffprog.normalize.lower import NO_TRANSFORMS, Lowerer
from diffprog.normalize.names import NameAllocator
from diffprog.normalize.nested import NestedCall


_RULES = ParsedFunction(
    fn=None,
    node=gast.FunctionDef(name="rule", args=None, body=[], decorator_list=[], returns=None, type_comment=None,
                          type_params=[], lineno=1, col_offset=0),
    file="<test rules>", line_offset=0, col_offset=0, globals={})


def test_lower_expression_binds_names_to_atoms():
    names = NameAllocator()
    names.claim("x")
    reporter = Reporter()
    template = gast.parse("g * x + 1.0", mode="eval").body
    block, value = Lowerer(reporter, NO_TRANSFORMS, names).lower_expression(
        template, _RULES, {"x": "x", "g": C.Const(2.0)})
    assert not reporter.diagnostics
    assert [stmt.value.prim.name for stmt in block] == ["mul", "add"]
    assert block[0].value.args == (C.Const(2.0), C.Var("x"))
    assert value == C.Var(block[-1].target)


def test_parse_cache_forget():
    def f(x):
        return x * 2.0

    parsed = parsed_function(f)
    assert f in PARSED and parsed_function(f) is parsed
    PARSED.forget(f)
    assert f not in PARSED
    assert parsed_function(f) is not parsed
    PARSED.forget(f)
    PARSED.forget(f)  # forgetting twice is harmless


class _Host:
    def __init__(self, error):
        self.error = error

    def derive_nested(self, call, arg_types):
        raise self.error


def _call(host):
    return NestedCall("call", None, 1, 1, None, "grad_g", "diffprog.grad(g)", host=host)


def test_nested_result_type_is_a_float_until_derivable():
    error = DifferentiabilityError([Diagnostic("DP105", "not yet", None, "")])
    assert _call(_Host(error)).result_type(0, (T.FLOAT,)) == T.FLOAT


def test_nested_result_type_does_not_hide_bugs():
    with pytest.raises(RuntimeError):
        _call(_Host(RuntimeError("a bug"))).result_type(0, (T.FLOAT,))
