"""The meaning of a decision, stated once (spec sections 4 and 5).

Everything both evaluators must agree on lives here, and only here:

- the value predicates: ``PATH op LITERAL`` (``compare_test``), ``PATH in [...]`` and
  ``not in`` (``membership_test``), ``category`` (``category_test``), and the text atoms
  ``mentions``, ``contains`` and ``matches`` through ``dsl.text``;
- the window test (``window_side``, ``in_window``);
- the order of effects (``EFFECTS``) and the comparison operators (``OPERATORS``);
- the penalty step a ladder proposes after ``prior`` violations (``penalty_step``) and how
  proposals compare (``more_severe``);
- how the rules that apply combine into a decision (``combine``): overrides, the effect,
  the sorted rule ids, the penalty with its tie-break, messages and citations.

Predicates come as builders: ``compare_test(op, literal, tz)`` returns a function of the
field's value, with the literal already read (a date as an instant, a list as hash sets
by kind). The compiled evaluator (``dsl.evaluate.compiled``) builds them once when it plans a set;
the reference walk (``dsl.evaluate.reference``) and the analysis's concrete evaluation call the
one-shot forms (``compare``, ``in_list``, ``category_holds``), which build and apply them.
The z3 encoding (``dsl.analysis``) is the only other statement of these rules; property
tests in ``tests/test_semantics.py`` tie it to this one.
"""

from __future__ import annotations

import datetime as dt
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal
from zoneinfo import ZoneInfo

import attrs

from ..model import Effect, PolicySet, RuleInfo, StepInfo, list_texts, narrow
from ..syntax import ast as A
from ..text import (
    category_matches,
    compile_regex,
    contains,
    mentions,
    normalize_needle,
    normalize_phrase,
    pattern_segments,
    regex_search,
)
from . import values as V
from .outcome import Decision, PenaltyChoice, Proposal

__all__ = [
    "EFFECTS", "EFFECT_RANK", "Effect", "Op", "OPS", "OPERATORS", "EQUALITY_OPS", "as_op", "Source", "ValueTest",
    "compare_test", "compare", "membership_test", "in_list", "literal_instant", "category_test",
    "category_holds", "atom_texts", "category_keys", "IndexKey", "literal_key", "equality_keys",
    "mention_phrases", "contains_test", "needle_pieces", "contains_normalized_test",
    "matches_test", "source_pieces", "pieces_reader",
    "window_side", "in_window", "instant_key", "window_keys",
    "penalty_step", "step_at", "more_severe", "Consequence", "consequence",
    "Outcome", "combine", "overriders_of",
]

# --------------------------------------------------------------------------- tables

EFFECTS: tuple[Effect, ...] = ("allow", "flag", "block")
"""The effects, weakest first: a decision takes the strongest effect of its rules."""

EFFECT_RANK: Mapping[Effect, int] = {effect: rank for rank, effect in enumerate(EFFECTS)}

Op = Literal["==", "!=", "<", "<=", ">", ">="]
"""A comparison operator of ``PATH op LITERAL``."""

OPERATORS: Mapping[Op, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
"""Each comparison operator as a function of (value, literal)."""

OPS: tuple[Op, ...] = tuple(OPERATORS)
"""The comparison operators."""

_OP_OF: Mapping[str, Op] = {op: op for op in OPS}

EQUALITY_OPS: frozenset[Op] = frozenset({"==", "!="})
"""The only operators that text and booleans take (the others are always false on them)."""


def as_op(word: str) -> Op:
    """An operator as the syntax tree holds it (a string the grammar limits to the six) as
    an ``Op``; ValueError for any other string."""
    return narrow(_OP_OF, word, "a comparison operator")

ValueTest = Callable[[Any], bool]
"""A predicate on a field's value (None when the field is absent)."""

Source = tuple[str, ...] | None
"""Where a text atom reads: a field path, or None for the listing's text (``mentions``)."""


def never(_value: Any) -> bool:
    """The predicate that holds for nothing."""
    return False


# --------------------------------------------------------------------------- values


def literal_instant(lit: A.Date | A.DateTime, tz: ZoneInfo) -> dt.datetime | None:
    """A date literal as an instant: a date is the first instant of its day in ``tz``, a
    date-time without an offset local time there (None when out of range)."""
    return V.instant_in(lit.value, tz)


def compare_test(op: Op, lit: A.Scalar, tz: ZoneInfo) -> ValueTest:
    """``PATH op LITERAL`` as a predicate on the value: false on an absent field and on a
    value of another kind than the literal (a bool is not a number); text and booleans
    only with ``==``/``!=``; numbers by value; dates as instants, the literal and a value
    without an offset read in ``tz``."""
    if isinstance(lit, (A.Str, A.Bool)):
        if op not in EQUALITY_OPS:
            return never
        want = lit.value
        kind: type = str if isinstance(lit, A.Str) else bool
        if op == "==":
            return lambda v: isinstance(v, kind) and v == want
        return lambda v: isinstance(v, kind) and v != want
    test = OPERATORS[op]
    if isinstance(lit, A.Num):
        number = lit.value
        is_number = V.is_number
        return lambda v: is_number(v) and test(v, number)
    instant = literal_instant(lit, tz)
    if instant is None:
        return never

    def date_compare(v: Any) -> bool:
        if v is None:
            return False
        mine = V.value_instant(v, tz)
        return mine is not None and test(mine, instant)
    return date_compare


def compare(value: Any, op: Op, lit: A.Scalar, tz: ZoneInfo) -> bool:
    """``compare_test`` applied once."""
    return compare_test(op, lit, tz)(value)


def membership_test(items: Sequence[A.Scalar], negated: bool, tz: ZoneInfo) -> ValueTest:
    """``PATH in LIST`` / ``PATH not in LIST`` as a predicate on the value. Both are false
    on an absent field and on a list or object value. ``in`` holds when the value equals
    (as ``compare_test(==)`` reads equality) an item of its kind; ``not in`` holds when
    the list has items of the value's kind and none equals it, and for any present scalar
    against an empty list (a value of no kind that the list holds is a type mismatch)."""
    texts = frozenset(i.value for i in items if isinstance(i, A.Str))
    numbers = frozenset(i.value for i in items if isinstance(i, A.Num))
    bools = frozenset(i.value for i in items if isinstance(i, A.Bool))
    instants = frozenset(x for i in items if isinstance(i, (A.Date, A.DateTime))
                         if (x := literal_instant(i, tz)) is not None)
    has_date = any(isinstance(i, (A.Date, A.DateTime)) for i in items)
    if not negated and not has_date and not bools and not numbers:
        return lambda v: isinstance(v, str) and v in texts
    lookup = _membership_lookup(texts, numbers, bools, instants, has_date, tz)
    is_scalar = V.is_scalar
    if not negated:
        return lambda v: v is not None and is_scalar(v) and lookup(v)[1]
    return _not_in_test(lookup, empty=not items)


def _membership_lookup(texts: frozenset[str], numbers: frozenset[Any], bools: frozenset[bool],
                       instants: frozenset[dt.datetime], has_date: bool,
                       tz: ZoneInfo) -> Callable[[Any], tuple[bool, bool]]:
    """For a present scalar value: (comparable, found), whether the list has items of the
    value's kind, and whether one of them equals it."""
    has_text, has_number, has_bool = bool(texts), bool(numbers), bool(bools)
    is_number = V.is_number

    def lookup(v: Any) -> tuple[bool, bool]:
        if isinstance(v, str):
            if v in texts:
                return True, True
            if has_date:
                mine = V.value_instant(v, tz)
                if mine is not None:
                    return True, mine in instants
            return has_text, False
        if isinstance(v, bool):
            return has_bool, v in bools
        if is_number(v):
            return has_number, v in numbers
        if isinstance(v, dt.date) and has_date:
            mine = V.value_instant(v, tz)
            return mine is not None, mine in instants
        return False, False
    return lookup


def _not_in_test(lookup: Callable[[Any], tuple[bool, bool]], empty: bool) -> ValueTest:
    """``not in``: a present scalar, against an empty list or comparable and not found."""
    is_scalar = V.is_scalar

    def not_in(v: Any) -> bool:
        if v is None or not is_scalar(v):
            return False
        if empty:
            return True
        comparable, found = lookup(v)
        return comparable and not found
    return not_in


def in_list(value: Any, items: Sequence[A.Scalar], negated: bool, tz: ZoneInfo) -> bool:
    """``membership_test`` applied once."""
    return membership_test(items, negated, tz)(value)


# --------------------------------------------------------------------------- categories and text


def atom_texts(e: A.Category | A.CategoryIn | A.Mentions | A.MentionsAny) -> list[str]:
    """The texts of a ``category`` atom (its patterns) or a ``mentions`` atom (its phrases),
    as written: one for ``category 'P'`` and ``mentions 'P'``, the list's texts for
    ``category in [...]`` and ``mentions any [...]``."""
    if isinstance(e, A.Category):
        return [e.pattern.value]
    if isinstance(e, A.Mentions):
        return [e.phrase.value]
    return list_texts(e.items)


def category_test(patterns: Iterable[str]) -> Callable[[tuple[str, ...] | None], bool]:
    """``category 'P'`` / ``category in [...]`` as a predicate on the listing's category
    path (``text.category_segments``; None when the listing has none): some pattern's
    segments occur as a contiguous run of the path's. An empty pattern matches nothing."""
    segments = tuple(s for p in patterns if (s := pattern_segments(p)))
    if not segments:
        return never
    if len(segments) == 1:
        (one,) = segments
        return lambda path: path is not None and category_matches(path, one)
    return lambda path: path is not None and any(category_matches(path, s) for s in segments)


def category_holds(path: tuple[str, ...] | None, patterns: Iterable[str]) -> bool:
    """``category_test`` applied once."""
    return category_test(patterns)(path)


def category_keys(conjunct: A.Expr) -> frozenset[str] | None:
    """The segments a listing's category path must hold for the category conjunct
    ``conjunct`` to hold on it: the first segment of each pattern (empty: the conjunct
    never holds, its patterns being empty); None when ``conjunct`` is not a category
    conjunct. The rule by which the compiled evaluator and the analysis file rules."""
    if isinstance(conjunct, A.Category):
        patterns = [conjunct.pattern.value]
    elif isinstance(conjunct, A.CategoryIn) and isinstance(conjunct.items, A.ListLit):
        patterns = [i.value for i in conjunct.items.items if isinstance(i, A.Str)]
    else:
        return None
    return frozenset(segs[0] for p in patterns if (segs := pattern_segments(p)))


IndexKey = tuple[str, Any]
"""A value as ``==`` compares it with a literal: ("text", s), ("bool", b) or ("number", n)
(a bool is not a number; ``1`` and ``1.0`` are the same key)."""


def literal_key(lit: A.Str | A.Num | A.Bool) -> IndexKey:
    """The key of a text, number or boolean literal."""
    if isinstance(lit, A.Str):
        return ("text", lit.value)
    if isinstance(lit, A.Bool):
        return ("bool", lit.value)
    return ("number", lit.value)


def equality_keys(conjunct: A.Expr) -> tuple[tuple[str, ...], frozenset[IndexKey]] | None:
    """For ``PATH == literal`` or ``PATH in [...]`` (texts, numbers, booleans): the path and
    the keys (``literal_key``) one of which its value must have; None for any other
    conjunct."""
    if isinstance(conjunct, A.Compare) and conjunct.op == "==" and isinstance(conjunct.value, (A.Str, A.Num, A.Bool)):
        return conjunct.path.parts, frozenset({literal_key(conjunct.value)})
    if isinstance(conjunct, A.In) and not conjunct.negated and isinstance(conjunct.items, A.ListLit):
        items = conjunct.items.items
        if all(isinstance(i, (A.Str, A.Num, A.Bool)) for i in items):
            keys = frozenset(literal_key(i) for i in items if isinstance(i, (A.Str, A.Num, A.Bool)))
            return conjunct.path.parts, keys
    return None


def mention_phrases(texts: Iterable[str]) -> frozenset[str]:
    """The phrases of ``mentions`` as they are looked for (``text.normalize_phrase``); the
    empty phrase is left out: it is never mentioned."""
    return frozenset(p for t in texts if (p := normalize_phrase(t)))


def mentioned(pieces: Sequence[str], phrases: Iterable[str]) -> bool:
    """Whether the text mentions one of the (normalised) phrases, phrase by phrase; the
    evaluators ask a one-pass ``text.PhraseMatcher`` instead, which finds the same."""
    return any(mentions(pieces, p) for p in phrases)


def contains_test(needle: str) -> Callable[[Sequence[str]], bool]:
    """``PATH contains 'S'`` as a predicate on the field's text pieces."""
    norm = normalize_needle(needle)
    return lambda pieces: any(contains(p, norm) for p in pieces)


needle_piece = normalize_needle
"""One piece of text as ``contains`` reads it (``text.normalize_needle``)."""


def needle_pieces(pieces: Sequence[str]) -> tuple[str, ...]:
    """A source's text pieces read as ``contains`` reads them (``needle_piece``), so that
    a listing's text is normalised once for every ``contains`` atom on it."""
    return tuple(map(needle_piece, pieces))


def contains_normalized_test(needles: Iterable[str]) -> Callable[[Sequence[str]], bool]:
    """Whether pieces already read by ``needle_pieces`` contain one of ``needles``: the
    answer of ``contains_test`` for each needle, ``or``-ed (``text.contains`` is a
    substring test on the normalised text)."""
    norms = tuple(normalize_needle(n) for n in needles)

    def test(normalized: Sequence[str]) -> bool:
        for p in normalized:
            for norm in norms:
                if norm in p:
                    return True
        return False
    return test


def matches_test(pattern: str, ignore_case: bool) -> Callable[[Sequence[str]], bool]:
    """``PATH matches /R/`` as a predicate on the field's text pieces (RE2)."""
    regex = compile_regex(pattern, ignore_case)

    def test(pieces: Sequence[str]) -> bool:
        for p in pieces:  # (a loop, not any() of a generator: a third less per listing)
            if regex_search(regex, p):
                return True
        return False
    return test


def fields_read(ps: PolicySet) -> frozenset[str]:
    """The top-level fields of a listing that deciding it under ``ps`` may read: those of
    every path a rule's condition reads (its scope and ``unless`` included), ``category``
    for a category atom, the text sources (title, description, tags) for ``mentions``
    without a path, and, with a schema, those of the declared fields and the built-ins.
    A decision, its input warnings and its errors depend on the listing through these
    alone (``at`` and ``prior_violations`` come apart): ``policy scan`` reads no other
    column."""
    names = {path[0] for path in ps.schema}
    for rule in ps.rules:
        for node in A.walk(rule.condition):
            if isinstance(node, (A.Category, A.CategoryIn)):
                names.add("category")
            elif isinstance(node, (A.Mentions, A.MentionsAny)) and node.path is None:
                names.update(path[0] for path in V.TEXT_SOURCES)
            elif not isinstance(node, (A.And, A.Or, A.Not, A.Const)):
                # every other atom reads its path (mypy holds a new kind of atom to this)
                assert node.path is not None
                names.add(node.path.parts[0])
    return frozenset(names)


def source_pieces(listing: Mapping[str, Any], source: Source) -> tuple[str, ...]:
    """The text a source offers: the listing's title, description and tags for None,
    else the field's pieces (``values.text_pieces``)."""
    if source is None:
        return V.listing_pieces(listing)
    return V.text_pieces(V.read_path(listing, source))


def pieces_reader(source: Source) -> Callable[[Mapping[str, Any]], tuple[str, ...]]:
    """``source_pieces`` for one source, with the path bound."""
    if source is None:
        return V.listing_pieces
    get = V.path_reader(source)
    text_pieces = V.text_pieces
    return lambda listing: text_pieces(get(listing))


# --------------------------------------------------------------------------- windows

BEFORE, IN_FORCE, AFTER = -1, 0, 1


def window_side(start: dt.datetime | None, end: dt.datetime | None, instant: dt.datetime) -> int:
    """Where ``instant`` falls against the window ``start <= at < end`` (an open bound is
    None): BEFORE (-1), IN_FORCE (0) or AFTER (1)."""
    if start is not None and instant < start:
        return BEFORE
    if end is not None and instant >= end:
        return AFTER
    return IN_FORCE


def in_window(start: dt.datetime | None, end: dt.datetime | None, instant: dt.datetime) -> bool:
    """Whether a rule with this window is in force at ``instant``."""
    return window_side(start, end, instant) == IN_FORCE


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def instant_key(instant: dt.datetime) -> int:
    """An aware instant as whole microseconds since 1970 (UTC): exact, and ordered as the
    instants are, so that a window test on keys is ``window_side``'s test on instants."""
    return (instant - _EPOCH) // _MICROSECOND


def window_keys(start: dt.datetime | None, end: dt.datetime | None) -> tuple[float, float]:
    """The window ``start <= at < end`` as keys (``instant_key``): ``lo <= key < hi``
    exactly when ``window_side(start, end, at)`` is IN_FORCE; an open bound is infinite."""
    return (-math.inf if start is None else instant_key(start),
            math.inf if end is None else instant_key(end))


# --------------------------------------------------------------------------- penalties


def penalty_step(prior: int, steps: int) -> int:
    """The step (from 1) a ladder of ``steps`` steps proposes for a seller with ``prior``
    earlier violations: the next one, the last once the ladder is exhausted."""
    return min(prior + 1, steps)


def step_at(steps: Sequence[StepInfo], prior: int) -> StepInfo:
    """The step a ladder proposes after ``prior`` violations."""
    return steps[penalty_step(prior, len(steps)) - 1]


def more_severe(a: Proposal, b: Proposal) -> bool:
    """Whether proposal ``a`` wins over ``b``, which comes earlier by rule id: only a
    strictly more severe step does (equally severe proposals go to the smaller id)."""
    return a.severity > b.severity


# --------------------------------------------------------------------------- combining


@attrs.frozen
class Consequence:
    """What an applying rule brings to a decision: its effect, the rules it overrides (an
    allow's ``overrides``), its penalty ladder (``steps`` empty unless it is a block rule
    with a penalty), its message and citations (``because`` then the authorities)."""

    qid: str
    effect: Effect
    overrides: tuple[str, ...] = ()
    ladder: str | None = None
    steps: tuple[StepInfo, ...] = ()
    message: str | None = None
    citations: tuple[str, ...] = ()

    def proposal(self, prior: int) -> Proposal | None:
        """The penalty this rule proposes after ``prior`` violations (None: it proposes none)."""
        if not self.steps:
            return None
        number = penalty_step(prior, len(self.steps))
        step = self.steps[number - 1]
        return Proposal(self.qid, self.ladder, number, len(self.steps), step.actions, step.severity)


def consequence(rule: RuleInfo) -> Consequence:
    """A rule's ``Consequence``, read from the checked model."""
    penalized = rule.effect == "block" and rule.penalty is not None
    return Consequence(
        qid=rule.qid,
        effect=rule.effect,
        overrides=rule.overrides if rule.effect == "allow" else (),
        ladder=rule.penalty.name if penalized and rule.penalty is not None else None,
        steps=rule.penalty.steps if penalized and rule.penalty is not None else (),
        message=rule.message,
        citations=tuple(dict.fromkeys(((rule.because,) if rule.because else ()) + rule.authorities)),
    )


@attrs.frozen
class Outcome:
    """How the applying rules combine (spec section 5): the effect of the remaining rules
    (those no applying allow overrides), their ids sorted, the overridden ones with the
    allows that lift each, every penalty proposal and the one chosen, and the messages and
    citations of the remaining rules, each once, in rule order."""

    effect: Effect
    rules: tuple[str, ...]
    overridden_by: Mapping[str, tuple[str, ...]]
    proposals: tuple[Proposal, ...]
    penalty: PenaltyChoice | None
    messages: tuple[str, ...]
    citations: tuple[str, ...]

    @property
    def overridden(self) -> tuple[str, ...]:
        return tuple(sorted(self.overridden_by))

    def decision(self, warnings: tuple[str, ...], at: dt.datetime, policy_hash: str) -> Decision:
        return Decision(self.effect, self.rules, self.overridden, self.penalty, self.messages,
                        self.citations, warnings, at, policy_hash)


def overriders_of(applying: Iterable[Consequence]) -> dict[str, tuple[str, ...]]:
    """For each applying rule that an applying allow overrides, the allows that do (sorted)."""
    rules = list(applying)
    ids = {r.qid for r in rules}
    found: dict[str, list[str]] = {}
    for r in rules:
        if r.effect == "allow":
            for target in r.overrides:
                if target in ids:
                    found.setdefault(target, []).append(r.qid)
    return {target: tuple(sorted(by)) for target, by in found.items()}


def _qid(c: Consequence) -> str:
    return c.qid


def combine(applying: Iterable[Consequence], prior: int) -> Outcome:
    """The outcome of the rules that apply to a listing, for a seller with ``prior``
    earlier violations (spec section 5): an applying allow lifts the applying rules it
    overrides; the effect is the strongest of the rest (allow when none is left); each
    remaining block rule with a penalty proposes its step, and the most severe proposal
    wins, the smallest rule id among equally severe ones."""
    rules = sorted(applying, key=_qid)
    overridden_by = overriders_of(rules) if any(r.overrides for r in rules) else {}
    remaining = [r for r in rules if r.qid not in overridden_by] if overridden_by else rules
    rank = 0
    proposals: list[Proposal] = []
    best: Proposal | None = None
    for r in remaining:
        rank = max(rank, EFFECT_RANK[r.effect])
        if r.steps:
            p = r.proposal(prior)
            assert p is not None
            proposals.append(p)
            if best is None or more_severe(p, best):
                best = p
    return Outcome(
        effect=EFFECTS[rank],
        rules=tuple(r.qid for r in remaining),
        overridden_by=overridden_by,
        proposals=tuple(proposals),
        penalty=best.choice() if best is not None else None,
        messages=tuple(dict.fromkeys(r.message for r in remaining if r.message is not None)),
        citations=tuple(dict.fromkeys(c for r in remaining for c in r.citations)),
    )
