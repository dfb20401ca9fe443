"""Where a piece of source text stands: ``Span``, the location every stage shares.

A leaf module (it imports nothing else of ``dsl``): the AST's nodes, the diagnostics and
the configuration's positions all carry a ``Span``, so it sits below the syntax stage.
``dsl.syntax.ast`` re-exports it as ``A.Span``."""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from attrs.exceptions import FrozenInstanceError

__all__ = ["Lines", "Span"]

_FIELDS = ("file", "line", "column", "end_line", "end_column", "start", "end")
_SHIFT = 32
_LOW = (1 << _SHIFT) - 1


class Lines:
    """Where each line of a file's text starts, and the file's name: what the spans a
    parse makes (``Span.within``) read their lines and columns off. A line ends after
    each ``\\n``, as Lark counts lines; columns count characters, from 1."""

    __slots__ = ("path", "_starts")

    def __init__(self, path: str, text: str):
        self.path = path
        starts = array("q", [0])
        at = text.find("\n")
        while at >= 0:
            starts.append(at + 1)
            at = text.find("\n", at + 1)
        self._starts = starts

    @property
    def starts(self) -> Sequence[int]:
        """The offset where each line starts, the first line's (0) first."""
        return self._starts

    def line_of(self, offset: int) -> int:
        return bisect_right(self._starts, offset)

    def column_of(self, offset: int, line: int) -> int:
        return offset - self._starts[line - 1] + 1

    def __reduce__(self) -> tuple[Any, ...]:
        return _lines, (self.path, self._starts)

    def __repr__(self) -> str:
        return f"Lines({self.path!r}, {len(self._starts)} lines)"


def _lines(path: str, starts: array[int]) -> Lines:
    lines = Lines.__new__(Lines)
    lines.path = path
    lines._starts = starts
    return lines


class Span:
    """A region of a source file. Lines and columns count from 1; ``end_column`` is
    exclusive. ``start``/``end`` are character offsets into the file's text.

    ``Span(file, line, column, end_line, end_column, start, end)`` holds the seven
    numbers given. A parse makes its spans with ``Span.within(lines, start, end)``: those
    hold their two offsets and the file's ``Lines``, and work their lines and columns
    out when read (a parsed rule has seven spans or so: stored whole, they were half of
    a loaded set's memory). Both kinds are equal, hash and order alike when their seven
    numbers are the same (ordered as the tuple ``(file, line, column, end_line,
    end_column, start, end)``). Immutable."""

    __slots__ = ("_src", "_at")
    _src: Lines | None  # the file's lines (a parse's span), or None (the numbers given)
    _at: Any  # start << 32 | end (a parse's span), or the seven values as a tuple

    def __init__(self, file: str, line: int, column: int, end_line: int, end_column: int,
                 start: int = 0, end: int = 0):
        _set(self, "_src", None)
        _set(self, "_at", (file, line, column, end_line, end_column, start, end))

    @classmethod
    def within(cls, lines: Lines, start: int, end: int) -> Span:
        """The span from offset ``start`` to ``end`` of the text ``lines`` was made from."""
        if 0 <= start <= _LOW and 0 <= end <= _LOW:
            return _within(lines, start << _SHIFT | end)
        line, end_line = lines.line_of(start), lines.line_of(end)  # pragma: no cover - a text of 4 G characters
        return Span(lines.path, line, lines.column_of(start, line), end_line,  # pragma: no cover
                    lines.column_of(end, end_line), start, end)

    # the seven numbers ---------------------------------------------------
    @property
    def file(self) -> str:
        src = self._src
        return src.path if src is not None else self._at[0]

    @property
    def line(self) -> int:
        src = self._src
        return src.line_of(self._at >> _SHIFT) if src is not None else self._at[1]

    @property
    def column(self) -> int:
        src = self._src
        if src is None:
            return self._at[2]  # type: ignore[no-any-return]
        start = self._at >> _SHIFT
        return src.column_of(start, src.line_of(start))

    @property
    def end_line(self) -> int:
        src = self._src
        return src.line_of(self._at & _LOW) if src is not None else self._at[3]

    @property
    def end_column(self) -> int:
        src = self._src
        if src is None:
            return self._at[4]  # type: ignore[no-any-return]
        end = self._at & _LOW
        return src.column_of(end, src.line_of(end))

    @property
    def start(self) -> int:
        return self._at >> _SHIFT if self._src is not None else self._at[5]  # type: ignore[no-any-return]

    @property
    def end(self) -> int:
        return self._at & _LOW if self._src is not None else self._at[6]  # type: ignore[no-any-return]

    def replace(self, **changes: Any) -> Span:
        """A span with ``changes`` to its seven numbers (as ``attrs.evolve`` does for
        other values: a span is not an attrs class)."""
        fields: dict[str, Any] = dict(zip(_FIELDS, self._key(), strict=True))
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Span has no field {sorted(unknown)[0]!r}")
        fields.update(changes)
        return Span(**fields)

    def _key(self) -> tuple[str, int, int, int, int, int, int]:
        src = self._src
        if src is None:
            return self._at  # type: ignore[no-any-return]
        start, end = self._at >> _SHIFT, self._at & _LOW
        line, end_line = src.line_of(start), src.line_of(end)
        return (src.path, line, src.column_of(start, line), end_line, src.column_of(end, end_line), start, end)

    # a value ---------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if other.__class__ is not Span:
            return NotImplemented
        assert isinstance(other, Span)
        if self._src is not None and self._src is other._src:
            return bool(self._at == other._at)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Span) -> bool:
        return self._key() < other._key() if other.__class__ is Span else NotImplemented

    def __le__(self, other: Span) -> bool:
        return self._key() <= other._key() if other.__class__ is Span else NotImplemented

    def __gt__(self, other: Span) -> bool:
        return self._key() > other._key() if other.__class__ is Span else NotImplemented

    def __ge__(self, other: Span) -> bool:
        return self._key() >= other._key() if other.__class__ is Span else NotImplemented

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError()

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError()

    def __reduce__(self) -> tuple[Any, ...]:
        if self._src is not None:
            return _within, (self._src, self._at)
        return Span, self._at

    def __repr__(self) -> str:
        file, line, column, end_line, end_column, start, end = self._key()
        return (f"Span(file={file!r}, line={line!r}, column={column!r}, end_line={end_line!r}, "
                f"end_column={end_column!r}, start={start!r}, end={end!r})")


_new = object.__new__
_set = object.__setattr__


def _within(lines: Lines, at: int) -> Span:
    """A parse's span from its packed offsets (``Span.within``, and again from its pickle)."""
    span = _new(Span)
    _set(span, "_src", lines)
    _set(span, "_at", at)
    return span


def pack(span: Span | None) -> tuple[Lines | None, Any]:
    """``span`` as two plain values, for a compact pickle of what holds it (``unpack``
    makes it again): a parse's span as its file's ``Lines`` (one object, pickled once)
    and its packed offsets, any other span (or None) as None and itself."""
    if span is not None and span._src is not None:
        return span._src, span._at
    return None, span


def unpack(src: Lines | None, at: Any) -> Span | None:
    """The span ``pack`` gave these two values for."""
    return at if src is None else _within(src, at)
