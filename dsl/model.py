"""The checked model: what a policy set means, with every name resolved.

The checks (``dsl.checking.passes``) build it from parsed files; the evaluators, the analysis and
the test runner read it. Expressions here are AST expressions in which every set
reference has been replaced by the set's literal list, so no later stage looks names up.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, get_args
from zoneinfo import ZoneInfo

import attrs

from .syntax import ast as A
from .syntax.canonical import canonical_action

_T = TypeVar("_T")

ACTION_RANK = {kind: i for i, kind in enumerate(A.ACTION_KINDS)}

Effect = Literal["allow", "flag", "block"]
"""The effect of a rule and of a decision (``dsl.evaluate.semantics.EFFECTS`` orders them;
``dsl.evaluate.outcome.Effect``, a leaf module's copy, is the same type)."""

_EFFECT_OF: Mapping[str, Effect] = {effect: effect for effect in get_args(Effect)}


def narrow(table: Mapping[str, _T], word: str, what: str) -> _T:
    """``table[word]``: a word of the syntax tree (which the grammar already limits) as
    its ``Literal`` type; ValueError ``not a WHAT`` for any other word."""
    value = table.get(word)
    if value is None:
        raise ValueError(f"not {what}: {word!r}")
    return value


def effect_of(word: str) -> Effect:
    """An effect keyword as written (the grammar admits only the three) as an ``Effect``;
    ValueError for any other word."""
    return narrow(_EFFECT_OF, word, "an effect")


FieldKind = Literal["text", "number", "bool", "date", "category", "one_of", "list_text"]
"""The type of a declared field (``field PATH: TYPE``)."""

_FIELD_KIND_OF: Mapping[str, FieldKind] = {kind: kind for kind in get_args(FieldKind)}


def field_kind_of(word: str) -> FieldKind:
    """A field type's kind as the syntax tree holds it (the grammar admits only these) as
    a ``FieldKind``; ValueError for any other word."""
    return narrow(_FIELD_KIND_OF, word, "a field type")


ValueKind = Literal["text", "number", "date", "bool", "category", "textlike"]
"""A kind of value that a policy set reads a field as (``PolicySet.compared_types``):
``textlike`` is text or a list of text, what ``mentions``, ``contains`` and ``matches``
read."""


@attrs.frozen
class StepInfo:
    """One penalty step: its actions in canonical form, in the order written, and the key
    that orders steps by severity (compare two keys with < and >)."""

    actions: tuple[str, ...]
    severity: tuple[tuple[int, int], ...]
    span: A.Span | None = attrs.field(default=None, eq=False)


@attrs.frozen
class LadderInfo:
    """A ladder; ``name`` is None for an inline ``penalty STEP`` (a ladder of one step)."""

    name: str | None
    steps: tuple[StepInfo, ...]
    span: A.Span | None = attrs.field(default=None, eq=False)


@attrs.frozen
class PolicyInfo:
    name: str
    file: str
    timezone: str
    title: str | None = None
    version: str | None = None
    authorities: tuple[str, ...] = ()
    scope: A.Expr | None = None
    tz: ZoneInfo = attrs.field(default=ZoneInfo("UTC"), eq=False, repr=False)


@attrs.frozen
class RuleInfo:
    """A rule with everything resolved.

    ``start``/``end`` are the window bounds as aware UTC instants (a bound written without
    an offset was read in the policy's timezone ``tz`` by ``when_instant``); the rule is
    in force for ``start <= at < end``. A naive ``at`` given to ``decide`` is likewise
    read in each rule's ``tz``. ``condition`` is the conjunction of scope, selector, ``if``
    and ``not unless`` (``Const(True)`` when there is nothing to test)."""

    qid: str
    policy: str
    name: str
    effect: Effect
    start: dt.datetime | None
    end: dt.datetime | None
    scope: A.Expr | None
    selector: A.Expr | None
    if_: A.Expr | None
    unless: A.Expr | None
    condition: A.Expr
    penalty: LadderInfo | None
    overrides: tuple[str, ...]
    because: str | None
    message: str | None
    authorities: tuple[str, ...]
    timezone: str
    tz: ZoneInfo = attrs.field(eq=False, repr=False)
    anchor: A.Span | None = attrs.field(default=None, eq=False, repr=False)
    node: A.Rule | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def ladder_name(self) -> str | None:
        return self.penalty.name if self.penalty else None


@attrs.frozen
class FieldInfo:
    """A declared field: ``kind`` is text, number, bool, date, category, one_of or
    list_text; ``values`` the allowed strings of ``one of``."""

    path: tuple[str, ...]
    kind: FieldKind
    values: tuple[str, ...] = ()
    required: bool = False


BUILTIN_FIELDS: dict[tuple[str, ...], FieldInfo] = {
    ("category",): FieldInfo(("category",), "category"),
    ("title",): FieldInfo(("title",), "text"),
    ("description",): FieldInfo(("description",), "text"),
    ("tags",): FieldInfo(("tags",), "list_text"),
}


@attrs.frozen
class PolicySet:
    """A checked policy set. ``rules`` are sorted by qualified id; ``policies`` by name.

    ``schema`` is empty when the set declares no field (then listings are not validated);
    otherwise it holds the declared fields plus the built-ins. ``compared_types`` maps each
    field path that some atom reads to the kinds of value the set compares it with
    ("text", "number", "date", "bool", "category"): a present value that fits none of them
    earns the decision one input warning."""

    policies: tuple[PolicyInfo, ...]
    rules: tuple[RuleInfo, ...]
    sets: Mapping[str, tuple[A.Scalar, ...]]
    ladders: Mapping[str, LadderInfo]
    schema: Mapping[tuple[str, ...], FieldInfo]
    compared_types: Mapping[tuple[str, ...], frozenset[ValueKind]]
    files: tuple[A.File, ...] = attrs.field(eq=False, repr=False)
    sources: Mapping[str, str] = attrs.field(eq=False, repr=False, factory=dict)

    by_qid: Mapping[str, RuleInfo] = attrs.field(eq=False, repr=False, factory=dict)

    def rule(self, qid: str) -> RuleInfo:
        return self.by_qid[qid]

    def policy(self, name: str) -> PolicyInfo:
        for p in self.policies:
            if p.name == name:
                return p
        raise KeyError(name)


def local_instant(value: dt.date | dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """A local reading as an aware UTC instant: the one statement of how a local time is
    read (spec section 5), for window bounds, ``at``, date literals and listing dates.

    An aware datetime is that instant. A naive datetime is wall-clock time in ``tz``: a
    time that occurs twice is the earlier instant, one that a daylight-saving change skips
    is read with the offset in force just before the change (Python's ``fold=0``). A date
    is the first instant of that day in ``tz``: its midnight, or, where a change skips
    midnight, the instant of the change (the day's first wall-clock reading). Raises
    OverflowError or ValueError out of range."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value.astimezone(dt.UTC)
        return value.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    midnight = dt.datetime(value.year, value.month, value.day)
    early = midnight.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    if early.astimezone(tz).replace(tzinfo=None) == midnight:
        return early  # midnight occurs (the earlier one, when it occurs twice)
    before = early - dt.timedelta(microseconds=1)
    if before.astimezone(tz).replace(tzinfo=None) < midnight:
        return early  # the change skips midnight and lands on it: 00:00 -> 01:00
    return _first_reading_from(midnight, tz, early)


def _first_reading_from(midnight: dt.datetime, tz: ZoneInfo, late: dt.datetime) -> dt.datetime:
    """The first instant whose wall-clock reading in ``tz`` is ``midnight`` or later, where
    midnight falls in a gap (so it is before ``late``, midnight read with the offset before
    the change, and after midnight read with the offset after it): found by bisection
    to the microsecond (only days such as 31 March 1919 in Toronto, whose change skipped
    23:30 to 00:30, need it)."""
    low = midnight.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    if low >= late:
        return late
    step = dt.timedelta(microseconds=1)
    while late - low > step:
        middle = low + (late - low) // 2
        if middle.astimezone(tz).replace(tzinfo=None) >= midnight:
            late = middle
        else:
            low = middle
    return late


def when_instant(w: A.When | None, tz: ZoneInfo) -> dt.datetime | None:
    """A window bound as written (a Date or DateTime literal) as an aware instant
    (``local_instant``): a date is the first instant of its day in ``tz``, a date-time
    without an offset local time in ``tz``; None for an open bound."""
    return None if w is None else local_instant(w.value, tz)


def when_value(w: A.When | None) -> dt.datetime | None:
    """A Date or DateTime literal as a datetime (naive when written without an offset)."""
    if w is None:
        return None
    if isinstance(w, A.Date):
        return dt.datetime(w.value.year, w.value.month, w.value.day)
    return w.value


def list_items(items: A.ListExpr) -> tuple[A.Scalar, ...]:
    """The literals of a list in a checked rule (set references are resolved in the
    checked model, so every list is a literal)."""
    assert isinstance(items, A.ListLit), "set references are resolved in the checked model"
    return items.items


def list_texts(items: A.ListExpr) -> list[str]:
    """The text literals of such a list (phrases, category patterns)."""
    return [i.value for i in list_items(items) if isinstance(i, A.Str)]


def action_key(a: A.Action) -> tuple[int, int]:
    magnitude = a.points or (a.duration.hours if a.duration else 0) or 0
    return (ACTION_RANK[a.kind], magnitude)


def step_info(step: A.Step) -> StepInfo:
    """Canonical actions, and the severity key: the actions' keys most severe first; two
    keys compare lexicographically and a longer list wins a tie (Python's tuple order)."""
    key = tuple(sorted((action_key(a) for a in step.actions), reverse=True))
    return StepInfo(tuple(canonical_action(a) for a in step.actions), key, step.span)


def to_jsonable(lit: Any) -> Any:
    """A literal as the JSON value a listing would hold."""
    if isinstance(lit, (A.Str, A.Num, A.Bool)):
        return lit.value
    if isinstance(lit, A.Date):
        return lit.value.isoformat()
    if isinstance(lit, A.DateTime):
        return lit.value.isoformat()
    if isinstance(lit, A.Null):
        return None
    if isinstance(lit, A.ArrayLit):
        return [to_jsonable(v) for v in lit.items]
    if isinstance(lit, A.ObjectLit):
        return {k: to_jsonable(v) for k, v in lit.items}
    raise TypeError(type(lit))
