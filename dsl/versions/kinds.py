"""The kinds of change between two decisions on one input (spec section 8, `policy diff`):
a change is an input whose decision differs in ``effect`` or in ``penalty`` actions.

Effect changes are named ``old→new`` (``allow→block``); when both decisions block, the
penalty may be heavier, lighter, or as severe with other actions (``penalty-actions``:
``restrict listing for 30d`` against ``restrict selling for 30d``, or the same actions in
another order). Every kind also has an ASCII spelling (``allow-block``), which
``--fail-on`` accepts beside the arrow and ``->``.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..evaluate.outcome import Decision
from ..model import PolicySet

__all__ = ["EFFECT_KINDS", "KINDS", "PENALTY_KINDS", "ascii_name", "classify", "parse_kinds", "shown"]

_EFFECTS = ("allow", "flag", "block")

EFFECT_KINDS: tuple[str, ...] = tuple(f"{a}→{b}" for a in _EFFECTS for b in _EFFECTS if a != b)
"""The effect changes, ``old→new``."""

PENALTY_KINDS: tuple[str, ...] = ("penalty-heavier", "penalty-lighter", "penalty-actions")
"""Both decisions block; the penalty is more severe, less severe, or as severe with other actions."""

KINDS: tuple[str, ...] = EFFECT_KINDS + PENALTY_KINDS
"""Every kind of change, in the order reports list them."""

_WORDS = {"penalty-heavier": "penalty heavier", "penalty-lighter": "penalty lighter",
          "penalty-actions": "penalty actions changed"}


def ascii_name(kind: str) -> str:
    """``allow-block`` for ``allow→block``; the penalty kinds are ASCII already."""
    return kind.replace("→", "-")


def shown(kind: str) -> str:
    """The kind as people read it: ``allow → block``, ``penalty heavier``."""
    return _WORDS.get(kind, kind.replace("→", " → "))


def _spellings() -> dict[str, str]:
    table: dict[str, str] = {}
    for kind in KINDS:
        for spelling in (kind, ascii_name(kind), kind.replace("→", "->"), shown(kind)):
            table["".join(spelling.lower().split())] = kind
    table["penalty-actions-changed"] = "penalty-actions"
    return table


_SPELLINGS = _spellings()


def parse_kinds(text: str | Iterable[str]) -> frozenset[str]:
    """The kinds named by ``--fail-on`` (comma-separated, or a list of names). Raises
    ValueError naming the valid kinds for a name that is none of them."""
    names = text.split(",") if isinstance(text, str) else [n for part in text for n in part.split(",")]
    found: set[str] = set()
    for name in names:
        key = "".join(name.lower().split())
        if not key:
            continue
        kind = _SPELLINGS.get(key)
        if kind is None:
            valid = ", ".join(f"{k} ({ascii_name(k)})" if ascii_name(k) != k else k for k in KINDS)
            raise ValueError(f"unknown kind of change '{name.strip()}'; the kinds are: {valid}")
        found.add(kind)
    if not found:
        raise ValueError("no kind of change named")
    return frozenset(found)


def _severity(ps: PolicySet, d: Decision) -> tuple[tuple[int, int], ...] | None:
    if d.penalty is None:
        return None
    rule = ps.rule(d.penalty.rule)
    assert rule.penalty is not None
    return rule.penalty.steps[d.penalty.step - 1].severity


def classify(old_ps: PolicySet, old: Decision, new_ps: PolicySet, new: Decision) -> str | None:
    """The kind of change from ``old`` (decided by ``old_ps``) to ``new``, or None when
    the two agree in effect and penalty actions."""
    if old.effect != new.effect:
        return f"{old.effect}→{new.effect}"
    if old.effect != "block":
        return None
    before, after = _severity(old_ps, old), _severity(new_ps, new)
    if before != after:
        if before is None:
            return "penalty-heavier"
        if after is None:
            return "penalty-lighter"
        return "penalty-heavier" if after > before else "penalty-lighter"
    old_actions = old.penalty.actions if old.penalty is not None else ()
    new_actions = new.penalty.actions if new.penalty is not None else ()
    return None if old_actions == new_actions else "penalty-actions"
