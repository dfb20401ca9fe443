"""`policy diff` as a function: two checked sets in, a ``Diff`` out (what changes, each
kind with a witness replayed through both versions, each rule changed with a witness or a
proof, what could not be decided).

Every witness the solver finds is shrunk (``dsl.testing.shrink``) against the compiled
evaluators of both versions, then replayed through them once more: it is reported only
when the two decisions really differ in the way claimed; otherwise the question is
reported as undecided (P399), never dropped.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import attrs

from ..analysis import formula as FM
from ..analysis.answers import Answer, Witness
from ..analysis.solver import AnalysisStats, Budget
from ..diagnostics import Diagnostic, make
from ..evaluate.outcome import Decision, InputError, format_instant
from ..evaluate.policies import Policies
from ..model import PolicySet
from ..testing.shrink import Counterexample, shrink
from ..testing.vocab import Vocabulary
from .kinds import KINDS, classify, shown
from .prove import Matching, Prover, joint_set, match_rules

__all__ = ["Change", "Diff", "Example", "RuleChange", "Undecided", "compare"]

DEFAULT_BUDGET = 60.0
"""Seconds the solver may take in all, by default (as `policy check`'s analysis)."""


@attrs.frozen
class Example:
    """An input and the decision each version gives it."""

    listing: dict[str, Any]
    at: str
    prior_violations: int
    kind: str
    old: Decision = attrs.field(eq=False)
    new: Decision = attrs.field(eq=False)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "listing": self.listing, "at": self.at, "prior_violations": self.prior_violations,
                "old": _decision(self.old), "new": _decision(self.new)}


def _decision(d: Decision) -> dict[str, Any]:
    full = d.to_dict()
    return {k: full[k] for k in ("effect", "rules", "overridden", "penalty")}


@attrs.frozen
class Change:
    """A kind of change that occurs, with a witness."""

    kind: str
    example: Example

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "example": self.example.to_dict()}


@attrs.frozen
class RuleChange:
    """A rule added, removed or changed (``reworded``: nothing a decision's effect or
    penalty shows changed), and whether its change alters a decision: ``yes`` (with an
    example where the rule applies, in either version, and the decisions differ), ``no``
    (proved) or ``undecided``."""

    rule: str
    status: str
    alters: str
    example: Example | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "status": self.status, "alters": self.alters,
                "example": self.example.to_dict() if self.example is not None else None}


@attrs.frozen
class Undecided:
    """A question the solver could not answer (P399), for a kind of change or a rule."""

    what: str
    reason: str
    kind: str | None = None
    rule: str | None = None

    def diagnostic(self) -> Diagnostic:
        return make("P399", f"could not decide {self.what}: {self.reason}", None)

    def to_dict(self) -> dict[str, Any]:
        return {"code": "P399", "message": self.diagnostic().message, "kind": self.kind, "rule": self.rule}


@attrs.frozen
class Diff:
    """What `policy diff` reports; ``equivalent`` only when proved (no change found and
    no question left undecided)."""

    old: str
    new: str
    changes: tuple[Change, ...]
    rules: tuple[RuleChange, ...]
    undecided: tuple[Undecided, ...]
    questions: int = 0
    seconds: float = 0.0
    catalogue: Any = None  # catalogue.CatalogueCounts, with --catalogue

    @property
    def equivalent(self) -> bool:
        return not self.changes and not self.undecided and (self.catalogue is None or not self.catalogue.changed)

    def kinds(self) -> frozenset[str]:
        """The kinds of change found (by the solver, or in the catalogue)."""
        found = {c.kind for c in self.changes}
        if self.catalogue is not None:
            found |= set(self.catalogue.by_kind)
        return frozenset(found)

    def exit_code(self, fail_on: frozenset[str] | None = None) -> int:
        """0 equivalent, 1 changes (with ``fail_on``: a change of a kind named, or a
        question about such a kind left undecided; a question about no kind or rule in
        particular, such as other field declarations, concerns every kind)."""
        if fail_on is None:
            return 0 if self.equivalent else 1
        open_kinds = set()
        for u in self.undecided:
            if u.kind is not None:
                open_kinds.add(u.kind)
            elif u.rule is None:
                open_kinds.update(KINDS)
        return 1 if (self.kinds() | open_kinds) & fail_on else 0

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "equivalent": self.equivalent,
                "changes": [c.to_dict() for c in self.changes], "rules": [r.to_dict() for r in self.rules],
                "undecided": [u.to_dict() for u in self.undecided],
                "catalogue": self.catalogue.to_dict() if self.catalogue is not None else None,
                "stats": {"solver_calls": self.questions, "seconds": round(self.seconds, 3)}}


class Replay:
    """Both versions' compiled evaluators, deciding one input."""

    def __init__(self, old: PolicySet, new: PolicySet):
        self.old_ps, self.new_ps = old, new
        self.old, self.new = Policies(old), Policies(new)

    def decide(self, listing: Any, at: Any, prior: int) -> tuple[Decision, Decision] | None:
        try:
            return self.old.decide(listing, at, prior), self.new.decide(listing, at, prior)
        except InputError:
            return None

    def kind(self, pair: tuple[Decision, Decision] | None) -> str | None:
        return None if pair is None else classify(self.old_ps, pair[0], self.new_ps, pair[1])


def _applies(qid: str, pair: tuple[Decision, Decision]) -> bool:
    return any(qid in d.rules or qid in d.overridden for d in pair)


class _Run:
    def __init__(self, old: PolicySet, new: PolicySet, m: Matching, budget: float | None, timeout_ms: int):
        self.m = m
        self.replay = Replay(old, new)
        self.stats = AnalysisStats()
        joint, sides = joint_set(old, new, m)
        self.prover = Prover(joint, sides, timeout_ms=timeout_ms, stats=self.stats,
                             budget=Budget(budget) if budget is not None else None)
        self.phrases = Vocabulary.of(joint).strings()
        # round instants are midnights where the first rule changed is read
        first = m.changed[0]
        self.tz: dt.tzinfo = (new.by_qid.get(first) or old.rule(first)).tz
        self.undecided: list[Undecided] = []
        self.examples: list[Example] = []

    def example(self, answer: Answer, want: Callable[[tuple[Decision, Decision]], str | None],
                what: str, kind: str | None = None, rule: str | None = None) -> Example | None:
        """The answer's witness, shrunk while ``want`` still finds its kind of change on
        it, and replayed; None (and P399) when it is undecided or does not replay."""
        if answer.status != "sat":
            if answer.status == "undecided":
                self.undecided.append(Undecided(what, answer.reason or "the solver gave up", kind, rule))
            return None
        assert answer.witness is not None
        w = self._shrunk(answer.witness, want)
        pair = self.replay.decide(w.listing, w.at, w.prior_violations)
        found = want(pair) if pair is not None else None
        if pair is None or found is None:
            self.undecided.append(Undecided(what, "the solver's witness does not separate the two versions when "
                                            f"replayed: {w.to_dict()!r}", kind, rule))
            return None
        ex = Example(w.to_dict()["listing"], w.at, w.prior_violations, found, pair[0], pair[1])
        self.examples.append(ex)
        return ex

    def _shrunk(self, w: Witness, want: Callable[[tuple[Decision, Decision]], str | None]) -> Witness:
        at = _aware(w.at)
        if at is None:
            return w  # a local `at` (rules of several timezones): kept as the solver found it

        def still(cx: Counterexample) -> bool:
            pair = self.replay.decide(cx.listing, cx.at, cx.prior_violations)
            return pair is not None and want(pair) is not None

        small = shrink(Counterexample(w.listing, at, w.prior_violations), still, phrases=self.phrases, tz=self.tz,
                       max_checks=400)
        return Witness(small.listing, format_instant(small.at), small.prior_violations)

    def kinds(self) -> list[Change]:
        p = self.prover
        first = p.ask(p.any_change())
        if first.status == "unsat":
            return []
        if first.status == "undecided":
            self.undecided.append(Undecided("whether any decision changes", first.reason or "", None, None))
        changes = []
        for kind, f in p.kinds().items():
            ex = self.example(p.ask(f), self._wanting(kind), f"whether some input changes {shown(kind)}", kind=kind)
            if ex is not None:
                changes.append(Change(kind, ex))
        if changes or first.status != "undecided":
            self.undecided = [u for u in self.undecided if u.what != "whether any decision changes"]
        return changes

    def _wanting(self, kind: str) -> Callable[[tuple[Decision, Decision]], str | None]:
        return lambda pair: kind if self.replay.kind(pair) == kind else None

    def rule(self, qid: str, none_changes: bool) -> RuleChange:
        status = self.m.status(qid)
        if none_changes:
            return RuleChange(qid, status, "no")
        for ex in self.examples:
            if _applies(qid, (ex.old, ex.new)):
                return RuleChange(qid, status, "yes", ex)
        p = self.prover

        def want(pair: tuple[Decision, Decision]) -> str | None:
            return self.replay.kind(pair) if _applies(qid, pair) else None

        answer = p.ask(FM.all_of(p.any_change(), p.touching(qid)))
        found = self.example(answer, want, f"whether the change of rule '{qid}' alters a decision", rule=qid)
        if found is not None:
            return RuleChange(qid, status, "yes", found)
        return RuleChange(qid, status, "no" if answer.status == "unsat" else "undecided")


def compare(old: PolicySet, new: PolicySet, *, old_label: str = "OLD", new_label: str = "NEW",
            budget: float | None = DEFAULT_BUDGET, timeout_ms: int = 10000) -> Diff:
    """Compare two checked policy sets (see the module docstring)."""
    start = time.perf_counter()
    m = match_rules(old, new)
    undecided = _schema_note(old, new)
    reworded = [RuleChange(q, "reworded", "no") for q in m.reworded]
    if not m.changed:
        return Diff(old_label, new_label, (), tuple(reworded), tuple(undecided), 0, time.perf_counter() - start)
    run = _Run(old, new, m, budget, timeout_ms)
    changes = run.kinds()
    none_changes = not changes and not run.undecided
    rules = [run.rule(q, none_changes) for q in m.changed]
    rules = sorted(rules + reworded, key=lambda r: r.rule)
    return Diff(old_label, new_label, tuple(changes), tuple(rules), tuple(undecided + run.undecided),
                run.stats.solver_calls, time.perf_counter() - start)


def _schema_note(old: PolicySet, new: PolicySet) -> list[Undecided]:
    if dict(old.schema) == dict(new.schema):
        return []
    return [Undecided("whether listings that only one version's field declarations accept change",
                      "the two versions declare different fields; listings are compared where the new version's "
                      "declarations accept them, and a listing one version rejects as an input error is not "
                      "a decision")]


def _aware(at: str) -> dt.datetime | None:
    value = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    return value if value.tzinfo is not None else None

