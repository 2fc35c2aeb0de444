"""Feedback during long compilations, on stderr, on by default.

A compilation (one specialization: lowering, analysis, transformation, code generation and numba) that takes more
than THRESHOLD seconds says so when it passes the threshold and when it ends, with its time:

    diffprog: compiling the gradient of loss (model.py:15) ...
    diffprog: compiled the gradient of loss (model.py:15) in 12.3 s

In a terminal (stderr is a TTY) the first line is a live indicator (its elapsed seconds rewritten in place with
`\\r`) that the closing line replaces; in a Jupyter notebook, a single output line updated in place (an
IPython display handle). Only the outermost compilation reports: the derivatives and callees it compiles are part
of it. Quick compilations print nothing.

`DIFFPROG_PROGRESS=0` (or `diffprog.set_progress(False)`) silences it. `DIFFPROG_VERBOSE=1` lowers the threshold
to VERBOSE_THRESHOLD and adds the detail: the mode, the differentiated arguments, and in the closing line the time
of each pass of the pipeline (compiler/pipeline.py) that took a measurable part of it.
"""
from __future__ import annotations

import functools
import os
import sys
import threading
import time

THRESHOLD = 2.0  # seconds: a compilation longer than this reports
VERBOSE_THRESHOLD = 1.0  # the threshold with DIFFPROG_VERBOSE=1 (the lower of the two)
TICK = 0.5  # seconds between updates of a live indicator

_OFF = ("0", "false", "no", "off")
_setting: bool | None = None  # set_progress(): overrides DIFFPROG_PROGRESS


def verbose() -> bool:
    return os.environ.get("DIFFPROG_VERBOSE", "").strip().lower() not in ("",) + _OFF




def set_progress(on: bool | None = True) -> None:
    """Turns the report of long compilations on stderr on or off for this process (it is on by default;
    `DIFFPROG_PROGRESS=0` turns it off from the environment). `None` goes back to the environment's setting.
    `DIFFPROG_VERBOSE=1` reports (in more detail) either way.

    A compilation that takes more than about 2 seconds says so on stderr while it runs and when it ends (in a
    terminal or a notebook, as one line updated in place):

        diffprog: compiling the gradient of loss (model.py:15) ...
        diffprog: compiled the gradient of loss (model.py:15) in 12.3 s

    Example:
        ```python
        dp.set_progress(False)   # silent from now on, like DIFFPROG_PROGRESS=0
        dp.set_progress(None)    # back to the environment's setting (on unless DIFFPROG_PROGRESS=0)
        ```
    """
    global _setting
    _setting = None if on is None else bool(on)


def active() -> bool:
    """Whether long compilations report: DIFFPROG_VERBOSE, else set_progress(), else DIFFPROG_PROGRESS."""
    if verbose():
        return True
    if _setting is not None:
        return _setting
    return os.environ.get("DIFFPROG_PROGRESS", "").strip().lower() not in _OFF


def _threshold() -> float:
    return min(THRESHOLD, VERBOSE_THRESHOLD) if verbose() else THRESHOLD


# ---- what is compiled, in the user's words ---------------------------------------------------------------------
_MODES = {"reverse": "the gradient of ", "forward": "the tangent code of ",
          "forward_batched": "the batched tangent code of ", "primal": ""}
_DERIVED = {"DerivativeCompiler": "the gradient of ", "TangentCompiler": "the tangent map of "}


def _label(compiler, mode, wrt, detail=False) -> str:
    """`the gradient of loss (model.py:15)`; with `detail` (DIFFPROG_VERBOSE), the mode and the differentiated
    arguments too: `the gradient of loss (model.py:15, reverse mode, wrt (0,))`."""
    parsed = compiler.parsed
    what = _MODES.get(mode, f"the {mode} code of ") + _DERIVED.get(type(compiler).__name__, "")
    if not what:
        what = "the primal of "
    where = f"{os.path.basename(parsed.file)}:{parsed.node.lineno + parsed.line_offset}"
    if detail:
        where += f", {mode} mode" + (f", wrt {tuple(wrt)}" if wrt else "")
    return f"{what}{parsed.name} ({where})"


# ---- where it is shown -------------------------------------------------------------------------------------------
def _write(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except (OSError, ValueError, AttributeError):  # stderr closed or missing: progress is best effort
        pass


def _notebook_display():
    """IPython's `display` when running in a Jupyter kernel (IPython already imported, with a kernel), else None.
    Never imports IPython itself."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
        if shell is None or getattr(shell, "kernel", None) is None:
            return None
        from IPython.display import display
        return display
    except Exception:  # an IPython without these: plain lines
        return None


def _style() -> str:
    """"notebook" (a display handle updated in place), "tty" (a line rewritten with \\r) or "lines"."""
    if _notebook_display() is not None:
        return "notebook"
    try:
        if sys.stderr.isatty():
            return "tty"
    except (AttributeError, OSError, ValueError):
        pass
    return "lines"


class _Report:
    """The report of one compilation: nothing until `threshold` seconds have passed, then a line that (in a
    terminal or a notebook) shows the elapsed seconds live, and a closing line from `finish`."""

    def __init__(self, label: str, threshold: float):
        self.label = label
        self.threshold = threshold
        self.start = time.perf_counter()
        self.style = _style()
        self.shown = False  # the opening line is out
        self._width = 0  # tty: the length of the live line, to blank it
        self._handle = None  # notebook: the display handle
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="diffprog-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        if self._done.wait(self.threshold):
            return
        self._show(f"diffprog: compiling {self.label} ...")
        if self.style == "lines":
            return
        last = ""
        while not self._done.wait(TICK):
            text = f"diffprog: compiling {self.label} ... {time.perf_counter() - self.start:.0f} s"
            if text != last:  # a new second
                self._show(text)
                last = text

    def _show(self, text: str) -> None:
        with self._lock:
            if self._done.is_set() and self.shown:
                return
            if self.style == "tty":
                _write("\r" + text.ljust(self._width))
                self._width = max(self._width, len(text))
            elif self.style == "notebook" and self._notebook(text):
                pass
            elif not self.shown:
                _write(text + "\n")
            self.shown = True

    def _notebook(self, text: str) -> bool:
        """Shows (or updates) the notebook's progress line; False where that is not possible."""
        try:
            if self._handle is None:
                display = _notebook_display()
                self._handle = display({"text/plain": text}, raw=True, display_id=True)
            else:
                self._handle.update({"text/plain": text}, raw=True)
            return self._handle is not None
        except Exception:
            self.style = "lines"
            return False

    def finish(self, text: str, after: str = "") -> None:
        """Ends the report: `text`, the time and `after` replace the live line, or follow the opening line, if
        the compilation took longer than the threshold."""
        self._done.set()
        self._thread.join()
        elapsed = time.perf_counter() - self.start
        if not self.shown and elapsed < self.threshold:
            return
        line = f"diffprog: {text}{elapsed:.1f} s{after}"
        with self._lock:
            if self.style == "tty" and self.shown:
                _write("\r" + line.ljust(self._width) + "\n")
            elif self.style == "notebook" and self._handle is not None:
                try:
                    self._handle.update({"text/plain": line}, raw=True)
                except Exception:
                    _write(line + "\n")
            else:
                _write(line + "\n")


# ---- pass times ----------------------------------------------------------------------------------------------------
_current = threading.local()  # the pass times of the compilation being reported on this thread


def record(pass_name: str, seconds: float) -> None:
    """Adds a pass's time to the compilation being reported (passes of derived code it compiles included)."""
    times = getattr(_current, "times", None)
    if times is not None:
        times[pass_name] = times.get(pass_name, 0.0) + seconds


def _breakdown(times: dict, total: float) -> str:
    shown = [f"{name} {seconds:.2f} s" for name, seconds in times.items() if seconds >= 0.01 * total]
    return f" ({', '.join(shown)})" if shown else ""


def reported(specialize):
    """Wraps FunctionCompiler.specialize: a compilation longer than the threshold reports its progress on stderr
    (when it passes the threshold, and when it ends), unless it runs inside one that does (one report for a
    derivative and all it compiles), or progress is off."""

    @functools.wraps(specialize)
    def wrapper(compiler, mode, wrt, args, *rest, **options):
        if getattr(_current, "times", None) is not None or not active():  # inside a reported compilation, or off
            return specialize(compiler, mode, wrt, args, *rest, **options)
        detail = verbose()
        label = _label(compiler, mode, wrt, detail)
        report = _Report(label, _threshold())
        _current.times = {}
        try:
            result = specialize(compiler, mode, wrt, args, *rest, **options)
        except BaseException:
            report.finish(f"compiling {label} failed after ")
            raise
        finally:
            times, _current.times = _current.times, None
        breakdown = _breakdown(times, time.perf_counter() - report.start) if detail else ""
        report.finish(f"compiled {label} in ", breakdown)
        return result

    return wrapper
