"""Derivative rules as data. Importing this package registers every built-in primitive."""
from . import numpy_rules, scalar, structural  # noqa: F401  (registration side effect)
from . import lane_rules  # noqa: F401,I001  (batched rules of the primitives above)
from .registry import REGISTRY, Primitive, primitive

__all__ = ["REGISTRY", "Primitive", "primitive"]
