"""`diffprog` on the command line: `diffprog check [PATH...]` (default: the current directory), `diffprog explain CODE`, `diffprog lsp` (a language
server publishing the checker's diagnostics) and `diffprog show FILE::FUNCTION` (the generated code).

The checker runs the compiler's own stages on source it reads without importing or running it (see
`static.py`), so it is safe as a pre-commit hook. It never imports numba.
"""
from __future__ import annotations

import argparse
import sys

from ..version import __version__
from .config import UsageError, check_codes, load_settings

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="diffprog", description="Static differentiability checker for diffprog.")
    parser.add_argument("--version", action="version", version=f"diffprog {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    check = commands.add_parser("check", help="check the differentiated functions in files or directories",
                                description="Check every function decorated with @diffprog.differentiable (or "
                                "passed to grad/value_and_grad/vjp) without importing or running the code.")
    check.add_argument("paths", nargs="*", default=["."], metavar="PATH",
                       help="files or directories (default: the current directory)")
    check.add_argument("--format", choices=("text", "json", "sarif"), default="text",
                       help="output format (default: text)")
    check.add_argument("--select", metavar="CODES", help="comma-separated codes or prefixes to report (DP1,DP201)")
    check.add_argument("--ignore", metavar="CODES", help="comma-separated codes or prefixes not to report")
    check.add_argument("--warnings-as-errors", action="store_true", default=None,
                       help="exit with status 1 when there are warnings")
    check.add_argument("--all-functions", action="store_true",
                       help="treat every function as decorated (used to benchmark the checker)")
    check.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    explain = commands.add_parser("explain", help="print the documentation of a diagnostic code")
    explain.add_argument("code", nargs="?", help="a code such as DP201")
    explain.add_argument("--list", action="store_true", help="list every code")
    commands.add_parser("lsp", help="run the language server (LSP over stdin/stdout) for editors",
                        description="A language server publishing `diffprog check` diagnostics on open and save "
                        "(needs pygls: pip install 'diffprog[lsp]'). See docs/editors.md.")
    show = commands.add_parser("show", help="print the code diffprog generates for a function",
                               description="Print the generated code for FUNCTION in FILE. Unlike `check`, this "
                               "imports (runs) FILE, as the decorator would.")
    show.add_argument("target", metavar="FILE::FUNCTION", help="a Python file and a function in it (Class.method "
                      "for a method)")
    show.add_argument("--mode", choices=("reverse", "forward", "primal"), default="reverse",
                      help="reverse (the adjoint, default), forward (the tangent code) or primal")
    show.add_argument("--args", metavar="EXPR", help="example arguments whose types the code is specialized for, "
                      "as Python (numpy is `np`): --args \"1.0, np.ones(3)\" (default: a float per parameter)")
    show.add_argument("--argnums", metavar="N[,N...]", help="differentiated parameters (default 0)")
    show.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                      help="syntax highlighting (auto: when stdout is a terminal and pygments is installed)")
    return parser


def main(argv=None) -> int:
    """Entry point of the `diffprog` console script; returns the exit status."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse prints its own usage message
        return EXIT_USAGE if stop.code else EXIT_OK
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "explain":
            return _explain(args)
        if args.command == "lsp":
            return _lsp()
        if args.command == "show":
            from .show import show

            return show(args)
    except UsageError as error:
        print(f"diffprog: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    parser.print_help(sys.stderr)
    return EXIT_USAGE


def _check(args) -> int:
    from .output import FORMATS
    from .runner import check_paths

    settings = load_settings(args.paths)
    if args.select is not None:
        settings.select = check_codes(args.select, "--select")
    if args.ignore is not None:
        settings.ignore = check_codes(args.ignore, "--ignore")
    if args.warnings_as_errors is not None:
        settings.warnings_as_errors = True
    report = check_paths(args.paths, settings, all_functions=args.all_functions)
    text = FORMATS[args.format](report)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return report.exit_code(settings.warnings_as_errors)


def _lsp() -> int:
    try:
        from .lsp import serve
    except ImportError as error:
        raise UsageError(f"`diffprog lsp` needs pygls ({error}): pip install 'diffprog[lsp]'") from None
    return serve()


def _explain(args) -> int:
    from .catalogue import CATALOGUE, ENTRIES, explain

    if args.list or not args.code:
        for entry in ENTRIES:
            print(f"{entry.code}  {entry.severity:<7}  {entry.title}")
        return EXIT_OK
    code = args.code.strip().upper()
    if code not in CATALOGUE:
        raise UsageError(f"unknown diagnostic code {args.code!r} (see `diffprog explain --list`)")
    sys.stdout.write(explain(code))
    return EXIT_OK
