"""Names for the helpers in backend/runtime/ that rules and generated code call.

Rules refer to them as `rt.NAME(...)`; the markers below stand for the helpers so that the rules stage never
imports the backend (nor numba, which the command line checker must not load).
"""
from types import SimpleNamespace

RUNTIME_MODULE = "diffprog.backend.runtime"
TAPES_MODULE = "diffprog.backend.tapes"


class RuntimeHelper:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<runtime helper {self.name}>"


# Helpers that rule templates call by name (the others are referenced by primitives' templates directly).
rt = SimpleNamespace(**{name: RuntimeHelper(name) for name in ("cholesky_vjp", "cholesky_jvp", "prod_others",
                                                                  "unbroadcast", "sum_leading", "as_float64",
                                                                  "scatter_add")})


# What `revolve_next` asks the adjoint of a checkpointed loop to do next (transforms/reverse/checkpoint.py carries it out).
REVOLVE_ACTIONS = {"done": 0, "advance": 1, "takeshot": 2, "restore": 3, "youturn": 4}


def runtime_import(name, module=RUNTIME_MODULE) -> tuple:
    return (f"{module}:{name}",)
