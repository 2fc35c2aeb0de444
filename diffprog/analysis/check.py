"""The differentiability checker: turns misuse of *active* values into diagnostics.

Runs after activity analysis, so inactive uses (printing, loop counters, branch conditions) never raise.
"""
from __future__ import annotations

from ..errors import Reporter
from ..ir import core as C
from .activity import Activity


def check_active_uses(function: C.Function, activity: Activity, reporter: Reporter) -> None:
    for stmt, _ in C.walk(function.body):
        if isinstance(stmt, C.Assign) and isinstance(stmt.value, C.Call) and stmt.target in activity.dependent:
            _check_call(stmt, activity, reporter)


def _check_call(stmt, activity, reporter):
    prim = stmt.value.prim
    varied_args = [a for a in stmt.value.args if isinstance(a, C.Var) and a.name in activity.varied]
    if not varied_args or prim.differentiable and not prim.cut and prim.no_rule is None:
        return
    if prim.no_rule is not None:
        code, message, fix = prim.no_rule
        reporter.error(code, message, stmt.origin, fix)
    elif prim.cut:
        reporter.warning("DP201", f"the derivative is cut here: {prim.name} has zero derivative, so nothing "
                         "flows back to its argument", stmt.origin,
                         "wrap the argument in diffprog.no_derivative(...) to state that this is intended")


def check_result_depends_on_inputs(function: C.Function, activity: Activity, wrt, reporter: Reporter) -> None:
    if wrt and not any(activity.is_active(r) for r in function.results):
        reporter.warning("DP202", f"the result of '{function.name}' does not depend on "
                         f"{', '.join(sorted(wrt))}: the derivative is always zero", function.origin,
                         "check which argument you differentiate with respect to (argnums)")
