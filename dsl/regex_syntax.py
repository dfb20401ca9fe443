"""RE2 patterns of the supported subset as a syntax tree, with no solver: ``parse`` (the
tree, each top-level alternative's anchors taken off, and the character classes it uses),
``check_supported``, and ``required_texts`` (texts of which a text a pattern matches in
holds one: the scan's pushdown reads ``matches`` through them). ``dsl.analysis.regex``
turns the tree into z3's regular expressions.

Supported, exactly: literal characters and escapes (``\\.``, ``\\t``, ``\\x41``,
``\\x{263a}``), ``.`` (any character but a newline, as in RE2 without the ``s`` flag),
classes ``[a-z0-9_]`` and ``[^…]`` with ranges, escapes and ASCII POSIX classes
(``[[:alpha:]]``), ``\\d \\D \\w \\W \\s \\S`` (ASCII, as in RE2), groups ``(…)``,
``(?:…)``, ``(?P<name>…)``, alternation, the repetitions ``* + ? {m} {m,} {m,n}`` (and their
lazy forms, which match the same texts), ``^``/``\\A`` at the start and ``$``/``\\z`` at
the end of a top-level alternative, and case-insensitive matching (``/…/i`` or a leading
``(?i)``) by Unicode simple case folding.

Anything else (word boundaries ``\\b``, Unicode classes ``\\pL``, other flags, anchors in
the middle of a pattern, …) raises ``Unsupported`` with a reason, which the analysis
reports as P399. ``matches`` is a search: the pattern may match anywhere in the text
unless anchored.

A character class is kept as a set of code-point ranges (``CharSet``), so the analysis can
split the alphabet into the classes that the patterns distinguish (``dsl.analysis.strings.alphabet``).
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterable

import attrs

MAX_CP = 0x10FFFF

_COUNT = re.compile(r"(?:0|[1-9][0-9]*)(?:,(?:0|[1-9][0-9]*)?)?", re.ASCII)
"""The body of a counted repetition ``{m}``, ``{m,}``, ``{m,n}`` as RE2 reads one: ASCII
digits, no leading zero (RE2 reads ``a{01}`` as text)."""

_HEX = re.compile(r"[0-9A-Fa-f]+", re.ASCII)


class Unsupported(ValueError):
    """A pattern (or part of one) outside the subset the analysis translates exactly."""


# --------------------------------------------------------------------------- char sets


@attrs.frozen
class CharSet:
    """A set of code points as sorted, disjoint, non-adjacent inclusive ranges."""

    ranges: tuple[tuple[int, int], ...]

    @staticmethod
    def of(ranges: Iterable[tuple[int, int]]) -> CharSet:
        out: list[tuple[int, int]] = []
        for lo, hi in sorted(ranges):
            if lo > hi:
                continue
            if out and lo <= out[-1][1] + 1:
                out[-1] = (out[-1][0], max(out[-1][1], hi))
            else:
                out.append((lo, hi))
        return CharSet(tuple(out))

    @staticmethod
    def chars(text: str) -> CharSet:
        return CharSet.of((ord(c), ord(c)) for c in text)

    def __contains__(self, cp: int) -> bool:
        i = bisect.bisect_right(self.ranges, (cp, MAX_CP + 1)) - 1
        return i >= 0 and self.ranges[i][0] <= cp <= self.ranges[i][1]

    def union(self, other: CharSet) -> CharSet:
        return CharSet.of(self.ranges + other.ranges)

    def complement(self) -> CharSet:
        out = []
        prev = 0
        for lo, hi in self.ranges:
            if lo > prev:
                out.append((prev, lo - 1))
            prev = hi + 1
        if prev <= MAX_CP:
            out.append((prev, MAX_CP))
        return CharSet(tuple(out))

    def folded(self) -> CharSet:
        """The set closed under simple case folding (what ``(?i)`` matches)."""
        orbits = _orbits()
        keys = _cased_points()
        extra: list[tuple[int, int]] = []
        for lo, hi in self.ranges:
            i = bisect.bisect_left(keys, lo)
            while i < len(keys) and keys[i] <= hi:
                extra.extend((cp, cp) for cp in orbits[keys[i]])
                i += 1
        return CharSet.of(self.ranges + tuple(extra))


def _simple_fold(c: str) -> str:
    """Unicode simple case folding of one character (CaseFolding.txt, statuses C and S),
    from Python's full folding where that gives one character, else from ``lower()``."""
    f = c.casefold()
    if len(f) == 1:
        return f
    low = c.lower()
    return low if len(low) == 1 else c


@functools.lru_cache(maxsize=1)
def _orbits() -> dict[int, tuple[int, ...]]:
    groups: dict[str, list[int]] = {}
    for cp in range(0x20000):
        if 0xD800 <= cp <= 0xDFFF:
            continue
        c = chr(cp)
        f = _simple_fold(c)
        if f != c:
            groups.setdefault(f, [ord(f)]).append(cp)
    orbit: dict[int, tuple[int, ...]] = {}
    for members in groups.values():
        t = tuple(sorted(set(members)))
        for cp in t:
            orbit[cp] = t
    return orbit


@functools.lru_cache(maxsize=1)
def _cased_points() -> list[int]:
    return sorted(_orbits())


ANY_BUT_NEWLINE = CharSet.of([(0, 9), (11, MAX_CP)])
DIGIT = CharSet.of([(48, 57)])
WORD = CharSet.of([(48, 57), (65, 90), (95, 95), (97, 122)])
SPACE = CharSet.chars("\t\n\f\r ")
_SIMPLE_ESCAPES = {"t": "\t", "n": "\n", "r": "\r", "f": "\f", "v": "\v", "a": "\a"}
_CLASS_ESCAPES = {"d": DIGIT, "w": WORD, "s": SPACE}
_ANCHOR_ESCAPES = {"A": "start", "z": "end", "b": "word"}  # outside a class
POSIX = {
    "alnum": CharSet.of([(48, 57), (65, 90), (97, 122)]),
    "alpha": CharSet.of([(65, 90), (97, 122)]),
    "ascii": CharSet.of([(0, 127)]),
    "blank": CharSet.chars("\t "),
    "cntrl": CharSet.of([(0, 31), (127, 127)]),
    "digit": DIGIT,
    "graph": CharSet.of([(33, 126)]),
    "lower": CharSet.of([(97, 122)]),
    "print": CharSet.of([(32, 126)]),
    "punct": CharSet.of([(33, 47), (58, 64), (91, 96), (123, 126)]),
    "space": CharSet.chars("\t\n\v\f\r "),
    "upper": CharSet.of([(65, 90)]),
    "word": WORD,
    "xdigit": CharSet.of([(48, 57), (65, 70), (97, 102)]),
}


# --------------------------------------------------------------------------- syntax tree


@attrs.frozen
class Chars:
    set: CharSet


@attrs.frozen
class Seq:
    items: tuple[Node, ...]


@attrs.frozen
class Alt:
    items: tuple[Node, ...]


@attrs.frozen
class Repeat:
    item: Node
    min: int
    max: int | None


@attrs.frozen
class Anchor:
    kind: str  # "start" or "end"


Node = Chars | Seq | Alt | Repeat | Anchor


@attrs.frozen
class Branch:
    """A top-level alternative: its body, whether it is anchored at the start/end of the
    text, and whether a word boundary ``\\b`` stands at its start/end."""

    start: bool
    body: Node
    end: bool
    word_start: bool = False
    word_end: bool = False


@attrs.frozen
class Pattern:
    """A parsed pattern: top-level alternatives, each with its anchors taken off."""

    branches: tuple[Branch, ...]
    charsets: tuple[CharSet, ...]


class _Parser:
    def __init__(self, text: str, ignore_case: bool):
        self.s = text
        self.i = 0
        self.icase = ignore_case
        self.sets: list[CharSet] = []

    def peek(self) -> str | None:
        return self.s[self.i] if self.i < len(self.s) else None

    def take(self) -> str:
        c = self.s[self.i]
        self.i += 1
        return c

    def charset(self, cs: CharSet) -> Chars:
        if self.icase:
            cs = cs.folded()
        self.sets.append(cs)
        return Chars(cs)

    def parse(self) -> Node:
        if self.s.startswith("(?i)"):
            self.icase = True
            self.i = 4
        node = self.alt()
        if self.i != len(self.s):
            raise Unsupported(f"unexpected {self.s[self.i]!r} at position {self.i + 1}")
        return node

    def alt(self) -> Node:
        items = [self.seq()]
        while self.peek() == "|":
            self.take()
            items.append(self.seq())
        return items[0] if len(items) == 1 else Alt(tuple(items))

    def seq(self) -> Node:
        items: list[Node] = []
        while self.peek() not in (None, "|", ")"):
            items.append(self.repeat())
        return Seq(tuple(items))

    def repeat(self) -> Node:
        atom = self.atom()
        while True:
            c = self.peek()
            if c in ("*", "+", "?"):
                self.take()
                lo, hi = {"*": (0, None), "+": (1, None), "?": (0, 1)}[c]
            elif c == "{" and self._counted():
                lo, hi = self._braces()
            else:
                return atom
            if isinstance(atom, Anchor):
                raise Unsupported("a repeated anchor")
            if self.peek() == "?":  # lazy: the same texts match
                self.take()
            atom = Repeat(atom, lo, hi)

    def _counted(self) -> bool:
        j = self.s.find("}", self.i)
        if j < 0:
            return False
        return _COUNT.fullmatch(self.s, self.i + 1, j) is not None

    def _braces(self) -> tuple[int, int | None]:
        j = self.s.find("}", self.i)
        body = self.s[self.i + 1:j]
        self.i = j + 1
        parts = body.split(",")
        lo = int(parts[0])
        hi: int | None = lo if len(parts) == 1 else (None if parts[1] == "" else int(parts[1]))
        if lo > 1000 or (hi is not None and (hi > 1000 or hi < lo)):
            raise Unsupported("a repetition count above 1000")
        return lo, hi

    def atom(self) -> Node:
        c = self.take()
        if c == "(":
            return self._group()
        if c == "[":
            cs = self._class()
            self.sets.append(cs)
            return Chars(cs)
        if c == ".":
            return self.charset(ANY_BUT_NEWLINE)
        if c == "^":
            return Anchor("start")
        if c == "$":
            return Anchor("end")
        if c == "\\":
            return self._escape(in_class=False)
        if c in "*+?":
            raise Unsupported(f"a repetition {c!r} with nothing to repeat")
        return self.charset(CharSet.chars(c))

    def _group(self) -> Node:
        """A group, after its ``(``."""
        if self.s.startswith("?:", self.i):
            self.i += 2
        elif self.s.startswith("?P<", self.i) or self.s.startswith("?<", self.i):
            j = self.s.find(">", self.i)
            if j < 0:
                raise Unsupported("an unterminated group name")
            self.i = j + 1
        elif self.peek() == "?":
            raise Unsupported("inline flags or group syntax other than (?:…), (?P<name>…) and a leading (?i)")
        node = self.alt()
        if self.peek() != ")":
            raise Unsupported("an unbalanced parenthesis")
        self.take()
        return node

    def _escape(self, in_class: bool) -> Node:
        if self.peek() is None:
            raise Unsupported("a trailing backslash")
        c = self.take()
        if c in _SIMPLE_ESCAPES:
            return self.charset(CharSet.chars(_SIMPLE_ESCAPES[c]))
        if c in _CLASS_ESCAPES:
            return self.charset(_CLASS_ESCAPES[c])
        if c in ("D", "W", "S"):
            return self.charset(_CLASS_ESCAPES[c.lower()].complement())
        if c == "x":
            return self._hex_escape()
        if not in_class and c in _ANCHOR_ESCAPES:
            if c == "b":
                self.sets.append(WORD)  # the alphabet must tell word characters apart
            return Anchor(_ANCHOR_ESCAPES[c])
        if c.isalnum() or not c.isascii():  # as RE2: only ASCII punctuation (and _) escapes itself
            raise Unsupported(f"the escape \\{c}")
        return self.charset(CharSet.chars(c))

    def _hex_escape(self) -> Node:
        """``\\xHH`` or ``\\x{H…}``, after its ``x``."""
        if self.peek() == "{":
            j = self.s.find("}", self.i)
            if j < 0:
                raise Unsupported("an unterminated \\x{…}")
            digits, self.i = self.s[self.i + 1:j], j + 1
        else:
            digits, self.i = self.s[self.i:self.i + 2], self.i + 2
            if len(digits) != 2:
                raise Unsupported("an escape \\x without two hex digits")
        if _HEX.fullmatch(digits) is None:
            raise Unsupported(f"the escape \\x{digits}")
        cp = int(digits, 16)
        if cp > MAX_CP:
            raise Unsupported(f"the escape \\x{{{digits}}} beyond U+10FFFF")
        return self.charset(CharSet.of([(cp, cp)]))

    def _class_char(self) -> CharSet | int:
        c = self.take()
        if c == "\\":
            node = self._escape(in_class=True)
            assert isinstance(node, Chars)
            self.sets.pop()  # recorded again with the whole class
            raw = node.set
            if len(raw.ranges) == 1 and raw.ranges[0][0] == raw.ranges[0][1]:
                return raw.ranges[0][0]
            return raw
        if c == "[" and self.peek() == ":":
            j = self.s.find(":]", self.i)
            if j < 0:
                raise Unsupported("an unterminated POSIX class")
            name = self.s[self.i + 1:j]
            self.i = j + 2
            negate = name.startswith("^")
            name = name.lstrip("^")
            if name not in POSIX:
                raise Unsupported(f"the POSIX class [:{name}:]")
            return POSIX[name].complement() if negate else POSIX[name]
        return ord(c)

    def _class(self) -> CharSet:
        negate = False
        if self.peek() == "^":
            self.take()
            negate = True
        parts: list[CharSet] = []
        first = True
        while True:
            if self.peek() is None:
                raise Unsupported("an unterminated character class")
            if self.peek() == "]" and not first:
                self.take()
                break
            first = False
            lo = self._class_char()
            if isinstance(lo, CharSet):
                parts.append(lo)
                continue
            if self.peek() == "-" and self.i + 1 < len(self.s) and self.s[self.i + 1] != "]":
                self.take()
                hi = self._class_char()
                if isinstance(hi, CharSet) or hi < lo:
                    raise Unsupported("a bad range in a character class")
                parts.append(CharSet.of([(lo, hi)]))
            else:
                parts.append(CharSet.of([(lo, lo)]))
        cs = CharSet.of(r for p in parts for r in p.ranges)
        if self.icase:
            cs = cs.folded()  # RE2 folds the class before negating it
        return cs.complement() if negate else cs


def _strip_anchors(node: Node) -> Branch:
    items = list(node.items) if isinstance(node, Seq) else [node]

    def take(index: int, kind: str) -> bool:
        item = items[index] if items else None
        if isinstance(item, Anchor) and item.kind == kind:
            items.pop(index)
            return True
        return False

    start = take(0, "start")
    word_start = take(0, "word")
    start = take(0, "start") or start
    end = take(-1, "end")
    word_end = take(-1, "word")
    end = take(-1, "end") or end
    while start and take(0, "start"):
        pass
    while end and take(-1, "end"):
        pass
    body = Seq(tuple(items))
    if _has_anchor(body):
        raise Unsupported("an anchor (^, $ or \\b) that is not at the start or end of a top-level alternative")
    for flag, side in ((word_start, "first"), (word_end, "last")):
        if flag:
            chars, nullable = edge(body, side)
            if nullable or not (subset(chars, WORD) or not _overlaps(chars, WORD)):
                raise Unsupported("a word boundary \\b next to something that may or may not be a word character")
    return Branch(start, body, end, word_start, word_end)


def subset(a: CharSet, b: CharSet) -> bool:
    return all(any(lo >= blo and hi <= bhi for blo, bhi in b.ranges) for lo, hi in a.ranges)


def _overlaps(a: CharSet, b: CharSet) -> bool:
    return any(lo <= bhi and blo <= hi for lo, hi in a.ranges for blo, bhi in b.ranges)


def edge(node: Node, side: str) -> tuple[CharSet, bool]:
    """The characters a non-empty match can start (``first``) or end (``last``) with, and
    whether the node can match the empty text."""
    if isinstance(node, Chars):
        return node.set, False
    if isinstance(node, Alt):
        sets, nullable = CharSet(()), False
        for item in node.items:
            cs, n = edge(item, side)
            sets, nullable = sets.union(cs), nullable or n
        return sets, nullable
    if isinstance(node, Seq):
        items = node.items if side == "first" else tuple(reversed(node.items))
        sets = CharSet(())
        for item in items:
            cs, n = edge(item, side)
            sets = sets.union(cs)
            if not n:
                return sets, False
        return sets, True
    if isinstance(node, Repeat):
        cs, n = edge(node.item, side)
        return cs, n or node.min == 0
    return CharSet(()), True


def _has_anchor(node: Node) -> bool:
    if isinstance(node, Anchor):
        return True
    if isinstance(node, (Seq, Alt)):
        return any(_has_anchor(i) for i in node.items)
    if isinstance(node, Repeat):
        return _has_anchor(node.item)
    return False


@functools.lru_cache(maxsize=1024)
def parse(pattern: str, ignore_case: bool) -> Pattern:
    """Parse a pattern of the supported subset; raises Unsupported."""
    p = _Parser(pattern, ignore_case)
    try:
        node = p.parse()
    except (IndexError, ValueError) as e:
        if isinstance(e, Unsupported):
            raise
        raise Unsupported(f"cannot read the pattern ({e})") from None
    tops = node.items if isinstance(node, Alt) else (node,)
    # a group around the whole pattern with alternatives inside: (^a|b$)
    branches: list[Branch] = []
    for top in tops:
        if isinstance(top, Seq) and len(top.items) == 1 and isinstance(top.items[0], Alt):
            for inner in top.items[0].items:
                branches.append(_strip_anchors(inner))
        else:
            branches.append(_strip_anchors(top))
    return Pattern(tuple(branches), tuple(p.sets))


def check_supported(pattern: str, ignore_case: bool) -> str | None:
    """None when the pattern is in the supported subset, else the reason it is not."""
    try:
        parse(pattern, ignore_case)
    except Unsupported as e:
        return str(e)
    except RecursionError:
        return "the pattern nests too deeply"
    return None



REQUIRED_MAX = 16
"""The most texts ``required_texts`` gives (alternatives multiply them)."""


@attrs.frozen
class Required:
    """Texts one of which every text a pattern matches in holds (``required_texts``)."""

    texts: frozenset[str]
    folded: bool
    """A case-insensitive pattern's: the texts are lower case, and held by a text that is
    pure ASCII lower-cased (a text with other characters may hold none: RE2 folds ``k``
    with the Kelvin sign, ``s`` with the long s)."""


def required_texts(pattern: str, ignore_case: bool) -> Required | None:
    """Texts one of which every text the pattern matches in holds (RE2's search), each
    written as the pattern's literal characters run together: ``(S19|L7)j? pro`` gives
    `` pro`` (the longest run; ``S19`` or ``L7``, of two characters at least, would do
    too), ``bitcoin|ether`` both words. A case-insensitive pattern's are lower case and
    ``folded``. None when there are none: a pattern without literal characters, an
    alternative without one, more than ``REQUIRED_MAX``, or a pattern outside the
    supported subset. The pattern is the witness: a match is a piece of the text, and
    every piece of a match the pattern spells out literally is in it."""
    try:
        parsed = parse(pattern, ignore_case)
    except (ValueError, RecursionError):  # (Unsupported is a ValueError)
        return None
    folded = ignore_case or pattern.startswith("(?i)")
    found: set[str] = set()
    for branch in parsed.branches:
        texts = _required(branch.body, folded)
        if texts is None:
            return None
        found |= texts
    assert found, "a pattern has a branch, and a branch's requirement a text"  # (an empty set would rule out all)
    return Required(frozenset(found), folded) if len(found) <= REQUIRED_MAX else None


def _required(node: Node, folded: bool) -> frozenset[str] | None:
    if isinstance(node, Chars):
        c = _literal(node, folded)
        return None if c is None else frozenset([c])
    if isinstance(node, Alt):
        found: set[str] = set()
        for item in node.items:
            texts = _required(item, folded)
            if texts is None:
                return None
            found |= texts
        return frozenset(found) if len(found) <= REQUIRED_MAX else None
    if isinstance(node, Repeat):
        return _required(node.item, folded) if node.min >= 1 else None
    if isinstance(node, Seq):
        return _required_in_sequence(node.items, folded)
    return None  # an anchor


def _required_in_sequence(items: Iterable[Node], folded: bool) -> frozenset[str] | None:
    """The best of a sequence's requirements: its runs of literal characters, and those of
    its other items (each of them must match in turn)."""
    options: list[frozenset[str]] = []
    run = ""
    for item in items:
        c = _literal(item, folded) if isinstance(item, Chars) else None
        if c is not None:
            run += c
            continue
        if run:
            options.append(frozenset([run]))
            run = ""
        texts = _required(item, folded)
        if texts is not None:
            options.append(texts)
    if run:
        options.append(frozenset([run]))
    if not options:
        return None
    return max(options, key=lambda texts: (min(len(t) for t in texts), -len(texts)))


def _literal(chars: Chars, folded: bool) -> str | None:
    """The one character a class holds; None for more, or for a character SQL or the
    evaluator's reading of text does not carry as written (NUL, a surrogate, U+FFFD: it
    searches a lone surrogate of the text as U+FFFD, ``text.regex_search``). ``folded``:
    the one lower-case ASCII character the class's ASCII members are, lower-cased (a
    case-insensitive pattern's letter: ``k`` for k, K and the Kelvin sign), where it has
    some, and not too many members to list."""
    ranges = chars.set.ranges
    if folded:
        if sum(hi - lo + 1 for lo, hi in ranges) > 4:
            return None
        ascii_lowered = {chr(cp).lower() for lo, hi in ranges for cp in range(lo, hi + 1) if cp < 128}
        only = ascii_lowered.pop() if len(ascii_lowered) == 1 else None
        return only if only is not None and only != "\x00" else None
    if len(ranges) != 1 or ranges[0][0] != ranges[0][1]:
        return None
    cp = ranges[0][0]
    if cp == 0 or 0xD800 <= cp <= 0xDFFF or cp == 0xFFFD:
        return None
    return chr(cp)
