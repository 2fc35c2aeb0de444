"""Python constructs outside the differentiable subset, and the decoration-time check that finds them.

The table is the single source of these diagnostics: the decoration-time check and the normalizer (which meets
the same constructs in called functions) both report from it.
"""
from __future__ import annotations

import gast

from ..errors import Reporter
from .. import codes

_REWRITE = "rewrite it with plain assignments, if/else and for/while loops"

UNSUPPORTED = {
    gast.Try: (codes.UNSUPPORTED, "try/except", "move the error handling outside the differentiated function"),
    gast.With: (codes.UNSUPPORTED, "a 'with' block", "move the context manager outside the differentiated function"),
    gast.Yield: (codes.UNSUPPORTED, "'yield' (a generator)", "return the values (e.g. as a tuple) instead of yielding"),
    gast.YieldFrom: (codes.UNSUPPORTED, "'yield from' (a generator)", "return the values instead of yielding"),
    gast.Await: (codes.UNSUPPORTED, "'await'", "differentiate a synchronous function"),
    gast.AsyncFunctionDef: (codes.UNSUPPORTED, "an async function", "differentiate a synchronous function"),
    gast.AsyncFor: (codes.UNSUPPORTED, "'async for'", "use a plain for loop"),
    gast.AsyncWith: (codes.UNSUPPORTED, "'async with'", "move it outside the differentiated function"),
    gast.ClassDef: (codes.UNSUPPORTED, "a class definition inside a differentiated function",
                    "define the class at module level and register it with @diffprog.differentiable_type"),
    gast.Delete: (codes.UNSUPPORTED, "'del'", "let the variable go out of scope instead of deleting it"),
    gast.Import: (codes.UNSUPPORTED, "an import inside a differentiated function", "import at module level"),
    gast.ImportFrom: (codes.UNSUPPORTED, "an import inside a differentiated function", "import at module level"),
    gast.ListComp: (codes.UNSUPPORTED, "a list comprehension", "write the loop out with for"),
    gast.SetComp: (codes.UNSUPPORTED, "a set comprehension", "write the loop out with for"),
    gast.DictComp: (codes.UNSUPPORTED, "a dict comprehension", "write the loop out with for"),
    gast.GeneratorExp: (codes.UNSUPPORTED, "a generator expression", "write the loop out with for"),
    gast.JoinedStr: (codes.UNSUPPORTED, "an f-string", "format strings outside the differentiated function"),
    gast.Starred: (codes.UNSUPPORTED, "star-arguments (*args)", "pass the arguments one by one"),
    gast.Lambda: (codes.UNSUPPORTED, "a lambda inside a differentiated function", "define a nested function with def"),
    gast.Raise: (codes.UNSUPPORTED, "'raise'", "check inputs before calling the differentiated function"),
    gast.Match: (codes.UNSUPPORTED, "a 'match' statement", "use if/elif/else"),
    gast.List: (codes.UNSUPPORTED, "a list", "use a tuple for a fixed number of values, or a numpy array"),
    gast.Dict: (codes.UNSUPPORTED, "a dict", "use separate variables or a registered differentiable type"),
    gast.Set: (codes.UNSUPPORTED, "a set", "use separate variables"),
    gast.NamedExpr: (codes.UNSUPPORTED, "the walrus operator ':='", "assign on a line of its own"),
    gast.Global: (codes.SIDE_EFFECT, "a write to a global variable ('global')",
                  "return the value instead of writing a global"),
    gast.Nonlocal: (codes.SIDE_EFFECT, "a write to a variable of an enclosing function ('nonlocal')",
                    "return the value instead of writing the captured variable"),
}


def is_checkpoint_block(node) -> bool:
    """`with checkpoint(...):` (under any module alias): the one `with` the normalizer reads, as a mark."""
    if not isinstance(node, gast.With) or len(node.items) != 1 or node.items[0].optional_vars is not None:
        return False
    call = node.items[0].context_expr
    func = call.func if isinstance(call, gast.Call) else None
    return (isinstance(func, gast.Name) and func.id == "checkpoint"
            or isinstance(func, gast.Attribute) and func.attr == "checkpoint")


def report_unsupported(node, parsed, reporter: Reporter) -> bool:
    """Reports `node` if it is outside the subset; True when it was."""
    if is_checkpoint_block(node):
        return False
    entry = UNSUPPORTED.get(type(node))
    if entry is None:
        return False
    code, what, fix = entry
    reporter.error(code, f"{what} cannot be differentiated", parsed.origin(node), fix)
    return True


def check_function_syntax(parsed, reporter: Reporter) -> None:
    """Decoration-time check: every unsupported construct in the function body, each reported once."""
    node = parsed.node
    args = node.args
    if args.vararg or args.kwarg or args.kwonlyargs:
        reporter.error(codes.UNSUPPORTED, "*args, **kwargs and keyword-only parameters are not supported",
                       parsed.origin(node), "use plain positional parameters")
    for statement in node.body:
        _visit(statement, parsed, reporter)


def _visit(node, parsed, reporter):
    if report_unsupported(node, parsed, reporter):
        return
    for child in gast.iter_child_nodes(node):
        if isinstance(node, gast.Call) and isinstance(child, gast.List):
            # `np.array([a, b])`: whether a list argument is fine depends on the callee, known when lowering
            for element in child.elts:
                _visit(element, parsed, reporter)
            continue
        if isinstance(node, gast.Call) and isinstance(child, gast.GeneratorExp) and child is node.args[0] and \
                isinstance(node.func, gast.Name) and node.func.id == "sum":
            # `sum(x[i] for i in range(n))`: lowered to an accumulation loop (normalize/lower/calls.py)
            for grandchild in gast.iter_child_nodes(child):
                _visit(grandchild, parsed, reporter)
            continue
        _visit(child, parsed, reporter)
