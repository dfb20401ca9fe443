"""Which rules apply on one concrete input, by the reference evaluator's own functions,
sharing the work between rules.

``rule_applies(rule, listing, at)`` is ``in_force(rule, at) and holds(rule.condition, …)``,
and a condition is a conjunction (scope, selector, ``if``, ``not unless``). Rules of one
policy share its scope, rules about one category share that atom, and many rules share a
window: evaluated rule by rule, the same parts are computed again and again. A ``Reader``
computes each distinct window and each distinct conjunct (with its timezone) at most once
per input, with ``dsl.evaluate.reference.in_force`` and ``dsl.evaluate.reference.holds`` themselves, and a
rule applies exactly when its window and all its conjuncts do — the same truth value as
``rule_applies``. A conjunct found false settles every rule that requires it. With an
``at`` given as an instant nothing here can raise, so the order does not matter; with a
naive ``at`` the window comes first, as in ``rule_applies`` (a timezone that cannot read
it raises the same error).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from ..evaluate import values as V
from ..evaluate.reference import holds, in_force
from ..model import PolicySet, RuleInfo
from ..syntax import ast as A


class Applicability:
    """A policy set's rules, each as a window number and a tuple of conjunct numbers."""

    def __init__(self, ps: PolicySet):
        windows: dict[Any, int] = {}
        parts: dict[Any, int] = {}
        self._plan: dict[str, tuple[int, RuleInfo, tuple[tuple[int, A.Expr, ZoneInfo], ...]]] = {}
        self._users: list[list[str]] = []  # conjunct number -> the rules that require it
        for r in ps.rules:
            w = windows.setdefault((r.start, r.end, r.timezone), len(windows))
            conj = []
            for c in A.conjuncts(r.condition):
                i = parts.setdefault((c, r.timezone), len(parts))
                if i == len(self._users):
                    self._users.append([])
                self._users[i].append(r.qid)
                conj.append((i, c, r.tz))
            self._plan[r.qid] = (w, r, tuple(conj))

    def reader(self, listing: Mapping[str, Any], at: Any) -> Reader:
        """``at`` as ``decide`` takes it, or already parsed (``values.ParsedAt``)."""
        when = at if isinstance(at, V.ParsedAt) else V.parse_at(at)
        return Reader(self._plan, self._users, listing, when)


class Reader:
    """``applies(qid)`` on one listing and ``at``, memoised by window and by conjunct."""

    __slots__ = ("_plan", "_users", "listing", "when", "_windows", "_parts", "_rules")

    def __init__(self, plan: Mapping[str, Any], users: list[list[str]], listing: Mapping[str, Any],
                 when: V.ParsedAt):
        self._plan = plan
        self._users = users
        self.listing = listing
        self.when = when
        self._windows: dict[int, bool] = {}
        self._parts: dict[int, bool] = {}
        self._rules: dict[str, bool] = {}

    def applies(self, qid: str) -> bool:
        found = self._rules.get(qid)
        if found is not None:
            return found
        w, rule, conj = self._plan[qid]
        aware = self.when.instant is not None
        ok = True
        if not aware:
            # a naive `at` may be unreadable in the rule's timezone: the window first, as
            # rule_applies does, so that the same error is raised
            ok = self._window(w, rule)
        if ok:
            parts = self._parts
            for i, c, tz in conj:
                v = parts.get(i)
                if v is None:
                    v = parts[i] = holds(c, self.listing, tz)
                    if not v and aware:
                        # every rule that requires it is settled (an aware `at` never
                        # raises, so the order of window and condition does not matter)
                        for q in self._users[i]:
                            self._rules[q] = False
                if not v:
                    ok = False
                    break
        if ok and aware:
            ok = self._window(w, rule)
        self._rules[qid] = ok
        return ok

    def _window(self, w: int, rule: RuleInfo) -> bool:
        ok = self._windows.get(w)
        if ok is None:
            ok = self._windows[w] = in_force(rule, self.when)
        return ok
