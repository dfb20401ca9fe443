"""``assert [WINDOW] always|never EFFECT EXPR``, decided exactly.

A counterexample is a listing satisfying EXPR, an instant in the window and a
``prior_violations`` where the decision's effect is not EFFECT (``always``) or is EFFECT
(``never``). The effect is a function of the rules that remain (apply and are not
overridden): block if one of them blocks, else flag if one flags, else allow. Rules that
certainly cannot apply together with EXPR in the window are left out of the question (a
sound pruning, ``dsl.analysis.index``); the counterexample is replayed through the
reference evaluator on the whole set before it is returned.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ..evaluate.reference import decide_reference
from ..evaluate.semantics import EFFECTS
from ..model import PolicySet
from ..syntax import ast as A
from . import formula as FM
from . import timeline as TL
from .index import compatible, expr_signature
from .solver import AnalysisError, AnalysisStats, Engine


@attrs.frozen
class AssertionResult:
    """``outcome`` is "pass", "fail" (with ``counterexample``: ``listing``, ``at``,
    ``prior_violations``, replayed through the reference evaluator) or "undecided" (with
    ``reason``)."""

    outcome: str
    counterexample: dict[str, Any] | None = None
    reason: str | None = None



def effect_is(engine: Engine, effect: str, rules: list[str]) -> FM.F:
    ps = engine.ps
    blocks = FM.any_of(*[engine.remaining(q) for q in rules if ps.rule(q).effect == "block"])
    flags = FM.any_of(*[engine.remaining(q) for q in rules if ps.rule(q).effect == "flag"])
    if effect == "block":
        return blocks
    if effect == "flag":
        return FM.all_of(FM.Not(blocks), flags)
    return FM.all_of(FM.Not(blocks), FM.Not(flags))


def prove(ps: PolicySet, *, quantifier: str, effect: str, expr: A.Expr, tz: ZoneInfo,
          start: dt.datetime | None, end: dt.datetime | None, timeout_ms: int, stats: AnalysisStats) -> AssertionResult:
    if quantifier not in ("always", "never"):
        raise ValueError(f"quantifier must be 'always' or 'never', not {quantifier!r}")
    if effect not in EFFECTS:
        raise ValueError(f"effect must be one of {EFFECTS}, not {effect!r}")
    lo = None if start is None else TL.to_us(start.astimezone(dt.UTC) if start.tzinfo else start.replace(tzinfo=tz))
    hi = None if end is None else TL.to_us(end.astimezone(dt.UTC) if end.tzinfo else end.replace(tzinfo=tz))
    if lo is not None and hi is not None and lo >= hi:
        return AssertionResult("pass")  # an empty window: nothing to refute
    engine = Engine(ps, [(expr, tz)], timeout_ms=timeout_ms, stats=stats)
    sig = expr_signature(expr, tz, start, end, "<assertion>")
    # the assertion's `at` is an instant: compare windows without a timezone margin
    sig = type(sig)(sig.lo, sig.hi, "*", sig.eq, sig.ranges, sig.pos, sig.neg, sig.present, sig.absent, sig.empty)
    rules = []
    for r in ps.rules:
        rs = expr_signature(r.condition, r.tz, r.start, r.end, "*")
        if compatible(sig, rs):
            rules.append(r.qid)
            stats.count_pairs("assert", 1, 0)
        else:
            stats.count_pairs("assert", 1, 1)
    # allows that may lift a kept rule must be kept too
    rules = sorted(engine.with_overriders(rules))
    target = effect_is(engine, effect, rules)
    broken = FM.Not(target) if quantifier == "always" else target
    f = FM.all_of(FM.holds_expr(expr, tz), FM.AtIn(lo, hi), broken)
    answer = engine.solve(f, aware_at=True)
    if answer.status == "unsat":
        return AssertionResult("pass")
    if answer.status == "undecided":
        return AssertionResult("undecided", reason=answer.reason)
    w = answer.witness
    assert w is not None
    stats.replays += 1
    d = decide_reference(ps, w.listing, w.at, w.prior_violations)
    if (d.effect == effect) != (quantifier == "never"):
        raise AnalysisError(f"the counterexample does not replay: {w.to_dict()!r} gave {d.to_dict()!r}")
    return AssertionResult("fail", counterexample=w.to_dict())
