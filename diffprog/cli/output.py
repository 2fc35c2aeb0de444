"""Printing a report: text for people, JSON for scripts, SARIF 2.1.0 for code-scanning services.

Columns are 1-based in every format; end columns are exclusive (the column just after the underlined text),
as in SARIF.
"""
from __future__ import annotations

import json
import linecache
from pathlib import Path

from .. import __version__
from .catalogue import CATALOGUE, ENTRIES
from .runner import Report, display_path

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _location(origin) -> dict:
    """path/line/column/end_line/end_column of an Origin (1-based columns, end exclusive)."""
    end_line = origin.end_line or origin.line
    end_col = origin.end_col if origin.end_col is not None else None
    return {
        "path": display_path(origin.file),
        "line": origin.line,
        "column": origin.col + 1,
        "end_line": end_line,
        "end_column": end_col + 1 if end_col is not None else None,
    }


def notes_of(d) -> list:
    """Explicit notes (text only), then the call chain (each with its own location)."""
    notes = [{"message": str(n), "path": None, "line": None, "column": None, "end_line": None, "end_column": None}
             for n in d.notes]
    notes += [{"message": text, **_location(site)} for text, site in d.call_chain()]
    return notes


def as_json_objects(report: Report) -> list:
    objects = []
    for d in report.diagnostics:
        where = _location(d.origin) if d.origin else dict.fromkeys(("path", "line", "column", "end_line",
                                                                    "end_column"))
        objects.append({**where, "code": d.code, "severity": d.severity, "message": d.message,
                        "notes": notes_of(d), "fix": d.hint or None})
    return objects


def render_json(report: Report) -> str:
    return json.dumps(as_json_objects(report), indent=2) + "\n"


# ---- text ---------------------------------------------------------------------------------------------------
def render_text(report: Report) -> str:
    blocks = [_text_block(d) for d in report.diagnostics]
    return "".join(block + "\n" for block in blocks) + summary(report) + "\n"


def _text_block(d) -> str:
    if d.origin is None:
        return f"<unknown>: {d.code} {d.severity}: {d.message}\n"
    o = d.origin
    lines = [f"{display_path(o.file)}:{o.line}:{o.col + 1}: {d.code} {d.severity}: {d.message}"]
    lines += _excerpt(o)
    for note in d.notes:
        lines.append(f"  note: {note}")
    for text, site in d.call_chain():
        lines.append(f"  note: {display_path(site.file)}:{site.line}:{site.col + 1}: {text}")
        lines += _excerpt(site, indent="        ")
    if d.hint:
        lines.append(f"  fix: {d.hint}")
    return "\n".join(lines) + "\n"


def _excerpt(origin, indent="") -> list:
    """The source line with the reported range underlined (to the end of the line for multi-line ranges)."""
    text = origin.text or linecache.getline(origin.file, origin.line).rstrip("\n")
    if not text.strip():
        return []
    text = text.expandtabs(1)
    start = min(origin.col, len(text))
    if origin.end_line == origin.line and origin.end_col is not None:
        end = max(origin.end_col, start + 1)
    else:
        end = len(text.rstrip()) if len(text.rstrip()) > start else start + 1
    gutter = f"{origin.line:>5} | "
    return [f"{indent}{gutter}{text}", f"{indent}{' ' * (len(gutter) - 2)}| {' ' * start}{'^' * (end - start)}"]


def summary(report: Report) -> str:
    errors, warnings = len(report.errors), len(report.warnings)
    found = (f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning{'s' if warnings != 1 else ''}"
             if report.diagnostics else "no problems")
    extra = f" ({report.suppressed} suppressed)" if report.suppressed else ""
    return (f"diffprog check: {found}{extra} in {report.functions} differentiated "
            f"function{'s' if report.functions != 1 else ''}, {report.files} file{'s' if report.files != 1 else ''}")


# ---- SARIF --------------------------------------------------------------------------------------------------
def _rules() -> list:
    return [{
        "id": e.code,
        "name": "".join(w.capitalize() for w in e.title.replace("/", " ").split() if w.isalnum()),
        "shortDescription": {"text": e.title},
        "fullDescription": {"text": e.explanation},
        "help": {"text": f"{e.explanation}\nFix: {e.fix}"},
        "defaultConfiguration": {"level": e.severity},
    } for e in ENTRIES]


def _sarif_location(origin, message=None) -> dict:
    where = _location(origin)
    region = {"startLine": where["line"], "startColumn": where["column"], "endLine": where["end_line"]}
    if where["end_column"] is not None:
        region["endColumn"] = where["end_column"]
    location = {"physicalLocation": {"artifactLocation": {"uri": Path(where["path"]).as_posix(),
                                                          "uriBaseId": "%SRCROOT%"},
                                     "region": region}}
    if message is not None:
        location["message"] = {"text": message}
    return location


def render_sarif(report: Report) -> str:
    index = {e.code: k for k, e in enumerate(ENTRIES)}
    results = []
    for d in report.diagnostics:
        result = {"ruleId": d.code, "ruleIndex": index.get(d.code, 0),
                  "level": "error" if d.severity == "error" else "warning",
                  "message": {"text": d.message + (f" (fix: {d.hint})" if d.hint else "")}}
        if d.origin is not None:
            result["locations"] = [_sarif_location(d.origin)]
        related = [_sarif_location(site, text) for text, site in d.call_chain()]
        if related:
            result["relatedLocations"] = [{"id": k, **loc} for k, loc in enumerate(related)]
        if d.notes:
            result["properties"] = {"notes": [str(n) for n in d.notes]}
        results.append(result)
    document = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "diffprog", "version": __version__, "rules": _rules()}},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": Path.cwd().resolve().as_uri() + "/"}},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2) + "\n"


FORMATS = {"text": render_text, "json": render_json, "sarif": render_sarif}

__all__ = ["CATALOGUE", "FORMATS", "as_json_objects", "render_json", "render_sarif", "render_text", "summary"]
