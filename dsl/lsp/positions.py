"""Positions in the protocol's terms. The front end counts lines and columns from 1, and
columns in code points; the protocol counts from 0, and characters in the units the client
and server agreed on (UTF-16 unless the client offers another)."""

from __future__ import annotations

from lsprotocol import types as T

from ..span import Lines, Span

UTF16 = "utf-16"


def _units(text: str, encoding: str) -> int:
    if encoding == UTF16:
        return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)
    if encoding == "utf-8":
        return len(text.encode("utf-8"))
    return len(text)


class Text:
    """A document's text, with its line starts, for converting positions both ways. Its
    lines are the front end's (``dsl.span.Lines``: a line ends after each ``\\n``)."""

    def __init__(self, text: str, encoding: str = UTF16):
        self.text = text
        self.encoding = encoding
        self.lines = Lines("", text)
        self.starts = self.lines.starts

    def line(self, n: int) -> str:
        """Line ``n`` (from 0) without its line break; "" past the end."""
        if n >= len(self.starts):
            return ""
        end = self.starts[n + 1] - 1 if n + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[n]:end]

    def position(self, line: int, column: int) -> T.Position:
        """The protocol's position of ``column`` (code points, from 0) on ``line`` (from 0)."""
        line = max(0, min(line, len(self.starts) - 1))
        text = self.line(line)
        return T.Position(line, _units(text[:max(0, column)], self.encoding))

    def at_offset(self, offset: int) -> T.Position:
        line = self.lines.line_of(offset)
        return self.position(line - 1, self.lines.column_of(offset, line) - 1)

    def range(self, span: Span) -> T.Range:
        """A span's range; a span without width is one character wide."""
        start = self.position(span.line - 1, span.column - 1)
        end = self.position(span.end_line - 1, span.end_column - 1)
        if (end.line, end.character) <= (start.line, start.character):
            end = T.Position(start.line, start.character + 1)
        return T.Range(start, end)

    def offset(self, pos: T.Position) -> int:
        """The offset in the text of a protocol's position (clamped to the text)."""
        if pos.line >= len(self.starts):
            return len(self.text)
        text = self.line(pos.line)
        column = 0
        units = 0
        while column < len(text) and units < pos.character:
            units += _units(text[column], self.encoding)
            column += 1
        return self.starts[pos.line] + column

    def span_offsets(self, span: Span) -> tuple[int, int]:
        """A span's start and end offsets, from its lines and columns (a span made by hand
        may lack offsets)."""
        start = self.starts[min(span.line - 1, len(self.starts) - 1)] + span.column - 1
        end = self.starts[min(span.end_line - 1, len(self.starts) - 1)] + span.end_column - 1
        return start, max(start, end)


def contains(span: Span | None, line: int, column: int) -> bool:
    """Whether the 1-based ``line`` and ``column`` fall in ``span`` (its end included, so
    that a cursor just after a name is on it)."""
    if span is None:
        return False
    return (span.line, span.column) <= (line, column) <= (span.end_line, span.end_column)
