"""How fast is `diffprog check`? Runs it over the Python standard library with every function treated as
decorated (`--all-functions`), and reports lines per second and the internal crashes (DP002), which must be zero.

    python benchmarks/checker_speed.py [PATH ...] [--json FILE]

Without PATH, the standard library of the running Python (without site-packages). The checker runs in this
process exactly as `diffprog check --all-functions` does (same `check_paths`), timed around it; parse failures
(DP001: the stdlib's test suite ships deliberately broken files) are counted, not treated as crashes.
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import sysconfig
import time

from diffprog.cli.runner import check_paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[sysconfig.get_paths()["stdlib"]])
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--show-crashes", type=int, default=20, help="how many DP002 messages to print")
    args = parser.parse_args(argv)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    started = time.perf_counter()
    report = check_paths(args.paths, all_functions=True)
    seconds = time.perf_counter() - started
    codes = collections.Counter(d.code for d in report.diagnostics)
    figures = {
        "paths": args.paths,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "files": report.files,
        "lines": report.lines,
        "functions": report.functions,
        "seconds": round(seconds, 2),
        "lines_per_second": round(report.lines / seconds),
        "functions_per_second": round(report.functions / seconds),
        "diagnostics": dict(sorted(codes.items())),
        "internal_crashes": codes.get("DP002", 0),
        "unparsable_files": codes.get("DP001", 0),
    }
    for d in report.internal_errors[:args.show_crashes]:
        print(f"crash: {d.origin}: {d.message} ({'; '.join(d.notes)})", file=sys.stderr)
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=2)
    return 1 if figures["internal_crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
