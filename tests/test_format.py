"""Tests for dsl.syntax.format: golden files, token forms, and properties (idempotent, keeps the
AST, keeps every comment; arbitrary or mangled text never crashes the parser or the
formatter).

Golden files: ``tests/golden/format/X.policy`` -> ``X.policy.formatted``, and every
``*.policy`` of the shared conformance corpus (read in place from
``../shared/conformance``) -> ``tests/golden/format/conformance/<same path>.formatted``, or
``.error`` for a file with syntax errors. Regenerate them with
``UPDATE_GOLDEN=1 python -m pytest tests/test_format.py`` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from strategies import assertions_and_tests, exprs, files_of_tests, policy_files, policy_texts

from dsl.diagnostics import ERROR, PolicyError
from dsl.syntax import ast as A
from dsl.syntax import parse
from dsl.syntax.format import (
    canonical_clause_order,
    format_expr,
    format_file,
    format_literal,
    format_name,
    format_source,
    format_statement,
    format_step,
    format_when,
)

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "format"
CONFORMANCE = ROOT.parent / "shared" / "conformance"
POLICIES = ROOT / "policies"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


# ---------------------------------------------------------------- helpers


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _errors(diags: list) -> list:
    return [d for d in diags if d.severity == ERROR]


def _canonical(file: A.File) -> tuple:
    """What formatting must keep: the header (clauses in canonical order) and statements."""
    header = file.header
    if header is not None:
        header = A.Header(header.name, canonical_clause_order(header.clauses))
    return header, file.statements


def _test_file_flag(path: str) -> bool | None:
    return True if path.endswith("_test.policy") else None


def assert_round_trip(text: str, path: str = "<string>") -> str:
    """``text`` has no syntax error: its format reads back to the same AST, formats to
    itself, and keeps every comment. Returns the formatted text."""
    file, diags = parse(text, path, test_file=_test_file_flag(path))
    assert not _errors(diags), [d.message for d in diags]
    out = format_file(file)
    again, diags2 = parse(out, path, test_file=_test_file_flag(path))
    assert not _errors(diags2), (out, [d.message for d in diags2])
    assert _canonical(again) == _canonical(file), out
    assert format_file(again) == out, out
    assert sorted(c.text.rstrip() for c in again.comments) == sorted(c.text.rstrip() for c in file.comments)
    assert format_file(again, comments=False) == format_file(file, comments=False)
    return out


def _check_golden(actual: str, golden: Path) -> None:
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"{golden} is missing: run with UPDATE_GOLDEN=1 and review it"
    assert actual == _read(golden)


def _describe_errors(e: PolicyError) -> str:
    return "".join(
        f"{d.code} at {d.span.line}:{d.span.column}: {d.message}\n" for d in e.diagnostics if d.span
    )


# ---------------------------------------------------------------- golden files

OWN_INPUTS = sorted(GOLDEN.glob("*.policy"))
CONFORMANCE_INPUTS = sorted(CONFORMANCE.rglob("*.policy")) if CONFORMANCE.is_dir() else []


@pytest.mark.parametrize("source", OWN_INPUTS, ids=lambda p: p.name)
def test_golden(source: Path) -> None:
    text = source.read_bytes().decode("utf-8")  # keep \r\n: crlf.policy tests them
    out = assert_round_trip(text, source.name)
    _check_golden(out, source.with_name(source.name + ".formatted"))


GOLDEN_SKIP: dict[str, str] = {}
"""Conformance files whose golden output cannot be right yet, each with its reason."""


@pytest.mark.skipif(not CONFORMANCE_INPUTS, reason="../shared/conformance is not there")
@pytest.mark.parametrize("source", CONFORMANCE_INPUTS, ids=lambda p: str(p.relative_to(CONFORMANCE)))
def test_golden_conformance(source: Path) -> None:
    rel = source.relative_to(CONFORMANCE)
    if rel.as_posix() in GOLDEN_SKIP:
        pytest.skip(GOLDEN_SKIP[rel.as_posix()])
    target = GOLDEN / "conformance" / rel
    text = _read(source)
    try:
        out = format_source(text, str(rel))
    except PolicyError as e:
        _check_golden(_describe_errors(e), target.with_name(target.name + ".error"))
        return
    assert_round_trip(text, str(rel))
    _check_golden(out, target.with_name(target.name + ".formatted"))


def _policy_dir_files() -> list[Path]:
    return sorted(POLICIES.rglob("*.policy")) if POLICIES.is_dir() else []


@pytest.mark.parametrize("source", _policy_dir_files() or [None],
                         ids=lambda p: str(p.relative_to(POLICIES)) if p else "none")
def test_project_policies_format_idempotently(source: Path | None) -> None:
    """The policies under policies/ (written by others): idempotent, AST kept. A file with
    syntax errors is somebody else's work in progress: nothing is asserted for it."""
    if source is None:
        pytest.skip("no policies/ files yet")
    text = _read(source)
    _, diags = parse(text, str(source), test_file=_test_file_flag(source.name))
    if _errors(diags):
        return
    assert_round_trip(text, source.name)


# ---------------------------------------------------------------- tokens


@pytest.mark.parametrize("value, text", [
    ("plain", "'plain'"),
    ("it's", '"it\'s"'),
    ("both ' and \"", "'both \\' and \"'"),
    ('say "hi"', "'say \"hi\"'"),
    ("a\\b", "'a\\\\b'"),
    ("a\nb\tc", "'a\\nb\\tc'"),
    ("\x00\x7f\r\u2028\u202e", "'\\u{0}\\u{7f}\\u{d}\\u{2028}\\u{202e}'"),
    ("比特币 Ａ é", "'比特币 Ａ é'"),
    ("bit\u200bcoin\ufeff", "'bit\\u{200b}coin\\u{feff}'"),
    ("bit\u00adcoin\u200d\ufff9\U000e0001", "'bit\\u{ad}coin\\u{200d}\\u{fff9}\\u{e0001}'"),
])
def test_strings(value: str, text: str) -> None:
    assert format_literal(A.Str(value)) == text
    rule, _ = parse(f"rule r: block title == {text}")
    assert rule.statements[0].selector.value == A.Str(value)


@pytest.mark.parametrize("value, text", [
    (0, "0"), (-3, "-3"), (10**21, "1000000000000000000000"), (19.99, "19.99"), (1.5, "1.5"),
    (2.0, "2.0"), (-0.0, "-0.0"), (1e-07, "0.0000001"), (1.5e20, "150000000000000000000.0"),
])
def test_numbers(value: float, text: str) -> None:
    assert format_literal(A.Num(value)) == text
    rule, diags = parse(f"rule r: block price == {text}")
    assert not diags
    got = rule.statements[0].selector.value.value
    assert got == value and type(got) is type(value)


def test_non_finite_numbers_cannot_be_written() -> None:
    with pytest.raises(ValueError):
        format_literal(A.Num(float("nan")))


@pytest.mark.parametrize("value, text", [
    (A.Date(dt.date(2021, 10, 15)), "2021-10-15"),
    (A.DateTime(dt.datetime(2021, 10, 15, 8, 0)), "2021-10-15T08:00"),
    (A.DateTime(dt.datetime(2021, 10, 15, 8, 0, 30)), "2021-10-15T08:00:30"),
    (A.DateTime(dt.datetime(2021, 10, 15, 8, 0, 0, 250000)), "2021-10-15T08:00:00.25"),
    (A.DateTime(dt.datetime(2021, 10, 15, 8, 0, tzinfo=dt.UTC)), "2021-10-15T08:00Z"),
    (A.DateTime(dt.datetime(2021, 10, 15, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))), "2021-10-15T08:00+08:00"),
    (A.DateTime(dt.datetime(2021, 10, 15, 8, 0, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30)))),
     "2021-10-15T08:00-05:30"),
])
def test_whens(value: A.When, text: str) -> None:
    assert format_when(value) == text
    assert format_literal(value) == text


@pytest.mark.parametrize("hours, text", [(24, "1d"), (336, "14d"), (36, "36h"), (12, "12h")])
def test_durations(hours: int, text: str) -> None:
    assert format_literal(A.Duration(hours)) == text


@pytest.mark.parametrize("pattern, flag, text", [
    ("^CM-[0-9]{4}$", False, "/^CM-[0-9]{4}$/"),
    ("a/b", True, "/a\\/b/i"),
    ("a\\\\/b", False, "/a\\\\\\/b/"),
    ("\\d+\\.", False, "/\\d+\\./"),
])
def test_regexes(pattern: str, flag: bool, text: str) -> None:
    assert format_literal(A.Regex(pattern, flag)) == text
    file, diags = parse(f"rule r: block sku matches {text}")
    assert not diags and file.statements[0].selector.regex == A.Regex(pattern, flag)


@pytest.mark.parametrize("name, text", [
    ("miners", "miners"), ("ban-2021", "ban-2021"), ("_x", "_x"), ("from", "`from`"),
    ("category", "`category`"), ("two words", "`two words`"), ("名前", "`名前`"), ("9lives", "`9lives`"),
    ("title", "title"),
])
def test_names(name: str, text: str) -> None:
    assert format_name(name) == text


def test_unwritable_names() -> None:
    for bad in ("", "a`b", "a\nb"):
        with pytest.raises(ValueError):
            format_name(bad)


def _e(text: str) -> A.Expr:
    file, diags = parse(f"rule r: block {text}")
    assert not diags, diags
    return file.statements[0].selector


@pytest.mark.parametrize("text, canonical", [
    ("a == 1 and (b == 2 or c == 3)", "a == 1 and (b == 2 or c == 3)"),
    ("(a == 1 and b == 2) or c == 3", "a == 1 and b == 2 or c == 3"),
    ("(a == 1 and b == 2) and c == 3", "a == 1 and b == 2 and c == 3"),
    ("not (a == 1 and b == 2)", "not (a == 1 and b == 2)"),
    ("not (a == 1 or b == 2)", "not (a == 1 or b == 2)"),
    ("not (a == 1)", "not a == 1"),
    ("not not a exists", "not not a exists"),
    ("not category in ['X']", "category not in ['X']"),
    ("category not in coins", "category not in coins"),
    ("not category not in ['X']", "not category not in ['X']"),
    ("seller not in ['S-1']", "seller not in ['S-1']"),
    ("not seller in ['S-1']", "not seller in ['S-1']"),
    ("category == 'X'", "category == 'X'"),
    ("mentions any [\"a\", 'b']", "mentions any ['a', 'b']"),
    ("seller.`from` contains 'x'", "seller.`from` contains 'x'"),
    ("((true))", "true"),
])
def test_expressions(text: str, canonical: str) -> None:
    e = _e(text)
    assert format_expr(e) == canonical
    assert _e(canonical) == e


def test_hand_built_expressions() -> None:
    x, y = A.Exists(A.Path(("x",))), A.Exists(A.Path(("y",)))
    assert format_expr(A.And((x,))) == "x exists"
    assert format_expr(A.Not(A.Or((x, y)))) == "not (x exists or y exists)"
    assert format_expr(A.Or((A.And((x, y)), A.Not(x)))) == "x exists and y exists or not x exists"
    assert format_expr(A.And((A.Or((x, y)), x))) == "(x exists or y exists) and x exists"


def test_steps() -> None:
    step = A.Step((A.Action("remove"), A.Action("deduct", points=6),
                   A.Action("restrict", function="listing", duration=A.Duration(336)),
                   A.Action("suspend", duration=A.Duration(12)), A.Action("warn"), A.Action("close")))
    assert format_step(step) == ("remove listing and deduct 6 points and restrict listing for 14d and "
                                 "suspend account for 12h and warn seller and close account")


def test_contextual_keywords_as_names() -> None:
    """Ladder names that read as a penalty action, or as `step` in an expectation, get
    backquotes where the parser would otherwise take the keyword."""
    text = "ladder close = close account\nrule r: block penalty `close`\n"
    assert format_source(text) == "ladder close = close account\n\nrule r: block penalty `close`\n"
    text = "test 'x' given {} at 2021-01-01 expect block penalty `step` step 1"
    assert "penalty `step` step 1" in format_source(text)


def test_header_clauses_in_canonical_order() -> None:
    text = "policy p scope a == 1 timezone 'UTC' authority 'B' version '1' authority 'A' title 'T'"
    assert format_source(text) == (
        "policy p\n  title 'T'\n  authority 'B'\n  authority 'A'\n  version '1'\n"
        "  timezone 'UTC'\n  scope a == 1\n"
    )


def test_format_source_raises_on_syntax_errors() -> None:
    for bad in ("rule r: blok category 'X'", "rule r: from 2021-02-30 block", "set s = [", "rule r: block x == 30x"):
        with pytest.raises(PolicyError) as info:
            format_source(bad)
        assert info.value.diagnostics


def test_empty_and_blank_files() -> None:
    assert format_source("") == ""
    assert format_source("\n\n   \n") == ""
    assert format_source("# c\n\n\n") == "# c\n"


def test_comments_without_positions_go_to_the_end() -> None:
    file = A.File("x", None, (A.Rule(A.Ref("r"), "block"),), (A.Comment("# hand-made  "),))
    assert format_file(file) == "rule r: block\n# hand-made\n"
    assert format_file(file, comments=False) == "rule r: block\n"


def test_comment_placement() -> None:
    text = (
        "policy p # t0\n"
        "  # c1\n"
        "  title 'x'\n"
        "\n"
        "\n"
        "# c2\n"
        "\n"
        "\n"
        "# c3\n"
        "rule a: # c4\n"
        "  block # c5\n"
        "  true # c6\n"
        "rule b: flag\n"
        "\n"
        "# c7\n"
    )
    assert format_source(text) == (
        "policy p  # t0\n"
        "  # c1\n"
        "  title 'x'\n"
        "\n"
        "# c2\n"
        "\n"
        "# c3\n"
        "# c4\n"
        "# c5\n"
        "rule a: block true  # c6\n"
        "rule b: flag\n"
        "\n"
        "# c7\n"
    )


def test_comments_on_set_items_stay_with_their_items() -> None:
    text = "set exempt = [\n  'museum',   # pre-1947 pieces are exempt\n  'antique',\n]\n"
    out = format_source(text)
    assert out == "set exempt = [\n  'museum',  # pre-1947 pieces are exempt\n  'antique',\n]\n"
    assert format_source(out) == out
    # a comment on a set that fits on one line makes it one item a line
    assert format_source("set s = ['a', # why a\n 'b']\n") == "set s = [\n  'a',  # why a\n  'b',\n]\n"
    # own-line comments stay above the next item, or before `]`; the `[` line keeps its own
    assert format_source("set s = [ # all\n# about b\n'a', 'b'\n# b was last\n]") == (
        "set s = [  # all\n  # about b\n  'a',\n  'b',\n  # b was last\n]\n")


@st.composite
def sets_with_item_comments(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    """A set written one item a line (items several to a line sometimes), with comments
    after items and on lines of their own; and, per trailing comment, the item it follows."""
    items = draw(st.lists(st.sampled_from(["'a'", "'b c'", "1", "2.5", "true", "2021-10-08", '"it\'s"']),
                          min_size=1, max_size=6))
    lines = ["set s = ["]
    after: dict[str, str] = {}
    for n, item in enumerate(items):
        if draw(st.booleans()):
            lines.append(f"  # above {n}")
        joiner = " " if draw(st.booleans()) and lines[-1].rstrip().endswith(",") and "#" not in lines[-1] else None
        piece = f"{item},"
        if joiner:
            lines[-1] += joiner + piece
        else:
            lines.append("  " + piece)
        if draw(st.booleans()):
            lines[-1] += f"  # after {n}"
            after[f"# after {n}"] = item
    if draw(st.booleans()):
        lines.append("  # closing")
    lines.append("]")
    return "\n".join(lines) + "\n", after


@given(sets_with_item_comments())
def test_item_comments_stay_on_their_items_line(case: tuple[str, dict[str, str]]) -> None:
    text, after = case
    out = assert_round_trip(text)
    for comment, item in after.items():
        (line,) = [x for x in out.splitlines() if x.endswith(comment)]
        assert line.startswith("  " + format_literal(parse(f"set t = [{item}]")[0].statements[0].items[0]) + ",")


# ---------------------------------------------------------------- properties


@given(policy_files(schema=None, mixed_order=True, weird_names=True))
def test_generated_files_round_trip(file: A.File) -> None:
    text = format_file(file)
    parsed, diags = parse(text, file.path)
    assert not _errors(diags), (text, [d.message for d in diags])
    assert parsed.header == file.header
    assert parsed.statements == file.statements
    assert format_file(parsed) == text


@given(files_of_tests())
def test_generated_test_files_round_trip(file: A.File) -> None:
    text = format_file(file)
    parsed, diags = parse(text, "generated_test.policy", test_file=True)
    assert not _errors(diags), (text, [d.message for d in diags])
    assert parsed.statements == file.statements
    assert parsed.tests_for == file.tests_for
    assert format_file(parsed) == text


@given(exprs(3))
def test_expressions_round_trip(e: A.Expr) -> None:
    assert _e(format_expr(e)) == e


def _real_texts() -> list[str]:
    texts = [_read(p) for p in OWN_INPUTS + CONFORMANCE_INPUTS]
    return [t for t in texts if not _errors(parse(t)[1])]


REAL_TEXTS = _real_texts()


@st.composite
def commented_texts(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A valid text with comments added at line ends and on lines of their own (inside
    multi-line statements too), and blank lines added here and there."""
    base = draw(st.one_of(st.sampled_from(REAL_TEXTS), policy_texts(max_rules=3)))
    lines = base.split("\n")
    added: list[str] = []
    out: list[str] = []
    for i, line in enumerate(lines):
        what = draw(st.sampled_from(["keep", "keep", "trail", "above", "blank"]))
        if what == "above":
            added.append(f"# above {i}")
            out.append("  " * draw(st.integers(0, 2)) + added[-1])
        elif what == "blank":
            out.extend([""] * draw(st.integers(1, 3)))
        if what == "trail" and line.strip():
            added.append(f"#trail {i} 'x' \"y\"")
            out.append(f"{line}   {added[-1]}  ")
        else:
            out.append(line)
    return "\n".join(out), added


@given(commented_texts())
def test_comments_are_kept_and_formatting_is_idempotent(case: tuple[str, list[str]]) -> None:
    text, added = case
    file, diags = parse(text)
    assume(not _errors(diags))
    out = assert_round_trip(text)
    for comment in added:
        assert comment in out


_TOKEN = re.compile(
    r"""\#[^\n]*|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"|`[^`\n]+`|/(?:\\.|[^\\/\n])*/i?
    |[A-Za-z_][A-Za-z0-9_-]*|-?[0-9][A-Za-z0-9_.:+\-]*|==|!=|<=|>=|\S""",
    re.VERBOSE,
)
_EXTRA_TOKENS = ["rule", "block", "allow", "and", "or", "not", "(", ")", "[", "]", "{", "}", ",", ":", ".",
                 "=", "'s'", '"', "'", "/x/", "/", "`", "#", "2021-10-08", "30d", "0d", "2021-2-3", "1e5",
                 "then", "penalty", "overrides", "category", "mentions", "any", "in", "exists", "\\u{d800}",
                 "'\\q'", "'\\u{110000}'", "policy", "test", "given", "at", "expect", "assert", "always"]


@st.composite
def mutated_texts(draw: st.DrawFn) -> str:
    """A valid text with tokens deleted, duplicated, swapped or inserted."""
    base = draw(st.one_of(st.sampled_from(REAL_TEXTS), policy_texts(max_rules=3)))
    spans = [(m.start(), m.end()) for m in _TOKEN.finditer(base)]
    pieces: list[str] = []
    last = 0
    for _start, e in spans:  # each piece: the white space before a token, then the token
        pieces.append(base[last:e])
        last = e
    tail = base[last:]
    for _ in range(draw(st.integers(1, 4))):
        if not pieces:
            break
        i = draw(st.integers(0, len(pieces) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete":
            del pieces[i]
        elif op == "duplicate":
            pieces.insert(i, pieces[i])
        elif op == "swap":
            j = draw(st.integers(0, len(pieces) - 1))
            pieces[i], pieces[j] = pieces[j], pieces[i]
        else:
            pieces.insert(i, " " + draw(st.sampled_from(_EXTRA_TOKENS)))
    return "".join(pieces) + tail


def _format_or_policy_error(text: str) -> None:
    """format_source raises nothing but PolicyError; when it succeeds, the result is stable."""
    try:
        out = format_source(text)
    except PolicyError:
        return
    assert_round_trip(text)
    assert format_source(out) == out


@given(st.text())
@example("rule r: block " + "(" * 500 + "true" + ")" * 500)
@example("\x00\ufeff# \u2028 rule")
def test_arbitrary_text_never_crashes(text: str) -> None:
    parse(text)
    parse(text, "x_test.policy", test_file=True)
    _format_or_policy_error(text)


def test_long_not_chains_are_limited() -> None:
    text = "rule r: block " + "not " * 2000 + "true"
    file, diags = parse(text)
    assert [d.code for d in _errors(diags)] == ["P100"] and file.statements == ()


def test_long_not_chains_format() -> None:
    e: A.Expr = A.Const(True)
    for _ in range(5000):
        e = A.Not(e)
    assert format_expr(e) == "not " * 5000 + "true"


@given(mutated_texts())
def test_mutated_texts_never_crash(text: str) -> None:
    parse(text)
    _format_or_policy_error(text)


@given(assertions_and_tests())
def test_test_statements_format_on_indented_lines(stmt: A.TestCase | A.Assertion) -> None:
    text = format_file(A.File("t_test.policy", None, (stmt,)))
    first, *rest = text.rstrip("\n").split("\n")
    assert first.startswith(("test ", "assert "))
    assert rest and all(line.startswith("  ") for line in rest)


@given(policy_files())
def test_a_statement_formats_as_a_file_holding_only_it(file: A.File) -> None:
    """``format_statement`` (what policy_hash digests) is the text of a file with that
    statement alone, comments left out."""
    import attrs

    for s in file.statements:
        assert format_statement(s) == format_file(attrs.evolve(file, header=None, statements=(s,)), comments=False)


@given(st.text())
@example("plain text 123")
@example("it's")
@example('say "hi"')
@example("back\\slash")
@example("tab\tand\nnewline")
@example("bit\u200bcoin")
@example("caf\u00e9")
def test_strings_read_back_as_written(value: str) -> None:
    """A string literal's text, plain ASCII or escaped, parses back to the same value."""
    text = format_literal(A.Str(value))
    file, diags = parse(f"policy p\nrule r: block title == {text}\n")
    assert not [d for d in diags if d.severity == ERROR], (text, diags)
    (rule,) = file.statements
    assert isinstance(rule, A.Rule) and isinstance(rule.selector, A.Compare)
    assert rule.selector.value == A.Str(value)
