"""The reference evaluator: a plain tree walk over the checked model, straight from the
spec (sections 4 and 5). It is the oracle that the compiled evaluator (``dsl.compiled``)
is tested against, so it stays simple on purpose: every rule, every atom, no indexes,
no caches.

It also builds, on request, the trace of how each rule fared, for ``Decision.explain()``
(``build_trace``), for a decision of either evaluator. A trace reads ``mentions`` through
a ``Mentioned`` lookup backed by one Aho-Corasick pass per text source
(``phrase_lookup``), the matcher decisions use, so an explanation costs about what the
decision did, not phrases times text length.
"""

from __future__ import annotations

import datetime as dt
import operator
from typing import Any, Callable, Iterator, Mapping
from zoneinfo import ZoneInfo

import attrs

from . import ast as A
from . import runtime as R
from .decision import Decision, PenaltyChoice
from .explain import Mentioned, Proposal, RuleTrace, Trace, authored_parts, part_words, window_words
from .fingerprint import policy_hash
from .model import PolicySet, RuleInfo
from .text import (PhraseMatcher, category_matches, category_segments, compile_regex, contains,
                   mentions, normalize_needle, normalize_phrase, pattern_segments, regex_search)

__all__ = ["decide_reference", "holds", "rule_applies", "build_trace", "phrase_lookup",
           "ReferenceTracer", "Mentioned", "shares_topic", "rule_trace", "collect_phrases"]

Source = tuple[str, ...] | None
"""Where ``mentions`` reads text: a field path, or None for the listing's text."""


EFFECT_STRENGTH = {"allow": 0, "flag": 1, "block": 2}

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


# --------------------------------------------------------------------------- atoms


def holds(expr: A.Expr, listing: Mapping[str, Any], tz: ZoneInfo, mentioned: Mentioned | None = None) -> bool:
    """Whether a resolved condition holds for the listing; dates without an offset are
    read in ``tz``, the timezone of the rule's policy. ``mentioned`` answers ``mentions``
    (``phrase_lookup``); without it each phrase is searched for on its own."""
    if isinstance(expr, A.Const):
        return expr.value
    if isinstance(expr, A.And):
        return all(holds(e, listing, tz, mentioned) for e in expr.items)
    if isinstance(expr, A.Or):
        return any(holds(e, listing, tz, mentioned) for e in expr.items)
    if isinstance(expr, A.Not):
        return not holds(expr.operand, listing, tz, mentioned)
    if isinstance(expr, A.Category):
        return _category(listing, [expr.pattern.value])
    if isinstance(expr, A.CategoryIn):
        return _category(listing, [i.value for i in _items(expr.items) if isinstance(i, A.Str)])
    if isinstance(expr, A.Mentions):
        return _mentions(listing, expr.path, normalize_phrase(expr.phrase.value), mentioned)
    if isinstance(expr, A.MentionsAny):
        return any(_mentions(listing, expr.path, normalize_phrase(i.value), mentioned)
                   for i in _items(expr.items) if isinstance(i, A.Str))
    if isinstance(expr, A.Contains):
        needle = normalize_needle(expr.needle.value)
        return any(contains(piece, needle) for piece in _pieces(listing, expr.path))
    if isinstance(expr, A.Matches):
        regex = compile_regex(expr.regex.pattern, expr.regex.ignore_case)
        return any(regex_search(regex, piece) for piece in _pieces(listing, expr.path))
    if isinstance(expr, A.Compare):
        return compare(R.read_path(listing, expr.path.parts), expr.op, expr.value, tz)
    if isinstance(expr, A.In):
        return in_list(R.read_path(listing, expr.path.parts), _items(expr.items), expr.negated, tz)
    if isinstance(expr, A.Exists):
        return R.read_path(listing, expr.path.parts) is not None
    raise TypeError(f"not a condition: {type(expr).__name__}")


def _mentions(listing: Mapping[str, Any], path: A.Path | None, norm_phrase: str,
              mentioned: Mentioned | None) -> bool:
    if mentioned is not None:
        return mentioned(path.parts if path is not None else None, norm_phrase)
    return mentions(_pieces(listing, path), norm_phrase)


def _items(items: A.ListExpr) -> tuple[A.Scalar, ...]:
    assert isinstance(items, A.ListLit), "set references are resolved in the checked model"
    return items.items


def _category(listing: Mapping[str, Any], patterns: list[str]) -> bool:
    path = category_segments(R.read_path(listing, ("category",)))
    if path is None:
        return False
    return any(category_matches(path, pattern_segments(p)) for p in patterns)


def _pieces(listing: Mapping[str, Any], path: A.Path | None) -> tuple[str, ...]:
    if path is None:
        return R.listing_pieces(listing)
    return R.text_pieces(R.read_path(listing, path.parts))


def literal_instant(lit: A.Date | A.DateTime, tz: ZoneInfo) -> dt.datetime | None:
    """A date literal as an instant: a date is the first instant of its day in ``tz``."""
    return R.instant_in(lit.value, tz)


def _same_kind(value: Any, lit: A.Scalar, tz: ZoneInfo) -> bool:
    """Whether a present value can be compared with the literal at all."""
    if isinstance(lit, A.Str):
        return isinstance(value, str)
    if isinstance(lit, A.Bool):
        return isinstance(value, bool)
    if isinstance(lit, A.Num):
        return R.is_number(value)
    return R.value_instant(value, tz) is not None


def compare(value: Any, op: str, lit: A.Scalar, tz: ZoneInfo) -> bool:
    """``PATH op LITERAL``: false on an absent field and on a value of another kind than
    the literal; text and booleans only with ``==``/``!=``; dates as instants."""
    if value is None or not _same_kind(value, lit, tz):
        return False
    if isinstance(lit, (A.Str, A.Bool)):
        if op == "==":
            return bool(value == lit.value)
        if op == "!=":
            return bool(value != lit.value)
        return False
    if isinstance(lit, A.Num):
        return _ORDER[op](value, lit.value)
    mine = R.value_instant(value, tz)
    theirs = literal_instant(lit, tz)
    if mine is None or theirs is None:
        return False
    return _ORDER[op](mine, theirs)


def in_list(value: Any, items: tuple[A.Scalar, ...], negated: bool, tz: ZoneInfo) -> bool:
    """``PATH in LIST`` / ``PATH not in LIST``. Both are false on an absent field and on a
    list or object value; ``not in`` is also false when the value is of no kind that the
    list holds (a type mismatch), but true for any present scalar against an empty list."""
    if value is None or not R.is_scalar(value):
        return False
    comparable = [lit for lit in items if _same_kind(value, lit, tz)]
    found = any(compare(value, "==", lit, tz) for lit in comparable)
    if not negated:
        return found
    if not items:
        return True
    return bool(comparable) and not found


# --------------------------------------------------------------------------- rules


def in_force(rule: RuleInfo, at: R.ParsedAt) -> bool:
    """``from <= at < until``, ``at`` read in the rule's policy's timezone."""
    instant = at.in_tz(rule.tz)
    if rule.start is not None and instant < rule.start:
        return False
    if rule.end is not None and instant >= rule.end:
        return False
    return True


def rule_applies(rule: RuleInfo, listing: Mapping[str, Any], at: R.ParsedAt) -> bool:
    """Whether a rule applies: in force, and its condition (scope, selector, ``if``, not
    ``unless``) holds."""
    return in_force(rule, at) and holds(rule.condition, listing, rule.tz)


def decide_reference(ps: PolicySet, listing: Any, at: Any = None, prior_violations: Any = 0) -> Decision:
    """Decide a listing by walking every rule of the set (spec section 5). Raises
    InputError for a listing that is not an object or does not fit the declared schema,
    an unreadable ``at`` or a bad ``prior_violations``."""
    when = R.parse_at(at)
    prior = R.check_prior(prior_violations)
    R.check_listing(listing)
    R.validate_schema(listing, ps.schema)
    warnings = R.input_warnings(listing, R.warned_fields(ps))

    applying = [rule for rule in ps.rules if rule_applies(rule, listing, when)]
    overridden_by = _overridden_by(applying)
    remaining = sorted((r for r in applying if r.qid not in overridden_by), key=lambda r: r.qid)
    effect = max((r.effect for r in remaining), key=EFFECT_STRENGTH.__getitem__, default="allow")

    proposals = _proposals(remaining, prior)
    penalty = None
    if proposals:
        best = max(proposals, key=lambda p: p.severity)
        best = min((p for p in proposals if p.severity == best.severity), key=lambda p: p.rule)
        penalty = PenaltyChoice(best.rule, best.ladder, best.step, best.actions)

    messages = _once(r.message for r in remaining if r.message is not None)
    citations = _once(c for r in remaining for c in ((r.because,) if r.because else ()) + r.authorities)

    return Decision(
        effect=effect,
        rules=tuple(r.qid for r in remaining),
        overridden=tuple(sorted(overridden_by)),
        penalty=penalty,
        messages=messages,
        citations=citations,
        warnings=warnings,
        at=when.reported,
        policy_hash=policy_hash(ps),
        replay=(ReferenceTracer(ps), listing, when, prior),
    )


def _overridden_by(applying: list[RuleInfo]) -> dict[str, list[str]]:
    """For each applying rule that an applying ``allow`` overrides, the allows that do."""
    applying_ids = {rule.qid for rule in applying}
    overridden_by: dict[str, list[str]] = {}
    for rule in applying:
        if rule.effect == "allow":
            for target in rule.overrides:
                if target in applying_ids:
                    overridden_by.setdefault(target, []).append(rule.qid)
    return overridden_by


def _proposals(remaining: list[RuleInfo], prior: int) -> list[Proposal]:
    """The penalty proposal of each remaining block rule with a penalty (spec section 5)."""
    proposals: list[Proposal] = []
    for rule in remaining:
        if rule.effect == "block" and rule.penalty is not None:
            steps = rule.penalty.steps
            number = min(prior + 1, len(steps))
            step = steps[number - 1]
            proposals.append(Proposal(rule.qid, rule.penalty.name, number, len(steps), step.actions, step.severity))
    return proposals


def _once(strings: Any) -> tuple[str, ...]:
    """Each string once, in the order first seen."""
    return tuple(dict.fromkeys(strings))


# --------------------------------------------------------------------------- traces


def phrase_lookup(matchers: Mapping[Source, PhraseMatcher], listing: Mapping[str, Any]) -> Mentioned:
    """``mentions`` for one listing through one matcher per text source: the first question
    about a source runs its matcher once over the listing's text (one pass, whatever the
    number of phrases); later questions are set lookups. A phrase the matcher was not
    built with is searched for on its own."""
    found: dict[Source, set[str]] = {}

    def mentioned(source: Source, norm_phrase: str) -> bool:
        matcher = matchers.get(source)
        if matcher is None or norm_phrase not in matcher.phrases:
            return mentions(_source_pieces(listing, source), norm_phrase)
        hits = found.get(source)
        if hits is None:
            hits = found[source] = matcher.find_in_pieces(_source_pieces(listing, source))
        return norm_phrase in hits
    return mentioned


def _source_pieces(listing: Mapping[str, Any], source: Source) -> tuple[str, ...]:
    if source is None:
        return R.listing_pieces(listing)
    return R.text_pieces(R.read_path(listing, source))


def _walk(e: A.Expr) -> Iterator[A.Expr]:
    """Every node of a condition (loops, no recursion)."""
    stack: list[A.Expr] = [e]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (A.And, A.Or)):
            stack.extend(reversed(node.items))
        elif isinstance(node, A.Not):
            stack.append(node.operand)


def collect_phrases(ps: PolicySet) -> dict[Source, frozenset[str]]:
    """The normalised ``mentions`` phrases of every rule, by text source."""
    out: dict[Source, set[str]] = {}
    for rule in ps.rules:
        for node in _walk(rule.condition):
            if isinstance(node, (A.Mentions, A.MentionsAny)):
                source = node.path.parts if node.path is not None else None
                texts = [node.phrase.value] if isinstance(node, A.Mentions) else [
                    i.value for i in _items(node.items) if isinstance(i, A.Str)]
                out.setdefault(source, set()).update(p for t in texts if (p := normalize_phrase(t)))
    return {source: frozenset(phrases) for source, phrases in out.items()}


_TOPICAL = (A.Category, A.CategoryIn, A.Mentions, A.MentionsAny, A.Contains, A.Matches)


def shares_topic(rule: RuleInfo, listing: Mapping[str, Any], mentioned: Mentioned | None = None) -> bool:
    """Whether a rule concerns the listing, for an explanation: some category or text
    condition (``category``, ``mentions``, ``contains``, ``matches``) of its selector or
    ``if`` holds for the listing, whatever the rest of the rule says. The policy's scope
    does not count: it is shared by every rule of the policy (a policy scoped to
    Electronics would otherwise detail all its rules on every electronics listing)."""
    for part in (rule.selector, rule.if_):
        if part is None:
            continue
        for node in _walk(part):
            if isinstance(node, _TOPICAL) and holds(node, listing, rule.tz, mentioned):
                return True
    return False


def rule_trace(ps: PolicySet, rule: RuleInfo, listing: Mapping[str, Any], at: R.ParsedAt, applied: bool,
               mentioned: Mentioned | None = None) -> RuleTrace:
    """How one rule fared, every condition in words with whether it went the rule's way:
    the window, then scope, selector, ``if`` (conjunct by conjunct) and ``unless``."""
    tz = rule.tz
    parts: list[tuple[bool, str]] = []
    window_text = window_words(rule, at.in_tz(tz))
    if window_text is not None:
        parts.append((in_force(rule, at), window_text))
    authored = authored_parts(ps, rule)

    def evaluate(e: A.Expr) -> bool:
        return holds(e, listing, tz, mentioned)
    for label, expr, want in (("scope", rule.scope, True), ("selector", rule.selector, True),
                              ("if", rule.if_, True), ("unless", rule.unless, False)):
        if expr is None:
            continue
        written = authored[label] or expr
        conjuncts: tuple[A.Expr, ...] = (expr,)
        shown: tuple[A.Expr, ...] = (written,)
        if want and isinstance(expr, A.And) and isinstance(written, A.And) and len(expr.items) == len(written.items):
            conjuncts, shown = expr.items, written.items
        for conjunct, words_of in zip(conjuncts, shown):
            ok = evaluate(conjunct) == want
            parts.append((ok, part_words(label, words_of, listing, ok, conjunct, evaluate, mentioned)))
    return RuleTrace(rule.qid, rule.name, rule.effect, applied, tuple(parts))


def build_trace(ps: PolicySet, decision: Decision, listing: Mapping[str, Any], at: R.ParsedAt, prior: int,
                mentioned: Mentioned | None = None, why_not: str | None = None) -> Trace:
    """The trace of a decision (of either evaluator) for ``explain``: every rule that
    applied or was overridden, and every other rule that shares a category or a text
    match with the listing (``shares_topic``), in detail; the rest by id only. With
    ``why_not`` (a qualified id), that rule in detail too, as ``Trace.why_not``."""
    by_qid = {rule.qid: rule for rule in ps.rules}
    applied = set(decision.rules) | set(decision.overridden)
    overridden_by = _overridden_by([by_qid[q] for q in sorted(applied) if q in by_qid])
    proposals = _proposals([by_qid[q] for q in decision.rules if q in by_qid], prior)
    detailed: list[RuleTrace] = []
    others: list[str] = []
    for rule in ps.rules:
        if rule.qid in applied or shares_topic(rule, listing, mentioned):
            trace = rule_trace(ps, rule, listing, at, rule.qid in applied, mentioned)
            if rule.qid in overridden_by:
                trace = trace.overridden(tuple(sorted(overridden_by[rule.qid])))
            detailed.append(trace)
        else:
            others.append(rule.qid)
    asked = None
    if why_not is not None:
        asked = next((t for t in detailed if t.qid == why_not), None)
        if asked is None:
            asked = rule_trace(ps, by_qid[why_not], listing, at, why_not in applied, mentioned)
    return Trace(tuple(detailed), tuple(proposals), prior, len(ps.policies) == 1, tuple(others), asked)


@attrs.frozen
class ReferenceTracer:
    """Builds the trace of a reference decision on request, with one phrase matcher per
    text source built from the set's phrases (see ``phrase_lookup``)."""

    policy_set: PolicySet

    def trace(self, decision: Decision, listing: Mapping[str, Any], at: R.ParsedAt, prior: int,
              why_not: str | None = None) -> Trace:
        ps = self.policy_set
        matchers = {source: PhraseMatcher(phrases) for source, phrases in collect_phrases(ps).items()}
        return build_trace(ps, decision, listing, at, prior, phrase_lookup(matchers, listing), why_not)
