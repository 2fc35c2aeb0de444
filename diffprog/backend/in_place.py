"""Adjoint buffers updated in place: the last rewrite of generated reverse code before it is printed and run.

The reverse transform emits code where an array, once assigned, never changes: an array adjoint restarts as
a new `np.zeros` each time the backward sweep passes its assignment, and a product term is a new array before
it is added into an adjoint. Later transforms need that form (a generated adjoint can be differentiated again,
and its forward sweep saves arrays by reference). Code that only runs does not, and in loops over small arrays
the allocations, and above all numba's reference counting of every array a statement creates, returns or
rebinds (an atomic operation each), take most of the backward sweep's time. So, for code that runs:

- a term added into an array adjoint is one in-place update with no array for the term and no rebinding:
  `t = a * g`, maybe `u = unbroadcast(t, like)`, then `x_adj += u` becomes `add_product(x_adj, a, g)`;
  `x_adj += unbroadcast(g, like)` becomes `add_product(x_adj, g, 1.0)`; `np.sum(a * g)` becomes
  `sum_product(a, g)`; `x_adj = add_outer(x_adj, a, b)` loses its assignment; the adjoint of a row read
  (`v_adj += a_adj[i]; a_adj[i] = v_adj`, v_adj restarting next) is `add_at(a_adj, v_adj, i)`, and the adjoint
  of a row write (`v_adj += a_adj[i]; a_adj[i] = 0.0`) is `move_at(v_adj, a_adj, i)`;
- an adjoint that only ever receives one term is not a buffer at all: its readers read the term where it is,
  through a view shaped like the adjoint (`spread_like`; for the adjoint of a sum along an axis, a broadcast
  with stride 0), and an outer product that is the only term of a row's adjoint is added straight into the
  matrix the row was read from (`add_outer_at`);
- an accumulator (an array assigned only zeros and in-place updates of itself, whose readers keep no reference
  to it) restarts by zeroing its own buffer when its shape is unchanged, instead of allocating a new one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from ..ir import core as C
from ..rules import REGISTRY

_P = REGISTRY.named
# What this pass asks of primitives (rules/registry.py: Traits), as predicates for _call.


def _buffer_zeros(prim) -> bool:  # an adjoint (re)starting at zeros: a buffer, with shape tests to zero it in place
    return prim.traits.reusable_zeros is not None


def _sums_to_shape(prim) -> bool:  # a term summed to an adjoint's shape
    return prim.traits.sums_to_shape


def _updates_first(prim) -> bool:  # updates its first argument in place (codegen prints accumulate as +=)
    return 0 in prim.traits.writes


def _adds_term(prim) -> bool:  # x_adj += term, x_adj -= term
    return prim.traits.accumulates != 0


def _may_alias(prim) -> bool:
    """Results that may share memory with an argument: an accumulator read by one of these stays safe only while
    the view is used up before the accumulator is zeroed again (see _view_used_up)."""
    return prim.traits.view_of is not None


def _accumulates(prim) -> bool:  # x_adj += term
    return prim.traits.accumulates == 1


def _takes_any_layout(prim) -> bool:  # see _forward_single_terms
    return prim.traits.takes_any_layout


def _product_term(prim) -> bool:
    """Terms added into an adjoint by one in-place update (add_product, add_matmul), or summed to its shape."""
    into = prim.traits.added_into
    return into is not None and _P(into).effect or prim.traits.sums_to_shape


def _named(*names):
    return lambda prim: prim.name in names


def update_adjoints_in_place(fn: C.Function, names, rank0=frozenset()) -> C.Function:
    """`rank0`: the variables holding 0-d arrays (np.array(x) of a number), whose adjoints restart as new zeros:
    numba's ndarray.fill takes no 0-d array."""
    body = C.clone(fn.body)
    buffers = {s.target for s, _ in C.walk(body) if _call(s, _buffer_zeros) is not None}
    _forward_single_terms(body, body, buffers, _read_counts(body, fn.results), names)
    _fuse_updates(body, buffers, _read_counts(body, fn.results))
    _row_updates(body, buffers, _read_counts(body, fn.results))
    _outer_rows(body, body, buffers, _read_counts(body, fn.results))
    accumulators = _accumulators(body, buffers, _read_counts(body, fn.results))
    accumulators -= {s.target for s, _ in C.walk(body) if _call(s, _buffer_zeros) is not None
                     and any(isinstance(a, C.Var) and a.name in rank0 for a in s.value.args)}
    written = {n for s, _ in C.walk(body) if _call(s, _buffer_zeros) is None for n in _written(s)}
    _zero_in_place(body, accumulators, written, set(), names, top=True)
    return replace(fn, body=body)


def _read_counts(body, results) -> Counter:
    counts = Counter(n for s, _ in C.walk(body) for n in C.reads(s))
    counts.update(C.atom_vars(results))
    return counts


def _call(stmt, names=None):
    """The call a statement makes (of a primitive `names` accepts, a predicate on primitives, if given), else
    None."""
    value = stmt.call if isinstance(stmt, C.Effect) else getattr(stmt, "value", None)
    if isinstance(value, C.Call) and (names is None or names(value.prim)):
        return value
    return None


def _updates(stmt, name) -> bool:
    """Whether `stmt` updates `name` in place: `name = update(name, ...)` or the effect `update(name, ...)`."""
    call = _call(stmt, _updates_first)
    return call is not None and call.args[:1] == (C.Var(name),) and (
        isinstance(stmt, C.Effect) or isinstance(stmt, C.Assign) and stmt.target == name)


def _update(name, prim, args, origin) -> C.Effect:
    return C.Effect(C.Call(_P(prim), (C.Var(name),) + tuple(args)), origin)


def _written(stmt) -> list:
    """Names `stmt` itself assigns or changes in place (an update's first argument, a store's array)."""
    if isinstance(stmt, C.Assign):
        return [stmt.target]
    if isinstance(stmt, C.Store):
        return [stmt.base]
    if isinstance(stmt, C.ForRange):
        return [stmt.var]
    call = _call(stmt, lambda prim: prim.traits.writes)
    if not isinstance(stmt, C.Effect) or call is None:
        return []
    return C.atom_vars([call.args[k] for k in call.prim.traits.writes])  # move_at also zeroes what it moved


def _touches(block, names) -> bool:
    """Whether a statement of `block`, nested ones included, reads or changes one of `names`."""
    return any(names & (set(C.reads(s)) | set(_written(s))) for s, _ in C.walk(block))


# ---- single terms forwarded ------------------------------------------------------------------------------------
def _forward_single_terms(block, body, buffers, reads, names):
    """An adjoint that only ever receives one term, `x_adj += g` between two restarts, is that term: its readers
    read g itself when g is an unbroadcast to x_adj's shape, or `x_adj_term = spread_like(g, x_adj)`, g as a
    view broadcast like x_adj, when g is the adjoint of a sum along an axis; x_adj keeps only its shape. That
    saves adding g into x_adj and zeroing x_adj again, and the array of g's copies along a summed axis. g must
    not change while it is read, and every reader must take it as it is (_takes_any_layout)."""
    writes = Counter(n for s, _ in C.walk(body) if _call(s, _buffer_zeros) is None for n in _written(s))
    position = 0
    while position < len(block):
        if _forward_at(block, position, body, buffers, reads, writes, names) == "removed":
            continue
        for child in C.children(block[position]):
            _forward_single_terms(child, body, buffers, reads, names)
        position += 1


def _forward_at(block, position, body, buffers, reads, writes, names):
    """Forwards the term block[position] adds, if it can: "removed" when the addition is gone (the term has
    the adjoint's shape already: an unbroadcast to it), "viewed" when it became the view."""
    stmt = block[position]
    call = _call(stmt, _accumulates)
    if call is None or not isinstance(stmt, C.Assign) or stmt.target not in buffers or writes[stmt.target] != 1:
        return None
    adjoint, term = stmt.target, call.args[1]
    end = _next_restart(block, position, adjoint)
    if not isinstance(term, C.Var) or term.name == adjoint or end is None:
        return None
    window = block[position + 1:end]
    readers = [s for later in window for s, _ in C.walk([later]) if adjoint in C.reads(s)]
    if (sum(C.reads(s).count(adjoint) for s in readers) != reads[adjoint] - 1
            or not all(_takes_term(s, adjoint) for s in readers)):
        return None
    direct = _unbroadcast_to_the_shape_of(term.name, block[end], body)
    if not direct and not _expansion(term.name, body):
        return None
    last = position + 1 + max(k for k, later in enumerate(window) if _touches([later], {adjoint}))
    if not _restarts_moved_below(block, position + 1, last, end, _viewed(term.name, body)):
        return None
    if direct:
        del block[position]
        for k in range(position, end - 1):
            block[k] = C.rename_reads(block[k], {adjoint: term.name})
        return "removed"
    forwarded = names.temp(f"{adjoint}_term")
    block[position] = C.Assign(forwarded, C.Call(_P("spread_like"), (term, C.Var(adjoint))), stmt.origin)
    for k in range(position + 1, end):
        block[k] = C.rename_reads(block[k], {adjoint: forwarded})
    return "viewed"


def _expansion(term, body) -> bool:
    """Whether `term` is assigned once, by np.expand_dims (the adjoint of a sum along an axis): a view of it
    broadcast along that axis saves making the copies, while for a term as large as the adjoint the view costs
    about what adding it would (small arrays: reference counting)."""
    return _call(_definition(term, body), _named("np.expand_dims")) is not None


def _unbroadcast_to_the_shape_of(term, restart, body) -> bool:
    """Whether `term` is assigned once, by an unbroadcast to the shape that `restart` gives its adjoint (the
    same extents, or the same array's shape): it is shaped like the adjoint then, and contiguous."""
    call = _call(_definition(term, body), _sums_to_shape)
    return call is not None and call.args[1:] == restart.value.args and (  # both from an array's shape, or extents
        bool(call.prim.traits.shape_only) == bool(restart.value.prim.traits.shape_only))


def _definition(name, body):
    """The one statement assigning `name`, or None when there are several or none."""
    definitions = [s for s, _ in C.walk(body) if isinstance(s, C.Assign) and s.target == name]
    return definitions[0] if len(definitions) == 1 else None


def _restarts_moved_below(block, start, last, end, names) -> bool:
    """Whether nothing in block[start:last + 1] changes `names`, once the restarts of names there (the
    backward sweep restarts a term's adjoint right after passing it on) are moved down, before block[end] or
    as far as nothing they pass uses them, but at least below block[last]."""
    if any(_touches_written([s], names) and not _restarts(s, names) for s in block[start:last + 1]):
        return False
    statements, reader = block[start:end], block[last]
    for restart in [s for s in block[start:last + 1] if _restarts(s, names)]:
        k = _position(statements, restart)
        used = {restart.target, *C.reads(restart)}
        below = next((j for j in range(k + 1, len(statements)) if _touches([statements[j]], used)), len(statements))
        if below <= _position(statements, reader):
            return False
        statements.insert(below - 1, statements.pop(k))
    block[start:end] = statements
    return True


def _restarts(stmt, names) -> bool:
    return _call(stmt, _buffer_zeros) is not None and stmt.target in names


def _position(statements, stmt) -> int:
    return next(k for k, s in enumerate(statements) if s is stmt)


def _next_restart(block, position, name):
    """The position of the next restart of `name` after block[position] in the same block (None if none)."""
    for end in range(position + 1, len(block)):
        if _call(block[end], _buffer_zeros) is not None and block[end].target == name:
            return end
    return None


def _takes_term(stmt, name) -> bool:
    call = _call(stmt)
    if isinstance(stmt, C.Store):
        return name not in C.atom_vars(stmt.index) and stmt.base != name
    return call is not None and _takes_any_layout(call.prim) and not isinstance(stmt, (C.If, C.ForRange))


def _touches_written(block, names) -> bool:
    return any(names & set(_written(s)) for s, _ in C.walk(block))


def _viewed(name, body) -> set:
    """`name` and the arrays it is a view of: assigned once, by a view of a variable."""
    found = {name}
    while True:
        call = _call(_definition(name, body), _may_alias)
        if call is None or not call.args or not isinstance(call.args[call.prim.traits.view_of], C.Var):
            return found
        name = call.args[call.prim.traits.view_of].name
        found.add(name)


# ---- terms added into adjoints ---------------------------------------------------------------------------------
def _fuse_updates(block, buffers, reads):
    """In each block, replaces a term and the statements right after it that consume it: each must add the
    term (or its unbroadcast, read once) into an array adjoint, or sum it, and together they must be all of
    the term's readers. `x = add_outer(x, ...)` of an adjoint becomes the update alone."""
    for stmt in block:
        for child in C.children(stmt):
            _fuse_updates(child, buffers, reads)
    position = 0
    while position < len(block):
        stmt = block[position]
        if _call(stmt, _named("add_outer")) is not None and isinstance(stmt, C.Assign) and stmt.target in buffers:
            block[position] = _update(stmt.target, "add_outer", stmt.value.args[1:], stmt.origin)
        fused = _consumers(block, position, buffers, reads) if _call(stmt, _product_term) else None
        if fused is None:
            position += 1
            continue
        end, replacements = fused
        block[position:end] = replacements
        position += len(replacements)


def _consumers(block, position, buffers, reads):
    """(end, statements replacing block[position:end]) when the statements right after the term assigned at
    `position` consume all its reads as _fuse_updates describes; None otherwise."""
    term_stmt = block[position]
    term = term_stmt.target
    kind = term_stmt.value.prim
    update = kind.traits.added_into  # add_product (an elementwise product) or add_matmul
    if update is not None:
        factors = term_stmt.value.args
    else:  # an unbroadcast (to the shape of the adjoint it is added into): added as a product with 1
        factors, update = (term_stmt.value.args[0], C.Const(1.0)), "add_product"
    elementwise = kind.elementwise  # a product of elements (not of matrices), or the unbroadcast of one
    pending = {term: reads[term]}  # terms still to be consumed -> reads left
    out = []
    end = position + 1
    while any(pending.values()):
        if end == len(block):
            return None
        stmt, call = block[end], _call(block[end])
        operand = call.args[-1] if call is not None and call.args else None
        if call is None or not isinstance(stmt, C.Assign):
            return None
        if _buffer_zeros(call.prim) and stmt.target not in {*C.atom_vars(factors), *pending}:
            out.append(stmt)  # another adjoint's restart, moved here by _forward_single_terms
        elif call.prim.name == "np.sum" and call.args == (C.Var(term),) and elementwise:
            out.append(C.Assign(stmt.target, C.Call(_P("sum_product"), factors), stmt.origin))
            pending[term] -= 1
        elif _sums_to_shape(call.prim) and call.args[0] == C.Var(term) and elementwise:
            pending[term] -= 1
            pending[stmt.target] = reads[stmt.target]
        elif (_adds_term(call.prim) and isinstance(operand, C.Var) and pending.get(operand.name)
              and _updates(stmt, stmt.target) and stmt.target in buffers
              and stmt.target not in C.atom_vars(factors)):
            a, b = factors
            if call.prim.traits.accumulates < 0:
                if not _sums_to_shape(kind):  # b is 1.0
                    return None
                b = C.Const(-1.0)
            out.append(_update(stmt.target, update, (a, b), stmt.origin))
            pending[operand.name] -= 1
        else:
            return None
        end += 1
    return end, out


def _row_updates(block, buffers, reads):
    """The adjoints of a read and of a write of a row, `r = a_adj[i]; v_adj += r` then `a_adj[i] = v_adj` (read:
    reverse.py's _index_adjoint) or `a_adj[i] = 0.0` (write: _adjoint_of_store), become one update with no view
    of the row: `add_at(a_adj, v_adj, i)` (a_adj[i] += v_adj: only a_adj's row must change, so v_adj must restart
    before anything reads it) and `move_at(v_adj, a_adj, i)` (v_adj += a_adj[i]; a_adj[i] = 0)."""
    for stmt in block:
        for child in C.children(stmt):
            _row_updates(child, buffers, reads)
    position = 0
    while position + 2 < len(block):
        read, add, store = block[position:position + 3]
        call = _call(read, _named("getitem"))
        if (call is not None and isinstance(read, C.Assign) and reads[read.target] == 1 and _plain_index(call)
                and isinstance(add, C.Assign) and add.target in buffers
                and _call(add, _accumulates) is not None and add.value.args == (C.Var(add.target), C.Var(read.target))
                and isinstance(store, C.Store) and (C.Var(store.base),) + tuple(store.index) == call.args):
            array, index, adjoint = call.args[0], call.args[1:], C.Var(add.target)
            if store.value == adjoint and _restarts_unread(block[position + 3:], add.target):
                block[position:position + 3] = [C.Effect(C.Call(_P(f"add_at{len(index)}"), (array, adjoint) + index),
                                                          add.origin)]
            elif store.value == C.Const(0.0):
                block[position:position + 3] = [C.Effect(C.Call(_P(f"move_at{len(index)}"), (adjoint, array) + index),
                                                          add.origin)]
        position += 1


def _outer_rows(block, body, buffers, reads):
    """An outer product that is the only term of an adjoint, `add_outer(g_adj, a, b)`, later added into a plane,
    `add_at(m_adj, g_adj, i)` (the adjoint of the read g = m[i]), is added into the plane directly:
    `add_outer_at(m_adj, a, b, i)`; g_adj then stays zero. Saves a pass writing g_adj, one reading it and one
    zeroing it (a matrix each, per iteration)."""
    writes = Counter(n for s, _ in C.walk(body) if _call(s, _buffer_zeros) is None for n in _written(s))
    position = 0
    while position < len(block):
        for child in C.children(block[position]):
            _outer_rows(child, body, buffers, reads)
        outer = _call(block[position], _named("add_outer"))
        if isinstance(block[position], C.Effect) and outer is not None and _outer_into_plane(
                block, position, outer, body, buffers, reads, writes) == "moved down":
            continue
        position += 1


def _outer_into_plane(block, position, outer, body, buffers, reads, writes):
    """Replaces add_outer at `position` and the add_at that reads its target by one update (see _outer_rows),
    where the operands allow: "moved up" to the outer product, or "moved down" to the add_at (None: neither)."""
    adjoint, a, b = outer.args
    if not (isinstance(adjoint, C.Var) and adjoint.name in buffers and writes[adjoint.name] == 1
            and reads[adjoint.name] == 2):
        return None
    found = next((q for q in range(position + 1, len(block)) if _touches([block[q]], {adjoint.name})), None)
    add_at = _call(block[found], _named("add_at1")) if found is not None else None
    if (add_at is None or add_at.args[1] != adjoint or _next_restart(block, found, adjoint.name) is None
            or not isinstance(block[found], C.Effect)):
        return None
    plane, index = add_at.args[0], add_at.args[2]
    between = block[position + 1:found]
    update = C.Effect(C.Call(_P("add_outer_at1"), (plane, a, b, index)), block[found].origin)
    if not _touches(between, set(C.atom_vars([plane, index]))):
        del block[found]
        block[position] = update
        return "moved up"
    if not _touches_written(between, set().union(*(_viewed(n, body) for n in C.atom_vars([a, b])))):
        block[found] = update
        del block[position]
        return "moved down"
    return None


def _plain_index(getitem) -> bool:
    """One or two index atoms (numbers or variables, no slices): a row, or a row of a plane."""
    return 1 <= len(getitem.args) - 1 <= 2 and all(isinstance(i, (C.Var, C.Const)) for i in getitem.args[1:])


def _restarts_unread(statements, name) -> bool:
    """Whether `name` is assigned zeros before anything in `statements` reads it."""
    for stmt in statements:
        if any(name in C.reads(s) for s, _ in C.walk([stmt])):
            return False
        if _call(stmt, _buffer_zeros) is not None and stmt.target == name:
            return True
    return False


# ---- accumulators zeroed in place ------------------------------------------------------------------------------
def _accumulators(body, buffers, reads) -> set:
    """The buffers no reader keeps a reference to: assigned only zeros and in-place updates of themselves, and
    read only for their elements (or through a view used up before the buffer is zeroed again)."""
    ok = set(buffers)
    for block, position, stmt in _statements(body):
        if isinstance(stmt, C.Assign) and _call(stmt, _buffer_zeros) is None and not _updates(stmt, stmt.target):
            ok.discard(stmt.target)
        for name in set(C.reads(stmt)) & ok:
            if not _reads_elements_only(stmt, name) and not _view_used_up(block, position, name, reads):
                ok.discard(name)
    return ok


def _statements(block):
    """Yields (block, position, statement) for every statement, nested ones included."""
    for position, stmt in enumerate(block):
        yield block, position, stmt
        for child in C.children(stmt):
            yield from _statements(child)


def _reads_elements_only(stmt, name) -> bool:
    """Whether `stmt` reads `name` without keeping a reference to its buffer."""
    if isinstance(stmt, (C.Store, C.If, C.ForRange, C.While)):
        return True  # a store copies the value in; a condition or a bound is a number
    call = _call(stmt)
    if call is None:
        return False
    if all(k in call.prim.traits.shape_only for k, a in enumerate(call.args) if a == C.Var(name)):
        return True  # reads its shape only (spread_like's second argument)
    return call.prim.traits.fresh or _updates_first(call.prim)


def _view_used_up(block, position, name, reads, viewed=()) -> bool:
    """For `v = view(name, ...)`: every read of v is in the statements right after it in the same block, reads
    v's elements only (or takes a view of v that is itself used up), and comes before anything rebinds `name`,
    v or what `name` views (zeroing `name` in place would change what v shows)."""
    call = _call(block[position], _may_alias)
    if call is None or call.args[:1] != (C.Var(name),) or not isinstance(block[position], C.Assign):
        return False
    view = block[position].target
    viewed = (*viewed, name, view)
    found = 0
    for offset, later in enumerate(block[position + 1:], position + 1):
        if view in C.reads(later):
            if not (_reads_elements_only(later, view) or _view_used_up(block, offset, view, reads, viewed)):
                return False
            found += 1
        elif any(view in C.reads(s) for s, _ in C.walk([later])):
            return False
        if any(_rebinds(later, v) for v in viewed):
            break
    return found == reads[view]


def _rebinds(stmt, name) -> bool:
    return any(isinstance(s, C.Assign) and s.target == name and not _updates(s, name) for s, _ in C.walk([stmt]))


def _zero_in_place(block, accumulators, written, seen, names, top=False):
    """Each zeros assignment of an accumulator after its first, which the function's body runs unconditionally
    (the reverse transform starts every adjoint there), zeroes the buffer instead when the shape is unchanged;
    a buffer nothing writes into (its single term forwarded) is only reallocated when the shape changes."""
    position = 0
    while position < len(block):
        stmt = block[position]
        call = _call(stmt, _buffer_zeros)
        if call is not None and stmt.target in accumulators and stmt.target in seen:
            replacement = _zeroed(stmt, call, stmt.target in written, names)
            block[position:position + 1] = replacement
            position += len(replacement)
            continue
        if call is not None and top:
            seen.add(stmt.target)
        for child in C.children(stmt):
            _zero_in_place(child, accumulators, written, seen, names)
        position += 1


def _zeroed(stmt, zeros, written, names) -> list:
    """`if x.shape == shape: x.fill(0.0) else: x = np.zeros(shape)`, the shape as `zeros` gives it; for a
    buffer never written, `if x.shape != shape: x = np.zeros(shape)`."""
    has_shape, lacks_shape = zeros.prim.traits.reusable_zeros
    if not written:
        reshaped = names.temp("reshaped")
        return [C.Assign(reshaped, C.Call(_P(lacks_shape), (C.Var(stmt.target),) + zeros.args),
                         stmt.origin),
                C.If(C.Var(reshaped), [stmt], [], stmt.origin)]
    same = names.temp("same_shape")
    return [C.Assign(same, C.Call(_P(has_shape), (C.Var(stmt.target),) + zeros.args), stmt.origin),
            C.If(C.Var(same), [_update(stmt.target, "fill_zeros", (), stmt.origin)], [stmt], stmt.origin)]
