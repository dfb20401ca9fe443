"""The reference evaluator: a plain tree walk over the checked model, straight from the
spec (sections 4 and 5). It is the oracle that the compiled evaluator (``dsl.compiled``)
is tested against, so it stays simple on purpose: every rule, every atom, no indexes,
no caches. It also records a trace of how each rule fared, for ``Decision.explain()``.
"""

from __future__ import annotations

import datetime as dt
import operator
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo

from . import ast as A
from . import runtime as R
from .decision import Decision, PenaltyChoice
from .explain import Proposal, RuleTrace, Trace, authored_parts, part_words, window_words
from .model import PolicySet, RuleInfo
from .text import (category_matches, category_segments, compile_regex, contains, mentions,
                   normalize, normalize_phrase, pattern_segments, regex_search)

__all__ = ["decide_reference", "holds", "rule_applies"]

EFFECT_STRENGTH = {"allow": 0, "flag": 1, "block": 2}

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


# --------------------------------------------------------------------------- atoms


def holds(expr: A.Expr, listing: Mapping[str, Any], tz: ZoneInfo) -> bool:
    """Whether a resolved condition holds for the listing; dates without an offset are
    read in ``tz``, the timezone of the rule's policy."""
    if isinstance(expr, A.Const):
        return expr.value
    if isinstance(expr, A.And):
        return all(holds(e, listing, tz) for e in expr.items)
    if isinstance(expr, A.Or):
        return any(holds(e, listing, tz) for e in expr.items)
    if isinstance(expr, A.Not):
        return not holds(expr.operand, listing, tz)
    if isinstance(expr, A.Category):
        return _category(listing, [expr.pattern.value])
    if isinstance(expr, A.CategoryIn):
        return _category(listing, [i.value for i in _items(expr.items) if isinstance(i, A.Str)])
    if isinstance(expr, A.Mentions):
        return mentions(_pieces(listing, expr.path), normalize_phrase(expr.phrase.value))
    if isinstance(expr, A.MentionsAny):
        pieces = _pieces(listing, expr.path)
        return any(mentions(pieces, normalize_phrase(i.value)) for i in _items(expr.items) if isinstance(i, A.Str))
    if isinstance(expr, A.Contains):
        needle = normalize(expr.needle.value)
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


def _rule_trace(ps: PolicySet, rule: RuleInfo, listing: Mapping[str, Any], at: R.ParsedAt,
                applied: bool) -> RuleTrace:
    tz = rule.tz
    selector = rule.selector
    selected = (selector is None or holds(selector, listing, tz)
                or (isinstance(selector, A.And) and holds(selector.items[0], listing, tz)))
    if not selected:  # not detailed in explanations: spare the words
        return RuleTrace(rule.qid, rule.name, rule.effect, False, applied)
    held: list[str] = []
    failed: str | None = None
    window_text = window_words(rule, at.in_tz(tz))
    if window_text is not None:
        if in_force(rule, at):
            held.append(window_text)
        else:
            failed = window_text
    authored = authored_parts(ps, rule)

    def evaluate(e: A.Expr) -> bool:
        return holds(e, listing, tz)
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
            ok = holds(conjunct, listing, tz) == want
            words = part_words(label, words_of, listing, ok, conjunct, evaluate)
            if ok:
                held.append(words)
            elif failed is None:
                failed = words
    return RuleTrace(rule.qid, rule.name, rule.effect, selected, applied,
                     tuple(held) if applied else (), None if applied else failed)


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
    applying_ids = {rule.qid for rule in applying}
    overridden_by: dict[str, list[str]] = {}
    for rule in applying:
        if rule.effect == "allow":
            for target in rule.overrides:
                if target in applying_ids:
                    overridden_by.setdefault(target, []).append(rule.qid)
    remaining = sorted((r for r in applying if r.qid not in overridden_by), key=lambda r: r.qid)
    effect = max((r.effect for r in remaining), key=EFFECT_STRENGTH.__getitem__, default="allow")

    proposals: list[Proposal] = []
    for rule in remaining:
        if rule.effect == "block" and rule.penalty is not None:
            steps = rule.penalty.steps
            number = min(prior + 1, len(steps))
            step = steps[number - 1]
            proposals.append(Proposal(rule.qid, rule.penalty.name, number, len(steps), step.actions, step.severity))
    penalty = None
    if proposals:
        best = max(proposals, key=lambda p: p.severity)
        best = min((p for p in proposals if p.severity == best.severity), key=lambda p: p.rule)
        penalty = PenaltyChoice(best.rule, best.ladder, best.step, best.actions)

    messages = _once(r.message for r in remaining if r.message is not None)
    citations = _once(c for r in remaining for c in ((r.because,) if r.because else ()) + r.authorities)

    traces = []
    for rule in ps.rules:
        rule_trace = _rule_trace(ps, rule, listing, when, rule.qid in applying_ids)
        if rule.qid in overridden_by:
            rule_trace = rule_trace.overridden(tuple(sorted(overridden_by[rule.qid])))
        traces.append(rule_trace)
    trace = Trace(tuple(traces), tuple(proposals), prior, len(ps.policies) == 1)

    return Decision(
        effect=effect,
        rules=tuple(r.qid for r in remaining),
        overridden=tuple(sorted(overridden_by)),
        penalty=penalty,
        messages=messages,
        citations=citations,
        warnings=warnings,
        at=when.reported(ps),
        policy_hash=ps.policy_hash,
        trace=trace,
    )


def _once(strings: Any) -> tuple[str, ...]:
    """Each string once, in the order first seen."""
    return tuple(dict.fromkeys(strings))


def trace_of(ps: PolicySet, listing: Any, at: Any, prior_violations: Any) -> Trace:
    """The reference evaluator's trace for a decision (used to explain compiled ones)."""
    trace = decide_reference(ps, listing, at, prior_violations).trace
    assert trace is not None
    return trace
