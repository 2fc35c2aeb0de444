"""The lowering's structure: normalize depends on nothing above it (the compiler hands it a TransformHost), its
modules stay small, and the public entry points other layers use (rule templates, the parse cache) work."""
from __future__ import annotations

import ast
import pathlib

import gast
import pytest

import diffprog
from diffprog.errors import DifferentiabilityError, Diagnostic, Reporter
from diffprog.frontend.source import PARSED, ParsedFunction, parsed_function
from diffprog.ir import core as C
from diffprog.ir import types as T
from diffprog.normalize.lower import NO_TRANSFORMS, Lowerer
from diffprog.normalize.names import NameAllocator
from diffprog.normalize.nested import NestedCall

PACKAGE = pathlib.Path(diffprog.__file__).parent


def _subpackages_imported(folder: pathlib.Path) -> set:
    """The diffprog subpackages the modules under `folder` import, imports inside functions included."""
    found = set()
    for path in folder.rglob("*.py"):
        parts = ["diffprog", *path.relative_to(PACKAGE).parts[:-1]]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                module = parts[:len(parts) - node.level + 1] + (node.module.split(".") if node.module else [])
                found.update([module[1]] if len(module) > 1 else [a.name for a in node.names])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("diffprog."):
                found.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("diffprog."))
    return found


def test_normalize_imports_nothing_above_it():
    imported = _subpackages_imported(PACKAGE / "normalize") - {"normalize"}
    assert imported <= {"errors", "frontend", "ir", "rules", "types"}, imported


def test_lowering_modules_stay_small():
    for path in (PACKAGE / "normalize").rglob("*.py"):
        text = path.read_text()
        assert len(text.splitlines()) <= 800, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef):
                assert node.end_lineno - node.lineno + 1 <= 400, (path, node.name)


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
