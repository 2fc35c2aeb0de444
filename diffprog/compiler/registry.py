"""The compilers of the functions the API and differentiated code refer to, and how the compiler recognises the
API's objects without importing diffprog.api (which sits above it and imports this package).

The API's objects take part through a small protocol, looked up on the object (dunder methods on its type):

- `__diffprog_compiler__(self)`: the compiler of the function the object computes (a `@differentiable`
  function, a derivative the API made as a function of its own, a gradient map `dp.grad(g)`);
- `__diffprog_gradient__(self)`: on a gradient map only, `(kind, function, wrt, single)`: "grad" or
  "value_and_grad", the API object it differentiates, the differentiated positions, whether argnums was an int;
- `__diffprog_api__`: a str attribute on the public API functions (their name in
  normalize.lower.API_FUNCTIONS: "grad", "jvp", ...) and on the functions `dp.jacobian` makes ("jacobian").

A plain Python function has one compiler per process (`function_compiler`), shared by the API (`grad(f)`,
`dp.source(f)`) and by differentiated code that applies a transform to `f`.
"""
from __future__ import annotations

import threading
import weakref

from .function import FunctionCompiler

LOCK = threading.RLock()
"""The one process-wide lock every path that may build shared state takes (a cache miss: parsing, lowering,
compiling, the generated module written to the cache directory, numba's dispatcher). Reentrant, because
building calls back into building (a transform applied inside differentiated code compiles its function; grad
of grad builds the inner gradient). diffprog.api takes it too (api/functions.py explains why one lock)."""

_functions = weakref.WeakKeyDictionary()  # a plain Python function -> its FunctionCompiler
_static = weakref.WeakKeyDictionary()  # a function `diffprog check` knows from source only -> its FunctionCompiler


def function_compiler(fn) -> FunctionCompiler:
    """The compiler of the plain Python function `fn` (parsed and checked on first use, numba-compiled per
    specialization), the same one every time. TypeError when `fn` cannot be weakly referenced."""
    found = _functions.get(fn)
    if found is None:
        with LOCK:
            found = _functions.get(fn)
            if found is None:
                found = _functions[fn] = FunctionCompiler(fn)
    return found


def static_compiler(obj) -> FunctionCompiler:
    """The compiler of a function known from source only (`__diffprog_parsed__`: the checker's stand-in for a
    function it does not import), without numba."""
    found = _static.get(obj)
    if found is None:
        with LOCK:
            found = _static.get(obj)
            if found is None:
                found = _static[obj] = FunctionCompiler(obj, jit=False, parsed=obj.__diffprog_parsed__)
    return found


def is_api_object(obj) -> bool:
    """Whether `obj` is a function the API made or wraps (it has a compiler: `__diffprog_compiler__`)."""
    return callable(getattr(type(obj), "__diffprog_compiler__", None))


def compiler_of(obj):
    """The compiler of an API object (`__diffprog_compiler__`), or None for anything else."""
    method = getattr(type(obj), "__diffprog_compiler__", None)
    return method(obj) if callable(method) else None


def gradient_of(obj) -> tuple | None:
    """(kind, function, wrt, single) of a gradient map the API made (`__diffprog_gradient__`), else None."""
    method = getattr(type(obj), "__diffprog_gradient__", None)
    return method(obj) if callable(method) else None


def api_name(obj, names) -> str | None:
    """The name, among `names`, an API function or object carries (`__diffprog_api__`), else None."""
    try:
        name = getattr(obj, "__diffprog_api__", None)
    except Exception:  # an object whose attribute lookup fails is not the API's
        return None
    return name if isinstance(name, str) and name in names else None
