"""The fast path (dsl/syntax/scanner.py) gives the parse Lark's own lexer gives: the same
tree, tokens (types, texts, offsets, lines and columns) and comments, on every policy of the
repository and the conformance suite and on generated texts; a text it cannot read is
left to Lark (issue 13: loading)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lark import Token
from lark.exceptions import UnexpectedInput

from dsl.syntax import RESERVED, driver, parse
from dsl.syntax.scanner import scanner
from dsl.syntax.tree import Node
from tests.strategies import policy_texts

ROOT = Path(__file__).resolve().parents[1]
CONFORMANCE = ROOT.parent / "shared" / "conformance"


def _dump(node: Any, out: list[Any]) -> list[Any]:
    if node.__class__ is Node:
        out.append(("node", node.data, len(node.children)))
        for child in node.children:
            _dump(child, out)
    else:
        out.append(_token(node))
    return out


def _token(t: Token) -> tuple[Any, ...]:
    return (t.type, str(t), t.start_pos, t.end_pos, t.line, t.column, t.end_line, t.end_column)


def _both(text: str, start: str = "start") -> tuple[Any, Any]:
    """(the fast path's tree and comments or None, Lark's tree and comments or its error type)."""
    parser = driver.lark()
    fast = scanner(parser)
    assert fast is not None
    comments: list[Token] = []
    tree = fast.feed(text, start, {"COMMENT": comments.append})
    parser.options.transformer.forget()
    ours = None if tree is None else (_dump(tree, []), [_token(c) for c in comments])
    try:
        found: list[Token] = []
        theirs: Any = (_dump(driver.run(text, start, found, fast=False), []), [_token(c) for c in found])
    except UnexpectedInput as e:
        theirs = type(e)
    return ours, theirs


def test_this_grammar_has_a_fast_path() -> None:
    assert scanner(driver.lark()) is not None


def _policy_files() -> list[Path]:
    found = sorted(ROOT.glob("policies/**/*.policy")) + sorted(ROOT.glob("tests/**/*.policy"))
    found += sorted(CONFORMANCE.glob("**/*.policy"))
    return found


@pytest.mark.parametrize("path", _policy_files(), ids=lambda p: str(p.relative_to(ROOT.parent)))
def test_every_policy_file_parses_as_lark_parses_it(path: Path) -> None:
    text = path.read_text(encoding="utf-8-sig")
    ours, theirs = _both(text)
    if ours is None:  # left to Lark: only where Lark finds an error, or nothing but comments
        assert not isinstance(theirs, tuple) or not [t for t in theirs[0] if t[0] != "node"], path
    else:
        assert ours == theirs


def test_a_text_it_cannot_read_is_left_to_lark() -> None:
    for text in ("policy p\nrule r: block category 'x' ยง\n", "policy p\nrule r: block category 'x\n",
                 "policy p\nrule r: block category\n", ""):
        ours, theirs = _both(text)
        assert ours is None
    # and the errors are Lark's words, as before
    file, diags = parse("policy p\nrule r: block category 'x' §\n")
    assert [d.code for d in diags] == ["P100"]


def test_keywords_are_names_where_the_parser_takes_no_keyword() -> None:
    text = ("policy p\nfield title: text\nfield `block`: text\nrule title: flag title mentions 'x'\n"
            "rule blocks: block category 'then' unless `block` == 'rule' # block rule\n")
    ours, theirs = _both(text)
    assert ours is not None and ours == theirs


_WORDS = sorted(RESERVED) + ["title", "seller", "listing", "tests", "for", "x", "a-b", "`q r`", "blocks"]
_PUNCT = ["(", ")", "[", "]", "{", "}", ",", ":", ".", "==", "!=", "<", "<=", ">", ">=", "=", "-", "+"]
_OTHER = ["'s'", '"d"', "'a\\'b'", "/re/i", "2021-10-15", "2021-10-15T08:00Z", "30d", "6", "-1.5",
          "# c", "§", "'open", "\t", "\r\n"]


@given(st.lists(st.sampled_from(_WORDS + _PUNCT + _OTHER), max_size=40),
       st.lists(st.sampled_from([" ", " ", "\n", "  ", ""]), min_size=40, max_size=40))
def test_soups_of_tokens_parse_as_lark_parses_them(words: list[str], gaps: list[str]) -> None:
    text = "".join(w + g for w, g in zip(words, gaps, strict=False))
    for start in ("start", "single"):
        ours, theirs = _both(text, start)
        if ours is not None:
            assert ours == theirs
        else:
            assert not isinstance(theirs, tuple) or not [t for t in theirs[0] if t[0] != "node"]


@given(policy_texts())
def test_generated_policies_parse_by_the_fast_path_as_lark_parses_them(text: str) -> None:
    ours, theirs = _both(text)
    assert ours is not None, "a policy Lark parses is read by the fast path"
    assert ours == theirs
