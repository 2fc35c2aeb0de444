"""Fresh, readable names for generated variables that never collide with the user's or the runtime's."""
from __future__ import annotations

import keyword
import re

# Names the generated module uses as globals; user variables with these names are renamed.
RESERVED = {"math", "np", "numba", "tape_reserve", "unbroadcast", "scatter_add", "range", "len", "float", "int", "bool", "abs", "min", "max",
            "round", "print"}


class NameAllocator:
    def __init__(self):
        self.used = set(RESERVED) | set(keyword.kwlist)
        self._counter = 0

    def reserve(self, name: str) -> None:
        self.used.add(name)

    def claim(self, wanted: str) -> str:
        """`wanted` itself when free (user variables keep their names), else `wanted_2`, `wanted_3`, ..."""
        base = _identifier(wanted)
        name, k = base, 1
        while name in self.used:
            k += 1
            name = f"{base}_{k}"
        self.used.add(name)
        return name

    def temp(self, hint: str) -> str:
        """A numbered temporary such as `sin_3`: the number orders temporaries as the code reads."""
        base = _identifier(hint)
        while True:
            self._counter += 1
            name = f"{base}_{self._counter}"
            if name not in self.used:
                self.used.add(name)
                return name


def _identifier(text: str) -> str:
    name = re.sub(r"\W", "_", text.rsplit(".", 1)[-1]) or "t"
    return name if not name[0].isdigit() else "t" + name
