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
- window bounds are instants already; ``at`` is resolved once per decision for each
  distinct timezone of the rules (once per batch in ``decide_many``).

Nothing is mutated after planning, and a decision keeps its working state on the stack,
so one ``CompiledPolicySet`` may serve any number of threads. The result must agree
exactly with the reference evaluator (``dsl.reference``); the tests check that on the
conformance corpus and on generated policy sets and listings.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import operator
from typing import Any, Callable, Iterable, Mapping, Sequence
from zoneinfo import ZoneInfo

import attrs

from . import ast as A
from . import runtime as R
from .decision import Decision, DecisionError, InputError, PenaltyChoice
from .fingerprint import policy_hash
from .model import PolicySet, RuleInfo
from .text import (PhraseMatcher, category_matches, category_segments, compile_regex, contains,
                   normalize_needle, normalize_phrase, pattern_segments, regex_search)

__all__ = ["CompiledPolicySet"]

Source = tuple[str, ...] | None
"""Where ``mentions`` reads text: a field path, or None for the listing's text."""

_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}
_STRENGTH = {"allow": 0, "flag": 1, "block": 2}
_is_number = R.is_number
_UNSET: Any = object()
_CATEGORY_PLAN_MAX_LEN = 256


class _Ctx:
    """The working state of one decision."""

    __slots__ = ("listing", "cat", "found", "matchers")

    def __init__(self, listing: dict[str, Any], cat: tuple[str, ...] | None,
                 matchers: Mapping[Source, tuple[PhraseMatcher, Callable[[dict[str, Any]], tuple[str, ...]]]]):
        self.listing = listing
        self.cat = cat
        self.found: dict[Source, set[str]] = {}
        self.matchers = matchers

    def phrases(self, source: Source) -> set[str]:
        found = self.found.get(source)
        if found is None:
            matcher, pieces = self.matchers[source]
            found = self.found[source] = matcher.find_in_pieces(pieces(self.listing))
        return found


Cond = Callable[[_Ctx], bool]


def _reader(parts: tuple[str, ...]) -> Callable[[dict[str, Any]], Any]:
    """A function reading one field path (None when absent)."""
    if len(parts) == 1:
        key = parts[0]
        return lambda listing: listing.get(key)
    return functools.partial(_read_deep, parts)


def _read_deep(parts: tuple[str, ...], listing: dict[str, Any]) -> Any:
    return R.read_path(listing, parts)


def _pieces_reader(source: Source) -> Callable[[dict[str, Any]], tuple[str, ...]]:
    if source is None:
        return R.listing_pieces
    get = _reader(source)
    return lambda listing: R.text_pieces(get(listing))


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
            return _any(tuple(self.compile(i, tz) for i in e.items))
        if isinstance(e, A.Not):
            inner = self.compile(e.operand, tz)
            return lambda c: not inner(c)
        if isinstance(e, A.Category):
            return _category((pattern_segments(e.pattern.value),))
        if isinstance(e, A.CategoryIn):
            return _category(tuple(pattern_segments(i.value) for i in _items(e.items) if isinstance(i, A.Str)))
        if isinstance(e, (A.Mentions, A.MentionsAny)):
            source: Source = e.path.parts if e.path is not None else None
            if isinstance(e, A.Mentions):
                wanted = frozenset({normalize_phrase(e.phrase.value)})
            else:
                wanted = frozenset(normalize_phrase(i.value) for i in _items(e.items) if isinstance(i, A.Str))
            wanted = frozenset(p for p in wanted if p)  # the empty phrase is never mentioned
            if not wanted:
                return lambda c: False
            self.phrases.setdefault(source, set()).update(wanted)
            return lambda c: not c.phrases(source).isdisjoint(wanted)
        if isinstance(e, A.Contains):
            needle = normalize_needle(e.needle.value)
            pieces = _pieces_reader(e.path.parts)
            return lambda c: any(contains(p, needle) for p in pieces(c.listing))
        if isinstance(e, A.Matches):
            regex = compile_regex(e.regex.pattern, e.regex.ignore_case)
            pieces = _pieces_reader(e.path.parts)
            return lambda c: any(regex_search(regex, p) for p in pieces(c.listing))
        if isinstance(e, A.Compare):
            return _compare(_reader(e.path.parts), e.op, e.value, tz)
        if isinstance(e, A.In):
            return _in(_reader(e.path.parts), _items(e.items), e.negated, tz)
        if isinstance(e, A.Exists):
            get = _reader(e.path.parts)
            return lambda c: get(c.listing) is not None
        raise TypeError(f"not a condition: {type(e).__name__}")


def _items(items: A.ListExpr) -> tuple[A.Scalar, ...]:
    assert isinstance(items, A.ListLit), "set references are resolved in the checked model"
    return items.items


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


def _category(patterns: tuple[tuple[str, ...], ...]) -> Cond:
    patterns = tuple(p for p in patterns if p)  # an empty pattern matches nothing
    if not patterns:
        return lambda c: False
    if len(patterns) == 1:
        (pattern,) = patterns
        return lambda c: c.cat is not None and category_matches(c.cat, pattern)
    return lambda c: c.cat is not None and any(category_matches(c.cat, p) for p in patterns)


def _compare(get: Callable[[dict[str, Any]], Any], op: str, lit: A.Scalar, tz: ZoneInfo) -> Cond:
    if isinstance(lit, (A.Str, A.Bool)):
        if op not in ("==", "!="):
            return lambda c: False
        want = lit.value
        kind: type = str if isinstance(lit, A.Str) else bool
        if op == "==":
            return lambda c: (isinstance(v := get(c.listing), kind) and v == want)
        return lambda c: (isinstance(v := get(c.listing), kind) and v != want)
    if isinstance(lit, A.Num):
        number = lit.value
        test = _OPS[op]
        return lambda c: (_is_number(v := get(c.listing)) and test(v, number))
    instant = R.instant_in(lit.value, tz)
    if instant is None:
        return lambda c: False
    test = _OPS[op]

    def date_compare(c: _Ctx) -> bool:
        v = get(c.listing)
        if v is None:
            return False
        mine = R.value_instant(v, tz)
        return mine is not None and test(mine, instant)
    return date_compare


def _in(get: Callable[[dict[str, Any]], Any], items: tuple[A.Scalar, ...], negated: bool, tz: ZoneInfo) -> Cond:
    texts = frozenset(i.value for i in items if isinstance(i, A.Str))
    numbers = frozenset(i.value for i in items if isinstance(i, A.Num))
    bools = frozenset(i.value for i in items if isinstance(i, A.Bool))
    instants = frozenset(x for i in items if isinstance(i, (A.Date, A.DateTime))
                         if (x := R.instant_in(i.value, tz)) is not None)
    has_text, has_number, has_bool = bool(texts), bool(numbers), bool(bools)
    has_date = any(isinstance(i, (A.Date, A.DateTime)) for i in items)
    empty = not items

    def lookup(v: Any) -> tuple[bool, bool]:
        """(comparable, found) for a present scalar value."""
        if isinstance(v, str):
            if v in texts:
                return True, True
            if has_date:
                mine = R.value_instant(v, tz)
                if mine is not None:
                    return True, mine in instants
            return has_text, False
        if isinstance(v, bool):
            return has_bool, v in bools
        if _is_number(v):
            return has_number, v in numbers
        if isinstance(v, dt.date) and has_date:
            mine = R.value_instant(v, tz)
            return mine is not None, mine in instants
        return False, False

    if not negated:
        if not has_date and not has_bool and not has_number:
            return lambda c: (isinstance(v := get(c.listing), str) and v in texts)

        def is_in(c: _Ctx) -> bool:
            v = get(c.listing)
            if v is None or not R.is_scalar(v):
                return False
            return lookup(v)[1]
        return is_in

    def not_in(c: _Ctx) -> bool:
        v = get(c.listing)
        if v is None or not R.is_scalar(v):
            return False
        if empty:
            return True
        comparable, found = lookup(v)
        return comparable and not found
    return not_in


# --------------------------------------------------------------------------- rules and indexes


@attrs.frozen
class _Rule:
    """A rule ready to decide with: everything the hot path touches, precomputed."""

    index: int
    qid: str
    effect: str
    start: dt.datetime | None
    end: dt.datetime | None
    zone: int
    cond: Cond
    overrides: tuple[str, ...]
    proposals: tuple[tuple[str | None, int, tuple[str, ...], tuple[tuple[int, int], ...]], ...]
    message: str | None
    citations: tuple[str, ...]


def _conjuncts(e: A.Expr) -> tuple[A.Expr, ...]:
    return e.items if isinstance(e, A.And) else (e,)


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


def _fits_fn(kinds: frozenset[str]) -> Callable[[Any], bool]:
    """A fast test that a present value fits one of ``kinds``: the same answer as
    ``any(runtime.fits(v, k) for k in kinds)``, with the common cases (a plain string, a
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
        return any(R.fits(v, k) for k in ordered)
    return ok


@functools.lru_cache(maxsize=256)
def _parse_at_text(at: str) -> R.ParsedAt:
    """``at`` strings repeat (a service passes today's date, a batch one instant); the
    parsed value is immutable, so it is cached (an unreadable one raises, uncached)."""
    return R.parse_at(at)


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
        self._matchers = {source: (PhraseMatcher(frozenset(phrases)),  # type: ignore[arg-type]  # attrs converter typing
                                   _pieces_reader(source))
                          for source, phrases in planner.phrases.items()}
        self._warned_fields = R.warned_fields(ps)
        # (key for a one-part path or None, path, a plain string fits, the full test)
        self._warned = tuple((path[0] if len(path) == 1 else None, path,
                              bool(kinds & {"text", "textlike", "category"}), _fits_fn(kinds))
                             for path, kinds in self._warned_fields)
        self._schema = tuple(ps.schema[p] for p in sorted(ps.schema, key=R.dotted))
        self._schema_readers = tuple(_reader(f.path) for f in self._schema)
        self._build_indexes(ps)
        self._decide = self._make_decide()

    @staticmethod
    def _plan_rule(index: int, info: RuleInfo, zone: int, planner: _Planner) -> _Rule:
        proposals: tuple[tuple[str | None, int, tuple[str, ...], tuple[tuple[int, int], ...]], ...] = ()
        if info.effect == "block" and info.penalty is not None:
            steps = info.penalty.steps
            proposals = tuple((info.penalty.name, n + 1, s.actions, s.severity) for n, s in enumerate(steps))
        citations = tuple(dict.fromkeys(((info.because,) if info.because else ()) + info.authorities))
        return _Rule(index, info.qid, info.effect, info.start, info.end, zone,
                     planner.compile(info.condition, info.tz), info.overrides, proposals,
                     info.message, citations)

    def _build_indexes(self, ps: PolicySet) -> None:
        by_segment: dict[str, list[int]] = {}
        by_field: dict[tuple[str, ...], dict[IndexKey, list[int]]] = {}
        residual: list[int] = []
        self.never: tuple[str, ...]
        never: list[str] = []
        for i, info in enumerate(ps.rules):
            conjuncts = _conjuncts(info.condition)
            segments = next((k for c in conjuncts if (k := _category_keys(c)) is not None), None)
            if segments is not None:
                if not segments:
                    never.append(info.qid)  # a category conjunct that nothing matches
                for s in sorted(segments):
                    by_segment.setdefault(s, []).append(i)
                continue
            equalities = [eq for c in conjuncts if (eq := _equality_keys(c)) is not None]
            if equalities:
                path, keys = min(equalities, key=lambda pk: (len(pk[1]), R.dotted(pk[0])))
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

    @staticmethod
    def _parse_at(at: Any) -> R.ParsedAt:
        if at is None:
            return R.ParsedAt(dt.datetime.now(dt.timezone.utc))
        if isinstance(at, str):
            return _parse_at_text(at)
        return R.parse_at(at)

    def _times(self, when: R.ParsedAt) -> tuple[tuple[dt.datetime, ...], dt.datetime]:
        """``at`` for each timezone of the rules, and the ``at`` reported (spec section 5:
        a local ``at`` as given, so that it replays)."""
        if when.instant is not None:
            return (when.instant,) * len(self._zones), when.instant
        return tuple(when.in_tz(z) for z in self._zones), when.reported

    def decide(self, listing: Any, at: Any = None, prior_violations: Any = 0) -> Decision:
        """Decide one listing (spec section 5); raises InputError for bad input."""
        when = self._parse_at(at)
        prior = prior_violations if type(prior_violations) is int and prior_violations >= 0 else R.check_prior(prior_violations)
        times, reported = self._times(when)
        return self._decide(listing, when, times, reported, prior)

    def decide_many(self, listings: Iterable[Any], at: Any = None,
                    prior_violations: Any = 0) -> list[Decision | DecisionError]:
        """Decide a batch at one instant (``at`` defaults to now, read once for the whole
        batch). A listing that cannot be decided yields a DecisionError in its place
        (records count from 1); the others are decided. A bad ``at`` or
        ``prior_violations`` concerns the whole batch and raises InputError."""
        when = self._parse_at(at)
        prior = R.check_prior(prior_violations)
        times, reported = self._times(when)
        decide = self._decide
        out: list[Decision | DecisionError] = []
        append = out.append
        for n, listing in enumerate(listings, 1):
            try:
                append(decide(listing, when, times, reported, prior))
            except InputError as e:
                append(DecisionError(n, e.message, e.field))
        return out

    def _make_decide(self) -> Callable[[Any, R.ParsedAt, Sequence[dt.datetime], dt.datetime, int], Decision]:
        """The hot path, as a closure over the plan: what it touches is bound once here
        (closure cells are cheaper than attribute loads), and the common outcome (no rule
        applies) returns as early as it can."""
        rules, by_field, residual, matchers = self._rules, self._by_field, self._residual, self._matchers
        warned, warned_fields, policy_hash = self._warned, self._warned_fields, self._hash
        validate = self._validate if self._schema else None
        assemble = self._assemble
        uses_category = self._uses_category
        by_segment = self._by_segment
        fixed = () if by_field else residual  # candidates that do not depend on the category

        def candidates_for(cat: tuple[str, ...] | None) -> tuple[int, ...]:
            """The rules filed under the category's segments, plus the residual ones when
            there is no field index (then the list depends on the category alone)."""
            found: list[int] = [i for segment in cat or () for i in by_segment.get(segment, ())]
            found.extend(fixed)
            return tuple(sorted(set(found))) if len(found) > 1 else tuple(found)

        # A marketplace has a few thousand category paths, repeated across listings: the
        # plan for a short category string is memoised (bounded, thread-safe); long,
        # untrusted values and category lists bypass the cache.
        @functools.lru_cache(maxsize=8192)
        def category_plan(value: str) -> tuple[tuple[str, ...] | None, tuple[int, ...]]:
            cat = category_segments(value)
            return cat, candidates_for(cat)

        no_category = (None, candidates_for(None))

        def decide(listing: Any, when: R.ParsedAt, times: Sequence[dt.datetime],
                   reported: dt.datetime, prior: int) -> Decision:
            if not isinstance(listing, dict):
                R.check_listing(listing)
            if validate is not None:
                validate(listing)
            warnings: tuple[str, ...] = ()
            get = listing.get
            for key, path, str_ok, ok in warned:
                v = get(key) if key is not None else R.read_path(listing, path)
                if v is None or (str_ok and type(v) is str):
                    continue
                if not ok(v):
                    warnings = R.input_warnings(listing, warned_fields)
                    break

            if uses_category:
                raw = get("category")
                if type(raw) is str and len(raw) <= _CATEGORY_PLAN_MAX_LEN:
                    cat, planned = category_plan(raw)
                else:
                    cat = category_segments(raw)
                    planned = candidates_for(cat)
            else:
                cat, planned = no_category
            candidates: Sequence[int] = planned
            if by_field:
                more = list(planned)
                for index in by_field:
                    more.extend(index.lookup(listing))
                more.extend(residual)
                candidates = sorted(set(more)) if len(more) > 1 else more
            replay = (self, listing, when, prior)
            if not candidates:
                return Decision("allow", (), (), None, (), (), warnings, reported, policy_hash, replay=replay)

            ctx = _Ctx(listing, cat, matchers)
            applying: list[_Rule] = []
            for i in candidates:
                rule = rules[i]
                t = times[rule.zone]
                if rule.start is not None and t < rule.start:
                    continue
                if rule.end is not None and t >= rule.end:
                    continue
                if rule.cond(ctx):
                    applying.append(rule)
            if not applying:
                return Decision("allow", (), (), None, (), (), warnings, reported, policy_hash, replay=replay)
            return assemble(applying, replay, reported, prior, warnings)

        return decide

    def _assemble(self, applying: list[_Rule], replay: tuple[Any, ...], reported: dt.datetime, prior: int,
                  warnings: tuple[str, ...]) -> Decision:
        overridden: tuple[str, ...] = ()
        remaining = applying
        if any(r.effect == "allow" and r.overrides for r in applying):
            ids = {r.qid for r in applying}
            lifted = {t for r in applying if r.effect == "allow" for t in r.overrides if t in ids}
            if lifted:
                overridden = tuple(sorted(lifted))
                remaining = [r for r in applying if r.qid not in lifted]
        effect = "allow"
        strength = 0
        best: tuple[Any, ...] | None = None
        for r in remaining:
            s = _STRENGTH[r.effect]
            if s > strength:
                strength, effect = s, r.effect
            if r.proposals:
                ladder, step, actions, severity = r.proposals[min(prior, len(r.proposals) - 1)]
                # Rules are in qid order, so the first of equally severe proposals wins.
                if best is None or severity > best[4]:
                    best = (r.qid, ladder, step, actions, severity)
        penalty = PenaltyChoice(best[0], best[1], best[2], best[3]) if best is not None else None
        messages = tuple(dict.fromkeys(r.message for r in remaining if r.message is not None))
        citations = tuple(dict.fromkeys(c for r in remaining for c in r.citations))
        return Decision(effect, tuple(r.qid for r in remaining), overridden, penalty, messages,
                        citations, warnings, reported, self._hash, replay=replay)

    def _validate(self, listing: dict[str, Any]) -> None:
        for info, get in zip(self._schema, self._schema_readers):
            if R.schema_problem(info, get(listing)) is not None:
                R.validate_schema(listing, self.policy_set.schema)  # raises, with every problem
                return

    def explain(self, listing: Any, at: Any = None, prior_violations: Any = 0, why_not: str | None = None) -> str:
        """The explanation of the decision on ``listing`` (see ``Decision.explain``)."""
        return self.decide(listing, at, prior_violations).explain(why_not)

    def trace(self, decision: Decision, listing: Any, when: R.ParsedAt, prior: int,
              why_not: str | None = None) -> Any:
        """The trace of one of this set's decisions, for ``Decision.explain``: built by
        ``dsl.reference.build_trace``, with ``mentions`` read through the same phrase
        matchers the decision used (one pass over the text per source)."""
        from .reference import build_trace, phrase_lookup

        matchers = {source: matcher for source, (matcher, _) in self._matchers.items()}
        return build_trace(self.policy_set, decision, listing, when, prior, phrase_lookup(matchers, listing), why_not)
