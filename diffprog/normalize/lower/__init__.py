"""Lowering Python (gast) into the core language.

One pass does four things, because each needs the others' context:
- A-normal form: every operation becomes one assignment of a primitive call to a fresh, readable name.
- Inlining: calls to Python functions (module-level, closures, nested defs, decorated or not) are lowered in
  place with their variables renamed, so the caller's transforms see through them.
- Structuring: `break`, `continue`, early `return`, `elif`, `and`/`or` and conditional expressions become flags
  and plain `if`s; `for` loops that can exit early become `while` loops.
- Scalarization: tuples are split into one variable per element.
Problems are reported (not raised) so that one error lists all of them.

The pass is one `Lowerer` assembled from parts that share one emission context (context.py):
  values.py           the kinds of value lowering passes around (`Value`) and static facts about them
  context.py          the block emitted into, scopes, names, places for diagnostics
  statements.py       blocks, assignments, if/return, branches decided at compile time
  loops.py            for/while, early exits as flags, checkpointed blocks
  expressions.py      operators, comparisons, and/or, conditional expressions, indexing, attributes
  calls.py            call resolution: primitives and their keyword variants, inlining, opaque functions
  records.py          values of registered differentiable types: construction, fields, methods, protocol calls
  transform_calls.py  dp.grad(g)(x) and friends inside differentiated code, through a TransformHost (host.py)
  lowerer.py          the Lowerer and its entry point, lower_function
"""
from ...frontend.source import parsed_function  # moved to the frontend; compiler/function.py imports it from here
from .context import Scope
from .host import API_FUNCTIONS, NO_TRANSFORMS, CompilerHandle, TransformHost
from .lowerer import Lowerer, lower
from .values import Binding, Transform, Value, constant_value

__all__ = ["Lowerer", "lower", "Scope", "TransformHost", "CompilerHandle", "NO_TRANSFORMS", "API_FUNCTIONS",
           "Transform", "Value", "Binding", "constant_value", "parsed_function"]
