"""The compiled evaluator: a policy set planned once, then decided on many times.

Planning (``CompiledPolicySet(ps)``) turns every rule into pre-resolved data:

- each condition becomes a tree of Python closures, with literals already normalised
  (phrases, ``contains`` needles, category patterns), regular expressions compiled with
  RE2, date literals turned into instants in the rule's timezone and ``in`` lists split
  into hash sets by kind;
- rules are indexed: a rule one of whose top-level conjuncts (scope included) is
  ``category 'X'`` / ``category in [...]`` is filed under the first segment of each
  pattern, and is only considered for listings whose category path contains that
  segment; otherwise a conjunct ``PATH == literal`` / ``PATH in [...]`` files it under
  its values. Rules with no such conjunct form the residual list, considered always;
- all ``mentions`` phrases of one text source (the listing's text, or one field) go into
  one Aho-Corasick ``PhraseMatcher``, run at most once per decision;
- the candidate rules of a category path are memoised (bounded; short strings only),
  since a marketplace has a few thousand category paths repeated across its listings;
- window bounds are instant keys (whole microseconds, ``semantics.window_keys``) compared
  as numbers; ``at`` is resolved once per decision into a key for each distinct timezone
  of the rules (once per batch in ``decide_many``), with the decision shared by every
  listing to which nothing applies and that earns no warning; an ``at`` string's
  resolution is memoised (bounded), since a service passes the same few dates;
- a text source's ``contains`` atoms read its text normalised once per decision, and
  the ``contains`` atoms of one source joined by ``or`` are one test;
- a rule without a penalty that applies alone has its outcome combined once, at planning;
- a rule filed by category keeps, as its closure, only its other conjuncts: its category
  conjunct is tested once per category path, when the path's candidates are planned;
- the hot path (``decide``, and the loop of ``decide_many``) is Python source generated
  for the plan and compiled once (``dsl.evaluate.hotpath``): the residual rules'
  conditions are written out there, the other candidates decided through their closures.

Nothing is mutated after planning but the bounded memos (``at`` strings, category paths:
dicts read with one ``get`` and written whole entries at a time, cleared when full), and a
decision keeps its working state on the stack, so one ``CompiledPolicySet`` may serve any
number of threads. What an atom, a window
and the combination of applying rules mean is ``dsl.evaluate.semantics``'s: the plan binds each
literal once into the predicates ``semantics`` builds (``compare_test``,
``membership_test``, ``category_test``, …) and decides with ``semantics.combine``, so the
result agrees exactly with the reference evaluator (``dsl.evaluate.reference``); the tests check
that on the conformance corpus and on generated policy sets and listings.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ..fingerprint import hash_while
from ..model import PolicySet, RuleInfo, ValueKind, list_items
from ..syntax import ast as A
from ..text import PhraseMatcher, category_segments
from . import semantics as S
from . import values as V
from .hotpath import Decide, HotPath, InlineRule, Step, generate, group_contains
from .outcome import Decision, DecisionError, InputError

__all__ = ["CompiledPolicySet"]

Source = tuple[str, ...] | None
"""Where ``mentions`` reads text: a field path, or None for the listing's text."""

_is_number = V.is_number
_CATEGORY_PLAN_MAX_LEN = 256


class _Ctx:
    """The working state of one decision."""

    __slots__ = ("listing", "cat", "found", "matchers", "normalized")

    def __init__(self, listing: dict[str, Any], cat: tuple[str, ...] | None,
                 matchers: Mapping[Source, tuple[PhraseMatcher, Callable[[dict[str, Any]], tuple[str, ...]]]]):
        self.listing = listing
        self.cat = cat
        self.found: dict[Source, set[str]] = {}
        self.matchers = matchers
        self.normalized: dict[Source, tuple[str, ...]] = {}
        """Each source's pieces as ``contains`` reads them, normalised once per decision."""

    def needle_text(self, source: Source, pieces: Callable[[dict[str, Any]], tuple[str, ...]]) -> tuple[str, ...]:
        normalized = self.normalized.get(source)
        if normalized is None:
            normalized = self.normalized[source] = S.needle_pieces(pieces(self.listing))
        return normalized

    def phrases(self, source: Source) -> set[str]:
        found = self.found.get(source)
        if found is None:
            matcher, pieces = self.matchers[source]
            found = self.found[source] = matcher.find_in_pieces(pieces(self.listing))
        return found


Cond = Callable[[_Ctx], bool]


_reader = V.path_reader
_pieces_reader = S.pieces_reader


# --------------------------------------------------------------------------- conditions


class _Planner:
    """Compiles conditions to closures, collecting the phrases of each text source."""

    def __init__(self) -> None:
        self.phrases: dict[Source, set[str]] = {}
        self.windows: dict[tuple[dt.datetime | None, dt.datetime | None], tuple[float, float]] = {}
        """Each window's instant keys (``semantics.window_keys``), by its bounds: rules
        share a few hundred, and so share their keys."""
        self.values: dict[tuple[A.Expr, ZoneInfo], Cond] = {}
        """The conditions of value atoms already compiled, by atom (spans aside) and zone:
        rules repeat atoms such as ``platform in ['taobao', 'tmall']``, and share one
        closure each (pure functions of the atom and the zone)."""

    def compile(self, e: A.Expr, tz: ZoneInfo) -> Cond:
        if isinstance(e, A.Const):
            value = e.value
            return lambda c: value
        if isinstance(e, A.And):
            return _all(tuple(self.compile(i, tz) for i in e.items))
        if isinstance(e, A.Or):
            fused, rest = _fuse_contains(e.items)
            return _any(fused + tuple(self.compile(i, tz) for i in rest))
        if isinstance(e, A.Not):
            inner = self.compile(e.operand, tz)
            return lambda c: not inner(c)
        if isinstance(e, (A.Category, A.CategoryIn)):
            in_category = _category_test(e)
            return lambda c: in_category(c.cat)
        if isinstance(e, (A.Mentions, A.MentionsAny)):
            return self._mentions(e)
        if isinstance(e, A.Contains):
            return _contains(e)
        if isinstance(e, A.Matches):
            text_test = S.matches_test(e.regex.pattern, e.regex.ignore_case)
            pieces = _pieces_reader(e.path.parts)
            return lambda c: text_test(pieces(c.listing))
        return self._value(e, tz)

    def _value(self, e: A.Expr, tz: ZoneInfo) -> Cond:
        """A value atom's condition, shared with the rules that have the same atom."""
        if not _without_numbers(e):  # 1 and 1.0 are equal atoms: not worth telling apart here
            return _value_cond(e, tz)
        key = (e, tz)
        found = self.values.get(key)
        if found is None:
            found = self.values[key] = _value_cond(e, tz)
        return found

    def _mentions(self, e: A.Mentions | A.MentionsAny) -> Cond:
        """``mentions``: the phrases join their source's one-pass matcher, and the atom
        asks what the matcher found."""
        source: Source = e.path.parts if e.path is not None else None
        wanted = S.mention_phrases(S.atom_texts(e))
        if not wanted:
            return lambda c: False
        self.phrases.setdefault(source, set()).update(wanted)
        return lambda c: not c.phrases(source).isdisjoint(wanted)


def _category_test(e: A.Category | A.CategoryIn) -> Callable[[tuple[str, ...] | None], bool]:
    return S.category_test(S.atom_texts(e))


def _contains(e: A.Contains) -> Cond:
    """``contains``: the source's text normalised once per decision (``_Ctx.needle_text``),
    then a substring test per atom."""
    return _contains_any(e.path.parts, [e.needle.value])


def _contains_any(source: tuple[str, ...], needles: Sequence[str]) -> Cond:
    """Whether the source's text contains one of ``needles`` (``contains`` atoms joined
    by ``or``), its text read once."""
    test = S.contains_normalized_test(needles)
    pieces = _pieces_reader(source)
    return lambda c: test(c.needle_text(source, pieces))


def _fuse_contains(items: Sequence[A.Expr]) -> tuple[tuple[Cond, ...], list[A.Expr]]:
    """The ``contains`` atoms of an ``or`` grouped by source, one condition per source
    with several (``hotpath.group_contains``), and the other items."""
    fused, rest = group_contains(items)
    return tuple(_contains_any(src, needles) for src, needles in fused.items()), rest


def _without_numbers(e: A.Expr) -> bool:
    if isinstance(e, A.Compare):
        return not isinstance(e.value, A.Num)
    if isinstance(e, A.In):
        return isinstance(e.items, A.ListLit) and not any(isinstance(i, A.Num) for i in e.items.items)
    return isinstance(e, A.Exists)


def _value_cond(e: A.Expr, tz: ZoneInfo) -> Cond:
    """The atoms on a field's value: comparisons, ``in`` and ``exists``."""
    if isinstance(e, (A.Compare, A.In)):
        test = (S.compare_test(S.as_op(e.op), e.value, tz) if isinstance(e, A.Compare)
                else S.membership_test(list_items(e.items), e.negated, tz))
        get = _reader(e.path.parts)
        return lambda c: test(get(c.listing))
    if isinstance(e, A.Exists):
        get = _reader(e.path.parts)
        return lambda c: get(c.listing) is not None
    raise TypeError(f"not a condition: {type(e).__name__}")




def _all(fs: tuple[Cond, ...]) -> Cond:
    if len(fs) == 1:
        return fs[0]
    if len(fs) == 2:
        f, g = fs
        return lambda c: f(c) and g(c)
    if len(fs) == 3:
        f, g, h = fs
        return lambda c: f(c) and g(c) and h(c)

    def every(c: _Ctx) -> bool:
        for f in fs:
            if not f(c):
                return False
        return True
    return every


def _any(fs: tuple[Cond, ...]) -> Cond:
    if len(fs) == 1:
        return fs[0]
    if len(fs) == 2:
        f, g = fs
        return lambda c: f(c) or g(c)

    def some(c: _Ctx) -> bool:
        for f in fs:
            if f(c):
                return True
        return False
    return some


# --------------------------------------------------------------------------- rules and indexes


@attrs.frozen(weakref_slot=False)
class _Rule:
    """A rule ready to decide with: everything the hot path touches, precomputed."""

    index: int
    qid: str
    lo: float
    hi: float
    """The window as instant keys (``semantics.window_keys``): in force when
    ``lo <= key < hi``; infinite where open."""
    zone: int
    cond: Cond | None
    """What is left to test once the index has chosen the rule: for a rule filed by
    category, its conjuncts besides the category one (None when there is none, or when
    the category conjunct never holds); else its whole condition."""
    category: A.Category | A.CategoryIn | None
    """The category conjunct the rule is filed under, tested when the candidates of a
    category path are planned (``_category_planner``, which makes its predicate on first
    use); None for a rule filed otherwise."""

    @property
    def step(self) -> Step:
        return (self.lo, self.hi, self.zone, self.cond, self.index)


IndexKey = S.IndexKey


def _category_conjunct(conjuncts: Sequence[A.Expr]) -> tuple[int, frozenset[str]] | None:
    """The place of the first category conjunct (the one the rule is filed under) and the
    segments it is filed under (``semantics.category_keys``), or None."""
    for n, c in enumerate(conjuncts):
        segments = S.category_keys(c)
        if segments is not None:
            return n, segments
    return None


@attrs.frozen
class _FieldIndex:
    """The rules filed under the values of one path, by kind, each as the loop reads it."""

    get: Callable[[dict[str, Any]], Any]
    texts: Mapping[str, tuple[Step, ...]]
    numbers: Mapping[Any, tuple[Step, ...]]
    bools: Mapping[bool, tuple[Step, ...]]

    def lookup(self, listing: dict[str, Any]) -> tuple[Step, ...]:
        v = self.get(listing)
        if v is None:
            return ()
        if isinstance(v, str):
            return self.texts.get(v, ())
        if isinstance(v, bool):
            return self.bools.get(v, ())
        if _is_number(v):
            return self.numbers.get(v, ())
        return ()


def _fits_fn(kinds: frozenset[ValueKind]) -> Callable[[Any], bool]:
    """A fast test that a present value fits one of ``kinds``: the same answer as
    ``any(values.fits(v, k) for k in kinds)``, with the common cases (a plain string, a
    list of plain strings, a number) decided without calls."""
    ordered = tuple(sorted(kinds))
    str_ok = bool(kinds & {"text", "textlike", "category"})
    list_ok = bool(kinds & {"textlike", "category"})  # both accept a list of strings
    number_ok = "number" in kinds

    def ok(v: Any) -> bool:
        t = type(v)
        if t is str and str_ok:
            return True
        if t is list and list_ok:
            for x in v:  # a loop: cheaper than all() over a generator for a few items
                if type(x) is not str:
                    break
            else:
                return True
        if (t is int or t is float) and number_ok:
            return t is int or math.isfinite(v)
        return any(V.fits(v, k) for k in ordered)
    return ok


_AT_MEMO_SIZE = 1024
_AT_MEMO_MAX_LEN = 64
"""The longest ``at`` string memoised (an ISO date-time with microseconds and an offset
is 32 characters): a longer one, padded with white space, is read each time, so that
untrusted ``at`` strings cannot make the memos hold much memory."""
Times = tuple[tuple[int, ...], dt.datetime, Decision]
"""``at`` in each timezone of the rules (in the plan's zone order) as an instant key
(``semantics.instant_key``), the ``at`` reported, and the decision when nothing applies
and there is no warning (plain immutable data, so shared by every such decision)."""


def _check_length(name: str, values: Sequence[Any], batch: Sequence[Any]) -> None:
    if len(values) != len(batch):
        raise InputError(f"{name}: {_count(len(values), 'value')} for a batch of {_count(len(batch), 'listing')} "
                         "(give one value, or a list or tuple with one per listing)", field=name)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _batch_of(listings: Any) -> Iterable[Any]:
    """The listings of a batch to enumerate, checked once per call: a list or tuple as it
    is, another iterable (a generator, a set's values …) through its iterator. What is no
    batch raises InputError (field ``listings``) before anything is decided: None or
    another value that is not iterable; text or bytes, whose characters are no listings;
    a mapping, which is one listing, not a batch (its keys are no listings)."""
    if isinstance(listings, list | tuple):
        return listings
    expected = "listings: expected a list or another iterable of listings"
    if isinstance(listings, Mapping):
        raise InputError(f"{expected}, got {V.describe(listings)} "
                         "(one listing, not a batch: call decide for it, or pass [listing])", field="listings")
    if not isinstance(listings, str | bytes | bytearray | memoryview):
        try:
            found: Iterable[Any] = iter(listings)
        except TypeError:
            pass
        else:
            return found
    raise InputError(f"{expected}, got {V.describe(listings)}", field="listings")


@functools.lru_cache(maxsize=256)
def _parse_at_text(at: str) -> V.ParsedAt:
    """``at`` strings repeat (a service passes today's date, a batch one instant); the
    parsed value is immutable, so it is cached (an unreadable one raises, uncached)."""
    return V.parse_at(at)


class CompiledPolicySet:
    """A checked policy set planned for fast decisions. Immutable and thread-safe."""

    decide: Decide
    """``decide(listing, at=None, prior_violations=0)``: decide one listing (spec section
    5); raises InputError for bad input. The function generated for this plan
    (``hotpath.generate``), bound as an attribute: no call in between."""
    source: str
    """The Python source of the generated hot path (``decide`` and the loop of
    ``decide_many``): what it runs, to read."""

    def __init__(self, ps: PolicySet):
        self.policy_set = ps
        self._hash, _ = hash_while(ps, lambda: self._plan(ps))  # (a large set's hashed meanwhile)
        self.decide, self._batch, self.source = generate(self._hot_path())  # (it holds the hash)

    def _plan(self, ps: PolicySet) -> None:
        zones: dict[str, int] = {}
        self._zones: tuple[ZoneInfo, ...]
        zone_list: list[ZoneInfo] = []
        planner = _Planner()
        rules: list[_Rule] = []
        filed: list[frozenset[str] | None] = []
        for index, info in enumerate(ps.rules):
            if info.timezone not in zones:
                zones[info.timezone] = len(zone_list)
                zone_list.append(info.tz)
            rule, segments = self._plan_rule(index, info, zones[info.timezone], planner)
            rules.append(rule)
            filed.append(segments)
        self._zones = tuple(zone_list)
        self._rules = tuple(rules)
        self._uses_category = ("category",) in ps.compared_types
        self._matchers = {source: (PhraseMatcher(frozenset(phrases)),
                                   _pieces_reader(source))
                          for source, phrases in planner.phrases.items()}
        self._warned_fields = V.warned_fields(ps)
        # (key for a one-part path or None, path, a plain string fits, the full test)
        self._warned = tuple((path[0] if len(path) == 1 else None, path,
                              bool(kinds & {"text", "textlike", "category"}), _fits_fn(kinds))
                             for path, kinds in self._warned_fields)
        self._schema = tuple(ps.schema[p] for p in sorted(ps.schema, key=V.dotted))
        self._schema_readers = tuple(_reader(f.path) for f in self._schema)
        self._build_indexes(ps, filed)
        # An ``at`` string's times in every zone and its reported ``at``: pure (the zones
        # are fixed), immutable, so memoised (``_text_times``; the generated code reads the
        # dict first).
        self._at_memo: dict[str, Times] = {}
        self._parsed_times = functools.lru_cache(maxsize=64)(self._times)

    @staticmethod
    def _plan_rule(index: int, info: RuleInfo, zone: int, planner: _Planner) -> tuple[_Rule, frozenset[str] | None]:
        """The rule planned, and the first segments it is filed under
        (``semantics.category_keys`` of its category conjunct; empty when that conjunct
        never holds: filed nowhere; None for a rule filed otherwise)."""
        window = (info.start, info.end)
        keys = planner.windows.get(window)
        if keys is None:
            keys = planner.windows[window] = S.window_keys(info.start, info.end)  # rules share a few hundred windows
        lo, hi = keys
        condition = info.condition
        conjuncts = A.conjuncts(condition) if type(condition) is A.And else (condition,)  # most are one atom
        filed = _category_conjunct(conjuncts)
        if filed is None:
            return _Rule(index, info.qid, lo, hi, zone, planner.compile(condition, info.tz), None), None
        at, segments = filed
        conjunct = conjuncts[at]
        assert isinstance(conjunct, A.Category | A.CategoryIn)
        if len(conjuncts) == 1:  # the category alone (most rules)
            return _Rule(index, info.qid, lo, hi, zone, None, conjunct), segments
        rest = tuple(planner.compile(c, info.tz) for n, c in enumerate(conjuncts) if n != at)
        return _Rule(index, info.qid, lo, hi, zone, _all(rest), conjunct), segments

    def _build_indexes(self, ps: PolicySet, filed: Sequence[frozenset[str] | None]) -> None:
        by_segment: dict[str, list[int]] = {}
        by_field: dict[tuple[str, ...], dict[IndexKey, list[int]]] = {}
        residual: list[int] = []
        for i, (segments, info) in enumerate(zip(filed, ps.rules, strict=True)):
            if segments is not None:  # filed by category when planned (none: it never holds)
                for s in sorted(segments):
                    by_segment.setdefault(s, []).append(i)
                continue
            equalities = [eq for c in A.conjuncts(info.condition) if (eq := S.equality_keys(c)) is not None]
            if equalities:
                path, keys = min(equalities, key=lambda pk: (len(pk[1]), V.dotted(pk[0])))
                table = by_field.setdefault(path, {})
                for key in keys:
                    table.setdefault(key, []).append(i)
                continue
            residual.append(i)
        self._by_segment = {s: tuple(ix) for s, ix in by_segment.items()}
        made: dict[int, Step] = {}  # a rule's step, one tuple for every table that files it

        def steps(ix: list[int]) -> tuple[Step, ...]:
            return tuple(made[i] if i in made else made.setdefault(i, self._rules[i].step) for i in ix)

        self._by_field = tuple(
            _FieldIndex(_reader(path),
                        {k[1]: steps(ix) for k, ix in table.items() if k[0] == "text"},
                        {k[1]: steps(ix) for k, ix in table.items() if k[0] == "number"},
                        {k[1]: steps(ix) for k, ix in table.items() if k[0] == "bool"})
            for path, table in sorted(by_field.items()))
        self._residual = tuple(residual)

    # ------------------------------------------------------------------ statistics

    def plan_summary(self) -> dict[str, int]:
        """How the rules were planned: indexed by category segment, by field value, or
        residual (considered for every listing)."""
        by_segment = {i for ix in self._by_segment.values() for i in ix}
        by_field = {step[4] for f in self._by_field
                    for table in (f.texts, f.numbers, f.bools) for steps in table.values() for step in steps}
        return {"rules": len(self._rules), "category_index": len(by_segment),
                "field_index": len(by_field), "residual": len(self._residual),
                "segments": len(self._by_segment), "phrase_matchers": len(self._matchers)}

    # ------------------------------------------------------------------ deciding

    def _times(self, when: V.ParsedAt) -> Times:
        """``at`` for each timezone of the rules, and the ``at`` reported (spec section 5:
        a local ``at`` as given, so that it replays)."""
        if when.instant is not None:
            keys, reported = (S.instant_key(when.instant),) * len(self._zones), when.instant
        else:
            keys, reported = tuple(S.instant_key(when.in_tz(z)) for z in self._zones), when.reported
        return keys, reported, Decision("allow", (), (), None, (), (), (), reported, self._hash)

    def _text_times(self, at: str) -> Times:
        """The times of an ``at`` string, memoised: bounded (cleared when full; strings up to
        ``_AT_MEMO_MAX_LEN`` characters), safe under threads (a dict written whole entries at
        a time); an unreadable one raises, and is not kept."""
        times = self._at_memo.get(at)
        if times is None:
            if len(at) > _AT_MEMO_MAX_LEN:
                return self._times(V.parse_at(at))
            times = self._times(_parse_at_text(at))
            if len(self._at_memo) >= _AT_MEMO_SIZE:
                self._at_memo.clear()
            self._at_memo[at] = times
        return times

    def _times_of(self, at: Any) -> Times:
        """The times of one ``at`` that is not None (a string, or an ``at`` already read,
        through a memo: ``policy eval`` passes its command line's ``ParsedAt`` with every
        record)."""
        if type(at) is str:
            return self._text_times(at)
        if type(at) is V.ParsedAt:
            return self._parsed_times(at)
        return self._times(V.parse_at(at))

    def _now(self) -> Times:
        return self._times(V.ParsedAt(dt.datetime.now(dt.UTC)))

    def decide_many(self, listings: Iterable[Any], at: Any = None,
                    prior_violations: Any = 0) -> list[Decision | DecisionError]:
        """Decide a batch. ``at`` and ``prior_violations`` are each one value for the whole
        batch, or one per listing (a list or tuple as long as the batch; a string is one
        value). One ``at`` is read once for the batch, and None means now, read once for
        the batch (in a per-listing list too). A listing that cannot be decided yields a
        DecisionError in its place (records count from 1), as does a bad per-listing
        ``at`` or ``prior_violations``, with the message ``decide`` would raise; the
        others are decided. A bad single ``at`` or ``prior_violations``, or a list of the
        wrong length, concerns the whole batch and raises InputError, as does a
        ``listings`` that is no iterable of listings (None, a number, text or bytes, a
        mapping: one listing, for ``decide``)."""
        listings = _batch_of(listings)
        per_at = isinstance(at, list | tuple)
        per_prior = isinstance(prior_violations, list | tuple)
        if per_at or per_prior:
            listings = listings if isinstance(listings, list | tuple) else list(listings)
            if per_at:
                _check_length("at", at, listings)
            if per_prior:
                _check_length("prior_violations", prior_violations, listings)
        now: list[Times] = []  # "now", read once for the batch when some ``at`` is None

        def times_of(value: Any) -> Times:
            if value is not None:
                return self._times_of(value)
            if not now:
                now.append(self._now())
            return now[0]

        times = None if per_at else times_of(at)
        prior = 0 if per_prior else V.check_prior(prior_violations)
        return self._batch(listings, at if per_at else None, times, prior_violations if per_prior else None,
                           prior, times_of)

    def _hot_path(self) -> HotPath:
        """What the generated hot path reads (``hotpath.generate``), with the steps that
        depend on the plan's shape chosen once here: the schema's validation, the scan for
        input warnings, the candidates by category and by field value, the residual
        rules."""
        plain_keys, scan = _warning_scan(self._warned, self._warned_fields) if self._warned else (None, None)
        category_plan, memo = (_category_planner(self._rules, self._by_segment) if self._uses_category
                               else (None, {}))
        ps = self.policy_set
        return HotPath(
            matchers=self._matchers, ctx=_Ctx,
            validate=self._validate if self._schema else None, plain_keys=plain_keys, scan=scan,
            category_plan=category_plan, category_memo=memo,
            more=_field_candidates(self._by_field) if self._by_field else None,
            residual=tuple(InlineRule(r.index, r.lo, r.hi, r.zone, ps.rules[r.index].condition,
                                      ps.rules[r.index].tz, r.step)
                           for r in (self._rules[i] for i in self._residual)),
            conclude=_concluder(ps.rules, self._hash), nothing=_nothing,
            at_memo=self._at_memo, text_times=self._text_times, times_of=self._times_of, now=self._now,
        )

    def _validate(self, listing: dict[str, Any]) -> None:
        # one reader per schema field, built from the same sorted fields
        for info, get in zip(self._schema, self._schema_readers, strict=True):
            if V.schema_problem(info, get(listing)) is not None:
                V.validate_schema(listing, self.policy_set.schema)  # raises, with every problem
                return

    @property
    def phrase_matchers(self) -> Mapping[Source, PhraseMatcher]:
        """The one-pass matcher of each text source's ``mentions`` phrases (what
        explanations read ``mentions`` through, as the decision did)."""
        return {source: matcher for source, (matcher, _) in self._matchers.items()}


# --------------------------------------------------------------------------- the hot path
# The steps the generated code (``dsl.evaluate.hotpath``) calls, built once per plan.

Listing = dict[str, Any]
CategoryPlan = tuple[tuple[str, ...] | None, tuple[Step, ...]]
"""A listing's category path (None without one) and the candidate rules it selects."""


def _concluder(rules: Sequence[RuleInfo], policy_hash: str,
               ) -> Callable[[list[int], int, tuple[str, ...], Times], Decision]:
    """The decision from the indexes of the applying rules, at least one
    (``semantics.combine``; with none, ``decide`` returns ``_nothing`` itself). A rule's
    ``Consequence`` is made when it first applies, and so is the outcome of a rule without
    a penalty applying alone (it does not depend on ``prior``): planning a large set
    does not pay, in time and memory, for the many rules that seldom apply. Both are
    pure; the memos are lists with a slot per rule (read by index on the hot path, each
    slot written whole: safe under threads)."""
    combine = S.combine
    consequences: list[S.Consequence | None] = [None] * len(rules)
    unknown = S.Outcome("allow", (), {}, (), None, (), ())  # not yet known in ``alone``
    alone: list[S.Outcome | None] = [unknown] * len(rules)

    def consequence(i: int) -> S.Consequence:
        found = consequences[i]
        if found is None:
            found = consequences[i] = S.consequence(rules[i])
        return found

    def conclude(applying: list[int], prior: int, warnings: tuple[str, ...], times: Times) -> Decision:
        if len(applying) == 1:
            i = applying[0]
            outcome = alone[i]
            if outcome is unknown:
                c = consequence(i)
                outcome = alone[i] = None if c.steps else combine([c], 0)
            if outcome is not None:
                return outcome.decision(warnings, times[1], policy_hash)
        return combine([known if (known := consequences[i]) is not None else consequence(i) for i in applying],
                       prior).decision(warnings, times[1], policy_hash)
    return conclude


def _nothing(warnings: tuple[str, ...], times: Times) -> Decision:
    """The decision when no rule applies to a listing that earned warnings: the one
    ``times`` shares (``CompiledPolicySet._times``), with them."""
    return attrs.evolve(times[2], warnings=warnings)


def _warning_scan(warned: Sequence[tuple[str | None, tuple[str, ...], bool, Callable[[Any], bool]]],
                  warned_fields: tuple[tuple[tuple[str, ...], frozenset[ValueKind]], ...],
                  ) -> tuple[tuple[str, ...] | None, Callable[[Listing], tuple[str, ...]]]:
    """The input warnings of a listing: a quick pass over the fields that can earn one
    (a plain string where text fits is decided without a call); only when some value fits
    none of its kinds are the warnings written (``values.input_warnings``). With it, the
    keys of the fields when each is one key where a plain string fits (the generated code
    tests those itself, absent or a string earning no warning, and calls the scan only
    for another value), else None."""
    read_path = V.read_path

    def full(listing: Listing) -> tuple[str, ...]:
        get = listing.get
        for key, path, str_ok, ok in warned:
            v = get(key) if key is not None else read_path(listing, path)
            if v is None or (str_ok and type(v) is str):
                continue
            if not ok(v):
                return V.input_warnings(listing, warned_fields)
        return ()

    simple = tuple(key for key, _, str_ok, _ in warned if key is not None and str_ok)
    return (simple if len(simple) == len(warned) else None), full


def _category_planner(rules: Sequence[_Rule], by_segment: Mapping[str, tuple[int, ...]],
                      ) -> tuple[Callable[[Any], CategoryPlan], dict[str, CategoryPlan]]:
    """A category value's path and the candidates it selects: the rules filed under its
    segments whose category conjunct holds, each as the loop reads it (``Step``, with what
    is left of its condition), in rule order; and the memo the generated code reads first.

    A marketplace has a few thousand category paths, repeated across listings: the plan
    of a short category string is memoised (cleared when full: safe under threads, a dict
    written whole entries at a time); long, untrusted values and category lists bypass
    it. The bound grows with the segments the rules name (a set with 10,000 category
    rules speaks of a taxonomy of that size, whose paths would otherwise evict each
    other)."""
    memo: dict[str, CategoryPlan] = {}
    bound = max(8192, 2 * len(by_segment))
    tests: dict[int, Callable[[tuple[str, ...] | None], bool]] = {}
    """Each filed rule's category predicate, made when a path first selects the rule (a
    set of 100,000 category rules would hold one closure each, most never called)."""

    def holds(i: int, cat: tuple[str, ...] | None) -> bool:
        test = tests.get(i)
        if test is None:
            conjunct = rules[i].category
            if conjunct is None:
                return False
            test = tests[i] = _category_test(conjunct)
        return test(cat)

    def plan(raw: Any) -> CategoryPlan:
        cat = category_segments(raw)
        filed = sorted({i for segment in cat or () for i in by_segment.get(segment, ())})
        found = (cat, tuple(rules[i].step for i in filed if holds(i, cat)))
        if type(raw) is str and len(raw) <= _CATEGORY_PLAN_MAX_LEN:
            if len(memo) >= bound:
                memo.clear()
            memo[raw] = found
        return found
    return plan, memo


def _field_candidates(by_field: Sequence[_FieldIndex]) -> Callable[[Listing, Sequence[Step]], Sequence[Step]]:
    """The candidates by category, plus the rules filed under the listing's field values.
    None comes twice: a rule is filed in one place (under its category segments, or under
    the values of one path, a value finding one key), so the lists are only joined."""

    def more(listing: Listing, planned: Sequence[Step]) -> Sequence[Step]:
        found = list(planned)
        for index in by_field:
            found.extend(index.lookup(listing))
        return found
    return more
