"""Quick fixes and formatting.

Quick fixes, for the findings the editor shows: each "did you mean X?" of a hint replaces
the finding's text with X; a keyword used as a name is put in backquotes; a warning or
info finding that comments can suppress gets `# policy: ignore[CODE]` at the end of its
line (or its code added to the comment already there). Formatting is `policy fmt`'s
formatter, on the whole document or on the statements a range touches."""

from __future__ import annotations

import re
from typing import Any

from lsprotocol import types as T

from ..checking.loader import parse_source
from ..checking.suppress import unsuppressible
from ..diagnostics import ERROR
from ..syntax import ast as A
from ..syntax.format import format_file
from .positions import Text

_DID_YOU_MEAN = re.compile(r"did you mean [`']([^`'\n]+)[`']\?")
_KEYWORD_AS_NAME = re.compile(r"`([^`]+)` is a keyword and cannot be used as a name")
_IGNORE = re.compile(r"#\s*policy\s*:\s*ignore\s*\[[^\]]*")
_QUOTES = "'\""


def _hint(d: T.Diagnostic) -> str:
    data: Any = d.data
    if isinstance(data, dict) and isinstance(data.get("hint"), str):
        return str(data["hint"])
    return d.message.partition("\n")[2]


def _edit(uri: str, title: str, rng: T.Range, new: str, d: T.Diagnostic, preferred: bool = False) -> T.CodeAction:
    return T.CodeAction(title, kind=T.CodeActionKind.QuickFix, diagnostics=[d], is_preferred=preferred,
                        edit=T.WorkspaceEdit(changes={uri: [T.TextEdit(rng, new)]}))


def code_actions(uri: str, text: Text, file: A.File | None, diagnostics: list[T.Diagnostic]) -> list[T.CodeAction]:
    """The quick fixes for ``diagnostics`` (those of the request's range) of a document."""
    out: list[T.CodeAction] = []
    for d in diagnostics:
        if d.source not in (None, "policy"):
            continue
        out += _did_you_mean(uri, text, d)
        m = _KEYWORD_AS_NAME.search(d.message)
        if m:
            out.append(_edit(uri, f"Write `{m[1]}` in backquotes", d.range, f"`{m[1]}`", d, True))
        out += _suppress(uri, text, file, d)
    return out


def _did_you_mean(uri: str, text: Text, d: T.Diagnostic) -> list[T.CodeAction]:
    out: list[T.CodeAction] = []
    for guess in dict.fromkeys(m[1] for m in _DID_YOU_MEAN.finditer(_hint(d))):
        start, end = text.offset(d.range.start), text.offset(d.range.end)
        old = text.text[start:end]
        new = guess
        if old and old[0] in _QUOTES and guess[:1] not in _QUOTES:  # (an empty range: the word deleted)
            new = old[0] + guess + old[0]
        out.append(_edit(uri, f"Change to {new}", d.range, new, d, preferred=len(out) == 0))
    return out


def _suppress(uri: str, text: Text, file: A.File | None, d: T.Diagnostic) -> list[T.CodeAction]:
    code = d.code if isinstance(d.code, str) else None
    if code is None or unsuppressible(code) or d.severity == T.DiagnosticSeverity.Error:
        return []
    line = d.range.start.line
    content = text.line(line)
    for c in file.comments if file is not None else ():
        if c.span is None or c.span.line != line + 1:
            continue
        m = _IGNORE.search(c.text)
        if m is not None and c.span is not None:
            at = text.position(line, c.span.column - 1 + m.end())
            return [_edit(uri, f"Suppress {code} on this statement", T.Range(at, at), f", {code}", d)]
    end = text.position(line, len(content.rstrip()))
    return [_edit(uri, f"Suppress {code} on this statement (# policy: ignore[{code}])",
                  T.Range(end, text.position(line, len(content))), f"  # policy: ignore[{code}]", d)]


# ---------------------------------------------------------------- formatting


def format_document(name: str, text: Text) -> list[T.TextEdit] | None:
    """The edit that formats the whole document; None when it has syntax errors, [] when
    it is formatted already."""
    file, diags = parse_source(name, text.text)
    if any(d.severity == ERROR for d in diags):
        return None
    formatted = format_file(file)
    if formatted == text.text:
        return []
    return [T.TextEdit(T.Range(T.Position(0, 0), text.at_offset(len(text.text))), formatted)]


def format_range(name: str, text: Text, rng: T.Range) -> list[T.TextEdit] | None:
    """The edit that formats the statements the range touches (whole lines, their
    comments kept); None when the document has syntax errors."""
    file, diags = parse_source(name, text.text)
    if any(d.severity == ERROR for d in diags):
        return None
    first, last = rng.start.line + 1, rng.end.line + 1
    touched = [s.span for s in (file.header, *file.statements)
               if s is not None and s.span is not None and s.span.line <= last and s.span.end_line >= first]
    if not touched:
        return []
    start = text.starts[touched[0].line - 1]
    end_line = touched[-1].end_line
    end = text.starts[end_line] if end_line < len(text.starts) else len(text.text)
    piece = text.text[start:end]
    part, part_diags = parse_source(name, piece)
    if any(d.severity == ERROR for d in part_diags):
        return None
    formatted = format_file(part)
    if not piece.endswith("\n"):
        formatted = formatted.rstrip("\n")
    if formatted == piece:
        return []
    return [T.TextEdit(T.Range(text.at_offset(start), text.at_offset(end)), formatted)]
