"""Questions to the solver, in a small language that has two readings: a z3 formula
(``Engine.to_z3``) and a concrete truth value on a listing, ``at`` and
``prior_violations`` computed by the reference evaluator's own functions and
``dsl.evaluate.semantics`` (``evaluate``): the z3 reading restates those rules, and property tests
(``tests/test_semantics.py``) tie the two together.
Every "sat" answer is turned into a concrete listing and checked with the second reading
before anything is built on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import attrs

from ..evaluate import semantics as S
from ..evaluate import values as RT
from ..evaluate.reference import holds, rule_applies
from ..model import PolicySet
from ..syntax import ast as A
from . import timeline as TL

if TYPE_CHECKING:
    from .concrete import Applicability


@attrs.frozen
class Applies:
    """The rule applies (in force, and its condition holds)."""

    qid: str


@attrs.frozen
class Holds:
    """An expression (set references resolved) holds; date literals read in ``tz``."""

    expr: A.Expr
    tz: ZoneInfo = attrs.field(eq=False)
    tz_key: str = ""


@attrs.frozen
class AtIn:
    """``at`` is an instant (with an offset) in ``[lo, hi)`` (microseconds; None: open)."""

    lo: int | None
    hi: int | None


@attrs.frozen
class RankGe:
    """The step that rule ``x`` proposes is at least as severe as the one ``r`` proposes
    (both block rules with a penalty), at the question's ``prior_violations``."""

    x: str
    r: str


@attrs.frozen
class PriorIn:
    """``prior_violations`` is in ``[lo, hi)`` (None: no upper bound)."""

    lo: int
    hi: int | None


@attrs.frozen
class And:
    items: tuple[F, ...]


@attrs.frozen
class Or:
    items: tuple[F, ...]


@attrs.frozen
class Not:
    item: F


@attrs.frozen
class Const:
    value: bool


F = Applies | Holds | AtIn | RankGe | PriorIn | And | Or | Not | Const
TRUE = Const(True)
FALSE = Const(False)


def all_of(*items: F) -> F:
    flat = [i for i in items if i != TRUE]
    if any(i == FALSE for i in flat):
        return FALSE
    return TRUE if not flat else flat[0] if len(flat) == 1 else And(tuple(flat))


def any_of(*items: F) -> F:
    flat = [i for i in items if i != FALSE]
    if any(i == TRUE for i in flat):
        return TRUE
    return FALSE if not flat else flat[0] if len(flat) == 1 else Or(tuple(flat))


def holds_expr(expr: A.Expr, tz: ZoneInfo) -> Holds:
    return Holds(expr, tz, str(tz.key))


def rules_of(f: F) -> set[str]:
    """The rules a formula mentions."""
    out: set[str] = set()
    stack = [f]
    while stack:
        g = stack.pop()
        if isinstance(g, Applies):
            out.add(g.qid)
        elif isinstance(g, RankGe):
            out.update((g.x, g.r))
        elif isinstance(g, (And, Or)):
            stack.extend(g.items)
        elif isinstance(g, Not):
            stack.append(g.item)
    return out


def holds_of(f: F) -> list[Holds]:
    out: list[Holds] = []
    stack = [f]
    while stack:
        g = stack.pop()
        if isinstance(g, Holds):
            out.append(g)
        elif isinstance(g, (And, Or)):
            stack.extend(g.items)
        elif isinstance(g, Not):
            stack.append(g.item)
    return out


def proposal_severity(ps: PolicySet, qid: str, prior: int) -> tuple[Any, ...]:
    """The severity key of the step rule ``qid`` proposes after ``prior`` violations
    (``semantics.step_at``)."""
    rule = ps.rule(qid)
    assert rule.penalty is not None
    return S.step_at(rule.penalty.steps, prior).severity


def evaluate(f: F, ps: PolicySet, listing: Mapping[str, Any], at: Any, prior: int,
             concrete: Applicability | None = None) -> bool:
    """The formula's truth on a concrete input, by the reference evaluator's functions
    (with ``concrete``, the set's rules share the parts they have in common)."""
    when = RT.parse_at(at)
    if concrete is not None:
        applies = concrete.reader(listing, when).applies
    else:
        cache: dict[str, bool] = {}

        def applies(qid: str) -> bool:
            if qid not in cache:
                cache[qid] = rule_applies(ps.rule(qid), listing, when)
            return cache[qid]

    return _Reading(ps, listing, when, prior, applies).truth(f)


@attrs.frozen
class _Reading:
    """One concrete input, against which ``evaluate`` reads a formula."""

    ps: PolicySet
    listing: Mapping[str, Any]
    when: RT.ParsedAt
    prior: int
    applies: Callable[[str], bool]

    def truth(self, g: F) -> bool:
        if isinstance(g, And):
            return all(self.truth(i) for i in g.items)
        if isinstance(g, Or):
            return any(self.truth(i) for i in g.items)
        if isinstance(g, Not):
            return not self.truth(g.item)
        return self.atom(g)

    def atom(self, g: F) -> bool:
        if isinstance(g, Const):
            return g.value
        if isinstance(g, Applies):
            return self.applies(g.qid)
        if isinstance(g, Holds):
            return holds(g.expr, self.listing, g.tz)
        if isinstance(g, AtIn):
            return self.at_in(g)
        if isinstance(g, RankGe):
            return proposal_severity(self.ps, g.x, self.prior) >= proposal_severity(self.ps, g.r, self.prior)
        if isinstance(g, PriorIn):
            return g.lo <= self.prior and (g.hi is None or self.prior < g.hi)
        raise TypeError(type(g).__name__)

    def at_in(self, g: AtIn) -> bool:
        if self.when.instant is None:
            return False
        t = TL.to_us(self.when.instant)
        return (g.lo is None or g.lo <= t) and (g.hi is None or t < g.hi)
