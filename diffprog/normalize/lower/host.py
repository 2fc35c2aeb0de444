"""What lowering needs from whoever compiles the lowered code, to lower transforms called in it (`dp.grad(g)(x)`).

The API's objects (`diffprog.grad`, a gradient map made at module level) and the compilers that derive `g` live
above normalize (diffprog.api, diffprog.compiler), and they use normalize: so normalize may not import them. The
Lowerer is given a TransformHost instead (diffprog/compiler/nested.py implements it), with the few operations
lowering needs. Compilers are opaque to lowering (CompilerHandle): it only asks what they return. The compiler,
in turn, does not import the API either: the API's objects carry a small protocol it reads (compiler/registry.py:
`__diffprog_compiler__`, `__diffprog_gradient__`, and `__diffprog_api__`, a name of API_FUNCTIONS, on the public
functions).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ...frontend.source import ParsedFunction
    from ..nested import Derived, NestedCall
    from .values import Transform

# The diffprog API functions lowering recognises, in the order it looks for them: the transforms it lowers, then
# those it reports as callable outside differentiated code only.
API_FUNCTIONS = ("grad", "value_and_grad", "jvp_function", "jvp", "hvp",
                 "vjp", "jacobian", "hessian", "source", "differentiable")


class CompilerHandle(Protocol):
    """A compiler of a function (or of a derivative of one), as lowering sees it."""

    def arity(self, layouts=None) -> tuple:
        """(per returned value its layout or None, whether the function returns a tuple), for arguments laid out
        as `layouts`. Raises DifferentiabilityError when the function cannot be lowered."""


class TransformHost(Protocol):
    """The operations lowering needs to lower a transform called in differentiated code: recognising the API's
    objects, and making (or asking for) the compilers that derive the function a transform is applied to."""

    def api_function(self, obj) -> str | None:
        """The name in API_FUNCTIONS of the diffprog function `obj` is (the first, in that order); "jacobian" for
        a function diffprog.jacobian made; None for anything else."""

    def as_transform(self, obj) -> Transform | None:
        """A derivative the API made at module level (`dp.grad(g)`, `dp.jvp_function(g)`, a gradient's
        `as_function()`), as the Transform lowering applies when it is called; None for anything else."""

    def accepts(self, obj) -> bool:
        """Whether `obj`, which is not a Transform, a nested def or a function known from source only, is a
        function a transform may be applied to: one the API made or wraps, or a user's plain Python function."""

    def param_count(self, obj) -> int | None:
        """How many arguments the function object `obj` takes, when known before argument types are."""

    def source_of(self, obj) -> ParsedFunction | None:
        """The parsed source of `obj` when its arguments can be passed by keyword (a plain or @differentiable
        function, or one known from source only); None otherwise, or when it has no source."""

    def compiler_for(self, obj) -> CompilerHandle | None:
        """The compiler of a function object a transform is applied to. Raises DifferentiabilityError when
        it cannot be compiled."""

    def standalone_compiler(self, parsed: ParsedFunction) -> CompilerHandle:
        """A compiler of a function given only as parsed source (a nested def made standalone). Raises
        DifferentiabilityError."""

    def gradient_compiler(self, compiler: CompilerHandle, wrt: tuple, outputs: tuple) -> CompilerHandle:
        """The reverse-mode derivative of `compiler`'s function with respect to arguments `wrt`, giving the
        results `outputs` (0: the value; k: the gradient of the k-th argument in `wrt`, from 1)."""

    def tangent_compiler(self, compiler: CompilerHandle) -> CompilerHandle:
        """The forward-mode tangent map of `compiler`'s function."""

    def derive_nested(self, call: NestedCall, arg_types: tuple) -> Derived:
        """The derived core code for one transform call site at these argument types (normalize/nested.py).
        Raises DifferentiabilityError when it cannot be derived (yet: types may still be settling)."""


class _NoTransforms:
    """The host of lowerings that never meet an API object (derivative rule templates): nothing is one."""

    def api_function(self, obj):
        return None

    def as_transform(self, obj):
        return None

    def accepts(self, obj) -> bool:
        return False

    def param_count(self, obj):
        return None

    def source_of(self, obj):
        return None

    def _unsupported(self, *args):
        raise NotImplementedError("this lowering has no TransformHost: transforms cannot be called in it")

    compiler_for = standalone_compiler = gradient_compiler = tangent_compiler = derive_nested = _unsupported


NO_TRANSFORMS: TransformHost = _NoTransforms()
