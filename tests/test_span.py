"""``Span``: a parse's spans (``Span.within``: offsets and the file's lines) read the same
lines and columns as Lark's tokens give, and equal, hash, order and pickle as spans given
their seven numbers."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import attrs
import pytest

from dsl.span import Lines, Span
from dsl.syntax import parse
from dsl.syntax.lower import Lowering

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


def test_lazy_spans_are_the_ones_read_off_the_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    texts = _texts()
    assert len(texts) > 20
    lazy = [parse(text, name) for name, text in texts]
    monkeypatch.setattr(Lowering, "lazy_spans", False)
    given = [parse(text, name) for name, text in texts]
    checked = 0
    for (name, text), (f1, d1), (f2, d2) in zip(texts, lazy, given, strict=True):
        s1, s2 = _spans((f1, d1)), _spans((f2, d2))
        assert [w for w, _ in s1] == [w for w, _ in s2], name
        for (where, a), (_, b) in zip(s1, s2, strict=True):
            key = (a.file, a.line, a.column, a.end_line, a.end_column, a.start, a.end)
            assert key == (b.file, b.line, b.column, b.end_line, b.end_column, b.start, b.end), (name, where)
            assert a == b and hash(a) == hash(b) and not a < b and a <= b and repr(a) == repr(b)
            if a._src is not None:  # a parse's span: its line is the line breaks before it, plus one
                assert a.line == text.count("\n", 0, a.start) + 1, (name, where)
            checked += 1
    assert checked > 1000


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
