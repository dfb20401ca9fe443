"""What ``decide`` returns: a ``Decision`` (spec section 5), and the errors of bad input.

A decision is plain data. ``to_dict()`` is exactly the JSON of spec section 5;
``explain()`` renders why each rule did or did not apply (``dsl.explain``). Both evaluators
(``dsl.reference`` and ``dsl.compiled``) build the same ``Decision``; a compiled decision
carries no trace of its own and replays the listing through the reference evaluator when
it is asked to explain itself (the two evaluators agree exactly, which the tests check).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from .explain import Trace

__all__ = ["Decision", "DecisionError", "InputError", "PenaltyChoice", "format_instant"]


class InputError(ValueError):
    """A listing, an ``at`` or a ``prior_violations`` that cannot be decided on.

    ``field`` is the dotted path of the offending field where there is one (the first, when
    several fields are wrong); ``problems`` lists every problem found, each a sentence."""

    def __init__(self, message: str, *, field: str | None = None, problems: tuple[str, ...] = ()):
        super().__init__(message)
        self.message = message
        self.field = field
        self.problems = problems or (message,)


@attrs.frozen
class DecisionError:
    """A record of ``decide_many`` (or of ``policy eval``) that could not be decided: its
    place in the input (counting from 1) and why. It stands in the batch's result where
    the decision would have been."""

    record: int
    message: str
    field: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{"error": {"record": N, "message": …}}`` (spec section 8)."""
        return {"error": {"record": self.record, "message": self.message}}


@attrs.frozen
class PenaltyChoice:
    """The penalty of a decision: the rule whose proposal won, its ladder (None for an
    inline ``penalty STEP``), the step (from 1) and the step's actions in canonical form."""

    rule: str
    ladder: str | None
    step: int
    actions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "ladder": self.ladder, "step": self.step, "actions": list(self.actions)}


def format_instant(at: dt.datetime) -> str:
    """A decision's ``at`` as the spec writes it (section 5): an aware instant in UTC as
    ``YYYY-MM-DDTHH:MM:SSZ``, a naive one (a local ``at``, as given) as
    ``YYYY-MM-DDTHH:MM:SS`` without an offset; ``.ffffff`` only when the fraction of a
    second is not zero."""
    suffix = ""
    if at.tzinfo is not None and at.utcoffset() is not None:
        at, suffix = at.astimezone(dt.timezone.utc), "Z"
    text = f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
    if at.microsecond:
        text += f".{at.microsecond:06d}"
    return text + suffix


@attrs.frozen(slots=False)  # a dict-backed instance is built twice as fast: decide makes one per call
class Decision:
    """The decision on one listing (spec section 5).

    ``rules`` and ``overridden`` hold qualified rule ids sorted by code point; ``at`` is
    the ``at`` decided at, as reported (spec section 5): an aware datetime in UTC when
    ``at`` had an offset or was the default (now), a naive datetime (local time, read in
    each policy's own timezone) when it was given without one, so that deciding again at
    ``decision.at``, or at ``to_dict()["at"]``, gives the same decision; ``warnings`` are
    the input warnings, one per ill-typed field."""

    effect: str
    rules: tuple[str, ...]
    overridden: tuple[str, ...]
    penalty: PenaltyChoice | None
    messages: tuple[str, ...]
    citations: tuple[str, ...]
    warnings: tuple[str, ...]
    at: dt.datetime
    policy_hash: str
    _trace: Trace | None = attrs.field(default=None, eq=False, repr=False, alias="trace")
    _replay: tuple[Any, ...] | None = attrs.field(default=None, eq=False, repr=False, alias="replay")
    """(tracer, listing, parsed at, prior): what it takes to build the trace on request;
    the tracer is the evaluator that decided (``trace(decision, listing, at, prior,
    why_not)``), which reads ``mentions`` with its one-pass phrase matcher."""

    def to_dict(self) -> dict[str, Any]:
        """The decision as the JSON object of spec section 5."""
        return {
            "effect": self.effect,
            "rules": list(self.rules),
            "overridden": list(self.overridden),
            "penalty": self.penalty.to_dict() if self.penalty is not None else None,
            "messages": list(self.messages),
            "citations": list(self.citations),
            "warnings": list(self.warnings),
            "at": format_instant(self.at),
            "policy_hash": self.policy_hash,
        }

    @property
    def trace(self) -> Trace | None:
        """How each rule fared, computed on demand; None when it cannot be had."""
        return self._trace_for(None)

    def _trace_for(self, why_not: str | None) -> Trace | None:
        if self._replay is None:
            return self._trace
        if self._trace is not None and why_not is None:
            return self._trace
        tracer, listing, when, prior = self._replay
        trace: Trace = tracer.trace(self, listing, when, prior, why_not)
        return trace

    def explain(self, why_not: str | None = None) -> str:
        """Why the listing got this decision, for people: the rules that applied and the
        conditions that held; the overrides; for each rule that did not apply but shares
        a category or a text match with the listing, the first condition that failed, in
        the author's words; the other rules by id; the penalty choice; and the input
        warnings. ``why_not`` names one rule (its qualified id, or its name when only one
        policy has a rule of that name) whose every condition is then given, held or not;
        a name that fits no rule, or several, raises InputError."""
        from .explain import render, resolve_rule

        qid = None
        if why_not is not None:
            if self._replay is None:
                raise InputError("why_not: this decision carries no trace to explain a rule with", field="why_not")
            qid = resolve_rule(self._replay[0].policy_set, why_not)
        return render(self, self._trace_for(qid))
