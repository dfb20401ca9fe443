"""A listing that a rule's condition plainly asks for, built without the solver.

Most rules are a conjunction of plain selectors: a category, a field equal to a value or
in a list, a number above or below a bound, a phrase mentioned. For such a rule the
listing that holds exactly those values (the category path of its patterns joined, the
first value of each list, a number just inside its bounds, the phrases in the title) at
the start of its window (1970-01-01 without one) usually makes it apply. The guess proves
nothing by itself: the analysis keeps it only when the reference evaluator confirms it
(``Engine.confirms``), and asks the solver otherwise, so a guess changes how fast an
answer comes, never the answer.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from ..evaluate.outcome import format_instant
from ..model import RuleInfo
from ..syntax import ast as A
from .answers import Witness

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def guess(rule: RuleInfo) -> Witness | None:
    """A candidate witness for the rule, or None when its condition has nothing to guess
    from or asks for two values in one place."""
    parts = _Parts()
    for c in A.conjuncts(rule.condition):
        parts.add(c)
    listing = parts.listing()
    if listing is None:
        return None
    return Witness(listing, _instant(rule), 0)


def _instant(rule: RuleInfo) -> str:
    at = rule.start if rule.start is not None else EPOCH
    if rule.end is not None and at >= rule.end:
        at = rule.end - dt.timedelta(seconds=1)
    return format_instant(at)


Bound = tuple[float | int, bool]


@attrs.define
class _Parts:
    """What ``guess`` gathers from a condition's conjuncts."""

    categories: list[str] = attrs.Factory(list)
    values: dict[tuple[str, ...], Any] = attrs.Factory(dict)
    lows: dict[tuple[str, ...], Bound] = attrs.Factory(dict)
    highs: dict[tuple[str, ...], Bound] = attrs.Factory(dict)
    texts: dict[tuple[str, ...], list[str]] = attrs.Factory(dict)
    clash: bool = False

    def add(self, c: A.Expr) -> None:
        if isinstance(c, A.Category):
            self.categories.append(c.pattern.value)
        elif isinstance(c, A.CategoryIn):
            self._first_of(c.items, lambda v: self.categories.append(v) if isinstance(v, str) else None)
        elif isinstance(c, A.Compare):
            self._compare(c)
        elif isinstance(c, A.In) and not c.negated:
            self._first_of(c.items, lambda v: self._set(c.path.parts, v))
        elif isinstance(c, A.Mentions):
            self.texts.setdefault(("title",) if c.path is None else c.path.parts, []).append(c.phrase.value)
        elif isinstance(c, A.MentionsAny):
            self._first_of(c.items, lambda v: self.texts.setdefault(
                ("title",) if c.path is None else c.path.parts, []).append(v) if isinstance(v, str) else None)

    @staticmethod
    def _first_of(items: A.ListExpr, use: Any) -> None:
        if isinstance(items, A.ListLit) and items.items and isinstance(items.items[0], (A.Str, A.Num, A.Bool)):
            use(items.items[0].value)

    def _compare(self, c: A.Compare) -> None:
        if isinstance(c.value, (A.Str, A.Bool)) and c.op == "==":
            self._set(c.path.parts, c.value.value)
        elif isinstance(c.value, A.Num):
            self._number_bound(c.path.parts, c.op, c.value.value)

    def _number_bound(self, path: tuple[str, ...], op: str, v: float | int) -> None:
        if op == "==":
            self._set(path, v)
        elif op in (">", ">="):
            low = self.lows.get(path)
            if low is None or v > low[0]:
                self.lows[path] = (v, op == ">")
        elif op in ("<", "<="):
            high = self.highs.get(path)
            if high is None or v < high[0]:
                self.highs[path] = (v, op == "<")

    def _set(self, path: tuple[str, ...], v: Any) -> None:
        if path in self.values and self.values[path] != v:
            self.clash = True
        self.values[path] = v

    def listing(self) -> dict[str, Any] | None:
        flat: dict[tuple[str, ...], Any] = {}
        if self.categories:
            flat[("category",)] = " > ".join(self.categories)
        for path in {*self.lows, *self.highs}:
            flat[path] = _number(self.lows.get(path), self.highs.get(path))
        for path, phrases in self.texts.items():
            flat[path] = ", ".join(phrases)
        flat.update(self.values)
        if self.clash or not flat:
            return None
        out: dict[str, Any] = {}
        for path, v in flat.items():
            if not _put(out, path, v):
                return None
        return out


def _number(low: Bound | None, high: Bound | None) -> float | int:
    """A number within the bounds (when there is one): just above the lower bound, or
    just below the upper one."""
    if low is not None:
        v = low[0] + 1 if low[1] else low[0]
        if high is not None and (v > high[0] or (v == high[0] and high[1])):
            return (low[0] + high[0]) / 2
        return v
    assert high is not None
    return high[0] - 1 if high[1] else high[0]


def _put(out: dict[str, Any], path: tuple[str, ...], v: Any) -> bool:
    """``out`` with ``v`` at ``path`` (nested objects made on the way); False where the
    path runs through a value."""
    node = out
    for part in path[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            return False
        node = nxt
    if path[-1] in node:
        return False
    node[path[-1]] = v
    return True
