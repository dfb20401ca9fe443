"""The canonical formatter: one layout for every policy and test file.

``format_file(file)`` prints an AST; ``format_source(text)`` parses then prints, and raises
``PolicyError`` when the text has syntax errors. The layout depends only on the AST (and,
with ``comments=True``, on where the comments were), never on the source's spacing, so
``format_file(file, comments=False)`` is the canonical text that ``policy_hash`` digests.

Layout
------
- The ``policy NAME`` header comes first, its clauses below it, indented two spaces, one a
  line, in the order title, authority (in the order written), version, timezone, scope.
  A blank line follows the header.
- Statements keep their source order. One blank line separates two statements of different
  kinds (set, ladder, field, rule, test, assert) and surrounds every statement that takes
  more than one line; statements of one kind that fit on one line stay together.
- Lines are at most ``WIDTH`` (100) columns where the language lets us break (a long string
  or list is never broken). Columns count East Asian wide characters as two.
- A rule fits on one line, or takes the ``rule NAME:`` head on its own line, then its window,
  effect and selector on one line indented two spaces, then each clause (``if``, ``unless``,
  ``penalty``, ``overrides``, ``because``, ``message``, in that order) on its own line,
  indented two spaces. An unnamed rule starts with its window or effect at the margin.
- A long condition breaks before top-level ``or`` (each alternative on a new line), and
  then before ``and`` where a line would still be too long; continuation lines are indented
  two spaces more than the clause.
- A ladder fits on one line, or puts each ``then STEP`` on its own line indented two spaces.
- A set fits on one line, or puts one item a line, indented two spaces, with a trailing
  comma; so does a set in which a comment sits among the items (see Comments).
- A test file's ``tests for a, b`` comes first, on one line, names as written.
- ``test 'name'`` is followed by ``given {…}``, ``at …``, ``prior N`` and ``expect …``, each
  on its own line indented two spaces (a ``given`` object too long for one line puts one
  key a line). ``assert 'name'`` is followed by its window, quantifier, effect and condition
  on one line indented two spaces.

Tokens
------
- Strings use single quotes, or double quotes when the text holds a single quote and no
  double quote. Escapes: ``\\\\``, the quote, ``\\n``, ``\\t``; other control characters,
  line/paragraph separators, bidirectional controls and the characters that show nothing
  (invisible spaces, joiners and operators U+200B–U+200F, U+2060–U+2064, U+FEFF, the soft
  hyphen U+00AD, U+180E, U+FFF9–U+FFFB, the tags U+E0000–U+E007F) as ``\\u{hex}``.
- Numbers print their value: an int as digits, a float as the shortest decimal that reads
  back to it, without an exponent (``1e-07`` prints ``0.0000001``), always with a fraction.
- Dates are ISO; date-times ISO with seconds only when nonzero and ``Z`` for offset zero.
- Durations in days when a whole number of days, else in hours (``2w`` prints ``14d``).
- Regular expressions as ``/…/`` or ``/…/i``, ``/`` written ``\\/``.
- Names that are reserved words or not of the form ``[A-Za-z_][A-Za-z0-9_-]*`` are written
  in backquotes; so are ladder names that would read as a penalty action (``close``) and,
  in ``expect``, a ladder named ``step``. ``category == 'X'`` (the P208 error) is printed as
  written. ``given`` keys that are not of the name form are quoted (the parser reads any
  word as a key there, so ``{category: 'X'}`` stays as it is).
- Expressions are n-ary and flat; parentheses only where needed: an ``or`` inside an
  ``and``, an ``and``/``or`` under ``not``. ``Not(CategoryIn(L))`` prints
  ``category not in L`` and ``In(negated=True)`` prints ``PATH not in L``.
- Penalty steps print their actions in canonical form joined by ``and``
  (``deduct 6 points``, ``restrict listing for 30d``).

Comments
--------
Every comment is kept. A comment on the line where a statement (or header clause) ends stays
at the end of that statement's last line, after two spaces; a suppression comment
(``# policy: ignore[…]``) on a line where several end is written at the end of each of
them, as it covers each (``dsl.checking.suppress``). Other comments lead the next
statement (or header clause) and stay above it; a comment inside a multi-line statement
moves to just above that statement, except in a set: there a comment after an item stays at
the end of that item's line, a comment on a line of its own stays above the item that follows
it (or before the closing ``]``), and a comment after ``set NAME = [`` stays on that line; such
a set is laid out one item a line. At most one blank line is kept before each comment of a
leading block, and a blank line between the block and its statement is kept if there was
one; inside the header blank lines are dropped. Comments after the last statement stay at
the end. Comment text is kept verbatim except for trailing white space.

The result is idempotent and keeps the AST: ``parse(format_file(f))`` equals ``f`` in its
header and statements, except that header clauses come out in the canonical order above.
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from typing import Any

import attrs

from ..diagnostics import ERROR, PolicyError
from . import ast as A
from .canonical import canonical_action, canonical_duration
from .grammar import RESERVED

__all__ = [
    "WIDTH",
    "format_file",
    "format_statement",
    "format_source",
    "format_expr",
    "format_literal",
    "format_step",
    "format_when",
    "format_name",
    "format_path",
    "canonical_clause_order",
]

WIDTH = 100
"""The widest line the formatter aims for, in columns."""

_INDENT = "  "
_CONT = "    "
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_ACTION_WORDS = frozenset({"warn", "remove", "deduct", "restrict", "suspend", "close"})
_CLAUSE_RANK = {"title": 0, "authority": 1, "version": 2, "timezone": 3, "scope": 4}
_INVISIBLE = frozenset(
    [0x00AD, 0x061C, 0x180E, *range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2065),
     *range(0x2066, 0x206A), 0xFEFF, *range(0xFFF9, 0xFFFC), *range(0xE0000, 0xE0080)]
)
"""Bidirectional controls, invisible spaces, joiners and operators, the soft hyphen, the
interlinear annotation marks and the tag characters: escaped in strings so that a reviewer
sees them (`'bit\\u{200b}coin'`, `'bit\\u{ad}coin'`)."""


# ---------------------------------------------------------------- public API


def format_source(text: str, path: str = "<string>") -> str:
    """Parse ``text`` and return it in canonical layout, comments kept. Raises
    ``PolicyError`` (with every diagnostic of the parse) when the parse reports an error."""
    from .parse import parse  # (with Lark: formatting a parsed file, as ``policy_hash`` does, needs none)

    file, diags = parse(text, path)
    if any(d.severity == ERROR for d in diags):
        raise PolicyError(diags)
    return format_file(file)


def format_file(file: A.File, *, comments: bool = True) -> str:
    """The canonical text of a parsed file (see the module docstring for the layout). With
    ``comments=False`` the comments are left out and the text depends on the AST only.
    The text ends with one newline, or is empty for an empty file."""
    slots = _file_slots(file)
    eof: list[tuple[str, bool]] = []
    if comments and file.comments:
        eof = _attach_comments(slots, file.comments)
    return _assemble(slots, eof)


def format_statement(statement: A.Statement) -> str:
    """One statement's canonical text, comments left out: what ``format_file(…,
    comments=False)`` gives for a file holding only this statement, without a header."""
    _, layout = _STATEMENT_LAYOUT[type(statement)]
    return "\n".join(layout(statement)) + "\n"


def format_expr(e: A.Expr) -> str:
    """An expression on one line, with only the parentheses that precedence needs."""
    return _expr(e, "top")


def format_literal(lit: Any) -> str:
    """A literal or value: Str, Num, Bool, Date, DateTime, Duration, Regex, ListLit, Ref,
    ObjectLit, ArrayLit or Null. Raises ValueError for a value the language cannot write
    (a NaN, a date-time offset with seconds)."""
    form = _by_type(_LITERAL_FORMS, lit)
    if form is None:
        raise TypeError(f"not a literal: {lit!r}")
    return form(lit)


def format_step(step: A.Step) -> str:
    """A penalty step: its actions in canonical form joined by ``and``."""
    return " and ".join(_action(a) for a in step.actions)


def format_when(w: A.When) -> str:
    """A date (ISO) or date-time (ISO; seconds only when nonzero; ``Z`` for offset zero)."""
    if isinstance(w, A.Date):
        return _date_text(w.value)
    v = w.value
    text = f"{v.date().isoformat()}T{v.hour:02d}:{v.minute:02d}"
    if v.second or v.microsecond:
        text += f":{v.second:02d}"
        if v.microsecond:
            text += f".{v.microsecond:06d}".rstrip("0")
    off = v.utcoffset()
    if off is not None:
        secs = int(off.total_seconds())
        if off.microseconds or secs % 60:
            raise ValueError(f"a date-time offset must be whole minutes: {off}")
        if secs == 0:
            text += "Z"
        else:
            sign = "+" if secs > 0 else "-"
            h, m = divmod(abs(secs) // 60, 60)
            text += f"{sign}{h:02d}:{m:02d}"
    return text


def format_name(name: str) -> str:
    """A name as written: plain, or in backquotes when it is a reserved word or not of the
    form ``[A-Za-z_][A-Za-z0-9_-]*``. Raises ValueError for a name no source can hold."""
    if (name.isascii() and name.isidentifier() or _NAME_RE.fullmatch(name)) and name not in RESERVED:
        return name  # an ASCII identifier is of the name form: the cheaper test first
    if not name or "`" in name or "\n" in name:
        raise ValueError(f"the name {name!r} cannot be written")
    return f"`{name}`"


def format_path(path: A.Path) -> str:
    """A field path: its names joined by dots."""
    return _path_text(tuple(path.parts))


@functools.lru_cache(maxsize=4096)
def _path_text(parts: tuple[str, ...]) -> str:
    """A path's text, remembered: a set's rules name few fields many times."""
    return ".".join([format_name(p) for p in parts])


def canonical_clause_order(clauses: Iterable[A.Clause]) -> tuple[A.Clause, ...]:
    """Header clauses in the order the formatter prints them: title, authority (as
    written), version, timezone, scope; unknown kinds last."""
    return tuple(sorted(clauses, key=lambda c: _CLAUSE_RANK.get(c.kind, len(_CLAUSE_RANK))))


# ---------------------------------------------------------------- tokens


def _string(s: str) -> str:
    if s.isascii() and s.isprintable() and "'" not in s and '"' not in s and "\\" not in s:
        return f"'{s}'"  # the common case: nothing to escape
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
        elif _needs_escape(ch):
            out.append(f"\\u{{{ord(ch):x}}}")
        else:
            out.append(ch)
    out.append(quote)
    return "".join(out)


def _needs_escape(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Zl", "Zp", "Cs") or ord(ch) in _INVISIBLE


@functools.lru_cache(maxsize=4096, typed=True)
def _date_text(d: _dt.date) -> str:
    """``d.isoformat()``, remembered: a set's rules share few dates."""
    return d.isoformat()


def _number(v: int | float) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        raise ValueError(f"{v} cannot be written as a number literal")
    text = format(Decimal(repr(v)), "f")
    return text if "." in text else text + ".0"


def _regex(r: A.Regex) -> str:
    out = []
    p = r.pattern
    i = 0
    while i < len(p):
        ch = p[i]
        if ch == "\\":
            if i + 1 < len(p) and p[i + 1] not in "\n/":
                out.append(p[i : i + 2])
                i += 2
                continue
            out.append("\\\\" if i + 1 >= len(p) else "\\")  # `\/` reads as `/`: same match
            i += 1
            continue
        out.append({"/": "\\/", "\n": "\\n"}.get(ch, ch))
        i += 1
    return "/" + "".join(out) + "/" + ("i" if r.ignore_case else "")


def _ref(ref: A.Ref, *, qualified: bool = False, avoid: frozenset[str] = frozenset()) -> str:
    """A reference. ``qualified`` refs (``policy.rule``) split at the first dot; ``avoid``
    holds words the parser would read as a keyword at this spot."""
    name = ref.name
    if qualified and "." in name:
        head, tail = name.split(".", 1)
        if head:
            return format_name(head) + "." + format_name(tail)
    if name in avoid:
        return f"`{name}`"
    return format_name(name)


def _action(a: A.Action) -> str:
    if a.kind == "restrict" and a.function is not None and a.duration is not None:
        return f"restrict {format_name(a.function)} for {canonical_duration(a.duration.hours)}"
    return canonical_action(a)


def _pair(key: str, value: A.Value) -> str:
    # every word is a plain key here, reserved ones included (`{category: 'X'}`)
    k = key if _NAME_RE.fullmatch(key) else _string(key)
    return f"{k}: {format_literal(value)}"


def _list(items: A.ListExpr) -> str:
    return format_literal(items)


def _items(items: Iterable[Any]) -> str:
    return "[" + ", ".join([format_literal(i) for i in items]) + "]"


_LITERAL_FORMS: dict[type[Any], Callable[[Any], str]] = {
    A.Str: lambda lit: _string(lit.value),
    A.Num: lambda lit: _number(lit.value),
    A.Bool: lambda lit: "true" if lit.value else "false",
    A.Date: format_when,
    A.DateTime: format_when,
    A.Duration: lambda lit: canonical_duration(lit.hours),
    A.Regex: _regex,
    A.ListLit: lambda lit: _items(lit.items),
    A.Ref: lambda lit: format_name(lit.name),
    A.Null: lambda lit: "null",
    A.ArrayLit: lambda lit: _items(lit.items),
    A.ObjectLit: lambda lit: "{" + ", ".join(_pair(k, v) for k, v in lit.items) + "}",
}
"""The text of each kind of literal or value."""


def _by_type(forms: dict[type[Any], Callable[[Any], str]], node: object) -> Callable[[Any], str] | None:
    """The form for ``node``'s class, or for a class it derives from."""
    form = forms.get(type(node))
    if form is None:
        form = next((f for kind, f in forms.items() if isinstance(node, kind)), None)
    return form


def _width(s: str) -> int:
    if s.isascii():  # the common case: every character is one column wide
        return len(s)
    w = 0
    for ch in s:
        if unicodedata.combining(ch):
            continue
        w += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return w


# ---------------------------------------------------------------- expressions


def _expr(e: A.Expr, ctx: str) -> str:
    """``ctx`` is where the expression sits: top, or (an item of or), and, not."""
    form = _ATOM_FORMS.get(type(e))
    if form is not None:  # an atom's text does not depend on where it sits
        return form(e)
    if isinstance(e, (A.And, A.Or)):
        if not e.items:
            return "true" if isinstance(e, A.And) else "false"
        if len(e.items) == 1:
            return _expr(e.items[0], ctx)
        if isinstance(e, A.Or):
            text = " or ".join(_expr(i, "or") for i in e.items)
            return f"({text})" if ctx in ("and", "not") else text
        text = " and ".join(_expr(i, "and") for i in e.items)
        return f"({text})" if ctx == "not" else text
    if isinstance(e, A.Not):
        # a loop, not recursion: `not not … x` may be long
        count = 0
        while isinstance(e, A.Not) and not isinstance(e.operand, A.CategoryIn):
            count += 1
            e = e.operand
        if isinstance(e, A.Not) and isinstance(e.operand, A.CategoryIn):
            inner = f"category not in {_list(e.operand.items)}"
        else:
            inner = _expr(e, "not")
        return "not " * count + inner
    return _atom(e)


def _atom(e: A.Expr) -> str:
    form = _by_type(_ATOM_FORMS, e)
    if form is None:
        raise TypeError(f"not an expression: {e!r}")
    return form(e)


def _subject(path: A.Path | None) -> str:
    """What `mentions` reads, with the space after it: nothing for the listing's text."""
    return f"{format_path(path)} " if path is not None else ""


def _compare(e: A.Compare) -> str:
    # `category == 'X'` is the error production that reports P208: print it as written
    subject = "category" if e.path.parts == ("category",) else format_path(e.path)
    return f"{subject} {e.op} {format_literal(e.value)}"


_ATOM_FORMS: dict[type[Any], Callable[[Any], str]] = {
    A.Const: lambda e: "true" if e.value else "false",
    A.Category: lambda e: "category " + format_literal(e.pattern),
    A.CategoryIn: lambda e: f"category in {_list(e.items)}",
    A.Mentions: lambda e: f"{_subject(e.path)}mentions {format_literal(e.phrase)}",
    A.MentionsAny: lambda e: f"{_subject(e.path)}mentions any {_list(e.items)}",
    A.Contains: lambda e: f"{format_path(e.path)} contains {format_literal(e.needle)}",
    A.Matches: lambda e: f"{format_path(e.path)} matches {format_literal(e.regex)}",
    A.Compare: _compare,
    A.In: lambda e: f"{format_path(e.path)} {'not in' if e.negated else 'in'} {_list(e.items)}",
    A.Exists: lambda e: f"{format_path(e.path)} exists",
}
"""The text of each kind of atom (an expression without `and`, `or`, `not`)."""


def _wrap_expr(prefix: str, e: A.Expr, cont: str) -> list[str]:
    """``prefix`` then the expression, broken before top-level ``or`` and then ``and``
    when the line would pass WIDTH."""
    one = prefix + _expr(e, "top")
    if _width(one) <= WIDTH:
        return [one]
    if isinstance(e, A.Or) and len(e.items) > 1:
        groups = [_and_pieces(i, "or") for i in e.items]
    elif isinstance(e, A.And) and len(e.items) > 1:
        groups = [_and_pieces(e, "top")]
    else:
        return [one]
    lines: list[str] = []
    for g, pieces in enumerate(groups):
        line = (prefix if g == 0 else cont + "or ") + pieces[0]
        for piece in pieces[1:]:
            candidate = f"{line} and {piece}"
            if _width(candidate) <= WIDTH:
                line = candidate
            else:
                lines.append(line)
                line = f"{cont}and {piece}"
        lines.append(line)
    return lines


def _and_pieces(e: A.Expr, ctx: str) -> list[str]:
    if isinstance(e, A.And) and len(e.items) > 1:
        return [_expr(i, "and") for i in e.items]
    return [_expr(e, ctx)]


# ---------------------------------------------------------------- statements


def _header_head(h: A.Header) -> list[str]:
    return [f"policy {_ref(h.name)}"]


def _header_clause(c: A.Clause) -> list[str]:
    if c.kind == "scope":
        assert not isinstance(c.value, A.Str)
        return _wrap_expr(f"{_INDENT}scope ", c.value, _CONT)
    assert isinstance(c.value, A.Str)
    return [f"{_INDENT}{c.kind} {format_literal(c.value)}"]


def _set_lines(s: A.SetDecl) -> list[str]:
    head = f"set {_ref(s.name)} = ["
    one = head + ", ".join(format_literal(i) for i in s.items) + "]"
    if _width(one) <= WIDTH or not s.items:
        return [one]
    return [head, *(f"{_INDENT}{format_literal(i)}," for i in s.items), "]"]


def _ladder_lines(d: A.LadderDecl) -> list[str]:
    steps = [format_step(s) for s in d.steps]
    head = f"ladder {_ref(d.name)} = "
    one = head + " then ".join(steps)
    if _width(one) <= WIDTH or len(steps) < 2:
        return [one]
    return [head + steps[0], *(f"{_INDENT}then {s}" for s in steps[1:])]


def _field_lines(f: A.FieldDecl) -> list[str]:
    t = f.type
    if t.kind == "one_of":
        ty = "one of [" + ", ".join(format_literal(v) for v in t.values) + "]"
    elif t.kind == "list_text":
        ty = "list of text"
    else:
        ty = t.kind
    return [f"field {format_path(f.path)}: {ty}" + (" required" if f.required else "")]


def _window(from_: A.When | None, until: A.When | None) -> list[str]:
    words = []
    if from_ is not None:
        words.append(f"from {format_when(from_)}")
    if until is not None:
        words.append(f"until {format_when(until)}")
    return words


def _penalty(p: A.Penalty) -> str:
    if isinstance(p, A.PenaltyLadder):
        return f"penalty {_ref(p.ladder, avoid=_ACTION_WORDS)}"
    return f"penalty {format_step(p.step)}"


def _condition_clauses(r: A.Rule) -> list[tuple[str, A.Expr]]:
    """The rule's `if` and `unless`, with their keywords."""
    clauses: list[tuple[str, A.Expr]] = []
    if r.if_ is not None:
        clauses.append(("if", r.if_))
    if r.unless is not None:
        clauses.append(("unless", r.unless))
    return clauses


def _plain_clauses(r: A.Rule) -> list[str]:
    """The rule's other clauses, each as one piece of text: penalty, overrides, because,
    message."""
    plain: list[str] = []
    if r.penalty is not None:
        plain.append(_penalty(r.penalty))
    if r.overrides:
        plain.append("overrides " + ", ".join(_ref(o, qualified=True) for o in r.overrides))
    if r.because is not None:
        plain.append(f"because {format_literal(r.because)}")
    if r.message is not None:
        plain.append(f"message {format_literal(r.message)}")
    return plain


def _rule_lines(r: A.Rule) -> list[str]:
    # the whole rule on one line first, each piece formatted once
    name, selector = r.name, r.selector
    head = f"rule {_ref(name)}:" if name is not None else None
    lead = " ".join([*_window(r.from_, r.until), r.effect])
    words = [lead] if head is None else [head, lead]
    if selector is not None:
        words.append(_expr(selector, "top"))
    expr_clauses = _condition_clauses(r)
    words += [f"{kw} {_expr(e, 'top')}" for kw, e in expr_clauses]
    plain = _plain_clauses(r)
    one = " ".join(words + plain)
    if _width(one) <= WIDTH:
        return [one]

    lines: list[str] = []
    indent = ""
    if head:
        lines.append(head)
        indent = _INDENT
    if selector is not None:
        lines += _wrap_expr(f"{indent}{lead} ", selector, _CONT)
    else:
        lines.append(indent + lead)
    for kw, e in expr_clauses:
        lines += _wrap_expr(f"{_INDENT}{kw} ", e, _CONT)
    lines += [_INDENT + p for p in plain]
    return lines


def _tests_for_lines(t: A.TestsFor) -> list[str]:
    return ["tests for " + ", ".join(_ref(p) for p in t.policies)]


def _test_lines(t: A.TestCase) -> list[str]:
    lines = [f"test {format_literal(t.name)}"]
    given = f"{_INDENT}given {format_literal(t.given)}"
    if _width(given) <= WIDTH or not t.given.items:
        lines.append(given)
    else:
        lines.append(f"{_INDENT}given {{")
        lines += [f"{_CONT}{_pair(k, v)}," for k, v in t.given.items]
        lines.append(f"{_INDENT}}}")
    lines.append(f"{_INDENT}at {format_when(t.at)}")
    if t.prior is not None:
        lines.append(f"{_INDENT}prior {t.prior}")
    ex = t.expect
    words = [f"{_INDENT}expect {ex.effect}"]
    if ex.by:
        words.append("by " + ", ".join(_ref(b, qualified=True) for b in ex.by))
    p = ex.penalty
    if p is not None:
        if p.none:
            words.append("no penalty")
        elif p.ladder is not None:
            words.append(f"penalty {_ref(p.ladder, avoid=frozenset({'step'}))} step {p.step}")
        else:
            words.append(f"penalty step {p.step}")
    lines.append(" ".join(words))
    return lines


def _assert_lines(a: A.Assertion) -> list[str]:
    lead = " ".join([*_window(a.from_, a.until), a.quantifier, a.effect])
    return [f"assert {format_literal(a.name)}", *_wrap_expr(f"{_INDENT}{lead} ", a.expr, _CONT)]


_STATEMENT_LAYOUT: dict[type[Any], tuple[str, Callable[[Any], list[str]]]] = {
    A.SetDecl: ("set", _set_lines),
    A.LadderDecl: ("ladder", _ladder_lines),
    A.FieldDecl: ("field", _field_lines),
    A.Rule: ("rule", _rule_lines),
    A.TestCase: ("test", _test_lines),
    A.Assertion: ("assert", _assert_lines),
}


# ---------------------------------------------------------------- comments and assembly


@attrs.define
class _Slot:
    """One unit of output that comments attach to: the header's head, a header clause, or a
    statement. ``start``/``end`` are (line, column) in the source, None when unknown."""

    kind: str
    lines: list[str]
    start: tuple[int, int] | None = None
    end: tuple[int, int] | None = None
    order: int = 0
    leading: list[tuple[str, bool]] = attrs.Factory(list)  # (comment, blank line before)
    moved: list[str] = attrs.Factory(list)  # comments from inside the statement
    blank_after: bool = False  # blank line between the leading comments and the statement
    trailing: str | None = None
    set_decl: A.SetDecl | None = None  # a set keeps the comments on its items (_ItemNotes)
    notes: _ItemNotes | None = None


@attrs.define
class _ItemNotes:
    """The comments inside a set's brackets, kept with its items."""

    head: str | None = None  # at the end of the `set NAME = [` line
    leading: dict[int, list[str]] = attrs.Factory(dict)  # on their own lines above item i
    trailing: dict[int, str] = attrs.Factory(dict)  # after item i, on its line
    closing: list[str] = attrs.Factory(list)  # on their own lines after the last item


def _place_in_set(slot: _Slot, span: A.Span, text: str) -> bool:
    """Give a comment inside a set's statement to one of its items (see the module
    docstring); False when the set's positions are unknown."""
    decl = slot.set_decl
    if decl is None or decl.name.span is None or any(i.span is None for i in decl.items):
        return False
    notes = slot.notes = slot.notes or _ItemNotes()
    spans = [i.span for i in decl.items if i.span is not None]  # every one, as checked above
    here = (span.line, span.column)
    on_line = [n for n, sp in enumerate(spans) if sp.end_line == span.line and (sp.end_line, sp.end_column) <= here]
    if on_line and on_line[-1] not in notes.trailing:
        notes.trailing[on_line[-1]] = text
    elif span.line == decl.name.span.line and notes.head is None:
        notes.head = text
    else:
        after = next((n for n, sp in enumerate(spans) if (sp.line, sp.column) > here), None)
        if after is None:
            notes.closing.append(text)
        else:
            notes.leading.setdefault(after, []).append(text)
    return True


def _commented_set_lines(s: A.SetDecl, notes: _ItemNotes) -> list[str]:
    """A set whose items carry comments: one item a line, each comment in its place."""
    lines = [f"set {_ref(s.name)} = [" + (f"  {notes.head}" if notes.head else "")]
    for n, item in enumerate(s.items):
        lines += [_INDENT + c for c in notes.leading.get(n, ())]
        lines.append(f"{_INDENT}{format_literal(item)}," + (f"  {notes.trailing[n]}" if n in notes.trailing else ""))
    lines += [_INDENT + c for c in notes.closing]
    lines.append("]")
    return lines


def _pos(span: A.Span | None) -> tuple[tuple[int, int], tuple[int, int]] | tuple[None, None]:
    if span is None:
        return None, None
    return (span.line, span.column), (span.end_line, span.end_column)


def _file_slots(file: A.File) -> list[_Slot]:
    slots: list[_Slot] = []
    h = file.header
    if h is not None:
        start, _ = _pos(h.span)
        _, end = _pos(h.name.span)
        if start is None or end is None:
            start = end = None
        slots.append(_Slot("header", _header_head(h), start, end))
        for c in canonical_clause_order(h.clauses):
            cs, ce = _pos(c.span)
            slots.append(_Slot("clause", _header_clause(c), cs, ce))
    if file.tests_for is not None:
        s, e = _pos(file.tests_for.span)
        slots.append(_Slot("tests_for", _tests_for_lines(file.tests_for), s, e))
    for st in file.statements:
        kind, layout = _STATEMENT_LAYOUT[type(st)]
        s, e = _pos(st.span)
        slots.append(_Slot(kind, layout(st), s, e, set_decl=st if isinstance(st, A.SetDecl) else None))
    return slots


def _attach_comments(slots: Sequence[_Slot], comments: Iterable[A.Comment]) -> list[tuple[str, bool]]:
    """Give each comment its place (see the module docstring); returns the comments that
    stay at the end of the file, each with whether a blank line preceded it."""
    anchors = sorted(((s.start, s.end, s) for s in slots if s.start is not None and s.end is not None),
                     key=lambda a: a[0])
    eof: list[tuple[str, bool]] = []
    placed = sorted(((c.span, c.text.rstrip(), c.suppression) for c in comments if c.span is not None),
                    key=lambda sc: (sc[0].line, sc[0].column))
    last_line: int | None = None  # where the previous comment ended
    for span, text, suppression in placed:
        p = (span.line, span.column)
        inside = next((slot for s, e, slot in anchors if s < p < e), None)
        before = [(e, slot) for s, e, slot in anchors if e <= p]
        prev_end, prev = max(before, key=lambda b: b[0]) if before else (None, None)
        if inside is not None:
            if not _place_in_set(inside, span, text):
                inside.moved.append(text)
        elif prev is not None and prev_end is not None and prev_end[0] == span.line and prev.trailing is None:
            for slot in [prev, *_ending_on(before, span.line)] if suppression else [prev]:
                slot.trailing = text  # a suppression covers every statement on its line: each keeps a copy
        else:
            gaps = [line for line in (prev_end[0] if prev_end else None, last_line) if line is not None]
            blank = bool(gaps) and span.line - max(gaps) >= 2
            following = next(((s, slot) for s, e, slot in anchors if s >= p), None)
            if following is not None:
                s, slot = following
                slot.leading.append((text, blank))
                slot.blank_after = s[0] - span.end_line >= 2
            else:
                eof.append((text, blank))
        last_line = span.end_line
    # comments without a position (a hand-built AST) go to the end
    eof += [(c.text.rstrip(), False) for c in comments if c.span is None]
    for slot in slots:
        if slot.set_decl is not None and slot.notes is not None:
            slot.lines = _commented_set_lines(slot.set_decl, slot.notes)
    return eof


def _ending_on(before: list[tuple[tuple[int, int], _Slot]], line: int) -> list[_Slot]:
    """The slots of ``before`` that end on ``line`` and have no trailing comment yet."""
    return [slot for end, slot in before if end[0] == line and slot.trailing is None]


def _assemble(slots: Sequence[_Slot], eof: list[tuple[str, bool]]) -> str:
    out: list[str] = []
    prev_kind: str | None = None
    prev_multi = False
    for slot in slots:
        if slot.kind == "clause":
            _emit(out, slot, _INDENT, keep_blanks=False, forced=False)
            continue
        multi = len(slot.lines) > 1
        forced = prev_kind is not None and (prev_kind != slot.kind or prev_multi or multi)
        _emit(out, slot, "", keep_blanks=True, forced=forced)
        prev_kind, prev_multi = slot.kind, multi
    for text, blank_before in eof:
        if blank_before:
            _blank(out)
        out.append(text)
    return "\n".join(out) + "\n" if out else ""


def _blank(out: list[str]) -> None:
    """A blank line, unless the output is empty or already ends with one."""
    if out and out[-1] != "":
        out.append("")


def _emit(out: list[str], slot: _Slot, indent: str, keep_blanks: bool, forced: bool) -> None:
    """A slot's comments and lines. ``forced``: a blank line before it; ``keep_blanks``:
    the blank lines of its leading comments are kept."""
    comments = slot.leading + [(m, False) for m in slot.moved]
    if comments:
        if forced or (keep_blanks and comments[0][1]):
            _blank(out)
        for i, (text, blank_before) in enumerate(comments):
            if i and keep_blanks and blank_before:
                _blank(out)
            out.append(indent + text)
        if keep_blanks and slot.blank_after and slot.leading:
            _blank(out)
    elif forced:
        _blank(out)
    lines = list(slot.lines)
    if slot.trailing is not None:
        lines[-1] = f"{lines[-1]}  {slot.trailing}"
    out.extend(lines)
