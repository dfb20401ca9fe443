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
- a rule without a penalty that applies alone has its outcome combined once, at planning.

Nothing is mutated after planning, and a decision keeps its working state on the stack,
so one ``CompiledPolicySet`` may serve any number of threads. What an atom, a window
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

from ..fingerprint import policy_hash
from ..model import PolicySet, RuleInfo, ValueKind, list_items, list_texts
from ..syntax import ast as A
from ..text import PhraseMatcher, category_segments, pattern_segments
from . import semantics as S
from . import values as V
from .outcome import Decision, DecisionError, InputError

__all__ = ["CompiledPolicySet"]

Source = tuple[str, ...] | None
"""Where ``mentions`` reads text: a field path, or None for the listing's text."""

_is_number = V.is_number
_UNSET: Any = object()
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
            patterns = [e.pattern.value] if isinstance(e, A.Category) else list_texts(e.items)
            in_category = S.category_test(patterns)
            return lambda c: in_category(c.cat)
        if isinstance(e, (A.Mentions, A.MentionsAny)):
            return self._mentions(e)
        if isinstance(e, A.Contains):
            return _contains(e)
        if isinstance(e, A.Matches):
            text_test = S.matches_test(e.regex.pattern, e.regex.ignore_case)
            pieces = _pieces_reader(e.path.parts)
            return lambda c: text_test(pieces(c.listing))
        return _value_cond(e, tz)

    def _mentions(self, e: A.Mentions | A.MentionsAny) -> Cond:
        """``mentions``: the phrases join their source's one-pass matcher, and the atom
        asks what the matcher found."""
        source: Source = e.path.parts if e.path is not None else None
        wanted = S.mention_phrases([e.phrase.value] if isinstance(e, A.Mentions) else list_texts(e.items))
        if not wanted:
            return lambda c: False
        self.phrases.setdefault(source, set()).update(wanted)
        return lambda c: not c.phrases(source).isdisjoint(wanted)


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
    with several (the predicates are pure, so the order of an ``or`` does not matter),
    and the other items."""
    by_source: dict[tuple[str, ...], list[str]] = {}
    for i in items:
        if isinstance(i, A.Contains):
            by_source.setdefault(i.path.parts, []).append(i.needle.value)
    fused = {src for src, needles in by_source.items() if len(needles) > 1}
    rest = [i for i in items if not (isinstance(i, A.Contains) and i.path.parts in fused)]
    return tuple(_contains_any(src, by_source[src]) for src in sorted(fused)), rest


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


@attrs.frozen
class _Rule:
    """A rule ready to decide with: everything the hot path touches, precomputed."""

    index: int
    qid: str
    lo: float
    hi: float
    """The window as instant keys (``semantics.window_keys``): in force when
    ``lo <= key < hi``; infinite where open."""
    zone: int
    cond: Cond
    consequence: S.Consequence


IndexKey = tuple[str, Any]


def _category_keys(e: A.Expr) -> set[str] | None:
    """The first segments under which a category conjunct files its rule (empty: the
    conjunct never holds); None when ``e`` is not a category conjunct."""
    if isinstance(e, A.Category):
        patterns = [e.pattern.value]
    elif isinstance(e, A.CategoryIn) and isinstance(e.items, A.ListLit):
        patterns = [i.value for i in e.items.items if isinstance(i, A.Str)]
    else:
        return None
    return {segs[0] for p in patterns if (segs := pattern_segments(p))}


def _equality_keys(e: A.Expr) -> tuple[tuple[str, ...], set[IndexKey]] | None:
    """For ``PATH == literal`` or ``PATH in [...]`` (text, numbers, booleans): the path and
    the typed values under which the rule is filed; None for any other conjunct."""
    if isinstance(e, A.Compare) and e.op == "==" and isinstance(e.value, (A.Str, A.Num, A.Bool)):
        return e.path.parts, {_key(e.value)}
    if isinstance(e, A.In) and not e.negated and isinstance(e.items, A.ListLit) and all(
            isinstance(i, (A.Str, A.Num, A.Bool)) for i in e.items.items):
        return e.path.parts, {_key(i) for i in e.items.items}
    return None


def _key(lit: A.Scalar) -> IndexKey:
    if isinstance(lit, A.Str):
        return ("text", lit.value)
    if isinstance(lit, A.Bool):
        return ("bool", lit.value)
    return ("number", lit.value)


@attrs.frozen
class _FieldIndex:
    get: Callable[[dict[str, Any]], Any]
    texts: Mapping[str, tuple[int, ...]]
    numbers: Mapping[Any, tuple[int, ...]]
    bools: Mapping[bool, tuple[int, ...]]

    def lookup(self, listing: dict[str, Any]) -> tuple[int, ...]:
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
Times = tuple[tuple[int, ...], dt.datetime, Decision]
"""``at`` in each timezone of the rules (in the plan's zone order) as an instant key
(``semantics.instant_key``), the ``at`` reported, and the decision when nothing applies
and there is no warning (plain immutable data, so shared by every such decision)."""


def _check_length(name: str, values: Sequence[Any], batch: Sequence[Any]) -> None:
    if len(values) != len(batch):
        raise InputError(f"{name}: {len(values)} values for a batch of {len(batch)} listings "
                         "(give one value, or a list or tuple with one per listing)", field=name)


@functools.lru_cache(maxsize=256)
def _parse_at_text(at: str) -> V.ParsedAt:
    """``at`` strings repeat (a service passes today's date, a batch one instant); the
    parsed value is immutable, so it is cached (an unreadable one raises, uncached)."""
    return V.parse_at(at)


class CompiledPolicySet:
    """A checked policy set planned for fast decisions. Immutable and thread-safe."""

    def __init__(self, ps: PolicySet):
        self.policy_set = ps
        self._hash = policy_hash(ps)
        zones: dict[str, int] = {}
        self._zones: tuple[ZoneInfo, ...]
        zone_list: list[ZoneInfo] = []
        planner = _Planner()
        rules: list[_Rule] = []
        for index, info in enumerate(ps.rules):
            if info.timezone not in zones:
                zones[info.timezone] = len(zone_list)
                zone_list.append(info.tz)
            rules.append(self._plan_rule(index, info, zones[info.timezone], planner))
        self._zones = tuple(zone_list)
        self._rules = tuple(rules)
        self._by_qid = {r.qid: r for r in rules}
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
        self._build_indexes(ps)
        self._decide = self._make_decide()
        # An ``at`` string's times in every zone and its reported ``at``: pure (the zones
        # are fixed), immutable, so memoised; bounded and thread-safe (an unreadable one
        # raises, uncached).
        self._text_times = functools.lru_cache(maxsize=_AT_MEMO_SIZE)(self._times_of_text)

    @staticmethod
    def _plan_rule(index: int, info: RuleInfo, zone: int, planner: _Planner) -> _Rule:
        lo, hi = S.window_keys(info.start, info.end)
        return _Rule(index, info.qid, lo, hi, zone,
                     planner.compile(info.condition, info.tz), S.consequence(info))

    def _build_indexes(self, ps: PolicySet) -> None:
        by_segment: dict[str, list[int]] = {}
        by_field: dict[tuple[str, ...], dict[IndexKey, list[int]]] = {}
        residual: list[int] = []
        self.never: tuple[str, ...]
        never: list[str] = []
        for i, info in enumerate(ps.rules):
            conjuncts = A.conjuncts(info.condition)
            segments = next((k for c in conjuncts if (k := _category_keys(c)) is not None), None)
            if segments is not None:
                if not segments:
                    never.append(info.qid)  # a category conjunct that nothing matches
                for s in sorted(segments):
                    by_segment.setdefault(s, []).append(i)
                continue
            equalities = [eq for c in conjuncts if (eq := _equality_keys(c)) is not None]
            if equalities:
                path, keys = min(equalities, key=lambda pk: (len(pk[1]), V.dotted(pk[0])))
                table = by_field.setdefault(path, {})
                for key in keys:
                    table.setdefault(key, []).append(i)
                if not keys:
                    never.append(info.qid)
                continue
            residual.append(i)
        self.never = tuple(never)
        self._by_segment = {s: tuple(ix) for s, ix in by_segment.items()}
        self._by_field = tuple(
            _FieldIndex(_reader(path),
                        {k[1]: tuple(ix) for k, ix in table.items() if k[0] == "text"},
                        {k[1]: tuple(ix) for k, ix in table.items() if k[0] == "number"},
                        {k[1]: tuple(ix) for k, ix in table.items() if k[0] == "bool"})
            for path, table in sorted(by_field.items()))
        self._residual = tuple(residual)

    # ------------------------------------------------------------------ statistics

    def plan_summary(self) -> dict[str, int]:
        """How the rules were planned: indexed by category segment, by field value, or
        residual (considered for every listing)."""
        by_segment = {i for ix in self._by_segment.values() for i in ix}
        by_field = {i for f in self._by_field
                    for table in (f.texts, f.numbers, f.bools) for ix in table.values() for i in ix}
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

    def _times_of_text(self, at: str) -> Times:
        return self._times(_parse_at_text(at))

    def _times_of(self, at: Any) -> Times:
        """The times of one ``at`` that is not None (a string through the memo)."""
        if type(at) is str:
            return self._text_times(at)
        return self._times(V.parse_at(at))

    def _now(self) -> Times:
        return self._times(V.ParsedAt(dt.datetime.now(dt.UTC)))

    def decide(self, listing: Any, at: Any = None, prior_violations: Any = 0) -> Decision:
        """Decide one listing (spec section 5); raises InputError for bad input."""
        times = (self._text_times(at) if type(at) is str
                 else self._now() if at is None else self._times_of(at))
        prior = (prior_violations if type(prior_violations) is int and prior_violations >= 0
                 else V.check_prior(prior_violations))
        return self._decide(listing, times, prior)

    def decide_many(self, listings: Iterable[Any], at: Any = None,
                    prior_violations: Any = 0) -> list[Decision | DecisionError]:
        """Decide a batch. ``at`` and ``prior_violations`` are each one value for the whole
        batch, or one per listing (a list or tuple as long as the batch; a string is one
        value). One ``at`` is read once for the batch, and None means now, read once for
        the batch (in a per-listing list too). A listing that cannot be decided yields a
        DecisionError in its place (records count from 1), as does a bad per-listing
        ``at`` or ``prior_violations``, with the message ``decide`` would raise; the
        others are decided. A bad single ``at`` or ``prior_violations``, or a list of the
        wrong length, concerns the whole batch and raises InputError."""
        per_at = isinstance(at, list | tuple)
        per_prior = isinstance(prior_violations, list | tuple)
        if per_at or per_prior:
            return self._decide_each(listings, at, prior_violations, per_at, per_prior)
        times = self._now() if at is None else self._times_of(at)
        prior = V.check_prior(prior_violations)
        decide = self._decide
        out: list[Decision | DecisionError] = []
        append = out.append
        for n, listing in enumerate(listings, 1):
            try:
                append(decide(listing, times, prior))
            except InputError as e:
                append(DecisionError(n, e.message, e.field))
        return out

    def _decide_each(self, listings: Iterable[Any], at: Any, prior_violations: Any,
                     per_at: bool, per_prior: bool) -> list[Decision | DecisionError]:
        """``decide_many`` with ``at`` or ``prior_violations`` given per listing."""
        batch = listings if isinstance(listings, list | tuple) else list(listings)
        if per_at:
            _check_length("at", at, batch)
        if per_prior:
            _check_length("prior_violations", prior_violations, batch)
        now: list[Times] = []  # "now", read once for the batch when some ``at`` is None

        def times_of(value: Any) -> Times:
            if value is not None:
                return self._times_of(value)
            if not now:
                now.append(self._now())
            return now[0]

        shared_times = None if per_at else times_of(at)
        shared_prior = None if per_prior else V.check_prior(prior_violations)
        decide, check_prior, text_times = self._decide, V.check_prior, self._text_times
        out: list[Decision | DecisionError] = []
        append = out.append
        for i, listing in enumerate(batch):
            try:
                times = (shared_times if shared_times is not None
                         else text_times(a) if type(a := at[i]) is str else times_of(a))
                if shared_prior is not None:
                    prior = shared_prior
                else:
                    p = prior_violations[i]
                    prior = p if type(p) is int and p >= 0 else check_prior(p)
                append(decide(listing, times, prior))
            except InputError as e:
                append(DecisionError(i + 1, e.message, e.field))
        return out

    def _make_decide(self) -> Callable[[Any, Times, int], Decision]:
        """The hot path, as a closure over the plan (``_decider``), with the steps that
        depend on the plan's shape chosen once here: the schema's validation, the scan for
        input warnings, the candidates by category and by field value."""
        fixed = () if self._by_field else self._residual  # candidates that do not depend on the category
        return _decider(
            self._rules, self._matchers, self._hash,
            validate=self._validate if self._schema else None,
            scan=_warning_scan(self._warned, self._warned_fields) if self._warned else None,
            plan=_category_planner(self._by_segment, fixed, self._uses_category),
            more=_field_candidates(self._by_field, self._residual) if self._by_field else None,
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
# Each step is a closure over what it touches (closure cells are cheaper than attribute
# loads), built once per plan.

Listing = dict[str, Any]
Candidates = Sequence[int]
CategoryPlan = tuple[tuple[str, ...] | None, Candidates]
"""A listing's category path (None without one) and the candidate rules it selects."""

Matchers = Mapping[Source, tuple[PhraseMatcher, Callable[[Listing], tuple[str, ...]]]]


def _decider(rules: Sequence[_Rule], matchers: Matchers, policy_hash: str, *,
             validate: Callable[[Listing], None] | None,
             scan: Callable[[Listing], tuple[str, ...]] | None,
             plan: Callable[[Listing], CategoryPlan],
             more: Callable[[Listing, Candidates], Candidates] | None,
             ) -> Callable[[Any, Times, int], Decision]:
    """``decide(listing, times, prior)``: validate, scan for input warnings, pick the
    candidate rules, and return as early as it can in the common outcome (no rule
    applies: the shared decision of ``times`` when there is no warning); else the
    candidates in force (their window on instant keys) whose condition holds are
    combined (``_concluder``)."""
    pick = plan if more is None else _with_more(plan, more)
    conclude = _concluder(rules, policy_hash)
    # what the loop reads of a rule, unpacked at once
    steps = tuple((r.lo, r.hi, r.zone, r.cond) for r in rules)

    def decide(listing: Any, times: Times, prior: int) -> Decision:
        if not isinstance(listing, dict):
            V.check_listing(listing)
        if validate is not None:
            validate(listing)
        warnings = scan(listing) if scan is not None else ()
        cat, candidates = pick(listing)
        ctx = None
        keys = times[0]
        applying: list[int] = []
        for i in candidates:
            lo, hi, zone, cond = steps[i]
            if lo <= keys[zone] < hi:
                if ctx is None:
                    ctx = _Ctx(listing, cat, matchers)
                if cond(ctx):
                    applying.append(i)
        if not applying:  # the common outcome, without a call
            return times[2] if not warnings else _nothing(warnings, times, policy_hash)
        return conclude(applying, prior, warnings, times)

    return decide


def _concluder(rules: Sequence[_Rule], policy_hash: str,
               ) -> Callable[[list[int], int, tuple[str, ...], Times], Decision]:
    """The decision from the indexes of the applying rules, at least one
    (``semantics.combine``; with none, ``decide`` returns ``_nothing`` itself); with one
    rule without a penalty, whose outcome does not depend on ``prior``, its outcome
    combined once at planning."""
    combine = S.combine
    consequences = tuple(r.consequence for r in rules)
    alone = tuple(None if c.steps else combine([c], 0) for c in consequences)

    def conclude(applying: list[int], prior: int, warnings: tuple[str, ...], times: Times) -> Decision:
        if len(applying) == 1:
            outcome = alone[applying[0]]
            if outcome is not None:
                return outcome.decision(warnings, times[1], policy_hash)
        return combine([consequences[i] for i in applying], prior).decision(warnings, times[1], policy_hash)
    return conclude


def _with_more(plan: Callable[[Listing], CategoryPlan],
               more: Callable[[Listing, Candidates], Candidates]) -> Callable[[Listing], CategoryPlan]:
    """The category plan with the candidates by field value added (``_field_candidates``)."""
    def pick(listing: Listing) -> CategoryPlan:
        cat, candidates = plan(listing)
        return cat, more(listing, candidates)
    return pick


def _nothing(warnings: tuple[str, ...], times: Times, policy_hash: str) -> Decision:
    """The decision when no rule applies: the one ``times`` shares when there is no
    warning."""
    if not warnings:
        return times[2]
    return Decision("allow", (), (), None, (), (), warnings, times[1], policy_hash)


def _warning_scan(warned: Sequence[tuple[str | None, tuple[str, ...], bool, Callable[[Any], bool]]],
                  warned_fields: tuple[tuple[tuple[str, ...], frozenset[ValueKind]], ...],
                  ) -> Callable[[Listing], tuple[str, ...]]:
    """The input warnings of a listing: a quick pass over the fields that can earn one
    (a plain string where text fits is decided without a call); only when some value fits
    none of its kinds are the warnings written (``values.input_warnings``)."""
    read_path = V.read_path
    # The fields of one key where a plain string fits: absent or a string, no warning;
    # checked first with a key each (most listings end here).
    simple = tuple(key for key, _, str_ok, _ in warned if key is not None and str_ok)
    if len(simple) < len(warned):
        simple = ()

    def full(listing: Listing) -> tuple[str, ...]:
        get = listing.get
        for key, path, str_ok, ok in warned:
            v = get(key) if key is not None else read_path(listing, path)
            if v is None or (str_ok and type(v) is str):
                continue
            if not ok(v):
                return V.input_warnings(listing, warned_fields)
        return ()

    if not simple:
        return full

    def scan(listing: Listing) -> tuple[str, ...]:
        get = listing.get
        for key in simple:
            v = get(key)
            if type(v) is not str and v is not None:
                return full(listing)
        return ()
    return scan


def _category_planner(by_segment: Mapping[str, tuple[int, ...]], fixed: tuple[int, ...],
                      uses_category: bool) -> Callable[[Listing], CategoryPlan]:
    """A listing's category path and the rules filed under its segments, plus ``fixed``
    (the residual rules when there is no field index: then the candidates depend on the
    category alone). Without a category atom in the set, the plan is the same for every
    listing."""

    def candidates_for(cat: tuple[str, ...] | None) -> tuple[int, ...]:
        found: list[int] = [i for segment in cat or () for i in by_segment.get(segment, ())]
        found.extend(fixed)
        return tuple(sorted(set(found))) if len(found) > 1 else tuple(found)

    no_category: CategoryPlan = (None, candidates_for(None))
    if not uses_category:
        return lambda listing: no_category

    # A marketplace has a few thousand category paths, repeated across listings: the
    # plan for a short category string is memoised (bounded, thread-safe); long,
    # untrusted values and category lists bypass the cache. The bound grows with the
    # segments the rules name (a set with 10,000 category rules speaks of a taxonomy of
    # that size, whose paths would otherwise evict each other on every listing).
    @functools.lru_cache(maxsize=max(8192, 2 * len(by_segment)))
    def category_plan(value: str) -> CategoryPlan:
        cat = category_segments(value)
        return cat, candidates_for(cat)

    def plan(listing: Listing) -> CategoryPlan:
        raw = listing.get("category")
        if type(raw) is str and len(raw) <= _CATEGORY_PLAN_MAX_LEN:
            return category_plan(raw)
        cat = category_segments(raw)
        return cat, candidates_for(cat)
    return plan


def _field_candidates(by_field: Sequence[_FieldIndex], residual: tuple[int, ...],
                      ) -> Callable[[Listing, Candidates], Candidates]:
    """The candidates by category, plus the rules filed under the listing's field values,
    plus the residual rules: each once, in rule order."""

    def more(listing: Listing, planned: Candidates) -> Candidates:
        found = list(planned)
        for index in by_field:
            found.extend(index.lookup(listing))
        found.extend(residual)
        return sorted(set(found)) if len(found) > 1 else found
    return more
