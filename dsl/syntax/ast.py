"""The abstract syntax tree of the policy language.

Every node is a frozen attrs class. Every node carries a ``span`` that is left out of
equality, so ``parse(format(text)) == parse(text)`` is a plain comparison. This module
imports nothing from the rest of the package but the leaf ``dsl.span``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterator
from typing import Any

import attrs

from ..span import Span as Span  # re-exported: A.Span is the location of every node
from ..span import pack as _pack
from ..span import unpack as _unpack


def _span() -> Span | None:
    # attrs.field is typed Any outside a class body; on the class it is the attribute (a Span or None)
    return attrs.field(default=None, eq=False, repr=False, kw_only=True)  # type: ignore[no-any-return]


# ---------------------------------------------------------------- literals


@attrs.frozen
class Str:
    value: str
    span: Span | None = _span()


@attrs.frozen
class Num:
    """A number literal. ``value`` is an int when written without a fraction."""

    value: int | float
    span: Span | None = _span()


@attrs.frozen
class Bool:
    value: bool
    span: Span | None = _span()


@attrs.frozen
class Date:
    """A calendar date; it means the first instant of that day in the policy's timezone."""

    value: _dt.date
    span: Span | None = _span()


@attrs.frozen
class DateTime:
    """A date-time. ``value.tzinfo`` is None when written without an offset (local time in
    the policy's timezone)."""

    value: _dt.datetime
    span: Span | None = _span()


@attrs.frozen
class Duration:
    """A duration, held in hours (``2w`` and ``14d`` are equal)."""

    hours: int
    span: Span | None = _span()


@attrs.frozen
class Regex:
    """A regular expression in RE2 syntax; ``pattern`` has ``\\/`` already read as ``/``."""

    pattern: str
    ignore_case: bool = False
    span: Span | None = _span()


Scalar = Str | Num | Bool | Date | DateTime
When = Date | DateTime


@attrs.frozen
class ListLit:
    items: tuple[Scalar, ...]
    span: Span | None = _span()


@attrs.frozen
class Ref:
    """A reference to a declared name (set, ladder, rule, qualified rule ``policy.rule``)."""

    name: str
    span: Span | None = _span()


ListExpr = ListLit | Ref


@attrs.frozen
class Path:
    """A field path such as ``seller.country``."""

    parts: tuple[str, ...]
    span: Span | None = _span()

    def __str__(self) -> str:
        return ".".join(self.parts)


# ---------------------------------------------------------------- expressions


@attrs.frozen
class And:
    items: tuple[Expr, ...]
    span: Span | None = _span()


@attrs.frozen
class Or:
    items: tuple[Expr, ...]
    span: Span | None = _span()


@attrs.frozen
class Not:
    operand: Expr
    span: Span | None = _span()


@attrs.frozen
class Const:
    """``true`` or ``false`` as a condition."""

    value: bool
    span: Span | None = _span()


@attrs.frozen
class Category:
    """``category 'A > B'``: the pattern's segments occur as a contiguous run of the
    listing's category path."""

    pattern: Str
    span: Span | None = _span()


@attrs.frozen
class CategoryIn:
    """``category in LIST``: some pattern of the list matches. ``category not in L`` is
    lowered to ``Not(CategoryIn(L))``."""

    items: ListExpr
    span: Span | None = _span()


@attrs.frozen
class Mentions:
    """``[PATH] mentions 'phrase'``; ``path`` None means the listing's text (title,
    description, tags)."""

    path: Path | None
    phrase: Str
    span: Span | None = _span()


@attrs.frozen
class MentionsAny:
    path: Path | None
    items: ListExpr
    span: Span | None = _span()


@attrs.frozen
class Contains:
    path: Path
    needle: Str
    span: Span | None = _span()


@attrs.frozen
class Matches:
    path: Path
    regex: Regex
    span: Span | None = _span()


@attrs.frozen
class Compare:
    """``PATH op LITERAL`` with op one of ``== != < <= > >=``. ``category == 'X'`` is also
    lowered to this node, so that the checker can report P208."""

    path: Path
    op: str
    value: Scalar
    span: Span | None = _span()


@attrs.frozen
class In:
    """``PATH in LIST`` or, with ``negated``, ``PATH not in LIST`` (false on an absent
    field, like every atom)."""

    path: Path
    items: ListExpr
    negated: bool = False
    span: Span | None = _span()


@attrs.frozen
class Exists:
    path: Path
    span: Span | None = _span()


Atom = Const | Category | CategoryIn | Mentions | MentionsAny | Contains | Matches | Compare | In | Exists
Expr = And | Or | Not | Atom


def conjuncts(e: Expr) -> tuple[Expr, ...]:
    """The conjuncts of a condition, nested ``and`` flattened, in order (loops, no
    recursion): what must each hold for the condition to hold."""
    out: list[Expr] = []
    stack: list[Expr] = [e]
    while stack:
        g = stack.pop()
        if isinstance(g, And):
            stack.extend(reversed(g.items))
        else:
            out.append(g)
    return tuple(out)


def walk(e: Expr) -> Iterator[Expr]:
    """Every node of a condition, parents before children, in written order (loops, no
    recursion, so a deeply nested condition cannot exhaust the stack)."""
    stack: list[Expr] = [e]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (And, Or)):
            stack.extend(reversed(node.items))
        elif isinstance(node, Not):
            stack.append(node.operand)


# ---------------------------------------------------------------- penalties


ACTION_KINDS = ("warn", "remove", "deduct", "restrict", "suspend", "close")
"""Penalty action kinds in increasing severity."""


@attrs.frozen
class Action:
    """One penalty action. ``kind`` is one of ACTION_KINDS; ``points`` for deduct;
    ``function`` for restrict (listing, selling, …); ``duration`` for restrict/suspend."""

    kind: str
    points: int | None = None
    function: str | None = None
    duration: Duration | None = None
    span: Span | None = _span()


@attrs.frozen
class Step:
    actions: tuple[Action, ...]
    span: Span | None = _span()


# ---------------------------------------------------------------- declarations


@attrs.frozen
class Clause:
    """A policy header clause: kind is title, authority, version, timezone or scope;
    value is a Str, or an Expr for scope."""

    kind: str
    value: Str | Expr
    span: Span | None = _span()


@attrs.frozen
class Header:
    name: Ref
    clauses: tuple[Clause, ...]
    span: Span | None = _span()


@attrs.frozen
class SetDecl:
    name: Ref
    items: tuple[Scalar, ...]
    span: Span | None = _span()


@attrs.frozen
class LadderDecl:
    name: Ref
    steps: tuple[Step, ...]
    span: Span | None = _span()


@attrs.frozen
class TypeRef:
    """A field type: kind is text, number, bool, date, category, one_of or list_text;
    ``values`` holds the strings of ``one of [...]``."""

    kind: str
    values: tuple[Str, ...] = ()
    span: Span | None = _span()


@attrs.frozen
class FieldDecl:
    path: Path
    type: TypeRef
    required: bool = False
    span: Span | None = _span()


@attrs.frozen
class PenaltyLadder:
    ladder: Ref
    span: Span | None = _span()


@attrs.frozen
class PenaltyStep:
    step: Step
    span: Span | None = _span()


Penalty = PenaltyLadder | PenaltyStep


@attrs.frozen
class Rule:
    """A rule. ``name`` is None for an unnamed rule (its id is ``L<line>``). ``span``
    starts at the rule's first token. Trailing clauses may be written in any order; the
    AST holds them in canonical order."""

    name: Ref | None
    effect: str
    from_: When | None = None
    until: When | None = None
    selector: Expr | None = None
    if_: Expr | None = None
    unless: Expr | None = None
    penalty: Penalty | None = None
    overrides: tuple[Ref, ...] = ()
    because: Str | None = None
    message: Str | None = None
    span: Span | None = _span()
    head: Span | None = attrs.field(default=None, eq=False, repr=False, kw_only=True)
    """Where findings about the rule point: ``rule NAME:`` when named, else its first token."""

    @property
    def anchor(self) -> Span | None:
        return self.head or self.span


# ---------------------------------------------------------------- test files


@attrs.frozen
class ObjectLit:
    """A JSON-like object in a test's ``given``: ``items`` keeps the written order."""

    items: tuple[tuple[str, Value], ...]
    span: Span | None = _span()


@attrs.frozen
class ArrayLit:
    items: tuple[Value, ...]
    span: Span | None = _span()


@attrs.frozen
class Null:
    span: Span | None = _span()


Value = Scalar | ObjectLit | ArrayLit | Null


@attrs.frozen
class ExpectPenalty:
    """``penalty LADDER step N`` (ladder set), ``penalty step N`` (ladder None) or
    ``no penalty`` (none True)."""

    ladder: Ref | None = None
    step: int | None = None
    none: bool = False
    span: Span | None = _span()


@attrs.frozen
class Expect:
    effect: str
    by: tuple[Ref, ...] = ()
    penalty: ExpectPenalty | None = None
    span: Span | None = _span()


@attrs.frozen
class TestCase:
    name: Str
    given: ObjectLit
    at: When
    expect: Expect
    prior: int | None = None
    span: Span | None = _span()


@attrs.frozen
class Assertion:
    name: Str
    quantifier: str  # "always" or "never"
    effect: str
    expr: Expr
    from_: When | None = None
    until: When | None = None
    span: Span | None = _span()


Statement = SetDecl | LadderDecl | FieldDecl | Rule | TestCase | Assertion


@attrs.frozen
class TestsFor:
    """``tests for POLICY, …`` at the top of a test file: its tests and assertions are
    decided against these policies alone."""

    policies: tuple[Ref, ...]
    span: Span | None = _span()


SUPPRESSION = re.compile(r"#\s*policy\s*:\s*ignore\b")
"""The directive of a suppression comment (``# policy: ignore[P301]``, spec section 6):
``dsl.checking.suppress`` reads the codes after it; the formatter gives such a comment
that ends a line of several statements to each of them, as it covers each."""


@attrs.frozen
class Comment:
    """A ``#`` comment, kept for the formatter."""

    text: str
    span: Span | None = _span()

    @property
    def suppression(self) -> bool:
        """Whether it is a suppression comment (``SUPPRESSION``)."""
        return SUPPRESSION.search(self.text) is not None


@attrs.frozen
class Unparsed:
    """A statement left out for its syntax error, and the name it declares as far as it
    could be read (``kind`` is "rule", "set", "ladder", or "policy" for the header: its
    name, "" when none could be read). The checks take the name as declared, so that the
    one P100 is not followed by "unknown rule" (P202), "unknown set" (P200) or "unknown
    ladder" (P201) wherever the statement is named, nor by "no policy header" (P214)."""

    kind: str
    name: str
    span: Span | None = _span()


@attrs.frozen
class File:
    """One parsed source file. ``header`` is None for a file without ``policy``;
    ``tests_for`` is None for a file without ``tests for`` (every policy file);
    ``unparsed`` lists the named statements left out for a syntax error."""

    path: str
    header: Header | None
    statements: tuple[Statement, ...]
    comments: tuple[Comment, ...] = attrs.field(default=(), eq=False)
    span: Span | None = _span()
    tests_for: TestsFor | None = attrs.field(default=None, kw_only=True)
    unparsed: tuple[Unparsed, ...] = attrs.field(default=(), eq=False, kw_only=True)


# ---------------------------------------------------------------- pickling


def _compact_pickle(cls: type) -> None:
    """``cls`` pickled as a call of a function made for it, ``_make_<Name>``, with its
    fields in order and each span as two plain values (``dsl.span.pack``: a parse's
    spans share their file's lines, pickled once), not as attrs' state dict and a pickle
    of each span: a set parsed by two processes (``dsl.syntax.batch``) pickles and
    unpickles a file's AST on its critical path, 2-3x faster so. Made as attrs makes
    ``__init__``: the source of two functions for the fields of ``cls``."""
    name = cls.__name__
    fields = [(a.name, a.type == "Span | None") for a in attrs.fields(cls)]
    params = ", ".join(f"{f}_src, {f}_at" if spanned else f for f, spanned in fields)
    lines = [f"def _make_{name}({params}):", f"    o = _new({name})"]
    lines += [f"    _set(o, {f!r}, _unpack({f}_src, {f}_at))" if spanned else f"    _set(o, {f!r}, {f})"
              for f, spanned in fields]
    lines += ["    return o", "", "def __reduce_ex__(self, protocol):"]
    lines += [f"    {f}_src, {f}_at = _pack(self.{f})" for f, spanned in fields if spanned]
    values = "".join(f"{f}_src, {f}_at, " if spanned else f"self.{f}, " for f, spanned in fields)
    lines += [f"    return _make_{name}, ({values})"]
    made: dict[str, Any] = {name: cls, "_new": object.__new__, "_set": object.__setattr__,
                            "_pack": _pack, "_unpack": _unpack}
    exec("\n".join(lines), made)  # our own source, as attrs makes its methods
    make: Callable[..., Any] = made[f"_make_{name}"]
    make.__module__ = __name__
    globals()[make.__name__] = make  # found by its name when unpickled
    cls.__reduce_ex__ = made["__reduce_ex__"]  # type: ignore[method-assign]  # before object's, which would call attrs' __getstate__


for _cls in list(globals().values()):
    if isinstance(_cls, type) and attrs.has(_cls) and _cls.__module__ == __name__:
        _compact_pickle(_cls)
del _cls
