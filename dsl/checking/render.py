"""Rendering of diagnostics: human text, JSON, SARIF 2.1.0 and GitHub workflow commands.

Rendering is the last step and never changes what it is given: diagnostics are printed in
the order passed in (sort them first with ``dsl.diagnostics.sort_diagnostics``).

Every renderer returns a ``str`` that ends with a newline when it is not empty, so callers
write it as it is (``click.echo(out, nl=False)``). For an empty list, ``text`` and
``github`` return ``""`` (the CLI says "no problems found" itself), ``json`` returns
``"[]\\n"`` and ``sarif`` a log with one run and no results.

Text the renderers did not write themselves (messages, file names, source lines) may hold
anything a policy file holds. In the text format every control or invisible formatting
character (Unicode categories Cc, Cf, Cs, Zl, Zp: NUL, ESC, bidi overrides, ...) is shown
as a backslash escape (``\\x00``, ``\\x1b``, ``\\u202e``) and never reaches the terminal
raw; a newline inside a message starts an indented continuation line. The GitHub format
applies the same escapes before GitHub's own percent-encoding. JSON and SARIF escape
through JSON itself.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from ..diagnostics import CODES, ERROR, INFO, WARNING, Diagnostic, docs_url
from ..span import Span

__all__ = ["FORMATS", "render", "render_text", "render_json", "render_sarif",
           "render_github", "use_color"]

FORMATS = ("text", "json", "sarif", "github")

TAB_WIDTH = 4
"""Tab stops in source excerpts (tabs are expanded so that carets line up)."""

MAX_LINE_WIDTH = 200
"""Source lines wider than this (in terminal columns) are cut around the span."""

_CONTEXT_BEFORE = 60
"""Columns kept before the span when a long line is cut."""

_ELLIPSIS = "..."  # ASCII on purpose: "…" is two columns wide on some CJK terminals.

SARIF_SCHEMA_URI = ("https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/"
                    "sarif-schema-2.1.0.json")


def render(diags: Sequence[Diagnostic], fmt: str, sources: Mapping[str, str], *,
           color: bool = False, tool_version: str = "0.1.0") -> str:
    """Render ``diags`` in ``fmt`` (one of ``FORMATS``). ``sources`` maps a ``Span.file``
    to that file's text, for excerpts and SARIF snippets; a file missing from it just gets
    none. ``color`` applies to the text format only. Raises ValueError for an unknown
    format."""
    if fmt == "text":
        return render_text(diags, sources, color=color)
    if fmt == "json":
        return render_json(diags)
    if fmt == "sarif":
        return render_sarif(diags, sources, tool_version=tool_version)
    if fmt == "github":
        return render_github(diags)
    raise ValueError(f"unknown output format {fmt!r} (expected one of {', '.join(FORMATS)})")


def use_color(stream: Any) -> bool:
    """Whether to colour output written to ``stream``: only on a terminal, and neither
    ``NO_COLOR`` is set (to any value, even empty) nor ``TERM`` is ``dumb``."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (ValueError, OSError):  # a closed or detached stream
        return False


# ------------------------------------------------------------------ escaping

_NAMED_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def _escape_char(ch: str) -> str:
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    cp = ord(ch)
    if cp <= 0xFF:
        return f"\\x{cp:02x}"
    if cp <= 0xFFFF:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def _escape(text: str, keep: str = "") -> str:
    """``text`` with every unsafe character escaped, except those in ``keep``."""
    if not any(_is_unsafe(ch) and ch not in keep for ch in text):
        return text
    return "".join(_escape_char(ch) if _is_unsafe(ch) and ch not in keep else ch
                   for ch in text)


def _char_width(ch: str) -> int:
    """Terminal columns taken by one (safe) character."""
    if unicodedata.combining(ch) or unicodedata.category(ch) in ("Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def _json_default(value: Any) -> Any:
    """JSON for the odd non-JSON value in a witness: ISO text for dates and times, sorted
    lists for sets, ``str`` for anything else (a renderer must not crash on its input)."""
    if isinstance(value, (_dt.date, _dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return str(value)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dumps(value: Any, **kwargs: Any) -> str:
    """JSON with non-ASCII kept as it is, but a lone surrogate (a file name's byte that is
    not UTF-8, as Python reads it) written as its escape: the text stays UTF-8."""
    text = json.dumps(value, ensure_ascii=False, default=_json_default, **kwargs)
    return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text)


# ------------------------------------------------------------------ source text


class _Sources:
    """Lines of the source files, split on ``\\n`` only (as the lexer counts lines)."""

    def __init__(self, sources: Mapping[str, str]):
        self._sources = sources
        self._lines: dict[str, list[str]] = {}

    def line(self, file: str, number: int) -> str | None:
        lines = self._lines.get(file)
        if lines is None:
            text = self._sources.get(file)
            if text is None:
                return None
            lines = self._lines[file] = text.split("\n")
        if not 1 <= number <= len(lines):
            return None
        return lines[number - 1]

    def snippet(self, span: Span) -> str | None:
        """The text inside ``span``, or None when the file or the position is unknown."""
        first = self.line(span.file, span.line)
        if first is None:
            return None
        start = max(span.column - 1, 0)
        if span.end_line <= span.line:
            return first[start:max(start, span.end_column - 1)] or None
        parts = [first[start:]]
        for n in range(span.line + 1, span.end_line):
            mid = self.line(span.file, n)
            if mid is None:
                return None
            parts.append(mid)
        last = self.line(span.file, span.end_line)
        if last is None:
            return None
        parts.append(last[:max(0, span.end_column - 1)])
        return "\n".join(parts) or None


def _excerpt(line: str, column: int, end_column: int | None) -> tuple[str, int, int]:
    """The display form of a source line and the caret offset and width under it.

    ``end_column`` None means the span runs on past this line. Tabs become spaces to the
    next tab stop, unsafe characters become escapes, wide characters count two columns;
    a line wider than MAX_LINE_WIDTH is cut around the span."""
    if line.endswith("\r"):
        line = line[:-1]
    pieces: list[tuple[str, int]] = []
    pos = [0]
    for ch in line:
        if ch == "\t":
            width = TAB_WIDTH - pos[-1] % TAB_WIDTH
            text = " " * width
        elif _is_unsafe(ch):
            text = _escape_char(ch)
            width = len(text)
        else:
            text, width = ch, _char_width(ch)
        pieces.append((text, width))
        pos.append(pos[-1] + width)
    first = min(max(column - 1, 0), len(pieces))
    last = len(pieces) if end_column is None else min(max(end_column - 1, first), len(pieces))
    start, end = pos[first], pos[last]
    total = pos[-1]
    if total <= MAX_LINE_WIDTH:
        return "".join(t for t, _ in pieces), start, max(1, end - start)
    lo = max(0, start - _CONTEXT_BEFORE)
    hi = min(total, lo + MAX_LINE_WIDTH)
    lo = max(0, min(lo, hi - MAX_LINE_WIDTH))
    keep = [i for i in range(len(pieces)) if pos[i] >= lo and pos[i + 1] <= hi]
    i0, i1 = keep[0], keep[-1] + 1
    lo, hi = pos[i0], pos[i1]
    prefix = _ELLIPSIS if i0 > 0 else ""
    suffix = _ELLIPSIS if i1 < len(pieces) else ""
    shown = prefix + "".join(t for t, _ in pieces[i0:i1]) + suffix
    caret_start = max(start, lo)
    caret_end = min(end, hi)
    return shown, len(prefix) + caret_start - lo, max(1, caret_end - caret_start)


# ------------------------------------------------------------------ text


_RESET = "\x1b[0m"
_SEVERITY_STYLE = {ERROR: "\x1b[1;31m", WARNING: "\x1b[1;33m", INFO: "\x1b[1;36m"}
_BOLD = "\x1b[1m"
_GUTTER = "\x1b[1;34m"


class _Paint:
    def __init__(self, color: bool):
        self.color = color

    def __call__(self, style: str, text: str) -> str:
        return f"{style}{text}{_RESET}" if self.color and text else text


def _hang(text: str, indent: int) -> str:
    """Escaped ``text``; its own newlines start continuation lines indented by ``indent``."""
    lines = text.replace("\r\n", "\n").split("\n")
    return ("\n" + " " * indent).join(_escape(line) for line in lines)


def _location(span: Span) -> str:
    return f"{_escape(span.file)}:{span.line}:{span.column}"


def render_text(diags: Sequence[Diagnostic], sources: Mapping[str, str], *,
                color: bool = False) -> str:
    """Diagnostics as people read them, after rustc and Elm::

        error[P201]: unknown ladder 'escalte'
         --> policies/alibaba/crypto-2021.policy:8:50
          |
        8 | rule b: block category 'Miners' penalty escalte
          |                                         ^^^^^^^
          = hint: did you mean 'escalate'?

    Then for each related location ``::: file:line:col`` with its own excerpt underlined
    with ``-`` and labelled with its message, then ``= note:`` lines and, where there is
    one, ``= witness:`` with the witness as one line of JSON. Carets cover the span on its
    first line (at least one; a span over several lines is marked to the end of its first
    line). A diagnostic without a span is its headline (and its hint and notes) only; a
    file missing from ``sources`` gets its location but no excerpt. Diagnostics are
    separated by a blank line; the output ends with a blank line and a summary such as
    ``2 errors, 1 warning, 3 infos`` (counts of zero left out). Suppressed findings are
    left out (and not counted). An empty list renders as ``""``. ANSI colour only when
    ``color`` is true."""
    diags = [d for d in diags if not d.suppressed]
    if not diags:
        return ""
    paint = _Paint(color)
    lines = _Sources(sources)
    blocks = [_text_block(d, lines, paint) for d in diags]
    return "\n\n".join(blocks) + "\n\n" + paint(_BOLD, _summary(diags)) + "\n"


def _summary(diags: Sequence[Diagnostic]) -> str:
    counts: dict[str, int] = {ERROR: 0, WARNING: 0, INFO: 0}
    for d in diags:
        counts[d.severity] = counts.get(d.severity, 0) + 1
    return ", ".join(f"{n} {_escape(sev)}{'' if n == 1 else 's'}"
                     for sev, n in counts.items() if n)


def _text_block(d: Diagnostic, lines: _Sources, paint: _Paint) -> str:
    sev_style = _SEVERITY_STYLE.get(d.severity, _BOLD)
    head = f"{_escape(d.severity)}[{_escape(d.code)}]: "
    out = [paint(sev_style, _escape(d.severity)) + paint(_BOLD, f"[{_escape(d.code)}]")
           + ": " + _hang(d.message, len(head))]
    spans = ([d.span] if d.span else []) + [r.span for r in d.related]
    width = max([len(str(s.line)) for s in spans] or [1])
    pad = " " * width
    bar = paint(_GUTTER, "|")
    excerpts = 0
    if d.span:
        out.append(f"{pad}{paint(_GUTTER, '-->')} {_location(d.span)}")
        shown = _snippet_lines(d.span, lines, width, paint, "^", sev_style, None)
        out.extend(shown)
        excerpts += bool(shown)
    for rel in d.related:
        src = lines.line(rel.span.file, rel.span.line)
        if src is None:
            loc = f"{_location(rel.span)}: "
            out.append(f"{pad}{paint(_GUTTER, ':::')} {loc}"
                       + _hang(rel.message, width + 5 + len(loc)))
        else:
            out.append(f"{pad}{paint(_GUTTER, ':::')} {_location(rel.span)}")
            out.extend(_snippet_lines(rel.span, lines, width, paint, "-", _GUTTER,
                                      rel.message))
            excerpts += 1
    labels: list[tuple[str, str]] = []
    if d.hint:
        labels.append(("hint", d.hint))
    labels.extend(("note", note) for note in d.notes)
    if d.witness is not None:
        labels.append(("witness", _dumps(d.witness)))
    if labels and excerpts:
        out.append(f"{pad} {bar}")
    for label, text in labels:
        prefix = f"{pad} = {label}: "
        out.append(f"{pad} {paint(_GUTTER, '=')} {paint(_BOLD, label + ':')} "
                   + _hang(text, len(prefix)))
    return "\n".join(out)


def _snippet_lines(span: Span, lines: _Sources, width: int, paint: _Paint, mark: str,
                   mark_style: str, label: str | None) -> list[str]:
    src = lines.line(span.file, span.line)
    if src is None:
        return []
    end_column = span.end_column if span.end_line <= span.line else None
    shown, offset, length = _excerpt(src, span.column, end_column)
    pad = " " * width
    bar = paint(_GUTTER, "|")
    source_line = paint(_GUTTER, f"{span.line:>{width}} |")
    shown = shown.rstrip(" ")
    if shown:
        source_line += " " + shown
    marks = " " * offset + paint(mark_style, mark * length)
    if label:
        marks += " " + paint(mark_style, _hang(label, width + 3 + offset + length + 1))
    return [f"{pad} {bar}", source_line, f"{pad} {bar} {marks}"]


# ------------------------------------------------------------------ JSON


def render_json(diags: Sequence[Diagnostic]) -> str:
    """A JSON array of ``Diagnostic.to_dict()`` (spec section 8), in the order given,
    indented by two, non-ASCII kept as it is. A suppressed finding is there too, with
    ``"suppressed": true``."""
    return _dumps([d.to_dict() for d in diags], indent=2) + "\n"


# ------------------------------------------------------------------ SARIF

_SARIF_LEVEL = {ERROR: "error", WARNING: "warning", INFO: "note"}
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:/")


def _rule_name(code: str) -> str:
    """A CamelCase name from the code's title: "'==' on category" -> "EqualsOnCategory"."""
    title = CODES[code][1] if code in CODES else code
    words = re.split(r"[^0-9A-Za-z]+", title.replace("==", " equals "))
    return "".join(w[:1].upper() + w[1:] for w in words if w) or code


def _artifact_location(file: str) -> dict[str, str]:
    """A URI for a file path: relative paths stay relative (to ``%SRCROOT%``), absolute
    ones become ``file:`` URIs; backslashes become slashes; reserved characters are
    percent-encoded (so ``a:b.policy`` cannot be read as a scheme), and so are the bytes
    of a name that is not UTF-8 (as the file system holds them)."""
    path = file.replace("\\", "/")
    if path.startswith("/"):
        return {"uri": "file://" + _quote(path)}
    if _WINDOWS_DRIVE.match(path):
        return {"uri": "file:///" + path[:2] + _quote(path[2:])}
    return {"uri": _quote(path), "uriBaseId": "%SRCROOT%"}


def _quote(path: str) -> str:
    try:
        return quote(path.encode("utf-8", "surrogateescape"))
    except UnicodeEncodeError:  # a surrogate no byte stands for (a name given through the API)
        return quote(path.encode("utf-8", "surrogatepass"))


def _region(span: Span, lines: _Sources) -> dict[str, Any]:
    end_line = max(span.end_line, span.line)
    end_column = span.end_column
    if end_line == span.line:
        end_column = max(end_column, span.column)
    region: dict[str, Any] = {"startLine": max(span.line, 1),
                              "startColumn": max(span.column, 1),
                              "endLine": max(end_line, 1), "endColumn": max(end_column, 1)}
    snippet = lines.snippet(span)
    if snippet is not None:
        region["snippet"] = {"text": snippet}
    return region


def _physical(span: Span, lines: _Sources) -> dict[str, Any]:
    return {"artifactLocation": _artifact_location(span.file), "region": _region(span, lines)}


def _message_with_help(d: Diagnostic) -> str:
    parts = [d.message]
    if d.hint:
        parts.append(f"hint: {d.hint}")
    parts.extend(f"note: {note}" for note in d.notes)
    return "\n".join(parts)


def render_sarif(diags: Sequence[Diagnostic], sources: Mapping[str, str], *,
                 tool_version: str) -> str:
    """A SARIF 2.1.0 log with one run of the tool ``policy``.

    ``rules`` holds one reporting descriptor per code used (sorted by code), its
    ``helpUri`` the code's page on the documentation site (``docs_url``). A result's
    message text is the message followed by its hint and notes on lines of their own;
    its location is the span (columns count Unicode code points, ``columnKind``
    ``unicodeCodePoints``; ``endColumn`` is exclusive as in SARIF), with the spanned text
    as ``snippet`` when the source is known; related locations become
    ``relatedLocations``; the witness goes in ``properties.witness``. A diagnostic without
    a span has no ``locations``. A finding suppressed by a comment has ``suppressions``:
    one of kind ``inSource`` located at the comment (findings that configuration turns
    ``off`` are not in the log at all)."""
    lines = _Sources(sources)
    codes = sorted({d.code for d in diags})
    index = {code: i for i, code in enumerate(codes)}
    rules = []
    for code in codes:
        severity, title = CODES.get(code, (ERROR, code))
        rules.append({
            "id": code,
            "name": _rule_name(code),
            "shortDescription": {"text": title},
            "defaultConfiguration": {"level": _SARIF_LEVEL.get(severity, "error")},
            "helpUri": docs_url(code),
            "help": {"text": f"See {docs_url(code)} (docs/checks.md, section {code})."},
        })
    results = []
    for d in diags:
        result: dict[str, Any] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _SARIF_LEVEL.get(d.severity, "error"),
            "message": {"text": _message_with_help(d)},
        }
        if d.span:
            result["locations"] = [{"physicalLocation": _physical(d.span, lines)}]
        if d.related:
            result["relatedLocations"] = [
                {"id": i, "physicalLocation": _physical(r.span, lines),
                 "message": {"text": r.message}}
                for i, r in enumerate(d.related)
            ]
        if d.witness is not None:
            result["properties"] = {"witness": d.witness}
        if d.suppressed_by is not None:
            result["suppressions"] = [{"kind": "inSource",
                                       "location": {"physicalLocation": _physical(d.suppressed_by, lines)}}]
        results.append(result)
    log = {
        "$schema": SARIF_SCHEMA_URI,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "policy", "version": tool_version, "rules": rules}},
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    }
    return _dumps(log, indent=2) + "\n"


# ------------------------------------------------------------------ GitHub

_GITHUB_COMMAND = {ERROR: "error", WARNING: "warning", INFO: "notice"}


def _github_data(text: str) -> str:
    """GitHub's escaping of a command's message, after escaping other control characters
    (which GitHub would otherwise pass through to the log raw)."""
    text = _escape(text, keep="\r\n")
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_github(diags: Sequence[Diagnostic]) -> str:
    """One GitHub workflow command per diagnostic (``::error``, ``::warning``,
    ``::notice`` for info), e.g.
    ``::error file=a.policy,line=8,col=50,endLine=8,endColumn=57,title=P201 unknown
    ladder::unknown ladder 'escalte'%0Ahint: did you mean 'escalate'?``.

    The message carries the hint, notes and related locations on lines of their own.
    ``col`` and ``endColumn`` are given only for a span on one line (the runner rejects
    columns on a span over several lines). File paths use forward slashes. An empty list
    renders as ``""``. Suppressed findings are left out."""
    out = []
    for d in diags:
        if d.suppressed:
            continue
        title = f"{d.code} {CODES[d.code][1]}" if d.code in CODES else d.code
        props: list[tuple[str, str]] = []
        s = d.span
        if s:
            props.append(("file", s.file.replace("\\", "/")))
            props.append(("line", str(s.line)))
            if s.end_line <= s.line:
                props.append(("col", str(s.column)))
                props.append(("endLine", str(s.line)))
                props.append(("endColumn", str(max(s.end_column, s.column))))
            else:
                props.append(("endLine", str(s.end_line)))
        props.append(("title", title))
        parts = [d.message]
        if d.hint:
            parts.append(f"hint: {d.hint}")
        parts.extend(f"note: {note}" for note in d.notes)
        parts.extend(f"related: {r.span.file}:{r.span.line}:{r.span.column}: {r.message}"
                     for r in d.related)
        newline = "\n"
        command = _GITHUB_COMMAND.get(d.severity, "error")
        prop_text = ",".join(f"{k}={_github_property(v)}" for k, v in props)
        out.append(f"::{command} {prop_text}::{_github_data(newline.join(parts))}")
    return "".join(line + "\n" for line in out)
