"""Random differentiable programs, as source text, for differential testing (issue 7).

`programs()` is a hypothesis strategy drawing a `GeneratedProgram`: the source of a module defining helper
functions `h0, h1, ...`, optionally a quaternion type `Quat` (a `@dp.differentiable_type` dataclass with operator
methods), and an entry point `f`, together with arguments to call it at, a tangent direction `u` (one per
differentiable argument) and a cotangent `v` (one per result).

The programs use: arithmetic and `math` calls on safe domains (exp of bounded things, log(1 + x*x),
sqrt(1 + x*x), ...), numpy elementwise operations and reductions on small 1-D arrays, if/elif/else on active
comparisons, `for` over constant / int-argument / array-length ranges, `while` loops with a bounded trip count
(optionally also an active condition), early returns (at top level and from inside loops), calls into helper
functions (returning a number or a tuple; helpers may call earlier helpers), augmented and tuple assignments,
local array writes (`out = np.zeros(n); out[i] = ...`), and quaternion arithmetic through the tangent protocol.

Each program is rendered twice from one description:

* `source` is what diffprog differentiates (written to a real file, since diffprog reads source from disk);
* `traced_source` is the same program as plain Python in which every branch condition and every kink
  (`abs`, `max`, `min`, `np.max`) reports its outcome to a trace list. Finite differences are only taken where
  the trace at x+-h equals the trace at x, i.e. away from branch switches.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

QUAT_CLASS = '''
@dp.differentiable_type
@dataclass(frozen=True)
class Quat:
    w: float
    x: float
    y: float
    z: float

    def __mul__(self, o):
        return Quat(self.w * o.w - self.x * o.x - self.y * o.y - self.z * o.z,
                    self.w * o.x + self.x * o.w + self.y * o.z - self.z * o.y,
                    self.w * o.y - self.x * o.z + self.y * o.w + self.z * o.x,
                    self.w * o.z + self.x * o.y - self.y * o.x + self.z * o.w)

    def __add__(self, o):
        return Quat(self.w + o.w, self.x + o.x, self.y + o.y, self.z + o.z)

    def __sub__(self, o):
        return Quat(self.w - o.w, self.x - o.x, self.y - o.y, self.z - o.z)

    def scaled(self, s):
        return Quat(self.w * s, self.x * s, self.y * s, self.z * s)

    def conj(self):
        return Quat(self.w, -self.x, -self.y, -self.z)

    def norm2(self):
        return self.w * self.w + self.x * self.x + self.y * self.y + self.z * self.z
'''

HEADER = "import math\nfrom dataclasses import dataclass\n\nimport numpy as np\n\nimport diffprog as dp\n"

TRACE_HEADER = '''
_TRACE = []


def _br(c):
    c = bool(c)
    _TRACE.append(c)
    return c


def _abs(x):
    _TRACE.append(x >= 0)
    return abs(x)


def _max(a, b):
    _TRACE.append(a >= b)
    return max(a, b)


def _min(a, b):
    _TRACE.append(a <= b)
    return min(a, b)


def _npmax(a):
    _TRACE.append(int(np.argmax(a)))
    return np.max(a)
'''


# ---------------------------------------------------------------------------------------------------------------
# A tiny expression / statement language that renders to both the plain and the traced source
# ---------------------------------------------------------------------------------------------------------------
class E:
    """An expression: a tree of strings and sub-expressions; `kink` nodes render differently when traced."""

    def __init__(self, *parts, kink=None):
        self.parts = parts
        self.kink = kink  # None, or the name of the traced replacement for the first part (e.g. "_abs")

    def render(self, traced=False):
        out = []
        for k, p in enumerate(self.parts):
            if k == 0 and traced and self.kink is not None:
                out.append(self.kink)
            elif isinstance(p, E):
                out.append(p.render(traced))
            else:
                out.append(p)
        return "".join(out)


class Cond(E):
    """A branch condition: wrapped in `_br(...)` when traced."""

    def render(self, traced=False):
        text = E.render(self, traced)
        return f"_br({text})" if traced else text


def _returns(block) -> bool:
    """Whether a generated block may return early (a loop that does cannot be checkpointed)."""
    for stmt in block:
        head = stmt.head.parts[0] if isinstance(stmt.head, E) and stmt.head.parts else stmt.head
        if head == "return " or _returns(stmt.body) or _returns(stmt.orelse or []):
            return True
    return False


@dataclass
class Stmt:
    head: E | str | None = None  # rendered line (without indentation), may contain E/Cond via parts
    body: list = field(default_factory=list)
    orelse: list | None = None
    kind: str = "simple"  # simple | block

    def render(self, indent, traced):
        pad = "    " * indent
        head = self.head.render(traced) if isinstance(self.head, E) else self.head
        lines = [pad + head]
        if self.kind == "block":
            body = self.body or [Stmt("pass")]
            for s in body:
                lines += s.render(indent + 1, traced)
            if self.orelse is not None:
                if (len(self.orelse) == 1 and self.orelse[0].kind == "block"
                        and isinstance(self.orelse[0].head, E) and self.orelse[0].head.parts
                        and self.orelse[0].head.parts[0] == "if "):
                    sub = self.orelse[0].render(indent, traced)
                    lines.append(pad + "el" + sub[0].lstrip())
                    lines += sub[1:]
                else:
                    lines.append(pad + "else:")
                    for s in self.orelse or [Stmt("pass")]:
                        lines += s.render(indent + 1, traced)
        return lines


def render_block(stmts, indent, traced):
    lines = []
    for s in stmts:
        lines += s.render(indent, traced)
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Program description
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class ArgSpec:
    name: str
    kind: str  # "float" | "array" | "int" | "quat"


@dataclass
class GeneratedProgram:
    source: str
    traced_source: str
    arg_specs: list
    out_kind: str  # "scalar" | "tuple" | "array"
    args: tuple  # raw values: floats, np arrays, ints, and 4-tuples for quaternions
    u: tuple  # a tangent per argument (None for ints; 4-tuples for quaternions)
    v: object  # a cotangent: float, tuple of floats, or array
    features: frozenset

    def __repr__(self):
        return (f"GeneratedProgram(features={sorted(self.features)}, args={self.args!r}, u={self.u!r}, "
                f"v={self.v!r}, out_kind={self.out_kind!r})\n--- source ---\n{self.source}")

    @property
    def diff_argnums(self):
        return tuple(k for k, s in enumerate(self.arg_specs) if s.kind != "int")


def _c(x):
    """A float literal."""
    return repr(float(x))


class Gen:
    """Builds one program from hypothesis draws."""

    def __init__(self, draw, max_depth=3, max_stmts=6, avoid=frozenset()):
        self.draw = draw
        self.avoid = avoid
        self.max_depth = max_depth
        self.max_stmts = max_stmts
        self.counter = 0
        self.features = set()
        self.helpers = []  # (name, params, returns): returns "scalar" | "tuple2" ; params: list of kinds
        self.helper_sources = []
        self.use_quat = False
        self.array_len_expr = None  # e.g. "a0.shape[0]"

    # -- names -----------------------------------------------------------------------------------------------
    def fresh(self, prefix):
        self.counter += 1
        return f"{prefix}{self.counter}"

    def flag(self, name):
        self.features.add(name)

    def choice(self, options, label=None):
        return self.draw(st.sampled_from(options))

    def coin(self, p=0.5):
        return self.draw(st.floats(0, 1)) < p

    def const(self):
        return _c(self.draw(st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, -0.5, -1.0, -2.0, 0.1])))

    # -- scalar expressions --------------------------------------------------------------------------------
    def scalar(self, sc, depth=0):
        """A scalar float expression over the scope `sc`."""
        if depth >= self.max_depth or self.coin(0.3 + 0.15 * depth):
            return self.scalar_leaf(sc)
        options = ["unary", "binary", "binary", "binary"]
        if sc.arrays:
            options += ["reduce", "reduce"]
        if sc.index is not None and sc.arrays:
            options += ["elem", "elem"]
        if self.helpers:
            options += ["helper"]
        if sc.quats:
            options += ["quat"]
        if self.coin(0.25):
            options += ["kink"]
        kind = self.choice(options)
        if kind == "unary":
            return self.unary(self.scalar(sc, depth + 1))
        if kind == "binary":
            a, b = self.scalar(sc, depth + 1), self.scalar(sc, depth + 1)
            op = self.choice(["+", "-", "*", "*", "/", "**"])
            if op == "/":
                return E("(", a, " / (1.0 + ", b, " * ", b, "))")
            if op == "**":
                return E("(", a, " ** 2)")
            return E("(", a, f" {op} ", b, ")")
        if kind == "reduce":
            self.flag("np_reduce")
            A = self.array(sc, depth + 1)
            r = self.choice(["sum", "sum", "mean", "dot", "max", "index0", "index_last", "prod", "norm"])
            if r == "sum":
                return E("np.sum(", A, ")")
            if r == "mean":
                return E("np.mean(", A, ")")
            if r == "dot":
                B = self.array(sc, depth + 1)
                return E("np.dot(", A, ", ", B, ")")
            if r == "max":
                self.flag("kink")
                return E("np.max(", A, ")", kink="_npmax(")
            if r == "prod":
                return E("np.prod(np.tanh(", A, "))")
            if r == "norm":
                return E("np.sqrt(1.0 + np.sum(", A, " * ", A, "))")
            if r == "index0":
                return E("(", A, ")[0]")
            return E("(", A, ")[-1]")
        if kind == "elem":
            self.flag("array_index")
            name = self.choice(sc.arrays)
            return E(f"{name}[{sc.index}]")
        if kind == "helper":
            return self.helper_call(sc, depth, want="scalar")
        if kind == "quat":
            self.flag("quat")
            q = self.choice(sc.quats)
            f = self.choice(["w", "x", "y", "z", "norm2", "wz"])
            if f == "norm2":
                return E(f"{q}.norm2()")
            if f == "wz":
                return E(f"({q}.w * {q}.z - {q}.x * {q}.y)")
            return E(f"{q}.{f}")
        # kink
        self.flag("kink")
        k = self.choice(["abs", "max", "min"])
        a = self.scalar(sc, depth + 1)
        if k == "abs":
            return E("abs(", a, ")", kink="_abs(")
        b = self.scalar(sc, depth + 1)
        return E(f"{k}(", a, ", ", b, ")", kink=f"_{k}(")

    def scalar_leaf(self, sc):
        options = ["var", "var", "var", "const"]
        if sc.ints:
            options.append("int")
        if sc.index is not None and sc.arrays:
            options.append("elem")
        k = self.choice(options)
        if k == "var" and sc.scalars:
            return E(self.choice(sc.scalars))
        if k == "int":
            return E(f"({self.const()} * {self.choice(sc.ints)})")
        if k == "elem":
            self.flag("array_index")
            return E(f"{self.choice(sc.arrays)}[{sc.index}]")
        if sc.scalars and self.coin(0.6):
            return E(self.choice(sc.scalars))
        return E(self.const())

    def unary(self, a):
        self.flag("math")
        k = self.choice(["sin", "cos", "tanh", "atan", "exp_b", "log1sq", "sqrt1sq", "neg", "rat", "log1p", "sinh_b",
                         "erf", "expm1_b", "hypot"])
        if k in ("sin", "cos", "tanh", "atan", "erf"):
            return E(f"math.{k}(", a, ")")
        if k == "exp_b":
            inner = self.choice(["sin", "tanh", "cos"])
            return E(f"math.exp(math.{inner}(", a, "))")
        if k == "expm1_b":
            return E("math.expm1(math.sin(", a, "))")
        if k == "sinh_b":
            return E("math.sinh(math.tanh(", a, "))")
        if k == "log1sq":
            return E("math.log(1.0 + ", a, " * ", a, ")")
        if k == "log1p":
            return E("math.log1p(", a, " * ", a, ")")
        if k == "sqrt1sq":
            return E("math.sqrt(1.0 + ", a, " * ", a, ")")
        if k == "hypot":
            return E("math.hypot(", a, ", 0.5)")
        if k == "rat":
            return E("(", a, " / (1.0 + ", a, " * ", a, "))")
        return E("(-", a, ")")

    # -- array expressions ---------------------------------------------------------------------------------
    def array(self, sc, depth=0, fresh=False):
        """A 1-D array expression of the common length. `fresh=True` guarantees a new array (not a bare name,
        so that a writable local never aliases an argument)."""
        self.flag("np_elementwise")
        if not fresh and (depth >= self.max_depth or self.coin(0.4 + 0.15 * depth)):
            return E(self.choice(sc.arrays))
        k = self.choice(["binop", "binop", "scal", "func", "rat", "where_free"])
        if k == "binop":
            a, b = self.array(sc, depth + 1), self.array(sc, depth + 1)
            return E("(", a, f" {self.choice(['+', '-', '*'])} ", b, ")")
        if k == "scal":
            a, s = self.array(sc, depth + 1), self.scalar(sc, self.max_depth - 1)
            if self.coin():
                return E("(", a, f" {self.choice(['*', '+', '-'])} ", s, ")")
            return E("(", s, " * ", a, ")")
        if k == "func":
            a = self.array(sc, depth + 1)
            f = self.choice(["sin", "cos", "tanh", "exp_b", "sqrt1sq", "log1sq", "arctan"])
            if f == "exp_b":
                return E("np.exp(np.sin(", a, "))")
            if f == "sqrt1sq":
                return E("np.sqrt(1.0 + ", a, " * ", a, ")")
            if f == "log1sq":
                return E("np.log(1.0 + ", a, " * ", a, ")")
            return E(f"np.{f}(", a, ")")
        if k == "rat":
            a, b = self.array(sc, depth + 1), self.array(sc, depth + 1)
            return E("(", a, " / (1.0 + ", b, " * ", b, "))")
        a = self.array(sc, depth + 1)
        return E("(", a, " * 1.0)")

    # -- helpers -------------------------------------------------------------------------------------------
    def make_helper(self):
        name = f"h{len(self.helpers)}"
        nparams = self.draw(st.integers(1, 3))
        params = [f"p{k}" for k in range(nparams)]
        returns = self.choice(["scalar", "scalar", "tuple2"])
        sc = Scope(scalars=list(params), arrays=[], quats=[], ints=[], index=None)
        body = self.block(sc, depth=1, n=self.draw(st.integers(1, 3)), allow_new=True,
                          out_kind="scalar" if returns == "scalar" else "tuple", in_helper=True)
        body.append(Stmt(E("return ", self.ret_expr(sc, "scalar" if returns == "scalar" else "tuple"))))
        self.helpers.append((name, nparams, returns))
        self.flag("helper")
        return name, params, body

    def helper_call(self, sc, depth, want):
        cands = [h for h in self.helpers if (h[2] == "scalar") == (want == "scalar")]
        if not cands:
            return self.scalar_leaf(sc)
        name, nparams, _ = self.choice(cands)
        args = [self.scalar(sc, depth + 1) for _ in range(nparams)]
        parts = [f"{name}("]
        for k, a in enumerate(args):
            if k:
                parts.append(", ")
            parts.append(a)
        parts.append(")")
        return E(*parts)

    # -- conditions ------------------------------------------------------------------------------------------
    def cond(self, sc):
        self.flag("branch")
        k = self.choice(["cmp", "cmp", "cmp", "const", "andor", "not", "int"] if sc.ints else
                        ["cmp", "cmp", "cmp", "const", "andor", "not"])
        if k == "cmp":
            return Cond(self.scalar(sc, 1), f" {self.choice(['>', '<', '>=', '<='])} ", self.scalar(sc, 1))
        if k == "const":
            return Cond(self.scalar(sc, 1), f" > {self.const()}")
        if k == "int":
            return Cond(f"{self.choice(sc.ints)} % 2 == 0")
        if k == "not":
            return Cond("not (", self.scalar(sc, 1), " < ", self.scalar(sc, 2), ")")
        return Cond("(", self.scalar(sc, 2), " > ", self.scalar(sc, 2), f") {self.choice(['and', 'or'])} (",
                    self.scalar(sc, 2), " < ", self.const(), ")")

    # -- statements ------------------------------------------------------------------------------------------
    def block(self, sc, depth, n, allow_new, out_kind, in_helper=False, in_loop=False):
        stmts = []
        for _ in range(n):
            stmts += self.statement(sc, depth, allow_new, out_kind, in_helper, in_loop)
        return stmts

    def statement(self, sc, depth, allow_new, out_kind, in_helper, in_loop):
        options = ["assign", "assign", "aug", "aug", "tuple"]
        if depth < 3:
            options += ["if", "if", "for", "for", "while"]
        if sc.arrays and allow_new and not in_helper:
            options += ["local_array", "array_assign"]
        if sc.writable and sc.index is not None:
            options += ["write", "write"]
        if self.helpers and not in_helper:
            options += ["helper_tuple"]
        if self.use_quat and allow_new and not in_helper and depth == 1:
            options += ["quat", "quat"]
        if sc.quats and not in_helper and ("quat_reassign" not in self.avoid or (allow_new and depth == 1)):
            options += ["quat_update"]
        if depth <= 3 and (not in_helper or depth == 1):
            options += ["early_return"]
        kind = self.choice(options)

        if kind == "assign":
            if allow_new and (not sc.scalars or self.coin(0.6)):
                name = self.fresh("v")
                e = self.scalar(sc)
                sc.scalars.append(name)
                return [Stmt(E(f"{name} = ", e))]
            if not sc.assignable:
                return []
            name = self.choice(sc.assignable)
            return [Stmt(E(f"{name} = ", self.scalar(sc)))]
        if kind == "aug":
            if not sc.assignable:
                return []
            self.flag("augassign")
            name = self.choice(sc.assignable)
            op = self.choice(["+=", "-=", "*=", "/="])
            if op == "*=":
                return [Stmt(E(f"{name} *= ", self.unary_bounded(self.scalar(sc, 1))))]
            if op == "/=":
                e = self.scalar(sc, 1)
                return [Stmt(E(f"{name} /= (1.0 + ", e, " * ", e, ")"))]
            return [Stmt(E(f"{name} {op} ", self.scalar(sc)))]
        if kind == "tuple":
            self.flag("tuple_assign")
            if len(sc.assignable) >= 2 and self.coin(0.4):
                a, b = self.draw(st.permutations(sc.assignable))[:2]
                return [Stmt(f"{a}, {b} = {b}, {a}")]
            if allow_new:
                a, b = self.fresh("v"), self.fresh("v")
                e1, e2 = self.scalar(sc), self.scalar(sc)
                sc.scalars += [a, b]
                return [Stmt(E(f"{a}, {b} = ", e1, ", ", e2))]
            if len(sc.assignable) >= 2:
                a, b = self.draw(st.permutations(sc.assignable))[:2]
                return [Stmt(E(f"{a}, {b} = ", self.scalar(sc), ", ", self.scalar(sc)))]
            return []
        if kind == "if":
            c = self.cond(sc)
            body = self.block(sc.inner(), depth + 1, self.draw(st.integers(1, 2)), False, out_kind, in_helper,
                              in_loop)
            orelse = None
            if self.coin(0.6):
                if self.coin(0.3):
                    self.flag("elif")
                    orelse = self.statement_if(sc, depth, out_kind, in_helper, in_loop)
                else:
                    orelse = self.block(sc.inner(), depth + 1, self.draw(st.integers(1, 2)), False, out_kind,
                                        in_helper, in_loop)
            return [Stmt(E("if ", c, ":"), body, orelse, kind="block")]
        if kind == "for":
            return self.for_loop(sc, depth, out_kind, in_helper)
        if kind == "while":
            return self.while_loop(sc, depth, out_kind, in_helper)
        if kind == "local_array":
            self.flag("local_array_write")
            name = self.fresh("out")
            stmts = [Stmt(f"{name} = np.zeros({self.array_len_expr})")]
            sc.writable.append(name)
            i = self.fresh("i")
            inner = sc.inner(index=i, ints=[i])
            body = []
            if self.coin(0.4):
                # a recurrence through the buffer
                body.append(Stmt(E("if ", Cond(f"{i} > 0"), ":"), [
                    Stmt(E(f"{name}[{i}] = 0.5 * {name}[{i} - 1] + ", self.scalar(inner, 1)))
                ], [Stmt(E(f"{name}[{i}] = ", self.scalar(inner, 1)))], kind="block"))
            else:
                body.append(Stmt(E(f"{name}[{i}] = ", self.scalar(inner, 1))))
            stmts.append(Stmt(f"for {i} in range({self.array_len_expr}):", body, kind="block"))
            sc.arrays.append(name)
            return stmts
        if kind == "array_assign":
            if sc.writable_rebindable and self.coin(0.4):
                name = self.choice(sc.writable_rebindable)
                return [Stmt(E(f"{name} = ", self.array(sc, 1, fresh=True)))]
            name = self.fresh("b")
            e = self.array(sc, 0, fresh=True)
            sc.arrays.append(name)
            return [Stmt(E(f"{name} = ", e))]
        if kind == "write":
            self.flag("local_array_write")
            name = self.choice(sc.writable)
            op = self.choice(["=", "+=", "-="])
            return [Stmt(E(f"{name}[{sc.index}] {op} ", self.scalar(sc, 1)))]
        if kind == "helper_tuple":
            cands = [h for h in self.helpers if h[2] == "tuple2"]
            if not cands:
                return []
            if allow_new:
                a, b = self.fresh("v"), self.fresh("v")
                call = self.helper_call(sc, 1, want="tuple")
                sc.scalars += [a, b]
            elif len(sc.assignable) >= 2:
                a, b = self.draw(st.permutations(sc.assignable))[:2]
                call = self.helper_call(sc, 1, want="tuple")
            else:
                return []
            return [Stmt(E(f"{a}, {b} = ", call))]
        if kind == "quat":
            self.flag("quat")
            name = self.fresh("q")
            es = [self.scalar(sc, 1) for _ in range(4)]
            stmt = Stmt(E(f"{name} = Quat(", es[0], ", ", es[1], ", ", es[2], ", ", es[3], ")"))
            sc.quats.append(name)
            return [stmt]
        if kind == "quat_update":
            self.flag("quat")
            q = self.choice(sc.quats)
            other = self.choice(sc.quats)
            op = self.choice(["mul", "add", "sub", "conj", "scaled", "mulconj"])
            if "quat_reassign" in self.avoid:  # fresh names instead of reassignment
                name = self.fresh("q")
                stmt = self.quat_update_expr(sc, q, other, op, name)
                sc.quats.append(name)
                return [stmt]
            return [self.quat_update_expr(sc, q, other, op, q)]
        # early_return
        self.flag("early_return")
        if in_loop:
            self.flag("return_in_loop")
        return [Stmt(E("if ", self.cond(sc), ":"), [Stmt(E("return ", self.ret_expr(sc, out_kind)))],
                     kind="block")]

    def quat_update_expr(self, sc, q, other, op, t):
        """`t = <quaternion expression in q and other>`."""
        if op == "mul":
            return Stmt(f"{t} = ({q} * {other}).scaled(0.5)")
        if op == "add":
            return Stmt(f"{t} = {q} + {other}")
        if op == "sub":
            return Stmt(f"{t} = {q} - {other}.scaled(0.5)")
        if op == "conj":
            return Stmt(f"{t} = {q}.conj()")
        if op == "mulconj":
            return Stmt(f"{t} = ({other} * {q}.conj()).scaled(0.25)")
        return Stmt(E(f"{t} = {q}.scaled(", self.unary_bounded(self.scalar(sc, 1)), ")"))

    def statement_if(self, sc, depth, out_kind, in_helper, in_loop):
        c = self.cond(sc)
        body = self.block(sc.inner(), depth + 1, 1, False, out_kind, in_helper, in_loop)
        orelse = None
        if self.coin(0.5):
            orelse = self.block(sc.inner(), depth + 1, 1, False, out_kind, in_helper, in_loop)
        return [Stmt(E("if ", c, ":"), body, orelse, kind="block")]

    def unary_bounded(self, a):
        k = self.choice(["cos", "tanh", "sin", "rat"])
        if k == "rat":
            return E("(1.0 / (1.0 + ", a, " * ", a, "))")
        return E(f"math.{k}(", a, ")")

    def for_loop(self, sc, depth, out_kind, in_helper):
        self.flag("for")
        options = ["const", "const"]
        if sc.int_args:
            options.append("intarg")
        if self.array_len_expr and sc.arrays:
            options += ["array", "array"]
        k = self.choice(options)
        var = self.fresh("i" if k == "array" else "k")
        if k == "const":
            start = self.draw(st.integers(0, 2))
            stop = start + self.draw(st.integers(0, 4))
            rng = f"range({stop})" if start == 0 else f"range({start}, {stop})"
            inner = sc.inner(ints=[var])
        elif k == "intarg":
            rng = f"range({self.choice(sc.int_args)})"
            inner = sc.inner(ints=[var])
        else:
            rng = f"range({self.array_len_expr})"
            if self.coin(0.2):
                rng = f"range({self.array_len_expr} - 1, -1, -1)"
                self.flag("negative_step")
            inner = sc.inner(ints=[var], index=var)
        body = self.block(inner, depth + 1, self.draw(st.integers(1, 3)), False, out_kind, in_helper, True)
        loop = Stmt(f"for {var} in {rng}:", body, kind="block")
        if not _returns(body) and self.coin(0.25):  # reversed by binomial checkpointing instead of tapes
            self.flag("checkpoint")
            snapshots = self.choice(["", "snapshots=1", "snapshots=2", "snapshots=3"])
            return [Stmt(f"with dp.checkpoint({snapshots}):", [loop], kind="block")]
        return [loop]

    def while_loop(self, sc, depth, out_kind, in_helper):
        self.flag("while")
        j = self.fresh("j")
        bound = self.draw(st.integers(0, 4))
        inner = sc.inner(ints=[j])
        if self.coin(0.5):
            self.flag("active_while")
            cond = Cond(f"{j} < {bound} and ", self.scalar(sc, 2), f" < {self.const()}")
        else:
            cond = Cond(f"{j} < {bound}")
        body = self.block(inner, depth + 1, self.draw(st.integers(1, 2)), False, out_kind, in_helper, True)
        body.append(Stmt(f"{j} += 1"))
        return [Stmt(f"{j} = 0"), Stmt(E("while ", cond, ":"), body, kind="block")]

    def ret_expr(self, sc, out_kind):
        if out_kind == "scalar":
            return self.final_scalar(sc)
        if out_kind == "tuple":
            return E(self.final_scalar(sc), ", ", self.final_scalar(sc))
        return E(self.array(sc, 1, fresh=True))

    def final_scalar(self, sc):
        """A combination of several live values, so that most of the program is useful."""
        terms = []
        pool = list(sc.scalars)
        if pool:
            for name in self.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True)):
                terms.append(E(name))
        if sc.arrays and self.coin(0.7):
            terms.append(E("np.sum(", self.choice(sc.arrays), ")"))
        if sc.quats and self.coin(0.7):
            q = self.choice(sc.quats)
            terms.append(E(f"({q}.w + {q}.x * {q}.y - {q}.z)"))
        if not terms or self.coin(0.3):
            terms.append(self.scalar(sc, 1))
        parts = []
        for k, t in enumerate(terms):
            if k:
                parts.append(self.choice([" + ", " - ", " + 0.5 * "]))
            parts.append(t)
        return E("(", *parts, ")")


class Scope:
    """What an expression may read, and what a statement may assign, at one point of the program."""

    def __init__(self, scalars, arrays, quats, ints, index, writable=None, int_args=(), assignable=None,
                 writable_rebindable=None):
        self.scalars = scalars
        self.arrays = arrays
        self.quats = quats
        self.ints = ints
        self.index = index
        self.writable = writable if writable is not None else []
        self.int_args = list(int_args)
        self._assignable = assignable
        self.writable_rebindable = writable_rebindable if writable_rebindable is not None else self.writable

    @property
    def assignable(self):
        return self._assignable if self._assignable is not None else self.scalars

    def inner(self, ints=(), index=None):
        """A nested block: reads everything visible here, introduces nothing visible outside. Only names known
        before the block are assigned (so every name is defined on every path)."""
        return Scope(list(self.scalars), list(self.arrays), list(self.quats), self.ints + list(ints),
                     index if index is not None else self.index, list(self.writable), self.int_args,
                     assignable=list(self.assignable), writable_rebindable=[])


@st.composite
def programs(draw, *, max_stmts=6, allow_quat=True, allow_arrays=True, allow_helpers=True,
             out_kinds=("scalar", "scalar", "scalar", "scalar", "tuple", "array"), avoid=frozenset()):
    """`avoid`: names of constructs not to generate (for steering around a known bug while it is open):
    "quat_reassign" (quaternion updates bind fresh names instead of reassigning)."""
    g = Gen(draw, max_stmts=max_stmts, avoid=frozenset(avoid))
    n_float = draw(st.integers(1, 3))
    n_array = draw(st.integers(0, 2)) if allow_arrays else 0
    n_int = draw(st.integers(0, 1))
    g.use_quat = allow_quat and draw(st.booleans())
    quat_arg = g.use_quat and draw(st.floats(0, 1)) < 0.3
    specs = [ArgSpec(f"x{k}", "float") for k in range(n_float)]
    specs += [ArgSpec(f"a{k}", "array") for k in range(n_array)]
    specs += [ArgSpec(f"n{k}", "int") for k in range(n_int)]
    if quat_arg:
        specs.append(ArgSpec("qa", "quat"))
    specs = draw(st.permutations(specs))
    out_kind = draw(st.sampled_from(out_kinds))
    if out_kind == "array" and not n_array:
        out_kind = "scalar"
    if n_array:
        g.array_len_expr = f"{[s.name for s in specs if s.kind == 'array'][0]}.shape[0]"
    if g.use_quat:
        g.flag("quat")

    helper_defs = []
    if allow_helpers:
        for _ in range(draw(st.integers(0, 2))):
            name, params, body = g.make_helper()
            helper_defs.append((name, params, body))

    sc = Scope(scalars=[s.name for s in specs if s.kind == "float"],
               arrays=[s.name for s in specs if s.kind == "array"],
               quats=[s.name for s in specs if s.kind == "quat"], ints=[s.name for s in specs if s.kind == "int"],
               index=None, int_args=[s.name for s in specs if s.kind == "int"])
    body = g.block(sc, 1, draw(st.integers(1, max_stmts)), True, out_kind)
    body.append(Stmt(E("return ", g.ret_expr(sc, out_kind))))
    out_kind = {"scalar": "scalar", "tuple": "tuple", "array": "array"}[out_kind]

    def render(traced):
        lines = [HEADER]
        if traced:
            lines.append(TRACE_HEADER)
        if g.use_quat:
            text = QUAT_CLASS
            if traced:
                text = text.replace("@dp.differentiable_type\n", "")
            lines.append(text)
        for name, params, hbody in helper_defs:
            lines.append("")
            lines.append(f"def {name}({', '.join(params)}):")
            lines += render_block(hbody, 1, traced)
            lines.append("")
        lines.append("")
        lines.append(f"def f({', '.join(s.name for s in specs)}):")
        lines += render_block(body, 1, traced)
        lines.append("")
        return "\n".join(lines)

    # arguments
    length = draw(st.integers(1, 4))
    num = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    unit = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    args, u = [], []
    for s in specs:
        if s.kind == "float":
            args.append(float(draw(num)))
            u.append(float(draw(unit)))
        elif s.kind == "array":
            args.append(np.array(draw(st.lists(num, min_size=length, max_size=length)), dtype=np.float64))
            u.append(np.array(draw(st.lists(unit, min_size=length, max_size=length)), dtype=np.float64))
        elif s.kind == "int":
            args.append(int(draw(st.integers(0, 3))))
            u.append(None)
        else:
            args.append(tuple(float(draw(num)) for _ in range(4)))
            u.append(tuple(float(draw(unit)) for _ in range(4)))
    if out_kind == "scalar":
        v = float(draw(st.floats(0.5, 2.0)))
    elif out_kind == "tuple":
        v = (float(draw(st.floats(-2.0, 2.0))), float(draw(st.floats(-2.0, 2.0))))
    else:
        v = np.array(draw(st.lists(unit, min_size=length, max_size=length)), dtype=np.float64)
    return GeneratedProgram(render(False), render(True), list(specs), out_kind, tuple(args), tuple(u), v,
                            frozenset(g.features))
