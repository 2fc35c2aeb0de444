"""The user-facing functions: decorate, differentiate, inspect. One module per kind of derivative: functions.py
(`differentiable`), gradients.py (`grad`, `value_and_grad`, `vjp`), tangents.py (`jvp`, `jvp_function`),
jacobians.py (`jacobian`, `hessian`, `hvp`), source.py (`source`)."""
from ..normalize.lower import API_FUNCTIONS
from .functions import DifferentiableFunction, differentiable
from .gradients import GradientFunction, as_differentiable, grad, value_and_grad, vjp
from .jacobians import JacobianFallbackWarning, JacobianFunction, hessian, hvp, jacfwd, jacobian, jacrev
from .source import source
from .tangents import jvp, jvp_function

__all__ = ["DifferentiableFunction", "GradientFunction", "JacobianFallbackWarning", "JacobianFunction",
           "as_differentiable", "differentiable", "grad", "hessian", "hvp", "jacfwd", "jacobian", "jacrev", "jvp", "jvp_function",
           "source", "value_and_grad", "vjp"]

# The compiler recognises the public functions by this mark (compiler/registry.py), not by importing this package:
# a transform called in differentiated code (`dp.grad(g)(x)`), and those it reports as callable outside only.
for _name in API_FUNCTIONS:
    globals()[_name].__diffprog_api__ = _name
del _name
jacfwd.__diffprog_api__ = jacrev.__diffprog_api__ = "jacobian"  # jacobian by other names
