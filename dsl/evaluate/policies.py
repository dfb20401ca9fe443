"""``Policies``: a loaded policy set, ready to decide (what ``dsl.load`` returns).

    policies = dsl.load("policies/")                  # once, at start-up
    decision = policies.decide(listing, at="2021-10-20", prior_violations=1)
    decision.effect, decision.rules, decision.penalty, decision.to_dict()
    policies.explain(listing, at="2021-10-20")        # why, as text
    policies.decide_many(listings)                    # a batch: one decision or error each
    policies.decide_many(listings, at=[l["listed_on"] for l in listings])  # one `at` each

A ``Policies`` object is immutable and may be shared by any number of threads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..fingerprint import policy_hash
from ..gcpause import no_gc
from ..model import PolicySet
from .compiled import CompiledPolicySet
from .explain import explain_decision, resolve_rule
from .hotpath import Decide
from .outcome import Decision, DecisionError
from .reference import decide_reference

__all__ = ["Policies"]


class Policies:
    """A checked policy set with its compiled evaluator.

    ``decide`` and ``decide_many`` use the compiled evaluator; ``decide_reference`` runs
    the simple tree-walking one (the oracle the compiled one is tested against; slower,
    same answers). Every method raises ``dsl.InputError`` (a ValueError) for input that
    cannot be decided on, except ``decide_many``, which reports a bad listing in its place
    and goes on."""

    decide: Decide
    """``decide(listing, at=None, prior_violations=0)``: decide one listing (a dict, as
    parsed from JSON) at ``at`` (None for now; a datetime, a date, or an ISO string;
    without an offset it is local time in each policy's timezone) for a seller with
    ``prior_violations`` earlier violations. It is the compiled evaluator's generated
    function itself (``CompiledPolicySet.decide``), bound as an attribute: no call in
    between on the hot path."""

    def __init__(self, policy_set: PolicySet):
        self._ps = policy_set
        with no_gc():
            self._compiled = CompiledPolicySet(policy_set)
        self.decide = self._compiled.decide

    @property
    def policy_set(self) -> PolicySet:
        """The checked model (``dsl.model.PolicySet``)."""
        return self._ps

    @property
    def policy_hash(self) -> str:
        """``sha256:…`` of the canonically formatted policies: it changes exactly when the
        meaning may have. Log it with every decision for audits."""
        return policy_hash(self._ps)

    @property
    def rules(self) -> tuple[str, ...]:
        """The qualified ids of every rule, sorted."""
        return tuple(r.qid for r in self._ps.rules)

    def decide_many(self, listings: Iterable[Any], at: Any = None,
                    prior_violations: Any = 0) -> list[Decision | DecisionError]:
        """Decide a batch. ``at`` and ``prior_violations`` are each one value for the
        whole batch (``at`` read once; None means now, once for the batch) or one per
        listing: a list or tuple as long as the batch (a string is one value). Each
        listing that cannot be decided yields a ``DecisionError`` in its place, as does a
        bad per-listing ``at`` or ``prior_violations``; a bad single value, or a list of
        another length, raises ``InputError``, as does ``listings`` that is no iterable of
        listings (None, a number, text or bytes, a mapping: one listing, for ``decide``),
        before anything is decided. Each decision is the one ``decide`` gives with that
        listing's values."""
        return self._compiled.decide_many(listings, at, prior_violations)

    def decide_reference(self, listing: Any, at: Any = None, prior_violations: Any = 0) -> Decision:
        """Decide with the reference evaluator (for tests and for checking the compiled
        evaluator; the decisions are the same)."""
        return decide_reference(self._ps, listing, at, prior_violations)

    def explain(self, listing: Any, at: Any = None, prior_violations: Any = 0, why_not: str | None = None) -> str:
        """Why ``listing`` gets its decision, as text: the rules that applied and the
        conditions that held; the overrides; for each rule that did not apply but shares
        a category or a text match with the listing, the first condition that failed, in
        the author's words; the other rules by id; the penalty choice; and the input
        warnings. ``why_not`` names one rule (its qualified id, or its name when only one
        policy has a rule of that name) whose every condition is then given, held or not;
        a name that fits no rule, or several, raises InputError, as does input that
        cannot be decided on."""
        decision = self._compiled.decide(listing, at, prior_violations)
        return self.explain_decision(decision, listing, prior_violations, why_not)

    def explain_decision(self, decision: Decision, listing: Any, prior_violations: Any = 0,
                         why_not: str | None = None) -> str:
        """``explain`` for a decision already made on ``listing`` (by ``decide`` or
        ``decide_reference``, with the same ``prior_violations``): nothing is decided
        again; the explanation reads ``mentions`` through the compiled evaluator's
        one-pass phrase matchers."""
        return explain_decision(self._ps, decision, listing, prior_violations, why_not,
                                self._compiled.phrase_matchers)

    def resolve_rule(self, name: str) -> str:
        """The qualified id of the rule ``name`` names (as ``why_not`` reads it); raises
        InputError for a name that fits no rule, or rules of several policies."""
        return resolve_rule(self._ps, name)

    def plan_summary(self) -> dict[str, int]:
        """How the compiled evaluator filed the rules (category index, field index,
        residual): useful to see why a large set is slow."""
        return self._compiled.plan_summary()

    def __repr__(self) -> str:
        names = [p.name for p in self._ps.policies]
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        return f"<Policies {shown}: {len(self._ps.rules)} rules, {self.policy_hash[:19]}…>"
