"""Type inference on core code, from the argument types of one call (specialization, as numba does)."""
from __future__ import annotations

from ..errors import Reporter
from ..ir import core as C
from ..ir import types as T
from .. import codes


def const_type(value):
    if isinstance(value, bool):
        return T.BOOL
    if isinstance(value, int):
        return T.INT
    if isinstance(value, float):
        return T.FLOAT
    return T.Opaque(type(value).__name__)


def infer_types(function: C.Function, param_types: dict, reporter: Reporter) -> dict:
    """The type of every variable: the join of the types of everything assigned to it."""
    env = dict(param_types)
    reported = set()
    changed = True
    while changed:
        changed = False
        for stmt, _ in C.walk(function.body):
            target, new = _assigned_type(stmt, env, reporter, reported)
            if target is None or new is None:
                continue
            try:
                joined = T.join(env.get(target), new)
            except TypeError:
                if id(stmt) not in reported:
                    reported.add(id(stmt))
                    if new == T.Opaque("element"):  # an array restored from a typed-list tape
                        reporter.error(codes.UNSUPPORTED,
                                       "a derivative of a derivative through a loop that assigns arrays is "
                                       "not supported yet: the first derivative keeps those arrays on list tapes, "
                                       "which are not differentiated", stmt.origin,
                                       "for now, take finite differences of dp.grad of the function (itself exact "
                                       "and compiled), or assign the loop's arrays outside it")
                    else:
                        reporter.error(codes.UNSUPPORTED,
                                       f"'{target}' holds a {env[target]} elsewhere but a {new} here",
                                       stmt.origin, "use a different variable for each kind of value")
                continue
            if joined != env.get(target):
                env[target] = joined
                changed = True
    return env


def _assigned_type(stmt, env, reporter, reported):
    if isinstance(stmt, C.ForRange):
        return stmt.var, T.INT
    if not isinstance(stmt, C.Assign):
        return None, None
    return stmt.target, expr_type(stmt.value, env, stmt, reporter, reported)


def atom_type(atom, env):
    if isinstance(atom, C.Slice):
        return T.Opaque("slice")
    return env.get(atom.name) if isinstance(atom, C.Var) else const_type(atom.value)


def expr_type(value, env, stmt=None, reporter=None, reported=None):
    if isinstance(value, (C.Var, C.Const)):
        return atom_type(value, env)
    arg_types = [atom_type(a, env) for a in value.args]
    if any(t is None for t in arg_types):
        return None  # an operand not typed yet: the fixpoint comes back to it
    try:
        return value.prim.result_type(arg_types)
    except (TypeError, KeyError) as error:
        if reporter is not None and id(stmt) not in reported:
            reported.add(id(stmt))
            opaque = [t for t in arg_types if isinstance(t, T.Opaque)]
            code = codes.NO_TANGENT if opaque else codes.UNSUPPORTED
            reason = f": {error}" if isinstance(error, TypeError) and str(error) else ""
            reporter.error(code, f"{value.prim.name} cannot be applied to {', '.join(map(str, arg_types))}{reason}",
                           stmt.origin, "use numbers (float, int) or numpy arrays here")
        return None
