"""The back half of the pipeline: derivative code from checked core code (transforms), rewritten for speed
(optimizations), printed as a Python module (codegen) and compiled with numba (jit)."""
from __future__ import annotations

import numpy as np

from ..backend import cache, codegen
from ..backend.in_place import update_adjoints_in_place
from ..backend import jit as _numba
from ..ir import types as T
from ..transforms.batched import forward_batched
from ..transforms.forward import forward
from ..transforms.reverse import reverse
from ..version import __version__
from .front import CHECK
from .unit import Pass, Unit


# ---- transforms -----------------------------------------------------------------------------------------------
def _wrt_names(unit: Unit) -> list:
    return [unit.function.params[k] for k in unit.wrt]


def _reverse(unit: Unit) -> None:
    """Reverse mode: a forward sweep that records what the backward sweep reads, then the backward sweep."""
    unit.primal = unit.function
    unit.function = reverse(unit.function, unit.types, unit.activity, _wrt_names(unit), unit.names,
                            unit.compiler.checkpoint)


def _forward(unit: Unit) -> None:
    """Forward mode: each active assignment followed by its tangent."""
    unit.primal = unit.function
    unit.function = forward(unit.function, unit.types, unit.activity, _wrt_names(unit), unit.names)


def _forward_batched(unit: Unit) -> None:
    """Forward mode with a trailing lane axis on every tangent: several directions per pass."""
    unit.primal = unit.function
    unit.function = forward_batched(unit.function, unit.types, unit.activity, _wrt_names(unit), unit.names)


def _in_place(unit: Unit) -> None:
    """Updates array adjoints in place (reverse code that runs, never differentiated again)."""
    rank0 = {name for name, t in unit.types.items() if isinstance(t, T.Array) and t.ndim == 0}
    unit.function = update_adjoints_in_place(unit.function, unit.names, rank0)


# ---- back: Python source, then machine code ---------------------------------------------------------------------
def _codegen(unit: Unit) -> None:
    """Prints the core code as a Python module, each statement group headed by the user line it came from."""
    unit.source, unit.origins = codegen.module_source([unit.function], header(unit))


def _jit(unit: Unit) -> None:
    """Writes the module to the disk cache, imports it and compiles it with numba in nopython mode (with bounds
    checks if the function asks for them: an IndexError then names the user's line)."""
    jit = unit.compiler.jit
    boundscheck = jit and _numba.boundscheck_enabled(getattr(unit.compiler, "boundscheck", None))
    options = _numba.jit_options(boundscheck) if jit else {}
    module = cache.load_module(unit.source, _numba.settings_key(options) if jit else "")
    unit.run = getattr(module, unit.function.name)
    if jit:
        unit.run = _numba.compile_nopython(unit.run, unit.values + _example_extra(unit), unit.origins,
                                           module.__file__, options)
        if boundscheck:
            from ..progress import _label
            unit.run = _numba.checked(unit.run, unit.origins, module.__file__,
                                      _label(unit.compiler, unit.mode, unit.wrt))


def _example_extra(unit: Unit) -> tuple:
    """Values of the types of the arguments the generated code takes beyond the call's own, so that numba can
    compile it before its first call: one cotangent per result (reverse) or one tangent per differentiated
    parameter (forward; with a lane axis of one direction, batched)."""
    if unit.mode == "reverse":
        return tuple(np.zeros((1,) * t.ndim) if isinstance(t, T.Array) else 0.0 for t in unit.function.seed_types)
    values = [unit.values[k] for k in unit.wrt]
    if unit.mode == "forward":
        return tuple(np.zeros_like(v, dtype=np.float64) if isinstance(v, np.ndarray) else 0.0 for v in values)
    if unit.mode == "forward_batched":
        return tuple(np.zeros(np.shape(v) + (1,)) for v in values)
    return ()


def header(unit: Unit) -> str:
    parsed, primal = unit.compiler.parsed, unit.primal or unit.function
    params = ", ".join(f"{p}: {t}" for p, t in zip(primal.params, unit.signature.types))
    return (f"diffprog {__version__}: {unit.mode} code for {parsed.name} "
            f"({parsed.file}:{parsed.node.lineno + parsed.line_offset})\nspecialized for ({params})")


def render(unit: Unit) -> str:
    """The unit's code as Python source: the generated module once printed, else the core code so far."""
    if unit.source:
        return unit.source
    return codegen.module_source([unit.function], header(unit))[0]


TRANSFORMS = {
    "primal": (),
    "reverse": CHECK + (Pass("reverse", _reverse), Pass("in_place", _in_place)),
    "forward": CHECK + (Pass("forward", _forward),),
    "forward_batched": CHECK + (Pass("forward_batched", _forward_batched),),
}
BACK = (Pass("codegen", _codegen), Pass("jit", _jit))
