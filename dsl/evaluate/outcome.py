"""What deciding yields: a ``Decision`` (spec section 5), the penalty it carries, a
batch's ``DecisionError``, and ``InputError`` for input that cannot be decided on.

A leaf module: plain data, importing nothing else of ``dsl``, so that every stage (the
evaluators, the explanations, the analysis, the test runner, the CLI) can name these
types without pulling in an evaluator. ``to_dict()`` is exactly the JSON of spec section 5.
Both evaluators (``dsl.evaluate.reference`` and ``dsl.evaluate.compiled``) build the same ``Decision``
through ``dsl.evaluate.semantics.combine``; an explanation is asked of the policy set
(``Policies.explain``), not of the decision.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

__all__ = ["Decision", "DecisionError", "Effect", "InputError", "PenaltyChoice", "Proposal", "format_instant"]

Effect = Literal["allow", "flag", "block"]
"""The effect of a decision: the same type as a rule's effect, ``dsl.model.Effect`` (this
module imports nothing of ``dsl``, so it is written here too; tests/test_semantics.py
checks that the two agree). ``dsl.evaluate.semantics.EFFECTS`` orders them."""


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


@attrs.frozen
class Proposal:
    """A penalty proposal: a remaining block rule's step ``step`` of ``of``, with its
    actions and the key that orders steps by severity (``model.StepInfo.severity``)."""

    rule: str
    ladder: str | None
    step: int
    of: int
    actions: tuple[str, ...]
    severity: tuple[tuple[int, int], ...]

    def choice(self) -> PenaltyChoice:
        return PenaltyChoice(self.rule, self.ladder, self.step, self.actions)


def format_instant(at: dt.datetime) -> str:
    """An instant as decisions and counterexamples write it (spec section 5): an aware
    instant in UTC as ``YYYY-MM-DDTHH:MM:SSZ``, a naive one (a local ``at``, as given) as
    ``YYYY-MM-DDTHH:MM:SS`` without an offset; ``.ffffff`` only when the fraction of a
    second is not zero."""
    suffix = ""
    if at.tzinfo is not None and at.utcoffset() is not None:
        at, suffix = at.astimezone(dt.UTC), "Z"
    text = f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
    if at.microsecond:
        text += f".{at.microsecond:06d}"
    return text + suffix


@attrs.frozen(slots=False)  # a dict-backed instance is built twice as fast: decide makes one per call
class Decision:
    """The decision on one listing (spec section 5): plain data.

    ``rules`` and ``overridden`` hold qualified rule ids sorted by code point; ``at`` is
    the ``at`` decided at, as reported (spec section 5): an aware datetime in UTC when
    ``at`` had an offset or was the default (now), a naive datetime (local time, read in
    each policy's own timezone) when it was given without one, so that deciding again at
    ``decision.at``, or at ``to_dict()["at"]``, gives the same decision; ``warnings`` are
    the input warnings, one per ill-typed field. Why the listing got it: ask the policy
    set, ``policies.explain(listing, at=…)`` (or ``policies.explain_decision``)."""

    effect: Effect
    rules: tuple[str, ...]
    overridden: tuple[str, ...]
    penalty: PenaltyChoice | None
    messages: tuple[str, ...]
    citations: tuple[str, ...]
    warnings: tuple[str, ...]
    at: dt.datetime
    policy_hash: str

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
