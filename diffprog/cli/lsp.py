"""`diffprog lsp`: a language server publishing the checker's diagnostics where people write code.

It runs `diffprog check` on a file when the editor opens or saves it (the file on disk, with the settings of
its `pyproject.toml`, exactly as on the command line: it never imports or runs the file) and publishes:

- one LSP diagnostic per finding, with its code (`DP201`), severity, range (from the Origin's line, column, end
  line and end column, converted to the position encoding agreed with the editor) and message;
- the call chain from the differentiated function down to the problem as `relatedInformation` (each call site
  with its own location), and text-only notes appended to the message;
- code actions: the fix (as an edit where it is mechanical: wrapping a cut value in `no_derivative(...)`;
  otherwise a command that shows the fix and the code's documentation), and suppressing the code on its line
  (`# diffprog: ignore[DP201]`).

A problem found in another file (a helper the opened file calls) is published for that file, merged with what
the checks of other open files found there, and withdrawn when the file that found it is fixed or closed.

Needs pygls (`pip install 'diffprog[lsp]'`). Editor setup: docs/editors.md.
"""
from __future__ import annotations

import linecache
import re
import sys
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer
from pygls.uris import from_fs_path, to_fs_path

from .. import __version__
from ..errors import Diagnostic
from .catalogue import CATALOGUE, explain
from .config import UsageError, load_settings
from .runner import _SUPPRESSION, check_paths
from .. import codes

EXPLAIN_COMMAND = "diffprog.explain"
_SOURCE = "diffprog"


class DiffprogServer(LanguageServer):
    def __init__(self):
        super().__init__("diffprog", __version__)
        # checked file -> {file the finding is in -> [(LSP diagnostic, Diagnostic)]}
        self.found: dict = {}
        # file -> its published [(LSP diagnostic, Diagnostic)], for code actions
        self.published: dict = {}

    # ---- checking ---------------------------------------------------------------------------------------------
    def check(self, uri: str) -> None:
        path = to_fs_path(uri)
        if path is None or not path.endswith((".py", ".pyi")) or not Path(path).is_file():
            return
        linecache.checkcache()  # the checker reads excerpts and suppressions through linecache
        try:
            report = check_paths([path], load_settings([path]))
        except UsageError as error:
            self.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Error, f"diffprog: {error}"))
            return
        by_file: dict = {}
        for d in report.diagnostics:
            file = str(Path(d.origin.file).resolve()) if d.origin else str(Path(path).resolve())
            by_file.setdefault(file, []).append((self.to_lsp(d, file), d))
        key = str(Path(path).resolve())
        before = set(self.found.get(key, {}))
        self.found[key] = by_file
        self.publish(before | set(by_file) | {key})

    def forget(self, uri: str) -> None:
        path = to_fs_path(uri)
        if path is None:
            return
        key = str(Path(path).resolve())
        before = set(self.found.pop(key, {}))
        self.publish(before | {key})

    def publish(self, files) -> None:
        for file in sorted(files):
            merged, seen = [], set()
            for found in self.found.values():
                for item in found.get(file, ()):
                    diagnostic = item[0]
                    identity = (diagnostic.code, diagnostic.message, _range_key(diagnostic.range))
                    if identity not in seen:
                        seen.add(identity)
                        merged.append(item)
            self.published[file] = merged
            self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
                uri=from_fs_path(file), diagnostics=[item[0] for item in merged]))

    # ---- conversion -------------------------------------------------------------------------------------------
    def to_lsp(self, d: Diagnostic, file: str) -> lsp.Diagnostic:
        related = [lsp.DiagnosticRelatedInformation(location=self.location(site), message=text)
                   for text, site in d.call_chain()]
        message = d.message + "".join(f"\nnote: {note}" for note in d.notes)
        if d.hint:
            message += f"\nfix: {d.hint}"
        return lsp.Diagnostic(
            range=self.range(d.origin) if d.origin else lsp.Range(lsp.Position(0, 0), lsp.Position(0, 0)),
            message=message,
            severity=lsp.DiagnosticSeverity.Error if d.severity == "error" else lsp.DiagnosticSeverity.Warning,
            code=d.code,
            source=_SOURCE,
            related_information=related or None,
            data={"code": d.code, "fix": d.hint or None},
        )

    def location(self, origin) -> lsp.Location:
        return lsp.Location(uri=from_fs_path(str(Path(origin.file).resolve())), range=self.range(origin))

    def range(self, origin) -> lsp.Range:
        """Origin (1-based lines, columns in UTF-8 bytes as Python's ast counts them, end exclusive) -> LSP range
        (0-based, in the agreed position encoding). Without an end, the rest of the line."""
        start_text = _line(origin.file, origin.line)
        start = lsp.Position(max(origin.line - 1, 0), self.column(start_text, origin.col))
        if origin.end_line is not None and origin.end_col is not None:
            end_text = start_text if origin.end_line == origin.line else _line(origin.file, origin.end_line)
            end = lsp.Position(origin.end_line - 1, self.column(end_text, origin.end_col))
        else:
            end = lsp.Position(start.line, self.column(start_text, len(start_text.encode("utf-8"))))
        return lsp.Range(start, end)

    def column(self, text: str, utf8_col: int) -> int:
        prefix = text.encode("utf-8")[:max(utf8_col, 0)].decode("utf-8", errors="ignore")
        encoding = getattr(self.workspace, "position_encoding", lsp.PositionEncodingKind.Utf16)
        if encoding == lsp.PositionEncodingKind.Utf8:
            return len(prefix.encode("utf-8"))
        if encoding == lsp.PositionEncodingKind.Utf32:
            return len(prefix)
        return len(prefix.encode("utf-16-le")) // 2

    # ---- code actions -----------------------------------------------------------------------------------------
    def code_actions(self, params: lsp.CodeActionParams) -> list:
        path = to_fs_path(params.text_document.uri)
        if path is None:
            return []
        file = str(Path(path).resolve())
        published = self.published.get(file, [])
        wanted = params.context.diagnostics or [item[0] for item in published
                                                if _overlaps(item[0].range, params.range)]
        actions = []
        for asked in wanted:
            for diagnostic, d in published:
                if diagnostic.code == asked.code and _range_key(diagnostic.range) == _range_key(asked.range):
                    actions += self.actions_for(params.text_document.uri, file, diagnostic, d)
                    break
        return actions

    def actions_for(self, uri, file, diagnostic, d: Diagnostic) -> list:
        actions = []
        edit = _mechanical_fix(file, diagnostic, d)
        if edit is not None:
            title, text_edit = edit
            actions.append(lsp.CodeAction(title=title, kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                                          is_preferred=True,
                                          edit=lsp.WorkspaceEdit(changes={uri: [text_edit]})))
        elif d.hint:
            actions.append(lsp.CodeAction(
                title=f"diffprog fix: {d.hint}", kind=lsp.CodeActionKind.QuickFix, diagnostics=[diagnostic],
                command=lsp.Command(title=f"Explain {d.code}", command=EXPLAIN_COMMAND, arguments=[d.code])))
        suppress = _suppression_edit(file, diagnostic.range.start.line, d.code)
        if suppress is not None and d.code != codes.UNPARSABLE_FILE:
            actions.append(lsp.CodeAction(title=f"Suppress {d.code} on this line", kind=lsp.CodeActionKind.QuickFix,
                                          diagnostics=[diagnostic],
                                          edit=lsp.WorkspaceEdit(changes={uri: [suppress]})))
        return actions


def _line(file: str, number: int) -> str:
    return linecache.getline(file, number).rstrip("\r\n")


def _range_key(r: lsp.Range) -> tuple:
    return r.start.line, r.start.character, r.end.line, r.end.character


def _overlaps(a: lsp.Range, b: lsp.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and \
        (b.start.line, b.start.character) <= (a.end.line, a.end.character)


_ALIAS = re.compile(r"^\s*import\s+diffprog\s+as\s+(\w+)\s*$|^\s*import\s+diffprog\s*$|"
                    r"^\s*from\s+diffprog\s+import\s+.*\bno_derivative\b(?:\s+as\s+(\w+))?", re.M)


def _no_derivative_name(file: str) -> str | None:
    """How the file can name diffprog.no_derivative, from its imports (None: not imported)."""
    text = "".join(linecache.getlines(file))
    for match in _ALIAS.finditer(text):
        if match.group(0).lstrip().startswith("from"):
            return match.group(2) or "no_derivative"
        return f"{match.group(1) or 'diffprog'}.no_derivative"
    return None


def _mechanical_fix(file, diagnostic, d: Diagnostic):
    """(title, TextEdit) for fixes that are an edit: a cut value (DP201) wrapped in no_derivative(...)."""
    if d.code != codes.DERIVATIVE_CUT or "no_derivative" not in (d.hint or "") or d.origin is None or \
            d.origin.end_line != d.origin.line or d.origin.end_col is None:
        return None
    name = _no_derivative_name(file)
    if name is None:
        return None
    text = _line(file, d.origin.line).encode("utf-8")
    expression = text[d.origin.col:d.origin.end_col].decode("utf-8", errors="replace")
    return (f"Wrap in {name}(...) (the cut is intended)",
            lsp.TextEdit(range=diagnostic.range, new_text=f"{name}({expression})"))


def _suppression_edit(file, line0: int, code: str):
    """A TextEdit adding `code` to the line's `# diffprog: ignore[...]` comment, or appending one."""
    text = _line(file, line0 + 1)
    match = _SUPPRESSION.search(text)
    if match is not None:
        if match.group(1) is None:
            return None  # already suppresses every code
        codes = [c.strip() for c in match.group(1).split(",") if c.strip()] + [code]
        start, end = len(text[:match.start()].encode("utf-16-le")) // 2, len(text[:match.end()].encode("utf-16-le")) // 2
        return lsp.TextEdit(range=lsp.Range(lsp.Position(line0, start), lsp.Position(line0, end)),
                            new_text=f"# diffprog: ignore[{', '.join(codes)}]")
    end = len(text.encode("utf-16-le")) // 2
    return lsp.TextEdit(range=lsp.Range(lsp.Position(line0, end), lsp.Position(line0, end)),
                        new_text=f"  # diffprog: ignore[{code}]")


def make_server() -> DiffprogServer:
    server = DiffprogServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DiffprogServer, params: lsp.DidOpenTextDocumentParams):
        ls.check(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE, lsp.SaveOptions(include_text=False))
    def did_save(ls: DiffprogServer, params: lsp.DidSaveTextDocumentParams):
        ls.check(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: DiffprogServer, params: lsp.DidCloseTextDocumentParams):
        ls.forget(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_CODE_ACTION,
                    lsp.CodeActionOptions(code_action_kinds=[lsp.CodeActionKind.QuickFix]))
    def code_action(ls: DiffprogServer, params: lsp.CodeActionParams):
        return ls.code_actions(params)

    @server.command(EXPLAIN_COMMAND)
    def explain_command(ls: DiffprogServer, *args):
        flat = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        code = str(flat[0]) if flat else ""
        if code in CATALOGUE:
            ls.window_show_message(lsp.ShowMessageParams(lsp.MessageType.Info, explain(code)))
        return None

    return server


def serve() -> int:
    """Runs the server over stdin/stdout until the editor says exit."""
    make_server().start_io()
    return 0


__all__ = ["DiffprogServer", "make_server", "serve"]
