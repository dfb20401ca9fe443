"""What the solver's answers are made of, shared by the engine that asks the questions
(``engine``) and the code that turns a solver's model into a listing (``witness``): the
witness, the answer, the exception for a model that cannot be realised, and the view of
the engine that building a witness needs (``Solving``).
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from ..model import PolicySet, RuleInfo
from . import formula as FM
from .world import World

__all__ = ["Answer", "Solving", "Unrealisable", "Witness"]


@attrs.frozen
class Witness:
    listing: dict[str, Any]
    at: str
    prior_violations: int

    def to_dict(self) -> dict[str, Any]:
        """The witness as reported: the listing's keys in a reading order (category and
        text first, then the other fields alphabetically)."""
        return {"listing": _ordered(self.listing), "at": self.at, "prior_violations": self.prior_violations}


_FIRST = ("category", "title", "description", "tags")


def _ordered(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    keys = sorted(value, key=lambda k: (_FIRST.index(k) if k in _FIRST else len(_FIRST), k))
    return {k: _ordered(value[k]) for k in keys}


@attrs.frozen
class Answer:
    status: str  # "sat" | "unsat" | "undecided"
    witness: Witness | None = None
    reason: str | None = None
    cut: bool = False  # undecided because the analysis budget ran out


class Unrealisable(Exception):
    """The model could not be turned into a listing; ``expected`` when a known limit of the
    encoding (not a bug) is the cause."""

    def __init__(self, message: str, expected: bool = False):
        super().__init__(message)
        self.expected = expected


class Solving(Protocol):
    """What building and cleaning a witness reads of the engine (``engine.Engine``)."""

    ps: PolicySet
    world: World

    def rule(self, qid: str) -> RuleInfo: ...

    def confirms(self, f: FM.F, witness: Witness) -> bool: ...
