"""Regenerates docs/diagnostics.md from the catalogue: `python -m diffprog.cli.docs [--check]`.

`--check` exits with status 1 when the committed file is out of date (the test suite runs the same comparison).
"""
from __future__ import annotations

import sys
from pathlib import Path

from .catalogue import markdown

DOCS_FILE = Path(__file__).resolve().parents[2] / "docs" / "diagnostics.md"


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = markdown()
    if "--check" in argv:
        current = DOCS_FILE.read_text(encoding="utf-8") if DOCS_FILE.is_file() else ""
        if current != text:
            print(f"{DOCS_FILE} is out of date: run python -m diffprog.cli.docs", file=sys.stderr)
            return 1
        return 0
    DOCS_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {DOCS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
