"""Registered types at the compiled boundary: values <-> flat tuples of fields.

Compiled code sees a registered-type argument as one parameter per field (depth first, nested types flattened),
and returns a registered-type result as one value per field. A `Node` describes that layout for one value; the
functions here flatten arguments and tangents into the compiled code's order, and rebuild results and tangents
(gradients) from it. Tangents only hold the derivative-carrying fields (`Node.tangent`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import protocol as P


@dataclass(frozen=True)
class Node:
    cls: type
    names: tuple  # field names, in order
    children: tuple  # per field: a Node (a nested registered value) or None (a number or an array)
    tangent: tuple  # per field: part of the tangent

    def leaves(self, prefix=()):
        """(path of field names, in tangent) for every leaf, depth first."""
        for name, child, tangent in zip(self.names, self.children, self.tangent):
            if child is None:
                yield prefix + (name,), tangent
            else:
                for path, inner in child.leaves(prefix + (name,)):
                    yield path, tangent and inner

    @property
    def size(self) -> int:
        return sum(1 for _ in self.leaves())


def layout_of(value):
    """The Node of a registered-type value (None for anything else), checking field values against their kinds."""
    entry = P.info(type(value))
    if entry is None:
        return None
    children = []
    for f in entry.fields:
        try:
            field_value = getattr(value, f.name)
        except AttributeError:
            raise TypeError(f"{type(value).__name__} value has no attribute '{f.name}' (a registered field)") \
                from None
        child = layout_of(field_value)
        if f.kind == "type" and child is None:
            raise TypeError(f"field '{f.name}' of {type(value).__name__} must hold a {f.cls.__name__}, "
                            f"not {type(field_value).__name__}")
        if child is None and not isinstance(field_value, (float, int, np.number, np.ndarray, bool, np.bool_)):
            raise TypeError(f"field '{f.name}' of {type(value).__name__} holds a {type(field_value).__name__}; "
                            "differentiable types hold numbers, numpy arrays and other differentiable types")
        children.append(child)
    return Node(type(value), entry.field_names, tuple(children), tuple(f.tangent for f in entry.fields))


def signature(value):
    """The part of a registered-type value's type that selects a compiled specialization: its classes and the
    kinds of its leaves (an array field's dtype and rank matter to numba)."""
    entry = P.info(type(value))
    parts = [type(value)]
    for f in entry.fields:
        v = getattr(value, f.name, None)
        if type(v) is np.ndarray:
            parts.append((v.dtype.char, v.ndim))
        elif P.is_registered(v):
            parts.append(signature(v))
        else:
            parts.append(float if f.tangent or f.kind == "float" else type(v))
    return tuple(parts)


def flatten(value, node, out: list):
    """Appends the leaves of `value` (laid out as `node`) to `out`: floats for derivative-carrying and float
    fields (so `Quaternion(1, 0, 0, 0)` is differentiable), everything else as it is."""
    entry = P.info(node.cls)
    for f, child in zip(entry.fields, node.children):
        v = getattr(value, f.name)
        if child is not None:
            flatten(v, child, out)
        elif isinstance(v, np.ndarray):
            out.append(v)
        elif f.kind == "float" or (f.tangent and not isinstance(v, (bool, np.bool_))):
            out.append(float(v))
        elif isinstance(v, np.number):
            out.append(v.item())
        else:
            out.append(v)


def flatten_args(args, nodes) -> tuple:
    flat = []
    for value, node in zip(args, nodes):
        if node is None:
            flat.append(value)
        else:
            flatten(value, node, flat)
    return tuple(flat)


def rebuild(node, leaves):
    """A value of node.cls from an iterator over its leaves (in flattening order)."""
    entry = P.info(node.cls)
    values = [next(leaves) if child is None else rebuild(child, leaves) for child in node.children]
    return entry.build(*values)


def tangent_from(node, leaves):
    """A value of node.cls's tangent type from an iterator giving, per leaf, its tangent (None: zero)."""
    entry = P.info(node.cls)
    values = []
    for f, child, in_tangent in zip(entry.fields, node.children, node.tangent):
        if child is None:
            leaf = next(leaves)
            if in_tangent:
                values.append(0.0 if leaf is None else leaf.item() if isinstance(leaf, np.generic) else leaf)
        else:
            inner = tangent_from(child, leaves)
            if in_tangent:
                values.append(inner)
    return entry.tangent_cls(*values)


def tangent_leaves(node, tangent, what="tangent") -> list:
    """Per leaf of `node`, the value `tangent` (a tangent-type value, or any value with the tangent's fields)
    gives it, or None for a leaf outside the tangent."""
    out = []
    for path, in_tangent in node.leaves():
        if not in_tangent:
            out.append(None)
            continue
        value = tangent
        for name in path:
            try:
                value = getattr(value, name)
            except AttributeError:
                raise TypeError(f"the {what} for a {node.cls.__name__} value needs the field "
                                f"'{'.'.join(path)}' ({type(tangent).__name__} has none); pass a "
                                f"{P.info(node.cls).tangent_cls.__name__}") from None
        out.append(value)
    return out


# ---- tangents as values of their own: layouts of tangent types, tangents as dense vectors ---------------------
def tangent_node(node):
    """The layout of `node`'s tangent type: only the derivative-carrying fields, nested types by their tangent
    types. Higher derivatives see a gradient (or a tangent argument) as a value with this layout."""
    entry = P.info(node.cls)
    names, children = [], []
    for name, child, in_tangent in zip(node.names, node.children, node.tangent):
        if in_tangent:
            names.append(name)
            children.append(None if child is None else tangent_node(child))
    return Node(entry.tangent_cls, tuple(names), tuple(children), (True,) * len(names))


def tangent_count(node) -> int:
    """How many flat positions `node`'s tangent has (one per derivative-carrying leaf; 1 for a number or array)."""
    return 1 if node is None else sum(1 for _, in_tangent in node.leaves() if in_tangent)


def tangent_parts(x):
    """The derivative-carrying leaves of `x` (a registered value, a float or an array), depth first in field
    declaration order: the order of a tangent as a dense vector (`tangent_vector`, jacobian, hessian)."""
    if not P.is_registered(x):
        return [x]
    node = layout_of(x)
    flat = flatten_args((x,), (node,))
    return [v for v, (_, in_tangent) in zip(flat, node.leaves()) if in_tangent]


def tangent_dim(x) -> int:
    """The length of a tangent at `x` as a dense vector: the sizes of its derivative-carrying leaves."""
    return int(sum(np.size(p) for p in tangent_parts(x)))


def tangent_vector(x, t) -> np.ndarray:
    """A tangent `t` at `x` (a value of x's tangent type, a float or an array) as a dense float64 vector: its
    fields in declaration order, nested types depth first, array fields raveled (C order)."""
    if not P.is_registered(x):
        return np.ravel(np.asarray(t, dtype=np.float64))
    node = layout_of(x)
    values = tangent_leaves(node, t)
    return np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v, (_, in_tangent)
                           in zip(values, node.leaves()) if in_tangent] or [np.zeros(0)])


def tangent_from_vector(x, vector):
    """The inverse of `tangent_vector`: a tangent at `x` (a value of x's tangent type, a float, or an array of
    x's shape) from a dense vector."""
    vector = np.asarray(vector, dtype=np.float64)
    if not P.is_registered(x):
        if isinstance(x, np.ndarray):
            return vector.reshape(x.shape).copy()
        return float(vector.reshape(-1)[0])
    node = layout_of(x)
    flat = flatten_args((x,), (node,))
    at, leaves = 0, []
    for primal, (_, in_tangent) in zip(flat, node.leaves()):
        if not in_tangent:
            leaves.append(None)
            continue
        size = int(np.size(primal))
        part = vector[at:at + size]
        at += size
        leaves.append(part.reshape(np.shape(primal)).copy() if isinstance(primal, np.ndarray) else float(part[0]))
    return tangent_from(node, iter(leaves))


def unit_tangents(x):
    """The unit tangents at `x`, one per entry of its dense tangent vector, in that vector's order."""
    n = tangent_dim(x)
    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        yield tangent_from_vector(x, e)
