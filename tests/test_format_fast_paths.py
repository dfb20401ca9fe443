"""The formatter's fast paths (issue 13: ``policy_hash`` formats every statement of a set on
load) write the same bytes as the plain code they shortcut: a rule laid out on one line,
names and strings tested without a regular expression, remembered path and date texts, and
``policy_hash`` itself, pinned on a small set so that no change of the formatter moves it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from strategies import exprs, names, rules, texts

from dsl.checking.frontend import compile_paths
from dsl.fingerprint import policy_hash
from dsl.syntax import ast as A
from dsl.syntax import format as F
from dsl.syntax.grammar import RESERVED

# ---------------------------------------------------------------- references: the plain code


def _reference_rule_lines(r: A.Rule) -> list[str]:
    """``_rule_lines`` as it was before its one-line fast path."""
    head = f"rule {F._ref(r.name)}:" if r.name is not None else None
    lead = " ".join([*F._window(r.from_, r.until), r.effect])
    expr_clauses = F._condition_clauses(r)
    plain = F._plain_clauses(r)
    words = [head] if head else []
    words.append(lead)
    if r.selector is not None:
        words.append(F._expr(r.selector, "top"))
    words += [f"{kw} {F._expr(e, 'top')}" for kw, e in expr_clauses]
    words += plain
    one = " ".join(words)
    if F._width(one) <= F.WIDTH:
        return [one]
    lines: list[str] = []
    indent = ""
    if head:
        lines.append(head)
        indent = F._INDENT
    if r.selector is not None:
        lines += F._wrap_expr(f"{indent}{lead} ", r.selector, F._CONT)
    else:
        lines.append(indent + lead)
    for kw, e in expr_clauses:
        lines += F._wrap_expr(f"{F._INDENT}{kw} ", e, F._CONT)
    lines += [F._INDENT + p for p in plain]
    return lines


def _reference_expr(e: A.Expr, ctx: str) -> str:
    """``_expr`` as it was before it read the atoms' table first."""
    if isinstance(e, (A.And, A.Or)):
        if not e.items:
            return "true" if isinstance(e, A.And) else "false"
        if len(e.items) == 1:
            return _reference_expr(e.items[0], ctx)
        if isinstance(e, A.Or):
            text = " or ".join(_reference_expr(i, "or") for i in e.items)
            return f"({text})" if ctx in ("and", "not") else text
        text = " and ".join(_reference_expr(i, "and") for i in e.items)
        return f"({text})" if ctx == "not" else text
    if isinstance(e, A.Not):
        count = 0
        while isinstance(e, A.Not) and not isinstance(e.operand, A.CategoryIn):
            count += 1
            e = e.operand
        if isinstance(e, A.Not) and isinstance(e.operand, A.CategoryIn):
            inner = f"category not in {F.format_literal(e.operand.items)}"
        else:
            inner = _reference_expr(e, "not")
        return "not " * count + inner
    return F._atom(e)


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_QUOTED = re.compile(r"['\"\\]")


def _reference_name_is_plain(name: str) -> bool:
    return bool(_NAME_RE.fullmatch(name)) and name not in RESERVED


def _reference_string(s: str) -> str:
    if s.isascii() and s.isprintable() and not _QUOTED.search(s):
        return f"'{s}'"
    quote = '"' if ("'" in s and '"' not in s) else "'"
    out = [quote]
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif F._needs_escape(ch):
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)


# ---------------------------------------------------------------- properties


@given(rules(name=None, weird_names=True, max_depth=3, overridable=("a", "p.b"), ladder_names=("close", "esc")))
def test_a_rule_formats_as_the_plain_layout_does(rule: A.Rule) -> None:
    assert F._rule_lines(rule) == _reference_rule_lines(rule)
    assert F.format_statement(rule) == "\n".join(_reference_rule_lines(rule)) + "\n"


@given(exprs(3))
def test_an_expression_formats_as_the_plain_code_formats_it(e: A.Expr) -> None:
    # the atoms' table is read before and/or/not are told apart
    for wrapped in (e, A.Not(e), A.And((e, A.Or((e, e)))), A.Not(A.Not(e))):
        assert F.format_expr(wrapped) == _reference_expr(wrapped, "top")


@given(st.one_of(names(weird=True), st.text(max_size=12), st.sampled_from(sorted(RESERVED))))
def test_names_are_plain_exactly_when_the_name_pattern_says_so(name: str) -> None:
    try:
        text = F.format_name(name)
    except ValueError:
        assert not _reference_name_is_plain(name)
        return
    assert (text == name) == _reference_name_is_plain(name)


@given(st.one_of(texts(), st.text(max_size=12), st.sampled_from(["", "'", '"', "\\", "a'b\"c", "\x7f"])))
def test_strings_are_written_as_the_plain_code_writes_them(s: str) -> None:
    assert F._string(s) == _reference_string(s)


def test_remembered_path_and_date_texts_are_the_computed_ones() -> None:
    # past the size, the tables empty and start again: the texts never change
    path_size = F._path_text.cache_info().maxsize
    assert path_size is not None
    for n in range(path_size + 10):
        parts = ("seller", f"f{n}") if n % 2 else ("if", f"x-{n}")
        assert F.format_path(A.Path(parts)) == ".".join(F.format_name(p) for p in parts)
        assert F._path_text.cache_info().currsize <= path_size
    assert F.format_path(A.Path(("if", "b"))) == "`if`.b"
    day = dt.date(2000, 1, 1)
    date_size = F._date_text.cache_info().maxsize
    assert date_size is not None
    for n in range(date_size + 10):
        d = day + dt.timedelta(days=n)
        assert F.format_when(A.Date(d)) == d.isoformat()
        assert F._date_text.cache_info().currsize <= date_size
    # a date-time is never taken for the date of its day
    assert F.format_when(A.DateTime(dt.datetime(2000, 1, 1, 10, 30))) == "2000-01-01T10:30"
    assert F.format_when(A.Date(day)) == "2000-01-01"


# ---------------------------------------------------------------- policy_hash, pinned

_ALPHA = """\
policy alpha
  title "Pinned policy_hash"
  authority "tests/test_format_fast_paths.py"
  timezone "Asia/Shanghai"

set coins = ['bitcoin', 'ether', "it's", 'back\\\\slash', '比特币']
ladder escalate = remove listing then remove listing and deduct 6 points then close account
field seller.rating: number
field platform: text
field seller.id-code: text

rule r0: from 2021-10-05 block category 'Category 00000' if platform in ['taobao', 'aliexpress'] penalty escalate
rule `if`: from 2021-03-04T10:30+08:00 until 2022-01-01 flag category 'Tab\\there' because 'a "quoted" reason'
block category 'Unnamed' unless seller.rating >= 4.5
rule long: from 2021-01-01 block category 'Electronics > Phones > Accessories' if (platform in ['taobao', \
'tmall', 'aliexpress', 'lazada'] or mentions any coins) and not seller.rating < 2 penalty deduct 3 points \
message 'Too long for one line'
rule bidi: flag mentions 'bit\\u{200b}coin' unless seller.id-code exists
rule keep: allow category 'Category 00000' overrides r0
"""

_BETA = """\
policy beta
  version "2"

rule only: until 2030-12-31T23:59:30Z block title matches /bit\\/coin/i
"""

_PINNED = "sha256:e4c6db29ab145f12d122279e89122849261f24b6c930d43333f6d351dbd218be"
"""Computed by the formatter before its fast paths (commit 16699c9): a change of this
value changes every deployed set's policy_hash, so it is never updated casually."""


def test_policy_hash_is_pinned(tmp_path: Path) -> None:
    (tmp_path / "a.policy").write_text(_ALPHA, encoding="utf-8")
    (tmp_path / "b.policy").write_text(_BETA, encoding="utf-8")
    model, _, diags = compile_paths(tmp_path)
    assert model is not None, [d.message for d in diags]
    assert policy_hash(model) == _PINNED
