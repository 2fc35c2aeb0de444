"""diffprog: a source-transforming differentiable-programming compiler for Python, compiled with numba."""
__version__ = "0.1.0"

from .errors import CompilationError, DifferentiabilityError, DifferentiabilityWarning  # noqa: E402
from .rules.structural import no_derivative  # noqa: E402
from .api import differentiable, grad, source, value_and_grad, vjp  # noqa: E402
from .api import hessian, hvp, jacobian, jvp, jvp_function  # noqa: E402

stop_gradient = no_derivative

__all__ = [
    "CompilationError",
    "DifferentiabilityError",
    "DifferentiabilityWarning",
    "differentiable",
    "grad",
    "hessian",
    "hvp",
    "jacobian",
    "jvp",
    "jvp_function",
    "no_derivative",
    "source",
    "stop_gradient",
    "value_and_grad",
    "vjp",
]
