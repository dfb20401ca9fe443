"""Where things are in a TOML file: ``tomllib`` gives values but no positions, and a
P600 must point at the entry it is about.

``locate(text)`` maps every key path (a tuple of keys, with list indexes as ints) to the
character offsets of its key and its value. It reads only text that ``tomllib`` has
already accepted, so it skips what it does not need (escapes inside values, number and
date syntax) instead of validating it."""

from __future__ import annotations

import tomllib

import attrs

Key = str | int
KeyPath = tuple[Key, ...]

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


@attrs.frozen
class Place:
    """Offsets into the text: the key (the value itself for a list item) and the value.
    ``value_start == value_end`` for a table that a header opens."""

    key_start: int
    key_end: int
    value_start: int
    value_end: int


def locate(text: str) -> dict[KeyPath, Place]:
    """Every key path of an (already valid) TOML text and where it is written."""
    scan = _Scan(text)
    scan.document()
    return scan.places


def line_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a character offset."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


class _Scan:
    def __init__(self, text: str):
        self.t = text
        self.i = 0
        self.places: dict[KeyPath, Place] = {}
        self.array_tables: dict[KeyPath, int] = {}

    def peek(self, n: int = 1) -> str:
        return self.t[self.i:self.i + n]

    def blank(self, newlines: bool) -> None:
        """Skip spaces and tabs; with ``newlines``, line ends and comments too."""
        t = self.t
        while self.i < len(t):
            c = t[self.i]
            if c in " \t" or (newlines and c in "\r\n"):
                self.i += 1
            elif c == "#" and newlines:
                end = t.find("\n", self.i)
                self.i = len(t) if end < 0 else end
            else:
                return

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.blank(newlines=True)
            if self.i >= len(self.t):
                return
            if self.t[self.i] == "[":
                table = self.header()
            else:
                self.keyval(table)
            self.blank(newlines=False)
            if self.peek() == "#":
                self.blank(newlines=True)

    def header(self) -> KeyPath:
        start = self.i
        double = self.peek(2) == "[["
        self.i += 2 if double else 1
        parts = self.key()
        self.blank(newlines=False)
        self.i += 2 if double else 1
        path: KeyPath = tuple(name for name, _, _ in parts)
        if double:
            index = self.array_tables.get(path, -1) + 1
            self.array_tables[path] = index
            path = path + (index,)
        self.places.setdefault(path, Place(start, self.i, self.i, self.i))
        return path

    def key(self) -> list[tuple[str, int, int]]:
        parts = []
        while True:
            self.blank(newlines=False)
            start = self.i
            if self.peek() in ("\"", "'"):
                raw_end = self.string_end()
                name = tomllib.loads("k = " + self.t[start:raw_end])["k"]
                self.i = raw_end
            else:
                while self.i < len(self.t) and self.t[self.i] in _BARE:
                    self.i += 1
                name = self.t[start:self.i]
            parts.append((name, start, self.i))
            self.blank(newlines=False)
            if self.peek() != ".":
                return parts
            self.i += 1

    def keyval(self, table: KeyPath) -> None:
        parts = self.key()
        self.blank(newlines=False)
        self.i += 1  # "="
        self.blank(newlines=False)
        path = table + tuple(name for name, _, _ in parts)
        key_start, key_end = parts[0][1], parts[-1][2]
        for n in range(1, len(parts)):  # a dotted key also names the tables on its way
            self.places.setdefault(table + tuple(p for p, _, _ in parts[:n]),
                                   Place(key_start, parts[n - 1][2], key_start, key_end))
        value_start = self.i
        self.value(path)
        self.places[path] = Place(key_start, key_end, value_start, self.i)

    def value(self, path: KeyPath) -> None:
        c = self.peek()
        if c in ("\"", "'"):
            self.i = self.string_end()
        elif c == "[":
            self.array(path)
        elif c == "{":
            self.inline_table(path)
        else:  # number, boolean, date: up to the next delimiter
            while self.i < len(self.t) and self.t[self.i] not in ",]}#\r\n":
                self.i += 1
            while self.i > 0 and self.t[self.i - 1] in " \t":
                self.i -= 1

    def array(self, path: KeyPath) -> None:
        self.i += 1
        index = 0
        while True:
            self.blank(newlines=True)
            if self.peek() == "]":
                self.i += 1
                return
            start = self.i
            self.value(path + (index,))
            self.places[path + (index,)] = Place(start, self.i, start, self.i)
            index += 1
            self.blank(newlines=True)
            if self.peek() == ",":
                self.i += 1

    def inline_table(self, path: KeyPath) -> None:
        self.i += 1
        while True:
            self.blank(newlines=False)
            if self.peek() == "}":
                self.i += 1
                return
            self.keyval(path)
            self.blank(newlines=False)
            if self.peek() == ",":
                self.i += 1

    def string_end(self) -> int:
        """The offset just after the string that starts here."""
        t, i = self.t, self.i
        quote = t[i]
        if t.startswith(quote * 3, i):
            end = i + 3
            while True:
                end = t.index(quote * 3, end)
                if quote == "\"" and _escaped(t, end):
                    end += 1
                    continue
                end += 3
                while end < len(t) and t[end] == quote:  # up to two quotes may end the body
                    end += 1
                return end
        end = i + 1
        while t[end] != quote or (quote == "\"" and _escaped(t, end)):
            end += 1
        return end + 1


def _escaped(t: str, at: int) -> bool:
    """Whether the character at ``at`` follows an odd number of backslashes."""
    n = 0
    while at - n - 1 >= 0 and t[at - n - 1] == "\\":
        n += 1
    return n % 2 == 1
