"""The proof: two checked policy sets encoded over one symbolic input (a listing, ``at``
and ``prior_violations``), and the solver asked whether some input gets two different
decisions, per kind of change and per rule changed.

The two sets become one set for the analysis's ``Engine``: each rule's id is prefixed by
its side (``old:p.r``, ``new:p.r``), its ``overrides`` likewise, so that an allow lifts
only rules of its own version. Each side's decision is then stated with the engine's
formulas (``formula.F``): "rule q remains" is ``Engine.remaining``; the effect is block
when a block rule remains, flag when a flag rule and no block rule does; the penalty, for
each step of the longest ladder (``formula.PriorIn``), is the proposal of the most severe
remaining rule, ties going to the smallest id, as ``semantics.combine`` states it.

Only rules whose meaning can change need the solver. Rules are matched by qualified id;
one whose decision-relevant content (effect, window, timezone, resolved condition,
penalty steps, overrides) is equal in both versions is *unchanged*. A decision can only
differ where a changed rule (in either version) applies — elsewhere both versions apply
the same unchanged rules — so the questions keep the changed rules, the unchanged rules
that the analysis's index (``analysis.index``) cannot rule out beside one of them, and
the allows that override those; every other rule is false wherever a difference can be.
With no changed rule the sets are equivalent without a question.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs

from ..analysis import formula as FM
from ..analysis.answers import Answer
from ..analysis.index import Index
from ..analysis.solver import AnalysisStats, Budget, Engine
from ..evaluate.semantics import step_at
from ..model import PolicySet, RuleInfo
from .kinds import EFFECT_KINDS, KINDS

__all__ = ["Matching", "Prover", "decision_key", "match_rules", "tag"]

SIDES = ("old", "new")


def tag(side: str, qid: str) -> str:
    """A rule's id in the joint set: ``old:p.r`` or ``new:p.r``."""
    return f"{side}:{qid}"


def decision_key(rule: RuleInfo) -> tuple[Any, ...]:
    """What of a rule can change a decision's effect or penalty actions (its id aside)."""
    steps: tuple[Any, ...] = ()
    if rule.effect == "block" and rule.penalty is not None:
        steps = tuple((s.actions, s.severity) for s in rule.penalty.steps)
    return (rule.effect, rule.start, rule.end, rule.timezone, rule.condition, steps,
            rule.overrides if rule.effect == "allow" else ())


@attrs.frozen
class Matching:
    """The rules of two versions matched by qualified id: ``changed`` holds every id whose
    decision-relevant content differs (added, removed or changed), ``reworded`` the ids
    whose rule differs in nothing a decision's effect or penalty shows (``because``,
    ``message``, a ladder's name…)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    modified: tuple[str, ...]
    reworded: tuple[str, ...]
    unchanged: tuple[str, ...]

    @property
    def changed(self) -> tuple[str, ...]:
        return tuple(sorted(self.added + self.removed + self.modified))

    def status(self, qid: str) -> str:
        return "added" if qid in self.added else "removed" if qid in self.removed else "changed"


def match_rules(old: PolicySet, new: PolicySet) -> Matching:
    both = sorted(old.by_qid.keys() & new.by_qid.keys())
    modified, reworded, unchanged = [], [], []
    for q in both:
        a, b = old.rule(q), new.rule(q)
        if decision_key(a) != decision_key(b):
            modified.append(q)
        else:
            unchanged.append(q)
            if a != b or (a.penalty is not None and b.penalty is not None and a.penalty.name != b.penalty.name):
                reworded.append(q)
    return Matching(tuple(sorted(new.by_qid.keys() - old.by_qid.keys())),
                    tuple(sorted(old.by_qid.keys() - new.by_qid.keys())),
                    tuple(modified), tuple(reworded), tuple(unchanged))


def _tagged(rule: RuleInfo, side: str) -> RuleInfo:
    return attrs.evolve(rule, qid=tag(side, rule.qid), overrides=tuple(tag(side, o) for o in rule.overrides))


def joint_set(old: PolicySet, new: PolicySet, m: Matching) -> tuple[PolicySet, dict[str, list[str]]]:
    """The rules that can matter, of both versions, as one set (ids tagged by side), and
    for each side the tagged ids it holds there."""
    changed = set(m.changed)
    versions = [_tagged(old.rule(q), "old") for q in m.changed if q in old.by_qid]
    versions += [_tagged(new.rule(q), "new") for q in m.changed if q in new.by_qid]
    base = [_tagged(old.rule(q), "old") for q in m.unchanged]
    index = Index(versions + base)
    pool = [r.qid for r in base]
    near: set[str] = set()
    for v in versions:
        near.update(q.split(":", 1)[1] for q in index.neighbours(v.qid, pool))
    # the allows that lift a kept rule (an allow is never overridden itself: one pass)
    kept = changed | near
    for q in m.unchanged:
        r = old.rule(q)
        if r.effect == "allow" and kept.intersection(r.overrides):
            near.add(q)
    rules = list(versions)
    for q in sorted(near):
        rules += [_tagged(old.rule(q), "old"), _tagged(new.rule(q), "new")]
    rules.sort(key=lambda r: r.qid)
    sides = {s: [r.qid for r in rules if r.qid.startswith(s + ":")] for s in SIDES}
    joint = attrs.evolve(new, rules=tuple(rules), by_qid={r.qid: r for r in rules}, files=(), policies=(),
                         sources={})
    return joint, sides


def _neg(f: FM.F) -> FM.F:
    if f == FM.TRUE:
        return FM.FALSE
    if f == FM.FALSE:
        return FM.TRUE
    return FM.Not(f)


class Prover:
    """The questions about one pair of versions, on their joint set."""

    def __init__(self, joint: PolicySet, sides: dict[str, list[str]], *, timeout_ms: int = 10000,
                 budget: Budget | None = None, stats: AnalysisStats | None = None):
        self.ps = joint
        self.sides = sides
        self.stats = stats or AnalysisStats()
        self.engine = Engine(joint, timeout_ms=timeout_ms, stats=self.stats, budget=budget)
        self._kinds: dict[str, FM.F] | None = None

    # ------------------------------------------------------------------ one side's decision

    def _rem(self, qids: Iterable[str]) -> FM.F:
        return FM.any_of(*[self.engine.remaining(q) for q in qids])

    def _of(self, side: str, effect: str) -> list[str]:
        return [q for q in self.sides[side] if self.ps.rule(q).effect == effect]

    def effect_is(self, side: str, effect: str) -> FM.F:
        block = self._rem(self._of(side, "block"))
        if effect == "block":
            return block
        flag = self._rem(self._of(side, "flag"))
        if effect == "flag":
            return FM.all_of(_neg(block), flag)
        return FM.all_of(_neg(block), _neg(flag))

    def _penalized(self, side: str) -> list[RuleInfo]:
        return [r for r in (self.ps.rule(q) for q in self._of(side, "block")) if r.penalty is not None]

    def _buckets(self) -> list[tuple[int, FM.F]]:
        """The values of ``prior_violations`` that ladders tell apart: 0 … K-2 one by one,
        then K-1 and above (K the longest ladder's length)."""
        longest = max((len(r.penalty.steps) for s in SIDES for r in self._penalized(s) if r.penalty), default=0)
        return [(k, FM.PriorIn(k, k + 1 if k < longest - 1 else None)) for k in range(longest)]

    # ------------------------------------------------------------------ kinds

    def kinds(self) -> dict[str, FM.F]:
        """Each kind of change as a formula (FALSE where it cannot occur at all)."""
        if self._kinds is None:
            found: dict[str, FM.F] = {}
            for kind in EFFECT_KINDS:
                a, b = kind.split("→")
                found[kind] = FM.all_of(self.effect_is("old", a), self.effect_is("new", b))
            heavier, lighter, actions = [], [], []
            for k, bucket in self._buckets():
                levels = {s: self._levels(s, k) for s in SIDES}
                heavier.append(FM.all_of(bucket, self.effect_is("old", "block"), self._above(levels, "new", "old")))
                lighter.append(FM.all_of(bucket, self.effect_is("new", "block"), self._above(levels, "old", "new")))
                actions.append(FM.all_of(bucket, self._other_actions(levels)))
            found["penalty-heavier"] = FM.any_of(*heavier)
            found["penalty-lighter"] = FM.any_of(*lighter)
            found["penalty-actions"] = FM.any_of(*actions)
            self._kinds = {kind: found[kind] for kind in KINDS}
        return self._kinds

    def any_change(self) -> FM.F:
        return FM.any_of(*self.kinds().values())

    def _levels(self, side: str, k: int) -> dict[Any, list[tuple[str, tuple[str, ...]]]]:
        """The side's penalized rules by the severity of the step they propose at bucket
        ``k``: (id, actions), by id."""
        out: dict[Any, list[tuple[str, tuple[str, ...]]]] = {}
        for r in sorted(self._penalized(side), key=lambda r: r.qid):
            assert r.penalty is not None
            step = step_at(r.penalty.steps, k)
            out.setdefault(step.severity, []).append((r.qid, step.actions))
        return out

    def _at_least(self, levels: dict[Any, list[tuple[str, tuple[str, ...]]]], severity: Any) -> FM.F:
        return self._rem(q for s, rs in levels.items() if s >= severity for q, _ in rs)

    def _above(self, levels: dict[str, dict[Any, list[tuple[str, tuple[str, ...]]]]], hi: str, lo: str) -> FM.F:
        """Side ``hi`` proposes a step more severe than any ``lo`` proposes (or ``lo`` none)."""
        return FM.any_of(*[FM.all_of(self._rem(q for q, _ in rs), _neg(self._at_least(levels[lo], s)))
                           for s, rs in sorted(levels[hi].items())])

    def _other_actions(self, levels: dict[str, dict[Any, list[tuple[str, tuple[str, ...]]]]]) -> FM.F:
        """Both sides' most severe proposals are equally severe, and the chosen ones (the
        smallest id among them) have other actions."""
        terms = []
        for s in sorted(levels["old"].keys() & levels["new"].keys()):
            old, new = levels["old"][s], levels["new"][s]
            if len({a for _, a in old} | {a for _, a in new}) < 2:
                continue
            pairs = [FM.all_of(self._first(old, i), self._first(new, j))
                     for i, (_, a) in enumerate(old) for j, (_, b) in enumerate(new) if a != b]
            top = [FM.all_of(self._rem(q for q, _ in rs), _neg(self._strictly_above(lv, s)))
                   for lv, rs in ((levels["old"], old), (levels["new"], new))]
            terms.append(FM.all_of(*top, FM.any_of(*pairs)))
        return FM.any_of(*terms)

    def _strictly_above(self, levels: dict[Any, list[tuple[str, tuple[str, ...]]]], severity: Any) -> FM.F:
        return self._rem(q for s, rs in levels.items() if s > severity for q, _ in rs)

    def _first(self, rules: Sequence[tuple[str, tuple[str, ...]]], i: int) -> FM.F:
        return FM.all_of(self.engine.remaining(rules[i][0]), *[_neg(self.engine.remaining(q)) for q, _ in rules[:i]])

    # ------------------------------------------------------------------ questions

    def ask(self, f: FM.F) -> Answer:
        """The solver's answer; a witness as the model gave it (``core`` shrinks it against
        both compiled sets, which is cheaper than re-reading these large formulas)."""
        if f == FM.FALSE:
            return Answer("unsat")
        return self.engine.solve(f, clean=False)

    def touching(self, qid: str) -> FM.F:
        """The rule applies, in one version or the other."""
        return FM.any_of(*[FM.Applies(tag(s, qid)) for s in SIDES if tag(s, qid) in self.ps.by_qid])
