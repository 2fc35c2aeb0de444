"""The diagnostics catalogue: one entry per code, the single source of `diffprog explain`, of the rule list in
SARIF output and of docs/diagnostics.md (`python -m diffprog.cli.docs` regenerates it; a test keeps it current).

Codes are stable. Each entry has a failing example and the same code fixed; the tests run both, so the
catalogue cannot drift from what the checker reports. `checked_by` says which engine finds the problem:
"check" (statically, by `diffprog check` and at decoration or first call), "run" (only when the code runs:
the source is missing, or numba refuses the generated code) or "retired" (no longer reported; never reused).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import codes
from ..codes import Code


@dataclass(frozen=True)
class Entry:
    code: Code  # with its severity and title (diffprog/codes.py, where the stages take it from)
    explanation: str
    fix: str
    example: str = ""  # a complete module showing the problem (may define main() to trigger it at run time)
    fixed: str = ""  # the same module with the fix applied
    checked_by: str = "check"  # "check": found statically too; "run": only when the code runs; "retired"

    @property
    def severity(self) -> str:
        return self.code.severity

    @property
    def title(self) -> str:
        return self.code.title


_HEADER = "import diffprog as dp\n\n\n"


def _main(name: str, args: str) -> str:
    """The call that makes the decorator's engine report the problem (for examples found at first call)."""
    return f"\n\ndef main():\n    return dp.grad({name})({args})\n"

ENTRIES = [
    Entry(
        codes.UNPARSABLE_FILE,
        "The checker reads files as Python source without running them. A file that is not valid Python (or cannot "
        "be read or decoded) cannot be checked at all, so it is reported at the place of the syntax error and the "
        "checker exits with status 2.",
        "Fix the syntax error; `python -m py_compile FILE` shows the same message.",
        "def f(x)\n    return x * x\n",
        "def f(x):\n    return x * x\n",
    ),
    Entry(
        codes.INTERNAL_ERROR,
        "diffprog itself failed while checking one function. The other functions are still checked; the run exits "
        "with status 2 because this function could not be vouched for.",
        "Report the function and the message (with the `raised at` note) as a bug. Meanwhile, suppress it on the "
        "function's `def` line with `# diffprog: ignore[DP002]`.",
    ),
    Entry(
        codes.UNSUPPORTED,
        "diffprog differentiates a subset of Python: numbers, numpy arrays and tuples, assignments, if/else, "
        "for-range and while loops, and calls to functions it can read. try/except, with, generators, async code, "
        "classes or imports inside the function, del, star-arguments, lambdas, comprehensions, f-strings, lists "
        "and dicts fall outside it. The message names the construct.",
        "Rewrite the construct with plain assignments, if/else and loops, or move it out of the differentiated "
        "function (check inputs and handle errors before calling it).",
        _HEADER + "@dp.differentiable\ndef safe_inverse(x):\n    try:\n        return 1.0 / x\n"
        "    except ZeroDivisionError:\n        return 0.0\n" + _main("safe_inverse", "2.0"),
        _HEADER + "@dp.differentiable\ndef safe_inverse(x):\n    if x == 0.0:\n        return 0.0\n"
        "    return 1.0 / x\n" + _main("safe_inverse", "2.0"),
    ),
    Entry(
        codes.NO_RULE,
        "An active value (one the result depends on differentiably) is passed to a function diffprog cannot read "
        "— a C builtin, a compiled extension, a third-party function outside the checked project — and for which "
        "no derivative rule is registered. Inactive arguments are fine: such calls run as they are.",
        "Register a derivative for the function with `@diffprog.derivative(of=...)`, or wrap the argument in "
        "`diffprog.no_derivative(...)` if no derivative should flow through the call.",
        "import math\n\n" + _HEADER + "@dp.differentiable\ndef f(x):\n    return math.lgamma(x) * x\n\n\n"
        "def main():\n    return dp.grad(f)(1.5)\n",
        "import math\n\n" + _HEADER + "@dp.differentiable\ndef f(x):\n"
        "    return math.lgamma(dp.no_derivative(x)) * x\n\n\ndef main():\n    return dp.grad(f)(1.5)\n",
    ),
    Entry(
        codes.UNRESOLVED,
        "diffprog inlines every call, so it must know which function is called from the source alone. Calling a "
        "parameter, a variable bound to different functions on different paths, or a value computed when the "
        "module runs cannot be resolved.",
        "Call each function by its own name (choose between them with if/else), defined with `def` at module "
        "level or nested in the differentiated function.",
        _HEADER + "def square(t):\n    return t * t\n\n\ndef cube(t):\n    return t * t * t\n\n\n"
        "@dp.differentiable\ndef f(x):\n    h = square\n    if x > 0.0:\n        h = cube\n    return h(x)\n\n\n"
        "def main():\n    return dp.grad(f)(2.0)\n",
        _HEADER + "def square(t):\n    return t * t\n\n\ndef cube(t):\n    return t * t * t\n\n\n"
        "@dp.differentiable\ndef f(x):\n    if x > 0.0:\n        return cube(x)\n    return square(x)\n\n\n"
        "def main():\n    return dp.grad(f)(2.0)\n",
    ),
    Entry(
        codes.SIDE_EFFECT,
        "Writes to global variables (`global`), to variables of an enclosing function (`nonlocal`) or to "
        "attributes of objects passed in would have to be undone and differentiated through state diffprog does "
        "not track.",
        "Return the new value instead of storing it, and do the bookkeeping outside the differentiated function.",
        _HEADER + "total = 0.0\n\n\n@dp.differentiable\ndef f(x):\n    global total\n    total = total + x\n"
        "    return x * x\n" + _main("f", "2.0"),
        _HEADER + "@dp.differentiable\ndef f(x):\n    return x * x\n" + _main("f", "2.0"),
    ),
    Entry(
        codes.NO_TANGENT,
        "Derivatives flow through numbers and numpy float arrays. An active value inside an instance of an "
        "unregistered class, a string, a dict or a set has no tangent, so diffprog cannot carry its derivative.",
        "Pass the numbers themselves (or a numpy array) instead of the object; a class can be made differentiable "
        "with `@diffprog.differentiable_type`.",
        _HEADER + "class Point:\n    def __init__(self, x):\n        self.x = x\n\n\n@dp.differentiable\n"
        "def f(x):\n    p = Point(x)\n    return p.x * 2.0\n\n\ndef main():\n    return dp.grad(f)(1.0)\n",
        _HEADER + "@dp.differentiable\ndef f(x):\n    px = x\n    return px * 2.0\n\n\n"
        "def main():\n    return dp.grad(f)(1.0)\n",
    ),
    Entry(
        codes.NOT_DIFFERENTIABLE,
        "Only floats and float arrays have derivatives. Statically, the parameter's annotation (`n: int`) together "
        "with the `argnums` of the grad/value_and_grad/vjp calls in the checked files tells which arguments are "
        "differentiated; at run time, the actual argument types do (an int literal `2` instead of `2.0` is the "
        "usual cause).",
        "Differentiate with respect to other arguments (`argnums`), or pass a float (`2.0`).",
        _HEADER + "@dp.differentiable\ndef power(x: float, n: int):\n    y = 1.0\n    for i in range(n):\n"
        "        y = y * x\n    return y\n\n\ndef main():\n    return dp.grad(power, argnums=1)(2.0, 3)\n",
        _HEADER + "@dp.differentiable\ndef power(x: float, n: int):\n    y = 1.0\n    for i in range(n):\n"
        "        y = y * x\n    return y\n\n\ndef main():\n    return dp.grad(power, argnums=0)(2.0, 3)\n",
    ),
    Entry(
        codes.WRITES_ARGUMENT,
        "Writing into an array that was passed in changes the caller's data, and the derivative would have to "
        "account for the aliasing between the argument and the result.",
        "Write into a local copy: `a = a.copy()` first, or build a new array.",
        "import numpy as np\n\n" + _HEADER + "@dp.differentiable\ndef f(a: np.ndarray, x: float):\n"
        "    a[0] = x\n    return a[0] * a[1]\n\n\ndef main():\n    return dp.grad(f, argnums=1)(np.ones(2), 3.0)\n",
        "import numpy as np\n\n" + _HEADER + "@dp.differentiable\ndef f(a: np.ndarray, x: float):\n"
        "    return x * a[1]\n\n\ndef main():\n    return dp.grad(f, argnums=1)(np.ones(2), 3.0)\n",
    ),
    Entry(
        codes.MISSING_RETURN,
        "Every path through a differentiated function (and through every function it calls) must return a "
        "value; falling off the end returns None, which has no derivative.",
        "Add a return statement at the end of every path.",
        _HEADER + "@dp.differentiable\ndef relu(x):\n    if x > 0.0:\n        return x\n" + _main("relu", "2.0"),
        _HEADER + "@dp.differentiable\ndef relu(x):\n    if x > 0.0:\n        return x\n    return 0.0\n"
        + _main("relu", "2.0"),
    ),
    Entry(
        codes.NO_SOURCE,
        "diffprog reads the source of every function it differentiates or inlines. Functions made with exec or "
        "eval, typed into an interactive session, or compiled have none. The static checker never sees such "
        "functions (a call to one is DP102 or DP103 there); the decorator reports DP109.",
        "Define the function with `def` in a .py file, or register a derivative for it with "
        "`@diffprog.derivative(of=...)`.",
        _HEADER + "namespace = {}\nexec(\"def square(x):\\n    return x * x\\n\", namespace)\n\n\n"
        "def main():\n    return dp.grad(namespace[\"square\"])(3.0)\n",
        _HEADER + "def square(x):\n    return x * x\n\n\ndef main():\n    return dp.grad(square)(3.0)\n",
        checked_by="run",
    ),
    Entry(
        codes.RECURSION,
        "diffprog inlines every call into the differentiated function, so a function that calls itself (directly "
        "or through others) would be inlined forever.",
        "Rewrite the recursion as a loop.",
        _HEADER + "@dp.differentiable\ndef power(x, n: int):\n    if n == 0:\n        return 1.0\n"
        "    return x * power(x, n - 1)\n" + _main("power", "2.0, 3"),
        _HEADER + "@dp.differentiable\ndef power(x, n: int):\n    y = 1.0\n    for i in range(n):\n"
        "        y = y * x\n    return y\n" + _main("power", "2.0, 3"),
    ),
    Entry(
        codes.NOT_SCALAR,
        "`grad` and `value_and_grad` need a function returning one number. For a function returning several "
        "values, say how they are weighted: that is a vector-Jacobian product.",
        "Use `diffprog.vjp(f, *args)`, which returns the value and a pullback taking one cotangent per returned "
        "value.",
        _HEADER + "@dp.differentiable\ndef polar(x, y):\n    return x * y, x + y\n\n\n"
        "def main():\n    return dp.grad(polar)(1.0, 2.0)\n",
        _HEADER + "@dp.differentiable\ndef polar(x, y):\n    return x * y, x + y\n\n\n"
        "def main():\n    value, pullback = dp.vjp(polar, 1.0, 2.0)\n    return pullback((1.0, 0.0))\n",
    ),
    Entry(
        codes.WRITES_IN_DERIVATIVE,
        "Reported before reverse mode could differentiate the tapes of a generated adjoint, when `grad(grad(f))` "
        "was taken of a function with loops. Reverse mode now differentiates those tapes, so nothing reports this "
        "code any more; it stays in the catalogue so that it is never reused for something else.",
        "Nothing to fix: higher derivatives through loops work in both modes.",
        checked_by="retired",
    ),
    Entry(
        codes.DERIVATIVE_CUT,
        "An active value passes through int(), round(), math.floor/ceil/trunc, //, bool(), a comparison used as "
        "a number, or np.sign: their derivative is zero, so nothing flows back through that path (the gradient "
        "is silently zero or too small). `a % b` is not a cut: its derivative with respect to `a` is 1.",
        "If the cut is intended, say so with `diffprog.no_derivative(...)` around the value (or its argument); "
        "otherwise compute with a differentiable expression.",
        "import math\n\n" + _HEADER + "@dp.differentiable\ndef f(x):\n    return math.floor(x) * x\n"
        + _main("f", "2.5"),
        "import math\n\n" + _HEADER + "@dp.differentiable\ndef f(x):\n"
        "    return dp.no_derivative(math.floor(x)) * x\n" + _main("f", "2.5"),
    ),
    Entry(
        codes.INDEPENDENT_RESULT,
        "Nothing the function returns depends differentiably on the arguments being differentiated, so the "
        "derivative is always zero — usually the wrong `argnums`, or a value cut on the way.",
        "Check which arguments you differentiate with respect to (`argnums`).",
        _HEADER + "@dp.differentiable\ndef f(x, y):\n    return y * 2.0\n\n\n"
        "def main():\n    return dp.grad(f, argnums=0)(1.0, 2.0)\n",
        _HEADER + "@dp.differentiable\ndef f(x, y):\n    return y * 2.0\n\n\n"
        "def main():\n    return dp.grad(f, argnums=1)(1.0, 2.0)\n",
    ),
    Entry(
        codes.NUMBA_REJECTED,
        "The generated derivative code is compiled with numba in nopython mode; diffprog never falls back to "
        "slow interpreted Python. Constructs numba cannot type — calls to arbitrary Python functions, "
        "heterogeneous containers, string formatting of values — fail there. The diagnostic points at your line "
        "that the failing generated line came from. Only running the code finds these.",
        "Use numbers, numpy arrays and tuples of them on that line; move other work outside the differentiated "
        "function. `@diffprog.differentiable(jit=False)` runs the generated code without numba to debug it.",
        "import time\n\n" + _HEADER + "@dp.differentiable\ndef f(x):\n    started = time.time()\n"
        "    return x * x + started * 0.0\n\n\ndef main():\n    return dp.grad(f)(2.0)\n",
        _HEADER + "@dp.differentiable\ndef f(x):\n    return x * x\n\n\ndef main():\n    return dp.grad(f)(2.0)\n",
        checked_by="run",
    ),
]

CATALOGUE = {entry.code: entry for entry in ENTRIES}


def explain(code: str) -> str:
    """The plain-text doc section for `code` (what `diffprog explain CODE` prints)."""
    entry = CATALOGUE[code.upper()]
    parts = [f"{entry.code} ({entry.severity}): {entry.title}", "", entry.explanation, "", f"Fix: {entry.fix}"]
    if entry.example:
        parts += ["", "Example:", "", _indent(entry.example)]
    if entry.fixed:
        parts += ["Fixed:", "", _indent(entry.fixed)]
    if entry.checked_by == "run":
        parts += ["Found when the code runs (not by `diffprog check`)."]
    if entry.checked_by == "retired":
        parts += ["", "Retired: no longer reported."]
    return "\n".join(parts).rstrip() + "\n"


def _indent(text: str) -> str:
    return "".join(f"    {line}\n" if line else "\n" for line in text.splitlines())


def markdown() -> str:
    """docs/diagnostics.md."""
    lines = [
        "# diffprog diagnostics",
        "",
        "<!-- Generated from diffprog/cli/catalogue.py by `python -m diffprog.cli.docs`; do not edit by hand. -->",
        "",
        "Every problem diffprog reports has a stable code. Errors (DP1xx) mean the function cannot be "
        "differentiated; warnings (DP2xx) mean the derivative will be silently zero or cut; DP3xx come from "
        "compiling the generated code; DP0xx are about the checker itself. The same codes come from the decorator "
        "(`DifferentiabilityError`, `DifferentiabilityWarning`), from `diffprog check` and from the pre-commit "
        "hook. `diffprog explain CODE` prints a section below.",
        "",
        "| code | severity | meaning |",
        "|---|---|---|",
    ]
    lines += [f"| [{e.code}](#{e.code.lower()}) | {e.severity} | {e.title} |" for e in ENTRIES]
    for entry in ENTRIES:
        lines += ["", f"## {entry.code}", "", f"**{entry.title}** ({entry.severity})", "", entry.explanation, ""]
        if entry.checked_by == "run":
            lines += ["*Found when the code runs, not by `diffprog check`.*", ""]
        if entry.checked_by == "retired":
            lines += ["*Retired: no longer reported; the code is never reused.*", ""]
        lines += [f"**Fix:** {entry.fix}", ""]
        if entry.example:
            lines += ["Example:", "", "```python", entry.example.rstrip(), "```", ""]
        if entry.fixed:
            lines += ["Fixed:", "", "```python", entry.fixed.rstrip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n"
