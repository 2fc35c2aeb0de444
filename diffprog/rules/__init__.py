"""Derivative rules as data. Importing this package registers every built-in primitive."""
from . import numpy_rules, scalar, structural  # noqa: F401  (registration side effect)
from .registry import REGISTRY, Primitive, primitive

__all__ = ["REGISTRY", "Primitive", "primitive"]
