"""The core language every stage after `normalize` works on.

It is a small, explicit subset of Python: each operation is its own assignment of one primitive call to one
name (A-normal form); control flow is `if`, counted `for` over a range and `while` on a condition variable,
with no `break`, `continue` or early `return` (normalize turns those into flags). Transforms consume and produce
this language, so derivatives of derivatives need nothing special, and `backend.codegen` prints it as Python.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Union

from ..errors import Origin


@dataclass(frozen=True)
class Var:
    name: str

    def __str__(self):
        return self.name


@dataclass(frozen=True)
class Const:
    value: object  # int, float, bool, str (print only), None

    def __str__(self):
        return repr(self.value)


@dataclass(frozen=True)
class Slice:
    """`lower:upper:step` inside an index; each part an atom or None."""

    lower: object = None
    upper: object = None
    step: object = None

    @property
    def parts(self):
        return [p for p in (self.lower, self.upper, self.step) if p is not None]


Atom = Union[Var, Const]


@dataclass(frozen=True)
class Call:
    """One primitive applied to atoms; the primitive says how to print, type and differentiate it."""

    prim: object  # rules.registry.Primitive
    args: tuple

    def vars(self):
        return [a for a in self.args if isinstance(a, Var)]


Expr = Union[Var, Const, Call]


@dataclass
class Assign:
    target: str
    value: Expr
    origin: Origin | None = None


@dataclass
class Store:
    """`base[index] = value`: writes into a local array (tapes, and user buffers)."""

    base: str
    index: tuple
    value: Atom
    origin: Origin | None = None


@dataclass
class Effect:
    """A call kept only for its side effect, such as `print`."""

    call: Call
    origin: Origin | None = None


@dataclass
class If:
    cond: Atom
    body: list
    orelse: list
    origin: Origin | None = None


@dataclass
class ForRange:
    var: str
    start: Atom
    stop: Atom
    step: Atom
    body: list
    origin: Origin | None = None
    checkpoint: int | None = None  # under `diffprog.checkpoint`: snapshots to keep (0: as few as sqrt(steps))


@dataclass
class While:
    """`while cond:`; the body recomputes `cond` at its end."""

    cond: str
    body: list
    origin: Origin | None = None


@dataclass
class Function:
    name: str
    params: list  # names
    body: list
    results: tuple  # atoms returned; a single result when `returns_tuple` is False
    returns_tuple: bool = False
    origin: Origin | None = None
    param_origins: dict = field(default_factory=dict)
    seed_types: tuple = ()  # generated adjoints: the type of the cotangent each `seed` parameter takes


Stmt = Union[Assign, Store, Effect, If, ForRange, While]


def atom_vars(atoms) -> list:
    names = []
    for a in atoms:
        if isinstance(a, Var):
            names.append(a.name)
        elif isinstance(a, Slice):
            names.extend(atom_vars(a.parts))
    return names


def reads(stmt) -> list:
    """Names a statement reads directly (not inside nested blocks)."""
    if isinstance(stmt, Assign):
        value = stmt.value
        if isinstance(value, Var):
            return [value.name]
        if isinstance(value, Call):
            return atom_vars(value.args)
        return []
    if isinstance(stmt, Store):
        return [stmt.base] + atom_vars(stmt.index) + atom_vars([stmt.value])
    if isinstance(stmt, Effect):
        return atom_vars(stmt.call.args)
    if isinstance(stmt, If):
        return atom_vars([stmt.cond])
    if isinstance(stmt, ForRange):
        return atom_vars([stmt.start, stmt.stop, stmt.step])
    if isinstance(stmt, While):
        return [stmt.cond]
    raise TypeError(stmt)


def rename_atom(atom, mapping):
    """atom with the variables in `mapping` renamed."""
    if isinstance(atom, Var):
        return Var(mapping.get(atom.name, atom.name))
    if isinstance(atom, Slice):
        return Slice(*(None if p is None else rename_atom(p, mapping) for p in (atom.lower, atom.upper, atom.step)))
    return atom


def rename_call(call, mapping):
    return Call(call.prim, tuple(rename_atom(a, mapping) for a in call.args))


def rename_reads(stmt, mapping):
    """stmt with the names it reads, in nested blocks too, renamed by `mapping`; what it assigns is kept."""
    if isinstance(stmt, Assign):
        value = rename_call(stmt.value, mapping) if isinstance(stmt.value, Call) else rename_atom(stmt.value, mapping)
        return replace(stmt, value=value)
    if isinstance(stmt, Store):
        return replace(stmt, index=tuple(rename_atom(i, mapping) for i in stmt.index),
                       value=rename_atom(stmt.value, mapping))
    if isinstance(stmt, Effect):
        return replace(stmt, call=rename_call(stmt.call, mapping))
    blocks = {name: [rename_reads(s, mapping) for s in getattr(stmt, name)] for name in ("body", "orelse")
              if hasattr(stmt, name)}
    if isinstance(stmt, If):
        return replace(stmt, cond=rename_atom(stmt.cond, mapping), **blocks)
    if isinstance(stmt, ForRange):
        return replace(stmt, start=rename_atom(stmt.start, mapping), stop=rename_atom(stmt.stop, mapping),
                       step=rename_atom(stmt.step, mapping), **blocks)
    return replace(stmt, cond=mapping.get(stmt.cond, stmt.cond), **blocks)


def children(stmt) -> list:
    """The nested blocks of a compound statement."""
    if isinstance(stmt, If):
        return [stmt.body, stmt.orelse]
    if isinstance(stmt, (ForRange, While)):
        return [stmt.body]
    return []


def walk(block, depth=0):
    """Yields (statement, loop depth) for every statement of a block, nested ones included."""
    for stmt in block:
        yield stmt, depth
        inner = depth + 1 if isinstance(stmt, (ForRange, While)) else depth
        for child in children(stmt):
            yield from walk(child, inner)


def assigned(block) -> set:
    """Every name a block may write (assignments, loop variables, stored-to arrays)."""
    names = set()
    for stmt, _ in walk(block):
        if isinstance(stmt, Assign):
            names.add(stmt.target)
        elif isinstance(stmt, ForRange):
            names.add(stmt.var)
        elif isinstance(stmt, Store):
            names.add(stmt.base)
    return names


def clone(block) -> list:
    """A copy of a block made of new statement objects: transforms key their bookkeeping by statement, so a
    block that appears twice in generated code must not share them."""
    return [replace(stmt, **{name: clone(getattr(stmt, name)) for name in ("body", "orelse") if hasattr(stmt, name)})
            for stmt in block]


def exposed(block, defined) -> tuple:
    """(names the block may read before assigning them, names it surely assigns), given those `defined`."""
    defined = set(defined)
    found = set()
    for stmt in block:
        found.update(n for n in reads(stmt) if n not in defined)
        if isinstance(stmt, If):
            (in_body, body_defines), (in_orelse, orelse_defines) = (exposed(stmt.body, defined),
                                                                    exposed(stmt.orelse, defined))
            found |= in_body | in_orelse
            defined |= body_defines & orelse_defines
        elif isinstance(stmt, (ForRange, While)):  # may run zero times: defines nothing for sure
            inner = defined | {stmt.var} if isinstance(stmt, ForRange) else defined
            found |= exposed(stmt.body, inner)[0]
        elif isinstance(stmt, Assign):
            defined.add(stmt.target)
    return found, defined
