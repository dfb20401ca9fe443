"""Lowering: the parse tree (``tree.Node``) to the AST (``dsl.syntax.ast``), with the diagnostics
that only the lowering can give (P100 for keywords used as names, numbers too long,
nesting too deep; P101 for dates, P103 for durations), and the file's statements
arranged (the header first, tests only in test files, `tests for` at the top)."""

from __future__ import annotations

import datetime as dt
import decimal
import re
import sys
from collections.abc import Callable
from typing import Any

from lark import Token

from ..diagnostics import Diagnostic, make
from ..span import Lines
from . import ast as A
from . import hints
from .driver import tokens
from .grammar import RESERVED
from .tree import Node

MAX_NUMBER_DIGITS = 300
"""How many digits a number may have before its decimal point (durations, points and
steps too). Longer ones get a P100: beyond it a decimal is no longer a finite float, and
Python refuses to read integers of over 4,300 digits."""

MAX_DEPTH = 100
"""How deeply expressions may nest. Deeper input gets a P100 instead of exhausting the
Python stack in later stages."""


def token_span(path: str, tok: Token, offset: tuple[int, int, int]) -> A.Span:
    line0, col0, pos0 = offset
    line = (tok.line or 1)
    end_line = tok.end_line or line
    col = (tok.column or 1) + (col0 - 1 if line == 1 else 0)
    end_col = (tok.end_column or col) + (col0 - 1 if end_line == 1 else 0)
    return A.Span(path, line + line0 - 1, col, end_line + line0 - 1, end_col,
                  (tok.start_pos or 0) + pos0, (tok.end_pos or 0) + pos0)


class Skip(Exception):
    """A statement that cannot be lowered (already reported)."""


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?$")
_INT_RE = re.compile(r"^-?\d+$")
_LEADING_DIGITS_RE = re.compile(r"-?(\d*)")
_FLOAT_RE = re.compile(r"^-?\d+\.\d+$")
_EXPONENT_RE = re.compile(r"^-?\d+(?:\.\d+)?[eE][+-]?\d{1,3}$")


def _exponent_hint(v: str) -> str:
    """The number written out, when it is short enough to be worth suggesting."""
    try:
        plain = format(decimal.Decimal(v), "f")
    except decimal.InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        plain = ""
    if plain and len(plain) <= 30:
        return f"write it out: {plain}"
    return "write the number out in digits, with at most one '.'"

_DURATION_RE = re.compile(r"^(\d+)([dwh])$")
_ESCAPE_RE = re.compile(r"\\(u\{([0-9A-Fa-f]{1,6})\}|.)")
_INTERNED = 64
"""Strings up to this length are interned: values such as platforms repeat across rules."""


class Lowering:
    def __init__(self, path: str, diags: list[Diagnostic], offset: tuple[int, int, int] = (1, 1, 0),
                 text: str = ""):
        self.path = path
        self.diags = diags
        self.offset = offset
        self.whole_file = offset == (1, 1, 0)  # positions need no shifting
        self.text = text  # what the tokens' positions index
        # The spans of a whole file's parse hold their offsets and the file's lines
        # (``Span.within``), and work out lines and columns when read: as Lark counts them.
        self.lines = Lines(path, text) if self.whole_file else None
        # Only brackets make statements nest (parentheses in conditions, braces and square
        # brackets in a test's listing): without many, no statement is too deep.
        self.check_depth = _openers(text, 0, len(text)) > MAX_DEPTH
        self.dates: dict[str, dt.date] = {}  # a date's text -> its value, shared by the literals

    # spans -------------------------------------------------------------
    def span(self, node: Node | Token) -> A.Span | None:
        if isinstance(node, Token):
            if not self.whole_file:
                return token_span(self.path, node, self.offset)
            first = last = node
        elif node.start is None or node.end is None:
            return None
        else:
            first, last = node.start, node.end
        if self.lines is not None:
            return A.Span.within(self.lines, first.start_pos, last.end_pos)  # type: ignore[arg-type]  # lexed: set
        # a piece of a file: from the start of `first` to the end of `last`, two lexed
        # tokens, their positions shifted to where the piece starts
        line, column, start = first.line, first.column, first.start_pos
        end_line, end_column, end = last.end_line, last.end_column, last.end_pos
        assert line is not None and column is not None and start is not None, "a lexed token has its position"
        assert end_line is not None and end_column is not None and end is not None, "a lexed token has its end"
        line0, col0, pos0 = self.offset
        col = column + (col0 - 1 if line == 1 else 0)
        end_col = end_column + (col0 - 1 if end_line == 1 else 0)
        return A.Span(self.path, line + line0 - 1, col, end_line + line0 - 1, end_col, start + pos0, end + pos0)

    def join(self, a: A.Span | None, b: A.Span | None) -> A.Span | None:
        if a is None or b is None:
            return a or b
        if self.lines is not None:  # both from ``span``, in this file's text
            return A.Span.within(self.lines, a.start, b.end)
        return A.Span(a.file, a.line, a.column, b.end_line, b.end_column, a.start, b.end)

    def error(self, code: str, message: str, node: Node | Token | A.Span | None, hint: str | None = None) -> None:
        span = node if isinstance(node, A.Span) or node is None else self.span(node)
        self.diags.append(make(code, message, span, hint=hint))

    # statements ----------------------------------------------------------
    def item(self, tree: Node) -> Any:
        if self.check_depth and too_deep(self.text, tree):
            self.error("P100", f"this statement nests brackets more than {MAX_DEPTH} levels deep",
                       tree, hint="split the condition into simpler rules or use a set; give a test a flatter listing")
            return declared_by_tree(tree)
        mark = len(self.diags)
        try:
            item = getattr(self, "s_" + tree.data)(tree)
        except Skip:
            item = None
        found = self.diags[mark:]
        syntax = [d for d in found if d.code == "P100"]
        if syntax:
            # A statement with a syntax error yields nothing but its P100 (spec section 6):
            # the checks never see it, and its other findings are dropped.
            first = min(syntax, key=lambda d: (d.span.start, d.span.line, d.span.column) if d.span else (0, 0, 0))
            self.diags[mark:] = [first]
            return declared_by_tree(tree)
        return item

    def s_header(self, t: Node) -> A.Header:
        name = self.name(t.children[0])
        clauses = []
        for c in t.children[1:]:
            kw, val = c.children
            kind = kw.value
            value = self.expr(val) if kind == "scope" else self.string(val)
            clauses.append(A.Clause(kind, value, span=self.span(c)))
        # Clauses may come in any order; the AST holds them in canonical order (authorities
        # as written), as it does a rule's clauses.
        clauses.sort(key=lambda c: _HEADER_ORDER[c.kind])
        return A.Header(name, tuple(clauses), span=self.span(t))

    def s_set_decl(self, t: Node) -> A.SetDecl:
        name = self.name(t.children[0])
        items = tuple(self.literal(c) for c in t.children[1:])
        return A.SetDecl(name, items, span=self.span(t))

    def s_ladder_decl(self, t: Node) -> A.LadderDecl:
        name = self.name(t.children[0])
        steps = tuple(self.step(c) for c in t.children[1:])
        return A.LadderDecl(name, steps, span=self.span(t))

    def s_field_decl(self, t: Node) -> A.FieldDecl:
        path = self.path_(t.children[0])
        ty = self.type_(t.children[1])
        required = len(t.children) > 2
        return A.FieldDecl(path, ty, required, span=self.span(t))

    def type_(self, t: Node) -> A.TypeRef:
        kind = t.data[2:]
        values = tuple(self.string(c) for c in t.children) if kind == "one_of" else ()
        return A.TypeRef(kind, values, span=self.span(t))

    def s_rule(self, t: Node) -> A.Rule:
        kids = list(t.children)
        name = None
        head = None
        if isinstance(kids[0], Node) and kids[0].data == "rule_head":
            rh = kids.pop(0)
            name = self.name(rh.children[1])
            head = self.span(rh)
        from_, until = self.window(kids)
        effect_tok = kids.pop(0)
        if head is None:
            first = t.children[0]
            head = self.span(first.children[0] if isinstance(first, Node) else first)
        selector = None
        if kids and isinstance(kids[0], Node) and kids[0].data not in _RULE_CLAUSES:
            selector = self.expr(kids.pop(0))
        fields: dict[str, Any] = {}
        for c in kids:
            key, value = self.rule_clause(c)
            if key in fields:
                self.error("P100", f"`{_CLAUSE_WORD[key]}` is given twice in this rule", c,
                           hint="combine the two with `and`" if key in ("if_", "unless") else "keep one of them")
                continue
            fields[key] = value
        return A.Rule(name, sys.intern(effect_tok.value), from_, until, selector, span=self.span(t), head=head,
                      **fields)

    def rule_clause(self, c: Node) -> tuple[str, Any]:
        if c.data == "clause":
            kw, val = c.children
            kind = kw.value
            if kind in ("if", "unless"):
                return ("if_" if kind == "if" else "unless"), self.expr(val)
            return kind, self.string(val)
        if c.data == "penalty_ladder":
            return "penalty", A.PenaltyLadder(self.name(c.children[1]), span=self.span(c))
        if c.data == "penalty_step":
            return "penalty", A.PenaltyStep(self.step(c.children[1]), span=self.span(c))
        if c.data == "overrides":
            return "overrides", tuple(self.ref(r) for r in c.children[1:])
        raise AssertionError(c.data)  # pragma: no cover

    def window(self, kids: list[Any]) -> tuple[A.When | None, A.When | None]:
        """The window that ``kids`` (a rule's or an assertion's children) start with, if
        any (`from D`, `until D`, `from D until D`: its tokens), taken off them."""
        from_ = until = None
        while kids and kids[0].__class__ is Token and kids[0].type in ("FROM", "UNTIL"):
            kw, when = kids.pop(0), kids.pop(0)
            if kw.type == "FROM":
                from_ = self.when(when)
            else:
                until = self.when(when)
        return from_, until

    def s_test_case(self, t: Node) -> A.TestCase:
        kids = list(t.children)
        name = self.string(kids.pop(0))
        given = self.object_(kids.pop(0))
        at = prior = None
        if kids and isinstance(kids[0], Node) and kids[0].data == "test_at":
            at = self.when(kids.pop(0).children[0])
        if kids and isinstance(kids[0], Node) and kids[0].data == "test_prior":
            tok = kids.pop(0).children[0]
            prior = self.whole(tok, "`prior` takes a whole number of earlier violations, such as 1")
        effect = kids.pop(0)
        by: tuple[A.Ref, ...] = ()
        penalty = None
        for c in kids:
            if c.data == "expect_by":
                by = tuple(self.ref(r) for r in c.children)
            elif c.data == "expect_ladder":
                penalty = A.ExpectPenalty(self.name(c.children[1]), self.whole(c.children[2], _STEP_NUMBER),
                                          span=self.span(c))
            elif c.data == "expect_step":
                penalty = A.ExpectPenalty(None, self.whole(c.children[1], _STEP_NUMBER), span=self.span(c))
            elif c.data == "expect_none":
                penalty = A.ExpectPenalty(none=True, span=self.span(c))
        expect_span = self.join(self.span(effect), self.span(kids[-1]) if kids else None)
        expect = A.Expect(effect.value, by, penalty, span=expect_span)
        span = self.span(t)
        if at is None:
            self.error("P100", "a test needs `at`: the instant at which the listing is decided", span,
                       hint="add `at 2021-10-20` after `given {…}` so that the test does not change with the clock")
            raise Skip
        return A.TestCase(name, given, at, expect, prior, span=span)

    def s_tests_for(self, t: Node) -> A.TestsFor:
        return A.TestsFor(tuple(self.name(c) for c in t.children), span=self.span(t))

    def s_assertion(self, t: Node) -> A.Assertion:
        kids = list(t.children)
        name = self.string(kids.pop(0))
        from_, until = self.window(kids)
        quant, effect, expr = kids
        return A.Assertion(name, quant.value, effect.value, self.expr(expr), from_, until, span=self.span(t))

    # penalties -------------------------------------------------------------
    def step(self, t: Node) -> A.Step:
        return A.Step(tuple(self.action(a) for a in t.children), span=self.span(t))

    def action(self, t: Node) -> A.Action:
        kind = t.data
        span = self.span(t)
        if kind == "deduct":
            points = self.whole(t.children[0], "points are a positive whole number, such as `deduct 6 points`",
                                positive=True)
            return A.Action("deduct", points=points, span=span)
        if kind == "restrict":
            fn = self.name(t.children[0]).name
            return A.Action("restrict", function=fn, duration=self.duration(t.children[1]), span=span)
        if kind == "suspend":
            return A.Action("suspend", duration=self.duration(t.children[0]), span=span)
        return A.Action(kind, span=span)

    def number_too_long(self, tok: Token) -> bool:
        """A P100 for a number (or a token that starts like one) with more than
        MAX_NUMBER_DIGITS digits before its decimal point."""
        leading = _LEADING_DIGITS_RE.match(tok.value)
        assert leading is not None, "the pattern matches the empty string"
        digits = len(leading.group(1))
        if digits <= MAX_NUMBER_DIGITS:
            return False
        self.error("P100", f"this number is too long: it has {digits} digits, and a number has at most "
                   f"{MAX_NUMBER_DIGITS} before its decimal point", tok,
                   hint="no price, count or duration needs more; check what was pasted here")
        return True

    def duration(self, tok: Token) -> A.Duration:
        if self.number_too_long(tok):
            return A.Duration(24, span=self.span(tok))
        m = _DURATION_RE.match(tok.value)
        if not m or int(m.group(1)) == 0:
            self.error("P103", f"'{tok.value}' is not a valid duration", tok,
                       hint=hints.duration_hint(tok.value)
                       or "write a positive whole number of hours, days or weeks: 12h, 30d, 2w")
            return A.Duration(24, span=self.span(tok))
        n, unit = int(m.group(1)), m.group(2)
        return A.Duration(n * {"h": 1, "d": 24, "w": 168}[unit], span=self.span(tok))

    def whole(self, tok: Token, message: str, positive: bool = False) -> int:
        if self.number_too_long(tok):
            return 1
        if _INT_RE.match(tok.value) and not tok.value.startswith("-") and (not positive or int(tok.value) > 0):
            return int(tok.value)
        self.error("P100", f"'{tok.value}' is not a whole number here: {message}", tok)
        return 1

    # names -----------------------------------------------------------------
    def name(self, tok: Token) -> A.Ref:
        return A.Ref(self.name_text(tok), span=self.span(tok))

    def name_text(self, tok: Token) -> str:
        if tok.type == "BQNAME":
            quoted: str = tok.value[1:-1]
            return quoted
        if tok.value in RESERVED:
            self.error("P100", f"`{tok.value}` is a keyword and cannot be used as a name here", tok,
                       hint=f"write it in backquotes to use it as a name: \u0060{tok.value}\u0060")
        return sys.intern(str(tok.value))  # field names and values repeat across rules: one copy each

    def ref(self, t: Node) -> A.Ref:
        parts = [self.name_text(c) for c in t.children]
        return A.Ref(".".join(parts), span=self.span(t))

    def path_(self, t: Node) -> A.Path:
        parts = tuple(self.name_text(c) for c in t.children)
        return A.Path(parts, span=self.span(t))

    # literals ----------------------------------------------------------------
    def string(self, tok: Token) -> A.Str:
        return A.Str(self.unescape(tok), span=self.span(tok))

    def unescape(self, tok: Token) -> str:
        body = tok.value[1:-1]
        if "\\" not in body:
            return sys.intern(str(body)) if len(body) <= _INTERNED else str(body)

        def repl(m: re.Match[str]) -> str:
            e = m.group(1)
            if m.group(2):
                cp = int(m.group(2), 16)
                if cp > 0x10FFFF or 0xD800 <= cp <= 0xDFFF:
                    self.error("P100", f"\\u{{{m.group(2)}}} is not a Unicode character", tok)
                    return ""
                return chr(cp)
            simple = {"\\": "\\", "'": "'", '"': '"', "n": "\n", "t": "\t"}
            if e in simple:
                return simple[e]
            self.error("P100", f"unknown escape \\{e} in a string", tok,
                       hint="the escapes are \\\\ \\' \\\" \\n \\t and \\u{hex}")
            return e

        return _ESCAPE_RE.sub(repl, body)

    def literal(self, t: Node | Token) -> A.Scalar:
        tok = t.children[0] if isinstance(t, Node) else t  # (a literal's token)
        if tok.type == "STRING":
            return self.string(tok)
        if tok.type == "TRUE":
            return A.Bool(True, span=self.span(tok))
        if tok.type == "FALSE":
            return A.Bool(False, span=self.span(tok))
        return self.numlike(tok)

    def numlike(self, tok: Token) -> A.Scalar:
        v = tok.value
        span = self.span(tok)
        if self.number_too_long(tok):
            return A.Num(0, span=span)
        if _INT_RE.match(v):
            return A.Num(int(v), span=span)
        if _FLOAT_RE.match(v):
            return A.Num(float(v), span=span)
        if _EXPONENT_RE.match(v):
            self.error("P100", f"'{v}' is not a valid number: numbers are written without an exponent", tok,
                       hint=_exponent_hint(v))
            return A.Num(0, span=span)
        if _DURATION_RE.match(v) or re.match(r"^\d+[A-Za-z]+$", v):
            if _DURATION_RE.match(v) and not v.startswith("0"):
                self.error("P103", f"a duration such as '{v}' is only used in penalties", tok,
                           hint="compare numbers or dates here")
            else:
                self.error("P103", f"'{v}' is not a valid duration", tok,
                           hint="a duration is a positive whole number of hours, days or weeks: 12h, 30d, 2w")
            return A.Num(0, span=span)
        return self.when(tok)

    def when(self, tok: Token) -> A.When:
        v = tok.value
        span = self.span(tok)
        if self.number_too_long(tok):
            return A.Date(dt.date(2000, 1, 1), span=span)
        try:
            if _DATE_RE.match(v):
                day = self.dates.get(v)
                if day is None:
                    day = self.dates[v] = dt.date.fromisoformat(v)  # rules share a few hundred dates
                return A.Date(day, span=span)
            m = _DATETIME_RE.match(v)
            if m:
                value = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
                return A.DateTime(value, span=span)
        except ValueError:
            pass
        self.error("P101", f"'{v}' is not a valid date", tok,
                   hint=hints.date_hint(v)
                   or "write a date as 2021-10-15, or a date-time as 2021-10-15T08:00 or 2021-10-15T08:00:00+08:00")
        return A.Date(dt.date(2000, 1, 1), span=span)

    def list_(self, t: Node) -> A.ListExpr:
        if t.data == "set_ref":
            return self.name(t.children[0])
        return A.ListLit(tuple(self.literal(c) for c in t.children), span=self.span(t))

    def object_(self, t: Node) -> A.ObjectLit:
        items = []
        for pair in t.children:
            tok, value = pair.children
            if tok.type != "STRING":  # a name
                key = tok.value[1:-1] if tok.type == "BQNAME" else str(tok.value)
            else:
                key = self.string(tok).value
            items.append((key, self.value(value)))
        return A.ObjectLit(tuple(items), span=self.span(t))

    def value(self, t: Node | Token) -> A.Value:
        if isinstance(t, Node):
            if t.data == "object":
                return self.object_(t)
            if t.data == "array":
                return A.ArrayLit(tuple(self.value(c) for c in t.children), span=self.span(t))
            if t.data == "null":
                return A.Null(span=self.span(t))
            return self.literal(t)
        return self.literal(t)

    # expressions -------------------------------------------------------------
    def expr(self, t: Node | Token) -> A.Expr:
        d = t.data if isinstance(t, Node) else None
        k = t.children if isinstance(t, Node) else []
        if d in ("or_", "and_") and len(k) == 1:
            return self.expr(k[0])  # every atom sits in an or_ of one and_ of one
        span = self.span(t)
        build = _EXPRESSIONS.get(d) if d is not None else None
        if build is None:  # pragma: no cover
            raise AssertionError(f"unexpected expression node {d}")
        return build(self, k, span)

    def connective(self, node_type: type[A.And] | type[A.Or], k: list[Any], span: A.Span | None) -> A.Expr:
        items: list[A.Expr] = []
        for c in k:
            sub = self.expr(c)
            # (a and b) and c is a and b and c: one canonical shape for the formatter
            items.extend(sub.items if isinstance(sub, node_type) else (sub,))
        return node_type(tuple(items), span=span)

    def negation(self, k: list[Any], span: A.Span | None) -> A.Expr:
        if len(k) - 1 > MAX_DEPTH:
            # `not not … x` is one flat Lark node, so the depth check cannot see it.
            self.error("P100", f"this condition stacks more than {MAX_DEPTH} `not`", span,
                       hint="`not not x` is x: remove the pairs")
            raise Skip
        inner = self.expr(k[-1])
        for tok in reversed(k[:-1]):
            inner = A.Not(inner, span=self.join(self.span(tok), span))
        return inner

    def subject(self, k: list[Any]) -> tuple[A.Path | None, list[Any]]:
        """The path that `mentions` reads (None for the listing's text), and what follows
        the keyword."""
        if isinstance(k[0], Node):
            return self.path_(k[0]), k[2:]
        return None, k[1:]

    def mentions(self, k: list[Any], span: A.Span | None) -> A.Expr:
        path, rest = self.subject(k)
        return A.Mentions(path, self.string(rest[0]), span=span)

    def mentions_any(self, k: list[Any], span: A.Span | None) -> A.Expr:
        path, rest = self.subject(k)
        return A.MentionsAny(path, self.list_(rest[0]), span=span)

    def regex(self, tok: Token) -> A.Regex:
        v = tok.value
        ignore_case = v.endswith("i")
        body = v[1:-2] if ignore_case else v[1:-1]
        return A.Regex(body.replace("\\/", "/"), ignore_case, span=self.span(tok))


_STEP_NUMBER = "a step is a whole number from 1"

_RULE_CLAUSES = ("clause", "penalty_ladder", "penalty_step", "overrides")
"""The nodes that follow a rule's selector (when it has one)."""

_HEADER_ORDER = {"title": 0, "authority": 1, "version": 2, "timezone": 3, "scope": 4}

_CLAUSE_WORD = {"if_": "if", "unless": "unless", "penalty": "penalty", "overrides": "overrides",
                "because": "because", "message": "message"}


_Build = Callable[[Lowering, list[Any], A.Span | None], A.Expr]

_EXPRESSIONS: dict[str, _Build] = {
    "or_": lambda low, k, span: low.connective(A.Or, k, span),
    "and_": lambda low, k, span: low.connective(A.And, k, span),
    "negation": Lowering.negation,
    "true": lambda low, k, span: A.Const(True, span=span),
    "false": lambda low, k, span: A.Const(False, span=span),
    "category": lambda low, k, span: A.Category(low.string(k[1]), span=span),
    "category_in": lambda low, k, span: A.CategoryIn(low.list_(k[1]), span=span),
    "category_not_in": lambda low, k, span: A.Not(A.CategoryIn(low.list_(k[2]), span=span), span=span),
    "category_compare": lambda low, k, span: A.Compare(
        A.Path(("category",), span=low.span(k[0])), k[1].value, low.literal(k[2]), span=span),
    "mentions": Lowering.mentions,
    "mentions_any": Lowering.mentions_any,
    "contains": lambda low, k, span: A.Contains(low.path_(k[0]), low.string(k[1]), span=span),
    "matches": lambda low, k, span: A.Matches(low.path_(k[0]), low.regex(k[1]), span=span),
    "compare": lambda low, k, span: A.Compare(low.path_(k[0]), k[1].value, low.literal(k[2]), span=span),
    "in_": lambda low, k, span: A.In(low.path_(k[0]), low.list_(k[1]), False, span=span),
    "not_in": lambda low, k, span: A.In(low.path_(k[0]), low.list_(k[2]), True, span=span),
    "exists": lambda low, k, span: A.Exists(low.path_(k[0]), span=span),
}
"""How each kind of expression node is lowered, from its children and its span."""


def declared_by_tree(tree: Node) -> A.Unparsed | None:
    """The rule, set, ladder or policy (a header) that a statement left out for a syntax
    error declares."""
    kinds = {"rule": "rule", "set_decl": "set", "ladder_decl": "ladder", "header": "policy"}
    if tree.data not in kinds or not tree.children:
        return None
    tok = tree.children[0]
    if tree.data == "rule":
        if not (isinstance(tok, Node) and tok.data == "rule_head"):
            return None
        tok = tok.children[1]
    name = tok.value[1:-1] if tok.type == "BQNAME" else str(tok.value)
    return A.Unparsed(kinds[tree.data], name)


def too_deep(text: str, tree: Node) -> bool:
    """Whether the statement opens more than MAX_DEPTH brackets at once (parentheses,
    braces, square brackets), counted on its tokens (so brackets in strings, regular
    expressions and comments do not count)."""
    if tree.start is None or tree.end is None:
        return False  # pragma: no cover - a statement has tokens
    start, end = tree.start.start_pos or 0, tree.end.end_pos
    if _openers(text, start, end) <= MAX_DEPTH:
        return False  # too few brackets to nest that deep: the tokens need not be read
    depth = 0
    for tok in tokens(text, start, end):
        if tok.type in _OPENERS:
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif tok.type in _CLOSERS:
            depth -= 1
    return False


_OPENERS = frozenset({"LPAR", "LBRACE", "LSQB"})
_CLOSERS = frozenset({"RPAR", "RBRACE", "RSQB"})


def _openers(text: str, start: int, end: int | None) -> int:
    """The opening brackets of all three kinds in ``text[start:end]``, strings and comments
    included: at least the depth ``too_deep`` can count there (the one count of both the
    file's and the statement's cheap test)."""
    return text.count("(", start, end) + text.count("{", start, end) + text.count("[", start, end)


# ---------------------------------------------------------------- the file's statements


def tests_for(items: list[Any], diags: list[Diagnostic], test_file: bool | None) -> tuple[A.TestsFor | None, list[Any]]:
    """The file's `tests for`, taken out of ``items``: it belongs in a test file, first."""
    found: A.TestsFor | None = None
    rest: list[Any] = []
    for i, item in enumerate(items):
        if not isinstance(item, A.TestsFor):
            rest.append(item)
        elif test_file is False:
            diags.append(make("P100", "`tests for` belongs in a test file: it scopes the tests of a *_test.policy file",
                              item.span, hint="move it to the top of the test file whose tests it scopes"))
        elif found is not None or i > 0:
            diags.append(make("P100", "`tests for` must be the first statement of a test file, and come once",
                              item.span, hint="name every policy in one line at the top: `tests for a, b`"))
        else:
            found = item
    return found, rest


def arrange(items: list[Any], path: str, diags: list[Diagnostic],
            test_file: bool | None) -> tuple[A.Header | None, list[A.Statement]]:
    header: A.Header | None = None
    statements: list[A.Statement] = []
    for i, item in enumerate(items):
        if isinstance(item, A.Header):
            if header is not None or i > 0:
                where = "a second `policy` header" if header is not None else "the `policy` header"
                diags.append(make("P100", f"{where} must come first: a file holds at most one policy, and its header "
                                  "comes before every other statement",
                                  item.span, hint="move the header to the top of the file, or split the file"))
                continue
            header = item
            continue
        if test_file is True and not isinstance(item, (A.TestCase, A.Assertion)):
            diags.append(make("P100", "a test file (*_test.policy) holds only `test` and `assert` statements",
                              getattr(item, "anchor", item.span),
                              hint="move declarations and rules to a policy file beside it"))
            continue
        if test_file is False and isinstance(item, (A.TestCase, A.Assertion)):
            kind = "test" if isinstance(item, A.TestCase) else "assert"
            diags.append(make("P100", f"`{kind}` belongs in a test file: name the file *_test.policy",
                              item.span, hint="move tests and assertions to a file such as crypto_test.policy"))
            continue
        statements.append(item)
    if test_file is True and header is not None:
        diags.append(make("P100", "a test file (*_test.policy) has no `policy` header", header.span,
                          hint="remove the header: tests run against the policies beside the file"))
        header = None
    return header, statements
