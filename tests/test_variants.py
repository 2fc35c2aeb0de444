"""Keyword variants (np.sum(x, axis=1, keepdims=True)) are a declared relation: the base primitive knows its variants
by the options they take (Primitive.variants, Primitive.variant), declared with them in rules/. Lowering asks that
relation, and its diagnostic lists the keys; no variant is found by building or parsing a primitive's name."""
import ast
import re

import numpy as np
import pytest

import diffprog as dp
from diffprog.rules import REGISTRY
from diffprog.rules.registry import describe_options, options
from reference import write_module

ALL = [REGISTRY.named(name) for name in REGISTRY.names()]
BASES = [p for p in ALL if p.variants]

# The relation as declared (rules/numpy_rules.py): base -> {options as written: the variant}.
EXPECTED = {
    "np.sum": {"axis=k": "np.sum_axis", "axis=k, keepdims=True": "np.sum_axis_keepdims"},
    "np.mean": {"axis=k": "np.mean_axis", "axis=k, keepdims=True": "np.mean_axis_keepdims"},
    "np.max": {"axis=k": "np.max_axis", "axis=k, keepdims=True": "np.max_axis_keepdims"},
    "np.min": {"axis=k": "np.min_axis", "axis=k, keepdims=True": "np.min_axis_keepdims"},
    "np.prod": {"axis=k": "np.prod_axis", "axis=k, keepdims=True": "np.prod_axis_keepdims"},
    "np.var": {"axis=k": "np.var_axis"},
    "np.std": {"axis=k": "np.std_axis"},
    "np.cumsum": {"axis=k": "np.cumsum_axis"},
    "np.concatenate": {"axis=k": "np.concatenate_axis"},
    "np.linalg.norm": {"ord='fro'": "np.linalg.norm_ord_fro", "ord=2": "np.linalg.norm_ord_2",
                       "axis=k": "np.linalg.norm_axis", "axis=k, keepdims=True": "np.linalg.norm_axis_keepdims",
                       "axis=k, ord=2": "np.linalg.norm_axis_ord_2",
                       "axis=k, keepdims=True, ord=2": "np.linalg.norm_axis_keepdims_ord_2"},
}


def _given(form: str) -> dict:
    """The keyword arguments a diagnostic's form stands for ("axis=k, ord=2" -> {"axis": 1, "ord": 2})."""
    call = ast.parse(f"f({form.replace('=k', '=1')})", mode="eval").body
    return {k.arg: ast.literal_eval(k.value) for k in call.keywords}


def test_declared_relation():
    assert {p.name: {describe_options(k): v.name for k, v in p.variants.items()} for p in BASES} == EXPECTED


def test_every_variant_is_reachable_from_its_base_by_its_options():
    declared = [v for p in BASES for v in p.variants.values()]
    assert len(declared) == len({id(v) for v in declared})  # each variant of one base, for one key
    for base in BASES:
        for key, variant in base.variants.items():
            given = _given(describe_options(key))
            assert base.variant(given) is variant, (base.name, key)
            assert REGISTRY.variant(base, given) is variant
            assert REGISTRY.named(variant.name) is variant  # registered (its name is the temporaries' stem)
            assert not variant.variants  # one level: a variant has no variants of its own
            assert base.takes >= {e for e in key if isinstance(e, str)}


def test_value_options_select_by_value():
    norm = REGISTRY.named("np.linalg.norm")
    assert norm.variant({"ord": 2.0}) is norm.variant({"ord": 2}) is REGISTRY.named("np.linalg.norm_ord_2")
    assert norm.variant({"ord": "fro"}) is REGISTRY.named("np.linalg.norm_ord_fro")
    assert norm.variant({"ord": 3}) is None and norm.variant({"ord": "nuc"}) is None
    assert norm.variant({"axis": -1, "keepdims": True, "ord": 2}) is \
        REGISTRY.named("np.linalg.norm_axis_keepdims_ord_2")
    total = REGISTRY.named("np.sum")
    assert total.variant({"axis": (0, 1)}) is REGISTRY.named("np.sum_axis")  # the value is the variant's to check
    assert total.variant({"keepdims": True}) is None  # keepdims without an axis: no variant
    assert norm.variant({"ord": ["fro"]}) is None  # an unhashable value selects nothing
    assert options("axis", keepdims=True) == frozenset({"axis", ("keepdims", True)})
    with pytest.raises(ValueError, match="already has a variant"):
        total.declare_variant(options("axis"), REGISTRY.named("np.mean_axis"))


def test_diagnostic_lists_forms_that_resolve():
    """The DP101 hint lists each base's variants; every form it lists selects a variant, and compiles."""
    module, _ = write_module("import numpy as np\n\n\ndef f(x):\n    return np.linalg.norm(x, ord=3)\n", "ord3")
    with pytest.raises(dp.DifferentiabilityError, match="np.linalg.norm with ord=3 is not supported") as e:
        dp.grad(module.f)(np.ones(3))
    forms = re.findall(r"np\.linalg\.norm\(\.\.\., ([^)]*)\)", str(e.value))
    assert forms == list(EXPECTED["np.linalg.norm"])
    norm = REGISTRY.named("np.linalg.norm")
    for form in forms:
        assert norm.variant(_given(form)) is not None, form
    x = np.array([[0.3, -1.2, 0.7], [0.5, 0.1, -0.4]])
    for form in forms:
        arg = "x[0]" if form == "ord=2" else "x"
        body = ("import numpy as np\n\n\ndef f(x):\n"
                f"    return np.sum(np.linalg.norm({arg}, {form.replace('=k', '=1')}))\n")
        g = dp.grad(dp.differentiable(write_module(body, "form")[0].f, jit=False))(x)
        assert g.shape == x.shape and np.all(np.isfinite(g)), form


def test_lookup_does_not_go_through_names(monkeypatch):
    """Renamed, and gone from the registry's names, a variant is still found from its base: lowering asks the
    declared relation (the name only names the generated code's temporaries)."""
    variant = REGISTRY.named("np.sum").variant({"axis": 1, "keepdims": True})
    monkeypatch.setattr(variant, "name", "renamed_reduction")
    monkeypatch.setattr(variant, "_parsed", {})  # copies made with its options earlier in the process keep the name
    monkeypatch.delitem(REGISTRY._by_name, "np.sum_axis_keepdims")
    module, _ = write_module("import numpy as np\n\n\ndef f(x):\n    return np.sum(np.sin(np.sum(x, axis=1, "
                             "keepdims=True)) * x)\n", "renamed")
    f = dp.differentiable(module.f, jit=False)
    x = np.array([[0.3, -1.2, 0.7], [0.5, 0.1, -0.4]])
    assert "renamed_reduction" in dp.source(f, mode="reverse", args=(x,))
    s = np.sum(x, axis=1, keepdims=True)
    expected = np.sin(s) + np.cos(s) * np.sum(x, axis=1, keepdims=True)
    np.testing.assert_allclose(dp.grad(f)(x), np.broadcast_to(expected, x.shape), rtol=1e-12)


def test_user_rule_diagnostic_names_the_function_by_its_label():
    """A user rule's primitive carries the function's name as `label` (no "rule:" prefix cut off its name)."""
    from diffprog.rules.user import remove_derivative

    module, _ = write_module("""import math


def softplus(x, scale):
    return math.log1p(math.exp(-abs(x))) * scale


def f(x):
    return softplus(x, scale=2.0)
""", "labelled")

    @dp.derivative(of=module.softplus)
    def softplus_reverse(x, scale, result, cotangent):
        return (cotangent * scale, None)

    try:
        with pytest.raises(dp.DifferentiabilityError, match=r"DP101: softplus takes 2 arguments here"):
            dp.grad(dp.differentiable(module.f, jit=False))(0.3)
    finally:
        remove_derivative(module.softplus)
