"""Independent references for checking diffprog gradients.

A *program* is a source string that defines functions using `math.xxx`, builtins (abs/min/max), module
constants, other functions in the same source, and optionally `import diffprog as dp` (for
`@dp.differentiable`, `dp.no_derivative`, `dp.stop_gradient`). The same text is used twice:

* written to a real temporary ``.py`` file and imported with importlib under a unique module name, because
  diffprog reads the user's source from disk; this module is what diffprog differentiates and what the
  finite-difference reference evaluates (plain Python, undecorated entry point);
* exec'd with `math`, `numpy` and `diffprog` replaced by shims backed by autograd, so `autograd.grad` can
  differentiate the very same code as an independent reference.

Everything expensive (module import, diffprog specialisation and numba compilation) is cached per program,
so hypothesis examples reuse one compiled gradient.
"""
from __future__ import annotations

import atexit
import builtins
import contextlib
import importlib.util
import itertools
import math
import shutil
import sys
import tempfile
import textwrap
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import autograd
import autograd.numpy as anp
import autograd.scipy.special as asp
import numpy as np
from autograd.tracer import getval
from hypothesis import assume
from hypothesis import strategies as st

# --------------------------------------------------------------------------------------------------------
# Temporary real source files
# --------------------------------------------------------------------------------------------------------

_TMP_DIR = Path(tempfile.mkdtemp(prefix="diffprog-programs-"))
atexit.register(shutil.rmtree, str(_TMP_DIR), True)
_COUNTER = itertools.count()


def write_module(source: str, stem: str = "prog"):
    """Write `source` to a fresh .py file and import it under a unique module name.

    Returns (module, path)."""
    source = textwrap.dedent(source)
    safe = "".join(ch if ch.isalnum() else "_" for ch in stem)
    name = f"_dp_test_{safe}_{next(_COUNTER)}"
    path = _TMP_DIR / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module, str(path)


# --------------------------------------------------------------------------------------------------------
# autograd shims
# --------------------------------------------------------------------------------------------------------


def _ag_log(x, base=None):
    if base is None:
        return anp.log(x)
    return anp.log(x) / anp.log(base)


MATH_SHIM = types.SimpleNamespace(
    sin=anp.sin,
    cos=anp.cos,
    tan=anp.tan,
    asin=anp.arcsin,
    acos=anp.arccos,
    atan=anp.arctan,
    atan2=anp.arctan2,
    sinh=anp.sinh,
    cosh=anp.cosh,
    tanh=anp.tanh,
    exp=anp.exp,
    expm1=anp.expm1,
    log=_ag_log,
    log1p=anp.log1p,
    log2=anp.log2,
    log10=anp.log10,
    sqrt=anp.sqrt,
    pow=anp.power,
    hypot=anp.hypot,
    fabs=anp.abs,
    erf=asp.erf,
    erfc=asp.erfc,
    pi=math.pi,
    e=math.e,
    inf=math.inf,
)


def _ag_differentiable(fn=None, **_options):
    if fn is None:
        return lambda f: f
    return fn


DP_SHIM = types.SimpleNamespace(
    differentiable=_ag_differentiable,
    checkpoint=lambda snapshots=None: contextlib.nullcontext(),
    no_derivative=getval,
    stop_gradient=getval,
)


def _shim_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0:
        if name == "math":
            return MATH_SHIM
        if name == "diffprog":
            return DP_SHIM
        if name == "numpy":
            return anp
    return builtins.__import__(name, globals, locals, fromlist, level)


def autograd_namespace(source: str, filename: str) -> dict:
    """exec `source` with math/numpy/diffprog replaced by autograd-backed shims."""
    shim_builtins = dict(builtins.__dict__)
    shim_builtins["__import__"] = _shim_import
    namespace = {"__builtins__": shim_builtins, "__name__": "_autograd_reference"}
    exec(compile(textwrap.dedent(source), filename, "exec"), namespace)
    return namespace


# --------------------------------------------------------------------------------------------------------
# Argument specifications and hypothesis strategies
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class F:
    """A float argument drawn from [lo, hi]; differentiated."""

    lo: float
    hi: float


@dataclass(frozen=True)
class I:
    """An int argument drawn from [lo, hi]; never differentiated."""

    lo: int
    hi: int


@dataclass(frozen=True)
class A:
    """A 1-D float64 array argument with elements in [lo, hi]; differentiated.

    Arrays with the same `group` have the same length."""

    lo: float
    hi: float
    min_len: int = 1
    max_len: int = 6
    group: str | None = None


def _float_strategy(lo, hi):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def draw_args(data, specs):
    lengths = {}
    args = []
    for k, spec in enumerate(specs):
        if isinstance(spec, F):
            args.append(float(data.draw(_float_strategy(spec.lo, spec.hi), label=f"arg{k}")))
        elif isinstance(spec, I):
            args.append(int(data.draw(st.integers(spec.lo, spec.hi), label=f"arg{k}")))
        elif isinstance(spec, A):
            if spec.group is not None and spec.group in lengths:
                n = lengths[spec.group]
            else:
                n = data.draw(st.integers(spec.min_len, spec.max_len), label=f"len{k}")
                if spec.group is not None:
                    lengths[spec.group] = n
            values = data.draw(
                st.lists(_float_strategy(spec.lo, spec.hi), min_size=n, max_size=n), label=f"arg{k}"
            )
            args.append(np.array(values, dtype=np.float64))
        else:  # pragma: no cover - programming error in a test
            raise TypeError(spec)
    return tuple(args)


# --------------------------------------------------------------------------------------------------------
# Programs
# --------------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class Program:
    name: str
    source: str
    args: tuple
    entry: str = "f"
    ok: Callable | None = None  # predicate on the drawn args; keeps examples away from kinks/cuts
    hand: Callable | None = None  # optional hand-derived gradient: returns one value per differentiated arg
    fd: bool = True  # False when the program cuts derivatives on purpose (no_derivative): FD sees the true slope

    def __repr__(self):
        return f"Program({self.name})"

    @property
    def diff_argnums(self) -> tuple:
        return tuple(k for k, s in enumerate(self.args) if isinstance(s, (F, A)))


@dataclass
class Loaded:
    program: Program
    module: types.ModuleType
    path: str
    namespace: dict
    _cache: dict = field(default_factory=dict)

    @property
    def plain(self):
        return getattr(self.module, self.program.entry)

    @property
    def reference(self):
        return self.namespace[self.program.entry]

    def dp_grad(self, jit=True):
        """dp.grad of the entry point wrt every float/array argument (cached)."""
        import diffprog as dp

        key = ("grad", jit)
        if key not in self._cache:
            target = self.plain if jit else dp.differentiable(jit=False)(self.plain)
            self._cache[key] = dp.grad(target, argnums=self.program.diff_argnums)
        return self._cache[key]

    def cached(self, key, factory):
        if key not in self._cache:
            self._cache[key] = factory()
        return self._cache[key]


_LOADED: dict[int, Loaded] = {}


def load(program: Program) -> Loaded:
    key = id(program)
    if key not in _LOADED:
        module, path = write_module(program.source, program.name)
        namespace = autograd_namespace(program.source, path)
        _LOADED[key] = Loaded(program, module, path, namespace)
    return _LOADED[key]


# --------------------------------------------------------------------------------------------------------
# Finite differences
# --------------------------------------------------------------------------------------------------------


def _fd_scalar(phi, x0):
    """Central difference of a scalar function at x0, and whether it looks smooth there."""
    h = 1e-6 * max(1.0, abs(x0))
    f0 = float(phi(x0))
    fp = float(phi(x0 + h))
    fm = float(phi(x0 - h))
    central = (fp - fm) / (2 * h)
    forward = (fp - f0) / h
    backward = (f0 - fm) / h
    smooth = abs(forward - backward) <= 1e-2 * (1.0 + abs(forward) + abs(backward)) + 1e-14 * abs(f0) / h
    return central, smooth


def finite_difference(fun, args, argnum):
    """Central finite difference of scalar `fun` wrt args[argnum] (float or 1-D array).

    Returns (gradient, smooth) where smooth is False if a kink or jump was detected nearby."""
    x = args[argnum]
    if isinstance(x, np.ndarray):
        out = np.zeros_like(x, dtype=np.float64)
        smooth_all = True
        for k in range(x.size):

            def phi(v, k=k):
                y = x.copy()
                y[k] = v
                new = list(args)
                new[argnum] = y
                return fun(*new)

            out[k], smooth = _fd_scalar(phi, float(x[k]))
            smooth_all = smooth_all and smooth
        return out, smooth_all

    def phi(v):
        new = list(args)
        new[argnum] = v
        return fun(*new)

    return _fd_scalar(phi, float(x))


def fd_tolerance(fun, args):
    return 1e-5 * (1.0 + abs(float(fun(*args))))


# --------------------------------------------------------------------------------------------------------
# The check used by the corpus tests
# --------------------------------------------------------------------------------------------------------

REF_RTOL = 1e-6
REF_ATOL = 1e-8
FD_RTOL = 1e-4


def as_tuple_result(result, n):
    assert isinstance(result, tuple), f"tuple argnums must give a tuple, got {type(result).__name__}"
    assert len(result) == n, f"expected {n} gradients, got {len(result)}"
    return result


def check_gradient(program: Program, args: tuple, jit: bool = True):
    """Assert dp.grad agrees with autograd (or the hand formula) and with central differences."""
    loaded = load(program)
    if program.ok is not None:
        assume(program.ok(*args))
    argnums = program.diff_argnums
    plain = loaded.plain

    # Skip points where the function is not locally smooth (branch switch, trip count change, ...):
    # there every method is entitled to disagree.
    fds = []
    for k in argnums:
        fd, smooth = finite_difference(plain, args, k)
        assume(smooth)
        fds.append(fd if program.fd else None)

    grads = as_tuple_result(loaded.dp_grad(jit=jit)(*args), len(argnums))

    ref = loaded.reference
    independent = tuple(autograd.grad(ref, k)(*args) for k in argnums)
    hand = tuple(program.hand(*args)) if program.hand is not None else (None,) * len(argnums)
    assert program.fd or program.hand is not None, "a program without FD needs a hand formula"

    tol = fd_tolerance(plain, args)
    for k, got, expected, fd, by_hand in zip(argnums, grads, independent, fds, hand):
        if isinstance(args[k], np.ndarray):
            got_arr = np.asarray(got)
            assert got_arr.shape == args[k].shape, (
                f"gradient wrt array argument {k} has shape {got_arr.shape}, expected {args[k].shape}"
            )
        else:
            assert np.ndim(got) == 0, f"gradient wrt scalar argument {k} is not a scalar: {got!r}"
        np.testing.assert_allclose(
            np.asarray(got, dtype=np.float64),
            np.asarray(expected, dtype=np.float64),
            rtol=REF_RTOL,
            atol=REF_ATOL,
            err_msg=f"{program.name}: dp.grad vs independent reference, argument {k}, args={args!r}",
        )
        if by_hand is not None:
            np.testing.assert_allclose(
                np.asarray(got, dtype=np.float64),
                np.asarray(by_hand, dtype=np.float64),
                rtol=REF_RTOL,
                atol=REF_ATOL,
                err_msg=f"{program.name}: dp.grad vs hand-derived formula, argument {k}, args={args!r}",
            )
        if fd is None:
            continue
        np.testing.assert_allclose(
            np.asarray(got, dtype=np.float64),
            np.asarray(fd, dtype=np.float64),
            rtol=FD_RTOL,
            atol=tol,
            err_msg=f"{program.name}: dp.grad vs central finite differences, argument {k}, args={args!r}",
        )
    return grads


def away_from(value, points, margin=1e-3):
    """True if `value` is at least `margin` away from every point."""
    return all(abs(value - p) > margin for p in points)


def frac_distance(value):
    """Distance from value to the nearest integer."""
    return abs(value - round(value))


# --------------------------------------------------------------------------------------------------------
# N-D array programs (tests/test_arrays*.py): shapes drawn from named dimensions, gradients of any rank
# --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Arr:
    """A float array argument of shape `shape` (a tuple of dimension names or ints), elements in [lo, hi];
    differentiated. Named dimensions are shared between arguments (drawn once per example from `dims`)."""

    shape: tuple
    lo: float = -2.0
    hi: float = 2.0


@dataclass(eq=False)
class ArrayProgram:
    """Like `Program`, for N-D array arguments. `ref_source`, if given, is what autograd differentiates instead
    of `source` (autograd cannot run in-place writes into arrays); it must define the same entry point.
    `dims` maps dimension names to (lo, hi) size ranges; `prep` maps drawn args to the args actually used
    (e.g. to make a matrix well conditioned)."""

    name: str
    source: str
    args: tuple
    entry: str = "f"
    ok: Callable | None = None
    ref_source: str | None = None
    dims: dict = field(default_factory=dict)
    prep: Callable | None = None
    fd: bool = True
    f32: bool = False  # also run the float32 check in the parametrized float32 tests

    def __repr__(self):
        return f"ArrayProgram({self.name})"

    @property
    def diff_argnums(self) -> tuple:
        return tuple(k for k, s in enumerate(self.args) if isinstance(s, (F, A, Arr)))


_LOADED_ND: dict[int, Loaded] = {}


def load_nd(program: ArrayProgram) -> Loaded:
    key = id(program)
    if key not in _LOADED_ND:
        module, path = write_module(program.source, program.name)
        ref_text = program.ref_source if program.ref_source is not None else program.source
        namespace = autograd_namespace(ref_text, path)
        _LOADED_ND[key] = Loaded(program, module, path, namespace)
    return _LOADED_ND[key]


DEFAULT_DIM = (1, 4)


def draw_nd_args(data, program: ArrayProgram):
    sizes = {}

    def size(d):
        if isinstance(d, int):
            return d
        if d not in sizes:
            lo, hi = program.dims.get(d, DEFAULT_DIM)
            sizes[d] = data.draw(st.integers(lo, hi), label=f"dim {d}")
        return sizes[d]

    args = []
    for k, spec in enumerate(program.args):
        if isinstance(spec, Arr):
            shape = tuple(size(d) for d in spec.shape)
            n = int(np.prod(shape, dtype=np.int64))
            values = data.draw(st.lists(_float_strategy(spec.lo, spec.hi), min_size=n, max_size=n),
                               label=f"arg{k}")
            args.append(np.array(values, dtype=np.float64).reshape(shape))
        else:
            args.extend(draw_args(data, [spec]))
    args = tuple(args)
    if program.prep is not None:
        args = tuple(program.prep(*args))
    return args


def finite_difference_nd(fun, args, argnum):
    """Central differences of scalar `fun` wrt args[argnum] (float or array of any rank), and smoothness."""
    x = args[argnum]
    if not isinstance(x, np.ndarray):
        return finite_difference(fun, args, argnum)
    out = np.zeros(x.shape, dtype=np.float64)
    smooth_all = True
    for idx in np.ndindex(*x.shape):

        def phi(v, idx=idx):
            y = x.copy()
            y[idx] = v
            new = list(args)
            new[argnum] = y
            return fun(*new)

        out[idx], smooth = _fd_scalar(phi, float(x[idx]))
        smooth_all = smooth_all and smooth
    return out, smooth_all


def check_gradient_nd(program: ArrayProgram, args: tuple, *, use_fd: bool = True, jit: bool = True):
    """Assert dp.grad (wrt every float/array argument) agrees with autograd and with central differences, and
    that each gradient has its argument's shape (a number for a float argument) and dtype. `jit=False` runs the
    same generated code as plain Python (no numba compile cost)."""
    loaded = load_nd(program)
    if program.ok is not None:
        assume(program.ok(*args))
    argnums = program.diff_argnums
    plain = loaded.plain
    fds = []
    for k in argnums:
        if use_fd and program.fd:
            fd, smooth = finite_difference_nd(plain, args, k)
            assume(smooth)
            fds.append(fd)
        else:
            fds.append(None)
    grads = as_tuple_result(loaded.dp_grad(jit=jit)(*args), len(argnums))
    ref = loaded.reference
    expected = tuple(autograd.grad(ref, k)(*args) for k in argnums)
    tol = fd_tolerance(plain, args)
    for k, got, exp, fd in zip(argnums, grads, expected, fds):
        if isinstance(args[k], np.ndarray):
            got_arr = np.asarray(got)
            assert isinstance(got, np.ndarray), f"{program.name}: gradient {k} is {type(got).__name__}"
            assert got_arr.shape == args[k].shape, (
                f"{program.name}: gradient wrt argument {k} has shape {got_arr.shape}, expected {args[k].shape}")
            assert got_arr.dtype == args[k].dtype, (
                f"{program.name}: gradient wrt argument {k} has dtype {got_arr.dtype}, expected {args[k].dtype}")
        else:
            assert np.ndim(got) == 0, f"{program.name}: gradient wrt scalar argument {k} is not a scalar: {got!r}"
        np.testing.assert_allclose(
            np.asarray(got, dtype=np.float64), np.asarray(exp, dtype=np.float64), rtol=REF_RTOL, atol=REF_ATOL,
            err_msg=f"{program.name}: dp.grad vs autograd, argument {k}, args={args!r}")
        if fd is not None:
            np.testing.assert_allclose(
                np.asarray(got, dtype=np.float64), fd, rtol=FD_RTOL, atol=tol,
                err_msg=f"{program.name}: dp.grad vs central differences, argument {k}, args={args!r}")
    return grads


def check_gradient_nd_f32(program: ArrayProgram, args: tuple, rtol=2e-3, atol=2e-4):
    """float32 array arguments: the gradient of each array argument is float32 and close to autograd's float64
    gradient at the (float32-rounded) point."""
    loaded = load_nd(program)
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in args)
    args64 = tuple(a.astype(np.float64) if isinstance(a, np.ndarray) else a for a in args32)
    if program.ok is not None:
        assume(program.ok(*args64))
    argnums = program.diff_argnums
    for k in argnums:
        _, smooth = finite_difference_nd(loaded.plain, args64, k)
        assume(smooth)
    grads = as_tuple_result(loaded.dp_grad()(*args32), len(argnums))
    expected = tuple(autograd.grad(loaded.reference, k)(*args64) for k in argnums)
    scale = 1.0 + max((float(np.max(np.abs(e))) if np.size(e) else 0.0) for e in expected)
    for k, got, exp in zip(argnums, grads, expected):
        if isinstance(args32[k], np.ndarray):
            assert isinstance(got, np.ndarray) and got.dtype == np.float32, (
                f"{program.name}: float32 argument {k} got a gradient of dtype {getattr(got, 'dtype', type(got))}")
            assert got.shape == args32[k].shape
        np.testing.assert_allclose(
            np.asarray(got, dtype=np.float64), np.asarray(exp, dtype=np.float64), rtol=rtol, atol=atol * scale,
            err_msg=f"{program.name}: float32 dp.grad vs float64 autograd, argument {k}, args={args32!r}")
    return grads
