"""The argument types a specialization is compiled for.

numba specializes a function on the types of its arguments, and so does diffprog: the generated code depends on
which parameters are numbers, ints or arrays (and of which rank and dtype), and on the layout of every
registered-type argument (the fields it is split into). A `Signature` records exactly that, once, when a call
first needs code; every later stage and cache takes the signature, never the call's values.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..ir import types as T
from ..custom_types import layout as L


@dataclass(frozen=True)
class Signature:
    layouts: tuple | None  # per user parameter: the layout (types.layout.Node) of a registered-type argument,
    #                        else None; None when no argument has a registered type
    types: tuple  # per flat parameter (registered-type arguments split into their fields): its core type
    problems: tuple = field(default=(), compare=False)  # arguments compiled code cannot hold (DP105), reported
    #                                                     together with what lowering finds

    @classmethod
    def of(cls, args, layouts, problems=()) -> "Signature":
        flat = L.flatten_args(args, layouts) if layouts is not None else args
        return cls(layouts, tuple(T.type_of_value(value) for value in flat), tuple(problems))

    def __len__(self) -> int:
        """The number of user parameters."""
        return len(self.layouts) if self.layouts is not None else len(self.types)

    def take(self, n: int) -> "Signature":
        """The signature of the first n user parameters."""
        if self.layouts is None:
            return Signature(None, self.types[:n])
        layouts = self.layouts[:n]
        flat = sum(1 if node is None else node.size for node in layouts)
        return Signature(layouts if any(node is not None for node in layouts) else None, self.types[:flat])

    def spans(self) -> list:
        """Per user parameter: (its first flat position, how many flat positions it takes)."""
        spans, at = [], 0
        for node in self.layouts if self.layouts is not None else (None,) * len(self.types):
            size = 1 if node is None else node.size
            spans.append((at, size))
            at += size
        return spans

    def carries_derivative(self, k: int) -> bool:
        """User parameter k is a float, a float array, or a registered-type value with derivative-carrying
        fields."""
        node = self.layouts[k] if self.layouts is not None else None
        if node is not None:
            return any(in_tangent for _, in_tangent in node.leaves())
        return self.types[self.spans()[k][0]].differentiable

    def __str__(self) -> str:
        return ", ".join(map(str, self.types))
