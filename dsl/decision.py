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


def format_instant(instant: dt.datetime) -> str:
    """An aware instant as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC (fractions of a second dropped)."""
    u = instant.astimezone(dt.timezone.utc)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


@attrs.frozen(slots=False)  # a dict-backed instance is built twice as fast: decide makes one per call
class Decision:
    """The decision on one listing (spec section 5).

    ``rules`` and ``overridden`` hold qualified rule ids sorted by code point; ``at`` is the
    instant decided at, an aware datetime in UTC (a naive ``at`` given to ``decide`` is
    read in each policy's own timezone, and reported as read in the timezone of the first
    policy by name); ``warnings`` are the input warnings, one per ill-typed field."""

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
    """(policy set, listing, parsed at, prior): what the reference evaluator needs to
    replay the decision for its trace (a compiled decision keeps no trace of its own)."""

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
        """How each rule fared (the reference evaluator's record), computed on demand for
        a decision of the compiled evaluator; None when it cannot be had."""
        if self._trace is not None:
            return self._trace
        if self._replay is not None:
            from .reference import trace_of

            return trace_of(*self._replay)
        return None

    def explain(self) -> str:
        """Why the listing got this decision, for people: the rules that applied and the
        conditions that held; for each rule whose selector matched but which did not
        apply, the first condition that failed, in the author's words; the overrides; the
        penalty choice; and the input warnings."""
        from .explain import render

        return render(self, self.trace)
