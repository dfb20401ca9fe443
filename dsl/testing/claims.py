"""An assertion made ready to check: its expression resolved, its window read as instants,
and the evaluators that replay a counterexample.

Whether a listing satisfies the assertion's expression is asked of the reference
evaluator's own condition walk (``dsl.evaluate.reference.holds``), so the expression means exactly
what a rule condition means (normalisation, absent and ill-typed fields, dates read in
the policies' timezone).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from ..checking.passes import resolve_sets
from ..evaluate.outcome import InputError
from ..model import PolicySet, local_instant, when_instant
from ..syntax import ast as A
from .shrink import Counterexample

__all__ = ["Claim", "input_errors", "resolve_sets", "parse_instant", "effect_of"]

UTC = dt.UTC


def input_errors() -> tuple[type[BaseException], ...]:
    """The exceptions `decide` raises for a listing it refuses (schema violations, a bad
    `at` or `prior_violations`)."""
    return (InputError,)


def effect_of(decision: Any) -> str:
    return str(decision["effect"] if isinstance(decision, dict) else decision.effect)


def parse_instant(value: Any, tz: dt.tzinfo) -> dt.datetime:
    """An instant given as a datetime, a date or ISO text; without an offset it is local in
    ``tz``, read as ``decide`` reads it (``model.local_instant``: a date is the first
    instant of its day)."""
    d: dt.date
    if isinstance(value, dt.date):
        d = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        d = dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    return local_instant(d, tz)  # type: ignore[arg-type]


@attrs.define
class Claim:
    """``[WINDOW] always|never EFFECT EXPR`` over a policy set, ready to decide."""

    ps: PolicySet
    policies: Any                         # dsl.evaluate.policies.Policies of ps
    quantifier: str
    effect: str
    expr: A.Expr                          # set references resolved
    tz: ZoneInfo
    start: dt.datetime | None
    end: dt.datetime | None
    @classmethod
    def of(cls, ps: PolicySet, policies: Any, a: A.Assertion, tz: ZoneInfo) -> Claim:
        expr = resolve_sets(a.expr, dict(ps.sets))
        return cls(ps, policies, a.quantifier, a.effect, expr, tz,
                   when_instant(a.from_, tz), when_instant(a.until, tz))

    def in_window(self, at: dt.datetime) -> bool:
        return (self.start is None or self.start <= at) and (self.end is None or at < self.end)

    def holds(self, listing: dict[str, Any], at: dt.datetime) -> bool:
        """Whether the listing satisfies EXPR at ``at`` (the reference evaluator's reading)."""
        from ..evaluate.reference import (
            holds,  # here, not at the top: `policy check` reads test files without the evaluators
        )

        return bool(holds(self.expr, listing, self.tz))

    def decide(self, cx: Counterexample) -> Any:
        return self.policies.decide(cx.listing, at=cx.at, prior_violations=cx.prior_violations)

    def breaks_effect(self, effect: str) -> bool:
        return effect != self.effect if self.quantifier == "always" else effect == self.effect

    def broken_by(self, cx: Counterexample) -> bool:
        """Whether ``cx`` is a counterexample: in the window, EXPR holds, and the decision
        (by `decide`, the compiled evaluator) breaks the claim."""
        if not isinstance(cx.prior_violations, int) or cx.prior_violations < 0:
            return False
        if not isinstance(cx.listing, dict) or not self.in_window(cx.at):
            return False
        if not self.holds(cx.listing, cx.at):
            return False
        try:
            decision = self.decide(cx)
        except input_errors():
            return False
        return self.breaks_effect(effect_of(decision))

    def counterexample(self, raw: Any) -> Counterexample:
        """The analysis's counterexample (a dict with listing, at, prior_violations, or an
        object with those attributes) as a Counterexample."""
        def get(key: str) -> Any:
            return raw.get(key) if isinstance(raw, dict) else getattr(raw, key, None)

        return Counterexample(dict(get("listing") or {}), parse_instant(get("at"), self.tz),
                              int(get("prior_violations") or 0))
