"""No stale code after redefinition: a helper, a module-level constant, a captured value, a derivative rule or
a function's code changed after the first call is seen by the next call, of the decorated function and of every
transform of it (frontend/freshness.py), as Python would see it."""
import importlib
import sys
import textwrap

import pytest

import diffprog as dp
from diffprog.frontend import freshness
from diffprog.rules.user import remove_derivative


@pytest.fixture
def module(tmp_path, monkeypatch):
    """make(name, source) -> the module written to a file and imported; redefine(module, source) runs new source
    (from a file of its own, so it has source) in the module's namespace, as a notebook cell or `%run` does."""
    monkeypatch.syspath_prepend(str(tmp_path))
    made = []

    def make(name, source):
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        made.append(name)
        return importlib.import_module(name)

    def redefine(mod, source, tag=[0]):
        tag[0] += 1
        path = tmp_path / f"{mod.__name__}_cell{tag[0]}.py"
        path.write_text(textwrap.dedent(source))
        exec(compile(path.read_text(), str(path), "exec"), mod.__dict__)

    yield make, redefine
    for name in made:
        sys.modules.pop(name, None)


SOURCE = """
    import diffprog as dp
    C = 2.0
    def helper(x):
        return C * x
    @dp.differentiable
    def f(x):
        return helper(x) * x
    def plain(x):
        return helper(x) * x
"""


def test_a_reassigned_constant_is_seen_by_primal_grad_jvp_and_jacobian(module):
    make, _ = module
    m = make("redef_constant", SOURCE)
    g, vg = dp.grad(m.f), dp.value_and_grad(m.plain)
    assert (m.f(3.0), g(3.0), vg(3.0)) == (18.0, 12.0, (18.0, 12.0))
    assert dp.jvp(m.f, (3.0,), (1.0,)) == (18.0, 12.0) and dp.jacobian(m.f)(3.0) == 12.0
    m.C = 10.0
    assert m.f(3.0) == 90.0 and g(3.0) == 60.0 and vg(3.0) == (90.0, 60.0)
    assert dp.jvp(m.f, (3.0,), (1.0,)) == (90.0, 60.0) and dp.jacobian(m.f)(3.0) == 60.0
    assert dp.grad(g)(3.0) == 20.0 and dp.hessian(m.f)(3.0) == 20.0
    value, pullback = dp.vjp(m.plain, 3.0)
    assert value == 90.0 and pullback(1.0) == (60.0,)


def test_a_helper_redefined_in_the_module_namespace(module):
    make, redefine = module
    m = make("redef_helper", SOURCE)
    g, t = dp.grad(m.f), dp.jvp_function(m.plain)
    assert m.f(3.0) == 18.0 and g(3.0) == 12.0 and t(3.0, 1.0) == 12.0 and dp.grad(g)(3.0) == 4.0
    redefine(m, "def helper(x):\n    return C * x * x\n")
    assert m.f(3.0) == 54.0 and g(3.0) == 54.0 and t(3.0, 1.0) == 54.0  # 2 x^3: 6 x^2
    assert dp.grad(g)(3.0) == 36.0 and dp.jacobian(m.plain)(3.0) == 54.0
    assert "x * x" in dp.source(m.f, "primal") or "mul" in dp.source(m.f, "primal")


def test_a_helper_in_another_module(module):
    make, redefine = module
    lib = make("redef_lib", """
        SCALE = 3.0
        def helper(x):
            return SCALE * x
    """)
    m = make("redef_user", """
        import diffprog as dp
        import redef_lib
        from redef_lib import helper
        @dp.differentiable
        def f(x):
            return helper(x) + redef_lib.SCALE * x
    """)
    assert m.f(1.0) == 6.0 and dp.grad(m.f)(1.0) == 6.0
    lib.SCALE = 5.0  # read by the helper (lib's globals) and through the module attribute
    assert m.f(1.0) == 10.0 and dp.grad(m.f)(1.0) == 10.0
    redefine(lib, "def helper(x):\n    return SCALE * x * x\n")  # m's `helper` still names the old one
    assert m.f(2.0) == 20.0
    m.helper = lib.helper  # `from redef_lib import helper` again
    assert m.f(2.0) == 30.0 and dp.grad(m.f)(2.0) == 25.0


def test_a_helper_called_through_a_nested_transform(module):
    make, redefine = module
    m = make("redef_nested", """
        import diffprog as dp
        def inner(x):
            return x * x
        @dp.differentiable
        def outer(x):
            return dp.grad(inner)(x) * x
    """)
    assert m.outer(3.0) == 18.0 and dp.grad(m.outer)(3.0) == 12.0
    redefine(m, "def inner(x):\n    return x * x * x\n")
    assert m.outer(3.0) == 81.0 and dp.grad(m.outer)(3.0) == 81.0


def test_code_replaced_in_place_like_autoreload(module):
    make, _ = module
    m = make("redef_code", SOURCE)
    assert m.f(3.0) == 18.0
    m.helper.__code__ = _code("def helper(x):\n    return C * x + 1.0\n", m)
    assert m.f(3.0) == 21.0 and dp.grad(m.f)(3.0) == 13.0
    m.f.__diffprog_function__.__code__ = _code("def f(x):\n    return helper(x) - x\n", m)
    assert m.f(3.0) == 4.0 and dp.grad(m.f)(3.0) == 1.0


def _code(source, m):
    """The code object of the function in `source`, compiled from a file so it has source."""
    import pathlib
    import tempfile

    path = pathlib.Path(tempfile.mkdtemp()) / "patched.py"
    path.write_text(source)
    namespace = dict(m.__dict__)
    exec(compile(source, str(path), "exec"), namespace)
    return next(v for k, v in namespace.items() if callable(v) and getattr(v, "__code__", None) is not None
                and v.__code__.co_filename == str(path)).__code__


def test_a_global_shadowing_a_builtin_later(module):
    make, redefine = module
    m = make("redef_builtin", """
        def f(x):
            return abs(x) * 2.0
    """)
    assert dp.grad(m.f)(-3.0) == -2.0
    redefine(m, "def abs(x):\n    return x * x\n")
    assert dp.grad(m.f)(-3.0) == -12.0


def test_a_captured_value_reassigned(module):
    make, _ = module
    m = make("redef_closure", """
        import diffprog as dp
        def make():
            k = 2.0
            def f(x):
                return k * x
            def set_k(v):
                nonlocal k
                k = v
            return dp.differentiable(f), set_k
    """)
    f, set_k = m.make()
    assert f(1.0) == 2.0 and dp.grad(f)(1.0) == 2.0
    set_k(7.0)
    assert f(1.0) == 7.0 and dp.grad(f)(1.0) == 7.0


def test_a_derivative_rule_registered_after_the_first_call(module):
    make, _ = module
    m = make("redef_rule", """
        import math
        def soft(x):
            return math.log(1.0 + math.exp(x))
        def f(x):
            return soft(x) * 2.0
    """)
    g = dp.grad(m.f)
    plain = g(0.0)
    assert plain == pytest.approx(1.0)
    @dp.derivative(of=m.soft)
    def _(x, result, cotangent):
        return (cotangent * 10.0,)

    try:
        assert g(0.0) == pytest.approx(20.0)
    finally:
        remove_derivative(m.soft)
    assert g(0.0) == pytest.approx(plain)  # the rule is gone again


def test_an_unrelated_rule_change_recompiles_nothing(module):
    make, _ = module
    m = make("redef_world", SOURCE)
    g = dp.grad(m.f)
    g(1.0)
    spec = next(iter(g._compiled.values()))
    freshness.bump_world()  # what registering a rule or a type does
    assert g(1.0) == 4.0 and next(iter(g._compiled.values())) is spec  # re-checked, not recompiled


def test_an_error_after_redefinition_is_reported(module):
    make, redefine = module
    m = make("redef_error", SOURCE)
    assert m.f(1.0) == 2.0
    redefine(m, "def helper(x):\n    try:\n        return x\n    except ValueError:\n        return 0.0\n")
    with pytest.raises(dp.DifferentiabilityError) as info:
        m.f(1.0)
    assert info.value.diagnostics[0].code == "DP101"
    redefine(m, "def helper(x):\n    return 4.0 * x\n")
    assert m.f(1.0) == 4.0


def test_dependencies_of_a_specialization(module):
    make, _ = module
    m = make("redef_deps", SOURCE)
    m.f(1.0)
    [(run, fresh)] = m.f._primal.values()
    spec = m.f.compiler.last["primal"]
    names = {name for _, name, _ in spec.deps.globals}
    assert {"helper", "C"} <= names and spec.deps.fresh() and fresh()
    assert {fn.__name__ for fn, _ in spec.deps.functions} == {"f", "helper"}
    m.C = 3.0
    assert not fresh() and spec.deps.changed() == "'C' was reassigned"


NOTEBOOK = [
    "import diffprog as dp",
    "def helper(x):\n    return 2.0 * x\n\n@dp.differentiable\ndef f(x):\n    return helper(x) * x\n\n"
    "g = dp.grad(f)\nprint('first', f(3.0), g(3.0))",
    "def helper(x):\n    return 10.0 * x\n\nprint('second', f(3.0), g(3.0))",
    "SCALE = 1.0\ndef helper(x):\n    return SCALE * x\n\nprint('third', f(3.0), g(3.0))",
    "SCALE = 4.0\nprint('fourth', f(3.0), g(3.0), dp.jvp(f, (3.0,), (1.0,))[1])",
]


def test_a_notebook_cell_redefining_a_helper(tmp_path):
    """A real kernel (nbclient, ipykernel): a helper redefined in a later cell is what the next call runs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK])
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    out = "".join(o.get("text", "") for cell in notebook.cells for o in cell.outputs if o.output_type == "stream")
    assert "first 18.0 12.0" in out, out
    assert "second 90.0 60.0" in out, out
    assert "third 9.0 6.0" in out, out
    assert "fourth 36.0 24.0 24.0" in out, out
