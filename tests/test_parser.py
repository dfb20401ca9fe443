"""The parser: shapes of the AST, positions, recovery, and hostile input."""

from __future__ import annotations

import datetime as dt
import random
import re
from pathlib import Path
from typing import Any

import lark
import pytest
import strategies as S
from hypothesis import given
from hypothesis import strategies as st
from lark.exceptions import UnexpectedInput

from dsl import syntax as P
from dsl.checking.passes import build
from dsl.syntax import MAX_DEPTH, driver, parse, recovery, tree
from dsl.syntax import ast as A
from dsl.syntax.format import format_file


def codes(text: str, **kw: object) -> list[tuple[str, int, int]]:
    _, diags = parse(text, "t.policy", **kw)  # type: ignore[arg-type]
    return [(d.code, d.span.line, d.span.column) for d in diags if d.span]


def test_rule_shape() -> None:
    f, diags = parse("policy p\n"
                     "rule r: from 2021-10-08 until 2022-01-01T08:00+08:00 block category 'A > B' and price >= 19.99\n"
                     "  penalty restrict listing for 2w and deduct 3 points because \"why\" message 'msg'\n")
    assert not diags
    (r,) = f.statements
    assert isinstance(r, A.Rule)
    assert r.name == A.Ref("r") and r.effect == "block"
    assert r.from_ == A.Date(dt.date(2021, 10, 8))
    assert isinstance(r.until, A.DateTime) and r.until.value.utcoffset() == dt.timedelta(hours=8)
    assert r.selector == A.And((A.Category(A.Str("A > B")), A.Compare(A.Path(("price",)), ">=", A.Num(19.99))))
    assert isinstance(r.penalty, A.PenaltyStep)
    assert [a.kind for a in r.penalty.step.actions] == ["restrict", "deduct"]
    assert r.penalty.step.actions[0].duration == A.Duration(14 * 24)
    assert r.because == A.Str("why") and r.message == A.Str("msg")
    assert r.anchor is not None and (r.anchor.line, r.anchor.column) == (2, 1)


def test_clauses_in_any_order_and_twice() -> None:
    f, diags = parse("policy p\nrule r: block because 'b' if x == 1 message 'm' if y == 2\n")
    assert [d.code for d in diags] == ["P100"]
    assert "given twice" in diags[0].message


def test_spans_excluded_from_equality() -> None:
    a, _ = parse("policy p\nrule r: block category 'X'\n")
    b, _ = parse("policy p\n\n\n   rule r:\n block   category \"X\"  # c\n")
    assert a.statements == b.statements


def test_keywords_are_contextual_except_reserved() -> None:
    f, diags = parse("policy p\nrule r: block title mentions 'x' and seller.listing == 'y' and `from` exists\n")
    assert not diags
    _, diags = parse("policy p\nrule r: block seller.from == 'x'\n")
    assert [d.code for d in diags] == ["P100"] and "backquotes" in (diags[0].hint or "")


def test_number_like_tokens_are_read_whole() -> None:
    assert codes("policy p\nrule r: from 2021-2-3 block\n") == [("P101", 2, 14)]
    assert codes("policy p\nrule r: block penalty restrict listing for 30x\n")[0][0] == "P103"
    assert codes("policy p\nrule r: block penalty suspend account for 0d\n")[0][0] == "P103"
    assert codes("policy p\nrule r: block price > 30d\n")[0][0] == "P103"


@pytest.mark.parametrize("number, hint", [("1e2", "100"), ("-1.5E-3", "-0.0015"), ("1e999", "in digits")])
def test_a_number_with_an_exponent_is_a_p100(number: str, hint: str) -> None:
    """Spec section 1: `1e2` is an invalid number, P100 (not a date, P101)."""
    _, diags = parse(f"policy p\nrule r: block price > {number}\n")
    assert [(d.code, d.span.line, d.span.column) for d in diags if d.span] == [("P100", 2, 23)]
    assert "exponent" in diags[0].message and hint in (diags[0].hint or "")


def test_recovery_reports_every_bad_statement_once() -> None:
    text = ("policy p\nrule a: blok category 'X'\nrule b: block category 'Y'\nrule c: block category\n"
            "rule d: flag x == 1\n")
    f, diags = parse(text, "t.policy")
    # the second error is found at the next statement's `rule`, where the string was due
    assert [(d.code, d.span.line) for d in diags] == [("P100", 2), ("P100", 5)]
    assert "`rule`" in diags[1].message
    assert [s.name.name for s in f.statements] == ["b", "d"]  # type: ignore[union-attr]


def test_syntax_messages_use_words_not_terminal_names() -> None:
    _, diags = parse("policy p\nrule r: block category 'X' and\n")
    (d,) = diags
    assert "__ANON" not in d.message and "NAME" not in d.message
    assert "condition" in d.message


def test_header_must_come_first() -> None:
    assert codes("set s = ['a']\npolicy p\n")[0][0] == "P100"


def test_tests_only_in_test_files() -> None:
    t = "test 'x' given {a: 1} at 2021-01-01 expect allow\n"
    assert codes(t, test_file=False)[0][0] == "P100"
    assert codes(t, test_file=True) == []
    assert codes("policy p\nrule r: block\n", test_file=True)[0][0] == "P100"


def test_tests_for_scopes_a_test_file() -> None:
    t = "# about\ntests for ebay-2015, `from`\ntest 'x' given {a: 1} at 2021-01-01 expect allow\n"
    file, diags = parse(t, "t_test.policy", test_file=True)
    assert diags == [] and [p.name for p in file.tests_for.policies] == ["ebay-2015", "from"]
    assert (file.tests_for.span.line, file.tests_for.policies[1].span.column) == (2, 22)
    assert parse("test 'x' given {} at 2021-01-01 expect allow\n", "t_test.policy")[0].tests_for is None
    # only first, once, and only in a test file; elsewhere `tests` is a name
    late = "test 'x' given {} at 2021-01-01 expect allow\ntests for a\n"
    assert codes(late, test_file=True) == [("P100", 2, 1)]
    assert codes("tests for a\ntests for b\n", test_file=True) == [("P100", 2, 1)]
    assert codes("tests for a\nrule r: block\n", test_file=False) == [("P100", 1, 1)]
    assert codes("rule r: block tests > 2\nrule s: flag tests exists\n") == []
    assert codes("tests for\n", test_file=True)[0][0] == "P100"


@pytest.mark.parametrize("text", [
    "", "\x00", "policy p\nrule r: block title contains '\x00'\n", "policy p\x00\n", "'unterminated",
    "/", "`", "rule r: block x matches /abc", "policy p\nrule r: block " + "not " * 5000 + "x exists\n",
    "policy p\nrule r: block " + " and ".join(f"x{i} exists" for i in range(5000)) + "\n",
])
def test_hostile_input_only_gives_diagnostics(text: str) -> None:
    parse(text, "t.policy")


def test_deep_nesting_is_reported_not_crashed() -> None:
    deep = "policy p\nrule r: block " + "(" * 1000 + "x exists" + ")" * 1000 + "\nrule s: block y exists\n"
    f, diags = parse(deep, "t.policy")
    assert [d.code for d in diags] == ["P100"] and str(MAX_DEPTH) in diags[0].message
    assert [s.name.name for s in f.statements] == ["s"]  # type: ignore[union-attr]
    nested = "policy p\nrule r: block " + "(x exists and " * 1000 + "y exists" + ")" * 1000 + "\n"
    f, diags = parse(nested, "t.policy")
    assert [d.code for d in diags] == ["P100"]


def test_empty_file_is_an_empty_policy() -> None:
    f, diags = parse("", "empty.policy")
    assert diags == [] and f.statements == () and f.header is None


def test_string_escapes() -> None:
    f, diags = parse("policy p\nset s = ['a\\'b', \"c\\\"d\", 'e\\\\f', 'g\\nh', 'i\\u{1F600}j']\n")
    assert not diags
    assert [i.value for i in f.statements[0].items] == ["a'b", 'c"d', "e\\f", "g\nh", "i\U0001F600j"]  # type: ignore[union-attr]
    assert codes("policy p\nset s = ['a\\qb']\n")[0][0] == "P100"


def test_regex_slash_escape() -> None:
    f, _ = parse("policy p\nrule r: block sku matches /a\\/b/i\n")
    m = f.statements[0].selector  # type: ignore[union-attr]
    assert m == A.Matches(A.Path(("sku",)), A.Regex("a/b", True))


def test_comments_are_kept() -> None:
    f, _ = parse("# lead\npolicy p # trailing\n# end\n")
    assert [c.text for c in f.comments] == ["# lead", "# trailing", "# end"]


# ---------------------------------------------------------------- our tree is the tree Lark builds

_REPO = Path(__file__).resolve().parents[1]
_seen_comments: list[lark.Token] = []


@pytest.fixture(scope="module")
def reference() -> lark.Lark:
    """Lark as the parser used it before: lark Trees with propagated positions."""
    return lark.Lark(P.grammar_text(), parser="lalr", start=["start", "single"], propagate_positions=True,
                     maybe_placeholders=False, lexer_callbacks={"COMMENT": _seen_comments.append},
                     postlex=driver.WholeWords())


def _token(t: lark.Token) -> tuple[object, ...]:
    return (t.type, str(t), t.start_pos, t.line, t.column, t.end_line, t.end_column, t.end_pos)


def _same_tree(ours: Any, theirs: Any) -> None:
    """Our _Node tree holds what the lark Tree holds: shape, tokens and positions."""
    if isinstance(theirs, lark.Token):
        assert isinstance(ours, lark.Token) and _token(ours) == _token(theirs)
        return
    assert isinstance(ours, tree.Node) and ours.data == theirs.data
    meta = theirs.meta
    if meta.empty:
        assert ours.start is None
    else:
        start, end = ours.start, ours.end
        assert (start.line, start.column, start.start_pos, end.end_line, end.end_column, end.end_pos) == (
            meta.line, meta.column, meta.start_pos, meta.end_line, meta.end_column, meta.end_pos)
    assert len(ours.children) == len(theirs.children)
    for a, b in zip(ours.children, theirs.children, strict=True):
        _same_tree(a, b)


def _texts() -> list[tuple[str, str]]:
    found = sorted((_REPO / "policies").rglob("*.policy")) + sorted((_REPO / "tests" / "golden").rglob("*.policy"))
    texts = [(str(p.relative_to(_REPO)), p.read_text(encoding="utf-8")) for p in found]
    rnd = random.Random(3)
    bits = ["(", ")", "'", "[", "not ", "rule ", ":", "2021-13-45", "`x`", " and ", "\n", "/", ",", "{", "#c\n", "é",
            "\t", "\r\n"]
    for name, text in list(texts):
        for i in range(4):
            p = rnd.randrange(len(text) + 1)
            texts.append((f"{name}~{i}", text[:p] + rnd.choice(bits) + text[p + rnd.randint(0, 3):]))
    texts.append(("deep", "rule a: block " + "(" * 150 + "category 'x'" + ")" * 150 + "\n"))
    texts.append(("empty", ""))
    texts.append(("comments only", "# one\n\n# two"))
    return texts


@pytest.mark.parametrize("name,text", _texts(), ids=lambda x: x if "\n" not in x and len(x) < 80 else "")
def test_driver_builds_the_tree_lark_builds(reference: lark.Lark, name: str, text: str) -> None:
    """The driver (Lark with ``keep_all_tokens`` and our tree builder) gives the tree and the comments that
    Lark's own parser gives, and gives up wherever Lark raises."""
    _seen_comments.clear()
    try:
        theirs = reference.parse(text, start="start")
    except UnexpectedInput:
        with pytest.raises(UnexpectedInput):
            driver.run(text, "start", [])
        return
    comments: list[lark.Token] = []
    _same_tree(driver.run(text, "start", comments), theirs)
    assert [_token(c) for c in comments] == [_token(c) for c in _seen_comments]


def test_an_assertion_or_test_without_its_name_says_so() -> None:
    _, diags = parse('assert always block category "X"\ntest given {a: 1} at 2022-01-01 expect allow\n',
                     "t_test.policy", test_file=True)
    assert [(d.code, d.span.line, d.span.column) for d in diags] == [("P100", 1, 8), ("P100", 2, 6)]
    assert "the name of the assertion was expected, in quotes" in diags[0].message
    assert diags[0].hint is not None and 'assert "' in diags[0].hint
    assert "the name of the test was expected" in diags[1].message


# ---------------------------------------------------------------- words are read whole

# Each text has one word glued to a keyword (marked with «»), in a place where the grammar
# takes that keyword: the word is read whole, as a name, and is a syntax error there.
_GLUED = [
    "rule stirrers: from 2021-07-03 «blocks» mentions 'drink stirrers'",
    "rule software: «blockcategory» 'Software'",
    "«blockcategory» 'Software'",
    "rule r: «fromx» 2021-01-01 block",
    "rule r: from 2021-01-01 «untilx» 2022-01-01 block",
    "rule r: until 2021-01-01 «flags» x exists",
    "rule r: block x exists «andy» exists",
    "rule r: block x exists «ory» exists",
    "rule r: block x «existsx»",
    "rule r: block x «containsy» 'a'",
    "rule r: block x exists «iff» y exists",
    "rule r: block x exists «penaltyx» warn seller",
    "rule r: block x exists penalty warn «sellerand» remove listing",
    "rule r: allow x exists «overridesx» y",
    "rule r: block x exists «becausex» 'b'",
    "ladder l = warn seller «thenremove» listing",
    "«setx» = ['a']",
    "policy p «titlex» 'a'",
    "field x: «textrequired»",
]


@pytest.mark.parametrize("marked", _GLUED)
def test_a_word_glued_to_a_keyword_is_a_syntax_error(marked: str) -> None:
    column = marked.index("«") + 1
    word = marked[column: marked.index("»")]
    text = marked.replace("«", "").replace("»", "") + "\n"
    f, diags = parse(text, "t.policy")
    assert [(d.code, d.span.line, d.span.column) for d in diags if d.span] == [("P100", 1, column)], diags
    assert f"found the name '{word}'" in diags[0].message
    assert diags[0].hint and diags[0].hint.startswith("did you mean `"), diags[0].hint


def test_glued_keywords_in_test_files() -> None:
    text = ("test 'a' given {x: 1} at 2021-01-01 «expectblock»\n"
            "test 'b' given {x: 1} at 2021-01-01 expect «blockby» r\n"
            "assert 'c' «alwaysblock» x exists\n"
            "assert 'd' always «blockx» exists\n")
    want = [(n + 1, line.index("«") + 1) for n, line in enumerate(text.splitlines())]
    _, diags = parse(text.replace("«", "").replace("»", ""), "t_test.policy", test_file=True)
    assert [(d.code, d.span.line, d.span.column) for d in diags if d.span] == [("P100", *w) for w in want]


def test_the_hints_for_glued_and_misspelt_effects() -> None:
    _, diags = parse("policy g\nrule s: blocks mentions 'x'\nrule t: blockcategory 'Software'\n")
    assert [d.message for d in diags] == [
        "found the name 'blocks' where an effect (block, flag or allow), `from` or `until` was expected",
        "found the name 'blockcategory' where an effect (block, flag or allow), `from` or `until` was expected"]
    assert diags[0].hint == "did you mean `block`?"
    assert diags[1].hint is not None and diags[1].hint.startswith("did you mean `block category`?")


def test_keywords_still_read_where_a_name_may_stand() -> None:
    """After an effect without a selector, the next rule's effect is a keyword, not a
    field name (the cause of the check/27 bug), and a word that merely starts with a
    keyword is a field name."""
    f, diags = parse("rule r0: until 2022-01-10 flag\nblock category 'A'\nflag notx exists\n")
    assert diags == []
    assert [(s.effect, s.name) for s in f.statements] == [("flag", A.Ref("r0")), ("block", None), ("flag", None)]  # type: ignore[union-attr]
    assert f.statements[2].selector == A.Exists(A.Path(("notx",)))  # type: ignore[union-attr]


# ---------------------------------------------------------------- valid rule sequences


@st.composite
def rule_files(draw: st.DrawFn) -> A.File:
    """Valid files of rules as the grammar allows them: named and unnamed, every window
    form (none, from, until, from … until), with and without a selector, if, unless,
    penalty (step or ladder), overrides, because, message; names may be contextual
    keywords or need backquotes."""
    n = draw(st.integers(1, 6))
    names = draw(st.lists(S.names(weird=True), min_size=n, max_size=n, unique=True))
    statements = []
    for name in names:
        effect = draw(st.sampled_from(["block", "flag", "allow"]))
        named = draw(st.booleans())
        statements.append(draw(S.rules(name if named else False, effect=effect, overridable=names[:2],
                                       ladder_names=["escalate"], weird_names=True, max_depth=1)))
    header = draw(st.one_of(st.none(), S.headers()))
    return A.File("t.policy", header, tuple(statements))


def _one_line(text: str) -> str:
    """The same statements on one line: the formatter escapes line breaks in strings and
    the generated files hold no comments."""
    return " ".join(text.split("\n"))


@given(rule_files(), st.booleans())
def test_valid_rule_sequences_parse_as_generated(reference: lark.Lark, file: A.File, one_line: bool) -> None:
    """Every valid rule sequence parses without a diagnostic into the rules it was made
    of, Lark's own parser agrees on the tree, and the statement-by-statement recovery
    reads the same rules (check/27 failed all three)."""
    text = format_file(file)
    if one_line:
        text = _one_line(text)
    parsed, diags = parse(text, "t.policy")
    assert diags == [], (text, diags)
    assert (parsed.header, parsed.statements) == (file.header, file.statements), text
    _same_tree(driver.run(text, "start", []), reference.parse(text, start="start"))
    recovered_diags: list[Any] = []
    items, _ = recovery.parse_statements(text, "t.policy", recovered_diags)
    assert recovered_diags == [], (text, recovered_diags)
    assert [i for i in items if not isinstance(i, A.Header)] == list(file.statements), text


# ---------------------------------------------------------------- one P100 per broken statement


@pytest.mark.parametrize("text,line,column", [
    ("rule r0 block category 'A'\n", None, None),                # no `:`: not a P400 for `block …`
    ("rule r0\n  block category 'A'\n", None, None),
    ("rule r: frm 2022-01-01 block x exists\n", 1, 9),
    ("rule r: frm 2022-01-01\n  block x exists\n", 1, 9),
    ("rule r: from 2022-01-01 untill 2022-02-01 flag x exists\n", 1, 25),
    ("rule r: block seller.from == 'x' penalty nosuch\n", 1, 22),  # not also P201
    ("rule r: block x exists because 'a' because 'b' penalty nosuch\n", 1, 36),
])
def test_a_broken_statement_yields_only_its_p100(text: str, line: int | None, column: int | None) -> None:
    file, diags = parse(text, "t.policy")
    _, checked = build([file], syntax_errors=bool(diags))
    assert [d.code for d in diags + checked] == ["P100"], diags + checked
    if line is not None:
        assert diags[0].span is not None and (diags[0].span.line, diags[0].span.column) == (line, column)


def test_a_broken_assertion_yields_only_its_p100() -> None:
    _, diags = parse("assert 'b' alwys block x exists\n", "t_test.policy", test_file=True)
    assert [(d.code, d.span.line, d.span.column) for d in diags if d.span] == [("P100", 1, 12)]


# ---------------------------------------------------------------- limits


@pytest.mark.parametrize("make", [
    lambda n: "(" * n + "x exists" + ")" * n,
    lambda n: "(x exists and " * n + "y exists" + ")" * n,
    lambda n: "not (price > 1 or " * n + "y exists" + ")" * n,
], ids=["parentheses", "and", "not-or"])
def test_the_nesting_limit_is_exactly_max_depth(make: Any) -> None:
    assert MAX_DEPTH == 100  # docs/decisions.md and docs/language.md state it
    at_limit = f"policy p\nrule r: block title contains '((((' and {make(MAX_DEPTH)}\n"
    f, diags = parse(at_limit, "t.policy")
    assert diags == [] and len(f.statements) == 1
    _, diags = parse(at_limit.replace("rule r:", "rule r: blok", 1), "t.policy")  # through recovery too
    assert [d.code for d in diags] == ["P100"]
    over = f"policy p\nrule r: block {make(MAX_DEPTH + 1)}\nrule s: block y exists\n"
    for text in (over, over + "rule t: blok\n"):
        f, diags = parse(text, "t.policy")
        assert [d.code for d in diags][:1] == ["P100"] and f"more than {MAX_DEPTH} levels" in diags[0].message
        assert [s.name.name for s in f.statements] == ["s"]  # type: ignore[union-attr]


@pytest.mark.parametrize("make", [
    lambda n: "{a: " * n + "1" + "}" * n,
    lambda n: "{a: " + "[" * (n - 1) + "1" + "]" * (n - 1) + "}",
], ids=["braces", "brackets"])
def test_a_test_listing_nested_beyond_max_depth_is_a_p100(make: Any) -> None:
    """A test's listing nests braces and square brackets: beyond MAX_DEPTH it is a P100
    (1,000 levels crashed the lowering with a RecursionError), up to it the test is read."""
    def text(n: int) -> str:
        return (f"test 'deep' given {make(n)} at 2024-01-01 expect allow\n"
                "test 'flat' given {} at 2024-01-01 expect allow\n")

    f, diags = parse(text(MAX_DEPTH), "t_test.policy")
    assert diags == [] and len(f.statements) == 2
    for n in (MAX_DEPTH + 1, 1000):
        f, diags = parse(text(n), "t_test.policy")
        assert [d.code for d in diags] == ["P100"] and f"more than {MAX_DEPTH} levels" in diags[0].message
        assert [s.name.value for s in f.statements] == ["flat"]  # type: ignore[union-attr]


def test_a_statements_nesting_is_judged_alone() -> None:
    """Parentheses and brackets count as one depth, whatever the other statements hold
    (a rule 100 parentheses and one list deep was a P100 only beside another rule with a
    parenthesis)."""
    rule = "rule r: block " + "(" * MAX_DEPTH + "x in [1]" + ")" * MAX_DEPTH + "\n"
    for text in ("policy p\n" + rule, "policy p\n" + rule + "rule s: block (y exists)\n"):
        f, diags = parse(text, "t.policy")
        assert [d.code for d in diags] == ["P100"]


@pytest.mark.parametrize("literal", [
    "price > «1" + "0" * 5000,
    "price > «-1" + "0" * 5000,
    "price < «2" + "0" * 400 + ".5",
    "price > 1 penalty suspend account for «1" + "0" * 5000 + "d",
    "price > 1 penalty deduct «1" + "0" * 5000 + " points",
])
def test_a_number_too_long_is_a_p100(literal: str) -> None:
    column = len("rule r: block ") + literal.index("«") + 1
    text = f"rule r: block {literal.replace('«', '')}\nrule s: block price > {'9' * P.MAX_NUMBER_DIGITS}\n"
    f, diags = parse(text, "t.policy")
    assert [(d.code, d.span.line, d.span.column) for d in diags if d.span] == [("P100", 1, column)]
    assert "too long" in diags[0].message and str(P.MAX_NUMBER_DIGITS) in diags[0].message
    assert [s.name.name for s in f.statements] == ["s"]  # type: ignore[union-attr]


def test_numbers_too_long_in_test_files_and_windows() -> None:
    big = "9" * 5000
    _, diags = parse(f"test 'a' given {{price: {big}}} at 2021-01-01 prior {big} expect block\n"
                     f"assert 'b' from {big} always block x exists\n", "t_test.policy", test_file=True)
    assert [(d.code, d.span.line) for d in diags] == [("P100", 1), ("P100", 2)]


_HOSTILE_PIECES = [
    "policy p", "rule r:", "rule s:", "block", "flag", "allow", "from", "until", "2021-01-01", "2021-01-01T08:00Z",
    "price", ">", "==", "1", "1" * 5000, "-" + "9" * 5000, "9" * 301 + ".5", "1" * 5000 + "d", "0d", "1e2",
    "'x'", '"y', "category", "mentions", "any", "contains", "matches", "/a(b/", "/[/", "in", "[", "]", ",",
    "(", ")", "(" * 101, ")" * 101, "not", "and", "or", "exists", "if", "unless", "penalty", "suspend account for",
    "deduct", "points", "warn seller", "overrides", "r", "because", "message", "set s =", "ladder l =", "then",
    "field", "seller.rating", ":", "number", "required", "one of", "\n", "#c\n", "`from`", "blocks", "blockcategory",
    "\x00", "\u2028", "s", "l", "timezone 'Nowhere/City'", "title",
]


@st.composite
def hostile_texts(draw: st.DrawFn) -> str:
    """Valid rule files with hostile pieces spliced in, and sometimes a whole number (not
    one inside a string) grown past every limit; or the pieces alone."""
    if draw(st.integers(0, 3)) == 0:
        return " ".join(draw(st.lists(st.sampled_from(_HOSTILE_PIECES), max_size=25)))
    text = format_file(draw(rule_files()))
    if draw(st.booleans()):
        grow = draw(st.sampled_from(["0" * 5000, "0" * 5000, "0" * 400 + ".5", "0" * 301]))
        numbers = [t for t in driver.tokens(text) if t.type == "NUMLIKE" and re.fullmatch(r"-?\d+", t.value)]
        if numbers:
            t = draw(st.sampled_from(numbers))
            text = text[:t.end_pos] + grow + text[t.end_pos:]
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.sampled_from(_HOSTILE_PIECES)) + text[at + draw(st.integers(0, 3)):]
    return text


@given(hostile_texts())
def test_load_raises_only_policy_error(text: str) -> None:
    """Whatever the text, ``dsl.load`` gives policies or raises PolicyError (issue 10:
    a 5,000-digit number raised ValueError from ``int()``)."""
    import tempfile

    import dsl

    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "p.policy").write_text(text, encoding="utf-8")
        try:
            dsl.load(folder)
        except dsl.PolicyError:
            pass


def test_names_declared_by_broken_statements_are_not_reported_unknown() -> None:
    text = ("policy p\n"
            "ladder esc = warn seler then close account\n"
            "set coins = ['a', 'b'\n"
            "rule miners: blok category 'X'\n"
            "rule `two words`: block x exists because 'a' because 'b'\n"
            "rule a: allow x exists overrides miners, p.`two words`\n"
            "rule b: block mentions any coins penalty esc\n"
            "rule c: block mentions any coinz penalty esk\n")
    f, diags = parse(text, "p.policy")
    assert [(u.kind, u.name) for u in f.unparsed] == [
        ("ladder", "esc"), ("set", "coins"), ("rule", "miners"), ("rule", "two words")]
    _, checked = build([f], syntax_errors=True)
    assert [(d.code, d.span.line) for d in diags + checked if d.span] == [
        ("P100", 2), ("P100", 4), ("P100", 4), ("P100", 5), ("P200", 8), ("P201", 8)]


def test_recovery_keeps_the_comments_before_the_first_statement_with_their_spans() -> None:
    """A file with a syntax error is read statement by statement; its comments are the
    ones the whole parse gives once the error is fixed: those before the first statement
    too, each with its end."""
    text = "# head\n# two\npolicy p\nrule a: block title exists  # tail\nrule b: blok x\n"
    broken, diags = parse(text, "p.policy")
    fixed, _ = parse(text.replace("blok", "block"), "p.policy")
    assert [d.code for d in diags] == ["P100"]
    assert [(c.text, c.span) for c in broken.comments] == [(c.text, c.span) for c in fixed.comments]
    assert [c.text for c in fixed.comments] == ["# head", "# two", "# tail"]


@pytest.mark.parametrize("text", [
    "# header comment\rpolicy cr1\rrule a: block price > 1 # trailing\rrule b: flag price > 0\r",
    "policy cr4\r\nrule a: block price > 1 # c\rrule b: flag price > 0\r\n",
])
def test_a_lone_carriage_return_is_an_error_not_a_comment_running_on(text: str) -> None:
    # '#' runs to the next \n: after a lone \r (an old Mac line end) the statements an
    # editor shows on the next lines were read as part of the comment, silently
    _, diags = parse(text, "cr.policy")
    lone = [d for d in diags if d.code == "P100" and "carriage return" in d.message]
    assert len(lone) == 1 and lone[0].severity == "error"
    span = lone[0].span
    assert span is not None and text[span.start:span.end] == "\r" and text[span.end:span.end + 1] != "\n"
    before = text[:span.start]
    assert (span.line, span.column) == (before.count("\n") + 1, len(before) - before.rfind("\n"))


def test_crlf_line_ends_are_line_ends() -> None:
    f, diags = parse("policy ok\r\nrule a: block price > 1 # c\r\nrule b: flag price > 0\r\n", "ok.policy")
    assert diags == [] and [s.name.name for s in f.statements if isinstance(s, A.Rule) and s.name] == ["a", "b"]


def test_long_lists_keep_every_item_and_nothing_else() -> None:
    # a list's helper rule is reduced once an item, and Lark hands back its last result with
    # the new children appended: only those are filtered (filtering all again was quadratic,
    # 20,000 items took seconds); the items, and none of the commas, are kept
    n = 3000
    words = [f"w{i}" for i in range(n)]
    text = ("policy p\nset s = [" + ", ".join(f"'{w}'" for w in words) + ",]\n"
            "rule r: block " + " or ".join(f"title contains '{w}'" for w in words[:500]) + "\n"
            "rule q: block category in [" + ", ".join(f"'{w}'" for w in words) + "]\n")
    f, diags = parse(text, "long.policy")
    assert diags == []
    set_decl, r, q = f.statements
    assert isinstance(set_decl, A.SetDecl) and [i.value for i in set_decl.items] == words
    assert isinstance(r, A.Rule) and isinstance(r.selector, A.Or) and len(r.selector.items) == 500
    assert isinstance(q, A.Rule) and isinstance(q.selector, A.CategoryIn)
    assert [i.value for i in q.selector.items.items] == words
    assert all(last == [None] for last in driver.lark().options.transformer.lasts)  # forgotten after the parse


def test_by_and_no_are_names_after_an_effect_in_rules_and_assertions_alike() -> None:
    """`by` and `no` are keywords of a test's `expect` only. After a rule's effect they were
    taken for those keywords (the effect's grammar rule was shared with `expect`), so
    `block by exists` was a syntax error in a rule and in an assertion; both read the
    field `by` now."""
    rule, diags = parse("policy p\nrule r: block by exists\nrule s: flag no == 'x'\n")
    assert diags == [] and [s.selector for s in rule.statements] == [
        A.Exists(A.Path(("by",))), A.Compare(A.Path(("no",)), "==", A.Str("x"))]
    tests, diags = parse("tests for p\nassert 'x' always block by exists\n", "p_test.policy", test_file=True)
    assert diags == [] and tests.statements[0].expr == A.Exists(A.Path(("by",)))
    expect, diags = parse("tests for p\ntest 'x' given {by: 1} at 2021-10-10 expect block by r\n",
                          "p_test.policy", test_file=True)
    assert diags == [] and expect.statements[0].expect.by[0].name == "r"


def test_a_keyword_out_of_place_is_named_as_the_keyword() -> None:
    """Where the parser takes no keyword a word is read as a name: the error still says
    the keyword, not 'the name …'."""
    for text, found in (("policy p and\n", "found `and` where"), ("set s title\n", "found `title` where '='")):
        _, diags = parse(text)
        assert [d.code for d in diags] == ["P100"] and found in diags[0].message, diags[0].message
        assert diags[0].hint is None or "is a keyword" not in diags[0].hint


def test_double_equals_in_a_declaration_is_named_whole() -> None:
    """Where the parser takes `=` alone, its lexer reads `==` as two: the error was at the
    second, "found `=` where '[' was expected"."""
    for text, column in (("set s == [1]\n", 7), ("ladder l == warn seller\n", 10)):
        _, diags = parse(text)
        assert [(d.code, d.message, d.span.column, d.span.end_column) for d in diags] == [
            ("P100", "found `==` where '=' was expected", column, column + 2)]
        assert "one `=`" in (diags[0].hint or "")
