"""diffprog: a source-transforming differentiable-programming compiler for Python, compiled with numba."""
from .version import __version__  # noqa: F401

from .errors import CompilationError, DifferentiabilityError, DifferentiabilityWarning  # noqa: E402
from .rules.structural import no_derivative  # noqa: E402
from .frontend.markers import checkpoint  # noqa: E402
from .api import differentiable, grad, source, value_and_grad, vjp  # noqa: E402
from .api import hessian, hvp, jacfwd, jacobian, jacrev, jvp, jvp_function  # noqa: E402
from .custom_types.protocol import NoDerivative, add, differentiable_type, move, register_tangent, scale  # noqa: E402
from .custom_types.protocol import tangent_type, zero_tangent  # noqa: E402
from .rules.user import derivative  # noqa: E402
from .progress import set_progress  # noqa: E402
from .backend.jit import set_boundscheck  # noqa: E402

stop_gradient = no_derivative

__all__ = [
    "CompilationError",
    "NoDerivative",
    "add",
    "checkpoint",
    "derivative",
    "differentiable_type",
    "move",
    "register_tangent",
    "scale",
    "set_boundscheck",
    "set_progress",
    "tangent_type",
    "zero_tangent",
    "DifferentiabilityError",
    "DifferentiabilityWarning",
    "differentiable",
    "grad",
    "hessian",
    "hvp",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "jvp_function",
    "no_derivative",
    "source",
    "stop_gradient",
    "value_and_grad",
    "vjp",
]
