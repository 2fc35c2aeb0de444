"""What flows through the pass pipeline (pipeline.py): a `Unit` per specialization, and the `Pass`es over it."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..ir import core as C
from .signature import Signature


@dataclass
class Unit:
    """One specialization being compiled: what the passes read and write."""

    compiler: object  # the FunctionCompiler (or derived compiler) whose code this is
    mode: str  # "primal", "reverse", "forward" or "forward_batched"
    wrt: tuple  # the differentiated flat parameters
    signature: Signature
    values: tuple = ()  # the call's flat arguments, if any: numba compiles for their exact types (array layouts)
    function: C.Function | None = None  # the core code so far
    names: object = None  # the name allocator that made `function`'s names
    primal: C.Function | None = None  # the core code the transform started from
    types: dict = field(default_factory=dict)  # variable -> core type, once inferred
    activity: object = None
    source: str = ""  # the generated module's text, once printed
    origins: dict = field(default_factory=dict)  # generated line -> the user's source position
    run: object = None  # the compiled (or, with jit=False, plain Python) function

    def describe(self) -> str:
        return f"{self.mode} code for {self.compiler.parsed.name} ({self.signature})"


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Unit], None]

    @property
    def doc(self) -> str:
        return (self.run.__doc__ or "").strip().split("\n")[0]
