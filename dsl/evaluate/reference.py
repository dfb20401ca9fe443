"""The reference evaluator: a plain tree walk over the checked model, straight from the
spec (sections 4 and 5). It is the oracle that the compiled evaluator (``dsl.evaluate.compiled``)
is tested against, so it stays simple on purpose: every rule, every atom, no indexes,
no caches. What each atom, window and combination means is ``dsl.evaluate.semantics``'s; this
module only walks the conditions and reads the listing.

Explanations (``dsl.evaluate.explain``) build their trace with ``holds`` and ``in_force``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from ..fingerprint import policy_hash
from ..model import PolicySet, RuleInfo, list_items
from ..syntax import ast as A
from ..text import category_segments, mentions
from . import semantics as S
from . import values as V
from .outcome import Decision

__all__ = ["decide_reference", "holds", "in_force", "rule_applies", "Mentioned"]

Mentioned = Callable[[S.Source, str], bool]
"""Whether the listing's text at a source (a field path, None for title, description and
tags) mentions a normalised phrase: ``dsl.evaluate.explain.phrase_lookup`` answers it with one
pass over the text per source."""


def holds(expr: A.Expr, listing: Mapping[str, Any], tz: ZoneInfo, mentioned: Mentioned | None = None) -> bool:
    """Whether a resolved condition holds for the listing; dates without an offset are
    read in ``tz``, the timezone of the rule's policy. ``mentioned`` answers ``mentions``
    (``explain.phrase_lookup``); without it each phrase is searched for on its own."""
    if isinstance(expr, A.Const):
        return expr.value
    if isinstance(expr, A.And):
        return all(holds(e, listing, tz, mentioned) for e in expr.items)
    if isinstance(expr, A.Or):
        return any(holds(e, listing, tz, mentioned) for e in expr.items)
    if isinstance(expr, A.Not):
        return not holds(expr.operand, listing, tz, mentioned)
    if isinstance(expr, (A.Mentions, A.MentionsAny)):
        return _mentions_holds(expr, listing, mentioned)
    if isinstance(expr, A.Contains):
        return S.contains_test(expr.needle.value)(S.source_pieces(listing, expr.path.parts))
    if isinstance(expr, A.Matches):
        return S.matches_test(expr.regex.pattern, expr.regex.ignore_case)(S.source_pieces(listing, expr.path.parts))
    return _value_holds(expr, listing, tz)


def _mentions_holds(expr: A.Mentions | A.MentionsAny, listing: Mapping[str, Any], mentioned: Mentioned | None) -> bool:
    """``[PATH] mentions 'P'`` / ``mentions any [...]``."""
    source = expr.path.parts if expr.path is not None else None
    phrases = S.mention_phrases(S.atom_texts(expr))
    if mentioned is not None:
        return any(mentioned(source, p) for p in phrases)
    pieces = S.source_pieces(listing, source)
    return any(mentions(pieces, p) for p in phrases)


def _value_holds(expr: A.Expr, listing: Mapping[str, Any], tz: ZoneInfo) -> bool:
    """The atoms on the category and on field values: ``category``, comparisons, ``in``,
    ``exists``."""
    if isinstance(expr, (A.Category, A.CategoryIn)):
        return S.category_holds(category_segments(V.read_path(listing, ("category",))), S.atom_texts(expr))
    if isinstance(expr, A.Compare):
        return S.compare(V.read_path(listing, expr.path.parts), S.as_op(expr.op), expr.value, tz)
    if isinstance(expr, A.In):
        return S.in_list(V.read_path(listing, expr.path.parts), list_items(expr.items), expr.negated, tz)
    if isinstance(expr, A.Exists):
        return V.read_path(listing, expr.path.parts) is not None
    raise TypeError(f"not a condition: {type(expr).__name__}")




def in_force(rule: RuleInfo, at: V.ParsedAt) -> bool:
    """``from <= at < until``, ``at`` read in the rule's policy's timezone."""
    return S.in_window(rule.start, rule.end, at.in_tz(rule.tz))


def rule_applies(rule: RuleInfo, listing: Mapping[str, Any], at: V.ParsedAt) -> bool:
    """Whether a rule applies: in force, and its condition (scope, selector, ``if``, not
    ``unless``) holds."""
    return in_force(rule, at) and holds(rule.condition, listing, rule.tz)


def decide_reference(ps: PolicySet, listing: Any, at: Any = None, prior_violations: Any = 0) -> Decision:
    """Decide a listing by walking every rule of the set (spec section 5). Raises
    InputError for a listing that is not an object or does not fit the declared schema,
    an unreadable ``at`` or a bad ``prior_violations``."""
    when = V.parse_at(at)
    for tz in dict.fromkeys(rule.tz for rule in ps.rules):  # ``at`` read in each rule's zone first, as decide reads it
        when.in_tz(tz)
    prior = V.check_prior(prior_violations)
    V.check_listing(listing)
    V.validate_schema(listing, ps.schema)
    warnings = V.input_warnings(listing, V.warned_fields(ps))
    applying = [S.consequence(rule) for rule in ps.rules if rule_applies(rule, listing, when)]
    return S.combine(applying, prior).decision(warnings, when.reported, policy_hash(ps))
