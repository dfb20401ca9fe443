"""``Span``: a parse's spans (``Span.within``: offsets and the file's lines) read the same
lines and columns as Lark's tokens give, and equal, hash, order and pickle as spans given
their seven numbers."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import attrs
import pytest
from lark.exceptions import LarkError

from dsl.span import Lines, Span
from dsl.syntax import parse
from dsl.syntax.driver import lark

ROOT = Path(__file__).resolve().parents[1]

ODD = [
    "policy p\r\nrule r: block category 'A > B'\r\n\r\nrule s: flag mentions 'x' # c\r\n",
    "policy p\n\trule r:\tblock\tcategory\t'é > 比特币'  and price >= 1.5\nrule s: block seller.id == \"a\\nb\"\n",
    "policy p\nrule r: from 2021-10-08\n  block\n  category in ['a',\n    'b']\n  because 'why'",
    "policy p\nrule bad: block category\nrule late: from 2021-13-40 block category 'C'\nrule ok: allow category 'x'\n",
    "test 'one' given {category: 'A', n: [1, 2, {k: null}]} at 2021-10-20 expect block by a.r1\n",
    " policy p\nset s = ['x', 'y']\nladder l = remove listing then suspend account for 2w\n"
    "rule r: block mentions any s penalty l\n",
]


def _spans(node: Any) -> list[tuple[str, Span]]:
    """Every span under ``node``, with where it sits."""
    found: list[tuple[str, Span]] = []

    def walk(x: Any, where: str) -> None:
        if isinstance(x, Span):
            found.append((where, x))
        elif attrs.has(type(x)):
            for a in attrs.fields(type(x)):
                walk(getattr(x, a.name), f"{where}.{a.name}")
        elif isinstance(x, (tuple, list)):
            for i, y in enumerate(x):
                walk(y, f"{where}[{i}]")

    walk(node, "")
    return found


def _texts() -> list[tuple[str, str]]:
    conformance = ROOT.parent / "shared" / "conformance"
    files = sorted(ROOT.glob("policies/**/*.policy")) + sorted(conformance.glob("**/*.policy"))
    return [(str(p), p.read_text(encoding="utf-8")) for p in files] + [(f"odd{i}.policy", t) for i, t in enumerate(ODD)]


def _read_off(text: str, offset: int) -> tuple[int, int]:
    """The line and column of ``offset`` as Lark counts them (a line ends after each
    ``\\n``; columns count characters, from 1), worked out here without ``Lines``."""
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _lark_positions(text: str) -> tuple[dict[int, tuple[int, int]], dict[int, tuple[int, int]]]:
    """Where Lark's lexer puts its tokens' starts and ends: offset -> (line, column), up to
    the first character it cannot lex."""
    starts: dict[int, tuple[int, int]] = {}
    ends: dict[int, tuple[int, int]] = {}
    try:
        for t in lark().lex(text):
            starts[t.start_pos] = (t.line, t.column)  # type: ignore[index, assignment]  # lexed: set
            ends[t.end_pos] = (t.end_line, t.end_column)  # type: ignore[index, assignment]
    except LarkError:
        pass
    return starts, ends


def test_lazy_spans_are_the_ones_read_off_the_tokens() -> None:
    """A parse's spans hold their offsets and the file's ``Lines``: their lines and
    columns are the ones counted off the text here, and the ones Lark's lexer gives its
    tokens; and they equal, hash, order and print as spans given those seven numbers."""
    texts = _texts()
    assert len(texts) > 20
    checked = by_lark = 0
    for name, text in texts:
        starts, ends = _lark_positions(text)
        for where, a in _spans(parse(text, name)):
            if a._src is None:  # a span given its numbers (not a parse's): nothing to work out
                continue
            line, column = _read_off(text, a.start)
            end_line, end_column = _read_off(text, a.end)
            b = Span(name, line, column, end_line, end_column, a.start, a.end)
            key = (a.file, a.line, a.column, a.end_line, a.end_column, a.start, a.end)
            assert key == (b.file, b.line, b.column, b.end_line, b.end_column, b.start, b.end), (name, where)
            assert a == b and hash(a) == hash(b) and not a < b and a <= b and repr(a) == repr(b)
            if a.start in starts and a.end in ends:
                assert (a.line, a.column) == starts[a.start], (name, where)
                assert (a.end_line, a.end_column) == ends[a.end], (name, where)
                by_lark += 1
            checked += 1
    assert checked > 1000 and by_lark > checked // 2


def test_a_parse_makes_lazy_spans() -> None:
    file, _ = parse(ODD[0], "p.policy")
    assert file.statements[0].span._src is not None  # type: ignore[union-attr]


def test_order_hash_pickle_and_immutability() -> None:
    text = "ab\ncd\n\nef"
    lines = Lines("f", text)
    a = Span.within(lines, 1, 4)
    assert (a.line, a.column, a.end_line, a.end_column) == (1, 2, 2, 2)
    assert a == Span("f", 1, 2, 2, 2, 1, 4)
    assert Span.within(lines, 6, 7) == Span("f", 3, 1, 4, 1, 6, 7)  # an end after a line break: the next line
    b = Span.within(lines, 7, 9)
    assert sorted([b, Span("f", 1, 1, 1, 1), a]) == [Span("f", 1, 1, 1, 1), a, b]
    assert len({a, Span("f", 1, 2, 2, 2, 1, 4)}) == 1
    assert a != Span("g", 1, 2, 2, 2, 1, 4) and a != "f"
    copies = pickle.loads(pickle.dumps([a, b, Span("f", 1, 1, 1, 2)]))
    assert copies == [a, b, Span("f", 1, 1, 1, 2)]
    assert copies[0]._src is copies[1]._src  # the lines travel once
    with pytest.raises(AttributeError):
        a.line = 3  # type: ignore[misc]


def test_replace() -> None:
    a = Span.within(Lines("f", "ab\ncd"), 1, 4)
    assert a.replace(file="g") == Span("g", 1, 2, 2, 2, 1, 4)
    with pytest.raises(TypeError):
        a.replace(colour=1)
